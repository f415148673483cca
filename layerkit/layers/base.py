"""The ``Layer`` base class: the contract every layer, built-in or plugin, follows."""
from __future__ import annotations

import inspect
import numbers
from functools import lru_cache
from typing import Any

import numpy as np

from layerkit._backend import core
from layerkit._deferred import parameters_changed
from layerkit.warnings import check_trainable


class Layer:
    """Base class of all layers.

    A layer maps a batch ``x`` of shape ``(n_samples, n_in)`` to an output of
    shape ``(n_samples, n_out)`` (or batches of more axes, as declared by
    ``input_ranks``). It keeps no per-call state: ``backward``
    receives the same ``x`` that ``forward`` saw (``Net`` keeps it in its
    trace), so several forward passes may run before their backward passes.

    To write a layer, subclass and define ``forward`` and ``backward``. A layer
    with parameters lists their attribute names in ``param_names`` and its
    ``backward`` stores the gradient of each as ``"d" + name`` (``dW``, ``db``);
    ``step`` then works without further code.

    Attributes
    ----------
    param_names : tuple of str
        Names of the attributes that hold trainable arrays.
    example_kwargs : dict
        Small constructor arguments for automatic checks (gradient checks of
        every registered layer); ``{}`` when the layer needs none.
    example_input_shape : tuple of int
        Shape ``(n_samples, n_in)`` of an input that fits ``example_kwargs``
        (``(n_samples, C, H, W)`` for a layer of images). A layer whose
        inputs are not real numbers also defines ``example_input(rng)``, which
        returns such an input (``Embedding``: indices into its table).
    kinks : tuple of float
        Input values where the layer is not differentiable (``ReLU``: ``(0.0,)``);
        gradient checks keep their inputs away from them.
    state_names : tuple of str
        Names of attributes that hold arrays which are not trained but belong
        to the model and are saved with it (batch norm's ``running_mean`` and
        ``running_var``). A forward pass in training mode may update them.
    integer_input : bool
        The layer takes integer indices (``Embedding``), never floats: ``fit``
        and ``predict`` then pass an integer ``x`` through unconverted.
    training : bool
        Training mode (``True``, the default) or inference mode. Only layers
        that behave differently in the two (dropout, batch norm) read it;
        ``Net.train()`` and ``Net.eval()`` set it on every layer.

    Notes
    -----
    The per-pass protocol: ``forward_pass(x, training)`` returns ``(y, ctx)``
    and ``backward_pass(x, ctx, dy)`` receives that ``ctx`` back. ``Net`` keeps
    ``ctx`` in the pass's trace entry, so whatever a backward pass needs of its
    forward pass besides ``x`` (dropout's mask, batch norm's batch statistics)
    belongs to the pass, never to the layer. The defaults call ``forward`` and
    ``backward`` with ``ctx = None``; a layer overrides both when it needs more.
    """

    param_names: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    training: bool = True
    example_kwargs: dict[str, Any] = {}
    example_input_shape: tuple[int, int] = (5, 4)
    kinks: tuple[float, ...] = ()
    seeded: bool = False  # set by a layer built with its own rng (Net(layers, rng=...) refuses the others)
    integer_input: bool = False

    @property
    def input_ranks(self) -> tuple[int, int | None]:
        """The ranks of the input this layer takes, ``(lowest, highest)``; ``highest`` None: no limit.

        ``fit``, ``evaluate`` and the estimators check ``x`` against the
        first layer that declares ranks (``Net.input_spec``). By default the
        rank of ``example_input_shape``, exactly; layers that take several
        ranks set the class attribute (``Linear``: ``(2, None)``), and
        layers that keep any shape (activations, dropout) set ``None``, so
        the next layer decides.
        """
        rank = len(self.example_input_shape)
        return (rank, rank)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_in)

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        """
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def backward(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Gradient of the input given the gradient of the output.

        Stores the gradient of each parameter ``p`` as attribute ``d<p>``.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_in)
            The input that ``forward`` saw.
        dy : ndarray, shape (n_samples, n_out)
            Gradient of the loss with respect to the output.

        Returns
        -------
        dx : ndarray, shape (n_samples, n_in)
        """
        raise NotImplementedError(f"{type(self).__name__} must define backward(x, dy)")

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        """One forward pass in the given mode: ``(y, ctx)``.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_in)
        training : bool
            ``True`` for training mode, ``False`` for inference mode.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        ctx : object
            What ``backward_pass`` needs of this pass besides ``x``; ``None``
            by default (``forward(x)`` is called).
        """
        return self.forward(x), None

    def backward_pass(self, x: np.ndarray, ctx: Any, dy: np.ndarray) -> np.ndarray:
        """The backward pass of a ``forward_pass`` that returned ``ctx``.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_in)
            The input that ``forward_pass`` saw.
        ctx : object
            What that ``forward_pass`` returned beside ``y``.
        dy : ndarray, shape (n_samples, n_out)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_in)
            By default ``backward(x, dy)``.
        """
        return self.backward(x, dy)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer's architecture.

        ``type(layer)(**layer.get_config())`` builds a fresh layer of the same
        shape and dtype (learned values are saved separately, see
        ``layerkit.io``). Values must be JSON-able: str, int, float, bool,
        None, and lists or dicts of them. Layers whose constructor takes
        arguments override this; the default is ``{}``.

        Returns
        -------
        dict
        """
        return {}

    # ------------------------------------------------------------------ params
    def params(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name, in ``param_names`` order."""
        return {name: getattr(self, name) for name in self.param_names}

    def grads(self) -> dict[str, np.ndarray]:
        """The gradients stored by the last ``backward``, by parameter name.

        Raises
        ------
        RuntimeError
            If ``backward`` has not stored a gradient yet.
        """
        grads = {}
        for name in self.param_names:
            grad = getattr(self, "d" + name, None)
            if grad is None:
                raise RuntimeError(
                    f"{self!r}: no gradient d{name} yet; call backward(x, dy) before step()"
                )
            grads[name] = grad
        return grads

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(np.size(p) for p in self.params().values()))

    def output_features(self, n_in: int | None) -> int | None:
        """Width of the output for an input of width ``n_in`` (shape-preserving by default)."""
        return n_in

    def step(self, update: Any) -> None:
        """Update the parameters from the stored gradients.

        Parameters
        ----------
        update : float or optimizer
            A float is a learning rate for plain gradient descent,
            ``p -= update * dp`` in place. Any other object must provide
            ``update_layer(layer)``, which receives this layer and applies its
            own rule (see ``layerkit.optim``); the rule never lives here.
        """
        parameters_changed()
        # the float check first: numbers.Real is an ABC, slow to test on every step
        is_rate = type(update) is float or (isinstance(update, numbers.Real) and not isinstance(update, bool))
        if not self.param_names:
            check_trainable(self, optimizer=not is_rate)
            return
        if is_rate:
            check_trainable(self, optimizer=False)
            rate = float(update)
            for name, grad in self.grads().items():
                param = getattr(self, name)
                if not isinstance(param, np.ndarray) or param.dtype.kind != "f" or not param.flags.writeable:
                    # `param -= ...` on a float, a NumPy scalar or a list would rebind a local
                    # name and leave the layer unchanged: refuse, as the optimizers do
                    raise TypeError(
                        f"{self!r}.step: parameter {name!r} must be a writeable float ndarray to be "
                        f"updated in place, got {type(param).__name__}"
                        f"{f' of dtype {param.dtype}' if isinstance(param, np.ndarray) else ''}; "
                        f"store it as an array (self.{name} = np.array(value, dtype=float), 0-d for a scalar)"
                    )
                if (isinstance(grad, np.ndarray)
                        and param.dtype == grad.dtype and param.dtype.isnative  # (the kernel: native order)
                        and param.flags.c_contiguous and grad.flags.c_contiguous
                        and param.shape == grad.shape
                        and param.dtype.itemsize in (4, 8)):
                    core.axpy(-rate, grad, param)
                else:
                    param -= rate * np.asarray(grad)
            return
        apply = getattr(update, "update_layer", None)
        if apply is None:
            raise TypeError(
                f"{self!r}.step: expected a learning rate (float) or an optimizer with "
                f"update_layer(layer), got {type(update).__name__}"
            )
        apply(self)

    # ------------------------------------------------------------ initial values
    def reset_parameters(self, rng: Any = None) -> None:
        """Redraw every parameter (and state array) from the layer's initialiser, in place.

        The default rebuilds the layer from ``get_config()`` (passing ``rng``
        when the constructor accepts one) and copies the fresh layer's
        ``param_names`` and ``state_names`` arrays into this one's, so the
        arrays keep their identity (a compiled net and an optimizer keep
        seeing them). A layer whose constructor takes ``rng`` for something
        else than its parameters (dropout's masks) gets the fresh generator
        too. Layers without parameters, state or ``rng`` do nothing.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            The draws: the same seed gives the same values as building the
            layer anew with ``rng=seed``.

        Raises
        ------
        TypeError
            A layer that cannot be rebuilt from its ``get_config()`` (define
            ``reset_parameters`` on it).
        """
        takes_rng = constructor_accepts(type(self), "rng")
        names = tuple(self.param_names) + tuple(self.state_names)
        if not names and not takes_rng:
            return
        config = dict(self.get_config())
        if takes_rng:
            config["rng"] = rng
        try:
            fresh = type(self)(**config)
        except Exception as error:
            raise TypeError(
                f"{self!r}.reset_parameters: cannot rebuild the layer from its get_config() {config!r} "
                f"({type(error).__name__}: {error}); define get_config() returning the constructor's arguments, "
                "or override reset_parameters(rng)") from error
        for name in names:
            current, drawn = getattr(self, name), getattr(fresh, name)
            if isinstance(current, np.ndarray) and current.shape == np.shape(drawn) and current.flags.writeable:
                current[...] = drawn
            else:
                setattr(self, name, drawn)
        if takes_rng and isinstance(getattr(fresh, "rng", None), np.random.Generator):
            self.rng = fresh.rng

    def __repr__(self) -> str:
        """``Name(arguments)`` from ``get_config()``: required arguments by position, others by name."""
        if type(self).get_config is Layer.get_config:  # no arguments (and the per-call messages stay cheap)
            return f"{type(self).__name__}()"
        try:
            config = dict(self.get_config())
        except Exception:  # a repr never fails: a config that cannot be made shows as no arguments
            config = {}
        return f"{type(self).__name__}({format_arguments(type(self), config)})"


@lru_cache(maxsize=512)
def _constructor_parameters(cls: type) -> tuple[inspect.Parameter, ...]:
    try:
        return tuple(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return ()


def constructor_accepts(cls: type, name: str) -> bool:
    """Whether ``cls(...)`` takes an argument ``name`` (or ``**kwargs``)."""
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in _constructor_parameters(cls))


def format_arguments(cls: type, config: dict[str, Any]) -> str:
    """``config`` as call arguments of ``cls``: leading required ones by position, the rest ``name=value``.

    Arguments equal to their default are left out.
    """
    parameters = _constructor_parameters(cls)
    parts, by_name, positional = [], dict(config), True
    for parameter in parameters:
        if parameter.name not in by_name:
            positional = positional and parameter.default is not parameter.empty
            continue
        value = by_name.pop(parameter.name)
        if parameter.default is not parameter.empty:
            positional = False
            try:
                if value == parameter.default:
                    continue
            except Exception:  # an array default: show the value
                pass
        if positional and parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            parts.append(repr(value))
        else:
            parts.append(f"{parameter.name}={value!r}")
    parts.extend(f"{name}={value!r}" for name, value in by_name.items())
    return ", ".join(parts)
