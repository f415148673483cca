"""layerkit.fit: update rules, losses, batching, callbacks, early stopping, clipping, progress."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import optim


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]])
    return centers[labels] + rng.normal(scale=0.6, size=(n, 2)), labels


def _net(seed=0):
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(2, 8, rng=rng), lk.ReLU(), lk.Linear(8, 3, rng=rng)])


def _fit(**kwargs):
    x, y = _blobs()
    options = dict(epochs=8, batch_size=16, loss="softmax_cross_entropy", seed=0, verbose=False)
    options.update(kwargs)
    net = options.pop("net", None) or _net()
    return net, lk.fit(net, x, y, **options)


def test_float_lr_is_plain_gradient_descent_and_learns():
    net, history = _fit(lr=0.2)
    assert history.epochs == 8
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["train_accuracy"][-1] > 0.9
    assert "lr" not in history


@pytest.mark.parametrize("how", ["lr", "optimizer"])
def test_optimizer_given_as_lr_or_optimizer_is_used(how):
    opt = optim.Adam(lr=0.05)
    net, history = _fit(**{how: opt})
    assert opt.state["0.W"]["step"] == 8 * 8  # 120 rows / 16 = 8 batches per epoch
    assert history["lr"] == [0.05] * 8
    assert history["train_accuracy"][-1] > 0.9


def test_schedule_as_lr_means_sgd_with_that_schedule_per_update():
    _, history = _fit(lr=optim.ExponentialDecay(0.3, 0.9))
    assert history["lr"][0] == pytest.approx(0.3 * 0.9 ** 7)
    assert history["lr"][-1] == pytest.approx(0.3 * 0.9 ** 63)


def test_per_epoch_schedule():
    _, history = _fit(lr=optim.PerEpoch(optim.ExponentialDecay(0.3, 0.5), steps_per_epoch=8))
    assert history["lr"] == pytest.approx([0.3 * 0.5 ** e for e in range(8)])


def test_same_seed_same_result_and_unshuffled_order():
    a, _ = _fit(lr=0.1)
    b, _ = _fit(lr=0.1)
    c, _ = _fit(lr=0.1, seed=1)
    np.testing.assert_array_equal(a[0].W, b[0].W)
    assert not np.array_equal(a[0].W, c[0].W)
    d, _ = _fit(lr=0.1, shuffle=False, seed=0)
    e, _ = _fit(lr=0.1, shuffle=False, seed=5)
    np.testing.assert_array_equal(d[0].W, e[0].W)


def test_loss_object_and_validation_metrics():
    x, y = _blobs()
    net = _net()
    history = lk.fit(net, x, y, epochs=3, lr=0.1, loss=lk.softmax_cross_entropy,
                     validation_data=(x[:30], y[:30]), verbose=False, seed=0)
    assert set(history.metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    val_loss, val_accuracy = lk.evaluate(net, x[:30], y[:30], loss="softmax_cross_entropy")
    assert history["val_loss"][-1] == pytest.approx(val_loss)
    assert history["val_accuracy"][-1] == pytest.approx(val_accuracy)


def test_callbacks_per_batch_and_per_epoch():
    seen = {"batches": [], "epochs": []}
    callback = lk.LambdaCallback(on_batch_end=lambda s: seen["batches"].append((s.epoch, s.batch, s.batch_size)),
                                 on_epoch_end=lambda s: seen["epochs"].append(s.history.epochs))
    _fit(lr=0.1, epochs=2, callbacks=[callback])
    assert len(seen["batches"]) == 16
    assert seen["batches"][7] == (0, 7, 120 - 7 * 16)
    assert seen["epochs"] == [1, 2]


def test_callback_can_stop_training():
    class StopAfterTwo(lk.Callback):
        def on_epoch_end(self, state):
            state.stop = state.epoch == 1

    _, history = _fit(lr=0.1, callbacks=[StopAfterTwo()])
    assert history.epochs == 2 and history.stopped_early


def test_early_stopping_restores_best_weights():
    x, y = _blobs()
    snapshots = []
    stopper = lk.EarlyStopping(patience=2, restore_best_weights=True)

    # a rate so large that the validation loss climbs after the first epochs
    net = _net()
    record = lk.LambdaCallback(on_epoch_end=lambda s: snapshots.append(s.net[0].W.copy()))
    history = lk.fit(net, x, y, epochs=40, lr=optim.SGD(lr=3.0), loss="softmax_cross_entropy",
                     validation_data=(x, 1 - (y > 0)), seed=0, verbose=False,
                     callbacks=[record], early_stopping=stopper)
    assert history.stopped_early
    assert stopper.stopped_epoch == history.epochs - 1
    assert history.epochs == stopper.best_epoch + 1 + 2
    assert history["val_loss"][stopper.best_epoch] == min(history["val_loss"])
    np.testing.assert_array_equal(net[0].W, snapshots[stopper.best_epoch])


def test_early_stopping_int_monitors_train_loss_without_validation():
    stopper = lk.EarlyStopping(patience=1, min_delta=10.0)
    _, history = _fit(lr=0.1, early_stopping=stopper)
    assert stopper._metric == "train_loss"
    assert history.epochs == 2


def test_early_stopping_unknown_metric():
    with pytest.raises(ValueError, match="EarlyStopping: monitor 'val_accuracy' is not recorded"):
        _fit(lr=0.1, early_stopping=lk.EarlyStopping(monitor="val_accuracy"))


def test_clip_norm_limits_every_update():
    norms = []

    class Spy(optim.SGD):
        def update_layer(self, layer, key=None):
            if key == "0":
                norms.append(optim.global_grad_norm(self._net))
            super().update_layer(layer, key)

    net = _net()
    spy = Spy(lr=0.1)
    spy._net = net
    _fit(net=net, lr=spy, clip_norm=0.05, epochs=1)
    assert len(norms) == 8 and max(norms) <= 0.05 + 1e-9


def test_progress_bar_shows_metrics(capsys):
    _fit(lr=0.1, epochs=2, verbose=2)
    err = capsys.readouterr().err
    assert "train_loss=" in err and "train_acc=" in err and "2/2" in err
    _fit(lr=0.1, epochs=2, verbose=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_diagnostics_recorded_per_epoch():
    _, history = _fit(lr=0.1, epochs=3, diagnostics=True)
    diag = history.diagnostics
    assert diag.epochs == 3
    assert set(diag.series("grad_norm")) == {"0.W", "0.b", "2.W", "2.b"}
    assert set(diag.series("dead_fraction")) == {"1"}
    assert _fit(lr=0.1, epochs=1)[1].diagnostics is None


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="fit: give lr or optimizer, not both"):
        _fit(lr=0.1, optimizer=optim.SGD())
    with pytest.raises(TypeError, match="fit: lr must be a learning rate .* got str"):
        _fit(lr="fast")
    with pytest.raises(TypeError, match="fit: callbacks must be layerkit.callbacks.Callback objects"):
        _fit(lr=0.1, callbacks=[print])
    with pytest.raises(TypeError, match="fit: early_stopping must be an EarlyStopping or a patience"):
        _fit(lr=0.1, early_stopping="yes")
    with pytest.raises(ValueError, match="fit: clip_norm: expected a number > 0.0, got 0.0"):
        _fit(lr=0.1, clip_norm=0.0)
    with pytest.raises(ValueError, match="EarlyStopping: mode must be"):
        lk.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        _fit(lr=0.1, loss="hinge")
    with pytest.raises(TypeError, match="fit: net must be a layerkit.Net"):
        lk.fit([lk.Linear(2, 3)], *_blobs())


def test_diverging_run_says_so():
    x, y = _blobs()
    net = lk.Net([lk.Linear(2, 3, rng=0)])
    with pytest.raises((FloatingPointError, ValueError), match="loss became|not finite|finite"):
        lk.fit(net, x * 1e150, y, epochs=3, lr=1e10, loss="softmax_cross_entropy", verbose=False)
