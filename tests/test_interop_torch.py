"""layerkit.interop.TorchLayer: a torch.nn.Module as a layer, checked against torch itself."""
import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

import layerkit as lk
from layerkit import optim
from layerkit.config import ConfigError
from layerkit.testing import GradcheckError, assert_grad

from interop_helpers import import_error_without, train_with_steps

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra, torch==2.13.0) is needed for TorchLayer")
from layerkit.interop import TorchLayer  # noqa: E402


def _mlp(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).to(dtype)


def _x(rng, n=5, d=4):
    return rng.normal(size=(n, d))


# ---------------------------------------------------------------------- imports
def test_import_layerkit_imports_neither_torch_nor_jax():
    code = ("import sys, layerkit, layerkit.interop; layerkit.interop.__dir__(); "
            "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_torch_names_the_extra():
    out = import_error_without("torch", "TorchLayer")
    assert "TorchLayer" in out and 'pip install "layerkit[torch]"' in out


def test_lazy_attribute_of_layerkit():
    assert lk.interop.TorchLayer is TorchLayer


# ---------------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_module_and_keeps_dtype(rng, dtype):
    module = _mlp(dtype)
    layer = TorchLayer(module)
    x = _x(rng)
    y = layer.forward(x)
    expected = module(torch.tensor(x, dtype=dtype)).detach().numpy()
    assert y.dtype == expected.dtype == layer.dtype
    np.testing.assert_array_equal(y, expected)
    # non-contiguous and Fortran-ordered inputs give the same numbers
    wide = np.asfortranarray(np.repeat(x, 2, axis=1))
    np.testing.assert_array_equal(layer.forward(wide[:, ::2]), y)
    np.testing.assert_array_equal(layer.forward(np.asfortranarray(x)), y)


def test_forward_does_not_touch_the_input(rng):
    layer = TorchLayer(torch.nn.ReLU(inplace=True))
    x = _x(rng)
    before = x.copy()
    y = layer.forward(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(y, np.maximum(before, 0))


def test_parameters_share_memory_with_the_module():
    module = _mlp()
    layer = TorchLayer(module)
    assert layer.param_names == ("0_weight", "0_bias", "2_weight", "2_bias")
    assert layer.torch_names["2_weight"] == "2.weight"
    layer.__dict__["0_bias"][:] = 7.0
    assert torch.all(module[0].bias == 7.0)
    with torch.no_grad():
        module[2].weight.fill_(-1.5)
    assert np.all(getattr(layer, "2_weight") == -1.5)


def test_assigning_an_array_makes_it_the_parameter():
    module = _mlp()
    layer = TorchLayer(module)
    new = np.full((3, 6), 0.25)
    setattr(layer, "2_weight", new)
    layer.forward(np.zeros((1, 4)))  # the next call adopts it
    assert getattr(layer, "2_weight") is new
    new[0, 0] = 9.0
    assert module[2].weight[0, 0].item() == 9.0


def test_replaced_submodule_is_followed():
    module = _mlp()
    layer = TorchLayer(module)
    module[2] = torch.nn.Linear(6, 3).double()
    y = layer.forward(np.ones((2, 4)))
    np.testing.assert_array_equal(y, module(torch.ones(2, 4, dtype=torch.float64)).detach().numpy())
    getattr(layer, "2_bias")[:] = 3.0
    assert torch.all(module[2].bias == 3.0)


def test_frozen_parameters_are_not_trained(rng):
    module = torch.nn.Linear(4, 3).double()
    module.bias.requires_grad_(False)
    layer = TorchLayer(module)
    assert layer.param_names == ("weight",) and layer.n_params == 12
    bias = module.bias.detach().clone()
    layer.backward(_x(rng), np.ones((5, 3)))
    layer.step(optim.Adam(0.1))
    assert torch.equal(module.bias, bias)
    assert not hasattr(layer, "dbias")


def test_the_layer_follows_a_converted_module(rng):
    module = _mlp(torch.float64)
    layer = TorchLayer(module)
    module.float()
    y = layer.forward(_x(rng))
    assert layer.dtype == y.dtype == np.float32 and getattr(layer, "0_weight").dtype == np.float32
    getattr(layer, "0_bias")[:] = 2.0
    assert torch.all(module[0].bias == 2.0)


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradcheck(rng, dtype):
    report = assert_grad(TorchLayer(_mlp(dtype)), _x(rng), seed=0)
    assert set(report.tensors) == {"x", "0_weight", "0_bias", "2_weight", "2_bias"}


def test_gradcheck_batch_norm_in_training_mode(rng):
    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh()).double()
    layer = TorchLayer(module)
    assert layer.state_names == ("1_running_mean", "1_running_var")
    running = module[1].running_mean.clone()
    assert_grad(layer, _x(rng, n=6), seed=1)
    assert torch.equal(module[1].running_mean, running)  # the checker put the statistics back


def test_gradcheck_dropout_with_a_reset(rng):
    """torch's generator is not the layer's: the checker refuses the random module until reset reseeds torch."""
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Dropout(0.3), torch.nn.Tanh()).double()
    layer, x = TorchLayer(module), _x(rng)
    with pytest.raises(GradcheckError, match="different outputs"):
        assert_grad(layer, x, seed=0)
    assert_grad(layer, x, seed=0, reset=lambda _: torch.manual_seed(0))


def test_gradients_equal_autograd_of_the_module(rng):
    module = _mlp()
    layer = TorchLayer(module)
    x, dy = _x(rng), rng.normal(size=(5, 3))
    dx = layer.backward(x, dy)
    x_t = torch.tensor(x, requires_grad=True)
    module(x_t).backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=0, atol=1e-14)
    for attr, name in layer.torch_names.items():
        np.testing.assert_allclose(getattr(layer, "d" + attr), dict(module.named_parameters())[name].grad.numpy(),
                                   rtol=0, atol=1e-14)


def test_interleaved_passes(rng):
    """Several forward passes before their backward passes, in any order: each gets its own gradients."""
    net = lk.Net([lk.Linear(4, 4, rng=0), TorchLayer(_mlp()), lk.Sigmoid()])
    xs = [_x(rng) for _ in range(3)]
    dys = [rng.normal(size=(5, 3)) for _ in range(3)]
    alone = []
    for x, dy in zip(xs, dys):
        _, trace = net.forward(x)
        dx = net.backward(trace, dy, input_grad=True)
        alone.append((dx, getattr(net[1], "d0_weight").copy(), net[0].dW.copy()))
    traces = [net.forward(x)[1] for x in xs]
    for index in (2, 0, 1):
        dx = net.backward(traces[index], dys[index], input_grad=True)
        np.testing.assert_array_equal(dx, alone[index][0])
        np.testing.assert_array_equal(getattr(net[1], "d0_weight"), alone[index][1])
        np.testing.assert_array_equal(net[0].dW, alone[index][2])


def test_mixed_net_equals_the_pure_torch_model(rng):
    """lk.Linear -> TorchLayer(Tanh, Linear) -> lk.Linear against the same model in torch.nn: 1e-12 in float64."""
    inner = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(6, 5)).double()
    net = lk.Net([lk.Linear(4, 6, rng=0), TorchLayer(inner), lk.ReLU(), lk.Linear(5, 2, rng=1)])
    first, last = torch.nn.Linear(4, 6).double(), torch.nn.Linear(5, 2).double()
    with torch.no_grad():
        first.weight.copy_(torch.tensor(net[0].W.T)), first.bias.copy_(torch.tensor(net[0].b))
        last.weight.copy_(torch.tensor(net[3].W.T)), last.bias.copy_(torch.tensor(net[3].b))
    reference = torch.nn.Sequential(first, copy.deepcopy(inner), torch.nn.ReLU(), last)
    x, t = _x(rng, n=8), rng.normal(size=(8, 2))

    y, trace = net.forward(x)
    loss, dy = lk.mean_squared_error(y, t)
    dx = net.backward(trace, dy, input_grad=True)

    x_t = torch.tensor(x, requires_grad=True)
    y_t = reference(x_t)
    loss_t = torch.nn.functional.mse_loss(y_t, torch.tensor(t))
    loss_t.backward()
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=0, atol=1e-12)
    assert abs(loss - loss_t.item()) < 1e-12
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(net[0].dW, first.weight.grad.numpy().T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net[3].db, last.bias.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(getattr(net[1], "d1_weight"), reference[1][1].weight.grad.numpy(), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(getattr(net[1], "d1_bias"), reference[1][1].bias.grad.numpy(), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- training
def _regression(rng, n=64):
    x = rng.normal(size=(n, 4))
    return x, np.sin(x[:, :2]) + 0.1 * x[:, 2:]


@pytest.mark.parametrize("make_update", [lambda: 0.1, lambda: optim.SGD(0.1, momentum=0.9),
                                         lambda: optim.Adam(0.01)], ids=["rate", "SGD", "Adam"])
def test_mixed_net_trains_with_steps(rng, make_update):
    module = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh()).double()
    net = lk.Net([lk.Linear(4, 8, rng=0), lk.Tanh(), TorchLayer(module), lk.Linear(8, 2, rng=1)])
    start = module[0].weight.detach().clone()
    x, t = _regression(rng)
    losses = train_with_steps(net, x, t, make_update())
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.equal(module[0].weight, start)  # the module itself was trained
    np.testing.assert_array_equal(getattr(net[2], "0_weight"), module[0].weight.detach().numpy())


def test_mixed_net_trains_with_fit_clipping_and_diagnostics(rng):
    module = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh()).float()
    net = lk.Net([lk.Linear(4, 8, rng=0, dtype=np.float32), TorchLayer(module),
                  lk.Linear(8, 2, rng=1, dtype=np.float32)])
    start = module[0].weight.detach().clone()
    x, t = _regression(rng)
    x, t = x.astype(np.float32), t.astype(np.float32)
    before, _ = lk.evaluate(net, x, t, loss="mse")
    history = lk.fit(net, x, t, epochs=15, loss="mse", optimizer=optim.Adam(0.01), batch_size=16, seed=0,
                     verbose=False, clip_norm=1.0, diagnostics=True)
    after, _ = lk.evaluate(net, x, t, loss="mse")
    assert after < 0.5 * before and history["train_loss"][-1] < history["train_loss"][0]
    assert not torch.equal(module[0].weight, start)  # the module itself was trained
    assert history.epochs == 15
    ratios = history.diagnostics.records["update_ratio/1.0_weight"]  # diagnostics see the wrapped parameters
    assert len(ratios) == 15 and all(r > 0 for r in ratios)


def test_modes_follow_net_train_and_eval(rng):
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).double()
    layer = TorchLayer(module)
    net = lk.Net([layer])
    net.eval()
    assert not module.training and not module[1].training and layer.training is False
    net.train()
    assert module.training and module[1].training
    x = _x(rng, n=50)
    # predict runs in inference mode and leaves the mode alone: no dropout
    np.testing.assert_array_equal(net.predict(x), module.eval()(torch.tensor(x)).detach().numpy())
    module.train()
    y, ctx = layer.forward_pass(x, False)
    assert ctx is None and module.training and module[1].training


def test_dropout_backward_uses_the_mask_of_its_pass(rng):
    layer = TorchLayer(torch.nn.Dropout(0.5))
    net = lk.Net([layer])
    x = np.abs(_x(rng, n=40)) + 0.1
    (y1, t1), (y2, t2) = net.forward(x), net.forward(x)
    assert not np.array_equal(y1 == 0, y2 == 0)
    dx1 = net.backward(t1, np.ones_like(y1), input_grad=True)
    dx2 = net.backward(t2, np.ones_like(y2), input_grad=True)
    np.testing.assert_array_equal(dx1, (y1 != 0) * 2.0)
    np.testing.assert_array_equal(dx2, (y2 != 0) * 2.0)
    with pytest.raises(RuntimeError, match="dropout in training mode"):
        layer.backward(x, np.ones_like(y1))


def test_batch_norm_statistics_update_once_per_training_pass(rng):
    module = torch.nn.BatchNorm1d(4).double()
    layer = TorchLayer(module)
    x = _x(rng, n=10)
    y, ctx = layer.forward_pass(x, True)
    after_forward = module.running_mean.clone()
    layer.backward_pass(x, ctx, np.ones_like(y))
    layer.backward(x, np.ones_like(y))
    assert module.num_batches_tracked.item() == 1
    assert torch.equal(module.running_mean, after_forward)
    np.testing.assert_array_equal(getattr(layer, "running_mean"), after_forward.numpy())


# ---------------------------------------------------------------------- copies, configs, files, ONNX
@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda layer: pickle.loads(pickle.dumps(layer))],
                         ids=["deepcopy", "pickle"])
def test_copies_own_their_module(rng, duplicate):
    layer = TorchLayer(_mlp())
    twin = duplicate(layer)
    x = _x(rng)
    np.testing.assert_array_equal(twin.forward(x), layer.forward(x))
    getattr(twin, "0_bias")[:] = 5.0
    assert torch.all(twin.module[0].bias == 5.0) and not torch.any(layer.module[0].bias == 5.0)


def test_config_and_save_refuse_clearly(tmp_path):
    net = lk.Net([lk.Linear(4, 4, rng=0), TorchLayer(_mlp())])
    with pytest.raises(ConfigError, match=r"layer 1 .*TorchLayer.*torch.nn.Module.*state_dict"):
        net.config()
    with pytest.raises(ConfigError, match="cannot rebuild"):
        net.save(tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()


def test_onnx_export_refuses_clearly():
    pytest.importorskip("onnx")
    net = lk.Net([lk.Linear(4, 4, rng=0), TorchLayer(_mlp())])
    with pytest.raises(TypeError, match=r"TorchLayer\(Sequential.*torch.onnx.export"):
        lk.onnx.to_onnx(net)


# ---------------------------------------------------------------------- bad input
def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        TorchLayer(lambda x: x)
    mixed = torch.nn.Sequential(torch.nn.Linear(2, 2).float(), torch.nn.Linear(2, 2).double())
    with pytest.raises(TypeError, match="one dtype"):
        TorchLayer(mixed)
    with pytest.raises(TypeError, match="float16"):
        TorchLayer(torch.nn.Linear(2, 2).half())
    with pytest.raises(ValueError, match="does not match"):
        TorchLayer(torch.nn.Linear(2, 2).double(), dtype=np.float32)
    assert TorchLayer(torch.nn.Tanh(), dtype=np.float32).dtype == np.float32


def test_bad_input_names_the_layer():
    layer = TorchLayer(_mlp())
    with pytest.raises(ValueError, match=r"TorchLayer\(Sequential.*2-D"):
        layer.forward(np.ones(4))
    with pytest.raises(RuntimeError):
        layer.forward(np.ones((2, 3)))  # the module's own shape error
    with pytest.raises(ValueError, match="dy must have the shape"):
        layer.backward(np.ones((2, 4)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="one tensor"):
        TorchLayer(torch.nn.LSTM(4, 3)).forward(np.ones((2, 4)))
