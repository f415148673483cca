"""``Composite``: what a layer made of layers (a ``Net``, a block) shares.

A composite names its direct children (``children()``: ``("0", layer)`` for a
net, ``("f", net)`` for a residual block, ``("branches.1", net)`` for a
branch). Everything else follows from that:

- ``walk()`` yields ``(path, layer)`` for every layer inside, nested ones
  included (``"2.branches.0.1"``);
- ``param_names`` and ``state_names`` are the paths of the inner layers'
  arrays (``"branches.0.1.W"``), and ``getattr``/``setattr`` accept those
  paths, with ``"d" + path`` for a gradient (``"dbranches.0.1.W"``). So the
  code that reads a layer's parameters by name (optimizers, clipping,
  diagnostics, gradient checks, files) reaches the nested layers unchanged,
  and an optimizer's state key for a nested parameter is its path
  (``"2.branches.0.1.W"``);
- ``training`` set on a composite is set on every child;
- ``step(rate)`` steps every child (each inner net through its fused plan).
"""
from __future__ import annotations

import numbers
from typing import Any, Iterator

from layerkit._validation import InputSpec, input_spec_of
from layerkit.layers.base import Layer


class Composite(Layer):
    """Base class of layers made of layers (see the module docstring)."""

    _checked: Any = None  # (children, nested composites) as last checked by _check_layers
    _structure: str | None = None  # the attribute holding the children (a list, or the one child), else None
    supports_need_dx = False  # (see backward_params instead; a class attribute: no __getattr__ on the path)
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): the inner passes use the net's workspace

    def children(self) -> list[tuple[str, Any]]:
        """``(name, layer)`` of each direct child, in order of use."""
        raise NotImplementedError(f"{type(self).__name__} must define children()")

    def input_spec(self) -> InputSpec:
        """What the input must be: asked of the children in order (see ``input_spec_of``).

        ``fit``, ``evaluate`` and the estimators check ``x`` with it: a net
        starting with ``Embedding`` takes integer indices, one starting with
        ``BatchNorm2d`` takes ``(n_samples, C, H, W)``.
        """
        return input_spec_of(layer for _, layer in self.children())

    @property
    def input_ranks(self) -> tuple[int, int | None] | None:  # type: ignore[override]
        """The ranks its first deciding layer takes (``None`` when no layer inside decides)."""
        spec = self.input_spec()
        return None if spec.layer is None else spec.ranks

    @property
    def integer_input(self) -> bool:  # type: ignore[override]
        """Whether its first deciding layer takes integer indices."""
        return self.input_spec().integer

    # ------------------------------------------------------------------ paths
    def walk(self) -> Iterator[tuple[str, Any]]:
        """``(path, layer)`` for every layer inside, depth first, a composite before its children.

        Paths join names with dots: ``"0"`` for a net's first layer,
        ``"2.branches.0.1"`` for the second layer of the first branch of a
        block at index 2.

        Raises
        ------
        ValueError
            When a composite contains itself (``net.layers.append(net)``),
            naming the path of the cycle.
        """
        return _walk(self, [(self, f"this {type(self).__name__}")], "")

    def _child_layers(self) -> list[Any]:
        """The direct children, in order: what a change to this composite's structure changes."""
        return [child for _, child in self.children()]

    def _check_children(self) -> None:
        """This composite's own checks of its direct children.

        Blocks check what their constructors check (a non-empty chain, widths
        that fit); ``Net`` that every item is a layer. Raises ``ValueError`` or
        ``TypeError``.
        """

    def _check_layers(self) -> tuple:
        """Check the layers inside, once per change of the structure: ``ValueError``/``TypeError`` if wrong.

        The checks construction makes, for the layers as they are now
        (appended, removed or replaced since, in blocks and nested nets too):
        no cycle (``walk``), each composite's own checks, and no layer with
        parameters at two places. The result is cached until a composite's
        children change; returns the nested composites with their children
        as checked (see ``structure_changed``).
        """
        checked = self._checked
        if checked is None or _current(self) != checked[0] or (checked[1] and structure_changed(checked[1])):
            nested = self._check_tree()
            checked = self._checked = (_snapshot(self), nested)
        return checked[1]

    def _check_tree(self) -> tuple:
        entries = list(self.walk())  # the cycles first, named from here
        seen: dict[int, str] = {}
        for path, layer in entries:  # then the shared layers, named from here too
            if isinstance(layer, Composite) or not getattr(layer, "param_names", ()):
                continue  # (an activation at two places computes the same; workspaces give each use its array)
            first = seen.setdefault(id(layer), path)
            if first != path:
                raise ValueError(
                    f"{type(self).__name__}: the layer {layer!r} is used twice, at {first} and {path}; a "
                    "layer keeps one gradient per parameter, so the second use's gradients would replace the "
                    "first's. Give each place its own layer (copy.deepcopy(layer) for a copy)")
        self._check_children()
        nested = []
        for path, layer in entries:
            if isinstance(layer, Composite):
                try:
                    layer._check_children()
                except (ValueError, TypeError) as error:
                    raise type(error)(f"{type(self).__name__}: layer {path}: {error}") from None
                nested.append((layer, layer._structure, _snapshot(layer)))
        return tuple(nested)

    def _child(self, path: str) -> tuple[Any, str]:
        """``(child, rest)`` for a dotted ``path`` that starts with a child's name (``rest`` may be "")."""
        children = dict(self.children())
        head, dot, rest = path.partition(".")
        while True:
            child = children.get(head)
            if child is not None:
                return child, rest
            if not dot:
                raise AttributeError(f"{self!r} has no layer at {path!r} (its children: {', '.join(children)})")
            part, dot, rest = rest.partition(".")
            head = f"{head}.{part}"

    def _owner(self, path: str) -> tuple[Any, str]:
        """The layer holding the array at ``path`` (``"f.0.W"``) and the array's attribute name (``"W"``)."""
        child, rest = self._child(path)
        if isinstance(child, Composite) and "." in rest:
            return child._owner(rest)
        if not rest or "." in rest:
            raise AttributeError(f"{self!r}: {path!r} does not name an array of a layer inside it")
        return child, rest

    def _resolve(self, name: str) -> tuple[Any, str]:
        """``(layer, attribute)`` for ``name``: an array path, or ``"d" + path`` for its gradient."""
        if name[:1] == "d":  # a gradient first (no child's name starts with "d"): the optimizers' lookup
            try:
                owner, attr = self._owner(name[1:])
                return owner, "d" + attr
            except AttributeError:
                pass
        return self._owner(name)

    def __getattr__(self, name: str) -> Any:
        # only called when the ordinary lookup failed: dotted paths to inner arrays
        if "." not in name or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        owner, attr = self._resolve(name)
        return getattr(owner, attr)

    def __setattr__(self, name: str, value: Any) -> None:
        if "." in name:
            owner, attr = self._resolve(name)
            setattr(owner, attr, value)
        else:
            object.__setattr__(self, name, value)

    @property
    def param_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """Paths of every trainable array inside (``"f.0.W"``), in order."""
        return self._paths("param_names")

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """Paths of every saved, non-trained array inside (batch norm's running statistics)."""
        return self._paths("state_names")

    def _paths(self, kind: str) -> tuple[str, ...]:
        self._check_layers()  # (a cycle would recurse for ever; a shared layer would be listed twice)
        return tuple(f"{name}.{attr}" for name, child in self.children() for attr in getattr(child, kind, ()))

    def check_state(self) -> None:
        """Each inner layer's ``check_state`` (``ValueError`` naming the path of a bad one)."""
        for path, layer in self.walk():
            check = getattr(layer, "check_state", None)
            if check is not None and not isinstance(layer, Composite) and getattr(layer, "state_names", ()):
                try:
                    check()
                except (ValueError, TypeError) as error:
                    raise type(error)(f"{self!r}: layer {path}: {error}") from error

    def forward(self, x: Any) -> Any:
        """The output of ``forward_pass(x, self.training)`` (a block's; ``Net.forward`` returns its trace too)."""
        self._check_layers()
        return self.forward_pass(x, self.training)[0]

    def backward(self, x: Any, dy: Any) -> Any:
        """The backward pass of a fresh forward pass over ``x``.

        The inner layers' per-pass state (dropout's masks, batch statistics)
        is that of the fresh pass; ``Net`` keeps the pass's own in its trace,
        so go through ``Net.forward``/``Net.backward`` to train.
        """
        self._check_layers()
        return self.backward_pass(x, self.forward_pass(x, self.training)[1], dy)

    def backward_params(self, x: Any, ctx: Any, dy: Any) -> None:
        """``backward_pass`` without the input gradient: only the parameters' gradients are left.

        A net calls it for its first layer when its own input gradient is not
        asked for (``input_grad=False``, as in training); the inner passes
        then skip their input gradients too. The default runs ``backward_pass``.
        """
        self.backward_pass(x, ctx, dy)

    # ------------------------------------------------------------------ modes and updates
    @property
    def training(self) -> bool:  # type: ignore[override]
        """Training mode; setting it sets every child's."""
        return self.__dict__.get("_training", True)

    @training.setter
    def training(self, mode: bool) -> None:
        mode = bool(mode)
        self.__dict__["_training"] = mode
        for _, layer in self.walk():  # (not child by child: walk refuses a cycle)
            if isinstance(layer, Composite):
                layer.__dict__["_training"] = mode
            else:
                layer.training = mode

    def reset_parameters(self, rng: Any = None) -> None:
        """Redraw the parameters of every layer inside from its initialiser, in place.

        One generator made from ``rng`` is handed to the children in order
        (``walk`` order, nested layers included), so one seed reproduces the
        whole composite: the same seed gives the same values whatever the
        values were before. Layers given their own ``rng`` when built are
        redrawn from this one too.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator

        Raises
        ------
        TypeError
            A layer inside that cannot redraw its parameters (see ``Layer.reset_parameters``).
        """
        from layerkit._validation import as_rng

        generator = as_rng(rng, f"{type(self).__name__}.reset_parameters: rng")
        for _, child in self.children():
            reset = getattr(child, "reset_parameters", None)
            if reset is not None:
                reset(generator)
            elif getattr(child, "param_names", ()):
                raise TypeError(f"{type(self).__name__}.reset_parameters: {child!r} has parameters "
                                f"{tuple(child.param_names)} but no reset_parameters(rng)")
        self._parameters_changed()

    def _parameters_changed(self) -> None:
        """Hook after ``reset_parameters``: a composite that caches anything of its parameters drops it."""

    def step(self, update: Any) -> None:
        """Step every child with ``update`` (a learning rate or an optimizer).

        An optimizer given here directly keeps its state under this
        composite's own name; an outer ``Net.step`` instead hands the
        optimizer each inner layer with its path as the key (``"2.f.0"``), so
        nothing calls this method then.
        """
        self._check_layers()
        if type(update) is float or (isinstance(update, numbers.Real) and not isinstance(update, bool)):
            for _, child in self.children():
                child.step(float(update))
            return
        super().step(update)


def _walk(composite: Composite, ancestors: list, prefix: str) -> Iterator[tuple[str, Any]]:
    """``Composite.walk`` below ``composite`` (at ``prefix``); ``ancestors``: the ``(composite, path)`` above."""
    for name, child in composite.children():
        path = prefix + name
        yield path, child
        if not isinstance(child, Composite):
            continue
        for index, (ancestor, where) in enumerate(ancestors):
            if ancestor is child:
                cycle = " -> ".join([where for _, where in ancestors[index:]] + [path])
                what = where if index == 0 else f"the layer at {where}"
                raise ValueError(
                    f"{type(ancestors[0][0]).__name__}: the layer at {path} is {what}, which contains it "
                    f"(cycle: {cycle}); a net or block cannot contain itself")
        ancestors.append((child, path))
        yield from _walk(child, ancestors, path + ".")
        ancestors.pop()


def check_layers_of(obj: Any) -> None:
    """``obj._check_layers()`` for a net or block (what a walk without the plan checks first), else nothing."""
    if isinstance(obj, Composite):
        obj._check_layers()


def _current(composite: Composite) -> Any:
    """What holds ``composite``'s children now: its list (or one child) in ``_structure``, else ``_child_layers()``."""
    attr = composite._structure
    return composite._child_layers() if attr is None else getattr(composite, attr)


def _snapshot(composite: Composite) -> Any:
    """``_current(composite)``, a list copied: what ``structure_changed`` compares with later."""
    current = _current(composite)
    return list(current) if isinstance(current, list) else current


def structure_changed(nested: tuple) -> bool:
    """Whether a composite of ``nested`` (``(composite, _structure, snapshot)`` triples) changed since.

    Lists compare their items by identity first (layers define no ``==``), one child by identity.
    """
    for composite, attr, children in nested:
        if (composite._child_layers() if attr is None else getattr(composite, attr)) != children:
            return True
    return False
