"""fit, evaluate, History and the learning-curve plot."""
import numpy as np
import pytest

import layerkit as lk


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
    lk.fit(make_net(0), x, t, epochs=2, verbose=True)
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
