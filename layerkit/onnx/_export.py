"""``to_onnx``: a layerkit ``Net`` as an ONNX model."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from layerkit._atomic import atomic_path
from layerkit._composite import check_layers_of
from layerkit._validation import input_spec_of
from layerkit.blocks import Add, Concatenate, Residual
from layerkit.net import Net
from layerkit.onnx._builder import Builder
from layerkit.onnx._converters import CONVERTERS

MIN_OPSET = 13
"""Softmax over one axis (``axis=-1``) and today's ``Gemm`` need opset 13."""
DEFAULT_OPSET = min(21, onnx.defs.onnx_opset_version())
"""Recent enough for ``Gelu`` (20), old enough for every onnxruntime of the last two years."""

HOOK = "to_onnx(self, builder, input_name) -> output_name"


def check_opset(opset: Any, who: str = "layerkit.onnx") -> int:
    """``opset`` as an int in ``[MIN_OPSET, onnx's newest]``; ``None`` gives ``DEFAULT_OPSET``."""
    if opset is None:
        return DEFAULT_OPSET
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"{who}: opset must be an int from {MIN_OPSET} to {newest} (the installed onnx's "
                         f"newest), got {opset!r}")
    return int(opset)


def converter_for(layer: Any, index: int) -> Any:
    """The function exporting ``layer``: its own hook, or the built-in converter of its class."""
    hook = getattr(layer, "to_onnx", None)
    if callable(hook):
        return lambda _layer, builder, name: hook(builder, name)
    cls = type(layer)
    if _builtin(layer):
        return CONVERTERS[cls.__name__]
    if cls in BLOCK_CONVERTERS:
        return BLOCK_CONVERTERS[cls]
    raise TypeError(
        f"layerkit.onnx: layer {index} ({layer!r}, class {cls.__module__}.{cls.__qualname__}) cannot be "
        f"exported: it is not a built-in layer and defines no ONNX hook. Give it a method {HOOK} "
        "that adds its nodes through the builder (see layerkit.onnx.Builder)"
    )


def export_layers(layers: Sequence[Any], builder: Builder, input_name: str) -> str:
    """Add every layer's nodes to ``builder``, in order; return the name of the last output."""
    name = input_name
    for index, layer in enumerate(layers):
        out = converter_for(layer, index)(layer, builder, name)
        if not isinstance(out, str) or not out:
            raise TypeError(f"layerkit.onnx: layer {index} ({layer!r}): its {HOOK} returned {out!r}, "
                            "not the name of its output tensor")
        name = out
    return name


# ---------------------------------------------------------------------- blocks: their inner nets' nodes, joined
def _net(layer: Net, b: Builder, x: str) -> str:
    """A net used as a layer: its layers' nodes in line."""
    return export_layers(layer.layers, b, x)


def _residual(layer: Residual, b: Builder, x: str) -> str:
    """``Add(x, f(x))``."""
    return b.add_node("Add", [x, export_layers(layer.f.layers, b, x)], hint="residual")


def _concatenate(layer: Concatenate, b: Builder, x: str) -> str:
    """``Concat(branch outputs, axis=1)``."""
    outputs = [export_layers(branch.layers, b, x) for branch in layer.branches]
    return b.add_node("Concat", outputs, hint="concatenate", axis=1)


def _add(layer: Add, b: Builder, x: str) -> str:
    """``Sum(branch outputs)``."""
    outputs = [export_layers(branch.layers, b, x) for branch in layer.branches]
    return b.add_node("Sum", outputs, hint="add")


BLOCK_CONVERTERS = {Net: _net, Residual: _residual, Concatenate: _concatenate, Add: _add}
"""Block class -> its converter (subclasses, which may compute otherwise, need their own hook)."""


def net_layers(net: Any) -> list[Any]:
    """The layers of a ``Net`` (or of a list of layers)."""
    layers = getattr(net, "layers", net)
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layerkit.onnx: net must be a layerkit Net (or a list of layers), got {type(net).__name__}")
    return list(layers)


def net_dtype(net: Any, layers: Sequence[Any]) -> np.dtype:
    """The net's dtype (that of its first layer declaring one; float64 if none does)."""
    dtype = getattr(net, "dtype", None)
    if dtype is None:
        dtype = next((layer.dtype for layer in layers if getattr(layer, "dtype", None) is not None), np.float64)
    return np.dtype(dtype)


def _builtin(layer: Any) -> str | None:
    cls = type(layer)
    return cls.__name__ if cls.__module__.startswith("layerkit.layers.") and cls.__name__ in CONVERTERS else None


def _width(layers: Sequence[Any], attr: str) -> int | None:
    """The width at the start (``attr="n_in"``) or end (``"n_out"``) of ``layers``, when built-ins tell it.

    Built-in activations keep the width; a ``Linear`` or a normalisation sets
    it; any other layer may change it unannounced, so the width stays symbolic.
    """
    for layer in layers:
        name = _builtin(layer)
        if name == "Linear":
            return int(getattr(layer, attr))
        if name in ("LayerNorm", "BatchNorm1d"):
            return int(layer.n)
        if name is None:
            return None
    return None


def _input_dims(layers: Sequence[Any], input_rank: int | None) -> tuple[int, list[Any]]:
    """The graph input's element type (0: the net's dtype) and symbolic shape.

    ``(batch, n_in)`` for a net of 2-D batches; for a first layer of a fixed
    rank above 2 (``BatchNorm2d``) symbolic axes ``(batch, d1, d2, ...)``;
    int64 indices for ``Embedding``, of ``input_rank`` axes (its lowest rank
    by default).
    """
    spec = input_spec_of(layers)
    low, high = spec.ranks
    if input_rank is not None:
        if (isinstance(input_rank, bool) or not isinstance(input_rank, int) or input_rank < low
                or (high is not None and input_rank > high)):
            raise ValueError(f"layerkit.onnx: input_rank must be an int from {low} to {high if high else 'any'} for "
                             f"{spec.layer!r}, got {input_rank!r}")
        rank = input_rank
    else:
        rank = low if spec.integer or low > 2 else 2
    elem = onnx.TensorProto.INT64 if spec.integer else 0
    if rank == 2 and not spec.integer:
        return elem, ["batch", _width(layers, "n_in") or "n_in"]
    if not spec.integer and rank in (3, 4):  # (batch, channels, *spatial), as a conv or pooling layer takes
        channels = getattr(spec.layer, "in_channels", None)
        if channels is None and _builtin(spec.layer) in ("BatchNorm1d", "BatchNorm2d"):
            channels = spec.layer.n
        return elem, ["batch", "channels" if channels is None else int(channels)] + (
            ["length"] if rank == 3 else ["height", "width"])
    return elem, ["batch"] + [f"d{i}" for i in range(1, rank)]


def _inferred_output(model: onnx.ModelProto, last: str, fallback: list[Any]) -> list[Any]:
    """The output's shape from ONNX shape inference (symbolic where unknown), or ``fallback``."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is a convenience: keep the declared shape
        return fallback
    for info in inferred.graph.value_info:
        if info.name == last and info.type.tensor_type.HasField("shape"):
            return [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or f"o{i}")
                    for i, dim in enumerate(info.type.tensor_type.shape.dim)]
    return fallback


def to_onnx(net: Any, *, opset: int | None = None, path: str | os.PathLike | None = None,
            input_name: str = "x", output_name: str = "y", input_rank: int | None = None) -> onnx.ModelProto:
    """Export a net to ONNX, for onnxruntime and every other ONNX runtime.

    The model computes ``net.predict(x)``: inference mode (dropout is the
    identity, batch norm uses its running statistics).

    Parameters
    ----------
    net : layerkit.Net
        Built-in layers export as they are; any other layer needs a method
        ``to_onnx(self, builder, input_name) -> output_name`` (see ``Builder``).
    opset : int, optional
        Version of the default ONNX domain, from 13; ``DEFAULT_OPSET`` (21)
        when omitted.
    path : str or path-like, optional
        Also write the model there (atomically: a crash leaves any old file whole).
    input_name, output_name : str
        Names of the graph's input and output.
    input_rank : int, optional
        The number of axes of the input, for a net whose first layer takes
        several (``Embedding``: 1 for ``(batch,)``, 2 for ``(batch, L)``;
        ``BatchNorm1d``: 2 for ``(batch, n)``, 3 for ``(batch, n, L)``); by
        default the lowest it takes (2 for ``Linear``).

    Returns
    -------
    onnx.ModelProto
        One input ``input_name`` of shape ``(batch, n_in)`` (``(batch, channels,
        *spatial)`` for a net that starts with a conv or pooling layer) and one output
        ``output_name`` of shape ``(batch, n_out)``, both of the net's dtype
        (float32 or float64); ``batch`` is dynamic. Feed arrays of that dtype.
        A net starting with ``Embedding`` takes int64 indices instead, and one
        starting with a layer of images (``BatchNorm2d``) ``(batch, C, H, W)``.

    Raises
    ------
    TypeError
        For a layer that is neither built in nor defines the hook (the message
        names the layer), or a net of another dtype than float32/float64.
    ValueError
        For an opset out of range.
    """
    opset = check_opset(opset)
    check_layers_of(net)  # a net changed since construction: the constructor's checks (no cycle, no shared layer)
    layers = net_layers(net)
    dtype = net_dtype(net, layers)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"layerkit.onnx: the net's dtype must be float32 or float64, got {dtype}")
    for label, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"layerkit.onnx: {label} must be a non-empty str, got {name!r}")
    if input_name == output_name:
        raise ValueError(f"layerkit.onnx: input_name and output_name must differ, both are {input_name!r}")
    builder = Builder(dtype, opset, reserved=(input_name, output_name))
    elem, input_dims = _input_dims(layers, input_rank)
    builder.batches_2d = not elem and len(input_dims) == 2
    builder.inputs = [helper.make_tensor_value_info(input_name, elem or builder.elem_type, input_dims)]
    last = export_layers(layers, builder, input_name)
    builder.add_node("Identity", [last], outputs=[output_name])
    output_dims = ["batch", _width(layers[::-1], "n_out") or "n_out"]
    imports = [helper.make_opsetid("", opset)]
    from layerkit import __version__

    def make_model(output_dims: list[Any]) -> onnx.ModelProto:
        graph = helper.make_graph(
            builder.nodes, "layerkit_net",
            [helper.make_tensor_value_info(input_name, elem or builder.elem_type, input_dims)],
            [helper.make_tensor_value_info(output_name, builder.elem_type, output_dims)],
            builder.initializers,
        )
        return helper.make_model(graph, opset_imports=imports, producer_name="layerkit",
                                 producer_version=__version__, doc_string=repr(net)[:2000],
                                 ir_version=helper.find_min_ir_version_for(imports))

    model = make_model(output_dims)
    if elem or len(input_dims) != 2:  # another rank or kind of input: the output's rank may differ too
        model = make_model(_inferred_output(model, last, output_dims))
    onnx.checker.check_model(model)
    if path is not None:
        with atomic_path(path) as tmp:
            onnx.save_model(model, str(tmp))
    return model


__all__ = ["to_onnx", "check_opset", "export_layers", "DEFAULT_OPSET", "MIN_OPSET", "HOOK"]
