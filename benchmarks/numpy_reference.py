"""Plain NumPy layer objects: the reference a hand-written solution would be.

Each layer is an object with ``forward(x)``, ``backward(x, dy)`` and
``step(lr)``, computed with NumPy expressions only (``@``, ``np.maximum``, ...),
no compiled code of our own. The benchmark times one training step of a
``NumpyNet`` of these layers next to layerkit's and PyTorch's.
"""
from __future__ import annotations

import numpy as np


class Linear:
    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> None:
        a = np.sqrt(6.0 / (n_in + n_out))
        self.W = rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.W + self.b

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        self.dW = x.T @ dy
        self.db = dy.sum(axis=0)
        return dy @ self.W.T

    def step(self, lr: float) -> None:
        self.W -= lr * self.dW
        self.b -= lr * self.db


class ReLU:
    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (x > 0)

    def step(self, lr: float) -> None:
        pass


class Sigmoid:
    def forward(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(-x))
        return dy * s * (1 - s)

    def step(self, lr: float) -> None:
        pass


class Tanh:
    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - np.tanh(x) ** 2)

    def step(self, lr: float) -> None:
        pass


class GELU:
    """The exact GELU, ``x * Phi(x)`` (``scipy.special.erf`` for the normal CDF)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import erf
        return 0.5 * x * (1 + erf(x / np.sqrt(2)))

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        from scipy.special import erf
        cdf = 0.5 * (1 + erf(x / np.sqrt(2)))
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return dy * (cdf + x * pdf)

    def step(self, lr: float) -> None:
        pass


HIDDEN = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU}


class NumpyNet:
    """The net people write by hand: a list of layers and a trace of their inputs."""

    def __init__(self, layers: list) -> None:
        self.layers = layers

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list]:
        trace = []
        for layer in self.layers:
            trace.append((layer, x))
            x = layer.forward(x)
        return x, trace

    def backward(self, trace: list, dy: np.ndarray) -> np.ndarray:
        for layer, x in reversed(trace):
            dy = layer.backward(x, dy)
        return dy

    def step(self, lr: float) -> None:
        for layer in self.layers:
            layer.step(lr)


def build(widths: list[int], final: str, rng: np.random.Generator, dtype=np.float64,
          hidden: str = "relu") -> NumpyNet:
    """``Linear-act-...-Linear`` (``hidden`` activation: relu, sigmoid, tanh, gelu) with ``final``
    ("sigmoid" or "none") at the end."""
    layers: list = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Linear(n_in, n_out, rng, dtype))
        if i < len(widths) - 2:
            layers.append(HIDDEN[hidden]())
    if final == "sigmoid":
        layers.append(Sigmoid())
    return NumpyNet(layers)
