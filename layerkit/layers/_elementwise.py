"""Shared plumbing of the element-wise layers whose kernels live in ``_core``."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import check_batch, check_grad_output
from layerkit.layers.base import Layer


class KernelActivation(Layer):
    """An activation computed by ``_core``'s kernel for one activation code.

    Subclasses set ``_act_code`` (one of ``core.ACT_*``) and, when the
    activation has numeric parameters, override ``_act_params`` to return
    them as ``(p0, p1)``. The fused chain (``layerkit._fusable``) runs the
    same code with the same parameters, so fused and layer-by-layer results
    are bit-identical. float32 input stays float32 (of either byte order);
    every other real dtype computes in float64.
    """

    _act_code: int = -1

    def _act_params(self) -> tuple[float, float]:
        """The activation's numeric parameters ``(p0, p1)`` for the kernel (``(0, 0)`` if none)."""
        return (0.0, 0.0)

    def _rows(self, x: Any) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """``x`` checked as a 2-D batch; an element-wise activation also takes ``(n, ...)`` (a conv net's
        feature maps), as rows ``(n, prod(...))``, with the shape to restore."""
        if (self._act_code != core.ACT_SOFTMAX and isinstance(x, np.ndarray) and x.ndim > 2
                and x.shape[0] > 0):
            return check_batch(x.reshape(x.shape[0], -1), repr(self)), x.shape
        return check_batch(x, repr(self)), None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the activation.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
            Element-wise activations (all but ``Softmax``) also take
            ``(n_samples, ...)`` ndarrays of any rank.

        Returns
        -------
        y : ndarray, shape of ``x``
        """
        x, shape = self._rows(x)
        p0, p1 = self._act_params()
        y = core.activation_forward(self._act_code, x, np.empty_like(x), p0, p1)
        return y if shape is None else y.reshape(shape)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Gradient of the input.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
            The input that ``forward`` saw.
        dy : array_like, shape (n_samples, n_features)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_features)
        """
        x, shape = self._rows(x)
        if shape is not None and isinstance(dy, np.ndarray) and dy.shape == shape:
            dy = dy.reshape(x.shape)
        dy = check_grad_output(dy, repr(self), x.shape, x.dtype)
        p0, p1 = self._act_params()
        dx = core.activation_backward(self._act_code, x, dy, np.empty_like(x), p0, p1)
        return dx if shape is None else dx.reshape(shape)


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
