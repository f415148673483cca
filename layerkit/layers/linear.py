"""``Linear``: the dense layer ``y = x @ W + b``."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import as_rng, check_batch, check_grad_output, check_positive_int, resolve_dtype
from layerkit.init import INITIALIZERS
from layerkit.layers.base import Layer


class Linear(Layer):
    """Dense layer ``y = x @ W + b``.

    Parameters
    ----------
    n_in : int
        Number of input features.
    n_out : int
        Number of output features.
    rng : None, int or numpy.random.Generator
        Source of the initial weights: ``None`` for fresh entropy, an int seed
        or a Generator (shared generators give different weights per layer).
    init : {"xavier", "he"}
        ``"xavier"``: Glorot uniform on ``[-a, a]``, ``a = sqrt(6 / (n_in + n_out))``.
        Note that the course material's ``sqrt(6 / (n_in * n_out))`` is not
        Glorot's formula. ``"he"``: normal with std ``sqrt(2 / n_in)``, for ReLU nets.
    dtype : float32 or float64
        Dtype of the parameters and of the computation. Inputs of any other
        real dtype (including float32 into a float64 layer, and integers) are
        converted to it.

    Attributes
    ----------
    W : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,)
        Starts at zero.
    dW, db : ndarray
        Gradients stored by the last ``backward``, shaped like ``W`` and ``b``.
    """

    param_names = ("W", "b")
    supports_need_dx = True
    example_kwargs = {"n_in": 4, "n_out": 3, "rng": 0}
    example_input_shape = (5, 4)

    def __init__(self, n_in: int, n_out: int, rng: Any = None, *, init: str = "xavier",
                 dtype: Any = np.float64) -> None:
        self.n_in = check_positive_int(n_in, "Linear: n_in")
        self.n_out = check_positive_int(n_out, "Linear: n_out")
        self.dtype = resolve_dtype(dtype, "Linear: dtype")
        if init not in INITIALIZERS:
            raise ValueError(f"Linear: init must be one of {sorted(INITIALIZERS)}, got {init!r}")
        self.init = init
        generator = as_rng(rng, "Linear: rng")
        self.W = np.ascontiguousarray(INITIALIZERS[init](self.n_in, self.n_out, generator, self.dtype))
        self.b = np.zeros(self.n_out, dtype=self.dtype)

    def _params_checked(self) -> tuple[np.ndarray, np.ndarray]:
        W, b = self.W, self.b
        if not (isinstance(W, np.ndarray) and W.shape == (self.n_in, self.n_out) and W.dtype == self.dtype
                and (W.flags.c_contiguous or W.flags.f_contiguous)):
            W = self.W = self._fix_param("W", W, (self.n_in, self.n_out))
        if not (isinstance(b, np.ndarray) and b.shape == (self.n_out,) and b.dtype == self.dtype
                and b.flags.c_contiguous):
            b = self.b = self._fix_param("b", b, (self.n_out,))
        return W, b

    def _fix_param(self, name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"{self!r}: parameter {name} must have shape {shape}, got {array.shape}")
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{self!r}: parameter {name} must be real numbers, got dtype {array.dtype}")
        return np.array(array, dtype=self.dtype, order="C", copy=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x @ W + b``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
            Any real dtype and memory layout; converted to ``dtype`` when needed.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out), dtype ``self.dtype``
        """
        W, b = self._params_checked()
        x = check_batch(x, repr(self), n_features=self.n_in, dtype=self.dtype, allow_fortran=True)
        out = np.empty((x.shape[0], self.n_out), dtype=self.dtype)
        return core.dense_forward(x, W, b, out)

    def backward(self, x: np.ndarray, dy: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """Store ``dW = x.T @ dy`` and ``db = dy.sum(0)``; return ``dx = dy @ W.T``.

        ``dW`` and ``db`` are written into the arrays the layer already holds
        when they are writeable, C-contiguous and of the right shape and dtype
        (so a training step allocates no new gradient arrays); otherwise new
        arrays are stored.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        dy : array_like, shape (n_samples, n_out)
        need_dx : bool
            Compute ``dx``; ``False`` skips that matrix product (the first layer
            of a net) and returns ``None``.

        Returns
        -------
        dx : ndarray of shape (n_samples, n_in), or None
        """
        W, _ = self._params_checked()
        who = repr(self)
        x = check_batch(x, who, n_features=self.n_in, dtype=self.dtype, allow_fortran=True)
        dy = check_grad_output(dy, who, (x.shape[0], self.n_out), self.dtype, allow_fortran=True)
        dW = self._gradient_buffer("dW", (self.n_in, self.n_out))
        db = self._gradient_buffer("db", (self.n_out,))
        dx = np.empty(x.shape, dtype=self.dtype) if need_dx else None
        core.dense_backward(x, W, dy, dW, db, dx)
        self.dW, self.db = dW, db
        return dx

    def _gradient_buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        grad = getattr(self, name, None)
        if (type(grad) is np.ndarray and grad.shape == shape and grad.dtype == self.dtype
                and grad.flags.c_contiguous and grad.flags.writeable):
            return grad
        return np.empty(shape, dtype=self.dtype)

    def output_features(self, n_in: int | None) -> int:
        return self.n_out

    def get_config(self) -> dict[str, Any]:
        """``{"n_in", "n_out", "init", "dtype"}``: the arguments that rebuild this layer (not ``rng``)."""
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extras = ""
        if self.init != "xavier":
            extras += f", init={self.init!r}"
        if self.dtype != np.float64:
            extras += f", dtype={self.dtype.name!r}"
        return f"Linear({self.n_in}, {self.n_out}{extras})"
