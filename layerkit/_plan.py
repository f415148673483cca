"""The compiled fast path of a ``Net``: fused segments of built-in layers.

A net's layers are split into *parts*. A maximal run of built-in layers the
chain can take (``Linear`` and the built-in activations, every ``Linear`` of
one dtype, widths that chain) holding at least one ``Linear`` becomes a
*segment*: one ``_core.DenseChain`` in which each ``Linear`` and the
activation that follows it form one stage. One kernel call runs a segment's
forward pass (matrix product, bias and activation per stage) and one its
backward pass (activation gradient, ``dW``, ``db``, ``dx`` per stage, the
input's ``dx`` skipped when not needed), with the GIL released throughout.
Every other layer (a custom Python layer, a plugin's layer, dropout, a
normalisation layer, a ``Linear`` subclass, an activation standing alone) is
a part of its own, called in between through the per-pass protocol
(``forward_pass(x, training)`` / ``backward_pass(x, ctx, dy)`` where the layer
defines them, else ``forward(x)`` / ``backward(x, dy)``). A net of built-in
layers only is a single segment. The SGD update is one call of in-place axpys
per segment.

The plan computes exactly what the layers compute (the same kernels, in the
same order), keeps no per-call state, and writes the trace the layers would
have written (``TraceEntry(layer, x)`` for every layer, with ``ctx`` for
protocol layers). Whatever a segment cannot take as it is (an input of
another dtype or layout, a parameter replaced by a list) goes through the
same checks and conversions as its layers, with the same messages, or the
segment runs its layers one by one.

When the net's input is a ``scipy.sparse`` matrix and the first layer is a
``Linear``, that layer runs by itself (its products go through scipy) and the
rest of its segment is fused.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np

from layerkit._backend import core
from layerkit._batches import is_sparse
from layerkit._fusable import chain_activation, is_dense
from layerkit._validation import check_batch, check_grad_output
from layerkit.workspace import workspace_of


def build_chain(layers: Sequence[Any]) -> Any:
    """The ``DenseChain`` of ``layers``: built-in ``Linear`` layers (at least one) and activations.

    Each ``Linear`` and the activation right after it are one stage; an
    activation after an activation, or before the first ``Linear``, is a
    stage of its own.
    """
    linears = [layer for layer in layers if is_dense(layer)]
    holders: list = []
    acts: list = []
    params: list = []
    widths = [linears[0].n_in]
    for layer in layers:
        if is_dense(layer):
            holders.append(layer)
            acts.append(core.ACT_NONE)
            params.append((0.0, 0.0))
            widths.append(layer.n_out)
            continue
        code, values = chain_activation(layer)
        if acts and acts[-1] == core.ACT_NONE and holders[-1] is not None:
            acts[-1], params[-1] = code, values
        else:
            holders.append(None)
            acts.append(code)
            params.append(values)
            widths.append(widths[-1])
    return core.DenseChain(holders, acts, widths, linears[0].dtype, params)


class Plan:
    """A net of built-in layers compiled into one ``DenseChain`` (see the module docstring)."""

    def __init__(self, layers: list, trace_type: type, entry_type: type) -> None:
        self.layers = list(layers)
        self.linears = [layer for layer in layers if is_dense(layer)]
        self.dtype = self.linears[0].dtype
        self.chain = build_chain(self.layers)
        self.n_in = self.linears[0].n_in
        self._sparse: Any = None
        self.last = layers[-1]
        self.last_is_linear = is_dense(self.last)
        self._trace_type = trace_type
        self._entry_type = entry_type
        self._entry = partial(tuple.__new__, entry_type)  # entry_type._make, without its Python frame

    @staticmethod
    def compile(layers: Sequence[Any], trace_type: type, entry_type: type) -> "Plan | SegmentedPlan | None":
        """The plan of ``layers``.

        A ``Plan`` (one chain) when they are all built-ins it can fuse, a
        ``SegmentedPlan`` when some of them can be fused in segments, else ``None``.
        """
        if not layers:
            return None
        if is_dense(layers[0]):
            dtypes = set()
            for layer in layers:
                if is_dense(layer):
                    dtypes.add(np.dtype(layer.dtype))
                elif chain_activation(layer) is None:
                    break
            else:
                linears = [layer for layer in layers if is_dense(layer)]
                widths_chain = all(a.n_out == b.n_in for a, b in zip(linears, linears[1:]))
                if len(dtypes) == 1 and widths_chain:
                    return Plan(list(layers), trace_type, entry_type)
        if any(is_dense(layer) for layer in layers) or any(map(_relu_then_max_pool, layers, layers[1:])):
            return SegmentedPlan(list(layers), trace_type, entry_type)
        return None

    def _sparse_plan(self) -> "SegmentedPlan":
        """The plan for a ``scipy.sparse`` input: the first ``Linear`` through the layer, the rest fused."""
        if self._sparse is None:
            self._sparse = SegmentedPlan(self.layers, self._trace_type, self._entry_type,
                                         split_first=True, owner=self)
        return self._sparse

    # ------------------------------------------------------------------ passes
    def forward(self, x: Any, workspace: Any, nested: bool = False) -> tuple[np.ndarray, Any] | None:
        """``(y, trace)``, or ``None`` when the net must run its layers one by one.

        ``nested``: the pass of an inner net (a block's) within an outer pass
        with the same workspace, which has started a new generation already and
        whose input is no buffer of this plan's chain.
        """
        chain = self.chain
        buffers = None
        if workspace is not None and not nested:
            workspace.generation += 1
        if type(x) is np.ndarray and x.ndim > 2:
            return None  # (n_samples, ..., n_in): the layers reshape it themselves, one by one
        if workspace is not None and type(x) is np.ndarray and x.ndim == 2:
            buffers = workspace._buffers_for(self, chain, x.shape[0])
            # an output of this workspace fed back in: the pass would overwrite it
            if not nested and workspace._aliased(x):
                x = x.copy(order="K")
        out = chain.forward(x, buffers)
        if out is None:
            if is_sparse(x):
                return self._sparse_plan().forward(x, workspace, nested=True)
            # the first layer's own checks and conversion (same messages), then the parameters'
            x = check_batch(x, repr(self.linears[0]), n_features=self.n_in, dtype=self.dtype,
                            allow_fortran=True)
            for layer in self.linears:
                layer._params_checked()
            if workspace is not None:
                buffers = workspace._buffers_for(self, chain, x.shape[0])
                if not nested and workspace._aliased(x):
                    x = x.copy(order="K")
            out = chain.forward(x, buffers)
            if out is None:
                return None
        y, saved = out
        if workspace is not None and buffers is not None:
            layers = self.layers
            trace = self._trace_type((self._entry((layers[0], saved[0])),)
                                     + workspace._trace_tail(chain, layers, saved, self._entry))
        else:
            trace = self._trace_type(map(self._entry, zip(self.layers, saved)))
        if workspace is not None:
            trace._workspace = (workspace, workspace.generation)
        else:
            trace._workspace = None  # set: reading an unset slot raises (and costs a microsecond) in backward
        return y, trace

    def predict(self, x: Any) -> np.ndarray | None:
        """The output in inference mode, or ``None`` when the net must run its layers one by one."""
        result = self.forward(x, None)
        return None if result is None else result[0]

    def backward(self, trace: Any, dy: Any, input_grad: bool, saved: list | None = None) -> Any:
        """The input gradient (``None`` unless ``input_grad``), or ``NotImplemented``.

        ``saved``: the trace's inputs ``entry[1]``, when the caller collected them.
        """
        buffers = None
        if saved is None:
            saved = [entry[1] for entry in trace]
        n = saved[0].shape[0] if type(saved[0]) is np.ndarray and saved[0].ndim == 2 else None
        if n is None:
            if is_sparse(saved[0]):
                return self._sparse_plan().backward(trace, dy, input_grad)
            return NotImplemented
        workspace = workspace_of(trace)
        if workspace is not None:
            buffers = workspace._buffers_for(self, self.chain, n)
        dx = self.chain.backward(saved, dy, buffers, input_grad)
        if dx is NotImplemented:
            _check_rows(trace, n)
            if not self.last_is_linear and np.ndim(saved[-1]) != 2:
                return NotImplemented  # None, a number: the layers' own checks refuse it, with their messages
            # the last layer's own checks and conversion of dy (same messages), then once more
            who = repr(self.last)
            dtype = self.dtype
            shape = (n, self.last.n_out if self.last_is_linear else np.shape(saved[-1])[1])
            dy = check_grad_output(dy, who, shape, dtype, allow_fortran=self.last_is_linear)
            for layer in self.linears:
                layer._params_checked()
            dx = self.chain.backward(saved, dy, buffers, input_grad)
        return dx

    def step(self, rate: float) -> bool:
        """Plain gradient descent on every parameter; ``False`` when the layers must do it."""
        return self.chain.sgd(rate)


def _check_rows(trace: Any, n: int) -> None:
    """A hand-edited trace: every entry's input must be a 2-D batch of ``n`` rows (clear errors).

    An empty batch (``n == 0``) is fine when its inputs keep their columns
    (``np.empty((0, n_features))``): the backward pass then gives empty input
    gradients and zero parameter gradients, as the forward pass gives an
    empty output. Written as nested lists (``[]``) it has no columns, and is refused.
    """
    for i, entry in enumerate(trace):
        x = entry[1]
        if is_sparse(x):
            continue  # converted (or refused) by the layer itself, with its message
        shape = getattr(x, "shape", None)
        if shape is None:
            if not isinstance(x, (list, tuple)):
                continue  # converted (or refused) by the layer itself, with its message
            try:
                shape = np.shape(x)  # nested lists: an empty batch written [] has shape (0,)
            except ValueError:  # ragged lists
                raise ValueError(f"Net.backward: trace entry {i} ({entry[0]!r}) holds {type(x).__name__} "
                                 "of ragged rows, expected a 2-D batch (n_samples, n_features)") from None
        if len(shape) != 2:
            hint = ("; an empty batch must keep its columns: np.empty((0, n_features))"
                    if len(shape) == 1 and shape[0] == 0 else "")
            raise ValueError(f"Net.backward: trace entry {i} ({entry[0]!r}) holds an input of shape "
                             f"{tuple(shape)}, expected a 2-D batch (n_samples, n_features){hint}")
        if shape[0] != n:
            raise ValueError(f"Net.backward: trace entry {i} ({entry[0]!r}) holds an input of {shape[0]} "
                             f"rows, but entry 0 holds {n}: the trace was edited or mixes passes")


class _Segment:
    """Layers ``start:stop`` of a net: one fused ``chain``, or one layer called through Python (``chain`` None)."""

    __slots__ = ("start", "stop", "chain", "linears", "layers", "lead_act")

    def __init__(self, layers: list, start: int, stop: int, chain: Any) -> None:
        self.start, self.stop, self.chain = start, stop, chain
        self.layers = layers[start:stop]
        self.linears = [layer for layer in self.layers if is_dense(layer)]
        # a chain starting with an activation stage reads its input element by element: C order only
        self.lead_act = chain is not None and not is_dense(self.layers[0])


class SegmentedPlan:
    """A net with layers the chain cannot take: fused segments of built-in layers, the others called between.

    Every maximal run of layers that starts with a built-in ``Linear`` and
    continues with ``Linear`` layers (of the same dtype, with matching widths)
    and built-in activations is one ``DenseChain``; every other layer (custom
    and plugin layers, dropout, normalisations, an activation that starts the
    net or follows such a layer) is called through the per-pass protocol
    (``forward_pass(x, training)`` / ``backward_pass(x, ctx, dy)``, or
    ``forward``/``backward`` for objects without them), exactly as the
    layer-by-layer path calls it. The trace holds every layer's input (and
    ``ctx``). A segment whose input the chain cannot take as it is (another
    dtype or layout, a sparse matrix) runs its layers one by one, so the
    results are those of the layer-by-layer path, bit for bit.

    Parameters
    ----------
    layers : list
    trace_type, entry_type : type
        The net's ``Trace`` and ``TraceEntry``.
    split_first : bool
        Call the first layer through Python even when it is a ``Linear`` (the
        plan for ``scipy.sparse`` inputs).
    owner : Plan or SegmentedPlan, optional
        The plan whose workspace buffers this one shares (itself by default).
    """

    def __init__(self, layers: list, trace_type: type, entry_type: type, *, split_first: bool = False,
                 owner: Any = None) -> None:
        self.layers = list(layers)
        self.owner = self if owner is None else owner
        self._trace_type = trace_type
        self._entry_type = entry_type
        self._entry = partial(tuple.__new__, entry_type)  # entry_type._make, without its Python frame
        self._sparse: Any = None
        self.segments: list[_Segment] = []
        i, count = 0, len(self.layers)
        while i < count:
            j, dtype, width, dense = i, None, None, 0
            while j < count and not (split_first and j == 0):
                layer = self.layers[j]
                if is_dense(layer):
                    if dtype is not None and (np.dtype(layer.dtype) != dtype or layer.n_in != width):
                        break
                    dtype, width, dense = np.dtype(layer.dtype), layer.n_out, dense + 1
                elif chain_activation(layer) is None:
                    break
                j += 1
            if dense:  # a run of built-in layers holding a Linear: one chain
                self.segments.append(_Segment(self.layers, i, j, build_chain(self.layers[i:j])))
                i = j
            else:  # activations alone, then the layer that ended the run, each called by itself
                for k in range(i, max(j, i + 1) if j > i else i + 1):
                    self.segments.append(_Segment(self.layers, k, k + 1, None))
                i = max(j, i + 1)
        self._first_fused = self.segments[0].chain is not None
        self._rest = tuple(seg.start for seg in self.segments if seg.chain is None)  # one layer each
        # what the passes loop over: (chain or None, the segment's layers, _Segment)
        self._parts = [(seg.chain, seg.layers, seg) for seg in self.segments]
        # (start, stop, chain or None, want_dx when the net's input gradient is not asked for, whether the
        # segment is a MaxPool2d right after a stand-alone ReLU: one backward pass for both)
        after_relu = {b.start for a, b in zip(self.segments, self.segments[1:])
                      if a.chain is None and b.chain is None and _relu_then_max_pool(a.layers[0], b.layers[0])}
        self._reversed = [(seg.start, seg.stop, seg.chain, seg.start > 0, seg.start in after_relu)
                          for seg in reversed(self.segments)]
        self._chains = [(seg.start, seg.stop, seg.chain) for seg in self.segments if seg.chain is not None]

    def _sparse_plan(self) -> "SegmentedPlan":
        if self._sparse is None:
            self._sparse = SegmentedPlan(self.layers, self._trace_type, self._entry_type,
                                         split_first=True, owner=self.owner)
        return self._sparse

    # ------------------------------------------------------------------ passes
    def forward(self, x: Any, workspace: Any, training: bool | None = None,
                nested: bool = False) -> tuple[Any, Any]:
        """``(y, trace)``; ``training`` None: each layer's own mode, else that mode for every layer.

        ``nested`` as for ``Plan.forward``. Blocks and inner nets called in
        between receive the workspace too.
        """
        if workspace is not None and not nested:
            workspace.generation += 1
        if type(x) is not np.ndarray:
            if self._first_fused and is_sparse(x):
                return self._sparse_plan().forward(x, workspace, training, nested=True)
        elif workspace is not None and not nested and workspace._aliased(x):
            x = x.copy(order="K")  # an output of this workspace fed back in: the pass would overwrite it
        trace = self._trace_type()
        trace._workspace = None  # (set below with a workspace): backward reads it
        make = self._entry
        for chain, layers, segment in self._parts:
            if chain is None:
                x = layer_forward(layers[0], x, trace, make, training, workspace)
                continue
            out = None
            if type(x) is np.ndarray and x.ndim == 2:
                # the usual case: straight into the chain (with the workspace's buffers); the chain
                # answers None for what it cannot take (a Fortran-ordered input of an activation stage)
                out = chain.forward(x, None if workspace is None else
                                    workspace._buffers_for(self.owner, chain, x.shape[0]))
            if out is None:
                out = self._chain_forward(segment, x, workspace)
            if out is None:
                x = layers_forward(layers, x, trace, make, training, workspace)
                continue
            x, saved = out
            if workspace is None:
                trace.extend(map(make, zip(layers, saved)))
            else:
                trace.append(make((layers[0], saved[0])))
                trace.extend(workspace._trace_tail(chain, layers, saved, make))
        if workspace is not None:
            trace._workspace = (workspace, workspace.generation)
        return x, trace

    def _chain_forward(self, segment: _Segment, x: Any, workspace: Any) -> Any:
        chain = segment.chain
        buffers = None
        if type(x) is np.ndarray and x.ndim > 2:
            return None  # (n_samples, ..., n_in): the layers reshape it themselves, one by one
        if segment.lead_act and (type(x) is not np.ndarray or not x.flags.c_contiguous):
            return None  # the activation layers convert and lay out such an input themselves
        if workspace is not None and type(x) is np.ndarray and x.ndim == 2:
            buffers = workspace._buffers_for(self.owner, chain, x.shape[0])
        out = chain.forward(x, buffers)
        if out is not None or segment.start > 0 or segment.lead_act or is_sparse(x):
            # inside the net, an input the chain cannot take (another dtype, a layout) runs the layers
            # one by one, so that the trace keeps exactly the inputs the layers saw
            return out
        # the net's input: the first layer's checks and conversion, as the whole-net plan does
        first = segment.linears[0]
        x = check_batch(x, repr(first), n_features=first.n_in, dtype=first.dtype, allow_fortran=True)
        for layer in segment.linears:
            layer._params_checked()
        if workspace is not None:
            buffers = workspace._buffers_for(self.owner, chain, x.shape[0])
            if workspace._aliased(x):
                x = x.copy(order="K")
        return chain.forward(x, buffers)

    def predict(self, x: Any) -> Any:
        """The output in inference mode (``forward_pass(x, False)`` for every layer called through Python)."""
        return self.forward(x, None, training=False)[0]

    def backward(self, trace: Any, dy: Any, input_grad: bool, saved: list | None = None) -> Any:
        """The input gradient (``None`` unless ``input_grad``); ``saved`` as for ``Plan.backward``."""
        first = trace[0][1]
        if self._first_fused and type(first) is not np.ndarray and is_sparse(first):
            return self._sparse_plan().backward(trace, dy, input_grad)
        workspace = workspace_of(trace)
        skip = -1
        for start, stop, chain, inner, after_relu in self._reversed:
            if start == skip:
                continue
            want_dx = input_grad or inner
            if chain is None:
                if after_relu:
                    dx = relu_max_pool_backward(trace[start - 1], trace[start], dy, workspace)
                    if dx is not None:
                        dy, skip = dx, start - 1
                        continue
                dy = layer_backward(trace[start], dy, want_dx, workspace)
                continue
            part = saved[start:stop] if saved is not None else [entry[1] for entry in trace[start:stop]]
            x = part[0]
            if type(x) is np.ndarray and x.ndim == 2:  # (NotImplemented for what the chain cannot take)
                dx = chain.backward(part, dy, None if workspace is None else
                                    workspace._buffers_for(self.owner, chain, x.shape[0]), want_dx)
                if dx is not NotImplemented:
                    dy = dx
                    continue
            dy = layers_backward(trace[start:stop], dy, want_dx, workspace)
        return dy if input_grad else None

    def step(self, rate: float) -> tuple[int, ...]:
        """Plain gradient descent through the chains; the indices of the layers left to their own ``step``.

        A chain whose parameters do not fit (replaced by lists, say) updates
        nothing, and its layers are left to their ``step`` too.
        """
        failed: list | None = None
        for start, stop, chain in self._chains:
            if not chain.sgd(rate):
                failed = (failed or []) + list(range(start, stop))
        if failed is None:
            return self._rest
        return tuple(sorted(set(self._rest).union(failed)))


def _relu_then_max_pool(first: Any, second: Any) -> bool:
    """A built-in ``ReLU``, then a built-in ``MaxPool2d`` (a conv net's usual pair; its geometry is checked
    per pass): the pair whose backward passes the plan runs as one."""
    from layerkit.layers.pooling import MaxPool2d
    from layerkit.layers.relu import ReLU

    return type(first) is ReLU and type(second) is MaxPool2d


def halving(pool: Any) -> bool:
    """``pool`` (a ``MaxPool2d``) has the 2x2 window, stride 2 and no padding that the one-pass backward takes."""
    return pool.kernel_size == (2, 2) and pool.stride == (2, 2) and pool.padding == (0, 0)


def relu_max_pool_backward(relu_entry: Any, pool_entry: Any, dy: Any, workspace: Any) -> Any:
    """The input gradient of a ``ReLU`` followed by a 2x2, stride-2 ``MaxPool2d``, in one pass over the arrays.

    Bit-identical to the pooling's backward followed by the ReLU's (the ReLU's
    gradient passes where its output, the pooling's input, is not ``<= 0``).
    ``None`` when the pooling has another geometry or the arrays are not the
    plain case (then each layer runs its own backward).
    """
    pool, x = pool_entry
    relu, relu_x = relu_entry
    if not (halving(pool) and type(x) is np.ndarray and x.ndim == 4 and x.shape[0] > 0 and x.flags.c_contiguous
            and (x.dtype == np.float32 or x.dtype == np.float64)
            and type(relu_x) is np.ndarray and relu_x.shape == x.shape and relu_x.dtype == x.dtype
            and type(dy) is np.ndarray and dy.dtype == x.dtype and dy.flags.c_contiguous
            and dy.shape == pool.output_shape(x.shape)):
        return None
    dx = np.empty_like(x) if workspace is None else workspace._array(relu, "dx", x.shape, x.dtype)
    return core.max_pool_relu_backward(pool._geometry(x), x, dy, dx)


def layer_forward(layer: Any, x: Any, trace: list, make: Any, training: bool | None,
                  workspace: Any = None) -> Any:
    """One layer's forward through the per-pass protocol: appends its trace entry, returns its output.

    ``make((layer, x))`` makes the entry, with ``ctx`` set where the layer's
    ``forward_pass`` returned one; ``training`` None runs the layer in its
    own mode, else in that mode. A layer made of layers (``accepts_workspace``)
    also receives the pass's ``workspace``.
    """
    forward_pass = getattr(layer, "forward_pass", None)
    if forward_pass is None:
        trace.append(make((layer, x)))
        return layer.forward(x)
    if workspace is not None:
        y = _activation_forward(layer, x, workspace)
        if y is not None:
            trace.append(make((layer, x)))
            return y
    mode = getattr(layer, "training", True) if training is None else training
    if workspace is not None and getattr(type(layer), "accepts_workspace", False):
        y, ctx = forward_pass(x, mode, workspace=workspace)
    else:
        y, ctx = forward_pass(x, mode)
    entry = make((layer, x))
    if ctx is not None:
        entry.ctx = ctx
    trace.append(entry)
    return y


def layers_forward(layers: Sequence[Any], x: Any, trace: list, make: Any, training: bool | None,
                   workspace: Any = None) -> Any:
    """The layer-by-layer forward of ``layers`` (``Net.forward``'s general path, for a part of the net).

    Calls ``layer_forward`` for each layer in turn; returns the output.
    """
    for layer in layers:
        x = layer_forward(layer, x, trace, make, training, workspace)
    return x


def _plain(x: Any, code: int) -> bool:
    """``x`` is what activation ``code`` takes as it is: a C-ordered float32/float64 array, 2-D (or, for an
    element-wise activation, of any rank >= 2: a conv net's feature maps)."""
    return (type(x) is np.ndarray and (x.ndim == 2 or x.ndim > 2 and code != core.ACT_SOFTMAX and x.shape[0] > 0)
            and (x.dtype == np.float64 or x.dtype == np.float32) and x.flags.c_contiguous)


def _activation_forward(layer: Any, x: Any, workspace: Any) -> Any:
    """A stand-alone built-in activation's output, written into the workspace; ``None`` for other layers.

    The layer's own kernel with its own parameters (bit-identical to
    ``layer.forward``), for an input the layer would take as it is.
    """
    act = chain_activation(layer)
    if act is None or not _plain(x, act[0]):
        return None
    code, (p0, p1) = act
    return core.activation_forward(code, x, workspace._array(layer, "y", x.shape, x.dtype), p0, p1)


def _activation_backward(layer: Any, x: Any, dy: Any, workspace: Any) -> Any:
    """``_activation_forward``'s backward pass (``None``: the layer's own ``backward`` must run)."""
    act = chain_activation(layer)
    if (act is None or not _plain(x, act[0]) or type(dy) is not np.ndarray or dy.shape != x.shape
            or dy.dtype != x.dtype or not dy.flags.c_contiguous):
        return None
    code, (p0, p1) = act
    return core.activation_backward(code, x, dy, workspace._array(layer, "dx", x.shape, x.dtype), p0, p1)


def layer_backward(entry: Any, dy: Any, want_dx: bool, workspace: Any = None) -> Any:
    """One trace entry's backward through the per-pass protocol: the input gradient.

    Without ``want_dx``, a layer that supports it (``supports_need_dx``)
    skips its input gradient, and ``None`` is returned. With the pass's
    ``workspace``, a stand-alone built-in activation writes into it.
    """
    layer, x = entry
    if workspace is not None:
        dx = _activation_backward(layer, x, dy, workspace)
        if dx is not None:
            return dx
    if not want_dx:
        if getattr(layer, "supports_need_dx", False):
            layer.backward(x, dy, need_dx=False)
            return None
        params_only = getattr(layer, "backward_params", None)  # blocks: the inner passes skip it too
        if params_only is not None:
            params_only(x, getattr(entry, "ctx", None), dy)
            return None
    backward_pass = getattr(layer, "backward_pass", None)
    if backward_pass is None:
        return layer.backward(x, dy)
    return backward_pass(x, getattr(entry, "ctx", None), dy)


def layers_backward(entries: Sequence[Any], dy: Any, want_dx: bool, workspace: Any = None) -> Any:
    """The layer-by-layer backward of ``entries`` (``Net.backward``'s general path, for a part of the net)."""
    last = len(entries) - 1
    for i, entry in enumerate(reversed(entries)):
        dy = layer_backward(entry, dy, want_dx or i != last, workspace)
    return dy
