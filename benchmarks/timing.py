"""What every benchmark script shares: one-thread XLA, interleaved best-of timing, and how figures print.

Import this module before JAX: XLA reads its flags when JAX is first
imported, and this module sets them to one thread, like every other library
in the benchmarks.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                           " intra_op_parallelism_threads=1").strip()


def best_times(fns: dict[str, Callable[[], object]], repeats: int, target: float = 0.02) -> dict[str, float]:
    """Like ``best_time`` for several functions, measured in turns so that load spikes hit all alike."""
    best = {key: float("inf") for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            best[key] = min(best[key], best_time(fn, 1, target))
    return best


def best_time(fn: Callable[[], object], repeats: int, target: float = 0.02) -> float:
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


def one_thread_peers() -> bool:
    """PyTorch and the BLAS libraries on one thread each (JAX is, from this module's import); whether JAX is
    installed."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def affinity() -> str:
    """Which CPUs the process may run on, as a line for the output."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return "affinity unknown"
    return f"pinned to cpu {cpus[0]}" if len(cpus) == 1 else f"not pinned ({len(cpus)} cpus allowed; use taskset -c 0)"


def ratio(a: float, b: float) -> str:
    """``a / b`` with two decimals, or ``"n/a"`` when either was not measured."""
    return f"{a / b:.2f}" if np.isfinite(a) and np.isfinite(b) else "n/a"


def us(t: float) -> str:
    """A time in seconds as microseconds (or milliseconds from 1 ms), ``"n/a"`` when not measured."""
    if not np.isfinite(t):
        return "n/a"
    return f"{t * 1e3:.2f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} us"
