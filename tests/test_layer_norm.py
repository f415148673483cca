"""LayerNorm against torch.nn.LayerNorm: forward, backward, both dtypes, modes, configs and files."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_grad

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("rows, n", [(1, 5), (7, 5), (32, 16)])
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_backward_equal_torch(rng, dtype, rtol, rows, n, training):
    layer = lk.LayerNorm(n, eps=1e-4, dtype=dtype)
    module = torch.nn.LayerNorm(n, eps=1e-4).to(torch.float64 if dtype == np.float64 else torch.float32)
    gamma, beta = rng.normal(size=n), rng.normal(size=n)
    layer.gamma, layer.beta = gamma.astype(dtype), beta.astype(dtype)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(gamma))
        module.bias.copy_(torch.from_numpy(beta))
    module.train(training)
    x = (rng.normal(size=(rows, n)) * 4 - 1).astype(dtype)
    dy = rng.normal(size=(rows, n)).astype(dtype)
    y, ctx = layer.forward_pass(x, training)
    dx = layer.backward_pass(x, ctx, dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    yt.backward(torch.tensor(dy))
    var = x.astype(np.float64).var(axis=1).min()
    dx_scale = np.abs(dy).max() * np.abs(gamma).max() / np.sqrt(var + 1e-4)  # the terms that cancel in dx
    for name, ours, theirs, scale in (("y", y, yt.detach().numpy(), None), ("dx", dx, xt.grad.numpy(), dx_scale),
                                      ("dgamma", layer.dgamma, module.weight.grad.numpy(), None),
                                      ("dbeta", layer.dbeta, module.bias.grad.numpy(), None)):
        assert ours.dtype == dtype, name
        scale = np.abs(theirs).max() if scale is None else scale
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_backward_without_ctx_equals_backward_with_it(rng):
    layer = lk.LayerNorm(4)
    x, dy = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    _, ctx = layer.forward_pass(x, True)
    assert np.array_equal(layer.backward(x, dy), layer.backward_pass(x, ctx, dy))
    assert np.array_equal(layer.forward(x), layer.forward_pass(x, False)[0])  # no mode difference


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients(rng, dtype):
    layer = lk.LayerNorm(5, dtype=dtype)
    layer.gamma = rng.normal(size=5).astype(dtype)
    layer.beta = rng.normal(size=5).astype(dtype)
    assert_grad(layer, rng.normal(size=(4, 5)), rtol=1e-6, atol=1e-8, max_coords=None, directions=3)


def test_constant_rows_stay_finite():
    y = lk.LayerNorm(3).forward(np.full((2, 3), 7.0))
    assert np.array_equal(y, np.zeros((2, 3)))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n": 0}, ValueError, r"LayerNorm: n: expected an integer >= 1, got 0"),
    ({"n": "4"}, TypeError, r"LayerNorm: n: expected an integer, got str '4'"),
    ({"n": 4, "eps": -1.0}, ValueError, r"LayerNorm: eps: expected a real number in \(0, inf\), got float -1.0"),
    ({"n": 4, "eps": float("nan")}, ValueError, r"LayerNorm: eps: expected a real number in \(0, inf\), got float nan"),
    ({"n": 4, "dtype": "float16"}, TypeError, r"LayerNorm: dtype: expected float32 or float64, got float16"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.LayerNorm(**kwargs)


def test_bad_input_and_parameters_are_named():
    layer = lk.LayerNorm(3)
    with pytest.raises(ValueError, match=r"LayerNorm\(3\): x must have 3 features \(columns\), got shape \(2, 4\)"):
        layer.forward(np.ones((2, 4)))
    layer.gamma = np.ones(2)
    with pytest.raises(ValueError, match=r"LayerNorm\(3\): gamma must have shape \(3,\), got \(2,\)"):
        layer.forward(np.ones((2, 3)))


def test_any_layout_and_byte_order_gives_the_same_result(rng):
    layer = lk.LayerNorm(4)
    x = rng.normal(size=(5, 8))[:, ::2]  # not contiguous
    expected = layer.forward(np.ascontiguousarray(x))
    assert np.array_equal(layer.forward(x), expected)
    assert np.array_equal(layer.forward(np.asfortranarray(x)), expected)
    assert np.array_equal(layer.forward(x.astype(">f8")), expected)


def test_config_repr_registry_and_round_trip(tmp_path, rng):
    layer = lk.LayerNorm(4, eps=1e-3, dtype="float32")
    assert repr(layer) == "LayerNorm(4, eps=0.001, dtype='float32')" and repr(lk.LayerNorm(2)) == "LayerNorm(2)"
    assert layer.get_config() == {"n": 4, "eps": 0.001, "dtype": "float32"}
    assert lk.registry.get("layer_norm") is lk.LayerNorm
    net = lk.Net.from_config([{"type": "linear", "n_in": 3, "n_out": 4}, {"type": "layer_norm", "n": 4},
                              {"type": "linear", "n_in": 4, "n_out": 1}], seed=0)
    net[1].gamma = rng.normal(size=4)
    net.save(tmp_path / "ln.npz")
    loaded = lk.Net.load(tmp_path / "ln.npz")
    x = rng.normal(size=(5, 3))
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    assert lk.Net.from_config(net.config()).config() == net.config()
    with pytest.raises(lk.config.ConfigError, match=r"item 2 \(LayerNorm\(4\)\) expects 4 input features but the "
                                                    r"layers before it output 3"):
        lk.Net.from_config([{"type": "linear", "n_in": 3, "n_out": 3}, "relu", {"type": "layer_norm", "n": 4}])
