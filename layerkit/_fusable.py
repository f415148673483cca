"""Which layers the compiled ``DenseChain`` can run, and with which activation code.

The one place that maps a built-in layer to the chain's activation code and
its numeric parameters, so that the plan (``layerkit._plan``) never needs to
know the individual activation classes.
"""
from __future__ import annotations

from typing import Any

from layerkit._backend import core
from layerkit.layers.linear import Linear
from layerkit.layers.relu import ReLU
from layerkit.layers.sigmoid import Sigmoid
from layerkit.layers.softmax import Softmax

# exact classes only: a subclass may override forward/backward, so it runs as a Python layer
_CODES = {ReLU: core.ACT_RELU, Sigmoid: core.ACT_SIGMOID, Softmax: core.ACT_SOFTMAX}


def is_dense(layer: Any) -> bool:
    """``layer`` is a built-in ``Linear`` (not a subclass) that a chain stage can hold."""
    return type(layer) is Linear


def chain_activation(layer: Any) -> tuple[int, tuple[float, float]] | None:
    """``(activation code, (p0, p1))`` of a built-in activation layer, or ``None``.

    ``p0`` and ``p1`` are the activation's numeric parameters (for instance a
    leaky ReLU's slope); activations without parameters give ``(0.0, 0.0)``.
    A layer in inference-only or training-only behaviour is never fusable here.
    """
    code = _CODES.get(type(layer))
    if code is None:
        return None
    return code, (0.0, 0.0)
