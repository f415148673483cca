"""``Tanh``: ``y = tanh(x)``, element-wise."""
from __future__ import annotations

import numpy as np

from layerkit import Layer
from layerkit._validation import check_batch, check_grad_output


class Tanh(Layer):
    """Hyperbolic tangent ``y = tanh(x)``, element-wise.

    ``numpy.tanh`` saturates at +-1 without overflow. float32 input stays
    float32; every other real dtype computes in float64.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply ``tanh``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        """
        return np.tanh(check_batch(x, repr(self)))

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``dx = dy * (1 - tanh(x)**2)``.

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
        y = np.tanh(x)
        return dy * (1 - y * y)
