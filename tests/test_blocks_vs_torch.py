"""Blocks against torch.nn modules that call modules: forward and backward equal to 1e-12 in float64."""
import numpy as np
import pytest

import layerkit as lk
from layerkit.blocks import Add, Concatenate, Residual

torch = pytest.importorskip("torch", reason="PyTorch (the 'test' extra) is needed to compare with torch.nn")
nn = torch.nn

TOL = dict(rtol=1e-12, atol=1e-12)


class TorchResidual(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x + self.f(x)


class TorchConcatenate(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class TorchAdd(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return sum(branch(x) for branch in self.branches)


ACTIVATIONS = {lk.ReLU: nn.ReLU, lk.Tanh: nn.Tanh, lk.Sigmoid: nn.Sigmoid}


def to_torch(layer, pairs):
    """The torch.nn twin of a layerkit layer or block, same weights; ``pairs`` collects (Linear, nn.Linear)."""
    if isinstance(layer, lk.Linear):
        twin = nn.Linear(layer.n_in, layer.n_out, dtype=torch.float64)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.W.T.copy()))
            twin.bias.copy_(torch.from_numpy(layer.b.copy()))
        pairs.append((layer, twin))
        return twin
    if isinstance(layer, lk.Net):
        return nn.Sequential(*(to_torch(inner, pairs) for inner in layer.layers))
    if isinstance(layer, Residual):
        return TorchResidual(to_torch(layer.f, pairs))
    if isinstance(layer, (Concatenate, Add)):
        cls = TorchConcatenate if isinstance(layer, Concatenate) else TorchAdd
        return cls([to_torch(branch, pairs) for branch in layer.branches])
    return ACTIVATIONS[type(layer)]()


def residual_mlp():
    def block(seed):
        return Residual([lk.Linear(16, 16, rng=seed), lk.ReLU(), lk.Linear(16, 16, rng=seed + 1), lk.ReLU()])
    return lk.Net([lk.Linear(8, 16, rng=0), lk.ReLU(), block(1), block(3), lk.Linear(16, 10, rng=5)])


def two_branch_concatenation():
    wide = [lk.Linear(8, 3, rng=1)]
    deep = [lk.Linear(8, 12, rng=2), lk.Tanh(), lk.Linear(12, 6, rng=3), lk.ReLU()]
    return lk.Net([Concatenate([wide, deep]), lk.Linear(9, 2, rng=4), lk.Sigmoid()])


def nested_everything():
    inner = lk.Net([lk.Linear(6, 6, rng=7), lk.Tanh()])
    add = Add([[lk.Linear(6, 6, rng=5)], [inner, Residual([lk.Linear(6, 6, rng=6), lk.Sigmoid()])]])
    return lk.Net([lk.Linear(8, 6, rng=0), Residual([add, lk.ReLU()]),
                   Concatenate([[lk.Linear(6, 2, rng=8)], [lk.Tanh()]]),
                   lk.Linear(8, 3, rng=9)])


@pytest.mark.parametrize("make", [residual_mlp, two_branch_concatenation, nested_everything])
def test_forward_and_backward_equal_torch_nn(make):
    net = make()
    for name in net.param_names:  # biases away from zero: every ReLU input off its kink
        if name.endswith(".b"):
            setattr(net, name, np.random.default_rng(len(name)).uniform(-0.5, 0.5, getattr(net, name).shape))
    pairs = []
    model = to_torch(net, pairs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8))
    y, trace = net.forward(x)
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = model(x_torch)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), **TOL)

    dy = rng.standard_normal(y.shape)
    dx = net.backward(trace, dy, input_grad=True)
    y_torch.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, x_torch.grad.numpy(), **TOL)
    assert len(pairs) == sum(isinstance(layer, lk.Linear) for _, layer in net.walk())
    for layer, twin in pairs:
        np.testing.assert_allclose(layer.dW, twin.weight.grad.numpy().T, **TOL)
        np.testing.assert_allclose(layer.db, twin.bias.grad.numpy(), **TOL)


def test_a_training_step_equals_torch_sgd():
    net = residual_mlp()
    pairs = []
    model = to_torch(net, pairs)
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((16, 8)), rng.integers(0, 10, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        logits, trace = net.forward(x)
        _, grad = lk.softmax_cross_entropy(logits, target)
        net.backward(trace, grad, input_grad=False)
        net.step(0.1)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(target)).backward()
        optimizer.step()
    for layer, twin in pairs:
        np.testing.assert_allclose(layer.W, twin.weight.detach().numpy().T, **TOL)
