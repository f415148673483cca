"""``Branches``: the base of the blocks whose branches all see the same input (``Concatenate``, ``Add``)."""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from layerkit._composite import Composite
from layerkit._validation import as_optional_rng, check_grad_output, float_dtype_of
from layerkit.blocks._inner import as_batch, as_net, net_input_width
from layerkit.net import Net, Trace, first_declared_dtype
from layerkit.workspace import Workspace


class BranchTraces(NamedTuple):
    """The ``ctx`` of one pass of a branching block."""

    traces: tuple[Trace, ...]
    """Each branch's trace, in branch order: ``ctx.traces[b][i].x`` is the input of branch ``b``'s layer ``i``."""
    widths: tuple[int, ...]
    """Each branch's output width."""


class Branches(Composite):
    """Branches (one ``Net`` each) that all receive the block's input; subclasses join their outputs.

    Parameters
    ----------
    branches : list of (list of Layer or spec items, or Net)
        At least one branch, each a non-empty chain of layers.
    rng : None, int or numpy.random.Generator
        Passed to the spec items whose layer accepts ``rng``.

    Attributes
    ----------
    branches : list of Net
        Parameters are named ``"branches.<b>.<index>.<name>"`` (``"branches.0.1.W"``).
    """

    def __init__(self, branches: Sequence[Any], *, rng: Any = None) -> None:
        name = type(self).__name__
        if isinstance(branches, (Net, str, bytes, dict)) or not hasattr(branches, "__iter__"):
            raise TypeError(f"{name}: branches must be a list of branches (each a list of layers), got "
                            f"{type(branches).__name__}")
        rng = as_optional_rng(rng, f"{name}: rng")
        self.branches = [as_net(branch, f"{name}: branch {index}", rng) for index, branch in enumerate(branches)]
        self._check_layers()

    _structure = "branches"

    def _check_children(self) -> None:
        """At least one branch, each a non-empty ``Net``, all taking one input width (where declared)."""
        name = type(self).__name__
        if not isinstance(self.branches, list):
            raise TypeError(f"{name}: branches must be a list of Net, got {type(self.branches).__name__}")
        if not self.branches:
            raise ValueError(f"{name}: expected at least one branch, got none")
        for index, net in enumerate(self.branches):
            if not isinstance(net, Net):
                raise TypeError(f"{name}: branch {index} must be a Net, got {type(net).__name__}")
            if not net.layers:
                raise ValueError(f"{name}: branch {index}: expected at least one layer, got none")
        widths = {index: net_input_width(net) for index, net in enumerate(self.branches)}
        known = {index: width for index, width in widths.items() if width is not None}
        if len(set(known.values())) > 1:
            raise ValueError(f"{self!r}: every branch sees the same input, but the branches take "
                             f"{_listed(known)} input features")

    def children(self) -> list[tuple[str, Any]]:
        return [(f"branches.{index}", net) for index, net in enumerate(self.branches)]

    @property
    def n_in(self) -> int | None:
        # the input width the branches declare, or None (undocumented: see Residual.n_in)
        return next((w for w in map(net_input_width, self.branches) if w is not None), None)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first branch layer that declares one (float64 if none does)."""
        declared = self.declared_dtype()
        return np.dtype(np.float64) if declared is None else declared

    def declared_dtype(self) -> np.dtype | None:
        """The dtype of the first branch layer, in branch order, that declares one; ``None`` if none does."""
        return first_declared_dtype(self.branches)

    def _outputs(self, x: np.ndarray, training: bool,
                 workspace: Workspace | None) -> tuple[list[np.ndarray], tuple[Trace, ...]]:
        outputs, traces = [], []
        for net in self.branches:
            y, trace = net.forward_pass(x, training, workspace=workspace)
            if type(y) is not np.ndarray or y.ndim < 2:
                y = as_batch(y, repr(self), f"branch {len(outputs)}")
            outputs.append(y)
            traces.append(trace)
        rows = {index: y.shape[0] for index, y in enumerate(outputs)}
        if len(set(rows.values())) > 1:
            raise ValueError(f"{self!r}: the branches output {_listed(rows)} rows; every branch must "
                             "output one row per input row")
        return outputs, tuple(traces)

    def _backward(self, ctx: BranchTraces, dys: list[np.ndarray], need_dx: bool = True) -> np.ndarray | None:
        """The sum of the branches' input gradients, branch ``b`` receiving ``dys[b]``."""
        workspace = Workspace.of(ctx)
        dx = None
        for index, (net, trace, dy) in enumerate(zip(self.branches, ctx.traces, dys)):
            part = net.backward(trace, dy, input_grad=need_dx)
            if need_dx:
                # a new array (a branch's dx may be its dy itself): the workspace's, or a fresh one
                dx = part if dx is None else self._sum(workspace, "dx", dx, part, index == 1)
        return dx

    def _sum(self, workspace: Workspace | None, role: str, total: np.ndarray, part: np.ndarray,
             first: bool) -> np.ndarray:
        """``total + part``: into the workspace's array for ``role`` (``total`` is it, unless ``first``)."""
        if workspace is None:
            return total + part
        dtype = np.result_type(total, part)
        if not first and total.dtype == dtype:
            return np.add(total, part, out=total)
        return np.add(total, part, out=workspace._array(self, (role, dtype.char), total.shape, dtype))

    def _dy(self, dy: Any, shape: tuple[int, int]) -> np.ndarray:
        """``dy`` checked to have ``shape`` (converted to float32 or float64 if needed)."""
        if type(dy) is not np.ndarray or dy.shape != shape or dy.dtype.kind != "f":
            dy = check_grad_output(dy, repr(self), shape, float_dtype_of(np.asarray(dy)))
        return dy

    def inner_traces(self, ctx: BranchTraces) -> list[tuple[str, Trace]]:
        """``("branches.<b>", branch b's trace)`` for each branch: what ``Trace.walk`` enters."""
        return [(f"branches.{index}", trace) for index, trace in enumerate(ctx.traces)]

    def _check_ctx(self, ctx: Any) -> BranchTraces:
        """``ctx``, refused clearly unless it is the ``BranchTraces`` of a pass of this block."""
        if not isinstance(ctx, BranchTraces) or len(ctx.traces) != len(self.branches):
            raise ValueError(f"{self!r}: ctx must be the BranchTraces of this block's forward_pass, got "
                             f"{type(ctx).__name__}")
        return ctx

    def backward_params(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> None:
        """The branches' backward passes without their input gradients (the block is a net's first layer)."""
        ctx = self._check_ctx(ctx)
        self._backward(ctx, self._dys(x, ctx, dy), need_dx=False)

    def backward_pass(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> np.ndarray:
        """Each branch's backward pass with its part of ``dy``; returns the sum of their ``dx``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        ctx : BranchTraces
            What ``forward_pass`` returned beside ``y``.
        dy : array_like, shape (n_samples, n_out)

        Returns
        -------
        dx : ndarray, shape (n_samples, n_in)
        """
        ctx = self._check_ctx(ctx)
        return self._backward(ctx, self._dys(x, ctx, dy))

    def _dys(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> list[np.ndarray]:
        """Each branch's part of ``dy``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """``{"branches": [each branch's spec]}``."""
        return {"branches": [net.config() for net in self.branches]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(repr(net.layers) for net in self.branches)}])"


def _listed(values: dict[int, int]) -> str:
    return ", ".join(f"{value} (branch {index})" for index, value in values.items())
