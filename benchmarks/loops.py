"""The loops people write, timed against JAX's jitted step of the same net.

Three rows for ``run.py``'s table, each a ratio to one ``jax.jit``-compiled
training step of the digits net 64-32-1 (ReLU, sigmoid out), batch 15,
float64: forward, mean binary cross-entropy, its gradient and the SGD update,
measured in the same interleaved rounds:

- the README loop as written: ``y, trace = net.forward(x)``,
  ``loss, dy = lk.binary_cross_entropy(y, t)``, ``net.backward(trace, dy)``,
  ``net.step(lr)`` (no workspace, no flags);
- one ``lk.binary_cross_entropy`` call on the net's (15, 1) output;
- ``lk.fit`` per minibatch: the digits training rows (898, batch 15, so 60
  minibatches an epoch), 10 epochs, the time of the call over the minibatches.

Alone, for the spread over several runs (each a set of interleaved rounds)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 python benchmarks/loops.py --runs 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (first: it sets XLA's one-thread flags before JAX loads)

import layerkit as lk  # noqa: E402

LR = 1e-6  # the step of run.py: thousands of timed steps never diverge
FIT_EPOCHS = 10


def digits_rows() -> tuple[np.ndarray, np.ndarray]:
    """The 898 training rows of ``examples/digits_binary.py`` (label ``digit < 5``, one scale for all pixels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, _, y_train, _ = train_test_split(digits.data, (digits.target < 5).astype(np.float64),
                                              test_size=899, random_state=12345)
    return (x_train - x_train.mean()) / x_train.std(), y_train


def digits_net(seed: int = 0) -> lk.Net:
    rng = np.random.default_rng(seed)
    return lk.Net([lk.Linear(64, 32, rng=rng), lk.ReLU(), lk.Linear(32, 1, rng=rng), lk.Sigmoid()])


def jax_bce_stepper(net: lk.Net, x: np.ndarray, t: np.ndarray):
    """One ``jax.jit``-compiled step of ``net`` (forward, mean BCE, gradient, SGD), parameters kept."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    eps = 1e-12

    def loss(params, x, t):
        (W1, b1), (W2, b2) = params
        p = jax.nn.sigmoid(jax.nn.relu(x @ W1 + b1) @ W2 + b2)
        q = jnp.clip(p, eps, 1 - eps)
        return -jnp.mean(t * jnp.log(q) + (1 - t) * jnp.log1p(-q))

    def step(params, x, t):
        value, grads = jax.value_and_grad(loss)(params, x, t)
        return [(W - LR * dW, b - LR * db) for (W, b), (dW, db) in zip(params, grads)], value

    compiled = jax.jit(step, donate_argnums=0)
    linears = [layer for layer in net if isinstance(layer, lk.Linear)]
    state = {"params": [(jnp.asarray(l.W.copy()), jnp.asarray(l.b.copy())) for l in linears]}
    xj, tj = jnp.asarray(x), jnp.asarray(t.reshape(-1, 1))

    def run_step():
        state["params"], value = jax.block_until_ready(compiled(state["params"], xj, tj))
    run_step()
    return run_step


class Loops:
    """The three cases and the JAX step, on the same data."""

    def __init__(self) -> None:
        self.x_train, self.y_train = digits_rows()
        self.x, self.t = self.x_train[:15], self.y_train[:15]  # one minibatch, as a loop slices it
        self.net = digits_net()
        self.fit_net = digits_net()
        self.y, _ = self.net.forward(self.x)
        self.jax_step = jax_bce_stepper(self.net, self.x, self.t)
        self.minibatches = FIT_EPOCHS * -(-len(self.x_train) // 15)

    def readme_loop(self) -> None:
        net = self.net
        y, trace = net.forward(self.x)
        loss, dy = lk.binary_cross_entropy(y, self.t)
        net.backward(trace, dy)
        net.step(LR)

    def loss_call(self) -> None:
        lk.binary_cross_entropy(self.y, self.t)

    def fit(self) -> None:
        lk.fit(self.fit_net, self.x_train, self.y_train, epochs=FIT_EPOCHS, lr=LR, batch_size=15, loss="bce",
               seed=0, verbose=False)

    def times(self, best_times: Callable, rounds: int) -> dict[str, float]:
        """Seconds per step, per call and per minibatch, and of the JAX step.

        ``best_times`` is ``timing.best_times``: interleaved rounds, the minimum of each.
        """
        best = best_times({"readme": self.readme_loop, "loss": self.loss_call, "jax": self.jax_step,
                           "fit": self.fit}, rounds)
        best["fit"] /= self.minibatches
        return best


CASES = [("readme", "the README loop as written (forward, binary_cross_entropy, backward, step(lr)), "
                    "digits net n=15 float64", 0.35),
         ("loss", "one binary_cross_entropy call, (15, 1) float64", 0.10),
         ("fit", "lk.fit per minibatch, digits 898 rows, batch 15, float64", 0.35)]


def table_rows(rounds: int) -> list[str]:
    """``run.py``'s rows: each case against the JAX step measured in the same rounds."""
    times = Loops().times(timing.best_times, rounds)
    return [f"| {label} | {timing.us(times[key])} | {timing.us(times['jax'])} (JAX BCE step) | | | "
            f"{timing.ratio(times[key], times['jax'])} (target <= {target:.2f}) | | | |"
            for key, label, target in CASES]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="independent measurements (each its own rounds)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per measurement")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    print(f"# {timing.affinity()}")
    loops = Loops()
    ratios: dict[str, list[float]] = {key: [] for key, _, _ in CASES}
    for index in range(args.runs):
        times = loops.times(timing.best_times, args.rounds)
        print(f"run {index + 1}: JAX step {timing.us(times['jax'])}; " + "; ".join(
            f"{key} {timing.us(times[key])} ({times[key] / times['jax']:.3f})" for key, _, _ in CASES))
        for key in ratios:
            ratios[key].append(times[key] / times["jax"])
    for key, label, target in CASES:
        values = ratios[key]
        print(f"{label}: ratio to JAX min {min(values):.3f}, median {statistics.median(values):.3f}, "
              f"max {max(values):.3f} over {len(values)} runs (target <= {target:.2f})")


if __name__ == "__main__":
    main()
