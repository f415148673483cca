"""What the blocks share: inner nets built from layers or spec items, and their widths."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._composite import Composite
from layerkit.layers.base import Layer
from layerkit.net import Net


def as_net(layers: Any, who: str, rng: Any) -> Net:
    """``layers`` (a ``Net``, or a list of layers and spec items) as a non-empty ``Net``."""
    if isinstance(layers, Net):
        net = layers
    else:
        if isinstance(layers, (Layer, str, bytes, dict)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"{who}: expected a list of layers (or spec items), got {type(layers).__name__} "
                            f"{layers!r}")
        net = Net(list(layers), rng=rng)
    if not net.layers:
        raise ValueError(f"{who}: expected at least one layer, got none")
    return net


def input_width(layers: list[Any]) -> int | None:
    """The input width the first layers declare (``n_in``, ``n_features``, a block's), or ``None``."""
    for layer in layers:
        for name in ("n_in", "n_features"):
            value = getattr(layer, name, None)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                return int(value)
        if isinstance(layer, Composite) or type(layer).output_features is not Layer.output_features:
            return None  # a layer that may change the width and does not say from what
    return None


def net_input_width(net: Net) -> int | None:
    return input_width(net.layers)


def as_batch(y: Any, who: str, part: str) -> np.ndarray:
    """An inner net's output checked to be an array of 2 or more axes (else a ``ValueError`` naming the block's part)."""
    y = np.asarray(y)
    if y.ndim < 2:
        raise ValueError(f"{who}: {part} must output a batch of 2 or more axes (n_samples, n_features, ...), "
                         f"got shape {y.shape}")
    return y
