"""Shared plumbing of the parameterless layers whose kernels live in ``_core``."""
from __future__ import annotations

import numpy as np

from layerkit._validation import check_batch, check_grad_output
from layerkit.layers.base import Layer


class KernelActivation(Layer):
    """A parameterless layer computed by a pair of ``_core`` kernels.

    Subclasses set ``_forward_kernel(x, out)`` and ``_backward_kernel(x, dy, dx)``.
    float32 input stays float32; every other real dtype computes in float64.
    """

    _forward_kernel = None
    _backward_kernel = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the activation.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        """
        x = check_batch(x, repr(self))
        return type(self)._forward_kernel(x, np.empty_like(x))

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
        who = repr(self)
        x = check_batch(x, who)
        dy = check_grad_output(dy, who, x.shape, x.dtype)
        return type(self)._backward_kernel(x, dy, np.empty_like(x))
