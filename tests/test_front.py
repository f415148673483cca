"""fit's in-core epochs for conv nets (layerkit/_front.py, _kernels/front.pxi): bit for bit the Python loop."""
import numpy as np
import pytest

import layerkit as lk
from layerkit._front import Front

from epoch_runs import epochs_in


def _lenet_like(rng, dtype):
    """ReLU then 2x2 max pooling twice (one backward pass each in the plan), an odd map size on the way."""
    return [lk.Conv2d(2, 4, 3, padding=1, rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2),
            lk.Conv2d(4, 6, 2, rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2), lk.Flatten(),
            lk.Linear(6, 8, rng=rng, dtype=dtype), lk.ReLU(), lk.Linear(8, 3, rng=rng, dtype=dtype)]


def _strided(rng, dtype):
    """Stride, dilation, groups, no bias; average pooling with padding; tanh and leaky ReLU."""
    return [lk.Conv2d(2, 4, 3, stride=2, dilation=1, padding=1, groups=2, bias=False, rng=rng, dtype=dtype),
            lk.Tanh(), lk.AvgPool2d(3, stride=2, padding=1), lk.LeakyReLU(0.2),
            lk.Conv2d(4, 4, 2, dilation=2, padding=(1, 2), rng=rng, dtype=dtype), lk.Flatten(),
            lk.Linear(72, 3, rng=rng, dtype=dtype)]


def _global(rng, dtype):
    """A 3x3 max pooling after a ReLU (two backward passes), then a global average."""
    return [lk.Conv2d(2, 5, 3, padding="same", rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool2d(3, stride=2),
            lk.GELU(), lk.GlobalAvgPool2d(), lk.Linear(5, 3, rng=rng, dtype=dtype), lk.Sigmoid(),
            lk.Linear(3, 3, rng=rng, dtype=dtype)]


def _pool_first(rng, dtype):
    """The first layer is no convolution; an activation right before the chain."""
    return [lk.MaxPool2d(2), lk.Conv2d(2, 3, 2, rng=rng, dtype=dtype), lk.ELU(), lk.Flatten(), lk.Softplus(),
            lk.Linear(27, 3, rng=rng, dtype=dtype)]


def _one_d(rng, dtype):
    return [lk.Conv1d(2, 4, 3, padding=1, rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool1d(2),
            lk.Conv1d(4, 3, 3, dilation=2, padding="same", rng=rng, dtype=dtype), lk.AvgPool1d(2),
            lk.GlobalAvgPool1d(), lk.Linear(3, 3, rng=rng, dtype=dtype)]


NETS = {"lenet-like": (_lenet_like, (2, 9, 9)), "strided": (_strided, (2, 9, 14)), "global": (_global, (2, 8, 7)),
        "pool-first": (_pool_first, (2, 8, 9)), "1-d": (_one_d, (2, 12))}


def _problem(name, dtype, n=45, seed=0):
    make, sample = NETS[name]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + sample).astype(dtype)
    y = rng.integers(0, 3, size=n)
    return lk.Net(make(np.random.default_rng(seed + 1), dtype)), x, y


def _train(net, x, y, in_core, monkeypatch, calls, **options):
    options.setdefault("loss", "softmax_cross_entropy")
    with epochs_in(monkeypatch, in_core, calls):
        return lk.fit(net, x, y, verbose=False, **options)


def _assert_same(net_a, history_a, net_b, history_b):
    for layer_a, layer_b in zip(net_a.layers, net_b.layers):
        for name in getattr(layer_a, "param_names", ()):
            a, b = getattr(layer_a, name), getattr(layer_b, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (layer_a, name)
            grad_a, grad_b = getattr(layer_a, "d" + name), getattr(layer_b, "d" + name)
            assert grad_a.tobytes() == grad_b.tobytes(), (layer_a, "d" + name)  # the last minibatch's
    assert history_a.metrics == history_b.metrics
    for metric in history_a.metrics:
        assert history_a[metric] == history_b[metric], metric  # floats compared exactly


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shuffle", [True, False])
def test_conv_nets_train_in_the_core_bit_for_bit_as_in_the_python_loop(name, dtype, shuffle, monkeypatch):
    results, calls = [], []
    for in_core in (True, False):
        net, x, y = _problem(name, dtype)
        history = _train(net, x, y, in_core, monkeypatch, calls, epochs=3, lr=0.05, batch_size=10,
                         shuffle=shuffle, seed=2)
        results += [net, history]
    assert [c and c[0] for c in calls] == [5] * 3  # every epoch in the core: 4 minibatches of 10, one of 5
    _assert_same(*results)


@pytest.mark.parametrize("algorithm", ["im2col", "direct", "winograd"])
def test_every_convolution_algorithm_trains_in_the_core_as_in_the_python_loop(algorithm, monkeypatch):
    """The core's choice of kernel is the same on both paths (LeNet-5's first layers, 16 lanes of positions;
    a 3x3 layer of 16 channels, which Winograd's kernels take on AVX-512)."""
    previous = lk._core.conv_algorithm()
    lk._core.conv_algorithm(algorithm)
    try:
        results, calls = [], []
        for in_core in (True, False):
            rng = np.random.default_rng(5)
            net = lk.Net([lk.Conv2d(1, 6, 5, padding=2, rng=rng, dtype=np.float32), lk.ReLU(), lk.MaxPool2d(2),
                          lk.Conv2d(6, 16, 3, rng=rng, dtype=np.float32), lk.ReLU(), lk.MaxPool2d(2),
                          lk.Conv2d(16, 16, 3, padding=1, rng=rng, dtype=np.float32), lk.Tanh(), lk.Flatten(),
                          lk.Linear(16 * 3 * 3, 10, rng=rng, dtype=np.float32)])
            x = np.random.default_rng(6).normal(size=(40, 1, 16, 16)).astype(np.float32)
            y = np.random.default_rng(7).integers(0, 10, size=40)
            results += [net, _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=0.1, batch_size=16,
                                    seed=1)]
        assert [c and c[0] for c in calls] == [3, 3]
        _assert_same(*results)
    finally:
        lk._core.conv_algorithm(previous)


OPTIMIZERS = {
    "sgd-momentum-wd": lambda: lk.optim.SGD(0.05, momentum=0.8, weight_decay=0.01),
    "adam": lambda: lk.optim.Adam(0.01),
    "adamw-no-bias-decay": lambda: lk.optim.AdamW(0.01, weight_decay=0.1, decay_biases=False),
    "rmsprop": lambda: lk.optim.RMSprop(0.005, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", ["lenet-like", "strided"])
def test_conv_nets_train_in_the_core_with_an_optimizer_as_in_the_python_loop(optimizer, name, monkeypatch):
    """Weights, history, the optimizer's state and its update counts (the convolutions' too)."""
    results, optimizers, calls = [], [], []
    for in_core in (True, False):
        net, x, y = _problem(name, np.float64)
        optimizers.append(OPTIMIZERS[optimizer]())
        results += [net, _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=optimizers[-1],
                                batch_size=10, seed=3)]
    assert [c and c[0] for c in calls] == [5, 5]
    _assert_same(*results)
    core_state, python_state = (opt.state_dict()["arrays"] for opt in optimizers)
    assert sorted(core_state) == sorted(python_state) and any(key.startswith("0.W") for key in core_state)
    for key in core_state:
        assert core_state[key].tobytes() == python_state[key].tobytes(), key
    assert all(state["step"] == 10 for state in optimizers[0].state.values())


def test_a_minibatch_of_one_row_and_a_weighted_loss(monkeypatch):
    results, calls = [], []
    weights = np.random.default_rng(4).uniform(0, 2, size=45)
    for in_core in (True, False):
        net, x, y = _problem("lenet-like", np.float32)
        results += [net, _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=0.05, batch_size=11,
                                seed=0, sample_weight=weights)]  # 4 minibatches of 11, the last of 1
    assert [c and c[0] for c in calls] == [5, 5]
    _assert_same(*results)


class Scaled(lk.Conv2d):
    """A Conv2d subclass: the front leaves it to its own methods."""


@pytest.mark.parametrize("extra", [
    lambda rng: lk.BatchNorm2d(4), lambda rng: lk.Dropout(0.2, rng=0),
    lambda rng: Scaled(4, 4, 1, rng=rng), lambda rng: lk.Residual([lk.Conv2d(4, 4, 3, padding=1, rng=rng)]),
], ids=["batch-norm", "dropout", "subclass", "residual"])
def test_a_layer_the_front_does_not_run_keeps_the_python_loop(extra, monkeypatch):
    rng = np.random.default_rng(0)
    net = lk.Net([lk.Conv2d(2, 4, 3, padding=1, rng=rng), extra(rng), lk.ReLU(), lk.Flatten(),
                  lk.Linear(4 * 5 * 5, 3, rng=rng)])
    assert Front.of(net._runner()) is None
    x = rng.normal(size=(20, 2, 5, 5))
    y = rng.integers(0, 3, size=20)
    calls = []
    before = net[0].W.copy()
    history = _train(net, x, y, True, monkeypatch, calls, epochs=2, lr=0.05, batch_size=8, seed=0)
    assert calls == [] and len(history["train_loss"]) == 2 and not np.array_equal(net[0].W, before)


def test_a_front_needs_the_chain_last_and_one_dtype():
    rng = np.random.default_rng(0)
    convs = [lk.Conv2d(1, 2, 3, rng=rng), lk.ReLU(), lk.Flatten()]
    assert Front.of(lk.Net(convs + [lk.Linear(2, 2, rng=rng)])._runner()) is not None
    assert Front.of(lk.Net(convs + [lk.Linear(2, 2, rng=rng), lk.Dropout(0.5)])._runner()) is None
    mixed = [lk.Conv2d(1, 2, 3, rng=rng, dtype=np.float32), lk.Flatten(), lk.Linear(2, 2, rng=rng)]
    assert Front.of(lk.Net(mixed)._runner()) is None
    assert Front.of(lk.Net([lk.Linear(2, 2, rng=rng), lk.ReLU()])._runner()) is None  # one chain: no front


def test_an_input_that_does_not_fit_gets_the_layers_message_from_the_python_loop(monkeypatch):
    net, x, y = _problem("lenet-like", np.float64)
    calls = []
    with pytest.raises(ValueError, match=r"Conv2d\(2, 4, 3.*channel"):
        _train(net, x[:, :1], y, True, monkeypatch, calls, epochs=1, lr=0.1, batch_size=10)
    assert calls in ([], [None])
    small = np.random.default_rng(0).normal(size=(20, 2, 3, 3))  # the second conv's kernel exceeds its input
    with pytest.raises(ValueError, match="larger than the padded input"):
        _train(net, small, y[:20], True, monkeypatch, calls, epochs=1, lr=0.1, batch_size=10)


@pytest.mark.parametrize("update", [lambda: 0.1, lambda: lk.optim.Adam(0.01)], ids=["sgd", "adam"])
def test_a_convolution_weight_replaced_by_a_view_trains_through_the_python_loop(update, monkeypatch):
    """Not C-contiguous: the first epoch in Python (whose backward stores W in C order again), then the core."""
    results, calls = [], []
    for in_core in (True, False):
        net, x, y = _problem("lenet-like", np.float64)
        net[0].W = np.asfortranarray(net[0].W)  # not C-contiguous: not updated in place by the core
        results += [net, _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=update(), batch_size=10,
                                seed=1)]
    assert calls[0] is None and calls[1][0] == 5
    _assert_same(*results)


def test_the_core_checks_every_front_array_against_its_geometry():
    net, x, y = _problem("lenet-like", np.float64, n=10)
    plan = net._runner()
    front = Front.of(plan)
    workspace = net.workspace()
    chain = front.chain
    stages = front.stages(x.shape[1:], 10, workspace)
    sets = [(workspace._buffers_for(plan, chain, 10), np.empty((10, 3)))]
    args = (lk._core.EPOCH_LOSS_SOFTMAX_LABELS, y, None, None, 10, 0.1, 1e-12, sets)
    assert lk._core.train_epoch(chain, x, *args, front=[stages]) is not None
    assert lk._core.train_epoch(chain, x.astype(np.float32), *args, front=[stages]) is None
    assert lk._core.train_epoch(chain, x, *args, front=[stages, stages]) is None  # one set, two fronts
    wrong = list(stages)
    kind, info, out, dx, scratch = wrong[0]
    wrong[0] = (kind, info, out[:5], dx, scratch)  # an output buffer for half the rows
    with pytest.raises(ValueError, match="wrong size"):
        lk._core.train_epoch(chain, x, *args, front=[wrong])
    wrong = list(stages)
    kind, (geometry, W, b, dW, db), out, dx, scratch = wrong[0]
    wrong[0] = (kind, (geometry, W, None, dW, db), out, dx, scratch)
    with pytest.raises(ValueError, match="b and db"):
        lk._core.train_epoch(chain, x, *args, front=[wrong])
    wrong = list(stages)
    wrong[2] = (wrong[2][0], (wrong[2][1][0], True), *wrong[2][2:])  # relu pass with a pooling after no ReLU
    wrong[1] = (lk._core.FRONT_STAGE_ACT, (lk._core.ACT_TANH, 0.0, 0.0), *wrong[1][2:])
    with pytest.raises(ValueError, match="ReLU"):
        lk._core.train_epoch(chain, x, *args, front=[wrong])
    with pytest.raises(ValueError, match="chain's input size"):
        lk._core.train_epoch(chain, x, *args, front=[stages[:-2]])  # no pooling, no flatten


def test_lenet_on_digits_learns_in_the_core(monkeypatch):
    """The usual case end to end: digits as 1x8x8 images, a few epochs in the core, a good accuracy."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target
    rng = np.random.default_rng(0)
    net = lk.Net([lk.Conv2d(1, 8, 3, padding=1, rng=rng, init="he", dtype=np.float32), lk.ReLU(), lk.MaxPool2d(2),
                  lk.Flatten(), lk.Linear(8 * 4 * 4, 10, rng=rng, dtype=np.float32)])
    calls = []
    _train(net, x[:1500], y[:1500], True, monkeypatch, calls, epochs=10, lr=0.3, batch_size=32, seed=0)
    assert len(calls) == 10 and all(c is not None and c[0] == 47 for c in calls)
    accuracy = np.mean(net.predict(x[1500:]).argmax(axis=1) == y[1500:])
    assert accuracy > 0.9, accuracy


@pytest.mark.parametrize("update", [lambda: 0.05, lambda: lk.optim.Adam(0.01)], ids=["sgd", "adam"])
def test_an_activation_used_at_several_places_trains_as_in_the_python_loop(update, monkeypatch):
    """One ReLU object at three places (each with its own buffers, as in the Python loop), one of them
    before a 2x2 max pooling: bit for bit."""
    results, calls = [], []
    for in_core in (True, False):
        rng = np.random.default_rng(0)
        relu = lk.ReLU()
        net = lk.Net([lk.Conv2d(2, 4, 3, padding=1, rng=rng), relu, lk.Conv2d(4, 4, 3, padding=1, rng=rng), relu,
                      lk.MaxPool2d(2), relu, lk.Flatten(), lk.Linear(4 * 3 * 3, 3, rng=rng)])
        x = np.random.default_rng(1).normal(size=(30, 2, 6, 6))
        y = np.random.default_rng(2).integers(0, 3, size=30)
        results += [net, _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=update(), batch_size=8,
                                seed=0)]
    assert [c and c[0] for c in calls] == [4, 4]
    _assert_same(*results)


@pytest.mark.parametrize("shuffle", [True, False])
def test_float64_images_for_a_float32_net_train_in_the_core(shuffle, monkeypatch):
    """Images scaled to [0, 1] in float64 (the usual way), a float32 net: cast row by row as gathered."""
    results, calls = [], []
    for in_core in (True, False):
        net, x, y = _problem("lenet-like", np.float32)
        results += [net, _train(net, x.astype(np.float64) / 3, y, in_core, monkeypatch, calls, epochs=2, lr=0.05,
                                batch_size=10, shuffle=shuffle, seed=4)]
    assert [c and c[0] for c in calls] == [5, 5]
    _assert_same(*results)


def test_a_bad_label_hands_the_epoch_back_with_the_loss_message_and_the_same_weights(monkeypatch):
    """Minibatch 3 holds a label past the outputs: the core stops before it, the Python loop raises the loss's
    message, and the weights are those the Python loop reaches (its first two updates)."""
    weights, calls = [], []
    for in_core in (True, False):
        net, x, y = _problem("lenet-like", np.float64)
        y = y.copy()
        y[25] = 7  # 3 outputs
        with pytest.raises(ValueError, match="softmax_cross_entropy"):
            _train(net, x, y, in_core, monkeypatch, calls, epochs=2, lr=0.1, batch_size=10, shuffle=False)
        weights.append([layer.W.copy() for layer in net.layers if getattr(layer, "param_names", ())])
    assert calls[0][0] == 2  # two minibatches ran in the core before it
    for a, b in zip(*weights):
        assert a.tobytes() == b.tobytes()
