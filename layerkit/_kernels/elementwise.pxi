# Included by layerkit/_core.pyx: element-wise activations.
#
# The loops themselves are C (``elementwise.h``, with the SIMD math of
# ``vecmath.h`` and ``erf.h``): one call per array, dispatched on the
# activation code, so the same code serves the layers (``activation_forward``)
# and the fused chain (``_act_forward`` inside ``_chain_forward``), and the two
# give bit-identical results.

cdef extern from "_kernels/elementwise.h" nogil:
    enum:
        LK_SIGMOID
        LK_RELU
        LK_SOFTMAX
        LK_TANH
        LK_LEAKY_RELU
        LK_ELU
        LK_GELU
        LK_GELU_TANH
        LK_SOFTPLUS
        LK_IDENTITY
        LK_N_ACTS
        LK_HAVE_CLONES
    void lk_act_forward_d(int act, const double* x, double* y, Py_ssize_t rows, Py_ssize_t cols,
                          double p0, double p1)
    void lk_act_forward_f(int act, const float* x, float* y, Py_ssize_t rows, Py_ssize_t cols,
                          double p0, double p1)
    void lk_act_backward_d(int act, const double* x, const double* dy, double* dx, Py_ssize_t rows,
                           Py_ssize_t cols, double p0, double p1)
    void lk_act_backward_f(int act, const float* x, const float* dy, float* dx, Py_ssize_t rows,
                           Py_ssize_t cols, double p0, double p1)
    int lk_act_backward_y_d(int act, const double* y, const double* dy, double* dx, Py_ssize_t rows,
                            Py_ssize_t cols)
    int lk_act_backward_y_f(int act, const float* y, const float* dy, float* dx, Py_ssize_t rows,
                            Py_ssize_t cols)
    void lk_map_exp_d(const double* x, double* y, Py_ssize_t n)
    void lk_map_exp_f(const float* x, float* y, Py_ssize_t n)
    void lk_map_expm1_d(const double* x, double* y, Py_ssize_t n)
    void lk_map_expm1_f(const float* x, float* y, Py_ssize_t n)
    void lk_map_log1p_d(const double* x, double* y, Py_ssize_t n)
    void lk_map_log1p_f(const float* x, float* y, Py_ssize_t n)
    void lk_map_tanh_d(const double* x, double* y, Py_ssize_t n)
    void lk_map_tanh_f(const float* x, float* y, Py_ssize_t n)
    void lk_map_erf_d(const double* x, double* y, Py_ssize_t n)
    void lk_map_erf_f(const float* x, float* y, Py_ssize_t n)
    void lk_exp_shifted_d(const double* x, double* y, Py_ssize_t n, double shift)
    void lk_exp_shifted_f(const float* x, float* y, Py_ssize_t n, double shift)


DEF NO_ACT = -1


cdef inline void _act_forward(int act, floating* x, floating* y, Py_ssize_t rows, Py_ssize_t cols,
                              double p0, double p1) noexcept nogil:
    if floating is float:
        lk_act_forward_f(act, x, y, rows, cols, p0, p1)
    else:
        lk_act_forward_d(act, x, y, rows, cols, p0, p1)


cdef inline void _act_backward(int act, floating* x, floating* dy, floating* dx,
                               Py_ssize_t rows, Py_ssize_t cols, double p0, double p1) noexcept nogil:
    if floating is float:
        lk_act_backward_f(act, x, dy, dx, rows, cols, p0, p1)
    else:
        lk_act_backward_d(act, x, dy, dx, rows, cols, p0, p1)


cdef inline void _act_backward_from(int act, floating* x, floating* y, floating* dy, floating* dx,
                                    Py_ssize_t rows, Py_ssize_t cols, double p0, double p1) noexcept nogil:
    """``_act_backward``, from the forward's output ``y`` where the activation allows (``y`` may be NULL)."""
    if y != NULL:
        if floating is float:
            if lk_act_backward_y_f(act, y, dy, dx, rows, cols):
                return
        else:
            if lk_act_backward_y_d(act, y, dy, dx, rows, cols):
                return
    _act_backward[floating](act, x, dy, dx, rows, cols, p0, p1)


cdef int _check_act(int act) except -1:
    if act < 0 or act >= LK_N_ACTS:
        raise ValueError(f"layerkit._core: unknown activation code {act}")
    return 0


cdef int _rows_cols(int kind, cnp.ndarray x, Py_ssize_t* rows, Py_ssize_t* cols) except -1:
    # softmax works on rows of a 2-D array; the other activations on every element
    if kind == LK_SOFTMAX:
        if cnp.PyArray_NDIM(x) != 2:
            raise ValueError("layerkit._core: softmax expects a 2-D array")
        rows[0] = cnp.PyArray_DIM(x, 0)
        cols[0] = cnp.PyArray_DIM(x, 1)
    else:
        rows[0] = cnp.PyArray_SIZE(x)
        cols[0] = 1
    return 0


def activation_forward(int act, cnp.ndarray x, cnp.ndarray out, double p0=0.0, double p1=0.0):
    """``out[...] = act(x)`` for activation code ``act`` with parameters ``(p0, p1)``.

    Parameters
    ----------
    act : int
        One of the ``ACT_*`` codes.
    x, out : ndarray, any shape (2-D for softmax)
        C-contiguous, one float dtype, native byte order; ``out`` writeable.
    p0, p1 : float
        The activation's parameters (see ``layerkit._fusable.chain_activation``).

    Returns
    -------
    out
    """
    _check_act(act)
    cdef int t = _float_type(x)
    _check_same(x, out, True)
    cdef Py_ssize_t rows, cols
    _rows_cols(act, x, &rows, &cols)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _act_forward[double](act, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out),
                                 rows, cols, p0, p1)
    else:
        with nogil:
            _act_forward[float](act, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out),
                                rows, cols, p0, p1)
    return out


def activation_backward(int act, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx, double p0=0.0, double p1=0.0):
    """``dx[...]``: the gradient of ``act`` at ``x`` times ``dy`` (the Jacobian-vector product for softmax).

    ``x`` is the forward's input; all three arrays C-contiguous, of one dtype
    and shape, native byte order; ``dx`` writeable.
    """
    _check_act(act)
    cdef int t = _float_type(x)
    _check_same(x, dy, False)
    _check_same(x, dx, True)
    cdef Py_ssize_t rows, cols
    _rows_cols(act, x, &rows, &cols)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _act_backward[double](act, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                  <double*>cnp.PyArray_DATA(dx), rows, cols, p0, p1)
    else:
        with nogil:
            _act_backward[float](act, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                 <float*>cnp.PyArray_DATA(dx), rows, cols, p0, p1)
    return dx


def sigmoid_forward(cnp.ndarray x, cnp.ndarray out):
    """``out[...] = 1 / (1 + exp(-x))`` without overflow; any shape, C-contiguous."""
    return activation_forward(LK_SIGMOID, x, out)


def sigmoid_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...] = dy * s * (1 - s)`` with ``s = sigmoid(x)``; any shape, C-contiguous."""
    return activation_backward(LK_SIGMOID, x, dy, dx)


def relu_forward(cnp.ndarray x, cnp.ndarray out):
    """``out[...] = max(x, 0)`` (NaN stays NaN); any shape, C-contiguous."""
    return activation_forward(LK_RELU, x, out)


def relu_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...] = dy * (x > 0)`` (``dy`` where ``x`` is NaN, as PyTorch); any shape, C-contiguous."""
    return activation_backward(LK_RELU, x, dy, dx)


def softmax_forward(cnp.ndarray x, cnp.ndarray out):
    """Row-wise softmax of a 2-D C-contiguous array (the row maximum is subtracted first)."""
    return activation_forward(LK_SOFTMAX, x, out)


def softmax_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """Jacobian-vector product of the row-wise softmax: ``dx = y * (dy - sum(dy * y, 1))``."""
    return activation_backward(LK_SOFTMAX, x, dy, dx)


def vector_math(str name, cnp.ndarray x, cnp.ndarray out):
    """``out[...] = f(x)`` with the SIMD kernel ``name`` in ``{"exp", "expm1", "log1p", "tanh", "erf"}``.

    The primitives the activations are built from, exposed for the accuracy
    tests and the benchmarks (``log1p`` is only defined for x in [0, 1]).
    """
    cdef int t = _float_type(x)
    _check_same(x, out, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int which
    if name == "exp":
        which = 0
    elif name == "expm1":
        which = 1
    elif name == "log1p":
        which = 2
    elif name == "tanh":
        which = 3
    elif name == "erf":
        which = 4
    else:
        raise ValueError(f"layerkit._core: unknown vector function {name!r}")
    cdef char* xp = cnp.PyArray_BYTES(x)
    cdef char* op = cnp.PyArray_BYTES(out)
    with nogil:
        if t == cnp.NPY_FLOAT64:
            if which == 0:
                lk_map_exp_d(<double*>xp, <double*>op, n)
            elif which == 1:
                lk_map_expm1_d(<double*>xp, <double*>op, n)
            elif which == 2:
                lk_map_log1p_d(<double*>xp, <double*>op, n)
            elif which == 3:
                lk_map_tanh_d(<double*>xp, <double*>op, n)
            else:
                lk_map_erf_d(<double*>xp, <double*>op, n)
        else:
            if which == 0:
                lk_map_exp_f(<float*>xp, <float*>op, n)
            elif which == 1:
                lk_map_expm1_f(<float*>xp, <float*>op, n)
            elif which == 2:
                lk_map_log1p_f(<float*>xp, <float*>op, n)
            elif which == 3:
                lk_map_tanh_f(<float*>xp, <float*>op, n)
            else:
                lk_map_erf_f(<float*>xp, <float*>op, n)
    return out


ACT_NONE = NO_ACT
ACT_SIGMOID = LK_SIGMOID
ACT_RELU = LK_RELU
ACT_SOFTMAX = LK_SOFTMAX
ACT_TANH = LK_TANH
ACT_LEAKY_RELU = LK_LEAKY_RELU
ACT_ELU = LK_ELU
ACT_GELU = LK_GELU
ACT_GELU_TANH = LK_GELU_TANH
ACT_SOFTPLUS = LK_SOFTPLUS
ACT_IDENTITY = LK_IDENTITY
#: True when the element-wise loops were compiled as AVX-512/AVX2/baseline clones chosen at load time
SIMD_CLONES = bool(LK_HAVE_CLONES)
