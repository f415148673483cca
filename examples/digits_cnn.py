"""A small convolutional net on the digits
========================================

The 8x8 digits as one-channel images ``(n, 1, 8, 8)`` and a small
convolutional net, on the same split and scaling as the dense 64-64-10 net of
``digits_multiclass.py``:

``Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1)
- ReLU - MaxPool2d(2) - Flatten - Linear(128, 10)``

trained on the logits with ``softmax_cross_entropy`` by Adam in minibatches of
32, in a hand-written loop (``net.forward`` with a workspace, the loss,
``net.backward``, ``net.step``). It reaches a higher test accuracy than the
dense net, with fewer parameters. The figure shows the 16 kernels of the
first convolution and the test accuracy per epoch.

Run ``python examples/digits_cnn.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import layerkit as lk
from layerkit.plotting import new_figure, save_figure

from digits_multiclass import load_data


def build_net(seed: int) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([
        lk.Conv2d(1, 16, 3, padding=1, rng=rng, init="he"), lk.ReLU(), lk.MaxPool2d(2),    # 16 x 4 x 4
        lk.Conv2d(16, 32, 3, padding=1, rng=rng, init="he"), lk.ReLU(), lk.MaxPool2d(2),   # 32 x 2 x 2
        lk.Flatten(), lk.Linear(128, 10, rng=rng),
    ])


def as_images(rows: np.ndarray) -> np.ndarray:
    """``(n, 64)`` pixel rows as ``(n, 1, 8, 8)`` one-channel images."""
    return rows.reshape(-1, 1, 8, 8)


def train(net: lk.Net, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
          epochs: int, lr: float, batch_size: int, seed: int) -> list[float]:
    """Adam on minibatches; returns the test accuracy after every epoch."""
    optimizer = lk.optim.Adam(lr=lr)
    workspace = net.workspace()
    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            logits, trace = net.forward(x[rows], workspace=workspace)
            _, dy = lk.softmax_cross_entropy(logits, y[rows])
            net.backward(trace, dy, input_grad=False)
            net.step(optimizer)
        accuracies.append(float(np.mean(net.predict(x_test).argmax(axis=1) == y_test)))
    return accuracies


def main(argv: list[str] | None = None) -> float:
    """Train, print the test accuracy, save the figure; return the accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.002, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    x_train, x_test = as_images(x_train), as_images(x_test)
    net = build_net(args.seed)
    print(net)
    print(f"{net.n_params} parameters")
    accuracies = train(net, x_train, y_train, x_test, y_test, epochs=args.epochs, lr=args.lr,
                       batch_size=args.batch_size, seed=args.seed)
    accuracy = accuracies[-1]
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        figure, axes = new_figure(1, 2, size=(5, 4))
        kernels = net[0].W[:, 0]  # (16, 3, 3)
        tiles = np.ones((4 * 4, 4 * 4)) * np.nan
        for k, kernel in enumerate(kernels):
            row, col = divmod(k, 4)
            tiles[row * 4:row * 4 + 3, col * 4:col * 4 + 3] = kernel
        axes[0, 0].imshow(tiles, cmap="RdBu_r")
        axes[0, 0].set_title("the 16 kernels (3x3) of the first Conv2d")
        axes[0, 0].axis("off")
        axes[0, 1].plot(range(1, len(accuracies) + 1), accuracies, "o-", markersize=3)
        axes[0, 1].set(xlabel="epoch", ylabel="test accuracy", title=f"digits CNN, test accuracy {accuracy:.4f}")
        axes[0, 1].grid(True, alpha=0.3)
        save_figure(figure, args.out / "digits_cnn.png")
        print(f"figure saved to {args.out / 'digits_cnn.png'}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
