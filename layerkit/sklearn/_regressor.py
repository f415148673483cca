"""``NetRegressor``: a layerkit net as a scikit-learn regressor."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from layerkit.losses import LOSSES, Loss
from layerkit.sklearn._base import NetEstimator


class NetRegressor(RegressorMixin, NetEstimator):
    """A layerkit ``Net`` trained as a scikit-learn regressor (one or several targets).

    The net is ``hidden_layers`` followed by a ``Linear`` with one output per
    target, trained on the mean squared error by default. The parameters and
    attributes are those of ``NetClassifier`` (without ``classes_`` and
    ``predict_proba``; with ``early_stopping`` the validation score is R^2),
    except:

    Parameters
    ----------
    loss : None, "mse" or a layerkit ``Loss`` object
        ``None`` is the mean squared error.

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.

    Examples
    --------
    >>> import numpy as np
    >>> from layerkit.sklearn import NetRegressor
    >>> X = np.linspace(-1, 1, 40)[:, None]
    >>> reg = NetRegressor(epochs=5, random_state=0).fit(X, 2 * X[:, 0])
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _y_checks = {"multi_output": True, "y_numeric": True}

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetRegressor":
        """Train a new net on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_targets)."""
        return self._fit(X, y, sample_weight, partial=False)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "NetRegressor":
        """One epoch over ``(X, y)``, continuing the net and optimizer state of earlier calls."""
        return self._fit(X, y, sample_weight, partial=True)

    def _targets(self, y: np.ndarray, *, first: bool, classes: Any = None) -> np.ndarray:
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first:
            loss = self.loss
            if not (loss is None or isinstance(loss, Loss) or (isinstance(loss, str) and loss.lower() in LOSSES
                                                               and LOSSES[loss.lower()].name == "mse")):
                raise ValueError(f"{self._name()}: loss must be None, 'mse' or a layerkit Loss object, got {loss!r}")
            self.n_outputs_, self._y_ndim = n_outputs, y.ndim
        elif n_outputs != self.n_outputs_:
            raise ValueError(f"{self._name()}.partial_fit: y has {n_outputs} targets, but the first call had "
                             f"{self.n_outputs_}")
        return y.astype(self._target_dtype)

    def _head(self) -> tuple[int, list[Any], Any]:
        return self.n_outputs_, [], "mse" if self.loss is None else self.loss

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
