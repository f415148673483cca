"""Save and load nets: one NumPy ``.npz`` file with the config, the parameters and a format version.

File layout (every entry a NumPy array, nothing pickled)::

    format            "layerkit.net"                      0-d str
    format_version    1                                   0-d int64
    config            JSON of net.config()                0-d str
    layers/<i>/<p>    parameter p of layer i              e.g. layers/0/W, layers/0/b
    layers/<i>/<s>    state s of layer i (``state_names``)  e.g. layers/1/running_mean
    optimizer_config  JSON of optimizer.state_dict()["config"]      (only with an optimizer)
    optimizer/<key>   optimizer.state_dict()["arrays"][key]         (only with an optimizer)

Writes go to a temporary file beside the target, renamed over it at the end,
so a crash never leaves a broken file where a good one was. Reading never
unpickles (``allow_pickle=False``) and checks everything (format, version,
config, every array's presence, shape and dtype) before a net is returned.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from layerkit._atomic import atomic_path
from layerkit.config import ConfigError, build_layers, net_config
from layerkit import registry
from layerkit.registry import UnknownLayerError

FORMAT = "layerkit.net"
FORMAT_VERSION = 1
OPTIMIZER_PREFIX = "optimizer/"


class ModelFileError(ValueError):
    """A file that cannot be loaded as a layerkit net; the message says which file and why."""


# ---------------------------------------------------------------------- save
def _storable(value: Any, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{where}: only numeric arrays can be saved (no pickling), got dtype {array.dtype}")
    return array


def _optimizer_entries(optimizer: Any) -> dict[str, np.ndarray]:
    who = f"save: optimizer {type(optimizer).__name__}"
    state_dict = getattr(optimizer, "state_dict", None)
    if state_dict is None:
        raise TypeError(f"{who} has no state_dict() method")
    state = state_dict()
    if not isinstance(state, Mapping) or set(state) != {"config", "arrays"} or not isinstance(state["arrays"], Mapping):
        raise TypeError(f"{who}.state_dict() must return {{'config': dict, 'arrays': {{str: array}}}}, got {state!r}")
    try:
        config = json.dumps(state["config"], allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{who}.state_dict()['config'] is not JSON-able: {error}") from error
    entries = {"optimizer_config": np.array(config)}
    for key, value in state["arrays"].items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{who}.state_dict()['arrays'] keys must be non-empty strings, got {key!r}")
        entries[OPTIMIZER_PREFIX + key] = _storable(value, f"{who} array {key!r}")
    return entries


def save_net(net: Any, path: str | os.PathLike, *, optimizer: Any = None) -> None:
    """Write ``net`` (and optionally ``optimizer``'s state) to ``path`` atomically.

    Parameters
    ----------
    net : Net
        Every layer must be registered (built-in, plugin or run-time).
    path : str or path-like
        Written exactly there (no extension is added; ``.npz`` is customary).
    optimizer : object, optional
        Anything with ``state_dict() -> {"config": JSON-able, "arrays": {str: ndarray}}``.

    Raises
    ------
    layerkit.config.ConfigError
        A layer is not registered or reports a config that is not JSON-able.
    TypeError
        A parameter or optimizer array is not numeric.
    """
    write_entries(path, net_entries(net, optimizer=optimizer))


def net_entries(net: Any, *, optimizer: Any = None) -> dict[str, np.ndarray]:
    """The entries of a model file of ``net`` (and ``optimizer``): what ``save_net`` writes.

    A training checkpoint adds entries of its own to these, so it is a model file too.
    """
    entries: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(net_config(net), allow_nan=False)),
    }
    for index, layer in enumerate(net.layers):
        for name in _saved_names(layer):
            key = f"layers/{index}/{name}"
            entries[key] = _storable(getattr(layer, name), f"save: {key} of {layer!r}")
    if optimizer is not None:
        entries.update(_optimizer_entries(optimizer))
    return entries


def write_entries(path: str | os.PathLike, entries: dict[str, np.ndarray]) -> None:
    """Write ``entries`` as one ``.npz`` archive at ``path``, atomically (nothing pickled)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a file object: numpy adds no ".npz" to the name
            np.savez(handle, **entries)


def _saved_names(layer: Any) -> tuple[str, ...]:
    """The arrays a file keeps of ``layer``: its parameters, then its non-trained state."""
    return tuple(getattr(layer, "param_names", ())) + tuple(getattr(layer, "state_names", ()))


# ---------------------------------------------------------------------- load
def _read_entries(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, "rb") as handle:  # a missing file stays a FileNotFoundError
        try:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{os.fspath(path)} is not a layerkit model file: it holds a single "
                                     f"NumPy array, not an .npz archive")
            with loaded:
                # reading every entry now checks every CRC: a flipped byte fails here
                return {key: loaded[key] for key in loaded.files}
        except ModelFileError:
            raise
        except Exception as error:  # only untrusted bytes are parsed here: any failure means a bad file
            raise ModelFileError(
                f"{os.fspath(path)} is not a readable layerkit model file (truncated, corrupt or another "
                f"format): {type(error).__name__}: {error}"
            ) from error


def _scalar_string(entries: dict[str, Any], key: str, where: str) -> str:
    value = entries[key]
    if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind == "U"):
        raise ModelFileError(f"{where}: entry {key!r} must be a string, got {_describe(value)}")
    return str(value[()])


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


def _check_format(entries: dict[str, Any], where: str) -> None:
    if "format" not in entries:
        shown = ", ".join(sorted(entries)[:5]) or "nothing"
        raise ModelFileError(f"{where} is not a layerkit model file: it has no 'format' entry (it holds {shown})")
    found = _scalar_string(entries, "format", where)
    if found != FORMAT:
        raise ModelFileError(f"{where} is not a layerkit model file: its format is {found!r}, expected {FORMAT!r}")
    version = entries.get("format_version")
    if not (isinstance(version, np.ndarray) and version.ndim == 0 and version.dtype.kind in "iu"):
        raise ModelFileError(f"{where}: 'format_version' must be an integer, got "
                             f"{'nothing' if version is None else _describe(version)}")
    version = int(version)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where} was written by a newer layerkit (format version {version}); this layerkit reads "
            f"format versions up to {FORMAT_VERSION}: upgrade layerkit to load it"
        )
    if version < 1:
        raise ModelFileError(f"{where}: invalid format version {version}")


def _json_entry(entries: dict[str, Any], key: str, where: str) -> Any:
    if key not in entries:
        raise ModelFileError(f"{where}: missing entry {key!r}")
    text = _scalar_string(entries, key, where)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{where}: entry {key!r} is not valid JSON: {error}") from error


def _build(spec: Any, where: str) -> list[Any]:
    try:
        return build_layers(spec)
    except ConfigError as error:
        cause = error.__cause__
        while isinstance(cause, ConfigError):  # a block's own items: the innermost cause
            cause = cause.__cause__
        if isinstance(cause, UnknownLayerError):
            raise ModelFileError(
                f"{where} holds a layer that is not installed: {error}. Install the plugin package "
                "that provides it (or register the layer) and load again"
            ) from error
        raise ModelFileError(f"{where}: its config cannot be built: {error}") from error
    except MemoryError as error:
        raise ModelFileError(f"{where}: its config asks for layers too large to build: {error}") from error


def saved_arrays(layers: list[Any]) -> dict[str, tuple[Any, str]]:
    """``{"layers/<i>/<name>": (layer, name)}``: the arrays a file keeps of ``layers``."""
    return {f"layers/{i}/{name}": (layer, name) for i, layer in enumerate(layers) for name in _saved_names(layer)}


def _restore_parameters(layers: list[Any], entries: dict[str, Any], where: str) -> None:
    expected = saved_arrays(layers)
    stored = {key for key in entries if key.startswith("layers/")}
    missing = sorted(set(expected) - stored)
    if missing:
        raise ModelFileError(f"{where}: missing parameter arrays {missing}")
    extra = sorted(stored - set(expected))
    if extra:
        raise ModelFileError(f"{where}: unexpected arrays {extra} that no layer of its config has")
    for key, (layer, name) in expected.items():
        fresh, saved = np.asarray(getattr(layer, name)), entries[key]
        if not isinstance(saved, np.ndarray) or saved.shape != fresh.shape or saved.dtype != fresh.dtype:
            raise ModelFileError(
                f"{where}: array {key!r} of {layer!r} must have shape {fresh.shape} and dtype {fresh.dtype}, "
                f"got {_describe(saved)}"
            )
    for key, (layer, name) in expected.items():  # everything checked: now assign
        setattr(layer, name, entries[key])
    for index, layer in enumerate(layers):
        check_state = getattr(layer, "check_state", None)
        if check_state is not None and getattr(layer, "state_names", ()):
            try:
                check_state()
            except (ValueError, TypeError) as error:
                raise ModelFileError(f"{where}: the state of layer {index} ({layer!r}) is invalid: {error}") from error


def optimizer_state(entries: dict[str, Any], where: str) -> dict[str, Any]:
    """The optimizer's ``state_dict`` stored in a file's entries (``ModelFileError`` when there is none)."""
    if "optimizer_config" not in entries:
        raise ModelFileError(f"{where} holds no optimizer state (it was saved without optimizer=)")
    return {
        "config": _json_entry(entries, "optimizer_config", where),
        "arrays": {key[len(OPTIMIZER_PREFIX):]: value for key, value in entries.items()
                   if key.startswith(OPTIMIZER_PREFIX)},
    }


def _load_optimizer(optimizer: Any, entries: dict[str, Any], where: str) -> Any:
    """Load the stored state into ``optimizer``; ``True`` builds the stored optimizer. Returns the optimizer."""
    state = optimizer_state(entries, where)
    if optimizer is True:
        from layerkit.optim.base import optimizer_from_state_dict

        try:
            return optimizer_from_state_dict(state)
        except (ValueError, TypeError, KeyError) as error:
            raise ModelFileError(f"{where}: its optimizer state cannot be rebuilt: {error}") from error
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "load_state_dict", None)):
        raise TypeError(f"load: optimizer must be True (to rebuild the stored optimizer) or an optimizer "
                        f"instance to load the state into, such as Adam(1e-3), got {optimizer!r}")
    try:
        optimizer.load_state_dict(state)
    except (ValueError, TypeError, KeyError) as error:
        raise ModelFileError(
            f"{where}: {type(optimizer).__name__}.load_state_dict rejected the stored optimizer state: {error}"
        ) from error
    return optimizer


def load_layers(path: str | os.PathLike, *, optimizer: Any = None) -> list[Any]:
    """Read the layers of a net written by ``save_net``; ``Net.load`` wraps them in a ``Net``.

    The net's predictions are bit-identical to the saved net's.

    Parameters
    ----------
    path : str or path-like
    optimizer : object, optional
        Receives the stored state through ``optimizer.load_state_dict(state)``.

    Returns
    -------
    list of Layer

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        The file is truncated or corrupt, of another format, of a newer format
        version, misses arrays or holds arrays of the wrong shape or dtype,
        names a layer that is not installed, or (with ``optimizer``) holds no
        optimizer state. No net is returned in any of these cases.
    TypeError
        ``optimizer`` is neither an optimizer instance nor ``True``.
    """
    return load_with_optimizer(path, optimizer=optimizer)[0]


def load_with_optimizer(path: str | os.PathLike, *, optimizer: Any = None) -> tuple[list[Any], Any]:
    """``(layers, optimizer)`` of ``load_layers``; ``optimizer=True`` rebuilds the stored optimizer."""
    where = os.fspath(path)
    entries = read_entries(path)
    layers = layers_of(entries, where)
    if optimizer is not None:
        optimizer = _load_optimizer(optimizer, entries, where)
    return layers, optimizer


def read_entries(path: str | os.PathLike) -> dict[str, Any]:
    """Every entry of the model file at ``path``, its format checked (``ModelFileError`` if it is not one)."""
    entries = _read_entries(path)
    _check_format(entries, os.fspath(path))
    return entries


def layers_of(entries: dict[str, Any], where: str) -> list[Any]:
    """New layers built from a file's config, holding its arrays (every one checked first)."""
    layers = _build(_json_entry(entries, "config", where), where)
    _restore_parameters(layers, entries, where)
    return layers


def load_net(path: str | os.PathLike, *, optimizer: Any = None) -> Any:
    """Deprecated: use ``Net.load(path, optimizer=...)`` (or ``load_layers`` for the layers alone).

    Kept so code written against earlier releases still runs; it warns with a
    ``FutureWarning`` and returns the same ``Net`` as ``Net.load``.
    """
    import warnings

    warnings.warn("layerkit.io.load_net is deprecated: use layerkit.Net.load(path) "
                  "or layerkit.io.load_layers(path) for the list of layers", FutureWarning, stacklevel=2)
    layers = load_layers(path, optimizer=optimizer)
    return registry.get("net")(layers)  # layerkit.Net, through the registry: io does not import net
