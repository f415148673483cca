"""The one place where inputs are checked and turned into arrays the kernels accept.

Every message names who is complaining (a layer's ``repr`` or an argument),
what was expected and what was received.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple

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
    ndim: int | tuple[int, int | None] = 2,
    layout: str = "(n_samples, n_features)",
    feature_axis: int = -1,
) -> np.ndarray:
    """Check a batch (2-D ``(n_samples, n_features)`` by default) and convert it for the kernels.

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
        transpose flag) instead of copying it to C order (2-D arrays only).
    ndim : int or (int, int or None)
        The rank required, or the range ``(lowest, highest)`` of ranks
        accepted (``None``: no highest).
    layout : str
        How messages describe the axes (``"(n_samples, C, H, W)"``).
    feature_axis : int
        The axis whose length must be ``n_features`` (the last by default;
        ``1`` for channels).

    Returns
    -------
    ndarray, shape (n_samples, n_features)
        C-contiguous (or Fortran-contiguous when allowed) of the target dtype;
        the input itself when it already was.
    """
    array = _as_numeric_array(value, who, name)
    low, high = (ndim, ndim) if isinstance(ndim, int) else ndim
    if array.ndim < low or (high is not None and array.ndim > high):
        raise ValueError(
            f"{who}: {name} must be {describe_ranks(low, high)} {layout}, got {array.ndim}-D array of "
            f"shape {array.shape}"
        )
    if n_features is not None and array.shape[feature_axis] != n_features:
        what = "features (columns)" if feature_axis in (-1, array.ndim - 1) else f"channels (axis {feature_axis})"
        raise ValueError(
            f"{who}: {name} must have {n_features} {what}, got shape {array.shape}"
        )
    target = float_dtype_of(array) if dtype is None else dtype
    allow_fortran = allow_fortran and array.ndim == 2
    if array.dtype == target:
        if array.flags.c_contiguous or (allow_fortran and array.flags.f_contiguous):
            return array
    order = "K" if allow_fortran and array.flags.f_contiguous else "C"
    return np.array(array, dtype=target, order=order, copy=True)


def as_rows(array: np.ndarray) -> np.ndarray:
    """A C-contiguous ``(n_samples, ..., k)`` array as its 2-D ``(rows, k)`` view (a view, never a copy)."""
    if array.ndim == 2:
        return array
    return array.reshape(int(np.prod(array.shape[:-1], dtype=np.int64)), array.shape[-1])


def describe_ranks(low: int, high: int | None) -> str:
    """``"2-D"``, ``"2-D or 3-D"``, ``"2-D or more"``: a rank range for messages."""
    if high == low:
        return f"{low}-D"
    if high is None:
        return f"{low}-D or more"
    return " or ".join(f"{rank}-D" for rank in range(low, high + 1))


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


def check_parameter(value: Any, who: str, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A parameter set to something else than the layer's own array (a list, another dtype or shape):
    a new C-ordered array of ``dtype``, or ``ValueError``/``TypeError`` naming the layer and parameter."""
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{who}: parameter {name} must have shape {shape}, got {array.shape}")
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{who}: parameter {name} must be real numbers, got dtype {array.dtype}")
    return np.array(array, dtype=dtype, order="C", copy=True)


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


def check_indices(value: Any, who: str, high: int, *, name: str = "x",
                  ndim: int | tuple[int, int | None] = (1, 2)) -> np.ndarray:
    """Check integer indices in ``[0, high)`` and return them as a C-contiguous int64 array.

    Floats are refused even when they hold whole numbers (as PyTorch's
    embedding refuses them), and so are booleans.

    Parameters
    ----------
    value : array_like of int
    who : str
        Name of the caller, used in messages.
    high : int
        One past the largest index allowed.
    name : str
        Name of the argument in messages.
    ndim : int or (int, int or None)
        The rank required, or the range of ranks accepted.

    Returns
    -------
    ndarray of int64
        The input itself when it already was one, C-contiguous.
    """
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):
        raise TypeError(f"{who}: {name} must hold integer indices, got a scipy.sparse {type(value).__name__}")
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{who}: {name} must be an array of integer indices, got {type(value).__name__}") from error
    if array.dtype.kind not in "iu":
        raise TypeError(f"{who}: {name} must hold integer indices (an integer dtype), got dtype {array.dtype}; "
                        "convert whole-number floats with x.astype(int)")
    low, top = (ndim, ndim) if isinstance(ndim, int) else ndim
    if array.ndim < low or (top is not None and array.ndim > top):
        raise ValueError(f"{who}: {name} must be {describe_ranks(low, top)} (n_samples,) or (n_samples, L) of "
                         f"indices, got {array.ndim}-D array of shape {array.shape}")
    if array.size:
        smallest, largest = int(array.min()), int(array.max())
        if smallest < 0 or largest >= high:
            bad = smallest if smallest < 0 else largest
            raise ValueError(f"{who}: {name} holds index {bad}, outside [0, {high - 1}] (the table has {high} rows)")
    if array.dtype == np.int64 and array.dtype.isnative and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=np.int64)


class InputSpec(NamedTuple):
    """What a net's input must be: the ranks its first layer takes, and whether it takes integer indices."""

    ranks: tuple[int, int | None] = (2, 2)
    """``(lowest, highest)`` rank accepted; ``highest`` None: no limit."""
    integer: bool = False
    """Integer indices (kept as integers), else real numbers (converted to the net's dtype)."""
    layer: Any = None
    """The layer that declared it (named in messages), or None."""

    def layer_name(self) -> str:
        """The layer as messages name it: its repr (a str is taken as it is)."""
        return self.layer if isinstance(self.layer, str) else repr(self.layer)

    def layout(self) -> str:
        """How messages describe the axes: ``(n_samples, n_features)`` for 2-D, else the layer's shapes."""
        if self.ranks == (2, 2) and not self.integer:
            return "(n_samples, n_features)"
        return f"as {self.layer_name()} takes" if self.layer is not None else "(n_samples, ...)"


def input_spec_of(layers: Iterable[Any]) -> InputSpec:
    """The ``InputSpec`` of a sequence of layers: that of the first layer that declares input ranks.

    Layers that keep any shape (activations, dropout: ``input_ranks`` None)
    pass the question on to the next layer; a net or block (``input_spec()``)
    answers for its own first layers. A layer without the attribute takes
    2-D batches. When no layer decides, any batch of two or more axes.
    """
    for layer in layers:
        nested = getattr(layer, "input_spec", None)
        if callable(nested):
            spec = nested()
            if spec.layer is not None:
                return spec
            continue
        ranks = getattr(layer, "input_ranks", (2, 2))
        if ranks is None:
            continue
        return InputSpec((int(ranks[0]), None if ranks[1] is None else int(ranks[1])),
                         bool(getattr(layer, "integer_input", False)), layer)
    return InputSpec((2, None), False, None)


def check_input_kind(shape: tuple[int, ...], dtype: np.dtype, who: str, spec: InputSpec, name: str = "x") -> None:
    """Raise unless an input's rank and kind of numbers are what ``spec`` takes (messages name the layer)."""
    low, high = spec.ranks
    if len(shape) < low or (high is not None and len(shape) > high):
        raise ValueError(f"{who}: {name} must be {describe_ranks(low, high)} {spec.layout()}, got shape "
                         f"{tuple(shape)}")
    if spec.integer and np.dtype(dtype).kind not in "iu":
        raise TypeError(f"{who}: {name} must hold integer indices for {spec.layer_name()}, got dtype {dtype}; "
                        "convert whole-number floats with x.astype(int)")


def check_input(value: Any, who: str, spec: InputSpec, dtype: np.dtype, *, name: str = "x") -> np.ndarray:
    """A whole input checked against ``spec``: integers kept as they are, real numbers in ``dtype``.

    Returns
    -------
    ndarray
        C-contiguous (a 2-D float input may stay Fortran-ordered only when
        it needs no conversion, as ``check_batch`` returns it).
    """
    if spec.integer:
        array = _as_numeric_array(value, who, name)
        check_input_kind(array.shape, array.dtype, who, spec, name)
        return np.ascontiguousarray(array)
    return check_batch(value, who, name=name, dtype=dtype, ndim=spec.ranks, layout=spec.layout())


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
