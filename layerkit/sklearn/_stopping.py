"""``MLPEpochs``: ``MLPClassifier``'s per-epoch bookkeeping and stopping rules, as a ``fit`` callback.

Also ``LearningRate`` (the ``learning_rate`` schedules "constant",
"invscaling" and "adaptive") and ``NonFiniteWeightsError``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from layerkit.callbacks import Callback, FitState, _net_state
from layerkit.optim.base import net_parameters
from layerkit.optim.schedules import Constant

SMALLEST_ADAPTIVE_RATE = 1e-6  # "adaptive" stops once the rate is this small, as MLPClassifier
NON_FINITE_MESSAGE = ("Solver produced non-finite parameter weights. The input data may contain large values "
                      "and need to be preprocessed.")


class NonFiniteWeightsError(ValueError, FloatingPointError):
    """Training diverged: the weights or the loss became NaN or infinite.

    A ``ValueError``, as ``MLPClassifier`` raises, and a ``FloatingPointError``,
    as ``layerkit.fit`` raises.
    """


def divergence_advice(learning_rate_init: Any) -> str:
    """What to change when an estimator's training diverges: its own parameters, not ``fit``'s."""
    return (f"lower learning_rate_init (now {learning_rate_init!r}), raise alpha, choose another solver, "
            "or scale X (sklearn.preprocessing.StandardScaler)")


class LearningRate:
    """``MLPClassifier``'s learning-rate schedules, applied to a layerkit optimizer between epochs.

    Parameters
    ----------
    optimizer : layerkit Optimizer or float
        Its ``lr`` is replaced by ``Constant(learning_rate)`` when the rate changes.
    schedule : {"constant", "invscaling", "adaptive"}
    learning_rate_init : float or Schedule
    power_t : float

    Attributes
    ----------
    learning_rate : float
        The current rate (``MLPClassifier._optimizer.learning_rate``).
    """

    def __init__(self, optimizer: Any, schedule: str, learning_rate_init: Any, power_t: float) -> None:
        self.optimizer, self.schedule = optimizer, schedule
        self.learning_rate_init, self.power_t = learning_rate_init, power_t
        self.learning_rate = learning_rate_init

    def _apply(self) -> None:
        if hasattr(self.optimizer, "lr"):
            self.optimizer.lr = Constant(self.learning_rate)

    def iteration_ends(self, time_step: int) -> None:
        """After an epoch, ``time_step`` rows seen so far: "invscaling" sets ``init / (t + 1) ** power_t``."""
        if self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            self._apply()

    def trigger_stopping(self, message: str, verbose: Any) -> bool:
        """No improvement for too long: stop, or ("adaptive") divide the rate by 5 and go on."""
        if self.schedule != "adaptive":
            if verbose:
                print(message + " Stopping.")
            return True
        if self.learning_rate <= SMALLEST_ADAPTIVE_RATE:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        self._apply()
        if verbose:
            print(message + " Setting learning rate to %f" % self.learning_rate)
        return False


class MLPEpochs(Callback):
    """After each epoch: ``loss_curve_``, ``t_``, ``n_iter_``, the stopping rule and the rate, as ``MLPClassifier``.

    Without validation data an epoch counts as no improvement when its loss is
    above ``best_loss_ - tol``; with validation data, when its validation score
    is below ``best_validation_score_ + tol`` (the best-scoring weights are
    restored at the end). Once more than ``n_iter_no_change`` epochs in a row
    did not improve, training stops (``"adaptive"``: the rate drops instead,
    until it is below 1e-6).

    Parameters
    ----------
    estimator : NetEstimator
        Receives ``loss_``, ``loss_curve_``, ``t_``, ``n_iter_``, ``best_loss_``,
        ``validation_scores_``, ``validation_loss_curve_``, ``best_validation_score_``,
        ``_no_improvement_count``.
    rate : LearningRate
    n_samples : int
        Rows trained on per epoch.
    penalty : callable () -> float
        The L2 term of an epoch's loss (``alpha/2 * ||W||^2`` per minibatch, over ``n_samples``),
        taken with the weights the epoch starts from (exact for one minibatch per epoch).
    validation : (x_val, y_val, sample_weight_val) or None
    score : callable ``(x_val, y_val, sample_weight_val) -> (score, loss)``
        The score is higher for better (accuracy, R^2); both NaN when the predictions are not finite.
    """

    def __init__(self, estimator: Any, rate: LearningRate, n_samples: int, penalty: Callable[[], float],
                 validation: tuple | None, score: Callable) -> None:
        self.estimator, self.rate, self.n_samples, self.penalty = estimator, rate, n_samples, penalty
        self.validation, self.score = validation, score
        self.converged = False  # the rule ended the run, rather than max_iter
        self._penalty = 0.0
        self._best_weights: dict[str, np.ndarray] | None = None
        self._best_state: dict[str, np.ndarray] = {}

    def on_epoch_begin(self, state: FitState) -> None:
        self._penalty = self.penalty()  # MLPClassifier: the L2 term of the weights each minibatch starts from

    def on_epoch_end(self, state: FitState) -> None:
        self.end_epoch(state.history["train_loss"][-1], state)

    def end_epoch(self, data_loss: float, state: FitState | None) -> None:
        """The epoch's bookkeeping; ``state`` None when the epoch diverged (fit raised)."""
        est = self.estimator
        loss = data_loss + self._penalty if math.isfinite(data_loss) else data_loss
        est.n_iter_ += 1
        est.t_ += self.n_samples
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, loss))
        if self.validation is not None:
            score, val_loss = self.score(*self.validation) if state is not None else (float("nan"), float("nan"))
            est.validation_scores_.append(score)
            est.validation_loss_curve_.append(val_loss)
            if state is not None:
                state.history.metrics.setdefault("val_loss", []).append(val_loss)
                state.history.metrics.setdefault("val_score", []).append(score)
            if est.verbose:
                print("Validation score: %f" % score)
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                net = state.net
                self._best_weights = {k: p.copy() for k, p in net_parameters(net).items()}
                self._best_state = {key: np.array(getattr(layer, name), copy=True)
                                    for key, (layer, name) in _net_state(net).items()}
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        self.rate.iteration_ends(est.t_)
        if state is not None and est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            message = (f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
                       "consecutive epochs.")
            if self.rate.trigger_stopping(message, est.verbose):
                state.stop = self.converged = True
            else:
                est._no_improvement_count = 0

    def restore_best(self, net: Any) -> None:
        """With validation data: put the best-scoring weights (and running statistics) back."""
        if self._best_weights is None:
            return
        for key, param in net_parameters(net).items():
            param[...] = self._best_weights[key]
        for key, (layer, name) in _net_state(net).items():
            setattr(layer, name, self._best_state[key].copy())

    def on_train_end(self, state: FitState) -> None:
        self.restore_best(state.net)

    # the estimator's attributes that the epochs change, saved with a checkpoint of the run
    _SAVED = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_", "validation_loss_curve_",
              "best_validation_score_", "_no_improvement_count")

    def state_dict(self) -> dict[str, Any]:
        """The estimator's curves and counters, the stopping rule, the rate and the best weights.

        Saved with ``fit``'s checkpoint, so a resumed estimator fit ends as an
        uninterrupted one (``loss_curve_``, ``n_iter_``, ``t_``, ... included).
        """
        est = self.estimator
        config = {"estimator": {name: getattr(est, name, None) for name in self._SAVED},
                  "converged": self.converged, "penalty": self._penalty,
                  "learning_rate": _plain_rate(self.rate.learning_rate),
                  "has_best_weights": self._best_weights is not None}
        arrays = {f"weights/{key}": value for key, value in (self._best_weights or {}).items()}
        arrays.update({f"state/{key}": value for key, value in self._best_state.items()})
        return {"config": config, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (on resume, after the optimizer's own state)."""
        config, arrays = state.get("config"), state.get("arrays")
        keys = {"estimator", "converged", "penalty", "learning_rate", "has_best_weights"}
        if not isinstance(config, dict) or set(config) != keys or not isinstance(arrays, dict):
            raise ValueError(f"MLPEpochs.load_state_dict: expected a config with {sorted(keys)} and arrays, "
                             f"got {state!r:.200}")
        est = self.estimator
        for name in self._SAVED:
            value = config["estimator"][name]
            setattr(est, name, list(value) if isinstance(value, list) else value)
        self.converged, self._penalty = bool(config["converged"]), float(config["penalty"])
        saved_rate = config["learning_rate"]
        if self.rate.schedule != "constant" and saved_rate is not None and saved_rate != self.rate.learning_rate:
            self.rate.learning_rate = saved_rate
            self.rate._apply()
        weights = {key[len("weights/"):]: np.array(value) for key, value in arrays.items()
                   if key.startswith("weights/")}
        self._best_weights = weights if config["has_best_weights"] else None
        self._best_state = {key[len("state/"):]: np.array(value) for key, value in arrays.items()
                            if key.startswith("state/")}


def _plain_rate(rate: Any) -> float | None:
    """A rate that a checkpoint saves as JSON (``None`` for a layerkit ``Schedule``, which the optimizer keeps)."""
    return float(rate) if isinstance(rate, (int, float, np.floating)) and not isinstance(rate, bool) else None


def saved_learning_rate(path: Any) -> float | None:
    """The learning rate the estimator's schedule had reached in the checkpoint at ``path`` (``None``: no file).

    ``"invscaling"`` and ``"adaptive"`` change the optimizer's rate, and a
    resumed run checks that its optimizer is the one saved: the estimator
    sets the saved rate first. Anything unreadable gives ``None``, and
    ``fit`` then reports what is wrong with the file.
    """
    import json
    import os

    from layerkit import io as _io

    if path is None or not os.path.exists(path):
        return None
    try:
        state = json.loads(str(_io.read_entries(path)["fit_state"][()]))
        for saved in state["callbacks"]:
            if saved["type"] == f"{MLPEpochs.__module__}.{MLPEpochs.__qualname__}":
                return saved["config"]["learning_rate"]
    except Exception:  # noqa: BLE001 - fit's own checks say what is wrong with the file
        return None
    return None


__all__ = ["MLPEpochs", "LearningRate", "saved_learning_rate", "NonFiniteWeightsError", "divergence_advice", "NON_FINITE_MESSAGE"]
