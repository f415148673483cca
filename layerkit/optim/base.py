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
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from layerkit._backend import core
from layerkit._deferred import parameters_changed
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
    hyperparameters in ``hyperparameters()``. The built-in optimizers also
    name the compiled loop that computes their ``_update`` bit for bit
    (``_kernel_rule``, marked with ``compiled_as``); it runs whenever the
    arrays allow, the NumPy ``_update`` otherwise, and a subclass that
    overrides ``_update`` keeps its own rule.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, or a schedule evaluated at each parameter's update index
        (see ``layerkit.optim.schedules``).
    weight_decay : float
        Coefficient of the L2 penalty ``weight_decay/2 * ||p||**2`` added to the
        gradient (decoupled from the gradient in ``AdamW``). By default it
        applies to every parameter, biases included, as in ``torch.optim``.
    decay_biases : bool, keyword-only
        ``False`` exempts the biases from ``weight_decay``, as scikit-learn's
        ``MLPClassifier`` exempts its intercepts from ``alpha``. "Biases" means
        every parameter with fewer than two dimensions: biases and the scales
        and shifts of normalisation layers. See ``decay_for``.

    Attributes
    ----------
    state : dict of str to dict
        Per parameter key (``"0.W"``): ``{"step": int, <slot>: ndarray}``.
    """

    slots: tuple[str, ...] = ()

    def __init__(self, lr: float | Schedule, weight_decay: float = 0.0, *, decay_biases: bool = True) -> None:
        name = type(self).__name__
        self.lr = as_schedule(lr, f"{name}: lr")
        self.weight_decay = _check_real(weight_decay, f"{name}: weight_decay", low=0.0)
        if not isinstance(decay_biases, (bool, np.bool_)):
            raise TypeError(f"{name}: decay_biases must be a bool, got {type(decay_biases).__name__}")
        self.decay_biases = bool(decay_biases)
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
        state.setdefault("decay_biases", True)  # pickled before the option existed
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
    def decay_for(self, param: np.ndarray) -> float:
        """The weight decay applied to ``param``: 0 for a bias (``ndim < 2``) unless ``decay_biases``."""
        return 0.0 if (not self.decay_biases and param.ndim < 2) else self.weight_decay

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
        self._update_all([(layer, key)])

    def update_layers(self, pairs: Sequence[tuple[Any, str | None]]) -> None:
        """``update_layer(layer, key)`` for each pair, the compiled updates in one call of the core.

        ``Net.step`` hands every layer of a net at once, so that the updates of
        all its parameters run in one pass of compiled loops (see ``_rule``).

        Parameters
        ----------
        pairs : sequence of tuple
            ``(layer, key)`` pairs, as ``update_layer`` takes them, in order.
        """
        if type(self).update_layer is not Optimizer.update_layer:  # a subclass's own per-layer rule
            for layer, key in pairs:
                self.update_layer(layer, key)
            return
        self._update_all(pairs)

    def _update_all(self, pairs: Sequence[tuple[Any, str | None]]) -> None:
        parameters_changed()
        rule = self._rule()
        batches: dict[Any, list] = {}
        try:
            for layer, key in pairs:
                check_trainable(layer, optimizer=True)
                prefix = self.name_layer(layer) if key is None else key
                for name, param, grad in named_parameters(layer):
                    item = self._prepared_update(f"{prefix}.{name}", param, grad, f"{layer!r}.{name}", rule)
                    if item is not None:
                        batches.setdefault(param.dtype, []).append(item)
        finally:  # (also when a later layer raises: every update counted is done, as one by one)
            for items in batches.values():
                core.optim_update(rule[0], rule[1], items)

    def update_param(self, key: str, param: np.ndarray, grad: np.ndarray, *, who: str | None = None) -> None:
        """Update one array in place, with the state kept under ``key``.

        Parameters
        ----------
        key : str
            Stable name of the parameter, such as ``"0.W"``.
        param : ndarray, any shape, float32 or float64, writeable
        grad : array_like, shape of ``param``
        """
        parameters_changed()
        rule = self._rule()
        item = self._prepared_update(key, param, grad, who or key, rule)
        if item is not None:
            core.optim_update(rule[0], rule[1], [item])

    def _prepared_update(self, key: str, param: Any, grad: Any, who: str, rule: Any) -> tuple | None:
        """Check ``param`` and ``grad``, count the update and read its learning rate.

        Returns the core's ``(param, grad, slots, lr, step, decay)`` item when
        the compiled rule can take the arrays as they are; else runs the NumPy
        rule (``_update``) at once (a non-contiguous view, another dtype or
        byte order, a subclass's own rule) and returns ``None``.
        """
        if not isinstance(param, np.ndarray) or param.dtype.kind != "f" or not param.flags.writeable:
            raise TypeError(f"{type(self).__name__}: parameter {who} must be a writeable float ndarray "
                            f"to be updated in place, got {type(param).__name__} "
                            f"{getattr(param, 'dtype', '')}")
        if type(grad) is not np.ndarray:
            grad = np.asarray(grad)
        if grad.shape != param.shape:
            raise ValueError(f"{type(self).__name__}: gradient of {who} must have the parameter's shape "
                             f"{param.shape}, got {grad.shape}")
        if grad.dtype != param.dtype:
            grad = grad.astype(param.dtype)
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
        step = state["step"] = state["step"] + 1
        if rule is not None and _compiled_fits(param):
            slots = self._kernel_slots(state)
            if all(slot is None or slot.flags.c_contiguous for slot in slots):
                if not grad.flags.c_contiguous:
                    grad = np.ascontiguousarray(grad)
                return param, grad, slots, float(lr), step, self.decay_for(param)
        self._update(param, grad, state, lr, step)
        return None

    # ------------------------------------------------------------------ the compiled rule
    def _rule(self) -> tuple[int, tuple[float, ...]] | None:
        """``(kind, hyperparameters)`` of the core's loop for this optimizer's rule, or None.

        ``None`` for an optimizer whose ``_update`` is not a built-in rule (a
        subclass's own): it runs in NumPy.
        """
        if getattr(type(self)._update, "_compiled_as", None) is not type(self)._kernel_rule:
            return None
        return self._kernel_rule()

    def _kernel_rule(self) -> tuple[int, tuple[float, ...]] | None:
        return None

    def _kernel_slots(self, state: dict[str, Any]) -> tuple:
        """The state arrays in the order of the core's loop (None where the rule has none)."""
        return tuple(state[slot] for slot in self.slots)

    def _initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {slot: np.zeros_like(param) for slot in self.slots}

    def decay_for(self, param: np.ndarray) -> float:
        """The weight decay that applies to ``param``.

        Parameters
        ----------
        param : ndarray, any shape

        Returns
        -------
        float
            ``0.0`` for a bias (a parameter of fewer than two dimensions: biases,
            norm scales and shifts) when ``decay_biases`` is False, else
            ``weight_decay``.
        """
        return 0.0 if (not self.decay_biases and param.ndim < 2) else self.weight_decay

    def _decayed(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient with the L2 term ``decay_for(param) * param`` added (a new array if it is)."""
        decay = self.decay_for(param)
        return grad + decay * param if decay else grad

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ saving
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments other than ``lr``, JSON-able."""
        return {"weight_decay": self.weight_decay, "decay_biases": self.decay_biases}

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


def compiled_as(rule: Callable) -> Callable:
    """Mark an ``_update`` (the NumPy rule) as the one that the core's loop of ``rule`` computes.

    ``Optimizer._rule`` uses the core only while a class's ``_update`` and
    ``_kernel_rule`` are the marked pair, so a subclass that changes the rule
    in Python keeps its own rule.
    """
    def mark(update: Callable) -> Callable:
        update._compiled_as = rule
        return update
    return mark


def _compiled_fits(param: np.ndarray) -> bool:
    """``param`` is what the core's loops update in place: C-contiguous, aligned, native float32/float64."""
    dtype = param.dtype
    return (dtype == np.float64 or dtype == np.float32) and param.flags.c_contiguous and param.flags.aligned


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
