"""A net changed after construction: the constructor's checks hold for the layers it runs.

Layers appended, removed or replaced in ``net.layers`` (or in a block's inner nets) are checked
once per change, where the plan is built, and wherever the net is walked without a plan (step,
optimizers, configs, files, ONNX, ``param_names``, ``str``): a layer with parameters used twice
and a net inside itself get clear ``ValueError``s, never a wrong gradient or a ``RecursionError``.
"""
import copy

import numpy as np
import pytest

import layerkit as lk
from layerkit.blocks import Add, Concatenate, Residual

RNG = np.random.default_rng(0)
SHARED = r"is used twice, at 0 and 2; a layer keeps one gradient per parameter"
CYCLE = r"Net: the layer at 2 is this Net, which contains it \(cycle: this Net -> 2\); a net or block cannot"


def _entry_points(net, tmp_path):
    """Every way of running or walking ``net`` (name, call)."""
    x = np.ones((2, 3))
    return [
        ("forward", lambda: net.forward(x)),
        ("predict", lambda: net.predict(x)),
        ("forward_pass", lambda: net.forward_pass(x, True)),
        ("step(lr)", lambda: net.step(0.1)),
        ("step(optimizer)", lambda: net.step(lk.optim.Adam(0.01))),
        ("param_names", lambda: net.param_names),
        ("n_params", lambda: net.n_params),
        ("str", lambda: str(net)),
        ("config", net.config),
        ("save", lambda: net.save(tmp_path / "net.npz")),
        ("train", net.train),
        ("walk", lambda: list(net.walk())),
        ("dtype", lambda: net.dtype),
        ("output_features", lambda: net.output_features(3)),
        ("net_parameters", lambda: lk.optim.base.net_parameters(net)),
        ("onnx", lambda: pytest.importorskip("layerkit.onnx").to_onnx(net)),
    ]


def test_a_layer_appended_twice_is_refused_where_the_constructor_refuses_it(tmp_path):
    lin = lk.Linear(3, 3, rng=0)
    net = lk.Net([lin, lk.Tanh()])
    net.forward(np.ones((2, 3)))  # a plan compiled before the change
    net.layers.append(lin)
    for name, call in _entry_points(net, tmp_path):
        if name in ("walk", "train"):
            call()  # walking lists both places; modes are set on each layer
            continue
        with pytest.raises(ValueError, match=r"Net: the layer Linear\(3, 3\) " + SHARED):
            call()
    assert not (tmp_path / "net.npz").exists()
    net.layers[2] = copy.deepcopy(lin)  # each place its own layer: accepted again
    y, trace = net.forward(RNG.normal(size=(4, 3)))
    assert net.backward(trace, np.ones_like(y), input_grad=True).shape == (4, 3)


def test_a_layer_appended_twice_against_torch():
    """torch sums W's gradient over both uses; layerkit refuses the shared layer instead of giving one
    use's gradient, and the same net with a copy per use gives torch's gradient as the sum of the copies'."""
    torch = pytest.importorskip("torch")
    lin = lk.Linear(3, 3, rng=0)
    net = lk.Net([lin, lk.Tanh()])
    net.layers.append(lin)
    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=SHARED):
        net.forward(x)

    W = torch.tensor(lin.W, requires_grad=True)
    b = torch.tensor(lin.b, requires_grad=True)
    (torch.tanh(torch.tensor(x) @ W + b) @ W + b).sum().backward()

    twin = copy.deepcopy(lin)
    untied = lk.Net([lin, lk.Tanh(), twin])
    y, trace = untied.forward(x)
    untied.backward(trace, np.ones_like(y))
    np.testing.assert_allclose(lin.dW + twin.dW, W.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.db + twin.db, b.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert not np.allclose(twin.dW, W.grad.numpy())  # (one use's gradient: what the shared net gave)


@pytest.mark.parametrize("where", ["residual", "branch", "nested net", "across blocks"])
def test_a_layer_shared_inside_blocks_after_construction_is_refused(where):
    lin = lk.Linear(3, 3, rng=0)
    if where == "residual":
        block = Residual([lin, lk.ReLU()])
        net = lk.Net([lk.Linear(3, 3, rng=1), block])
        change = lambda: block.f.layers.append(lin)
        expected = r"at 1.f.0 and 1.f.2"
    elif where == "branch":
        block = Concatenate([[lin], [lk.Linear(3, 2, rng=1)]])
        net = lk.Net([block])
        change = lambda: block.branches[1].layers.insert(0, lin)
        expected = r"at 0.branches.0.0 and 0.branches.1.0"
    elif where == "nested net":
        inner = lk.Net([lk.Linear(3, 3, rng=1)])
        net = lk.Net([lin, inner])
        change = lambda: inner.layers.append(lin)
        expected = r"at 0 and 1.1"
    else:
        block = Add([[lk.Linear(3, 3, rng=1)], [lk.Linear(3, 3, rng=2)]])
        net = lk.Net([lin, block])
        change = lambda: block.branches[1].layers.__setitem__(0, lin)
        expected = r"at 0 and 1.branches.1.0"
    x = np.ones((2, 3))
    y, trace = net.forward(x)  # before the change: compiled and checked
    net.backward(trace, np.ones_like(y))
    net.step(0.1)
    change()
    for call in (lambda: net.forward(x), lambda: net.predict(x), lambda: net.step(0.1),
                 lambda: net.step(lk.optim.SGD(0.1)), net.config):
        with pytest.raises(ValueError, match=r"Net: the layer Linear\(3, 3\) is used twice, " + expected):
            call()


def test_a_block_checks_its_own_layers_when_called_alone():
    lin = lk.Linear(3, 3, rng=0)
    block = Add([[lin], [lk.Linear(3, 3, rng=1)]])
    block.branches[1].layers.append(lin)
    with pytest.raises(ValueError, match=r"Add: the layer Linear\(3, 3\) is used twice, at branches.0.0 and "
                                         r"branches.1.1"):
        block.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"used twice"):
        block.param_names


def test_a_layer_without_parameters_may_still_sit_at_two_places():
    relu = lk.ReLU()
    net = lk.Net([lk.Linear(3, 3, rng=0), relu, lk.Linear(3, 3, rng=1)])
    net.layers.append(relu)
    x = RNG.normal(size=(4, 3))
    y, trace = net.forward(x)
    expected = np.maximum(np.maximum(x @ net[0].W + net[0].b, 0) @ net[2].W + net[2].b, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


@pytest.mark.parametrize("how", ["direct", "through a block", "through a nested net", "block in itself"])
def test_a_net_inside_itself_gets_a_value_error_naming_the_cycle(how, tmp_path):
    net = lk.Net([lk.Linear(3, 3, rng=0), lk.ReLU()])
    net.forward(np.ones((2, 3)))
    if how == "direct":
        net.layers.append(net)
        pattern = CYCLE
    elif how == "through a block":
        block = Residual([lk.Linear(3, 3, rng=1)])
        net.layers.append(block)
        block.f.layers.append(net)
        pattern = r"the layer at 2.f.1 is this Net, which contains it \(cycle: this Net -> 2 -> 2.f -> 2.f.1\)"
    elif how == "through a nested net":
        inner = lk.Net([lk.Tanh()])
        net.layers.append(Concatenate([[lk.Linear(3, 2, rng=1)], inner]))
        inner.layers.append(net)
        pattern = r"the layer at 2.branches.1.1 is this Net, which contains it \(cycle: this Net -> 2 -> 2.branches.1 -> "
    else:
        block = Residual([lk.Linear(3, 3, rng=1)])
        net.layers.append(block)
        block.f.layers.append(block)
        pattern = r"the layer at 2.f.1 is the layer at 2, which contains it \(cycle: 2 -> 2.f -> 2.f.1\)"
    for name, call in _entry_points(net, tmp_path):
        with pytest.raises(ValueError, match=pattern):
            call()
    assert "<this net>" in repr(net) or "[...]" in repr(net)  # a repr is always shown


def test_items_appended_after_construction_must_be_layers():
    net = lk.Net([lk.Linear(3, 3, rng=0)])
    net.layers.append("relu")
    with pytest.raises(TypeError, match=r"Net: item 1 must be a layer, got the spec item 'relu': the constructor "
                                        r"builds spec items"):
        net.forward(np.ones((2, 3)))
    net.layers[1] = object()
    with pytest.raises(TypeError, match=r"Net: item 1 must be a layer .*got object without forward\(\)"):
        net.forward(np.ones((2, 3)))
    net.layers[1] = lk.ReLU()
    assert net.forward(np.ones((2, 3)))[0].shape == (2, 3)


def test_blocks_changed_after_construction_keep_their_constructors_checks():
    block = Residual([lk.Linear(3, 3, rng=0)])
    net = lk.Net([block])
    net.forward(np.ones((2, 3)))
    block.f.layers.clear()  # y = x + f(x) with no f: 2x, silently, before
    with pytest.raises(ValueError, match=r"Net: layer 0: Residual: f must hold at least one layer, got none"):
        net.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Residual: f must hold at least one layer"):
        block.forward(np.ones((2, 3)))
    block.f.layers.append(lk.Linear(3, 4, rng=1))
    with pytest.raises(ValueError, match=r"f maps 3 features to 4; a residual block must keep the width"):
        net.forward(np.ones((2, 3)))
    block.f = lk.Net([lk.Linear(3, 3, rng=2)])  # a new f: checked as the constructor checks it
    assert net.forward(np.ones((2, 3)))[0].shape == (2, 3)

    branches = Add([[lk.Linear(3, 2, rng=0)], [lk.Linear(3, 2, rng=1)]])
    net = lk.Net([branches])
    branches.branches[1].layers[0] = lk.Linear(3, 4, rng=2)
    with pytest.raises(ValueError, match=r"Net: layer 0: Add.*must have one width, got 2 \(branch 0\), "
                                         r"4 \(branch 1\)"):
        net.forward(np.ones((2, 3)))
    branches.branches.clear()
    with pytest.raises(ValueError, match=r"Add: expected at least one branch, got none"):
        net.forward(np.ones((2, 3)))


def test_layers_removed_or_replaced_give_the_layer_by_layer_result():
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])
    x = RNG.normal(size=(5, 3))
    net.forward(x)
    net.layers[1] = lk.Tanh()
    y, _ = net.forward(x)
    np.testing.assert_allclose(y, np.tanh(x @ net[0].W + net[0].b) @ net[2].W + net[2].b, rtol=1e-12)
    del net.layers[1:]
    np.testing.assert_allclose(net.predict(x), x @ net[0].W + net[0].b, rtol=1e-12)


def test_the_check_runs_once_per_change_not_at_every_pass(monkeypatch):
    block = Residual([lk.Linear(3, 3, rng=0), lk.ReLU()])
    net = lk.Net([lk.Linear(3, 3, rng=1), block])
    calls = []
    original = lk.Net._check_tree
    monkeypatch.setattr(lk.Net, "_check_tree", lambda self: calls.append(self) or original(self))
    x = np.ones((2, 3))
    for _ in range(3):
        y, trace = net.forward(x)
        net.backward(trace, np.ones_like(y))
        net.step(0.1)
    assert calls == []  # checked at construction, unchanged since
    block.f.layers.append(lk.Tanh())
    for _ in range(3):
        net.forward(x)
    assert calls.count(net) == 1 and calls.count(block.f) == 1
