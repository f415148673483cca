"""``Mish``: ``y = x * tanh(softplus(x))``, element-wise."""
from __future__ import annotations

import numpy as np

from layerkit import Layer
from layerkit._validation import check_batch, check_grad_output


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x)  # log(1 + exp(x)) without overflow


class Mish(Layer):
    """Mish (Misra, 2019): ``y = x * tanh(softplus(x))``, element-wise.

    ``softplus`` is ``numpy.logaddexp(0, x)``, so no input overflows. float32
    input stays float32; every other real dtype computes in float64.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply Mish.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        """
        x = check_batch(x, repr(self))
        return x * np.tanh(_softplus(x))

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``dx = dy * (tanh(sp) + x * (1 - tanh(sp)**2) * sigmoid(x))`` with ``sp = softplus(x)``.

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
        t = np.tanh(_softplus(x))
        sigmoid = np.exp(-_softplus(-x))  # 1 / (1 + exp(-x)) without overflow
        return dy * (t + x * (1 - t * t) * sigmoid)
