"""``Flatten``: ``(n, d1, d2, ...)`` -> ``(n, d1 * d2 * ...)``, keeping the batch axis."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._validation import _as_numeric_array, check_grad_output, float_dtype_of
from layerkit.layers.base import Layer


class Flatten(Layer):
    """Flatten every axis after the first (``torch.nn.Flatten()``), in C order.

    ``forward`` returns a new array. In a ``Net`` pass with a workspace, a
    C-contiguous float32 or float64 input is reshaped without a copy (the
    output is a view of it, valid as long as the pass's trace). float32 stays
    float32; other real dtypes become float64.
    """

    example_input_shape = (3, 2, 2, 3)
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): a view instead of a copy

    def _checked(self, x: Any) -> np.ndarray:
        array = _as_numeric_array(x, repr(self), "x")
        if array.ndim < 2:
            raise ValueError(f"{self!r}: x must have a batch axis and at least one more, got "
                             f"{array.ndim}-D array of shape {array.shape}")
        if array.shape[0] == 0:
            raise ValueError(f"{self!r}: x is an empty batch (0 samples, shape {array.shape}); "
                             "pass at least one sample")
        target = float_dtype_of(array)
        if array.dtype == target and array.flags.c_contiguous:
            return array
        return np.array(array, dtype=target, order="C", copy=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Flatten ``x``.

        Parameters
        ----------
        x : array_like, shape (n_samples, d1, d2, ...)

        Returns
        -------
        y : ndarray, shape (n_samples, prod(rest))
        """
        x = self._checked(x)
        return x.reshape(x.shape[0], -1).copy()

    def forward_pass(self, x: np.ndarray, training: bool, workspace: Any = None) -> tuple[np.ndarray, Any]:
        """``forward``; with a ``workspace`` (a ``Net``'s pass) the output may be a view of ``x``."""
        if workspace is None:
            return self.forward(x), None
        x = self._checked(x)
        return x.reshape(x.shape[0], -1), None

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """The output gradient in the input's shape.

        Parameters
        ----------
        x : array_like, shape (n_samples, d1, d2, ...)
        dy : array_like, shape (n_samples, prod(rest))

        Returns
        -------
        dx : ndarray of the shape of ``x``
        """
        x = self._checked(x)
        dy = check_grad_output(dy, repr(self), (x.shape[0], x.size // x.shape[0]), x.dtype)
        return dy.reshape(x.shape)

    def output_features(self, n_in: int | None) -> int | None:
        return None  # the product of the input's trailing axes
