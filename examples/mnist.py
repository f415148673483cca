"""MNIST: a 784-256-128-10 net or LeNet-5 from the IDX files
============================================================

The handwritten digits of MNIST (60000 training and 10000 test images of
28x28 pixels), read from the four standard IDX files with
``layerkit.datasets.load_mnist`` (plain or gzipped, as torchvision and Keras
download them; Fashion-MNIST's files work the same way): pixels scaled to
[0, 1], the net ``Linear(784, 256) - ReLU - Linear(256, 128) - ReLU -
Linear(128, 10)`` (``--model mlp``) or LeNet-5 (``--model lenet``: conv 6@5x5
with padding 2, ReLU, max-pool 2, conv 16@5x5, ReLU, max-pool 2, 400-120-84-10
with ReLU, on ``(n, 1, 28, 28)`` images), trained by ``lk.fit`` on the logits
with softmax cross-entropy, SGD with momentum in minibatches of 64, float32.
Both run their epochs in the compiled core. It prints the test accuracy and
the training time per epoch.

``python examples/mnist.py --data DIR`` with the files in ``DIR``. Without
them it says where to get them and trains on a small stand-in instead:
scikit-learn's 8x8 digits, upscaled to 28x28. The documentation build shows
this example without running it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import layerkit as lk
from layerkit.datasets import MNIST_SOURCES, load_mnist


class EpochTimer(lk.Callback):
    """Wall time of each epoch's training (validation excluded: it runs after ``on_epoch_end``)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, state: lk.FitState) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, state: lk.FitState) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 images of shape (n, 28, 28) to float32 rows of shape (n, 784) in [0, 1]."""
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)


def stand_in(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits upscaled to 28x28 uint8 images (bilinear): 1347 training and 450 test images."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.clip(zoom(digits.images, (1, 3.5, 3.5), order=1) * (255 / 16), 0, 255).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=450,
                                                        stratify=digits.target, random_state=seed)
    return x_train, y_train, x_test, y_test


def build_lenet(seed: int) -> lk.Net:
    """LeNet-5 for (n, 1, 28, 28) images, float32."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return lk.Net([lk.Conv2d(1, 6, 5, padding=2, rng=rng, init="he", dtype=f32), lk.ReLU(), lk.MaxPool2d(2),
                   lk.Conv2d(6, 16, 5, rng=rng, init="he", dtype=f32), lk.ReLU(), lk.MaxPool2d(2), lk.Flatten(),
                   lk.Linear(400, 120, rng=rng, init="he", dtype=f32), lk.ReLU(),
                   lk.Linear(120, 84, rng=rng, init="he", dtype=f32), lk.ReLU(),
                   lk.Linear(84, 10, rng=rng, dtype=f32)])


def build_net(n_in: int, seed: int) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(n_in, 256, rng=rng, init="he", dtype=np.float32), lk.ReLU(),
                   lk.Linear(256, 128, rng=rng, init="he", dtype=np.float32), lk.ReLU(),
                   lk.Linear(128, 10, rng=rng, dtype=np.float32)])


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train and evaluate; return the test accuracy and the mean seconds per epoch."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                             "and t10k-labels-idx1-ubyte (each may end in .gz)")
    parser.add_argument("--model", choices=("mlp", "lenet"), default="mlp",
                        help="the 784-256-128-10 net (default) or LeNet-5")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("mnist_curves.png"), help="learning curves (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the learning curves")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)

    where = ("examples/mnist.py trains on the MNIST files: --data DIR, with the four IDX files "
             "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
             "t10k-labels-idx1-ubyte.gz) in DIR. Get them from\n  " + "\n  ".join(MNIST_SOURCES))
    try:
        if args.data is None:
            raise FileNotFoundError("no --data folder given")
        x_train, y_train, x_test, y_test = load_mnist(args.data)
    except FileNotFoundError as error:
        print(f"examples/mnist.py: {error}\n{where}\nUntil then it trains on a stand-in: scikit-learn's 8x8 "
              "digits upscaled to 28x28.", file=sys.stderr)
        x_train, y_train, x_test, y_test = stand_in(args.seed)
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train, x_test = prepare(x_train), prepare(x_test)
    print(f"{len(x_train)} training and {len(x_test)} test images of {x_train.shape[1]} pixels")

    optimizer = lk.optim.SGD(lr=args.lr, momentum=args.momentum)
    if args.model == "lenet":  # the same rows as (n, 1, 28, 28) images
        net, x_train, x_test = build_lenet(args.seed), as_images(x_train), as_images(x_test)
        title = "MNIST, LeNet-5, SGD with momentum"
    else:
        net, title = build_net(x_train.shape[1], args.seed), "MNIST, 784-256-128-10 ReLU net, SGD with momentum"
    timer = EpochTimer()
    history = lk.fit(net, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                     optimizer=optimizer, loss="softmax_cross_entropy", seed=args.seed,
                     validation_data=(x_test, y_test), callbacks=[timer], verbose=True if args.progress else 2)
    accuracy = float(np.mean(net.predict(x_test).argmax(axis=1) == y_test))
    per_epoch = float(np.mean(timer.seconds))
    print(f"test accuracy: {accuracy:.4f}")
    print(f"time per epoch: {per_epoch:.2f} s (training only, mean of {len(timer.seconds)} epochs)")
    if not args.no_plot:
        history.plot(args.out, title=title)
        print(f"learning curves saved to {args.out}")
    return {"accuracy": accuracy, "seconds_per_epoch": per_epoch}


def as_images(rows: np.ndarray) -> np.ndarray:
    """(n, 784) rows as (n, 1, 28, 28) one-channel images."""
    return rows.reshape(len(rows), 1, 28, 28)


if __name__ == "__main__":
    main()
