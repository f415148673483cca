"""Stochastic gradient descent with momentum and Nesterov momentum."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit.optim.base import Optimizer, compiled_as
from layerkit.optim.schedules import Schedule, _check_real


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum; ``torch.optim.SGD``'s rule.

    With ``g = grad + weight_decay * p``::

        v = g                                   (first update)
        v = momentum * v + (1 - dampening) * g  (later updates)
        p -= lr * (g + momentum * v)  if nesterov  else  p -= lr * v

    and ``p -= lr * g`` without momentum.

    Parameters
    ----------
    lr : float or Schedule
    momentum : float in [0, 1)
    dampening : float in [0, 1]
    nesterov : bool
        Requires ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float
        L2 penalty coefficient.
    decay_biases : bool, keyword-only
        ``False`` exempts biases (parameters of fewer than two dimensions) from
        ``weight_decay``; see ``Optimizer.decay_for``.
    """

    def __init__(self, lr: float | Schedule = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, *, decay_biases: bool = True) -> None:
        super().__init__(lr, weight_decay, decay_biases=decay_biases)
        self.momentum = _check_real(momentum, "SGD: momentum", low=0.0)
        if self.momentum >= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {self.momentum}")
        self.dampening = _check_real(dampening, "SGD: dampening", low=0.0, high=1.0)
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be a bool, got {type(nesterov).__name__} {nesterov!r:.60}")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov needs momentum > 0 and dampening == 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")
        self.nesterov = nesterov
        self.slots = ("momentum_buffer",) if self.momentum else ()

    def hyperparameters(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "decay_biases": self.decay_biases}

    def _kernel_rule(self) -> tuple[int, tuple[float, ...]]:
        return core.OPT_SGD, (self.momentum, self.dampening, float(self.nesterov))

    def _kernel_slots(self, state: dict[str, Any]) -> tuple:
        return (state.get("momentum_buffer"),)

    @compiled_as(_kernel_rule)
    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        """The rule in NumPy (the core's loop computes the same numbers, bit for bit)."""
        grad = self._decayed(param, grad)
        if self.momentum:
            buffer = state["momentum_buffer"]
            if step == 1:
                buffer[...] = grad
            else:
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= lr * grad
