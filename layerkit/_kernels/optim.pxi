# Included by layerkit/_core.pyx: the optimizers' updates (SGD with momentum or
# Nesterov, Adam, AdamW, RMSprop, AdaGrad), one compiled pass per parameter.
#
# The loops are C (``optim.h``): each does the operations of the optimizer's
# NumPy rule in the same order and dtype, so the results are those of the
# NumPy rule bit for bit. One call updates any number of parameters (all of a
# net's) with the GIL released once; the in-core epoch (``epoch.pxi``) runs
# the same updates after each minibatch. The per-update scalars (bias
# corrections, AdaGrad's decayed rate) are computed here in double precision
# with the expressions Python evaluates, so they are the same numbers.

from libc.math cimport pow as c_pow, sqrt as c_sqrt

cdef extern from "_kernels/optim.h" nogil:
    void lk_sgd_d(double* p, const double* g, double* buf, Py_ssize_t n, double decay, double lr,
                  double momentum, double dampening, int nesterov, int first)
    void lk_sgd_f(float* p, const float* g, float* buf, Py_ssize_t n, double decay, double lr,
                  double momentum, double dampening, int nesterov, int first)
    void lk_adam_d(double* p, const double* g, double* m, double* v, double* vmax, Py_ssize_t n,
                   double decay, int decoupled, double beta1, double beta2, double eps, double step_size,
                   double bias2, double shrink)
    void lk_adam_f(float* p, const float* g, float* m, float* v, float* vmax, Py_ssize_t n,
                   double decay, int decoupled, double beta1, double beta2, double eps, double step_size,
                   double bias2, double shrink)
    void lk_rmsprop_d(double* p, const double* g, double* sq, double* ga, double* buf, Py_ssize_t n,
                      double decay, double lr, double alpha, double eps, double momentum)
    void lk_rmsprop_f(float* p, const float* g, float* sq, float* ga, float* buf, Py_ssize_t n,
                      double decay, double lr, double alpha, double eps, double momentum)
    void lk_adagrad_d(double* p, const double* g, double* acc, Py_ssize_t n, double decay, double clr,
                      double eps)
    void lk_adagrad_f(float* p, const float* g, float* acc, Py_ssize_t n, double decay, double clr,
                      double eps)

cdef enum:
    OPT_SGD_KIND = 0       # hyper: momentum, dampening, nesterov
    OPT_ADAM_KIND = 1      # hyper: beta1, beta2, eps, decoupled
    OPT_RMSPROP_KIND = 2   # hyper: alpha, eps, momentum
    OPT_ADAGRAD_KIND = 3   # hyper: lr_decay, eps
    OPT_N_HYPER = 4

OPT_SGD = OPT_SGD_KIND
OPT_ADAM = OPT_ADAM_KIND
OPT_RMSPROP = OPT_RMSPROP_KIND
OPT_ADAGRAD = OPT_ADAGRAD_KIND


cdef struct OptRule:
    int kind
    double h[OPT_N_HYPER]


cdef struct OptItem:
    char* param
    char* grad
    char* s0          # the state arrays, in the optimizer's ``slots`` order (NULL where absent)
    char* s1
    char* s2
    Py_ssize_t size
    double lr         # the learning rate of this update
    double decay      # the parameter's L2 coefficient
    long step         # the update's count (1 for the first)


cdef void _opt_one(OptRule* rule, OptItem* it, floating* dtype_tag) noexcept nogil:
    """One parameter's update (``it.step`` is the count after it, as the NumPy rules receive it)."""
    cdef double t = <double>it.step, bias1
    cdef floating* p = <floating*>it.param
    cdef floating* g = <floating*>it.grad
    if rule.kind == OPT_SGD_KIND:
        if floating is float:
            lk_sgd_f(p, g, <float*>it.s0, it.size, it.decay, it.lr, rule.h[0], rule.h[1], <int>rule.h[2],
                     it.step == 1)
        else:
            lk_sgd_d(p, g, <double*>it.s0, it.size, it.decay, it.lr, rule.h[0], rule.h[1], <int>rule.h[2],
                     it.step == 1)
    elif rule.kind == OPT_ADAM_KIND:
        bias1 = 1.0 - c_pow(rule.h[0], t)
        if floating is float:
            lk_adam_f(p, g, <float*>it.s0, <float*>it.s1, <float*>it.s2, it.size, it.decay, <int>rule.h[3],
                      rule.h[0], rule.h[1], rule.h[2], it.lr / bias1, c_sqrt(1.0 - c_pow(rule.h[1], t)),
                      1.0 - it.lr * it.decay)
        else:
            lk_adam_d(p, g, <double*>it.s0, <double*>it.s1, <double*>it.s2, it.size, it.decay, <int>rule.h[3],
                      rule.h[0], rule.h[1], rule.h[2], it.lr / bias1, c_sqrt(1.0 - c_pow(rule.h[1], t)),
                      1.0 - it.lr * it.decay)
    elif rule.kind == OPT_RMSPROP_KIND:
        # the slots in order: square_avg, then grad_avg (centered), then momentum_buffer
        if floating is float:
            lk_rmsprop_f(p, g, <float*>it.s0, <float*>it.s1, <float*>it.s2, it.size, it.decay, it.lr,
                         rule.h[0], rule.h[1], rule.h[2])
        else:
            lk_rmsprop_d(p, g, <double*>it.s0, <double*>it.s1, <double*>it.s2, it.size, it.decay, it.lr,
                         rule.h[0], rule.h[1], rule.h[2])
    else:
        if floating is float:
            lk_adagrad_f(p, g, <float*>it.s0, it.size, it.decay, it.lr / (1.0 + (t - 1.0) * rule.h[0]),
                         rule.h[1])
        else:
            lk_adagrad_d(p, g, <double*>it.s0, it.size, it.decay, it.lr / (1.0 + (t - 1.0) * rule.h[0]),
                         rule.h[1])


cdef void _opt_apply(OptRule* rule, OptItem* items, int n, int typenum) noexcept nogil:
    cdef int i
    for i in range(n):
        if typenum == cnp.NPY_FLOAT64:
            _opt_one(rule, &items[i], <double*>NULL)
        else:
            _opt_one(rule, &items[i], <float*>NULL)


cdef int _opt_rule(OptRule* rule, int kind, tuple hyper) except -1:
    cdef int i
    if kind < OPT_SGD_KIND or kind > OPT_ADAGRAD_KIND or len(hyper) > OPT_N_HYPER:
        raise ValueError("layerkit._core: unknown optimizer kind or too many hyperparameters")
    rule.kind = kind
    for i in range(OPT_N_HYPER):
        rule.h[i] = hyper[i] if i < len(hyper) else 0.0
    return 0


cdef char* _opt_array(object a, cnp.ndarray like, bint writeable) except? NULL:
    """The data of ``a``: an array of ``like``'s dtype and size, C-contiguous (NULL for None)."""
    if a is None:
        return NULL
    if type(a) is not cnp.ndarray:
        raise ValueError("layerkit._core: optimizer operands must be ndarrays")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(arr) != cnp.PyArray_TYPE(like) or not cnp.PyArray_ISNOTSWAPPED(arr)
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_SIZE(arr) != cnp.PyArray_SIZE(like)):
        raise ValueError("layerkit._core: optimizer operands must be C-contiguous arrays of the "
                         "parameter's dtype and size")
    if writeable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError("layerkit._core: optimizer output is read-only")
    return cnp.PyArray_BYTES(arr)


cdef int _fill_opt_items(list items, OptItem* out, int typenum, list keep) except -1:
    """``out[i]`` from ``items[i] = (param, grad, (slots...), lr, step, decay)``, every array checked."""
    cdef Py_ssize_t i, j
    cdef tuple item, slots
    cdef cnp.ndarray p
    cdef char* s[3]
    for i in range(len(items)):
        item = <tuple?>items[i]
        param, grad, slots_obj, lr, step, decay = item
        if type(param) is not cnp.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>param) != typenum:
            raise ValueError("layerkit._core: optimizer parameters of one call must be ndarrays of one dtype")
        p = <cnp.ndarray>param
        out[i].param = _opt_array(p, p, True)
        out[i].grad = _opt_array(grad, p, False)
        slots = <tuple?>slots_obj
        if len(slots) > 3:
            raise ValueError("layerkit._core: at most three optimizer state arrays")
        for j in range(3):
            s[j] = _opt_array(slots[j], p, True) if j < len(slots) else NULL
        out[i].s0, out[i].s1, out[i].s2 = s[0], s[1], s[2]
        out[i].size = cnp.PyArray_SIZE(p)
        out[i].lr = lr
        out[i].step = step
        out[i].decay = decay
        keep.append(item)
    return 0


def optim_update(int kind, tuple hyper, list items):
    """Update every parameter of ``items`` in place by one optimizer rule, without the GIL.

    Parameters
    ----------
    kind : int
        ``OPT_SGD``, ``OPT_ADAM``, ``OPT_RMSPROP`` or ``OPT_ADAGRAD``.
    hyper : tuple of float
        SGD: (momentum, dampening, nesterov); Adam: (beta1, beta2, eps,
        decoupled); RMSprop: (alpha, eps, momentum); AdaGrad: (lr_decay, eps).
    items : list of tuple
        ``(param, grad, slots, lr, step, decay)`` per parameter: ``param`` a
        writeable C-contiguous float32 or float64 array (one dtype for the
        call), ``grad`` and the state arrays ``slots`` (a tuple, in the
        rule's order: SGD ``(momentum_buffer,)`` or ``()``; Adam ``(exp_avg,
        exp_avg_sq[, max_exp_avg_sq])``; RMSprop ``(square_avg, grad_avg or
        None, momentum_buffer or None)``; AdaGrad ``(sum,)``) C-contiguous of
        its dtype and size; ``step`` the update's count (1 for the first).
    """
    cdef OptRule rule
    cdef int n = len(items), t
    cdef OptItem* out
    cdef list keep = []
    _opt_rule(&rule, kind, hyper)
    if n == 0:
        return
    first = (<tuple?>items[0])[0]
    if type(first) is not cnp.ndarray:
        raise ValueError("layerkit._core: optimizer parameters must be ndarrays")
    t = cnp.PyArray_TYPE(<cnp.ndarray>first)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise ValueError("layerkit._core: expected float32 or float64")
    out = <OptItem*>PyMem_Malloc(n * sizeof(OptItem))
    if out == NULL:
        raise MemoryError()
    try:
        _fill_opt_items(items, out, t, keep)
        with nogil:
            _opt_apply(&rule, out, n, t)
    finally:
        PyMem_Free(out)
