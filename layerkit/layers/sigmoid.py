"""``Sigmoid``: ``y = 1 / (1 + exp(-x))``, element-wise."""
from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation


class Sigmoid(KernelActivation):
    """Logistic sigmoid ``y = 1 / (1 + exp(-x))``, element-wise (``torch.nn.Sigmoid``).

    Computed without overflow for any input (``exp`` only ever sees a
    non-positive argument), with the SIMD exp of ``layerkit/_kernels``:
    within 2 ulp of NumPy's ``1 / (1 + exp(-x))`` in float64, and within 2
    ulp in float32, where it computes in float lanes (``tests/test_simd_accuracy.py``
    measures both). The backward recomputes ``s = sigmoid(x)`` and returns
    ``dy * s * (1 - s)``.
    """

    _act_code = core.ACT_SIGMOID
