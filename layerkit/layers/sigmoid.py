"""``Sigmoid``: ``y = 1 / (1 + exp(-x))``, element-wise."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class Sigmoid(KernelActivation):
    """Logistic sigmoid ``y = 1 / (1 + exp(-x))``, element-wise.

    Computed without overflow for any finite input (``exp`` only ever sees a
    non-positive argument). The backward recomputes ``s = sigmoid(x)`` and
    returns ``dy * s * (1 - s)``.
    """

    _forward_kernel = staticmethod(core.sigmoid_forward)
    _backward_kernel = staticmethod(core.sigmoid_backward)
