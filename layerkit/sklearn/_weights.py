"""``WeightedAverage``: a loss whose minibatch value is the weighted *average* of its rows' losses.

layerkit's losses take ``mean(w * loss_row)`` over a minibatch; scikit-learn's
estimators (``MLPClassifier`` included) take ``sum(w * loss_row) / sum(w)``,
so that a row of weight 2 counts exactly as the row repeated. The estimators
train with the latter: each minibatch's weights are rescaled to average 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class WeightedAverage:
    """Wrap ``loss`` so that ``sample_weight`` gives the weighted average over the minibatch.

    Parameters
    ----------
    loss : layerkit Loss
        Called as ``loss(y, t, sample_weight=w * n / w.sum())``.
    """

    def __init__(self, loss: Any) -> None:
        self.loss = loss
        self.name = getattr(loss, "name", "loss")

    def __call__(self, y: np.ndarray, t: Any, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        if sample_weight is not None:
            w = np.asarray(sample_weight)
            total = w.sum()
            if total > 0:
                sample_weight = w * (w.shape[0] / total)
        return self.loss(y, t, sample_weight=sample_weight)

    def accuracy(self, y: np.ndarray, t: Any) -> float | None:
        return getattr(self.loss, "accuracy", lambda p, q: None)(y, t)

    def prepare_targets(self, t: Any, dtype: np.dtype) -> Any:
        prepare = getattr(self.loss, "prepare_targets", None)
        return t if prepare is None else prepare(t, dtype)


__all__ = ["WeightedAverage"]
