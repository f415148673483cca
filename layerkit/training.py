"""``fit``: minibatch gradient descent with a per-epoch history."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from layerkit._validation import as_rng, check_batch, check_finite, check_positive_int
from layerkit.losses import Loss, get_loss
from layerkit.net import Net


@dataclass
class History:
    """Per-epoch metrics of a ``fit`` run.

    Attributes
    ----------
    metrics : dict of str to list of float
        ``"train_loss"`` (mean over the epoch's minibatches, measured before
        each update), ``"train_accuracy"`` where the loss is a classifier's, and
        ``"val_loss"``/``"val_accuracy"`` when validation data was given.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)

    def append(self, **values: float | None) -> None:
        for key, value in values.items():
            if value is not None:
                self.metrics.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    @property
    def epochs(self) -> int:
        return len(self.metrics.get("train_loss", []))

    def last(self) -> dict[str, float]:
        """The metrics of the last epoch."""
        return {key: values[-1] for key, values in self.metrics.items() if values}


def _check_data(net: Net, x: Any, y: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    x = check_batch(x, who, name="x", dtype=net.dtype)
    check_finite(x, who, "x")
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{who}: y must hold numbers, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: x has {x.shape[0]} rows but y has shape {y.shape}")
    if y.dtype.kind == "f":
        check_finite(y, who, "y")
    return x, y


def evaluate(net: Net, x: Any, y: Any, loss: str | Loss = "bce") -> tuple[float, float | None]:
    """Mean loss and accuracy (``None`` for regression losses) of ``net`` on ``(x, y)``."""
    loss_fn = get_loss(loss)
    x, y = _check_data(net, x, y, "evaluate")
    pred = net.predict(x)
    value, _ = loss_fn(pred, y)
    accuracy = getattr(loss_fn, "accuracy", lambda p, t: None)(pred, y)
    return value, accuracy


def fit(
    net: Net,
    x: Any,
    y: Any,
    *,
    epochs: int = 20,
    lr: float = 0.1,
    batch_size: int = 15,
    loss: str | Loss = "bce",
    shuffle: bool = True,
    seed: Any = None,
    validation_data: tuple[Any, Any] | None = None,
    verbose: bool = True,
) -> History:
    """Train ``net`` by minibatch gradient descent.

    Parameters
    ----------
    net : Net
    x : array_like, shape (n_samples, n_in)
    y : array_like, shape (n_samples,) or (n_samples, n_out)
        Targets in the form ``loss`` takes.
    epochs : int
        Passes over the data.
    lr : float or optimizer
        Passed to ``net.step`` after each minibatch: a learning rate applied to
        the gradient of the *mean* loss over the minibatch, or an optimizer.
    batch_size : int
        Rows per minibatch; the last minibatch of an epoch may be smaller.
    loss : str or Loss
        ``"bce"``, ``"mse"``, ``"softmax_cross_entropy"`` or a loss object.
    shuffle : bool
        Shuffle the rows at the start of each epoch.
    seed : None, int or numpy.random.Generator
        Source of the shuffling.
    validation_data : (x_val, y_val), optional
        Evaluated after each epoch.
    verbose : bool
        Print one line per epoch.

    Returns
    -------
    History
    """
    if not isinstance(net, Net):
        raise TypeError(f"fit: net must be a layerkit.Net, got {type(net).__name__}")
    epochs = check_positive_int(epochs, "fit: epochs", minimum=0)
    batch_size = check_positive_int(batch_size, "fit: batch_size")
    loss_fn = get_loss(loss)
    accuracy_fn = getattr(loss_fn, "accuracy", lambda p, t: None)
    x, y = _check_data(net, x, y, "fit")
    if x.shape[0] == 0:
        raise ValueError("fit: x is an empty batch (0 rows)")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
        x_val, y_val = _check_data(net, *validation_data, "fit: validation_data")
    rng = as_rng(seed, "fit: seed")
    history = History()
    n = x.shape[0]
    for epoch in range(epochs):
        if shuffle:
            order = rng.permutation(n)
            x_epoch, y_epoch = x[order], y[order]
        else:
            x_epoch, y_epoch = x, y
        total_loss = 0.0
        total_correct = 0.0
        has_accuracy = True
        for start in range(0, n, batch_size):
            xb = x_epoch[start:start + batch_size]
            yb = y_epoch[start:start + batch_size]
            pred, trace = net.forward(xb)
            value, grad = loss_fn(pred, yb)
            rows = xb.shape[0]
            total_loss += value * rows
            acc = accuracy_fn(pred, yb)
            if acc is None:
                has_accuracy = False
            else:
                total_correct += acc * rows
            net.backward(trace, grad)
            net.step(lr)
        row = {"train_loss": total_loss / n, "train_accuracy": total_correct / n if has_accuracy else None}
        if validation_data is not None:
            val_pred = net.predict(x_val)
            row["val_loss"] = loss_fn(val_pred, y_val)[0]
            row["val_accuracy"] = accuracy_fn(val_pred, y_val)
        history.append(**row)
        if verbose:
            print(f"epoch {epoch + 1:3d}/{epochs}: " + "  ".join(
                f"{key}={value:.4f}" for key, value in row.items() if value is not None))
    return history
