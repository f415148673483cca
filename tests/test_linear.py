"""Linear: formulas, gradients, dtypes, layouts, initialisation and bad input."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad


@pytest.mark.parametrize("n", [1, 7, 64])
@pytest.mark.parametrize("shape", [(5, 3), (1, 4), (8, 1)])
def test_forward_and_gradients(rng, n, shape):
    layer = lk.Linear(*shape, rng=rng)
    layer.b = rng.normal(size=shape[1])
    x = rng.normal(size=(n, shape[0]))
    dy = rng.normal(size=(n, shape[1]))
    np.testing.assert_allclose(layer.forward(x), x @ layer.W + layer.b, rtol=1e-12)
    dx = layer.backward(x, dy)
    np.testing.assert_allclose(dx, dy @ layer.W.T, rtol=1e-12)
    np.testing.assert_allclose(layer.dW, x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(layer.db, dy.sum(axis=0), rtol=1e-12)
    assert_grad(layer, x, dy=dy, rtol=1e-6, atol=1e-8, max_coords=None)


def test_seed_assignment_identities(rng):
    """The course's checks: doubling W and b -> 2y + 1 and 2dx."""
    x = rng.uniform(size=(3, 5))
    layer = lk.Linear(5, 7, rng=rng)
    y = layer.forward(x)
    dx = layer.backward(x, np.ones_like(y))
    layer.W *= 2
    layer.b = layer.b * 2 + 1
    np.testing.assert_allclose(layer.forward(x), 2 * y + 1)
    np.testing.assert_allclose(layer.backward(x, np.ones_like(y)), 2 * dx)


def test_float32_layer_matches_float64(rng):
    layer64 = lk.Linear(6, 4, rng=1)
    layer32 = lk.Linear(6, 4, rng=1, dtype=np.float32)
    np.testing.assert_allclose(layer32.W, layer64.W.astype(np.float32))
    x = rng.normal(size=(9, 6))
    dy = rng.normal(size=(9, 4))
    y32 = layer32.forward(x)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, layer64.forward(x), rtol=1e-5, atol=1e-6)
    dx32 = layer32.backward(x, dy)
    dx64 = layer64.backward(x, dy)
    assert dx32.dtype == layer32.dW.dtype == layer32.db.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer32.dW, layer64.dW, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: np.asfortranarray(x),
        lambda x: np.repeat(x, 2, axis=0)[::2],
        lambda x: np.repeat(x, 3, axis=1)[:, ::3],
        lambda x: x.T.copy().T,
        lambda x: np.round(x * 3).astype(np.int64),
        lambda x: x.astype(np.float32),
        lambda x: x.tolist(),
    ],
    ids=["fortran", "row-strided", "column-strided", "transposed-view", "int", "float32", "list"],
)
def test_layouts_and_dtypes_match_c_contiguous_float(rng, make):
    layer = lk.Linear(5, 3, rng=rng)
    x = rng.normal(size=(6, 5))
    dy = rng.normal(size=(6, 3))
    variant = make(x)
    reference = np.array(variant, dtype=np.float64, order="C")
    np.testing.assert_array_equal(layer.forward(variant), layer.forward(reference))
    dx_variant = layer.backward(variant, np.asfortranarray(dy))
    dW_variant, db_variant = layer.dW.copy(), layer.db.copy()
    np.testing.assert_allclose(dx_variant, layer.backward(reference, dy), rtol=1e-14)
    np.testing.assert_allclose(dW_variant, layer.dW, rtol=1e-14)
    np.testing.assert_allclose(db_variant, layer.db, rtol=1e-14)


def test_empty_batch_gives_empty_output_and_zero_gradients():
    layer = lk.Linear(5, 3, rng=0)
    y = layer.forward(np.empty((0, 5)))
    assert y.shape == (0, 3) and y.dtype == np.float64
    dx = layer.backward(np.empty((0, 5)), np.empty((0, 3)))
    assert dx.shape == (0, 5)
    np.testing.assert_array_equal(layer.dW, 0)
    np.testing.assert_array_equal(layer.db, 0)


def test_initialisation():
    n_in, n_out = 300, 200
    layer = lk.Linear(n_in, n_out, rng=0)
    a = np.sqrt(6 / (n_in + n_out))
    assert np.abs(layer.W).max() <= a
    assert np.abs(layer.W).max() > 0.95 * a
    assert layer.W.var() == pytest.approx(2 / (n_in + n_out), rel=0.05)
    np.testing.assert_array_equal(layer.b, 0)
    he = lk.Linear(n_in, n_out, rng=0, init="he")
    assert he.W.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.05)
    assert lk.Linear(3, 2, rng=5).W.tolist() == lk.Linear(3, 2, rng=np.random.default_rng(5)).W.tolist()
    shared = np.random.default_rng(1)
    assert not np.array_equal(lk.Linear(3, 2, rng=shared).W, lk.Linear(3, 2, rng=shared).W)


def test_repr():
    assert repr(lk.Linear(64, 32)) == "Linear(64, 32)"
    assert repr(lk.Linear(4, 2, init="he", dtype=np.float32)) == "Linear(4, 2, init='he', dtype='float32')"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(n_in=0, n_out=3), ValueError, "n_in: expected an integer >= 1, got 0"),
        (dict(n_in=2.5, n_out=3), TypeError, "n_in: expected an integer, got float"),
        (dict(n_in=2, n_out=3, init="lecun"), ValueError, "init must be one of"),
        (dict(n_in=2, n_out=3, dtype=np.int32), TypeError, "dtype: expected float32 or float64, got int32"),
        (dict(n_in=2, n_out=3, rng="seed"), TypeError, "rng: expected None, an int seed"),
    ],
)
def test_bad_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.Linear(**kwargs)


@pytest.mark.parametrize(
    "x, message",
    [
        (np.ones((4, 6)), r"Linear\(5, 3\): x must have 5 features \(columns\), got shape \(4, 6\)"),
        (np.ones(5), r"Linear\(5, 3\): x must be 2-D or more \(n_samples, \.\.\., n_in\), got 1-D array of shape \(5,\)"),
        (np.ones((2, 4, 6)), r"Linear\(5, 3\): x must have 5 features \(columns\), got shape \(2, 4, 6\)"),
    ],
)
def test_bad_input_shapes(x, message):
    with pytest.raises(ValueError, match=message):
        lk.Linear(5, 3, rng=0).forward(x)


def test_bad_input_types():
    layer = lk.Linear(2, 3, rng=0)
    with pytest.raises(TypeError, match=r"Linear\(2, 3\): x must hold real numbers .* got dtype <U1"):
        layer.forward(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match=r"Linear\(2, 3\): x must hold real numbers .* got dtype complex128"):
        layer.forward(np.ones((1, 2), dtype=complex))


def test_bad_dy():
    layer = lk.Linear(5, 3, rng=0)
    x = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"Linear\(5, 3\): dy must have the shape of the layer's output \(4, 3\), got \(4, 2\)"):
        layer.backward(x, np.ones((4, 2)))


def test_replaced_parameters_are_checked():
    layer = lk.Linear(5, 3, rng=0)
    layer.W = np.ones((3, 5))
    with pytest.raises(ValueError, match=r"Linear\(5, 3\): parameter W must have shape \(5, 3\), got \(3, 5\)"):
        layer.forward(np.ones((1, 5)))
    layer.W = np.ones((5, 3), dtype=np.float32)  # converted to the layer's dtype
    np.testing.assert_array_equal(layer.forward(np.ones((1, 5))), [[5, 5, 5]])
    assert layer.W.dtype == np.float64


def test_step_is_gradient_descent(rng):
    layer = lk.Linear(4, 2, rng=rng)
    W, b = layer.W.copy(), layer.b.copy()
    x = rng.normal(size=(3, 4))
    layer.backward(x, rng.normal(size=(3, 2)))
    layer.step(0.1)
    np.testing.assert_allclose(layer.W, W - 0.1 * layer.dW)
    np.testing.assert_allclose(layer.b, b - 0.1 * layer.db)


def test_step_before_backward_and_bad_update():
    layer = lk.Linear(4, 2, rng=0)
    with pytest.raises(RuntimeError, match=r"Linear\(4, 2\): no gradient dW yet"):
        layer.step(0.1)
    layer.backward(np.ones((1, 4)), np.ones((1, 2)))
    with pytest.raises(TypeError, match=r"expected a learning rate \(float\) or an optimizer .* got str"):
        layer.step("fast")
