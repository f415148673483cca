"""Gradient clipping by global norm, applied to the gradients layers store."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from layerkit.optim.base import named_parameters
from layerkit.optim.schedules import _check_real


def _layers(net_or_layers: Any) -> list[Any]:
    layers = getattr(net_or_layers, "layers", net_or_layers)
    if hasattr(layers, "param_names"):
        return [layers]
    if not isinstance(layers, Iterable):
        raise TypeError(f"expected a Net, a layer or a sequence of layers, got {type(net_or_layers).__name__}")
    return list(layers)


def global_grad_norm(net_or_layers: Any) -> float:
    """Euclidean norm of all stored parameter gradients taken together.

    Parameters
    ----------
    net_or_layers : Net, Layer or sequence of layers
    """
    total = 0.0
    for layer in _layers(net_or_layers):
        for _, _, grad in named_parameters(layer):
            flat = np.asarray(grad, dtype=np.float64).ravel()
            total += float(flat @ flat)
    return math.sqrt(total)


def clip_grad_norm(net_or_layers: Any, max_norm: float) -> float:
    """Scale all stored gradients in place so that their global norm is at most ``max_norm``.

    The rule of ``torch.nn.utils.clip_grad_norm_``: with ``n`` the global norm,
    every gradient is multiplied by ``max_norm / (n + 1e-6)`` when that factor
    is below 1, and left alone otherwise.

    Parameters
    ----------
    net_or_layers : Net, Layer or sequence of layers
        Whose gradients (``d<name>`` for each ``param_names`` entry) to clip;
        call after ``backward`` and before ``step``.
    max_norm : float > 0

    Returns
    -------
    float
        The global norm before clipping.
    """
    max_norm = _check_real(max_norm, "clip_grad_norm: max_norm", low=0.0, low_open=True)
    layers = _layers(net_or_layers)
    norm = global_grad_norm(layers)
    factor = max_norm / (norm + 1e-6)
    if factor < 1:
        for layer in layers:
            for name, _, grad in named_parameters(layer):
                if isinstance(grad, np.ndarray) and grad.flags.writeable:
                    grad *= factor
                else:
                    setattr(layer, "d" + name, np.asarray(grad) * factor)
    return norm
