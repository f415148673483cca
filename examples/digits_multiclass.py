"""All ten digits and a confusion matrix
=====================================

All ten digits with a softmax output, and the test set's confusion matrix.

scikit-learn's 8x8 digits (1797 images), a stratified split into 1347
training and 450 test rows, pixels standardised with the mean and standard
deviation of all training pixels, the net
``Linear(64, 64) - ReLU - Linear(64, 10)`` trained on the logits with
``softmax_cross_entropy`` by Adam in minibatches of 32. The confusion matrix
comes from ``sklearn.metrics``.

Run ``python examples/digits_multiclass.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
from sklearn.model_selection import train_test_split

import layerkit as lk
from layerkit.plotting import new_figure, save_figure


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised train and test splits (1347 and 450 rows), labels 0..9."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, test_size=450,
                                                        stratify=digits.target, random_state=seed)
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def build_net(seed: int, hidden: int = 64) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(64, hidden, rng=rng, init="he"), lk.ReLU(), lk.Linear(hidden, 10, rng=rng)])


def main(argv: list[str] | None = None) -> float:
    """Train, print the test accuracy and the confusion matrix, save the figures; return the accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.002, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figures (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    net = build_net(args.seed)
    print(net)
    history = lk.fit(net, x_train, y_train, epochs=args.epochs, optimizer=lk.optim.Adam(lr=args.lr),
                     batch_size=args.batch_size, loss="softmax_cross_entropy", seed=args.seed,
                     validation_data=(x_test, y_test), verbose=not args.quiet)
    predicted = net.predict(x_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    matrix = confusion_matrix(y_test, predicted, labels=range(10))
    print("confusion matrix (rows: true digit, columns: predicted digit):")
    print(matrix)
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        figure, axes = new_figure(1, 1, size=(6, 5.5))
        ConfusionMatrixDisplay(matrix, display_labels=range(10)).plot(ax=axes[0, 0], colorbar=False, cmap="Blues")
        axes[0, 0].set_title(f"digits, test accuracy {accuracy:.4f}")
        save_figure(figure, args.out / "digits_confusion.png")
        history.plot(args.out / "digits_multiclass_curves.png", title="digits, 64-64-10 ReLU net, Adam")
        print(f"figures saved to {args.out / 'digits_confusion.png'} and {args.out / 'digits_multiclass_curves.png'}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
