"""``Net``: a sequence of layers whose forward pass returns a trace for the backward pass."""
from __future__ import annotations

import numbers
import reprlib
from functools import partial
from typing import Any, Iterator, Mapping, NamedTuple, Sequence, overload

import numpy as np

from layerkit import config as _config
from layerkit import io as _io
from layerkit._backend import core
from layerkit._composite import Composite, structure_changed
from layerkit._deferred import DeferredInputGrad, parameters_changed
from layerkit._plan import Plan, SegmentedPlan, layers_backward, layers_forward
from layerkit._validation import as_optional_rng
from layerkit.layers.base import Layer, constructor_accepts
from layerkit.warnings import check_trainable
from layerkit.workspace import Workspace


class _Entry(NamedTuple):
    layer: Any
    """The layer that ran."""
    x: Any
    """The input it received, shape (n_samples, n_in)."""


def _same(a: Any, b: Any) -> bool:
    """Equality of trace contents: arrays by value, tuples element-wise, everything else by ``==``."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


class TraceEntry(_Entry):
    """What one layer saw during a forward pass: unpacks as ``layer, x``.

    ``entry.ctx`` holds what the layer's ``forward_pass`` returned for its
    ``backward_pass`` (dropout's mask, batch norm's batch statistics), ``None``
    for most layers; it belongs to this pass alone.
    """

    ctx: Any = None  # entries made by ``_make`` (the fused plan) have no ctx of their own

    def __new__(cls, layer: Any, x: Any, ctx: Any = None) -> "TraceEntry":
        entry = super().__new__(cls, layer, x)
        if ctx is not None:
            entry.ctx = ctx
        return entry

    def __reduce__(self) -> tuple:
        return type(self), (self.layer, self.x, self.ctx)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, tuple) or len(other) != 2:
            return NotImplemented
        return (_same(self.layer, other[0]) and _same(self.x, other[1])
                and _same(self.ctx, getattr(other, "ctx", None)))

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        extra = "" if self.ctx is None else f", ctx={type(self.ctx).__name__}"
        return f"TraceEntry(layer={self.layer!r}, x=<{np.shape(self.x)}>{extra})"


class Trace(list):
    """The record of one forward pass: a list of ``TraceEntry(layer, x)`` (with ``entry.ctx``) in order.

    It unpacks like the list of ``(layer, x)`` pairs a hand-written net keeps (``for layer, x in trace``) and
    is the only place where a forward pass's inputs are kept, so a net can run
    several forward passes before their backward passes.
    """

    __slots__ = ("_workspace",)  # (workspace, generation) of a pass that wrote into a workspace

    def walk(self) -> Iterator[tuple[str, "TraceEntry"]]:
        """``(path, entry)`` for every entry, those of blocks' inner passes included, depth first.

        A path is that of the entry's layer in ``net.walk()``: ``dict(trace.walk())["2.f.1"].x`` is
        the input the layer at ``"2.f.1"`` saw in this pass.
        """
        for index, entry in enumerate(self):
            yield str(index), entry
            inner_traces = getattr(entry[0], "inner_traces", None)
            ctx = getattr(entry, "ctx", None)
            if inner_traces is None or ctx is None:
                continue
            for name, inner in inner_traces(ctx):
                prefix = f"{index}.{name}." if name else f"{index}."
                for path, nested in inner.walk():
                    yield prefix + path, nested

    def __repr__(self) -> str:
        shapes = ", ".join(f"{entry.layer!r} <- {np.shape(entry.x)}" for entry in self)
        return f"Trace([{shapes}])"


_make_entry = partial(tuple.__new__, TraceEntry)  # TraceEntry._make, without its Python frame


def _check_layer(layer: Any, index: Any, rng: Any = None, built: bool = True) -> Any:
    """``layer`` checked to be a layer (a spec item built, when ``built``), else a ``TypeError``."""
    if isinstance(layer, (str, Mapping)):  # a spec item: {"type": "linear", ...} or "relu"
        if built:
            return _config.build_layer(layer, index, rng)
        raise TypeError(
            f"Net: item {index} must be a layer, got the spec item {_short(layer)}: the constructor builds "
            "spec items, a net's list of layers takes layers (layerkit.config.build_layer(item) builds one)")
    for method in ("forward", "backward"):
        if not callable(getattr(layer, method, None)):
            raise TypeError(
                f"Net: item {index} must be a layer (a layerkit.Layer subclass, or an object with "
                f"forward(x) and backward(x, dy)), got {type(layer).__name__} without {method}()"
            )
    return layer


class Net(Composite):
    """A feed-forward stack of layers.

    A ``Net`` is itself a layer (registered as ``"net"``): it may be a layer
    of another net or of a block (``layerkit.blocks``). Used so, its
    ``forward_pass`` returns ``(y, trace)``, the trace being the ``ctx`` of
    the outer trace entry, and its parameters are named by path
    (``"0.W"``, see ``walk``).

    Parameters
    ----------
    layers : sequence of Layer or spec items
        Applied in order. Any object with ``forward(x)`` and ``backward(x, dy)``
        (and optionally ``step(update)``) is accepted; subclassing
        ``layerkit.Layer`` is the usual way. A spec item (``"relu"``,
        ``{"type": "linear", "n_in": 4, "n_out": 3}``) is built through the
        registry, as ``Net.from_config`` does.
    rng : None, int or numpy.random.Generator
        Passed to the spec items whose layer accepts ``rng``. A layer that
        is already built has drawn its values: with ``rng`` given, a layer
        built without ``rng`` that draws from a generator (``Linear``,
        ``Dropout``, any layer whose constructor takes ``rng`` and that does
        not set ``seeded = True``) is refused with a ``ValueError``; build it
        with ``rng``, pass a spec item, or call ``net.reset_parameters(seed)``,
        which redraws every parameter. Layers built with their own ``rng``
        keep their draws.

    Attributes
    ----------
    layers : list
        The layers, in order. You may append, remove or replace layers
        afterwards (here and in the blocks inside): the next pass, ``step``,
        ``config``, ``save`` or export checks them again as the constructor
        does, once per change.

    Raises
    ------
    ValueError
        A layer with parameters at two places (a layer keeps one gradient per
        parameter: layerkit does not tie weights), or a net inside itself
        (naming the path of the cycle).
    TypeError
        An item that is neither a layer nor a spec item.

    Examples
    --------
    >>> import numpy as np
    >>> from layerkit import Net, Linear, ReLU, Sigmoid
    >>> net = Net([Linear(4, 3, rng=0), ReLU(), Linear(3, 1, rng=1), Sigmoid()])
    >>> y, trace = net.forward(np.ones((2, 4)))
    >>> dx = net.backward(trace, np.ones_like(y), input_grad=True)  # dW, db and dx
    >>> net.step(0.1)
    """

    example_kwargs = {"layers": [{"type": "linear", "n_in": 4, "n_out": 3, "rng": 0}, "tanh",
                                 {"type": "linear", "n_in": 3, "n_out": 2, "rng": 1}]}

    def __init__(self, layers: Sequence[Layer], *, rng: Any = None) -> None:
        if ((isinstance(layers, (Layer, str, bytes, Mapping)) and not isinstance(layers, Net))
                or not hasattr(layers, "__iter__")):
            raise TypeError(f"Net: layers must be a sequence of layers, got {type(layers).__name__}")
        layers = list(layers)
        if rng is not None:
            _refuse_unreachable_rng(layers, rng)
        rng = as_optional_rng(rng, "Net: rng")
        self.layers = [_check_layer(layer, i, rng) for i, layer in enumerate(layers)]
        self._plan: Plan | SegmentedPlan | _NoPlan | None = None
        self._check_layers()

    _nested: tuple = ()  # the nested composites as checked when the plan was built (see _runner)
    _structure = "layers"

    def _check_children(self) -> None:
        """Every item is a layer (checked again when the list changed since construction)."""
        for index, layer in enumerate(self.layers):
            _check_layer(layer, index, built=False)

    def _parameters_changed(self) -> None:
        self._plan = None  # compiled again at the next pass, from the redrawn arrays

    def children(self) -> list[tuple[str, Any]]:
        """``(str(index), layer)`` for each layer of ``self.layers``."""
        return [(str(index), layer) for index, layer in enumerate(self.layers)]

    def walk(self) -> Iterator[tuple[str, Any]]:
        """``(path, layer)`` for every layer, nested ones included, depth first.

        ``Net.layers`` is the top level; ``walk`` also enters blocks and nets
        used as layers: ``("2", Concatenate(...))``, then
        ``("2.branches.0", Net(...))``, ``("2.branches.0.0", Linear(...))``, ...
        A parameter's name is its layer's path and attribute (``"2.branches.0.0.W"``):
        ``getattr(net, "2.branches.0.0.W")`` reads it, and the optimizers keep
        its state under that key.
        """
        return super().walk()

    def get_config(self) -> dict[str, Any]:
        """``{"layers": spec}``: the spec of the layers (see ``config``)."""
        return {"layers": self.config()}

    def output_features(self, n_in: int | None) -> int | None:
        """Width of the output for an input of width ``n_in`` (``None`` when a layer cannot say)."""
        self._check_layers()
        width = n_in
        for layer in self.layers:
            out = getattr(layer, "output_features", None)
            width = out(width) if out is not None else None
        return width

    # -------------------------------------------------------------- as a layer of another net
    def forward_pass(self, x: np.ndarray, training: bool, *,
                     workspace: Workspace | None = None) -> tuple[np.ndarray, "Trace"]:
        """``(y, trace)`` in the given mode: the net as a layer (its trace is the outer entry's ``ctx``).

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        training : bool
            Mode of every layer of this pass (the layers' own ``training`` is left alone).
        workspace : Workspace, optional
            The workspace of the outer net's pass (this net is one of its
            layers, or inside one of its blocks): this pass writes into its
            buffers too, and its trace is valid as long as the outer one.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        trace : Trace
        """
        plan = self._runner()
        if plan is not None:
            # a single chain holds no layer that depends on the mode
            result = (plan.forward(x, workspace, True) if type(plan) is Plan
                      else plan.forward(x, workspace, training, True))
            if result is not None:
                return result
        trace = Trace()
        y = layers_forward(self.layers, x, trace, _make_entry, training, workspace)
        if workspace is not None:
            trace._workspace = (workspace, workspace.generation)
        return y, trace

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """``backward(ctx, dy, input_grad=True)``: the input gradient of the pass whose trace is ``ctx``."""
        return self.backward(ctx, dy, input_grad=True)

    def inner_traces(self, ctx: "Trace") -> list[tuple[str, "Trace"]]:
        """The net as a layer: its pass's trace holds its own layers' entries (path prefix ``""``)."""
        return [("", ctx)]

    def backward_params(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> None:
        """``backward(ctx, dy, input_grad=False)``: the parameters' gradients alone."""
        self.backward(ctx, dy, input_grad=False)

    def _runner(self) -> Plan | SegmentedPlan | None:
        """The compiled plan of the current layers (recompiled when ``self.layers`` changed), or None.

        A ``Plan`` runs the whole net as one fused chain; a ``SegmentedPlan``
        runs fused segments with the other layers called in between.
        """
        cached = self._plan
        # compares each layer by identity, and the lists of the blocks and nets inside (if any)
        if cached is None or cached.layers != self.layers or (self._nested and structure_changed(self._nested)):
            # the layers as they are now (appended, removed, replaced since construction, nested ones
            # included) pass the constructors' checks, once per change: see Composite._check_layers
            self._nested = self._check_layers()
            cached = self._plan = Plan.compile(self.layers, Trace, TraceEntry) or _NoPlan(self.layers)
        return None if type(cached) is _NoPlan else cached

    def _compiled(self) -> Plan | None:
        """The plan running the whole net as one fused chain, or None."""
        plan = self._runner()
        return plan if type(plan) is Plan else None

    def __getstate__(self) -> dict:
        # the compiled plan is derived from the layers (and holds a C object
        # that does not pickle): copies and pickles rebuild it on first use
        state = self.__dict__.copy()
        state["_plan"] = None
        state.pop("_nested", None)
        state.pop("_checked", None)
        return state

    def workspace(self) -> Workspace:
        """Buffers for allocation-free training steps: ``net.forward(x, workspace=ws)``.

        One workspace serves one trace in flight; see ``layerkit.workspace.Workspace``.
        """
        return Workspace(self)

    # -------------------------------------------------------------- passes
    def forward(self, x: np.ndarray, *, workspace: Workspace | None = None) -> tuple[np.ndarray, Trace]:
        """Run every layer.

        Runs of built-in layers run as fused kernel calls (one per run); any
        other layer is called in between through ``forward_pass``, and the
        results are exactly those of calling the layers one by one.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        workspace : Workspace, optional
            From ``net.workspace()``: the pass (and the backward pass of its
            trace) then writes into the workspace's buffers instead of new
            arrays. ``y`` and the trace's arrays stay valid until the next
            forward pass with the same workspace. Without one, every call
            allocates its own arrays, so any number of passes may be in flight.
            An ``x`` that shares memory with the workspace's buffers (an
            output fed back in) is copied first, so the pass never overwrites
            its own input.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        trace : Trace
            ``TraceEntry(layer, x)`` for each layer, in order: the input each
            layer saw. Pass it to ``backward``.
        """
        if workspace is not None and (not isinstance(workspace, Workspace) or workspace.net is not self):
            raise ValueError(f"Net.forward: workspace must come from this net's workspace(), got {workspace!r}")
        plan = self._runner()
        if plan is not None:
            result = plan.forward(x, workspace)
            if result is not None:
                return result
        trace = Trace()
        if workspace is None:
            return layers_forward(self.layers, x, trace, _make_entry, None), trace
        # no fused part at the top (blocks only, say): the blocks' inner passes use the workspace
        if plan is None:
            workspace.generation += 1
            if type(x) is np.ndarray and workspace._aliased(x):
                x = x.copy(order="K")
        y = layers_forward(self.layers, x, trace, _make_entry, None, workspace)
        trace._workspace = (workspace, workspace.generation)
        return y, trace

    def backward(self, trace: Sequence[TraceEntry], dy: np.ndarray, *,
                 input_grad: bool | None = None) -> np.ndarray | DeferredInputGrad | None:
        """Walk ``trace`` in reverse, leaving each layer's parameter gradients set.

        A ``Linear`` writes its gradients into the ``dW`` and ``db`` arrays it
        already holds (when their shape and dtype fit), so keep a copy if you
        need the gradients of an earlier step.

        Parameters
        ----------
        trace : Trace
            As returned by ``forward`` of this net.
        dy : array_like, shape (n_samples, n_out)
            Gradient of the loss with respect to the net's output.
        input_grad : bool, optional
            ``True``: compute and return the gradient with respect to the
            net's input. ``False``: skip it (a first ``Linear`` then skips
            that matrix product) and return ``None``. Training needs only the
            parameters' gradients, as in PyTorch and JAX, which compute an
            input's gradient only when asked. Not given: skip it, as for
            ``False``; the result stands in for the gradient that earlier
            versions returned (see Returns).

        Returns
        -------
        dx : ndarray of shape (n_samples, n_in), DeferredInputGrad or None
            The input gradient with ``input_grad=True``; ``None`` with
            ``input_grad=False``. Without ``input_grad``, a placeholder that,
            used as an array, emits a ``FutureWarning`` and computes the
            gradient from the same pass then, or raises a ``RuntimeError``
            when a parameter update or a later pass in the same workspace
            has happened since: pass ``input_grad=True`` when you need it.
        """
        # the usual trace, checked in one C loop that also collects the layers' inputs
        saved = core.trace_inputs(trace, self.layers, TraceEntry) if type(trace) is Trace else None
        if saved is None:
            self._check_trace(trace)
        if input_grad is None or input_grad is False or input_grad is True:
            want = input_grad is True
        elif isinstance(input_grad, np.bool_):
            want = input_grad = bool(input_grad)
        else:
            raise TypeError(f"Net.backward: input_grad must be True, False or None, got "
                            f"{type(input_grad).__name__} {input_grad!r}")
        plan = self._runner()
        if plan is not None:
            dx = plan.backward(trace, dy, want, saved)
            if dx is NotImplemented:  # (the plan's backward took what it could with the workspace)
                dx = layers_backward(trace, dy, want, None)
        else:
            workspace = Workspace.of(trace)  # (a RuntimeError for a trace whose workspace was reused since)
            dx = layers_backward(trace, dy, want, workspace)
        if want or input_grad is False or _indices_in(trace):
            return dx  # (None for integer indices, which have no gradient)
        return DeferredInputGrad(self, trace, dy)

    def _check_trace(self, trace: Any) -> None:
        """A trace that ``core.trace_inputs`` did not take: clear errors for what is wrong with it."""
        if not isinstance(trace, (list, tuple)):
            raise TypeError(f"Net.backward: trace must be the Trace returned by forward, got {type(trace).__name__}")
        if len(trace) != len(self.layers):
            raise ValueError(
                "Net.backward: trace does not come from this net's forward "
                f"(expected {len(self.layers)} entries (layer, x) for its layers, got {len(trace)})"
            )
        for index, (entry, layer) in enumerate(zip(trace, self.layers)):
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise ValueError(
                    f"Net.backward: trace entry {index} must be a TraceEntry (layer, x) as forward "
                    f"returned it, got {type(entry).__name__} {_short(entry)}")
            if entry[0] is not layer:
                raise ValueError(
                    f"Net.backward: trace entry {index} holds {entry[0]!r}, not this net's layer "
                    f"{index} ({layer!r}): the trace does not come from this net's forward")

    def step(self, update: Any) -> None:
        """Update every layer's parameters (see ``Layer.step``).

        Parameters
        ----------
        update : float or optimizer
            A learning rate for plain gradient descent, or an optimizer object
            with ``update_layer(layer, key)``: it receives each layer that
            names parameters with ``key=str(index)``, so its state for
            ``net[0].W`` is kept under ``"0.W"`` (see ``layerkit.optim``). A
            block's parameters are named by path, so the state of
            ``net[2].f[0].W`` is kept under ``"2.f.0.W"``.
        """
        parameters_changed()
        indices: Any = range(len(self.layers))
        if type(update) is float or type(update) is int:
            plan = self._runner()
            if plan is not None:
                # True: the plan updated every layer; else the indices of the layers left to their step
                rest = plan.step(update)
                if rest is True:
                    return
                if rest is not False:
                    indices = rest
        elif not isinstance(update, numbers.Real) and getattr(update, "update_layer", None) is not None:
            self._check_layers()  # (an optimizer would update a shared layer once per use)
            self._step_optimizer(update)
            return
        layers = self.layers
        for index in indices:
            layer = layers[index]
            step = getattr(layer, "step", None)
            if step is not None:
                if getattr(type(layer), "step", None) is not Layer.step:  # Layer.step checks for itself
                    check_trainable(layer, optimizer=False)
                elif not layer.param_names:
                    # what Layer.step does for a layer without parameters, without the call (the
                    # check looks for gradient arrays among its attributes: none, nothing to check)
                    if getattr(layer, "__dict__", None):
                        check_trainable(layer, optimizer=False)
                    continue
                step(update)

    def _step_optimizer(self, optimizer: Any) -> None:
        """``Net.step`` with an optimizer: every layer's parameters with their keys, in one call if it can.

        An optimizer with ``update_layers`` (those of ``layerkit.optim``)
        receives all the ``(layer, key)`` pairs at once and runs their updates
        in one call of the core; any other receives ``update_layer(layer, key=...)`` per layer.
        """
        pairs = []
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Composite):  # each inner layer with its path: the same keys, no lookups
                for path, inner in layer.walk():
                    if not isinstance(inner, Composite):
                        if getattr(inner, "param_names", ()):
                            pairs.append((inner, f"{index}.{path}"))
                        else:
                            check_trainable(inner, optimizer=True)
            elif getattr(layer, "param_names", ()):
                pairs.append((layer, str(index)))
            else:  # an optimizer skips it: say so if it holds gradients or its own step()
                check_trainable(layer, optimizer=True)
        update_layers = getattr(optimizer, "update_layers", None)
        if update_layers is not None:
            update_layers(pairs)
        else:
            for layer, key in pairs:
                optimizer.update_layer(layer, key=key)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The output alone, shape (n_samples, n_out), always in inference mode.

        Every layer runs ``forward_pass(x, training=False)`` (no dropout; batch
        norm uses its running statistics and does not update them), whatever
        its ``training`` attribute says; the attribute is left unchanged.
        """
        plan = self._runner()
        if plan is not None:
            result = plan.predict(x)
            if result is not None:
                return result
        for layer in self.layers:
            forward_pass = getattr(layer, "forward_pass", None)
            x = layer.forward(x) if forward_pass is None else forward_pass(x, False)[0]
        return x

    __call__ = predict

    # -------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Net":
        """Set every layer's ``training`` attribute to ``mode``; return the net (as PyTorch does).

        In training mode dropout drops units and batch norm normalises with
        the batch's statistics and updates its running ones; ``fit`` trains in
        training mode whatever the mode was. ``predict`` always runs in
        inference mode.

        Parameters
        ----------
        mode : bool
            ``True`` for training mode, ``False`` for inference mode.

        Returns
        -------
        Net
            This net.
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"Net.train: mode must be True or False, got {type(mode).__name__} {mode!r}")
        self.training = bool(mode)  # every layer's, nested ones included
        return self

    def eval(self) -> "Net":
        """Inference mode on every layer (``net.train(False)``); return the net."""
        return self.train(False)

    # -------------------------------------------------------------- introspection
    @property
    def n_params(self) -> int:
        """Number of trainable scalars in all layers."""
        self._check_layers()
        return sum(_n_params(layer) for layer in self.layers)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first layer that declares one (float64 if none does).

        Blocks and nested nets declare the dtype of their first inner layer
        that declares one, and nothing when none does: in
        ``Net([Concatenate([[ReLU()], [Linear(.., dtype="float32")]])])`` the
        net's dtype is float32.
        """
        declared = self.declared_dtype()
        return np.dtype(np.float64) if declared is None else declared

    def declared_dtype(self) -> np.dtype | None:
        """The dtype of the first layer, nested ones included, that declares one; ``None`` if none does."""
        self._check_layers()
        return first_declared_dtype(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @overload
    def __getitem__(self, index: int) -> Layer: ...
    @overload
    def __getitem__(self, index: slice) -> "Net": ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Net(self.layers[index])
        return self.layers[index]

    @reprlib.recursive_repr("Net(<this net>)")  # (a net inside itself: refused everywhere else, shown here)
    def __repr__(self) -> str:
        return "Net([" + ", ".join(repr(layer) for layer in self.layers) + "])"

    def _summary_rows(self) -> list[tuple[str, str, str, str]]:
        """``(index, layer, output width or "?", parameters)`` for each layer."""
        self._check_layers()
        rows = []
        width = None
        for i, layer in enumerate(self.layers):
            out = getattr(layer, "output_features", None)
            width = out(width) if out is not None else None
            rows.append((str(i), repr(layer), "?" if width is None else str(width), str(_n_params(layer))))
        return rows

    def _repr_html_(self) -> str:
        """The summary of ``print(net)`` as an HTML table (Jupyter shows it for a net at the end of a cell)."""
        from layerkit._html import html_table

        return html_table(("#", "layer", "out", "params"), self._summary_rows(), caption=f"Net of {len(self)} layers",
                          notes=[f"total params: {self.n_params}"], right=(0, 2, 3))

    def __str__(self) -> str:
        rows = self._summary_rows()
        header = ("#", "layer", "out", "params")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]
        line = lambda r: f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
        body = [line(header)] + [line(r) for r in rows]
        body.append(f"total params: {self.n_params}")
        return "\n".join(body)

    # -------------------------------------------------------------- configs and files
    # Thin doors to layerkit.config and layerkit.io, where the logic lives.
    @classmethod
    def from_config(cls, spec: Any, *, seed: Any = None) -> "Net":
        """Build a net from a spec: a list of layer names or ``{"type": name, **arguments}`` dicts.

        Parameters
        ----------
        spec : list of (str or dict), or dict with "layers" (and optionally "seed")
            Read one from a JSON or TOML file with ``layerkit.config.load_spec``.
        seed : None, int or numpy.random.Generator
            Seeds one Generator passed as ``rng`` to every layer that accepts it.

        Raises
        ------
        layerkit.config.ConfigError
            Naming the item's index and what is wrong.
        """
        return cls(_config.build_layers(spec, seed=seed))

    def config(self) -> list:
        """The spec of this net: ``Net.from_config(net.config())`` rebuilds its architecture."""
        return _config.net_config(self)

    def save(self, path: Any, *, optimizer: Any = None) -> None:
        """Write architecture and parameters (and optionally an optimizer's state) to ``path``.

        See ``layerkit.io.save_net``: an ``.npz`` file, written atomically.
        """
        _io.save_net(self, path, optimizer=optimizer)

    @classmethod
    def load(cls, path: Any, *, optimizer: Any = None) -> "Net | tuple[Net, Any]":
        """Read a net written by ``save`` (or a ``fit`` checkpoint); predictions are bit-identical.

        Parameters
        ----------
        path : str or path-like
        optimizer : Optimizer or True, optional
            An optimizer instance receives the stored optimizer state (its
            type must match). ``True`` rebuilds the stored optimizer and
            returns it with the net: ``net, opt = Net.load(path, optimizer=True)``.

        Returns
        -------
        Net, or (Net, Optimizer) with ``optimizer=True``

        See ``layerkit.io.load_layers``; raises ``layerkit.io.ModelFileError``
        for a file that cannot be loaded, saying why.
        """
        layers, loaded = _io.load_with_optimizer(path, optimizer=optimizer)
        return (cls(layers), loaded) if optimizer is True else cls(layers)


def _draws_from_rng(layer: Any) -> bool:
    """Whether a built ``layer`` (or a layer inside it) drew its values from fresh entropy (no ``rng`` given)."""
    if isinstance(layer, Composite):
        return any(_draws_from_rng(child) for _, child in layer.children())
    return constructor_accepts(type(layer), "rng") and not getattr(layer, "seeded", False)


def _refuse_unreachable_rng(layers: list, rng: Any) -> None:
    """``Net(layers, rng=...)`` with layers already built from their own draws: a clear error, not a silent no-op."""
    built = [f"{index} ({layer!r})" for index, layer in enumerate(layers)
             if not isinstance(layer, (str, Mapping)) and _draws_from_rng(layer)]
    if built:
        raise ValueError(
            f"Net: rng={_short(rng)} seeds only the spec items (such as {{'type': 'linear', ...}}), but "
            f"item{'s' if len(built) > 1 else ''} {', '.join(built)} {'are' if len(built) > 1 else 'is'} already "
            f"built from fresh entropy; build those layers with rng=..., "
            "or leave out Net's rng and call "
            "net.reset_parameters(seed) to redraw every parameter from one seed")


def first_declared_dtype(layers: Sequence[Any]) -> np.dtype | None:
    """The dtype of the first of ``layers`` that declares one (blocks: through ``declared_dtype``), or None."""
    for layer in layers:
        declared = getattr(layer, "declared_dtype", None)
        dtype = declared() if callable(declared) else getattr(layer, "dtype", None)
        if dtype is not None:
            return np.dtype(dtype)
    return None


def _indices_in(trace: Sequence[Any]) -> bool:
    """Whether the net's input was integer indices (an ``Embedding`` first), which have no gradient."""
    kind = getattr(getattr(trace[0][1], "dtype", None), "kind", "f") if len(trace) else "f"
    return kind in "iu"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _NoPlan:
    """Remembers that a list of layers has no plan, so it is not compiled again at every call."""

    def __init__(self, layers: list) -> None:
        self.layers = list(layers)


def _n_params(layer: Any) -> int:
    if isinstance(layer, Layer):
        return layer.n_params
    return int(sum(np.size(getattr(layer, name)) for name in getattr(layer, "param_names", ())))
