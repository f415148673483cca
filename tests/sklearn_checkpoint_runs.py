"""Estimator fits of the checkpoint tests, each the same in the test process and in a child killed at random.

``python tests/sklearn_checkpoint_runs.py <config> <checkpoint> <result>``
fits the estimator ``<config>`` with ``checkpoint=<checkpoint>`` (which
resumes when the file exists) and, when it ends, writes what the fitted
estimator holds to ``<result>`` (an ``.npz``). It prints ``ready`` once
imported, so the parent kills it while it trains rather than while it starts.
A short pause after every epoch (``MLPEpochs.on_epoch_end`` wrapped; the
numbers do not change) gives the kills time to land between checkpoints.
"""
from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from layerkit._atomic import atomic_path
from layerkit.sklearn import NetClassifier, NetRegressor
from layerkit.sklearn._stopping import MLPEpochs


def _data(n: int = 120):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6))
    labels = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + (x[:, 2] > 0.8)
    return x, labels


def _adam_classifier():
    x, labels = _data()
    return NetClassifier((12,), solver="adam", learning_rate_init=0.01, batch_size=16, max_iter=40,
                         alpha=1e-3, random_state=3), x, labels


def _sgd_adaptive_early_stopping():
    x, labels = _data()
    return NetClassifier((10, 8), activation="tanh", solver="sgd", learning_rate="adaptive", learning_rate_init=0.2,
                         momentum=0.9, batch_size=10, max_iter=60, early_stopping=True, validation_fraction=0.25,
                         n_iter_no_change=3, tol=1e-3, random_state=5), x, labels


def _sgd_invscaling_regressor():
    x, _ = _data()
    return NetRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.05,
                        power_t=0.25, batch_size=20, max_iter=30, random_state=1), x, np.sin(x[:, 0]) + x[:, 1]


RUNS = {
    "adam classifier": _adam_classifier,
    "sgd adaptive, early stopping": _sgd_adaptive_early_stopping,
    "sgd invscaling regressor": _sgd_invscaling_regressor,
}


def train(name: str, checkpoint: str | None = None):
    """The fitted estimator of ``name``, checkpointed (and resumed) at ``checkpoint`` when given."""
    estimator, x, y = RUNS[name]()
    estimator.set_params(checkpoint=checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(x, y)


def outcome(estimator) -> dict[str, np.ndarray]:
    """What the fitted estimator holds, as arrays."""
    result = {f"coefs/{i}": np.array(c) for i, c in enumerate(estimator.coefs_)}
    result.update({f"intercepts/{i}": np.array(b) for i, b in enumerate(estimator.intercepts_)})
    result["loss_curve"] = np.array(estimator.loss_curve_)
    numbers = {name: getattr(estimator, name) for name in ("n_iter_", "t_", "loss_", "best_loss_",
                                                         "validation_scores_", "best_validation_score_")}
    result["numbers"] = np.array(json.dumps(numbers))
    result["history"] = np.array(json.dumps(estimator.history_.to_dict()))
    return result


def slow_epochs(pause: float = 0.01) -> None:
    """Pause after every epoch of an estimator fit (in this process)."""
    original = MLPEpochs.on_epoch_end

    def on_epoch_end(self, state):
        original(self, state)
        time.sleep(pause)

    MLPEpochs.on_epoch_end = on_epoch_end


if __name__ == "__main__":
    name, checkpoint, result_path = sys.argv[1:4]
    slow_epochs()
    train("adam classifier").set_params(max_iter=1)  # what fit imports on first use
    print("ready", flush=True)
    fitted = train(name, checkpoint)
    with atomic_path(result_path) as tmp, open(tmp, "wb") as handle:  # a kill now leaves no partial result
        np.savez(handle, **outcome(fitted))
