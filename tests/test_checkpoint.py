"""fit(checkpoint=, resume=): runs killed at random moments end bit for bit as uninterrupted ones."""
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import layerkit as lk
from checkpoint_runs import RUNS, outcome, train
from kill_and_resume import assert_same_outcome, kill_then_finish, position
from layerkit.io import ModelFileError
from layerkit.optim import SGD, Adam

CHILD = Path(__file__).with_name("checkpoint_runs.py")
KILLS = 3


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_killed_at_random_moments_and_resumed_ends_bit_for_bit(name, tmp_path):
    expected = outcome(*train(name))
    started = time.perf_counter()
    assert_same_outcome(expected, outcome(*train(name, str(tmp_path / "uninterrupted.npz"))))
    duration = time.perf_counter() - started  # of a checkpointed run, so the kills land while it trains
    checkpoint, result = tmp_path / "run.npz", tmp_path / "result.npz"
    delays, resumed_from = kill_then_finish(CHILD, name, checkpoint, result, duration, KILLS)
    with np.load(result) as got:
        assert_same_outcome(expected, dict(got))
    assert any(0 < position["step"] for position in resumed_from), \
        f"no kill landed after a checkpoint (delays {delays}); the test resumed nothing"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")], "a temporary file was left behind"


def test_killed_in_the_middle_of_an_epoch_resumes_there(tmp_path):
    """An exception stands in for the kill at every minibatch in turn (checkpoints after each minibatch)."""
    name = "rmsprop, plateau, every 3 minibatches"
    expected = outcome(*train(name))

    class Crash(Exception):
        pass

    for crash_at in (1, 4, 9, 10, 23):
        checkpoint = tmp_path / f"crash{crash_at}.npz"
        seen = []

        def crash(state, crash_at=crash_at, seen=seen):
            seen.append(1)
            if len(seen) == crash_at:
                raise Crash

        net, options = RUNS[name]()
        options["callbacks"] = [lk.LambdaCallback(on_batch_end=crash)]
        from checkpoint_runs import _data
        x, labels = _data()
        with pytest.raises(Crash):
            lk.fit(net, x, labels, seed=7, verbose=False, checkpoint=checkpoint, checkpoint_every_batches=1,
                   **{k: v for k, v in options.items() if k != "checkpoint_every_batches"})
        if crash_at == 1:  # before the first checkpoint: resume starts afresh
            assert not checkpoint.exists()
        else:
            assert position(checkpoint)["step"] == crash_at - 1
        net, options = RUNS[name]()
        options["callbacks"] = [lk.LambdaCallback(on_batch_end=lambda state: None)]
        options["checkpoint_every_batches"] = 1
        history = lk.fit(net, x, labels, seed=7, verbose=False, checkpoint=checkpoint, resume=True, **options)
        got = outcome(net, options, history)
        assert_same_outcome(expected, got)


def _problem():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    return x, (x[:, 0] > 0).astype(int)


def _net(hidden=6, seed=0):
    return lk.Net([lk.Linear(3, hidden, rng=seed), lk.ReLU(), lk.Linear(hidden, 2, rng=seed + 1)])


def _arrays(net):
    return [np.array(value) for key, value in lk.io.net_entries(net).items() if key.startswith("layers/")]


def test_resume_without_a_file_starts_afresh_and_a_finished_run_resumes_to_its_end(tmp_path):
    x, y = _problem()
    plain = lk.fit(_net(), x, y, epochs=4, lr=0.1, seed=2, verbose=False)
    checkpoint = tmp_path / "fresh.npz"
    net = _net()
    first = lk.fit(net, x, y, epochs=4, lr=0.1, seed=2, verbose=False, checkpoint=checkpoint, resume=True)
    assert first.metrics == plain.metrics and checkpoint.exists()
    again_net = _net()
    again = lk.fit(again_net, x, y, epochs=4, lr=0.1, seed=2, verbose=False, checkpoint=checkpoint, resume=True)
    assert again.metrics == plain.metrics  # nothing left to train: the saved run's end
    for a, b in zip(_arrays(net), _arrays(again_net)):
        assert a.tobytes() == b.tobytes()
    longer = lk.fit(_net(), x, y, epochs=6, lr=0.1, seed=2, verbose=False)
    extended = lk.fit(_net(), x, y, epochs=6, lr=0.1, seed=2, verbose=False, checkpoint=checkpoint, resume=True)
    assert extended.metrics == longer.metrics  # more epochs continue the saved run


def test_checkpoint_every_k_epochs(tmp_path):
    x, y = _problem()
    checkpoint = tmp_path / "every3.npz"
    written = []

    def note(state):
        written.append(position(checkpoint)["epoch"] if checkpoint.exists() else None)
    lk.fit(_net(), x, y, epochs=7, lr=0.1, verbose=False, checkpoint=checkpoint, checkpoint_every_epochs=3,
           callbacks=[lk.LambdaCallback(on_epoch_end=note)])
    # what the file held when each epoch ended (before that epoch's checkpoint)
    assert written == [None, None, None, 3, 3, 3, 6]
    assert position(checkpoint)["epoch"] == 7  # the last epoch is always saved


@pytest.mark.parametrize("change, message", [
    (dict(net=lambda: _net(hidden=7)), r"written for another net"),
    (dict(net=lambda: lk.Net([lk.Linear(3, 6, rng=0), lk.Tanh(), lk.Linear(6, 2, rng=1)])),
     r"written for another net"),
    (dict(loss="bce"), r"its loss is 'layerkit\.losses\.SoftmaxCrossEntropy'"),
    (dict(optimizer=lambda: SGD(0.1)), r"its update is"),
    (dict(batch_size=5), r"its batch_size is 8, this run's is 5"),
])
def test_a_checkpoint_of_another_run_is_refused_and_nothing_is_loaded(tmp_path, change, message):
    x, y = _problem()
    checkpoint = tmp_path / "run.npz"
    lk.fit(_net(), x, y, epochs=2, optimizer=Adam(0.01), batch_size=8, verbose=False, checkpoint=checkpoint,
           loss="softmax_cross_entropy")
    net = change.get("net", _net)()
    optimizer = change.get("optimizer", lambda: Adam(0.01))()
    before = _arrays(net)
    loss = change.get("loss", "softmax_cross_entropy")
    targets = y if loss != "bce" else np.eye(2)[y]
    with pytest.raises(ValueError, match=message):
        lk.fit(net, x, targets, epochs=3, optimizer=optimizer, batch_size=change.get("batch_size", 8),
               verbose=False, checkpoint=checkpoint, resume=True, loss=loss)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, _arrays(net)))  # never half loaded
    assert optimizer.state == {}


def test_a_corrupt_or_foreign_file_gets_a_clear_error(tmp_path):
    x, y = _problem()
    checkpoint = tmp_path / "run.npz"
    lk.fit(_net(), x, y, epochs=1, lr=0.1, verbose=False, checkpoint=checkpoint)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"not a readable layerkit model file \(truncated, corrupt"):
        lk.fit(_net(), x, y, epochs=2, lr=0.1, verbose=False, checkpoint=checkpoint, resume=True)
    saved_net = tmp_path / "net.npz"
    _net().save(saved_net)
    with pytest.raises(ValueError, match=r"is a saved net, not a fit checkpoint"):
        lk.fit(_net(), x, y, epochs=2, lr=0.1, verbose=False, checkpoint=saved_net, resume=True)


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    x, y = _problem()
    checkpoint = tmp_path / "run.npz"
    lk.fit(_net(), x, y, epochs=2, lr=0.1, seed=3, verbose=False, checkpoint=checkpoint)
    good = checkpoint.read_bytes()
    real_savez = np.savez

    def half_written(handle, **entries):
        real_savez(handle, **dict(list(entries.items())[:3]))
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        lk.fit(_net(), x, y, epochs=2, lr=0.1, seed=3, verbose=False, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler, whatever the runner was started with (a background job ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_at_the_end_of_the_minibatch_with_the_history(tmp_path, ctrl_c_raises):
    x, y = _problem()
    checkpoint = tmp_path / "run.npz"
    seen = []

    def press_ctrl_c(state):
        seen.append((state.epoch, state.batch))
        if state.epoch == 2 and state.batch == 1:
            signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after minibatch 2 of epoch 3") as caught:
        lk.fit(_net(), x, y, epochs=5, lr=0.1, batch_size=8, seed=4, verbose=False, checkpoint=checkpoint,
               callbacks=[lk.LambdaCallback(on_batch_end=press_ctrl_c)])
    assert seen[-1] == (2, 1)  # the minibatch ran to its end, and no other began
    assert caught.value.history.epochs == 2
    assert position(checkpoint)["epoch"] == 2  # the last finished epoch's checkpoint
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = lk.fit(_net(), x, y, epochs=5, lr=0.1, batch_size=8, seed=4, verbose=False, checkpoint=checkpoint,
                     resume=True, callbacks=[lk.LambdaCallback(on_batch_end=lambda state: None)])
    plain = lk.fit(_net(), x, y, epochs=5, lr=0.1, batch_size=8, seed=4, verbose=False)
    assert resumed.metrics == plain.metrics


def test_ctrl_c_in_an_epoch_run_by_the_core_stops_after_the_epoch(ctrl_c_raises):
    x, y = _problem()

    def press_ctrl_c(state):
        if state.epoch == 1:
            signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after epoch 2") as caught:
        lk.fit(_net(), x, y, epochs=5, lr=0.1, verbose=False, callbacks=[lk.LambdaCallback(on_epoch_end=press_ctrl_c)])
    assert caught.value.history.epochs == 2


def test_the_checkpoint_is_a_model_file_with_the_optimizer(tmp_path):
    x, y = _problem()
    checkpoint = tmp_path / "run.npz"
    net = _net()
    optimizer = Adam(0.01)
    lk.fit(net, x, y, epochs=2, optimizer=optimizer, verbose=False, checkpoint=checkpoint)
    loaded, loaded_optimizer = lk.Net.load(checkpoint, optimizer=True)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert type(loaded_optimizer) is Adam and loaded_optimizer.state.keys() == optimizer.state.keys()
    np.testing.assert_array_equal(loaded_optimizer.state["0.W"]["exp_avg"], optimizer.state["0.W"]["exp_avg"])
    with pytest.raises(TypeError, match=r"optimizer must be True .* or an optimizer instance"):
        lk.Net.load(checkpoint, optimizer=Adam)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(resume=True), ValueError, r"resume=True needs checkpoint=path"),
    (dict(checkpoint=3), TypeError, r"checkpoint must be a file path"),
    (dict(checkpoint="x.npz", checkpoint_every_epochs=0), ValueError, r"checkpoint_every_epochs"),
    (dict(checkpoint="x.npz", checkpoint_every_batches=1.5), TypeError, r"checkpoint_every_batches"),
    (dict(checkpoint="x.npz", resume="yes"), TypeError, r"resume must be True or False"),
    (dict(checkpoint="x.npz", lr=None, optimizer=type("Rule", (), {"update_layer": lambda self, layer, key: None})()),
     TypeError, r"checkpoint= saves the state of a layerkit.optim optimizer or a float rate, and Rule is neither"),
])
def test_bad_checkpoint_arguments(kwargs, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _problem()
    with pytest.raises(error, match=message):
        lk.fit(_net(), x, y, epochs=1, **{"lr": 0.1, "verbose": False, **kwargs})
    assert not os.path.exists(tmp_path / "x.npz")


class _Crash(Exception):
    pass


def _crash_then_resume(make_net, options, crash_after_batches, tmp_path, callbacks=()):
    """A run stopped by an exception after some minibatches, then resumed: its net and history."""
    x, y = _problem()
    checkpoint = tmp_path / "crashed.npz"
    seen = []

    def crash(state):
        seen.append(1)
        if len(seen) == crash_after_batches:
            raise _Crash
    with pytest.raises(_Crash):
        lk.fit(make_net(), x, y, verbose=False, checkpoint=checkpoint, checkpoint_every_batches=1,
               callbacks=[*callbacks, lk.LambdaCallback(on_batch_end=crash)], **options)
    net = make_net()
    history = lk.fit(net, x, y, verbose=False, checkpoint=checkpoint, checkpoint_every_batches=1, resume=True,
                     callbacks=[*callbacks, lk.LambdaCallback(on_batch_end=lambda state: None)], **options)
    return net, history


def test_modes_set_during_training_are_restored(tmp_path):
    """A callback froze batch norm's statistics after the first epoch; the resumed run keeps them frozen."""
    def make_net():
        return lk.Net([lk.Linear(3, 6, rng=0), lk.BatchNorm1d(6), lk.ReLU(), lk.Linear(6, 2, rng=1)])

    def freeze(state):
        if state.epoch == 0:
            state.net[1].training = False
    options = dict(epochs=4, lr=0.1, batch_size=8, seed=5)
    x, y = _problem()
    plain_net = make_net()
    plain = lk.fit(plain_net, x, y, verbose=False, callbacks=[lk.LambdaCallback(on_epoch_end=freeze)], **options)
    net, resumed = _crash_then_resume(make_net, options, 12, tmp_path,
                                      callbacks=[lk.LambdaCallback(on_epoch_end=freeze)])
    assert resumed.metrics == plain.metrics
    for a, b in zip(_arrays(plain_net), _arrays(net)):
        assert a.tobytes() == b.tobytes()


def test_diagnostics_resume_mid_epoch(tmp_path):
    options = dict(epochs=3, lr=0.1, batch_size=8, seed=6, diagnostics=True)
    x, y = _problem()
    plain = lk.fit(_net(), x, y, verbose=False, **options)
    _, resumed = _crash_then_resume(_net, options, 7, tmp_path)
    assert resumed.metrics == plain.metrics
    assert resumed.diagnostics.records == plain.diagnostics.records
