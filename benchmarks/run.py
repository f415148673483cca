"""One table of training-step times: layerkit, JAX (jit), PyTorch, plain NumPy layer objects, scikit-learn.

Usage::

    pip install -e ".[bench]"
    python benchmarks/run.py            # full run, writes docs/benchmark.png
    python benchmarks/run.py --quick    # a few minutes

For figures comparable with the README's, pin to one core and let OpenBLAS
choose its own kernels (a machine that sets ``OPENBLAS_CORETYPE`` or
``OPENBLAS_L2_SIZE`` forces other ones; unset them for this command alone)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 python benchmarks/run.py

Every library runs on one thread (threadpoolctl for the BLAS and OpenMP
pools, ``torch.set_num_threads(1)``, XLA's CPU client without its Eigen
thread pool). A time is the minimum over repeats of the mean over a block of
steps, the libraries measured in interleaved rounds so that load spikes hit
all alike. A step is forward, ``dy = y - t``, backward without the input's
``dx``, and an SGD update: layerkit's goes through its public API with a
workspace and ``input_grad=False``; JAX's is one ``jax.jit``-compiled
function (``jax.vjp`` with respect to the parameters only, then the update),
synchronised with ``block_until_ready`` after every step. The rows of
``loops.py`` and ``written_loop.py`` time the loops as people write them
(no workspace, no flags), ``fit`` with Adam, and two threads per framework,
each framework in its own process.
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
from threadpoolctl import threadpool_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (first: it sets XLA's one-thread flags before JAX loads)
from timing import affinity, best_time, best_times, one_thread_peers  # noqa: E402

import layerkit as lk  # noqa: E402
from cases import LR, Case, lk_activation  # noqa: E402


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


def residual_block_times(n: int, width: int, dtype, repeats: int) -> tuple[float, float]:
    """Seconds per training step of ``Residual([Linear, ReLU, Linear, ReLU])`` and of the same four layers
    without the skip (same weights), both through the public API: forward, backward without the input's
    ``dx``, SGD step.

    Timed in this thread's CPU time (``time.thread_time``), min over ``repeats`` interleaved blocks: the
    ratio of two near-equal times is what counts here, and CPU time leaves out what other processes on
    a shared core take (wall-clock ratios of such a pair swing from 0.6 to 2.5 on a loaded machine).
    """
    x = np.random.default_rng(0).normal(size=(n, width)).astype(dtype)

    def four():
        init = np.random.default_rng(1)
        return [lk.Linear(width, width, rng=init, dtype=dtype), lk.ReLU(),
                lk.Linear(width, width, rng=init, dtype=dtype), lk.ReLU()]

    def stepper(net):
        def step():
            y, trace = net.forward(x)
            net.backward(trace, y, input_grad=False)  # dy = y: the gradient of ||y||^2 / 2
            net.step(LR)
        return step

    steps = {"residual": stepper(lk.Net([lk.Residual(four())])), "plain": stepper(lk.Net(four()))}
    calls = {}
    for key, step in steps.items():  # warm up, and size a block to ~20 ms
        t0 = time.thread_time()
        for _ in range(20):
            step()
        calls[key] = max(1, int(0.02 / max((time.thread_time() - t0) / 20, 1e-7)))
    best = {key: float("inf") for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            t0 = time.thread_time()
            for _ in range(calls[key]):
                step()
            best[key] = min(best[key], (time.thread_time() - t0) / calls[key])
    return best["residual"], best["plain"]


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


def kernel_line() -> str:
    """Which BLAS kernels each library runs (threadpoolctl for NumPy's and SciPy's OpenBLAS)."""
    import torch
    parts = []
    for info in threadpool_info():
        if info["user_api"] != "blas":
            continue
        path = info["filepath"]
        owner = ("NumPy" if "numpy.libs" in path or "/numpy/" in path else
                 "SciPy (layerkit's BLAS, through cython_blas)" if "scipy" in path else path)
        parts.append(f"{owner}: {info['internal_api']} {info['version']} {info.get('architecture')} kernels")
    import re
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    blas = found.group(1) if found else "unknown"
    parts.append(f"PyTorch BLAS {blas}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    try:
        import jax
        import jaxlib
        parts.append(f"JAX {jax.__version__} (XLA:CPU, jaxlib {jaxlib.__version__}, its own gemm code)")
    except ImportError:
        parts.append("JAX not installed")
    return "# kernels: " + "; ".join(parts)








def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a few minutes)")
    parser.add_argument("--figure", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmark.png")
    parser.add_argument("--no-figure", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    import torch
    has_jax = one_thread_peers()
    repeats = 3 if args.quick else 7
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {affinity()}; "
          f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch {torch.__version__}, "
          f"layerkit {lk.__version__}")
    print(kernel_line())
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')} XLA_FLAGS={os.environ.get('XLA_FLAGS')}")
    cases = [([64, 32, 1], "sigmoid", 15, np.float64, "relu"), ([64, 32, 1], "sigmoid", 1, np.float64, "relu"),
             ([784, 256, 128, 10], "none", 256, np.float32, "relu"),
             ([784, 256, 128, 10], "none", 32, np.float32, "relu"),
             ([784, 512, 512, 10], "none", 256, np.float32, "sigmoid"),
             ([784, 512, 512, 10], "none", 256, np.float32, "tanh"),
             ([784, 512, 512, 10], "none", 256, np.float32, "gelu")]
    print("| case | layerkit | JAX jit | PyTorch | NumPy | lk/JAX | lk/PyTorch | lk/NumPy | arrays allocated/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for widths, final, n, dtype, hidden in cases:
        try:
            case = Case(widths, final, n, dtype, hidden=hidden)
        except LookupError as error:
            print(f"| {'-'.join(map(str, widths))} {hidden} n={n} | not available: {error} | | | | | | | |")
            continue
        fns = {"lk": case.layerkit_step, "pt": case.torch_step, "np": case.numpy_step}
        if has_jax:
            fns["jax"] = case.jax_step
        # the microsecond cases get more rounds: they are cheap, and a load spike weighs more on them
        # (and the millisecond ones twice the rounds: a block is then only a few steps)
        times = best_times(fns, repeats * 3 if n * widths[0] * widths[1] < 10**5 else repeats * 2)
        t_lk, t_pt, t_np = times["lk"], times["pt"], times["np"]
        t_jax = times.get("jax", float("nan"))
        print(f"| {case.name()} | {timing.us(t_lk)} | {timing.us(t_jax)} | {timing.us(t_pt)} | {timing.us(t_np)} | "
              f"{timing.ratio(t_lk, t_jax)} | {timing.ratio(t_lk, t_pt)} | {timing.ratio(t_lk, t_np)} | "
              f"{allocations_per_step(case)} |")
    fused = Case([64, 32, 1], "sigmoid", 15, np.float64)
    custom = Case([64, 32, 1], "sigmoid", 15, np.float64, custom=True)
    times = best_times({"fused": fused.layerkit_step, "custom": custom.layerkit_step}, repeats * 3)
    print(f"| digits net with a custom identity layer inside, n=15 float64 | {timing.us(times['custom'])} | | | | "
          f"{times['custom'] / times['fused']:.2f} x the fused net ({timing.us(times['fused'])}) | | | "
          f"{allocations_per_step(custom)} |")
    for n, width, dtype in ((15, 64, np.float64), (32, 64, np.float64), (256, 256, np.float32)):
        t_res, t_plain = residual_block_times(n, width, dtype, repeats * 3)
        print(f"| residual block of 2 Linear({width}, {width})+ReLU, n={n} {np.dtype(dtype).name} | {timing.us(t_res)} | "
              f"| | | {t_res / t_plain:.2f} x the same 4 layers without the skip ({timing.us(t_plain)}), CPU time | | | |")
    epochs = 3 if args.quick else 10
    t_lk, t_sk, acc = digits_fit_vs_sklearn(epochs, 1 if args.quick else 3)
    print(f"| digits fit, per epoch ({epochs} epochs) | {t_lk*1e3:.2f} ms | | | | sklearn MLPClassifier "
          f"{t_sk*1e3:.2f} ms: lk/sklearn {t_lk/t_sk:.2f} | accuracy {acc['lk']:.3f} vs {acc['sk']:.3f} | | |")
    if has_jax:  # the loops people write, each against JAX's jitted step of the same net
        import loops
        import written_loop
        for row in loops.table_rows(repeats * 3):
            print(row)
        for row in (written_loop.written_rows(repeats * 2) + written_loop.fit_rows(repeats * 2)
                    + written_loop.thread_rows(repeats * 2)):
            print(row)
    import cnn  # LeNet-5 (and the ResNet-style net) against PyTorch and JAX, with the gemm limit
    for row in cnn.table_rows(repeats * 2, has_jax):
        print(row)
    if not args.quick and len(os.sched_getaffinity(0)) > 1:
        speed = threads_speedup(([784, 256, 128, 10], "none", 256, np.float32), 20)
        print(f"| 2 threads, 2 nets, 784-256-128-10 n=256 float32 | throughput x{speed:.2f} of one thread "
              "| | | | | | | |")
    elif not args.quick:
        # two threads on one pinned core measure nothing: benchmarks/threads.py runs unpinned
        print("# 2 threads: not measured when pinned to one cpu; run benchmarks/threads.py without taskset")
    if not args.no_figure:
        figure(args.figure, quick=args.quick, repeats=repeats, has_jax=has_jax)
        print(f"# figure: {args.figure}")


def figure(path: Path, quick: bool, repeats: int, has_jax: bool) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batches = [1, 4, 16, 64, 256, 1024] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    widths = [32, 128, 512, 1024] if quick else [32, 64, 128, 256, 512, 1024]
    series = {"layerkit": "layerkit_step", "PyTorch": "torch_step", "NumPy": "numpy_step"}
    if has_jax:
        series["JAX jit"] = "jax_step"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, method in series.items():
        by_batch = [best_time(getattr(Case([64, 32, 1], "sigmoid", n, np.float64), method), repeats, 0.01) / n
                    for n in batches]
        axes[0].loglog(batches, np.array(by_batch) * 1e6, "o-", label=label)
        line = None
        for hidden, style in (("relu", "o-"), ("tanh", "s--")):
            if lk_activation(hidden) is None or label == "NumPy" and hidden == "tanh":
                continue
            by_width = [best_time(getattr(Case([w, w, 10], "none", 64, np.float32, hidden=hidden), method),
                                  repeats, 0.01) / 64 for w in widths]
            kwargs = {} if line is None else {"color": line.get_color()}
            (line,) = axes[1].loglog(widths, np.array(by_width) * 1e6, style, label=f"{label} {hidden}", **kwargs)
    axes[0].set(xlabel="batch size", ylabel="time per sample (us)", title="digits net 64-32-1, float64")
    axes[1].set(xlabel="layer width w", ylabel="time per sample (us)", title="w-w-10 net, batch 64, float32")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("One training step (forward, backward, SGD), one thread")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from layerkit._atomic import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
