"""The losses of ``MLPClassifier`` and ``MLPRegressor`` on layerkit's conventions.

scikit-learn's MLP losses take the mean over samples of the sum over outputs
(``0.5 * squared error`` for regression), so that its learning rates and
``alpha`` mean what they mean there. layerkit's built-in losses take the mean
over every element; ``Scaled`` rescales them, and ``Poisson`` is the Poisson
deviance on the log link (the net outputs ``log(mean)``; the estimator
applies ``exp``, ``MLPRegressor``'s ``out_activation_ = "exp"``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from layerkit.losses import Loss, check_sample_weight


class Scaled(Loss):
    """``factor * loss``: value and gradient.

    Parameters
    ----------
    loss : layerkit Loss
    factor : float
        ``n_outputs / 2`` turns layerkit's ``mse`` into scikit-learn's
        ``squared_error``; ``n_labels`` turns ``bce`` over a multi-label
        indicator into scikit-learn's sum over labels.
    """

    def __init__(self, loss: Loss, factor: float) -> None:
        self.loss, self.factor = loss, float(factor)
        self.name = getattr(loss, "name", "loss")

    def __call__(self, y: np.ndarray, t: Any, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        value, grad = self.loss(y, t) if sample_weight is None else self.loss(y, t, sample_weight=sample_weight)
        if self.factor != 1.0:
            grad = grad * self.factor
        return value * self.factor, grad

    def accuracy(self, y: np.ndarray, t: Any) -> float | None:
        return self.loss.accuracy(y, t)

    def prepare_targets(self, t: Any, dtype: np.dtype) -> Any:
        return self.loss.prepare_targets(t, dtype)

    def __repr__(self) -> str:
        return f"Scaled({self.loss!r}, {self.factor})"


class Poisson(Loss):
    """The Poisson deviance of ``MLPRegressor(loss="poisson")`` on the log link.

    For the net's output ``z`` (shape (n_samples, n_outputs)) and counts ``t``,
    the loss is the mean over samples of
    ``sum_k exp(z_k) - t_k * z_k + xlogy(t_k, t_k) - t_k`` and its gradient
    ``(exp(z) - t) / n_samples``.
    """

    name = "poisson"

    def __call__(self, z: np.ndarray, t: Any, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        z = np.asarray(z)
        t = np.asarray(t, dtype=z.dtype).reshape(z.shape)
        if np.any(t < 0):
            raise ValueError(f"poisson loss: targets must be >= 0, got {float(t.min())}")
        n = z.shape[0]
        mean = np.exp(np.minimum(z, np.log(np.finfo(z.dtype).max)))
        rows = (mean - t * z + xlogy(t, t) - t).sum(axis=1)
        grad = (mean - t) / n
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, n, "poisson loss", z.dtype)
            rows = rows * w
            grad *= w[:, None]
        return float(rows.mean()), grad


__all__ = ["Scaled", "Poisson"]
