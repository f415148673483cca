"""``decay_biases=False``: weight decay on the weights only (scikit-learn's ``alpha``), for every optimizer."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import optim

MAKERS = {
    "sgd": lambda **kw: optim.SGD(lr=0.001, momentum=0.9, **kw),
    "adam": lambda **kw: optim.Adam(lr=0.001, **kw),
    "adamw": lambda **kw: optim.AdamW(lr=0.001, **kw),
    "rmsprop": lambda **kw: optim.RMSprop(lr=0.001, **kw),
    "adagrad": lambda **kw: optim.AdaGrad(lr=0.001, **kw),
}


def test_decay_for_exempts_parameters_of_fewer_than_two_dimensions_only_when_asked():
    opt = optim.SGD(lr=0.1, weight_decay=0.3, decay_biases=False)
    assert opt.decay_for(np.zeros((3, 2))) == 0.3
    assert opt.decay_for(np.zeros(2)) == 0.0
    assert opt.decay_for(np.zeros(())) == 0.0
    default = optim.SGD(lr=0.1, weight_decay=0.3)
    assert default.decay_biases is True
    assert default.decay_for(np.zeros(2)) == 0.3


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_without_gradient_only_the_weights_decay(name):
    layer = lk.Linear(3, 2, rng=0)
    layer.W[:] = [[0.5, -1.0], [2.0, -0.5], [1.0, 1.5]]
    W, b = layer.W.copy(), layer.b.copy()
    opt = MAKERS[name](weight_decay=0.5, decay_biases=False)
    layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
    layer.step(opt)
    np.testing.assert_array_equal(layer.b, b)  # zero gradient, no decay: the bias stays
    assert np.all(np.abs(layer.W) < np.abs(W))  # decay pulls every weight towards 0


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_with_decay_biases_the_biases_decay_too(name):
    layer = lk.Linear(3, 2, rng=0)
    layer.b[:] = 1.0
    opt = MAKERS[name](weight_decay=0.5)
    layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
    layer.step(opt)
    assert np.all(layer.b < 1.0)


def test_sgd_step_adds_decay_times_weight_to_the_weight_gradient_only():
    layer = lk.Linear(2, 1, rng=0)
    W, b = layer.W.copy(), layer.b.copy()
    dW, db = np.ones_like(W), np.ones_like(b)
    layer.dW, layer.db = dW.copy(), db.copy()
    layer.step(optim.SGD(lr=0.1, weight_decay=0.2, decay_biases=False))
    np.testing.assert_allclose(layer.W, W - 0.1 * (dW + 0.2 * W))
    np.testing.assert_allclose(layer.b, b - 0.1 * db)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_decay_biases_survives_config_and_state_dict(name):
    opt = MAKERS[name](weight_decay=0.1, decay_biases=False)
    assert opt.config()["decay_biases"] is False
    restored = optim.optimizer_from_state_dict(opt.state_dict())
    assert restored.decay_biases is False
    assert "decay_biases=False" in repr(opt)


def test_decay_biases_must_be_a_bool():
    with pytest.raises(TypeError, match="Adam: decay_biases must be a bool, got str"):
        optim.Adam(decay_biases="no")
