"""Training steps of small convolutional nets: layerkit against PyTorch and JAX's jitted step.

Rows for ``run.py``'s table, and a stand-alone run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 0 python benchmarks/cnn.py

- LeNet-5 on 1x28x28 float32 images at batch 64 and 256: conv 6@5x5 with
  padding 2, ReLU, max-pool 2, conv 16@5x5, ReLU, max-pool 2, flatten,
  400-120-84-10 with ReLU, softmax cross-entropy, SGD. layerkit's step is
  ``net.forward`` with a workspace, ``lk.softmax_cross_entropy``,
  ``net.backward(..., input_grad=False)`` and ``net.step(lr)``; PyTorch's is
  ``nn.Sequential`` + ``CrossEntropyLoss`` + ``optim.SGD``; JAX's one
  ``jax.jit``-compiled function (forward, loss, ``jax.grad`` with respect to
  the parameters, update), synchronised after every step.
- A small ResNet-style net (two basic blocks of 16 channels with
  ``BatchNorm2d`` on 1x28x28, batch 64) against PyTorch.
- ``lk.fit`` on LeNet-5 at batch 64, per minibatch: its whole epochs in the
  compiled core, against the same ``fit`` run minibatch by minibatch in Python
  (a callback with ``on_batch_end`` asks for that) and against the step above.

Each step is also stated as a multiple of its gemm limit: the step's
multiply-adds (forward, weight gradients, input gradients but the first
layer's) at the sgemm rate measured in the same run (a 512x512 float32
product, one thread).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (first: it sets XLA's one-thread flags before JAX loads)

import layerkit as lk  # noqa: E402

LR = 1e-3
SPATIAL = 28


def lenet_layers(dtype=np.float32, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [lk.Conv2d(1, 6, 5, padding=2, rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2),
            lk.Conv2d(6, 16, 5, rng=rng, dtype=dtype), lk.ReLU(), lk.MaxPool2d(2), lk.Flatten(),
            lk.Linear(400, 120, rng=rng, dtype=dtype), lk.ReLU(), lk.Linear(120, 84, rng=rng, dtype=dtype),
            lk.ReLU(), lk.Linear(84, 10, rng=rng, dtype=dtype)]


def step_flops(layers: list, input_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one training step: 2 per multiply-add of the forward products, the
    weight gradients and the input gradients (not the first layer's); blocks (``Residual``) counted by their
    layers."""
    return _flops(list(layers), tuple(input_shape), True)[0]


def _flops(layers: list, shape: tuple[int, ...], first: bool) -> tuple[float, tuple[int, ...], bool]:
    """``(flops, output shape, still first)`` of ``layers`` on an input of ``shape``."""
    total = 0.0
    for layer in layers:
        if isinstance(layer, lk.Residual):  # y = x + f(x): f's products, and x's shape out
            flops, _, first = _flops(list(layer.f), shape, first)
            total += flops
        elif isinstance(layer, (lk.Conv1d, lk.Conv2d)):
            out = layer.output_shape(shape)
            muladds = float(np.prod(out)) * layer.fan_in
            total += 2 * muladds * (2 if first else 3)
            shape, first = out, False
        elif isinstance(layer, lk.Linear):
            muladds = float(shape[0]) * layer.n_in * layer.n_out
            total += 2 * muladds * (2 if first else 3)
            shape, first = (shape[0], layer.n_out), False
        elif isinstance(layer, (lk.MaxPool2d, lk.AvgPool2d)):
            shape = layer.output_shape(shape)
        elif isinstance(layer, lk.Flatten):
            shape = (shape[0], int(np.prod(shape[1:])))
        elif isinstance(layer, lk.GlobalAvgPool2d):
            shape = tuple(shape[:2])
    return total, shape, first


def sgemm_flops_per_second(size: int = 512, repeats: int = 20) -> float:
    """The float32 gemm rate of this thread (best of ``repeats`` products of ``size`` x ``size``)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, a, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / best


class LeNet:
    """One LeNet-5 training problem at batch ``n``, float32, in layerkit, PyTorch and JAX."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.x = rng.standard_normal((n, 1, SPATIAL, SPATIAL)).astype(np.float32)
        self.t = rng.integers(0, 10, n)
        self.net = lk.Net(lenet_layers(np.float32, seed))
        self.workspace = self.net.workspace()
        self.flops = step_flops(list(self.net), self.x.shape)

    def layerkit_step(self) -> None:
        y, trace = self.net.forward(self.x, workspace=self.workspace)
        _, dy = lk.softmax_cross_entropy(y, self.t)
        self.net.backward(trace, dy, input_grad=False)
        self.net.step(LR)

    def torch_step(self) -> None:
        import torch

        if not hasattr(self, "_torch"):
            nn = torch.nn
            model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                                  nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                                  nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
            self._torch = (model, torch.optim.SGD(model.parameters(), lr=LR), nn.CrossEntropyLoss(),
                           torch.from_numpy(self.x), torch.from_numpy(self.t))
        model, opt, loss_fn, x, t = self._torch
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()

    def jax_step(self) -> None:
        if not hasattr(self, "_jax"):
            self._jax = jax_lenet_stepper(self.net, self.x, self.t)
        self._jax()


def jax_lenet_stepper(net: lk.Net, x: np.ndarray, t: np.ndarray):
    """A function running one ``jax.jit``-compiled LeNet-5 step (parameters kept between calls)."""
    import jax
    import jax.numpy as jnp

    conv1, conv2, fc1, fc2, fc3 = (layer for layer in net if layer.param_names)
    params = [(jnp.asarray(layer.W), jnp.asarray(layer.b)) for layer in (conv1, conv2, fc1, fc2, fc3)]

    def conv(h, W, b, padding):
        out = jax.lax.conv_general_dilated(h, W, (1, 1), padding, dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return out + b[None, :, None, None]

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(p, x, t):
        h = pool(jax.nn.relu(conv(x, *p[0], [(2, 2), (2, 2)])))
        h = pool(jax.nn.relu(conv(h, *p[1], [(0, 0), (0, 0)])))
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ p[2][0] + p[2][1])
        h = jax.nn.relu(h @ p[3][0] + p[3][1])
        z = h @ p[4][0] + p[4][1]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), t[:, None], axis=1))

    def step(p, x, t):
        grads = jax.grad(loss)(p, x, t)
        return jax.tree_util.tree_map(lambda w, g: w - LR * g, p, grads)

    compiled = jax.jit(step, donate_argnums=0)
    state = {"params": params}
    xj, tj = jnp.asarray(x), jnp.asarray(t)

    def run() -> None:
        state["params"] = jax.block_until_ready(compiled(state["params"], xj, tj))
    return run


def resnet_torch_and_layerkit(n: int = 64):
    """Layerkit and PyTorch steps of two basic blocks of 16 channels on 1x28x28, and the step's flops."""
    import torch

    nn = torch.nn
    rng = np.random.default_rng(0)

    def block():
        return lk.Residual([lk.Conv2d(16, 16, 3, padding=1, bias=False, rng=rng, dtype=np.float32),
                            lk.BatchNorm2d(16, dtype=np.float32), lk.ReLU(),
                            lk.Conv2d(16, 16, 3, padding=1, bias=False, rng=rng, dtype=np.float32),
                            lk.BatchNorm2d(16, dtype=np.float32)])

    net = lk.Net([lk.Conv2d(1, 16, 3, padding=1, rng=rng, dtype=np.float32), lk.ReLU(), block(), lk.ReLU(),
                  block(), lk.ReLU(), lk.GlobalAvgPool2d(), lk.Linear(16, 10, rng=rng, dtype=np.float32)])
    x = rng.standard_normal((n, 1, SPATIAL, SPATIAL)).astype(np.float32)
    t = rng.integers(0, 10, n)
    workspace = net.workspace()

    def lk_step():
        y, trace = net.forward(x, workspace=workspace)
        net.backward(trace, lk.softmax_cross_entropy(y, t)[1], input_grad=False)
        net.step(LR)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))

        def forward(self, h):
            return h + self.f(h)

    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), Block(), nn.ReLU(), Block(), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), nn.CrossEntropyLoss()
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def pt_step():
        opt.zero_grad()
        loss_fn(model(xt), tt).backward()
        opt.step()
    return lk_step, pt_step, step_flops(list(net), x.shape)


def fit_row(rounds: int, n: int = 64, batches: int = 20) -> str:
    """``lk.fit`` per minibatch on LeNet-5: in the core, minibatch by minibatch in Python, and the bare step."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n * batches, 1, SPATIAL, SPATIAL)).astype(np.float32)
    y = rng.integers(0, 10, n * batches)
    in_core, python, case = lk.Net(lenet_layers()), lk.Net(lenet_layers()), LeNet(n)
    every_minibatch = lk.LambdaCallback(on_batch_end=lambda state: None)

    def fit(net: lk.Net, callbacks: list) -> None:
        lk.fit(net, x, y, epochs=1, batch_size=n, lr=LR, loss="softmax_cross_entropy", verbose=False,
               callbacks=callbacks)

    def steps() -> None:
        for _ in range(batches):
            case.layerkit_step()
    times = timing.best_times({"core": lambda: fit(in_core, []), "python": lambda: fit(python, [every_minibatch]),
                               "step": steps}, rounds)
    per = {key: value / batches for key, value in times.items()}
    return (f"| lk.fit per minibatch, LeNet-5 n={n} float32 (whole epochs in the core) | {timing.us(per['core'])} | "
            f"| | | {per['core'] / per['python']:.2f} x fit minibatch by minibatch in Python "
            f"({timing.us(per['python'])}); {per['core'] / per['step']:.2f} x the step above "
            f"({timing.us(per['step'])}) | | | |")


def table_rows(rounds: int, has_jax: bool) -> list[str]:
    """``run.py``'s rows, all libraries measured in the same interleaved rounds."""
    rate = sgemm_flops_per_second()
    rows = [f"# sgemm (512x512 float32, one thread): {rate / 1e9:.1f} GFLOP/s; the gemm limit of a step is its "
            "multiply-adds at that rate"]
    for n in (64, 256):
        case = LeNet(n)
        fns = {"lk": case.layerkit_step, "pt": case.torch_step}
        if has_jax:
            fns["jax"] = case.jax_step
        times = timing.best_times(fns, rounds)
        limit = case.flops / rate
        t_jax = times.get("jax", float("nan"))
        rows.append(
            f"| LeNet-5 n={n} float32 (gemm limit {timing.us(limit)}) | {timing.us(times['lk'])} "
            f"({times['lk'] / limit:.1f} x limit) | {timing.us(t_jax)} ({t_jax / limit:.1f} x) | "
            f"{timing.us(times['pt'])} ({times['pt'] / limit:.1f} x) | | {timing.ratio(times['lk'], t_jax)} "
            f"(target <= 0.50) | {timing.ratio(times['lk'], times['pt'])} (target <= 0.50) | | |")
    rows.append(fit_row(rounds))
    lk_step, pt_step, flops = resnet_torch_and_layerkit()
    times = timing.best_times({"lk": lk_step, "pt": pt_step}, rounds)
    limit = flops / rate
    rows.append(f"| ResNet-style, 2 basic blocks of 16 channels, n=64 float32 (gemm limit {timing.us(limit)}) | "
                f"{timing.us(times['lk'])} ({times['lk'] / limit:.1f} x limit) | | "
                f"{timing.us(times['pt'])} ({times['pt'] / limit:.1f} x) | | | "
                f"{timing.ratio(times['lk'], times['pt'])} (target <= 0.70) | | |")
    return rows


def main() -> None:
    has_jax = timing.one_thread_peers()
    print(f"# {timing.affinity()}")
    print("| case | layerkit | JAX jit | PyTorch | NumPy | lk/JAX | lk/PyTorch | lk/NumPy | arrays allocated/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table_rows(15, has_jax):
        print(row)


if __name__ == "__main__":
    main()
