"""``fit``: minibatch training with optimizers, callbacks, early stopping, clipping, diagnostics and checkpoints.

``fit`` checks its arguments, builds a ``TrainingRun`` (``layerkit._run``),
which holds everything the run changes, and loops over its epochs; a
``Checkpoint`` (``layerkit._checkpoint``) saves the run and resumes it.
"""
from __future__ import annotations

import numbers
import os
from typing import Any, Sequence

import numpy as np

from layerkit._batches import BatchSource, is_sparse
from layerkit._checkpoint import Checkpoint
from layerkit._interrupt import DeferredInterrupt
from layerkit._loss_choice import check_targets_fit, loss_for_width, output_width, warn_double_activation
from layerkit._minibatch import train_batch
from layerkit._modes import restoring_modes
from layerkit._run import TrainingRun
from layerkit._validation import as_rng, check_finite, check_input, check_positive_int
from layerkit.callbacks import Callback, EarlyStopping
from layerkit.history import History
from layerkit.losses import Loss, check_sample_weight, get_loss
from layerkit.net import Net
from layerkit.optim.base import Optimizer
from layerkit.optim.adam import Adam
from layerkit.optim.names import DEFAULT_LR, check_not_a_class, optimizer_by_name
from layerkit.optim.schedules import Schedule, _check_real
from layerkit.optim.sgd import SGD

__all__ = ["fit", "evaluate", "train_batch", "History"]

AUTO_BATCH = 200  # batch_size="auto": min(AUTO_BATCH, n_samples), as the estimators and MLPClassifier


@restoring_modes
def fit(
    net: Net,
    x: Any,
    y: Any,
    *,
    epochs: int = 20,
    lr: float | Schedule | Optimizer | None = None,
    optimizer: Optimizer | str | None = None,
    batch_size: int | str = "auto",
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
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every_epochs: int = 1,
    checkpoint_every_batches: int | None = None,
    resume: bool = False,
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
        *mean* loss over each minibatch; a ``Schedule`` means ``SGD`` with
        that schedule; an optimizer is used as it is. With ``optimizer=`` a
        name, the rate (or schedule) of that optimizer. Without ``lr`` and
        ``optimizer``: ``Adam(lr=0.001)``, as the estimators.
    optimizer : Optimizer or str, optional
        An optimizer instance (same as passing it as ``lr``; give one of the
        two), or a name: ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
        ``"adagrad"``, with ``lr=`` its rate (by default Keras' rates: 0.01
        for ``"sgd"``, 0.001 for the others).
    batch_size : int or "auto"
        Rows per minibatch; the last minibatch of an epoch may be smaller.
        ``"auto"``: ``min(200, n_samples)``, as the estimators (and
        scikit-learn's ``MLPClassifier``).
    loss : str or Loss, optional
        ``"bce"``, ``"mse"``, ``"softmax_cross_entropy"`` or a loss object.
        By default it is chosen from the net's output width and ``y``:
        ``"bce"`` for one output and 0/1 targets (or targets in [0, 1] with a
        net ending in ``Sigmoid``), ``"softmax_cross_entropy"`` for k > 1
        outputs and 1-D integer labels or one-hot rows, ``"mse"`` for float
        targets shaped like the output; other targets (0/1 rows that are not
        one-hot, say) raise ``ValueError`` saying which loss fits what. ``softmax_cross_entropy`` takes logits: ``fit`` warns
        (``layerkit.warnings.DoubleSoftmaxWarning``) when the net ends in
        ``Softmax``; likewise ``bce_with_logits`` with a net ending in
        ``Sigmoid`` (``layerkit.warnings.DoubleSigmoidWarning``).
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
    checkpoint : str or path-like, optional
        Save the whole state of the run there (weights and batch-norm
        statistics, optimizer and schedule, position, random generators of
        the shuffling and of dropout, history, callbacks' state such as early
        stopping's best weights, layer modes), atomically: a crash while
        writing leaves the previous checkpoint. The file is also a model file
        (``Net.load(path)`` reads the net).
    checkpoint_every_epochs : int
        Save after every ``checkpoint_every_epochs``-th epoch (and after the last).
    checkpoint_every_batches : int, optional
        Also save after every ``checkpoint_every_batches``-th minibatch, for
        long epochs (the epochs then run in Python, never in the compiled core).
    resume : bool
        Continue from ``checkpoint`` when the file exists (start afresh when it
        does not): the same call can simply be run again after a crash, and the
        run ends bit for bit as an uninterrupted one would. The net, loss,
        optimizer (type and hyperparameters), callbacks, number of rows, batch
        size and the other options must be those of the saved run (``epochs``
        may grow), else ``ValueError``; nothing is loaded then.

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
    KeyboardInterrupt
        On Ctrl-C, at the end of the current minibatch (of the current epoch
        when it runs in the compiled core): the epochs finished are in
        ``error.history`` and the last checkpoint written stays valid. A second
        Ctrl-C interrupts at once.
    ValueError
        A checkpoint of another run, given ``resume=True``
        (``layerkit.io.ModelFileError`` for a corrupt file).

    Notes
    -----
    ``fit`` trains in training mode (``net.train()``) and, when it returns or
    raises, puts every layer back in the mode it found (a net in ``eval()``
    mode stays in it); validation data are evaluated with ``net.predict``, in
    inference mode (no dropout, batch norm's running statistics).

    A schedule advances once per update (minibatch); wrap it in
    ``layerkit.optim.PerEpoch(schedule, steps_per_epoch)`` to advance it once
    per epoch. A ``ReduceLROnPlateau`` schedule receives the monitored
    metric after every epoch.

    On resume, callbacks get ``on_train_begin`` again, then
    ``load_state_dict``; an epoch resumed in its middle does not repeat
    ``on_epoch_begin``.
    """
    saver = _checkpoint(checkpoint, checkpoint_every_epochs, checkpoint_every_batches, resume)
    run = _new_run(net, x, y, epochs=epochs, update=_resolve_update(lr, optimizer), batch_size=batch_size,
                   loss=loss, shuffle=shuffle, seed=seed, validation_data=validation_data,
                   callbacks=_resolve_callbacks(callbacks, early_stopping), clip_norm=clip_norm,
                   diagnostics=diagnostics, sample_weight=sample_weight,
                   batch_hooks=saver is not None and saver.every_batches is not None)
    run.begin()
    if saver is not None:
        saver.prepare(run)
        if resume:
            saver.restore(run)
    with DeferredInterrupt() as interrupt, _progress(run, verbose) as bar:
        def after_batch() -> None:
            if saver is not None:
                saver.after_batch(run)
            if interrupt.requested:
                raise run.interrupted()

        while not run.finished:
            run.train_epoch(after_batch)
            row = run.end_epoch()
            if saver is not None:
                saver.after_epoch(run)
            _show(bar, row, run.position.epoch, epochs, verbose)
            if interrupt.requested:
                raise run.interrupted()
    return run.end()


# ---------------------------------------------------------------------- fit's arguments
def _new_run(net: Net, x: Any, y: Any, *, epochs: Any, update: Any, batch_size: Any, loss: Any, shuffle: bool,
             seed: Any, validation_data: Any, callbacks: list[Callback], clip_norm: Any, diagnostics: bool,
             sample_weight: Any, batch_hooks: bool) -> TrainingRun:
    """A ``TrainingRun`` of checked arguments."""
    if not isinstance(net, Net):
        raise TypeError(f"fit: net must be a layerkit.Net, got {type(net).__name__}")
    epochs = check_positive_int(epochs, "fit: epochs", minimum=0)
    if clip_norm is not None:
        clip_norm = _check_real(clip_norm, "fit: clip_norm", low=0.0, low_open=True)
    source = BatchSource(x, "fit", net.dtype, spec=net.input_spec())
    source.check_finite()
    y = _check_targets(y, len(source), "fit")
    if len(source) == 0:
        raise ValueError("fit: x is an empty batch (0 rows)")
    batch_size = _batch_size(batch_size, len(source))
    width = output_width(net, source, predict=loss is None)
    loss_fn = get_loss(loss_for_width(net, width, y, "fit") if loss is None else loss)
    check_targets_fit(loss_fn, y, width)
    warn_double_activation(net, loss_fn)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, len(source), "fit", source.dtype)
    validation = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
        validation = _check_data(net, *validation_data, "fit: validation_data")
    prepare = getattr(loss_fn, "prepare_targets", None)
    if prepare is not None:
        y = prepare(y, net.dtype)
    return TrainingRun(net, source, y, loss_fn, update, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                       rng=as_rng(seed, "fit: seed"), sample_weight=sample_weight, validation=validation,
                       callbacks=callbacks, clip_norm=clip_norm, diagnostics=diagnostics, batch_hooks=batch_hooks)


def _batch_size(batch_size: Any, n: int) -> int:
    if isinstance(batch_size, str) and batch_size == "auto":
        return min(AUTO_BATCH, n)
    return check_positive_int(batch_size, "fit: batch_size")


def _checkpoint(path: Any, every: Any, every_batches: Any, resume: Any) -> Checkpoint | None:
    if not isinstance(resume, (bool, np.bool_)):
        raise TypeError(f"fit: resume must be True or False, got {type(resume).__name__} {resume!r}")
    if path is None:
        if resume:
            raise ValueError("fit: resume=True needs checkpoint=path, the file to resume from")
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"fit: checkpoint must be a file path (str or path-like), got {type(path).__name__}")
    every = check_positive_int(every, "fit: checkpoint_every_epochs")
    if every_batches is not None:
        every_batches = check_positive_int(every_batches, "fit: checkpoint_every_batches")
    return Checkpoint(path, every, every_batches)


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


def _resolve_update(lr: Any, optimizer: Any) -> Any:
    check_not_a_class(optimizer, "fit: optimizer")
    check_not_a_class(lr, "fit: lr")
    if isinstance(optimizer, str):
        if lr is not None and not isinstance(lr, (numbers.Real, Schedule)) or isinstance(lr, bool):
            raise TypeError(f"fit: with optimizer={optimizer!r}, lr must be its rate (a float or a Schedule), "
                            f"got {type(lr).__name__}")
        return optimizer_by_name(optimizer, lr, "fit: optimizer")
    if optimizer is not None:
        if lr is not None:
            raise ValueError("fit: give lr or optimizer, not both (or optimizer by name, such as "
                             "optimizer='adam', with lr= its rate)")
        lr = optimizer
    if lr is None:
        return Adam(DEFAULT_LR["adam"])
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


# ---------------------------------------------------------------------- what fit shows
def _progress(run: TrainingRun, verbose: Any) -> Any:
    """A bar over the epochs (``tqdm.auto``: a widget in Jupyter), off where no terminal is attached."""
    from tqdm.auto import tqdm

    # tqdm's disable=None: off when the output is not a terminal; a notebook's widget is always shown
    in_notebook = any(kind.__module__ == "tqdm.notebook" for kind in tqdm.__mro__)
    disable = True if not verbose else (False if in_notebook else None)
    return tqdm(total=run.epochs, initial=min(run.position.epoch, run.epochs), desc="fit", unit="epoch",
                disable=disable, leave=bool(verbose), dynamic_ncols=True)


def _show(bar: Any, row: dict[str, Any], epoch: int, epochs: int, verbose: Any) -> None:
    """The finished epoch's metrics on the bar (and on a line of their own with ``verbose=2``)."""
    shown = {key: value for key, value in row.items() if value is not None and key != "lr"}
    bar.set_postfix({key.replace("accuracy", "acc"): f"{value:.4f}" for key, value in shown.items()},
                    refresh=False)
    bar.update(1)
    if verbose and int(verbose) >= 2:
        bar.write(f"epoch {epoch:3d}/{epochs}: " + "  ".join(f"{key}={value:.4f}" for key, value in shown.items()))


# ---------------------------------------------------------------------- evaluation
def evaluate(net: Net, x: Any, y: Any, loss: str | Loss | None = None) -> tuple[float, float | None]:
    """Mean loss and accuracy (``None`` for regression losses) of ``net`` on ``(x, y)``.

    ``loss=None`` chooses the loss from the output width and the targets by
    ``fit``'s rule (see ``fit``).
    """
    x, y = _check_data(net, x, y, "evaluate")
    pred = net.predict(x)
    loss_fn = get_loss(loss_for_width(net, np.shape(pred)[-1], y, "evaluate") if loss is None else loss)
    value, _ = loss_fn(pred, y)
    return value, getattr(loss_fn, "accuracy", lambda p, t: None)(pred, y)
