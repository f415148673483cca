# Included by layerkit/_core.pyx: the layers of a conv net before its dense
# chain (convolutions, pooling, element-wise activations, flatten) as one
# compiled sequence of stages, for ``fit``'s in-core epoch (``epoch.pxi``).
#
# Each stage calls the kernel its layer calls in a ``Net`` pass with a
# workspace: ``_conv_forward``/``_conv_backward`` (the first stage without the
# input's gradient, as the plan skips it), ``_max_pool_*``/``_avg_pool_*``,
# ``_act_forward``/``_act_backward`` over every element, and the one pass of
# a ReLU followed by a 2x2 max pooling where the plan runs that pair as one.
# So the numbers are those of the Python loop, bit for bit. A flatten stage
# runs no kernel: its output and its input gradient are the buffers on
# either side of it.

cdef enum:
    FRONT_CONV = 0
    FRONT_ACT = 1
    FRONT_MAX_POOL = 2
    FRONT_AVG_POOL = 3
    FRONT_FLATTEN = 4

FRONT_STAGE_CONV = FRONT_CONV
FRONT_STAGE_ACT = FRONT_ACT
FRONT_STAGE_MAX_POOL = FRONT_MAX_POOL
FRONT_STAGE_AVG_POOL = FRONT_AVG_POOL
FRONT_STAGE_FLATTEN = FRONT_FLATTEN


cdef struct FrontStage:
    int kind                # FRONT_*
    ConvGeometry conv       # FRONT_CONV
    PoolGeometry pool       # FRONT_MAX_POOL, FRONT_AVG_POOL
    int act                 # FRONT_ACT: the activation's code and parameters
    double p0
    double p1
    Py_ssize_t size         # elements of the stage's input
    bint with_pool          # FRONT_ACT: a ReLU whose backward runs in one pass with the next stage's
    bint want_dx            # every stage but the first
    char* x                 # input (set per minibatch: the previous stage's output)
    char* y                 # output (a flatten stage's is its input)
    char* dy                # gradient arriving at the output
    char* dx                # gradient of the input (a flatten stage's is its dy)
    char* W
    char* b                 # NULL without bias
    char* dW
    char* db
    char* scratch           # FRONT_CONV: the convolution's scratch


cdef char* _block_data(object a, int typenum, Py_ssize_t size, bint writeable) except? NULL:
    """The data of ``a``, checked as ``_check_block`` checks it."""
    _check_block(<cnp.ndarray?>a, typenum, size, writeable)
    return cnp.PyArray_BYTES(<cnp.ndarray>a)


cdef int _fill_front(list stages, FrontStage* fs, int typenum, Py_ssize_t rows, Py_ssize_t in_size,
                     Py_ssize_t out_size, char* chain_dx) except -1:
    """``fs`` from ``stages`` for minibatches of ``rows`` rows; every array checked against the geometry.

    ``stages[i]`` is ``(kind, info, y, dx, scratch)``, ``info`` being
    ``(geometry, W, b, dW, db)`` for a convolution (16 integers as for
    ``conv_forward``; ``b``, ``db`` None without bias), ``(code, p0, p1)``
    for an activation, ``(geometry, after_relu)`` for a pooling (9 integers
    as for ``pool_forward``; ``after_relu``: one backward pass with the ReLU
    before it), ``None`` for a flatten (``y``, ``dx`` None). ``in_size`` and
    ``out_size`` are the elements of the first stage's input and of the last
    stage's output; ``chain_dx`` is where the dense chain writes the gradient
    of its input.
    """
    cdef Py_ssize_t s, k = len(stages), size = in_size, out
    cdef FrontStage* st
    for s in range(k):
        st = &fs[s]
        kind, info, y, dx, scratch = <tuple?>stages[s]
        st.kind, st.size, st.want_dx, st.with_pool = kind, size, s > 0, False
        st.b = st.db = st.W = st.dW = st.scratch = NULL
        if kind == FRONT_CONV:
            geometry, W, b, dW, db = <tuple?>info
            _geometry(<tuple?>geometry, &st.conv)
            if st.conv.n != rows or st.conv.n * st.conv.C * st.conv.H * st.conv.W != size:
                raise ValueError("layerkit._core: a convolution stage does not take its input's size")
            out = st.conv.n * st.conv.O * st.conv.Ho * st.conv.Wo
            st.W = _block_data(W, typenum, st.conv.O * (st.conv.C // st.conv.groups) * st.conv.kh * st.conv.kw, True)
            st.dW = _block_data(dW, typenum, st.conv.O * (st.conv.C // st.conv.groups) * st.conv.kh * st.conv.kw,
                                True)
            if (b is None) != (db is None):
                raise ValueError("layerkit._core: a convolution stage takes b and db, or neither")
            if b is not None:
                st.b = _block_data(b, typenum, st.conv.O, True)
                st.db = _block_data(db, typenum, st.conv.O, True)
            st.scratch = _block_data(scratch, typenum, _scratch_size(&st.conv), True)
        elif kind == FRONT_ACT:
            code, st.p0, st.p1 = <tuple?>info
            _check_act(code)
            if code == LK_SOFTMAX:
                raise ValueError("layerkit._core: softmax is no element-wise stage")
            st.act = code
            out = size
        elif kind == FRONT_MAX_POOL or kind == FRONT_AVG_POOL:
            geometry, after_relu = <tuple?>info
            _pool_geometry(<tuple?>geometry, &st.pool)
            if st.pool.planes * st.pool.H * st.pool.W != size:
                raise ValueError("layerkit._core: a pooling stage does not take its input's size")
            out = st.pool.planes * st.pool.Ho * st.pool.Wo
            if after_relu:
                if not (kind == FRONT_MAX_POOL and s > 0 and fs[s - 1].kind == FRONT_ACT
                        and fs[s - 1].act == LK_RELU and _halving(&st.pool)):
                    raise ValueError("layerkit._core: one backward pass takes a ReLU, then a 2x2 max pooling")
                fs[s - 1].with_pool = True
        elif kind == FRONT_FLATTEN:
            out = size
        else:
            raise ValueError(f"layerkit._core: unknown front stage {kind!r}")
        if kind != FRONT_FLATTEN:
            st.y = _block_data(y, typenum, out, True)
            st.dx = _block_data(dx, typenum, size, True) if st.want_dx else NULL
        size = out
    if size != out_size:
        raise ValueError("layerkit._core: the front's output does not have the chain's input size")
    # the gradients arriving at each stage, from the chain back (a flatten passes its dy on as its dx)
    for s in range(k - 1, -1, -1):
        fs[s].dy = chain_dx if s == k - 1 else fs[s + 1].dx
        if fs[s].kind == FRONT_FLATTEN:
            fs[s].dx = fs[s].dy if fs[s].want_dx else NULL
    return 0


cdef char* _front_forward(FrontStage* fs, int k, char* x, floating* dtype_tag) noexcept nogil:
    """The stages' forward passes from the minibatch ``x``; returns the last stage's output."""
    cdef int s
    cdef FrontStage* st
    for s in range(k):
        st = &fs[s]
        st.x = x
        if st.kind == FRONT_CONV:
            _conv_forward[floating](<floating*>x, <floating*>st.W, <floating*>st.b, <floating*>st.y,
                                    <floating*>st.scratch, &st.conv)
        elif st.kind == FRONT_ACT:
            _act_forward[floating](st.act, <floating*>x, <floating*>st.y, st.size, 1, st.p0, st.p1)
        elif st.kind == FRONT_MAX_POOL:
            _max_pool_forward[floating](<floating*>x, <floating*>st.y, &st.pool)
        elif st.kind == FRONT_AVG_POOL:
            _avg_pool_forward[floating](<floating*>x, <floating*>st.y, &st.pool)
        else:
            st.y = x
        x = st.y
    return x


cdef void _front_backward(FrontStage* fs, int k, floating* dtype_tag) noexcept nogil:
    """The stages' backward passes, from the gradient the chain wrote; the first stage's ``dx`` skipped."""
    cdef int s = k - 1
    cdef FrontStage* st
    while s >= 0:
        st = &fs[s]
        if st.kind == FRONT_CONV:
            _conv_backward[floating](<floating*>st.x, <floating*>st.W, <floating*>st.dy, <floating*>st.dW,
                                     <floating*>st.db, <floating*>st.dx, <floating*>st.scratch, &st.conv)
        elif st.kind == FRONT_MAX_POOL and s > 0 and fs[s - 1].with_pool:
            s -= 1  # the ReLU and the pooling in one pass, into the ReLU's dx
            if fs[s].want_dx:
                _max_pool_relu_backward[floating](<floating*>st.x, <floating*>st.dy, <floating*>fs[s].dx, &st.pool)
        elif st.want_dx:
            if st.kind == FRONT_ACT:
                _act_backward[floating](st.act, <floating*>st.x, <floating*>st.dy, <floating*>st.dx, st.size, 1,
                                        st.p0, st.p1)
            elif st.kind == FRONT_MAX_POOL:
                _max_pool_backward[floating](<floating*>st.x, <floating*>st.dy, <floating*>st.dx, &st.pool)
            elif st.kind == FRONT_AVG_POOL:
                _avg_pool_backward[floating](<floating*>st.dy, <floating*>st.dx, &st.pool)
        s -= 1
