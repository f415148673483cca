"""``Concatenate``: branches that see the same input, their outputs side by side."""
from __future__ import annotations

import numpy as np

from layerkit.blocks._branches import Branches, BranchTraces


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

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, BranchTraces]:
        """``(concatenated outputs, BranchTraces)``.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_in)
        training : bool

        Returns
        -------
        y : ndarray, shape (n_samples, sum of the branches' widths)
        ctx : BranchTraces
        """
        outputs, traces = self._outputs(x, training)
        y = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)
        return y, BranchTraces(traces, tuple(out.shape[1] for out in outputs))

    def _dys(self, x: np.ndarray, ctx: BranchTraces, dy: np.ndarray) -> list[np.ndarray]:
        """Branch ``b`` receives its own columns of ``dy`` (C-contiguous copies)."""
        if not isinstance(ctx, BranchTraces):
            raise ValueError(f"{self!r}: ctx must be the BranchTraces of this block's forward_pass, got "
                             f"{type(ctx).__name__}")
        widths = ctx.widths
        dy = self._dy(dy, (np.shape(x)[0], sum(widths)))
        parts, start = [], 0
        for width in widths:
            parts.append(np.ascontiguousarray(dy[:, start:start + width]))
            start += width
        return parts
