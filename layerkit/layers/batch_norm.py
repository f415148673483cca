"""``BatchNorm1d``: normalise each feature over the batch, with running statistics, as ``nn.BatchNorm1d(n)``."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from layerkit.layers._norm import AffineNorm, check_real


class BatchStats(NamedTuple):
    """The ``ctx`` of one ``BatchNorm1d`` pass: what its backward pass needs."""

    training: bool
    """Whether the pass normalised with the batch's statistics (else the running ones)."""
    xhat: np.ndarray
    """The normalised input, shape (n_samples, n)."""
    rstd: np.ndarray
    """``1 / sqrt(var + eps)`` per feature, shape (n,)."""


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature mean, the centred input and the biased variance (two passes: no cancellation)."""
    mean = x.mean(axis=0)
    centred = x - mean
    return mean, centred, np.einsum("ij,ij->j", centred, centred) / x.shape[0]


class BatchNorm1d(AffineNorm):
    """Batch normalisation (Ioffe and Szegedy, 2015), as ``torch.nn.BatchNorm1d(n)``.

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
        A forward pass in training mode of a batch of one row (its variance is
        undefined), as PyTorch does.
    """

    state_names = ("running_mean", "running_var")
    example_kwargs = {"n": 4}

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype: Any = np.float64) -> None:
        super().__init__(n, eps, dtype)
        self.momentum = check_real(momentum, "BatchNorm1d: momentum", low=0.0, high=1.0, low_open=False)
        self.running_mean = np.zeros(self.n, dtype=self.dtype)
        self.running_var = np.ones(self.n, dtype=self.dtype)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, BatchStats]:
        """``(y, BatchStats)``; in training mode the running statistics are updated.

        Parameters
        ----------
        x : array_like, shape (n_samples, n)
        training : bool
            Batch statistics (and update the running ones) or running statistics.

        Returns
        -------
        y : ndarray, shape (n_samples, n)
        ctx : BatchStats
        """
        gamma, beta = self._vector("gamma"), self._vector("beta")
        x = self._x(x)
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
            running_mean, running_var = self._vector("running_mean"), self._vector("running_var")
            self.running_mean = (1 - m) * running_mean + m * mean
            self.running_var = (1 - m) * running_var + m * (var * (rows / (rows - 1)))
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
        x : array_like, shape (n_samples, n)
        ctx : BatchStats or None
            What ``forward_pass`` returned; when None the statistics are
            recomputed from ``x`` in the layer's current mode (no update).
        dy : array_like, shape (n_samples, n)

        Returns
        -------
        dx : ndarray, shape (n_samples, n)
        """
        x = self._x(x)
        dy = self._dy(dy, x)
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
