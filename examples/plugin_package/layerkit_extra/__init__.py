"""Example plugin package for layerkit: ``Mish`` and ``Swish``.

layerkit finds these layers through the entry points in this package's
``pyproject.toml`` (group ``layerkit.layers``); nothing in layerkit lists them.
"""
from layerkit_extra.mish import Mish
from layerkit_extra.swish import Swish

__all__ = ["Mish", "Swish"]
