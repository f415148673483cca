# Included by layerkit/_core.pyx: max and average pooling over 2-D windows
# (1-D is the case H = 1), on C-contiguous (n, C, H, W) arrays, GIL released.
#
# Max pooling ignores the padding (as torch: the window's maximum over the
# input positions it covers) and takes the first maximum in row-major window
# order; a NaN wins (the last one, as torch's kernel keeps it). Its backward
# recomputes that position from ``x``, so the forward keeps nothing. The 2x2
# stride-2 window of conv nets has its own C loops (``pool.h``). Average
# pooling divides by the whole window (torch's ``count_include_pad=True``, the
# default), padding included.

cdef struct PoolGeometry:
    Py_ssize_t planes, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo


cdef int _pool_geometry(tuple shape, PoolGeometry* g) except -1:
    """Fill ``g`` from ``(planes, H, W, kh, kw, sh, sw, ph, pw)``; ``planes`` = n * C."""
    if len(shape) != 9:
        raise ValueError("layerkit._core: a pooling geometry has 9 integers")
    g.planes, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw = shape
    if (g.planes < 0 or g.H < 1 or g.W < 1 or g.kh < 1 or g.kw < 1 or g.sh < 1 or g.sw < 1
            or g.ph < 0 or g.pw < 0 or 2 * g.ph > g.kh or 2 * g.pw > g.kw):
        raise ValueError("layerkit._core: invalid pooling geometry")
    g.Ho = (g.H + 2 * g.ph - g.kh) // g.sh + 1
    g.Wo = (g.W + 2 * g.pw - g.kw) // g.sw + 1
    if g.Ho < 1 or g.Wo < 1:
        raise ValueError("layerkit._core: the window is larger than the padded input")
    return 0


cdef inline Py_ssize_t _argmax_window(const floating* plane, PoolGeometry* g, Py_ssize_t oh,
                                      Py_ssize_t ow) noexcept nogil:
    """Index in the plane of the window's first maximum (NaN wins, as in torch)."""
    cdef Py_ssize_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw
    cdef Py_ssize_t h1 = h0 + g.kh, w1 = w0 + g.kw, ih, iw, best
    cdef floating v, top
    if h0 < 0:
        h0 = 0
    if w0 < 0:
        w0 = 0
    if h1 > g.H:
        h1 = g.H
    if w1 > g.W:
        w1 = g.W
    best = h0 * g.W + w0
    top = plane[best]
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            v = plane[ih * g.W + iw]
            if v > top or v != v:
                best = ih * g.W + iw
                top = v
    return best


cdef inline bint _halving(PoolGeometry* g) noexcept nogil:
    """The 2x2 window with stride 2 and no padding (the usual pooling of a conv net)."""
    return g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.ph == 0 and g.pw == 0


cdef extern from "_kernels/pool.h" nogil:
    void lk_max_pool_halving_forward_f(const float* x, float* y, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_max_pool_halving_forward_d(const double* x, double* y, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_max_pool_halving_backward_f(const float* x, const float* dy, float* dx, Py_ssize_t planes,
                                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_max_pool_halving_backward_d(const double* x, const double* dy, double* dx, Py_ssize_t planes,
                                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_max_pool_relu_halving_backward_f(const float* x, const float* dy, float* dx, Py_ssize_t planes,
                                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_max_pool_relu_halving_backward_d(const double* x, const double* dy, double* dx, Py_ssize_t planes,
                                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo)


cdef void _max_pool_forward(const floating* x, floating* y, PoolGeometry* g) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, at
    if _halving(g):
        if floating is float:
            lk_max_pool_halving_forward_f(x, y, g.planes, g.H, g.W, g.Ho, g.Wo)
        else:
            lk_max_pool_halving_forward_d(x, y, g.planes, g.H, g.W, g.Ho, g.Wo)
        return
    cdef const floating* plane
    cdef const floating* r0
    cdef const floating* r1
    cdef floating* out
    for p in range(g.planes):
        plane = x + p * g.H * g.W
        out = y + p * g.Ho * g.Wo
        for oh in range(g.Ho):
            for ow in range(g.Wo):
                at = _argmax_window[floating](plane, g, oh, ow)
                out[oh * g.Wo + ow] = plane[at]


cdef void _max_pool_backward(const floating* x, const floating* dy, floating* dx,
                             PoolGeometry* g) noexcept nogil:
    cdef Py_ssize_t p, i, oh, ow, at
    cdef const floating* plane
    if not _halving(g) or g.H % 2 or g.W % 2:  # (the 2x2 windows write every position of an even plane)
        for i in range(g.planes * g.H * g.W):
            dx[i] = 0
    if _halving(g):
        if floating is float:
            lk_max_pool_halving_backward_f(x, dy, dx, g.planes, g.H, g.W, g.Ho, g.Wo)
        else:
            lk_max_pool_halving_backward_d(x, dy, dx, g.planes, g.H, g.W, g.Ho, g.Wo)
        return
    for p in range(g.planes):
        plane = x + p * g.H * g.W
        for oh in range(g.Ho):
            for ow in range(g.Wo):
                at = _argmax_window[floating](plane, g, oh, ow)
                dx[p * g.H * g.W + at] += dy[(p * g.Ho + oh) * g.Wo + ow]


cdef void _max_pool_relu_backward(const floating* x, const floating* dy, floating* dx,
                                  PoolGeometry* g) noexcept nogil:
    """The gradient through a ReLU and then a 2x2, stride-2 max pooling (``_halving``), in one pass.

    ``x`` is the pooling's input (the ReLU's output); bit for bit the ReLU's
    backward of ``_max_pool_backward``.
    """
    cdef Py_ssize_t i
    if g.H % 2 or g.W % 2:  # (the last row or column is in no window)
        for i in range(g.planes * g.H * g.W):
            dx[i] = 0
    if floating is float:
        lk_max_pool_relu_halving_backward_f(x, dy, dx, g.planes, g.H, g.W, g.Ho, g.Wo)
    else:
        lk_max_pool_relu_halving_backward_d(x, dy, dx, g.planes, g.H, g.W, g.Ho, g.Wo)


cdef void _avg_pool_forward(const floating* x, floating* y, PoolGeometry* g) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, h0, w0, h1, w1
    cdef const floating* plane
    cdef floating total, scale = <floating>1.0 / <floating>(g.kh * g.kw)
    if (g.Ho == 1 and g.Wo == 1 and g.kh == g.H and g.kw == g.W and g.ph == 0 and g.pw == 0):
        # global pooling: each window is its whole (contiguous) plane, summed in 16 interleaved partial
        # sums (conv.h's lk_sum) rather than one chain that waits on every add (GlobalAvgPool2d of
        # (64, 16, 28, 28) float32: 0.61 -> 0.05 ms)
        for p in range(g.planes):
            y[p] = _conv_sum[floating](x + p * g.H * g.W, g.H * g.W) * scale
        return
    for p in range(g.planes):
        plane = x + p * g.H * g.W
        for oh in range(g.Ho):
            h0 = oh * g.sh - g.ph
            h1 = h0 + g.kh
            h0 = h0 if h0 > 0 else 0
            h1 = h1 if h1 < g.H else g.H
            for ow in range(g.Wo):
                w0 = ow * g.sw - g.pw
                w1 = w0 + g.kw
                w0 = w0 if w0 > 0 else 0
                w1 = w1 if w1 < g.W else g.W
                total = 0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        total = total + plane[ih * g.W + iw]
                y[(p * g.Ho + oh) * g.Wo + ow] = total * scale


cdef void _avg_pool_backward(const floating* dy, floating* dx, PoolGeometry* g) noexcept nogil:
    cdef Py_ssize_t p, i, oh, ow, ih, iw, h0, w0, h1, w1
    cdef floating* plane
    cdef floating share, scale = <floating>1.0 / <floating>(g.kh * g.kw)
    for i in range(g.planes * g.H * g.W):
        dx[i] = 0
    for p in range(g.planes):
        plane = dx + p * g.H * g.W
        for oh in range(g.Ho):
            h0 = oh * g.sh - g.ph
            h1 = h0 + g.kh
            h0 = h0 if h0 > 0 else 0
            h1 = h1 if h1 < g.H else g.H
            for ow in range(g.Wo):
                w0 = ow * g.sw - g.pw
                w1 = w0 + g.kw
                w0 = w0 if w0 > 0 else 0
                w1 = w1 if w1 < g.W else g.W
                share = dy[(p * g.Ho + oh) * g.Wo + ow] * scale
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        plane[ih * g.W + iw] += share


def pool_forward(bint is_max, tuple shape, cnp.ndarray x, cnp.ndarray out):
    """``out[...]`` = max (``is_max``) or average pooling of ``x``.

    Parameters
    ----------
    is_max : bool
    shape : tuple of 9 ints
        ``(planes, H, W, kh, kw, sh, sw, ph, pw)``; ``planes`` = n * C.
    x : ndarray of planes * H * W elements, C-contiguous
    out : ndarray of planes * Ho * Wo elements, C-contiguous; overwritten
    """
    cdef PoolGeometry g
    _pool_geometry(shape, &g)
    cdef int t = _float_type(x)
    _check_block(x, t, g.planes * g.H * g.W, False)
    _check_block(out, t, g.planes * g.Ho * g.Wo, True)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            if is_max:
                _max_pool_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), &g)
            else:
                _avg_pool_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), &g)
    else:
        with nogil:
            if is_max:
                _max_pool_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), &g)
            else:
                _avg_pool_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), &g)
    return out


def pool_backward(bint is_max, tuple shape, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...]`` = the gradient of ``pool_forward`` for the output gradient ``dy`` (arrays as there)."""
    cdef PoolGeometry g
    _pool_geometry(shape, &g)
    cdef int t = _float_type(x)
    _check_block(x, t, g.planes * g.H * g.W, False)
    _check_block(dy, t, g.planes * g.Ho * g.Wo, False)
    _check_block(dx, t, g.planes * g.H * g.W, True)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            if is_max:
                _max_pool_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                           <double*>cnp.PyArray_DATA(dx), &g)
            else:
                _avg_pool_backward[double](<double*>cnp.PyArray_DATA(dy), <double*>cnp.PyArray_DATA(dx), &g)
    else:
        with nogil:
            if is_max:
                _max_pool_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                          <float*>cnp.PyArray_DATA(dx), &g)
            else:
                _avg_pool_backward[float](<float*>cnp.PyArray_DATA(dy), <float*>cnp.PyArray_DATA(dx), &g)
    return dx


def max_pool_relu_backward(tuple shape, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...]`` = the gradient through a ReLU and then a 2x2, stride-2 max pooling, in one pass.

    ``x`` is the pooling's input (the ReLU's output), ``dy`` the pooling's
    output gradient; the result equals the ReLU's backward of the pooling's
    backward bit for bit. Arrays and ``shape`` as for ``pool_backward``.
    """
    cdef PoolGeometry g
    _pool_geometry(shape, &g)
    if not _halving(&g):
        raise ValueError("layerkit._core: max_pool_relu_backward takes the 2x2 pooling with stride 2 and no padding")
    cdef int t = _float_type(x)
    _check_block(x, t, g.planes * g.H * g.W, False)
    _check_block(dy, t, g.planes * g.Ho * g.Wo, False)
    _check_block(dx, t, g.planes * g.H * g.W, True)
    with nogil:
        if t == cnp.NPY_FLOAT64:
            _max_pool_relu_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                            <double*>cnp.PyArray_DATA(dx), &g)
        else:
            _max_pool_relu_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                           <float*>cnp.PyArray_DATA(dx), &g)
    return dx
