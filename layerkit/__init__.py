"""layerkit: small neural-network layers you can read, extend and check.

The public names, nothing else.
"""
from layerkit._backend import core as _core  # fails with build instructions if unbuilt
from layerkit import config, init, io, optim, registry
from layerkit.callbacks import Callback, EarlyStopping, FitState, LambdaCallback
from layerkit.diagnostics import Diagnostics
from layerkit.history import History
from layerkit.layers import BatchNorm1d, Dropout, Layer, LayerNorm, Linear, ReLU, Sigmoid, Softmax
from layerkit.losses import binary_cross_entropy, mean_squared_error, softmax_cross_entropy
from layerkit.net import Net, Trace, TraceEntry
from layerkit.plotting import plot_diagnostics, plot_history
from layerkit.training import evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "registry",
    "optim",
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
    "Net",
    "Trace",
    "TraceEntry",
    "fit",
    "evaluate",
    "History",
    "Callback",
    "LambdaCallback",
    "EarlyStopping",
    "FitState",
    "Diagnostics",
    "plot_history",
    "plot_diagnostics",
    "binary_cross_entropy",
    "mean_squared_error",
    "softmax_cross_entropy",
]
