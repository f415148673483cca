"""The benchmark's nets: one case (layerkit, its NumPy reference and JAX's jitted step on the same weights).

Shared by ``run.py`` and ``written_loop.py``; imports neither.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402,F401  (first: it sets XLA's one-thread flags before JAX loads)
import numpy_reference  # noqa: E402

import layerkit as lk  # noqa: E402


LR = 1e-6  # small enough that thousands of timed steps never diverge into inf/NaN arithmetic






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
