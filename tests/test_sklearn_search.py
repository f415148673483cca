"""Model search over layerkit estimators in parallel: joblib worker processes and a Dask cluster.

The searches are tiny (a digits subset, a few epochs): what is checked is that
the estimators travel to other processes and come back with exactly the
results of the serial run.
"""
import logging
import os

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.preprocessing import StandardScaler

from layerkit.sklearn import NetClassifier

GRID = {"hidden_layers": [({"type": "linear", "n_out": 8}, "relu"), ({"type": "linear", "n_out": 16}, "relu")],
        "learning_rate_init": [0.003, 0.03]}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:240]), y[:240]


def _grid(n_jobs=None):
    return GridSearchCV(NetClassifier(max_iter=4, random_state=0), GRID, cv=2, n_jobs=n_jobs)


def _randomized(n_jobs=None):
    return RandomizedSearchCV(NetClassifier(max_iter=4, random_state=0),
                              {"learning_rate_init": np.logspace(-3, -1, 20), "batch_size": [16, 32]},
                              n_iter=3, cv=2, random_state=0, n_jobs=n_jobs)


def _same_results(a, b):
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(a.cv_results_["params"], b.cv_results_["params"])


@pytest.fixture(scope="module")
def serial(digits):
    return {"grid": _grid().fit(*digits), "randomized": _randomized().fit(*digits)}


def test_serial_search_learns_something(serial, digits):
    scores = serial["grid"].cv_results_["mean_test_score"]
    assert scores.max() > 0.5 and len(set(scores)) > 1  # 10 classes: chance is 0.1
    assert serial["grid"].best_estimator_.n_features_in_ == 64


def test_joblib_processes_give_the_serial_results(serial, digits):
    with parallel_backend("loky", n_jobs=2):
        grid, randomized = _grid(n_jobs=2).fit(*digits), _randomized(n_jobs=2).fit(*digits)
    _same_results(grid, serial["grid"])
    _same_results(randomized, serial["randomized"])
    X, _ = digits
    np.testing.assert_array_equal(grid.predict_proba(X), serial["grid"].predict_proba(X))


def test_dask_local_cluster_gives_the_serial_results(serial, digits):
    distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'layerkit[dask]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
            grid = _grid(n_jobs=-1).fit(*digits)
            randomized = _randomized(n_jobs=-1).fit(*digits)
        workers = {task["worker"] for task in tasks.data}
        pids = set(client.run(lambda: os.getpid()).values())
    _same_results(grid, serial["grid"])
    _same_results(randomized, serial["randomized"])
    assert len(tasks.data) >= 2 * 4 + 2 * 3  # every (candidate, fold) fit ran as a cluster task
    assert len(workers) == 2 and len(pids) == 2 and os.getpid() not in pids
