"""The estimators' hidden_layers take blocks, their inner widths and dtype filled in like the top level's."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import layerkit as lk
from layerkit.blocks import Concatenate, Residual
from layerkit.sklearn import NetClassifier, NetRegressor

RESIDUAL_HIDDEN = ({"type": "linear", "n_out": 24}, "relu",
                   {"type": "residual", "layers": [{"type": "linear", "n_out": 24}, "relu",
                                                   {"type": "linear", "n_out": 24}]},
                   "relu")


def test_classifier_trains_with_a_residual_block_in_both_dtypes():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.3, random_state=0)
    for dtype in ("float64", "float32"):
        model = NetClassifier(hidden_layers=RESIDUAL_HIDDEN, optimizer="adam", learning_rate_init=0.01, max_iter=8,
                              batch_size=32, random_state=0, dtype=dtype).fit(X_train, y_train)
        block = model.net_[2]
        assert isinstance(block, Residual) and block.f[0].n_in == 24 and block.dtype == np.dtype(dtype)
        assert model.score(X_test, y_test) > 0.9
        assert model.spec_[2]["layers"][0]["n_in"] == 24


def test_regressor_fills_the_widths_of_concatenated_branches():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = X[:, 0] - 2 * X[:, 1] * X[:, 2]
    hidden = ({"type": "concatenate", "branches": [[{"type": "linear", "n_out": 2}],
                                                   [{"type": "linear", "n_out": 8}, "tanh"]]},)
    model = NetRegressor(hidden_layers=hidden, max_iter=3, random_state=0).fit(X, y)
    block = model.net_[0]
    assert isinstance(block, Concatenate)
    assert [net[0].n_in for net in block.branches] == [3, 3]
    assert model.net_[1].n_in == 10
    assert model.predict(X).shape == (80,)


def test_a_block_with_an_unknown_inner_layer_is_named():
    hidden = ({"type": "residual", "layers": ["relux"]},)
    with pytest.raises(lk.config.ConfigError, match="relux"):
        NetRegressor(hidden_layers=hidden, max_iter=1).fit(np.ones((4, 2)), np.ones(4))


class _Widthless(lk.Layer):
    """A layer that cannot say how wide its output is."""

    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy

    def output_features(self, n_in):
        return None


@pytest.mark.parametrize("hidden, where", [
    (("widthless_for_test",), r"hidden_layers\[0\]"),
    (({"type": "residual", "layers": ["relu", "widthless_for_test"]},), r"hidden_layers\[0\]\['layers'\]\[1\]"),
])
def test_a_hidden_layer_of_unknown_width_is_named(hidden, where):
    lk.registry.register("widthless_for_test", _Widthless)
    try:
        with pytest.raises(ValueError, match=rf"NetRegressor: {where}: cannot tell the output width of "
                                             r".*give its layer an output_features\(n_in\) method"):
            NetRegressor(hidden_layers=hidden, max_iter=1).fit(np.ones((4, 2)), np.ones(4))
    finally:
        lk.registry.unregister("widthless_for_test")
