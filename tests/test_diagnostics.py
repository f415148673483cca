"""layerkit.diagnostics: values checked against direct computation."""
import numpy as np
import pytest

import layerkit as lk


def _net():
    return lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1)])


def test_one_batch_values_are_exact():
    net = _net()
    net[0].b[:] = [-100.0, 0.0, 0.0, 0.0]  # unit 0 of the ReLU can never fire
    x = np.random.default_rng(0).normal(size=(10, 3))
    y, trace = net.forward(x)
    net.backward(trace, np.ones_like(y))
    diag = lk.Diagnostics()
    before = diag.snapshot(net)
    net.step(0.1)
    diag.observe_batch(net, trace, y, before)
    diag.end_epoch()
    hidden = trace[1].x
    relu_out = trace[2].x
    assert diag.records["activation_mean/0"] == [pytest.approx(hidden.mean())]
    assert diag.records["activation_std/1"] == [pytest.approx(relu_out.std())]
    assert diag.records["activation_mean/2"] == [pytest.approx(y.mean())]
    assert diag.records["grad_norm/0.W"] == [pytest.approx(np.linalg.norm(net[0].dW))]
    assert diag.records["update_ratio/2.W"] == [pytest.approx(0.1 * np.linalg.norm(net[2].dW)
                                                              / np.linalg.norm(before["2.W"]))]
    assert "update_ratio/2.b" not in diag.records  # the bias started at zero
    assert diag.records["dead_fraction/1"] == [pytest.approx(1 - np.mean(np.any(relu_out > 0, axis=0)))]
    assert diag.records["dead_fraction/1"][0] >= 0.25
    assert diag.grad_norms("W") == {0: pytest.approx(np.linalg.norm(net[0].dW)),
                                    2: pytest.approx(np.linalg.norm(net[2].dW))}


def test_epoch_values_are_means_over_batches_and_dead_means_never_active():
    net = _net()
    diag = lk.Diagnostics()
    rng = np.random.default_rng(1)
    norms = []
    for _ in range(3):
        y, trace = net.forward(rng.normal(size=(5, 3)))
        net.backward(trace, y)
        norms.append(np.linalg.norm(net[0].dW))
        diag.observe_batch(net, trace, y)
    diag.end_epoch()
    assert diag.records["grad_norm/0.W"] == [pytest.approx(np.mean(norms))]
    assert "update_ratio/0.W" not in diag.records  # no snapshot given
    assert diag.epochs == 1


def test_series_rejects_unknown_kind():
    with pytest.raises(ValueError, match="Diagnostics.series: kind must be one of"):
        lk.Diagnostics().series("weights")


def test_deep_sigmoid_gradients_vanish_towards_the_input():
    rng = np.random.default_rng(0)
    layers = []
    for i in range(6):
        layers += [lk.Linear(16, 16, rng=rng), lk.Sigmoid()]
    net = lk.Net(layers + [lk.Linear(16, 1, rng=rng)])
    x = rng.normal(size=(64, 16))
    history = lk.fit(net, x, x[:, :1], epochs=1, lr=0.01, loss="mse", diagnostics=True, verbose=False)
    norms = history.diagnostics.grad_norms("W")
    assert norms[0] < norms[10] / 10


def _blocks_net():
    rng = np.random.default_rng(5)
    return lk.Net([lk.Linear(3, 6, rng=rng),
                   lk.Residual([lk.Linear(6, 6, rng=rng), lk.ReLU(), lk.Linear(6, 6, rng=rng), lk.ReLU()]),
                   lk.Concatenate([[lk.Linear(6, 2, rng=rng), lk.ReLU()], [lk.Linear(6, 3, rng=rng)]]),
                   lk.Net([lk.Linear(5, 4, rng=rng), lk.Tanh()]), lk.Linear(4, 1, rng=rng)])


def test_nested_layers_are_recorded_under_their_paths():
    net = _blocks_net()
    net[1].f[0].b[:] = [-100.0, 0, 0, 0, 0, 0]  # unit 0 of the first inner ReLU never fires
    x = np.random.default_rng(6).normal(size=(12, 3))
    y, trace = net.forward(x)
    net.backward(trace, np.ones_like(y))
    diag = lk.Diagnostics()
    diag.observe_batch(net, trace, y)
    diag.end_epoch()
    entries = dict(trace.walk())
    assert set(diag.labels) == set(entries)  # every path of trace.walk() (net.walk() also names the inner nets)
    assert diag.labels["1.f.1"] == repr(net[1].f[1])
    # a nested layer's output is the next nested layer's input
    assert diag.records["activation_mean/1.f.0"] == [pytest.approx(entries["1.f.1"].x.mean())]
    assert diag.records["activation_std/1.f.1"] == [pytest.approx(entries["1.f.2"].x.std())]
    # the last layer of a nested net outputs the nested net's output (the next top-level input)
    assert diag.records["activation_mean/3.1"] == [pytest.approx(trace[4].x.mean())]
    # a Concatenate branch's output is its columns of the block's output
    assert diag.records["activation_mean/2.branches.0.1"] == [pytest.approx(trace[3].x[:, :2].mean())]
    assert diag.records["activation_mean/2.branches.1.0"] == [pytest.approx(trace[3].x[:, 2:].mean())]
    assert "activation_mean/1.f.3" not in diag.records  # f's output is in no trace (only x + f(x) is)
    # every ReLU's dead fraction, the last one of f included (read from its input)
    first = entries["1.f.1"].x
    assert diag.records["dead_fraction/1.f.1"] == [pytest.approx(1 - np.mean(np.any(first > 0, axis=0)))]
    assert diag.records["dead_fraction/1.f.1"][0] > 0.16  # at least the unit that never fires
    last = entries["1.f.3"].x
    assert diag.records["dead_fraction/1.f.3"] == [pytest.approx(1 - np.mean(np.any(last > 0, axis=0)))]
    assert "dead_fraction/2.branches.0.1" in diag.records
    # top-level keys keep their meaning
    assert diag.records["activation_mean/0"] == [pytest.approx(trace[1].x.mean())]
    assert diag.records["activation_mean/4"] == [pytest.approx(y.mean())]
    assert diag.records["grad_norm/1.f.2.W"] == [pytest.approx(np.linalg.norm(net[1].f[2].dW))]
    assert diag.grad_norms("W") == {0: pytest.approx(np.linalg.norm(net[0].dW)),
                                    4: pytest.approx(np.linalg.norm(net[4].dW))}
    by_path = diag.grad_norms("W", paths=True)
    assert list(by_path) == ["0", "1.f.0", "1.f.2", "2.branches.0.0", "2.branches.1.0", "3.0", "4"]
    assert by_path["2.branches.1.0"] == pytest.approx(np.linalg.norm(net[2].branches[1][0].dW))


def test_path_order_follows_the_walk():
    from layerkit.diagnostics import path_order

    paths = ["10", "2.f.10", "2", "2.f.2", "2.branches.0.1", "1"]
    assert sorted(paths, key=path_order) == ["1", "2", "2.branches.0.1", "2.f.2", "2.f.10", "10"]
