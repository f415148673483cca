"""``Embedding``: a table of vectors looked up by integer index, as ``nn.Embedding``."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit import init as initializers
from layerkit._backend import core
from layerkit._validation import (as_rng, check_grad_output, check_indices, check_parameter, check_positive_int,
                                  resolve_dtype)
from layerkit.layers.base import Layer


class Embedding(Layer):
    """A lookup table ``y[..., :] = W[x[...]]``, as ``torch.nn.Embedding(num_embeddings, embedding_dim)``.

    Parameters
    ----------
    num_embeddings : int
        Size of the table: indices run from 0 to ``num_embeddings - 1``.
    embedding_dim : int
        Length of each vector.
    rng : None, int or numpy.random.Generator
        Source of the initial table.
    init : str, layerkit.init factory or callable
        The initial table, as for ``Linear`` (called with
        ``(num_embeddings, embedding_dim, rng, dtype)``). By default
        ``layerkit.init.normal(1.0)``: standard normal entries, as PyTorch.
    padding_idx : int or None
        An index whose row starts at zero and receives no gradient (as in
        PyTorch); a negative value counts from the end.
    dtype : float32 or float64
        Dtype of the table and of the output.

    Attributes
    ----------
    W : ndarray, shape (num_embeddings, embedding_dim)
    dW : ndarray, shape (num_embeddings, embedding_dim)
        Gradient stored by the last backward pass: the rows of ``dy`` summed
        into the rows of their indices (repeated indices add up).

    Notes
    -----
    The input holds integer indices, shape ``(n_samples,)`` or
    ``(n_samples, L)``, of any integer dtype; floats are refused (as PyTorch
    does), even when they hold whole numbers. The output is
    ``(n_samples, embedding_dim)`` or ``(n_samples, L, embedding_dim)``. The
    input is discrete, so ``backward`` returns no input gradient (``None``).
    Lookup and scatter-add run in the compiled core with the GIL released.
    """

    param_names = ("W",)
    supports_need_dx = True
    accepts_workspace = True  # forward_pass(x, training, workspace=ws): the output reuses its array
    example_kwargs = {"num_embeddings": 6, "embedding_dim": 3, "rng": 0}
    example_input_shape = (5, 4)
    input_ranks = (1, 2)
    integer_input = True

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: Any = None, *,
                 init: Any = None, padding_idx: int | None = None, dtype: Any = np.float64) -> None:
        self.num_embeddings = check_positive_int(num_embeddings, "Embedding: num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "Embedding: embedding_dim")
        self.dtype = resolve_dtype(dtype, "Embedding: dtype")
        self.padding_idx = self._check_padding_idx(padding_idx)
        self.init, function = initializers.resolve(initializers.normal(1.0) if init is None else init,
                                                   "Embedding: init")
        generator = as_rng(rng, "Embedding: rng")
        self.W = self._initial_table(function, generator)

    def _check_padding_idx(self, padding_idx: Any) -> int | None:
        if padding_idx is None:
            return None
        if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
            raise TypeError(f"Embedding: padding_idx must be an int or None, got "
                            f"{type(padding_idx).__name__} {padding_idx!r}")
        if not -self.num_embeddings <= padding_idx < self.num_embeddings:
            raise ValueError(f"Embedding: padding_idx must be in [-{self.num_embeddings}, "
                             f"{self.num_embeddings - 1}], got {padding_idx}")
        return int(padding_idx) % self.num_embeddings

    def _initial_table(self, function: Any, generator: np.random.Generator) -> np.ndarray:
        shape = (self.num_embeddings, self.embedding_dim)
        who = f"Embedding({self.num_embeddings}, {self.embedding_dim}): init {self.init!r}"
        table = np.asarray(function(shape[0], shape[1], generator, self.dtype))
        if table.shape != shape:
            raise ValueError(f"{who} returned shape {table.shape}, expected {shape}")
        if table.dtype.kind not in "fiu":
            raise TypeError(f"{who} returned dtype {table.dtype}, expected real numbers")
        if not np.isfinite(table).all():
            raise ValueError(f"{who} returned NaN or infinite values")
        table = np.array(table, dtype=self.dtype, order="C", copy=True)
        if self.padding_idx is not None:
            table[self.padding_idx] = 0
        return table

    def _table(self) -> np.ndarray:
        W = self.W
        shape = (self.num_embeddings, self.embedding_dim)
        if type(W) is np.ndarray and W.shape == shape and W.dtype == self.dtype and W.flags.c_contiguous:
            return W
        self.W = check_parameter(W, repr(self), "W", shape, self.dtype)
        return self.W

    def _indices(self, x: Any) -> np.ndarray:
        return check_indices(x, repr(self), self.num_embeddings, ndim=self.input_ranks)

    def forward_pass(self, x: Any, training: bool, *, workspace: Any = None) -> tuple[np.ndarray, None]:
        """``(W[x], None)``; the same in both modes.

        Parameters
        ----------
        x : array_like of int, shape (n_samples,) or (n_samples, L)
        training : bool
            Ignored.
        workspace : Workspace, optional
            The net's workspace: the output is written into its array.

        Returns
        -------
        y : ndarray, shape x.shape + (embedding_dim,)
        ctx : None
        """
        W = self._table()
        idx = self._indices(x)
        shape = idx.shape + (self.embedding_dim,)
        out = (np.empty(shape, dtype=self.dtype) if workspace is None
               else workspace._array(self, "y", shape, self.dtype))
        core.embedding_forward(idx.reshape(-1), W, out.reshape(-1, self.embedding_dim))
        return out, None

    def forward(self, x: Any) -> np.ndarray:
        """``W[x]``, shape ``x.shape + (embedding_dim,)``."""
        return self.forward_pass(x, self.training)[0]

    def backward(self, x: Any, dy: Any, *, need_dx: bool = True) -> None:
        """Store ``dW``: zero, then ``dy``'s vectors added into the rows of their indices.

        The row of ``padding_idx`` receives no gradient.

        Parameters
        ----------
        x : array_like of int, shape (n_samples,) or (n_samples, L)
        dy : array_like, shape x.shape + (embedding_dim,)
        need_dx : bool
            Ignored: integer indices have no gradient.

        Returns
        -------
        None
            The input is discrete: there is no input gradient.
        """
        idx = self._indices(x)
        dy = check_grad_output(dy, repr(self), idx.shape + (self.embedding_dim,), self.dtype)
        shape = (self.num_embeddings, self.embedding_dim)
        dW = getattr(self, "dW", None)
        if not (type(dW) is np.ndarray and dW.shape == shape and dW.dtype == self.dtype
                and dW.flags.c_contiguous and dW.flags.writeable):
            dW = np.empty(shape, dtype=self.dtype)
        skip = -1 if self.padding_idx is None else self.padding_idx
        core.embedding_backward(idx.reshape(-1), dy.reshape(-1, self.embedding_dim), dW, skip)
        self.dW = dW
        return None

    def backward_pass(self, x: Any, ctx: Any, dy: Any) -> None:
        """``backward(x, dy)``: stores ``dW``, returns ``None``."""
        return self.backward(x, dy)

    def example_input(self, rng: np.random.Generator) -> np.ndarray:
        """Indices of ``example_input_shape`` drawn uniformly from the table (for gradient checks)."""
        return rng.integers(0, self.num_embeddings, size=self.example_input_shape)

    def output_features(self, n_in: int | None) -> int:
        return self.embedding_dim

    def get_config(self) -> dict[str, Any]:
        """``{"num_embeddings", "embedding_dim", "init", "dtype"}`` (and ``"padding_idx"`` when set).

        Raises
        ------
        TypeError
            ``init`` is a plain callable, which configs cannot keep.
        """
        init = initializers.config_of(self.init, self)
        config = {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim, "init": init,
                  "dtype": self.dtype.name}
        if self.padding_idx is not None:
            config["padding_idx"] = self.padding_idx
        return config

    def __repr__(self) -> str:
        extras = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        if self.dtype != np.float64:
            extras += f", dtype={self.dtype.name!r}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{extras})"
