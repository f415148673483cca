"""``Softmax``: row-wise ``exp(x) / sum(exp(x))`` over the last axis."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class Softmax(KernelActivation):
    """Row-wise softmax over the features of each sample.

    The row maximum is subtracted before exponentiating, so no input
    overflows; the exponentials use the SIMD exp of ``layerkit/_kernels``
    (within 1 ulp of NumPy's ``exp``). The backward is the full Jacobian-vector product
    ``dx = y * (dy - sum(dy * y, axis=1))``, correct for any upstream loss; for
    training a classifier, ``layerkit.losses.softmax_cross_entropy`` on the
    logits is cheaper and more accurate than this layer followed by a
    cross-entropy on probabilities.
    """

    _act_code = core.ACT_SOFTMAX
