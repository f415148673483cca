"""``Tanh``: ``y = tanh(x)``, element-wise."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class Tanh(KernelActivation):
    """Hyperbolic tangent ``y = tanh(x)``, element-wise (``torch.nn.Tanh``).

    Uses the SIMD ``tanh`` of ``layerkit/_kernels/vecmath.h``: within 2 ulp of
    the exact value in float64 (3 ulp of NumPy's ``tanh``, itself up to 1 ulp
    off); in float32 it computes in float lanes, within 2 ulp (1 measured). ``tanh(+-inf) = +-1``;
    NaN propagates. The backward returns ``dy * (1 - tanh(x)**2)``.
    """

    _act_code = core.ACT_TANH
