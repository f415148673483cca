"""Threads training several nets at once: wall time of the same work on 1 and 2 threads.

Four nets (784-256-128-10, float32, Adam-free plain SGD so the whole step is in
the Cython core) are each trained with ``layerkit.fit`` on their own synthetic
data set; the work is spread over a ``ThreadPoolExecutor`` of 1 or 2 threads.
BLAS is limited to one thread (threadpoolctl), so any speed-up comes from the
Python threads running kernels at the same time, which they can only do
because a training step releases the GIL while it computes.

``python benchmarks/threads.py`` (``--quick`` for a smaller run). A time is the
best of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

import layerkit as lk

SPEC = [{"type": "linear", "n_in": 784, "n_out": 256, "dtype": "float32"}, "relu",
        {"type": "linear", "n_in": 256, "n_out": 128, "dtype": "float32"}, "relu",
        {"type": "linear", "n_in": 128, "n_out": 10, "dtype": "float32"}]


def make_jobs(n_nets: int, n_rows: int) -> list[tuple[lk.Net, np.ndarray, np.ndarray]]:
    jobs = []
    for seed in range(n_nets):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n_rows, 784)).astype(np.float32)
        y = rng.integers(0, 10, size=n_rows)
        jobs.append((lk.Net.from_config(SPEC, seed=seed), x, y))
    return jobs


def train(job: tuple[lk.Net, np.ndarray, np.ndarray], epochs: int) -> float:
    net, x, y = job
    history = lk.fit(net, x, y, epochs=epochs, lr=0.01, batch_size=256, loss="softmax_cross_entropy", seed=0,
                     verbose=False)
    return history["train_loss"][-1]


def wall_time(n_threads: int, n_nets: int, n_rows: int, epochs: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        jobs = make_jobs(n_nets, n_rows)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(lambda job: train(job, epochs), jobs))
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    n_rows, epochs = (1024, 2) if args.quick else (4096, 3)
    repeats = args.repeats or (2 if args.quick else 5)
    steps = args.nets * epochs * (n_rows // 256)
    print(f"{args.nets} nets 784-256-128-10 float32, batch 256, {steps} training steps in all; "
          f"BLAS on 1 thread; {os.cpu_count()} CPUs")
    times = {}
    with threadpool_limits(1):
        for n_threads in (1, 2):
            times[n_threads] = wall_time(n_threads, args.nets, n_rows, epochs, repeats)
    print("| threads | wall time | steps/s | speed-up |")
    print("|---|---|---|---|")
    for n_threads, seconds in times.items():
        print(f"| {n_threads} | {seconds:.3f} s | {steps / seconds:.0f} | x{times[1] / seconds:.2f} |")
    return times


if __name__ == "__main__":
    main()
