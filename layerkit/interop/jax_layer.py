"""``JaxLayer``: a pure JAX function ``fn(params, x)`` as a layerkit layer, with gradients from ``jax.vjp``."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, ContextManager

import numpy as np

from layerkit._validation import check_batch
from layerkit.interop._common import (WrappedLayer, attribute_names, check_output, common_float_dtype, require,
                                      store_gradient)

jax = require("jax", "jax", "JaxLayer")
jnp = require("jax.numpy", "jax", "JaxLayer")

# instance attributes of a JaxLayer, which no parameter name may take
_RESERVED = ("fn", "jit", "dtype", "param_paths", "_treedef", "_shapes", "_compiled")


def _x64_scope() -> Callable[[bool], ContextManager]:
    """JAX's context manager that switches 64-bit mode for a block (``jax.enable_x64``; older JAX: experimental)."""
    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # JAX < 0.6 has it under jax.experimental
        from jax.experimental import enable_x64 as scope
    return scope


def _key_name(key: Any) -> str:
    """One step of a pytree path as text: a dict key, a sequence index or an attribute name."""
    for field in ("key", "idx", "name"):
        if hasattr(key, field):
            return str(getattr(key, field))
    return str(key)


def _compile(fn: Callable, jit: bool) -> tuple[Callable, Callable]:
    """``fn`` and ``(params, x, dy) -> (y, d_params, dx)`` through ``jax.vjp``, jitted when asked."""
    def forward_and_pullback(params: Any, x: Any, dy: Any) -> tuple[Any, Any, Any]:
        y, pullback = jax.vjp(fn, params, x)
        d_params, dx = pullback(jax.tree_util.tree_map(lambda out: dy.astype(out.dtype), y))
        return y, d_params, dx
    if not jit:
        return fn, forward_and_pullback
    return jax.jit(fn), jax.jit(forward_and_pullback)


class JaxLayer(WrappedLayer):
    """A pure JAX function as a layer: NumPy in, NumPy out, gradients from ``jax.vjp``.

    Parameters
    ----------
    fn : callable
        ``fn(params, x) -> y``, a pure function written with ``jax.numpy``
        (jitted or not): ``params`` is a pytree shaped like ``params`` below,
        ``x`` of shape ``(n_samples, n_in)`` and ``y`` of shape
        ``(n_samples, n_out)``.
    params : pytree of arrays
        The initial parameters, for instance ``{"W": W, "b": b}`` or nested
        dicts and lists of arrays, all float32 or all float64. They are copied
        into NumPy arrays that the layer owns.
    dtype : float32 or float64, optional
        The dtype of a function without parameters (default float64); for one
        with parameters it must be theirs.
    jit : bool
        Compile ``fn`` and its forward-and-pullback with ``jax.jit`` (the
        default; a backward pass then costs one compiled call instead of
        tracing ``fn`` anew). ``False`` for a function that ``jax.jit``
        cannot trace (Python control flow on values).

    Attributes
    ----------
    param_names : tuple of str
        One name per leaf of ``params``: its path joined by underscores
        (``{"dense": {"W": ...}}`` gives ``"dense_W"``, a list ``[W, b]``
        gives ``"0"`` and ``"1"``). Each is a NumPy array attribute that
        layerkit's optimizers and ``step`` update in place; every call converts
        the current arrays to JAX arrays.
    d<name> : ndarray
        The gradient of each parameter, stored by ``backward``.
    param_paths : dict of str to str
        The pytree path (``jax.tree_util.keystr``) of each name.
    dtype : numpy.dtype
        float32 or float64: inputs are converted to it, outputs have it.

    Notes
    -----
    float64: JAX computes in float32 unless its 64-bit mode is on. A float64
    ``JaxLayer`` runs ``fn`` inside ``jax.enable_x64(True)`` (JAX's own
    scoped switch), so it computes in float64 whatever the global
    ``jax_enable_x64`` flag says, and leaves the flag alone; a float32 layer
    computes in float32. A function that returns a lower precision than the
    layer's dtype is refused with a TypeError rather than widened silently.

    The layer keeps no per-call state: ``backward(x, dy)`` re-runs ``fn``
    under ``jax.vjp`` from ``x``, so several passes may be in flight. ``fn``
    must be pure (no randomness of its own); it has no training mode.

    A ``JaxLayer`` cannot be written to a config, a model file or ONNX: save
    ``layer.param_tree()`` yourself and rebuild the layer in code.
    """

    wraps = "a JAX function"
    save_hint = "save layer.param_tree() yourself (numpy.savez) and rebuild the JaxLayer in code"
    export_hint = "build the net from layerkit's layers to export it"

    def __init__(self, fn: Callable[[Any, Any], Any], params: Any, *, dtype: Any = None, jit: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"JaxLayer: fn must be a callable fn(params, x), got {type(fn).__name__}")
        leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
        arrays = []
        for path, leaf in leaves:
            array = np.asarray(leaf)
            if array.dtype.kind != "f":
                raise TypeError(f"JaxLayer: parameter {jax.tree_util.keystr(path)} must hold floats, got dtype "
                                f"{array.dtype}")
            arrays.append(array)
        own = common_float_dtype([a.dtype for a in arrays], "JaxLayer", np.float64 if dtype is None else dtype)
        if dtype is not None and np.dtype(dtype) != own:
            raise ValueError(f"JaxLayer: dtype={np.dtype(dtype)} does not match the parameters' {own}; convert "
                             "the parameters or leave dtype out")
        if not isinstance(jit, bool):
            raise TypeError(f"JaxLayer: jit must be True or False, got {type(jit).__name__} {jit!r}")
        self.fn = fn
        self.jit = jit
        self.dtype = own
        self._compiled = _compile(fn, jit)
        self._treedef = treedef
        names = attribute_names(self, ["_".join(_key_name(k) for k in path) for path, _ in leaves], _RESERVED)
        self.param_names = names
        self.param_paths = {name: jax.tree_util.keystr(path) for name, (path, _) in zip(names, leaves)}
        self._shapes = {name: array.shape for name, array in zip(names, arrays)}
        for name, array in zip(names, arrays):
            setattr(self, name, np.array(array, dtype=own, order="C", copy=True))

    # ------------------------------------------------------------------ calls
    def param_tree(self) -> Any:
        """The parameters as a pytree shaped like the ``params`` given, holding the layer's NumPy arrays."""
        return jax.tree_util.tree_unflatten(self._treedef, [getattr(self, name) for name in self.param_names])

    def _precision(self) -> ContextManager:
        return _x64_scope()(True) if np.dtype(self.dtype) == np.float64 else nullcontext()

    def _arguments(self, x: Any) -> tuple[Any, Any]:
        """``fn``'s arguments: the current parameters (checked) and ``x``.

        The jitted functions take the NumPy arrays themselves (converting them
        on the way in costs less than ``jnp.array`` each; every call ends by
        reading its results, before the arrays can change); ``fn`` called
        directly gets JAX arrays.
        """
        convert = (lambda a: a) if self.jit else jnp.asarray
        leaves = []
        for name in self.param_names:
            array = np.asarray(getattr(self, name))
            if array.shape != self._shapes[name]:
                raise ValueError(f"{self!r}: parameter {name} must keep its shape {self._shapes[name]}, got "
                                 f"{array.shape}")
            if array.dtype.kind not in "fiu":
                raise TypeError(f"{self!r}: parameter {name} must hold real numbers, got dtype {array.dtype}")
            leaves.append(convert(array.astype(self.dtype, copy=False)))
        x = check_batch(x, repr(self), dtype=self.dtype)
        return jax.tree_util.tree_unflatten(self._treedef, leaves), convert(x)

    def _check_output(self, y: Any, n_samples: int) -> None:
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            raise TypeError(f"{self!r}: fn must return one array, got {type(y).__name__}")
        check_output(y, n_samples, np.dtype(self.dtype), repr(self), "function")

    def _output(self, y: Any, n_samples: int) -> np.ndarray:
        self._check_output(y, n_samples)
        return np.array(y, dtype=self.dtype, copy=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``fn(params, x)`` as a NumPy array.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
            Converted to ``dtype``.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out), dtype ``self.dtype``
        """
        with self._precision():
            params, x_j = self._arguments(x)
            return self._output(self._call(self._compiled[0], params, x_j), x_j.shape[0])

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Run ``fn`` under ``jax.vjp`` from ``x``; store ``d<name>``, return ``dx``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        dy : array_like, shape (n_samples, n_out)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_in), dtype ``self.dtype``
        """
        with self._precision():
            params, x_j = self._arguments(x)
            dy = check_batch(dy, repr(self), name="dy", dtype=self.dtype)
            try:
                y, d_params, dx = self._call(self._compiled[1], params, x_j, dy if self.jit else jnp.asarray(dy))
            except (TypeError, ValueError):
                expected = self._output_shape(params, x_j)  # a clear error for a wrong output or dy first
                if dy.shape != expected:
                    raise ValueError(f"{self!r}: dy must have the shape of the layer's output {expected}, got "
                                     f"{dy.shape}") from None
                raise
            self._check_output(y, x_j.shape[0])  # (the output itself is not needed: no host copy)
        for name, grad in zip(self.param_names, jax.tree_util.tree_leaves(d_params)):
            store_gradient(self, name, np.asarray(grad))
        return np.array(dx, dtype=self.dtype, copy=True)

    def _call(self, function: Callable, *args: Any) -> Any:
        try:
            return function(*args)
        except jax.errors.ConcretizationTypeError as error:
            if not self.jit:
                raise
            raise TypeError(f"{self!r}: jax.jit cannot trace fn (it branches on values: {type(error).__name__}); "
                            "pass JaxLayer(fn, params, jit=False)") from error

    def _output_shape(self, params: Any, x: Any) -> tuple[int, ...]:
        """The shape of ``fn``'s output, checked like an output (without computing it)."""
        y = jax.eval_shape(self.fn, params, x)
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            raise TypeError(f"{self!r}: fn must return one array, got {type(y).__name__}")
        check_output(y, x.shape[0], np.dtype(self.dtype), repr(self), "function")
        return tuple(y.shape)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_compiled", None)  # compiled functions are rebuilt from fn
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._compiled = _compile(self.fn, self.jit)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        shapes = ", ".join(f"{n}={tuple(np.shape(getattr(self, n, ())))}" for n in self.param_names)
        text = f"JaxLayer({name}{', ' + shapes if shapes else ''})"
        return text if len(text) <= 80 else f"JaxLayer({name}, {len(self.param_names)} parameters)"
