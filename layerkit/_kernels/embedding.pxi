# Included by layerkit/_core.pyx: the embedding lookup and its scatter-add.
#
# Indices are int64 (``np.intp`` on 64-bit platforms), flattened to one
# vector of ``k`` lookups; the table ``W`` is (num, d) C-contiguous. The
# layer (``layerkit/layers/embedding.py``) checks the indices' range before
# calling; the kernels re-check every index against ``num`` (a C comparison
# per lookup) and refuse the call, so a bug above never reads or writes past
# the table.

from libc.stdint cimport int64_t


cdef int _check_lookup(cnp.ndarray idx, cnp.ndarray W, int typenum, Py_ssize_t* k, Py_ssize_t* num,
                       Py_ssize_t* d) except -1:
    if (cnp.PyArray_NDIM(idx) != 1 or cnp.PyArray_TYPE(idx) != cnp.NPY_INT64
            or not cnp.PyArray_ISNOTSWAPPED(idx) or not cnp.PyArray_IS_C_CONTIGUOUS(idx)):
        raise ValueError("layerkit._core: expected a C-contiguous int64 index vector")
    if (cnp.PyArray_NDIM(W) != 2 or cnp.PyArray_TYPE(W) != typenum or not cnp.PyArray_ISNOTSWAPPED(W)
            or not cnp.PyArray_IS_C_CONTIGUOUS(W)):
        raise ValueError("layerkit._core: expected a C-contiguous (num, d) table of the call's dtype")
    k[0] = cnp.PyArray_DIM(idx, 0)
    num[0] = cnp.PyArray_DIM(W, 0)
    d[0] = cnp.PyArray_DIM(W, 1)
    return 0


cdef int _check_rows_out(cnp.ndarray out, int typenum, Py_ssize_t k, Py_ssize_t d) except -1:
    if (cnp.PyArray_NDIM(out) != 2 or cnp.PyArray_TYPE(out) != typenum or not cnp.PyArray_ISNOTSWAPPED(out)
            or not cnp.PyArray_IS_C_CONTIGUOUS(out) or cnp.PyArray_DIM(out, 0) != k
            or cnp.PyArray_DIM(out, 1) != d):
        raise ValueError("layerkit._core: expected a C-contiguous (k, d) array of the call's dtype")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


cdef bint _indices_in_range(int64_t* idx, Py_ssize_t k, Py_ssize_t num) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(k):
        if idx[i] < 0 or idx[i] >= num:
            return False
    return True


cdef void _gather_rows(int64_t* idx, Py_ssize_t k, floating* W, Py_ssize_t d, floating* out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(k):
        memcpy(out + i * d, W + idx[i] * d, d * sizeof(floating))


cdef void _scatter_add_rows(int64_t* idx, Py_ssize_t k, floating* dy, Py_ssize_t num, Py_ssize_t d,
                            floating* dW, int64_t skip) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating* row
    cdef floating* src
    for i in range(num * d):
        dW[i] = 0
    for i in range(k):
        if idx[i] == skip:
            continue
        row = dW + idx[i] * d
        src = dy + i * d
        for j in range(d):
            row[j] += src[j]


def embedding_forward(cnp.ndarray idx, cnp.ndarray W, cnp.ndarray out):
    """``out[i] = W[idx[i]]`` for an int64 vector ``idx`` (k,) and a table ``W`` (num, d); ``out`` (k, d)."""
    cdef int t = _float_type(W)
    cdef Py_ssize_t k, num, d
    _check_lookup(idx, W, t, &k, &num, &d)
    _check_rows_out(out, t, k, d)
    cdef int64_t* ip = <int64_t*>cnp.PyArray_DATA(idx)
    cdef bint ok
    with nogil:
        ok = _indices_in_range(ip, k, num)
        if ok:
            if t == cnp.NPY_FLOAT64:
                _gather_rows[double](ip, k, <double*>cnp.PyArray_DATA(W), d, <double*>cnp.PyArray_DATA(out))
            else:
                _gather_rows[float](ip, k, <float*>cnp.PyArray_DATA(W), d, <float*>cnp.PyArray_DATA(out))
    if not ok:
        raise ValueError("layerkit._core: index out of range")
    return out


def embedding_backward(cnp.ndarray idx, cnp.ndarray dy, cnp.ndarray dW, long long skip=-1):
    """``dW[...] = 0``, then ``dW[idx[i]] += dy[i]`` for every ``i`` whose index is not ``skip``.

    ``idx`` (k,) int64, ``dy`` (k, d), ``dW`` (num, d), all C-contiguous;
    repeated indices add up.
    """
    cdef int t = _float_type(dW)
    cdef Py_ssize_t k, num, d
    _check_lookup(idx, dW, t, &k, &num, &d)
    if not cnp.PyArray_ISWRITEABLE(dW):
        raise ValueError("layerkit._core: output buffer is read-only")
    if (cnp.PyArray_NDIM(dy) != 2 or cnp.PyArray_TYPE(dy) != t or not cnp.PyArray_ISNOTSWAPPED(dy)
            or not cnp.PyArray_IS_C_CONTIGUOUS(dy) or cnp.PyArray_DIM(dy, 0) != k or cnp.PyArray_DIM(dy, 1) != d):
        raise ValueError("layerkit._core: expected a C-contiguous (k, d) gradient of the table's dtype")
    cdef int64_t* ip = <int64_t*>cnp.PyArray_DATA(idx)
    cdef int64_t s = skip
    cdef bint ok
    with nogil:
        ok = _indices_in_range(ip, k, num)
        if ok:
            if t == cnp.NPY_FLOAT64:
                _scatter_add_rows[double](ip, k, <double*>cnp.PyArray_DATA(dy), num, d,
                                          <double*>cnp.PyArray_DATA(dW), s)
            else:
                _scatter_add_rows[float](ip, k, <float*>cnp.PyArray_DATA(dy), num, d,
                                         <float*>cnp.PyArray_DATA(dW), s)
    if not ok:
        raise ValueError("layerkit._core: index out of range")
    return dW
