"""Shared plumbing of the element-wise layers whose kernels live in ``_core``."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import as_rows, check_batch, check_grad_output
from layerkit.layers.base import Layer


class KernelActivation(Layer):
    """An activation computed by ``_core``'s kernel for one activation code.

    Subclasses set ``_act_code`` (one of ``core.ACT_*``) and, when the
    activation has numeric parameters, override ``_act_params`` to return
    them as ``(p0, p1)``. The fused chain (``layerkit._fusable``) runs the
    same code with the same parameters, so fused and layer-by-layer results
    are bit-identical. float32 input stays float32 (of either byte order);
    every other real dtype computes in float64.

    Any input ``(n_samples, ..., n_features)`` of two or more axes is taken
    (``Softmax`` normalises over the last axis); the kernels run on its 2-D
    view, without a copy.
    """

    _act_code: int = -1
    input_ranks = None  # any shape: a net's input checks ask the next layer

    def _act_params(self) -> tuple[float, float]:
        """The activation's numeric parameters ``(p0, p1)`` for the kernel (``(0, 0)`` if none)."""
        return (0.0, 0.0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the activation.

        Parameters
        ----------
        x : array_like, shape (n_samples, ..., n_features)

        Returns
        -------
        y : ndarray, shape of ``x``
        """
        x = check_batch(x, repr(self), ndim=(2, None), layout="(n_samples, ..., n_features)")
        p0, p1 = self._act_params()
        out = np.empty_like(x)
        core.activation_forward(self._act_code, as_rows(x), as_rows(out), p0, p1)
        return out

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Gradient of the input.

        Parameters
        ----------
        x : array_like, shape (n_samples, ..., n_features)
            The input that ``forward`` saw.
        dy : array_like, shape of ``x``

        Returns
        -------
        dx : ndarray, shape of ``x``
        """
        who = repr(self)
        x = check_batch(x, who, ndim=(2, None), layout="(n_samples, ..., n_features)")
        dy = check_grad_output(dy, who, x.shape, x.dtype)
        p0, p1 = self._act_params()
        dx = np.empty_like(x)
        core.activation_backward(self._act_code, as_rows(x), as_rows(dy), as_rows(dx), p0, p1)
        return dx


def check_real(value: Any, who: str, *, positive: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a float: a real number (not bool), finite unless ``allow_inf``, > 0 if ``positive``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: expected a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{who}: expected a finite number, got {number!r}")
    if positive and not number > 0:
        raise ValueError(f"{who}: expected a number > 0, got {number!r}")
    return number
