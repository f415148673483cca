"""``LayerNorm``: normalise each sample over its features, then ``gamma`` and ``beta``, as ``nn.LayerNorm(n)``."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._validation import as_rows, check_batch
from layerkit.layers._norm import AffineNorm


class LayerNorm(AffineNorm):
    """Layer normalisation (Ba et al., 2016), as ``torch.nn.LayerNorm(n)``.

    Each row is normalised with its own mean and biased variance over the
    ``n`` features, ``xhat = (x - mean) / sqrt(var + eps)``, then scaled and
    shifted per feature: ``y = xhat * gamma + beta``. Rows never mix, and the
    layer behaves the same in training and inference mode. As in PyTorch, an
    input ``(n_samples, ..., n)`` is normalised over its last axis.

    Parameters
    ----------
    n : int
        Number of features.
    eps : float
        Added to the variance, > 0.
    dtype : float32 or float64
        Dtype of ``gamma``, ``beta`` and the computation; inputs are converted.

    Attributes
    ----------
    gamma : ndarray, shape (n,)
        Starts at one.
    beta : ndarray, shape (n,)
        Starts at zero.
    dgamma, dbeta : ndarray, shape (n,)
        Gradients stored by the last backward pass.
    """

    example_kwargs = {"n": 4}
    input_ranks = (2, None)

    def __init__(self, n: int, eps: float = 1e-5, *, dtype: Any = np.float64) -> None:
        super().__init__(n, eps, dtype)

    def _x(self, x: Any) -> np.ndarray:
        return check_batch(x, repr(self), n_features=self.n, dtype=self.dtype, ndim=self.input_ranks,
                           layout="(n_samples, ..., n)")

    def _normalise(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = x.mean(axis=1, keepdims=True)
        centred = x - mean
        var = np.einsum("ij,ij->i", centred, centred)[:, None] / x.shape[1]
        rstd = 1.0 / np.sqrt(var + self.dtype.type(self.eps))
        return centred * rstd, rstd

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """``(y, (xhat, rstd))``; the same in both modes.

        Parameters
        ----------
        x : array_like, shape (n_samples, ..., n)
        training : bool
            Ignored.

        Returns
        -------
        y : ndarray, shape of ``x``
        ctx : (ndarray of shape (rows, n), ndarray of shape (rows, 1))
            The normalised input and each row's ``1 / sqrt(var + eps)``, for
            the ``rows`` vectors of length ``n`` in ``x``.
        """
        gamma, beta = self._vector("gamma"), self._vector("beta")
        x = self._x(x)
        xhat, rstd = self._normalise(as_rows(x))
        return (xhat * gamma + beta).reshape(x.shape), (xhat, rstd)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """Store ``dgamma``, ``dbeta``; return ``dx``.

        ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` per row, with
        ``g = dy * gamma``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n)
        ctx : tuple or None
            What ``forward_pass`` returned (recomputed from ``x`` when None).
        dy : array_like, shape (n_samples, n)

        Returns
        -------
        dx : ndarray, shape (n_samples, n)
        """
        x = self._x(x)
        dy = as_rows(self._dy(dy, x))
        xhat, rstd = self._normalise(as_rows(x)) if ctx is None else ctx
        g = self._affine_backward(xhat, dy)
        n = self.n
        mean_g = g.sum(axis=1, keepdims=True) / n
        mean_gx = np.einsum("ij,ij->i", g, xhat)[:, None] / n
        return (rstd * (g - mean_g - xhat * mean_gx)).reshape(x.shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y = xhat * gamma + beta``, shape (n_samples, n)."""
        return self.forward_pass(x, self.training)[0]

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``backward_pass(x, None, dy)``: the statistics are recomputed from ``x``."""
        return self.backward_pass(x, None, dy)

    def get_config(self) -> dict[str, Any]:
        """``{"n", "eps", "dtype"}``."""
        return {"n": self.n, "eps": self.eps, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"LayerNorm({self.n}{self._repr_extras()})"
