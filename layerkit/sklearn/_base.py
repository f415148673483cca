"""What ``NetClassifier`` and ``NetRegressor`` share: hyperparameters, the net, the optimizer, training."""
from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from layerkit import config, registry
from layerkit.callbacks import EarlyStopping
from layerkit.history import History
from layerkit.net import Net
from layerkit.losses import check_sample_weight
from layerkit.optim import OPTIMIZERS
from layerkit.optim.base import Optimizer
from layerkit.training import fit as fit_net

OPTIMIZER_NAMES = {name.lower(): cls for name, cls in OPTIMIZERS.items()}
DTYPES = ("float64", "float32")


def _accepted(name: str) -> set[str] | None:
    """The constructor arguments of the registered layer ``name`` (None: any or unknown)."""
    try:
        signature = inspect.signature(registry.get(name))
    except (registry.RegistryError, TypeError, ValueError):
        return None  # build_layer reports unknown names with the registry's suggestion
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return set(signature.parameters)


def _filled(item: Any, width: int, dtype: str, where: str) -> Any:
    """``item`` with ``n_in`` or ``n`` (the width reaching it) and ``dtype`` set where its layer takes them.

    A bare name (``"batch_norm"``) becomes ``{"type": name, ...}`` when its layer takes one of them.
    """
    if isinstance(item, str):
        accepted = _accepted(item)
        if accepted is None or not accepted & {"n_in", "n", "dtype"}:
            return item
        item = {"type": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a layer name or a dict with a 'type' key, got {item!r}")
    item = dict(item)
    accepted = _accepted(item.get("type")) if isinstance(item.get("type"), str) else None
    for key, value in (("n_in", width), ("n", width), ("dtype", dtype)):
        if key not in item and accepted is not None and key in accepted:
            item[key] = value
    return item


class NetEstimator(BaseEstimator):
    """Base class of the layerkit estimators; see ``NetClassifier`` for the parameters."""

    def __init__(self, hidden_layers: Sequence[Any] = ({"type": "linear", "n_out": 32}, "relu"), *,
                 loss: Any = None, optimizer: str = "adam", learning_rate: float = 0.01,
                 momentum: float = 0.0, optimizer_params: dict | None = None, epochs: int = 50,
                 batch_size: int = 32, shuffle: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, patience: int = 5, dtype: str = "float64",
                 random_state: Any = None, verbose: int = 0) -> None:
        self.hidden_layers = hidden_layers
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.optimizer_params = optimizer_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ what subclasses define
    def _targets(self, y: np.ndarray, *, first: bool, classes: Any = None) -> np.ndarray:
        """Encode ``y`` for the loss (and learn the classes or targets on the first call)."""
        raise NotImplementedError

    def _head(self) -> tuple[int, list[Any], str]:
        """``(n_outputs, layers after the last Linear, loss)`` for the fitted targets."""
        raise NotImplementedError

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        return None

    # ------------------------------------------------------------------ checks
    def _name(self) -> str:
        return type(self).__name__

    def _check_params(self) -> None:
        who = self._name()

        def integer(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")

        def real(name: str, low: float, high: float, high_open: bool = True) -> None:
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
                value < high if high_open else value <= high)
            if not ok:
                raise ValueError(f"{who}: {name} must be a number in [{low}, {high}{')' if high_open else ']'}, "
                                 f"got {value!r}")

        integer("epochs", 1)
        integer("batch_size", 1)
        integer("patience", 1)
        if not isinstance(self.verbose, bool):
            integer("verbose", 0)
        real("learning_rate", 0.0, np.inf)
        real("momentum", 0.0, 1.0)
        real("validation_fraction", 0.0, 1.0)
        if self.early_stopping and self.validation_fraction == 0:
            raise ValueError(f"{who}: early_stopping needs validation_fraction > 0, got 0")
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZER_NAMES:
            raise ValueError(f"{who}: optimizer must be one of {sorted(OPTIMIZER_NAMES)}, got {self.optimizer!r}")
        if self.momentum and self.optimizer.lower() != "sgd":
            raise ValueError(f"{who}: momentum applies to optimizer='sgd' only, got momentum={self.momentum} "
                             f"with optimizer={self.optimizer!r} (use optimizer_params for its settings)")
        if self.optimizer_params is not None and not isinstance(self.optimizer_params, Mapping):
            raise ValueError(f"{who}: optimizer_params must be a dict or None, got {self.optimizer_params!r}")
        if self.dtype not in DTYPES and np.dtype(self.dtype).name not in DTYPES:
            raise ValueError(f"{who}: dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if isinstance(self.hidden_layers, (str, bytes, Mapping)) or not isinstance(self.hidden_layers, Sequence):
            raise ValueError(f"{who}: hidden_layers must be a list or tuple of layer specs (a Net.from_config "
                             f"spec without the output layer), got {self.hidden_layers!r}")

    def _dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    _y_checks: dict[str, Any] = {}  # validate_data's arguments for y (the regressor's: multi_output, y_numeric)

    def _validate(self, X: Any, y: Any = "no_validation", *, reset: bool) -> Any:
        checks = self._y_checks if not (isinstance(y, str) and y == "no_validation") else {}
        return validate_data(self, X, y, reset=reset, dtype=self._dtype(), order="C", **checks)

    # ------------------------------------------------------------------ building
    def _build(self, seed: int) -> Net:
        """The net: ``hidden_layers`` with input widths and dtype filled in, then the output layers."""
        dtype = self._dtype().name
        n_out, head, _ = self._head()
        rng = np.random.default_rng(seed)
        layers, spec, width = [], [], self.n_features_in_
        for index, item in enumerate(self.hidden_layers):
            item = _filled(item, width, dtype, f"{self._name()}: hidden_layers[{index}]")
            layer = config.build_layer(item, index, rng)
            out = getattr(layer, "output_features", None)
            width = out(width) if out is not None else width
            if not isinstance(width, numbers.Integral):
                raise ValueError(f"{self._name()}: cannot tell the output width of hidden_layers[{index}] "
                                 f"({layer!r}); give its layer an output_features(n_in) method")
            layers.append(layer)
            spec.append(item)
        spec.append({"type": "linear", "n_in": int(width), "n_out": n_out, "dtype": dtype})
        spec.extend(head)
        start = len(layers)
        layers.extend(config.build_layer(item, start + i, rng) for i, item in enumerate(spec[start:]))
        self.spec_ = spec
        return Net(layers)

    def _make_update(self) -> float | Optimizer:
        name = self.optimizer.lower()
        params = dict(self.optimizer_params or {})
        if name == "sgd" and not self.momentum and not params:
            return float(self.learning_rate)  # the same rule as SGD(lr), on the net's compiled fast path
        if name == "sgd":
            params.setdefault("momentum", self.momentum)
        try:
            return OPTIMIZER_NAMES[name](lr=self.learning_rate, **params)
        except TypeError as error:
            raise ValueError(f"{self._name()}: optimizer_params {params} do not fit {OPTIMIZER_NAMES[name].__name__}: "
                             f"{error}") from error

    # ------------------------------------------------------------------ training
    def _train(self, X: np.ndarray, targets: np.ndarray, sample_weight: Any, epochs: int,
               rng: np.random.RandomState) -> History:
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self._name(), X.dtype)
            if not np.any(sample_weight):
                raise ValueError(f"{self._name()}: sample_weight is all zeros; at least one row must weigh > 0")
        kwargs: dict[str, Any] = {}
        if self.early_stopping:
            from sklearn.model_selection import train_test_split

            parts = [X, targets] + ([sample_weight] if sample_weight is not None else [])
            stratify = self._stratify(targets)
            try:
                split = train_test_split(*parts, test_size=self.validation_fraction, stratify=stratify,
                                         random_state=rng.randint(2 ** 31 - 1))
            except ValueError as error:
                raise ValueError(f"{self._name()}: cannot split off a validation set of fraction "
                                 f"{self.validation_fraction} for early stopping: {error}") from error
            X, X_val, targets, y_val = split[:4]
            sample_weight = split[4] if sample_weight is not None else None
            kwargs = {"validation_data": (X_val, y_val),
                      "early_stopping": EarlyStopping(patience=self.patience, restore_best_weights=True)}
        _, _, loss = self._head()
        return fit_net(self.net_, X, targets, epochs=epochs, lr=self._update, batch_size=self.batch_size,
                       loss=loss, shuffle=self.shuffle, seed=rng.randint(2 ** 31 - 1), verbose=self.verbose,
                       sample_weight=sample_weight, **kwargs)

    def _record(self, history: History, *, first: bool) -> None:
        if first:
            self.history_ = history
        else:
            for key, values in history.metrics.items():
                self.history_.metrics.setdefault(key, []).extend(values)
        self.loss_curve_ = list(self.history_["train_loss"])
        if "val_loss" in self.history_:
            self.validation_loss_curve_ = list(self.history_["val_loss"])
        self.n_iter_ = len(self.loss_curve_)

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any = None) -> "NetEstimator":
        self._check_params()
        first = not partial or not hasattr(self, "net_")
        X, y = self._validate(X, y, reset=first)
        targets = self._targets(y, first=first, classes=classes)
        if first:
            self._rng = check_random_state(self.random_state)
            self.net_ = self._build(self._rng.randint(2 ** 31 - 1))
            self._update = self._make_update()
        epochs = 1 if partial else self.epochs
        history = self._train(X, targets, sample_weight, epochs, self._rng)
        self._record(history, first=first)
        return self

    def _raw_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = self._validate(X, reset=False)
        return self.net_.predict(X)


__all__ = ["NetEstimator"]
