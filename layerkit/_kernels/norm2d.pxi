# Included by layerkit/_core.pyx: batch normalisation over channels.
#
# The input is viewed as ``(n, C, S)``, C-contiguous: ``n`` samples, ``C``
# channels and ``S`` positions per channel (``H * W`` for an image, ``L`` for
# a sequence, 1 for a plain ``(n, C)`` batch). Statistics are per channel,
# over the ``m = n * S`` values of that channel. Sums are accumulated in
# double for both float32 and float64; the variance takes two passes (no
# cancellation). Every output is supplied by the caller, so a training step
# that reuses its arrays allocates nothing here. No messages and no policy:
# the layers (``layerkit/layers/batch_norm.py``) check their arguments first.


cdef extern from "_kernels/norm2d.h" nogil:
    double lk_norm_sum_f(const float* p, Py_ssize_t s)
    double lk_norm_sum_squares_f(const float* p, Py_ssize_t s, double mu)
    void lk_norm_sums_dy_f(const float* x, const float* dy, Py_ssize_t s, float mu, float r,
                           double* sum_dy, double* sum_dyx)
    void lk_norm_affine_f(const float* x, float* y, Py_ssize_t s, float mu, float scale, float shift)
    void lk_norm_dx_f(const float* x, const float* dy, float* dx, Py_ssize_t s, float mu, float r,
                      float scale, float a, float b)


cdef int _describe_channels(cnp.ndarray x, int typenum, Py_ssize_t* n, Py_ssize_t* c, Py_ssize_t* s) except -1:
    """``x`` must be a 3-D C-contiguous native array of dtype ``typenum``: fill its dimensions."""
    if cnp.PyArray_NDIM(x) != 3 or cnp.PyArray_TYPE(x) != typenum or not cnp.PyArray_ISNOTSWAPPED(x):
        raise ValueError("layerkit._core: expected a 3-D (n, C, S) array of the call's dtype in native byte order")
    if not cnp.PyArray_IS_C_CONTIGUOUS(x):
        raise ValueError("layerkit._core: expected a C-contiguous (n, C, S) array")
    n[0] = cnp.PyArray_DIM(x, 0)
    c[0] = cnp.PyArray_DIM(x, 1)
    s[0] = cnp.PyArray_DIM(x, 2)
    return 0


cdef int _check_channels_like(cnp.ndarray a, cnp.ndarray x, bint writeable) except -1:
    _check_same(x, a, writeable)
    return 0


# The sums run in four double accumulators: independent chains the CPU (and
# GCC's SLP vectoriser) overlap, where one accumulator waits on every add.
cdef inline double _sum(floating* p, Py_ssize_t s) noexcept nogil:
    if floating is float:
        return lk_norm_sum_f(p, s)
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t j = 0
    while j + 4 <= s:
        a0 += p[j]
        a1 += p[j + 1]
        a2 += p[j + 2]
        a3 += p[j + 3]
        j += 4
    while j < s:
        a0 += p[j]
        j += 1
    return (a0 + a1) + (a2 + a3)


cdef inline double _sum_squares(floating* p, Py_ssize_t s, double mu) noexcept nogil:
    if floating is float:
        return lk_norm_sum_squares_f(p, s, mu)
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, d0, d1, d2, d3
    cdef Py_ssize_t j = 0
    while j + 4 <= s:
        d0 = p[j] - mu
        d1 = p[j + 1] - mu
        d2 = p[j + 2] - mu
        d3 = p[j + 3] - mu
        a0 += d0 * d0
        a1 += d1 * d1
        a2 += d2 * d2
        a3 += d3 * d3
        j += 4
    while j < s:
        d0 = p[j] - mu
        a0 += d0 * d0
        j += 1
    return (a0 + a1) + (a2 + a3)


cdef inline void _sums_dy(floating* x, floating* dy, Py_ssize_t s, floating mu, floating r,
                          double* sum_dy, double* sum_dyx) noexcept nogil:
    """Add ``sum(dy)`` and ``sum(dy * xhat)`` of ``s`` values to ``sum_dy`` and ``sum_dyx``."""
    if floating is float:
        lk_norm_sums_dy_f(x, dy, s, mu, r, sum_dy, sum_dyx)
        return
    cdef double a0 = 0, a1 = 0, b0 = 0, b1 = 0
    cdef Py_ssize_t j = 0
    while j + 2 <= s:
        a0 += dy[j]
        a1 += dy[j + 1]
        b0 += dy[j] * ((x[j] - mu) * r)
        b1 += dy[j + 1] * ((x[j + 1] - mu) * r)
        j += 2
    while j < s:
        a0 += dy[j]
        b0 += dy[j] * ((x[j] - mu) * r)
        j += 1
    sum_dy[0] += a0 + a1
    sum_dyx[0] += b0 + b1


cdef void _channel_stats(floating* x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t s,
                         floating* mean, floating* var) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef double total, mu, m = <double>(n * s)
    for k in range(c):
        total = 0
        for i in range(n):
            total += _sum[floating](x + (i * c + k) * s, s)
        mean[k] = <floating>(total / m) if m > 0 else 0
        mu = <double>mean[k]
        total = 0
        for i in range(n):
            total += _sum_squares[floating](x + (i * c + k) * s, s, mu)
        var[k] = <floating>(total / m) if m > 0 else 0


cdef void _channel_affine(floating* x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t s, floating* mean,
                          floating* rstd, floating* gamma, floating* beta, floating* y) noexcept nogil:
    cdef Py_ssize_t i, k, j, off
    cdef floating mu, scale, shift
    for i in range(n):
        for k in range(c):
            mu = mean[k]
            scale = rstd[k] * gamma[k]
            shift = beta[k]
            off = (i * c + k) * s
            if floating is float:
                lk_norm_affine_f(x + off, y + off, s, mu, scale, shift)
                continue
            for j in range(s):
                y[off + j] = (x[off + j] - mu) * scale + shift


cdef void _channel_backward(floating* x, floating* dy, Py_ssize_t n, Py_ssize_t c, Py_ssize_t s,
                            floating* mean, floating* rstd, floating* gamma, bint training,
                            floating* dgamma, floating* dbeta, floating* dx) noexcept nogil:
    cdef Py_ssize_t i, k, j, off
    cdef double sum_dy, sum_dyx
    cdef floating mu, r, scale, a, b
    cdef double m = <double>(n * s)
    for k in range(c):
        mu = mean[k]
        r = rstd[k]
        sum_dy = 0
        sum_dyx = 0
        for i in range(n):
            off = (i * c + k) * s
            _sums_dy[floating](x + off, dy + off, s, mu, r, &sum_dy, &sum_dyx)
        dbeta[k] = <floating>sum_dy
        dgamma[k] = <floating>sum_dyx
        if dx == NULL:
            continue
        scale = r * gamma[k]
        if training and m > 0:
            # dx = rstd * gamma * (dy - mean(dy) - xhat * mean(dy * xhat))
            a = <floating>(sum_dy / m)
            b = <floating>(sum_dyx / m)
        else:
            a = 0
            b = 0
        for i in range(n):
            off = (i * c + k) * s
            if floating is float:
                lk_norm_dx_f(x + off, dy + off, dx + off, s, mu, r, scale, a, b)
                continue
            for j in range(s):
                dx[off + j] = scale * (dy[off + j] - a - ((x[off + j] - mu) * r) * b)


def channel_stats(cnp.ndarray x, cnp.ndarray mean, cnp.ndarray var):
    """Per-channel mean and biased variance of ``x`` (n, C, S), written into ``mean`` and ``var`` (C,)."""
    cdef int t = _float_type(x)
    cdef Py_ssize_t n, c, s
    _describe_channels(x, t, &n, &c, &s)
    _check_vector(mean, t, <int>c, True)
    _check_vector(var, t, <int>c, True)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _channel_stats[double](<double*>cnp.PyArray_DATA(x), n, c, s,
                                   <double*>cnp.PyArray_DATA(mean), <double*>cnp.PyArray_DATA(var))
    else:
        with nogil:
            _channel_stats[float](<float*>cnp.PyArray_DATA(x), n, c, s,
                                  <float*>cnp.PyArray_DATA(mean), <float*>cnp.PyArray_DATA(var))


def channel_affine(cnp.ndarray x, cnp.ndarray mean, cnp.ndarray rstd, cnp.ndarray gamma,
                   cnp.ndarray beta, cnp.ndarray out):
    """``out[i, k, j] = (x[i, k, j] - mean[k]) * rstd[k] * gamma[k] + beta[k]`` for ``x`` (n, C, S)."""
    cdef int t = _float_type(x)
    cdef Py_ssize_t n, c, s
    _describe_channels(x, t, &n, &c, &s)
    _check_channels_like(out, x, True)
    for v in (mean, rstd, gamma, beta):
        _check_vector(<cnp.ndarray>v, t, <int>c, False)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _channel_affine[double](<double*>cnp.PyArray_DATA(x), n, c, s, <double*>cnp.PyArray_DATA(mean),
                                    <double*>cnp.PyArray_DATA(rstd), <double*>cnp.PyArray_DATA(gamma),
                                    <double*>cnp.PyArray_DATA(beta), <double*>cnp.PyArray_DATA(out))
    else:
        with nogil:
            _channel_affine[float](<float*>cnp.PyArray_DATA(x), n, c, s, <float*>cnp.PyArray_DATA(mean),
                                   <float*>cnp.PyArray_DATA(rstd), <float*>cnp.PyArray_DATA(gamma),
                                   <float*>cnp.PyArray_DATA(beta), <float*>cnp.PyArray_DATA(out))
    return out


def channel_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray mean, cnp.ndarray rstd, cnp.ndarray gamma,
                     bint training, cnp.ndarray dgamma, cnp.ndarray dbeta, dx=None):
    """Gradients of ``channel_affine`` with the batch's statistics (``training``) or fixed ones.

    Writes ``dbeta[k] = sum(dy)`` and ``dgamma[k] = sum(dy * xhat)`` over the
    channel's values and, when ``dx`` is an array, ``dx = rstd * gamma * (dy -
    mean(dy) - xhat * mean(dy * xhat))`` in training mode, ``rstd * gamma * dy``
    otherwise. ``x``, ``dy`` and ``dx`` are (n, C, S) C-contiguous.
    """
    cdef int t = _float_type(x)
    cdef Py_ssize_t n, c, s
    cdef bint want_dx = dx is not None
    _describe_channels(x, t, &n, &c, &s)
    _check_channels_like(dy, x, False)
    if want_dx:
        _check_channels_like(<cnp.ndarray?>dx, x, True)
    for v in (mean, rstd, gamma):
        _check_vector(<cnp.ndarray>v, t, <int>c, False)
    _check_vector(dgamma, t, <int>c, True)
    _check_vector(dbeta, t, <int>c, True)
    cdef char* dxp = cnp.PyArray_BYTES(<cnp.ndarray>dx) if want_dx else NULL
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _channel_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy), n, c, s,
                                      <double*>cnp.PyArray_DATA(mean), <double*>cnp.PyArray_DATA(rstd),
                                      <double*>cnp.PyArray_DATA(gamma), training,
                                      <double*>cnp.PyArray_DATA(dgamma), <double*>cnp.PyArray_DATA(dbeta),
                                      <double*>dxp)
    else:
        with nogil:
            _channel_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy), n, c, s,
                                     <float*>cnp.PyArray_DATA(mean), <float*>cnp.PyArray_DATA(rstd),
                                     <float*>cnp.PyArray_DATA(gamma), training,
                                     <float*>cnp.PyArray_DATA(dgamma), <float*>cnp.PyArray_DATA(dbeta),
                                     <float*>dxp)
    return dx
