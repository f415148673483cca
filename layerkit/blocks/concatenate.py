"""``Concatenate``: branches that see the same input, their outputs side by side."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit.blocks._branches import Branches, BranchTraces
from layerkit.workspace import Workspace


class Concatenate(Branches):
    """Each branch receives ``x``; the outputs are joined along the features (``torch.cat(dim=1)``).

    A wide-and-deep model is ``Concatenate([[Linear(d, 1)], [Linear(d, h), ReLU(), Linear(h, 1)]])``.

    Parameters
    ----------
    branches : list of (list of Layer or spec items, or Net)
        At least one branch; every branch must output one row per input row.
    rng : None, int or numpy.random.Generator
        Passed to the spec items whose layer accepts ``rng``.

    Attributes
    ----------
    branches : list of Net
        Parameters are named ``"branches.<b>.<index>.<name>"`` (``"branches.0.1.W"``).

    Raises
    ------
    ValueError
        Branches that declare different input widths (at construction) or
        output different numbers of rows (at the forward pass), naming the block.

    Notes
    -----
    A pass's trace entry holds ``BranchTraces(traces, widths)`` in ``ctx``:
    ``entry.ctx.traces[b]`` is branch ``b``'s trace.
    """

    example_kwargs = {"branches": [[{"type": "linear", "n_in": 4, "n_out": 3, "rng": 0}, "tanh"],
                                   [{"type": "linear", "n_in": 4, "n_out": 2, "rng": 1}]]}

    def output_features(self, n_in: int | None) -> int | None:
        """The sum of the branches' output widths (``None`` when one is unknown)."""
        widths = [net.output_features(n_in) for net in self.branches]
        return None if any(w is None for w in widths) else sum(widths)

    def forward_pass(self, x: np.ndarray, training: bool, *,
                     workspace: Workspace | None = None) -> tuple[np.ndarray, BranchTraces]:
        """``(concatenated outputs, BranchTraces)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        training : bool
        workspace : Workspace, optional
            The outer net's: the branches' passes and ``y`` use its buffers.

        Returns
        -------
        y : ndarray, shape (n_samples, sum of the branches' widths)
        ctx : BranchTraces
        """
        outputs, traces = self._outputs(x, training, workspace)
        if len(outputs) == 1:
            y = outputs[0]
        elif workspace is None:
            _check_trailing(self, outputs)
            y = np.concatenate(outputs, axis=1)
        else:
            _check_trailing(self, outputs)
            shape = (outputs[0].shape[0], sum(out.shape[1] for out in outputs)) + outputs[0].shape[2:]
            y = np.concatenate(outputs, axis=1, out=workspace._array(self, "y", shape, np.result_type(*outputs)))
        return y, BranchTraces(traces, tuple(out.shape[1] for out in outputs))

    def _dys(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> list[np.ndarray]:
        """Branch ``b`` receives its own columns of ``dy`` (C-contiguous copies)."""
        widths = ctx.widths
        # (outputs of more axes: their trailing axes are checked by the branches' layers, which receive them)
        dy = self._dy(dy, (np.shape(x)[0], sum(widths)) + tuple(np.shape(dy)[2:]))
        workspace = Workspace.of(ctx)
        parts, start = [], 0
        for index, width in enumerate(widths):
            columns = dy[:, start:start + width]
            if workspace is None:
                parts.append(np.ascontiguousarray(columns))
            else:
                part = workspace._array(self, ("dy", index), columns.shape, columns.dtype)
                np.copyto(part, columns)
                parts.append(part)
            start += width
        return parts


def _check_trailing(block: Any, outputs: list[np.ndarray]) -> None:
    """``ValueError`` naming the block unless the outputs agree on every axis but the concatenated one (1)."""
    trailing = {index: out.shape[2:] for index, out in enumerate(outputs)}
    if len(set(trailing.values())) > 1:
        shown = ", ".join(f"{out.shape} (branch {index})" for index, out in enumerate(outputs))
        raise ValueError(f"{block!r}: the branches' outputs are concatenated along axis 1, so they must agree on "
                         f"every other axis, got {shown}")
