# Included by layerkit/_core.pyx: the dense layer on scipy's Cython BLAS.
#
# Row-major operands are handed to column-major BLAS as their transposes; a
# Fortran-ordered operand is its own transpose's C storage, so it is never
# copied. Everything here runs without the GIL.

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


# Small batches: the products are split into pieces of at most PANEL_MULADDS
# multiply-adds. At 32 rows or fewer, a BLAS call spends most of its time
# packing the weight matrix rather than multiplying (OpenBLAS; its small-matrix
# kernels, which read operands in place, take products up to about 1e6
# multiply-adds). Measured single-threaded on an AVX-512 machine, with both
# OpenBLAS kernel sets (SkylakeX and Haswell), for 784x256, 512x512,
# 1024x1024 and 2048x256 weights at 8-32 rows: the forward product 1.0-4x
# faster cut along its reduction, the weight gradient mostly 1.2-2x faster
# cut into row panels (1024x1024 at 32 rows goes either way), and the input
# gradient not helped by either (it is left whole). At 48 rows and more, the
# splits lose as often as they win.
# ``benchmarks/small_batch.py`` measures both ways (``small_batch_pieces``).
cdef enum:
    SMALL_BATCH_ROWS = 32
    PANEL_MULADDS = 1000000
    PANEL_GRANULE = 16

# A piece runs on one thread, while one whole call may use several: by default
# the products are split only while the BLAS runs one thread, which the kernels
# ask its own thread-count function (found through threadpoolctl, on the first
# small product; ``layerkit/_blas_threads.py``) at every small product.
ctypedef int (*_thread_count_fn)() noexcept nogil
cdef _thread_count_fn _blas_thread_count = NULL
cdef bint _blas_probed = False
cdef int _pieces_setting = -1   # -1: while the BLAS runs one thread; 0: never; 1: always


cdef int _probe_blas_threads() except -1:
    """Find the BLAS thread-count function (once; with the GIL, before a small product)."""
    global _blas_thread_count, _blas_probed
    _blas_probed = True
    from layerkit._blas_threads import num_threads_getter
    cdef size_t address = num_threads_getter()
    if address:
        _blas_thread_count = <_thread_count_fn>address
    return 0


cdef inline int _prepare_small(Py_ssize_t rows) except -1:
    if rows <= SMALL_BATCH_ROWS and not _blas_probed:
        _probe_blas_threads()
    return 0


cdef inline bint _in_pieces(int rows) noexcept nogil:
    """Split the products of a batch of ``rows`` rows into pieces."""
    if rows > SMALL_BATCH_ROWS or _pieces_setting == 0:
        return False
    if _pieces_setting == 1:
        return True
    return _blas_thread_count != NULL and _blas_thread_count() == 1


def small_batch_pieces(setting=None):
    """How small batches' products run; returns the previous setting.

    ``None`` (the default): in pieces while the BLAS runs one thread, as one
    call otherwise; ``True``: always in pieces; ``False``: always one call.
    For ``benchmarks/small_batch.py`` and the tests.
    """
    global _pieces_setting
    previous = None if _pieces_setting == -1 else bool(_pieces_setting)
    _pieces_setting = -1 if setting is None else (1 if setting else 0)
    return previous


def small_batch_blas_threads():
    """The BLAS thread count the kernels read (``None`` when they cannot read it)."""
    _prepare_small(0)
    if _blas_thread_count == NULL:
        return None
    return _blas_thread_count()


cdef inline int _panel(double muladds_per_unit) noexcept nogil:
    """Units per piece so that a piece stays within PANEL_MULADDS (0: do not split)."""
    cdef int p = <int>(PANEL_MULADDS / muladds_per_unit)
    p = (p // PANEL_GRANULE) * PANEL_GRANULE
    return p if p >= PANEL_GRANULE else 0


cdef void _rm_gemm_reduction_slabs(char ta, char tb, int M, int N, int K, floating* A, int lda,
                                   floating* B, int ldb, floating* C, int ldc) noexcept nogil:
    """``C += op(A) @ op(B)``, summed over slabs of the reduction index (small batches)."""
    cdef int p = _panel(<double>M * N), j = 0, w
    if p == 0 or p >= K:
        _rm_gemm[floating](ta, tb, M, N, K, 1, A, lda, B, ldb, 1, C, ldc)
        return
    while j < K:
        w = p if K - j > p else K - j
        _rm_gemm[floating](ta, tb, M, N, w, 1,
                           (A + j) if ta == b'N' else (A + <Py_ssize_t>j * lda), lda,
                           (B + <Py_ssize_t>j * ldb) if tb == b'N' else (B + j), ldb,
                           1, C, ldc)
        j += w


cdef void _rm_gemm_row_panels(char ta, char tb, int M, int N, int K, floating* A, int lda,
                              floating* B, int ldb, floating* C, int ldc) noexcept nogil:
    """``C = op(A) @ op(B)``, computed in panels of C's rows (small batches)."""
    cdef int p = _panel(<double>N * K), j = 0, w
    if p == 0 or p >= M:
        _rm_gemm[floating](ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, ldc)
        return
    while j < M:
        w = p if M - j > p else M - j
        _rm_gemm[floating](ta, tb, w, N, K, 1,
                           (A + <Py_ssize_t>j * lda) if ta == b'N' else (A + j), lda, B, ldb,
                           0, C + <Py_ssize_t>j * ldc, ldc)
        j += w



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
    _prepare_small(ox.rows)
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
    if _in_pieces(out.rows):
        _rm_gemm_reduction_slabs[floating](x.trans, W.trans, out.rows, out.cols, x.cols,
                                           <floating*>x.data, x.ld, <floating*>W.data, W.ld,
                                           o, out.ld)
    else:
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
    _prepare_small(ox.rows)
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
        if _in_pieces(n):
            _rm_gemm_row_panels[floating](flip_x, dy.trans, n_in, n_out, n,
                                          <floating*>x.data, x.ld, <floating*>dy.data, dy.ld,
                                          g, dW.ld)
        else:
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



cdef void _column_sums_fortran(floating* out, floating* a, Py_ssize_t n, Py_ssize_t m, Py_ssize_t ld) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating total
    for j in range(m):
        total = 0
        for i in range(n):
            total = total + a[j * ld + i]
        out[j] = total


