# Included by layerkit/_core.pyx: fused minibatch losses (value, gradient and
# correct count in one pass over the batch).
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
            if not (q >= 0 and q <= 1 and target >= 0 and target <= 1):  # also false for NaN
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
    cdef double total = 0, top, norm, weight = 1, scale = 1.0 / n
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
        # exp(z - max) by the vectorised kernel of softmax (elementwise.h), then summed in double
        if floating is double:
            lk_exp_shifted_d(row, grow, k, top)
        else:
            lk_exp_shifted_f(row, grow, k, top)
        norm = 0
        for j in range(k):
            norm += grow[j]
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
    loss into ``grad``; ``None`` when a prediction or a target is outside [0, 1] or NaN,
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
