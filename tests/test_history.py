"""History: metrics access, JSON/CSV round trips, atomic saves, plots."""
import json

import numpy as np
import pytest

import layerkit as lk


def _history():
    history = lk.History()
    history.append(train_loss=1.0, train_accuracy=0.5, val_loss=1.2, val_accuracy=None)
    history.append(train_loss=0.5, train_accuracy=0.75, val_loss=0.9, val_accuracy=None)
    return history


def test_metrics_access():
    history = _history()
    assert history.epochs == 2
    assert history["train_loss"] == [1.0, 0.5]
    assert "val_accuracy" not in history
    assert history.last() == {"train_loss": 0.5, "train_accuracy": 0.75, "val_loss": 0.9}
    with pytest.raises(KeyError, match="History has no metric 'loss'"):
        history["loss"]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_save_and_load_round_trip(tmp_path, suffix):
    history = _history()
    path = history.save(tmp_path / f"history{suffix}")
    assert lk.History.load(path).metrics == history.metrics
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_json_keeps_diagnostics(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    history = lk.fit(lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 1, rng=1)]), x, x[:, :1],
                     epochs=2, loss="mse", lr=0.05, diagnostics=True, verbose=False, seed=0)
    path = history.save(tmp_path / "h.json")
    data = json.loads(path.read_text())
    assert "grad_norm/0.W" in data["diagnostics"]["records"]
    loaded = lk.History.load(path)
    assert loaded.diagnostics.records == history.diagnostics.records
    assert loaded.diagnostics.labels == {"0": "Linear(3, 4)", "1": "ReLU()", "2": "Linear(4, 1)"}


def test_csv_layout(tmp_path):
    text = _history().save(tmp_path / "h.csv").read_text().splitlines()
    assert text[0] == "epoch,train_loss,train_accuracy,val_loss"
    assert text[2] == "2,0.5,0.75,0.9"


def test_save_refuses_other_suffixes_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "h.json"
    target.write_text("old")
    with pytest.raises(ValueError, match="History.save: path must end in .json or .csv, got 'h.txt'"):
        _history().save(tmp_path / "h.txt")

    broken = lk.History({"train_loss": [1.0]})
    broken.metrics["train_loss"] = [object()]  # not JSON-able: the write fails half-way
    with pytest.raises(TypeError):
        broken.save(target)
    assert target.read_text() == "old"


def test_plot_learning_curves(tmp_path):
    figure = _history().plot(tmp_path / "curves.png", title="t")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["Loss", "Accuracy"]
    assert [line.get_label() for line in figure.axes[0].lines] == ["train", "val"]
