"""Activation kernel throughput (ns per element) for layerkit, NumPy and PyTorch, and a training-step timing.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 python benchmarks/activations.py [--step] [--repeats N]

Prints one table: forward and backward ns/element of every element-wise
activation on a float32 and a float64 array of 256 x 512 (the hidden layer
of the issue-12 net at batch 256), for layerkit's kernel, the same formula in
NumPy, and ``torch.nn`` on one thread (torch's backward column is an autograd
forward-and-backward minus the forward alone, so it is rough and can even come
out negative on a noisy machine). With ``--step`` it also times one
training step of a float32 784-512-512-10 net at batch 256 (forward,
``dy = y - t``, backward without the input gradient, ``net.step(lr)``) with
sigmoid, tanh and GELU hidden layers. Every figure is the minimum over the
repeats (the machine's other core is shared).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import layerkit as lk
from layerkit._backend import core


def best(fn, repeats: int, inner: int = 5) -> float:
    """Minimum seconds per call over ``repeats`` rounds of ``inner`` calls."""
    fn()
    out = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        out = min(out, (time.perf_counter() - start) / inner)
    return out


def numpy_pair(name: str):
    from scipy.special import erf

    def sig(x):
        return np.exp(-np.logaddexp(0, -x))

    table = {
        "sigmoid": (sig, lambda x, g: g * sig(x) * (1 - sig(x))),
        "relu": (lambda x: np.maximum(x, 0), lambda x, g: g * (x > 0)),
        "tanh": (np.tanh, lambda x, g: g * (1 - np.tanh(x) ** 2)),
        "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x, g: np.where(x > 0, g, 0.01 * g)),
        "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda x, g: np.where(x > 0, g, g * np.exp(x))),
        "gelu": (lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
                 lambda x, g: g * (0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi))),
        "softplus": (lambda x: np.logaddexp(0, x), lambda x, g: g * sig(x)),
    }
    return table.get(name)


def layers():
    return {
        "sigmoid": (lk.Sigmoid(), "Sigmoid", {}), "relu": (lk.ReLU(), "ReLU", {}), "tanh": (lk.Tanh(), "Tanh", {}),
        "leaky_relu": (lk.LeakyReLU(), "LeakyReLU", {}), "elu": (lk.ELU(), "ELU", {}),
        "gelu": (lk.GELU(), "GELU", {}), "gelu_tanh": (lk.GELU(approximate="tanh"), "GELU", {"approximate": "tanh"}),
        "softplus": (lk.Softplus(), "Softplus", {}), "softmax": (lk.Softmax(), "Softmax", {"dim": 1}),
    }


def kernel_table(repeats: int) -> None:
    import torch

    torch.set_num_threads(1)
    shape = (256, 512)
    n = shape[0] * shape[1]
    print(f"ns per element, {shape[0]}x{shape[1]} array, min of {repeats} repeats; SIMD clones: {core.SIMD_CLONES}")
    print(f"{'activation':<11}{'dtype':<9}{'lk fwd':>8}{'lk bwd':>8}{'np fwd':>8}{'np bwd':>8}{'torch fwd':>10}{'torch bwd':>10}")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.normal(scale=3, size=shape).astype(dtype)
        g = rng.normal(size=shape).astype(dtype)
        out = np.empty_like(x)
        tx = torch.tensor(x)
        tg = torch.tensor(g)
        for name, (layer, tname, tkw) in layers().items():
            p0, p1 = layer._act_params()
            code = layer._act_code
            f = best(lambda: core.activation_forward(code, x, out, p0, p1), repeats) / n * 1e9
            b = best(lambda: core.activation_backward(code, x, g, out, p0, p1), repeats) / n * 1e9
            pair = numpy_pair(name)
            nf = nb = float("nan")
            if pair is not None:
                with np.errstate(all="ignore"):
                    nf = best(lambda: pair[0](x), repeats) / n * 1e9
                    nb = best(lambda: pair[1](x, g), repeats) / n * 1e9
            module = getattr(torch.nn, tname)(**tkw)
            tf = best(lambda: module(tx), repeats) / n * 1e9
            txg = tx.clone().requires_grad_(True)

            def torch_backward():
                y = module(txg)
                (grad,) = torch.autograd.grad(y, txg, tg)
                return grad

            tb = best(torch_backward, repeats) / n * 1e9 - tf  # autograd backward minus the forward it reruns
            print(f"{name:<11}{np.dtype(dtype).name:<9}{f:8.2f}{b:8.2f}{nf:8.2f}{nb:8.2f}{tf:10.2f}{tb:10.2f}")


def step_table(repeats: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 784)).astype(np.float32)
    t = rng.normal(size=(256, 10)).astype(np.float32)
    print(f"\none training step, float32 784-512-512-10, batch 256 (min of {repeats} repeats)")
    for name, act in (("sigmoid", lk.Sigmoid), ("tanh", getattr(lk, "Tanh", None)),
                      ("gelu", getattr(lk, "GELU", None))):
        if act is None:
            print(f"{name:<8} (not in this build)")
            continue
        net = lk.Net([lk.Linear(784, 512, rng=0, dtype="float32"), act(), lk.Linear(512, 512, rng=1, dtype="float32"),
                      act(), lk.Linear(512, 10, rng=2, dtype="float32")])
        ws = net.workspace()
        dy = np.empty_like(t)

        def step():
            y, trace = net.forward(x, workspace=ws)
            np.subtract(y, t, out=dy)
            net.backward(trace, dy, input_grad=False)
            net.step(1e-4)

        print(f"{name:<8}{best(step, repeats, inner=3) * 1e3:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--step", action="store_true", help="also time the 784-512-512-10 training step")
    parser.add_argument("--step-only", action="store_true", help="only the training step")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(f"BLAS: {pool.get('internal_api')} {pool.get('version')} kernel={pool.get('architecture')} "
                  f"threads={pool.get('num_threads')}")
    except ImportError:
        pass
    if not args.step_only:
        kernel_table(args.repeats)
    if args.step or args.step_only:
        step_table(args.repeats)


if __name__ == "__main__":
    main()
