"""The built-in activations: formulas (against NumPy and torch.nn), gradients, stability, dtypes, NaN and bad input."""
import re

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

ACTIVATIONS = [lk.Sigmoid, lk.ReLU, lk.Softmax, lk.Tanh, lk.LeakyReLU, lk.ELU, lk.GELU, lk.Softplus, lk.Identity]


def reference(layer_cls, x):
    from scipy.special import erf

    if layer_cls is lk.Sigmoid:
        return 1 / (1 + np.exp(-x))
    if layer_cls is lk.ReLU:
        return np.maximum(x, 0)
    if layer_cls is lk.Tanh:
        return np.tanh(x)
    if layer_cls is lk.LeakyReLU:
        return np.where(x > 0, x, 0.01 * x)
    if layer_cls is lk.ELU:
        return np.where(x > 0, x, np.expm1(x))
    if layer_cls is lk.GELU:
        return 0.5 * x * (1 + erf(x / np.sqrt(2)))
    if layer_cls is lk.Softplus:
        return np.where(x > 20, x, np.log1p(np.exp(x)))
    if layer_cls is lk.Identity:
        return x
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
    name = re.escape(repr(layer_cls()))
    with pytest.raises(ValueError, match=rf"{name}: x must be 2-D .* got 1-D"):
        layer_cls().forward(np.ones(3))
    with pytest.raises(ValueError, match=rf"{name}: dy must have the shape of the layer's output \(2, 3\), got \(3, 2\)"):
        layer_cls().backward(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=rf"{name}: x must hold real numbers"):
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


# --------------------------------------------------------------------------- issue 11: equal to torch.nn
def torch_pairs():
    """(layerkit layer, the equivalent torch.nn module), parameters off their defaults where they have any."""
    import torch

    nn = torch.nn
    return [
        (lk.Sigmoid(), nn.Sigmoid()), (lk.ReLU(), nn.ReLU()), (lk.Softmax(), nn.Softmax(dim=1)),
        (lk.Tanh(), nn.Tanh()),
        (lk.LeakyReLU(), nn.LeakyReLU()), (lk.LeakyReLU(negative_slope=0.2), nn.LeakyReLU(0.2)),
        (lk.LeakyReLU(negative_slope=-1.5), nn.LeakyReLU(-1.5)),
        (lk.ELU(), nn.ELU()), (lk.ELU(alpha=0.3), nn.ELU(alpha=0.3)),
        (lk.GELU(), nn.GELU()), (lk.GELU(approximate="tanh"), nn.GELU(approximate="tanh")),
        (lk.Softplus(), nn.Softplus()), (lk.Softplus(beta=2.5, threshold=5.0), nn.Softplus(beta=2.5, threshold=5.0)),
        (lk.Softplus(beta=0.5, threshold=30.0), nn.Softplus(beta=0.5, threshold=30.0)),
        (lk.Identity(), nn.Identity()),
    ]


def hard_inputs(dtype):
    """Wide ranges, tiny and huge magnitudes, the thresholds' neighbourhoods, +-inf and NaN (8 columns a row)."""
    rng = np.random.default_rng(11)
    big = 80.0 if dtype == np.float32 else 700.0
    special = [0.0, -0.0, 1e-300 if dtype == np.float64 else 1e-30, -1e-20, 1e-8, -1e-8, 0.5, -0.5,
               19.99, 20.0, 20.01, 2.0, 1.999, 15.0, -15.0, 40.0, -40.0, big, -big, 1e4, -1e4,
               np.inf, -np.inf, np.nan]
    values = np.concatenate([special, rng.normal(scale=3, size=200), rng.uniform(-30, 30, size=200),
                             np.exp(rng.uniform(-40, 5, size=96)) * rng.choice([-1, 1], size=96)])
    return values[: len(values) // 8 * 8].reshape(-1, 8).astype(dtype)


def tolerance(layer, dtype):
    """rtol 1e-12 in float64; ``atol`` 1e-300 only lets subnormal results differ.

    Two of PyTorch's formulas (followed here) cancel, so one ulp of a transcendental,
    whoever computes it, moves the result by an absolute ~1e-16 rather than a relative
    one: GELU's ``0.5 x (1 + erf(x / sqrt 2))`` for negative x (erf near -1), and tanh's
    gradient ``dy (1 - tanh(x)**2)`` for large |x|, and softmax's gradient
    ``y (dy - <dy, y>)``. Those get an absolute tolerance of 1e-15.
    In float32 the transcendental layers compute in double and round once, where
    PyTorch's float32 formulas (``(1 - y) * y`` for sigmoid's gradient) cancel in
    float32: an absolute 1e-6 covers that.
    """
    cancels = isinstance(layer, (lk.GELU, lk.Tanh, lk.Softmax))
    if dtype == np.float32:
        return dict(rtol=2e-6, atol=1e-6)
    return dict(rtol=1e-12, atol=1e-15 if cancels else 1e-300)


@pytest.mark.parametrize("index", range(15))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_and_backward_equal_torch(index, dtype):
    import torch

    layer, module = torch_pairs()[index]
    x = hard_inputs(dtype)
    if isinstance(layer, lk.Softmax):
        x = np.where(np.isfinite(x), np.clip(x, -50, 50), 0.5)  # a row with inf or NaN is all NaN in both
    if isinstance(layer, lk.GELU) and dtype == np.float32:
        x = np.where(x == np.inf, 1.0, x)  # torch's float32 GELU gives NaN at +inf (float64: inf, as here)
    dy = np.random.default_rng(12).normal(size=x.shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    ty.backward(torch.tensor(dy))
    y = layer.forward(x)
    dx = layer.backward(x, dy)
    assert y.dtype == dx.dtype == dtype
    tol = tolerance(layer, dtype)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol, err_msg=f"{layer!r} forward")
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol, err_msg=f"{layer!r} backward")
    # NaN exactly where torch has NaN (NaN propagates); infinities where torch has them
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ty.detach().numpy()))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ty.detach().numpy()))


NEW = [lk.Tanh, lk.LeakyReLU, lk.ELU, lk.GELU, lk.Softplus, lk.Identity]


@pytest.mark.parametrize("layer_cls", NEW)
def test_registered_exported_and_gradient_checked_from_their_example(layer_cls):
    from layerkit import registry
    from layerkit.testing import random_input

    name = {"Tanh": "tanh", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu", "Softplus": "softplus",
            "Identity": "identity"}[layer_cls.__name__]
    assert registry.get(name) is layer_cls
    assert getattr(lk, layer_cls.__name__) is layer_cls
    layer = registry.create(name, **layer_cls.example_kwargs)
    assert_grad(layer, random_input(layer_cls.example_input_shape, kinks=layer.kinks, seed=0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layer", [lk.Tanh(), lk.LeakyReLU(negative_slope=0.3), lk.ELU(alpha=0.7), lk.GELU(),
                                   lk.GELU(approximate="tanh"), lk.Softplus(beta=3.0, threshold=4.0), lk.Identity()],
                         ids=repr)
def test_gradients_match_differences_over_a_wide_range(rng, layer):
    x = rng.uniform(-6, 6, size=(7, 5))
    x = np.where(np.abs(x) < 1e-2, 0.5, x)
    for kink in layer.kinks:
        x = np.where(np.abs(x - kink) < 1e-2, kink + 0.3, x)
    assert_grad(layer, x, dy=rng.normal(size=x.shape), rtol=1e-6, atol=1e-8, max_coords=None)


def test_kinks_are_declared_where_the_gradient_jumps():
    assert lk.LeakyReLU.kinks == (0.0,) and lk.ELU.kinks == (0.0,)
    assert lk.Softplus(beta=2.0, threshold=10.0).kinks == (5.0,)
    assert lk.Tanh.kinks == lk.GELU.kinks == lk.Identity.kinks == ()


def test_pytest_plugin_gradchecks_every_new_layer(pytester):
    result = pytester.runpytest("--layerkit-gradcheck-only", "tanh,leaky_relu,elu,gelu,softplus,identity", "-v")
    result.assert_outcomes(passed=6)


@pytest.mark.parametrize("layer, config, text", [
    (lk.Tanh(), {}, "Tanh()"),
    (lk.LeakyReLU(), {"negative_slope": 0.01}, "LeakyReLU(negative_slope=0.01)"),
    (lk.ELU(alpha=2), {"alpha": 2.0}, "ELU(alpha=2.0)"),
    (lk.GELU(), {"approximate": "none"}, "GELU(approximate='none')"),
    (lk.GELU(approximate="tanh"), {"approximate": "tanh"}, "GELU(approximate='tanh')"),
    (lk.Softplus(beta=2, threshold=15), {"beta": 2.0, "threshold": 15.0}, "Softplus(beta=2.0, threshold=15.0)"),
    (lk.Identity(), {}, "Identity()"),
], ids=lambda v: repr(v) if isinstance(v, lk.Layer) else "")
def test_config_and_repr(layer, config, text):
    assert layer.get_config() == config
    assert repr(layer) == text
    again = type(layer)(**config)
    assert again.get_config() == config


@pytest.mark.parametrize("make, error, message", [
    (lambda: lk.LeakyReLU(negative_slope="0.1"), TypeError, r"LeakyReLU: negative_slope: expected a real number, got str '0.1'"),
    (lambda: lk.LeakyReLU(negative_slope=float("nan")), ValueError, r"LeakyReLU: negative_slope: expected a finite number, got nan"),
    (lambda: lk.ELU(alpha=True), TypeError, r"ELU: alpha: expected a real number, got bool True"),
    (lambda: lk.ELU(alpha=float("inf")), ValueError, r"ELU: alpha: expected a finite number, got inf"),
    (lambda: lk.GELU(approximate="erf"), ValueError, r"GELU: approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: lk.GELU(approximate=None), ValueError, r"GELU: approximate must be 'none' or 'tanh', got None"),
    (lambda: lk.Softplus(beta=0), ValueError, r"Softplus: beta: expected a number > 0, got 0.0"),
    (lambda: lk.Softplus(beta=-1.0), ValueError, r"Softplus: beta: expected a number > 0, got -1.0"),
    (lambda: lk.Softplus(threshold=float("inf")), ValueError, r"Softplus: threshold: expected a finite number, got inf"),
    (lambda: lk.Softplus(threshold=[20]), TypeError, r"Softplus: threshold: expected a real number, got list"),
])
def test_bad_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_parameters_are_read_only_so_a_fused_net_cannot_go_stale():
    layer = lk.LeakyReLU(negative_slope=0.2)
    with pytest.raises(AttributeError):
        layer.negative_slope = 0.5
    assert layer.negative_slope == 0.2
    for layer, name in ((lk.ELU(), "alpha"), (lk.Softplus(), "beta"), (lk.Softplus(), "threshold"),
                        (lk.GELU(), "approximate")):
        with pytest.raises(AttributeError):
            setattr(layer, name, 3.0)


def every_new_layer_net(dtype):
    return lk.Net.from_config([
        {"type": "linear", "n_in": 4, "n_out": 6, "dtype": dtype}, "tanh",
        {"type": "linear", "n_in": 6, "n_out": 6, "dtype": dtype}, {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "linear", "n_in": 6, "n_out": 6, "dtype": dtype}, {"type": "elu", "alpha": 0.5},
        {"type": "linear", "n_in": 6, "n_out": 6, "dtype": dtype}, {"type": "gelu", "approximate": "tanh"}, "gelu",
        {"type": "linear", "n_in": 6, "n_out": 5, "dtype": dtype}, {"type": "softplus", "beta": 2.0, "threshold": 3.0},
        {"type": "linear", "n_in": 5, "n_out": 3, "dtype": dtype}, "identity",
    ], seed=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_config_and_file_round_trips_give_bit_identical_predictions(tmp_path, dtype):
    net = every_new_layer_net(dtype)
    x = np.random.default_rng(0).normal(scale=2, size=(9, 4)).astype(dtype)
    config = net.config()
    assert config[1] == "tanh" and config[3] == {"type": "leaky_relu", "negative_slope": 0.2}
    assert config[10] == {"type": "softplus", "beta": 2.0, "threshold": 3.0}
    again = lk.Net.from_config(config, seed=0)
    assert again.config() == config
    assert again.predict(x).tobytes() == net.predict(x).tobytes()
    for _ in range(2):
        y, trace = net.forward(x)
        net.backward(trace, y)
        net.step(0.1)
    net.save(tmp_path / "acts.npz")
    loaded = lk.Net.load(tmp_path / "acts.npz")
    assert loaded.config() == net.config()
    got = loaded.predict(x)
    assert got.dtype == np.dtype(dtype) and got.tobytes() == net.predict(x).tobytes()


def test_softplus_never_overflows_whatever_the_threshold():
    layer = lk.Softplus(beta=1.0, threshold=1e6)
    x = np.array([[800.0, -800.0, 1e5, 0.0]])
    with np.errstate(all="raise"):
        y = layer.forward(x)
        dx = layer.backward(x, np.ones_like(x))
    np.testing.assert_allclose(y, [[800.0, 0.0, 1e5, np.log(2)]], rtol=1e-15)
    np.testing.assert_allclose(dx, [[1.0, 0.0, 1.0, 0.5]], rtol=1e-15)


def test_identity_returns_a_new_array():
    x = np.ones((2, 3))
    y = lk.Identity().forward(x)
    assert y is not x and not np.shares_memory(x, y)
    np.testing.assert_array_equal(y, x)
