"""layerkit: small neural-network layers you can read, extend and check.

The public names, nothing else. The subpackages ``testing``, ``sklearn``,
``onnx``, ``interop`` and ``validation`` are attributes too (``lk.testing.assert_grad``), imported on first use
so that ``import layerkit`` does not pay for scikit-learn's estimators or onnx.
"""
import sys as _sys
from importlib import import_module as _import_module
from typing import Any as _Any

from layerkit._backend import core as _core  # fails with build instructions if unbuilt
from layerkit import config, init, io, optim, registry, warnings
from layerkit.callbacks import Callback, EarlyStopping, FitState, LambdaCallback, LiveLearningCurve
from layerkit.diagnostics import Diagnostics
from layerkit.history import History
from layerkit.layers import (AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, ELU, Embedding,
                             Flatten, GELU, GlobalAvgPool1d, GlobalAvgPool2d, Identity, Layer, LayerNorm, LeakyReLU,
                             Linear, MaxPool1d, MaxPool2d, ReLU, Sigmoid, Softmax, Softplus, Tanh)
from layerkit.losses import (
    binary_cross_entropy, binary_cross_entropy_with_logits, huber_loss, l1_loss, mean_squared_error,
    softmax_cross_entropy,
)
from layerkit.net import Net, Trace, TraceEntry
from layerkit.plotting import plot_diagnostics, plot_history
from layerkit.training import evaluate, fit
from layerkit.blocks import Add, Concatenate, Residual

__version__ = "0.2.0.dev0"  # the one version string: pyproject.toml reads it (dynamic = ["version"])

__all__ = [
    "registry",
    "optim",
    "warnings",
    "config",
    "io",
    "init",
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Dropout",
    "LayerNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Embedding",
    "Tanh",
    "LeakyReLU",
    "ELU",
    "GELU",
    "Softplus",
    "Identity",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "GlobalAvgPool1d",
    "GlobalAvgPool2d",
    "Flatten",
    "Net",
    "Residual",
    "Concatenate",
    "Add",
    "Trace",
    "TraceEntry",
    "fit",
    "evaluate",
    "History",
    "Callback",
    "LambdaCallback",
    "EarlyStopping",
    "LiveLearningCurve",
    "FitState",
    "Diagnostics",
    "plot_history",
    "plot_diagnostics",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "huber_loss",
    "l1_loss",
    "mean_squared_error",
    "softmax_cross_entropy",
]

# Subpackages reachable as attributes and imported on first use (PEP 562), with the extra that
# installs what each needs beyond layerkit's own dependencies.
_LAZY_SUBPACKAGES = {"testing": None, "sklearn": None, "onnx": "onnx", "interop": None, "validation": None}


def __getattr__(name: str) -> _Any:
    if name not in _LAZY_SUBPACKAGES:
        raise AttributeError(f"module 'layerkit' has no attribute {name!r}")
    extra = _LAZY_SUBPACKAGES[name]
    try:
        module = _import_module(f"layerkit.{name}")
    except ImportError as error:
        if extra is None:
            raise
        # AttributeError, so that hasattr(lk, "onnx") and introspection (help, inspect) see "absent".
        raise AttributeError(
            f"layerkit.{name} is not available: it needs the {extra!r} extra, "
            f"pip install \"layerkit[{extra}]\" ({type(error).__name__}: {error})",
            name=name, obj=_sys.modules[__name__],
        ) from error
    globals()[name] = module  # later lookups skip __getattr__
    return module


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
