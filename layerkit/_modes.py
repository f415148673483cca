"""``restoring_modes``: ``fit`` puts every layer back in the mode (training or inference) it found."""
from __future__ import annotations

import functools
from typing import Any, Callable

from layerkit.history import History
from layerkit.net import Net


def restoring_modes(train: Callable[..., History]) -> Callable[..., History]:
    """``train(net, ...)``, then every layer's ``training`` attribute back to what it was (even on an error)."""
    @functools.wraps(train)
    def wrapper(net: Any, *args: Any, **kwargs: Any) -> History:
        # the net itself, then every layer depth first (blocks and nested nets included): a block's mode
        # setter sets its children, so restoring parents before children gives each its own mode back
        layers = [net] + [layer for _, layer in net.walk()] if isinstance(net, Net) else []
        found = [(layer, _mode_of(layer)) for layer in layers]
        try:
            return train(net, *args, **kwargs)
        finally:
            for layer, mode in found:
                if mode is _CLASS_MODE:  # the class's default: drop the instance attribute fit set
                    getattr(layer, "__dict__", {}).pop("training", None)
                else:
                    layer.training = mode
    return wrapper


def _mode_of(layer: Any) -> Any:
    """A layer's own ``training`` value, or ``_CLASS_MODE`` when it only inherits its class's default."""
    if isinstance(getattr(type(layer), "training", None), property):  # a block's mode, kept by its setter
        return layer.training
    return layer.__dict__.get("training", _CLASS_MODE) if hasattr(layer, "__dict__") else _CLASS_MODE


_CLASS_MODE = object()  # a layer whose mode was its class's ``training`` default, not an instance attribute
