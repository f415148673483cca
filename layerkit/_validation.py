"""The one place where inputs are checked and turned into arrays the kernels accept.

Every message names who is complaining (a layer's ``repr`` or an argument),
what was expected and what was received.
"""
from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: Any, who: str = "dtype") -> np.dtype:
    """Return ``dtype`` as float32 or float64, or raise ``TypeError``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{who}: expected float32 or float64, got {dtype!r}") from error
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{who}: expected float32 or float64, got {resolved}")
    return resolved


def _as_numeric_array(value: Any, who: str, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif hasattr(value, "tocsr") and hasattr(value, "nnz"):  # a scipy.sparse matrix or array
        raise TypeError(
            f"{who}: {name} is a scipy.sparse {type(value).__name__}, which only a Linear layer takes (as the "
            "net's first layer); start the net with a Linear, or densify it with .toarray()")
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{who}: {name} must be an array of numbers, got {type(value).__name__}") from error
    kind = array.dtype.kind
    if kind not in "fiub":
        raise TypeError(
            f"{who}: {name} must hold real numbers (float, int or bool), got dtype {array.dtype}"
        )
    return array


def float_dtype_of(array: np.ndarray) -> np.dtype:
    """float32 (of either byte order) stays float32; every other real dtype computes in float64.

    The result is always in native byte order, so a big-endian array is converted.
    """
    native = array.dtype.newbyteorder("=") if array.dtype.kind == "f" else array.dtype
    return np.dtype(np.float32) if native == np.float32 else np.dtype(np.float64)


def check_batch(
    value: Any,
    who: str,
    *,
    name: str = "x",
    n_features: int | None = None,
    dtype: np.dtype | None = None,
    allow_fortran: bool = False,
) -> np.ndarray:
    """Check a 2-D batch ``(n_samples, n_features)`` and convert it for the kernels.

    Parameters
    ----------
    value : array_like, shape (n_samples, n_features)
    who : str
        Name of the caller, used in messages (for instance ``"Linear(64, 32)"``).
    name : str
        Name of the argument in messages.
    n_features : int, optional
        Required number of columns.
    dtype : numpy.dtype, optional
        Dtype to convert to; by default float32 stays float32 and everything
        else becomes float64.
    allow_fortran : bool
        Accept a Fortran-contiguous array as it is (BLAS reads it through a
        transpose flag) instead of copying it to C order.

    Returns
    -------
    ndarray, shape (n_samples, n_features)
        C-contiguous (or Fortran-contiguous when allowed) of the target dtype;
        the input itself when it already was.
    """
    array = _as_numeric_array(value, who, name)
    if array.ndim != 2:
        raise ValueError(
            f"{who}: {name} must be 2-D (n_samples, n_features), got {array.ndim}-D array of shape {array.shape}"
        )
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{who}: {name} must have {n_features} features (columns), got shape {array.shape}"
        )
    target = float_dtype_of(array) if dtype is None else dtype
    if array.dtype == target:
        if array.flags.c_contiguous or (allow_fortran and array.flags.f_contiguous):
            return array
    order = "K" if allow_fortran and array.flags.f_contiguous else "C"
    return np.array(array, dtype=target, order=order, copy=True)


def check_grad_output(dy: Any, who: str, shape: tuple[int, ...], dtype: np.dtype,
                      *, allow_fortran: bool = False) -> np.ndarray:
    """Check the gradient ``dy`` that arrives at a layer's output (same shape as the output)."""
    array = _as_numeric_array(dy, who, "dy")
    if array.shape != tuple(shape):
        raise ValueError(
            f"{who}: dy must have the shape of the layer's output {tuple(shape)}, got {array.shape}"
        )
    if array.dtype == dtype:
        if array.flags.c_contiguous or (allow_fortran and array.flags.f_contiguous):
            return array
    order = "K" if allow_fortran and array.flags.f_contiguous else "C"
    return np.array(array, dtype=dtype, order=order, copy=True)


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_finite(array: np.ndarray, who: str, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinity."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{who}: {name} contains {bad} NaN or infinite value(s)")


def as_rng(rng: Any, who: str = "rng") -> np.random.Generator:
    """``None``, an int seed or a ``numpy.random.Generator`` -> a Generator."""
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"{who}: expected None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def as_optional_rng(rng: Any, who: str = "rng") -> np.random.Generator | None:
    """``as_rng`` for a generator shared by layers built from spec items: ``None`` stays ``None``."""
    return None if rng is None else as_rng(rng, who)


def check_channels_batch(
    value: Any,
    who: str,
    *,
    rank: int,
    channels: int | None = None,
    dtype: np.dtype | None = None,
    name: str = "x",
) -> np.ndarray:
    """Check a batch of multichannel signals ``(n_samples, channels, *spatial)`` for a conv or pooling layer.

    Parameters
    ----------
    value : array_like, shape (n_samples, channels, *spatial)
    who : str
        Name of the caller, used in messages (for instance ``"Conv2d(1, 6, 5)"``).
    rank : int
        Required number of dimensions: 3 for ``(n, C, L)``, 4 for ``(n, C, H, W)``.
    channels : int, optional
        Required size of axis 1.
    dtype : numpy.dtype, optional
        Dtype to convert to; by default float32 stays float32 and everything
        else becomes float64.
    name : str
        Name of the argument in messages.

    Returns
    -------
    ndarray
        C-contiguous, of the target dtype and native byte order: the input itself
        when it already was, else one copy (strided and Fortran-ordered inputs).
    """
    array = _as_numeric_array(value, who, name)
    layout = "(n_samples, channels, length)" if rank == 3 else "(n_samples, channels, height, width)"
    if array.ndim != rank:
        raise ValueError(f"{who}: {name} must be {rank}-D {layout}, got {array.ndim}-D array of shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{who}: {name} is an empty batch (0 samples, shape {array.shape}); pass at least one sample")
    if channels is not None and array.shape[1] != channels:
        raise ValueError(f"{who}: {name} must have {channels} channels (axis 1 of {layout}), got shape {array.shape}")
    if 0 in array.shape[1:]:
        raise ValueError(f"{who}: {name} has an empty channel or spatial axis, shape {array.shape}")
    target = float_dtype_of(array) if dtype is None else dtype
    if array.dtype == target and array.flags.c_contiguous:
        return array
    return np.array(array, dtype=target, order="C", copy=True)
