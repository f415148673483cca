"""One table of training-step times: layerkit, PyTorch, plain NumPy layer objects, scikit-learn.

Usage::

    pip install -e ".[bench]"
    python benchmarks/run.py            # full run, writes docs/benchmark.png
    python benchmarks/run.py --quick    # under a minute

Every library runs on one thread (threadpoolctl for the BLAS and OpenMP
pools, ``torch.set_num_threads(1)``). A time is the minimum over repeats of
the mean over a block of steps, which is the least noisy estimate on a shared
machine. A step is forward, ``dy = y - t``, backward, SGD update; layerkit's
goes through its public API with a workspace and ``input_grad=False``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_reference  # noqa: E402

import layerkit as lk  # noqa: E402


LR = 1e-6  # small enough that thousands of timed steps never diverge into inf/NaN arithmetic


def best_times(fns: dict, repeats: int, target: float = 0.02) -> dict:
    """Like ``best_time`` for several functions, measured in turns so that load spikes hit all alike."""
    best = {key: float("inf") for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            best[key] = min(best[key], best_time(fn, 1, target))
    return best


def best_time(fn, repeats: int, target: float = 0.02) -> float:
    """Seconds per call: min over ``repeats`` blocks, each ~``target`` seconds long."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(target / once))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def widths_flops(widths: list[int], n: int) -> float:
    """FLOPs of the matrix products of one step, the input layer's dx skipped."""
    total = 0.0
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        total += 2 * n * a * b * (2 if i == 0 else 3)
    return total


class Case:
    def __init__(self, widths, final, n, dtype, seed=0):
        rng = np.random.default_rng(seed)
        self.widths, self.n, self.dtype = widths, n, np.dtype(dtype)
        self.x = rng.normal(size=(n, widths[0])).astype(dtype)
        self.t = rng.random(size=(n, widths[-1])).astype(dtype)
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(lk.Linear(a, b, rng=rng, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(lk.ReLU())
        if final == "sigmoid":
            layers.append(lk.Sigmoid())
        self.net = lk.Net(layers)
        self.ws = self.net.workspace()
        self.dy = np.empty_like(self.t)
        self.ref = numpy_reference.build(widths, final, rng, dtype)
        self.final = final

    def layerkit_step(self):
        net, dy = self.net, self.dy
        y, trace = net.forward(self.x, workspace=self.ws)
        np.subtract(y, self.t, out=dy)
        net.backward(trace, dy, input_grad=False)
        net.step(LR)

    def numpy_step(self):
        y, trace = self.ref.forward(self.x)
        self.ref.backward(trace, y - self.t)
        self.ref.step(LR)

    def torch_step(self):
        import torch
        if not hasattr(self, "_torch"):
            mods = []
            for i, (a, b) in enumerate(zip(self.widths[:-1], self.widths[1:])):
                mods.append(torch.nn.Linear(a, b))
                if i < len(self.widths) - 2:
                    mods.append(torch.nn.ReLU())
            if self.final == "sigmoid":
                mods.append(torch.nn.Sigmoid())
            model = torch.nn.Sequential(*mods).to(torch.float32 if self.dtype == np.float32 else torch.float64)
            self._torch = (model, torch.optim.SGD(model.parameters(), lr=LR),
                           torch.from_numpy(self.x), torch.from_numpy(self.t))
        model, opt, x, t = self._torch
        opt.zero_grad()
        y = model(x)
        y.backward(y.detach() - t)
        opt.step()


def sgemm_rate(case: Case):
    """A function running bare BLAS gemms of the step's shapes (NumPy matmul into preallocated outputs)."""
    n, w = case.n, case.widths
    rng = np.random.default_rng(1)
    ops = []
    for i, (a, b) in enumerate(zip(w[:-1], w[1:])):
        x = rng.random((n, a)).astype(case.dtype); W = rng.random((a, b)).astype(case.dtype)
        dy = rng.random((n, b)).astype(case.dtype)
        ops.append((x, W, np.empty((n, b), case.dtype)))
        ops.append((x.T, dy, np.empty((a, b), case.dtype)))
        if i > 0:
            ops.append((dy, W.T, np.empty((n, a), case.dtype)))

    def run():
        for a, b, out in ops:
            np.matmul(a, b, out=out)
    return run


def allocations_per_step(case: Case) -> int:
    case.layerkit_step()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = [case.layerkit_step() for _ in range(3)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    stats = after.filter_traces([domain]).compare_to(before.filter_traces([domain]), "filename")
    del kept
    return sum(s.count_diff for s in stats if s.count_diff > 0)


def digits_fit_vs_sklearn(epochs: int, repeats: int):
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    digits = load_digits()
    x = (digits.data - digits.data.mean()) / digits.data.std()
    y = (digits.target < 5).astype(np.float64)
    xtr, ytr, xte, yte = x[:898], y[:898], x[898:], y[898:]

    def run_lk():
        rng = np.random.default_rng(0)
        net = lk.Net([lk.Linear(64, 32, rng=rng), lk.ReLU(), lk.Linear(32, 1, rng=rng), lk.Sigmoid()])
        lk.fit(net, xtr, ytr, epochs=epochs, lr=0.15, batch_size=15, seed=0, verbose=False)
        return float(np.mean((net.predict(xte)[:, 0] > 0.5) == yte))

    def run_sk():
        clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", solver="sgd", batch_size=15,
                            learning_rate_init=0.15, momentum=0.0, alpha=0.0, max_iter=epochs,
                            shuffle=True, random_state=0, tol=0.0, n_iter_no_change=epochs + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(xtr, ytr)
        return float(clf.score(xte, yte))
    acc = {"lk": run_lk(), "sk": run_sk()}
    t_lk = best_time(run_lk, repeats, target=0) / epochs
    t_sk = best_time(run_sk, repeats, target=0) / epochs
    return t_lk, t_sk, acc


def threads_speedup(case_args, steps: int) -> float:
    cases = [Case(*case_args, seed=s) for s in range(2)]

    def train(case):
        for _ in range(steps):
            case.layerkit_step()
    for c in cases:
        train(c)
    t0 = time.perf_counter(); train(cases[0]); one = time.perf_counter() - t0
    threads = [threading.Thread(target=train, args=(c,)) for c in cases]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = time.perf_counter() - t0
    return 2 * one / two


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (under a minute)")
    parser.add_argument("--figure", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmark.png")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    threadpool_limits(1)
    repeats = 3 if args.quick else 7
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; Python {platform.python_version()}, "
          f"NumPy {np.__version__}, PyTorch {torch.__version__}, layerkit {lk.__version__}")
    print("# BLAS: " + "; ".join(f"{b['internal_api']} {b['version']} {b.get('architecture')} "
                                   f"threads={b['num_threads']}" for b in blas))
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}")
    cases = [([64, 32, 1], "sigmoid", 1, np.float64), ([64, 32, 1], "sigmoid", 15, np.float64),
             ([64, 32, 1], "sigmoid", 128, np.float64), ([784, 256, 128, 10], "none", 256, np.float32)]
    header = f"| case | layerkit | PyTorch | NumPy | lk/PyTorch | lk/NumPy | share of BLAS rate | arrays allocated/step |"
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for widths, final, n, dtype in cases:
        case = Case(widths, final, n, dtype)
        gemm = sgemm_rate(case)
        times = best_times({"lk": case.layerkit_step, "np": case.numpy_step, "pt": case.torch_step,
                            "gemm": gemm}, repeats)
        t_lk, t_np, t_pt = times["lk"], times["np"], times["pt"]
        rate = widths_flops(widths, n) / times["gemm"]
        share = widths_flops(widths, n) / t_lk / rate
        name = f"{'-'.join(map(str, widths))} n={n} {np.dtype(dtype).name}"
        print(f"| {name} | {t_lk*1e6:.1f} us | {t_pt*1e6:.1f} us | {t_np*1e6:.1f} us | {t_lk/t_pt:.2f} | "
              f"{t_lk/t_np:.2f} | {share:.0%} of {rate/1e9:.0f} GFLOP/s | {allocations_per_step(case)} |")
    epochs = 3 if args.quick else 10
    t_lk, t_sk, acc = digits_fit_vs_sklearn(epochs, 1 if args.quick else 3)
    print(f"| digits fit, per epoch ({epochs} epochs) | {t_lk*1e3:.2f} ms | | | sklearn MLPClassifier "
          f"{t_sk*1e3:.2f} ms: lk/sklearn {t_lk/t_sk:.2f} | accuracy {acc['lk']:.3f} vs {acc['sk']:.3f} | | |")
    speed = threads_speedup(([784, 256, 128, 10], "none", 256, np.float32), 5 if args.quick else 20)
    print(f"| 2 threads, 2 nets, 784-256-128-10 n=256 float32 | throughput x{speed:.2f} of one thread | | | | | | |")
    figure(args.figure, quick=args.quick, repeats=repeats)
    print(f"# figure: {args.figure}")


def figure(path: Path, quick: bool, repeats: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batches = [1, 4, 16, 64, 256, 1024] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    widths = [32, 128, 512, 1024] if quick else [32, 64, 128, 256, 512, 1024]
    series = {"layerkit": "layerkit_step", "PyTorch": "torch_step", "NumPy": "numpy_step"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, method in series.items():
        by_batch = [best_time(getattr(Case([64, 32, 1], "sigmoid", n, np.float64), method), repeats, 0.01) / n
                    for n in batches]
        by_width = [best_time(getattr(Case([w, w, 10], "none", 64, np.float32), method), repeats, 0.01) / 64
                    for w in widths]
        axes[0].loglog(batches, np.array(by_batch) * 1e6, "o-", label=label)
        axes[1].loglog(widths, np.array(by_width) * 1e6, "o-", label=label)
    axes[0].set(xlabel="batch size", ylabel="time per sample (us)", title="digits net 64-32-1, float64")
    axes[1].set(xlabel="layer width w", ylabel="time per sample (us)", title="w-w-10 net, batch 64, float32")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("One training step (forward, backward, SGD), one thread")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from layerkit._atomic import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
