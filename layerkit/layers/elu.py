"""``ELU``: ``y = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
from __future__ import annotations

from typing import Any

from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation, check_real


class ELU(KernelActivation):
    """Exponential linear unit, element-wise (``torch.nn.ELU``).

    ``y = x`` where ``x > 0``, else ``alpha * expm1(x)``, with the SIMD
    ``expm1`` of ``layerkit/_kernels/vecmath.h`` (within 2 ulp in float64).
    NaN propagates. The backward is ``dy`` where ``x > 0``, else
    ``dy * alpha * exp(x)`` (PyTorch's formula).

    Parameters
    ----------
    alpha : float
        Scale of the negative part; any finite number (read-only afterwards).
    """

    kinks = (0.0,)
    example_kwargs = {"alpha": 1.5}

    def __init__(self, alpha: float = 1.0) -> None:
        self._alpha = check_real(alpha, "ELU: alpha")

    @property
    def alpha(self) -> float:
        """Scale of the negative part."""
        return self._alpha

    _act_code = core.ACT_ELU

    def _act_params(self) -> tuple[float, float]:
        return (self._alpha, 0.0)

    def get_config(self) -> dict[str, Any]:
        """``{"alpha": ...}``."""
        return {"alpha": self._alpha}

    def __repr__(self) -> str:
        return f"ELU(alpha={self._alpha!r})"
