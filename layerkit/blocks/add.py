"""``Add``: branches that see the same input, their outputs summed."""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit.blocks._branches import Branches, BranchTraces
from layerkit.workspace import Workspace


class Add(Branches):
    """Each branch receives ``x``; the outputs, all of one shape, are summed.

    Parameters
    ----------
    branches : list of (list of Layer or spec items, or Net)
        At least one branch; every branch must output the same shape.
    rng : None, int or numpy.random.Generator
        Passed to the spec items whose layer accepts ``rng``.

    Attributes
    ----------
    branches : list of Net
        Parameters are named ``"branches.<b>.<index>.<name>"``.

    Raises
    ------
    ValueError
        Branches whose declared widths differ (at construction) or whose
        outputs differ in shape (at the forward pass), naming the block.

    Notes
    -----
    A pass's trace entry holds ``BranchTraces(traces, widths)`` in ``ctx``.
    """

    example_kwargs = {"branches": [[{"type": "linear", "n_in": 4, "n_out": 3, "rng": 0}, "tanh"],
                                   [{"type": "linear", "n_in": 4, "n_out": 3, "rng": 1}]]}

    def __init__(self, branches: Any, *, rng: Any = None) -> None:
        super().__init__(branches, rng=rng)

    def _check_children(self) -> None:
        """``Branches``' checks, and one output width for all branches (where declared)."""
        super()._check_children()
        n_in = self.n_in
        if n_in is not None:
            outs = {index: net.output_features(n_in) for index, net in enumerate(self.branches)}
            known = {index: width for index, width in outs.items() if width is not None}
            if len(set(known.values())) > 1:
                shown = ", ".join(f"{w} (branch {i})" for i, w in known.items())
                raise ValueError(f"{self!r}: the branches' outputs are summed, so they must have one width, "
                                 f"got {shown}")

    def output_features(self, n_in: int | None) -> int | None:
        """The branches' common output width (``None`` when unknown)."""
        return next((w for w in (net.output_features(n_in) for net in self.branches) if w is not None), None)

    def forward_pass(self, x: np.ndarray, training: bool, *,
                     workspace: Workspace | None = None) -> tuple[np.ndarray, BranchTraces]:
        """``(sum of the outputs, BranchTraces)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        training : bool
        workspace : Workspace, optional
            The outer net's: the branches' passes and ``y`` use its buffers.

        Returns
        -------
        y : ndarray, shape (n_samples, n_out)
        ctx : BranchTraces
        """
        outputs, traces = self._outputs(x, training, workspace)
        shapes = {index: out.shape for index, out in enumerate(outputs)}
        if len(set(shapes.values())) > 1:
            shown = ", ".join(f"{s} (branch {i})" for i, s in shapes.items())
            raise ValueError(f"{self!r}: the branches' outputs are summed, so they must have one shape, "
                             f"got {shown}")
        y = outputs[0]
        for index, out in enumerate(outputs[1:]):
            y = self._sum(workspace, "y", y, out, index == 0)
        return y, BranchTraces(traces, tuple(out.shape[1] for out in outputs))

    def _dys(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> list[np.ndarray]:
        """Every branch receives ``dy`` itself."""
        return [dy] * len(self.branches)
