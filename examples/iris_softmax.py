"""Iris: SGD, momentum and Adam
============================

Iris with a softmax output: SGD, momentum and Adam on the same 4-8-3 net.

The iris task of the University of Oslo's FYS-STK3155/4155 exercises (weeks
41 and 42): 4 measurements, 3 species, the net ``Linear(4, 8) - Sigmoid - Linear(8, 3)`` whose 3 outputs are logits trained
with ``softmax_cross_entropy`` (softmax and cross-entropy fused, on the
logits). A stratified held-out split (30% of the rows) is standardised with
the training rows' mean and standard deviation. The same initial weights are
trained three times, by plain SGD, SGD with momentum 0.9, and Adam, and their
learning curves are drawn on one figure.

Run ``python examples/iris_softmax.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import layerkit as lk


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised train and test splits (105 and 45 rows), labels 0..2."""
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.3,
                                                        stratify=iris.target, random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def build_net(seed: int) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(4, 8, rng=rng), lk.Sigmoid(), lk.Linear(8, 3, rng=rng)])


def optimizers(lr: float) -> dict[str, lk.optim.Optimizer]:
    """The three update rules compared, by label."""
    return {
        f"SGD (lr={lr})": lk.optim.SGD(lr=lr),
        f"momentum 0.9 (lr={lr})": lk.optim.SGD(lr=lr, momentum=0.9),
        "Adam (lr=0.01)": lk.optim.Adam(lr=0.01),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train with each optimizer; return the test accuracy of each, by label."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1, help="rate of SGD and momentum")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("iris_softmax_curves.png"),
                        help="where to save the learning curves (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per run")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    histories, accuracies = {}, {}
    for label, optimizer in optimizers(args.lr).items():
        net = build_net(args.seed)  # the same start for every optimizer
        histories[label] = lk.fit(net, x_train, y_train, epochs=args.epochs, optimizer=optimizer,
                                  batch_size=args.batch_size, loss="softmax_cross_entropy", seed=args.seed,
                                  validation_data=(x_test, y_test), verbose=args.progress)
        accuracies[label] = histories[label]["val_accuracy"][-1]
        last = histories[label].last()
        print(f"{label:24s} train loss {last['train_loss']:.4f}  test loss {last['val_loss']:.4f}  "
              f"test accuracy {accuracies[label]:.4f}")
    if not args.no_plot:
        lk.plot_history(histories, args.out, title="iris, 4-8-3 sigmoid net, softmax cross-entropy "
                                                   "(solid: train, dashed: test)")
        print(f"learning curves saved to {args.out}")
    return accuracies


if __name__ == "__main__":
    main()
