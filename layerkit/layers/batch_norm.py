"""``BatchNorm1d`` and ``BatchNorm2d``: normalise each feature (channel) over the batch, with running statistics.

As ``nn.BatchNorm1d(n)`` (input ``(n_samples, n)`` or ``(n_samples, n, L)``)
and ``nn.BatchNorm2d(n)`` (input ``(n_samples, n, H, W)``). A channel's
statistics are taken over the samples and every position of the channel; the
inputs with positions run in the compiled core (``_core.channel_*``).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from layerkit._backend import core
from layerkit._validation import check_batch, check_grad_output
from layerkit.layers._norm import AffineNorm, check_real


class BatchStats(NamedTuple):
    """The ``ctx`` of one ``BatchNorm1d`` pass: what its backward pass needs."""

    training: bool
    """Whether the pass normalised with the batch's statistics (else the running ones)."""
    xhat: np.ndarray
    """The normalised input, shape (n_samples, n)."""
    rstd: np.ndarray
    """``1 / sqrt(var + eps)`` per feature, shape (n,)."""


class ChannelStats(NamedTuple):
    """The ``ctx`` of one pass over an input with positions (``(n_samples, n, ...)``, 3-D or more)."""

    training: bool
    """Whether the pass normalised with the batch's statistics (else the running ones)."""
    mean: np.ndarray
    """The mean each channel was centred with, shape (n,)."""
    rstd: np.ndarray
    """``1 / sqrt(var + eps)`` per channel, shape (n,)."""
    workspace: Any = None
    """The workspace of the pass (its backward pass writes ``dx`` there), or None."""


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature mean, the centred input and the biased variance (two passes: no cancellation)."""
    mean = x.mean(axis=0)
    centred = x - mean
    return mean, centred, np.einsum("ij,ij->j", centred, centred) / x.shape[0]


class BatchNorm1d(AffineNorm):
    """Batch normalisation (Ioffe and Szegedy, 2015), as ``torch.nn.BatchNorm1d(n)``.

    The input is ``(n_samples, n)`` or, as in PyTorch, ``(n_samples, n, L)``:
    ``n`` channels of ``L`` positions each, whose statistics are taken over
    the samples and the positions (``m = n_samples * L`` values per channel).

    In training mode each feature is normalised with the mean and the biased
    variance of the batch, ``xhat = (x - mean) / sqrt(var + eps)``, and the
    running statistics move towards the batch's:
    ``running = (1 - momentum) * running + momentum * batch``, with the
    *unbiased* variance (``var * m / (m - 1)`` for ``m`` rows). In inference
    mode (``net.eval()``, ``net.predict``) the running statistics normalise and
    nothing is updated. Then ``y = xhat * gamma + beta``.

    The batch statistics belong to the pass (kept in its trace entry's
    ``ctx``), never to the layer, so passes may interleave.

    Parameters
    ----------
    n : int
        Number of features.
    eps : float
        Added to the variance, > 0.
    momentum : float
        Weight of the batch's statistics in the running ones, in ``[0, 1]``.
    dtype : float32 or float64
        Dtype of the parameters, statistics and computation.

    Attributes
    ----------
    gamma, beta : ndarray, shape (n,)
        Learned scale (starts at one) and shift (starts at zero).
    running_mean, running_var : ndarray, shape (n,)
        Not trained; saved with the model (``state_names``). Start at zero and one.
    dgamma, dbeta : ndarray, shape (n,)
        Gradients stored by the last backward pass.

    Raises
    ------
    ValueError
        A forward pass in training mode of a batch of one value per channel
        (its variance is undefined), as PyTorch does.
    """

    state_names = ("running_mean", "running_var")
    example_kwargs = {"n": 4}
    input_ranks = (2, 3)
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): inputs with positions reuse its arrays
    _layout = "(n_samples, n) or (n_samples, n, L)"

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype: Any = np.float64) -> None:
        super().__init__(n, eps, dtype)
        self.momentum = check_real(momentum, f"{type(self).__name__}: momentum", low=0.0, high=1.0, low_open=False)
        self.running_mean = np.zeros(self.n, dtype=self.dtype)
        self.running_var = np.ones(self.n, dtype=self.dtype)

    def forward_pass(self, x: np.ndarray, training: bool, *,
                     workspace: Any = None) -> tuple[np.ndarray, BatchStats | ChannelStats]:
        """``(y, ctx)``; in training mode the running statistics are updated.

        Parameters
        ----------
        x : array_like, shape (n_samples, n) or (n_samples, n, ...)
            The ranks of ``input_ranks``.
        training : bool
            Batch statistics (and update the running ones) or running statistics.
        workspace : Workspace, optional
            The net's workspace: an input with positions writes ``y`` (and
            its backward pass ``dx``) into its arrays instead of new ones.

        Returns
        -------
        y : ndarray, shape of ``x``
        ctx : BatchStats (2-D input) or ChannelStats (input with positions)
        """
        gamma, beta = self._vector("gamma"), self._vector("beta")
        x = self._x(x)
        if x.ndim > 2:
            return self._channel_forward(x, bool(training), gamma, beta, workspace)
        eps = self.dtype.type(self.eps)
        if training:
            rows = x.shape[0]
            if rows < 2:
                raise ValueError(
                    f"{self!r}: expected more than 1 value per feature in training mode, got a batch of "
                    f"{rows} row(s) of shape {x.shape}; use a larger batch or net.eval() for inference")
            mean, centred, var = _moments(x)
            rstd = 1.0 / np.sqrt(var + eps)
            xhat = centred * rstd
            m = self.dtype.type(self.momentum)
            running_mean, running_var = self._running_for_update()
            # (1 - m) * running + m * new, in place (the same roundings)
            np.add(np.multiply(running_mean, 1 - m, out=running_mean), m * mean, out=running_mean)
            np.add(np.multiply(running_var, 1 - m, out=running_var), m * (var * (rows / (rows - 1))), out=running_var)
            self.running_mean, self.running_var = running_mean, running_var
        else:
            running_mean, running_var = self._vector("running_mean"), self._vector("running_var")
            rstd = 1.0 / np.sqrt(running_var + eps)
            xhat = (x - running_mean) * rstd
        return xhat * gamma + beta, BatchStats(bool(training), xhat, rstd)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """Store ``dgamma``, ``dbeta``; return ``dx``.

        With ``g = dy * gamma``: in training mode
        ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` (means over the
        batch), in inference mode ``dx = rstd * g``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n) or (n_samples, n, ...)
        ctx : BatchStats, ChannelStats or None
            What ``forward_pass`` returned; when None the statistics are
            recomputed from ``x`` in the layer's current mode (no update).
        dy : array_like, shape of ``x``

        Returns
        -------
        dx : ndarray, shape of ``x``
        """
        x = self._x(x)
        dy = self._dy(dy, x)
        if x.ndim > 2:
            return self._channel_backward(x, ctx, dy)
        if ctx is None:
            ctx = self._stats(x, self.training)
        elif not isinstance(ctx, BatchStats) or np.shape(ctx.xhat) != x.shape:
            raise ValueError(f"{self!r}: ctx must be the BatchStats of this pass returned by forward_pass, "
                             f"got {type(ctx).__name__}")
        g = self._affine_backward(ctx.xhat, dy)
        if not ctx.training:
            return g * ctx.rstd
        rows = x.shape[0]
        mean_g = g.sum(axis=0) / rows
        mean_gx = np.einsum("ij,ij->j", g, ctx.xhat) / rows
        return ctx.rstd * (g - mean_g - ctx.xhat * mean_gx)

    def _running_for_update(self) -> tuple[np.ndarray, np.ndarray]:
        """``running_mean`` and ``running_var`` as arrays a training pass may update in place: copies of
        read-only ones (a memory map, say) or of one array held as both."""
        running_mean, running_var = self._vector("running_mean"), self._vector("running_var")
        if not running_mean.flags.writeable:
            running_mean = running_mean.copy()
        if not running_var.flags.writeable or np.shares_memory(running_var, running_mean):
            running_var = running_var.copy()
        return running_mean, running_var

    # ------------------------------------------------------------ inputs with positions (compiled core)
    def _x(self, x: Any) -> np.ndarray:
        return check_batch(x, repr(self), n_features=self.n, dtype=self.dtype, ndim=self.input_ranks,
                           layout=self._layout, feature_axis=1)

    def _array(self, workspace: Any, role: str, shape: tuple[int, ...]) -> np.ndarray:
        """A new array, or the workspace's array for ``role`` (reused from one pass to the next)."""
        if workspace is None:
            return np.empty(shape, dtype=self.dtype)
        return workspace._array(self, role, shape, self.dtype)

    def _channel_forward(self, x: np.ndarray, training: bool, gamma: np.ndarray, beta: np.ndarray,
                         workspace: Any, update_running: bool = True) -> tuple[np.ndarray, ChannelStats]:
        view = x.reshape(x.shape[0], self.n, _positions(x))
        mean = self._array(workspace, "mean", (self.n,))
        rstd = self._array(workspace, "rstd", (self.n,))
        eps = self.dtype.type(self.eps)
        if training:
            values = view.shape[0] * view.shape[2]
            if values < 2:
                raise ValueError(
                    f"{self!r}: expected more than 1 value per channel in training mode, got input of shape "
                    f"{x.shape}; use a larger batch or net.eval() for inference")
            core.channel_stats(view, mean, rstd)  # rstd holds the biased variance for now
        if training and update_running:
            m = self.dtype.type(self.momentum)
            running_mean, running_var = self._running_for_update()
            # (1 - m) * running + m * new, in place (the same roundings, and no arrays per step)
            new = self._array(workspace, "running_update", (self.n,))
            np.multiply(mean, m, out=new)
            np.multiply(running_mean, 1 - m, out=running_mean)
            np.add(running_mean, new, out=running_mean)
            np.multiply(rstd, self.dtype.type(values / (values - 1)), out=new)
            np.multiply(new, m, out=new)
            np.multiply(running_var, 1 - m, out=running_var)
            np.add(running_var, new, out=running_var)
            self.running_mean, self.running_var = running_mean, running_var
        elif not training:
            mean[...] = self._vector("running_mean")
            rstd[...] = self._vector("running_var")
        np.add(rstd, eps, out=rstd)
        np.sqrt(rstd, out=rstd)
        np.divide(1, rstd, out=rstd)
        y = self._array(workspace, "y", x.shape)
        core.channel_affine(view, mean, rstd, gamma, beta, y.reshape(view.shape))
        return y, ChannelStats(training, mean, rstd, workspace)

    def _channel_backward(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        if ctx is None:
            _, ctx = self._channel_forward_stats(x)
        elif (not isinstance(ctx, ChannelStats) or np.shape(ctx.mean) != (self.n,)
              or np.shape(ctx.rstd) != (self.n,)):
            raise ValueError(f"{self!r}: ctx must be the ChannelStats of this pass returned by forward_pass, "
                             f"got {type(ctx).__name__}")
        view = x.reshape(x.shape[0], self.n, _positions(x))
        dgamma = _reused(getattr(self, "dgamma", None), self.n, self.dtype)
        dbeta = _reused(getattr(self, "dbeta", None), self.n, self.dtype)
        dx = self._array(ctx.workspace, "dx", x.shape)
        core.channel_backward(view, dy.reshape(view.shape), ctx.mean, ctx.rstd, self._vector("gamma"),
                              ctx.training, dgamma, dbeta, dx.reshape(view.shape))
        self.dgamma, self.dbeta = dgamma, dbeta
        return dx

    def _channel_forward_stats(self, x: np.ndarray) -> tuple[np.ndarray, ChannelStats]:
        """The statistics a pass over ``x`` in the current mode would use, without updating the running ones."""
        return self._channel_forward(x, bool(self.training), self._vector("gamma"), self._vector("beta"), None,
                                     update_running=False)

    def check_state(self) -> None:
        """Raise ``ValueError`` unless the running statistics are finite vectors of shape (n,), the variance >= 0.

        ``Net.load`` calls it, so a file with broken statistics is refused
        instead of predicting NaN.
        """
        for name in self.state_names:
            value = self._vector(name, copy_into=False)
            if not np.isfinite(value).all():
                raise ValueError(f"{self!r}: {name} contains NaN or infinite values")
        if (self._vector("running_var", copy_into=False) < 0).any():
            raise ValueError(f"{self!r}: running_var has negative entries")

    def _stats(self, x: np.ndarray, training: bool) -> BatchStats:
        """The statistics a pass over ``x`` would use, without updating the running ones."""
        eps = self.dtype.type(self.eps)
        if training:
            _, centred, var = _moments(x)
            rstd = 1.0 / np.sqrt(var + eps)
            return BatchStats(True, centred * rstd, rstd)
        rstd = 1.0 / np.sqrt(self._vector("running_var") + eps)
        return BatchStats(False, (x - self._vector("running_mean")) * rstd, rstd)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``forward_pass(x, self.training)``'s output (updates the running statistics in training mode)."""
        return self.forward_pass(x, self.training)[0]

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``backward_pass(x, None, dy)``: the statistics are recomputed from ``x`` in the current mode."""
        return self.backward_pass(x, None, dy)

    def get_config(self) -> dict[str, Any]:
        """``{"n", "eps", "momentum", "dtype"}``; the running statistics are saved as state."""
        return {"n": self.n, "eps": self.eps, "momentum": self.momentum, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extras = self._repr_extras()
        if self.momentum != 0.1:
            extras = f", momentum={self.momentum!r}" + extras
        return f"BatchNorm1d({self.n}{extras})"


def _positions(x: np.ndarray) -> int:
    """The number of positions per channel of ``x`` (n_samples, n, ...): the product of its trailing axes."""
    return int(np.prod(x.shape[2:], dtype=np.int64))


def _reused(grad: Any, n: int, dtype: np.dtype) -> np.ndarray:
    """``grad`` when it is a writeable C-contiguous vector of ``n`` values of ``dtype``, else a new one."""
    if (type(grad) is np.ndarray and grad.shape == (n,) and grad.dtype == dtype and grad.flags.c_contiguous
            and grad.flags.writeable):
        return grad
    return np.empty(n, dtype=dtype)


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of images, as ``torch.nn.BatchNorm2d(n)``.

    The input is ``(n_samples, n, H, W)``: ``n`` channels, each normalised
    with the statistics of its ``m = n_samples * H * W`` values. Training and
    inference modes, the running statistics (updated with the unbiased
    variance ``var * m / (m - 1)``), ``gamma`` and ``beta`` are those of
    ``BatchNorm1d``. The reductions run in the compiled core with the GIL
    released; with a net's workspace a pass allocates no arrays of the
    input's size.

    Parameters
    ----------
    n : int
        Number of channels (``num_features`` in PyTorch).
    eps : float
        Added to the variance, > 0.
    momentum : float
        Weight of the batch's statistics in the running ones, in ``[0, 1]``.
    dtype : float32 or float64
        Dtype of the parameters, statistics and computation.

    Attributes
    ----------
    gamma, beta, running_mean, running_var, dgamma, dbeta : ndarray, shape (n,)
        Per channel, as in ``BatchNorm1d``.

    Raises
    ------
    ValueError
        A forward pass in training mode with one value per channel, as PyTorch does.
    """

    example_kwargs = {"n": 3}
    example_input_shape = (4, 3, 2, 3)
    input_ranks = (4, 4)
    _layout = "(n_samples, n, H, W)"

    def __repr__(self) -> str:
        return "BatchNorm2d" + super().__repr__()[len("BatchNorm1d"):]
