"""The input gradient that ``Net.backward`` no longer computes unless asked: a deprecation path.

``net.backward(trace, dy)`` used to return the gradient of the net's input,
one more matrix product through the first ``Linear`` that training never
uses. Without ``input_grad``, it now skips that product and returns a
``DeferredInputGrad``: code that still uses the result as an array gets a
``FutureWarning`` and the gradient, computed then from the same pass, as long
as nothing it depends on has changed since (a parameter update by any
``step``, a workspace's buffers reused by a later pass). Otherwise it raises a
``RuntimeError`` that says to pass ``input_grad=True``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["DeferredInputGrad", "parameters_changed"]

MESSAGE = ("Net.backward no longer computes the input gradient unless asked; pass input_grad=True "
           "(or input_grad=False to say that you do not need it)")

_updates = [0]  # how many parameter updates (any step) this process has run


def parameters_changed() -> None:
    """Note a parameter update: deferred input gradients made before it can no longer be computed."""
    _updates[0] += 1


def _gradients(net: Any) -> list[tuple[Any, str, Any]]:
    """``(layer, "d<name>", array or None)`` for every parameter gradient of ``net``, nested layers too."""
    found = []
    for _, layer in net.walk():
        for name in getattr(layer, "param_names", ()):
            found.append((layer, "d" + name, getattr(layer, "d" + name, None)))
    return found


class DeferredInputGrad:
    """The gradient of a net's input, computed on first use as an array (with a ``FutureWarning``).

    Returned by ``Net.backward(trace, dy)`` when ``input_grad`` is not
    given. Pass ``input_grad=True`` to get the array itself, or
    ``input_grad=False`` to get ``None`` (no warning either way).
    """

    __slots__ = ("_net", "_trace", "_dy", "_updates", "_value")

    def __init__(self, net: Any, trace: Any, dy: Any) -> None:
        self._net = net
        self._trace = trace
        self._updates = _updates[0]
        self._value = None
        # a copy: the caller may reuse dy's array (a loss's gradient buffer) before using this
        self._dy = dy.copy() if type(dy) is np.ndarray else np.array(dy, copy=True)

    def _array(self) -> np.ndarray:
        if self._value is not None:
            return self._value
        warnings.warn(MESSAGE, FutureWarning, stacklevel=3)
        if self._updates != _updates[0]:
            raise RuntimeError(
                "Net.backward: the input gradient was not computed (input_grad was not given), and the "
                "parameters have been updated since, so it cannot be computed now; pass input_grad=True "
                "to Net.backward")
        saved = [(layer, name, grad, None if grad is None else np.array(grad, copy=True))
                 for layer, name, grad in _gradients(self._net)]
        try:
            value = self._net.backward(self._trace, self._dy, input_grad=True)
        except RuntimeError as error:  # a workspace that served a later pass
            raise RuntimeError(f"Net.backward: the input gradient was not computed (input_grad was not "
                               f"given), and cannot be computed now ({error}); pass input_grad=True to "
                               "Net.backward") from error
        finally:  # the parameters' gradients as the backward pass left them (clipped, say)
            for layer, name, grad, copy in saved:
                if grad is None:
                    continue
                if getattr(layer, name, None) is not grad:
                    setattr(layer, name, grad)
                np.copyto(grad, copy)
        self._value = value
        self._net = self._trace = self._dy = None
        return value

    # ---------------------------------------------------------------- used as an array
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self._array()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x._array() if isinstance(x, DeferredInputGrad) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getattr__(self, name: str) -> Any:  # .shape, .dtype, .T, .sum(), ...
        if name.startswith("_"):  # (the probes of notebooks and libraries: _repr_html_, __array_struct__, ...)
            raise AttributeError(name)
        return getattr(self._array(), name)

    def __getitem__(self, index: Any) -> Any:
        return self._array()[index]

    def __len__(self) -> int:
        return len(self._array())

    def __iter__(self) -> Any:
        return iter(self._array())

    def __bool__(self) -> bool:
        return bool(self._array())

    def __repr__(self) -> str:
        if self._value is None:
            return "DeferredInputGrad(not computed; pass input_grad=True to Net.backward)"
        return repr(self._value)


def _binary(name: str) -> Any:
    def method(self: DeferredInputGrad, other: Any) -> Any:
        if isinstance(other, DeferredInputGrad):
            other = other._array()
        return getattr(self._array(), name)(other)
    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "pow", "matmul", "mod",
              "radd", "rsub", "rmul", "rtruediv", "rfloordiv", "rpow", "rmatmul", "rmod",
              "eq", "ne", "lt", "le", "gt", "ge"):
    setattr(DeferredInputGrad, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("neg", "pos", "abs"):
    setattr(DeferredInputGrad, f"__{_name}__",
            (lambda op: lambda self: getattr(self._array(), op)())(f"__{_name}__"))
del _name
