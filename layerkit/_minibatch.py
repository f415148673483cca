"""``train_batch``: the work of one minibatch (forward, loss, backward, clipping, step).

It lives here alone, so a faster pass (workspaces, skipping the input
gradient) can replace it in one place.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from layerkit._batches import grad_buffer
from layerkit.diagnostics import Diagnostics
from layerkit.optim.clipping import clip_grad_norm

__all__ = ["train_batch"]


def _accuracy_of(loss_fn: Any) -> Any:
    return getattr(loss_fn, "accuracy", lambda p, t: None)


def train_batch(net: Any, xb: np.ndarray, yb: np.ndarray, loss_fn: Any, update: Any, *,
                clip_norm: float | None = None, diagnostics: Diagnostics | None = None,
                workspace: Any = None, grad_buffers: dict | None = None,
                sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray, float | None]:
    """Forward, loss, backward, optional clipping, step: one minibatch.

    Parameters
    ----------
    net : Net
    xb : ndarray, shape (n_batch, n_in)
    yb : ndarray, shape (n_batch, ...)
    loss_fn : Loss
    update : float or Optimizer
        Passed to ``net.step``.
    clip_norm : float, optional
        Clip the global gradient norm to this before the step.
    diagnostics : Diagnostics, optional
        Receives the batch (and a snapshot of the parameters before the step).
    workspace : Workspace, optional
        From ``net.workspace()``: the passes reuse its buffers, so the step
        allocates no arrays in the net (the prediction returned lives there
        until the next pass with the same workspace).
    grad_buffers : dict, optional
        Kept by the caller between batches: buffers, per output shape, into
        which a loss with a fused ``batch`` writes its gradient.
    sample_weight : ndarray, shape (n_batch,), optional
        Weights of the rows, passed to the loss as ``sample_weight=``.

    Returns
    -------
    loss : float
        Mean loss of the batch before the update.
    prediction : ndarray, shape (n_batch, n_out)
    accuracy : float or None
        Of the batch before the update (None for regression losses).
    """
    pred, trace = net.forward(xb, workspace=workspace)
    value, grad, accuracy = _loss_of_batch(loss_fn, pred, yb, grad_buffers, sample_weight)
    net.backward(trace, grad, input_grad=False)  # training never needs the input's gradient
    if clip_norm is not None:
        clip_grad_norm(net, clip_norm)
    before = diagnostics.snapshot(net) if diagnostics is not None else None
    net.step(update)
    if diagnostics is not None:
        diagnostics.observe_batch(net, trace, pred, before)
    return value, pred, accuracy


def _loss_of_batch(loss_fn: Any, pred: np.ndarray, yb: Any, grad_buffers: dict | None,
                   sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray, float | None]:
    batch = getattr(loss_fn, "batch", None)
    if batch is None:  # a plain callable returning (loss, grad)
        value, grad = loss_fn(pred, yb) if sample_weight is None else loss_fn(pred, yb, sample_weight=sample_weight)
        return value, grad, _accuracy_of(loss_fn)(pred, yb)
    grad_out = None
    if grad_buffers is not None and type(pred) is np.ndarray:
        grad_out = grad_buffer(grad_buffers, pred.shape, pred.dtype)
    return batch(pred, yb, grad_out, sample_weight)
