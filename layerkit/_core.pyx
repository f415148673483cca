# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Typed kernels for layerkit's dense hot path.

This module holds arithmetic only: no validation messages, no registry, no
policy. Callers (``layerkit._validation`` and the layers) hand it NumPy arrays
that are already of one floating dtype (float32 or float64) and of matching
shapes; each kernel re-checks the few facts that guard memory safety (dtype,
shapes, layout) with C comparisons and raises a plain ``ValueError`` if a caller
broke the contract, so that a bug above never becomes a read past a buffer.

Layout: 2-D operands of the matrix products may be C-contiguous or
Fortran-contiguous; a Fortran array is passed to BLAS as the transpose of its
C-ordered storage, so it is never copied. Element-wise kernels need
C-contiguous arrays. Outputs are always C-contiguous and supplied by the
caller, so that a training loop can reuse them between steps.

All matrix products go through ``scipy.linalg.cython_blas`` (``sgemm`` and
``dgemm``) with the GIL released.
"""

cimport numpy as cnp
from cython cimport floating
from libc.math cimport exp, expf, fabs, fabsf, log, log1p
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cnp.import_array()


# ---------------------------------------------------------------------------
# Operand description for BLAS
# ---------------------------------------------------------------------------

cdef struct Operand:
    char* data
    int rows      # logical rows (row-major view the caller means)
    int cols      # logical columns
    int ld        # leading dimension of the storage
    char trans    # b'N': stored C-ordered as is; b'T': stored as the transpose


cdef inline int _describe(cnp.ndarray a, int typenum, Operand* op) except -1:
    """Fill ``op`` for a 2-D array of dtype ``typenum`` that is C- or F-contiguous."""
    if cnp.PyArray_NDIM(a) != 2:
        raise ValueError("layerkit._core: expected a 2-D array")
    if cnp.PyArray_TYPE(a) != typenum:
        raise ValueError("layerkit._core: arrays of one call must share one dtype")
    if not cnp.PyArray_ISNOTSWAPPED(a):
        raise ValueError("layerkit._core: expected an array in native byte order")
    cdef cnp.npy_intp r = cnp.PyArray_DIM(a, 0)
    cdef cnp.npy_intp c = cnp.PyArray_DIM(a, 1)
    if r > 2147483647 or c > 2147483647:
        raise ValueError("layerkit._core: dimension too large for BLAS")
    op.data = cnp.PyArray_BYTES(a)
    op.rows = <int>r
    op.cols = <int>c
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        op.trans = b'N'
        op.ld = <int>c if c > 1 else 1
    elif cnp.PyArray_IS_F_CONTIGUOUS(a):
        op.trans = b'T'
        op.ld = <int>r if r > 1 else 1
    else:
        raise ValueError("layerkit._core: expected a C- or Fortran-contiguous array")
    return 0


cdef inline int _describe_output(cnp.ndarray a, int typenum, int rows, int cols, Operand* op) except -1:
    _describe(a, typenum, op)
    if op.trans != b'N' or op.rows != rows or op.cols != cols:
        raise ValueError("layerkit._core: output buffer has the wrong shape or is not C-contiguous")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


cdef inline void _rm_gemm(char ta, char tb, int M, int N, int K, floating alpha,
                          floating* A, int lda, floating* B, int ldb,
                          floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major ``C = alpha * op(A) @ op(B) + beta * C`` through column-major BLAS.

    A row-major matrix is the column-major storage of its transpose, so the
    product is computed as ``C.T = op(B).T @ op(A).T``.
    """
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc)


cdef inline int _float_type(cnp.ndarray a) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise ValueError("layerkit._core: expected float32 or float64 arrays")
    return t


cdef inline int _check_vector(cnp.ndarray v, int typenum, int n, bint writeable) except -1:
    if (cnp.PyArray_NDIM(v) != 1 or cnp.PyArray_TYPE(v) != typenum or not cnp.PyArray_ISNOTSWAPPED(v)
            or cnp.PyArray_DIM(v, 0) != n or not cnp.PyArray_IS_C_CONTIGUOUS(v)):
        raise ValueError("layerkit._core: bias or weight vector has the wrong dtype, byte order, length or layout")
    if writeable and not cnp.PyArray_ISWRITEABLE(v):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


cdef inline int _check_same(cnp.ndarray a, cnp.ndarray b, bint writeable) except -1:
    """``b`` must be a C-contiguous array of ``a``'s dtype and shape (``a`` C-contiguous too)."""
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b):
        raise ValueError("layerkit._core: arrays of one call must share one dtype")
    if not cnp.PyArray_ISNOTSWAPPED(a) or not cnp.PyArray_ISNOTSWAPPED(b):
        raise ValueError("layerkit._core: expected arrays in native byte order")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_IS_C_CONTIGUOUS(b):
        raise ValueError("layerkit._core: element-wise kernels need C-contiguous arrays")
    if cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        raise ValueError("layerkit._core: arrays of one call must share one shape")
    cdef int i
    for i in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, i) != cnp.PyArray_DIM(b, i):
            raise ValueError("layerkit._core: arrays of one call must share one shape")
    if writeable and not cnp.PyArray_ISWRITEABLE(b):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


# ---------------------------------------------------------------------------
# Dense layer
# ---------------------------------------------------------------------------

cdef void _bias_rows(floating* out, floating* b, Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating* row
    for i in range(n):
        row = out + i * m
        for j in range(m):
            row[j] = b[j]


cdef void _column_sums(floating* out, floating* a, Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating* row
    for j in range(m):
        out[j] = 0
    for i in range(n):
        row = a + i * m
        for j in range(m):
            out[j] += row[j]


def dense_forward(cnp.ndarray x, cnp.ndarray W, cnp.ndarray b, cnp.ndarray out):
    """``out[...] = x @ W + b``.

    Parameters
    ----------
    x : ndarray, shape (n, n_in)
        C- or Fortran-contiguous.
    W : ndarray, shape (n_in, n_out)
        C- or Fortran-contiguous, same dtype as ``x``.
    b : ndarray, shape (n_out,)
    out : ndarray, shape (n, n_out)
        C-contiguous; overwritten.
    """
    cdef int t = _float_type(x)
    cdef Operand ox, ow, oo
    _describe(x, t, &ox)
    _describe(W, t, &ow)
    if ow.rows != ox.cols:
        raise ValueError("layerkit._core: x and W do not chain")
    _describe_output(out, t, ox.rows, ow.cols, &oo)
    _check_vector(b, t, ow.cols, False)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _dense_forward[double](&ox, &ow, <double*>cnp.PyArray_DATA(b), &oo)
    else:
        with nogil:
            _dense_forward[float](&ox, &ow, <float*>cnp.PyArray_DATA(b), &oo)
    return out


cdef void _dense_forward(Operand* x, Operand* W, floating* b, Operand* out) noexcept nogil:
    cdef floating* o = <floating*>out.data
    _bias_rows(o, b, out.rows, out.cols)
    if out.rows == 0 or out.cols == 0:
        return
    if x.cols == 0:
        return
    _rm_gemm[floating](x.trans, W.trans, out.rows, out.cols, x.cols, 1,
                       <floating*>x.data, x.ld, <floating*>W.data, W.ld,
                       1, o, out.ld)


def dense_backward(cnp.ndarray x, cnp.ndarray W, cnp.ndarray dy,
                   cnp.ndarray dW, cnp.ndarray db, dx=None):
    """Gradients of ``y = x @ W + b``.

    Writes ``dW[...] = x.T @ dy``, ``db[...] = dy.sum(0)`` and, when ``dx`` is
    an array, ``dx[...] = dy @ W.T``. Pass ``dx=None`` to skip the input
    gradient (the first layer of a net does not need it).

    Parameters
    ----------
    x : ndarray, shape (n, n_in)
        C- or Fortran-contiguous.
    W : ndarray, shape (n_in, n_out)
    dy : ndarray, shape (n, n_out)
        C- or Fortran-contiguous.
    dW : ndarray, shape (n_in, n_out)
        C-contiguous; overwritten.
    db : ndarray, shape (n_out,)
        Overwritten.
    dx : ndarray of shape (n, n_in), or None
        C-contiguous; overwritten.
    """
    cdef int t = _float_type(x)
    cdef Operand ox, ow, ody, odw, odx
    cdef bint want_dx = dx is not None
    _describe(x, t, &ox)
    _describe(W, t, &ow)
    _describe(dy, t, &ody)
    if ow.rows != ox.cols or ody.rows != ox.rows or ody.cols != ow.cols:
        raise ValueError("layerkit._core: x, W and dy do not chain")
    _describe_output(dW, t, ow.rows, ow.cols, &odw)
    _check_vector(db, t, ow.cols, True)
    if want_dx:
        _describe_output(<cnp.ndarray?>dx, t, ox.rows, ox.cols, &odx)
    if ody.trans != b'N':
        # the bias gradient sums rows of a C-ordered dy; a Fortran dy is rare
        # (it only comes from user code) and is summed by NumPy instead.
        (<object>db)[...] = (<object>dy).sum(axis=0)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _dense_backward[double](&ox, &ow, &ody, &odw, <double*>cnp.PyArray_DATA(db),
                                    &odx if want_dx else NULL)
    else:
        with nogil:
            _dense_backward[float](&ox, &ow, &ody, &odw, <float*>cnp.PyArray_DATA(db),
                                   &odx if want_dx else NULL)
    return dx


cdef void _dense_backward(Operand* x, Operand* W, Operand* dy, Operand* dW,
                          floating* db, Operand* dx) noexcept nogil:
    cdef int n = x.rows, n_in = x.cols, n_out = W.cols
    cdef char flip_x = b'T' if x.trans == b'N' else b'N'
    cdef char flip_w = b'T' if W.trans == b'N' else b'N'
    cdef Py_ssize_t i
    cdef floating* g = <floating*>dW.data
    if dy.trans == b'N':
        _column_sums(db, <floating*>dy.data, n, n_out)
    if n == 0:
        # no samples: the gradients of a sum over zero rows are zero
        for i in range(<Py_ssize_t>n_in * n_out):
            g[i] = 0
        return
    if n_in > 0 and n_out > 0:
        # dW (n_in x n_out) = x.T (n_in x n) @ dy (n x n_out)
        _rm_gemm[floating](flip_x, dy.trans, n_in, n_out, n, 1,
                           <floating*>x.data, x.ld, <floating*>dy.data, dy.ld,
                           0, g, dW.ld)
    if dx != NULL and n_in > 0:
        if n_out == 0:
            for i in range(<Py_ssize_t>n * n_in):
                (<floating*>dx.data)[i] = 0
            return
        # dx (n x n_in) = dy (n x n_out) @ W.T (n_out x n_in)
        _rm_gemm[floating](dy.trans, flip_w, n, n_in, n_out, 1,
                           <floating*>dy.data, dy.ld, <floating*>W.data, W.ld,
                           0, <floating*>dx.data, dx.ld)


def axpy(double alpha, cnp.ndarray x, cnp.ndarray y):
    """In place ``y += alpha * x`` (BLAS axpy); both C-contiguous of one dtype and shape."""
    _float_type(x)
    _check_same(x, y, True)
    cdef cnp.npy_intp size = cnp.PyArray_SIZE(x)
    if size > 2147483647:
        raise ValueError("layerkit._core: array too large for BLAS")
    cdef int n = <int>size, one = 1
    cdef float fa = <float>alpha
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT64:
        with nogil:
            daxpy(&n, &alpha, <double*>cnp.PyArray_DATA(x), &one, <double*>cnp.PyArray_DATA(y), &one)
    else:
        with nogil:
            saxpy(&n, &fa, <float*>cnp.PyArray_DATA(x), &one, <float*>cnp.PyArray_DATA(y), &one)
    return y


# ---------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------

cdef inline floating _sigmoid(floating v) noexcept nogil:
    # exp only ever sees -|v| <= 0, so it cannot overflow; both candidates are
    # computed and one is selected, so random signs cost no mispredicted branch
    cdef floating e, r
    if floating is float:
        e = expf(-fabsf(v))
    else:
        e = exp(-fabs(v))
    r = 1 / (1 + e)
    return r if v >= 0 else e * r


cdef void _sigmoid_forward(floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = _sigmoid(x[i])


cdef void _sigmoid_backward(floating* x, floating* dy, floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating s
    for i in range(n):
        s = _sigmoid(x[i])
        dx[i] = dy[i] * s * (1 - s)


cdef extern from *:
    """
    /* ReLU loops kept out of line: inlined into the chain kernel, GCC turned
       them into a compare-and-branch per element (half mispredicted on random
       signs, 30x slower); compiled on their own they become vector max/blend. */
    #define LK_RELU(T, NAME_F, NAME_B)                                              \
    static __attribute__((noinline)) void NAME_F(const T* x, T* y, Py_ssize_t n) {   \
        for (Py_ssize_t i = 0; i < n; i++) { T v = x[i]; y[i] = v < 0 ? 0 : v; }    \
    }                                                                               \
    static __attribute__((noinline)) void NAME_B(const T* x, const T* dy, T* dx,    \
                                                 Py_ssize_t n) {                    \
        for (Py_ssize_t i = 0; i < n; i++) { T g = dy[i]; dx[i] = x[i] <= 0 ? 0 : g; } \
    }
    LK_RELU(float, lk_relu_forward_f, lk_relu_backward_f)
    LK_RELU(double, lk_relu_forward_d, lk_relu_backward_d)
    """
    void lk_relu_forward_f(const float* x, float* y, Py_ssize_t n) nogil
    void lk_relu_backward_f(const float* x, const float* dy, float* dx, Py_ssize_t n) nogil
    void lk_relu_forward_d(const double* x, double* y, Py_ssize_t n) nogil
    void lk_relu_backward_d(const double* x, const double* dy, double* dx, Py_ssize_t n) nogil


cdef inline void _relu_forward(floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    if floating is float:
        lk_relu_forward_f(x, y, n)
    else:
        lk_relu_forward_d(x, y, n)


cdef inline void _relu_backward(floating* x, floating* dy, floating* dx, Py_ssize_t n) noexcept nogil:
    if floating is float:
        lk_relu_backward_f(x, dy, dx, n)
    else:
        lk_relu_backward_d(x, dy, dx, n)


cdef void _softmax_forward(floating* x, floating* y, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating m, total
    cdef floating* xr
    cdef floating* yr
    for i in range(rows):
        xr = x + i * cols
        yr = y + i * cols
        m = xr[0]
        for j in range(1, cols):
            if xr[j] > m:
                m = xr[j]
        total = 0
        for j in range(cols):
            if floating is float:
                yr[j] = expf(xr[j] - m)
            else:
                yr[j] = exp(xr[j] - m)
            total += yr[j]
        for j in range(cols):
            yr[j] /= total


cdef void _softmax_backward(floating* x, floating* dy, floating* dx,
                            Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    # dx = y * (dy - <dy, y>) row by row, with y = softmax(x) recomputed into dx
    cdef Py_ssize_t i, j
    cdef floating dot
    cdef floating* gr
    cdef floating* yr
    _softmax_forward(x, dx, rows, cols)
    for i in range(rows):
        yr = dx + i * cols
        gr = dy + i * cols
        dot = 0
        for j in range(cols):
            dot += gr[j] * yr[j]
        for j in range(cols):
            yr[j] = yr[j] * (gr[j] - dot)


cdef enum Activation:
    SIGMOID = 0
    RELU = 1
    SOFTMAX = 2


cdef int _rows_cols(int kind, cnp.ndarray x, Py_ssize_t* rows, Py_ssize_t* cols) except -1:
    # softmax works on rows of a 2-D array; the other activations on every element
    if kind == SOFTMAX:
        if cnp.PyArray_NDIM(x) != 2:
            raise ValueError("layerkit._core: softmax expects a 2-D array")
        rows[0] = cnp.PyArray_DIM(x, 0)
        cols[0] = cnp.PyArray_DIM(x, 1)
    else:
        rows[0] = cnp.PyArray_SIZE(x)
        cols[0] = 1
    return 0


cdef inline void _act_forward(int act, floating* x, floating* y, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if act == SIGMOID:
        _sigmoid_forward(x, y, rows * cols)
    elif act == RELU:
        _relu_forward(x, y, rows * cols)
    elif cols > 0:
        _softmax_forward(x, y, rows, cols)


cdef inline void _act_backward(int act, floating* x, floating* dy, floating* dx,
                               Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if act == SIGMOID:
        _sigmoid_backward(x, dy, dx, rows * cols)
    elif act == RELU:
        _relu_backward(x, dy, dx, rows * cols)
    elif cols > 0:
        _softmax_backward(x, dy, dx, rows, cols)


cdef object _unary(int kind, cnp.ndarray x, cnp.ndarray out):
    cdef int t = _float_type(x)
    _check_same(x, out, True)
    cdef Py_ssize_t rows, cols
    _rows_cols(kind, x, &rows, &cols)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _act_forward[double](kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), rows, cols)
    else:
        with nogil:
            _act_forward[float](kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), rows, cols)
    return out


cdef object _unary_backward(int kind, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    cdef int t = _float_type(x)
    _check_same(x, dy, False)
    _check_same(x, dx, True)
    cdef Py_ssize_t rows, cols
    _rows_cols(kind, x, &rows, &cols)
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _act_backward[double](kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                  <double*>cnp.PyArray_DATA(dx), rows, cols)
    else:
        with nogil:
            _act_backward[float](kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                 <float*>cnp.PyArray_DATA(dx), rows, cols)
    return dx


def sigmoid_forward(cnp.ndarray x, cnp.ndarray out):
    """``out[...] = 1 / (1 + exp(-x))`` without overflow; any shape, C-contiguous."""
    return _unary(SIGMOID, x, out)


def sigmoid_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...] = dy * s * (1 - s)`` with ``s = sigmoid(x)``; any shape, C-contiguous."""
    return _unary_backward(SIGMOID, x, dy, dx)


def relu_forward(cnp.ndarray x, cnp.ndarray out):
    """``out[...] = max(x, 0)``; any shape, C-contiguous."""
    return _unary(RELU, x, out)


def relu_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """``dx[...] = dy * (x > 0)``; any shape, C-contiguous."""
    return _unary_backward(RELU, x, dy, dx)


def softmax_forward(cnp.ndarray x, cnp.ndarray out):
    """Row-wise softmax of a 2-D C-contiguous array (the row maximum is subtracted first)."""
    return _unary(SOFTMAX, x, out)


def softmax_backward(cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    """Jacobian-vector product of the row-wise softmax: ``dx = y * (dy - sum(dy * y, 1))``."""
    return _unary_backward(SOFTMAX, x, dy, dx)


# ---------------------------------------------------------------------------
# Compiled chains of dense stages (the fast path of a whole net)
# ---------------------------------------------------------------------------
#
# A chain is a sequence of stages. A dense stage is ``z = x @ W + b`` followed
# by an optional activation ``a = act(z)``; an activation stage is ``a = act(x)``
# alone. Parameters are read, at every call, from the ``W`` and ``b``
# attributes of each dense stage's holder object, and gradients are written to
# its ``dW`` and ``db`` attributes (reusing the arrays already there when they
# fit), so that a holder's parameters may be replaced between calls. All
# operands are checked with C comparisons before the GIL is released once for
# the whole chain; a check that fails returns a "not handled" answer, never a
# wrong number, and the caller takes its general path.

DEF NO_ACT = -1

cdef struct Stage:
    int act             # NO_ACT, SIGMOID, RELU or SOFTMAX
    bint dense
    Operand x           # input (C- or F-contiguous for the first stage, C otherwise)
    Operand W
    char* b
    Operand z           # x @ W + b (dense stages)
    Operand a           # act(z) or act(x)
    Operand da          # gradient arriving at the stage's output
    Operand dz          # gradient of z (dense stage with activation)
    Operand dx          # gradient of the input (rows 0 when skipped)
    Operand dW
    char* db
    bint want_dx


cdef void _column_sums_fortran(floating* out, floating* a, Py_ssize_t n, Py_ssize_t m, Py_ssize_t ld) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating total
    for j in range(m):
        total = 0
        for i in range(n):
            total = total + a[j * ld + i]
        out[j] = total


cdef void _chain_forward(Stage* st, int k, floating* dtype_tag) noexcept nogil:
    # ``dtype_tag`` only selects the specialisation (pass a NULL of the type)
    cdef int s
    for s in range(k):
        if st[s].dense:
            _dense_forward[floating](&st[s].x, &st[s].W, <floating*>st[s].b, &st[s].z)
            if st[s].act != NO_ACT:
                _act_forward[floating](st[s].act, <floating*>st[s].z.data, <floating*>st[s].a.data,
                                       st[s].z.rows, st[s].z.cols)
        else:
            _act_forward[floating](st[s].act, <floating*>st[s].x.data, <floating*>st[s].a.data,
                                   st[s].x.rows, st[s].x.cols)


cdef void _chain_backward(Stage* st, int k, floating* dtype_tag) noexcept nogil:
    cdef int s
    cdef Operand* g
    for s in range(k - 1, -1, -1):
        if not st[s].dense:
            if st[s].want_dx:
                _act_backward[floating](st[s].act, <floating*>st[s].x.data, <floating*>st[s].da.data,
                                        <floating*>st[s].dx.data, st[s].x.rows, st[s].x.cols)
            continue
        g = &st[s].da
        if st[s].act != NO_ACT:
            _act_backward[floating](st[s].act, <floating*>st[s].z.data, <floating*>st[s].da.data,
                                    <floating*>st[s].dz.data, st[s].z.rows, st[s].z.cols)
            g = &st[s].dz
        if g.trans != b'N':
            _column_sums_fortran(<floating*>st[s].db, <floating*>g.data, g.rows, g.cols, g.ld)
        _dense_backward[floating](&st[s].x, &st[s].W, g, &st[s].dW, <floating*>st[s].db,
                                  &st[s].dx if st[s].want_dx else NULL)


cdef inline bint _fits(object a, int typenum, cnp.npy_intp rows, cnp.npy_intp cols, bint allow_f, bint writeable):
    """``a`` is an ndarray of dtype ``typenum`` and shape (rows, cols), C- (or F-) contiguous."""
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_NDIM(arr) != 2 or cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr)
            or cnp.PyArray_DIM(arr, 0) != rows or cnp.PyArray_DIM(arr, 1) != cols):
        return False
    if writeable and not cnp.PyArray_ISWRITEABLE(arr):
        return False
    if cnp.PyArray_IS_C_CONTIGUOUS(arr):
        return True
    return allow_f and cnp.PyArray_IS_F_CONTIGUOUS(arr)


cdef inline bint _fits_vector(object v, int typenum, cnp.npy_intp n, bint writeable):
    if type(v) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>v
    return (cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_ISNOTSWAPPED(arr)
            and cnp.PyArray_DIM(arr, 0) == n
            and cnp.PyArray_IS_C_CONTIGUOUS(arr) and (not writeable or cnp.PyArray_ISWRITEABLE(arr)))


cdef inline cnp.ndarray _empty2(cnp.npy_intp rows, cnp.npy_intp cols, int typenum):
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef inline void _fill(Operand* op, object a) noexcept:
    # ``a`` already passed ``_fits``: a 2-D C- or F-contiguous array
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef cnp.npy_intp r = cnp.PyArray_DIM(arr, 0), c = cnp.PyArray_DIM(arr, 1)
    op.data = cnp.PyArray_BYTES(arr)
    op.rows = <int>r
    op.cols = <int>c
    if cnp.PyArray_IS_C_CONTIGUOUS(arr):
        op.trans = b'N'
        op.ld = <int>c if c > 1 else 1
    else:
        op.trans = b'T'
        op.ld = <int>r if r > 1 else 1


# the attribute names of a dense stage's holder
cdef str _W = "W", _B = "b", _DW = "dW", _DB = "db"


cdef class DenseChain:
    """A compiled chain of dense and activation stages of one dtype.

    Parameters
    ----------
    holders : list
        One entry per stage: an object with array attributes ``W`` (n_in, n_out)
        and ``b`` (n_out,) for a dense stage, ``None`` for an activation stage.
    acts : list of int
        One entry per stage: ``ACT_NONE``, ``ACT_SIGMOID``, ``ACT_RELU`` or
        ``ACT_SOFTMAX``; an activation stage needs an activation.
    widths : list of int
        ``k + 1`` feature counts: the chain's input and each stage's output.
    dtype : numpy dtype
        float32 or float64.
    act_params : list of (float, float), optional
        One pair per stage: the numeric parameters of its activation (a leaky
        ReLU's slope, an ELU's alpha, ...); ``(0, 0)`` where unused.

    Notes
    -----
    ``forward`` and ``backward`` take the per-stage buffers from ``buffers``
    (``make_buffers(n)``) when given, else allocate them, so a chain keeps no
    per-call state and may run several forwards before their backwards.
    The arrays a backward needs are the ones ``forward`` listed in ``saved``:
    per stage, its input, then ``z`` for a dense stage with an activation.
    """

    cdef readonly int n_stages
    cdef readonly int typenum
    cdef list holders
    cdef int* acts
    cdef double* act_params
    cdef cnp.npy_intp* widths

    def __cinit__(self, list holders, list acts, list widths, dtype, act_params=None):
        cdef int k = len(holders), s
        if k == 0 or len(acts) != k or len(widths) != k + 1:
            raise ValueError("layerkit._core: DenseChain needs k holders, k activations and k + 1 widths")
        self.typenum = cnp.dtype(dtype).num
        if self.typenum != cnp.NPY_FLOAT32 and self.typenum != cnp.NPY_FLOAT64:
            raise ValueError("layerkit._core: expected float32 or float64")
        self.n_stages = k
        self.holders = list(holders)
        self.acts = <int*>PyMem_Malloc(k * sizeof(int))
        self.widths = <cnp.npy_intp*>PyMem_Malloc((k + 1) * sizeof(cnp.npy_intp))
        self.act_params = <double*>PyMem_Malloc(2 * k * sizeof(double))
        if self.acts == NULL or self.widths == NULL or self.act_params == NULL:
            raise MemoryError()
        if act_params is not None and len(act_params) != k:
            raise ValueError("layerkit._core: DenseChain needs one (p0, p1) pair per stage")
        for s in range(k):
            pair = (0.0, 0.0) if act_params is None else act_params[s]
            self.act_params[2 * s] = pair[0]
            self.act_params[2 * s + 1] = pair[1]
        for s in range(k + 1):
            self.widths[s] = widths[s]
            if self.widths[s] < 0:
                raise ValueError("layerkit._core: widths must be >= 0")
        for s in range(k):
            self.acts[s] = acts[s]
            if self.acts[s] not in (NO_ACT, SIGMOID, RELU, SOFTMAX):
                raise ValueError("layerkit._core: unknown activation code")
            if holders[s] is None:
                if self.acts[s] == NO_ACT or self.widths[s] != self.widths[s + 1]:
                    raise ValueError("layerkit._core: an activation stage needs an activation and keeps its width")

    def __dealloc__(self):
        PyMem_Free(self.acts)
        PyMem_Free(self.act_params)
        PyMem_Free(self.widths)

    def make_buffers(self, Py_ssize_t n):
        """Per-stage buffers for batches of ``n`` rows: a list of ``[z, a, dz, dx]`` (``None`` where unused)."""
        cdef int s
        cdef list out = []
        cdef bint dense
        for s in range(self.n_stages):
            dense = self.holders[s] is not None
            out.append([
                _empty2(n, self.widths[s + 1], self.typenum) if dense else None,
                _empty2(n, self.widths[s + 1], self.typenum) if self.acts[s] != NO_ACT else None,
                _empty2(n, self.widths[s + 1], self.typenum) if dense and self.acts[s] != NO_ACT else None,
                _empty2(n, self.widths[s], self.typenum),
            ])
        return out

    cdef bint _buffers_fit(self, list buffers, cnp.npy_intp n):
        cdef int s
        cdef list row
        if len(buffers) != self.n_stages:
            return False
        for s in range(self.n_stages):
            row = <list?>buffers[s]
            if len(row) != 4:
                return False
            if self.holders[s] is not None and not _fits(row[0], self.typenum, n, self.widths[s + 1], False, True):
                return False
            if self.acts[s] != NO_ACT and not _fits(row[1], self.typenum, n, self.widths[s + 1], False, True):
                return False
            if (self.holders[s] is not None and self.acts[s] != NO_ACT
                    and not _fits(row[2], self.typenum, n, self.widths[s + 1], False, True)):
                return False
            if not _fits(row[3], self.typenum, n, self.widths[s], False, True):
                return False
        return True

    def bad_params(self):
        """Index of the first dense stage whose ``W`` or ``b`` the kernels cannot use as is, or -1."""
        cdef int s
        for s in range(self.n_stages):
            holder = self.holders[s]
            if holder is None:
                continue
            if not _fits(getattr(holder, _W), self.typenum, self.widths[s], self.widths[s + 1], True, False):
                return s
            if not _fits_vector(getattr(holder, _B), self.typenum, self.widths[s + 1], False):
                return s
        return -1

    def forward(self, x, buffers=None):
        """Run the chain.

        Parameters
        ----------
        x : ndarray, shape (n, widths[0])
            The chain's dtype, C- or Fortran-contiguous.
        buffers : list, optional
            From ``make_buffers(n)``; fresh arrays are allocated when ``None``.

        Returns
        -------
        (y, saved) or None
            ``y`` of shape (n, widths[-1]) and the list of arrays a backward
            needs (see the class notes); ``None`` when ``x``, ``buffers`` or a
            holder's parameters do not fit (nothing is computed then).
        """
        cdef int s, k = self.n_stages, t = self.typenum
        cdef cnp.npy_intp n
        cdef list row, saved
        cdef Stage* st
        if not _fits(x, t, -1 if type(x) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>x) != 2
                     else cnp.PyArray_DIM(<cnp.ndarray>x, 0), self.widths[0], True, False):
            return None
        n = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        if n > 2147483647 or self.bad_params() != -1:
            return None
        if buffers is not None and not self._buffers_fit(buffers, n):
            return None
        if buffers is None:
            buffers = []
            for s in range(k):
                buffers.append([_empty2(n, self.widths[s + 1], t) if self.holders[s] is not None else None,
                                _empty2(n, self.widths[s + 1], t) if self.acts[s] != NO_ACT else None])
        saved = []
        keep = []
        current = x
        st = <Stage*>PyMem_Malloc(k * sizeof(Stage))  # per call: threads may share a chain
        if st == NULL:
            raise MemoryError()
        try:
            for s in range(k):
                row = <list>buffers[s]
                holder = self.holders[s]
                st[s].act = self.acts[s]
                st[s].dense = holder is not None
                _fill(&st[s].x, current)
                saved.append(current)
                if st[s].dense:
                    # hold the very arrays that were checked until the kernels are done
                    W = getattr(holder, _W)
                    b = getattr(holder, _B)
                    if not (_fits(W, t, self.widths[s], self.widths[s + 1], True, False)
                            and _fits_vector(b, t, self.widths[s + 1], False)):
                        return None
                    keep.append(W)
                    keep.append(b)
                    _fill(&st[s].W, W)
                    st[s].b = cnp.PyArray_BYTES(<cnp.ndarray>b)
                    _fill(&st[s].z, row[0])
                    current = row[0]
                    if st[s].act != NO_ACT:
                        saved.append(current)
                if st[s].act != NO_ACT:
                    _fill(&st[s].a, row[1])
                    current = row[1]
            if t == cnp.NPY_FLOAT64:
                with nogil:
                    _chain_forward(st, k, <double*>NULL)
            else:
                with nogil:
                    _chain_forward(st, k, <float*>NULL)
        finally:
            PyMem_Free(st)
        return current, saved

    def backward(self, list saved, dy, buffers=None, bint need_dx=True):
        """Gradients of the chain, from the arrays ``forward`` saved.

        Writes each dense holder's ``dW`` and ``db`` (into the arrays already
        there when they are writeable, C-contiguous and of the right shape and
        dtype; else into new arrays set as the attributes).

        Parameters
        ----------
        saved : list of ndarray
            As returned by ``forward``.
        dy : ndarray, shape (n, widths[-1])
            C-contiguous (Fortran-contiguous too when the last stage is dense
            without an activation).
        buffers : list, optional
            From ``make_buffers(n)``.
        need_dx : bool
            Compute the gradient of the chain's input.

        Returns
        -------
        dx or None, or NotImplemented
            The input gradient (``None`` when not needed); ``NotImplemented``
            when an operand does not fit (nothing is computed then).
        """
        cdef int s, i, k = self.n_stages, t = self.typenum
        cdef cnp.npy_intp n
        cdef list row
        cdef Stage* st
        cdef bint last_dense = self.holders[k - 1] is not None and self.acts[k - 1] == NO_ACT
        cdef bint has_act
        if not saved or type(saved[0]) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>saved[0]) != 2:
            return NotImplemented
        n = cnp.PyArray_DIM(<cnp.ndarray>saved[0], 0)
        if not _fits(dy, t, n, self.widths[k], last_dense, False) or self.bad_params() != -1:
            return NotImplemented
        if buffers is not None and not self._buffers_fit(buffers, n):
            return NotImplemented
        # check every saved array before touching anything
        i = 0
        for s in range(k):
            dense = self.holders[s] is not None
            has_act = self.acts[s] != NO_ACT
            if i >= len(saved) or not _fits(saved[i], t, n, self.widths[s], s == 0, False):
                return NotImplemented
            i += 1
            if dense and has_act:
                if i >= len(saved) or not _fits(saved[i], t, n, self.widths[s + 1], False, False):
                    return NotImplemented
                i += 1
        if i != len(saved):
            return NotImplemented
        if buffers is None:
            buffers = []
            for s in range(k):
                buffers.append([None, None,
                                _empty2(n, self.widths[s + 1], t)
                                if self.holders[s] is not None and self.acts[s] != NO_ACT else None,
                                _empty2(n, self.widths[s], t) if s > 0 or need_dx else None])
        i = 0
        keep = []
        st = <Stage*>PyMem_Malloc(k * sizeof(Stage))  # per call: threads may share a chain
        if st == NULL:
            raise MemoryError()
        try:
            for s in range(k):
                row = <list>buffers[s]
                holder = self.holders[s]
                st[s].act = self.acts[s]
                st[s].dense = holder is not None
                st[s].want_dx = s > 0 or need_dx
                _fill(&st[s].x, saved[i])
                i += 1
                if st[s].want_dx:
                    _fill(&st[s].dx, row[3])
                if st[s].dense:
                    if st[s].act != NO_ACT:
                        _fill(&st[s].z, saved[i])
                        i += 1
                        _fill(&st[s].dz, row[2])
                    W = getattr(holder, _W)
                    if not _fits(W, t, self.widths[s], self.widths[s + 1], True, False):
                        return NotImplemented
                    keep.append(W)
                    _fill(&st[s].W, W)
                    grad = getattr(holder, _DW, None)
                    if not _fits(grad, t, self.widths[s], self.widths[s + 1], False, True):
                        grad = _empty2(self.widths[s], self.widths[s + 1], t)
                        setattr(holder, _DW, grad)
                    keep.append(grad)
                    _fill(&st[s].dW, grad)
                    grad = getattr(holder, _DB, None)
                    if not _fits_vector(grad, t, self.widths[s + 1], True):
                        grad = cnp.PyArray_EMPTY(1, &self.widths[s + 1], t, 0)
                        setattr(holder, _DB, grad)
                    keep.append(grad)
                    st[s].db = cnp.PyArray_BYTES(<cnp.ndarray>grad)
            _fill(&st[k - 1].da, dy)
            for s in range(k - 1):
                st[s].da = st[s + 1].dx
            if t == cnp.NPY_FLOAT64:
                with nogil:
                    _chain_backward(st, k, <double*>NULL)
            else:
                with nogil:
                    _chain_backward(st, k, <float*>NULL)
        finally:
            PyMem_Free(st)
        return (<list>buffers[0])[3] if need_dx else None

    def sgd(self, double rate):
        """``p -= rate * dp`` for every ``W``, ``b`` of the chain; ``False`` (and no update) if any pair does not fit."""
        cdef int s, t = self.typenum
        cdef int m, one = 1
        cdef float frate = <float>(-rate)
        cdef double drate = -rate
        for s in range(self.n_stages):
            holder = self.holders[s]
            if holder is None:
                continue
            if not (_fits(getattr(holder, _W), t, self.widths[s], self.widths[s + 1], False, True)
                    and _fits(getattr(holder, _DW, None), t, self.widths[s], self.widths[s + 1], False, False)
                    and _fits_vector(getattr(holder, _B), t, self.widths[s + 1], True)
                    and _fits_vector(getattr(holder, _DB, None), t, self.widths[s + 1], False)):
                return False
            if self.widths[s] * self.widths[s + 1] > 2147483647:
                return False
        for s in range(self.n_stages):
            holder = self.holders[s]
            if holder is None:
                continue
            for pname, gname in ((_W, _DW), (_B, _DB)):
                p = getattr(holder, pname)
                g = getattr(holder, gname)
                if not (type(p) is cnp.ndarray and type(g) is cnp.ndarray
                        and cnp.PyArray_TYPE(<cnp.ndarray>p) == t and cnp.PyArray_TYPE(<cnp.ndarray>g) == t
                        and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>p) and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>g)
                        and cnp.PyArray_SIZE(<cnp.ndarray>p) == cnp.PyArray_SIZE(<cnp.ndarray>g)
                        and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>p)
                        and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>g)
                        and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>p)):
                    raise ValueError("layerkit._core: a parameter changed during the update")
                m = <int>cnp.PyArray_SIZE(<cnp.ndarray>p)
                if t == cnp.NPY_FLOAT64:
                    with nogil:
                        daxpy(&m, &drate, <double*>cnp.PyArray_DATA(<cnp.ndarray>g), &one, <double*>cnp.PyArray_DATA(<cnp.ndarray>p), &one)
                else:
                    with nogil:
                        saxpy(&m, &frate, <float*>cnp.PyArray_DATA(<cnp.ndarray>g), &one, <float*>cnp.PyArray_DATA(<cnp.ndarray>p), &one)
        return True


ACT_NONE = NO_ACT
ACT_SIGMOID = SIGMOID
ACT_RELU = RELU
ACT_SOFTMAX = SOFTMAX


# ---------------------------------------------------------------------------
# Fused losses of a minibatch: value, gradient and correct count in one pass
# ---------------------------------------------------------------------------
#
# Each returns ``(mean_loss, n_correct)`` with the gradient of the mean loss
# written into ``grad``, or ``None`` when a value needs the general path
# (a prediction outside [0, 1] or not finite, a label out of range): the
# caller then calls the loss's Python implementation, which raises the
# message that names the problem. ``weights`` is None or one weight per row.

cdef int _bce_batch(floating* p, floating* t, floating* g, floating* w, Py_ssize_t n, Py_ssize_t k,
                    double eps, double* loss, Py_ssize_t* correct) noexcept nogil:
    cdef Py_ssize_t i, j, idx
    cdef Py_ssize_t hits = 0
    cdef double total = 0, q, target, weight = 1, scale = 1.0 / (n * k)
    # the clip bounds as the dtype holds them, so float32 clips where NumPy's float32 would
    cdef double low = <floating>eps, high = <floating>(1 - eps)
    for i in range(n):
        if w != NULL:
            weight = w[i]
        for j in range(k):
            idx = i * k + j
            q = p[idx]
            target = t[idx]
            if not (q >= 0 and q <= 1):  # also false for NaN
                return 1
            if (q > 0.5) == (target > 0.5):
                hits += 1
            if q < low:
                q = low
            elif q > high:
                q = high
            total -= weight * (target * log(q) + (1 - target) * log1p(-q))
            g[idx] = <floating>(weight * ((q - target) / (q * (1 - q))) * scale)
    loss[0] = total * scale
    correct[0] = hits
    return 0


cdef int _softmax_ce_batch(floating* z, cnp.npy_int64* labels, floating* g, floating* w,
                           Py_ssize_t n, Py_ssize_t k, double* loss, Py_ssize_t* correct) noexcept nogil:
    cdef Py_ssize_t i, j, best
    cdef cnp.npy_int64 label
    cdef Py_ssize_t hits = 0
    cdef double total = 0, top, norm, e, weight = 1, scale = 1.0 / n
    cdef floating* row
    cdef floating* grow
    for i in range(n):
        row = z + i * k
        grow = g + i * k
        label = labels[i]
        if label < 0 or label >= k:
            return 1
        if w != NULL:
            weight = w[i]
        best = 0
        top = row[0]
        for j in range(k):
            if row[j] - row[j] != 0:  # NaN or infinite logit
                return 1
            if row[j] > top:
                top = row[j]
                best = j
        norm = 0
        for j in range(k):
            e = exp(row[j] - top)
            grow[j] = <floating>e
            norm += e
        total += weight * (log(norm) + top - row[label])
        for j in range(k):
            grow[j] = <floating>(weight * (grow[j] / norm - (1.0 if j == label else 0.0)) * scale)
        if best == label:
            hits += 1
    loss[0] = total * scale
    correct[0] = hits
    return 0


cdef bint _native(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, object d):
    """Every array (``d`` may be None) is in native byte order."""
    if not (cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISNOTSWAPPED(b) and cnp.PyArray_ISNOTSWAPPED(c)):
        return False
    return d is None or cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray?>d)


cdef char* _row_weights(object weights, int typenum, Py_ssize_t n) except? NULL:
    if weights is None:
        return NULL
    cdef cnp.ndarray w = <cnp.ndarray?>weights
    _check_vector(w, typenum, <int>n, False)
    return cnp.PyArray_BYTES(w)


def bce_batch(cnp.ndarray p, cnp.ndarray t, cnp.ndarray grad, weights, double eps):
    """Binary cross-entropy of probabilities ``p`` (n, k) against ``t`` (same shape and dtype).

    Returns ``(mean_loss, n_correct)`` and writes the gradient of the mean
    loss into ``grad``; ``None`` when a prediction is outside [0, 1] or NaN,
    or when an operand is not in native byte order.
    """
    cdef int typenum = _float_type(p)
    if not _native(p, t, grad, weights):
        return None  # the caller's general path converts a swapped byte order
    _check_same(p, t, False)
    _check_same(p, grad, True)
    if cnp.PyArray_NDIM(p) != 2 or cnp.PyArray_SIZE(p) == 0:
        raise ValueError("layerkit._core: bce_batch expects a non-empty 2-D batch")
    cdef Py_ssize_t n = cnp.PyArray_DIM(p, 0), k = cnp.PyArray_DIM(p, 1), correct = 0
    cdef char* w = _row_weights(weights, typenum, n)
    cdef double loss = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            status = _bce_batch[double](<double*>cnp.PyArray_DATA(p), <double*>cnp.PyArray_DATA(t),
                                        <double*>cnp.PyArray_DATA(grad), <double*>w, n, k, eps, &loss, &correct)
    else:
        with nogil:
            status = _bce_batch[float](<float*>cnp.PyArray_DATA(p), <float*>cnp.PyArray_DATA(t),
                                       <float*>cnp.PyArray_DATA(grad), <float*>w, n, k, eps, &loss, &correct)
    return None if status else (loss, correct)


def softmax_ce_batch(cnp.ndarray z, cnp.ndarray labels, cnp.ndarray grad, weights):
    """Softmax cross-entropy of logits ``z`` (n, k) against int64 ``labels`` (n,).

    Returns ``(mean_loss, n_correct)`` and writes ``(softmax(z) - onehot) / n``
    (times the row weights) into ``grad``; ``None`` when a logit is not
    finite, a label is out of range or an operand is not in native byte order.
    """
    cdef int typenum = _float_type(z)
    if not _native(z, labels, grad, weights):
        return None  # the caller's general path converts a swapped byte order
    _check_same(z, grad, True)
    if cnp.PyArray_NDIM(z) != 2 or cnp.PyArray_DIM(z, 0) == 0 or cnp.PyArray_DIM(z, 1) == 0:
        raise ValueError("layerkit._core: softmax_ce_batch expects a non-empty 2-D batch")
    cdef Py_ssize_t n = cnp.PyArray_DIM(z, 0), k = cnp.PyArray_DIM(z, 1), correct = 0
    if (cnp.PyArray_NDIM(labels) != 1 or cnp.PyArray_TYPE(labels) != cnp.NPY_INT64
            or not cnp.PyArray_ISNOTSWAPPED(labels) or cnp.PyArray_DIM(labels, 0) != n or not cnp.PyArray_IS_C_CONTIGUOUS(labels)):
        raise ValueError("layerkit._core: labels must be a C-contiguous int64 vector, one per row")
    cdef char* w = _row_weights(weights, typenum, n)
    cdef double loss = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            status = _softmax_ce_batch[double](<double*>cnp.PyArray_DATA(z), <cnp.npy_int64*>cnp.PyArray_DATA(labels),
                                               <double*>cnp.PyArray_DATA(grad), <double*>w, n, k, &loss, &correct)
    else:
        with nogil:
            status = _softmax_ce_batch[float](<float*>cnp.PyArray_DATA(z), <cnp.npy_int64*>cnp.PyArray_DATA(labels),
                                              <float*>cnp.PyArray_DATA(grad), <float*>w, n, k, &loss, &correct)
    return None if status else (loss, correct)
