"""``Workspace``: buffers that let training steps of one net reuse memory instead of allocating."""
from __future__ import annotations

from typing import Any

import numpy as np


class Workspace:
    """Reusable buffers for the forward and backward passes of one net.

    Create it with ``net.workspace()`` and pass it to ``net.forward(x,
    workspace=ws)``; the backward pass of the returned trace uses the same
    buffers. After the first step at a batch size, a step allocates no arrays.
    The buffers are kept per batch size (a training loop with a smaller last
    minibatch holds two sets).

    One workspace serves one in-flight trace: the output and the trace of a
    forward pass live in the workspace's buffers and are overwritten by the
    next forward pass with the same workspace. ``net.backward`` refuses a trace
    whose workspace was reused since (``RuntimeError``), so a reused buffer can
    never give a silently wrong gradient. For several traces in flight, use one
    workspace each, or none (then every pass allocates its own arrays and the
    net stays fully reentrant). The workspace belongs to the caller (a training
    loop, ``fit``, a thread), never to the layers.

    Parameters
    ----------
    net : Net
        The net whose passes it serves.
    """

    def __init__(self, net: Any) -> None:
        self.net = net
        self._chain: Any = None
        self._buffers: dict[int, list] = {}
        self.generation = 0

    def _buffers_for(self, chain: Any, n: int) -> list:
        if chain is not self._chain:  # the net was recompiled (its layers changed)
            self._chain = chain
            self._buffers = {}
        buffers = self._buffers.get(n)
        if buffers is None:
            buffers = self._buffers[n] = chain.make_buffers(n)
        return buffers

    def clear(self) -> None:
        """Drop every buffer (they are made again on the next pass)."""
        self._buffers = {}
        self.generation += 1

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes for which buffers exist."""
        return sorted(self._buffers)

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(a.nbytes for rows in self._buffers.values() for row in rows for a in row
                   if isinstance(a, np.ndarray))

    def __repr__(self) -> str:
        return f"Workspace(batch_sizes={self.batch_sizes}, nbytes={self.nbytes})"
