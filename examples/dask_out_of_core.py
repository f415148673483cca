"""Out-of-core training on a Dask cluster
=======================================

Train a NetClassifier on a lazily generated dask array larger than the workers' memory use, block by block.

The rows are drawn by ``dask.array``'s random generator from a fixed seed,
``n_features`` standard normal float32 features, and the label is computed
from them (``x0 * x1 + x2 - 0.5 * x3 > 0``, about half of each class). The
array is never materialised: each block is generated on a worker when
``dask_ml.wrappers.Incremental`` needs it, ``NetClassifier.partial_fit``
trains one epoch on it, and the estimator travels on to the next block. The
blocks go to ``Incremental.partial_fit`` a few at a time (``--blocks-per-call``,
default 4): within one call Dask generates blocks ahead of the training, on
the idle worker, and one call over all the blocks would hold most of the data
in the workers' memory by the end. The cluster is a ``LocalCluster`` of
worker processes (``--workers``, default 2). Printed: the data size, the time, the peak memory (maximum resident set
size) of each worker, the accuracy on a held-out block predicted with
``ParallelPostFit``, and the same rows trained in memory in this process (one
``partial_fit`` on the whole array: the same epoch, minibatch size and
learning rate) for the time and the accuracy. ``--no-in-memory`` skips that
comparison, which holds the whole array in memory.

The default is 2 GB of data (``--gigabytes``, or the environment variable
``LAYERKIT_DASK_EXAMPLE_GB``; the documentation build sets a small size).
Run ``python examples/dask_out_of_core.py --help``.
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from typing import Any

import numpy as np

from layerkit.sklearn import NetClassifier

DEFAULT_GIGABYTES = float(os.environ.get("LAYERKIT_DASK_EXAMPLE_GB", "2"))


def make_data(n_rows: int, n_features: int, chunk_rows: int, seed: int) -> tuple[Any, Any]:
    """Lazy ``(X, y)``: float32 standard normal features and a 0/1 label computed from them, block by block."""
    import dask.array as da

    X = da.random.default_rng(seed).standard_normal((n_rows, n_features), chunks=(chunk_rows, n_features),
                                                     dtype=np.float32)
    y = (X[:, 0] * X[:, 1] + X[:, 2] - 0.5 * X[:, 3] > 0).astype(np.int8)
    return X, y


def plural(count: int, word: str) -> str:
    """``"1 block"``, ``"4 blocks"``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def describe_calls(n_blocks: int, per_call: int) -> str:
    """The ``Incremental.partial_fit`` calls that ``n_blocks`` blocks take, ``per_call`` at most in each."""
    calls = -(-n_blocks // per_call)
    if calls == 1:
        return f"1 Incremental.partial_fit call of {plural(n_blocks, 'block')}"
    last = n_blocks - (calls - 1) * per_call
    return (f"{calls} Incremental.partial_fit calls of {per_call} blocks"
            + ("" if last == per_call else f" (the last of {last})"))


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    """Train out of core, print the figures, and return them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--gigabytes", type=float, default=DEFAULT_GIGABYTES,
                        help="size of the training features in GB (10^9 bytes); default 2 "
                             "(or $LAYERKIT_DASK_EXAMPLE_GB)")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--chunk-mb", type=float, default=32.0, help="size of a block of X in MB")
    parser.add_argument("--hidden", type=int, default=32, help="width of the hidden ReLU layer")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="Adam's learning rate (the default)")
    parser.add_argument("--blocks-per-call", type=int, default=4,
                        help="blocks per Incremental.partial_fit call (bounds what the workers hold)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--no-in-memory", action="store_true", help="skip training the same rows in memory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import dask
        from dask_ml.wrappers import Incremental, ParallelPostFit
        from distributed import Client, LocalCluster
    except ImportError as error:  # pragma: no cover - dask and dask-ml are an optional extra
        raise SystemExit("this example needs Dask and dask-ml: pip install 'layerkit[dask]'") from error

    row_bytes = 4 * args.features
    n_rows = int(np.ceil(args.gigabytes * 1e9 / row_bytes))
    chunk_rows = max(1, min(n_rows, int(args.chunk_mb * 1e6 / row_bytes)))
    X, y = make_data(n_rows, args.features, chunk_rows, args.seed)
    X_test, y_test = make_data(min(chunk_rows, 200_000), args.features, chunk_rows, args.seed + 1)  # held out
    params = dict(hidden_layer_sizes=(args.hidden,), learning_rate_init=args.learning_rate, random_state=args.seed)
    print(f"data: {n_rows:,} rows x {args.features} float32 features = {X.nbytes / 1e9:.3f} GB in "
          f"{plural(X.numblocks[0], 'block')} of {chunk_rows:,} rows ({chunk_rows * row_bytes / 1e6:.1f} MB), never "
          f"materialised; NetClassifier(hidden_layer_sizes=({args.hidden},), learning_rate_init={args.learning_rate:g}), "
          f"batch_size='auto' (200)")
    results: dict = {"gigabytes": X.nbytes / 1e9, "n_rows": n_rows}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        before = client.run(peak_rss_mib)
        start = time.perf_counter()
        model = Incremental(NetClassifier(**params), shuffle_blocks=False)
        step = args.blocks_per_call * chunk_rows
        for first_row in range(0, n_rows, step):  # each call continues model.estimator_
            rows = slice(first_row, first_row + step)
            model.partial_fit(X[rows], y[rows], classes=[0, 1])
        results["out_of_core_s"] = time.perf_counter() - start
        clf = model.estimator_
        predicted = ParallelPostFit(clf).predict(X_test)  # a dask array: each block predicted on a worker
        results["accuracy"] = float((predicted == y_test).mean().compute())
        peaks = client.run(peak_rss_mib)
    results["worker_peak_mib"] = sorted(peaks.values())
    print(f"{args.workers} worker processes (1 thread each): {describe_calls(X.numblocks[0], args.blocks_per_call)}, "
          f"{plural(len(clf.loss_curve_), 'NetClassifier.partial_fit call')}, "
          f"{clf.t_:,} rows in {results['out_of_core_s']:.1f} s (generating the blocks included)")
    for index, (address, peak) in enumerate(sorted(peaks.items())):
        print(f"worker {index}: peak memory {peak:.0f} MiB (at start {before[address]:.0f} MiB)")
    print(f"peak per worker / data size: {max(peaks.values()) * 2**20 / X.nbytes:.3f}")
    print(f"held-out accuracy ({len(y_test):,} rows, ParallelPostFit): {results['accuracy']:.4f}")
    if not args.no_in_memory:
        start = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            X_memory, y_memory = dask.compute(X, y)  # the same rows, generated here
        generated = time.perf_counter() - start
        start = time.perf_counter()
        memory_clf = NetClassifier(**params).partial_fit(X_memory, y_memory, classes=[0, 1])
        results["in_memory_s"] = time.perf_counter() - start
        results["in_memory_accuracy"] = memory_clf.score(X_test.compute(), y_test.compute())
        results["in_memory_peak_mib"] = peak_rss_mib()
        print(f"in memory, this process: the same rows generated in {generated:.1f} s, one partial_fit over "
              f"all of them (one epoch) in {results['in_memory_s']:.1f} s, held-out accuracy "
              f"{results['in_memory_accuracy']:.4f}, peak memory {results['in_memory_peak_mib']:.0f} MiB")
        print(f"out of core / in memory (training + generating): "
              f"{results['out_of_core_s'] / (results['in_memory_s'] + generated):.2f}")
    return results


if __name__ == "__main__":
    main()
