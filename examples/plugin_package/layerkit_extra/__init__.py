"""Example plugin package for layerkit: ``Tanh`` and ``Swish``.

layerkit finds these layers through the entry points in this package's
``pyproject.toml`` (group ``layerkit.layers``); nothing in layerkit lists them.
"""
from layerkit_extra.swish import Swish
from layerkit_extra.tanh import Tanh

__all__ = ["Swish", "Tanh"]
