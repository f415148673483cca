"""``ReLU``: ``y = max(x, 0)``, element-wise."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class ReLU(KernelActivation):
    """Rectified linear unit ``y = max(x, 0)``, element-wise (``torch.nn.ReLU``).

    NaN propagates (``max(NaN, 0)`` is NaN, as in NumPy and PyTorch). The
    gradient at exactly ``x == 0`` is taken as 0; where ``x`` is NaN the
    incoming gradient passes, as in PyTorch.
    """

    kinks = (0.0,)
    _act_code = core.ACT_RELU
