"""``Mish``: ``y = x * tanh(softplus(x))``, element-wise, without parameters."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from layerkit import Layer
from layerkit.validation import check_batch, check_grad_output


class Mish(Layer):
    """Mish (Misra, 2019): ``y = x * tanh(softplus(x))``, element-wise.

    A smooth, non-monotonic activation close to ReLU for large ``|x|``.
    ``softplus(x) = log(1 + exp(x))`` is computed as ``numpy.logaddexp(0, x)``
    and the sigmoid of the gradient as ``scipy.special.expit``, so no input
    overflows: huge positive inputs give ``y = x``, huge negative ones ``y = 0``.
    float32 input stays float32; every other real dtype computes in float64.
    The layer has no parameters.
    """

    example_input_shape = (5, 4)

    @staticmethod
    def _tanh_softplus(x: np.ndarray) -> np.ndarray:
        return np.tanh(np.logaddexp(x.dtype.type(0), x))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x * tanh(softplus(x))``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        """
        x = check_batch(x, repr(self))
        return x * self._tanh_softplus(x)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``dx = dy * (t + x * (1 - t**2) * sigmoid(x))`` with ``t = tanh(softplus(x))``.

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
        t = self._tanh_softplus(x)
        # (1 - t) * (1 + t): 1 - t is exact near t = 1, where 1 - t**2 loses digits to the rounding of t**2
        return dy * (t + x * ((1 - t) * (1 + t)) * expit(x))

    def to_onnx(self, builder: Any, input_name: str) -> str:
        """Export hook of ``layerkit.onnx.to_onnx``: ``x * tanh(softplus(x))``.

        Parameters
        ----------
        builder : layerkit.onnx.Builder
            Receives the nodes (its ``softplus`` composes the overflow-free form).
        input_name : str
            The input tensor, shape (batch, n_features).

        Returns
        -------
        str
            The output tensor, shape (batch, n_features).
        """
        t = builder.add_node("Tanh", [builder.softplus(input_name)])
        return builder.add_node("Mul", [input_name, t], hint="mish")

    def get_config(self) -> dict[str, Any]:
        """``{}``: Mish has no constructor arguments."""
        return {}
