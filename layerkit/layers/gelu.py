"""``GELU``: ``y = x * Phi(x)``, exact or in its tanh approximation."""
from __future__ import annotations

from typing import Any

from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation

_CODES = {"none": core.ACT_GELU, "tanh": core.ACT_GELU_TANH}


class GELU(KernelActivation):
    """Gaussian error linear unit, element-wise (``torch.nn.GELU``).

    ``approximate="none"``: ``y = 0.5 * x * (1 + erf(x / sqrt(2)))``.
    ``approximate="tanh"``: ``y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``.
    Both follow PyTorch's formulas, forward and backward, with the ``erf``
    (within 2 ulp of the exact value, 1 measured; branch-free and vectorised)
    and the SIMD ``tanh`` of ``layerkit/_kernels``. In float32 the exact form
    runs in float lanes (about 1.3 ns an element, forward or backward): the
    forward within 4 ulp of float32 for every x, negative ones included
    (``Phi(x)`` is evaluated from its tail, without the cancellation of
    ``1 + erf``), the backward within 4 ulp of ``|Phi(x)| + |x phi(x)|``.
    NaN propagates; ``x = -inf`` gives NaN, as ``x * Phi(x)`` does in PyTorch.

    Parameters
    ----------
    approximate : {"none", "tanh"}
    """

    example_kwargs = {"approximate": "tanh"}

    def __init__(self, approximate: str = "none") -> None:
        if not isinstance(approximate, str) or approximate not in _CODES:
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self._approximate = approximate
        self._act_code = _CODES[approximate]

    @property
    def approximate(self) -> str:
        """``"none"`` (erf) or ``"tanh"``."""
        return self._approximate

    def get_config(self) -> dict[str, Any]:
        """``{"approximate": ...}``."""
        return {"approximate": self._approximate}

    def __repr__(self) -> str:
        return f"GELU(approximate={self._approximate!r})"
