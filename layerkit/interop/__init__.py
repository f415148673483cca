"""Layers from other frameworks: ``TorchLayer`` (a ``torch.nn.Module``) and ``JaxLayer`` (a JAX function).

Importing ``layerkit`` or ``layerkit.interop`` imports neither PyTorch nor
JAX: each class imports its framework on first use and says which extra
installs it when it is missing (``pip install "layerkit[torch]"``,
``pip install "layerkit[jax]"``).

>>> from layerkit.interop import TorchLayer      # doctest: +SKIP
>>> layer = TorchLayer(torch.nn.Linear(4, 3))    # doctest: +SKIP
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from layerkit.interop.jax_layer import JaxLayer
    from layerkit.interop.torch_layer import TorchLayer

_HOMES = {
    "TorchLayer": "layerkit.interop.torch_layer",
    "JaxLayer": "layerkit.interop.jax_layer",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'layerkit.interop' has no attribute {name!r}")
    value = getattr(import_module(home), name)  # ImportError naming the extra when the framework is missing
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
