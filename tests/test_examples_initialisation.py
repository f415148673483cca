"""examples/initialisation.py: the variance argument for initialisers, measured on ten layers of width 256."""
import numpy as np

from example_loader import load_example


def test_each_initialiser_does_what_the_seed_says(tmp_path):
    out = tmp_path / "init.png"
    results = load_example("initialisation").main(["--samples", "400", "--out", str(out)])
    assert out.stat().st_size > 10_000
    tanh, relu = results["tanh"], results["ReLU"]
    assert all(len(stds) == 10 for curves in results.values() for stds in curves.values())
    # N(0, 1): tanh saturates at once, ReLU grows by about sqrt(256 / 2) = 11.3 per layer
    assert min(tanh["N(0, 1)"]) > 0.95
    growth = np.diff(np.log(relu["N(0, 1)"]))
    assert np.all((growth > np.log(8)) & (growth < np.log(16)))
    # N(0, 1/n) and Xavier: ReLU halves the variance per layer (a factor 1/sqrt(2) in std)
    for label in ("N(0, 1/n)", "Xavier"):
        ratio = relu[label][-1] / relu[label][0]
        assert 0.2 * 2 ** -4.5 < ratio < 5 * 2 ** -4.5
        assert np.all(np.diff(tanh[label]) < 0) and 0.1 < tanh[label][-1] < 0.4  # tanh: shrinks, slowly
    # He keeps ReLU's activations of one size over the ten layers
    assert 0.5 < relu["He"][-1] / relu["He"][0] < 2


def test_no_plot_writes_nothing(tmp_path):
    results = load_example("initialisation").main(["--no-plot", "--depth", "3", "--width", "32",
                                                   "--out", str(tmp_path / "x.png")])
    assert not list(tmp_path.iterdir())
    assert set(results) == {"tanh", "ReLU"} and len(results["ReLU"]["He"]) == 3
