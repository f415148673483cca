"""``fit``: minibatch training with optimizers, callbacks, early stopping, clipping and diagnostics.

The work of one minibatch lives in ``train_batch`` alone, so a faster pass
(workspaces, skipping the input gradient) can replace it in one place.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Sequence

import numpy as np

from layerkit._batches import BatchSource, grad_buffer, is_sparse, minibatches
from layerkit._epoch import EpochRunner
from layerkit._validation import as_rng, check_finite, check_input, check_positive_int
from layerkit.callbacks import Callback, EarlyStopping, FitState
from layerkit.diagnostics import Diagnostics
from layerkit.history import History
from layerkit.losses import Loss, NonFinitePredictionsError, SoftmaxCrossEntropy, check_sample_weight, get_loss
from layerkit.net import Net
from layerkit.optim.base import Optimizer
from layerkit.optim.clipping import clip_grad_norm
from layerkit.optim.schedules import Schedule, _check_real
from layerkit.optim.sgd import SGD

__all__ = ["fit", "evaluate", "train_batch", "History"]

_ADVICE = "lower the learning rate or clip gradients (clip_norm=)"


def _check_targets(y: Any, n: int, who: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{who}: y must hold numbers, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{who}: x has {n} rows but y has shape {y.shape}")
    if y.dtype.kind == "f":
        check_finite(y, who, "y")
    return y


def _check_data(net: Net, x: Any, y: Any, who: str) -> tuple[Any, np.ndarray]:
    """``x`` whole (an ndarray of the net's dtype, or CSR rows when sparse) and ``y``, both checked."""
    if is_sparse(x):
        source = BatchSource(x, who, net.dtype)
        source.check_finite()
        x = source.data
    else:
        x = check_input(x, who, net.input_spec(), net.dtype)
        check_finite(x, who, "x")
    return x, _check_targets(y, x.shape[0], who)


def _accuracy_of(loss_fn: Any) -> Any:
    return getattr(loss_fn, "accuracy", lambda p, t: None)


def evaluate(net: Net, x: Any, y: Any, loss: str | Loss | None = None) -> tuple[float, float | None]:
    """Mean loss and accuracy (``None`` for regression losses) of ``net`` on ``(x, y)``.

    ``loss=None`` chooses the loss from the output width and the targets by
    ``fit``'s rule (see ``fit``).
    """
    x, y = _check_data(net, x, y, "evaluate")
    pred = net.predict(x)
    loss_fn = get_loss(_loss_for_width(net, np.shape(pred)[-1], y, "evaluate") if loss is None else loss)
    value, _ = loss_fn(pred, y)
    return value, _accuracy_of(loss_fn)(pred, y)


def _resolve_update(lr: Any, optimizer: Any) -> Any:
    if optimizer is not None:
        if lr is not None:
            raise ValueError("fit: give lr or optimizer, not both")
        lr = optimizer
    if lr is None:
        return 0.1
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return _check_real(lr, "fit: lr", low=0.0)
    if isinstance(lr, Schedule):
        return SGD(lr=lr)
    if callable(getattr(lr, "update_layer", None)):
        return lr
    raise TypeError("fit: lr must be a learning rate (float), a Schedule or an optimizer with "
                    f"update_layer(layer, key), got {type(lr).__name__}")


def _resolve_callbacks(callbacks: Sequence[Callback], early_stopping: Any) -> list[Callback]:
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError("fit: callbacks must be layerkit.callbacks.Callback objects (wrap functions in "
                            f"LambdaCallback), got {type(callback).__name__}")
    if early_stopping is None or early_stopping is False:
        return callbacks
    if isinstance(early_stopping, EarlyStopping):
        return callbacks + [early_stopping]
    if isinstance(early_stopping, numbers.Integral) and not isinstance(early_stopping, bool):
        return callbacks + [EarlyStopping(patience=int(early_stopping))]
    raise TypeError("fit: early_stopping must be an EarlyStopping or a patience (int), "
                    f"got {type(early_stopping).__name__}")


def train_batch(net: Net, xb: np.ndarray, yb: np.ndarray, loss_fn: Any, update: Any, *,
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


def _current_lr(update: Any, state_key: str) -> float | None:
    if isinstance(update, Optimizer):
        state = update.state.get(state_key)
        return update.lr(max(state["step"] - 1, 0)) if state else update.lr(0)
    return None


def _progress(epochs: int, verbose: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="fit", unit="epoch", disable=not verbose, leave=bool(verbose),
                dynamic_ncols=True)


def _choose_loss(net: Net, source: BatchSource, y: np.ndarray, who: str = "fit") -> str:
    """The loss ``fit`` uses when none is given, from the output width and the targets."""
    return _loss_for_width(net, np.shape(net.predict(source.slice(0, 1)))[-1], y, who)


def _loss_for_width(net: Net, width: int, y: np.ndarray, who: str) -> str:
    """The rule of ``_choose_loss`` once the net's output width is known."""
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
    if y.shape[1:] == (width,):
        return "mse"
    raise ValueError(
        f"{who}: no loss given, and none fits targets of shape {y.shape} ({y.dtype}) for a net with "
        f"{width} output(s): pass loss=: 'bce' for 0/1 targets with one (sigmoid) output, "
        "'softmax_cross_entropy' for 1-D integer labels 0..k-1 with k outputs (logits), 'mse' for "
        f"float targets shaped like the output (n_samples, {width})"
    )


def _warn_double_softmax(net: Net, loss_fn: Any) -> None:
    from layerkit.layers.softmax import Softmax
    from layerkit.warnings import DoubleSoftmaxWarning, _user_stacklevel

    if isinstance(loss_fn, SoftmaxCrossEntropy) and len(net.layers) and isinstance(net.layers[-1], Softmax):
        import warnings

        warnings.warn(
            f"fit: the net ends in {net.layers[-1]!r} and the loss is softmax_cross_entropy, which takes "
            "logits and applies the softmax itself: the softmax is taken twice and training stalls. "
            "Remove the final Softmax layer (apply lk.Softmax to predictions when you need "
            "probabilities), as with Keras' from_logits=True",
            DoubleSoftmaxWarning, stacklevel=_user_stacklevel())


def _non_finite_parameters(net: Net) -> str | None:
    """The first parameter or gradient holding NaN or infinity, as ``"layers[i].W"``/``"layers[i].dW"``."""
    for index, layer in enumerate(net.layers):
        for name in getattr(layer, "param_names", ()):
            for attr in (name, "d" + name):
                value = getattr(layer, attr, None)
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                    return f"layers[{index}].{attr} ({layer!r})"
    return None


def _diverged(message: str, history: History, bar: Any) -> FloatingPointError:
    bar.close()
    error = FloatingPointError(f"fit: {message}; {_ADVICE}. The epochs completed are in error.history")
    error.history = history
    error.reason = message  # what went wrong, without fit's advice: callers with advice of their own use it
    return error


def _restoring_modes(train: Callable[..., History]) -> Callable[..., History]:
    """``train(net, ...)``, then every layer's ``training`` attribute back to what it was (even on an error)."""
    @functools.wraps(train)
    def wrapper(net: Any, *args: Any, **kwargs: Any) -> History:
        # the net itself, then every layer depth first (blocks and nested nets included): a block's mode
        # setter sets its children, so restoring parents before children gives each its own mode back
        layers = [net] + [layer for _, layer in net.walk()] if isinstance(net, Net) else []
        found = [(layer, _mode_of(layer)) for layer in layers]
        try:
            return train(net, *args, **kwargs)
        finally:
            for layer, mode in found:
                if mode is _CLASS_MODE:  # the class's default: drop the instance attribute fit set
                    getattr(layer, "__dict__", {}).pop("training", None)
                else:
                    layer.training = mode
    return wrapper


def _mode_of(layer: Any) -> Any:
    """A layer's own ``training`` value, or ``_CLASS_MODE`` when it only inherits its class's default."""
    if isinstance(getattr(type(layer), "training", None), property):  # a block's mode, kept by its setter
        return layer.training
    return layer.__dict__.get("training", _CLASS_MODE) if hasattr(layer, "__dict__") else _CLASS_MODE


_CLASS_MODE = object()  # a layer whose mode was its class's ``training`` default, not an instance attribute


@_restoring_modes
def fit(
    net: Net,
    x: Any,
    y: Any,
    *,
    epochs: int = 20,
    lr: float | Schedule | Optimizer | None = None,
    optimizer: Optimizer | None = None,
    batch_size: int = 15,
    loss: str | Loss | None = None,
    shuffle: bool = True,
    seed: Any = None,
    validation_data: tuple[Any, Any] | None = None,
    verbose: bool | int = True,
    callbacks: Sequence[Callback] = (),
    early_stopping: EarlyStopping | int | None = None,
    clip_norm: float | None = None,
    diagnostics: bool = False,
    sample_weight: Any = None,
) -> History:
    """Train ``net`` on minibatches.

    Parameters
    ----------
    net : Net
    x : array_like, numpy.memmap or scipy.sparse matrix, shape (n_samples, n_in)
        Minibatches are gathered row by row into reused buffers, so training
        holds ``x`` plus O(``batch_size``) memory (``x`` is never copied or
        converted as a whole). A ``numpy.memmap`` or any array-like with
        ``__getitem__`` and ``shape`` (an HDF5 dataset, for instance) is read
        a minibatch at a time, so data larger than memory train from disk. A
        sparse ``x`` gives sparse (CSR) minibatches; the net's first layer
        must accept them.
    y : array_like, shape (n_samples,) or (n_samples, n_out)
        Targets in the form ``loss`` takes.
    epochs : int
        Passes over the data.
    lr : float, Schedule or optimizer, optional
        A float is a rate for plain gradient descent on the gradient of the
        *mean* loss over each minibatch (default 0.1); a ``Schedule`` means
        ``SGD`` with that schedule; an optimizer is used as it is.
    optimizer : Optimizer, optional
        Same as passing it as ``lr``; give one of the two.
    batch_size : int
        Rows per minibatch; the last minibatch of an epoch may be smaller.
    loss : str or Loss, optional
        ``"bce"``, ``"mse"``, ``"softmax_cross_entropy"`` or a loss object.
        By default it is chosen from the net's output width and ``y``:
        ``"bce"`` for one output and 0/1 targets (or targets in [0, 1] with a
        net ending in ``Sigmoid``), ``"softmax_cross_entropy"`` for k > 1
        outputs and 1-D integer labels, ``"mse"`` for float targets shaped
        like the output; other targets raise ``ValueError`` saying which loss
        fits what. ``softmax_cross_entropy`` takes logits: ``fit`` warns
        (``layerkit.warnings.DoubleSoftmaxWarning``) when the net ends in
        ``Softmax``.
    shuffle : bool
        Shuffle the rows at the start of each epoch.
    seed : None, int or numpy.random.Generator
        Source of the shuffling.
    validation_data : (x_val, y_val), optional
        Evaluated after each epoch (``val_loss``, ``val_accuracy``).
    verbose : bool or int
        ``0``/``False``: quiet. ``1``/``True``: a tqdm progress bar over epochs
        showing the last epoch's loss and accuracy. ``2``: also one line per epoch.
    callbacks : sequence of Callback
        Hooks after each minibatch and epoch (``layerkit.callbacks``).
    early_stopping : EarlyStopping or int, optional
        Stop when the monitored metric (``val_loss`` by default when validation
        data is given, else ``train_loss``) stops improving; an int is the patience.
    clip_norm : float, optional
        Clip the global gradient norm of each minibatch to this value.
    diagnostics : bool
        Record per-layer diagnostics per epoch in ``history.diagnostics``.
    sample_weight : array_like, shape (n_samples,), optional
        Non-negative weight of each row: each minibatch's loss is the mean of
        its rows' weighted losses (the loss must accept ``sample_weight=``, as
        layerkit's losses do). The weights are shuffled with the rows.

    Returns
    -------
    History
        Per-epoch metrics; ``history.plot(path)`` draws the learning curves.

    Raises
    ------
    FloatingPointError
        When training diverges: a minibatch's predictions or loss are NaN or
        infinite (checked on every minibatch, a test of one number beside
        the loss's own check of the predictions), or a parameter or its
        gradient is (checked once per epoch, one pass over the parameters,
        O(n_params)). The message names the culprit and gives advice; the
        epochs completed before are kept in ``error.history`` (a ``History``).

    Notes
    -----
    ``fit`` trains in training mode (``net.train()``) and, when it returns or
    raises, puts every layer back in the mode it found (a net in ``eval()``
    mode stays in it); validation data are evaluated with ``net.predict``, in
    inference mode (no dropout, batch norm's running statistics).

    A schedule advances once per update (minibatch); wrap it in
    ``layerkit.optim.PerEpoch(schedule, steps_per_epoch)`` to advance it once
    per epoch.
    """
    if not isinstance(net, Net):
        raise TypeError(f"fit: net must be a layerkit.Net, got {type(net).__name__}")
    epochs = check_positive_int(epochs, "fit: epochs", minimum=0)
    batch_size = check_positive_int(batch_size, "fit: batch_size")
    update = _resolve_update(lr, optimizer)
    if clip_norm is not None:
        clip_norm = _check_real(clip_norm, "fit: clip_norm", low=0.0, low_open=True)
    callbacks = _resolve_callbacks(callbacks, early_stopping)
    source = BatchSource(x, "fit", net.dtype, spec=net.input_spec())
    source.check_finite()
    y = _check_targets(y, len(source), "fit")
    if len(source) == 0:
        raise ValueError("fit: x is an empty batch (0 rows)")
    loss_fn = get_loss(_choose_loss(net, source, y) if loss is None else loss)
    _warn_double_softmax(net, loss_fn)
    accuracy_fn = _accuracy_of(loss_fn)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, len(source), "fit", source.dtype)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
        x_val, y_val = _check_data(net, *validation_data, "fit: validation_data")
    rng = as_rng(seed, "fit: seed")
    history = History(diagnostics=Diagnostics() if diagnostics else None)
    state = FitState(net=net, update=update, history=history, epochs=epochs,
                     extra={"has_validation": validation_data is not None})
    first_param = next((f"{i}.{layer.param_names[0]}" for i, layer in enumerate(net.layers)
                        if getattr(layer, "param_names", ())), "")
    n = len(source)
    prepare = getattr(loss_fn, "prepare_targets", None)
    if prepare is not None:
        y = prepare(y, net.dtype)
    workspace, grad_buffers, batch_buffers = net.workspace(), {}, {}
    # a fused net trained by plain SGD: whole epochs in the core (None when Python is needed per minibatch)
    in_core = EpochRunner.for_fit(net, source, y, loss_fn, update, batch_size=batch_size, clip_norm=clip_norm,
                                  diagnostics=history.diagnostics, callbacks=callbacks,
                                  sample_weight=sample_weight, workspace=workspace, grad_buffers=grad_buffers,
                                  batch_buffers=batch_buffers)
    net.train()  # training mode (dropout, batch statistics); validation runs net.predict, in inference mode
    for callback in callbacks:
        callback.on_train_begin(state)
    bar = _progress(epochs, verbose)
    for epoch in bar:
        state.epoch = epoch
        for callback in callbacks:
            callback.on_epoch_begin(state)
        order = rng.permutation(n) if shuffle else None
        total_loss, total_correct, has_accuracy = 0.0, 0.0, True
        first = 0
        done = None if in_core is None else in_core.run(order)
        if done is not None:  # the epoch's minibatches up to `first` ran in the core
            first, total_loss, total_correct, last_loss, last_rows = done
            has_accuracy = in_core.has_accuracy
            if first:
                state.batch, state.batch_loss, state.batch_size = first - 1, last_loss, last_rows
        # the rows of x[order][start:stop], gathered into reused buffers (never a copy of the set)
        draws = minibatches(source, y, sample_weight, order, batch_size, batch_buffers, first)
        for batch, (xb, yb, wb) in enumerate(draws, first):
            try:
                value, pred, accuracy = train_batch(
                    net, xb, yb, loss_fn, update, clip_norm=clip_norm, diagnostics=history.diagnostics,
                    workspace=workspace, grad_buffers=grad_buffers, sample_weight=wb)
            except NonFinitePredictionsError as error:  # x is finite: the net diverged
                culprit = _non_finite_parameters(net)
                raise _diverged(f"the predictions became non-finite in epoch {epoch + 1}, minibatch {batch + 1} "
                                f"({error}{'; ' + culprit + ' is not finite' if culprit else ''})",
                                history, bar) from error
            if not math.isfinite(value):
                raise _diverged(f"the loss of minibatch {batch + 1} in epoch {epoch + 1} became {value}",
                                history, bar)
            rows = xb.shape[0]
            total_loss += value * rows
            if accuracy is None:
                has_accuracy = False
            else:
                total_correct += accuracy * rows
            state.batch, state.batch_loss, state.batch_size = batch, value, rows
            for callback in callbacks:
                callback.on_batch_end(state)
        culprit = _non_finite_parameters(net)
        if culprit is not None:
            raise _diverged(f"{culprit} became non-finite in epoch {epoch + 1}", history, bar)
        row = {"train_loss": total_loss / n, "train_accuracy": total_correct / n if has_accuracy else None}
        if validation_data is not None:
            val_pred = net.predict(x_val)
            row["val_loss"] = loss_fn(val_pred, y_val)[0]
            row["val_accuracy"] = accuracy_fn(val_pred, y_val)
        row["lr"] = _current_lr(update, first_param)
        history.append(**row)
        if history.diagnostics is not None:
            history.diagnostics.end_epoch()
        for callback in callbacks:
            callback.on_epoch_end(state)
        shown = {key: value for key, value in row.items() if value is not None and key != "lr"}
        bar.set_postfix({key.replace("accuracy", "acc"): f"{value:.4f}" for key, value in shown.items()},
                        refresh=False)
        if verbose and int(verbose) >= 2:
            bar.write(f"epoch {epoch + 1:3d}/{epochs}: " + "  ".join(
                f"{key}={value:.4f}" for key, value in shown.items()))
        if not math.isfinite(row["train_loss"]):
            raise _diverged(f"the training loss became {row['train_loss']} in epoch {epoch + 1}", history, bar)
        if state.stop:
            history.stopped_early = epoch + 1 < epochs
            break
    bar.close()
    for callback in callbacks:
        callback.on_train_end(state)
    return history
