"""ONNX converters of layerkit's built-in layers, keyed by class name.

Each converter is ``convert(layer, builder, x) -> y``. Where onnxruntime
lacks a float64 kernel (``Erf``, ``Elu``, ``Gelu``, ``Softplus``) or an ONNX op
computes a different formula than the layer (softplus's threshold, ``exp(x)-1``
for ``expm1``), the function is composed from ops with float32 and float64
kernels and written so that it keeps full precision (``_functions``).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from onnx import numpy_helper

from layerkit.onnx import _functions
from layerkit.onnx._builder import Builder

Converter = Callable[[Any, Builder, str], str]

# ---------------------------------------------------------------------- layers
def linear(layer: Any, b: Builder, x: str) -> str:
    """``Gemm(x, W, b)``: ``W`` is stored (n_in, n_out), as the layer holds it.

    ``MatMul`` + ``Add`` over the last axis when the tensors may have other
    ranks than 2 (``Builder.batches_2d`` false).
    """
    W = b.add_initializer(layer.W, "W")
    bias = b.add_initializer(layer.b, "b")
    if not b.batches_2d:
        return b.add_node("Add", [b.add_node("MatMul", [x, W]), bias], hint="linear")
    return b.add_node("Gemm", [x, W, bias], hint="linear")


def sigmoid(layer: Any, b: Builder, x: str) -> str:
    """Composed as the layer computes it (``Builder.sigmoid``): onnxruntime's ``Sigmoid`` loses the
    relative precision of tiny outputs (float32: several times the value below 1e-7; float64: 0 for 2e-17)."""
    return b.sigmoid(x)


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
    negative = b.add_node("Mul", [b.scalar(float(layer.alpha)), b.expm1(x)])
    return b.add_node("Where", [b.add_node("Greater", [x, b.scalar(0.0)]), x, negative], hint="elu")


def softplus(layer: Any, b: Builder, x: str) -> str:
    """PyTorch's thresholded softplus (``Builder.softplus``): ONNX's ``Softplus`` has neither ``beta``
    nor the threshold, nor a float64 kernel in onnxruntime."""
    return b.softplus(x, beta=float(layer.beta), threshold=float(layer.threshold))


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
            one_plus = _functions.one_plus_erf(b, z)
    return b.add_node("Mul", [half_x, one_plus], hint="gelu")


def identity(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Identity", [x])


def dropout(layer: Any, b: Builder, x: str) -> str:
    """Inference mode: dropout is the identity (inverted dropout scales only while training)."""
    return b.add_node("Identity", [x], hint="dropout")


def _rstd(b: Builder, var: str, eps: float) -> str:
    """``1 / sqrt(var + eps)``, as the normalisation layers form it."""
    return b.add_node("Div", [b.scalar(1.0), b.add_node("Sqrt", [b.add_node("Add", [var, b.scalar(float(eps))])])])


def layer_norm(layer: Any, b: Builder, x: str) -> str:
    """Normalise each row over its features: ``(x - mean) * (1 / sqrt(var + eps)) * gamma + beta``.

    Composed (two-pass mean and biased variance), which matches the layer to
    float64 precision; onnxruntime's ``LayerNormalization`` forms
    ``E[x^2] - E[x]^2`` and loses digits when the mean dominates.
    """
    gamma = b.add_initializer(layer.gamma, "gamma")
    beta = b.add_initializer(layer.beta, "beta")
    centred = b.add_node("Sub", [x, b.reduce_mean(x)])
    var = b.reduce_mean(b.add_node("Mul", [centred, centred]))
    normed = b.add_node("Mul", [centred, _rstd(b, var, layer.eps)])
    return b.add_node("Add", [b.add_node("Mul", [normed, gamma]), beta], hint="layer_norm")


def _channel_shape(b: Builder, x: str) -> str:
    """``[-1, 1, ..., 1]`` with ``rank(x) - 2`` ones, computed in the graph: the shape in which a per-channel
    vector broadcasts over ``x`` of shape ``(n, C, ...)`` whatever its rank (the builder does not track ranks)."""
    rank = b.add_node("Shape", [b.add_node("Shape", [x])])
    positions = b.add_node("Sub", [rank, b.add_initializer([2], "two", dtype=np.int64)])
    ones = b.add_node("ConstantOfShape", [positions],
                      value=numpy_helper.from_array(np.ones(1, dtype=np.int64), "one"))
    return b.add_node("Concat", [b.add_initializer([-1], "channels", dtype=np.int64), ones], axis=0)


def batch_norm(layer: Any, b: Builder, x: str, positions: int | None = None) -> str:
    """Inference mode, with the running statistics: ``(x - mean) * (1 / sqrt(var + eps)) * gamma + beta``.

    float32: the ``BatchNormalization`` op (any input ``(n, C, ...)``). float64:
    composed, because the op's ``epsilon`` attribute is a float32 (1e-5
    becomes 1.0000000025e-5), which moves the result by ~1e-10 relative; the
    per-channel vectors then broadcast over an input ``(n, C, ...)`` as
    ``(C, 1, ..., 1)`` with ``positions`` trailing ones. ``positions`` None
    (``BatchNorm1d``, whose input is ``(n, C)`` or ``(n, C, L)``): taken from
    the input's rank, by shape inference, or when even that cannot tell it,
    reshaped in the graph by the rank the input has at run time.
    """
    if b.dtype == np.float32:
        gamma, beta, mean, var = (b.add_initializer(getattr(layer, attr), attr)
                                  for attr in ("gamma", "beta", "running_mean", "running_var"))
        return b.add_node("BatchNormalization", [x, gamma, beta, mean, var], hint="batch_norm",
                          epsilon=float(layer.eps))
    if positions is None:
        rank = 2 if b.batches_2d else b.rank(x)
        positions = None if rank is None else rank - 2
    attrs = ("gamma", "beta", "running_mean", "running_var")
    if positions is None:
        shape = _channel_shape(b, x)
        gamma, beta, mean, var = (b.add_node("Reshape", [b.add_initializer(getattr(layer, attr), attr), shape])
                                  for attr in attrs)
    else:
        gamma, beta, mean, var = (b.add_initializer(np.reshape(getattr(layer, attr), (-1,) + (1,) * positions),
                                                    attr) for attr in attrs)
    normed = b.add_node("Mul", [b.add_node("Sub", [x, mean]), _rstd(b, var, layer.eps)])
    return b.add_node("Add", [b.add_node("Mul", [normed, gamma]), beta], hint="batch_norm")


def batch_norm2d(layer: Any, b: Builder, x: str) -> str:
    """``batch_norm`` over the channels of ``(n, C, H, W)``."""
    return batch_norm(layer, b, x, positions=2)


def embedding(layer: Any, b: Builder, x: str) -> str:
    """``Gather(W, x)`` along the table's rows: the input holds int64 indices."""
    return b.add_node("Gather", [b.add_initializer(layer.W, "W"), x], hint="embedding", axis=0)
# ---------------------------------------------------------- conv and pooling
# float32 uses ONNX's Conv, MaxPool, AveragePool and GlobalAveragePool. onnxruntime has no float64 kernel
# of Conv, AveragePool or GlobalAveragePool, so in float64 they are composed from ops that have one (Pad,
# Slice, MatMul, ReduceMean): a window op is the sum over the kernel's taps of strided slices of the
# padded input, each tap a matrix product over the channels.

def _pads(layer: Any) -> list[int]:
    """ONNX's ``pads``: the padding before every spatial axis, then after every one."""
    before = getattr(layer, "_pad_before", None)
    after = getattr(layer, "_pad_after", None)
    if before is None:  # pooling: the same on both sides
        before = after = tuple(layer.padding)
    return [int(p) for p in before] + [int(p) for p in after]


def _padded(b: Builder, x: str, pads: list[int]) -> str:
    """``x`` with zeros around its spatial axes (``pads`` as ONNX's attribute)."""
    if not any(pads):
        return x
    n = len(pads) // 2
    full = [0, 0] + pads[:n] + [0, 0] + pads[n:]
    return b.add_node("Pad", [x, b.add_initializer(full, "pads", dtype=np.int64)], mode="constant")


def _taps(b: Builder, x: str, layer: Any, pads: list[int], dilation: tuple[int, ...]):
    """``(offset, slice)`` for every kernel tap: the padded input at that tap's strided output positions.

    Slices of ``x`` padded by ``pads``; their spatial sizes are the output's.
    """
    import itertools

    kernel, stride = tuple(layer.kernel_size), tuple(layer.stride)
    n_axes = len(kernel)
    source = _padded(b, x, pads)
    axes = b.add_initializer(list(range(2, 2 + n_axes)), "axes", dtype=np.int64)
    steps = b.add_initializer(list(stride), "steps", dtype=np.int64)
    for offset in itertools.product(*(range(k) for k in kernel)):
        starts = [o * d for o, d in zip(offset, dilation)]
        # an output of o positions reads start + stride * (0 .. o-1): end at size - (span - 1 - start)
        ends = [-(d * (k - 1) - s) if d * (k - 1) - s else np.iinfo(np.int64).max
                for s, d, k in zip(starts, dilation, kernel)]
        piece = b.add_node("Slice", [source, b.add_initializer(starts, "starts", dtype=np.int64),
                                     b.add_initializer(ends, "ends", dtype=np.int64), axes, steps])
        yield offset, piece


def _channels_last(n_axes: int) -> tuple[list[int], list[int]]:
    """Transpose permutations (n, C, *s) -> (n, *s, C) and back."""
    return [0] + list(range(2, 2 + n_axes)) + [1], [0, 1 + n_axes] + list(range(1, 1 + n_axes))


def _composed_conv(layer: Any, b: Builder, x: str) -> str:
    """float64 convolution: sum over taps of ``slice(x) @ W[:, :, tap].T`` per group, channels last."""
    n_axes = len(layer.kernel_size)
    to_last, to_first = _channels_last(n_axes)
    groups, c_in = layer.groups, layer.in_channels // layer.groups
    c_out = layer.out_channels // groups
    W = np.asarray(layer.W)
    outputs = []
    for g in range(groups):
        total = None
        for offset, piece in _taps(b, x, layer, _pads(layer), tuple(layer.dilation)):
            if groups > 1:
                piece = b.add_node("Slice", [piece, b.add_initializer([g * c_in], "starts", dtype=np.int64),
                                             b.add_initializer([(g + 1) * c_in], "ends", dtype=np.int64),
                                             b.add_initializer([1], "axes", dtype=np.int64)])
            kernel = W[(slice(g * c_out, (g + 1) * c_out), slice(None)) + offset].T  # (c_in, c_out)
            term = b.add_node("MatMul", [b.add_node("Transpose", [piece], perm=to_last),
                                         b.add_initializer(np.ascontiguousarray(kernel), "W")])
            total = term if total is None else b.add_node("Add", [total, term])
        outputs.append(total)
    y = outputs[0] if groups == 1 else b.add_node("Concat", outputs, axis=-1)
    if layer.bias:
        y = b.add_node("Add", [y, b.add_initializer(layer.b, "b")])
    return b.add_node("Transpose", [y], perm=to_first, hint="conv")


def conv(layer: Any, b: Builder, x: str) -> str:
    """``Conv`` with torch's weight layout (the same as ONNX's), asymmetric pads for ``"same"``."""
    if b.dtype != np.float32:
        return _composed_conv(layer, b, x)
    inputs = [x, b.add_initializer(layer.W, "W")]
    if layer.bias:
        inputs.append(b.add_initializer(layer.b, "b"))
    return b.add_node("Conv", inputs, hint="conv", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=_pads(layer), dilations=list(layer.dilation),
                      group=int(layer.groups))


def max_pool(layer: Any, b: Builder, x: str) -> str:
    """``MaxPool`` (float32 and float64 kernels in onnxruntime); its padding never wins, as the layer's."""
    return b.add_node("MaxPool", [x], hint="max_pool", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=_pads(layer))


def avg_pool(layer: Any, b: Builder, x: str) -> str:
    """``AveragePool`` with ``count_include_pad=1`` (torch's default); composed in float64."""
    if b.dtype == np.float32:
        return b.add_node("AveragePool", [x], hint="avg_pool", kernel_shape=list(layer.kernel_size),
                          strides=list(layer.stride), pads=_pads(layer), count_include_pad=1)
    total = None
    for _, piece in _taps(b, x, layer, _pads(layer), (1,) * len(layer.kernel_size)):
        total = piece if total is None else b.add_node("Add", [total, piece])
    return b.add_node("Mul", [total, b.scalar(1.0 / float(np.prod(layer.kernel_size)))], hint="avg_pool")


def global_avg_pool(layer: Any, b: Builder, x: str) -> str:
    """``GlobalAveragePool`` then ``Flatten`` (float32); ``ReduceMean`` over the spatial axes in float64."""
    n_axes = 2 if type(layer).__name__.endswith("2d") else 1
    if b.dtype == np.float32:
        return b.add_node("Flatten", [b.add_node("GlobalAveragePool", [x])], hint="global_avg_pool", axis=1)
    return b.reduce_mean(x, list(range(2, 2 + n_axes)), keepdims=False)


def flatten(layer: Any, b: Builder, x: str) -> str:
    return b.add_node("Flatten", [x], hint="flatten", axis=1)


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
    "BatchNorm2d": batch_norm2d,
    "Embedding": embedding,
    "Conv1d": conv,
    "Conv2d": conv,
    "MaxPool1d": max_pool,
    "MaxPool2d": max_pool,
    "AvgPool1d": avg_pool,
    "AvgPool2d": avg_pool,
    "GlobalAvgPool1d": global_avg_pool,
    "GlobalAvgPool2d": global_avg_pool,
    "Flatten": flatten,
}
"""Class name of a layer of ``layerkit.layers`` -> its converter."""

__all__ = ["CONVERTERS", "Converter"]
