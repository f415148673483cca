"""Is the baseline (x86-64 SSE2) clone of the element-wise loops at least as fast as scalar code?

On x86-64 Linux with GCC every element-wise loop of ``layerkit/_kernels/elementwise.h`` is compiled
three times (``target_clones``: AVX-512, AVX2+FMA, baseline) and the loader picks one. A CPU
without AVX2 runs the baseline clone. This script builds two variants of ``layerkit._core`` in a
temporary directory, both with the loops compiled once, at the baseline:

- ``baseline``: the build's own flags (``-O3 -fno-trapping-math``): what the baseline clone is;
- ``scalar``: the same plus ``-fno-tree-vectorize -fno-tree-slp-vectorize``: plain scalar loops.

and times every activation's forward and backward kernel (512 x 512 elements, best of 15 calls,
each variant in its own process, the variants alternated ``--rounds`` times, best per kernel).
It prints nanoseconds per element and the ratio scalar / baseline (above 1: the baseline clone is
faster). It takes a few minutes (two builds of the core).

    python benchmarks/baseline_clone.py            # pin it: taskset -c 0 python benchmarks/baseline_clone.py
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLONES = re.compile(r'#define LK_CLONES __attribute__\(\(noinline, target_clones\([^)]*\)\)\)')

TIMER = r'''
import json, time
import numpy as np
from layerkit._backend import core
import layerkit

codes = {name: getattr(core, "ACT_" + name) for name in
         ("SIGMOID", "RELU", "TANH", "LEAKY_RELU", "ELU", "GELU", "GELU_TANH", "SOFTPLUS", "SOFTMAX")}
params = {"LEAKY_RELU": (0.01, 0.0), "ELU": (1.0, 0.0), "SOFTPLUS": (1.0, 20.0)}
rng = np.random.default_rng(0)
out = {"module": layerkit.__file__}
for dtype in (np.float64, np.float32):
    x = rng.normal(scale=3, size=(512, 512)).astype(dtype)
    dy = rng.normal(size=x.shape).astype(dtype)
    y = np.empty_like(x)
    for name, code in codes.items():
        p0, p1 = params.get(name, (0.0, 0.0))
        for direction in ("fwd", "bwd"):
            if direction == "fwd":
                call = lambda: core.activation_forward(code, x, y, p0, p1)
            else:
                call = lambda: core.activation_backward(code, x, dy, y, p0, p1)
            call()
            best = float("inf")
            for _ in range(15):
                start = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - start)
            out[f"{name} {direction} {np.dtype(dtype).name}"] = best / x.size * 1e9
print(json.dumps(out))
'''


def build(variant: str, directory: Path) -> Path:
    """A copy of the package whose element-wise loops are compiled once, at the baseline."""
    target = directory / variant
    shutil.copytree(ROOT / "layerkit", target / "layerkit",
                    ignore=shutil.ignore_patterns("*.so", "_core.c", "__pycache__"))
    shutil.copy(ROOT / "setup.py", target / "setup.py")
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    header = target / "layerkit" / "_kernels" / "elementwise.h"
    text, count = CLONES.subn("#define LK_CLONES __attribute__((noinline))", header.read_text())
    if count != 1:
        raise SystemExit(f"baseline_clone: the target_clones line of {header.name} was not found")
    header.write_text(text)
    env = dict(os.environ)
    if variant == "scalar":
        env["CFLAGS"] = (env.get("CFLAGS", "") + " -fno-tree-vectorize -fno-tree-slp-vectorize").strip()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=target, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two variants (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerkit-clones-") as tmp:
        paths = {variant: build(variant, Path(tmp)) for variant in ("baseline", "scalar")}
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for variant, path in paths.items():
                env = dict(os.environ, PYTHONPATH=str(path))
                result = json.loads(subprocess.run([sys.executable, "-c", TIMER], env=env, check=True,
                                                   capture_output=True, text=True, cwd=tmp).stdout)
                assert result.pop("module").startswith(str(path)), "timed another build"
                for kernel, ns in result.items():
                    row = best.setdefault(kernel, {})
                    row[variant] = min(row.get(variant, float("inf")), ns)
    print(f"{'kernel':26s} {'baseline ns/elem':>16s} {'scalar ns/elem':>14s} {'scalar / baseline':>17s}")
    for kernel, row in best.items():
        print(f"{kernel:26s} {row['baseline']:16.3f} {row['scalar']:14.3f} {row['scalar'] / row['baseline']:17.2f}")
    slower = [kernel for kernel, row in best.items() if row["baseline"] > row["scalar"]]
    print("baseline clone slower than scalar code for: " + (", ".join(slower) if slower else "none"))


if __name__ == "__main__":
    main()
