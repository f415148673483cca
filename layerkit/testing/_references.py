"""Reference forward passes of the built-in layers, written once for ``autograd.numpy`` and ``jax.numpy``.

``reference_forward(layer, xnp, erf)`` returns ``fn(params, x)`` computing the
layer's output with the array module ``xnp`` (and its ``erf``), so automatic
differentiation of ``fn`` gives the gradients the layer's hand-written
``backward`` must match. They are the textbook formulas, in forms that do not
overflow for any input.
"""
from __future__ import annotations

import math
from typing import Any, Callable

Forward = Callable[[dict, Any], Any]


def _linear(layer: Any, xnp: Any, erf: Any) -> Forward:
    return lambda p, x: x @ p["W"] + p["b"]


def _relu(layer: Any, xnp: Any, erf: Any) -> Forward:
    return lambda p, x: xnp.maximum(x, 0.0)


def _leaky_relu(layer: Any, xnp: Any, erf: Any) -> Forward:
    slope = float(layer.negative_slope)
    return lambda p, x: xnp.where(x > 0, x, slope * x)


def _elu(layer: Any, xnp: Any, erf: Any) -> Forward:
    alpha = float(layer.alpha)
    return lambda p, x: xnp.where(x > 0, x, alpha * (xnp.exp(xnp.minimum(x, 0.0)) - 1.0))


def _sigmoid(layer: Any, xnp: Any, erf: Any) -> Forward:
    return lambda p, x: 0.5 * (xnp.tanh(0.5 * x) + 1.0)


def _tanh(layer: Any, xnp: Any, erf: Any) -> Forward:
    return lambda p, x: xnp.tanh(x)


def _softmax(layer: Any, xnp: Any, erf: Any) -> Forward:
    def forward(p: dict, x: Any) -> Any:
        e = xnp.exp(x - xnp.max(x, axis=1, keepdims=True))
        return e / xnp.sum(e, axis=1, keepdims=True)
    return forward


def _softplus(layer: Any, xnp: Any, erf: Any) -> Forward:
    beta, threshold = float(layer.beta), float(layer.threshold)

    def forward(p: dict, x: Any) -> Any:
        z = beta * x
        stable = (xnp.maximum(z, 0.0) + xnp.log1p(xnp.exp(-xnp.abs(z)))) / beta
        return xnp.where(z > threshold, x, stable)
    return forward


def _gelu(layer: Any, xnp: Any, erf: Any) -> Forward:
    if layer.approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        return lambda p, x: 0.5 * x * (1.0 + xnp.tanh(c * (x + 0.044715 * x ** 3)))
    return lambda p, x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _identity(layer: Any, xnp: Any, erf: Any) -> Forward:
    return lambda p, x: x


def _layer_norm(layer: Any, xnp: Any, erf: Any) -> Forward:
    eps = float(layer.eps)

    def forward(p: dict, x: Any) -> Any:
        centred = x - xnp.mean(x, axis=1, keepdims=True)
        variance = xnp.mean(centred ** 2, axis=1, keepdims=True)
        return centred / xnp.sqrt(variance + eps) * p["gamma"] + p["beta"]
    return forward


def _batch_norm(layer: Any, xnp: Any, erf: Any) -> Forward:
    eps, training = float(layer.eps), bool(layer.training)
    running_mean, running_var = layer.running_mean.copy(), layer.running_var.copy()

    def forward(p: dict, x: Any) -> Any:
        if training:  # the batch's own statistics (biased variance), as the layer normalises in training mode
            centred = x - xnp.mean(x, axis=0, keepdims=True)
            variance = xnp.mean(centred ** 2, axis=0, keepdims=True)
        else:
            centred, variance = x - running_mean, running_var
        return centred / xnp.sqrt(variance + eps) * p["gamma"] + p["beta"]
    return forward


REFERENCES: dict[str, Callable[[Any, Any, Any], Forward]] = {
    "Linear": _linear, "ReLU": _relu, "LeakyReLU": _leaky_relu, "ELU": _elu, "Sigmoid": _sigmoid,
    "Tanh": _tanh, "Softmax": _softmax, "Softplus": _softplus, "GELU": _gelu, "Identity": _identity,
    "LayerNorm": _layer_norm, "BatchNorm1d": _batch_norm,
}


def reference_forward(layer: Any, xnp: Any, erf: Any) -> Forward | None:
    """The reference ``fn(params, x)`` of a built-in layer (parameters by attribute name), or None."""
    cls = type(layer)
    if not cls.__module__.startswith("layerkit.layers."):
        return None
    make = REFERENCES.get(cls.__name__)
    return None if make is None else make(layer, xnp, erf)


def chain(forwards: list[Forward], prefixes: list[str]) -> Forward:
    """One ``fn(params, x)`` running ``forwards`` in order, layer ``i`` reading ``params[prefix_i + name]``."""
    def forward(params: dict, x: Any) -> Any:
        for fn, prefix in zip(forwards, prefixes):
            x = fn({key[len(prefix):]: value for key, value in params.items() if key.startswith(prefix)}, x)
        return x
    return forward
