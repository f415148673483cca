"""fit's epochs in the compiled core (layerkit/_epoch.py): bit for bit the Python loop, callbacks kept."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import _epoch
from layerkit._epoch import needs_every_batch

from epoch_runs import epochs_in


def _problem(loss, dtype, n, seed):
    """A net, its data and targets for ``loss`` (several widths, activations and target forms)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    r = np.random.default_rng(seed + 1)
    if loss == "bce":
        layers = [lk.Linear(6, 5, rng=r, dtype=dtype), lk.ReLU(), lk.Linear(5, 1, rng=r, dtype=dtype), lk.Sigmoid()]
        y = (rng.random(n) < 0.5).astype(float)
    elif loss == "bce soft, 2 outputs":
        layers = [lk.Linear(6, 4, rng=r, dtype=dtype), lk.Tanh(), lk.Linear(4, 2, rng=r, dtype=dtype), lk.Sigmoid()]
        y, loss = rng.uniform(size=(n, 2)), "bce"
    elif loss == "mse":
        layers = [lk.Linear(6, 7, rng=r, dtype=dtype), lk.GELU(), lk.Linear(7, 3, rng=r, dtype=dtype)]
        y = rng.normal(size=(n, 3))
    elif loss == "mse, 1-D targets":
        layers = [lk.Linear(6, 4, rng=r, dtype=dtype), lk.ELU(), lk.ReLU(), lk.Linear(4, 1, rng=r, dtype=dtype)]
        y, loss = rng.normal(size=n), "mse"
    elif loss == "labels":
        layers = [lk.Linear(6, 8, rng=r, dtype=dtype), lk.LeakyReLU(0.1), lk.Linear(8, 8, rng=r, dtype=dtype),
                  lk.Sigmoid(), lk.Linear(8, 4, rng=r, dtype=dtype)]
        y, loss = rng.integers(0, 4, size=n), "softmax_cross_entropy"
    elif loss == "huber":  # delta 0.3: residuals on both sides of it
        layers = [lk.Linear(6, 5, rng=r, dtype=dtype), lk.Tanh(), lk.Linear(5, 2, rng=r, dtype=dtype)]
        y, loss = 2 * rng.normal(size=(n, 2)), lk.losses.HuberLoss(delta=0.3)
    else:  # soft target rows
        layers = [lk.Linear(6, 5, rng=r, dtype=dtype), lk.Softplus(), lk.Linear(5, 3, rng=r, dtype=dtype)]
        y, loss = rng.dirichlet(np.ones(3), size=n), "softmax_cross_entropy"
    return lk.Net(layers), x.astype(dtype), y, loss


def _train(problem, in_core, monkeypatch, calls=None, **options):
    net, x, y, loss = problem
    with epochs_in(monkeypatch, in_core, calls):
        history = lk.fit(net, x, y, loss=loss, verbose=False, **options)
    return net, history


def _assert_same(a, b):
    (net_a, history_a), (net_b, history_b) = a, b
    for layer_a, layer_b in zip(net_a.layers, net_b.layers):
        for name in getattr(layer_a, "param_names", ()):
            np.testing.assert_array_equal(getattr(layer_a, name), getattr(layer_b, name), err_msg=name)
            assert getattr(layer_a, name).tobytes() == getattr(layer_b, name).tobytes()
    assert history_a.metrics == history_b.metrics
    for metric in history_a.metrics:
        assert history_a[metric] == history_b[metric], metric  # floats compared exactly


LOSSES = ["bce", "bce soft, 2 outputs", "mse", "mse, 1-D targets", "labels", "soft rows", "huber"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_in_core_epochs_equal_the_python_loop_bit_for_bit(loss, dtype, shuffle, weighted, monkeypatch):
    n = 53  # 4 minibatches of 15 and a last one of 8
    seed = LOSSES.index(loss) * 7 + weighted
    weights = np.random.default_rng(seed).uniform(0, 2, size=n) if weighted else None
    options = dict(epochs=3, lr=0.05, batch_size=15, shuffle=shuffle, seed=seed, sample_weight=weights)
    calls = []
    in_core = _train(_problem(loss, dtype, n, seed), True, monkeypatch, calls, **options)
    python = _train(_problem(loss, dtype, n, seed), False, monkeypatch, **options)
    assert [None if c is None else c[0] for c in calls] == [4] * 3  # every epoch ran in the core
    _assert_same(in_core, python)


@pytest.mark.parametrize("batch_size", [1, 7, 53, 100])
def test_batch_sizes_from_one_row_to_the_whole_set(batch_size, monkeypatch):
    options = dict(epochs=2, lr=0.1, batch_size=batch_size, seed=3)
    calls = []
    in_core = _train(_problem("labels", np.float64, 53, 3), True, monkeypatch, calls, **options)
    python = _train(_problem("labels", np.float64, 53, 3), False, monkeypatch, **options)
    assert all(c is not None and c[0] == -(-53 // batch_size) for c in calls) and len(calls) == 2
    _assert_same(in_core, python)


class Recorder(lk.Callback):
    """Every hook but on_batch_end: what it saw of the state."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, state):
        self.seen.append(("train_begin",))

    def on_epoch_begin(self, state):
        self.seen.append(("epoch_begin", state.epoch))

    def on_epoch_end(self, state):
        self.seen.append(("epoch_end", state.epoch, state.batch, state.batch_loss, state.batch_size,
                          state.history["train_loss"][-1]))

    def on_train_end(self, state):
        self.seen.append(("train_end",))


def test_callbacks_are_called_and_see_the_state_of_the_python_loop(monkeypatch):
    records = []
    for in_core in (True, False):
        recorder, calls = Recorder(), []
        _train(_problem("bce", np.float64, 53, 5), in_core, monkeypatch, calls, epochs=3, lr=0.1, batch_size=15,
               seed=5, callbacks=[recorder, lk.LambdaCallback(on_epoch_end=lambda state: None)])
        assert len(calls) == (3 if in_core else 0)
        records.append(recorder.seen)
    assert records[0] == records[1]
    assert [entry[0] for entry in records[0]] == ["train_begin"] + ["epoch_begin", "epoch_end"] * 3 + ["train_end"]
    assert records[0][2][2:5][::2] == (3, 8)  # the last minibatch: index 3, 8 rows


@pytest.mark.parametrize("callback", [
    lk.LambdaCallback(on_batch_end=lambda state: None),
    type("PerBatch", (lk.Callback,), {"on_batch_end": lambda self, state: None})(),
])
def test_a_callback_with_on_batch_end_is_called_after_every_minibatch(callback, monkeypatch):
    assert needs_every_batch(callback)
    seen = []
    hook = callback.on_batch_end
    monkeypatch.setattr(callback, "on_batch_end", lambda state: (seen.append(state.batch), hook(state)))
    calls = []
    _train(_problem("mse", np.float64, 53, 2), True, monkeypatch, calls, epochs=2, lr=0.1, batch_size=15,
           callbacks=[callback])
    assert calls == [] and seen == [0, 1, 2, 3] * 2


@pytest.mark.parametrize("options", [
    {"lr": 0.1, "clip_norm": 1.0},
    {"lr": 0.1, "diagnostics": True},
])
def test_per_minibatch_features_keep_the_python_loop(options, monkeypatch):
    calls = []
    _train(_problem("labels", np.float64, 40, 1), True, monkeypatch, calls, epochs=2, batch_size=15, **options)
    assert calls == []


def test_streamed_and_integer_inputs_train_through_the_python_loop_alike(monkeypatch, tmp_path):
    net, x, y, loss = _problem("bce", np.float64, 53, 9)
    on_disk = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=x.dtype, shape=x.shape)
    on_disk[:] = x
    options = dict(epochs=2, lr=0.1, batch_size=15, seed=9)
    reference = _train(_problem("bce", np.float64, 53, 9), True, monkeypatch, **options)
    for data in (np.load(tmp_path / "x.npy", mmap_mode="r"), (4 * x).astype(np.int64)):
        calls = []
        other = _train((_problem("bce", np.float64, 53, 9)[0], data, y, loss), True, monkeypatch, calls, **options)
        assert calls == []  # no runner: x is no in-memory C-contiguous array of floats
        if data.dtype == x.dtype:
            _assert_same(other, reference)


def test_a_bad_target_hands_the_epoch_back_with_the_loss_message(monkeypatch):
    net, x, y, loss = _problem("bce", np.float64, 53, 4)
    y = y.copy()
    y[40] = 2.0  # in minibatch 3 of the first (unshuffled) epoch
    calls = []
    with pytest.raises(ValueError, match=r"binary_cross_entropy: targets must be in \[0, 1\]"):
        _train((net, x, y, loss), True, monkeypatch, calls, epochs=2, lr=0.1, batch_size=15, shuffle=False)
    assert calls[0][0] == 2  # two minibatches ran in the core before it


def test_divergence_is_reported_as_by_the_python_loop(monkeypatch):
    messages, histories = [], []
    for in_core in (True, False):
        calls = []
        with pytest.raises(FloatingPointError, match="lower the learning rate") as caught:
            _train(_problem("mse", np.float64, 53, 6), in_core, monkeypatch, calls, epochs=40, lr=5.0,
                   batch_size=15, seed=6)
        messages.append(str(caught.value))
        histories.append(caught.value.history["train_loss"])
        assert bool(calls) == in_core
    assert messages[0] == messages[1] and histories[0] == histories[1]


@pytest.mark.parametrize("update", [lambda: 0.1, lambda: lk.optim.Adam(0.01)], ids=["sgd", "adam"])
def test_a_replaced_parameter_is_trained_through_the_python_loop(update, monkeypatch):
    """A W that cannot be updated in place (a list): the epoch runs in Python, which converts it."""
    results = []
    for in_core in (True, False):
        net, x, y, loss = _problem("labels", np.float64, 53, 8)
        net[0].W = net[0].W.tolist()
        calls = []
        results.append(_train((net, x, y, loss), in_core, monkeypatch, calls, epochs=3, lr=update(),
                              batch_size=15, seed=8))
        if in_core:  # the first epoch in Python (which makes W an array again), then in the core
            assert calls[0] is None and [c[0] for c in calls[1:]] == [4, 4]
    _assert_same(*results)


def test_early_stopping_stops_in_core_training(monkeypatch):
    calls = []
    _, history = _train(_problem("mse", np.float64, 53, 3), True, monkeypatch, calls, epochs=50, lr=0.0,
                        batch_size=15, shuffle=False, early_stopping=2)
    assert history.stopped_early and history.epochs == 3 and len(calls) == 3


def test_the_core_refuses_operands_that_do_not_fit():
    net, x, y, _ = _problem("bce", np.float64, 20, 0)
    plan = net._compiled()
    chain = plan.chain
    t = y.reshape(-1, 1)
    sets = [(chain.make_buffers(15), np.empty((15, 1))), (chain.make_buffers(5), np.empty((5, 1)))]
    args = (lk._core.EPOCH_LOSS_BCE, t, None, None, 15, 0.1, 1e-12, sets)
    assert lk._core.train_epoch(chain, x, *args) is not None
    assert lk._core.train_epoch(chain, x.astype(np.float32), *args) is None
    assert lk._core.train_epoch(chain, np.asfortranarray(x), *args) is None
    assert lk._core.train_epoch(chain, x, args[0], t[:10], *args[2:]) is None
    assert lk._core.train_epoch(chain, x, *args[:7], sets[:1]) is None  # no set for the last minibatch
    order = np.arange(20)
    order[3] = 20  # out of range: never read past the data
    assert lk._core.train_epoch(chain, x, args[0], t, None, order, *args[4:], np.empty((15, 6)),
                                np.empty((15, 1))) is None
    assert lk._core.train_epoch(chain, x, args[0], t, None, np.arange(20), *args[4:], np.empty((14, 6)),
                                np.empty((15, 1))) is None  # a gather buffer too small
    net[0].W = np.asfortranarray(net[0].W)  # not updated in place by the chain
    assert lk._core.train_epoch(chain, x, *args) is None


def test_layers_replaced_by_a_callback_are_the_ones_trained(monkeypatch):
    """The runner asks the net for its plan at every epoch, so it never trains layers the net dropped."""

    class Swap(lk.Callback):
        def on_train_begin(self, state):
            state.net.layers[0] = lk.Linear(6, 5, rng=42)

        def on_epoch_end(self, state):
            if state.epoch == 0:
                state.net.layers[2] = lk.Linear(5, 1, rng=43)

    results = []
    for in_core in (True, False):
        calls = []
        results.append(_train(_problem("bce", np.float64, 53, 7), in_core, monkeypatch, calls, epochs=3, lr=0.1,
                              batch_size=15, seed=7, callbacks=[Swap()]))
        assert len(calls) == (3 if in_core else 0) and all(c is not None for c in calls)
    _assert_same(*results)
    assert not np.array_equal(results[0][0].layers[0].W, lk.Linear(6, 5, rng=42).W)  # it was trained


def test_a_long_epoch_runs_in_slices_with_the_same_result(monkeypatch):
    """Past 16384 rows an epoch runs in slices (signals are looked at between them): same numbers."""
    options = dict(epochs=2, lr=0.05, batch_size=999, seed=4)
    calls = []
    in_core = _train(_problem("mse", np.float32, 20000, 4), True, monkeypatch, calls, **options)
    python = _train(_problem("mse", np.float32, 20000, 4), False, monkeypatch, **options)
    assert [c[0] for c in calls] == [21, 21]
    _assert_same(in_core, python)


class Interrupted(Exception):
    pass


def test_a_signal_stops_a_long_epoch_between_slices(monkeypatch):
    """A signal during the core's epoch runs its handler mid-epoch (Ctrl-C's KeyboardInterrupt likewise)."""
    import signal
    import threading

    options = dict(loss="mse", epochs=1, lr=0.01, batch_size=32, shuffle=False, verbose=False)
    full, x, y, _ = _problem("mse", np.float64, 500_000, 5)
    lk.fit(full, x, y, **options)
    net = _problem("mse", np.float64, 500_000, 5)[0]
    seen = []

    def handler(signum, frame):
        seen.append(net[0].W.copy())
        raise Interrupted

    train_epoch = _epoch.core.train_epoch

    def signalled(*args, **kwargs):
        threading.Timer(0.005, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)).start()
        return train_epoch(*args, **kwargs)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        monkeypatch.setattr(_epoch.core, "train_epoch", signalled)
        with pytest.raises(Interrupted):
            lk.fit(net, x, y, **options)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(seen) == 1 and not np.array_equal(seen[0], full[0].W)  # stopped before the epoch's end


def test_callbacks_say_whether_they_want_every_minibatch():
    assert not lk.Callback().wants_batches
    assert not lk.LambdaCallback(on_epoch_end=lambda state: None).wants_batches
    assert lk.LambdaCallback(on_batch_end=lambda state: None).wants_batches
    assert type("PerBatch", (lk.Callback,), {"on_batch_end": lambda self, state: None})().wants_batches
    assert not lk.EarlyStopping(patience=2).wants_batches


OPTIMIZERS = {
    "sgd": lambda: lk.optim.SGD(0.1),
    "sgd-momentum-wd": lambda: lk.optim.SGD(0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "sgd-nesterov": lambda: lk.optim.SGD(0.05, momentum=0.9, nesterov=True),
    "schedule": lambda: lk.optim.ExponentialDecay(0.1, 0.9),  # fit makes it SGD with the schedule
    "adam": lambda: lk.optim.Adam(0.01),
    "adam-wd-amsgrad": lambda: lk.optim.Adam(0.02, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
    "adamw-cosine": lambda: lk.optim.AdamW(lk.optim.CosineDecay(0.01, 7), weight_decay=0.1),
    "rmsprop-centered-momentum": lambda: lk.optim.RMSprop(0.005, momentum=0.5, centered=True, weight_decay=0.05),
    "rmsprop": lambda: lk.optim.RMSprop(0.01),
    "adagrad": lambda: lk.optim.AdaGrad(0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}


def _state_bytes(optimizer):
    arrays = optimizer.state_dict()["arrays"]
    return {name: (value.dtype, value.shape, value.tobytes()) for name, value in arrays.items()}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["labels", "bce", "huber"])
def test_in_core_epochs_with_an_optimizer_equal_the_python_loop(name, dtype, loss, monkeypatch):
    """Weights, history, the optimizer's state and update counts: bit for bit the Python loop's."""
    results = []
    for in_core in (True, False):
        optimizer = OPTIMIZERS[name]()
        calls = []
        net, history = _train(_problem(loss, dtype, 53, 3), in_core, monkeypatch, calls, epochs=3, lr=optimizer,
                              batch_size=15, seed=4)
        if in_core:
            assert [c[0] for c in calls] == [4] * 3  # every epoch ran in the core
        results.append(((net, history), optimizer))
    (in_core, opt_core), (python, opt_python) = results
    _assert_same(in_core, python)
    if isinstance(opt_core, lk.optim.Optimizer):
        assert sorted(opt_core.state) == sorted(opt_python.state)
        assert all(state["step"] == 12 for state in opt_core.state.values())
        assert _state_bytes(opt_core) == _state_bytes(opt_python)


def test_a_checkpoint_after_in_core_epochs_resumes_bit_for_bit(monkeypatch):
    """Two epochs in the core, the optimizer saved and loaded, one more: as three epochs of the Python loop."""
    problem = _problem("labels", np.float32, 53, 5)
    optimizer = lk.optim.Adam(lk.optim.ExponentialDecay(0.01, 0.95))
    net, _ = _train(problem, True, monkeypatch, epochs=2, lr=optimizer, batch_size=15, seed=1)
    resumed = lk.optim.optimizer_from_state_dict(optimizer.state_dict())
    net, _ = _train((net,) + problem[1:], False, monkeypatch, epochs=1, lr=resumed, batch_size=15, seed=2)
    reference = _problem("labels", np.float32, 53, 5)
    straight = lk.optim.Adam(lk.optim.ExponentialDecay(0.01, 0.95))
    ref, _ = _train(reference, False, monkeypatch, epochs=2, lr=straight, batch_size=15, seed=1)
    ref, _ = _train((ref,) + reference[1:], False, monkeypatch, epochs=1, lr=straight, batch_size=15, seed=2)
    for a, b in zip(net.layers, ref.layers):
        for param in getattr(a, "param_names", ()):
            assert getattr(a, param).tobytes() == getattr(b, param).tobytes()
    assert _state_bytes(resumed) == _state_bytes(straight)


def test_an_optimizer_subclass_with_its_own_rule_keeps_the_python_loop(monkeypatch):
    class Halved(lk.optim.SGD):
        def _update(self, param, grad, state, lr, step):
            param -= 0.5 * lr * grad

    calls = []
    _train(_problem("labels", np.float64, 40, 1), True, monkeypatch, calls, epochs=1, batch_size=15,
           lr=Halved(0.1))
    assert calls == []


def test_a_bad_target_with_an_optimizer_leaves_the_counts_of_the_updates_that_ran(monkeypatch):
    states = []
    for in_core in (True, False):
        net, x, y, loss = _problem("bce", np.float64, 53, 4)
        y = y.copy()
        y[40] = 2.0  # in minibatch 3 of the first (unshuffled) epoch
        optimizer, calls = lk.optim.Adam(0.01), []
        with pytest.raises(ValueError, match=r"binary_cross_entropy: targets must be in \[0, 1\]"):
            _train((net, x, y, loss), in_core, monkeypatch, calls, epochs=2, lr=optimizer, batch_size=15,
                   shuffle=False)
        if in_core:
            assert calls[0][0] == 2
        assert {state["step"] for state in optimizer.state.values()} == {2}
        states.append(_state_bytes(optimizer))
    assert states[0] == states[1]


def test_a_signal_in_an_epoch_with_an_optimizer_counts_the_updates_that_ran(monkeypatch):
    import signal
    import threading

    net, x, y, _ = _problem("mse", np.float64, 500_000, 5)
    optimizer = lk.optim.Adam(1e-4)
    train_epoch = _epoch.core.train_epoch

    def handler(signum, frame):
        raise Interrupted

    def signalled(*args, **kwargs):
        threading.Timer(0.005, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)).start()
        return train_epoch(*args, **kwargs)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        monkeypatch.setattr(_epoch.core, "train_epoch", signalled)
        with pytest.raises(Interrupted) as caught:
            lk.fit(net, x, y, loss="mse", epochs=1, lr=optimizer, batch_size=32, shuffle=False, verbose=False)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    steps = {state["step"] for state in optimizer.state.values()}
    assert steps == {caught.value.batches_done} and 0 < caught.value.batches_done < 500_000 // 32


@pytest.mark.parametrize("net_dtype, x_dtype", [(np.float32, np.float64), (np.float64, np.float32),
                                                (np.float64, np.float64)])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_an_x_of_the_other_float_type_or_in_fortran_order_is_gathered_bit_for_bit(net_dtype, x_dtype, order,
                                                                                   shuffle, monkeypatch):
    """float64 data for a float32 net (or the reverse), a DataFrame's Fortran-ordered values: the epochs still
    run in the core, each minibatch's rows gathered and cast as the Python loop gathers them; the data are not
    converted as a whole."""
    results = []
    for in_core in (True, False):
        net, x, y, loss = _problem("labels", net_dtype, 53, 5)
        calls = []
        data = np.asarray(x.astype(x_dtype), order=order)
        results.append(_train((net, data, y, loss), in_core, monkeypatch, calls, epochs=3, lr=0.1,
                              batch_size=15, shuffle=shuffle, seed=2))
        if in_core:
            assert [c and c[0] for c in calls] == [4] * 3
    _assert_same(*results)
