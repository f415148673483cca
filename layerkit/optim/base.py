"""``Optimizer``: per-parameter state keyed by a stable name, updates in place.

How a step reaches an optimizer
-------------------------------
``net.step(opt)`` calls ``opt.update_layer(layer, key=str(i))`` for the layer
at index ``i``, so the state of ``net[0].W`` is kept under ``"0.W"``.
``layer.step(opt)`` on a lone layer calls ``opt.update_layer(layer)``; the
optimizer then names the layer itself (``"layer0"``, ``"layer1"``, ... in the
order it first sees layers, or a name given with ``name_layer``), remembered
in a map with weak references to the layers, so the state is never keyed by
``id()`` of an object that may die and be replaced. Layers hold no update
rule: an optimizer reads ``layer.param_names``, the arrays and their
gradients ``d<name>``, and changes the arrays in place.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

import numpy as np

from layerkit._composite import check_layers_of
from layerkit.warnings import check_trainable
from layerkit.optim.schedules import Schedule, _check_real, as_schedule, schedule_from_config


def named_parameters(layer: Any) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, array, gradient)`` for each name in ``layer.param_names``.

    Raises
    ------
    RuntimeError
        If the layer has no stored gradient ``d<name>`` yet.
    """
    for name in getattr(layer, "param_names", ()):
        grad = getattr(layer, "d" + name, None)
        if grad is None:
            raise RuntimeError(f"{layer!r}: no gradient d{name} yet; call backward(x, dy) before step()")
        yield name, getattr(layer, name), grad


class Optimizer:
    """Base class of the optimizers in ``layerkit.optim``.

    Subclasses define ``_update(param, grad, state, lr, step)``, which changes
    ``param`` in place, list their state arrays in ``slots`` and their
    hyperparameters in ``hyperparameters()``.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, or a schedule evaluated at each parameter's update index
        (see ``layerkit.optim.schedules``).
    weight_decay : float
        Coefficient of the L2 penalty ``weight_decay/2 * ||p||**2`` added to the
        gradient (decoupled from the gradient in ``AdamW``). It applies to every
        parameter, biases included, as in ``torch.optim``.

    Attributes
    ----------
    state : dict of str to dict
        Per parameter key (``"0.W"``): ``{"step": int, <slot>: ndarray}``.
    """

    slots: tuple[str, ...] = ()

    def __init__(self, lr: float | Schedule, weight_decay: float = 0.0) -> None:
        name = type(self).__name__
        self.lr = as_schedule(lr, f"{name}: lr")
        self.weight_decay = _check_real(weight_decay, f"{name}: weight_decay", low=0.0)
        self.state: dict[str, dict[str, Any]] = {}
        self._layer_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._layers_named = 0  # never decreases, so a dead layer's name is never given again

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        # weak references do not pickle: keep the names of the lone layers as
        # pairs, so an optimizer pickled with its layers (a fitted estimator
        # sent to a worker) still finds their state after unpickling
        state = self.__dict__.copy()
        state["_layer_names"] = list(self._layer_names.items())
        return state

    def __setstate__(self, state: dict) -> None:
        names = state.pop("_layer_names", [])
        self.__dict__.update(state)
        self._layer_names = weakref.WeakKeyDictionary(names)

    # ------------------------------------------------------------------ naming
    def name_layer(self, layer: Any, name: str | None = None) -> str:
        """The key prefix of a lone layer's state: ``name``, or one assigned on first use."""
        try:
            known = self._layer_names.get(layer)
        except TypeError:
            raise TypeError(f"{type(self).__name__}: cannot keep state for {type(layer).__name__}, which "
                            "supports no weak references; step it through a Net or pass key=") from None
        if name is not None:
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"{type(self).__name__}.name_layer: name must be a non-empty str "
                                 f"without '/', got {name!r}")
            self._layer_names[layer] = name
            return name
        if known is None:
            known = self._layer_names[layer] = f"layer{self._layers_named}"
            self._layers_named += 1
        return known

    # ------------------------------------------------------------------ updates
    def update_layer(self, layer: Any, key: str | None = None) -> None:
        """Update every parameter of ``layer`` from its stored gradient.

        Parameters
        ----------
        layer : Layer
            Any object with ``param_names`` whose arrays and ``d<name>``
            gradients are set.
        key : str, optional
            Prefix of the state keys (``Net.step`` passes the layer's index);
            by default a name this optimizer assigns to the layer.
        """
        check_trainable(layer, optimizer=True)
        prefix = self.name_layer(layer) if key is None else key
        for name, param, grad in named_parameters(layer):
            self.update_param(f"{prefix}.{name}", param, grad, who=f"{layer!r}.{name}")

    def update_param(self, key: str, param: np.ndarray, grad: np.ndarray, *, who: str | None = None) -> None:
        """Update one array in place, with the state kept under ``key``.

        Parameters
        ----------
        key : str
            Stable name of the parameter, such as ``"0.W"``.
        param : ndarray, any shape, float32 or float64, writeable
        grad : array_like, shape of ``param``
        """
        who = who or key
        if not isinstance(param, np.ndarray) or param.dtype.kind != "f" or not param.flags.writeable:
            raise TypeError(f"{type(self).__name__}: parameter {who} must be a writeable float ndarray "
                            f"to be updated in place, got {type(param).__name__} "
                            f"{getattr(param, 'dtype', '')}")
        grad = np.asarray(grad)
        if grad.shape != param.shape:
            raise ValueError(f"{type(self).__name__}: gradient of {who} must have the parameter's shape "
                             f"{param.shape}, got {grad.shape}")
        grad = grad.astype(param.dtype, copy=False)
        state = self.state.get(key)
        if state is None:
            state = self.state[key] = {"step": 0, **self._initial_state(param)}
        else:
            for slot in self.slots:
                if state[slot].shape != param.shape or state[slot].dtype != param.dtype:
                    raise ValueError(
                        f"{type(self).__name__}: state {key!r} was made for an array of shape "
                        f"{state[slot].shape} ({state[slot].dtype}), but {who} has shape {param.shape} "
                        f"({param.dtype}); use one optimizer per net"
                    )
        lr = self.lr(state["step"])
        state["step"] += 1
        self._update(param, grad, state, lr, state["step"])

    def _initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {slot: np.zeros_like(param) for slot in self.slots}

    def _decayed(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient with the L2 term ``weight_decay * param`` added (a new array if it is)."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ saving
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments other than ``lr``, JSON-able."""
        return {"weight_decay": self.weight_decay}

    def config(self) -> dict[str, Any]:
        """``{"type": class name, "lr": schedule config, **hyperparameters}``."""
        return {"type": type(self).__name__, "lr": self.lr.config(), **self.hyperparameters()}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: ``{"config": dict, "arrays": {str: ndarray}}``.

        ``config`` is JSON-able; ``arrays`` holds copies of the state, named
        ``"<key>/<slot>"`` (``"0.W/exp_avg"``) and ``"<key>/step"`` (0-d int64).
        """
        arrays: dict[str, np.ndarray] = {}
        for key, state in self.state.items():
            arrays[f"{key}/step"] = np.array(state["step"], dtype=np.int64)
            for slot in self.slots:
                arrays[f"{key}/{slot}"] = state[slot].copy()
        return {"config": self.config(), "arrays": arrays}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters, schedule and state saved by ``state_dict``.

        Raises
        ------
        ValueError
            If the dict comes from another optimizer type or misses arrays.
        """
        name = type(self).__name__
        config, arrays = _checked_state_dict(state_dict, f"{name}.load_state_dict")
        if config["type"] != name:
            raise ValueError(f"{name}.load_state_dict: the state comes from {config['type']!r}, not {name}")
        restored = _build(type(self), config, f"{name}.load_state_dict")
        state: dict[str, dict[str, Any]] = {}
        for array_name, value in arrays.items():
            key, _, slot = array_name.rpartition("/")
            if not key or slot not in ("step", *restored.slots):
                raise ValueError(f"{name}.load_state_dict: unexpected array {array_name!r}; expected "
                                 f"'<key>/<slot>' with slot in {('step', *restored.slots)}")
            entry = state.setdefault(key, {})
            if slot == "step":
                entry[slot] = _checked_step(value, f"{name}.load_state_dict: {array_name!r}")
            else:
                entry[slot] = _checked_slot(value, f"{name}.load_state_dict: {array_name!r}")
        for key, entry in state.items():
            missing = {"step", *restored.slots} - set(entry)
            if missing:
                raise ValueError(f"{name}.load_state_dict: parameter {key!r} misses {sorted(missing)}")
        names, named = self._layer_names, self._layers_named
        self.__dict__.update(restored.__dict__)
        self._layer_names, self._layers_named = names, named
        self.state = state

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr!r}, {fields})"


def optimizer_from_state_dict(state_dict: dict[str, Any]) -> Optimizer:
    """A new optimizer of the saved type, restored from ``Optimizer.state_dict()``."""
    from layerkit.optim import OPTIMIZERS

    config, _ = _checked_state_dict(state_dict, "optimizer_from_state_dict")
    cls = OPTIMIZERS.get(config["type"])
    if cls is None:
        raise ValueError(f"optimizer_from_state_dict: unknown optimizer type {config['type']!r}; "
                         f"expected one of {sorted(OPTIMIZERS)}")
    optimizer = _build(cls, config, "optimizer_from_state_dict")
    optimizer.load_state_dict(state_dict)
    return optimizer


def net_parameters(net: Any) -> dict[str, np.ndarray]:
    """The trainable arrays of a net (or a sequence of layers) keyed as ``net.step`` keys them (``"0.W"``)."""
    check_layers_of(net)  # (a shared layer would be listed, and updated, once per use)
    layers = getattr(net, "layers", net)
    return {f"{index}.{name}": getattr(layer, name)
            for index, layer in enumerate(layers) for name in getattr(layer, "param_names", ())}


# ---------------------------------------------------------------------- checks of saved state
def _checked_state_dict(state_dict: Any, who: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, arrays)`` of a state dict, or a ValueError/TypeError naming what is malformed."""
    if not isinstance(state_dict, dict) or set(state_dict) != {"config", "arrays"}:
        raise ValueError(f"{who}: expected a dict with keys 'config' and 'arrays', got "
                         f"{sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__}")
    config, arrays = state_dict["config"], state_dict["arrays"]
    if not isinstance(config, dict):
        raise TypeError(f"{who}: 'config' must be a dict (Optimizer.config()), got {type(config).__name__} {config!r:.60}")
    if not isinstance(arrays, dict):
        raise TypeError(f"{who}: 'arrays' must be a dict of str to arrays, got {type(arrays).__name__}")
    for where, mapping in (("config", config), ("arrays", arrays)):
        bad = [key for key in mapping if not isinstance(key, str)]
        if bad:
            raise TypeError(f"{who}: the keys of {where!r} must be strings, got {bad[:3]!r}")
    if not isinstance(config.get("type"), str):
        raise ValueError(f"{who}: 'config' must name the optimizer class in 'type' (a str), got "
                         f"{config.get('type')!r}")
    return config, arrays


def _build(cls: type, config: dict[str, Any], who: str) -> "Optimizer":
    """A new ``cls`` from a saved config, with the errors of a bad config as ValueError naming it."""
    if "lr" not in config:
        raise ValueError(f"{who}: 'config' has no 'lr' (the learning rate or its schedule's config); "
                         f"it has {sorted(config)}")
    lr = config["lr"]
    if isinstance(lr, dict):
        try:
            lr = schedule_from_config(lr)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{who}: 'lr' is not a valid schedule config ({error})") from error
    hyper = {key: value for key, value in config.items() if key not in ("type", "lr")}
    try:
        return cls(lr=lr, **hyper)
    except (TypeError, ValueError) as error:
        # the constructor's own message, prefixed by who was loading (an unexpected key, a bad beta)
        raise ValueError(f"{who}: the config does not fit {cls.__name__} ({error})") from error


def _checked_step(value: Any, who: str) -> int:
    try:
        step = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists: NumPy's own message does not say whose count it was
        raise ValueError(f"{who}: the update count must be an integer scalar, got {value!r:.60}") from None
    if step.shape != () or step.dtype.kind not in "iu" and not (step.dtype.kind == "f" and float(step).is_integer()):
        raise ValueError(f"{who}: the update count must be an integer scalar, got {value!r:.60}")
    if int(step) < 0:
        raise ValueError(f"{who}: the update count must be >= 0, got {int(step)}")
    return int(step)


def _checked_slot(value: Any, who: str) -> np.ndarray:
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{who}: expected a float array, got {type(value).__name__}")
    try:
        array = np.array(value, copy=True)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{who}: expected a float array, got {type(value).__name__} ({error})") from error
    if array.dtype.kind != "f":
        raise TypeError(f"{who}: expected a float array, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{who}: holds NaN or infinite values")
    return array.astype(array.dtype.newbyteorder("="), copy=False)
