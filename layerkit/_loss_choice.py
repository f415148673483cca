"""The loss ``fit`` chooses when none is given, and the checks of targets against the net's output."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from layerkit._batches import BatchSource
from layerkit.losses import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, MeanSquaredError, SoftmaxCrossEntropy
from layerkit.net import Net


def output_width(net: Net, source: BatchSource, *, predict: bool = True) -> int | None:
    """The width of the net's output: from the layers, else (``predict``) from a prediction of the first row."""
    width = net.output_features(source.shape[-1]) if len(source.shape) == 2 else None  # (features known for 2-D)
    if width is None and predict:
        width = int(np.shape(net.predict(source.slice(0, 1)))[-1])
    return width


def loss_for_width(net: Net, width: int, y: np.ndarray, who: str) -> str:
    """The loss ``fit`` uses when none is given, from the net's output width and the targets."""
    integral = y.dtype.kind in "iub" or (y.size > 0 and bool(np.all(y == np.round(y))))
    binary = y.size > 0 and bool(np.all((y == 0) | (y == 1)))
    last = net.layers[-1] if len(net.layers) else None
    from layerkit.layers.sigmoid import Sigmoid

    if width == 1 and (y.ndim == 1 or y.shape[1:] == (1,)):
        if binary or (isinstance(last, Sigmoid) and y.size and 0 <= y.min() and y.max() <= 1):
            return "bce"
        if not integral or y.dtype.kind == "f":
            return "mse"
    if width > 1 and y.ndim == 1 and integral:
        return "softmax_cross_entropy"
    if width > 1 and y.shape[1:] == (width,) and binary:
        if bool(np.all(y.sum(axis=1) == 1)):  # one-hot rows: classes, as labels are
            return "softmax_cross_entropy"
        raise ValueError(
            f"{who}: no loss given, and y of shape {y.shape} holds 0/1 rows that are not one-hot (several "
            "classes per row?): pass loss= ('bce' with a Sigmoid output for several labels per row, 'mse' "
            "to regress the values)")
    if y.shape[1:] == (width,):
        return "mse"
    raise ValueError(
        f"{who}: no loss given, and none fits targets of shape {y.shape} ({y.dtype}) for a net with "
        f"{width} output(s): pass loss=: 'bce' for 0/1 targets with one (sigmoid) output, "
        "'softmax_cross_entropy' for 1-D integer labels 0..k-1 or one-hot rows with k outputs (logits), 'mse' for "
        f"float targets shaped like the output (n_samples, {width})"
    )


def warn_double_activation(net: Net, loss_fn: Any) -> None:
    """Warn when the net ends in the activation (``Softmax``, ``Sigmoid``) that ``loss_fn`` applies itself."""
    from layerkit.layers.sigmoid import Sigmoid
    from layerkit.layers.softmax import Softmax
    from layerkit.warnings import DoubleSigmoidWarning, DoubleSoftmaxWarning, _user_stacklevel

    if not len(net.layers):
        return
    last = net.layers[-1]
    if isinstance(loss_fn, SoftmaxCrossEntropy) and isinstance(last, Softmax):
        activation, category = "softmax", DoubleSoftmaxWarning
        instead = ("Remove the final Softmax layer (apply lk.Softmax to predictions when you need "
                   "probabilities), as with Keras' from_logits=True")
    elif isinstance(loss_fn, BinaryCrossEntropyWithLogits) and isinstance(last, Sigmoid):
        activation, category = "sigmoid", DoubleSigmoidWarning
        instead = ("Remove the final Sigmoid layer (apply lk.Sigmoid to predictions when you need "
                   "probabilities), or keep it and use loss=\"bce\", which takes probabilities")
    else:
        return
    warnings.warn(
        f"fit: the net ends in {last!r} and the loss is {loss_fn.name}, which takes "
        f"logits and applies the {activation} itself: the {activation} is taken twice and training stalls. "
        + instead,
        category, stacklevel=_user_stacklevel())


def check_targets_fit(loss_fn: Any, y: np.ndarray, width: int | None, who: str = "fit") -> None:
    """``ValueError`` naming the data's shapes when ``y`` cannot be the targets of ``loss_fn`` for ``width`` outputs.

    (The loss would otherwise fail on the first minibatch, naming the
    minibatch's shapes rather than the data's.)
    """
    if width is None:  # the layers cannot say: the loss checks each minibatch
        return
    n = y.shape[0]
    kind = type(loss_fn)
    if kind in (MeanSquaredError, BinaryCrossEntropy):
        fits, expected = y.shape[1:] == (width,) or (y.ndim == 1 and width == 1), f"shape ({n}, {width})"
    elif kind is SoftmaxCrossEntropy:
        fits = y.ndim == 1 or y.shape[1:] == (width,)
        expected = f"class labels of shape ({n},) or rows of shape ({n}, {width})"
    else:
        return
    if not fits:
        raise ValueError(f"{who}: loss {loss_fn.name!r} needs targets of {expected}, like the net's output of "
                         f"width {width}, but y has shape {y.shape}")
