"""Blocks: layers made of layers, for models that are not a chain.

- ``Residual(layers)``, registered as ``residual``: ``x + f(x)``, ``f`` the chain of ``layers``;
- ``Concatenate(branches)``, ``concatenate``: the branches' outputs side by side (features);
- ``Add(branches)``, ``add``: the sum of the branches' outputs;
- ``layerkit.Net``, ``net``: a net used as a layer.

Each block holds its inner layers as ``Net`` objects (``Residual.f``,
``Concatenate.branches``), so runs of built-in layers inside a block run as
fused segments, exactly as at the top level. A block's trace entry holds the
inner traces in its ``ctx``. The blocks live in their own package, apart from
``layerkit.layers``, because they are built on ``Net`` while the plain layers
are what ``Net`` is built on.
"""
from layerkit.blocks.add import Add
from layerkit.blocks.concatenate import Concatenate
from layerkit.blocks.residual import Residual

__all__ = ["Residual", "Concatenate", "Add"]
