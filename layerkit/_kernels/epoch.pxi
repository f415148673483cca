# Included by layerkit/_core.pyx: a whole epoch of minibatch training on a
# DenseChain, in one call with the GIL released (``fit``'s in-core path).
#
# Per minibatch it does what ``fit``'s Python loop does, with the same kernels
# in the same order on the same buffers: gather the rows of ``x[order]`` (and of
# the targets and weights), the chain's forward pass, the loss kernel, the
# chain's backward pass without the input's gradient, and the update: plain
# SGD by a learning rate, or an optimizer's rule (``optim.pxi``) on the
# optimizer's own state arrays, with the learning rate of each update read
# from a table the caller computed from its schedule. So
# the weights and the per-epoch sums are those of the Python loop, bit for bit.
# It stops before the backward pass of a minibatch whose loss kernel finds a
# bad value or whose loss is not finite, and says where: the caller runs that
# minibatch and the rest of the epoch through Python, which raises the
# message (or goes on). A long epoch runs in slices, the GIL taken between
# them to look for signals, so Ctrl-C stops it as it stops the Python loop.

from libc.math cimport INFINITY, NAN
from cpython.exc cimport PyErr_CheckSignals

cdef enum:
    EPOCH_BCE = 0
    EPOCH_SOFTMAX_LABELS = 1
    EPOCH_SOFTMAX_ROWS = 2
    EPOCH_MSE = 3
    EPOCH_BCE_LOGITS = 4
    EPOCH_L1 = 5
    EPOCH_HUBER = 6
    EPOCH_SLICE_ROWS = 16384  # rows between two looks for signals (a Ctrl-C stops a long epoch)

EPOCH_LOSS_BCE = EPOCH_BCE
EPOCH_LOSS_SOFTMAX_LABELS = EPOCH_SOFTMAX_LABELS
EPOCH_LOSS_SOFTMAX_ROWS = EPOCH_SOFTMAX_ROWS
EPOCH_LOSS_MSE = EPOCH_MSE
EPOCH_LOSS_BCE_LOGITS = EPOCH_BCE_LOGITS
EPOCH_LOSS_L1 = EPOCH_L1
EPOCH_LOSS_HUBER = EPOCH_HUBER


cdef struct EpochJob:
    int loss                 # EPOCH_*
    int k                    # stages
    Py_ssize_t n, m, out     # rows of x, its columns, the chain's output width
    Py_ssize_t batch_size, batches
    Py_ssize_t item          # bytes of one float of the dtype
    int x_type               # the dtype of x: the chain's, or the other float type (its rows cast as gathered)
    bint x_fortran           # x (2-D) in Fortran order: each row gathered across the columns
    Py_ssize_t target_row    # bytes of one row of targets
    char* x
    char* targets
    char* weights            # NULL without weights
    cnp.npy_int64* order     # NULL: the rows in their order
    char* xbuf               # gather buffers (used with an order)
    char* tbuf
    char* wbuf
    Stage* full              # the stages of a full minibatch and of the last, smaller one
    Stage* last
    FrontStage* front_full   # a conv net's stages before the chain (front.pxi), likewise; n_front of them
    FrontStage* front_last
    int n_front
    char* grad_full
    char* grad_last
    Update* updates
    int n_updates
    OptRule rule             # with an optimizer (n_opt > 0): its rule, its items (W then b, stage by stage)
    OptItem* opt_items
    int n_opt
    double* lrs              # the learning rate of the update of each minibatch
    long step0               # the parameters' update count before the epoch
    int typenum
    double rate
    double eps
    double loss_param        # the loss's parameter (Huber's delta)
    # results
    Py_ssize_t done          # minibatches run to their update
    double total_loss        # sum of loss * rows, as fit sums it
    double total_correct     # sum of accuracy * rows
    double last_loss
    Py_ssize_t last_rows


cdef int _epoch_loss(EpochJob* job, floating* y, char* t, floating* g, char* w, Py_ssize_t rows,
                     double* value, Py_ssize_t* correct) noexcept nogil:
    if job.loss == EPOCH_BCE:
        return _bce[floating](y, <floating*>t, g, <floating*>w, rows, job.out, job.eps, False, value, correct)
    if job.loss == EPOCH_SOFTMAX_LABELS:
        return _softmax_ce_labels[floating](y, <cnp.npy_int64*>t, g, <floating*>w, rows, job.out, value, correct)
    if job.loss == EPOCH_SOFTMAX_ROWS:
        return _softmax_ce_rows[floating](y, <floating*>t, g, <floating*>w, rows, job.out, value, correct)
    if job.loss == EPOCH_BCE_LOGITS:
        return _elementwise[floating](ELEMENTWISE_BCE_LOGITS, 0, y, <floating*>t, g, <floating*>w, rows, job.out,
                                      value, correct)
    if job.loss == EPOCH_L1:
        return _elementwise[floating](ELEMENTWISE_L1, 0, y, <floating*>t, g, <floating*>w, rows, job.out,
                                      value, correct)
    if job.loss == EPOCH_HUBER:
        return _elementwise[floating](ELEMENTWISE_HUBER, job.loss_param, y, <floating*>t, g, <floating*>w, rows,
                                      job.out, value, correct)
    return _mse[floating](y, <floating*>t, g, <floating*>w, rows, job.out, value)


cdef inline void _gather_row(EpochJob* job, Py_ssize_t row, char* dst, floating* dtype_tag) noexcept nogil:
    """Row ``row`` of x as ``floating`` at ``dst``, when x is of the other float type (NumPy's cast: to the
    nearest) or in Fortran order (its numbers ``n`` apart): what the Python loop's gather buffer holds."""
    cdef Py_ssize_t j, m = job.m, step = job.n if job.x_fortran else 1
    cdef Py_ssize_t at = row if job.x_fortran else row * m
    if job.x_type == cnp.NPY_FLOAT64:
        for j in range(m):
            (<floating*>dst)[j] = <floating>(<double*>job.x)[at + j * step]
    else:
        for j in range(m):
            (<floating*>dst)[j] = <floating>(<float*>job.x)[at + j * step]


cdef void _epoch_run(EpochJob* job, Py_ssize_t first, Py_ssize_t stop, floating* dtype_tag) noexcept nogil:
    """Minibatches ``first`` to ``stop`` (excluded); ``job.done`` is where it stopped."""
    cdef Py_ssize_t b, i, start, rows, source
    cdef Py_ssize_t row_bytes = job.m * job.item
    cdef bint cast = job.x_type != job.typenum or job.x_fortran  # rows gathered one number at a time
    cdef Stage* st
    cdef Stage* top
    cdef FrontStage* fs
    cdef char* rows_in
    cdef char* grad
    cdef char* t
    cdef char* w
    cdef double value
    cdef Py_ssize_t correct
    for b in range(first, stop):
        start = b * job.batch_size
        rows = job.n - start if job.n - start < job.batch_size else job.batch_size
        if b == job.batches - 1:
            st, grad, fs = job.last, job.grad_last, job.front_last
        else:
            st, grad, fs = job.full, job.grad_full, job.front_full
        if job.order != NULL:  # np.take of the rows into the reused buffers
            for i in range(rows):
                source = job.order[start + i]
                if cast:
                    _gather_row[floating](job, source, job.xbuf + i * row_bytes, dtype_tag)
                else:
                    memcpy(job.xbuf + i * row_bytes, job.x + source * row_bytes, row_bytes)
                memcpy(job.tbuf + i * job.target_row, job.targets + source * job.target_row, job.target_row)
                if job.weights != NULL:
                    memcpy(job.wbuf + i * job.item, job.weights + source * job.item, job.item)
            rows_in = job.xbuf
            t = job.tbuf
            w = job.wbuf if job.weights != NULL else NULL
        else:  # views of the rows (gathered into the buffer when x is of the other float type or in F order)
            if cast:
                for i in range(rows):
                    _gather_row[floating](job, start + i, job.xbuf + i * row_bytes, dtype_tag)
                rows_in = job.xbuf
            else:
                rows_in = job.x + start * row_bytes
            t = job.targets + start * job.target_row
            w = job.weights + start * job.item if job.weights != NULL else NULL
        st[0].x.data = _front_forward[floating](fs, job.n_front, rows_in, dtype_tag) if job.n_front else rows_in
        _chain_forward(st, job.k, dtype_tag)
        top = &st[job.k - 1]
        correct = 0
        if _epoch_loss[floating](job, <floating*>(top.a.data if top.act != NO_ACT else top.z.data), t,
                                 <floating*>grad, w, rows, &value, &correct) != LOSS_OK or not _finite(value):
            job.done = b
            return
        _chain_backward(st, job.k, dtype_tag)
        if job.n_front:
            _front_backward[floating](fs, job.n_front, dtype_tag)
        if job.n_opt:
            for i in range(job.n_opt):
                job.opt_items[i].lr = job.lrs[b]
                job.opt_items[i].step = job.step0 + b + 1
            _opt_apply(&job.rule, job.opt_items, job.n_opt, job.typenum)
        else:
            _apply_updates(job.updates, job.n_updates, job.typenum, job.rate)
        job.total_loss += value * rows
        if job.loss == EPOCH_BCE or job.loss == EPOCH_BCE_LOGITS:
            job.total_correct += (<double>correct / <double>(rows * job.out)) * rows
        elif job.loss != EPOCH_MSE and job.loss != EPOCH_L1 and job.loss != EPOCH_HUBER:
            job.total_correct += (<double>correct / <double>rows) * rows
        job.last_loss = value
        job.last_rows = rows
    job.done = stop


cdef bint _contiguous(object a, int typenum, cnp.npy_intp rows, cnp.npy_intp cols, bint writeable):
    """A C-contiguous native array of ``typenum``: 1-D of ``rows`` when ``cols`` < 0, else 2-D (rows, cols)."""
    if cols >= 0:
        return _fits(a, typenum, rows, cols, False, writeable)
    return _fits_vector(a, typenum, rows, writeable)


cdef int _fill_epoch_stages(DenseChain chain, Stage* st, list buffers, cnp.npy_intp rows, list params,
                            object grad, bint first_dx) except -1:
    """The stages of a minibatch of ``rows`` rows: forward and backward operands from one set of buffers.

    As ``DenseChain.forward`` and ``backward`` fill them for a workspace's
    buffers; the first stage's input is set per minibatch. ``first_dx``: the
    first stage computes its input's gradient too (a conv net's front needs it).
    """
    cdef int s, k = chain.n_stages
    cdef list row
    cdef Operand* previous = NULL
    for s in range(k):
        row = <list>buffers[s]
        st[s].act = chain.acts[s]
        st[s].p0 = chain.act_params[2 * s]
        st[s].p1 = chain.act_params[2 * s + 1]
        st[s].dense = chain.holders[s] is not None
        st[s].want_dx = s > 0 or first_dx  # fit never needs the net input's gradient
        if s == 0:
            _fill_scratch(&st[s].x, NULL, rows, chain.widths[0])  # its data: each minibatch's rows
        else:
            st[s].x = previous[0]
        if st[s].want_dx:
            _fill(&st[s].dx, row[3])
        if st[s].dense:
            W, b, dW, db = params[s]
            _fill(&st[s].W, W)
            st[s].b = cnp.PyArray_BYTES(<cnp.ndarray>b)
            _fill(&st[s].dW, dW)
            st[s].db = cnp.PyArray_BYTES(<cnp.ndarray>db)
            _fill(&st[s].z, row[0])
            previous = &st[s].z
            if st[s].act != NO_ACT:
                _fill(&st[s].dz, row[2])
        if st[s].act != NO_ACT:
            _fill(&st[s].a, row[1])
            previous = &st[s].a
    _fill(&st[k - 1].da, grad)
    for s in range(k - 1):
        st[s].da = st[s + 1].dx
    return 0


def train_epoch(DenseChain chain, x, int loss, targets, weights, order, Py_ssize_t batch_size, double rate,
                double eps, list sets, xbuf=None, tbuf=None, wbuf=None, optimizer=None, double loss_param=0.0,
                front=None):
    """One epoch of minibatch training on ``chain`` over the rows of ``x[order]``, without the GIL.

    Parameters
    ----------
    chain : DenseChain
    x : ndarray, shape (n, widths[0]), or (n, ...) with ``front``
        C-contiguous (or, 2-D, Fortran-contiguous), float32 or float64: of the
        chain's dtype, or of the other one. Rows of the other type or of a
        Fortran-ordered x are gathered into ``xbuf`` number by number, cast to
        the chain's dtype (what the Python loop's gather buffer holds).
    loss : int
        ``EPOCH_LOSS_BCE``, ``EPOCH_LOSS_SOFTMAX_LABELS``, ``EPOCH_LOSS_SOFTMAX_ROWS``, ``EPOCH_LOSS_MSE``,
        ``EPOCH_LOSS_BCE_LOGITS``, ``EPOCH_LOSS_L1`` or ``EPOCH_LOSS_HUBER``.
    targets : ndarray
        C-contiguous: int64 labels (n,) for softmax labels, else (n, out) of
        the chain's dtype ((n,) too for one output).
    weights : ndarray of shape (n,) of the chain's dtype, or None
    order : int64 ndarray of shape (n,), a permutation of the rows, or None
    batch_size : int
    rate : float
        The SGD step.
    eps : float
        The clip of binary cross-entropy's predictions (the dtype's).
    sets : list
        ``[(buffers, grad)]`` for a full minibatch, then for the last one
        when it is smaller: ``buffers`` from ``chain.make_buffers(rows)`` (a
        workspace's), ``grad`` a (rows, out) array for the loss's gradient.
    xbuf, tbuf, wbuf : ndarray, optional
        With ``order``: buffers of at least ``min(batch_size, n)`` rows that
        the minibatches are gathered into (``wbuf`` with weights); ``xbuf`` of
        the chain's dtype, and needed without ``order`` too when ``x``'s rows are
        gathered (another dtype, Fortran order).
    optimizer : tuple, optional
        ``(kind, hyper, stages, lrs, step0)``: update by an optimizer's rule
        (as ``optim_update``) instead of SGD by ``rate``. ``stages`` has one
        entry per stage, ``None`` for an activation stage, else
        ``((W_slots, W_decay), (b_slots, b_decay))`` with the state arrays in
        the rule's order; ``lrs`` a float64 array of the learning rate of each
        minibatch's update; ``step0`` the parameters' update count before the
        epoch (the same for all). With ``front``, a sixth entry has one
        ``((W_slots, W_decay), (b_slots, b_decay) or None)`` per convolution
        stage, in order.
    loss_param : float
        The loss's parameter: Huber's ``delta`` (positive and finite); unused
        by the other losses.
    front : list, optional
        A conv net's stages before the chain, one list per entry of ``sets``
        (the stages of ``front.pxi``'s ``_fill_front`` for that many rows); the
        convolutions' parameters are updated with the chain's.

    Returns
    -------
    (done, total_loss, total_correct, last_loss, last_rows) or None
        ``done`` minibatches ran to their update; it is the number of
        minibatches unless one needs the Python loop (see the file's notes).
        ``None`` when an operand does not fit (nothing ran).
    """
    cdef int t = chain.typenum, k = chain.n_stages, s, i
    cdef EpochJob job
    cdef cnp.npy_intp n, out = chain.widths[k], full_rows, last_rows, tcols
    cdef Py_ssize_t m = chain.widths[0]  # elements of a row of x
    cdef int x_type = t  # x of the other float type: its rows are cast into xbuf as they are gathered
    cdef bint x_fortran = False  # x in Fortran order (2-D): its rows are gathered into xbuf across the columns
    if type(x) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>x) in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64):
        x_type = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if front is None:
        if not _fits(x, x_type, -1 if type(x) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>x) != 2
                     else cnp.PyArray_DIM(<cnp.ndarray>x, 0), chain.widths[0], True, False):
            return None
        x_fortran = not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x)
    else:
        m = _row_elements(x, x_type, False)
        if m < 1 or type(front) is not list or len(front) != len(sets):
            return None
    n = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    if n == 0 or batch_size < 1 or n > 2147483647 or loss < EPOCH_BCE or loss > EPOCH_HUBER:
        return None
    if loss == EPOCH_HUBER and not (loss_param > 0 and loss_param < INFINITY):
        return None
    full_rows = batch_size if batch_size < n else n
    last_rows = n - (n - 1) // full_rows * full_rows
    job.batches = (n + full_rows - 1) // full_rows
    # targets, weights and the order
    if loss == EPOCH_SOFTMAX_LABELS:
        if not _contiguous(targets, cnp.NPY_INT64, n, -1, False):
            return None
        tcols = -1
        job.target_row = sizeof(cnp.npy_int64)
    else:
        tcols = out
        if not _contiguous(targets, t, n, out, False):
            if not (out == 1 and loss != EPOCH_SOFTMAX_ROWS and _contiguous(targets, t, n, -1, False)):
                return None
            tcols = -1
        job.target_row = out * (8 if t == cnp.NPY_FLOAT64 else 4)
    if weights is not None and not _contiguous(weights, t, n, -1, False):
        return None
    cdef bint gathered = x_type != t or x_fortran  # x's rows gathered into xbuf, with an order or without
    if gathered and not (type(xbuf) is cnp.ndarray and (_buffer_rows(xbuf, t, full_rows, m) if front is None
                                                        else _row_elements(xbuf, t, True) == m
                                                        and cnp.PyArray_DIM(<cnp.ndarray>xbuf, 0) >= full_rows)):
        return None
    if order is not None:
        if not _contiguous(order, cnp.NPY_INT64, n, -1, False):
            return None
        job.order = <cnp.npy_int64*>cnp.PyArray_DATA(<cnp.ndarray>order)
        for i in range(n):
            if job.order[i] < 0 or job.order[i] >= n:
                return None
        if not ((_buffer_rows(xbuf, t, full_rows, chain.widths[0]) if front is None
                 else _row_elements(xbuf, t, True) == m and cnp.PyArray_DIM(<cnp.ndarray>xbuf, 0) >= full_rows)
                and (_buffer_rows(tbuf, cnp.NPY_INT64, full_rows, -1) if tcols < 0 and loss == EPOCH_SOFTMAX_LABELS
                     else _buffer_rows(tbuf, t, full_rows, tcols))
                and (weights is None or _buffer_rows(wbuf, t, full_rows, -1))):
            return None
        job.xbuf = cnp.PyArray_BYTES(<cnp.ndarray>xbuf)
        job.tbuf = cnp.PyArray_BYTES(<cnp.ndarray>tbuf)
        job.wbuf = NULL if weights is None else cnp.PyArray_BYTES(<cnp.ndarray>wbuf)
    else:
        job.order = NULL
    # the minibatches' buffers
    if len(sets) != (1 if last_rows == full_rows else 2):
        return None
    for i, rows in enumerate((full_rows, last_rows)[:len(sets)]):
        buffers, grad = sets[i]
        if not (type(buffers) is list and chain._buffers_fit(buffers, rows) and _fits(grad, t, rows, out, False, True)):
            return None
    # the parameters (updated in place: C-contiguous and writeable) and their gradients
    params = chain._epoch_params()
    if params is None:
        return None
    cdef int n_updates = 0
    cdef Py_ssize_t chunk, first, stop
    cdef list opt_items = []
    for s in range(k):
        if params[s] is not None:
            n_updates += 2
    cdef list front_params = []  # (W, b, dW, db) of each convolution stage (b, db None without bias)
    job.n_front = 0
    job.front_full = job.front_last = NULL
    if front is not None:
        for stages_of_set in front:
            if type(stages_of_set) is not list or len(stages_of_set) != len(front[0]) or not stages_of_set:
                return None
        for stage in front[0]:
            if stage[0] == FRONT_CONV:
                front_params.append(tuple(stage[1][1:]))
                n_updates += 1 if stage[1][2] is None else 2
        job.n_front = len(front[0])
    job.n_opt = 0
    job.opt_items = NULL
    if optimizer is not None:
        kind, hyper, stages, lrs, step0 = optimizer[:5]
        _opt_rule(&job.rule, kind, hyper)
        if (len(stages) != k or not _contiguous(lrs, cnp.NPY_FLOAT64, cnp.PyArray_DIM(<cnp.ndarray>lrs, 0)
                                                 if type(lrs) is cnp.ndarray else -1, -1, False)
                or cnp.PyArray_DIM(<cnp.ndarray>lrs, 0) < job.batches):
            return None
        for s in range(k):
            if (params[s] is None) != (stages[s] is None):
                return None
            if params[s] is not None:
                W, b, dW, db = params[s]
                (w_slots, w_decay), (b_slots, b_decay) = stages[s]
                opt_items.append((W, dW, w_slots, 0.0, 0, w_decay))
                opt_items.append((b, db, b_slots, 0.0, 0, b_decay))
        front_specs = optimizer[5] if len(optimizer) > 5 else []
        if len(front_specs) != len(front_params):
            return None
        for (W, b, dW, db), spec in zip(front_params, front_specs):
            (w_slots, w_decay), bias_spec = spec
            if (b is None) != (bias_spec is None):
                return None
            opt_items.append((W, dW, w_slots, 0.0, 0, w_decay))
            if b is not None:
                b_slots, b_decay = bias_spec
                opt_items.append((b, db, b_slots, 0.0, 0, b_decay))
        job.lrs = <double*>cnp.PyArray_DATA(<cnp.ndarray>lrs)
        job.step0 = step0
    job.loss, job.k, job.n, job.m, job.out = loss, k, n, m, out
    job.batch_size, job.item = full_rows, (8 if t == cnp.NPY_FLOAT64 else 4)
    job.x = cnp.PyArray_BYTES(<cnp.ndarray>x)
    job.x_type, job.x_fortran = x_type, x_fortran
    if x_type != t or x_fortran:
        job.xbuf = cnp.PyArray_BYTES(<cnp.ndarray>xbuf)
    job.targets = cnp.PyArray_BYTES(<cnp.ndarray>targets)
    job.weights = NULL if weights is None else cnp.PyArray_BYTES(<cnp.ndarray>weights)
    job.typenum, job.rate, job.eps, job.loss_param = t, rate, eps, loss_param
    job.done, job.total_loss, job.total_correct, job.last_loss, job.last_rows = 0, 0.0, 0.0, NAN, 0
    job.n_updates = n_updates
    job.full = <Stage*>PyMem_Malloc(k * sizeof(Stage))
    job.last = <Stage*>PyMem_Malloc(k * sizeof(Stage))
    job.updates = <Update*>PyMem_Malloc((n_updates if n_updates else 1) * sizeof(Update))
    keep_opt = []
    try:
        if job.full == NULL or job.last == NULL or job.updates == NULL:
            raise MemoryError()
        if job.n_front:
            job.front_full = <FrontStage*>PyMem_Malloc(job.n_front * sizeof(FrontStage))
            job.front_last = <FrontStage*>PyMem_Malloc(job.n_front * sizeof(FrontStage))
            if job.front_full == NULL or job.front_last == NULL:
                raise MemoryError()
        if opt_items:
            job.opt_items = <OptItem*>PyMem_Malloc(len(opt_items) * sizeof(OptItem))
            if job.opt_items == NULL:
                raise MemoryError()
            _fill_opt_items(opt_items, job.opt_items, t, keep_opt)  # (checks every array)
            job.n_opt = len(opt_items)
        buffers, grad = sets[0]
        _fill_epoch_stages(chain, job.full, buffers, full_rows, params, grad, job.n_front > 0)
        job.grad_full = cnp.PyArray_BYTES(<cnp.ndarray>grad)
        buffers, grad = sets[len(sets) - 1]
        _fill_epoch_stages(chain, job.last, buffers, last_rows, params, grad, job.n_front > 0)
        job.grad_last = cnp.PyArray_BYTES(<cnp.ndarray>grad)
        if job.n_front:  # (checks every array against its stage's geometry)
            _fill_front(front[0], job.front_full, t, full_rows, full_rows * m, full_rows * chain.widths[0],
                        job.full[0].dx.data)
            _fill_front(front[len(front) - 1], job.front_last, t, last_rows, last_rows * m,
                        last_rows * chain.widths[0], job.last[0].dx.data)
        pairs = []  # in the order of DenseChain.sgd: W then b, stage by stage (params keeps them alive)
        for stage in params:
            if stage is not None:
                W, b, dW, db = stage
                pairs.extend((W, dW, b, db))
        for W, b, dW, db in front_params:  # (checked by _fill_front)
            pairs.extend((W, dW) if b is None else (W, dW, b, db))
        _fill_updates(pairs, job.updates)
        _prepare_small(full_rows)
        # in slices of about EPOCH_SLICE_ROWS rows, with a look for signals between them (Ctrl-C)
        chunk = EPOCH_SLICE_ROWS // full_rows if full_rows < EPOCH_SLICE_ROWS else 1
        first = 0
        while first < job.batches:
            stop = first + chunk if job.batches - first > chunk else job.batches
            if t == cnp.NPY_FLOAT64:
                with nogil:
                    _epoch_run(&job, first, stop, <double*>NULL)
            else:
                with nogil:
                    _epoch_run(&job, first, stop, <float*>NULL)
            if job.done < stop:
                break
            first = stop
            if first < job.batches:
                try:
                    PyErr_CheckSignals()  # raises KeyboardInterrupt after a Ctrl-C
                except BaseException as error:
                    error.batches_done = job.done  # the minibatches updated before it (their count)
                    raise
    finally:
        PyMem_Free(job.full)
        PyMem_Free(job.last)
        PyMem_Free(job.front_full)
        PyMem_Free(job.front_last)
        PyMem_Free(job.updates)
        PyMem_Free(job.opt_items)
    return job.done, job.total_loss, job.total_correct, job.last_loss, job.last_rows


cdef bint _buffer_rows(object a, int typenum, cnp.npy_intp rows, cnp.npy_intp cols):
    """A writeable C-contiguous buffer of ``typenum`` with at least ``rows`` rows (of ``cols``; 1-D when < 0)."""
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr) or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or not cnp.PyArray_ISWRITEABLE(arr) or cnp.PyArray_NDIM(arr) != (1 if cols < 0 else 2)
            or cnp.PyArray_DIM(arr, 0) < rows):
        return False
    return cols < 0 or cnp.PyArray_DIM(arr, 1) == cols


cdef Py_ssize_t _row_elements(object a, int typenum, bint writeable):
    """Elements per row (first axis) of a C-contiguous native array of ``typenum`` with 2 axes or more; -1 else."""
    if type(a) is not cnp.ndarray:
        return -1
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr) or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or (writeable and not cnp.PyArray_ISWRITEABLE(arr)) or cnp.PyArray_NDIM(arr) < 2
            or cnp.PyArray_DIM(arr, 0) < 1):
        return -1
    return cnp.PyArray_SIZE(arr) // cnp.PyArray_DIM(arr, 0)
