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
from libc.math cimport exp, expf, fabs
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy

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
    if (cnp.PyArray_NDIM(v) != 1 or cnp.PyArray_TYPE(v) != typenum
            or cnp.PyArray_DIM(v, 0) != n or not cnp.PyArray_IS_C_CONTIGUOUS(v)):
        raise ValueError("layerkit._core: bias vector has the wrong dtype, length or layout")
    if writeable and not cnp.PyArray_ISWRITEABLE(v):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


cdef inline int _check_same(cnp.ndarray a, cnp.ndarray b, bint writeable) except -1:
    """``b`` must be a C-contiguous array of ``a``'s dtype and shape (``a`` C-contiguous too)."""
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b):
        raise ValueError("layerkit._core: arrays of one call must share one dtype")
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
    # never exponentiates a positive number, so it cannot overflow
    cdef floating e
    if floating is float:
        if v >= 0:
            return 1.0 / (1.0 + expf(-v))
        e = expf(v)
        return e / (1.0 + e)
    else:
        if v >= 0:
            return 1.0 / (1.0 + exp(-v))
        e = exp(v)
        return e / (1.0 + e)


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


cdef void _relu_forward(floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = x[i] if x[i] > 0 else 0


cdef void _relu_backward(floating* x, floating* dy, floating* dx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] = dy[i] if x[i] > 0 else 0


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


cdef object _unary(int kind, cnp.ndarray x, cnp.ndarray out):
    cdef int t = _float_type(x)
    _check_same(x, out, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t rows, cols
    if kind == SOFTMAX:
        if cnp.PyArray_NDIM(x) != 2:
            raise ValueError("layerkit._core: softmax expects a 2-D array")
        rows = cnp.PyArray_DIM(x, 0)
        cols = cnp.PyArray_DIM(x, 1)
        if cols == 0:
            return out
    if t == cnp.NPY_FLOAT64:
        with nogil:
            if kind == SIGMOID:
                _sigmoid_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n)
            elif kind == RELU:
                _relu_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n)
            else:
                _softmax_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), rows, cols)
    else:
        with nogil:
            if kind == SIGMOID:
                _sigmoid_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n)
            elif kind == RELU:
                _relu_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n)
            else:
                _softmax_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), rows, cols)
    return out


cdef object _unary_backward(int kind, cnp.ndarray x, cnp.ndarray dy, cnp.ndarray dx):
    cdef int t = _float_type(x)
    _check_same(x, dy, False)
    _check_same(x, dx, True)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t rows, cols
    if kind == SOFTMAX:
        if cnp.PyArray_NDIM(x) != 2:
            raise ValueError("layerkit._core: softmax expects a 2-D array")
        rows = cnp.PyArray_DIM(x, 0)
        cols = cnp.PyArray_DIM(x, 1)
        if cols == 0:
            return dx
    if t == cnp.NPY_FLOAT64:
        with nogil:
            if kind == SIGMOID:
                _sigmoid_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                          <double*>cnp.PyArray_DATA(dx), n)
            elif kind == RELU:
                _relu_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                       <double*>cnp.PyArray_DATA(dx), n)
            else:
                _softmax_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(dy),
                                          <double*>cnp.PyArray_DATA(dx), rows, cols)
    else:
        with nogil:
            if kind == SIGMOID:
                _sigmoid_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                         <float*>cnp.PyArray_DATA(dx), n)
            elif kind == RELU:
                _relu_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
                                      <float*>cnp.PyArray_DATA(dx), n)
            else:
                _softmax_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(dy),
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
