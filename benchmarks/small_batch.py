"""Small batches: a dense layer's products whole against split into pieces, and the training step.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 python benchmarks/small_batch.py [--repeats N]

At 32 rows or fewer, layerkit sums a ``Linear``'s forward product over slabs
of its inputs and computes its weight gradient in row panels, each piece at
most 1e6 multiply-adds (``layerkit/_kernels/blas.pxi``). This script times
``_core.dense_forward`` and ``_core.dense_backward`` (the weight gradient
alone, as for a net's first layer) in pieces (``_core.small_batch_pieces(True)``)
and as one BLAS call each (``small_batch_pieces(False)``), float32, for
several weight shapes and batch sizes, in interleaved rounds, and the
784-256-128-10 float32 training step of ``benchmarks/run.py`` both ways.
Every figure is the minimum over the rounds; the ratio is pieces / whole
(below 1: the pieces are faster). BLAS runs on one thread (threadpoolctl), as
in ``run.py``: by default layerkit splits only then, since a piece runs on
one thread while a whole call may use several.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerkit._backend import core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Case, kernel_line  # noqa: E402

SHAPES = [(784, 256), (256, 128), (512, 512), (1024, 1024), (2048, 256)]
BATCHES = [8, 16, 32]


def timed(fn, pieces: bool, inner: int) -> float:
    """Seconds per call of ``fn`` over ``inner`` calls, with the splitting set to ``pieces``."""
    previous = core.small_batch_pieces(pieces)
    try:
        fn()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - start) / inner
    finally:
        core.small_batch_pieces(previous)


def both_ways(fn, repeats: int, inner: int) -> tuple[float, float]:
    """``(pieces, whole)``: minimum seconds per call of each, measured in alternating rounds."""
    pieces = whole = float("inf")
    for _ in range(repeats):
        pieces = min(pieces, timed(fn, True, inner))
        whole = min(whole, timed(fn, False, inner))
    return pieces, whole


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    threadpool_limits(1)
    print(kernel_line())
    print("| product | rows | weights | pieces | one call | pieces / one call |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in BATCHES:
        for n_in, n_out in SHAPES:
            x = rng.standard_normal((n, n_in), dtype=np.float32)
            W = rng.standard_normal((n_in, n_out), dtype=np.float32)
            b = np.zeros(n_out, np.float32)
            dy = rng.standard_normal((n, n_out), dtype=np.float32)
            out, dW, db = np.empty((n, n_out), np.float32), np.empty_like(W), np.empty_like(b)
            inner = max(3, int(2e7 / (n * n_in * n_out)))
            for name, fn in (("forward", lambda: core.dense_forward(x, W, b, out)),
                             ("weight gradient", lambda: core.dense_backward(x, W, dy, dW, db, None))):
                pieces, whole = both_ways(fn, args.repeats, inner)
                print(f"| {name} | {n} | {n_in} x {n_out} | {pieces * 1e6:.1f} us | {whole * 1e6:.1f} us "
                      f"| {pieces / whole:.2f} |")
    for n in BATCHES:
        case = Case([784, 256, 128, 10], "none", n, np.float32)
        pieces, whole = both_ways(case.layerkit_step, args.repeats, 50)
        print(f"| training step 784-256-128-10 | {n} | | {pieces * 1e6:.1f} us | {whole * 1e6:.1f} us "
              f"| {pieces / whole:.2f} |")


if __name__ == "__main__":
    main()
