"""layerkit.interop.JaxLayer: a pure JAX function as a layer, with gradients from jax.vjp."""
import copy

import numpy as np
import pytest

import layerkit as lk
from layerkit import optim
from layerkit.config import ConfigError
from layerkit.testing import assert_grad

from interop_helpers import import_error_without, train_with_steps

jax = pytest.importorskip("jax", reason="JAX (the 'test' extra) is needed for JaxLayer")
jnp = jax.numpy
from layerkit.interop import JaxLayer  # noqa: E402


def dense_tanh(params, x):
    return jnp.tanh(x @ params["W"] + params["b"])


def _params(rng, n_in=4, n_out=3, dtype=np.float64):
    return {"W": rng.normal(size=(n_in, n_out)).astype(dtype), "b": (0.1 * rng.normal(size=n_out)).astype(dtype)}


def _numpy_dense_tanh(params, x):
    return np.tanh(x @ params["W"] + params["b"])


def test_missing_jax_names_the_extra():
    out = import_error_without("jax", "JaxLayer")
    assert "JaxLayer" in out and 'pip install "layerkit[jax]"' in out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_keeps_the_dtype_without_touching_the_global_flag(rng, dtype):
    params = _params(rng, dtype=dtype)
    layer = JaxLayer(dense_tanh, params)
    x = rng.normal(size=(5, 4))
    y = layer.forward(x)
    assert y.dtype == dtype and layer.dtype == dtype
    expected = _numpy_dense_tanh(params, x.astype(dtype))
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-14, atol=1e-6 if
                               dtype == np.float32 else 1e-15)
    assert jax.config.jax_enable_x64 is False  # float64 ran in JAX's scoped 64-bit mode
    np.testing.assert_array_equal(layer.forward(np.asfortranarray(x)), y)
    np.testing.assert_array_equal(layer.forward(np.repeat(x, 2, axis=1)[:, ::2]), y)


def test_float64_is_computed_in_float64(rng):
    """A result only float64 can hold: 1 + 1e-12 survives."""
    layer = JaxLayer(lambda p, x: x + p["c"], {"c": np.full(1, 1e-12)})
    assert layer.forward(np.ones((1, 1)))[0, 0] - 1.0 == pytest.approx(1e-12, rel=1e-3)


def test_parameters_are_owned_arrays_updated_in_place(rng):
    params = _params(rng)
    layer = JaxLayer(jax.jit(dense_tanh), params)
    assert layer.param_names == ("W", "b")
    assert layer.W is not params["W"] and layer.W.flags.writeable
    x = rng.normal(size=(5, 4))
    layer.backward(x, np.ones((5, 3)))
    before = layer.W.copy()
    W = layer.W
    layer.step(0.5)
    assert layer.W is W and not np.array_equal(W, before)
    np.testing.assert_allclose(layer.forward(x), _numpy_dense_tanh({"W": W, "b": layer.b}, x), rtol=1e-13)
    assert params["W"].tobytes() != W.tobytes()  # the caller's arrays are left alone


def test_nested_pytree_names(rng):
    params = {"hidden": {"W": rng.normal(size=(4, 5)), "b": np.zeros(5)}, "out": [rng.normal(size=(5, 2))]}

    def fn(p, x):
        return jnp.tanh(x @ p["hidden"]["W"] + p["hidden"]["b"]) @ p["out"][0]

    layer = JaxLayer(fn, params)
    assert layer.param_names == ("hidden_W", "hidden_b", "out_0")
    assert layer.param_paths["out_0"] == "['out'][0]"
    tree = layer.param_tree()
    assert tree["out"][0] is layer.out_0
    assert_grad(layer, rng.normal(size=(3, 4)), seed=0)


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradcheck(rng, dtype, jit):
    report = assert_grad(JaxLayer(dense_tanh, _params(rng, dtype=dtype), jit=jit), rng.normal(size=(5, 4)), seed=0)
    assert set(report.tensors) == {"x", "W", "b"}


def test_a_function_jit_cannot_trace_needs_jit_false(rng):
    def clipped(params, x):
        scale = params["s"][0]
        return x * scale if scale > 0 else -x  # Python control flow on a value

    layer = JaxLayer(clipped, {"s": np.array([2.0])})
    with pytest.raises(TypeError, match=r"jax.jit cannot trace fn .*jit=False"):
        layer.forward(np.ones((2, 3)))
    plain = JaxLayer(clipped, {"s": np.array([2.0])}, jit=False)
    np.testing.assert_array_equal(plain.forward(np.ones((2, 3))), np.full((2, 3), 2.0))
    assert_grad(plain, rng.normal(size=(2, 3)), seed=0)


def test_gradients_equal_jax_grad(rng):
    params = _params(rng)
    layer = JaxLayer(dense_tanh, params)
    x, dy = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    dx = layer.backward(x, dy)
    with jax.enable_x64(True) if hasattr(jax, "enable_x64") else jax.experimental.enable_x64():
        loss = lambda p, x: jnp.sum(dense_tanh(p, x) * dy)  # noqa: E731
        d_params, d_x = jax.grad(loss, argnums=(0, 1))(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(x))
    np.testing.assert_allclose(dx, d_x, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(layer.dW, d_params["W"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(layer.db, d_params["b"], rtol=1e-14, atol=1e-15)


def test_interleaved_passes(rng):
    net = lk.Net([lk.Linear(4, 4, rng=0), JaxLayer(dense_tanh, _params(rng))])
    xs = [rng.normal(size=(5, 4)) for _ in range(2)]
    dys = [rng.normal(size=(5, 3)) for _ in range(2)]
    alone = []
    for x, dy in zip(xs, dys):
        _, trace = net.forward(x)
        alone.append((net.backward(trace, dy, input_grad=True), net[1].dW.copy()))
    traces = [net.forward(x)[1] for x in xs]
    for index in (1, 0):
        np.testing.assert_array_equal(net.backward(traces[index], dys[index], input_grad=True), alone[index][0])
        np.testing.assert_array_equal(net[1].dW, alone[index][1])


@pytest.mark.parametrize("make_update", [lambda: optim.SGD(0.1, momentum=0.9), lambda: optim.Adam(0.01)],
                         ids=["SGD", "Adam"])
def test_mixed_net_trains(rng, make_update):
    layer = JaxLayer(jax.jit(dense_tanh), _params(rng, 8, 8))
    net = lk.Net([lk.Linear(4, 8, rng=0), lk.Tanh(), layer, lk.Linear(8, 2, rng=1)])
    x = rng.normal(size=(64, 4))
    t = np.sin(x[:, :2]) + 0.1 * x[:, 2:]
    start = layer.W.copy()
    losses = train_with_steps(net, x, t, make_update())
    assert losses[-1] < 0.5 * losses[0]
    assert not np.array_equal(layer.W, start)
    tree = layer.param_tree()  # the trained values, as the pytree the function takes
    np.testing.assert_array_equal(tree["W"], layer.W)


def test_mixed_net_trains_with_fit(rng):
    layer = JaxLayer(dense_tanh, _params(rng, 8, 8, dtype=np.float32))
    net = lk.Net([lk.Linear(4, 8, rng=0, dtype=np.float32), layer, lk.Linear(8, 2, rng=1, dtype=np.float32)])
    x = rng.normal(size=(64, 4)).astype(np.float32)
    t = np.sin(x[:, :2])
    start = layer.W.copy()
    before, _ = lk.evaluate(net, x, t, loss="mse")
    lk.fit(net, x, t, epochs=15, loss="mse", optimizer=optim.Adam(0.01), batch_size=16, seed=0, verbose=False,
           clip_norm=1.0)
    after, _ = lk.evaluate(net, x, t, loss="mse")
    assert after < 0.5 * before
    assert not np.array_equal(layer.W, start)


def test_copies_are_independent(rng):
    layer = JaxLayer(dense_tanh, _params(rng))
    twin = copy.deepcopy(layer)
    twin.W[:] = 0.0
    x = rng.normal(size=(2, 4))
    assert not np.array_equal(twin.forward(x), layer.forward(x))


def test_config_save_and_onnx_refuse_clearly(rng, tmp_path):
    net = lk.Net([lk.Linear(4, 4, rng=0), JaxLayer(dense_tanh, _params(rng))])
    with pytest.raises(ConfigError, match=r"layer 1 \(JaxLayer\(dense_tanh.*JAX function.*param_tree"):
        net.config()
    with pytest.raises(ConfigError, match="cannot rebuild"):
        net.save(tmp_path / "net.npz")
    pytest.importorskip("onnx")
    with pytest.raises(TypeError, match=r"JaxLayer\(dense_tanh.*cannot export"):
        lk.onnx.to_onnx(net)


def test_bad_arguments(rng):
    with pytest.raises(TypeError, match="fn must be a callable"):
        JaxLayer("tanh", {})
    with pytest.raises(TypeError, match="one dtype"):
        JaxLayer(dense_tanh, {"W": np.ones((2, 2), np.float32), "b": np.ones(2)})
    with pytest.raises(TypeError, match=r"\['n'\] must hold floats"):
        JaxLayer(dense_tanh, {"n": np.ones(2, dtype=int)})
    with pytest.raises(ValueError, match="already uses"):
        JaxLayer(dense_tanh, {"forward": np.ones(2)})
    with pytest.raises(ValueError, match="'dW'"):
        JaxLayer(dense_tanh, {"W": np.ones(2), "dW": np.ones(2)})
    with pytest.raises(ValueError, match="does not match"):
        JaxLayer(dense_tanh, _params(rng), dtype=np.float32)


def test_bad_calls_name_the_layer(rng):
    layer = JaxLayer(dense_tanh, _params(rng))
    with pytest.raises(ValueError, match=r"JaxLayer\(dense_tanh.*2-D"):
        layer.forward(np.ones(4))
    with pytest.raises(ValueError, match="dy must have the shape"):
        layer.backward(np.ones((2, 4)), np.ones((2, 2)))
    layer.W = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"parameter W must keep its shape \(4, 3\)"):
        layer.forward(np.ones((2, 4)))
    narrow = JaxLayer(lambda p, x: (x @ p["W"]).astype(jnp.float32), _params(rng))
    with pytest.raises(TypeError, match="returned float32 for float64"):
        narrow.forward(np.ones((2, 4)))
    with pytest.raises(TypeError, match="one array"):
        JaxLayer(lambda p, x: (x, x), _params(rng)).forward(np.ones((2, 4)))
    with pytest.raises(TypeError, match="one array"):
        JaxLayer(lambda p, x: (x, x), _params(rng)).backward(np.ones((2, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output \(2, 3\)"):
        JaxLayer(dense_tanh, _params(rng), jit=False).backward(np.ones((2, 4)), np.ones((3, 3)))
    with pytest.raises(TypeError, match="jit must be True or False"):
        JaxLayer(dense_tanh, _params(rng), jit=1)
