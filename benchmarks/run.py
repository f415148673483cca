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
synchronised with ``block_until_ready`` after every step.
"""
from __future__ import annotations

import os

# XLA reads its flags when JAX is first imported: one thread, like every other library here
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                           " intra_op_parallelism_threads=1").strip()

import argparse
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


class IdentityLayer(lk.Layer):
    """A custom Python layer that passes its input through (the segments case)."""

    def forward(self, x):
        return x

    def backward(self, x, dy):
        return dy


TORCH_ACTS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU"}


def lk_activation(name: str):
    """The layerkit activation layer ``name``, or ``None`` when this layerkit has none."""
    cls = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU"}[name]
    return getattr(lk, cls, None)


class Case:
    """One net and batch, built alike (same initial weights) in every library."""

    def __init__(self, widths, final, n, dtype, seed=0, hidden="relu", custom=False):
        rng = np.random.default_rng(seed)
        self.widths, self.n, self.dtype, self.hidden = widths, n, np.dtype(dtype), hidden
        self.x = rng.normal(size=(n, widths[0])).astype(dtype)
        self.t = rng.random(size=(n, widths[-1])).astype(dtype)
        act = lk_activation(hidden)
        if act is None:
            raise LookupError(f"this layerkit has no {hidden} layer")
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(lk.Linear(a, b, rng=rng, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(act())
                if custom and i == 0:
                    layers.append(IdentityLayer())
        if final == "sigmoid":
            layers.append(lk.Sigmoid())
        self.net = lk.Net(layers)
        self.ws = self.net.workspace()
        self.dy = np.empty_like(self.t)
        self.ref = numpy_reference.build(widths, final, rng, dtype, hidden=hidden)
        self.final = final

    def name(self) -> str:
        acts = "" if self.hidden == "relu" else f" {self.hidden}"
        final = " sigmoid" if self.final == "sigmoid" else ""
        return f"{'-'.join(map(str, self.widths))}{acts}{final} n={self.n} {self.dtype.name}"

    def params(self):
        """The initial ``(W, b)`` of every Linear, copied (so every library starts alike)."""
        return [(l.W.copy(), l.b.copy()) for l in self.net if isinstance(l, lk.Linear)]

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
                    mods.append(getattr(torch.nn, TORCH_ACTS[self.hidden])())
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

    def jax_step(self):
        if not hasattr(self, "_jax"):
            self._jax = jax_stepper(self)
        self._jax()


def jax_stepper(case: Case):
    """A function running one ``jax.jit``-compiled training step of ``case``'s net (parameters kept)."""
    import jax
    import jax.numpy as jnp
    if case.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    acts = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
            "gelu": lambda z: jax.nn.gelu(z, approximate=False)}
    hidden = acts[case.hidden]
    sigmoid_out = case.final == "sigmoid"

    def forward(params, x):
        for i, (W, b) in enumerate(params):
            x = x @ W + b
            x = hidden(x) if i < len(params) - 1 else (jax.nn.sigmoid(x) if sigmoid_out else x)
        return x

    def step(params, x, t):
        y, pullback = jax.vjp(lambda p: forward(p, x), params)  # no gradient of x is formed
        (grads,) = pullback(y - t)
        return [(W - LR * dW, b - LR * db) for (W, b), (dW, db) in zip(params, grads)]

    compiled = jax.jit(step, donate_argnums=0)
    state = {"params": [(jnp.asarray(W), jnp.asarray(b)) for W, b in case.params()]}
    x, t = jnp.asarray(case.x), jnp.asarray(case.t)

    def run():
        state["params"] = jax.block_until_ready(compiled(state["params"], x, t))
    run()
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


def affinity() -> str:
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return "affinity unknown"
    return f"pinned to cpu {cpus[0]}" if len(cpus) == 1 else f"not pinned ({len(cpus)} cpus allowed; use taskset -c 0)"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if np.isfinite(a) and np.isfinite(b) else "n/a"


def _us(t: float) -> str:
    if not np.isfinite(t):
        return "n/a"
    return f"{t * 1e3:.2f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} us"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a few minutes)")
    parser.add_argument("--figure", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmark.png")
    parser.add_argument("--no-figure", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    threadpool_limits(1)
    try:
        import jax  # noqa: F401
        has_jax = True
    except ImportError:
        has_jax = False
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
        print(f"| {case.name()} | {_us(t_lk)} | {_us(t_jax)} | {_us(t_pt)} | {_us(t_np)} | "
              f"{_ratio(t_lk, t_jax)} | {_ratio(t_lk, t_pt)} | {_ratio(t_lk, t_np)} | "
              f"{allocations_per_step(case)} |")
    fused = Case([64, 32, 1], "sigmoid", 15, np.float64)
    custom = Case([64, 32, 1], "sigmoid", 15, np.float64, custom=True)
    times = best_times({"fused": fused.layerkit_step, "custom": custom.layerkit_step}, repeats * 3)
    print(f"| digits net with a custom identity layer inside, n=15 float64 | {_us(times['custom'])} | | | | "
          f"{times['custom'] / times['fused']:.2f} x the fused net ({_us(times['fused'])}) | | | "
          f"{allocations_per_step(custom)} |")
    for n, width, dtype in ((15, 64, np.float64), (32, 64, np.float64), (256, 256, np.float32)):
        t_res, t_plain = residual_block_times(n, width, dtype, repeats * 3)
        print(f"| residual block of 2 Linear({width}, {width})+ReLU, n={n} {np.dtype(dtype).name} | {_us(t_res)} | "
              f"| | | {t_res / t_plain:.2f} x the same 4 layers without the skip ({_us(t_plain)}), CPU time | | | |")
    epochs = 3 if args.quick else 10
    t_lk, t_sk, acc = digits_fit_vs_sklearn(epochs, 1 if args.quick else 3)
    print(f"| digits fit, per epoch ({epochs} epochs) | {t_lk*1e3:.2f} ms | | | | sklearn MLPClassifier "
          f"{t_sk*1e3:.2f} ms: lk/sklearn {t_lk/t_sk:.2f} | accuracy {acc['lk']:.3f} vs {acc['sk']:.3f} | | |")
    if has_jax:  # the loops people write (issue 19), each against JAX's jitted BCE step of the same net
        import loops
        for row in loops.table_rows(sys.modules[__name__], repeats * 3):
            print(row)
    import cnn  # LeNet-5 (and the ResNet-style net) against PyTorch and JAX, with the gemm limit
    for row in cnn.table_rows(sys.modules[__name__], repeats * 2, has_jax):
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
