"""Digits, binary: is it smaller than 5?
=====================================

Digits, binary: is the handwritten digit smaller than 5?

The task of the Radboud University Deep Learning course, assignment 1,
section 1.6: scikit-learn's 8x8 digits, label ``digit < 5``, a seeded random
split into 898 training and 899 test rows, standardized with the mean and standard deviation of all training
pixels (one scale for the whole image, as in that assignment; scaling each pixel on
its own inflates the rarely-inked border pixels and costs about half a point of
test accuracy), and the net
``Linear(64, 32) - ReLU - Linear(32, 1) - Sigmoid`` trained with binary
cross-entropy in minibatches of 15 for 20 epochs.

The assignment's learning rate 0.01 applied to a gradient *summed* over the
minibatch; layerkit's losses return the gradient of the *mean*, so the same
step is ``0.01 * 15 = 0.15``.

Run ``python examples/digits_binary.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import layerkit as lk


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test splits (898 and 899 rows) of the binary digits task."""
    digits = load_digits()
    x = digits.data
    y = (digits.target < 5).astype(np.float64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=899, random_state=seed)
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def build_net(seed: int) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(64, 32, rng=rng), lk.ReLU(), lk.Linear(32, 1, rng=rng), lk.Sigmoid()])


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.15, help="step on the gradient of the mean loss")
    parser.add_argument("--batch-size", type=int, default=15)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, default=Path("digits_binary_curves.png"),
                        help="where to save the learning curves (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the learning curves")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    net = build_net(args.seed)
    print(net)
    history = lk.fit(net, x_train, y_train, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                     loss="bce", seed=args.seed, validation_data=(x_test, y_test), verbose=False)
    for epoch in range(history.epochs):
        print(f"epoch {epoch + 1:3d}: loss[train]={history['train_loss'][epoch]:.4f} "
              f"accuracy[train]={history['train_accuracy'][epoch]:.4f} "
              f"loss[test]={history['val_loss'][epoch]:.4f} "
              f"accuracy[test]={history['val_accuracy'][epoch]:.4f}")
    accuracy = history["val_accuracy"][-1]
    if not args.no_plot:
        lk.plot_history(history, args.out, title="digits < 5: Linear(64,32)-ReLU-Linear(32,1)-Sigmoid")
        print(f"learning curves saved to {args.out}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
