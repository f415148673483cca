"""What ``NetClassifier`` and ``NetRegressor`` share: hyperparameters, the net, the optimizer, training."""
from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from layerkit import config, registry
from layerkit._composite import Composite
from layerkit._validation import InputSpec, check_input_kind
from layerkit.blocks import Residual
from layerkit.blocks._branches import Branches
from layerkit.history import History
from layerkit.losses import check_sample_weight, get_loss
from layerkit.net import Net
from layerkit.optim import OPTIMIZERS
from layerkit.optim.base import Optimizer
from layerkit.optim.schedules import Schedule
from layerkit.optim.sgd import SGD
from layerkit.sklearn._stopping import StopRule, divergence_advice
from layerkit.sklearn._weights import WeightedAverage
from layerkit.training import fit as fit_net

OPTIMIZER_NAMES = {name.lower(): cls for name, cls in OPTIMIZERS.items()}
DTYPES = ("float64", "float32")
DEFAULT_HIDDEN = ({"type": "linear", "n_out": 32}, "relu")
AUTO_BATCH = 200  # batch_size="auto": min(AUTO_BATCH, n_samples), as MLPClassifier
# MLPClassifier's activation names -> layerkit's built-in layers
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


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


def _nested_key(item: Any) -> str | None:
    """``"layers"`` for a block holding a chain (``residual``, ``net``), ``"branches"`` for a branching one."""
    name = item.get("type") if isinstance(item, Mapping) else item
    try:
        cls = registry.get(name) if isinstance(name, str) else None
    except registry.RegistryError:
        return None  # build_layer reports it
    if cls is None or not isinstance(item, Mapping):
        return None
    if issubclass(cls, Branches) and "branches" in item:
        return "branches"
    return "layers" if "layers" in item and issubclass(cls, (Net, Residual)) else None


def _build_hidden(item: Any, width: int, dtype: str, rng: Any, index: int, where: str) -> tuple[Any, Any, Any]:
    """``(layer, filled item, output width)`` of a ``hidden_layers`` item, blocks' inner items filled too."""
    key = _nested_key(item)
    if key is None:
        item = _filled(item, width, dtype, where)
        layer = config.build_layer(item, index, rng)
        return layer, item, _output_width(layer, width, where)
    chains = [item[key]] if key == "layers" else list(item[key])
    built_chains, filled_chains = [], []
    for b, chain in enumerate(chains):
        inner_width, built, filled = width, [], []
        for i, inner in enumerate(chain):
            part = f"{where}[{key!r}]" + (f"[{b}]" if key == "branches" else "") + f"[{i}]"
            layer, inner, inner_width = _build_hidden(inner, inner_width, dtype, rng, i, part)
            built.append(layer)
            filled.append(inner)
        built_chains.append(built)
        filled_chains.append(filled)
    filled_item = {**item, key: filled_chains[0] if key == "layers" else filled_chains}
    layer = config.build_layer({**item, key: built_chains[0] if key == "layers" else built_chains}, index, rng)
    return layer, filled_item, _output_width(layer, width, where)


def _output_width(layer: Any, width: int, where: str) -> int:
    """The width ``layer`` outputs for ``width`` input features (``ValueError`` naming ``where`` if it cannot say)."""
    out = getattr(layer, "output_features", None)
    out_width = out(width) if out is not None else width
    if not isinstance(out_width, numbers.Integral):
        raise ValueError(f"{where}: cannot tell the output width of {layer!r}; give its layer an "
                         "output_features(n_in) method")
    return out_width


class NetEstimator(BaseEstimator):
    """Base class of the layerkit estimators; see ``NetClassifier`` for the parameters."""

    _parameter_constraints: dict = {
        "hidden_layers": [list, tuple],
        "hidden_layer_sizes": [None, "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "optimizer": [StrOptions(set(OPTIMIZER_NAMES))],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="left"), Schedule],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "optimizer_params": [None, dict],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "shuffle": ["boolean"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "warm_start": ["boolean"],
        "dtype": [StrOptions({"auto", "float64", "float32"}), type, np.dtype],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, hidden_layers: Sequence[Any] = DEFAULT_HIDDEN, *,
                 hidden_layer_sizes: Sequence[int] | None = None, activation: str = "relu",
                 loss: Any = None, optimizer: str = "adam", learning_rate: float | Schedule = 0.001,
                 momentum: float = 0.0, optimizer_params: dict | None = None, epochs: int = 200,
                 batch_size: int | str = "auto", shuffle: bool = True, tol: float = 1e-4, n_iter_no_change: int = 10,
                 early_stopping: bool = False, validation_fraction: float = 0.1, warm_start: bool = False,
                 dtype: str = "auto", random_state: Any = None, verbose: int = 0) -> None:
        self.hidden_layers = hidden_layers
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.optimizer_params = optimizer_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
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

    def _validation_score(self, prediction: np.ndarray, targets: np.ndarray, sample_weight: Any) -> float:
        """What ``score`` gives for the net's output ``prediction`` on encoded ``targets`` (higher is better)."""
        raise NotImplementedError

    def _same_targets(self, previous: dict) -> None:
        """Raise when a warm start sees other targets than the fit it continues (classifier: classes)."""

    # ------------------------------------------------------------------ checks
    def _name(self) -> str:
        return type(self).__name__

    def _check_params(self) -> None:
        self._validate_params()  # scikit-learn's _parameter_constraints
        who = self._name()
        if self.early_stopping and self.validation_fraction == 0:
            raise ValueError(f"{who}: early_stopping needs validation_fraction > 0, got 0")
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"{who}: momentum applies to optimizer='sgd' only, got momentum={self.momentum} "
                             f"with optimizer={self.optimizer!r} (use optimizer_params for its settings)")
        if self.dtype != "auto":
            try:
                name = np.dtype(self.dtype).name
            except TypeError:
                name = None
            if name not in DTYPES:
                raise ValueError(f"{who}: dtype must be 'auto', 'float64' or 'float32', got {self.dtype!r}")
        self._hidden_spec()

    def _hidden_spec(self) -> list[Any]:
        """``hidden_layers``, or the spec ``hidden_layer_sizes`` and ``activation`` stand for."""
        who = self._name()
        if self.hidden_layer_sizes is None:
            return list(self.hidden_layers)
        if not _same(self.hidden_layers, DEFAULT_HIDDEN):
            raise ValueError(f"{who}: give hidden_layers or hidden_layer_sizes, not both (got hidden_layers="
                             f"{self.hidden_layers!r} and hidden_layer_sizes={self.hidden_layer_sizes!r})")
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise ValueError(f"{who}: hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}")
        spec: list[Any] = []
        for n in sizes:
            spec += [{"type": "linear", "n_out": int(n)}, ACTIVATIONS[self.activation]]
        return spec

    def _dtype(self, X: Any = None) -> Any:
        """The computation's dtype: explicit, the fitted net's, or (``"auto"``) float32 for float32 data."""
        if self.dtype != "auto":
            return np.dtype(self.dtype)
        if X is None:
            return [np.float64, np.float32]  # validate_data keeps float32, converts anything else to float64
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)

    _y_checks: dict[str, Any] = {}  # validate_data's arguments for y (the regressor's: multi_output, y_numeric)

    def _input_spec(self) -> InputSpec | None:
        """What the first hidden layer takes when it is not a 2-D batch of features (``None`` then).

        A first layer of images (``BatchNorm2d``, a layer of fixed rank above
        2) or of integer indices (``Embedding``) declares it through its
        class's ``input_ranks`` and ``integer_input``.
        """
        hidden = self._hidden_spec()
        item = hidden[0] if hidden else None
        name = item if isinstance(item, str) else item.get("type") if isinstance(item, Mapping) else None
        try:
            cls = registry.get(name) if isinstance(name, str) else None
        except registry.RegistryError:
            return None  # building the net reports it
        if cls is None or issubclass(cls, Composite):  # a block: its inner layers are filled for 2-D batches
            return None
        ranks = inspect.getattr_static(cls, "input_ranks", None)
        if isinstance(ranks, property):  # the rank of its example input
            ranks = (len(cls.example_input_shape),) * 2
        integer = inspect.getattr_static(cls, "integer_input", False) is True
        if ranks is None or (ranks[0] == 2 and not integer):
            return None
        return InputSpec((int(ranks[0]), None if ranks[1] is None else int(ranks[1])), integer,
                         f"its first hidden layer {cls.__name__}")

    def _validate(self, X: Any, y: Any = "no_validation", *, reset: bool) -> Any:
        checks = self._y_checks if not (isinstance(y, str) and y == "no_validation") else {}
        if not reset and hasattr(self, "net_"):
            dtype = self.net_.dtype
        else:
            dtype = self._dtype()
        spec = self._input_spec()
        if spec is not None:  # images or indices: the first layer's ranks, indices kept as integers
            checked = validate_data(self, X, y, reset=reset, dtype=None if spec.integer else dtype, order="C",
                                    allow_nd=True, ensure_2d=spec.ranks[0] >= 2, **checks)
            X_checked = checked[0] if isinstance(checked, tuple) else checked
            check_input_kind(X_checked.shape, X_checked.dtype, self._name(), spec, "X")
        else:
            checked = validate_data(self, X, y, reset=reset, dtype=dtype, order="C",
                                    accept_sparse=["csr", "csc"], **checks)
        if isinstance(checked, tuple):
            return (_aligned(checked[0]),) + checked[1:]
        return _aligned(checked)

    # ------------------------------------------------------------------ building
    def _build(self, seed: int, dtype: np.dtype) -> Net:
        """The net: the hidden layers with input widths and dtype filled in, then the output layers."""
        dtype = dtype.name
        n_out, head, _ = self._head()
        rng = np.random.default_rng(seed)
        layers, spec, width = [], [], getattr(self, "n_features_in_", None)  # (none for 1-D indices)
        for index, item in enumerate(self._hidden_spec()):
            layer, item, width = _build_hidden(item, width, dtype, rng, index,
                                               f"{self._name()}: hidden_layers[{index}]")
            layers.append(layer)
            spec.append(item)
        spec.append({"type": "linear", "n_in": int(width), "n_out": n_out, "dtype": dtype})
        spec.extend(head)
        start = len(layers)
        layers.extend(config.build_layer(item, start + i, rng) for i, item in enumerate(spec[start:]))
        self.spec_ = spec
        return Net(layers)

    def _make_update(self) -> float | Optimizer:
        name = self.optimizer
        params = dict(self.optimizer_params or {})
        schedule = isinstance(self.learning_rate, Schedule)
        if name == "sgd" and not self.momentum and not params:
            # a float: the same rule as SGD(lr), on the net's compiled fast path
            return SGD(lr=self.learning_rate) if schedule else float(self.learning_rate)
        if name == "sgd":
            params.setdefault("momentum", self.momentum)
        try:
            return OPTIMIZER_NAMES[name](lr=self.learning_rate, **params)
        except TypeError as error:
            raise ValueError(f"{self._name()}: optimizer_params {params} do not fit {OPTIMIZER_NAMES[name].__name__}: "
                             f"{error}") from error

    # ------------------------------------------------------------------ training
    def _batch_size(self, n_samples: int) -> int:
        """The minibatch size for ``n_samples`` training rows: ``"auto"`` is ``min(200, n_samples)``."""
        return min(AUTO_BATCH, n_samples) if self.batch_size == "auto" else self.batch_size

    def _start_bookkeeping(self) -> None:
        """Fresh curves and counters (a new net): nothing of an earlier fit survives."""
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0
        if self.early_stopping:
            self.validation_loss_curve_, self.validation_scores_ = [], []
            self.best_validation_score_, self.best_loss_ = -np.inf, None
        else:
            self.validation_loss_curve_ = self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _train(self, X: Any, targets: np.ndarray, sample_weight: Any, epochs: int,
               rng: np.random.RandomState, partial: bool = False) -> History:
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self._name(), X.dtype)
            if not np.any(sample_weight):
                raise ValueError(f"{self._name()}: sample_weight is all zeros; at least one row must weigh > 0")
        _, _, loss = self._head()
        validation = None
        if self.early_stopping and not partial:  # as MLPClassifier: partial_fit holds out no rows
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
            sample_weight, w_val = (split[4], split[5]) if sample_weight is not None else (None, None)
            validation = (X_val, y_val, w_val)
            if self.best_validation_score_ is None:  # a warm start after a fit without early stopping
                self.validation_loss_curve_, self.validation_scores_ = [], []
                self.best_validation_score_, self.best_loss_ = -np.inf, None
        elif self.best_loss_ is None:  # a warm start after a fit with early stopping
            self.best_loss_ = np.inf
        loss_fn = get_loss(loss)
        if sample_weight is not None:  # a row of weight 2 counts as the row twice, as in scikit-learn
            loss = loss_fn = WeightedAverage(loss_fn)
        stop = StopRule(self, self.tol, self.n_iter_no_change, validation, self._validation_score, loss_fn,
                        self._net_output)
        seed = rng.randint(2 ** 31 - 1)
        # a sparse X trains as it is: fit draws CSR minibatches and the first Linear takes them
        try:
            history = fit_net(self.net_, X, targets, epochs=epochs, lr=self._update,
                              batch_size=self._batch_size(X.shape[0]), loss=loss, shuffle=self.shuffle,
                              seed=seed, verbose=self.verbose, sample_weight=sample_weight, callbacks=[stop])
        except FloatingPointError as error:
            raise self._diverged(error) from error
        self.t_ += X.shape[0] * len(history["train_loss"])
        if not partial and len(history["train_loss"]) == epochs and not stop.stopped:
            warnings.warn(f"{self._name()}: all epochs={epochs} ran out before the "
                          f"{'validation score' if validation is not None else 'training loss'} stopped improving "
                          f"by tol={self.tol}: the optimization has not converged yet (as MLPClassifier's "
                          "max_iter); raise epochs or learning_rate", ConvergenceWarning, stacklevel=4)
        return history

    def _diverged(self, error: FloatingPointError) -> FloatingPointError:
        """``fit``'s divergence error, with the estimator's advice instead of fit's (clip_norm= is not its parameter)."""
        what = getattr(error, "reason", None)
        if what is None:  # StopRule's, already the estimator's
            return error
        diverged = FloatingPointError(f"{self._name()}: {what}; {divergence_advice(self.learning_rate)}")
        diverged.history = getattr(error, "history", None)
        return diverged

    def _record(self, history: History, *, first: bool) -> None:
        if first:
            self.history_ = history
        else:
            for key, values in history.metrics.items():
                self.history_.metrics.setdefault(key, []).extend(values)
        self.loss_curve_ = list(self.history_["train_loss"])
        self.n_iter_ = len(self.loss_curve_)

    def _architecture(self, dtype: np.dtype) -> tuple:
        """What must not change for a warm start to continue the fitted net."""
        return (getattr(self, "n_features_in_", None), np.dtype(dtype).name, repr(self._hidden_spec()),
                self._head()[:1])

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any = None) -> "NetEstimator":
        self._check_params()
        fitted = hasattr(self, "net_")
        if partial:
            first = not fitted
            X, y = self._validate(X, y, reset=first)
            dtype = self._target_dtype = self._dtype(X) if first else self.net_.dtype
            targets = self._targets(y, first=first, classes=classes)
        else:
            previous = self._fitted_targets() if fitted and self.warm_start else None
            before = dict(self.__dict__)
            X, y = self._validate(X, y, reset=True)
            dtype = self._target_dtype = self._dtype(X)
            targets = self._targets(y, first=True)
            if previous is not None:
                try:
                    self._same_targets(previous)
                except ValueError:
                    self.__dict__.clear()  # the fitted estimator stays as it was
                    self.__dict__.update(before)
                    raise
            first = not (previous is not None and previous["architecture"] == self._architecture(dtype))
        if first:
            self._rng = check_random_state(self.random_state)
            self.net_ = self._build(self._rng.randint(2 ** 31 - 1), np.dtype(dtype))
            self._start_bookkeeping()
        if first or not partial:
            self._update = self._make_update()
        epochs = 1 if partial else self.epochs
        history = self._train(X, targets, sample_weight, epochs, self._rng, partial=partial)
        self._record(history, first=first)
        self._architecture_ = self._architecture(self.net_.dtype)
        return self

    def _fitted_targets(self) -> dict:
        """What a warm start compares with: the architecture (and the subclass's targets)."""
        return {"architecture": getattr(self, "_architecture_", None)}

    def _net_output(self, X: Any) -> np.ndarray:
        return self.net_.predict(X)  # a sparse X goes through the first Linear as it is

    def _raw_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = self._validate(X, reset=False)
        return self._net_output(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _aligned(X: Any) -> Any:
    """``X``, copied when its values are not aligned in memory.

    Arrays that arrive over a network (a block of a ``dask.array`` moved to
    another worker, which ``dask_ml.wrappers.Incremental`` does) may start at
    any byte; gathering their minibatch rows with ``numpy.take`` then runs
    several hundred times slower. One aligned copy costs less than one epoch
    of such gathers.
    """
    if isinstance(X, np.ndarray) and not X.flags.aligned:
        return np.array(X, order="C", copy=True)
    return X


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (list(a) == list(b))
    except Exception:  # noqa: BLE001 - an unusual spec compares unequal
        return False


__all__ = ["NetEstimator"]
