"""The estimators' ``hidden_layers`` take issue 11's layers: MLPClassifier's activations, dropout, normalisation."""
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

import layerkit as lk
from layerkit import registry
from layerkit.sklearn import NetClassifier, NetRegressor

# MLPClassifier's activation names and the layerkit layer each one is
MLP_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


# the defaults before issue 19 (MLPClassifier's are learning_rate 0.001, batch 200): a few epochs suffice on iris
FAST = dict(learning_rate_init=0.01, batch_size=32)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("activation", sorted(MLP_ACTIVATIONS))
def test_every_mlp_activation_is_a_layer_name(iris, activation):
    name = MLP_ACTIVATIONS[activation]
    X, y = iris
    clf = NetClassifier(hidden_layers=({"type": "linear", "n_out": 16}, name), max_iter=40, random_state=0, **FAST).fit(X, y)
    assert type(clf.net_[1]) is registry.get(name)
    assert clf.score(X, y) > 0.85


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dropout_and_normalisation_in_a_spec_with_widths_filled_in(iris, dtype):
    X, y = iris
    hidden = ({"type": "linear", "n_out": 16}, "batch_norm", "relu", {"type": "dropout", "p": 0.2},
              {"type": "linear", "n_out": 8}, {"type": "layer_norm"}, "sigmoid")
    clf = NetClassifier(hidden_layers=hidden, max_iter=60, dtype=dtype, random_state=0, **FAST).fit(X.astype(dtype), y)
    kinds = [type(layer) for layer in clf.net_]
    assert kinds[:7] == [lk.Linear, lk.BatchNorm1d, lk.ReLU, lk.Dropout, lk.Linear, lk.LayerNorm, lk.Sigmoid]
    assert clf.net_[1].n == 16 and clf.net_[5].n == 8
    assert clf.net_[1].dtype == np.dtype(dtype) and clf.net_[5].dtype == np.dtype(dtype)
    assert not np.array_equal(clf.net_[1].running_mean, np.zeros(16))  # trained in training mode
    proba = clf.predict_proba(X)
    assert np.array_equal(proba, clf.predict_proba(X))  # predictions in inference mode: no dropout
    assert clf.score(X, y) > 0.85
    assert all(layer.training for layer in clf.net_)  # predicting did not change the mode


def test_regressor_with_batch_norm_and_dropout():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    reg = NetRegressor(hidden_layers=({"type": "linear", "n_out": 16}, "layer_norm", "relu", "dropout"),
                       max_iter=60, random_state=0, learning_rate_init=0.01).fit(X, y)
    assert isinstance(reg.net_[3], lk.Dropout) and reg.net_[3].p == 0.5
    assert reg.score(X, y) > 0.8


def test_an_embedding_first_layer_takes_integer_indices_and_refuses_floats():
    import warnings

    from layerkit.sklearn import NetClassifier

    rng = np.random.default_rng(0)
    x = rng.integers(0, 12, size=300)
    y = (x % 3 == 0).astype(int)
    clf = NetClassifier(hidden_layers=[{"type": "embedding", "num_embeddings": 12, "embedding_dim": 6}, "tanh"],
                        max_iter=100, learning_rate_init=0.5, random_state=0, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x.astype(np.int32), y)
    assert clf.score(x, y) == 1.0
    assert isinstance(clf.net_[0], lk.Embedding)
    with pytest.raises(TypeError, match=r"NetClassifier: X must hold integer indices for its first hidden layer "
                                        r"Embedding, got dtype float64"):
        clf.predict(x.astype(float))
    with pytest.raises(ValueError, match=r"NetClassifier: X must be 1-D or 2-D as its first hidden layer Embedding "
                                         r"takes, got shape \(300, 1, 1\)"):
        clf.predict(x[:, None, None])


def test_a_first_layer_of_images_asks_for_4d_x():
    from layerkit.sklearn import NetRegressor

    reg = NetRegressor(hidden_layers=[{"type": "batch_norm2d"}, "relu"], max_iter=1, random_state=0, verbose=0)
    with pytest.raises(ValueError, match=r"NetRegressor: X must be 4-D as its first hidden layer BatchNorm2d takes, "
                                         r"got shape \(8, 12\)"):
        reg.fit(np.ones((8, 12)), np.ones(8))
