# Included by layerkit/_core.pyx: compiled chains of dense and activation stages
# (the fast path of a whole net).
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

cdef struct Stage:
    int act             # NO_ACT or an activation code (LK_SIGMOID, ...)
    double p0           # the activation's parameters
    double p1
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


cdef void _chain_forward(Stage* st, int k, floating* dtype_tag) noexcept nogil:
    # ``dtype_tag`` only selects the specialisation (pass a NULL of the type)
    cdef int s
    for s in range(k):
        if st[s].dense:
            _dense_forward[floating](&st[s].x, &st[s].W, <floating*>st[s].b, &st[s].z)
            if st[s].act != NO_ACT:
                _act_forward[floating](st[s].act, <floating*>st[s].z.data, <floating*>st[s].a.data,
                                       st[s].z.rows, st[s].z.cols, st[s].p0, st[s].p1)
        else:
            _act_forward[floating](st[s].act, <floating*>st[s].x.data, <floating*>st[s].a.data,
                                   st[s].x.rows, st[s].x.cols, st[s].p0, st[s].p1)


cdef void _chain_backward(Stage* st, int k, floating* dtype_tag) noexcept nogil:
    cdef int s
    cdef Operand* g
    cdef floating* out
    for s in range(k - 1, -1, -1):
        # a stage's output is the next stage's saved input: sigmoid, tanh and softmax take their
        # gradient from it instead of recomputing it (the last stage's output is not saved)
        out = <floating*>st[s + 1].x.data if s + 1 < k else NULL
        if not st[s].dense:
            if st[s].want_dx:
                _act_backward_from[floating](st[s].act, <floating*>st[s].x.data, out,
                                             <floating*>st[s].da.data, <floating*>st[s].dx.data,
                                             st[s].x.rows, st[s].x.cols, st[s].p0, st[s].p1)
            continue
        g = &st[s].da
        if st[s].act != NO_ACT:
            _act_backward_from[floating](st[s].act, <floating*>st[s].z.data, out,
                                         <floating*>st[s].da.data, <floating*>st[s].dz.data,
                                         st[s].z.rows, st[s].z.cols, st[s].p0, st[s].p1)
            g = &st[s].dz
        if g.trans != b'N':
            _column_sums_fortran(<floating*>st[s].db, <floating*>g.data, g.rows, g.cols, g.ld)
        _dense_backward[floating](&st[s].x, &st[s].W, g, &st[s].dW, <floating*>st[s].db,
                                  &st[s].dx if st[s].want_dx else NULL)



cdef inline Py_ssize_t _fill_scratch(Operand* op, char* data, cnp.npy_intp rows, cnp.npy_intp cols) noexcept:
    """Describe C-ordered (rows, cols) storage at ``data`` (a chain's scratch); returns its element count."""
    op.data = data
    op.rows = <int>rows
    op.cols = <int>cols
    op.ld = <int>cols if cols > 1 else 1
    op.trans = b'N'
    return rows * cols


cdef struct Update:
    char* param     # p -= rate * grad, over size elements (one array of a DenseChain.sgd)
    char* grad
    int size


cdef void _fill_updates(list pairs, Update* out) noexcept:
    """``out[i]`` from the arrays ``pairs[2 i]`` (a parameter) and ``pairs[2 i + 1]`` (its gradient)."""
    cdef Py_ssize_t i
    for i in range(len(pairs) // 2):
        out[i].param = cnp.PyArray_BYTES(<cnp.ndarray>pairs[2 * i])
        out[i].grad = cnp.PyArray_BYTES(<cnp.ndarray>pairs[2 * i + 1])
        out[i].size = <int>cnp.PyArray_SIZE(<cnp.ndarray>pairs[2 * i])


cdef void _apply_updates(Update* updates, int n, int typenum, double rate) noexcept nogil:
    """``param -= rate * grad`` for each update in turn, by BLAS axpy."""
    cdef int i, one = 1
    cdef float frate = <float>(-rate)
    cdef double drate = -rate
    for i in range(n):
        if typenum == cnp.NPY_FLOAT64:
            daxpy(&updates[i].size, &drate, <double*>updates[i].grad, &one, <double*>updates[i].param, &one)
        else:
            saxpy(&updates[i].size, &frate, <float*>updates[i].grad, &one, <float*>updates[i].param, &one)


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
        One entry per stage: ``ACT_NONE`` or an activation code (``ACT_SIGMOID``,
        ``ACT_TANH``, ...); an activation stage needs an activation.
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
            if self.acts[s] != NO_ACT and not 0 <= self.acts[s] < LK_N_ACTS:
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

    cdef list _epoch_params(self):
        """Per stage ``(W, b, dW, db)`` (``None`` for an activation stage) for training in place.

        ``None`` when a ``W`` or ``b`` is not a writeable C-contiguous array of
        the chain's dtype (``sgd`` would refuse it too). A ``dW`` or ``db``
        that does not fit is replaced by a new array, as ``backward`` replaces it.
        """
        cdef int s, t = self.typenum
        cdef list out = []
        for s in range(self.n_stages):
            holder = self.holders[s]
            if holder is None:
                out.append(None)
                continue
            W, b = getattr(holder, _W), getattr(holder, _B)
            if not (_fits(W, t, self.widths[s], self.widths[s + 1], False, True)
                    and _fits_vector(b, t, self.widths[s + 1], True)
                    and self.widths[s] * self.widths[s + 1] <= 2147483647):
                return None
            dW = getattr(holder, _DW, None)
            if not _fits(dW, t, self.widths[s], self.widths[s + 1], False, True):
                dW = _empty2(self.widths[s], self.widths[s + 1], t)
                setattr(holder, _DW, dW)
            db = getattr(holder, _DB, None)
            if not _fits_vector(db, t, self.widths[s + 1], True):
                db = cnp.PyArray_EMPTY(1, &self.widths[s + 1], t, 0)
                setattr(holder, _DB, db)
            out.append((W, b, dW, db))
        return out

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
        # a Fortran-ordered input only for a dense first stage: an activation reads element by element
        if not _fits(x, t, -1 if type(x) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>x) != 2
                     else cnp.PyArray_DIM(<cnp.ndarray>x, 0), self.widths[0], self.holders[0] is not None, False):
            return None
        n = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        if n > 2147483647:
            return None  # (each holder's W and b are checked below, before anything is computed)
        _prepare_small(n)
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
                st[s].p0 = self.act_params[2 * s]
                st[s].p1 = self.act_params[2 * s + 1]
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
        _prepare_small(n)
        if not _fits(dy, t, n, self.widths[k], last_dense, False):
            return NotImplemented
        if buffers is not None and not self._buffers_fit(buffers, n):
            return NotImplemented
        # check every saved array before touching anything
        i = 0
        for s in range(k):
            dense = self.holders[s] is not None
            has_act = self.acts[s] != NO_ACT
            if i >= len(saved) or not _fits(saved[i], t, n, self.widths[s], s == 0 and dense, False):
                return NotImplemented
            i += 1
            if dense and has_act:
                if i >= len(saved) or not _fits(saved[i], t, n, self.widths[s + 1], False, False):
                    return NotImplemented
                i += 1
        if i != len(saved):
            return NotImplemented
        # every weight matrix too, before any gradient array is replaced below
        weights = []
        for s in range(k):
            if self.holders[s] is not None:
                W = getattr(self.holders[s], _W)
                if not _fits(W, t, self.widths[s], self.widths[s + 1], True, False):
                    return NotImplemented
                weights.append(W)
            else:
                weights.append(None)
        # without buffers, only the input's gradient is returned: the stages' other gradients live
        # in one scratch block for the call instead of arrays of their own
        cdef bint fresh = buffers is None
        cdef char* scratch = NULL
        cdef Py_ssize_t used = 0, item = 8 if t == cnp.NPY_FLOAT64 else 4
        dx = _empty2(n, self.widths[0], t) if fresh and need_dx else None
        if fresh:
            for s in range(k):
                if self.holders[s] is not None and self.acts[s] != NO_ACT:
                    used += n * self.widths[s + 1]
                if s > 0:
                    used += n * self.widths[s]
            scratch = <char*>PyMem_Malloc(used * item if used else 1)
            if scratch == NULL:
                raise MemoryError()
            used = 0
        i = 0
        keep = []
        st = <Stage*>PyMem_Malloc(k * sizeof(Stage))  # per call: threads may share a chain
        if st == NULL:
            PyMem_Free(scratch)
            raise MemoryError()
        try:
            for s in range(k):
                row = None if fresh else <list>buffers[s]
                holder = self.holders[s]
                st[s].act = self.acts[s]
                st[s].p0 = self.act_params[2 * s]
                st[s].p1 = self.act_params[2 * s + 1]
                st[s].dense = holder is not None
                st[s].want_dx = s > 0 or need_dx
                _fill(&st[s].x, saved[i])
                i += 1
                if st[s].want_dx:
                    if not fresh:
                        _fill(&st[s].dx, row[3])
                    elif s == 0:
                        _fill(&st[s].dx, dx)
                    else:
                        used += _fill_scratch(&st[s].dx, scratch + used * item, n, self.widths[s])
                if st[s].dense:
                    if st[s].act != NO_ACT:
                        _fill(&st[s].z, saved[i])
                        i += 1
                        if fresh:
                            used += _fill_scratch(&st[s].dz, scratch + used * item, n, self.widths[s + 1])
                        else:
                            _fill(&st[s].dz, row[2])
                    W = weights[s]  # checked above, and held until the kernels are done
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
            PyMem_Free(scratch)
        if fresh:
            return dx
        return (<list>buffers[0])[3] if need_dx else None

    def sgd(self, double rate):
        """``p -= rate * dp`` for every ``W``, ``b`` of the chain; ``False`` (and no update) if any pair does not fit.

        Every array is fetched and checked once, held for the update, and the
        updates run in one block without the GIL.
        """
        cdef int s, i, n = 0, t = self.typenum
        cdef list keep = []
        cdef Update* updates
        for s in range(self.n_stages):
            holder = self.holders[s]
            if holder is None:
                continue
            W, dW = getattr(holder, _W), getattr(holder, _DW, None)
            b, db = getattr(holder, _B), getattr(holder, _DB, None)
            if not (_fits(W, t, self.widths[s], self.widths[s + 1], False, True)
                    and _fits(dW, t, self.widths[s], self.widths[s + 1], False, False)
                    and _fits_vector(b, t, self.widths[s + 1], True)
                    and _fits_vector(db, t, self.widths[s + 1], False)):
                return False
            if self.widths[s] * self.widths[s + 1] > 2147483647:
                return False
            keep.extend((W, dW, b, db))  # held until the update is done
        n = len(keep) // 2
        updates = <Update*>PyMem_Malloc(n * sizeof(Update))
        if updates == NULL:
            raise MemoryError()
        _fill_updates(keep, updates)
        with nogil:
            _apply_updates(updates, n, t, rate)
        PyMem_Free(updates)
        return True
