"""Gradient descent with a decaying step
=====================================

Gradient descent on f(x, y) = x**2 + y**2 + x*(y + 2) + cos(3x), with and without decay.

The Radboud University Deep Learning course, assignment 1, section 1.1:
start at (x, y) = (3, 2) and follow the gradient. A fixed step of 0.1 for 10 steps stops in a local minimum, a
fixed step of 0.305 for 13 steps jumps around, and the decaying step
``eta_t = 0.2 * 0.8**t`` (``layerkit.optim.ExponentialDecay``) for 10 steps
reaches the global minimum's basin (f < -2). The steps are made by
``layerkit.optim.SGD`` on a 2-vector, exactly as it updates a layer's weights.

Run ``python examples/gradient_descent_2d.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import layerkit as lk
from layerkit.plotting import new_figure, save_figure

START = (3.0, 2.0)


def f(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The seed's function, element-wise."""
    return x ** 2 + y ** 2 + x * (y + 2) + np.cos(3 * x)


def grad_f(point: np.ndarray) -> np.ndarray:
    """``(df/dx, df/dy)`` at ``point = (x, y)``."""
    x, y = point
    return np.array([2 * x - 3 * np.sin(3 * x) + y + 2, x + 2 * y])


def descend(lr: float | lk.optim.Schedule, steps: int, start: tuple[float, float] = START,
            momentum: float = 0.0) -> np.ndarray:
    """The path of ``steps`` optimizer updates from ``start``, shape (steps + 1, 2)."""
    optimizer = lk.optim.SGD(lr=lr, momentum=momentum)
    point = np.array(start, dtype=np.float64)
    path = [point.copy()]
    for _ in range(steps):
        optimizer.update_param("xy", point, grad_f(point))
        path.append(point.copy())
    return np.array(path)


def runs() -> dict[str, np.ndarray]:
    """The seed's three settings, plus momentum for comparison, by label."""
    return {
        "step 0.1, 10 steps": descend(0.1, 10),
        "step 0.305, 13 steps": descend(0.305, 13),
        "step 0.2 * 0.8**t, 10 steps": descend(lk.optim.ExponentialDecay(0.2, 0.8), 10),
        "step 0.05, momentum 0.8, 30 steps": descend(0.05, 30, momentum=0.8),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run every setting, print where it ends, save the contour plot; return the final f by label."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("gradient_descent_2d.png"),
                        help="where to save the contour plot with the paths (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    args = parser.parse_args(argv)

    paths = runs()
    finals = {}
    for label, path in paths.items():
        finals[label] = float(f(*path[-1]))
        print(f"{label:36s} ends at (x, y) = ({path[-1, 0]: .4f}, {path[-1, 1]: .4f}), f = {finals[label]: .4f}")
    if not args.no_plot:
        figure, axes = new_figure(1, 2, size=(6.5, 5))
        contour, curves = axes[0]
        xx, yy = np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-5, 5, 200))
        filled = contour.contourf(xx, yy, f(xx, yy), 50, cmap="viridis")
        contour.contour(xx, yy, f(xx, yy), 50, alpha=0.2, colors="black", linestyles="solid")
        figure.colorbar(filled, ax=contour, label="f(x, y)")
        for color, (label, path) in enumerate(paths.items()):
            contour.plot(path[:, 0], path[:, 1], ".-", color=f"C{color + 1}", label=label)
            curves.plot(f(path[:, 0], path[:, 1]), ".-", color=f"C{color + 1}", label=label)
        contour.plot(*START, "w*", markersize=12)
        contour.set(xlabel="x", ylabel="y", title="paths from (3, 2)")
        contour.legend(fontsize="small", loc="lower left")
        curves.set(xlabel="step", ylabel="f(x, y)", title="f along each path")
        curves.grid(True, alpha=0.3)
        curves.legend(fontsize="small")
        save_figure(figure, args.out)
        print(f"contour plot saved to {args.out}")
    return finals


if __name__ == "__main__":
    main()
