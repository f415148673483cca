"""Training and prediction on ``scipy.sparse`` rows: the first ``Linear`` takes the sparse minibatch.

``layerkit.fit`` and ``Net.predict`` take dense arrays; here the net's first
layer (a ``Linear``, which accepts a sparse ``x``) runs on each sparse
minibatch, the rest of the net runs as a ``Net`` of its own (fused) on the
dense hidden activations, and ``net.step`` updates every layer. The sparse
matrix is never densified: a minibatch is a row selection of a CSR matrix.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from layerkit.callbacks import Callback, FitState
from layerkit.history import History
from layerkit.layers.linear import Linear
from layerkit.losses import get_loss
from layerkit.net import Net


def split(net: Net, who: str) -> tuple[Linear, Net | None]:
    """The net's first layer (a ``Linear``) and a ``Net`` of the others (``None`` when there are none)."""
    first = net.layers[0]
    if not isinstance(first, Linear):
        raise TypeError(f"{who}: sparse input needs a net whose first layer is a Linear, got {first!r}; "
                        "densify X (X.toarray()) or start hidden_layers with a linear layer")
    return first, (Net(list(net.layers[1:])) if len(net.layers) > 1 else None)


def predict(net: Net, x: Any, who: str, chunk: int = 4096) -> np.ndarray:
    """``net.predict`` of a sparse ``x`` (n_samples, n_in), in row chunks, in inference mode."""
    first, rest = split(net, who)
    x = sp.csr_matrix(x) if not sp.issparse(x) or x.format != "csr" else x
    parts = []
    for start in range(0, x.shape[0], chunk):
        h = first.forward(x[start:start + chunk])
        parts.append(h if rest is None else rest.predict(h))
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def fit(net: Net, x: Any, y: np.ndarray, *, epochs: int, lr: Any, batch_size: int, loss: Any,
        shuffle: bool, seed: int, sample_weight: np.ndarray | None = None,
        callbacks: Sequence[Callback] = (), who: str = "fit") -> History:
    """``layerkit.fit``'s minibatch loop (same shuffling, losses and update) for a sparse ``x``.

    Parameters
    ----------
    net : Net
        Its first layer must be a ``Linear``.
    x : scipy.sparse matrix or array, shape (n_samples, n_in)
    y : ndarray, shape (n_samples,) or (n_samples, n_out)
    epochs, batch_size, shuffle, seed, sample_weight
        As in ``layerkit.fit``.
    lr : float or Optimizer
        What ``net.step`` receives.
    loss : str or Loss
    callbacks : sequence of Callback
        ``on_train_begin``, ``on_epoch_end`` and ``on_train_end`` are called.

    Returns
    -------
    History
        ``train_loss`` per epoch.
    """
    first, rest = split(net, who)
    x = sp.csr_matrix(x) if x.format != "csr" else x  # rows of a CSR matrix are cheap to select
    loss_fn = get_loss(loss)
    prepare = getattr(loss_fn, "prepare_targets", None)
    if prepare is not None:
        y = prepare(y, net.dtype)
    rng = np.random.default_rng(seed)
    history = History()
    state = FitState(net=net, update=lr, history=history, epochs=epochs,
                     extra={"has_validation": False})
    n = x.shape[0]
    net.train()
    for callback in callbacks:
        callback.on_train_begin(state)
    for epoch in range(epochs):
        state.epoch = epoch
        order = rng.permutation(n) if shuffle else None
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size] if shuffle else slice(start, start + batch_size)
            xb, yb = x[rows], y[rows]
            h = first.forward(xb)
            if rest is None:
                pred, trace = h, None
            else:
                pred, trace = rest.forward(h)
            if sample_weight is None:
                value, grad = loss_fn(pred, yb)
            else:
                value, grad = loss_fn(pred, yb, sample_weight=sample_weight[rows])
            dh = grad if rest is None else rest.backward(trace, grad, input_grad=True)
            first.backward(xb, dh, need_dx=False)
            net.step(lr)
            total += float(value) * xb.shape[0]
        history.append(train_loss=total / n)
        for callback in callbacks:
            callback.on_epoch_end(state)
        if not math.isfinite(history["train_loss"][-1]):
            raise FloatingPointError(f"{who}: the training loss became {history['train_loss'][-1]} in epoch "
                                     f"{epoch + 1}; lower the learning rate")
        if state.stop:
            history.stopped_early = epoch + 1 < epochs
            break
    for callback in callbacks:
        callback.on_train_end(state)
    return history


__all__ = ["fit", "predict", "split"]
