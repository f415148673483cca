"""Initialisation: activations of a deep net
==========================================

Why initialisation matters: the activations of a deep net under four initialisers.

A pre-activation ``a_j = sum_i W_ij x_i`` over ``n_in`` inputs has variance
``n_in * sigma**2 * v**2`` when the weights have variance ``sigma**2`` and the
inputs ``v**2`` (Glorot and Bengio 2010, "Understanding the difficulty of
training deep feedforward neural networks", section 4.2.1). Keeping it of the order of ``v**2`` layer
after layer asks for ``sigma**2 = 1 / n_in``; ReLU zeroes half of its
inputs and asks for twice that, ``2 / n_in`` (He et al. 2015, "Delving Deep into Rectifiers", section 2.2); balancing the
backward pass too gives Xavier's ``2 / (n_in + n_out)``.

This script sends a batch of standard normal inputs through a net of ten
``Linear`` layers of width 256, each followed by tanh or by ReLU, and prints
and plots the standard deviation of each layer's activations for weights drawn
from ``N(0, 1)``, ``N(0, 1/n)`` (``init="lecun_normal"``), Xavier
(``init="xavier"``) and He (``init="he"``). With ``N(0, 1)`` tanh saturates at
once (standard deviation near 1: every unit sits at +-1, where its gradient
vanishes) and ReLU grows by a factor ``sqrt(n / 2)`` per layer. ``N(0, 1/n)``
and Xavier (the same variance for a square layer) let tanh's activations
shrink slowly, since tanh's slope is below 1 away from 0, and halve ReLU's
variance at every layer. He keeps ReLU's activations of one size.

Run ``python examples/initialisation.py --help`` for the options.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import layerkit as lk
from layerkit.plotting import new_figure, save_figure

INITIALISERS = {
    "N(0, 1)": lk.init.normal(1.0),
    "N(0, 1/n)": "lecun_normal",
    "Xavier": "xavier",
    "He": "he",
}
ACTIVATIONS = {"tanh": lk.Tanh, "ReLU": lk.ReLU}


def build_net(activation: str, init: object, depth: int, width: int, seed: int) -> lk.Net:
    """``depth`` times ``Linear(width, width, init=init)`` followed by the activation."""
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(depth):
        layers += [lk.Linear(width, width, rng=rng, init=init), ACTIVATIONS[activation]()]
    return lk.Net(layers)


def activation_stds(net: lk.Net, x: np.ndarray) -> list[float]:
    """Standard deviation of the output of every activation layer, input side first."""
    y, trace = net.forward(x)
    # the input of each Linear after the first is the previous activation's output
    outputs = [entry.x for entry in trace[2::2]] + [y]
    return [float(np.std(out)) for out in outputs]


def main(argv: list[str] | None = None) -> dict[str, dict[str, list[float]]]:
    """Print and plot the per-layer standard deviations; return them by activation and initialiser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--depth", type=int, default=10, help="number of Linear + activation layers")
    parser.add_argument("--width", type=int, default=256, help="units per layer (n_in = n_out = width)")
    parser.add_argument("--samples", type=int, default=1000, help="rows of the N(0, 1) input batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("initialisation.png"), help="the figure (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the figure")
    args = parser.parse_args(argv)

    x = np.random.default_rng(args.seed).standard_normal((args.samples, args.width))
    results: dict[str, dict[str, list[float]]] = {}
    for activation in ACTIVATIONS:
        results[activation] = {}
        print(f"{activation}: standard deviation of the activations, layer 1 to {args.depth}")
        for label, init in INITIALISERS.items():
            net = build_net(activation, init, args.depth, args.width, args.seed)
            stds = activation_stds(net, x)
            results[activation][label] = stds
            print(f"  {label:10s} " + " ".join(f"{s:9.3g}" for s in stds))

    if not args.no_plot:
        figure, axes = new_figure(1, 2, size=(5.5, 4.2))
        layers = np.arange(1, args.depth + 1)
        for ax, (activation, curves) in zip(axes[0], results.items()):
            for label, stds in curves.items():
                ax.semilogy(layers, stds, "o-", label=label)
            ax.set(xlabel="layer", ylabel="standard deviation of the activations",
                   title=f"{args.depth} x (Linear({args.width}, {args.width}) + {activation})")
            ax.set_xticks(layers)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        figure.suptitle("Initialisation: the activations of a deep net (inputs N(0, 1))")
        save_figure(figure, args.out)
        print(f"figure saved to {args.out}")
    return results


if __name__ == "__main__":
    main()
