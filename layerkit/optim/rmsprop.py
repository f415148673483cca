"""RMSprop (Tieleman & Hinton 2012), optionally centered and with momentum."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit.optim.base import Optimizer, compiled_as
from layerkit.optim.schedules import Schedule, _check_real


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``'s rule.

    With ``g = grad + weight_decay * p``::

        s = alpha * s + (1 - alpha) * g**2
        a = alpha * a + (1 - alpha) * g          (centered only)
        d = sqrt(s - a**2) + eps  if centered  else  sqrt(s) + eps
        b = momentum * b + g / d;  p -= lr * b   (momentum > 0)
        p -= lr * g / d                          (otherwise)

    Parameters
    ----------
    lr : float or Schedule
    alpha : float in [0, 1)
        Smoothing constant of the squared-gradient average.
    eps : float
    weight_decay : float
    momentum : float >= 0
    decay_biases : bool, keyword-only
        ``False`` exempts biases (parameters of fewer than two dimensions) from
        ``weight_decay``; see ``Optimizer.decay_for``.
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    """

    def __init__(self, lr: float | Schedule = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 decay_biases: bool = True) -> None:
        super().__init__(lr, weight_decay, decay_biases=decay_biases)
        self.alpha = _check_real(alpha, "RMSprop: alpha", low=0.0)
        if self.alpha >= 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1), got {self.alpha}")
        self.eps = _check_real(eps, "RMSprop: eps", low=0.0)
        self.momentum = _check_real(momentum, "RMSprop: momentum", low=0.0)
        if not isinstance(centered, bool):
            raise TypeError(f"RMSprop: centered must be a bool, got {type(centered).__name__} {centered!r:.60}")
        self.centered = centered
        self.slots = (("square_avg",) + (("grad_avg",) if centered else ())
                      + (("momentum_buffer",) if self.momentum else ()))

    def hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered,
                "decay_biases": self.decay_biases}

    def _kernel_rule(self) -> tuple[int, tuple[float, ...]]:
        return core.OPT_RMSPROP, (self.alpha, self.eps, self.momentum)

    def _kernel_slots(self, state: dict[str, Any]) -> tuple:
        return state["square_avg"], state.get("grad_avg"), state.get("momentum_buffer")

    @compiled_as(_kernel_rule)
    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        """The rule in NumPy (the core's loop computes the same numbers, bit for bit)."""
        grad = self._decayed(param, grad)
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * grad
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += self.eps
        if self.momentum:
            buffer = state["momentum_buffer"]
            buffer *= self.momentum
            buffer += grad / denom
            param -= lr * buffer
        else:
            param -= lr * (grad / denom)
