"""A conv net is a Net like any other: traces, workspaces, optimizers, clipping, diagnostics, configs, files,
Residual blocks; its training steps equal torch's."""
from __future__ import annotations

import numpy as np
import pytest

import layerkit as lk

torch = pytest.importorskip("torch")


def lenet(dtype=np.float64, seed=0):
    """LeNet-5 on 1x28x28 images (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 400-120-84-10)."""
    return lk.Net([
        lk.Conv2d(1, 6, 5, padding=2, rng=seed, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2),
        lk.Conv2d(6, 16, 5, rng=seed + 1, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2), lk.Flatten(),
        lk.Linear(400, 120, rng=seed + 2, dtype=dtype), lk.ReLU(), lk.Linear(120, 84, rng=seed + 3, dtype=dtype),
        lk.ReLU(), lk.Linear(84, 10, rng=seed + 4, dtype=dtype),
    ])


def small_net(dtype=np.float64):
    return lk.Net([
        lk.Conv2d(1, 4, 3, padding="same", rng=0, dtype=dtype), lk.Tanh(), lk.AvgPool2d(2),
        lk.Conv2d(4, 4, 3, groups=2, bias=False, rng=1, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2, stride=1),
        lk.Flatten(), lk.Linear(4, 3, rng=2, dtype=dtype),
    ])


def torch_copy(net):
    """The torch.nn.Sequential with ``net``'s weights (Linear's W transposed: torch keeps (out, in))."""
    modules = []
    for layer in net:
        if isinstance(layer, lk.Conv2d):
            module = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                     groups=layer.groups, bias=layer.bias)
            module.weight.data = torch.tensor(layer.W)
            if layer.bias:
                module.bias.data = torch.tensor(layer.b)
        elif isinstance(layer, lk.Linear):
            module = torch.nn.Linear(layer.n_in, layer.n_out)
            module.weight.data = torch.tensor(layer.W.T.copy())
            module.bias.data = torch.tensor(layer.b)
        else:
            module = {lk.ReLU: torch.nn.ReLU, lk.Tanh: torch.nn.Tanh, lk.Flatten: torch.nn.Flatten}.get(type(layer))
            if module is not None:
                module = module()
            else:
                kind = torch.nn.MaxPool2d if isinstance(layer, lk.MaxPool2d) else torch.nn.AvgPool2d
                module = kind(layer.kernel_size, stride=layer.stride, padding=layer.padding)
        modules.append(module)
    return torch.nn.Sequential(*modules).double()


def images(n=8, size=28, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, size, size)), rng.integers(0, 10, n)


@pytest.mark.parametrize("use_workspace", [False, True])
def test_lenet_training_steps_equal_torch_sgd(use_workspace):
    net = lenet()
    ref = torch_copy(net)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    workspace = net.workspace() if use_workspace else None
    for step in range(3):
        x, t = images(seed=step)
        y, trace = net.forward(x, workspace=workspace)
        loss, dy = lk.softmax_cross_entropy(y, t)
        net.backward(trace, dy, input_grad=False)
        net.step(0.05)
        opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(t))
        ref_loss.backward()
        opt.step()
        assert loss == pytest.approx(ref_loss.item(), rel=1e-12)
    x, _ = images(seed=9)
    np.testing.assert_allclose(net.predict(x), ref(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_the_trace_holds_every_layer_and_its_input():
    net = small_net()
    x, _ = images(3, 8)
    y, trace = net.forward(x)
    assert [entry[0] for entry in trace] == list(net)
    assert trace[0][1] is x or np.array_equal(trace[0][1], x)
    assert trace[3][1].shape == (3, 4, 4, 4) and trace[7][1].shape == (3, 4)
    dx = net.backward(trace, np.ones_like(y), input_grad=True)
    assert dx.shape == x.shape


def test_a_workspace_pass_allocates_the_same_buffers_every_step_and_equals_the_plain_pass():
    net = lenet(np.float32)
    x, t = images(16)
    x = x.astype(np.float32)
    workspace = net.workspace()
    y_plain, trace = net.forward(x)
    net.backward(trace, lk.softmax_cross_entropy(y_plain, t)[1])
    grads = [layer.dW.copy() for layer in net if hasattr(layer, "dW")]
    outputs = []
    for _ in range(2):
        y, trace = net.forward(x, workspace=workspace)
        outputs.append(y)
        net.backward(trace, lk.softmax_cross_entropy(y, t)[1])
    assert outputs[0] is outputs[1]  # the same buffer at the second step: nothing new allocated
    np.testing.assert_array_equal(y, y_plain)
    for grad, layer in zip(grads, [layer for layer in net if hasattr(layer, "dW")]):
        np.testing.assert_array_equal(layer.dW, grad)
    nbytes = workspace.nbytes
    net.forward(x, workspace=workspace)
    assert workspace.nbytes == nbytes


@pytest.mark.parametrize("make_optimizer", [lambda: lk.optim.SGD(0.05, momentum=0.9), lambda: lk.optim.Adam(1e-2)])
def test_optimizers_update_every_conv_parameter_and_lower_the_loss(make_optimizer):
    net = small_net()
    optimizer = make_optimizer()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 1, 8, 8))
    t = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(int)
    before = {key: value.copy() for key, value in lk.optim.net_parameters(net).items()}
    assert {"0.W", "0.b", "3.W", "7.W", "7.b"} <= set(before) and "3.b" not in before
    losses = []
    for _ in range(40):
        y, trace = net.forward(x)
        loss, dy = lk.softmax_cross_entropy(y, t)
        losses.append(loss)
        net.backward(trace, dy)
        lk.optim.clip_grad_norm(net, 10.0)
        net.step(optimizer)
    after = lk.optim.net_parameters(net)
    assert all(not np.array_equal(before[key], after[key]) for key in before)
    assert losses[-1] < 0.7 * losses[0]


def test_diagnostics_observe_a_conv_net():
    net = small_net()
    x, t = images(4, 8)
    diagnostics = lk.Diagnostics()
    y, trace = net.forward(x)
    net.backward(trace, lk.softmax_cross_entropy(y, t % 3)[1])
    diagnostics.observe_batch(net, trace, y)
    diagnostics.end_epoch()
    norms = diagnostics.grad_norms("W")
    assert set(norms) == {0, 3, 7} and all(value > 0 for value in norms.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_configs_and_files_round_trip_with_bit_identical_predictions(tmp_path, dtype):
    net = lenet(dtype)
    x, _ = images(5)
    rebuilt = lk.Net.from_config(net.config())
    assert [repr(layer) for layer in rebuilt] == [repr(layer) for layer in net]
    path = tmp_path / "lenet.npz"
    net.save(path)
    loaded = lk.Net.load(path)
    assert [repr(layer) for layer in loaded] == [repr(layer) for layer in net]
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_a_config_spec_builds_conv_layers_through_the_registry():
    net = lk.Net.from_config([
        {"type": "conv1d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "same"}, "relu",
        {"type": "max_pool1d", "kernel_size": 2}, {"type": "global_avg_pool1d"}, {"type": "linear", "n_in": 4,
                                                                                     "n_out": 2}], seed=0)
    assert [type(layer) for layer in net] == [lk.Conv1d, lk.ReLU, lk.MaxPool1d, lk.GlobalAvgPool1d, lk.Linear]
    assert net.predict(np.ones((3, 2, 8))).shape == (3, 2)
    image_net = lk.Net.from_config([{"type": "conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 2},
                                    {"type": "avg_pool2d", "kernel_size": 2}, "flatten"], seed=0)
    assert image_net.predict(np.ones((1, 1, 5, 5))).shape == (1, 8)


def basic_block(channels, seed):
    return lk.Residual([lk.Conv2d(channels, channels, 3, padding=1, rng=seed), lk.ReLU(),
                        lk.Conv2d(channels, channels, 3, padding=1, rng=seed + 1)])


@pytest.mark.parametrize("use_workspace", [False, True])
def test_a_residual_conv_block_equals_torch_and_round_trips(tmp_path, use_workspace):
    net = lk.Net([lk.Conv2d(1, 4, 3, padding=1, rng=0), lk.ReLU(), basic_block(4, 1), lk.ReLU(),
                  lk.GlobalAvgPool2d(), lk.Linear(4, 3, rng=5)])
    x, t = images(6, 7)
    t = t % 3
    block = net[2]
    c0, c1, c2 = net[0], block.f[0], block.f[2]
    convs = []
    for layer in (c0, c1, c2):
        module = torch.nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1).double()
        module.weight.data = torch.tensor(layer.W)
        module.bias.data = torch.tensor(layer.b)
        convs.append(module)
    head = torch.nn.Linear(4, 3).double()
    head.weight.data = torch.tensor(net[5].W.T.copy())
    head.bias.data = torch.tensor(net[5].b)
    xt = torch.tensor(x, requires_grad=True)
    h = torch.relu(convs[0](xt))
    h = torch.relu(h + convs[2](torch.relu(convs[1](h))))
    out = head(h.mean(dim=(2, 3)))
    loss_t = torch.nn.functional.cross_entropy(out, torch.tensor(t))
    loss_t.backward()
    y, trace = net.forward(x, workspace=net.workspace() if use_workspace else None)
    loss, dy = lk.softmax_cross_entropy(y, t)
    dx = net.backward(trace, dy, input_grad=True)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    for layer, module in zip((c0, c1, c2), convs):
        np.testing.assert_allclose(layer.dW, module.weight.grad.numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(layer.db, module.bias.grad.numpy(), rtol=1e-10, atol=1e-13)
    path = tmp_path / "resnet.npz"
    net.save(path)
    np.testing.assert_array_equal(lk.Net.load(path).predict(x), net.predict(x))


def resnet_style(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)

    def block():
        return lk.Residual([lk.Conv2d(4, 4, 3, padding=1, bias=False, rng=rng, dtype=dtype),
                            lk.BatchNorm2d(4, dtype=dtype), lk.ReLU(),
                            lk.Conv2d(4, 4, 3, padding=1, bias=False, rng=rng, dtype=dtype),
                            lk.BatchNorm2d(4, dtype=dtype)])
    return lk.Net([lk.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=dtype), lk.ReLU(), block(), lk.ReLU(),
                   lk.GlobalAvgPool2d(), lk.Linear(4, 10, rng=rng, dtype=dtype)])


@pytest.mark.parametrize("make_net", [lenet, resnet_style], ids=["lenet", "resnet-style"])
def test_a_workspace_step_of_a_conv_net_allocates_no_arrays(make_net):
    import tracemalloc

    net = make_net(np.float32)
    x, t = images(16)
    x = x.astype(np.float32)
    workspace = net.workspace()

    def step():
        y, trace = net.forward(x, workspace=workspace)
        net.backward(trace, lk.softmax_cross_entropy(y, t)[1], input_grad=False)
        net.step(0.01)

    step()
    step()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(3):
        step()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    numpy_only = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    stats = after.filter_traces([numpy_only]).compare_to(before.filter_traces([numpy_only]), "lineno")
    assert sum(stat.count_diff for stat in stats if stat.count_diff > 0) == 0, [str(s) for s in stats[:5]]
