"""``NetRegressor``: a layerkit net as a scikit-learn regressor, a drop-in for ``MLPRegressor``."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if

from layerkit.losses import LOSSES, Loss, get_loss
from layerkit.sklearn._base import NetEstimator
from layerkit.sklearn._losses import Poisson, Scaled

REGRESSION_LOSSES = ("squared_error", "poisson")


class NetRegressor(RegressorMixin, NetEstimator):
    """A layerkit ``Net`` trained as a scikit-learn regressor: a drop-in for ``MLPRegressor``.

    The net is the hidden layers followed by a ``Linear`` with one output per
    target. The parameters and attributes are those of ``NetClassifier``
    (``MLPRegressor``'s), without ``classes_`` and ``predict_proba``; with
    ``early_stopping`` the validation score is R^2. In addition:

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, "mse" or a layerkit ``Loss``
        ``"squared_error"`` (default): half the squared error, as
        ``MLPRegressor``; ``"poisson"``: the Poisson deviance, the net's
        output being the log of the prediction (``out_activation_ = "exp"``;
        ``net_.predict`` gives the log). layerkit: ``"mse"`` (the mean of the
        squared errors, twice ``"squared_error"``'s gradient) or a ``Loss``
        object.

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
    out_activation_ : str
        ``"identity"``, or ``"exp"`` for ``loss="poisson"``.

    Examples
    --------
    >>> import numpy as np
    >>> from layerkit.sklearn import NetRegressor
    >>> X = np.linspace(-1, 1, 40)[:, None]
    >>> reg = NetRegressor(solver="lbfgs", random_state=0).fit(X, 2 * X[:, 0])
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _y_checks = {"multi_output": True, "y_numeric": True}

    def __init__(self, loss: Any = "squared_error", hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: Any = "constant", learning_rate_init: Any = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Any = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: Any = 10,
                 max_fun: int = 15000, hidden_layers: Any = None, optimizer: Any = None,
                 optimizer_params: dict | None = None, epochs: int | None = None, dtype: Any = "auto",
                 checkpoint: Any = None) -> None:
        self._store(locals())

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetRegressor":
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_targets)."""
        return self._fit(X, y, sample_weight, partial=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetRegressor":
        """One epoch over ``(X, y)``, continuing the net and optimizer state of earlier calls."""
        return self._fit(X, y, sample_weight, partial=True)

    def _targets(self, y: np.ndarray, *, first: bool, classes: Any = None) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first:
            loss = self._loss_choice()
            known = loss is None or isinstance(loss, Loss) or loss in REGRESSION_LOSSES or (
                isinstance(loss, str) and loss.lower() in LOSSES and LOSSES[loss.lower()].name == "mse")
            if not known:
                raise ValueError(f"{self._name()}: loss must be 'squared_error', 'poisson', 'mse' or a layerkit "
                                 f"Loss object, got {loss!r}")
            if loss == "poisson" and np.any(y < 0):
                raise ValueError(f"{self._name()}: loss='poisson' needs targets >= 0, got a minimum of "
                                 f"{float(np.min(y))}")
            self.n_outputs_, self._y_ndim = n_outputs, y.ndim
            self.out_activation_ = "exp" if loss == "poisson" else "identity"
        elif n_outputs != self.n_outputs_:
            raise ValueError(f"{self._name()}.partial_fit: y has {n_outputs} targets, but the first call had "
                             f"{self.n_outputs_}")
        return y.astype(self._target_dtype)

    def _loss_choice(self) -> Any:
        """``loss``, or ``"squared_error"`` when the first argument was the hidden layers (the old order)."""
        return self.loss if isinstance(self.loss, (str, Loss)) or self.loss is None else "squared_error"

    def _head(self) -> tuple[int, list[Any], Any]:
        loss = self._loss_choice()
        if loss is None or loss == "squared_error":  # MLPRegressor: half the squared error, summed over targets
            loss = Scaled(get_loss("mse"), self.n_outputs_ / 2)
        elif loss == "poisson":
            loss = Poisson()
        return self.n_outputs_, [], loss

    def _net_output(self, X: Any) -> np.ndarray:
        out = self.net_.predict(X)
        return np.exp(out) if self.out_activation_ == "exp" else out

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, shape (n_samples,) for one target as fitted, else (n_samples, n_targets)."""
        out = self._raw_predict(X)  # the net's dtype: float32 for a net trained on float32 data
        return out[:, 0] if self._y_ndim == 1 else out

    def _validation_score(self, prediction: np.ndarray, targets: np.ndarray, sample_weight: Any) -> float:
        return r2_score(targets, prediction.reshape(targets.shape), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
