"""Which layers the compiled ``DenseChain`` can run, and with which activation code.

The one place that maps a built-in layer to the chain's activation code and
its numeric parameters, so that the plan (``layerkit._plan``) never needs to
know the individual activation classes.
"""
from __future__ import annotations

from typing import Any

from layerkit.layers.elu import ELU
from layerkit.layers.gelu import GELU
from layerkit.layers.identity import Identity
from layerkit.layers.leaky_relu import LeakyReLU
from layerkit.layers.linear import Linear
from layerkit.layers.relu import ReLU
from layerkit.layers.sigmoid import Sigmoid
from layerkit.layers.softmax import Softmax
from layerkit.layers.softplus import Softplus
from layerkit.layers.tanh import Tanh

# exact classes only: a subclass may override forward/backward, so it runs as a Python layer.
# Each is a KernelActivation: its kernel code and parameters are the ones its own forward uses.
_FUSABLE = frozenset({Sigmoid, ReLU, Softmax, Tanh, LeakyReLU, ELU, GELU, Softplus, Identity})


def is_dense(layer: Any) -> bool:
    """``layer`` is a built-in ``Linear`` (not a subclass) that a chain stage can hold."""
    return type(layer) is Linear


def chain_activation(layer: Any) -> tuple[int, tuple[float, float]] | None:
    """``(activation code, (p0, p1))`` of a built-in activation layer, or ``None``.

    ``p0`` and ``p1`` are the activation's numeric parameters: a leaky ReLU's
    ``(negative_slope, 0)``, an ELU's ``(alpha, 0)``, a softplus's
    ``(beta, threshold)``; activations without parameters give ``(0.0, 0.0)``.
    (GELU's two forms are two codes.) The parameters are read-only properties
    of the layers, so a compiled plan never holds stale values.
    A layer in inference-only or training-only behaviour is never fusable here.
    """
    if type(layer) not in _FUSABLE:
        return None
    p0, p1 = layer._act_params()
    return layer._act_code, (float(p0), float(p1))
