"""``Workspace``: buffers that let training steps of one net reuse memory instead of allocating."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

STALE = ("Net.backward: this trace's workspace was used by a later forward pass, which "
         "overwrote the trace's arrays; one workspace serves one trace in flight (run the "
         "backward before the next forward, or give each trace its own workspace)")


def workspace_of(trace: Any) -> "Workspace | None":
    """The workspace whose buffers hold ``trace``'s arrays (checked to be still valid), or ``None``.

    Raises
    ------
    RuntimeError
        The workspace served a later forward pass, which overwrote the trace's arrays.
    """
    ticket = getattr(trace, "_workspace", None)
    if ticket is None:
        return None
    workspace, generation = ticket
    if workspace.generation != generation:
        raise RuntimeError(STALE)
    return workspace


class Workspace:
    """Reusable buffers for the forward and backward passes of one net.

    Create it with ``net.workspace()`` and pass it to ``net.forward(x,
    workspace=ws)``; the backward pass of the returned trace uses the same
    buffers. After the first step at a batch size, a step allocates no arrays.
    The buffers are kept per batch size (a training loop with a smaller last
    minibatch holds two sets). Blocks (``Residual``, ``Concatenate``, ``Add``)
    and nets used as layers run their inner passes, sums and concatenations
    in the same workspace, and so do built-in activations called between
    blocks: their traces are valid exactly as long as the outer one.

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
        self._owners: dict[Any, Any] = {}  # chain -> the compiled plan (the net's, an inner net's) it belongs to
        self._scratch: dict[tuple, np.ndarray] = {}  # (layer, role, shape, dtype) -> a layer's own array
        self._uses: Any = None  # id(layer) -> how often it sits in the net (see _array)
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
        if chain not in self._owners:
            self._prune()
            self._owners[chain] = owner
            self._uses = None
        buffers = self._buffers[(chain, n)] = chain.make_buffers(n)
        self._keep_rows(buffers)
        return buffers

    def _live_plans(self) -> list:
        """The compiled plans of the net and of every net inside it (blocks' inner nets)."""
        layers = [self.net] + [layer for _, layer in self.net.walk()]
        return [plan for plan in (getattr(layer, "__dict__", {}).get("_plan") for layer in layers) if plan is not None]

    def _prune(self) -> None:
        """Drop the buffers of plans the net no longer runs (a net inside was recompiled), keep the others.

        (Only those: the pass under way may already be using the others.)
        """
        live = {id(plan) for plan in self._live_plans()}
        stale = {chain for chain, owner in self._owners.items() if id(owner) not in live}
        if not stale:
            return
        layers = {id(layer) for _, layer in self.net.walk()}
        self._buffers = {key: rows for key, rows in self._buffers.items() if key[0] not in stale}
        self._tails = {chain: tail for chain, tail in self._tails.items() if chain not in stale}
        self._scratch = {key: array for key, array in self._scratch.items() if id(key[0]) in layers}
        self._owners = {chain: owner for chain, owner in self._owners.items() if chain not in stale}
        self._roots, self._arrays = set(), []
        for rows in self._buffers.values():
            self._keep_rows(rows)
        for array in self._scratch.values():
            self._keep(array)

    def _keep_rows(self, buffers: list) -> None:
        for row in buffers:
            for array in row:
                if isinstance(array, np.ndarray):
                    self._keep(array)

    def _keep(self, array: np.ndarray) -> None:
        self._arrays.append(array)
        self._roots.add(id(_root(array)))

    def _array(self, owner: Any, role: Any, shape: tuple, dtype: Any) -> np.ndarray:
        """The array a block writes its ``role`` result into (``"y"``, ``"dx"``), made once per shape and dtype.

        Like the chains' buffers, it is overwritten by the next pass with this
        workspace (a block's output or input gradient lives there until then).
        """
        key = (owner, role, shape, dtype)
        array = self._scratch.get(key)
        if array is None:
            if self._uses is None:
                self._uses = Counter(id(layer) for _, layer in self.net.walk())
            if self._uses[id(owner)] > 1:  # a layer at two places (an activation, say): one array each use
                return np.empty(shape, dtype)
            array = self._scratch[key] = np.empty(shape, dtype)
            self._keep(array)
        return array

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
        self.generation += 1
        self._owners = {}
        self._scratch = {}
        self._uses = None
        self._buffers = {}
        self._tails = {}
        self._roots = set()
        self._arrays = []

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes for which buffers exist."""
        return sorted({n for _, n in self._buffers})

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(array.nbytes for array in self._arrays)

    @staticmethod
    def of(ctx: Any) -> "Workspace | None":
        """The workspace of a block's ``ctx`` (an inner trace, or a tuple holding some), checked valid; or None."""
        traces = getattr(ctx, "traces", None)
        for trace in (ctx,) if traces is None else traces:
            workspace = workspace_of(trace)
            if workspace is not None:
                return workspace
        return None

    def __repr__(self) -> str:
        return f"Workspace(batch_sizes={self.batch_sizes}, nbytes={self.nbytes})"


def _root(array: Any) -> Any:
    """The object that owns ``array``'s memory (the end of its ``base`` chain)."""
    while True:
        base = getattr(array, "base", None)
        if base is None:
            return array
        array = base
