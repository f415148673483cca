"""``Conv1d`` and ``Conv2d``: convolution layers (cross-correlation, as in torch) on the compiled core."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit import init as initializers
from layerkit._backend import core
from layerkit._validation import (as_rng, check_channels_batch, check_grad_output, check_parameter,
                                  check_positive_int, resolve_dtype)
from layerkit.layers._spatial import compact, describe_padding, padding_before_after, per_axis, scratch
from layerkit.layers.base import Layer


class _ConvNd(Layer):
    """Shared code of ``Conv1d`` and ``Conv2d``; subclasses set ``_n_axes`` (1 or 2).

    The core computes every convolution in two spatial axes: a 1-D signal
    ``(n, C, L)`` is the image ``(n, C, 1, L)``, with a ``1 x k`` kernel.
    """

    _n_axes = 2
    supports_need_dx = False  # the input gradient is skipped through backward_params (which gets the ctx)
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): outputs and scratch from the workspace

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True, rng: Any = None, *,
                 init: Any = "xavier", dtype: Any = np.float64) -> None:
        name = type(self).__name__
        k = self._n_axes
        self.in_channels = check_positive_int(in_channels, f"{name}: in_channels")
        self.out_channels = check_positive_int(out_channels, f"{name}: out_channels")
        self.kernel_size = per_axis(kernel_size, k, f"{name}: kernel_size")
        self.stride = per_axis(stride, k, f"{name}: stride")
        self.dilation = per_axis(dilation, k, f"{name}: dilation")
        self.groups = check_positive_int(groups, f"{name}: groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels ({self.in_channels}) and out_channels ({self.out_channels}) "
                             f"must both be divisible by groups ({self.groups})")
        self._pad_before, self._pad_after = padding_before_after(
            padding, k, self.kernel_size, self.dilation, self.stride, f"{name}: padding")
        self.padding = describe_padding(padding)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be True or False, got {type(bias).__name__} {bias!r}")
        self.bias = bool(bias)
        self.param_names = ("W", "b") if self.bias else ("W",)
        self.dtype = resolve_dtype(dtype, f"{name}: dtype")
        self.init, function = initializers.resolve(init, f"{name}: init")
        self.W = self._initial_weights(function, as_rng(rng, f"{name}: rng"))
        self.b = np.zeros(self.out_channels, dtype=self.dtype) if self.bias else None

    # ------------------------------------------------------------ parameters
    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(out_channels, in_channels // groups, *kernel_size)``, torch's layout."""
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    @property
    def fan_in(self) -> int:
        """Inputs of one output value: ``in_channels // groups * prod(kernel_size)``."""
        return self.in_channels // self.groups * int(np.prod(self.kernel_size))

    @property
    def fan_out(self) -> int:
        """``out_channels * prod(kernel_size)``, as torch counts it."""
        return self.out_channels * int(np.prod(self.kernel_size))

    def _initial_weights(self, function: Any, generator: np.random.Generator) -> np.ndarray:
        drawn = initializers.draw(function, self.fan_in, self.fan_out, generator, self.dtype,
                                  f"{self!r}: init {self.init!r}")
        # column o of the (fan_in, fan_out) draw is output channel o's kernel
        weights = drawn[:, :self.out_channels].T.reshape(self.weight_shape)
        return np.array(weights, dtype=self.dtype, order="C", copy=True)

    def _params_checked(self) -> tuple[np.ndarray, np.ndarray | None]:
        W, b = self.W, self.b
        if not (type(W) is np.ndarray and W.shape == self.weight_shape and W.dtype == self.dtype
                and W.flags.c_contiguous):
            W = self.W = check_parameter(W, repr(self), "W", self.weight_shape, self.dtype)
        if self.bias and not (type(b) is np.ndarray and b.shape == (self.out_channels,) and b.dtype == self.dtype
                              and b.flags.c_contiguous):
            b = self.b = check_parameter(b, repr(self), "b", (self.out_channels,), self.dtype)
        return W, (b if self.bias else None)

    # ------------------------------------------------------------- geometry
    def _checked_input(self, x: Any) -> np.ndarray:
        if (type(x) is np.ndarray and x.ndim == 2 + self._n_axes and x.dtype == self.dtype
                and x.flags.c_contiguous and x.shape[1] == self.in_channels and 0 not in x.shape):
            return x  # (the usual case, without building the layer's repr for messages)
        return check_channels_batch(x, repr(self), rank=2 + self._n_axes, channels=self.in_channels,
                                    dtype=self.dtype)

    def _checked_grad(self, dy: Any, shape: tuple[int, ...]) -> np.ndarray:
        if type(dy) is np.ndarray and dy.shape == shape and dy.dtype == self.dtype and dy.flags.c_contiguous:
            return dy
        return check_grad_output(dy, repr(self), shape, self.dtype)

    def _geometry(self, x: np.ndarray) -> tuple[int, ...]:
        """The core's 16 integers for input ``x``; raises when the kernel does not fit the padded input."""
        return self._geometry_for(x.shape)

    def _geometry_for(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``_geometry`` for an input of ``shape``."""
        spatial = shape[2:]
        before, after = self._pad_before, self._pad_after
        kernel, stride, dilation = self.kernel_size, self.stride, self.dilation
        for size, b, a, k, d in zip(spatial, before, after, kernel, dilation):
            if size + b + a < d * (k - 1) + 1:
                raise ValueError(
                    f"{self!r}: the kernel (size {k}, dilation {d}, spanning {d * (k - 1) + 1}) is larger than "
                    f"the padded input ({size} + padding {b + a} = {size + b + a}) of x with shape {shape}")
        if self._n_axes == 1:
            spatial, before, after = (1,) + spatial, (0,) + before, (0,) + after
            kernel, stride, dilation = (1,) + kernel, (1,) + stride, (1,) + dilation
        return (shape[0], self.in_channels, spatial[0], spatial[1], self.out_channels, kernel[0], kernel[1],
                stride[0], stride[1], before[0], before[1], after[0], after[1], dilation[0], dilation[1],
                self.groups)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output's shape ``(n, out_channels, *spatial_out)`` for an input of ``input_shape``."""
        out = [input_shape[0], self.out_channels]
        for size, b, a, k, s, d in zip(input_shape[2:], self._pad_before, self._pad_after, self.kernel_size,
                                       self.stride, self.dilation):
            out.append((size + b + a - d * (k - 1) - 1) // s + 1)
        return tuple(out)

    # --------------------------------------------------------------- passes
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Convolve ``x`` with the kernels and add the bias.

        Parameters
        ----------
        x : array_like, shape (n_samples, in_channels, *spatial)
            Any real dtype and memory layout (strided and Fortran-ordered
            arrays are copied once to C order in ``dtype``).

        Returns
        -------
        y : ndarray, shape (n_samples, out_channels, *spatial_out), dtype ``self.dtype``
        """
        return self._forward(x, None)

    def forward_pass(self, x: np.ndarray, training: bool, workspace: Any = None) -> tuple[np.ndarray, Any]:
        """``forward`` with outputs and scratch from ``workspace`` (a ``Net``'s); ``ctx`` is that workspace."""
        return self._forward(x, workspace), workspace

    def _forward(self, x: Any, workspace: Any) -> np.ndarray:
        W, b = self._params_checked()
        x = self._checked_input(x)
        shape = self._geometry(x)
        out = scratch(workspace, self, "y", self.output_shape(x.shape), self.dtype)
        col = scratch(workspace, self, "col", (core.conv_col_size(shape),), self.dtype)
        return core.conv_forward(shape, x, W, b, out, col)

    def backward(self, x: np.ndarray, dy: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """Store ``dW`` (and ``db``); return ``dx``.

        Parameters
        ----------
        x : array_like, shape (n_samples, in_channels, *spatial)
            The input that ``forward`` saw.
        dy : array_like, shape (n_samples, out_channels, *spatial_out)
        need_dx : bool
            ``False`` skips the input gradient (the first layer of a net) and
            returns ``None``.

        Returns
        -------
        dx : ndarray of the shape of ``x``, or None
        """
        return self._backward(x, dy, None, need_dx)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """``backward`` with the scratch of the workspace that ``forward_pass`` returned as ``ctx``."""
        return self._backward(x, dy, ctx, True)

    def backward_params(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> None:
        """``backward_pass`` without the input gradient (the first layer of a net)."""
        self._backward(x, dy, ctx, False)

    def _backward(self, x: Any, dy: Any, workspace: Any, need_dx: bool) -> np.ndarray | None:
        W, _ = self._params_checked()
        x = self._checked_input(x)
        shape = self._geometry(x)
        dy = self._checked_grad(dy, self.output_shape(x.shape))
        dW = self._gradient_buffer("dW", self.weight_shape)
        db = self._gradient_buffer("db", (self.out_channels,)) if self.bias else None
        dx = scratch(workspace, self, "dx", x.shape, self.dtype) if need_dx else None
        col = scratch(workspace, self, "col", (core.conv_col_size(shape),), self.dtype)
        core.conv_backward(shape, x, W, dy, dW, db, dx, col)
        self.dW = dW
        if self.bias:
            self.db = db
        return dx

    def _gradient_buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        grad = getattr(self, name, None)
        if (type(grad) is np.ndarray and grad.shape == shape and grad.dtype == self.dtype
                and grad.flags.c_contiguous and grad.flags.writeable):
            return grad
        return np.empty(shape, dtype=self.dtype)

    def output_features(self, n_in: int | None) -> int | None:
        return None  # depends on the spatial size of the input

    # --------------------------------------------------------------- configs
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (not ``rng``).

        Raises
        ------
        TypeError
            ``init`` is a plain callable: configs keep names and
            ``layerkit.init`` factories only.
        """
        init = initializers.config_of(self.init, self)
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": self.padding, "dilation": compact(self.dilation), "groups": self.groups,
                "bias": self.bias, "init": init, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extras = ""
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}
        config = {"stride": compact(self.stride), "padding": self.padding, "dilation": compact(self.dilation),
                  "groups": self.groups, "bias": self.bias}
        for key, value in config.items():
            if value != defaults[key]:
                extras += f", {key}={value!r}"
        if not (isinstance(self.init, str) and self.init in ("xavier", "glorot")):
            extras += f", init={self.init!r}"
        if self.dtype != np.float64:
            extras += f", dtype={self.dtype.name!r}"
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"{compact(self.kernel_size)!r}{extras})")


_PARAMETERS_DOC = """
    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output; both divisible by ``groups``.
    kernel_size : int or {pair}
    stride : int or {pair}
        Step between windows (default 1).
    padding : int, {pair}, "same" or "valid"
        Zeros added on both sides of each spatial axis. ``"same"`` keeps the
        size (stride 1 only; for an even span the extra zero goes after, as in
        torch); ``"valid"`` is 0.
    dilation : int or {pair}
        Spacing between kernel taps (default 1).
    groups : int
        Input and output channels split into ``groups`` independent groups.
    bias : bool
        Add a learned bias per output channel (default True).
    rng : None, int or numpy.random.Generator
        Source of the initial weights.
    init : str, layerkit.init factory or callable
        As for ``Linear``, with ``fan_in = in_channels // groups * {kernel_prod}``
        and ``fan_out = out_channels * {kernel_prod}`` (as torch counts them):
        the initialiser is called as ``init(fan_in, fan_out, rng, dtype)`` and
        output channel ``o``'s kernel is column ``o`` of its result. The
        default ``"xavier"`` is Glorot uniform, torch's uniform family.
    dtype : float32 or float64
        Dtype of the parameters and of the computation.

    Attributes
    ----------
    W : ndarray, shape (out_channels, in_channels // groups, {weight_axes})
        torch's layout: ``layer.W = torch_conv.weight.detach().numpy()`` works.
    b : ndarray of shape (out_channels,), or None without bias
        Starts at zero.
    dW, db : ndarray
        Gradients stored by the last ``backward``, shaped like ``W`` and ``b``.
"""


class Conv2d(_ConvNd):
    __doc__ = """2-D convolution ``y[n, o] = b[o] + sum_c W[o, c] * x[n, c]`` over windows (``torch.nn.Conv2d``).

    Input ``(n_samples, in_channels, height, width)``; output
    ``(n_samples, out_channels, height_out, width_out)`` with
    ``height_out = (height + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1``.
    Computed by im2col and one BLAS gemm per sample and group in the compiled core.
""" + _PARAMETERS_DOC.format(pair="pair of ints", kernel_prod="kh * kw", weight_axes="kh, kw")

    _n_axes = 2
    example_kwargs = {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                      "dilation": 1, "groups": 2, "rng": 0}
    example_input_shape = (2, 2, 5, 6)


class Conv1d(_ConvNd):
    __doc__ = """1-D convolution over the last axis (``torch.nn.Conv1d``).

    Input ``(n_samples, in_channels, length)``; output
    ``(n_samples, out_channels, length_out)``, sizes as for ``Conv2d``.
""" + _PARAMETERS_DOC.format(pair="sequence of one int", kernel_prod="kernel_size",
                             weight_axes="kernel_size")

    _n_axes = 1
    example_kwargs = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": "same", "dilation": 2,
                      "rng": 0}
    example_input_shape = (3, 2, 7)
