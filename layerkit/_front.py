"""A conv net's layers before its dense chain, described for the in-core epoch.

``fit`` runs whole epochs in the compiled core (``layerkit._epoch``) for a
net that is one fused dense chain, and for a conv net whose layers before its
chain are built-in convolutions (``Conv1d``, ``Conv2d``), poolings (max,
average, global average), element-wise activations and ``Flatten``: the
net's *front*. ``Front.stages`` describes the front for minibatches of a given
number of rows in the form ``_core.train_epoch(front=...)`` takes (see
``_kernels/front.pxi``): each layer's geometry as the layer computes it, and
the workspace's arrays the layer writes into in ``fit``'s Python loop, so
both paths share their buffers and compute the same numbers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._fusable import chain_activation
from layerkit._plan import SegmentedPlan, _relu_then_max_pool, halving
from layerkit.layers.conv import Conv1d, Conv2d
from layerkit.layers.flatten import Flatten
from layerkit.layers.pooling import AvgPool1d, AvgPool2d, GlobalAvgPool1d, GlobalAvgPool2d, MaxPool1d, MaxPool2d

__all__ = ["Front"]

_CONVOLUTIONS = (Conv1d, Conv2d)
_POOLINGS = {MaxPool1d: core.FRONT_STAGE_MAX_POOL, MaxPool2d: core.FRONT_STAGE_MAX_POOL,
             AvgPool1d: core.FRONT_STAGE_AVG_POOL, AvgPool2d: core.FRONT_STAGE_AVG_POOL}
_GLOBAL_POOLINGS = (GlobalAvgPool1d, GlobalAvgPool2d)


def _takes(layer: Any) -> bool:
    """``layer`` is one the front runs: a built-in layer of the kinds above (exactly: no subclass)."""
    kind = type(layer)
    if kind in _CONVOLUTIONS or kind in _POOLINGS or kind in _GLOBAL_POOLINGS or kind is Flatten:
        return True
    act = chain_activation(layer)
    return act is not None and act[0] != core.ACT_SOFTMAX


def _updatable(param: Any, dtype: np.dtype) -> bool:
    """A parameter the core updates in place as ``Layer.step`` does (by BLAS axpy)."""
    return (type(param) is np.ndarray and param.dtype == dtype and param.flags.c_contiguous
            and param.flags.writeable)


class Front:
    """The layers of a ``SegmentedPlan`` before its one dense chain, when the core can run them.

    Build it with ``Front.of(plan)``, which answers ``None`` for any other net.

    Attributes
    ----------
    layers : list
        The front's layers, in order.
    chain : DenseChain
        The chain after them (the plan's last segment).
    start : int
        The index of the chain's first layer in the net.
    dtype : numpy.dtype
        The chain's dtype (every convolution's too).
    """

    def __init__(self, plan: SegmentedPlan) -> None:
        segment = plan.segments[-1]
        self.layers = plan.layers[:segment.start]
        self.chain_layers = segment.layers
        self.chain, self.start = segment.chain, segment.start
        self.dtype = np.dtype(segment.linears[0].dtype)
        self.n_in = segment.linears[0].n_in
        self.width = segment.linears[-1].n_out  # the chain's output (activations keep the width)

    @classmethod
    def of(cls, plan: Any) -> "Front | None":
        """The front of ``plan``, or ``None`` when ``plan`` is not such a conv net."""
        if type(plan) is not SegmentedPlan or len(plan.segments) < 2:
            return None
        segment = plan.segments[-1]
        if segment.chain is None or segment.stop != len(plan.layers):
            return None
        front = plan.layers[:segment.start]
        dtype = np.dtype(segment.linears[0].dtype)
        if not all(map(_takes, front)) or any(type(layer) in _CONVOLUTIONS and np.dtype(layer.dtype) != dtype
                                              for layer in front):
            return None
        return cls(plan)

    def stages(self, sample_shape: tuple[int, ...], rows: int, workspace: Any) -> list | None:
        """The stages for minibatches of ``rows`` samples of ``sample_shape``, or ``None`` (the Python loop runs).

        ``None`` when an input does not fit its layer (the Python loop then
        raises the layer's message) or a parameter is not an array the core
        updates in place.
        """
        dtype, stages = self.dtype, []
        shape = (rows,) + tuple(sample_shape)
        try:
            for index, layer in enumerate(self.layers):
                kind, scratch = type(layer), None
                if kind is Flatten:
                    if len(shape) < 2:
                        return None
                    stages.append((core.FRONT_STAGE_FLATTEN, None, None, None, None))
                    shape = (rows, math.prod(shape[1:]))
                    continue
                if kind in _CONVOLUTIONS:
                    if len(shape) != 2 + layer._n_axes or shape[1] != layer.in_channels:
                        return None
                    stage, info = core.FRONT_STAGE_CONV, self._convolution(layer, shape)
                    if info is None:
                        return None
                    out = layer.output_shape(shape)
                    scratch = workspace._array(layer, "col", (core.conv_col_size(info[0]),), dtype)
                elif kind in _POOLINGS or kind in _GLOBAL_POOLINGS:
                    if len(shape) != 2 + layer._n_axes:
                        return None
                    if kind in _POOLINGS:
                        stage, out = _POOLINGS[kind], layer.output_shape(shape)
                    else:
                        stage, out = core.FRONT_STAGE_AVG_POOL, shape[:2]
                    # one backward pass with the ReLU before it, as the plan runs that pair
                    after_relu = index > 0 and _relu_then_max_pool(self.layers[index - 1], layer) and halving(layer)
                    info = (layer._geometry_for(shape), after_relu)
                else:
                    code, (p0, p1) = chain_activation(layer)
                    stage, info, out = core.FRONT_STAGE_ACT, (code, p0, p1), shape
                y = workspace._array(layer, "y", tuple(out), dtype)
                dx = workspace._array(layer, "dx", shape, dtype) if index > 0 else None
                stages.append((stage, info, y, dx, scratch))
                shape = tuple(out)
        except ValueError:  # a window or kernel larger than its input: the layer says so in the Python loop
            return None
        if len(shape) != 2 or shape[1] != self.n_in:
            return None
        return stages

    def _convolution(self, layer: Any, shape: tuple[int, ...]) -> tuple | None:
        """``(geometry, W, b, dW, db)`` of a convolution stage; its ``dW``/``db`` arrays, as ``backward`` keeps them."""
        W, b = layer.W, layer.b
        if not _updatable(W, self.dtype) or W.shape != layer.weight_shape:
            return None
        if layer.bias and not (_updatable(b, self.dtype) and b.shape == (layer.out_channels,)):
            return None
        geometry = layer._geometry_for(shape)
        layer.dW = layer._gradient_buffer("dW", layer.weight_shape)
        db = None
        if layer.bias:
            db = layer.db = layer._gradient_buffer("db", (layer.out_channels,))
        return geometry, W, b if layer.bias else None, layer.dW, db

    def convolutions(self) -> list[tuple[int, Any]]:
        """``(index in the net, layer)`` of every convolution of the front, in order."""
        return [(index, layer) for index, layer in enumerate(self.layers) if type(layer) in _CONVOLUTIONS]
