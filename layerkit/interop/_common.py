"""What ``TorchLayer`` and ``JaxLayer`` share: importing their framework, naming parameters, storing gradients."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any, Iterable

import numpy as np

from layerkit.layers.base import Layer


def require(module: str, extra: str, who: str) -> ModuleType:
    """Import ``module``, or raise an ImportError saying which extra of layerkit installs it."""
    try:
        return import_module(module)
    except ImportError as error:
        raise ImportError(
            f"layerkit.interop.{who} needs {module!r}, which is not installed: "
            f'pip install "layerkit[{extra}]" ({type(error).__name__}: {error})'
        ) from error


def attribute_names(layer: Any, paths: Iterable[str], reserved: Iterable[str]) -> tuple[str, ...]:
    """Attribute names for the framework's parameter paths: dots become underscores (``"0.weight"`` -> ``"0_weight"``).

    Raises
    ------
    ValueError
        Two paths give the same name, a name or its gradient's name ``d<name>``
        is taken by another parameter, or by an attribute or method of the layer.
    """
    who = type(layer).__name__
    taken = set(reserved) | {name for name in dir(type(layer))}
    names: list[str] = []
    origins: dict[str, str] = {}
    for path in paths:
        name = str(path).replace(".", "_").replace("/", "_")
        if not name:
            raise ValueError(f"{who}: a parameter has an empty name (path {path!r})")
        if name in origins:
            raise ValueError(f"{who}: parameters {origins[name]!r} and {path!r} both become attribute {name!r}; "
                             "rename one of them")
        if name in taken:
            raise ValueError(f"{who}: parameter {path!r} would become attribute {name!r}, which the layer "
                             "already uses; rename the parameter")
        origins[name] = str(path)
        names.append(name)
    for name in names:
        if "d" + name in origins:
            raise ValueError(f"{who}: the gradient of parameter {origins[name]!r} is stored as 'd{name}', "
                             f"which is the name of parameter {origins['d' + name]!r}; rename one of them")
    return tuple(names)


def common_float_dtype(dtypes: Iterable[Any], who: str, default: Any) -> np.dtype:
    """The one dtype, float32 or float64, of a model's parameters (``default`` when it has none)."""
    found = {np.dtype(dtype) for dtype in dtypes}
    if not found:
        return np.dtype(default)
    if len(found) > 1:
        raise TypeError(f"{who}: all parameters must have one dtype, float32 or float64; got "
                        f"{sorted(str(dtype) for dtype in found)}")
    dtype = found.pop()
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{who}: parameters must be float32 or float64, got {dtype}")
    return dtype


def store_gradient(layer: Any, name: str, value: Any) -> None:
    """Set ``layer.d<name>`` to ``value``, copied into the array already there when it fits.

    The stored array is always the layer's own (writeable, C-contiguous), never
    a view of the framework's memory, so clipping may scale it in place.
    """
    value = np.asarray(value)
    key = "d" + name
    current = layer.__dict__.get(key)
    if (type(current) is np.ndarray and current.shape == value.shape and current.dtype == layer.dtype
            and current.flags.c_contiguous and current.flags.writeable):
        np.copyto(current, value, casting="same_kind")
    else:
        layer.__dict__[key] = np.array(value, dtype=layer.dtype, order="C", copy=True)


def check_output(y: Any, n_samples: int, dtype: np.dtype, who: str, kind: str) -> None:
    """A wrapped model's output must be a 2-D array of ``n_samples`` rows in at least the layer's precision."""
    shape = tuple(getattr(y, "shape", ()))
    if len(shape) != 2 or shape[0] != n_samples:
        raise ValueError(f"{who}: the {kind} must return a 2-D array (n_samples, n_out) with {n_samples} rows, "
                         f"got shape {shape}")
    if np.dtype(str(y.dtype).replace("torch.", "")).itemsize < dtype.itemsize:
        raise TypeError(f"{who}: the {kind} returned {y.dtype} for {dtype} inputs and parameters; "
                        f"it must compute in {dtype}")


class WrappedLayer(Layer):
    """What a layer wrapping another framework's code refuses: configs, model files and ONNX export.

    Subclasses say what they wrap (``wraps``) and how to save and export it
    instead (``save_hint``, ``export_hint``).
    """

    wraps = "code"
    save_hint = ""
    export_hint = ""

    def get_config(self) -> dict[str, Any]:
        """Refused: a config cannot rebuild another framework's code.

        Raises
        ------
        TypeError
            Always, saying how to save the wrapped model instead.
        """
        raise TypeError(
            f"{self!r} wraps {self.wraps}, which a layerkit config or model file cannot rebuild (it is Python "
            f"code, not a layer name and arguments); {self.save_hint}")

    def to_onnx(self, builder: Any, input_name: str) -> str:
        """Refused: layerkit's ONNX export cannot translate another framework's code.

        Raises
        ------
        TypeError
            Always, naming the layer.
        """
        raise TypeError(f"layerkit.onnx: {self!r} wraps {self.wraps}, which layerkit cannot export to ONNX; "
                        f"{self.export_hint}")
