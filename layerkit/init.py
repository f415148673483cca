"""Weight initialisers.

Each takes the fan-in and fan-out, a ``numpy.random.Generator`` and a dtype,
and returns a C-contiguous array of shape ``(n_in, n_out)``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Glorot and Bengio (2010): uniform on ``[-a, a]`` with ``a = sqrt(6 / (n_in + n_out))``.

    The variance ``a**2 / 3 = 2 / (n_in + n_out)`` balances the forward and the
    backward signal. (The course material's ``sqrt(6 / (n_in * n_out))`` divides
    by the product, which is not Glorot's rule and shrinks wide layers.)
    """
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def he_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """He et al. (2015): normal with standard deviation ``sqrt(2 / n_in)``, for ReLU nets."""
    return (rng.standard_normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype, copy=False)


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "he": he_normal,
}
