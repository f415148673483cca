"""The training loop as people write it on big nets, ``fit`` with Adam, and two threads per framework.

Rows for ``run.py``'s table:

- **the loop as written**: ``y, trace = net.forward(x)``,
  ``loss, dy = lk.mean_squared_error(y, t)``, ``net.backward(trace, dy)``,
  ``net.step(lr)``: no workspace, no flags (the input's gradient is not
  computed unless asked). On 784-512-512-10 sigmoid and 784-256-128-10 ReLU,
  float32, each against JAX's ``jax.jit``-compiled step of the same net
  (``cases.Case.jax_step``), measured in the same interleaved rounds;
- **``fit`` with Adam** per minibatch against ``fit`` with plain SGD (a float
  learning rate) on 784-256-128-10 at batch 256, and on the digits net at
  batch 15 against JAX's jitted step (``loops.Loops``);
- **two threads**: each framework in its own process with two BLAS or
  intra-op threads (layerkit: the loop as written, OpenBLAS limited to two
  threads by threadpoolctl; JAX: XLA's CPU client with two intra-op
  threads), the process allowed on the first two CPUs. A row needs two CPUs;
  a run pinned to one (``taskset -c 0``) measures its children on CPUs 0
  and 1 all the same, since each child sets its own affinity.

Alone::

    python benchmarks/written_loop.py              # every row
    python benchmarks/written_loop.py --threads    # the two-thread rows only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import timing  # noqa: E402  (first: it sets XLA's one-thread flags before JAX loads)
import cases  # noqa: E402
WRITTEN_CASES = [([784, 512, 512, 10], "sigmoid", 256, 1.0), ([784, 256, 128, 10], "relu", 256, 1.0),
                 ([784, 256, 128, 10], "relu", 32, 1.0)]
THREAD_CASES = [([784, 512, 512, 10], "sigmoid", 256), ([784, 512, 512, 10], "relu", 1024)]


def written_stepper(case):
    """The loop as written, on ``case``'s net and data (``cases.Case``): no workspace, no flags."""
    import layerkit as lk

    net, x, t, lr = case.net, case.x, case.t, 1e-6

    def step():
        y, trace = net.forward(x)
        loss, dy = lk.mean_squared_error(y, t)
        net.backward(trace, dy)
        net.step(lr)
    return step


def written_rows(rounds: int) -> list[str]:
    """The loop as written against JAX's jitted step, per case."""
    rows = []
    for widths, hidden, n, target in WRITTEN_CASES:
        case = cases.Case(widths, "none", n, np.float32, hidden=hidden)
        times = timing.best_times({"written": written_stepper(case), "bench": case.layerkit_step,
                                "jax": case.jax_step}, rounds)
        rows.append(f"| the loop as written (forward, mean_squared_error, backward, step(lr)), {case.name()} | "
                    f"{timing.us(times['written'])} | {timing.us(times['jax'])} | | | "
                    f"{timing.ratio(times['written'], times['jax'])} (target <= {target:.2f}; with a workspace "
                    f"and input_grad=False {timing.ratio(times['bench'], times['jax'])}) | | | |")
    return rows


def fit_rows(rounds: int) -> list[str]:
    """``fit`` with Adam per minibatch: against ``fit`` with SGD (784-256-128-10 b256) and JAX's step (digits b15)."""
    import loops

    import layerkit as lk

    rng = np.random.default_rng(0)
    rows_n, batch = 2048, 256
    x = rng.normal(size=(rows_n, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=rows_n)

    def fitter(make_update):
        def fit():
            r = np.random.default_rng(1)
            net = lk.Net([lk.Linear(784, 256, rng=r, dtype=np.float32), lk.ReLU(),
                          lk.Linear(256, 128, rng=r, dtype=np.float32), lk.ReLU(),
                          lk.Linear(128, 10, rng=r, dtype=np.float32)])
            lk.fit(net, x, y, epochs=2, lr=make_update(), batch_size=batch, seed=0, verbose=False,
                   loss="softmax_cross_entropy")
        return fit

    times = timing.best_times({"adam": fitter(lambda: lk.optim.Adam(1e-6)), "sgd": fitter(lambda: 1e-6)},
                           rounds)
    minibatches = 2 * rows_n // batch
    out = [f"| lk.fit with Adam per minibatch, 784-256-128-10 n=256 float32 | {timing.us(times['adam'] / minibatches)} "
           f"| | | | {times['adam'] / times['sgd']:.2f} x fit with SGD ({timing.us(times['sgd'] / minibatches)}) "
           f"(target <= 1.05) | | | |"]
    digits = loops.Loops()

    def digits_fit():
        lk.fit(digits.fit_net, digits.x_train, digits.y_train, epochs=loops.FIT_EPOCHS,
               lr=lk.optim.Adam(1e-6), batch_size=15, loss="bce", seed=0, verbose=False)

    times = timing.best_times({"adam": digits_fit, "jax": digits.jax_step}, rounds)
    per = times["adam"] / digits.minibatches
    out.append(f"| lk.fit with Adam per minibatch, digits 898 rows, batch 15, float64 | {timing.us(per)} | "
               f"{timing.us(times['jax'])} (JAX BCE step) | | | {timing.ratio(per, times['jax'])} (target <= 0.30) "
               "| | | |")
    out.append(cast_row(rounds))
    return out


def cast_row(rounds: int) -> str:
    """``fit`` of a float32 net on float64 rows (each minibatch cast as gathered, in the core), against float32
    rows and against the same fit minibatch by minibatch in Python (a callback with ``on_batch_end``)."""
    from sklearn.datasets import load_digits

    import layerkit as lk

    digits = load_digits()
    x64, y = digits.data / 16.0, digits.target
    x32 = x64.astype(np.float32)
    every_minibatch = lk.LambdaCallback(on_batch_end=lambda state: None)

    def fitter(x, callbacks):
        def fit():
            r = np.random.default_rng(0)
            net = lk.Net([lk.Linear(64, 32, rng=r, dtype=np.float32), lk.ReLU(),
                          lk.Linear(32, 10, rng=r, dtype=np.float32)])
            lk.fit(net, x, y, epochs=2, lr=0.1, batch_size=15, seed=0, verbose=False, loss="softmax_cross_entropy",
                   callbacks=callbacks)
        return fit

    times = timing.best_times({"f64": fitter(x64, []), "f32": fitter(x32, []), "python": fitter(x64, [every_minibatch])},
                              rounds)
    minibatches = 2 * -(-len(y) // 15)
    per = {key: value / minibatches for key, value in times.items()}
    return (f"| lk.fit per minibatch, float64 digits (1797 rows) into a float32 64-32-10 net, batch 15 | "
            f"{timing.us(per['f64'])} | | | | {per['f64'] / per['f32']:.2f} x float32 rows "
            f"({timing.us(per['f32'])}); {per['f64'] / per['python']:.2f} x minibatch by minibatch in Python "
            f"({timing.us(per['python'])}) | | | |")


# ---------------------------------------------------------------------- two threads, one process each
def _child(framework: str, widths: list, hidden: str, n: int, rounds: int) -> float:
    """Seconds per step of one framework with two threads (run in a process of its own)."""
    cpus = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and cpus >= 2:
        os.sched_setaffinity(0, {0, 1})
    # (importing timing set XLA's one-thread flags: replaced here, before JAX loads)

    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"
    from threadpoolctl import threadpool_limits

    threadpool_limits(2)
    case = cases.Case(widths, "none", n, np.float32, hidden=hidden)
    step = written_stepper(case) if framework == "layerkit" else case.jax_step
    return timing.best_times({framework: step}, rounds)[framework]


def thread_rows(rounds: int) -> list[str]:
    """The loop as written and JAX's step, each in its own process with two threads."""
    if (os.cpu_count() or 1) < 2:
        return ["# 2 threads: not measured on a machine with one cpu"]
    rows = []
    for widths, hidden, n in THREAD_CASES:
        times = {}
        for framework in ("layerkit", "jax"):
            env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
            env.pop("XLA_FLAGS", None)
            out = subprocess.run([sys.executable, __file__, "--child", framework, json.dumps(widths), hidden,
                                  str(n), str(rounds)], capture_output=True, text=True, env=env, check=True)
            times[framework] = float(out.stdout.strip().splitlines()[-1])
        name = f"{'-'.join(map(str, widths))} {hidden} n={n} float32"
        rows.append(f"| 2 threads, each in its own process: the loop as written, {name} | "
                    f"{timing.us(times['layerkit'])} | {timing.us(times['jax'])} | | | "
                    f"{timing.ratio(times['layerkit'], times['jax'])} (target <= 1.00) | | | |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=5, metavar=("FRAMEWORK", "WIDTHS", "HIDDEN", "N", "ROUNDS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--threads", action="store_true", help="the two-thread rows only")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per row")
    args = parser.parse_args(argv)
    if args.child:
        framework, widths, hidden, n, rounds = args.child
        print(_child(framework, json.loads(widths), hidden, int(n), int(rounds)))
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    print(f"# {timing.affinity()}")
    rows = [] if args.threads else written_rows(args.rounds) + fit_rows(args.rounds)
    for row in rows + thread_rows(args.rounds):
        print(row)


if __name__ == "__main__":
    main()
