"""dask-ml's wrappers around the estimators on a Dask cluster: out-of-core training and parallel prediction.

``dask_ml.wrappers.Incremental`` trains on a ``dask.array`` block by block with
``partial_fit`` (the estimator travels from block to block, the data never
gathers in one place); ``ParallelPostFit`` predicts each block where it lives.
The cluster is small (two worker processes, one thread each) and the data tiny:
what is checked is that the results are exactly those of the same calls in one
process.
"""
import logging
import os

import numpy as np
import pytest

from layerkit.sklearn import NetClassifier, NetRegressor

distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'layerkit[dask]'")
da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers", reason="dask-ml is in the optional extra 'layerkit[dask]'")

N_ROWS, CHUNK = 1200, 300


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 6))
    labels = (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(np.int64)
    targets = np.column_stack([X[:, 0] - 2 * X[:, 3], np.tanh(X[:, 1] + X[:, 2])])
    return X, labels, targets


def _blocks(array):
    return da.from_array(array, chunks=(CHUNK,) + array.shape[1:])


def _chunk_by_chunk(estimator, X, y, **kwargs):
    """The reference: partial_fit on each chunk in order, in this process."""
    for start in range(0, len(X), CHUNK):
        estimator.partial_fit(X[start:start + CHUNK], y[start:start + CHUNK], **kwargs)
    return estimator


def _workers_of(tasks, prefix):
    """The workers that ran the blocks' tasks whose key starts with ``prefix`` (one entry per block)."""
    names = [(task["key"], task["worker"]) for task in tasks.data]
    return [worker for key, worker in names
            if isinstance(key, tuple) and key[0].startswith(prefix) and key[-1] >= 0]


def _not_here(client):
    return os.getpid() not in set(client.run(os.getpid).values())


def test_incremental_classifier_is_partial_fit_chunk_by_chunk(client, data):
    X, y, _ = data
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.05, random_state=0)
    incremental = wrappers.Incremental(NetClassifier(**params), scoring="accuracy", shuffle_blocks=False)
    with distributed.get_task_stream(client) as tasks:
        incremental.fit(_blocks(X), _blocks(y), classes=[0, 1])
    fitted = incremental.estimator_
    reference = _chunk_by_chunk(NetClassifier(**params), X, y, classes=[0, 1])
    assert len(fitted.loss_curve_) == N_ROWS // CHUNK and fitted.t_ == N_ROWS  # one partial_fit (one epoch) per chunk
    np.testing.assert_array_equal(fitted.predict_proba(X), reference.predict_proba(X))
    assert fitted.score(X, y) > 0.75  # it learned the label (chance: about 0.5)
    # dask-ml's task "fit-<token>", block i: partial_fit of block i, on a worker process
    assert len(_workers_of(tasks, "fit-")) == N_ROWS // CHUNK and _not_here(client)
    assert incremental.score(_blocks(X), _blocks(y)) == pytest.approx(fitted.score(X, y))


def test_incremental_regressor_is_partial_fit_chunk_by_chunk(client, data):
    X, _, targets = data
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.05, random_state=0, dtype="float32")
    target = targets[:, 0]  # dask-ml's Incremental reads y's blocks as 1-D: one target
    incremental = wrappers.Incremental(NetRegressor(**params), shuffle_blocks=False)
    incremental.fit(_blocks(X.astype(np.float32)), _blocks(target))
    fitted = incremental.estimator_
    reference = _chunk_by_chunk(NetRegressor(**params), X.astype(np.float32), target)
    assert len(fitted.loss_curve_) == N_ROWS // CHUNK and fitted.net_.dtype == np.float32
    np.testing.assert_array_equal(fitted.predict(X), reference.predict(X))


def test_incremental_classifier_needs_the_classes_up_front(client, data):
    X, y, _ = data
    # the first block may miss a class: as for scikit-learn's partial_fit, the first call must name them all
    y_first_block_one_class = y.copy()
    y_first_block_one_class[:CHUNK] = 1
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        wrappers.Incremental(NetClassifier(random_state=0), shuffle_blocks=False).fit(
            _blocks(X), _blocks(y_first_block_one_class))
    fitted = wrappers.Incremental(NetClassifier(random_state=0), shuffle_blocks=False).fit(
        _blocks(X), _blocks(y_first_block_one_class), classes=[0, 1]).estimator_
    assert fitted.classes_.tolist() == [0, 1]


@pytest.mark.parametrize("Estimator", [NetClassifier, NetRegressor])
def test_parallel_post_fit_predicts_each_block_on_the_workers(client, data, Estimator):
    X, y, targets = data
    target = y if Estimator is NetClassifier else targets[:, 0]  # ParallelPostFit's predict: 1-D blocks
    estimator = Estimator(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, target)
    post = wrappers.ParallelPostFit(estimator)
    X_blocks = _blocks(X)
    with distributed.get_task_stream(client) as tasks:
        predicted = post.predict(X_blocks)
        assert isinstance(predicted, da.Array) and predicted.numblocks[0] == N_ROWS // CHUNK
        np.testing.assert_array_equal(predicted.compute(), estimator.predict(X))
    assert len(_workers_of(tasks, "_predict-")) == N_ROWS // CHUNK and _not_here(client)
    if Estimator is NetClassifier:
        proba = post.predict_proba(X_blocks)
        assert isinstance(proba, da.Array)
        np.testing.assert_array_equal(proba.compute(), estimator.predict_proba(X))


def _unaligned(array):
    """A copy of ``array`` whose values start one byte past an aligned address (as a block sent over a network)."""
    raw = np.empty(array.nbytes + 1, dtype=np.uint8)[1:]
    out = raw.view(array.dtype).reshape(array.shape)
    out[...] = array
    assert not out.flags.aligned
    return out


def test_unaligned_blocks_train_and_predict_as_aligned_ones(data, monkeypatch):
    # dask moves blocks between workers; they may arrive unaligned, where numpy's take (the minibatch gather)
    # is hundreds of times slower: the estimators train on an aligned copy, with the same results
    import layerkit.sklearn._base as base

    X, y, _ = data
    seen = []
    fit_net = base.fit_net
    monkeypatch.setattr(base, "fit_net", lambda net, x, *a, **k: seen.append(x.flags.aligned) or fit_net(net, x, *a, **k))
    params = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    aligned = NetClassifier(**params).partial_fit(X[:CHUNK], y[:CHUNK], classes=[0, 1])
    unaligned = NetClassifier(**params).partial_fit(_unaligned(X[:CHUNK]), y[:CHUNK], classes=[0, 1])
    assert seen == [True, True]
    np.testing.assert_array_equal(unaligned.predict_proba(_unaligned(X)), aligned.predict_proba(X))
