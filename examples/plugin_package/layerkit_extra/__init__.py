"""Example plugin package for layerkit: ``Swish`` and ``Mish``.

layerkit finds these layers through the entry points in this package's
``pyproject.toml`` (group ``layerkit.layers``); nothing in layerkit lists them.
Their names must not collide with layerkit's built-in layers (``tanh`` is one).
"""
from layerkit_extra.mish import Mish
from layerkit_extra.swish import Swish

__all__ = ["Mish", "Swish"]
