"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from layerkit._backend import core
from layerkit.optim.base import Optimizer, compiled_as
from layerkit.optim.schedules import Schedule, _check_real


class Adam(Optimizer):
    """Adam with bias correction, optionally AMSGrad; ``torch.optim.Adam``'s rule.

    With ``g = grad + weight_decay * p`` and ``t`` the parameter's update count::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)                     (amsgrad only; used instead of v)
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    lr : float or Schedule
    betas : (float, float), each in [0, 1)
    eps : float
    weight_decay : float
        L2 penalty added to the gradient (see ``AdamW`` for the decoupled form).
    decay_biases : bool, keyword-only
        ``False`` exempts biases (parameters of fewer than two dimensions) from
        ``weight_decay``; see ``Optimizer.decay_for``.
    amsgrad : bool
    """

    decoupled = False

    def __init__(self, lr: float | Schedule = 0.001, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, decay_biases: bool = True) -> None:
        super().__init__(lr, weight_decay, decay_biases=decay_biases)
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(_check_real(b, f"{name}: betas[{i}]", low=0.0) for i, b in enumerate(betas))
        if max(self.betas) >= 1:
            raise ValueError(f"{name}: betas must be in [0, 1), got {self.betas}")
        self.eps = _check_real(eps, f"{name}: eps", low=0.0)
        if not isinstance(amsgrad, bool):
            raise TypeError(f"{name}: amsgrad must be a bool, got {type(amsgrad).__name__} {amsgrad!r:.60}")
        self.amsgrad = amsgrad
        self.slots = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())

    def hyperparameters(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad, "decay_biases": self.decay_biases}

    def _kernel_rule(self) -> tuple[int, tuple[float, ...]]:
        return core.OPT_ADAM, (*self.betas, self.eps, float(self.decoupled))

    def _kernel_slots(self, state: dict[str, Any]) -> tuple:
        return state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")

    @compiled_as(_kernel_rule)
    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float,
                step: int) -> None:
        """The rule in NumPy (the core's loop computes the same numbers, bit for bit)."""
        beta1, beta2 = self.betas
        if self.decoupled:
            decay = self.decay_for(param)
            if decay:
                param *= 1 - lr * decay
        else:
            grad = self._decayed(param, grad)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # one scratch array of the parameter's size per update (not five temporaries): for a wide
        # first layer (a hashed bag of words) the temporaries set the peak memory of training
        scratch = np.multiply(grad, 1 - beta1, dtype=param.dtype.type)  # (native order for a big-endian one)
        exp_avg *= beta1
        exp_avg += scratch
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += scratch
        if self.amsgrad:
            second = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        else:
            second = exp_avg_sq
        denom = np.sqrt(second, out=scratch)
        denom /= math.sqrt(1 - beta2 ** step)
        denom += self.eps
        step_size = np.divide(exp_avg, denom, out=scratch)
        step_size *= lr / (1 - beta1 ** step)
        param -= step_size


class AdamW(Adam):
    """Adam with decoupled weight decay; ``torch.optim.AdamW``'s rule.

    Before the Adam update, ``p *= 1 - lr * weight_decay``; the gradient itself
    carries no L2 term. The default ``weight_decay`` is 0.01, as in PyTorch.
    """

    decoupled = True

    def __init__(self, lr: float | Schedule = 0.001, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, *, decay_biases: bool = True) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, decay_biases=decay_biases)
