"""Shared test helpers."""
from __future__ import annotations

import copy

import numpy as np
import pytest


def numerical_gradients(layer, x, dy, eps=1e-6):
    """Central differences of ``sum(layer.forward(x) * dy)`` for x and every parameter (float64)."""
    x = np.array(x, dtype=np.float64)
    layer = copy.deepcopy(layer)

    def objective():
        return float(np.sum(layer.forward(x) * dy))

    def differentiate(array):
        grad = np.zeros_like(array)
        flat, gflat = array.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = objective()
            flat[i] = saved - eps
            minus = objective()
            flat[i] = saved
            gflat[i] = (plus - minus) / (2 * eps)
        return grad

    grads = {"x": differentiate(x)}
    for name in layer.param_names:
        grads[name] = differentiate(getattr(layer, name))
    return grads


def assert_gradients_match(layer, x, dy, rtol=1e-6, atol=1e-8):
    """Analytic gradients of ``layer`` agree with central differences (relative error < rtol)."""
    numeric = numerical_gradients(layer, x, dy)
    analytic = {"x": layer.backward(x, dy)}
    for name in layer.param_names:
        analytic[name] = getattr(layer, "d" + name)
    for name, expected in numeric.items():
        got = analytic[name]
        assert got.shape == expected.shape, name
        scale = np.maximum(np.abs(expected), np.abs(got))
        err = np.abs(got - expected) - atol
        rel = np.max(np.where(scale > 0, err / np.maximum(scale, 1e-300), 0.0), initial=0.0)
        assert rel < rtol, f"{layer!r}: gradient of {name} off by relative {rel:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


pytest_plugins = ["pytester"]
