"""``LeakyReLU``: ``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise."""
from __future__ import annotations

from typing import Any

from layerkit._backend import core
from layerkit.layers._elementwise import KernelActivation, check_real


class LeakyReLU(KernelActivation):
    """Leaky rectified linear unit, element-wise (``torch.nn.LeakyReLU``).

    ``y = x`` where ``x > 0``, else ``negative_slope * x``; NaN propagates.
    The gradient at exactly 0 is ``negative_slope``, as in PyTorch.

    Parameters
    ----------
    negative_slope : float
        Slope for negative inputs; any finite number (read-only afterwards,
        so that a fused net and the layer always agree).
    """

    kinks = (0.0,)
    example_kwargs = {"negative_slope": 0.1}

    def __init__(self, negative_slope: float = 0.01) -> None:
        self._negative_slope = check_real(negative_slope, "LeakyReLU: negative_slope")

    @property
    def negative_slope(self) -> float:
        """Slope for negative inputs."""
        return self._negative_slope

    _act_code = core.ACT_LEAKY_RELU

    def _act_params(self) -> tuple[float, float]:
        return (self._negative_slope, 0.0)

    def get_config(self) -> dict[str, Any]:
        """``{"negative_slope": ...}``."""
        return {"negative_slope": self._negative_slope}

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self._negative_slope!r})"
