"""layerkit: small neural-network layers you can read, extend and check.

The public names, nothing else.
"""
from layerkit._backend import core as _core  # fails with build instructions if unbuilt
from layerkit import registry
from layerkit.layers import Layer, Linear, ReLU, Sigmoid, Softmax
from layerkit.losses import binary_cross_entropy, mean_squared_error, softmax_cross_entropy
from layerkit.net import Net, Trace, TraceEntry
from layerkit import config, io  # Net.from_config/config/save/load; ConfigError, ModelFileError
from layerkit.plotting import plot_history
from layerkit.training import History, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "registry",
    "config",
    "io",
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Net",
    "Trace",
    "TraceEntry",
    "fit",
    "evaluate",
    "History",
    "plot_history",
    "binary_cross_entropy",
    "mean_squared_error",
    "softmax_cross_entropy",
]
