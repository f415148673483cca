"""``ReLU``: ``y = max(x, 0)``, element-wise."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class ReLU(KernelActivation):
    """Rectified linear unit ``y = max(x, 0)``, element-wise.

    The gradient at exactly ``x == 0`` is taken as 0.
    """

    kinks = (0.0,)
    _forward_kernel = staticmethod(core.relu_forward)
    _backward_kernel = staticmethod(core.relu_backward)
