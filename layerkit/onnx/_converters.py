"""ONNX converters of layerkit's built-in layers, keyed by class name.

Each converter is ``convert(layer, builder, x) -> y``. Where onnxruntime
lacks a float64 kernel (``Erf``, ``Elu``, ``Gelu``, ``Softplus``) or an ONNX op
computes a different formula than the layer (softplus's threshold, ``exp(x)-1``
for ``expm1``), the function is composed from ops with float32 and float64
kernels and written so that it keeps full precision (``log1p`` and ``expm1``
by Kahan's tricks, ``erf``/``erfc`` by Cephes' rational approximations).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from layerkit.onnx._builder import Builder

Converter = Callable[[Any, Builder, str], str]

# Cephes (public domain, S. L. Moshier, ndtr.c): erf(x) = x T(x^2) / U(x^2) for
# |x| < 1; erfc(x) = exp(-x^2) P(x) / Q(x) for 1 <= x < 8 and exp(-x^2) R(x) / S(x)
# beyond (U, Q and S monic, leading 1 omitted). Relative error ~1e-16.
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)
_ERFC_R = (5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0)
_ERFC_S = (2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0)


# ---------------------------------------------------------------------- helpers
def _where_less(b: Builder, x: str, bound: float, low: str) -> str:
    """``low`` where ``x < bound``, else ``x`` (NaN stays NaN, unlike Max)."""
    return b.add_node("Where", [b.add_node("Less", [x, b.scalar(bound)]), low, x])


def _expm1(b: Builder, x: str) -> str:
    """``exp(x) - 1`` to full relative precision near 0 (Kahan: ``(u - 1) x / log(u)``), for x <= 0."""
    xc = _where_less(b, x, -50.0, b.scalar(-50.0))  # expm1 is -1 to the last bit below -37
    u = b.add_node("Exp", [xc])
    d = b.add_node("Sub", [u, b.scalar(1.0)])
    ratio = b.add_node("Div", [b.add_node("Mul", [d, xc]), b.add_node("Log", [u])])
    return b.add_node("Where", [b.add_node("Equal", [d, b.scalar(0.0)]), xc, ratio])


def _log1p(b: Builder, u: str) -> str:
    """``log(1 + u)`` to full relative precision for small u >= 0 (Kahan: ``log(w) u / (w - 1)``)."""
    w = b.add_node("Add", [u, b.scalar(1.0)])
    d = b.add_node("Sub", [w, b.scalar(1.0)])
    ratio = b.add_node("Div", [b.add_node("Mul", [b.add_node("Log", [w]), u]), d])
    return b.add_node("Where", [b.add_node("Equal", [d, b.scalar(0.0)]), u, ratio])


def _one_plus_erf(b: Builder, z: str) -> str:
    """``1 + erf(z)`` without the cancellation of ``1 + erf`` for negative z (``erfc(-z)``), float64-exact."""
    z2 = b.add_node("Mul", [z, z])
    small = b.add_node("Add", [b.scalar(1.0), b.add_node("Div", [
        b.add_node("Mul", [z, b.polynomial(z2, _ERF_T)]), b.polynomial(z2, _ERF_U, monic=True)])])
    a = b.add_node("Abs", [z])
    # erfc is 0 in float64 beyond 27; clamping keeps the polynomials finite (NaN is not clamped)
    ac = b.add_node("Where", [b.add_node("Greater", [a, b.scalar(30.0)]), b.scalar(30.0), a])
    e = b.add_node("Exp", [b.add_node("Neg", [b.add_node("Mul", [ac, ac])])])
    near = b.add_node("Div", [b.polynomial(ac, _ERFC_P), b.polynomial(ac, _ERFC_Q, monic=True)])
    far = b.add_node("Div", [b.polynomial(ac, _ERFC_R), b.polynomial(ac, _ERFC_S, monic=True)])
    erfc = b.add_node("Mul", [e, b.add_node("Where", [b.add_node("Less", [ac, b.scalar(8.0)]), near, far])])
    large = b.add_node("Where", [b.add_node("Less", [z, b.scalar(0.0)]), erfc,
                                 b.add_node("Sub", [b.scalar(2.0), erfc])])
    return b.add_node("Where", [b.add_node("Less", [a, b.scalar(1.0)]), small, large])


# ---------------------------------------------------------------------- layers
def linear(layer: Any, b: Builder, x: str) -> str:
    """``Gemm(x, W, b)``: ``W`` is stored (n_in, n_out), as the layer holds it."""
    W = b.add_initializer(layer.W, "W")
    bias = b.add_initializer(layer.b, "b")
    return b.add_node("Gemm", [x, W, bias], hint="linear")


def sigmoid(layer: Any, b: Builder, x: str) -> str:
    """As the layer computes it: ``e = exp(-|x|)``, ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` below.

    Composed because onnxruntime's ``Sigmoid`` loses the relative precision of
    tiny outputs (float32: several times the value below 1e-7; float64: 0 for 2e-17).
    """
    e = b.add_node("Exp", [b.add_node("Neg", [b.add_node("Abs", [x])])])
    r = b.add_node("Div", [b.scalar(1.0), b.add_node("Add", [b.scalar(1.0), e])])
    return b.add_node("Where", [b.add_node("GreaterOrEqual", [x, b.scalar(0.0)]), r,
                                b.add_node("Mul", [e, r])], hint="sigmoid")


def relu(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Relu", [x])


def softmax(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Softmax", [x], axis=-1)


def tanh(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Tanh", [x])


def leaky_relu(layer: Any, b: Builder, x: str) -> str:
    """``x`` for x > 0, else ``negative_slope * x`` (onnxruntime's LeakyRelu lacks float64 from opset 16)."""
    scaled = b.add_node("Mul", [x, b.scalar(float(layer.negative_slope))])
    return b.add_node("Where", [b.add_node("Greater", [x, b.scalar(0.0)]), x, scaled], hint="leaky_relu")


def elu(layer: Any, b: Builder, x: str) -> str:
    """``x`` for x > 0, ``alpha * expm1(x)`` otherwise (ONNX's Elu has no float64 kernel in onnxruntime)."""
    negative = b.add_node("Mul", [b.scalar(float(layer.alpha)), _expm1(b, x)])
    return b.add_node("Where", [b.add_node("Greater", [x, b.scalar(0.0)]), x, negative], hint="elu")


def softplus(layer: Any, b: Builder, x: str) -> str:
    """PyTorch's thresholded softplus: ``x`` where ``beta x > threshold``, else ``log1p(exp(beta x)) / beta``.

    ``log1p(exp(z))`` is written ``max(z, 0) + log1p(exp(-|z|))``, which never overflows.
    """
    beta = float(layer.beta)
    z = b.add_node("Mul", [x, b.scalar(beta)])
    tail = _log1p(b, b.add_node("Exp", [b.add_node("Neg", [b.add_node("Abs", [z])])]))
    soft = b.add_node("Add", [b.add_node("Relu", [z]), tail])
    if beta != 1.0:
        soft = b.add_node("Div", [soft, b.scalar(beta)])
    above = b.add_node("Greater", [z, b.scalar(float(layer.threshold))])
    return b.add_node("Where", [above, x, soft], hint="softplus")


def gelu(layer: Any, b: Builder, x: str) -> str:
    """``x/2 (1 + erf(x/sqrt 2))`` or the tanh approximation, as ``torch.nn.GELU``.

    float32 at opset 20 or later: the ``Gelu`` op. Otherwise composed; in
    float64 ``erf`` itself is composed (onnxruntime has no float64 ``Erf``).
    """
    approximate = str(getattr(layer, "approximate", "none"))
    if approximate not in ("none", "tanh"):
        raise ValueError(f"layerkit.onnx: {layer!r}: approximate must be 'none' or 'tanh', got {approximate!r}")
    if b.dtype == np.float32 and b.opset >= 20:
        return b.add_node("Gelu", [x], approximate=approximate)
    half_x = b.add_node("Mul", [x, b.scalar(0.5)])
    if approximate == "tanh":
        x3 = b.add_node("Mul", [b.add_node("Mul", [x, x]), x])
        inner = b.add_node("Mul", [b.scalar(math.sqrt(2.0 / math.pi)),
                                   b.add_node("Add", [x, b.add_node("Mul", [x3, b.scalar(0.044715)])])])
        one_plus = b.add_node("Add", [b.scalar(1.0), b.add_node("Tanh", [inner])])
    else:
        z = b.add_node("Mul", [x, b.scalar(math.sqrt(0.5))])
        if b.dtype == np.float32:
            one_plus = b.add_node("Add", [b.scalar(1.0), b.add_node("Erf", [z])])
        else:
            one_plus = _one_plus_erf(b, z)
    return b.add_node("Mul", [half_x, one_plus], hint="gelu")


def identity(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Identity", [x])


def dropout(layer: Any, b: Builder, x: str) -> str:
    """Inference mode: dropout is the identity (inverted dropout scales only while training)."""
    return b.add_node("Identity", [x], hint="dropout")


def layer_norm(layer: Any, b: Builder, x: str) -> str:
    """Normalise each row over its features: ``(x - mean) / sqrt(var + eps) * gamma + beta``.

    Composed (two-pass mean and biased variance), which matches the layer to
    float64 precision; onnxruntime's ``LayerNormalization`` forms
    ``E[x^2] - E[x]^2`` and loses digits when the mean dominates.
    """
    gamma = b.add_initializer(layer.gamma, "gamma")
    beta = b.add_initializer(layer.beta, "beta")
    centred = b.add_node("Sub", [x, b.reduce_mean(x)])
    var = b.reduce_mean(b.add_node("Mul", [centred, centred]))
    std = b.add_node("Sqrt", [b.add_node("Add", [var, b.scalar(float(layer.eps))])])
    normed = b.add_node("Div", [centred, std])
    return b.add_node("Add", [b.add_node("Mul", [normed, gamma]), beta], hint="layer_norm")


def batch_norm(layer: Any, b: Builder, x: str) -> str:
    """``BatchNormalization`` in inference mode, with the layer's running statistics."""
    names = [b.add_initializer(getattr(layer, attr), attr)
             for attr in ("gamma", "beta", "running_mean", "running_var")]
    return b.add_node("BatchNormalization", [x, *names], hint="batch_norm", epsilon=float(layer.eps))


CONVERTERS: dict[str, Converter] = {
    "Linear": linear,
    "Sigmoid": sigmoid,
    "ReLU": relu,
    "Softmax": softmax,
    "Tanh": tanh,
    "LeakyReLU": leaky_relu,
    "ELU": elu,
    "GELU": gelu,
    "Softplus": softplus,
    "Identity": identity,
    "Dropout": dropout,
    "LayerNorm": layer_norm,
    "BatchNorm1d": batch_norm,
}
"""Class name of a layer of ``layerkit.layers`` -> its converter."""

__all__ = ["CONVERTERS", "Converter"]
