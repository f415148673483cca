"""layerkit.fit: update rules, losses, batching, callbacks, early stopping, clipping, progress."""
import sys

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


def test_progress_bar_shows_metrics(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # as in a terminal
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


# ---- fit basics: history, reproducibility, equivalence with manual steps, bad input, plots


def toy_problem(rng, n=200):
    x = rng.normal(size=(n, 4))
    t = (x[:, 0] - x[:, 2] > 0).astype(float)
    return x, t


def make_net(seed):
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(4, 8, rng=rng), lk.ReLU(), lk.Linear(8, 1, rng=rng), lk.Sigmoid()])


def test_fit_learns_and_records_history(rng):
    x, t = toy_problem(rng)
    history = lk.fit(make_net(0), x, t, epochs=15, lr=0.3, batch_size=16, seed=0,
                     validation_data=(x[:50], t[:50]), verbose=False)
    assert history.epochs == 15
    assert set(history.metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history.last()["val_accuracy"] == history["val_accuracy"][-1]


def test_fit_is_reproducible_with_a_seed(rng):
    x, t = toy_problem(rng)
    a = lk.fit(make_net(1), x, t, epochs=3, seed=7, verbose=False)
    b = lk.fit(make_net(1), x, t, epochs=3, seed=7, verbose=False)
    c = lk.fit(make_net(1), x, t, epochs=3, seed=8, verbose=False)
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def test_fit_with_one_full_batch_equals_manual_steps(rng):
    x, t = toy_problem(rng, n=30)
    net, manual = make_net(2), make_net(2)
    lk.fit(net, x, t, epochs=2, lr=0.1, batch_size=30, shuffle=False, verbose=False)
    for _ in range(2):
        y, trace = manual.forward(x)
        manual.backward(trace, lk.binary_cross_entropy(y, t)[1])
        manual.step(0.1)
    np.testing.assert_allclose(net.predict(x), manual.predict(x), rtol=1e-12)


def test_fit_regression_has_no_accuracy(rng):
    x = rng.normal(size=(50, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0])
    net = lk.Net([lk.Linear(4, 1, rng=0)])
    history = lk.fit(net, x, y, epochs=30, lr=0.05, batch_size=10, loss="mse", seed=0, verbose=False)
    assert "train_accuracy" not in history
    assert history["train_loss"][-1] < 0.01
    loss, accuracy = lk.evaluate(net, x, y, loss="mse")
    assert accuracy is None and loss < 0.01


def test_fit_prints_one_line_per_epoch(rng, capsys):
    x, t = toy_problem(rng, n=20)
    lk.fit(make_net(0), x, t, epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch   1/2: train_loss=")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(x=np.ones((3, 4)), y=np.ones(4)), ValueError, r"fit: x has 3 rows but y has shape \(4,\)"),
    (dict(x=np.full((3, 4), np.nan), y=np.ones(3)), ValueError, "fit: x contains 12 NaN"),
    (dict(x=np.empty((0, 4)), y=np.empty(0)), ValueError, "fit: x is an empty batch"),
    (dict(x=np.ones((3, 4)), y=np.ones(3), batch_size=0), ValueError, "fit: batch_size: expected an integer >= 1, got 0"),
    (dict(x=np.ones((3, 4)), y=np.ones(3), validation_data=np.ones(3)), TypeError, r"validation_data must be a pair"),
])
def test_fit_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        lk.fit(make_net(0), verbose=False, **kwargs)


def test_plot_history_writes_png(rng, tmp_path):
    x, t = toy_problem(rng, n=40)
    history = lk.fit(make_net(0), x, t, epochs=3, validation_data=(x, t), verbose=False)
    path = tmp_path / "curves.png"
    figure = lk.plot_history(history, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(figure.axes) == 2
    assert [line.get_label() for line in figure.axes[0].lines] == ["train", "val"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_fit_accepts_a_plain_callable_loss(rng):
    """A loss that is only a function returning (loss, grad) trains like the built-in one."""
    x, t = toy_problem(rng, n=40)
    by_name, by_function = make_net(4), make_net(4)
    lk.fit(by_name, x, t, epochs=2, loss="bce", seed=0, verbose=False)
    history = lk.fit(by_function, x, t, epochs=2, loss=lambda y, target: lk.binary_cross_entropy(y, target),
                     seed=0, verbose=False)
    np.testing.assert_allclose(by_function.predict(x), by_name.predict(x), rtol=1e-10)
    assert "train_accuracy" not in history  # a bare function says nothing about accuracy


# ---- issue 15: divergence (item 2), double softmax (item 12), the default loss (item 13)
def test_diverging_relu_net_stops_with_its_history():
    """Issue 15 item 2: a diverged ReLU net kept 'training' at chance accuracy without a word."""
    x, y = _blobs()
    net = _net()
    with pytest.raises(FloatingPointError, match=r"fit: .*(non-finite|became).*lower the learning rate or clip "
                                                 r"gradients \(clip_norm=\)\. The epochs completed are in "
                                                 r"error\.history") as caught:
        lk.fit(net, x, y, epochs=30, lr=1e4, batch_size=15, loss="softmax_cross_entropy", seed=0, verbose=False)
    history = caught.value.history
    assert isinstance(history, lk.History)
    assert history.epochs < 30
    assert all(np.isfinite(history["train_loss"]))


def test_non_finite_gradient_stops_fit_at_the_end_of_the_epoch_naming_it():
    x, y = _blobs()
    net = _net()

    def poison(state):  # after the epoch's only step: the stored gradient is non-finite, the weights are not
        if state.epoch == 1:
            state.net[2].db[0] = np.inf

    with pytest.raises(FloatingPointError, match=r"layers\[2\]\.db \(Linear\(8, 3\)\) became non-finite in "
                                                 r"epoch 2") as caught:
        lk.fit(net, x, y, epochs=5, batch_size=len(x), lr=0.1, loss="softmax_cross_entropy",
               callbacks=[lk.LambdaCallback(on_batch_end=poison)], verbose=False)
    assert caught.value.history.epochs == 1
    assert np.isfinite(net[2].b).all()


def test_non_finite_weights_stop_fit_naming_them():
    x, y = _blobs()
    net = _net()

    def poison(state):
        state.net[0].W[0, 0] = np.nan

    with pytest.raises(FloatingPointError, match=r"(predictions became non-finite in epoch 1, minibatch 2|"
                                                 r"layers\[0\]\.W).*layers\[0\]\.W \(Linear\(2, 8\)\) is not finite"):
        lk.fit(net, x, y, epochs=3, lr=0.1, batch_size=15, loss="softmax_cross_entropy",
               callbacks=[lk.LambdaCallback(on_batch_end=poison)], verbose=False)


def test_fit_warns_when_the_net_ends_in_softmax_before_softmax_cross_entropy():
    """Issue 15 item 12: the softmax was taken twice and the loss stuck near 0.6."""
    x, y = _blobs()
    net = lk.Net(list(_net().layers) + [lk.Softmax()])
    with pytest.warns(lk.warnings.DoubleSoftmaxWarning,
                      match=r"ends in Softmax\(\) and the loss is softmax_cross_entropy, which takes logits.*"
                            r"Remove the final Softmax layer") as caught:
        lk.fit(net, x, y, epochs=1, loss="softmax_cross_entropy", verbose=False)
    assert caught[0].filename == __file__
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", lk.warnings.DoubleSoftmaxWarning)
        _fit(epochs=1)  # logits: quiet


@pytest.mark.parametrize("loss", ["bce_with_logits", lk.losses.BinaryCrossEntropyWithLogits()],
                         ids=["name", "object"])
def test_fit_warns_when_the_net_ends_in_sigmoid_before_the_logits_loss(loss):
    """The logits loss applies the sigmoid itself: a final Sigmoid layer made it twice, silently."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] > 0).astype(float)
    net = lk.Net([lk.Linear(2, 4, rng=0), lk.Tanh(), lk.Linear(4, 1, rng=1), lk.Sigmoid()])
    with pytest.warns(lk.warnings.DoubleSigmoidWarning,
                      match=r"ends in Sigmoid\(\) and the loss is bce_with_logits, which takes logits and applies "
                            r"the sigmoid itself.*Remove the final Sigmoid layer.*use loss=\"bce\"") as caught:
        lk.fit(net, x, y, epochs=1, loss=loss, verbose=False)
    assert caught[0].filename == __file__
    assert issubclass(lk.warnings.DoubleSigmoidWarning, lk.warnings.LayerkitWarning)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", lk.warnings.LayerkitWarning)
        lk.fit(net, x, y, epochs=1, loss="bce", verbose=False)  # probabilities: quiet
        lk.fit(lk.Net(net.layers[:-1]), x, y, epochs=1, loss="bce_with_logits", verbose=False)  # logits: quiet


def test_default_loss_is_chosen_from_the_output_width_and_targets():
    """Issue 15 item 13: a 3-class fit without loss= failed with a shape error about bce."""
    x, y = _blobs()
    history = lk.fit(_net(), x, y, epochs=20, lr=0.2, seed=0, verbose=False)  # softmax cross-entropy
    assert history["train_accuracy"][-1] > 0.9
    reference = lk.fit(_net(), x, y, epochs=20, lr=0.2, seed=0, verbose=False, loss="softmax_cross_entropy")
    assert history["train_loss"] == reference["train_loss"]

    binary = (y == 0).astype(int)
    sigmoid_net = lk.Net([lk.Linear(2, 1, rng=0), lk.Sigmoid()])
    chosen = lk.fit(sigmoid_net, x, binary, epochs=3, seed=0, verbose=False)
    again = lk.fit(lk.Net([lk.Linear(2, 1, rng=0), lk.Sigmoid()]), x, binary, epochs=3, seed=0, verbose=False,
                   loss="bce")
    assert chosen["train_loss"] == again["train_loss"] and chosen["train_accuracy"][-1] is not None

    targets = np.random.default_rng(0).normal(size=(len(x), 3))
    chosen = lk.fit(_net(), x, targets, epochs=2, seed=0, verbose=False, lr=0.01)
    again = lk.fit(_net(), x, targets, epochs=2, seed=0, verbose=False, lr=0.01, loss="mse")
    assert chosen["train_loss"] == again["train_loss"] and "train_accuracy" not in chosen


@pytest.mark.parametrize("targets, message", [
    (np.zeros((120, 2)), r"none fits targets of shape \(120, 2\) \(float64\) for a net with 3 output\(s\)"),
    (np.array(["a"] * 120), r"y must hold numbers"),
])
def test_default_loss_says_which_loss_fits_when_none_does(targets, message):
    x, _ = _blobs()
    with pytest.raises((ValueError, TypeError), match=message):
        lk.fit(_net(), x, targets, epochs=1, verbose=False)
    if targets.dtype.kind == "f":
        with pytest.raises(ValueError, match=r"'softmax_cross_entropy' for 1-D integer labels 0\.\.k-1 or one-hot "
                                             r"rows with k outputs \(logits\), 'mse' for float targets shaped like the output"):
            lk.fit(_net(), x, targets, epochs=1, verbose=False)


def test_evaluate_chooses_its_loss_by_fits_rule_when_none_is_given():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 4))
    logits = lk.Net([lk.Linear(4, 3, rng=0)])
    labels = rng.integers(0, 3, size=12)
    assert lk.evaluate(logits, x, labels) == lk.evaluate(logits, x, labels, loss="softmax_cross_entropy")
    regression = lk.Net([lk.Linear(4, 2, rng=0)])
    targets = rng.normal(size=(12, 2))
    assert lk.evaluate(regression, x, targets) == lk.evaluate(regression, x, targets, loss="mse")
    with pytest.raises(ValueError, match=r"evaluate: no loss given.*'softmax_cross_entropy'"):
        lk.evaluate(logits, x, rng.normal(size=(12, 5)))


def test_progress_bar_turns_itself_off_without_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)  # a log file, a CI job
    _fit(lr=0.1, epochs=2, verbose=True)
    assert capsys.readouterr().err == ""
    _fit(lr=0.1, epochs=2, verbose=2)  # the epoch lines are still printed
    assert capsys.readouterr().out.count("train_loss=") == 2


@pytest.mark.parametrize("name, cls, rate", [
    ("sgd", optim.SGD, 0.01), ("adam", optim.Adam, 1e-3), ("Adam", optim.Adam, 1e-3), ("rmsprop", optim.RMSprop, 1e-3),
    ("adagrad", optim.AdaGrad, 1e-3), ("adamw", optim.AdamW, 1e-3),
])
def test_optimizers_by_name(name, cls, rate):
    x, y = _blobs()
    chosen = lk.fit(_net(), x, y, epochs=2, optimizer=name, seed=0, verbose=False)
    same = lk.fit(_net(), x, y, epochs=2, optimizer=cls(rate), seed=0, verbose=False)
    assert chosen.metrics == same.metrics and chosen["lr"] == [rate, rate]
    faster = lk.fit(_net(), x, y, epochs=2, optimizer=name, lr=0.05, seed=0, verbose=False)
    assert faster["lr"] == [0.05, 0.05]
    scheduled = lk.fit(_net(), x, y, epochs=1, optimizer=name, lr=optim.StepDecay(0.05, 1, 0.5), batch_size=15,
                       verbose=False)
    assert scheduled["lr"][0] < 0.05


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(optimizer=optim.Adam), TypeError, r"fit: optimizer: got the class Adam, not an optimizer: instantiate it, "
                                            r"as Adam\(lr=\.\.\.\), or pass its name, optimizer='adam'"),
    (dict(lr=optim.SGD), TypeError, r"fit: lr: got the class SGD"),
    (dict(optimizer="adamax"), ValueError, r"unknown optimizer 'adamax'; expected one of \['adagrad', 'adam', "),
    (dict(optimizer="adam", lr="fast"), TypeError, r"with optimizer='adam', lr must be its rate"),
    (dict(optimizer=optim.Adam(), lr=0.1), ValueError, r"give lr or optimizer, not both"),
])
def test_optimizer_mistakes_get_a_message_that_says_what_to_do(kwargs, error, message):
    x, y = _blobs()
    with pytest.raises(error, match=message):
        lk.fit(_net(), x, y, epochs=1, verbose=False, **kwargs)


def test_one_hot_targets_get_softmax_cross_entropy_with_accuracy():
    x, y = _blobs()
    one_hot = np.eye(3)[y]
    history = lk.fit(_net(), x, one_hot, epochs=5, lr=0.2, seed=0, verbose=False)
    labels = lk.fit(_net(), x, y, epochs=5, lr=0.2, seed=0, verbose=False)
    assert history["train_accuracy"] == labels["train_accuracy"] and history["train_accuracy"][-1] > 0.9
    np.testing.assert_allclose(history["train_loss"], labels["train_loss"], rtol=1e-12)
    assert lk.evaluate(_net(), x, one_hot)[1] is not None  # evaluate's rule is fit's
    several = one_hot.copy()
    several[:, 0] = 1  # 0/1 rows with several ones: not classes, and not to be regressed silently
    with pytest.raises(ValueError, match=r"y of shape \(120, 3\) holds 0/1 rows that are not one-hot .*pass loss="):
        lk.fit(_net(), x, several, epochs=1, verbose=False)
    assert "train_accuracy" not in lk.fit(_net(), x, several, epochs=1, lr=0.1, loss="mse", verbose=False)


@pytest.mark.parametrize("loss, targets, message", [
    ("bce", lambda y: (y == 0).astype(float), r"fit: loss 'bce' needs targets of shape \(120, 3\), like the net's "
                                              r"output of width 3, but y has shape \(120,\)"),
    ("mse", lambda y: np.zeros((120, 2)), r"shape \(120, 3\).*but y has shape \(120, 2\)"),
    ("softmax_cross_entropy", lambda y: np.zeros((120, 5)),
     r"class labels of shape \(120,\) or rows of shape \(120, 3\).*but y has shape \(120, 5\)"),
])
def test_target_shape_errors_name_the_datas_shape_not_a_minibatchs(loss, targets, message):
    x, y = _blobs()
    with pytest.raises(ValueError, match=message):
        lk.fit(_net(), x, targets(y), epochs=1, lr=0.1, batch_size=15, loss=loss, verbose=False)
