"""``Swish``: ``y = x * sigmoid(beta * x)`` with a learned ``beta``."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.special import expit

from layerkit import Layer
from layerkit.validation import check_batch, check_grad_output, check_positive_int, resolve_dtype


class Swish(Layer):
    """Swish (Ramachandran et al., 2017): ``y = x * sigmoid(beta * x)``, element-wise.

    ``beta`` is learned like ``Linear``'s weights: ``backward`` stores
    ``dbeta`` and ``step`` updates it. ``sigmoid`` is ``scipy.special.expit``,
    which never overflows, and the gradients are formed from ``x * sigmoid(z)``
    and ``sigmoid(-z)`` so that huge inputs give 0, never ``inf * 0 = nan``.

    Parameters
    ----------
    n_features : int or None
        ``None`` (default): one ``beta`` shared by all features, shape ``(1,)``,
        and inputs of any width. An int: one ``beta`` per feature, shape
        ``(n_features,)``, and inputs must have that many columns.
    beta : float
        Initial value of every ``beta`` (1.0: the SiLU).
    dtype : float32 or float64
        Dtype of ``beta`` and of the computation; inputs are converted to it.

    Attributes
    ----------
    beta : ndarray, shape (n_features,) or (1,)
    dbeta : ndarray, shaped like ``beta``
        Gradient stored by the last ``backward``.
    """

    param_names = ("beta",)
    example_kwargs = {"n_features": 4, "beta": 0.7}
    example_input_shape = (5, 4)

    def __init__(self, n_features: int | None = None, beta: float = 1.0, *, dtype: Any = np.float64) -> None:
        self.n_features = None if n_features is None else check_positive_int(n_features, "Swish: n_features")
        if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not np.isfinite(beta):
            raise TypeError(f"Swish: beta must be a finite real number, got {type(beta).__name__} {beta!r}")
        self.beta_init = float(beta)
        self.dtype = resolve_dtype(dtype, "Swish: dtype")
        self.beta = np.full(self.n_features or 1, self.beta_init, dtype=self.dtype)

    def _beta_checked(self) -> np.ndarray:
        shape = (self.n_features or 1,)
        beta = np.asarray(self.beta)
        if beta.shape != shape:
            raise ValueError(f"{self!r}: parameter beta must have shape {shape}, got {beta.shape}")
        return beta.astype(self.dtype, copy=False)

    def _check_x(self, x: Any) -> np.ndarray:
        return check_batch(x, repr(self), n_features=self.n_features, dtype=self.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x * sigmoid(beta * x)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)

        Returns
        -------
        y : ndarray, shape (n_samples, n_features), dtype ``self.dtype``
        """
        beta = self._beta_checked()
        x = self._check_x(x)
        return x * expit(beta * x)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Store ``dbeta``; return ``dx``.

        With ``z = beta * x`` and ``s = sigmoid(z)``:
        ``dx = dy * (s + beta * x * s * (1 - s))`` and
        ``dbeta = sum(dy * x**2 * s * (1 - s))`` over the samples (and over the
        features when ``beta`` is shared).

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
        dy : array_like, shape (n_samples, n_features)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_features)
        """
        beta = self._beta_checked()
        x = self._check_x(x)
        dy = check_grad_output(dy, repr(self), x.shape, self.dtype)
        z = beta * x
        x_s = x * expit(z)              # x * s, the output
        x_s_1ms = x_s * expit(-z)       # x * s * (1 - s), without cancellation
        dbeta = (dy * x_s_1ms * x).sum(axis=0)
        self.dbeta = dbeta if self.n_features else np.atleast_1d(dbeta.sum()).astype(self.dtype)
        return dy * (expit(z) + beta * x_s_1ms)

    def to_onnx(self, builder: Any, input_name: str) -> str:
        """Export hook of ``layerkit.onnx.to_onnx``: ``x * sigmoid(beta * x)`` with the learned ``beta``.

        Parameters
        ----------
        builder : layerkit.onnx.Builder
            Receives the nodes; ``beta`` becomes an initializer of ``builder.dtype``.
        input_name : str
            The input tensor, shape (batch, n_features).

        Returns
        -------
        str
            The output tensor, shape (batch, n_features).
        """
        beta = builder.add_initializer(self._beta_checked(), "swish_beta")
        z = builder.add_node("Mul", [input_name, beta])
        return builder.add_node("Mul", [input_name, builder.sigmoid(z)], hint="swish")

    def get_config(self) -> dict[str, Any]:
        """``{"n_features", "beta", "dtype"}``; ``beta`` is the initial value, the learned one is a parameter.

        ``n_features`` is left out when ``beta`` is shared (TOML has no null).
        """
        config = {"n_features": self.n_features, "beta": self.beta_init, "dtype": self.dtype.name}
        return config if self.n_features is not None else {k: v for k, v in config.items() if k != "n_features"}

    def __repr__(self) -> str:
        args = [] if self.n_features is None else [str(self.n_features)]
        if self.beta_init != 1.0:
            args.append(f"beta={self.beta_init!r}")
        if self.dtype != np.float64:
            args.append(f"dtype={self.dtype.name!r}")
        return f"Swish({', '.join(args)})"
