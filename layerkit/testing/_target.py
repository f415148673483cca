"""One interface over a single layer and a whole ``Net`` for the gradient checker.

The checker needs to run forward and backward passes, find every parameter
array and its gradient, rewind random generators before every pass, make a
float64 copy of a float32 layer, and notice state that a forward pass changes.
``CheckTarget`` does exactly that and nothing else.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple

import numpy as np

from layerkit.layers.base import Layer
from layerkit.net import Net

_GENERATORS = (np.random.Generator, np.random.RandomState)


class GradcheckError(ValueError):
    """The checker refuses a layer or an input (not a wrong gradient: that is an ``AssertionError``)."""


class Parameter(NamedTuple):
    """A trainable array of one layer, as the checker names it."""

    name: str
    """``"W"`` for a single layer, ``"layers[0].W"`` inside a ``Net``."""
    owner: Any
    """The layer that holds it."""
    attr: str
    """Attribute name on ``owner``; the gradient is ``"d" + attr``."""


def layers_of(obj: Any) -> list[Any]:
    """The layers of a ``Net``, or ``[obj]`` for a single layer."""
    return list(obj.layers) if isinstance(obj, Net) else [obj]


def all_layers_of(obj: Any) -> list[Any]:
    """``layers_of(obj)`` and every layer nested in them (blocks, nets used as layers)."""
    if isinstance(obj, Net):
        return [layer for _, layer in obj.walk()]
    walk = getattr(obj, "walk", None)  # a block checked on its own
    return [obj] + ([layer for _, layer in walk()] if callable(walk) else [])


def _is_float32(value: Any) -> bool:
    try:
        return np.dtype(value) == np.float32
    except TypeError:
        return False


def float32_reason(obj: Any) -> str | None:
    """Why ``obj`` computes in float32 (a parameter or a ``dtype`` attribute), or ``None``."""
    for index, layer in enumerate(layers_of(obj)):
        prefix = f"layers[{index}]." if isinstance(obj, Net) else ""
        if _is_float32(getattr(layer, "dtype", None)):
            return f"{prefix}dtype is float32"
        for kind in ("parameter", "buffer"):
            for attr in getattr(layer, "param_names" if kind == "parameter" else "state_names", ()):
                value = getattr(layer, attr, None)
                if isinstance(value, np.ndarray) and value.dtype == np.float32:
                    return f"{kind} {prefix}{attr} is float32"
    return None


def float64_copy(obj: Any) -> Any:
    """A deep copy of ``obj`` whose float32 arrays and ``dtype`` attributes are float64."""
    twin = copy.deepcopy(obj)
    for layer in all_layers_of(twin):
        state = getattr(layer, "__dict__", {})
        for key, value in list(state.items()):
            if isinstance(value, np.ndarray) and value.dtype == np.float32:
                state[key] = value.astype(np.float64)
            elif key == "dtype" and _is_float32(value):
                state[key] = np.float64 if isinstance(value, type) else np.dtype(np.float64)
    return twin


def _fingerprint(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", id(value), value.shape, value.dtype.str, value.tobytes())
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return ("value", value)
    return ("object", id(value))


class CheckTarget:
    """A layer or a ``Net`` seen through the operations the checker needs.

    Parameters
    ----------
    obj : Layer or Net
    reset : callable, optional
        Called with ``obj`` before every forward and backward pass.
    """

    def __init__(self, obj: Any, reset: Callable[[Any], None] | None = None) -> None:
        for method in ("forward", "backward"):
            if not callable(getattr(obj, method, None)):
                raise TypeError(
                    f"check_grad: expected a layer or a layerkit.Net with forward() and backward(), "
                    f"got {type(obj).__name__} without {method}()"
                )
        if reset is not None and not callable(reset):
            raise TypeError(f"check_grad: reset must be callable (it receives the layer), got {type(reset).__name__}")
        self.obj = obj
        self.is_net = isinstance(obj, Net)
        self.layers = layers_of(obj)
        self.reset = reset
        self._generator_states = [
            (generator, copy.deepcopy(_generator_state(generator)))
            for layer in all_layers_of(obj)
            for generator in vars_of(layer).values()
            if isinstance(generator, _GENERATORS)
        ]
        # non-trained state a training-mode forward updates (batch norm's running statistics):
        # put back before every pass, so each pass starts from the same state, and at the end
        self._layer_states = [
            (layer, name, getattr(layer, name), np.array(getattr(layer, name), copy=True))
            for layer in all_layers_of(obj)
            if not hasattr(layer, "walk")  # a block's state is its inner layers' (listed themselves)
            for name in getattr(layer, "state_names", ())
            if isinstance(getattr(layer, name, None), np.ndarray)
        ]

    # ------------------------------------------------------------------ passes
    def restore_generators(self) -> None:
        """Put every random generator the layers hold back where it was at the start."""
        for generator, state in self._generator_states:
            _set_generator_state(generator, state)

    def restore_states(self, *, originals: bool = False) -> None:
        """Put every array named in a layer's ``state_names`` back to its value at the start.

        Each pass gets a fresh copy (a layer may update its state in place);
        ``originals=True`` puts the original arrays back, with their values.
        """
        for layer, name, original, saved in self._layer_states:
            if originals:
                if original.flags.writeable and not np.array_equal(original, saved, equal_nan=True):
                    np.copyto(original, saved)
                setattr(layer, name, original)
            else:
                setattr(layer, name, saved.copy())

    def restore(self) -> None:
        """The end of a check: generators and state as they were at the start."""
        self.restore_generators()
        self.restore_states(originals=True)

    def rewind(self) -> None:
        """Restore generators and state, then call ``reset``: the start of every pass."""
        self.restore_generators()
        self.restore_states()
        if self.reset is not None:
            self.reset(self.obj)

    def _pass_methods(self) -> tuple[Any, Any] | None:
        """The layer's own ``forward_pass`` and ``backward_pass``, or None where it keeps the defaults."""
        if self.is_net:
            return None
        cls = type(self.obj)
        own = [getattr(cls, name, None) is not getattr(Layer, name) for name in ("forward_pass", "backward_pass")]
        methods = getattr(self.obj, "forward_pass", None), getattr(self.obj, "backward_pass", None)
        return methods if any(own) and all(callable(m) for m in methods) else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.rewind()
        if self.is_net:
            return self.obj.forward(x)[0]
        methods = self._pass_methods()
        if methods is None:
            return self.obj.forward(x)
        return methods[0](x, getattr(self.obj, "training", True))[0]

    def backward(self, x: np.ndarray, dy: np.ndarray) -> Any:
        """Run the backward pass after a forward pass (for a net's trace, a layer's ``ctx``); return ``dx``.

        A layer with ``forward_pass``/``backward_pass`` runs through them in its
        current mode (``layer.training``), the ``ctx`` of the forward pass going
        to the backward pass, as in a ``Net``.
        """
        if self.is_net:
            self.rewind()
            _, trace = self.obj.forward(x)
            self.rewind()
            return self.obj.backward(trace, dy, input_grad=True)
        methods = self._pass_methods()
        if methods is None:
            self.rewind()
            return self.obj.backward(x, dy)
        forward_pass, backward_pass = methods
        self.rewind()
        _, ctx = forward_pass(x.copy(), getattr(self.obj, "training", True))
        self.rewind()
        return backward_pass(x, ctx, dy)

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> list[Parameter]:
        found = []
        for index, layer in enumerate(self.layers):
            prefix = f"layers[{index}]." if self.is_net else ""
            for attr in getattr(layer, "param_names", ()):
                value = getattr(layer, attr, None)
                if not (isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.flags.writeable):
                    raise TypeError(
                        f"check_grad: parameter {prefix}{attr} of {layer!r} must be a writeable float "
                        f"ndarray to be perturbed in place, got "
                        f"{type(value).__name__}{' of dtype ' + str(value.dtype) if isinstance(value, np.ndarray) else ''}"
                    )
                found.append(Parameter(prefix + attr, layer, attr))
        return found

    def clear_gradients(self) -> None:
        """Set every ``d<name>`` to ``None`` so that a backward that forgets one is caught."""
        for param in self.parameters():
            setattr(param.owner, "d" + param.attr, None)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """A fingerprint of every layer attribute except gradients and generators."""
        snapshot = {}
        for index, layer in enumerate(self.layers):
            prefix = f"layers[{index}]." if self.is_net else ""
            # gradients change by design; generators and declared state are put back before every pass
            skipped = {"d" + attr for attr in getattr(layer, "param_names", ())}
            skipped |= {name for owner, name, _, _ in self._layer_states if owner is layer}
            for key, value in vars_of(layer).items():
                if key not in skipped and not isinstance(value, _GENERATORS):
                    snapshot[prefix + key] = _fingerprint(value)
        return snapshot


def vars_of(obj: Any) -> dict[str, Any]:
    """``vars(obj)``, or ``{}`` for objects without a ``__dict__``."""
    return getattr(obj, "__dict__", {})


def _generator_state(generator: Any) -> Any:
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    return generator.get_state()


def _set_generator_state(generator: Any, state: Any) -> None:
    if isinstance(generator, np.random.Generator):
        generator.bit_generator.state = copy.deepcopy(state)
    else:
        generator.set_state(state)
