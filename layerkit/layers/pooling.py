"""Pooling layers: ``MaxPool1d``/``MaxPool2d``, ``AvgPool1d``/``AvgPool2d`` and the global averages."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import check_channels_batch, check_grad_output
from layerkit.layers._spatial import compact, per_axis, scratch
from layerkit.layers.base import Layer


class _PoolNd(Layer):
    """Window pooling in ``_n_axes`` spatial axes; ``_is_max`` picks the maximum, else the average.

    A 1-D input ``(n, C, L)`` runs as the image ``(n, C, 1, L)``.
    """

    _n_axes = 2
    _is_max = True
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): output and dx from the workspace

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        name = type(self).__name__
        k = self._n_axes
        self.kernel_size = per_axis(kernel_size, k, f"{name}: kernel_size")
        self.stride = self.kernel_size if stride is None else per_axis(stride, k, f"{name}: stride")
        self.padding = per_axis(padding, k, f"{name}: padding", minimum=0)
        for pad, size in zip(self.padding, self.kernel_size):
            if 2 * pad > size:
                raise ValueError(f"{name}: padding must be at most half the kernel size (as in torch), got "
                                 f"padding {compact(self.padding)} for kernel_size {compact(self.kernel_size)}")

    def _geometry(self, x: np.ndarray) -> tuple[int, ...]:
        return self._geometry_for(x.shape)

    def _geometry_for(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The core's 9 integers for an input of ``shape``; raises when the window does not fit."""
        spatial = shape[2:]
        for size, pad, k in zip(spatial, self.padding, self.kernel_size):
            if size + 2 * pad < k:
                raise ValueError(f"{self!r}: the window (size {k}) is larger than the padded input "
                                 f"({size} + padding {2 * pad} = {size + 2 * pad}) of x with shape {shape}")
        kernel, stride, padding = self.kernel_size, self.stride, self.padding
        if self._n_axes == 1:
            spatial, kernel, stride, padding = (1,) + spatial, (1,) + kernel, (1,) + stride, (0,) + padding
        return (shape[0] * shape[1], spatial[0], spatial[1], kernel[0], kernel[1], stride[0], stride[1],
                padding[0], padding[1])

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output's shape ``(n, channels, *spatial_out)`` for an input of ``input_shape``."""
        return tuple(input_shape[:2]) + tuple(
            (size + 2 * p - k) // s + 1
            for size, p, k, s in zip(input_shape[2:], self.padding, self.kernel_size, self.stride))

    def _checked_input(self, x: Any) -> np.ndarray:
        if (type(x) is np.ndarray and x.ndim == 2 + self._n_axes and x.flags.c_contiguous
                and (x.dtype == np.float32 or x.dtype == np.float64) and 0 not in x.shape):
            return x  # (the usual case, without building the layer's repr for messages)
        return check_channels_batch(x, repr(self), rank=2 + self._n_axes)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pool each channel over the windows.

        Parameters
        ----------
        x : array_like, shape (n_samples, channels, *spatial)
            float32 stays float32; other real dtypes compute in float64.

        Returns
        -------
        y : ndarray, shape (n_samples, channels, *spatial_out)
        """
        return self._forward(x, None)

    def forward_pass(self, x: np.ndarray, training: bool, workspace: Any = None) -> tuple[np.ndarray, Any]:
        """``forward`` with its output in ``workspace``; ``ctx`` is that workspace."""
        return self._forward(x, workspace), workspace

    def _forward(self, x: Any, workspace: Any) -> np.ndarray:
        x = self._checked_input(x)
        shape = self._geometry(x)
        out = scratch(workspace, self, "y", self.output_shape(x.shape), x.dtype)
        return core.pool_forward(self._is_max, shape, x, out)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Gradient of the input.

        Parameters
        ----------
        x : array_like, shape (n_samples, channels, *spatial)
        dy : array_like, shape (n_samples, channels, *spatial_out)

        Returns
        -------
        dx : ndarray of the shape of ``x``
        """
        return self._backward(x, dy, None)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """``backward`` with ``dx`` in the workspace that ``forward_pass`` returned as ``ctx``."""
        return self._backward(x, dy, ctx)

    def _backward(self, x: Any, dy: Any, workspace: Any) -> np.ndarray:
        x = self._checked_input(x)
        shape = self._geometry(x)
        expected = self.output_shape(x.shape)
        if not (type(dy) is np.ndarray and dy.shape == expected and dy.dtype == x.dtype and dy.flags.c_contiguous):
            dy = check_grad_output(dy, repr(self), expected, x.dtype)
        dx = scratch(workspace, self, "dx", x.shape, x.dtype)
        return core.pool_backward(self._is_max, shape, x, dy, dx)

    def output_features(self, n_in: int | None) -> int | None:
        return None

    def get_config(self) -> dict[str, Any]:
        """``{"kernel_size", "stride", "padding"}``: the arguments that rebuild this layer."""
        return {"kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": compact(self.padding)}

    def __repr__(self) -> str:
        extras = "" if self.stride == self.kernel_size else f", stride={compact(self.stride)!r}"
        if any(self.padding):
            extras += f", padding={compact(self.padding)!r}"
        return f"{type(self).__name__}({compact(self.kernel_size)!r}{extras})"


_POOL_DOC = """
    Parameters
    ----------
    kernel_size : int or {pair}
        Size of the window.
    stride : int, {pair} or None
        Step between windows; ``None`` (default) is ``kernel_size``, as in torch.
    padding : int or {pair}
        {padding}
        At most half the kernel size, as in torch.
"""


class MaxPool2d(_PoolNd):
    __doc__ = """The maximum over each window of each channel (``torch.nn.MaxPool2d``).

    Input ``(n_samples, channels, height, width)``; output
    ``(n_samples, channels, height_out, width_out)`` with
    ``height_out = (height + 2 * padding - kernel) // stride + 1``. NaN
    propagates; with ties the gradient goes to the first maximum in row-major
    window order.
""" + _POOL_DOC.format(pair="pair of ints", padding="Implicit -inf on both sides (the padding never wins).")

    _n_axes = 2
    _is_max = True
    example_kwargs = {"kernel_size": 3, "stride": 2, "padding": 1}
    example_input_shape = (2, 3, 6, 5)


class AvgPool2d(_PoolNd):
    __doc__ = """The mean over each window of each channel (``torch.nn.AvgPool2d``).

    Sizes as for ``MaxPool2d``. The mean divides by the whole window, padding
    included (torch's default ``count_include_pad=True``).
""" + _POOL_DOC.format(pair="pair of ints", padding="Zeros on both sides, counted in the mean.")

    _n_axes = 2
    _is_max = False
    example_kwargs = {"kernel_size": (2, 3), "stride": 1, "padding": 1}
    example_input_shape = (2, 3, 5, 4)


class MaxPool1d(_PoolNd):
    __doc__ = """The maximum over each window along the last axis (``torch.nn.MaxPool1d``).

    Input ``(n_samples, channels, length)``; output ``(n_samples, channels, length_out)``.
""" + _POOL_DOC.format(pair="sequence of one int", padding="Implicit -inf on both sides.")

    _n_axes = 1
    _is_max = True
    example_kwargs = {"kernel_size": 3, "stride": 2, "padding": 1}
    example_input_shape = (2, 3, 8)


class AvgPool1d(_PoolNd):
    __doc__ = """The mean over each window along the last axis (``torch.nn.AvgPool1d``).

    Input ``(n_samples, channels, length)``; output ``(n_samples, channels, length_out)``.
""" + _POOL_DOC.format(pair="sequence of one int", padding="Zeros on both sides, counted in the mean.")

    _n_axes = 1
    _is_max = False
    example_kwargs = {"kernel_size": 2}
    example_input_shape = (2, 3, 7)


class _GlobalAvgPool(Layer):
    """The mean of each channel over all its spatial positions: ``(n, C, *spatial)`` -> ``(n, C)``."""

    _n_axes = 2
    accepts_workspace = True

    def _plan(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        x = check_channels_batch(x, repr(self), rank=2 + self._n_axes)
        return x, self._geometry_for(x.shape)

    def _geometry_for(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The core's 9 integers (one window over each whole plane) for an input of ``shape``."""
        spatial = shape[2:] if self._n_axes == 2 else (1,) + tuple(shape[2:])
        return (shape[0] * shape[1], spatial[0], spatial[1], spatial[0], spatial[1], 1, 1, 0, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Average every channel.

        Parameters
        ----------
        x : array_like, shape (n_samples, channels, *spatial)

        Returns
        -------
        y : ndarray, shape (n_samples, channels)
        """
        return self._forward(x, None)

    def forward_pass(self, x: np.ndarray, training: bool, workspace: Any = None) -> tuple[np.ndarray, Any]:
        """``forward`` with its output in ``workspace``; ``ctx`` is that workspace."""
        return self._forward(x, workspace), workspace

    def _forward(self, x: Any, workspace: Any) -> np.ndarray:
        x, shape = self._plan(x)
        out = scratch(workspace, self, "y", x.shape[:2], x.dtype)
        return core.pool_forward(False, shape, x, out)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Spread each channel's gradient evenly over its positions.

        Parameters
        ----------
        x : array_like, shape (n_samples, channels, *spatial)
        dy : array_like, shape (n_samples, channels)

        Returns
        -------
        dx : ndarray of the shape of ``x``
        """
        return self._backward(x, dy, None)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """``backward`` with ``dx`` in the workspace that ``forward_pass`` returned as ``ctx``."""
        return self._backward(x, dy, ctx)

    def _backward(self, x: Any, dy: Any, workspace: Any) -> np.ndarray:
        x, shape = self._plan(x)
        dy = check_grad_output(dy, repr(self), x.shape[:2], x.dtype)
        dx = scratch(workspace, self, "dx", x.shape, x.dtype)
        return core.pool_backward(False, shape, x, dy, dx)


class GlobalAvgPool2d(_GlobalAvgPool):
    """The mean of each channel over height and width: ``(n, C, H, W)`` -> ``(n, C)``.

    torch's ``nn.AdaptiveAvgPool2d(1)`` followed by ``nn.Flatten()``.
    """

    _n_axes = 2
    example_input_shape = (2, 3, 4, 5)


class GlobalAvgPool1d(_GlobalAvgPool):
    """The mean of each channel over its length: ``(n, C, L)`` -> ``(n, C)``.

    torch's ``nn.AdaptiveAvgPool1d(1)`` followed by ``nn.Flatten()``.
    """

    _n_axes = 1
    example_input_shape = (2, 3, 6)
