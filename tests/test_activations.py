"""Sigmoid, ReLU and Softmax: formulas, gradients, stability, dtypes and bad input."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

ACTIVATIONS = [lk.Sigmoid, lk.ReLU, lk.Softmax]


def reference(layer_cls, x):
    if layer_cls is lk.Sigmoid:
        return 1 / (1 + np.exp(-x))
    if layer_cls is lk.ReLU:
        return np.maximum(x, 0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def away_from_kinks(rng, shape):
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 1e-3, 0.5, x)


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
@pytest.mark.parametrize("n", [1, 7, 64])
def test_forward_matches_numpy_and_gradients_match_differences(rng, layer_cls, n):
    layer = layer_cls()
    x = away_from_kinks(rng, (n, 6))
    np.testing.assert_allclose(layer.forward(x), reference(layer_cls, x), rtol=1e-12, atol=1e-15)
    assert_grad(layer, x, dy=rng.normal(size=(n, 6)), rtol=1e-6, atol=1e-8, max_coords=None)


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
def test_float32_stays_float32_and_matches_float64(rng, layer_cls):
    x = rng.normal(size=(5, 4))
    dy = rng.normal(size=(5, 4))
    layer = layer_cls()
    y32 = layer.forward(x.astype(np.float32))
    dx32 = layer.backward(x.astype(np.float32), dy.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, layer.forward(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dx32, layer.backward(x, dy), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
def test_layouts_and_integers_match(rng, layer_cls):
    x = rng.normal(size=(6, 4))
    layer = layer_cls()
    expected = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(layer.forward(np.repeat(x, 2, axis=1)[:, ::2]), expected)
    ints = np.arange(-12, 12).reshape(6, 4)
    np.testing.assert_array_equal(layer.forward(ints), layer.forward(ints.astype(float)))


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
def test_empty_batch(layer_cls):
    y = layer_cls().forward(np.empty((0, 3)))
    assert y.shape == (0, 3)
    assert layer_cls().backward(np.empty((0, 3)), np.empty((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
def test_bad_input(layer_cls):
    name = layer_cls.__name__
    with pytest.raises(ValueError, match=rf"{name}\(\): x must be 2-D .* got 1-D"):
        layer_cls().forward(np.ones(3))
    with pytest.raises(ValueError, match=rf"{name}\(\): dy must have the shape of the layer's output \(2, 3\), got \(3, 2\)"):
        layer_cls().backward(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=rf"{name}\(\): x must hold real numbers"):
        layer_cls().forward(np.array([[None]]))


def test_sigmoid_is_finite_at_extremes():
    x = np.array([[-1e4, 1e4, -800.0, 800.0]])
    with np.errstate(over="raise"):
        y = lk.Sigmoid().forward(x)
        dx = lk.Sigmoid().backward(x, np.ones_like(x))
    np.testing.assert_array_equal(y, [[0, 1, 0, 1]])
    np.testing.assert_array_equal(dx, 0)


def test_softmax_rows_sum_to_one_for_huge_inputs(rng):
    x = rng.uniform(-1e4, 1e4, size=(20, 7))
    with np.errstate(over="raise"):
        y = lk.Softmax().forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-12)


def test_softmax_backward_is_the_full_jacobian(rng):
    x = rng.normal(size=(1, 4))
    dy = rng.normal(size=(1, 4))
    y = lk.Softmax().forward(x)[0]
    jacobian = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(lk.Softmax().backward(x, dy)[0], jacobian.T @ dy[0], rtol=1e-12)


def test_relu_gradient_at_zero_is_zero():
    dx = lk.ReLU().backward(np.zeros((1, 3)), np.ones((1, 3)))
    np.testing.assert_array_equal(dx, 0)


def test_parameterless_step_does_nothing():
    layer = lk.Sigmoid()
    layer.step(0.1)
    assert layer.n_params == 0 and layer.params() == {}


# --------------------------------------------------------------------------- NaN (issue 15, item 2)
@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_propagates_layer_by_layer(layer_cls, dtype):
    x = np.array([[np.nan, 1.0, -2.0], [0.5, np.nan, 3.0]], dtype=dtype)
    y = layer_cls().forward(x)
    if layer_cls is lk.Softmax:  # the NaN spreads over its row, as in NumPy and PyTorch
        assert np.isnan(y).all()
    else:
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x))


@pytest.mark.parametrize("layer_cls", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_propagates_on_the_fused_chain(layer_cls, dtype):
    from layerkit._plan import Plan

    linear = lk.Linear(3, 4, rng=0, dtype=dtype)
    linear.b = np.array([np.nan, 0, 0, 0], dtype=dtype)  # column 0 of z is NaN
    for layers in ([linear, layer_cls()], [linear, lk.Sigmoid(), layer_cls()]):  # fused after Linear; own stage
        net = lk.Net(layers)
        assert isinstance(net._compiled(), Plan)
        y = net.predict(np.ones((5, 3), dtype=dtype))
        if layer_cls is lk.Softmax:
            assert np.isnan(y).all()
        else:
            assert np.isnan(y[:, 0]).all() and not np.isnan(y[:, 1:]).any()
