"""layerkit.plotting: overlaid runs and the diagnostics figure."""
import numpy as np
import pytest

import layerkit as lk


def _run(lr, diagnostics=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(float)
    net = lk.Net([lk.Linear(3, 5, rng=0), lk.ReLU(), lk.Linear(5, 1, rng=1), lk.Sigmoid()])
    return lk.fit(net, x, y, epochs=3, lr=lr, validation_data=(x, y), verbose=False, seed=0,
                  diagnostics=diagnostics)


def test_plot_history_overlays_runs(tmp_path):
    runs = {"sgd": _run(0.1), "adam": _run(lk.optim.Adam(0.01))}
    figure = lk.plot_history(runs, tmp_path / "compare.svg")
    assert (tmp_path / "compare.svg").read_text().startswith("<?xml")
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["sgd train", "sgd val", "adam train", "adam val"]
    colors = [line.get_color() for line in figure.axes[0].lines]
    assert colors[0] == colors[1] != colors[2]


def test_plot_history_rejects_other_things():
    with pytest.raises(TypeError, match="plot_history: expected a History or a non-empty dict"):
        lk.plot_history([1, 2])


def test_plot_diagnostics_one_figure_four_panels(tmp_path):
    history = _run(0.1, diagnostics=True)
    figure = history.diagnostics.plot(tmp_path / "diag.png", title="diagnostics")
    assert (tmp_path / "diag.png").stat().st_size > 1000
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["gradient norm (solid: W; dashed: b)", "activation mean ± std (outputs of the layers without parameters)",
                      "dead ReLU units (fraction)", "update / weight norm (solid: W; dashed: b)"]
    assert len(figure.axes[0].lines) == 4  # one per parameter


def test_plot_diagnostics_draws_a_net_with_blocks(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(float)
    net = lk.Net([lk.Linear(3, 4, rng=rng),
                  lk.Residual([lk.Linear(4, 4, rng=rng), lk.ReLU(), lk.Linear(4, 4, rng=rng)]), lk.ReLU(),
                  lk.Concatenate([[lk.Linear(4, 2, rng=rng), lk.ReLU()], [lk.Linear(4, 2, rng=rng)]]),
                  lk.Linear(4, 1, rng=rng), lk.Sigmoid()])
    history = lk.fit(net, x, y, epochs=2, lr=0.1, verbose=False, seed=0, diagnostics=True)
    figure = history.diagnostics.plot(tmp_path / "blocks.png")
    assert (tmp_path / "blocks.png").stat().st_size > 1000
    grad_labels = [line.get_label() for line in figure.axes[0].lines if not line.get_label().startswith("_")]
    assert [label.split()[0] for label in grad_labels] == ["0", "1.f.0", "1.f.2", "3.branches.0.0",
                                                           "3.branches.1.0", "4"]
    dead_labels = [line.get_label().split()[0] for line in figure.axes[2].lines]
    assert dead_labels == ["1.f.1", "2", "3.branches.0.1"]
    colors = [line.get_color() for line in figure.axes[0].lines]
    assert len({tuple(np.round(c, 6)) for c in colors}) == 6  # one colour per layer with parameters
