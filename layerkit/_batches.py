"""Minibatches of a training set, gathered into reused buffers (``fit``'s data path).

``fit`` used to copy the whole training set every epoch (``x[order]``). Here
each minibatch's rows are gathered into buffers that are reused from one
minibatch to the next, so training holds the data set plus O(batch) memory:

- an ndarray of the net's dtype: ``np.take(x, idx, axis=0, out=buffer)``;
- an ndarray of another dtype: the minibatch's rows are converted into the
  buffer (the data set itself is never converted as a whole);
- a ``numpy.memmap`` or any array-like with ``__getitem__`` and ``shape``
  (or ``__len__``), such as an HDF5 dataset: the minibatch's rows are read
  with sorted indices (friendly to files) and put in the drawing order into
  the buffer, so data larger than memory trains from disk;
- a ``scipy.sparse`` matrix: kept as CSR; a minibatch is the CSR matrix of
  its rows (it stays sparse).

The rows of a minibatch are the same, in the same order, as those of
``x[order][start:stop]``, so training gives the same numbers bit for bit.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np

from layerkit._validation import InputSpec, _as_numeric_array, check_input, check_input_kind

__all__ = ["BatchSource", "minibatches", "gather_buffer", "is_sparse"]

_CHUNK_BYTES = 1 << 22  # rows checked for NaN/inf at a time (4 MiB of data)


def is_sparse(x: Any) -> bool:
    """``x`` is a ``scipy.sparse`` matrix or array (without importing scipy when it is not loaded)."""
    import sys

    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


_TAKES = ("an array of shape (n_samples, n_features): an ndarray or nested lists of numbers, a numpy.memmap, "
          "a scipy.sparse matrix, or an array-like with shape (or __len__) whose __getitem__ takes row "
          "indices, index arrays and slices (an HDF5 or zarr dataset)")


def _not_array_like(x: Any, who: str, name: str, why: str = "") -> TypeError:
    """The ``TypeError`` for an ``x`` that is no array-like: says what ``fit`` takes and what it got."""
    return TypeError(f"{who}: {name} must be {_TAKES}; got {type(x).__name__}{why}")


def _refuse_non_arrays(x: Any, who: str, name: str) -> None:
    """Raise ``_not_array_like`` for what no reading by rows can make sense of (a dict, a string, a number)."""
    if isinstance(x, (Mapping, str, bytes)):
        raise _not_array_like(x, who, name, " (a mapping or a string is not a batch of rows)")
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        return
    if not (hasattr(x, "shape") or hasattr(x, "__len__")):
        raise _not_array_like(x, who, name, ", which has neither shape nor __len__")
    if not hasattr(x, "__getitem__"):
        raise _not_array_like(x, who, name, ", which has no __getitem__ to read rows with")


def _is_lazy(x: Any) -> bool:
    """An array-like read by rows through ``__getitem__`` rather than converted as a whole."""
    if isinstance(x, np.memmap):
        return True
    if isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "iloc"):  # pandas: convert as before
        return False
    return callable(getattr(x, "__getitem__", None)) and (hasattr(x, "shape") or hasattr(x, "__len__"))


class BatchSource:
    """The rows of a training set ``x`` (n_samples, ...), drawn a minibatch at a time.

    Parameters
    ----------
    x : ndarray, numpy.memmap, array-like with ``__getitem__``, or scipy.sparse matrix
        Shape (n_samples, n_features), or what ``spec`` takes.
    who : str
        Caller's name in messages (``"fit"``).
    dtype : numpy.dtype
        The dtype of the minibatches (the net's); integer indices (``spec.integer``)
        are drawn as int64 instead.
    name : str
        The argument's name in messages.
    spec : InputSpec, optional
        The ranks and kind of numbers the net's first layer takes
        (``net.input_spec()``); 2-D real numbers by default.

    Attributes
    ----------
    kind : {"dense", "lazy", "sparse"}
    shape : tuple of int
    """

    def __init__(self, x: Any, who: str, dtype: Any, name: str = "x", *, spec: InputSpec | None = None) -> None:
        self.spec = InputSpec() if spec is None else spec
        self.who, self.name = who, name
        self.dtype = np.dtype(np.int64) if self.spec.integer else np.dtype(dtype)
        self._buffer: np.ndarray | None = None
        sparse = is_sparse(x)
        if not sparse:
            _refuse_non_arrays(x, who, name)  # a dict, a string, a number: before anything reads rows of it
        if sparse:
            self.kind = "sparse"
            if self.spec.integer:
                raise TypeError(f"{who}: {name} must hold integer indices for {self.spec.layer!r}, got a "
                                f"scipy.sparse {type(x).__name__}")
            if x.ndim != 2:
                raise ValueError(f"{who}: {name} must be 2-D (n_samples, n_features), got shape {x.shape}")
            if x.dtype.kind not in "fiub":
                raise TypeError(f"{who}: {name} must hold numbers, got dtype {x.dtype}")
            x = x.tocsr()
            if x.dtype != self.dtype:
                x = x.astype(self.dtype)
            self.data = x
        elif _is_lazy(x):
            self.kind = "lazy"
            shape = tuple(getattr(x, "shape", ()) or ())
            if not shape:
                try:
                    first = np.asarray(x[0]) if len(x) else np.zeros(0)
                except (LookupError, TypeError, ValueError) as error:  # x[0] is not a row (a KeyError: 0)
                    raise _not_array_like(x, who, name, f", whose x[0] raised {type(error).__name__}: {error}") from error
                shape = (len(x),) + first.shape
            dtype = np.dtype(getattr(x, "dtype", np.float64))
            if dtype.kind not in "fiub":
                raise TypeError(f"{who}: {name} must hold numbers, got dtype {getattr(x, 'dtype', None)}")
            check_input_kind(shape, dtype, who, self.spec, name)  # rank and kind
            self.data = x
            self._shape = tuple(int(size) for size in shape)
        else:
            self.kind = "dense"
            array = x if isinstance(x, np.ndarray) else _as_numeric_array(x, who, name)  # ragged lists: TypeError
            low, high = self.spec.ranks
            kinds = "iu" if self.spec.integer else "fiub"
            if array.dtype.kind in kinds and low <= array.ndim and (high is None or array.ndim <= high):
                self.data = array  # the caller's array, never converted as a whole: rows convert per batch
            else:  # raises with its message
                self.data = check_input(array, who, self.spec, self.dtype, name=name)

    # ----------------------------------------------------------------- shape
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape if self.kind == "lazy" else tuple(self.data.shape)

    def __len__(self) -> int:
        return self.shape[0]

    # ----------------------------------------------------------------- checks
    def check_finite(self) -> None:
        """Raise ``ValueError`` if the data hold NaN or infinity, reading them in chunks (no copy of the set)."""
        if self.kind == "sparse":
            data = self.data.data
            bad = 0 if data.dtype.kind != "f" else int(data.size - np.count_nonzero(np.isfinite(data)))
        elif self.spec.integer:
            bad = 0  # integers are finite (their range is the layer's check)
        else:
            n, m = self.shape[0], int(np.prod(self.shape[1:], dtype=np.int64))
            rows = max(1, _CHUNK_BYTES // max(1, m * self.dtype.itemsize))
            bad = 0
            for start in range(0, n, rows):
                chunk = self._read_rows(start, min(n, start + rows))
                if chunk.dtype.kind == "f":
                    bad += int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
        if bad:
            raise ValueError(f"{self.who}: {self.name} contains {bad} NaN or infinite value(s)")

    def _read_rows(self, start: int, stop: int) -> np.ndarray:
        try:
            chunk = np.asarray(self.data[start:stop])
        except (LookupError, TypeError) as error:  # its __getitem__ takes no slice
            raise _not_array_like(self.data, self.who, self.name, f", whose x[{start}:{stop}] raised "
                                 f"{type(error).__name__}: {error}") from error
        if chunk.shape[1:] != self.shape[1:]:
            expected = ", ".join(["n"] + [str(size) for size in self.shape[1:]])
            raise ValueError(f"{self.who}: rows {start}:{stop} of {self.name} have shape {chunk.shape}, "
                             f"expected ({expected})")
        if chunk.dtype.kind not in ("iu" if self.spec.integer else "fiub"):
            raise TypeError(f"{self.who}: {self.name} must hold {'integer indices' if self.spec.integer else 'numbers'}"
                            f", got dtype {chunk.dtype}")
        return chunk

    # ----------------------------------------------------------------- drawing
    def _out(self, rows: int) -> np.ndarray:
        buffer = self._buffer
        if buffer is None or buffer.shape[0] < rows:
            buffer = self._buffer = np.empty((rows,) + self.shape[1:], dtype=self.dtype)
        return buffer[:rows]

    def take(self, idx: np.ndarray) -> Any:
        """The rows ``idx`` (in that order), in a reused buffer (CSR rows for sparse data).

        The returned array is overwritten by the next ``take``/``slice``.
        """
        if self.kind == "sparse":
            return self.data[idx]
        out = self._out(len(idx))
        data = self.data
        if self.kind == "dense":
            if data.dtype == self.dtype:
                return np.take(data, idx, axis=0, out=out)
            out[...] = np.take(data, idx, axis=0)  # converted per minibatch, O(batch) temporary
            return out
        order = np.argsort(idx, kind="stable")
        try:
            rows = np.asarray(data[idx[order]])  # sorted indices: sequential reads from a file
        except (LookupError, TypeError) as error:  # its __getitem__ takes no index array
            raise _not_array_like(data, self.who, self.name, f", whose x[index_array] raised "
                                 f"{type(error).__name__}: {error}") from error
        if rows.shape != out.shape:
            raise ValueError(f"{self.who}: reading {len(idx)} rows of {self.name} gave shape {rows.shape}, "
                             f"expected {out.shape}")
        out[order] = rows
        return out

    def slice(self, start: int, stop: int) -> Any:
        """Rows ``start:stop``: a view for an ndarray of the net's dtype, else a reused buffer."""
        if self.kind == "sparse":
            return self.data[start:stop]
        if self.kind == "dense" and self.data.dtype == self.dtype and self.data.flags.c_contiguous:
            return self.data[start:stop]
        out = self._out(stop - start)
        out[...] = self._read_rows(start, stop) if self.kind == "lazy" else self.data[start:stop]
        return out


def gather_buffer(values: np.ndarray, rows: int, buffers: dict, key: str) -> np.ndarray:
    """The reused buffer ``buffers[key]`` for ``rows`` rows of ``values`` (made or grown when needed)."""
    buffer = buffers.get(key)
    if buffer is None or buffer.shape[0] < rows:
        buffer = buffers[key] = np.empty((max(rows, 1),) + values.shape[1:], dtype=values.dtype)
    return buffer


def grad_buffer(buffers: dict, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The reused array ``buffers[(shape, dtype)]`` a loss writes its gradient into (made when needed).

    ``fit``'s Python loop and its in-core epochs share these buffers, so both
    go through this one function (and one key).
    """
    key = (shape, np.dtype(dtype))
    buffer = buffers.get(key)
    if buffer is None:
        buffer = buffers[key] = np.empty(shape, dtype=dtype)
    return buffer


def _gather(values: Any, idx: np.ndarray, buffers: dict, key: str) -> Any:
    if type(values) is not np.ndarray:
        return values[idx]
    return np.take(values, idx, axis=0, out=gather_buffer(values, len(idx), buffers, key)[:len(idx)])


def minibatches(source: BatchSource, y: Any, weights: np.ndarray | None, order: np.ndarray | None,
                batch_size: int, buffers: dict | None = None, first: int = 0) -> Iterator[tuple[Any, Any, Any]]:
    """Yield ``(xb, yb, wb)`` for consecutive minibatches of ``x[order]`` (of ``x`` when ``order`` is None).

    Parameters
    ----------
    source : BatchSource
    y : ndarray or indexable, length n_samples
    weights : ndarray of shape (n_samples,), optional
    order : ndarray of int, shape (n_samples,), optional
        A permutation of the rows (one epoch's shuffling).
    batch_size : int
    buffers : dict, optional
        Kept by the caller between epochs: the reused buffers of ``y`` and ``weights``.
    first : int
        The first minibatch to draw (the earlier ones are skipped).

    Each yielded array is overwritten when the next minibatch is drawn.
    """
    buffers = {} if buffers is None else buffers
    n = len(source)
    for start in range(first * batch_size, n, batch_size):
        stop = min(n, start + batch_size)
        if order is None:
            yield (source.slice(start, stop), y[start:stop],
                   None if weights is None else weights[start:stop])
            continue
        idx = order[start:stop]
        yield (source.take(idx), _gather(y, idx, buffers, "y"),
               None if weights is None else _gather(weights, idx, buffers, "w"))
