"""Layers from configs: build a net's layers from a spec, report a net's spec, read specs from files.

This module knows layers and specs, never ``Net``: ``Net.from_config`` calls
``build_layers`` and ``Net.config`` calls ``net_config``.

A spec is a list of items, one per layer, each either a registered layer name
(``"relu"``) or a dict with the name under ``"type"`` and the constructor's
arguments beside it::

    [{"type": "linear", "n_in": 64, "n_out": 32}, "relu",
     {"type": "linear", "n_in": 32, "n_out": 1}, "sigmoid"]

A file may also hold a table ``{"seed": 0, "layers": [...]}`` (the only form
TOML allows at the top level)::

    seed = 0
    [[layers]]
    type = "linear"
    n_in = 64
    n_out = 32
    [[layers]]
    type = "relu"

Blocks nest specs: ``{"type": "residual", "layers": [...]}``,
``{"type": "concatenate", "branches": [[...], [...]]}``, ``{"type": "net",
"layers": [...]}`` (the block builds its items through ``build_layer``).
"""
from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from layerkit import registry
from layerkit._composite import check_layers_of
from layerkit.layers.base import Layer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

Spec = Sequence["str | dict[str, Any]"]


class ConfigError(ValueError):
    """A spec that cannot be built, or a layer whose configuration cannot be reported."""


def _constructor_signature(cls: type) -> inspect.Signature | None:
    try:
        return inspect.signature(cls)
    except (TypeError, ValueError):  # some extension types hide their signature
        return None


def _accepts(signature: inspect.Signature | None, name: str) -> bool:
    if signature is None:
        return False
    return name in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def _describe(signature: inspect.Signature) -> str:
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in params if p.default is p.empty]
    optional = [p.name for p in params if p.default is not p.empty]
    return f"required: {', '.join(required) or 'none'}; optional: {', '.join(optional) or 'none'}"


def _split_spec(spec: Any, seed: Any) -> tuple[list[Any], Any]:
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"layers", "seed"}
        if "layers" not in spec or unknown:
            raise ConfigError(
                "Net.from_config: a spec table must have the key 'layers' (and optionally 'seed'), "
                f"got keys {sorted(map(str, spec))}"
            )
        if seed is None:
            seed = spec.get("seed")
        spec = spec["layers"]
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise ConfigError(
            f"Net.from_config: spec must be a list of layer names or dicts, got {type(spec).__name__}"
        )
    return list(spec), seed


def _item_type_and_kwargs(item: Any, index: int) -> tuple[str, dict[str, Any]]:
    where = f"Net.from_config: item {index}"
    if isinstance(item, str):
        if not item:
            raise ConfigError(f"{where}: a layer name must be a non-empty str, got ''")
        return item, {}
    if not isinstance(item, Mapping):
        raise ConfigError(
            f"{where} must be a layer name (str) or a dict with a 'type' key, got {type(item).__name__} {item!r}"
        )
    if "type" not in item:
        raise ConfigError(f"{where} ({dict(item)!r}) has no 'type' key naming the layer")
    name = item["type"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'type' must be a layer name (non-empty str), got {name!r}")
    kwargs = {key: value for key, value in item.items() if key != "type"}
    bad_keys = [key for key in kwargs if not isinstance(key, str)]
    if bad_keys:
        raise ConfigError(f"{where} ({name!r}): argument names must be strings, got {bad_keys!r}")
    return name, kwargs


def build_layer(item: Any, index: int = 0, rng: np.random.Generator | None = None) -> Layer:
    """Build one layer from a spec item.

    Parameters
    ----------
    item : str or dict
        A layer name, or ``{"type": name, **constructor_arguments}``.
    index : int
        Position of the item in its spec, for messages.
    rng : numpy.random.Generator, optional
        Passed as ``rng`` to a layer whose constructor accepts one, unless the
        item sets ``rng`` itself.

    Raises
    ------
    ConfigError
        Naming the item's index and what is wrong: wrong item type, unknown
        layer (with the registry's suggestion), missing or unexpected
        argument, or an argument the layer rejects.
    """
    name, kwargs = _item_type_and_kwargs(item, index)
    where = f"Net.from_config: item {index} ({name!r})"
    try:
        cls = registry.get(name)
    except registry.RegistryError as error:
        raise ConfigError(f"{where}: {error}") from error
    signature = _constructor_signature(cls)
    if rng is not None and "rng" not in kwargs and _accepts(signature, "rng"):
        kwargs["rng"] = rng
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as error:
            raise ConfigError(f"{where}: {error} ({_describe(signature)})") from error
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: bad argument: {error}") from error
    except (MemoryError, OverflowError) as error:
        # a width of 2**40 in a hand-written config: the same error a file gives
        shown = {key: value for key, value in kwargs.items() if key != "rng"}
        raise ConfigError(f"{where}: the layer is too large to build with {shown!r} "
                          f"({type(error).__name__}: {error})") from error


def _check_widths(layers: list[Any]) -> None:
    width = None
    for index, layer in enumerate(layers):
        declared = (getattr(layer, "n_in", None), getattr(layer, "n_features", None))
        expected = next((n for n in declared if isinstance(n, int) and not isinstance(n, bool)), None)
        if width is not None and expected is not None and expected != width:
            raise ConfigError(
                f"Net.from_config: item {index} ({layer!r}) expects {expected} input features "
                f"but the layers before it output {width}"
            )
        if width is None:
            width = expected  # the first layer that declares its width: the width from there on
        out = getattr(layer, "output_features", None)
        width = out(width) if out is not None else None


def build_layers(spec: Spec | Mapping[str, Any], *, seed: int | np.random.Generator | None = None) -> list[Layer]:
    """Build the layers of a spec (see the module docstring); ``Net.from_config`` wraps them in a ``Net``.

    Parameters
    ----------
    spec : list of (str or dict), or dict with keys "layers" and optionally "seed"
    seed : None, int or numpy.random.Generator
        Seeds one Generator shared by every layer whose constructor accepts
        ``rng`` (so the same seed gives the same weights, and each layer
        different ones). Overrides the spec's own ``"seed"``.

    Returns
    -------
    list of Layer

    Raises
    ------
    ConfigError
        For a bad spec, naming the item's index and what is wrong.
    """
    items, seed = _split_spec(spec, seed)
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, (int, np.integer, np.random.Generator))):
        raise ConfigError(f"Net.from_config: seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    rng = None if seed is None else np.random.default_rng(seed)
    layers = [build_layer(item, index, rng) for index, item in enumerate(items)]
    _check_widths(layers)
    return layers


def build_net(spec: Spec | Mapping[str, Any], *, seed: int | np.random.Generator | None = None) -> Any:
    """Deprecated: use ``Net.from_config(spec, seed=seed)`` (or ``build_layers`` for the layers alone).

    Kept so code written against earlier releases still runs; it warns with a
    ``FutureWarning`` and returns the same ``Net`` as ``Net.from_config``.
    """
    import warnings

    warnings.warn("layerkit.config.build_net is deprecated: use layerkit.Net.from_config(spec, seed=...) "
                  "or layerkit.config.build_layers(spec, seed=...) for the list of layers",
                  FutureWarning, stacklevel=2)
    # the registry's "net" entry is layerkit.Net: no import of layerkit.net here, so no circle
    return registry.get("net")(build_layers(spec, seed=seed))


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ConfigError(f"{where}: {value!r} cannot be written to a config (not finite)")
        return value
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v, where) for k, v in value.items()}
    raise ConfigError(
        f"{where}: value {value!r} of type {type(value).__name__} cannot be written to a config "
        "(expected str, int, float, bool, None, or lists and dicts of them)"
    )


def layer_config(layer: Any, index: int = 0) -> str | dict[str, Any]:
    """The spec item of one layer: its registered name, or ``{"type": name, **layer.get_config()}``.

    Raises
    ------
    ConfigError
        The layer's class is not registered, or its ``get_config()`` returns
        values that are not JSON-able or do not fit its constructor.
    """
    where = f"Net.config: layer {index} ({layer!r})"
    get_config = getattr(layer, "get_config", None)
    try:
        name = registry.name_of(layer)
    except registry.RegistryError as error:
        # a layer that refuses configs (layerkit.interop's wrappers) says why; registering would not help
        try:
            get_config() if get_config is not None else None
        except (TypeError, ValueError) as refusal:
            raise ConfigError(f"{where}: get_config() failed: {refusal}") from refusal
        raise ConfigError(f"{where}: {error}") from error
    try:
        config = get_config() if get_config is not None else {}
    except (TypeError, ValueError) as error:  # a layer that cannot describe itself says why
        raise ConfigError(f"{where}: get_config() failed: {error}") from error
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: get_config() must return a dict, got {type(config).__name__}")
    config = _jsonable(dict(config), f"{where}: get_config()")
    if "type" in config:
        raise ConfigError(f"{where}: get_config() must not return the reserved key 'type'")
    signature = _constructor_signature(type(layer))
    if signature is not None:
        try:
            signature.bind(**config)
        except TypeError as error:
            raise ConfigError(
                f"{where}: get_config() returned {config} which does not fit the constructor "
                f"{type(layer).__name__}{signature}: {error}"
            ) from error
    return {"type": name, **config} if config else name


def net_config(net: Any) -> list[str | dict[str, Any]]:
    """The spec of a ``Net`` (or a list of layers): ``build_layers(net_config(net))`` rebuilds its architecture."""
    check_layers_of(net)  # a net changed since construction: the constructor's checks (no cycle, no shared layer)
    return [layer_config(layer, index) for index, layer in enumerate(getattr(net, "layers", net))]


def load_spec(path: str | os.PathLike) -> list[Any] | dict[str, Any]:
    """Read a spec from a JSON (``.json``) or TOML (``.toml``) file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list or dict
        What the file holds; pass it to ``Net.from_config``.

    Raises
    ------
    ConfigError
        Unknown extension, or a file that does not parse (with the parser's
        message and position).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"load_spec: {path} must end in .json or .toml, got {suffix or 'no extension'!r}")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"load_spec: {path} is not valid {suffix[1:].upper()}: {error}") from error
