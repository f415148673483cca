# Included by layerkit/_core.pyx: the checks every kernel entry makes before it
# touches memory (dtype, byte order, shape, layout, writeability), and the
# Operand description of a 2-D array that the BLAS wrappers and the chain use.
#
# Two kinds: the ``_describe``/``_check_*`` functions raise a plain ValueError
# (a caller broke the contract); ``_fits``/``_fits_vector`` answer False so the
# caller takes its general path (which converts, for instance, a big-endian
# array: type numbers do not carry the byte order, so every check also asks
# ``PyArray_ISNOTSWAPPED``).

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



def trace_inputs(trace, list layers, type entry_type):
    """The inputs ``entry[1]`` of ``trace``, or ``None`` unless it is a list of ``entry_type`` pairs holding ``layers`` in order.

    The quick check of ``Net.backward`` on every step; a ``None`` sends the
    caller to its own checks, which name what is wrong.
    """
    cdef Py_ssize_t i, n = len(layers)
    cdef list out
    if not isinstance(trace, list) or len(<list>trace) != n:
        return None
    out = []
    for i in range(n):
        entry = (<list>trace)[i]
        if type(entry) is not entry_type or len(<tuple>entry) != 2 or (<tuple>entry)[0] is not layers[i]:
            return None
        out.append((<tuple>entry)[1])
    return out
