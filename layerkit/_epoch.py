"""``fit``'s epochs in the compiled core: one call per epoch for a net that is one fused chain.

When nothing needs Python at the granularity of a minibatch (plain SGD with
a float learning rate, no clipping, no diagnostics, no callback with
``on_batch_end``) and the net runs as one ``DenseChain``, an epoch of ``fit``
(gather each minibatch, forward pass, loss, backward pass, update) is one
call of ``_core.train_epoch`` with the GIL released: Python runs only at the
epoch's boundaries. The call uses the kernels, the order and the buffers of
``fit``'s Python loop (the workspace's, the loss gradient's and the
minibatches' gather buffers), so the weights and the history are those of
that loop, bit for bit. Whatever the call does not take (a streamed,
sparse or converted ``x``, targets of another form, a loss of another type, a
parameter that cannot be updated in place) leaves the epoch to the Python
loop; so does a minibatch with a bad value or a non-finite loss, from that
minibatch on, so that the loop raises its message.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from layerkit._backend import core
from layerkit._batches import BatchSource, gather_buffer, grad_buffer
from layerkit.callbacks import Callback
from layerkit.losses import (
    _BCE_EPS_FLOAT32, _BCE_EPS_FLOAT64, BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy,
)

__all__ = ["EpochRunner", "needs_every_batch"]


def needs_every_batch(callback: Callback) -> bool:
    """``callback`` does something in ``on_batch_end`` (so ``fit`` must call it after every minibatch)."""
    return callback.wants_batches


def _loss_code(loss_fn: Any, y: Any) -> int | None:
    kind = type(loss_fn)
    if kind is BinaryCrossEntropy:
        return core.EPOCH_LOSS_BCE
    if kind is MeanSquaredError:
        return core.EPOCH_LOSS_MSE
    if kind is SoftmaxCrossEntropy and type(y) is np.ndarray:
        return core.EPOCH_LOSS_SOFTMAX_LABELS if y.ndim == 1 else core.EPOCH_LOSS_SOFTMAX_ROWS
    return None


class EpochRunner:
    """The epochs of one ``fit`` run in the core (see the module docstring).

    Build it with ``EpochRunner.for_fit``, which answers ``None`` when the run
    needs Python per minibatch; ``run(order)`` then trains one epoch.
    """

    def __init__(self, net: Any, source: BatchSource, y: np.ndarray, loss: int, rate: float,
                 sample_weight: np.ndarray | None, batch_size: int, workspace: Any, grad_buffers: dict,
                 batch_buffers: dict) -> None:
        self.net, self.source, self.y, self.loss, self.rate = net, source, y, loss, rate
        self.sample_weight, self.batch_size = sample_weight, batch_size
        self.workspace, self.grad_buffers, self.batch_buffers = workspace, grad_buffers, batch_buffers
        self.has_accuracy = loss != core.EPOCH_LOSS_MSE

    @classmethod
    def for_fit(cls, net: Any, source: BatchSource, y: Any, loss_fn: Any, update: Any, *, batch_size: int,
                clip_norm: Any, diagnostics: Any, callbacks: Sequence[Callback], sample_weight: Any,
                workspace: Any, grad_buffers: dict, batch_buffers: dict) -> "EpochRunner | None":
        """A runner for this ``fit``, or ``None`` when its epochs need Python per minibatch."""
        if type(update) is not float or clip_norm is not None or diagnostics is not None:
            return None
        if any(needs_every_batch(callback) for callback in callbacks):
            return None
        plan = net._compiled()
        loss = _loss_code(loss_fn, y)
        if (plan is None or loss is None or source.kind != "dense" or source.data.dtype != plan.dtype
                or source.data.ndim != 2 or not source.data.flags.c_contiguous):
            return None
        return cls(net, source, y, loss, update, sample_weight, batch_size, workspace, grad_buffers,
                   batch_buffers)

    def run(self, order: np.ndarray | None) -> tuple[int, float, float, float, int] | None:
        """One epoch over the rows of ``x[order]`` (``x`` when ``order`` is None).

        Returns
        -------
        (done, total_loss, total_correct, last_loss, last_rows) or None
            ``done`` minibatches ran (all, unless one needs the Python loop),
            with the sums of ``loss * rows`` and ``accuracy * rows`` that
            ``fit`` accumulates, and the last minibatch's loss and rows.
            ``None`` when the epoch must run in Python from its start.
        """
        plan, n = self.net._compiled(), len(self.source)  # asked each epoch: a callback may change the layers
        if plan is None or self.source.data.dtype != plan.dtype:
            return None
        chain = plan.chain
        full = min(self.batch_size, n)
        last = n - (n - 1) // full * full
        width = plan.linears[-1].n_out  # the chain's output width (activations keep it)
        sets = []
        for rows in ((full,) if last == full else (full, last)):
            grad = grad_buffer(self.grad_buffers, (rows, width), plan.dtype)
            sets.append((self.workspace._buffers_for(plan, chain, rows), grad))
        xbuf = tbuf = wbuf = None
        if order is not None:  # the buffers the Python loop gathers into
            xbuf = self.source._out(full)
            tbuf = gather_buffer(self.y, full, self.batch_buffers, "y")
            if self.sample_weight is not None:
                wbuf = gather_buffer(self.sample_weight, full, self.batch_buffers, "w")
        eps = _BCE_EPS_FLOAT32 if plan.dtype == np.float32 else _BCE_EPS_FLOAT64
        return core.train_epoch(chain, self.source.data, self.loss, self.y, self.sample_weight, order,
                                self.batch_size, self.rate, eps, sets, xbuf, tbuf, wbuf)

