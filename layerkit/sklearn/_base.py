"""What ``NetClassifier`` and ``NetRegressor`` share: ``MLPClassifier``'s parameters, the net, the solvers."""
from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from layerkit import config, registry
from layerkit._composite import Composite
from layerkit._validation import InputSpec, check_input_kind
from layerkit.history import History
from layerkit.losses import check_sample_weight
from layerkit.net import Net
from layerkit.optim.adam import Adam
from layerkit.optim.base import Optimizer, net_parameters
from layerkit.optim.sgd import SGD
from layerkit.sklearn._hidden import _build_hidden
from layerkit.sklearn._params import OPTIMIZER_NAMES, PARAMETER_CONSTRAINTS, Resolved, _is_layer_spec, resolve
from layerkit.sklearn._stopping import (NON_FINITE_MESSAGE, LearningRate, MLPEpochs, NonFiniteWeightsError,
                                        divergence_advice, saved_learning_rate)
from layerkit.sklearn._weights import WeightedAverage
from layerkit.training import fit as fit_net

DTYPES = ("float64", "float32")
AUTO_BATCH = 200  # batch_size="auto": min(AUTO_BATCH, n_samples), as MLPClassifier


class NetEstimator(BaseEstimator):
    """Base class of the layerkit estimators; see ``NetClassifier`` for the parameters."""

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)

    def _store(self, values: dict) -> None:
        """Keep every constructor argument as it was given (scikit-learn's ``get_params`` reads them back)."""
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # ------------------------------------------------------------------ what subclasses define
    def _targets(self, y: np.ndarray, *, first: bool, classes: Any = None) -> np.ndarray:
        """Encode ``y`` for the loss (and learn the classes or targets on the first call)."""
        raise NotImplementedError

    def _head(self) -> tuple[int, list[Any], Any]:
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

    def _check_params(self) -> Resolved:
        self._validate_params()  # scikit-learn's _parameter_constraints
        who = self._name()
        if self.dtype != "auto":
            try:
                name = np.dtype(self.dtype).name
            except TypeError:
                name = None
            if name not in DTYPES:
                raise ValueError(f"{who}: dtype must be 'auto', 'float64' or 'float32', got {self.dtype!r}")
        if self.optimizer is not None and self.solver == "lbfgs":
            raise ValueError(f"{who}: optimizer={self.optimizer!r} trains by minibatches; it does not combine "
                             "with solver='lbfgs' (leave optimizer=None, or choose solver='sgd' or 'adam')")
        if self.optimizer_params and (self.optimizer is None or isinstance(self.optimizer, Optimizer)):
            raise ValueError(f"{who}: optimizer_params applies to an optimizer given by name "
                             f"(optimizer='adamw', ...), got optimizer={self.optimizer!r}")
        return resolve(self)

    def _check_checkpoint(self, partial: bool) -> None:
        """``checkpoint`` resumes a whole ``fit`` of a minibatch solver, and nothing else."""
        if self.checkpoint is None:
            return
        who = self._name()
        if partial:
            raise ValueError(f"{who}: partial_fit trains one epoch per call and does not checkpoint; set "
                             f"checkpoint=None (got checkpoint={self.checkpoint!r}), or pickle the estimator "
                             "between calls")
        if self.solver == "lbfgs":
            raise ValueError(f"{who}: checkpoint saves the epochs of solver='sgd' or 'adam'; solver='lbfgs' "
                             "cannot be checkpointed (set checkpoint=None, or choose another solver)")
        if self.warm_start:
            raise ValueError(f"{who}: warm_start=True continues the fitted net in memory and checkpoint resumes "
                             "a fit from its file; use one or the other (got warm_start=True and "
                             f"checkpoint={self.checkpoint!r})")
        if self.early_stopping and self.random_state is None:
            raise ValueError(f"{who}: early_stopping holds out rows drawn at random, and a fit resumed from "
                             "checkpoint must hold out the same ones: give random_state an int (got "
                             "random_state=None)")

    def _dtype(self, X: Any = None) -> Any:
        """The computation's dtype: explicit, the fitted net's, or (``"auto"``) float32 for float32 data."""
        if self.dtype != "auto":
            return np.dtype(self.dtype)
        if X is None:
            return [np.float64, np.float32]  # validate_data keeps float32, converts anything else to float64
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)

    _y_checks: dict[str, Any] = {}  # validate_data's arguments for y (the regressor's: multi_output, y_numeric)

    def _first_hidden_item(self) -> Any:
        """The first item of a layer spec given as hidden layers (``None`` for ``hidden_layer_sizes``)."""
        for value in (self.hidden_layers, self.hidden_layer_sizes, getattr(self, "loss", None)):
            if value is not None and not isinstance(value, str) and _is_layer_spec(value):
                items = [value] if isinstance(value, Mapping) else list(value)
                return items[0] if items else None
        return None

    def _input_spec(self) -> InputSpec | None:
        """What the first hidden layer takes when it is not a 2-D batch of features (``None`` then).

        A first layer of images (``BatchNorm2d``, a layer of fixed rank above
        2) or of integer indices (``Embedding``) declares it through its
        class's ``input_ranks`` and ``integer_input``.
        """
        item = self._first_hidden_item()
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

    def _check_solver(self) -> bool:
        """``partial_fit`` exists for the minibatch solvers only, as in ``MLPClassifier``."""
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                                 "not stochastic.")
        return True

    # ------------------------------------------------------------------ building
    def _build(self, settings: Resolved, rng: np.random.RandomState, dtype: np.dtype) -> Net:
        """The net: the hidden layers with input widths and dtype filled in, then the output layers.

        With ``hidden_layer_sizes`` every ``Linear`` is initialised as
        ``MLPClassifier`` initialises its layers (Glorot's uniform bound
        ``sqrt(6 / (fan_in + fan_out))``, ``sqrt(2 / ...)`` for "logistic";
        weights then biases, drawn from ``rng``), so the same ``random_state``
        starts from the same weights.
        """
        dtype = dtype.name
        n_out, head, _ = self._head()
        seed = None if settings.mlp_shaped else rng.randint(2 ** 31 - 1)
        generator = np.random.default_rng(seed)
        layers, spec, width = [], [], getattr(self, "n_features_in_", None)  # (none for 1-D indices)
        for index, item in enumerate(settings.hidden):
            layer, item, width = _build_hidden(item, width, dtype, generator, index,
                                               f"{self._name()}: hidden_layers[{index}]")
            layers.append(layer)
            spec.append(item)
        spec.append({"type": "linear", "n_in": int(width), "n_out": n_out, "dtype": dtype})
        spec.extend(head)
        start = len(layers)
        layers.extend(config.build_layer(item, start + i, generator) for i, item in enumerate(spec[start:]))
        self.spec_ = spec
        net = Net(layers)
        if settings.mlp_shaped:
            factor = 2.0 if self.activation == "logistic" else 6.0
            for layer in _linears(net):
                fan_in, fan_out = layer.W.shape
                bound = np.sqrt(factor / (fan_in + fan_out))
                layer.W[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
                layer.b[...] = rng.uniform(-bound, bound, fan_out)
        return net

    def _batch_size(self, n_samples: int) -> int:
        """The minibatch size for ``n_samples`` training rows: ``"auto"`` is ``min(200, n_samples)``."""
        if self.batch_size == "auto":
            return min(AUTO_BATCH, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                          UserWarning, stacklevel=4)
        return int(np.clip(self.batch_size, 1, n_samples))

    def _make_rate(self, settings: Resolved, weight_decay: float) -> LearningRate:
        """The minibatch optimizer and its ``learning_rate`` schedule (``MLPClassifier``'s ``_optimizer``)."""
        rate = settings.learning_rate_init
        decay = {"weight_decay": weight_decay, "decay_biases": False}
        name = self.optimizer if isinstance(self.optimizer, str) else None
        solver = self.solver if self.optimizer is None else name
        if isinstance(self.optimizer, Optimizer):
            optimizer: Any = copy.deepcopy(self.optimizer)  # used as it is: its own lr and weight decay
            schedule = "constant"
        elif solver == "sgd":
            momentum = float(self.momentum)
            if not momentum and not self.alpha and settings.schedule == "constant" and isinstance(rate, float):
                optimizer = float(rate)  # plain gradient descent: whole epochs in the compiled core
            else:
                optimizer = SGD(lr=rate, momentum=momentum, nesterov=bool(self.nesterovs_momentum and momentum),
                                **decay)
            schedule = settings.schedule
        elif solver == "adam":
            optimizer = Adam(lr=rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon, **decay)
            schedule = "constant"
        else:
            params = {**decay, **(self.optimizer_params or {})}
            try:
                optimizer = OPTIMIZER_NAMES[name](lr=rate, **params)
            except TypeError as error:
                raise ValueError(f"{self._name()}: optimizer_params {self.optimizer_params} do not fit "
                                 f"{OPTIMIZER_NAMES[name].__name__}: {error}") from error
            schedule = "constant"
        return LearningRate(optimizer, schedule, rate, self.power_t)

    # ------------------------------------------------------------------ training
    def _start_bookkeeping(self) -> None:
        """Fresh curves and counters (a new net): nothing of an earlier fit survives."""
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_, self.best_loss_ = -np.inf, None
        else:
            self.validation_scores_ = self.validation_loss_curve_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _checked_weights(self, sample_weight: Any, n: int, dtype: Any) -> Any:
        if sample_weight is None:
            return None
        sample_weight = check_sample_weight(sample_weight, n, self._name(), dtype)
        if not np.any(sample_weight):
            raise ValueError(f"{self._name()}: sample_weight is all zeros; at least one row must weigh > 0")
        return sample_weight

    def _split(self, X: Any, targets: np.ndarray, sample_weight: Any, rng: np.random.RandomState) -> tuple:
        """``(X, targets, sample_weight, validation)``: ``validation_fraction`` held out, as ``MLPClassifier``."""
        parts = [X, targets] + ([sample_weight] if sample_weight is not None else [])
        split = train_test_split(*parts, random_state=rng, test_size=self.validation_fraction,
                                 stratify=self._stratify(targets))
        X, X_val, targets, y_val = split[:4]
        sample_weight, w_val = (split[4], split[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        return X, targets, sample_weight, (X_val, y_val, w_val)

    def _score_on(self, X_val: Any, y_val: np.ndarray, w_val: Any) -> tuple[float, float]:
        """``(score, loss)`` of the net on the validation rows; NaN for both when its output is not finite."""
        output = self.net_.predict(X_val)
        if not np.all(np.isfinite(output)):
            return float("nan"), float("nan")
        if w_val is None:
            value = float(self._loss()(output, y_val)[0])
        else:
            value = float(WeightedAverage(self._loss())(output, y_val, sample_weight=w_val)[0])
        prediction = self._net_output(X_val)
        return float(self._validation_score(prediction, y_val, w_val)), value

    def _penalty(self, n_samples: int, batch_size: int) -> Any:
        """The L2 term of an epoch's loss: ``alpha/2 * ||W||^2`` per minibatch, averaged over the rows."""
        n_batches = -(-n_samples // batch_size)

        def penalty() -> float:
            if not self.alpha:
                return 0.0
            squares = sum(float(np.dot(p.ravel(), p.ravel())) for p in net_parameters(self.net_).values()
                          if p.ndim >= 2)
            return 0.5 * self.alpha * squares * n_batches / n_samples
        return penalty

    def _train_stochastic(self, X: Any, targets: np.ndarray, sample_weight: Any, settings: Resolved,
                          rng: np.random.RandomState, *, partial: bool, new_optimizer: bool) -> History | None:
        """Minibatch training (``solver="sgd"`` or ``"adam"``, or ``optimizer``), as ``_fit_stochastic``."""
        validation = None
        if self.early_stopping:
            if partial:
                raise ValueError("partial_fit does not support early_stopping=True")
            X, targets, sample_weight, validation = self._split(X, targets, sample_weight, rng)
            if self.validation_scores_ is None:  # a warm start after a fit without early stopping
                self.validation_scores_, self.validation_loss_curve_ = [], []
                self.best_validation_score_, self.best_loss_ = -np.inf, None
        elif self.best_loss_ is None:  # a warm start after a fit with early stopping
            self.best_loss_ = np.inf
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        # MLPClassifier adds alpha * W / (the minibatch's total weight) to each minibatch's gradient
        mean_weight = 1.0 if sample_weight is None else float(np.mean(sample_weight))
        weight_decay = self.alpha / (batch_size * mean_weight)
        if new_optimizer or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_rate(settings, weight_decay)
        elif isinstance(self._optimizer.optimizer, Optimizer) and not isinstance(self.optimizer, Optimizer):
            self._optimizer.optimizer.weight_decay = weight_decay  # this call's batches
        loss = self._loss()
        if sample_weight is not None:  # a row of weight 2 counts as the row twice, as in scikit-learn
            loss = WeightedAverage(loss)
        epochs = MLPEpochs(self, self._optimizer, n_samples, self._penalty(n_samples, batch_size), validation,
                           self._score_on)
        self.n_iter_ = 0  # as MLPClassifier: max_iter epochs per call, warm start or not
        max_iter = 1 if partial else settings.max_iter
        saving = {} if self.checkpoint is None else {"checkpoint": self.checkpoint, "resume": True}
        rate = saved_learning_rate(self.checkpoint)
        if rate is not None and self._optimizer.schedule != "constant" and rate != self._optimizer.learning_rate:
            # the saved run's rate ("invscaling", "adaptive"): the resumed optimizer must be the one saved
            self._optimizer.learning_rate = rate
            self._optimizer._apply()
        # every argument explicit: fit's own defaults are not the estimator's
        try:
            history = fit_net(self.net_, X, targets, epochs=max_iter, lr=self._optimizer.optimizer, optimizer=None,
                              batch_size=batch_size, loss=loss, shuffle=self.shuffle,
                              seed=rng.randint(2 ** 31 - 1), validation_data=None, verbose=0, callbacks=[epochs],
                              early_stopping=None, clip_norm=None, diagnostics=False, sample_weight=sample_weight,
                              **saving)
        except FloatingPointError as error:
            if validation is None:
                raise self._diverged(error) from error
            # as MLPClassifier: a diverged epoch scores NaN, and the best weights come back
            epochs.end_epoch(float("nan"), None)
            epochs.restore_best(self.net_)
            history = getattr(error, "history", None)
            self._record(history)
            return history
        self._record(history)
        if not partial and self.n_iter_ == settings.max_iter and not epochs.converged:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({settings.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        return history

    def _diverged(self, error: FloatingPointError) -> NonFiniteWeightsError:
        """``fit``'s divergence error as scikit-learn's ``ValueError``, with the estimator's advice."""
        what = getattr(error, "reason", None) or str(error)
        diverged = NonFiniteWeightsError(f"{NON_FINITE_MESSAGE} ({self._name()}: {what}; "
                                         f"{divergence_advice(self.learning_rate_init)})")
        diverged.history = getattr(error, "history", None)
        return diverged

    def _record(self, history: History | None) -> None:
        if history is None:
            return
        if getattr(self, "history_", None) is None:
            self.history_ = history
        else:
            for key, values in history.metrics.items():
                self.history_.metrics.setdefault(key, []).extend(values)

    def _loss(self) -> Any:
        """The training loss object (scikit-learn's scaling)."""
        return self._head()[2]

    def _architecture(self, dtype: np.dtype, settings: Resolved) -> tuple:
        """What must not change for a warm start to continue the fitted net."""
        return (getattr(self, "n_features_in_", None), np.dtype(dtype).name, repr(settings.hidden),
                self._head()[:1])

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any = None) -> "NetEstimator":
        settings = self._check_params()
        self._check_checkpoint(partial)
        fitted = hasattr(self, "net_")
        rng = check_random_state(self.random_state)  # as MLPClassifier: drawn afresh on every call
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
            first = not (previous is not None and previous["architecture"] == self._architecture(dtype, settings))
        sample_weight = self._checked_weights(sample_weight, X.shape[0], X.dtype)
        if first:
            self.net_ = self._build(settings, rng, np.dtype(dtype))
            self.n_layers_ = len(_linears(self.net_)) + 1  # layers of units, input and output included
            self._use_given_weights()
            self.history_ = None
            self._start_bookkeeping()
            self.__dict__.pop("_optimizer", None)
        if self.solver == "lbfgs" and self.optimizer is None:
            from layerkit.sklearn._lbfgs import fit_lbfgs

            fit_lbfgs(self, X, targets, sample_weight, settings)
        else:
            self._train_stochastic(X, targets, sample_weight, settings, rng, partial=partial,
                                   new_optimizer=first or not partial)
        if not all(np.all(np.isfinite(p)) for p in net_parameters(self.net_).values()):
            raise NonFiniteWeightsError(NON_FINITE_MESSAGE)
        self._architecture_ = self._architecture(self.net_.dtype, settings)
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

    # ------------------------------------------------------------------ MLPClassifier's fitted attributes
    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weights of each ``Linear`` layer, shape (n_in, n_out): views of the net's own arrays.

        Assigning a list copies it into the net's weights (shapes checked);
        before the first ``fit``/``partial_fit`` it is kept and becomes the
        starting weights, as ``MLPClassifier`` lets ``partial_fit`` continue
        from assigned ``coefs_``.
        """
        return self._layer_arrays("coefs_", "W")

    @coefs_.setter
    def coefs_(self, values: list) -> None:
        self._assign_layer_arrays("coefs_", "W", values)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The biases of each ``Linear`` layer, shape (n_out,): views of the net's own arrays (assignable as ``coefs_``)."""
        return self._layer_arrays("intercepts_", "b")

    @intercepts_.setter
    def intercepts_(self, values: list) -> None:
        self._assign_layer_arrays("intercepts_", "b", values)

    def _layer_arrays(self, attribute: str, name: str) -> list:
        given = self.__dict__.get("_given_" + attribute)
        if given is not None and not hasattr(self, "net_"):
            return given  # assigned before fitting: the list itself, so that item assignments stay
        check_is_fitted(self, "net_")
        return [getattr(layer, name) for layer in _linears(self.net_)]

    def _assign_layer_arrays(self, attribute: str, name: str, values: list) -> None:
        if not hasattr(self, "net_"):
            self.__dict__["_given_" + attribute] = values
            return
        layers = _linears(self.net_)
        if len(values) != len(layers):
            raise ValueError(f"{self._name()}: {attribute} must hold {len(layers)} arrays (one per Linear layer), "
                             f"got {len(values)}")
        for index, (layer, value) in enumerate(zip(layers, values)):
            target = getattr(layer, name)
            value = np.asarray(value, dtype=target.dtype)
            if value.shape != target.shape:
                raise ValueError(f"{self._name()}: {attribute}[{index}] must have shape {target.shape}, got "
                                 f"{value.shape}")
            target[...] = value

    def _use_given_weights(self) -> None:
        """``coefs_``/``intercepts_`` assigned before the net existed: copy them into the new net."""
        for attribute, name in (("coefs_", "W"), ("intercepts_", "b")):
            given = self.__dict__.pop("_given_" + attribute, None)
            if given is not None:
                self._assign_layer_arrays(attribute, name, given)

    def _loss_grad_lbfgs(self, packed: np.ndarray, X: Any, Y: np.ndarray, sample_weight: Any,
                         *unused: Any) -> tuple[float, np.ndarray]:
        """``MLPClassifier._loss_grad_lbfgs``: the L-BFGS objective and its gradient at ``packed``.

        ``Y`` is the label-binarised target (as scikit-learn's tests pass it);
        the remaining arguments (scikit-learn's scratch buffers) are ignored.
        """
        from layerkit.sklearn._lbfgs import objective

        return objective(self, X, self._binarized_targets(Y), sample_weight)(packed)

    def _binarized_targets(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _linears(net: Net) -> list[Any]:
    """The net's top-level layers with a weight matrix ``W`` and a bias ``b`` (its ``Linear`` layers)."""
    return [layer for layer in net.layers
            if {"W", "b"} <= set(getattr(layer, "param_names", ())) and getattr(layer, "W").ndim == 2]


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


__all__ = ["NetEstimator"]
