"""Notebook displays: Net, History and the gradient-check reports have _repr_html_; LiveLearningCurve redraws."""
import numpy as np
import pytest

import layerkit as lk
from layerkit import callbacks
from layerkit.testing import check_grad, compare_with_autodiff


def test_net_shows_its_summary_as_a_table():
    net = lk.Net([lk.Linear(4, 3, rng=0), lk.ReLU(), lk.Linear(3, 1, rng=1)])
    html = net._repr_html_()
    assert html.startswith("<table") and "Net of 3 layers" in html and "total params: 19" in html
    for index, row in enumerate(net._summary_rows()):
        assert all(f">{cell}</td>" in html for cell in row), index
    assert str(net).splitlines()[1].split()[1:3] == ["Linear(4,", "3)"]  # the text summary is unchanged


def test_values_are_escaped():
    class Tag(lk.Layer):
        def get_config(self):
            return {}

        def __repr__(self):
            return "<script>alert(1)</script>"

        def forward(self, x):
            return x

        def backward(self, x, dy):
            return dy

    html = lk.Net([Tag()])._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_history_shows_every_epoch_of_a_short_run_and_both_ends_of_a_long_one():
    short = lk.History({"train_loss": [1.0, 0.5], "val_loss": [1.2]}, stopped_early=True)
    html = short._repr_html_()
    assert "History of 2 epochs" in html and "val_loss" in html and "stopped early" in html
    assert html.count("<tr") == 3 and ">0.5</td>" in html
    long = lk.History({"train_loss": [float(i) for i in range(100)]})
    html = long._repr_html_()
    assert html.count("<tr") == 1 + 5 + 1 + 10 and ">...</td>" in html and ">99</td>" in html and ">50</td>" not in html


def test_grad_report_colours_its_rows_and_names_failures():
    x = np.random.default_rng(0).normal(size=(5, 4))
    good = check_grad(lk.Linear(4, 3, rng=0), x, seed=0)
    html = good._repr_html_()
    assert "GradReport for Linear(4, 3): passed" in html and html.count("#e6f4ea") == 3  # x, W, b

    class WrongBias(lk.Linear):
        def backward(self, x, dy):
            dx = super().backward(x, dy)
            self.db = 2 * self.db
            return dx

    bad = check_grad(WrongBias(4, 3, rng=0), x, seed=0)
    html = bad._repr_html_()
    assert "FAILED (b)" in html and html.count("#fce8e6") == 1
    assert bad["b"].describe_failure().split(":")[0] in html
    assert "b: FAILED" in bad["b"]._repr_html_()


def test_autodiff_report_shows_its_table_and_the_gradient_check():
    pytest.importorskip("autograd")
    report = compare_with_autodiff(lk.Linear(3, 2, rng=0), np.ones((4, 3)), seed=0)
    html = report._repr_html_()
    assert "AutodiffReport for Linear(3, 2): passed (autograd" in html and "GradReport for" in html


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, image):
        self.log.append(("update", image))


class FakeDisplay:
    """IPython.display as a kernel has it: Image, and display(..., display_id=True) returning a handle."""

    def __init__(self):
        self.log = []

    def Image(self, data, format):  # noqa: N802 (IPython's name)
        assert data.startswith(b"\x89PNG") and format == "png"
        return data

    def display(self, image, display_id):
        assert display_id is True
        self.log.append(("display", image))
        return FakeHandle(self.log)


def _fit(curve, epochs=5):
    x = np.random.default_rng(0).normal(size=(30, 3))
    return lk.fit(lk.Net([lk.Linear(3, 1, rng=0)]), x, x[:, :1], loss="mse", epochs=epochs, lr=0.1,
                  verbose=False, callbacks=[curve])


def test_live_curve_draws_once_then_redraws_in_place_in_a_notebook(monkeypatch):
    display = FakeDisplay()
    monkeypatch.setattr(callbacks, "_notebook_display", lambda: display)
    curve = lk.LiveLearningCurve(every=2)
    _fit(curve, epochs=5)
    assert curve.draws == 3  # epochs 2 and 4, then the end
    assert [kind for kind, _ in display.log] == ["display", "update", "update"]
    _fit(curve, epochs=2)  # a new run: a new display
    assert [kind for kind, _ in display.log][3:] == ["display"]


def test_live_curve_outside_a_notebook_writes_its_file(tmp_path):
    assert callbacks._notebook_display() is None  # pytest is no kernel
    curve = lk.LiveLearningCurve(path=tmp_path / "curve.png", title="run")
    history = _fit(curve, epochs=3)
    assert curve.draws == 3 and (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    assert curve.figure.axes[0].lines[0].get_ydata().tolist() == history["train_loss"]


def test_live_curve_checks_every():
    with pytest.raises(TypeError, match="LiveLearningCurve: every: expected an integer, got float 1.5"):
        lk.LiveLearningCurve(every=1.5)
