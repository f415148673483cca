"""Argument checks shared by the convolution and pooling layers: sizes per spatial axis and padding."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._validation import check_positive_int


def per_axis(value: Any, n_axes: int, who: str, *, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``n_axes`` ints (each >= ``minimum``) as a tuple of ``n_axes`` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_axes:
            raise ValueError(f"{who}: expected an integer or {n_axes} integers, got {value!r}")
        return tuple(check_positive_int(item, who, minimum=minimum) for item in value)
    return (check_positive_int(value, who, minimum=minimum),) * n_axes


def padding_before_after(padding: Any, n_axes: int, kernel: tuple[int, ...], dilation: tuple[int, ...],
                         stride: tuple[int, ...], who: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The padding before and after each spatial axis, from an int, ``n_axes`` ints, ``"same"`` or ``"valid"``.

    ``"same"`` pads ``dilation * (kernel - 1)`` in all, the smaller half before
    (as ``torch.nn.Conv2d``); it needs stride 1, as in torch.
    """
    if isinstance(padding, str):
        if padding == "valid":
            zeros = (0,) * n_axes
            return zeros, zeros
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{who}: padding='same' needs stride 1 (as in torch), got stride {stride}")
            total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
            before = tuple(t // 2 for t in total)
            return before, tuple(t - b for t, b in zip(total, before))
        raise ValueError(f"{who}: expected an integer, {n_axes} integers, 'same' or 'valid', got {padding!r}")
    pads = per_axis(padding, n_axes, who, minimum=0)
    return pads, pads


def describe_padding(padding: Any) -> Any:
    """``padding`` as a config value: a string or an int stays, a sequence becomes a list of ints."""
    if isinstance(padding, str) or isinstance(padding, (int, np.integer)):
        return padding if isinstance(padding, str) else int(padding)
    return [int(p) for p in padding]


def compact(values: tuple[int, ...]) -> Any:
    """One int when all axes agree, else a list (for configs and reprs)."""
    return values[0] if len(set(values)) == 1 else list(values)


def scratch(workspace: Any, owner: Any, role: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The array ``owner`` writes its ``role`` result into: the workspace's (reused every pass) or a new one."""
    if workspace is None:
        return np.empty(shape, dtype)
    return workspace._array(owner, role, shape, dtype)
