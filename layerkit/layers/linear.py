"""``Linear``: the dense layer ``y = x @ W + b``."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._validation import (as_rng, as_rows, check_batch, check_grad_output, check_parameter,
                                  check_positive_int, resolve_dtype)
from layerkit import init as initializers
from layerkit.layers.base import Layer


def _is_sparse(x: Any) -> bool:
    """``x`` is a ``scipy.sparse`` matrix or array (scipy imported only when it already is)."""
    module = type(x).__module__
    if not module.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(x)


def _sparse_transpose_product(x: Any, dy: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = x.T @ dy`` for a CSR or CSC ``x``, accumulated straight into ``out``.

    scipy's ``x.T @ dy`` would allocate a weight-sized result and then be
    copied; its own kernel (``x.T`` of a CSR ``x`` is a CSC matrix on the same
    arrays, and the other way round) writes into ``out`` instead. ``x`` is
    never densified.
    """
    try:
        from scipy.sparse import _sparsetools

        kernel = _sparsetools.csc_matvecs if x.format == "csr" else _sparsetools.csr_matvecs
        dy = np.ascontiguousarray(dy)
        out.fill(0)
        kernel(x.shape[1], x.shape[0], dy.shape[1], x.indptr, x.indices, x.data, dy.ravel(), out.ravel())
    except (ImportError, AttributeError, TypeError, ValueError):  # scipy's private kernels moved or refused
        out[...] = x.T @ dy


class Linear(Layer):
    """Dense layer ``y = x @ W + b``.

    As ``torch.nn.Linear``, an input with more axes, ``(n_samples, ..., n_in)``,
    is multiplied over its last axis (``y`` is ``(n_samples, ..., n_out)``)
    and the gradients ``dW``, ``db`` sum over every leading axis.

    Parameters
    ----------
    n_in : int
        Number of input features.
    n_out : int
        Number of output features.
    rng : None, int or numpy.random.Generator
        Source of the initial weights: ``None`` for fresh entropy, an int seed
        or a Generator (shared generators give different weights per layer).
    init : str, layerkit.init factory or callable
        The initial weights. A name: ``"xavier"``/``"glorot"`` (default; Glorot
        uniform on ``[-a, a]``, ``a = sqrt(6 / (n_in + n_out))``; the
        ``sqrt(6 / (n_in * n_out))`` sometimes seen in its place is not Glorot's formula),
        ``"xavier_normal"``, ``"he"``/``"he_normal"`` (std ``sqrt(2 / n_in)``,
        for ReLU nets), ``"he_uniform"``, ``"lecun_normal"`` (``N(0, 1/n_in)``),
        ``"lecun_uniform"``, ``"orthogonal"``, ``"zeros"``. A factory:
        ``layerkit.init.normal(std)``, ``layerkit.init.uniform(limit)`` (or its
        config, ``{"type": "normal", "std": 0.1}``). Or any callable
        ``(n_in, n_out, rng, dtype) -> W``; its result must be a finite real
        array of shape ``(n_in, n_out)``. Names and factories are kept in
        configs and files; of a callable only its name is kept (``init``
        becomes a ``layerkit.init.Custom``), and a net using one cannot be
        written to a config or a file.
    bias_init : float
        Initial value of every bias (default 0).
    dtype : float32 or float64
        Dtype of the parameters and of the computation. Inputs of any other
        real dtype (including float32 into a float64 layer, and integers) are
        converted to it.

    Attributes
    ----------
    W : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,)
        Starts at ``bias_init`` (zero).
    dW, db : ndarray
        Gradients stored by the last ``backward``, shaped like ``W`` and ``b``.
    """

    param_names = ("W", "b")
    supports_need_dx = True
    example_kwargs = {"n_in": 4, "n_out": 3, "rng": 0}
    example_input_shape = (5, 4)
    input_ranks = (2, None)

    def __init__(self, n_in: int, n_out: int, rng: Any = None, *, init: Any = "xavier",
                 bias_init: float = 0.0, dtype: Any = np.float64) -> None:
        self.n_in = check_positive_int(n_in, "Linear: n_in")
        self.n_out = check_positive_int(n_out, "Linear: n_out")
        self.dtype = resolve_dtype(dtype, "Linear: dtype")
        self.init, function = initializers.resolve(init, "Linear: init")
        if (isinstance(bias_init, bool) or not isinstance(bias_init, numbers.Real)
                or not np.isfinite(bias_init)):
            raise TypeError(f"Linear: bias_init must be a finite real number, got "
                            f"{type(bias_init).__name__} {bias_init!r}")
        self.bias_init = float(bias_init)
        generator = as_rng(rng, "Linear: rng")
        self.seeded = rng is not None  # (Net(layers, rng=...) refuses a layer drawn from fresh entropy)
        self.W = self._initial_weights(function, generator)
        self.b = np.full(self.n_out, self.bias_init, dtype=self.dtype)

    def _initial_weights(self, function: Any, generator: np.random.Generator) -> np.ndarray:
        weights = initializers.draw(function, self.n_in, self.n_out, generator, self.dtype,
                                    f"Linear({self.n_in}, {self.n_out}): init {self.init!r}", axes="(n_in, n_out)")
        return np.array(weights, dtype=self.dtype, order="C", copy=True)

    def _params_checked(self) -> tuple[np.ndarray, np.ndarray]:
        W, b = self.W, self.b
        if not (isinstance(W, np.ndarray) and W.shape == (self.n_in, self.n_out) and W.dtype == self.dtype
                and (W.flags.c_contiguous or W.flags.f_contiguous)):
            W = self.W = check_parameter(W, repr(self), "W", (self.n_in, self.n_out), self.dtype)
        if not (isinstance(b, np.ndarray) and b.shape == (self.n_out,) and b.dtype == self.dtype
                and b.flags.c_contiguous):
            b = self.b = check_parameter(b, repr(self), "b", (self.n_out,), self.dtype)
        return W, b


    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x @ W + b``.

        Parameters
        ----------
        x : array_like or scipy.sparse matrix/array, shape (n_samples, n_in) or (n_samples, ..., n_in)
            Any real dtype and memory layout; converted to ``dtype`` when needed.
            A sparse ``x`` (CSR or CSC; other formats are converted to CSR) is
            multiplied through scipy and never densified.

        Returns
        -------
        y : ndarray, shape (n_samples, ..., n_out), dtype ``self.dtype``
        """
        W, b = self._params_checked()
        if _is_sparse(x):
            x = self._sparse_batch(x)
            out = np.asarray(x @ W, dtype=self.dtype)
            out += b
            return out
        x = self._batch(x)
        if x.ndim > 2:  # (n_samples, ..., n_in): the product over the last axis, on a 2-D view (no copy)
            out = np.empty(x.shape[:-1] + (self.n_out,), dtype=self.dtype)
            core.dense_forward(as_rows(x), W, b, as_rows(out))
            return out
        out = np.empty((x.shape[0], self.n_out), dtype=self.dtype)
        return core.dense_forward(x, W, b, out)

    def _batch(self, x: Any) -> np.ndarray:
        return check_batch(x, repr(self), n_features=self.n_in, dtype=self.dtype, allow_fortran=True,
                           ndim=self.input_ranks, layout="(n_samples, ..., n_in)")

    def backward(self, x: np.ndarray, dy: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """Store ``dW = x.T @ dy`` and ``db = dy.sum(0)``; return ``dx = dy @ W.T``.

        ``dW`` and ``db`` are written into the arrays the layer already holds
        when they are writeable, C-contiguous and of the right shape and dtype
        (so a training step allocates no new gradient arrays); otherwise new
        arrays are stored.

        Parameters
        ----------
        x : array_like or scipy.sparse matrix/array, shape (n_samples, n_in)
            A sparse ``x`` gives ``dW = x.T @ dy`` through scipy (dense ``dW``).
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
        if _is_sparse(x):
            return self._sparse_backward(self._sparse_batch(x), W, dy, need_dx)
        x = self._batch(x)
        dy = check_grad_output(dy, who, x.shape[:-1] + (self.n_out,), self.dtype, allow_fortran=x.ndim == 2)
        dW = self._gradient_buffer("dW", (self.n_in, self.n_out))
        db = self._gradient_buffer("db", (self.n_out,))
        dx = np.empty(x.shape, dtype=self.dtype) if need_dx else None
        if x.ndim > 2:  # dW and db sum over every leading axis
            core.dense_backward(as_rows(x), W, as_rows(dy), dW, db, None if dx is None else as_rows(dx))
        else:
            core.dense_backward(x, W, dy, dW, db, dx)
        self.dW, self.db = dW, db
        return dx

    def _sparse_batch(self, x: Any) -> Any:
        """A ``scipy.sparse`` ``x`` checked and in ``dtype`` (CSR or CSC kept; other formats become CSR)."""
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"{self!r}: x must have shape (n_samples, {self.n_in}), got sparse {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self!r}: x must hold real numbers, got sparse dtype {x.dtype}")
        if x.format not in ("csr", "csc"):
            x = x.tocsr()
        return x.astype(self.dtype, copy=False)

    def _sparse_backward(self, x: Any, W: np.ndarray, dy: Any, need_dx: bool) -> np.ndarray | None:
        dy = check_grad_output(dy, repr(self), (x.shape[0], self.n_out), self.dtype, allow_fortran=True)
        dW = self._gradient_buffer("dW", (self.n_in, self.n_out))
        db = self._gradient_buffer("db", (self.n_out,))
        _sparse_transpose_product(x, dy, dW)
        np.sum(dy, axis=0, out=db)
        self.dW, self.db = dW, db
        return dy @ W.T if need_dx else None

    def _gradient_buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        grad = getattr(self, name, None)
        if (type(grad) is np.ndarray and grad.shape == shape and grad.dtype == self.dtype
                and grad.flags.c_contiguous and grad.flags.writeable):
            return grad
        return np.empty(shape, dtype=self.dtype)

    def output_features(self, n_in: int | None) -> int:
        return self.n_out

    def get_config(self) -> dict[str, Any]:
        """``{"n_in", "n_out", "init", "dtype"}`` (and ``"bias_init"`` unless 0): the arguments that rebuild
        this layer (not ``rng``).

        Raises
        ------
        TypeError
            ``init`` is a plain callable: configs keep names and
            ``layerkit.init`` factories only.
        """
        init = initializers.config_of(self.init, self)
        config = {"n_in": self.n_in, "n_out": self.n_out, "init": init, "dtype": self.dtype.name}
        if self.bias_init != 0.0:
            config["bias_init"] = self.bias_init
        return config

    def __repr__(self) -> str:
        extras = ""
        if not (isinstance(self.init, str) and self.init in ("xavier", "glorot")):
            extras += f", init={self.init!r}"  # a custom callable shows as its name
        if self.bias_init != 0.0:
            extras += f", bias_init={self.bias_init!r}"
        if self.dtype != np.float64:
            extras += f", dtype={self.dtype.name!r}"
        return f"Linear({self.n_in}, {self.n_out}{extras})"
