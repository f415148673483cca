"""``solver="lbfgs"``: full-batch training with ``scipy.optimize.minimize(method="L-BFGS-B")``, as ``MLPClassifier``.

The objective is the estimator's loss on all the rows plus
``alpha / (2 * sum of the weights) * sum ||W||^2`` (biases unpenalised),
evaluated by the net's compiled forward and backward passes (one workspace,
no input gradient). scipy's vector is copied into the net's own arrays in
place on each evaluation (``layerkit.optim.lbfgs.FlatParameters``): the
parameters are never reallocated, so the compiled plan keeps its arrays.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from sklearn.utils.optimize import _check_optimize_result

from layerkit.losses import NonFinitePredictionsError
from layerkit.optim.lbfgs import FlatParameters, flat_objective, minimize
from layerkit.sklearn._stopping import NON_FINITE_MESSAGE, NonFiniteWeightsError
from layerkit.sklearn._weights import WeightedAverage


def _closure(est: Any, X: Any, targets: np.ndarray, sample_weight: Any) -> Callable[[], float]:
    """Loss on all the rows, gradients left in the layers."""
    net = est.net_
    loss = est._loss()
    if sample_weight is not None:
        loss = WeightedAverage(loss)
    workspace = None if sp.issparse(X) else net.workspace()
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}

    def closure() -> float:
        try:
            pred, trace = net.forward(X, workspace=workspace)
            value, grad = loss(pred, targets, **kwargs)
        except NonFinitePredictionsError as error:
            raise NonFiniteWeightsError(f"{NON_FINITE_MESSAGE} ({est._name()}: {error})") from error
        net.backward(trace, grad, input_grad=False)
        return value

    return closure


def _decay(est: Any, X: Any, sample_weight: Any) -> float:
    total = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    return est.alpha / total


def objective(est: Any, X: Any, targets: np.ndarray, sample_weight: Any) -> Callable:
    """``packed -> (loss, gradient)`` of the fitted estimator's L-BFGS problem (``MLPClassifier``'s packing)."""
    return flat_objective(FlatParameters(est.net_), _closure(est, X, targets, sample_weight),
                          weight_decay=_decay(est, X, sample_weight), decay_biases=False)


def fit_lbfgs(est: Any, X: Any, targets: np.ndarray, sample_weight: Any, settings: Any) -> None:
    """Train ``est.net_`` full-batch; set ``n_iter_`` and ``loss_`` (``t_`` stays, as in ``MLPClassifier``), warn as ``MLPClassifier`` when not converged."""
    result = minimize(FlatParameters(est.net_), _closure(est, X, targets, sample_weight),
                      max_iter=settings.max_iter, max_fun=est.max_fun, tol=est.tol,
                      weight_decay=_decay(est, X, sample_weight), decay_biases=False)
    est.n_iter_ = _check_optimize_result("lbfgs", result, settings.max_iter)
    est.loss_ = float(result.fun)


__all__ = ["fit_lbfgs", "objective"]
