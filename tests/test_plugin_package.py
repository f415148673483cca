"""The third-party plugin ``examples/plugin_package`` (distribution ``layerkit-extra-layers``), installed for real.

Everything goes through the registry, as a user of the plugin would: names,
classes, gradient checks, training, configs and save/load.
"""
from __future__ import annotations

import warnings
from importlib import metadata

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.config import ConfigError
from layerkit.testing import assert_grad, random_input

PLUGIN_LAYERS = ("swish", "mish")
INSTALL_HINT = "install the example plugin first: pip install ./examples/plugin_package"


@pytest.fixture(autouse=True, scope="module")
def plugin_installed():
    """Fail (never skip) when the plugin is missing: CI installs it with the README's test command."""
    registry.refresh()
    missing = [name for name in PLUGIN_LAYERS if name not in registry.names()]
    assert not missing, f"plugin layers {missing} are not installed; {INSTALL_HINT}"


# ------------------------------------------------------------------ discovery
def test_plugin_layers_come_from_the_plugin_distribution():
    found = {ep.name: ep for ep in metadata.entry_points(group=registry.GROUP) if ep.name in PLUGIN_LAYERS}
    assert {ep.dist.name for ep in found.values()} == {"layerkit-extra-layers"}
    assert registry.get("Mish").__module__ == "layerkit_extra.mish"
    assert registry.get("SWISH").__module__ == "layerkit_extra.swish"
    assert all(issubclass(registry.get(name), lk.Layer) for name in PLUGIN_LAYERS)


@pytest.mark.parametrize("name", sorted(set(PLUGIN_LAYERS) | {"linear", "relu", "sigmoid", "softmax"}))
def test_every_registered_layer_passes_a_gradient_check_from_its_example(name):
    cls = registry.get(name)
    layer = registry.create(name, **cls.example_kwargs)
    assert_grad(layer, random_input(cls.example_input_shape, kinks=cls.kinks, seed=0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kwargs", [{}, {"beta": 2.5}, {"beta": -0.8}, {"n_features": 3, "beta": 0.3}])
def test_swish_gradients_for_shared_and_per_feature_beta(kwargs):
    layer = registry.create("swish", **kwargs)
    if layer.n_features:
        layer.beta = np.array([0.3, -1.2, 2.0])  # a different beta per feature
    assert_grad(layer, np.random.default_rng(1).normal(scale=2.0, size=(6, 3)), rtol=1e-6, atol=1e-8)
    assert layer.dbeta.shape == ((3,) if layer.n_features else (1,))


# ------------------------------------------------------------------ values and numerics
def test_values_match_the_formulas():
    x = np.linspace(-5, 5, 12).reshape(4, 3)
    np.testing.assert_allclose(registry.create("mish").forward(x), x * np.tanh(np.log1p(np.exp(x))), rtol=1e-12)
    swish = registry.create("swish", n_features=3)
    swish.beta = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(swish.forward(x), x / (1 + np.exp(-swish.beta * x)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite_without_warnings(dtype):
    big = np.finfo(dtype).max / 4
    x = np.array([[-big, -1e4, -100.0, 0.0, 100.0, 1e4, big]], dtype=dtype)
    for name, kwargs in (("mish", {}), ("swish", {"dtype": dtype}), ("swish", {"beta": 3.0, "dtype": dtype})):
        layer = registry.create(name, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an overflow warning would fail the test
            y = layer.forward(x)
            dx = layer.backward(x, np.ones_like(x))
        assert y.dtype == dtype and dx.dtype == dtype
        assert np.isfinite(y).all() and np.isfinite(dx).all(), (name, y, dx)
        np.testing.assert_allclose(y[0, [0, 1, 3]], 0.0, atol=0)  # x * sigmoid(-inf), x * tanh(0): exactly 0
        assert y[0, -1] == x[0, -1]
        if name == "swish":
            assert np.isfinite(layer.dbeta).all()


def test_float32_stays_float32():
    x = np.ones((2, 3), dtype=np.float32)
    assert registry.create("mish").forward(x).dtype == np.float32
    assert registry.create("swish", dtype="float32").forward(x).dtype == np.float32
    assert registry.create("swish").forward(x).dtype == np.float64


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("name, kwargs, x, error, message", [
    ("swish", {"n_features": 4}, np.ones((2, 3)), ValueError, r"Swish\(4\): x must have 4 features \(columns\), "
                                                              r"got shape \(2, 3\)"),
    ("swish", {}, np.ones(3), ValueError, r"Swish\(\): x must be 2-D \(n_samples, n_features\), got 1-D"),
    ("mish", {}, np.ones((2, 2, 2)), ValueError, r"Mish\(\): x must be 2-D .* got 3-D"),
    ("mish", {}, np.array([["a", "b"]]), TypeError, r"Mish\(\): x must hold real numbers .* got dtype <U1"),
])
def test_bad_input_is_named(name, kwargs, x, error, message):
    with pytest.raises(error, match=message):
        registry.create(name, **kwargs).forward(x)


@pytest.mark.parametrize("name", PLUGIN_LAYERS)
def test_bad_dy_is_named(name):
    layer = registry.create(name)
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}\(\): dy must have the shape of the layer's "
                                         r"output \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_features": 0}, ValueError, r"Swish: n_features: expected an integer >= 1, got 0"),
    ({"n_features": 2.0}, TypeError, r"Swish: n_features: expected an integer, got float"),
    ({"beta": "1"}, TypeError, r"Swish: beta must be a finite real number, got str '1'"),
    ({"beta": float("inf")}, TypeError, r"Swish: beta must be a finite real number, got float inf"),
    ({"dtype": "int32"}, TypeError, r"Swish: dtype: expected float32 or float64, got int32"),
])
def test_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        registry.create("swish", **kwargs)


def test_a_beta_of_the_wrong_shape_is_named():
    layer = registry.create("swish", n_features=3)
    layer.beta = np.ones(4)
    with pytest.raises(ValueError, match=r"Swish\(3\): parameter beta must have shape \(3,\), got \(4,\)"):
        layer.forward(np.ones((1, 3)))


# ------------------------------------------------------------------ training through the registry
def test_a_net_of_plugin_layers_trains_and_learns_beta():
    net = lk.Net.from_config([
        {"type": "linear", "n_in": 2, "n_out": 8},
        {"type": "swish", "n_features": 8},
        {"type": "linear", "n_in": 8, "n_out": 8},
        "mish",
        {"type": "linear", "n_in": 8, "n_out": 1},
    ], seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 2))
    t = np.tanh(x[:, :1] * x[:, 1:] * 2 + 0.5 * x[:, :1])
    beta_before = net[1].beta.copy()
    losses = []
    for _ in range(60):
        y, trace = net.forward(x)
        loss, dy = lk.mean_squared_error(y, t)
        losses.append(loss)
        net.backward(trace, dy)
        net.step(0.5)
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert not np.array_equal(net[1].beta, beta_before)  # beta is learned, stepped like Linear's W


def test_scalar_beta_is_stepped():
    layer = registry.create("swish", beta=1.0)
    x = np.ones((3, 2))
    layer.backward(x, np.ones_like(x))
    expected = layer.beta - 0.1 * layer.dbeta
    layer.step(0.1)
    np.testing.assert_array_equal(layer.beta, expected)
    assert layer.beta.shape == (1,) and layer.beta[0] != 1.0


# ------------------------------------------------------------------ configs and save/load
def every_layer_net(dtype: str) -> lk.Net:
    return lk.Net.from_config([
        {"type": "linear", "n_in": 4, "n_out": 6, "dtype": dtype}, "relu",
        {"type": "swish", "n_features": 6, "beta": 0.8, "dtype": dtype},
        {"type": "linear", "n_in": 6, "n_out": 5, "dtype": dtype}, "mish",
        {"type": "swish", "dtype": dtype}, "sigmoid",
        {"type": "linear", "n_in": 5, "n_out": 3, "dtype": dtype}, "softmax",
    ], seed=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_config_round_trip_with_every_builtin_and_plugin_layer(dtype):
    net = every_layer_net(dtype)
    config = net.config()
    assert config[2] == {"type": "swish", "n_features": 6, "beta": 0.8, "dtype": dtype}
    assert config[4] == "mish"
    assert config[5] == {"type": "swish", "beta": 1.0, "dtype": dtype}  # shared beta: no null for TOML
    again = lk.Net.from_config(config, seed=0)
    assert again.config() == config
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(dtype)
    assert again.predict(x).tobytes() == net.predict(x).tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_with_every_builtin_and_plugin_layer(tmp_path, dtype):
    net = every_layer_net(dtype)
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(dtype)
    for _ in range(3):  # move beta away from its initial value
        y, trace = net.forward(x)
        net.backward(trace, y)
        net.step(0.3)
    assert net[2].beta[0] != np.float32(0.8)
    net.save(tmp_path / "plugin.npz")
    loaded = lk.Net.load(tmp_path / "plugin.npz")
    assert loaded.config() == net.config()
    assert loaded[2].beta.tobytes() == net[2].beta.tobytes()  # the learned beta, not the initial one
    got = loaded.predict(x)
    assert got.dtype == np.dtype(dtype) and got.tobytes() == net.predict(x).tobytes()


def test_bad_plugin_arguments_in_a_spec_name_the_item():
    with pytest.raises(ConfigError, match=r"item 1 \('swish'\): bad argument: Swish: beta must be a finite real "
                                          r"number, got str 'big'"):
        lk.Net.from_config(["mish", {"type": "swish", "beta": "big"}])
    with pytest.raises(ConfigError, match=r"item 0 \('mishh'\): unknown layer 'mishh'; did you mean 'mish'"):
        lk.Net.from_config(["mishh"])
    with pytest.raises(ConfigError, match=r"item 1 \(Swish\(3\)\) expects 3 input features but the layers before "
                                          r"it output 2"):
        lk.Net.from_config([{"type": "linear", "n_in": 2, "n_out": 2}, {"type": "swish", "n_features": 3}])


# ------------------------------------------------------------------ Mish and the built-in names
def test_mish_gradient_matches_its_formula_and_torch():
    rng = np.random.default_rng(3)
    torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")
    x = rng.normal(scale=3.0, size=(6, 5))
    dy = rng.normal(size=(6, 5))
    layer = registry.create("mish")
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.Mish()(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(x, dy), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert_grad(layer, x, dy=dy, rtol=1e-6, atol=1e-8, max_coords=None)
    assert layer.get_config() == {} and repr(layer) == "Mish()" and layer.param_names == ()


def test_no_plugin_name_collides_with_a_builtin_and_every_name_resolves():
    by_name = {}
    for ep in metadata.entry_points(group=registry.GROUP):
        by_name.setdefault(ep.name.lower(), set()).add(ep.dist.name)
    assert {name: dists for name, dists in by_name.items() if len(dists) > 1} == {}
    assert "tanh" not in {ep.name for ep in metadata.entry_points(group=registry.GROUP)
                          if ep.dist.name == "layerkit-extra-layers"}
    registry.refresh()
    for name in registry.names():
        assert issubclass(registry.get(name), lk.Layer)  # no DuplicateLayerError, no BrokenPluginError
