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
        self._owner: Any = None  # the compiled plan the buffers were made for
        self._buffers: dict[tuple[Any, int], list] = {}  # (chain, batch size) -> the chain's buffers
        self._roots: set[int] = set()  # ids of the arrays owning the buffers' memory
        self._arrays: list[np.ndarray] = []
        self._tails: dict[Any, tuple] = {}  # chain -> trace entries of its buffers (see _trace_tail)
        self.generation = 0

    def _buffers_for(self, owner: Any, chain: Any, n: int) -> list:
        """The buffers of ``chain`` (one of the fused segments of the plan ``owner``) for ``n`` rows."""
        buffers = self._buffers.get((chain, n))  # made for this very chain (the usual case): valid
        if buffers is not None:
            return buffers
        if owner is not self._owner:  # the net was recompiled (its layers changed)
            self.clear()
            self._owner = owner
        buffers = self._buffers[(chain, n)] = chain.make_buffers(n)
        for row in buffers:
            for array in row:
                if isinstance(array, np.ndarray):
                    self._arrays.append(array)
                    self._roots.add(id(_root(array)))
        return buffers

    def _trace_tail(self, chain: Any, layers: list, saved: list, make: Any) -> tuple:
        """The trace entries ``make((layers[i], saved[i]))`` for ``i >= 1``, made once per set of buffers.

        A chain's saved arrays after its input are this workspace's buffers,
        the very same arrays at every pass of a batch size, so their entries
        (immutable pairs) are made once and shared by the traces of later
        passes (each of which invalidates the previous trace anyway).
        """
        tail = self._tails.get(chain)
        if tail is None or len(tail) != len(saved) - 1 or (tail and tail[0][1] is not saved[1]):
            tail = self._tails[chain] = tuple(map(make, zip(layers[1:], saved[1:])))
        return tail

    def _aliased(self, x: Any) -> bool:
        """``x`` may share memory with a buffer: a pass writing the buffers would overwrite its own input.

        That happens when an output of this workspace (or a trace's array) is
        fed back in; the passes then copy ``x`` first.
        """
        if not self._arrays:
            return False
        if x.base is None:  # an array owning its memory: a buffer itself, or none
            return id(x) in self._roots
        root = _root(x)
        if id(root) in self._roots:
            return True
        if type(root) is np.ndarray:  # an array owning its memory, which is no buffer
            return False
        return any(np.may_share_memory(x, array) for array in self._arrays)  # memory of another object

    def clear(self) -> None:
        """Drop every buffer (they are made again on the next pass)."""
        self._buffers = {}
        self._tails = {}
        self._roots = set()
        self._arrays = []
        self.generation += 1

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes for which buffers exist."""
        return sorted({n for _, n in self._buffers})

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(array.nbytes for array in self._arrays)

    def __repr__(self) -> str:
        return f"Workspace(batch_sizes={self.batch_sizes}, nbytes={self.nbytes})"


def _root(array: Any) -> Any:
    """The object that owns ``array``'s memory (the end of its ``base`` chain)."""
    while True:
        base = getattr(array, "base", None)
        if base is None:
            return array
        array = base
