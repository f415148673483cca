"""Layer registry: entry points of the group ``layerkit.layers``, plus run-time registration.

layerkit's own layers are registered in its ``pyproject.toml`` exactly as a
third-party package registers its layers::

    [project.entry-points."layerkit.layers"]
    mish = "my_package.layers:Mish"

Listing names imports no plugin; a plugin module is imported the first time
one of its layers is asked for, and the result is cached. After installing a
plugin into a running process, call ``refresh()``.
"""
from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Callable, TypeVar

from layerkit.layers.base import Layer

GROUP = "layerkit.layers"

L = TypeVar("L", bound=type)


class RegistryError(Exception):
    """Base class of every registry error."""


class UnknownLayerError(RegistryError, ValueError):
    """No installed or registered layer has this name."""


class BrokenPluginError(RegistryError, ImportError):
    """A plugin's entry point could not be imported."""


class NotALayerError(RegistryError, TypeError):
    """An entry point or registration does not name a ``layerkit.Layer`` subclass."""


class DuplicateLayerError(RegistryError, ValueError):
    """Two sources claim one layer name."""


_entry_points: dict[str, list[metadata.EntryPoint]] | None = None
_runtime: dict[str, type] = {}
_loaded: dict[str, type] = {}


def _dist_name(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return dist.name if dist is not None and getattr(dist, "name", None) else "<unknown distribution>"


def _discover() -> dict[str, list[metadata.EntryPoint]]:
    global _entry_points
    if _entry_points is None:
        found: dict[str, list[metadata.EntryPoint]] = {}
        seen = set()
        for entry_point in metadata.entry_points(group=GROUP):
            key = entry_point.name.lower()
            ident = (key, entry_point.value, _dist_name(entry_point))
            if ident in seen:  # one distribution visible twice on sys.path
                continue
            seen.add(ident)
            found.setdefault(key, []).append(entry_point)
        _entry_points = found
    return _entry_points


def refresh() -> None:
    """Forget discovered entry points and loaded classes (run-time registrations stay).

    Call it after installing or removing a plugin in a running process; it also
    clears the import system's directory caches so that a freshly installed
    module is found.
    """
    global _entry_points
    importlib.invalidate_caches()
    _entry_points = None
    _loaded.clear()


def names() -> list[str]:
    """Sorted names of every installed and run-time registered layer (imports no plugin)."""
    return sorted(set(_discover()) | set(_runtime))


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"layer name must be a non-empty string, got {name!r}")
    return name.lower()


def _check_layer_class(obj: Any, source: str) -> type:
    if not (isinstance(obj, type) and issubclass(obj, Layer)):
        what = f"class {obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else f"{type(obj).__name__} {obj!r}"
        raise NotALayerError(f"{source} is not a layerkit.Layer subclass: it is {what}")
    return obj


def get(name: str) -> type:
    """The layer class registered under ``name`` (case-insensitive).

    Raises
    ------
    UnknownLayerError
        No such name; the message suggests the closest names.
    DuplicateLayerError
        Two distributions (or a distribution and a run-time registration) claim it.
    BrokenPluginError
        The plugin's module fails to import.
    NotALayerError
        The entry point names something that is not a ``Layer`` subclass.
    """
    key = _check_name(name)
    entry_points = _discover().get(key, [])
    if key in _runtime:
        if entry_points:
            raise DuplicateLayerError(
                f"layer name {name!r} is registered at run time ({_qualname(_runtime[key])}) and "
                f"installed by distribution {_dist_name(entry_points[0])} ({entry_points[0].value})"
            )
        return _runtime[key]
    if key in _loaded:
        return _loaded[key]
    if not entry_points:
        close = difflib.get_close_matches(key, names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownLayerError(f"unknown layer {name!r}{hint} (installed layers: {', '.join(names()) or 'none'})")
    if len(entry_points) > 1:
        claims = " and ".join(f"distribution {_dist_name(ep)} ({ep.value})" for ep in entry_points)
        raise DuplicateLayerError(f"layer name {name!r} is claimed by {claims}; uninstall one of them")
    entry_point = entry_points[0]
    source = f"layer plugin {entry_point.name!r} ({entry_point.value}) from distribution {_dist_name(entry_point)}"
    try:
        obj = entry_point.load()
    except Exception as error:
        raise BrokenPluginError(f"{source} failed to import: {type(error).__name__}: {error}") from error
    _loaded[key] = _check_layer_class(obj, source)
    return obj


def create(name: str, **kwargs: Any) -> Layer:
    """Build an instance of the layer registered under ``name`` with ``kwargs``."""
    cls = get(name)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise TypeError(f"layer {name!r} ({cls.__name__}) rejected its arguments {kwargs}: {error}") from error


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(name: str, cls: type | None = None, *, replace: bool = False) -> Any:
    """Register a layer class at run time, without packaging (notebooks, tests).

    Use as ``register("square", Square)`` or as a decorator ``@register("square")``.
    Registering a class of the same module and name again (a re-run notebook
    cell) replaces it; claiming a name that another class or an installed
    distribution holds raises ``DuplicateLayerError`` unless ``replace=True``
    (which only overrides run-time registrations, never an installed plugin).
    """
    key = _check_name(name)

    def add(layer_cls: L) -> L:
        _check_layer_class(layer_cls, f"run-time registration {name!r}")
        if key in _discover():
            raise DuplicateLayerError(
                f"layer name {name!r} is already installed by distribution "
                f"{_dist_name(_discover()[key][0])}; choose another name"
            )
        old = _runtime.get(key)
        if old is not None and not replace and _qualname(old) != _qualname(layer_cls):
            raise DuplicateLayerError(
                f"layer name {name!r} is already registered at run time to {_qualname(old)}; "
                "pass replace=True to override"
            )
        _runtime[key] = layer_cls
        return layer_cls

    if cls is None:
        return add
    return add(cls)


def unregister(name: str) -> None:
    """Remove a run-time registration (installed layers cannot be removed this way)."""
    key = _check_name(name)
    if key not in _runtime:
        raise UnknownLayerError(f"no run-time registration named {name!r}")
    del _runtime[key]


def name_of(layer: Any) -> str:
    """The registered name of a layer instance or class.

    Raises
    ------
    UnknownLayerError
        The class is not registered (register it to save or configure it).
    """
    cls = layer if isinstance(layer, type) else type(layer)
    for key, registered in list(_runtime.items()) + list(_loaded.items()):
        if registered is cls:
            return key
    for key, entry_points in _discover().items():
        if key in _loaded or key in _runtime:
            continue
        if any((ep.module, ep.attr) == (cls.__module__, cls.__qualname__) for ep in entry_points):
            try:
                if get(key) is cls:
                    return key
            except RegistryError:
                continue
    raise UnknownLayerError(
        f"layer class {_qualname(cls)} is not registered; add an entry point in group {GROUP!r} "
        "or call layerkit.registry.register(name, cls)"
    )
