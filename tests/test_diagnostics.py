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
