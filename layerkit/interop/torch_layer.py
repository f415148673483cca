"""``TorchLayer``: a ``torch.nn.Module`` as a layerkit layer, with gradients from ``torch.autograd``."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

import numpy as np

from layerkit._validation import check_batch, check_grad_output
from layerkit.interop._common import (WrappedLayer, attribute_names, check_output, common_float_dtype, require,
                                      store_gradient)

torch = require("torch", "torch", "TorchLayer")

_NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_TORCH_DTYPES = {value: key for key, value in _NUMPY_DTYPES.items()}
# instance attributes of a TorchLayer, which no parameter name may take
_RESERVED = ("module", "dtype", "torch_names", "_bound", "_dtype_seen")


class _Pass(NamedTuple):
    """The ``ctx`` of a training-mode ``forward_pass``: the recorded graph of that pass."""

    x: Any
    """The input tensor (a leaf that requires grad)."""
    y: Any
    """The module's output tensor."""


@contextmanager
def _mode(module: Any, training: bool) -> Iterator[None]:
    """Run ``module`` in training or inference mode, putting every submodule's own mode back afterwards."""
    if module.training == training and all(m.training == training for m in module.modules()):
        yield
        return
    modes = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for submodule, mode in modes:
            submodule.training = mode


def _has_active_dropout(module: Any) -> bool:
    return any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.training and m.p > 0
               for m in module.modules())


class TorchLayer(WrappedLayer):
    """A ``torch.nn.Module`` as a layer: NumPy in, NumPy out, gradients from ``torch.autograd``.

    Parameters
    ----------
    module : torch.nn.Module
        On the CPU, with float32 or float64 parameters (all of one dtype). It
        maps a tensor of shape ``(n_samples, n_in)`` to one of shape
        ``(n_samples, n_out)``. The layer uses the module itself, not a copy:
        training the layer trains the module.
    dtype : float32 or float64, optional
        The dtype of a module without parameters (default float64); for a
        module with parameters it must be theirs (``module.double()`` makes a
        module float64).

    Attributes
    ----------
    module : torch.nn.Module
        The wrapped module.
    param_names : tuple of str
        One name per trainable parameter (``requires_grad``) of the module, its
        path with dots as underscores (``"0.weight"`` becomes ``"0_weight"``).
        Each such attribute is a NumPy array that shares memory with the
        parameter (``tensor.detach().numpy()``), so layerkit's optimizers,
        clipping and ``step`` change the module's parameters in place.
        Assigning an array to the attribute copies nothing: the parameter then
        uses that array's memory.
    d<name> : ndarray
        The gradient of each parameter, stored by ``backward``.
    state_names : tuple of str
        The module's floating-point buffers (batch norm's running statistics),
        named and shared like the parameters.
    torch_names : dict of str to str
        The module's own name (``"0.weight"``) of each attribute in
        ``param_names`` and ``state_names``.
    dtype : numpy.dtype
        float32 or float64: inputs are converted to it, outputs have it.

    Notes
    -----
    ``forward_pass(x, training=True)`` (what ``Net.forward`` runs in training
    mode) records the pass in torch's graph and returns it as the pass's
    ``ctx``; ``backward_pass`` differentiates that very graph, so dropout masks
    and batch statistics are those of the pass, and several passes may be in
    flight. In inference mode, and in a stand-alone ``backward(x, dy)``, the
    forward pass is recomputed from ``x`` under autograd (buffers such as
    running statistics are not updated twice). A stand-alone ``backward`` of a
    module with active dropout is refused: its mask would not be the forward's.

    A ``TorchLayer`` cannot be written to a config, a model file or ONNX
    (a JSON config cannot rebuild arbitrary Python code): save the module
    with ``torch.save(layer.module.state_dict(), path)``.

    Examples
    --------
    >>> import torch, layerkit as lk                                   # doctest: +SKIP
    >>> net = lk.Net([lk.Linear(4, 8, rng=0), TorchLayer(torch.nn.Tanh()), lk.Linear(8, 1, rng=1)])  # doctest: +SKIP
    """

    wraps = "a torch.nn.Module"
    save_hint = ("save the module with torch.save(layer.module.state_dict(), path) and rebuild the TorchLayer "
                 "in code")
    export_hint = ("export the module on its own with torch.onnx.export(layer.module, ...), or build the net "
                   "from layerkit's layers")

    def __init__(self, module: Any, *, dtype: Any = None) -> None:
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"TorchLayer: module must be a torch.nn.Module, got {type(module).__name__}")
        parameters = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        buffers = [(name, b) for name, b in module.named_buffers() if b.is_floating_point()]
        who = f"TorchLayer({type(module).__name__})"
        for name, tensor in parameters + buffers:
            if tensor.device.type != "cpu":
                raise ValueError(f"{who}: {name!r} is on {tensor.device}; TorchLayer runs on the CPU "
                                 "(module.cpu())")
            if tensor.dtype not in _NUMPY_DTYPES:
                raise TypeError(f"{who}: {name!r} has dtype {tensor.dtype}; parameters and buffers must be "
                                "float32 or float64 (module.float() or module.double())")
        own = common_float_dtype([_NUMPY_DTYPES[t.dtype] for _, t in parameters + buffers], who,
                                 np.float64 if dtype is None else dtype)
        if dtype is not None and np.dtype(dtype) != own:
            raise ValueError(f"{who}: dtype={np.dtype(dtype)} does not match the module's {own}; convert the "
                             "module (module.double() or module.float()) or leave dtype out")
        self.module = module
        self.dtype = own
        self._dtype_seen = own
        names = attribute_names(self, [name for name, _ in parameters + buffers], _RESERVED)
        self.param_names = names[:len(parameters)]
        self.state_names = names[len(parameters):]
        self.torch_names = {attr: name for attr, (name, _) in zip(names, parameters + buffers)}
        self._bound: dict[str, tuple[Any, np.ndarray]] = {}
        self._sync()

    # ------------------------------------------------------------------ the module's tensors
    def _tensors(self) -> dict[str, Any]:
        return {**dict(self.module.named_parameters()), **dict(self.module.named_buffers())}

    def _sync(self) -> None:
        """Keep each attribute and its torch tensor on the same memory.

        A tensor the module replaced (``module.fc = ...``, ``module.to(...)``)
        gets a fresh view; an array assigned to the attribute (or set by the
        gradient checker's float64 copy) becomes the tensor's memory. A changed
        ``dtype`` attribute converts the module first; a module converted by
        itself (``module.float()``) changes the layer's ``dtype``.
        """
        tensors = self._tensors()
        module_dtype = next((_NUMPY_DTYPES.get(t.dtype) for t in tensors.values() if t.is_floating_point()), None)
        if np.dtype(self.dtype) != self._dtype_seen:  # the dtype attribute was set: convert the module
            self.module.to(_TORCH_DTYPES[np.dtype(self.dtype)])
            tensors = self._tensors()
        elif module_dtype is not None and module_dtype != self.dtype:  # the module was converted: follow it
            self.__dict__["dtype"] = module_dtype
        self.__dict__["_dtype_seen"] = np.dtype(self.dtype)
        for attr, name in self.torch_names.items():
            tensor = tensors.get(name)
            if tensor is None:
                raise RuntimeError(f"{self!r}: the module no longer has {name!r}; wrap the changed module "
                                   "in a new TorchLayer")
            bound = self._bound.get(attr)
            value = self.__dict__.get(attr)
            if (bound is not None and value is bound[1] and bound[0] is tensor
                    and tensor.data_ptr() == value.__array_interface__["data"][0]):
                continue  # the usual case: nothing moved
            if bound is not None and value is not bound[1] and value is not None:
                value = self._adopt(attr, name, tensor, value)
            else:
                value = tensor.detach().numpy()
            self.__dict__[attr] = value
            self._bound[attr] = (tensor, value)

    def _adopt(self, attr: str, name: str, tensor: Any, value: Any) -> np.ndarray:
        """Make ``value``, assigned to attribute ``attr``, the memory of the module's ``name``."""
        array = np.asarray(value)
        if array.shape != tuple(tensor.shape):
            raise ValueError(f"{self!r}: {attr} must have the shape of the module's {name!r} "
                             f"{tuple(tensor.shape)}, got {array.shape}")
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{self!r}: {attr} must hold real numbers, got dtype {array.dtype}")
        if not (array.dtype == self.dtype and array.flags.c_contiguous and array.flags.writeable):
            array = np.array(array, dtype=self.dtype, order="C", copy=True)
        with torch.no_grad():
            tensor.data = torch.from_numpy(array)
        return array

    def __setattr__(self, name: str, value: Any) -> None:
        names = self.__dict__.get("torch_names")
        if names is not None and name in names and value is not None:
            # an array assigned to a parameter or buffer becomes the module's memory at once
            tensor = self._tensors().get(names[name])
            if tensor is not None:
                value = self._adopt(name, names[name], tensor, value)
                self._bound[name] = (tensor, value)
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ passes
    def _input(self, x: Any) -> Any:
        return torch.tensor(check_batch(x, repr(self), dtype=self.dtype))  # a copy: the module may work in place

    def _output(self, y: Any, n_samples: int) -> np.ndarray:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{self!r}: the module must return one tensor, got {type(y).__name__}")
        check_output(y, n_samples, self.dtype, repr(self), "module")
        return np.array(y.detach().numpy(), dtype=self.dtype, copy=True)  # never the graph's own memory

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run the module in its current mode, without recording a graph.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
            Converted to ``dtype``.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out), dtype ``self.dtype``
        """
        self._sync()
        x_t = self._input(x)
        with torch.no_grad():
            return self._output(self.module(x_t), x_t.shape[0])

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, _Pass | None]:
        """One pass in the given mode (``module.train(training)`` for the call).

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        ctx : _Pass or None
            In training mode, the graph of the pass (its input and output
            tensors); ``None`` in inference mode, where the backward pass
            recomputes the forward pass from ``x``.
        """
        self._sync()
        x_t = self._input(x)
        with _mode(self.module, bool(training)):
            if not training:
                with torch.no_grad():
                    return self._output(self.module(x_t), x_t.shape[0]), None
            x_t.requires_grad_(True)
            with torch.enable_grad():
                y_t = self.module(x_t)
        return self._output(y_t, x_t.shape[0]), _Pass(x_t, y_t)

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """The backward pass of a ``forward_pass``: through its graph, or recomputed when ``ctx`` is None."""
        if ctx is None:
            with _mode(self.module, False):
                return self.backward(x, dy)
        if not isinstance(ctx, _Pass):
            raise TypeError(f"{self!r}.backward_pass: ctx must be what forward_pass returned, got "
                            f"{type(ctx).__name__}")
        self._sync()
        return self._gradients(ctx.x, ctx.y, dy, retain_graph=True)

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Recompute the forward pass from ``x`` under autograd; store ``d<name>``, return ``dx``.

        The recomputation runs in the module's current mode on copies of its
        buffers, so running statistics are not updated a second time.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        dy : array_like, shape (n_samples, n_out)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_in), dtype ``self.dtype``

        Raises
        ------
        RuntimeError
            The module holds active dropout (training mode, ``p > 0``): the
            recomputed mask would not be the forward pass's. Use
            ``forward_pass``/``backward_pass`` (as ``Net`` does) instead.
        """
        self._sync()
        if _has_active_dropout(self.module):
            raise RuntimeError(
                f"{self!r}.backward: the module holds dropout in training mode, and a stand-alone backward "
                "recomputes the forward pass with a new mask. Run forward_pass(x, True) and "
                "backward_pass(x, ctx, dy) (Net does), or put the layer in inference mode")
        x_t = self._input(x).requires_grad_(True)
        buffers = {name: b.clone() for name, b in self.module.named_buffers()}
        with torch.enable_grad():
            y_t = torch.func.functional_call(self.module, buffers, (x_t,))
        if not isinstance(y_t, torch.Tensor):
            raise TypeError(f"{self!r}: the module must return one tensor, got {type(y_t).__name__}")
        return self._gradients(x_t, y_t, dy, retain_graph=False)

    def _gradients(self, x_t: Any, y_t: Any, dy: Any, *, retain_graph: bool) -> np.ndarray:
        dy = check_grad_output(dy, repr(self), tuple(y_t.shape), self.dtype)
        parameters = [self._bound[name][0] for name in self.param_names]
        grads = torch.autograd.grad(y_t, [x_t, *parameters], torch.tensor(dy), retain_graph=retain_graph,
                                    allow_unused=True)
        for name, parameter, grad in zip(self.param_names, parameters, grads[1:]):
            store_gradient(self, name, np.zeros(tuple(parameter.shape), self.dtype) if grad is None else grad.numpy())
        dx = grads[0]
        return np.zeros(tuple(x_t.shape), self.dtype) if dx is None else np.array(dx.numpy(), dtype=self.dtype)

    # ------------------------------------------------------------------ modes, copies, files
    @property
    def training(self) -> bool:  # type: ignore[override]
        """The module's mode (``module.training``); setting it calls ``module.train(mode)``, as
        ``Net.train()`` and ``Net.eval()`` do."""
        return bool(self.module.training)

    @training.setter
    def training(self, mode: bool) -> None:
        self.module.train(bool(mode))

    def output_features(self, n_in: int | None) -> int | None:
        return None  # an arbitrary module does not say

    def __getstate__(self) -> dict:
        # the arrays are views of the module's tensors: copies and pickles rebuild them from the module
        state = self.__dict__.copy()
        for name in (*self.param_names, *self.state_names):
            state.pop(name, None)
        state["_bound"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sync()

    def __repr__(self) -> str:
        # cheap (error messages of every call are built with it): a container shows its class alone
        module = self.module
        if next(module.children(), None) is None:
            text = repr(module)
            if len(text) <= 60:
                return f"TorchLayer({text})"
        return f"TorchLayer({type(module).__name__}(...))"
