"""What ``LayerNorm`` and ``BatchNorm1d`` share: argument checks and the learned affine ``gamma``, ``beta``."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from layerkit._validation import check_batch, check_grad_output, check_positive_int, resolve_dtype
from layerkit.layers.base import Layer


def check_real(value: Any, who: str, *, low: float, high: float | None = None, low_open: bool = True) -> float:
    """``value`` as a float in ``(low, high]`` (``[low, high]`` when not ``low_open``), or raise ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        raise ValueError(f"{who}: expected a real number in {interval}, got {type(value).__name__} {value!r}")
    return float(value)


class AffineNorm(Layer):
    """A normalisation ``y = xhat * gamma + beta`` over ``n`` features (see the subclasses).

    Subclasses compute ``xhat`` and its gradient; this class holds ``gamma``
    and ``beta``, checks inputs and parameters, and stores ``dgamma`` and
    ``dbeta``.
    """

    param_names = ("gamma", "beta")
    example_input_shape = (6, 4)

    def __init__(self, n: int, eps: float, dtype: Any) -> None:
        name = type(self).__name__
        self.n = check_positive_int(n, f"{name}: n")
        self.eps = check_real(eps, f"{name}: eps", low=0.0)
        self.dtype = resolve_dtype(dtype, f"{name}: dtype")
        self.gamma = np.ones(self.n, dtype=self.dtype)
        self.beta = np.zeros(self.n, dtype=self.dtype)

    @property
    def n_features(self) -> int:
        """The number of features (``n``); configs check the widths with it."""
        return self.n

    def _vector(self, name: str, *, copy_into: bool = True) -> np.ndarray:
        """Attribute ``name`` as a C-contiguous vector of shape ``(n,)`` and ``dtype``, or raise."""
        value = getattr(self, name)
        if (type(value) is np.ndarray and value.shape == (self.n,) and value.dtype == self.dtype
                and value.flags.c_contiguous):
            return value
        array = np.asarray(value)
        if array.shape != (self.n,):
            raise ValueError(f"{self!r}: {name} must have shape ({self.n},), got {array.shape}")
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{self!r}: {name} must hold real numbers, got dtype {array.dtype}")
        array = np.array(array, dtype=self.dtype, order="C", copy=True)
        if copy_into:
            setattr(self, name, array)
        return array

    def _x(self, x: Any) -> np.ndarray:
        return check_batch(x, repr(self), n_features=self.n, dtype=self.dtype)

    def _dy(self, dy: Any, x: np.ndarray) -> np.ndarray:
        return check_grad_output(dy, repr(self), x.shape, self.dtype)

    def _affine_backward(self, xhat: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Store ``dgamma``, ``dbeta``; return ``dxhat = dy * gamma``."""
        self.dgamma = np.einsum("ij,ij->j", dy, xhat)
        self.dbeta = dy.sum(axis=0)
        return dy * self._vector("gamma")

    def _repr_extras(self) -> str:
        extras = "" if self.eps == 1e-5 else f", eps={self.eps!r}"
        return extras + ("" if self.dtype == np.float64 else f", dtype={self.dtype.name!r}")
