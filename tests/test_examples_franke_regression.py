"""examples/franke_regression.py: Franke's function regression, small."""
import numpy as np
import pytest

from example_loader import load_example


def test_franke_function_values():
    example = load_example("franke_regression")
    # Franke's function at (0, 0) and its known maximum near (0.2, 0.2)
    expected = (0.75 * np.exp(-4 / 4 - 4 / 4) + 0.75 * np.exp(-1 / 49 - 1 / 10)
                + 0.5 * np.exp(-49 / 4 - 9 / 4) - 0.2 * np.exp(-16 - 49))
    assert example.franke(np.array(0.0), np.array(0.0)) == pytest.approx(expected)
    grid = np.linspace(0, 1, 101)
    xx, yy = np.meshgrid(grid, grid)
    assert example.franke(xx, yy).max() == pytest.approx(1.22, abs=0.01)


def test_data_are_noisy_samples_on_the_unit_square():
    example = load_example("franke_regression")
    x_train, x_test, t_train, t_test = example.make_data(400, 0.1, seed=1)
    assert x_train.shape == (300, 2) and x_test.shape == (100, 2)
    assert x_train.min() >= 0 and x_train.max() <= 1
    residual = t_train - example.franke(x_train[:, 0], x_train[:, 1])
    assert 0.08 < residual.std() < 0.12


def test_nets_beat_the_mean_and_come_near_ols(tmp_path, capsys):
    example = load_example("franke_regression")
    mse = example.main(["--n", "400", "--epochs", "60", "--activations", "tanh", "relu",
                        "--out", str(tmp_path / "franke.png")])
    out = capsys.readouterr().out
    assert set(mse) == {"OLS degree 5", "layerkit tanh", "layerkit relu", "MLPRegressor tanh",
                        "MLPRegressor relu"}
    data = example.make_data(400, 0.1, seed=0)
    baseline = float(np.mean((data[3] - data[2].mean()) ** 2))  # predicting the mean
    assert mse["OLS degree 5"] < 0.3 * baseline
    assert mse["layerkit relu"] < 0.3 * baseline
    assert mse["layerkit relu"] < 2 * mse["OLS degree 5"]
    assert mse["layerkit tanh"] < 0.5 * baseline
    assert f"OLS degree 5      test MSE {mse['OLS degree 5']:.4f}" in out
    assert (tmp_path / "franke.png").stat().st_size > 30_000


def test_weight_decay_and_schedule_reach_the_optimizer(monkeypatch):
    example = load_example("franke_regression")
    seen = {}
    real_fit = example.lk.fit

    def spy(net, x, t, **kwargs):
        seen.update(kwargs)
        return real_fit(net, x, t, **kwargs)

    monkeypatch.setattr(example.lk, "fit", spy)
    data = example.make_data(80, 0.1, seed=0)
    example.fit_net("relu", data, hidden=8, epochs=2, batch_size=20, lr=0.01, weight_decay=1e-3, seed=0)
    optimizer = seen["optimizer"]
    assert optimizer.weight_decay == 1e-3
    assert isinstance(optimizer.lr, example.lk.optim.Warmup) and seen["loss"] == "mse"
