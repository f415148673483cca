"""Vanishing gradients in a deep sigmoid net
=========================================

Vanishing gradients, seen: a deep sigmoid net against a ReLU net with He initialisation.

Both nets have the same shape, ``depth`` hidden layers of ``width`` units on
the ten-class digits task, and are trained identically (SGD with momentum,
softmax cross-entropy) with ``fit(..., diagnostics=True)``. The per-layer
gradient norms show the sigmoid net's gradient shrinking by a factor of about
four per layer towards the input (the sigmoid's slope is at most 1/4), so its
first layers barely learn, while the ReLU/He net keeps them of one size.

Run ``python examples/deep_sigmoid_diagnostics.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from digits_multiclass import load_data  # the same standardised split of the ten digits

import layerkit as lk
from layerkit.plotting import new_figure, save_figure


def build_net(activation: str, depth: int, width: int, seed: int) -> lk.Net:
    """``depth`` hidden layers: Sigmoid with Xavier init, or ReLU with He init."""
    rng = np.random.default_rng(seed)
    layer, init = (lk.Sigmoid, "xavier") if activation == "sigmoid" else (lk.ReLU, "he")
    layers, n_in = [], 64
    for _ in range(depth):
        layers += [lk.Linear(n_in, width, rng=rng, init=init), layer()]
        n_in = width
    return lk.Net(layers + [lk.Linear(n_in, 10, rng=rng, init=init)])


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Train both nets; return per net the test accuracy and the first/last layer gradient-norm ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--depth", type=int, default=8, help="hidden layers")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figures (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save figures")
    args = parser.parse_args(argv)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    results, histories = {}, {}
    for activation in ("sigmoid", "relu"):
        net = build_net(activation, args.depth, args.width, args.seed)
        history = lk.fit(net, x_train, y_train, epochs=args.epochs,
                         optimizer=lk.optim.SGD(lr=args.lr, momentum=0.9), batch_size=32,
                         loss="softmax_cross_entropy", seed=args.seed, validation_data=(x_test, y_test),
                         verbose=False, diagnostics=True)
        norms = history.diagnostics.grad_norms("W", epoch=0)
        first, last = norms[min(norms)], norms[max(norms)]
        results[activation] = {"test_accuracy": history["val_accuracy"][-1], "first_over_last": first / last}
        histories[activation] = history
        print(f"{activation:8s} test accuracy {history['val_accuracy'][-1]:.4f}; gradient norm of W in epoch 1, "
              f"input to output: " + " ".join(f"{value:.1e}" for value in norms.values()))
        print(f"{'':8s} first layer / last layer = {first / last:.2e}")
    if not args.no_plot:
        args.out.mkdir(parents=True, exist_ok=True)
        figure, axes = new_figure(1, 2, size=(5.5, 4.2))
        for ax, epoch, heading in ((axes[0, 0], 0, "epoch 1"), (axes[0, 1], -1, f"epoch {args.epochs}")):
            for activation, history in histories.items():
                norms = history.diagnostics.grad_norms("W", epoch=epoch)
                ax.semilogy(range(1, len(norms) + 1), list(norms.values()), "o-", label=activation)
            ax.set(xlabel="Linear layer (1 = next to the input)", ylabel="mean gradient norm of W",
                   title=f"per-layer gradient norms, {heading}")
            ax.grid(True, alpha=0.3)
            ax.legend()
        figure.suptitle(f"{args.depth} hidden layers of {args.width}: sigmoid/Xavier vs ReLU/He")
        save_figure(figure, args.out / "deep_gradient_norms.png")
        histories["sigmoid"].diagnostics.plot(args.out / "deep_sigmoid_diagnostics.png",
                                              title=f"sigmoid net, {args.depth} hidden layers")
        print(f"figures saved to {args.out / 'deep_gradient_norms.png'} and "
              f"{args.out / 'deep_sigmoid_diagnostics.png'}")
    return results


if __name__ == "__main__":
    main()
