"""Franke function regression: nets against polynomial OLS and MLPRegressor
===========================================================================

A classic regression task: fit Franke's function on the unit
square from noisy samples. ``n`` points are drawn uniformly in [0, 1]^2, the
targets are ``franke(x, y) + N(0, noise^2)``, and a quarter of the points is
held out. Three kinds of model are compared by their test mean squared error:

- layerkit nets ``2-H-H-1`` with tanh and with ReLU hidden layers, the mean
  squared error loss, Adam with weight decay (an L2 term, as ``torch.optim``
  defines it) and a cosine learning-rate schedule with a warm-up;
- ordinary least squares on the polynomial features of degree 5
  (scikit-learn's ``PolynomialFeatures`` + ``LinearRegression``);
- scikit-learn's ``MLPRegressor`` with the same widths, activation, optimizer
  (Adam), minibatch size, epochs and initial learning rate, and ``alpha`` as
  its L2 penalty.

The figure shows the noise-free function, the tanh net's fit and the OLS fit
as surfaces, and the nets' learning curves. Run
``python examples/franke_regression.py --help`` for the options.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

import layerkit as lk
from layerkit.plotting import save_figure

ACTIVATIONS = {"tanh": lk.Tanh, "relu": lk.ReLU, "sigmoid": lk.Sigmoid}
INIT = {"tanh": "xavier", "relu": "he", "sigmoid": "xavier"}
MLP_ACTIVATION = {"tanh": "tanh", "relu": "relu", "sigmoid": "logistic"}


def franke(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Franke's function, element-wise on arrays of the same shape."""
    term1 = 0.75 * np.exp(-((9 * x - 2) ** 2) / 4 - ((9 * y - 2) ** 2) / 4)
    term2 = 0.75 * np.exp(-((9 * x + 1) ** 2) / 49 - (9 * y + 1) / 10)
    term3 = 0.5 * np.exp(-((9 * x - 7) ** 2) / 4 - ((9 * y - 3) ** 2) / 4)
    term4 = -0.2 * np.exp(-((9 * x - 4) ** 2) - (9 * y - 7) ** 2)
    return term1 + term2 + term3 + term4


def make_data(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, x_test`` of shape (m, 2) in [0, 1]^2 and targets ``t_train, t_test`` of shape (m,)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.0, 1.0, size=(n, 2))
    targets = franke(points[:, 0], points[:, 1]) + noise * rng.normal(size=n)
    return train_test_split(points, targets, test_size=0.25, random_state=seed)


def build_net(activation: str, hidden: int, seed: int) -> lk.Net:
    """``Linear(2, H) - act - Linear(H, H) - act - Linear(H, 1)``."""
    rng = np.random.default_rng(seed)
    act = ACTIVATIONS[activation]
    init = INIT[activation]
    return lk.Net([lk.Linear(2, hidden, rng=rng, init=init), act(),
                   lk.Linear(hidden, hidden, rng=rng, init=init), act(),
                   lk.Linear(hidden, 1, rng=rng)])


def scaled(points: np.ndarray) -> np.ndarray:
    """[0, 1]^2 to [-1, 1]^2, where tanh and the initialisations expect inputs of unit size."""
    return 2.0 * points - 1.0


def fit_net(activation: str, data: tuple, *, hidden: int, epochs: int, batch_size: int, lr: float,
            weight_decay: float, seed: int) -> tuple[lk.Net, lk.History, float, float]:
    """Train one net; return it, its history, its test MSE and the training time in seconds."""
    x_train, x_test, t_train, t_test = data
    offset = t_train.mean()  # the net fits the centred targets
    net = build_net(activation, hidden, seed)
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = lk.optim.Warmup(lk.optim.CosineDecay(lr, steps), max(1, steps // 20))  # 5% warm-up
    optimizer = lk.optim.Adam(lr=schedule, weight_decay=weight_decay)
    start = time.perf_counter()
    history = lk.fit(net, scaled(x_train), (t_train - offset)[:, None], epochs=epochs, batch_size=batch_size,
                     optimizer=optimizer, loss="mse", seed=seed, verbose=False,
                     validation_data=(scaled(x_test), (t_test - offset)[:, None]))
    seconds = time.perf_counter() - start
    predict = lambda points: net.predict(scaled(points))[:, 0] + offset  # noqa: E731
    net.predict_surface = predict  # for the figure
    return net, history, float(mean_squared_error(t_test, predict(x_test))), seconds


def fit_ols(data: tuple, degree: int) -> tuple[object, float]:
    """Polynomial OLS of ``degree``; return the fitted pipeline and its test MSE."""
    x_train, x_test, t_train, t_test = data
    model = make_pipeline(PolynomialFeatures(degree), LinearRegression()).fit(x_train, t_train)
    return model, float(mean_squared_error(t_test, model.predict(x_test)))


def fit_mlp(activation: str, data: tuple, *, hidden: int, epochs: int, batch_size: int, lr: float,
            alpha: float, seed: int) -> tuple[float, float]:
    """scikit-learn's MLPRegressor at the nets' settings; return its test MSE and training time."""
    x_train, x_test, t_train, t_test = data
    model = MLPRegressor(hidden_layer_sizes=(hidden, hidden), activation=MLP_ACTIVATION[activation],
                         solver="adam", alpha=alpha, batch_size=batch_size, learning_rate_init=lr,
                         max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=seed)
    start = time.perf_counter()
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch budget, on purpose
        model.fit(scaled(x_train), t_train)
    seconds = time.perf_counter() - start
    return float(mean_squared_error(t_test, model.predict(scaled(x_test)))), seconds


def plot(results: dict, ols, histories: dict, path: Path) -> None:
    """Surfaces (the function, the first net, OLS) and the nets' learning curves."""
    from matplotlib.figure import Figure

    grid = np.linspace(0, 1, 60)
    xx, yy = np.meshgrid(grid, grid)
    points = np.column_stack([xx.ravel(), yy.ravel()])
    first = next(iter(results))
    surfaces = {
        "Franke's function (no noise)": franke(xx, yy),
        f"{first} net, test MSE {results[first]['mse']:.4f}": results[first]["net"].predict_surface(points)
        .reshape(xx.shape),
        f"OLS degree 5, test MSE {ols[1]:.4f}": ols[0].predict(points).reshape(xx.shape),
    }
    figure = Figure(figsize=(16, 4.2), layout="constrained")
    for index, (title, zz) in enumerate(surfaces.items()):
        axes = figure.add_subplot(1, 4, index + 1, projection="3d")
        axes.plot_surface(xx, yy, zz, cmap="viridis", linewidth=0, antialiased=True)
        axes.set(xlabel="x", ylabel="y", zlim=(-0.3, 1.3), title=title)
        axes.title.set_fontsize("small")
    curves = figure.add_subplot(1, 4, 4)
    for color, (name, history) in enumerate(histories.items()):
        curves.semilogy(history["train_loss"], color=f"C{color}", label=f"{name} train")
        curves.semilogy(history["val_loss"], color=f"C{color}", linestyle="--", label=f"{name} test")
    curves.axhline(ols[1], color="gray", linestyle=":", label="OLS degree 5 test")
    curves.set(xlabel="epoch", ylabel="MSE (centred targets)", title="learning curves")
    curves.legend(fontsize="small")
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fit every model, print the test MSEs, save the figure; return the test MSE by model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--n", type=int, default=800, help="number of points (a quarter is held out)")
    parser.add_argument("--noise", type=float, default=0.1, help="standard deviation of the added noise")
    parser.add_argument("--activations", nargs="+", choices=sorted(ACTIVATIONS), default=["tanh", "relu"])
    parser.add_argument("--hidden", type=int, default=50, help="width of both hidden layers")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="L2 term (MLPRegressor's alpha)")
    parser.add_argument("--degree", type=int, default=5, help="degree of the OLS polynomial")
    parser.add_argument("--no-mlp", action="store_true", help="skip scikit-learn's MLPRegressor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("franke_regression.png"), help="the figure (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    args = parser.parse_args(argv)

    data = make_data(args.n, args.noise, args.seed)
    print(f"{len(data[0])} training and {len(data[1])} test points, noise {args.noise}; "
          f"the noise alone gives a test MSE of about {args.noise ** 2:.4f}")
    ols = fit_ols(data, args.degree)
    mse = {f"OLS degree {args.degree}": ols[1]}
    results, histories = {}, {}
    settings = dict(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    for activation in args.activations:
        net, history, net_mse, seconds = fit_net(activation, data, weight_decay=args.weight_decay, **settings)
        results[activation] = {"net": net, "mse": net_mse}
        histories[activation] = history
        mse[f"layerkit {activation}"] = net_mse
        line = f"layerkit {activation:8s} test MSE {net_mse:.4f}  ({seconds:.2f} s)"
        if not args.no_mlp:
            mlp_mse, mlp_seconds = fit_mlp(activation, data, alpha=args.weight_decay, **settings)
            mse[f"MLPRegressor {activation}"] = mlp_mse
            line += f"   MLPRegressor {activation:8s} test MSE {mlp_mse:.4f}  ({mlp_seconds:.2f} s)"
        print(line)
    print(f"OLS degree {args.degree}      test MSE {ols[1]:.4f}")
    if not args.no_plot:
        plot(results, ols, histories, args.out)
        print(f"figure saved to {args.out}")
    return mse


if __name__ == "__main__":
    main()
