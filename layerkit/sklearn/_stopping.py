"""``StopRule``: MLPClassifier's stopping rules (``tol``, ``n_iter_no_change``, early stopping) as a fit callback."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from layerkit.callbacks import Callback, FitState, _net_state
from layerkit.optim.base import net_parameters


def divergence_advice(learning_rate: Any) -> str:
    """What to change when an estimator's training diverges: its own parameters, not ``fit``'s."""
    return (f"lower learning_rate (now {learning_rate!r}), give it a schedule (layerkit.optim), choose another "
            "optimizer, or scale X (sklearn.preprocessing.StandardScaler)")


class StopRule(Callback):
    """Stop a ``fit`` run as ``MLPClassifier`` does, and keep its bookkeeping on the estimator.

    Without validation data: an epoch counts as no improvement when its training
    loss is above ``best_loss_ - tol``. With validation data: when its validation
    score is below ``best_validation_score_ + tol``; the best-scoring weights are
    restored at the end. Training stops once more than ``n_iter_no_change``
    epochs in a row did not improve.

    Parameters
    ----------
    estimator : NetEstimator
        Receives ``best_loss_``, ``validation_scores_``, ``best_validation_score_``,
        ``validation_loss_curve_``.
    tol : float
    n_iter_no_change : int
    validation : (x_val, y_val, sample_weight_val) or None
    score : callable ``(prediction, y_val, sample_weight_val) -> float``
        Higher is better (accuracy, R^2).
    loss : callable ``(prediction, y_val, sample_weight=...) -> (loss, grad)``
    predict : callable ``x -> prediction``
    """

    def __init__(self, estimator: Any, tol: float, n_iter_no_change: int, validation: tuple | None,
                 score: Callable, loss: Callable, predict: Callable) -> None:
        self.estimator, self.tol, self.n_iter_no_change = estimator, tol, n_iter_no_change
        self.validation, self.score, self.loss, self.predict = validation, score, loss, predict
        self.count = 0
        self.stopped = False  # the rule ended the run (converged), rather than the epochs running out
        self._best_weights: dict[str, np.ndarray] | None = None
        self._best_state: dict[str, np.ndarray] = {}

    def on_epoch_end(self, state: FitState) -> None:
        est, who = self.estimator, type(self.estimator).__name__
        train_loss = state.history["train_loss"][-1]
        if self.validation is None:
            if not math.isfinite(train_loss):
                return  # fit raises its FloatingPointError
            improved = train_loss <= est.best_loss_ - self.tol
            est.best_loss_ = min(est.best_loss_, train_loss)
        else:
            advice = f"; {divergence_advice(est.learning_rate)}"
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"{who}: the training loss became {train_loss} in epoch "
                                         f"{state.epoch + 1}{advice}")
            x_val, y_val, w_val = self.validation
            prediction = self.predict(x_val)
            if not np.all(np.isfinite(prediction)):
                raise FloatingPointError(f"{who}: the net's predictions on the validation set became non-finite "
                                         f"in epoch {state.epoch + 1}{advice}")
            kwargs = {} if w_val is None else {"sample_weight": w_val}
            val_loss = float(self.loss(prediction, y_val, **kwargs)[0])
            score = float(self.score(prediction, y_val, w_val))
            est.validation_loss_curve_.append(val_loss)
            est.validation_scores_.append(score)
            state.history.metrics.setdefault("val_loss", []).append(val_loss)
            state.history.metrics.setdefault("val_score", []).append(score)
            improved = score >= est.best_validation_score_ + self.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self._best_weights = {k: p.copy() for k, p in net_parameters(state.net).items()}
                self._best_state = {key: np.array(getattr(layer, name), copy=True)
                                    for key, (layer, name) in _net_state(state.net).items()}
        self.count = 0 if improved else self.count + 1
        if self.count > self.n_iter_no_change:
            state.stop = self.stopped = True

    def on_train_end(self, state: FitState) -> None:
        if self._best_weights is not None:
            for key, param in net_parameters(state.net).items():
                param[...] = self._best_weights[key]
            for key, (layer, name) in _net_state(state.net).items():
                setattr(layer, name, self._best_state[key].copy())


__all__ = ["StopRule", "divergence_advice"]
