"""The hidden part of an estimator's net: a ``hidden_layers`` spec with input widths and dtype filled in."""
from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping
from typing import Any

from layerkit import config, registry
from layerkit.blocks import Residual
from layerkit.blocks._branches import Branches
from layerkit.net import Net


def _accepted(name: str) -> set[str] | None:
    """The constructor arguments of the registered layer ``name`` (None: any or unknown)."""
    try:
        signature = inspect.signature(registry.get(name))
    except (registry.RegistryError, TypeError, ValueError):
        return None  # build_layer reports unknown names with the registry's suggestion
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return set(signature.parameters)


def _filled(item: Any, width: int, dtype: str, where: str) -> Any:
    """``item`` with ``n_in`` or ``n`` (the width reaching it) and ``dtype`` set where its layer takes them.

    A bare name (``"batch_norm"``) becomes ``{"type": name, ...}`` when its layer takes one of them.
    """
    if isinstance(item, str):
        accepted = _accepted(item)
        if accepted is None or not accepted & {"n_in", "n", "dtype"}:
            return item
        item = {"type": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a layer name or a dict with a 'type' key, got {item!r}")
    item = dict(item)
    accepted = _accepted(item.get("type")) if isinstance(item.get("type"), str) else None
    for key, value in (("n_in", width), ("n", width), ("dtype", dtype)):
        if key not in item and accepted is not None and key in accepted:
            item[key] = value
    return item


def _nested_key(item: Any) -> str | None:
    """``"layers"`` for a block holding a chain (``residual``, ``net``), ``"branches"`` for a branching one."""
    name = item.get("type") if isinstance(item, Mapping) else item
    try:
        cls = registry.get(name) if isinstance(name, str) else None
    except registry.RegistryError:
        return None  # build_layer reports it
    if cls is None or not isinstance(item, Mapping):
        return None
    if issubclass(cls, Branches) and "branches" in item:
        return "branches"
    return "layers" if "layers" in item and issubclass(cls, (Net, Residual)) else None


def _build_hidden(item: Any, width: int, dtype: str, rng: Any, index: int, where: str) -> tuple[Any, Any, Any]:
    """``(layer, filled item, output width)`` of a ``hidden_layers`` item, blocks' inner items filled too."""
    key = _nested_key(item)
    if key is None:
        item = _filled(item, width, dtype, where)
        layer = config.build_layer(item, index, rng)
        return layer, item, _output_width(layer, width, where)
    chains = [item[key]] if key == "layers" else list(item[key])
    built_chains, filled_chains = [], []
    for b, chain in enumerate(chains):
        inner_width, built, filled = width, [], []
        for i, inner in enumerate(chain):
            part = f"{where}[{key!r}]" + (f"[{b}]" if key == "branches" else "") + f"[{i}]"
            layer, inner, inner_width = _build_hidden(inner, inner_width, dtype, rng, i, part)
            built.append(layer)
            filled.append(inner)
        built_chains.append(built)
        filled_chains.append(filled)
    filled_item = {**item, key: filled_chains[0] if key == "layers" else filled_chains}
    layer = config.build_layer({**item, key: built_chains[0] if key == "layers" else built_chains}, index, rng)
    return layer, filled_item, _output_width(layer, width, where)


def _output_width(layer: Any, width: int, where: str) -> int:
    """The width ``layer`` outputs for ``width`` input features (``ValueError`` naming ``where`` if it cannot say)."""
    out = getattr(layer, "output_features", None)
    out_width = out(width) if out is not None else width
    if not isinstance(out_width, numbers.Integral):
        raise ValueError(f"{where}: cannot tell the output width of {layer!r}; give its layer an "
                         "output_features(n_in) method")
    return out_width


__all__ = ["_build_hidden"]
