"""``Softplus``: ``y = log(1 + exp(beta * x)) / beta``, linear above a threshold."""
from __future__ import annotations

from typing import Any

from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation, check_real


class Softplus(KernelActivation):
    """Softplus, element-wise (``torch.nn.Softplus``).

    ``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where
    ``beta * x > threshold`` (as PyTorch). Computed as
    ``(max(u, 0) + log1p(exp(-|u|))) / beta`` with ``u = beta * x``, which never
    overflows whatever the threshold, with the SIMD ``exp`` and ``log1p`` of
    ``layerkit/_kernels`` (within 2 ulp each in float64). The backward is
    ``dy * sigmoid(beta * x)`` (``dy`` above the threshold). NaN propagates.

    Parameters
    ----------
    beta : float
        Sharpness, > 0.
    threshold : float
        Where ``beta * x > threshold`` the layer is the identity; finite.
        The function jumps by at most ``log1p(exp(-threshold)) / beta`` there,
        so it is declared as a kink for gradient checks.
    """

    example_kwargs = {"beta": 2.0, "threshold": 20.0}

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self._beta = check_real(beta, "Softplus: beta", positive=True)
        self._threshold = check_real(threshold, "Softplus: threshold")
        self.kinks = (self._threshold / self._beta,)

    @property
    def beta(self) -> float:
        """Sharpness."""
        return self._beta

    @property
    def threshold(self) -> float:
        """``beta * x`` above which the layer is the identity."""
        return self._threshold

    _act_code = core.ACT_SOFTPLUS

    def _act_params(self) -> tuple[float, float]:
        return (self._beta, self._threshold)

    def get_config(self) -> dict[str, Any]:
        """``{"beta": ..., "threshold": ...}``."""
        return {"beta": self._beta, "threshold": self._threshold}

    def __repr__(self) -> str:
        return f"Softplus(beta={self._beta!r}, threshold={self._threshold!r})"
