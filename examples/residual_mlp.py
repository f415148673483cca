"""A residual MLP on the ten digits
=================================

A net that is not a chain: two residual blocks, ``y = x + f(x)``, trained on
all ten digits with a softmax output.

scikit-learn's 8x8 digits (1797 images), a stratified split into 1347
training and 450 test rows, pixels standardised with the mean and standard
deviation of all training pixels. The net is
``Linear(64, 64) - ReLU - Residual(Linear - ReLU - Linear) - ReLU -
Residual(Linear - ReLU - Linear) - ReLU - Linear(64, 10)``, trained on the
logits with ``softmax_cross_entropy`` by Adam in minibatches of 32. Each
block's inner layers run as one fused chain, its parameters are named by
path (``"2.f.0.W"``) and its trace entry holds the inner trace.

Run ``python examples/residual_mlp.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import layerkit as lk


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised train and test splits (1347 and 450 rows), labels 0..9."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, test_size=450,
                                                        stratify=digits.target, random_state=seed)
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def residual_block(width: int, rng: np.random.Generator) -> lk.Residual:
    """``x + Linear(ReLU(Linear(x)))``: the width is kept, so the skip needs no projection."""
    return lk.Residual([lk.Linear(width, width, rng=rng, init="he"), lk.ReLU(), lk.Linear(width, width, rng=rng)])


def build_net(seed: int, width: int = 64, blocks: int = 2) -> lk.Net:
    rng = np.random.default_rng(seed)
    layers = [lk.Linear(64, width, rng=rng, init="he"), lk.ReLU()]
    for _ in range(blocks):
        layers += [residual_block(width, rng), lk.ReLU()]
    return lk.Net(layers + [lk.Linear(width, 10, rng=rng)])


def main(argv: list[str] | None = None) -> float:
    """Train, print the test accuracy, save the learning curves; return the accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.002, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=2, help="number of residual blocks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    net = build_net(args.seed, args.width, args.blocks)
    print(net)
    print("layers, nested ones included:", ", ".join(f"{path} {type(layer).__name__}"
                                                     for path, layer in net.walk()))
    history = lk.fit(net, x_train, y_train, epochs=args.epochs, optimizer=lk.optim.Adam(lr=args.lr),
                     batch_size=args.batch_size, loss="softmax_cross_entropy", seed=args.seed,
                     validation_data=(x_test, y_test), verbose=not args.quiet)

    # the trace of one pass: the first block's entry holds f's trace, so its inner inputs can be read
    _, trace = net.forward(x_test[:5])
    inner = trace[2].ctx
    print(f"block 2's inner ReLU saw inputs of shape {inner[1].x.shape}, "
          f"{np.mean(inner[1].x > 0):.0%} of them positive")
    accuracy = float(np.mean(net.predict(x_test).argmax(axis=1) == y_test))
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "residual_mlp_curves.png"
        history.plot(path, title=f"digits, residual MLP ({args.blocks} blocks of width {args.width}), Adam")
        print(f"figure saved to {path}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
