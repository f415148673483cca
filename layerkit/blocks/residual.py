"""``Residual``: ``y = x + f(x)``, a skip connection around a chain of layers."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from layerkit._composite import Composite
from layerkit._validation import as_optional_rng, check_batch, check_grad_output
from layerkit.blocks._inner import as_batch, as_net, net_input_width
from layerkit._plan import Plan
from layerkit.net import Net, Trace
from layerkit.workspace import Workspace


class Residual(Composite):
    """A residual block, ``y = x + f(x)`` (He et al., 2016), with ``f`` the chain of ``layers``.

    ``f`` must keep the width: its output has the shape of its input.

    Parameters
    ----------
    layers : list of Layer or spec items, or Net
        The chain ``f``; spec items (``"relu"``, ``{"type": "linear", ...}``)
        are built through the registry, as in ``Net.from_config``.
    rng : None, int or numpy.random.Generator
        Passed to the spec items whose layer accepts ``rng``.

    Attributes
    ----------
    f : Net
        The inner chain (runs of built-in layers in it are fused). Its
        parameters are named ``"f.<index>.<name>"`` (``"f.0.W"``).

    Raises
    ------
    ValueError
        When ``f`` changes the width: at construction when its layers declare
        their widths, else at the first forward pass.

    Notes
    -----
    The trace entry of a pass holds ``f``'s trace in ``entry.ctx`` (a
    ``Trace``): ``entry.ctx[i].x`` is the input of ``f``'s layer ``i``.

    Examples
    --------
    >>> import layerkit as lk
    >>> block = lk.Residual([lk.Linear(8, 8, rng=0), lk.ReLU(), lk.Linear(8, 8, rng=1)])
    >>> net = lk.Net([lk.Linear(4, 8, rng=2), block, lk.ReLU(), lk.Linear(8, 1, rng=3)])
    >>> net.param_names[2]
    '1.f.0.W'
    """

    example_kwargs = {"layers": [{"type": "linear", "n_in": 4, "n_out": 4, "rng": 0}, "tanh",
                                 {"type": "linear", "n_in": 4, "n_out": 4, "rng": 1}]}

    def __init__(self, layers: Sequence[Any] | Net, *, rng: Any = None) -> None:
        self.f = as_net(layers, "Residual", as_optional_rng(rng, "Residual: rng"))
        self._check_layers()

    _structure = "f"

    def _check_children(self) -> None:
        """``f`` is a non-empty ``Net`` that keeps the width (where its layers declare their widths)."""
        if not isinstance(self.f, Net):
            raise TypeError(f"Residual: f must be a Net, got {type(self.f).__name__}")
        if not self.f.layers:
            raise ValueError("Residual: f must hold at least one layer, got none (y = x + f(x) with an "
                             "empty f would be 2 * x)")
        n_in = net_input_width(self.f)
        n_out = self.f.output_features(n_in) if n_in is not None else None
        if n_in is not None and n_out is not None and n_out != n_in:
            raise ValueError(f"{self!r}: f maps {n_in} features to {n_out}; a residual block must keep the "
                             "width (y = x + f(x)), so its last layer must output as many features as the "
                             "first takes")

    def children(self) -> list[tuple[str, Any]]:
        return [("f", self.f)]

    @property
    def n_in(self) -> int | None:
        # the input width f's layers declare, or None: what configs check widths with (no docstring:
        # a documented attribute named n_in would be a second target of every "n_in" in the API pages)
        return net_input_width(self.f)

    @property
    def dtype(self) -> np.dtype:
        """``f``'s dtype."""
        return self.f.dtype

    def declared_dtype(self) -> np.dtype | None:
        """``f``'s declared dtype, ``None`` when none of its layers declares one."""
        return self.f.declared_dtype()

    def output_features(self, n_in: int | None) -> int | None:
        """The width is kept."""
        return n_in

    def forward_pass(self, x: np.ndarray, training: bool, *,
                     workspace: Workspace | None = None) -> tuple[np.ndarray, Trace]:
        """``(x + f(x), f's trace)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
        training : bool
        workspace : Workspace, optional
            The outer net's (``Net.forward(x, workspace=ws)`` passes it): ``f``'s
            pass and ``y`` are written into its buffers.

        Returns
        -------
        y : ndarray, shape (n_samples, n_features)
        ctx : Trace
            The trace of ``f``'s pass.
        """
        fx, trace = self.f.forward_pass(x, training, workspace=workspace)
        if type(fx) is not np.ndarray or fx.ndim < 2:
            fx = as_batch(fx, repr(self), "f")
        if type(x) is not np.ndarray or x.dtype != fx.dtype or x.ndim < 2:
            x = check_batch(x, repr(self), dtype=fx.dtype, ndim=(2, None), layout="(n_samples, ..., n_features)")
        if fx.shape != x.shape:
            raise ValueError(f"{self!r}: f maps an input of shape {x.shape} to shape {fx.shape}; a residual "
                             "block must keep the shape (y = x + f(x))")
        if workspace is not None:
            return np.add(fx, x, out=workspace._array(self, "y", fx.shape, fx.dtype)), trace
        if type(self.f._plan) is Plan and fx is not trace[-1][1]:  # a new array of f's chain, in no trace
            return np.add(fx, x, out=fx), trace
        return fx + x, trace

    def backward_pass(self, x: np.ndarray, ctx: Trace, dy: np.ndarray) -> np.ndarray:
        """``dx = dy + f'(x)^T dy``; leaves ``f``'s gradients on its layers.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_features)
        ctx : Trace
            What ``forward_pass`` returned beside ``y``.
        dy : array_like, shape (n_samples, n_features)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_features)
        """
        dfx = self.f.backward(ctx, dy, input_grad=True)
        if type(dy) is not np.ndarray or dy.shape != dfx.shape or dy.dtype != dfx.dtype:
            dy = check_grad_output(dy, repr(self), dfx.shape, dfx.dtype)
        workspace = Workspace.of(ctx)
        if workspace is not None:
            return np.add(dfx, dy, out=workspace._array(self, "dx", dfx.shape, dfx.dtype))
        if type(self.f._plan) is Plan:  # a new array of f's chain
            return np.add(dfx, dy, out=dfx)
        return dfx + dy

    def inner_traces(self, ctx: Trace) -> list[tuple[str, Trace]]:
        """``[("f", f's trace)]``: what ``Trace.walk`` enters."""
        return [("f", ctx)]

    def backward_params(self, x: np.ndarray, ctx: Trace, dy: np.ndarray) -> None:
        """``f``'s backward pass without its input gradient (the block is a net's first layer)."""
        self.f.backward(ctx, dy, input_grad=False)

    def step(self, update: Any) -> None:
        """``f.step(update)`` for a learning rate (``f``'s fused update), else ``Composite.step``."""
        if type(update) is float:
            self.f.step(update)
        else:
            super().step(update)

    def get_config(self) -> dict[str, Any]:
        """``{"layers": f's spec}``."""
        return {"layers": self.f.config()}

    def __repr__(self) -> str:
        return f"Residual({self.f.layers!r})"
