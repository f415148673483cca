"""AdaGrad (Duchi, Hazan & Singer 2011)."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit.optim.base import Optimizer, compiled_as
from layerkit.optim.schedules import Schedule, _check_real


class AdaGrad(Optimizer):
    """``torch.optim.Adagrad``'s rule.

    With ``g = grad + weight_decay * p`` and ``t`` the parameter's update count::

        s += g**2
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Parameters
    ----------
    lr : float or Schedule
    lr_decay : float >= 0
    weight_decay : float
    initial_accumulator_value : float >= 0
        Starting value of ``s``.
    eps : float
    decay_biases : bool, keyword-only
        ``False`` exempts biases (parameters of fewer than two dimensions) from
        ``weight_decay``; see ``Optimizer.decay_for``.
    """

    slots = ("sum",)

    def __init__(self, lr: float | Schedule = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, decay_biases: bool = True) -> None:
        super().__init__(lr, weight_decay, decay_biases=decay_biases)
        self.lr_decay = _check_real(lr_decay, "AdaGrad: lr_decay", low=0.0)
        self.initial_accumulator_value = _check_real(initial_accumulator_value,
                                                     "AdaGrad: initial_accumulator_value", low=0.0)
        self.eps = _check_real(eps, "AdaGrad: eps", low=0.0)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps,
                "decay_biases": self.decay_biases}

    def _initial_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"sum": np.full_like(param, self.initial_accumulator_value)}

    def _kernel_rule(self) -> tuple[int, tuple[float, ...]]:
        return core.OPT_ADAGRAD, (self.lr_decay, self.eps)

    @compiled_as(_kernel_rule)
    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        """The rule in NumPy (the core's loop computes the same numbers, bit for bit)."""
        grad = self._decayed(param, grad)
        accumulator = state["sum"]
        accumulator += grad * grad
        denom = np.sqrt(accumulator)
        denom += self.eps
        param -= (lr / (1 + (step - 1) * self.lr_decay)) * grad / denom


Adagrad = AdaGrad
"""PyTorch's spelling."""
