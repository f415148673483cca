# Included by layerkit/_core.pyx: the losses, each one pass over the batch that
# checks every value and computes the mean loss, its gradient and the count of
# correct predictions.
#
# The kernels (``_bce``, ``_softmax_ce_labels``, ``_softmax_ce_rows``, ``_mse``,
# and ``_elementwise`` for the cross-entropy of logits, Huber and L1)
# return LOSS_OK and write ``loss``, ``correct`` and the gradient of the mean
# loss into ``g``; or LOSS_BAD, when a value needs the message of the Python
# implementation (a prediction or target that is NaN or infinite, outside
# [0, 1] for the cross-entropy of probabilities, a label out of range, a
# weight that is negative or not finite). ``w`` is NULL or one weight per row.
#
# The entries (``bce_loss``, ``softmax_ce_loss``, ``mse_loss``, ``elementwise_loss``) take the
# arguments as the caller has them: targets and weights of another real dtype,
# layout or byte order are converted to the predictions' dtype (as ``astype``
# converts them), a 1-D target vector stands for the single column of (n, 1)
# predictions. They return ``(mean_loss, grad, n_correct)``, or ``None`` for
# anything the kernels do not take as it is (predictions that are not a
# non-empty C-contiguous float32/float64 batch in native byte order, targets of
# another shape or kind) and for bad values: the caller's Python path then
# converts, or raises the message that names the problem.

from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.math cimport fabs, floor

cdef enum:
    LOSS_OK = 0
    LOSS_BAD = 1
    # NumPy's pairwise summation (np.add.reduce, so np.sum and np.mean, over a
    # contiguous array) unrolls by 8 below blocks of 128 elements
    PAIRWISE_UNROLL = 8
    PAIRWISE_BLOCK = 128


cdef inline bint _finite(double v) noexcept nogil:
    return v - v == 0  # false for NaN and both infinities


cdef inline bint _bad_weight(floating* w, Py_ssize_t i) noexcept nogil:
    return w != NULL and not (w[i] >= 0 and _finite(w[i]))


cdef floating _pairwise(floating* a, Py_ssize_t n) noexcept nogil:
    """``np.sum(a[:n])`` bit for bit: the sum in the order of NumPy's pairwise summation (its rounding too)."""
    cdef Py_ssize_t i, j, half
    cdef floating res
    cdef floating r[8]
    if n < PAIRWISE_UNROLL:
        res = 0
        for i in range(n):
            res += a[i]
        return res
    if n <= PAIRWISE_BLOCK:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise(a, half) + _pairwise(a + half, n - half)


cdef int _bce(floating* p, floating* t, floating* g, floating* w, Py_ssize_t n, Py_ssize_t k,
              double eps, bint numpy_gradient, double* loss, Py_ssize_t* correct) noexcept nogil:
    """Binary cross-entropy; the gradient in one of two forms, equal up to rounding.

    ``numpy_gradient``: NumPy's ``(q - t) / (q * (1 - q)) / size * w`` in the
    dtype's arithmetic, bit for bit (the direct call, as it always computed
    it); else ``w * ((q - t) / (q * (1 - q))) / size`` in double, rounded
    once to the dtype (``fit``'s minibatches, as they always computed it).
    """
    cdef Py_ssize_t i, j, idx
    cdef Py_ssize_t hits = 0
    cdef double total = 0, q, target, weight = 1, scale = 1.0 / (n * k)
    cdef floating fq, diff, spread, size = <floating>(n * k), one = 1
    # the clip bounds as the dtype holds them, so float32 clips where NumPy's float32 would
    cdef double low = <floating>eps, high = <floating>(1 - eps)
    for i in range(n):
        if w != NULL:
            if _bad_weight(w, i):
                return LOSS_BAD
            weight = w[i]
        for j in range(k):
            idx = i * k + j
            q = p[idx]
            target = t[idx]
            if not (q >= 0 and q <= 1 and target >= 0 and target <= 1):  # also false for NaN
                return LOSS_BAD
            if (q > 0.5) == (target > 0.5):
                hits += 1
            if q < low:
                q = low
            elif q > high:
                q = high
            # a hard label needs one logarithm: with q clipped inside (0, 1) both are finite and
            # non-zero, so the term dropped adds a zero and the sum is the full formula's, bit for bit
            if target == 0:
                total -= weight * log1p(-q)
            elif target == 1:
                total -= weight * log(q)
            else:
                total -= weight * (target * log(q) + (1 - target) * log1p(-q))
            if numpy_gradient:  # one operation per statement: each rounded to the dtype, as NumPy rounds
                fq = <floating>q  # the clipped prediction, exact in the dtype
                diff = fq - t[idx]
                spread = one - fq
                spread = fq * spread
                diff = diff / spread
                diff = diff / size
                if w != NULL:
                    diff = diff * w[i]
                g[idx] = diff
            else:
                g[idx] = <floating>(weight * ((q - target) / (q * (1 - q))) * scale)
    loss[0] = total * scale
    correct[0] = hits
    return LOSS_OK


cdef int _softmax_ce_labels(floating* z, cnp.npy_int64* labels, floating* g, floating* w,
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
            return LOSS_BAD
        if w != NULL:
            if _bad_weight(w, i):
                return LOSS_BAD
            weight = w[i]
        best = 0
        top = row[0]
        for j in range(k):
            if not _finite(row[j]):
                return LOSS_BAD
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
    return LOSS_OK


cdef int _softmax_ce_rows(floating* z, floating* t, floating* g, floating* w,
                          Py_ssize_t n, Py_ssize_t k, double* loss, Py_ssize_t* correct) noexcept nogil:
    """Rows of targets (one-hot or soft): ``-sum(t * log_softmax(z)) / n``.

    The gradient is ``(softmax(z) - t) / n`` when every row of ``t`` sums to 1
    (within ``8 * eps * k`` of the dtype), else ``(softmax(z) * sum(t) - t) / n``,
    the gradient of the same loss for rows of any sum.
    """
    cdef Py_ssize_t i, j, best, best_t
    cdef Py_ssize_t hits = 0
    cdef double total = 0, top, norm, log_norm, row_loss, row_sum, weight = 1, scale = 1.0 / n
    cdef double tol = 8 * (DBL_EPSILON if floating is double else FLT_EPSILON) * k
    cdef bint sum_to_one = True
    cdef floating* row
    cdef floating* trow
    cdef floating* grow
    for i in range(n * k):
        if not (_finite(z[i]) and _finite(t[i])):
            return LOSS_BAD
    for i in range(n):
        if fabs(<double>_pairwise(t + i * k, k) - 1) > tol:  # the row sum NumPy's check computes
            sum_to_one = False
            break
    for i in range(n):
        row = z + i * k
        trow = t + i * k
        grow = g + i * k
        if w != NULL:
            if _bad_weight(w, i):
                return LOSS_BAD
            weight = w[i]
        best = best_t = 0
        top = row[0]
        for j in range(k):
            if row[j] > top:
                top = row[j]
                best = j
            if trow[j] > trow[best_t]:
                best_t = j
        if floating is double:
            lk_exp_shifted_d(row, grow, k, top)
        else:
            lk_exp_shifted_f(row, grow, k, top)
        norm = 0
        for j in range(k):
            norm += grow[j]
        log_norm = log(norm)
        row_loss = 0
        for j in range(k):
            row_loss -= trow[j] * (row[j] - top - log_norm)
        total += weight * row_loss
        row_sum = 1 if sum_to_one else _pairwise(trow, k)
        for j in range(k):
            grow[j] = <floating>(weight * (grow[j] / norm * row_sum - trow[j]) * scale)
        if best == best_t:
            hits += 1
    loss[0] = total * scale
    correct[0] = hits
    return LOSS_OK


cdef int _mse(floating* y, floating* t, floating* g, floating* w, Py_ssize_t n, Py_ssize_t k,
              double* loss) noexcept nogil:
    """``mean(w * (y - t)**2)`` and its gradient ``w * (y - t) * (2 / size)``.

    The arithmetic of NumPy's formula in the dtype, summed in NumPy's order,
    so the value and the gradient are NumPy's bit for bit.
    """
    cdef Py_ssize_t i, j, idx, size = n * k
    cdef floating diff, c = <floating>(2.0 / size)
    for i in range(n):
        if _bad_weight(w, i):
            return LOSS_BAD
        for j in range(k):
            idx = i * k + j
            if not (_finite(y[idx]) and _finite(t[idx])):
                return LOSS_BAD
            diff = y[idx] - t[idx]
            g[idx] = diff * diff if w == NULL else w[i] * (diff * diff)
    # np.mean: the sum in the dtype, divided by the count (an intp: float64 arithmetic), cast back to the dtype
    loss[0] = <floating>(<double>_pairwise(g, size) / <double>size)
    for i in range(n):
        for j in range(k):
            idx = i * k + j
            g[idx] = (y[idx] - t[idx]) * c
            if w != NULL:
                g[idx] = g[idx] * w[i]
    return LOSS_OK


cdef enum:
    ELEMENTWISE_BCE_LOGITS = 0   # binary cross-entropy of logits (torch.nn.BCEWithLogitsLoss)
    ELEMENTWISE_HUBER = 1        # Huber with a threshold delta (torch.nn.HuberLoss)
    ELEMENTWISE_L1 = 2           # absolute error (torch.nn.L1Loss)

ELEMENTWISE_LOSS_BCE_LOGITS = ELEMENTWISE_BCE_LOGITS
ELEMENTWISE_LOSS_HUBER = ELEMENTWISE_HUBER
ELEMENTWISE_LOSS_L1 = ELEMENTWISE_L1


cdef int _elementwise(int kind, double param, floating* y, floating* t, floating* g, floating* w,
                      Py_ssize_t n, Py_ssize_t k, double* loss, Py_ssize_t* correct) noexcept nogil:
    """A loss that is the mean over all ``n * k`` elements of a function of ``(y, t)``, in double.

    ``ELEMENTWISE_BCE_LOGITS``: ``max(z, 0) - z t + log1p(exp(-|z|))`` of the
    logit ``z`` (never overflows), gradient ``sigmoid(z) - t``; targets in
    [0, 1]; ``correct`` counts ``(z > 0) == (t > 0.5)``.
    ``ELEMENTWISE_HUBER``: ``d**2 / 2`` for ``|d| <= param``, else
    ``param * (|d| - param / 2)``, ``d = y - t``; gradient ``clip(d, -param, param)``.
    ``ELEMENTWISE_L1``: ``|d|``, gradient ``sign(d)`` (0 at 0).
    Each element's loss and gradient are scaled by its row's weight; the
    gradient is that of the mean, rounded once to the dtype.
    """
    cdef Py_ssize_t i, j, idx
    cdef Py_ssize_t hits = 0
    cdef double total = 0, v, target, d, a, e, s, term, slope, weight = 1, scale = 1.0 / (n * k)
    for i in range(n):
        if w != NULL:
            if _bad_weight(w, i):
                return LOSS_BAD
            weight = w[i]
        for j in range(k):
            idx = i * k + j
            v = y[idx]
            target = t[idx]
            if not (_finite(v) and _finite(target)):
                return LOSS_BAD
            if kind == ELEMENTWISE_BCE_LOGITS:
                if not (target >= 0 and target <= 1):
                    return LOSS_BAD
                e = exp(-fabs(v))  # in (0, 1]: no overflow for any logit
                s = 1 / (1 + e) if v >= 0 else e / (1 + e)
                term = (v if v > 0 else 0) - v * target + log1p(e)
                slope = s - target
                if (v > 0) == (target > 0.5):
                    hits += 1
            else:
                d = v - target
                a = fabs(d)
                if kind == ELEMENTWISE_HUBER:
                    if a <= param:
                        term = 0.5 * d * d
                        slope = d
                    else:
                        term = param * (a - 0.5 * param)
                        slope = param if d > 0 else -param
                else:
                    term = a
                    slope = 1 if d > 0 else (-1 if d < 0 else 0)
            total += weight * term
            g[idx] = <floating>(weight * slope * scale)
    loss[0] = total * scale
    correct[0] = hits
    return LOSS_OK


# ----------------------------------------------------------------- operands
cdef inline bint _loss_batch(object y):
    """``y`` is a non-empty C-contiguous, aligned 2-D float32/float64 array in native byte order."""
    if type(y) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>y
    cdef int t = cnp.PyArray_TYPE(a)
    return (cnp.PyArray_NDIM(a) == 2 and (t == cnp.NPY_FLOAT64 or t == cnp.NPY_FLOAT32)
            and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_DIM(a, 0) > 0 and cnp.PyArray_DIM(a, 1) > 0)


cdef object _real_as(cnp.ndarray a, int typenum):
    """``a`` of real numbers as a C-contiguous aligned native array of ``typenum`` (converted like ``astype``), else None."""
    if not (cnp.PyArray_ISFLOAT(a) or cnp.PyArray_ISINTEGER(a) or cnp.PyArray_ISBOOL(a)):
        return None
    if (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_ISALIGNED(a)):
        return a
    return cnp.PyArray_FROMANY(a, typenum, 0, 0,
                               cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_FORCECAST)


cdef object _target_rows(object t, int typenum, cnp.npy_intp n, cnp.npy_intp k):
    """Targets of shape (n, k), or (n,) for k == 1, as a C-contiguous array of ``typenum``; None otherwise."""
    if type(t) is not cnp.ndarray:
        return None
    cdef cnp.ndarray a = <cnp.ndarray>t
    cdef int nd = cnp.PyArray_NDIM(a)
    if nd == 2 and cnp.PyArray_DIM(a, 0) == n and cnp.PyArray_DIM(a, 1) == k:
        return _real_as(a, typenum)
    if nd == 1 and k == 1 and cnp.PyArray_DIM(a, 0) == n:
        return _real_as(a, typenum)
    return None


cdef object _row_weights(object weights, int typenum, cnp.npy_intp n):
    """Weights of shape (n,) as a C-contiguous array of ``typenum``; None otherwise."""
    if type(weights) is not cnp.ndarray:
        return None
    cdef cnp.ndarray a = <cnp.ndarray>weights
    if cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_DIM(a, 0) != n:
        return None
    return _real_as(a, typenum)


cdef object _labels(object t, cnp.npy_intp n, cnp.npy_intp k):
    """1-D class labels (integers, or floats of integral value) in [0, k) as int64; None otherwise."""
    if type(t) is not cnp.ndarray:
        return None
    cdef cnp.ndarray a = <cnp.ndarray>t
    cdef cnp.ndarray values
    cdef double* v
    cdef Py_ssize_t i
    if cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_DIM(a, 0) != n:
        return None
    if cnp.PyArray_ISINTEGER(a):
        return _real_as(a, cnp.NPY_INT64)
    if not cnp.PyArray_ISFLOAT(a):
        return None
    values = <cnp.ndarray>_real_as(a, cnp.NPY_FLOAT64)
    v = <double*>cnp.PyArray_DATA(values)
    for i in range(n):
        if not (v[i] >= 0 and v[i] < k and v[i] == floor(v[i])):  # also false for NaN
            return None
    return _real_as(values, cnp.NPY_INT64)


cdef cnp.ndarray _grad_for(object grad, int typenum, cnp.npy_intp n, cnp.npy_intp k):
    """``grad`` when it is a writeable C-contiguous (n, k) array of ``typenum``, else a new one."""
    if grad is not None and _fits(grad, typenum, n, k, False, True):
        return <cnp.ndarray>grad
    return _empty2(n, k, typenum)


# ----------------------------------------------------------------- entries
def bce_loss(double eps_float32, double eps_float64, bint numpy_gradient, y, t, weights, grad):
    """Binary cross-entropy of probabilities ``y`` (n, k) against targets ``t`` in [0, 1].

    Predictions are clipped to ``[eps, 1 - eps]`` inside the logarithms and
    the gradient (``eps_float32`` or ``eps_float64`` by the dtype). The
    gradient is NumPy's formula bit for bit with ``numpy_gradient``, else
    computed in double and rounded once (``fit``'s minibatches); see ``_bce``.
    Writes the gradient into ``grad`` when it fits (else into a new array).
    Returns ``(mean_loss, grad, n_correct)`` or ``None`` (see the file's notes).
    """
    if not _loss_batch(y):
        return None
    cdef cnp.ndarray p = <cnp.ndarray>y
    cdef int typenum = cnp.PyArray_TYPE(p)
    cdef cnp.npy_intp n = cnp.PyArray_DIM(p, 0), k = cnp.PyArray_DIM(p, 1)
    target = _target_rows(t, typenum, n, k)
    if target is None:
        return None
    w = None
    if weights is not None:
        w = _row_weights(weights, typenum, n)
        if w is None:
            return None
    cdef cnp.ndarray g = _grad_for(grad, typenum, n, k)
    cdef char* tp = cnp.PyArray_BYTES(<cnp.ndarray>target)
    cdef char* wp = NULL if w is None else cnp.PyArray_BYTES(<cnp.ndarray>w)
    cdef double loss = 0
    cdef Py_ssize_t correct = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            status = _bce[double](<double*>cnp.PyArray_DATA(p), <double*>tp, <double*>cnp.PyArray_DATA(g),
                                  <double*>wp, n, k, eps_float64, numpy_gradient, &loss, &correct)
    else:
        with nogil:
            status = _bce[float](<float*>cnp.PyArray_DATA(p), <float*>tp, <float*>cnp.PyArray_DATA(g),
                                 <float*>wp, n, k, eps_float32, numpy_gradient, &loss, &correct)
    return None if status else (loss, g, correct)


def softmax_ce_loss(z, t, weights, grad):
    """Softmax cross-entropy of logits ``z`` (n, k) against 1-D labels or (n, k) target rows.

    Labels may be integers or floats of integral value. Writes the gradient
    into ``grad`` when it fits (else into a new array). Returns
    ``(mean_loss, grad, n_correct)`` or ``None`` (see the file's notes).
    """
    if not _loss_batch(z):
        return None
    cdef cnp.ndarray logits = <cnp.ndarray>z
    cdef int typenum = cnp.PyArray_TYPE(logits)
    cdef cnp.npy_intp n = cnp.PyArray_DIM(logits, 0), k = cnp.PyArray_DIM(logits, 1)
    cdef bint rows = type(t) is cnp.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>t) == 2
    target = _target_rows(t, typenum, n, k) if rows else _labels(t, n, k)
    if target is None:
        return None
    w = None
    if weights is not None:
        w = _row_weights(weights, typenum, n)
        if w is None:
            return None
    cdef cnp.ndarray g = _grad_for(grad, typenum, n, k)
    cdef char* tp = cnp.PyArray_BYTES(<cnp.ndarray>target)
    cdef char* wp = NULL if w is None else cnp.PyArray_BYTES(<cnp.ndarray>w)
    cdef double loss = 0
    cdef Py_ssize_t correct = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            if rows:
                status = _softmax_ce_rows[double](<double*>cnp.PyArray_DATA(logits), <double*>tp,
                                                  <double*>cnp.PyArray_DATA(g), <double*>wp, n, k, &loss, &correct)
            else:
                status = _softmax_ce_labels[double](<double*>cnp.PyArray_DATA(logits), <cnp.npy_int64*>tp,
                                                    <double*>cnp.PyArray_DATA(g), <double*>wp, n, k, &loss, &correct)
    else:
        with nogil:
            if rows:
                status = _softmax_ce_rows[float](<float*>cnp.PyArray_DATA(logits), <float*>tp,
                                                 <float*>cnp.PyArray_DATA(g), <float*>wp, n, k, &loss, &correct)
            else:
                status = _softmax_ce_labels[float](<float*>cnp.PyArray_DATA(logits), <cnp.npy_int64*>tp,
                                                   <float*>cnp.PyArray_DATA(g), <float*>wp, n, k, &loss, &correct)
    return None if status else (loss, g, correct)


def mse_loss(y, t, weights, grad):
    """Mean squared error of ``y`` (n, k) against targets of its shape (or (n,) for k == 1).

    NumPy's ``mean(w * (y - t)**2)`` and ``w * (y - t) * (2 / size)`` bit for
    bit. Writes the gradient into ``grad`` when it fits (else into a new
    array). Returns ``(mean_loss, grad, None)`` or ``None`` (see the file's notes).
    """
    if not _loss_batch(y):
        return None
    cdef cnp.ndarray pred = <cnp.ndarray>y
    cdef int typenum = cnp.PyArray_TYPE(pred)
    cdef cnp.npy_intp n = cnp.PyArray_DIM(pred, 0), k = cnp.PyArray_DIM(pred, 1)
    target = _target_rows(t, typenum, n, k)
    if target is None:
        return None
    w = None
    if weights is not None:
        w = _row_weights(weights, typenum, n)
        if w is None:
            return None
    cdef cnp.ndarray g = _grad_for(grad, typenum, n, k)
    cdef char* tp = cnp.PyArray_BYTES(<cnp.ndarray>target)
    cdef char* wp = NULL if w is None else cnp.PyArray_BYTES(<cnp.ndarray>w)
    cdef double loss = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            status = _mse[double](<double*>cnp.PyArray_DATA(pred), <double*>tp, <double*>cnp.PyArray_DATA(g),
                                  <double*>wp, n, k, &loss)
    else:
        with nogil:
            status = _mse[float](<float*>cnp.PyArray_DATA(pred), <float*>tp, <float*>cnp.PyArray_DATA(g),
                                 <float*>wp, n, k, &loss)
    return None if status else (loss, g, None)


def elementwise_loss(int kind, double param, y, t, weights, grad):
    """A loss of ``_elementwise`` (``kind``, one of ``ELEMENTWISE_LOSS_*``) of ``y`` (n, k) against targets.

    ``param`` is Huber's threshold (unused by the others). Targets have the
    shape of ``y`` (or (n,) for k == 1). Writes the gradient into ``grad``
    when it fits (else into a new array). Returns ``(mean_loss, grad,
    n_correct)`` (``n_correct`` None but for the cross-entropy of logits) or
    ``None`` (see the file's notes).
    """
    if not _loss_batch(y) or kind < ELEMENTWISE_BCE_LOGITS or kind > ELEMENTWISE_L1:
        return None
    cdef cnp.ndarray pred = <cnp.ndarray>y
    cdef int typenum = cnp.PyArray_TYPE(pred)
    cdef cnp.npy_intp n = cnp.PyArray_DIM(pred, 0), k = cnp.PyArray_DIM(pred, 1)
    target = _target_rows(t, typenum, n, k)
    if target is None:
        return None
    w = None
    if weights is not None:
        w = _row_weights(weights, typenum, n)
        if w is None:
            return None
    cdef cnp.ndarray g = _grad_for(grad, typenum, n, k)
    cdef char* tp = cnp.PyArray_BYTES(<cnp.ndarray>target)
    cdef char* wp = NULL if w is None else cnp.PyArray_BYTES(<cnp.ndarray>w)
    cdef double loss = 0
    cdef Py_ssize_t correct = 0
    cdef int status
    if typenum == cnp.NPY_FLOAT64:
        with nogil:
            status = _elementwise[double](kind, param, <double*>cnp.PyArray_DATA(pred), <double*>tp,
                                          <double*>cnp.PyArray_DATA(g), <double*>wp, n, k, &loss, &correct)
    else:
        with nogil:
            status = _elementwise[float](kind, param, <float*>cnp.PyArray_DATA(pred), <float*>tp,
                                         <float*>cnp.PyArray_DATA(g), <float*>wp, n, k, &loss, &correct)
    if status:
        return None
    return loss, g, (correct if kind == ELEMENTWISE_BCE_LOGITS else None)
