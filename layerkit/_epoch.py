"""``fit``'s epochs in the compiled core: one call per epoch for a net that is one fused chain.

When nothing needs Python at the granularity of a minibatch (plain SGD with
a float learning rate, or one of ``layerkit.optim``'s optimizers; no
clipping, no diagnostics, no callback with ``on_batch_end``) and the net runs
as one ``DenseChain``, or as a conv net's built-in front (convolutions,
poolings, activations, ``Flatten``: ``layerkit._front``) followed by one
``DenseChain``, an epoch of ``fit`` (gather each minibatch, forward pass,
loss, backward pass, update) is one call of ``_core.train_epoch`` with the
GIL released: Python runs only at the epoch's boundaries.

With an optimizer, the core updates the optimizer's own state arrays in
place with the rule ``net.step(optimizer)`` runs (the same compiled loops),
reads each update's learning rate from a table computed here from the
schedule at the update counts the Python loop would use, and the update
counts are advanced here by the minibatches that ran: the optimizer is left
as the Python loop leaves it, so its ``state_dict()`` and a checkpoint resume
bit for bit. The call uses the kernels, the order and the buffers of
``fit``'s Python loop (the workspace's, the loss gradient's and the
minibatches' gather buffers), so the weights and the history are those of
that loop, bit for bit. An ``x`` of the other float type (float64 data for
a float32 net, say) or in Fortran order (a DataFrame's values) is gathered
row by row into a buffer of the net's dtype, as the Python loop gathers it;
the data are never converted as a whole. Whatever the call does not take (a streamed
or sparse ``x``, one of integers or of more than 2 axes in Fortran order, targets of another
form, a loss of another type, a parameter that cannot be updated in place)
leaves the epoch to the Python loop; so does a minibatch with a bad value or a non-finite loss, from that
minibatch on, so that the loop raises its message.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from layerkit._backend import core
from layerkit._batches import BatchSource, gather_buffer, grad_buffer
from layerkit._deferred import parameters_changed
from layerkit._front import Front
from layerkit._fusable import is_dense
from layerkit._plan import Plan
from layerkit.callbacks import Callback
from layerkit.optim.base import Optimizer, _compiled_fits
from layerkit.losses import (
    _BCE_EPS_FLOAT32, _BCE_EPS_FLOAT64, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, HuberLoss, L1Loss,
    MeanSquaredError, SoftmaxCrossEntropy,
)

__all__ = ["EpochRunner", "needs_every_batch"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def needs_every_batch(callback: Callback) -> bool:
    """``callback`` does something in ``on_batch_end`` (so ``fit`` must call it after every minibatch)."""
    return callback.wants_batches


def _loss_code(loss_fn: Any, y: Any) -> int | None:
    """The core's code of ``loss_fn`` (its parameter from ``_loss_param``), or None for the Python loop."""
    kind = type(loss_fn)
    if kind is HuberLoss:
        return core.EPOCH_LOSS_HUBER if _loss_param(loss_fn) is not None else None
    if kind is BinaryCrossEntropy:
        return core.EPOCH_LOSS_BCE
    if kind is MeanSquaredError:
        return core.EPOCH_LOSS_MSE
    if kind is BinaryCrossEntropyWithLogits:
        return core.EPOCH_LOSS_BCE_LOGITS
    if kind is L1Loss:
        return core.EPOCH_LOSS_L1
    if kind is SoftmaxCrossEntropy and type(y) is np.ndarray:
        return core.EPOCH_LOSS_SOFTMAX_LABELS if y.ndim == 1 else core.EPOCH_LOSS_SOFTMAX_ROWS
    return None


def _loss_param(loss_fn: Any) -> float | None:
    """The parameter the core's loss takes: Huber's ``delta`` (0 for the others).

    ``None`` when a ``HuberLoss``'s ``delta`` is no longer the one its kernel
    was made with (the attribute set after construction): the Python loop
    then runs, and trains with the kernel's.
    """
    if type(loss_fn) is not HuberLoss:
        return 0.0
    kernel = loss_fn._kernel
    if getattr(kernel, "args", None) != (core.ELEMENTWISE_LOSS_HUBER, loss_fn.delta):
        return None
    return loss_fn.delta


class EpochRunner:
    """The epochs of one ``fit`` run in the core (see the module docstring).

    Build it with ``EpochRunner.for_fit``, which answers ``None`` when the run
    needs Python per minibatch; ``run(order)`` then trains one epoch.
    """

    def __init__(self, net: Any, source: BatchSource, y: np.ndarray, loss: int, rate: Any,
                 sample_weight: np.ndarray | None, batch_size: int, workspace: Any, grad_buffers: dict,
                 batch_buffers: dict, loss_param: float = 0.0) -> None:
        # rate: a float learning rate, or an optimizer of layerkit.optim with a compiled rule;
        # loss_param: the loss's parameter (Huber's delta)
        self.net, self.source, self.y, self.loss, self.rate = net, source, y, loss, rate
        self.loss_param = loss_param
        self.sample_weight, self.batch_size = sample_weight, batch_size
        self.workspace, self.grad_buffers, self.batch_buffers = workspace, grad_buffers, batch_buffers
        self.has_accuracy = loss not in (core.EPOCH_LOSS_MSE, core.EPOCH_LOSS_L1, core.EPOCH_LOSS_HUBER)

    @classmethod
    def for_fit(cls, net: Any, source: BatchSource, y: Any, loss_fn: Any, update: Any, *, batch_size: int,
                clip_norm: Any, diagnostics: Any, callbacks: Sequence[Callback], sample_weight: Any,
                workspace: Any, grad_buffers: dict, batch_buffers: dict) -> "EpochRunner | None":
        """A runner for this ``fit``, or ``None`` when its epochs need Python per minibatch."""
        if clip_norm is not None or diagnostics is not None:
            return None
        if type(update) is not float and _optimizer_rule(update) is None:
            return None
        if any(needs_every_batch(callback) for callback in callbacks):
            return None
        loss = _loss_code(loss_fn, y)
        if loss is None or source.kind != "dense":
            return None
        if not source.data.flags.c_contiguous and not (source.data.ndim == 2 and source.data.flags.f_contiguous):
            return None
        plan = net._runner()
        if source.data.dtype not in _FLOATS:  # (float32 rows for a float64 net, or the reverse, are cast)
            return None
        if type(plan) is Plan:
            if source.data.ndim != 2:
                return None
        else:
            front = Front.of(plan)
            if front is None or source.data.ndim < 3:
                return None
        return cls(net, source, y, loss, update, sample_weight, batch_size, workspace, grad_buffers,
                   batch_buffers, _loss_param(loss_fn))

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
        plan, n = self.net._runner(), len(self.source)  # asked each epoch: a callback may change the layers
        front = None
        if type(plan) is Plan:
            chain, dtype, width, owner = plan.chain, plan.dtype, plan.linears[-1].n_out, plan
        else:
            front = Front.of(plan)
            if front is None:
                return None
            chain, dtype, width, owner = front.chain, front.dtype, front.width, plan.owner
        data = self.source.data
        if data.dtype not in _FLOATS:
            return None
        full = min(self.batch_size, n)
        last = n - (n - 1) // full * full
        sets, fronts = [], []
        for rows in ((full,) if last == full else (full, last)):
            grad = grad_buffer(self.grad_buffers, (rows, width), dtype)
            sets.append((self.workspace._buffers_for(owner, chain, rows), grad))
            if front is not None:
                stages = front.stages(self.source.data.shape[1:], rows, self.workspace)
                if stages is None:
                    return None
                fronts.append(stages)
        xbuf = tbuf = wbuf = None
        if order is not None or data.dtype != dtype or not data.flags.c_contiguous:
            xbuf = self.source._out(full)  # the Python loop's gather buffer: C order, the net's dtype
        if order is not None:
            tbuf = gather_buffer(self.y, full, self.batch_buffers, "y")
            if self.sample_weight is not None:
                wbuf = gather_buffer(self.sample_weight, full, self.batch_buffers, "w")
        eps = _BCE_EPS_FLOAT32 if dtype == np.float32 else _BCE_EPS_FLOAT64
        if type(self.rate) is float:
            parameters_changed()
            return core.train_epoch(chain, self.source.data, self.loss, self.y, self.sample_weight, order,
                                    self.batch_size, self.rate, eps, sets, xbuf, tbuf, wbuf,
                                    loss_param=self.loss_param, front=fronts or None)
        optimizer = self.rate
        batches = (n + full - 1) // full
        if front is None:
            job = _optimizer_job(optimizer, plan.layers, 0, (), batches)
        else:
            job = _optimizer_job(optimizer, front.chain_layers, front.start, front.convolutions(), batches)
        if job is None:
            return None
        spec, keys, created = job
        parameters_changed()
        try:
            done = core.train_epoch(chain, self.source.data, self.loss, self.y, self.sample_weight, order,
                                    self.batch_size, 0.0, eps, sets, xbuf, tbuf, wbuf, spec,
                                    loss_param=self.loss_param, front=fronts or None)
        except BaseException as error:  # a Ctrl-C between slices: the updates that ran are counted
            _advance(optimizer, keys, created, getattr(error, "batches_done", 0))
            raise
        _advance(optimizer, keys, created, 0 if done is None else done[0])
        return done


def _optimizer_rule(update: Any) -> Any:
    """The compiled rule of a ``layerkit.optim`` optimizer (``None`` for anything else)."""
    rule = getattr(update, "_rule", None)
    if rule is None or not callable(getattr(update, "update_layers", None)):
        return None
    if type(update).update_layer is not Optimizer.update_layer:  # a subclass's own per-layer rule
        return None
    return rule()


def _optimizer_job(optimizer: Any, layers: Sequence[Any], offset: int, convolutions: Sequence[tuple[int, Any]],
                   batches: int) -> tuple | None:
    """``(spec for train_epoch, state keys, keys created here)``, or None when the Python loop must run.

    ``layers`` are the chain's, the first at index ``offset`` of the net;
    ``convolutions`` the ``(index, layer)`` of a conv net's front. The state
    of every parameter is made as ``update_param`` makes it at its first
    update; the epoch needs every parameter at the same update count and
    every state array as the core's loop takes it.
    """
    rule = _optimizer_rule(optimizer)
    if rule is None:
        return None
    job = _StateJob(optimizer)
    stages: list = []
    joinable = False  # the last stage is dense without its activation yet (the chain's stages, build_chain)
    for index, layer in enumerate(layers, offset):
        if not is_dense(layer):
            if not joinable:
                stages.append(None)  # an activation stage of its own
            joinable = False
            continue
        joinable = True
        pair = tuple(job.item(index, layer, name) for name in layer.param_names)  # W, b
        if None in pair:
            return _forget(optimizer, job.created)
        stages.append(pair)
    front = []
    for index, layer in convolutions:
        items = [job.item(index, layer, name) for name in layer.param_names]  # W (and b)
        if None in items:
            return _forget(optimizer, job.created)
        front.append((items[0], items[1] if len(items) > 1 else None))
    step0 = job.step0
    lrs = np.array([optimizer.lr(step0 + b) for b in range(batches)], dtype=np.float64)
    spec = (rule[0], rule[1], stages, lrs, step0) + ((front,) if convolutions else ())
    return spec, job.keys, job.created


class _StateJob:
    """The optimizer states of the parameters one in-core epoch updates (made where missing)."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer, self.keys, self.created, self.step0 = optimizer, [], [], None

    def item(self, index: int, layer: Any, name: str) -> tuple | None:
        """``(state arrays, decay)`` of parameter ``name`` of the net's layer ``index``; ``None``: Python runs."""
        optimizer = self.optimizer
        key, param = f"{index}.{name}", getattr(layer, name)
        if type(param) is not np.ndarray or not _compiled_fits(param) or not param.flags.writeable:
            return None  # (a list, a view: the Python loop converts or refuses it)
        state = optimizer.state.get(key)
        if state is None:
            state = optimizer.state[key] = {"step": 0, **optimizer._initial_state(param)}
            self.created.append(key)
        slots = optimizer._kernel_slots(state)
        if any(slot is not None and not (type(slot) is np.ndarray and slot.dtype == param.dtype
                                         and slot.shape == param.shape and slot.flags.c_contiguous
                                         and slot.flags.writeable) for slot in slots):
            return None  # the Python loop says what is wrong with it
        if self.step0 is None:
            self.step0 = state["step"]
        elif state["step"] != self.step0:
            return None
        self.keys.append(key)
        return slots, float(optimizer.decay_for(param))


def _forget(optimizer: Any, created: list) -> None:
    for key in created:
        del optimizer.state[key]
    return None


def _advance(optimizer: Any, keys: list, created: list, done: int) -> None:
    """Count the ``done`` updates the epoch ran (and drop the states made for none)."""
    if not done:
        _forget(optimizer, created)
        return
    for key in keys:
        optimizer.state[key]["step"] += done

