"""``TrainingRun``: everything one ``fit`` run changes as it goes, and its epochs.

The run holds the net (weights, buffers, modes), the update rule (a rate or
an optimizer with its schedule), the minibatch generator, where the run is
(``Position``: the epoch, the minibatches of it done and their sums), the
history and the callbacks. ``fit`` is a loop over ``train_epoch`` and
``end_epoch``; a checkpoint (``layerkit._checkpoint``) writes this object
and ``resume`` reads it back, so a resumed run continues bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from layerkit._batches import BatchSource, minibatches
from layerkit._epoch import EpochRunner
from layerkit._minibatch import train_batch
from layerkit.callbacks import Callback, FitState
from layerkit.diagnostics import Diagnostics
from layerkit.history import History
from layerkit.losses import NonFinitePredictionsError
from layerkit.optim.base import Optimizer
from layerkit.optim.schedules import ReduceLROnPlateau, parts

ADVICE = "lower the learning rate or clip gradients (clip_norm=)"


@dataclass
class Position:
    """Where a run is: the epoch under way (or next), its minibatches done, and what they summed to."""

    epoch: int = 0
    batch: int = 0  # minibatches of ``epoch`` done
    step: int = 0  # minibatches done since the run began
    total_loss: float = 0.0
    total_correct: float = 0.0
    has_accuracy: bool = True
    epoch_rng: dict | None = None  # the minibatch generator's state before this epoch's shuffle

    def next_epoch(self) -> None:
        self.epoch, self.batch, self.epoch_rng = self.epoch + 1, 0, None
        self.total_loss, self.total_correct, self.has_accuracy = 0.0, 0.0, True


class TrainingRun:
    """The state of one ``fit`` run (see the module docstring); ``fit`` checks the arguments first.

    Parameters
    ----------
    net : Net
    source : BatchSource
        The rows of ``x``.
    y : ndarray, shape (n_samples, ...)
        Targets, already in the loss's prepared form.
    loss_fn : Loss
    update : float or Optimizer
        What ``net.step`` receives.
    epochs, batch_size : int
    shuffle : bool
    rng : numpy.random.Generator
        Draws each epoch's order of the rows.
    sample_weight : ndarray of shape (n_samples,), optional
    validation : (x_val, y_val), optional
    callbacks : list of Callback
    clip_norm : float, optional
    diagnostics : bool
    batch_hooks : bool
        Something runs after every minibatch (a checkpoint every N
        minibatches): the epochs then run in Python, never in the core.
    """

    def __init__(self, net: Any, source: BatchSource, y: Any, loss_fn: Any, update: Any, *, epochs: int,
                 batch_size: int, shuffle: bool, rng: np.random.Generator, sample_weight: np.ndarray | None,
                 validation: tuple[Any, Any] | None, callbacks: Sequence[Callback], clip_norm: float | None,
                 diagnostics: bool, batch_hooks: bool = False) -> None:
        self.net, self.source, self.y, self.loss_fn, self.update = net, source, y, loss_fn, update
        self.accuracy_fn = getattr(loss_fn, "accuracy", lambda p, t: None)
        self.epochs, self.batch_size, self.shuffle, self.rng = epochs, batch_size, shuffle, rng
        self.sample_weight, self.validation, self.callbacks = sample_weight, validation, list(callbacks)
        self.clip_norm = clip_norm
        self.history = History(diagnostics=Diagnostics() if diagnostics else None)
        self.state = FitState(net=net, update=update, history=self.history, epochs=epochs,
                              extra={"has_validation": validation is not None})
        self.position = Position()
        self._first_param = next((f"{i}.{layer.param_names[0]}" for i, layer in enumerate(net.layers)
                                  if getattr(layer, "param_names", ())), "")
        self.workspace, self.grad_buffers, self.batch_buffers = net.workspace(), {}, {}
        # a fused net (a conv net's front and chain too): whole epochs in the core (None: Python per minibatch)
        self.in_core = None if batch_hooks else EpochRunner.for_fit(
            net, source, y, loss_fn, update, batch_size=batch_size, clip_norm=clip_norm,
            diagnostics=self.history.diagnostics, callbacks=self.callbacks, sample_weight=sample_weight,
            workspace=self.workspace, grad_buffers=self.grad_buffers, batch_buffers=self.batch_buffers)

    # ------------------------------------------------------------------ the run
    @property
    def finished(self) -> bool:
        """All epochs done, or a callback (early stopping) ended the run."""
        return self.state.stop or self.position.epoch >= self.epochs

    def begin(self) -> None:
        """Training mode, then every callback's ``on_train_begin``."""
        self.net.train()  # dropout, batch statistics; validation runs net.predict, in inference mode
        for callback in self.callbacks:
            callback.on_train_begin(self.state)

    def train_epoch(self, after_batch: Callable[[], None]) -> None:
        """The minibatches of the current epoch from the first not done; ``after_batch()`` after each."""
        position, state = self.position, self.state
        state.epoch = position.epoch
        resumed = position.batch > 0  # a run resumed in the middle of this epoch
        if not resumed:
            for callback in self.callbacks:
                callback.on_epoch_begin(state)
        position.epoch_rng = self.rng.bit_generator.state
        order = self.rng.permutation(len(self.source)) if self.shuffle else None
        done = None if self.in_core is None or resumed else self.in_core.run(order)
        if done is not None:  # the epoch's minibatches up to `first` ran in the core
            first, position.total_loss, position.total_correct, last_loss, last_rows = done
            position.has_accuracy = self.in_core.has_accuracy
            position.batch, position.step = first, position.step + first
            if first:
                state.batch, state.batch_loss, state.batch_size = first - 1, last_loss, last_rows
        # the rows of x[order][start:stop], gathered into reused buffers (never a copy of the set)
        draws = minibatches(self.source, self.y, self.sample_weight, order, self.batch_size, self.batch_buffers,
                            position.batch)
        for batch, (xb, yb, wb) in enumerate(draws, position.batch):
            value, accuracy = self._train_batch(xb, yb, wb, batch)
            rows = xb.shape[0]
            position.total_loss += value * rows
            if accuracy is None:
                position.has_accuracy = False
            else:
                position.total_correct += accuracy * rows
            position.batch, position.step = batch + 1, position.step + 1
            state.batch, state.batch_loss, state.batch_size = batch, value, rows
            for callback in self.callbacks:
                callback.on_batch_end(state)
            after_batch()

    def _train_batch(self, xb: Any, yb: Any, wb: Any, batch: int) -> tuple[float, float | None]:
        epoch = self.position.epoch
        try:
            value, _, accuracy = train_batch(
                self.net, xb, yb, self.loss_fn, self.update, clip_norm=self.clip_norm,
                diagnostics=self.history.diagnostics, workspace=self.workspace, grad_buffers=self.grad_buffers,
                sample_weight=wb)
        except NonFinitePredictionsError as error:  # x is finite: the net diverged
            culprit = non_finite_parameters(self.net)
            raise self.diverged(f"the predictions became non-finite in epoch {epoch + 1}, minibatch {batch + 1} "
                                f"({error}{'; ' + culprit + ' is not finite' if culprit else ''})") from error
        if not math.isfinite(value):
            raise self.diverged(f"the loss of minibatch {batch + 1} in epoch {epoch + 1} became {value}")
        return value, accuracy

    def end_epoch(self) -> dict[str, float | None]:
        """Record the epoch (history, diagnostics, plateau schedules, callbacks); return its metrics."""
        epoch, n, position = self.position.epoch, len(self.source), self.position
        culprit = non_finite_parameters(self.net)
        if culprit is not None:
            raise self.diverged(f"{culprit} became non-finite in epoch {epoch + 1}")
        row = {"train_loss": position.total_loss / n,
               "train_accuracy": position.total_correct / n if position.has_accuracy else None}
        if self.validation is not None:
            x_val, y_val = self.validation
            val_pred = self.net.predict(x_val)
            row["val_loss"] = self.loss_fn(val_pred, y_val)[0]
            row["val_accuracy"] = self.accuracy_fn(val_pred, y_val)
        row["lr"] = current_lr(self.update, self._first_param)
        self.history.append(**row)
        if self.history.diagnostics is not None:
            self.history.diagnostics.end_epoch()
        self._step_plateaus()
        for callback in self.callbacks:
            callback.on_epoch_end(self.state)
        if not math.isfinite(row["train_loss"]):
            raise self.diverged(f"the training loss became {row['train_loss']} in epoch {epoch + 1}")
        if self.state.stop:
            self.history.stopped_early = epoch + 1 < self.epochs
        position.next_epoch()
        return row

    def _step_plateaus(self) -> None:
        """Give each ``ReduceLROnPlateau`` in the optimizer's schedule the epoch's value of its metric."""
        if not isinstance(self.update, Optimizer):
            return
        default = "val_loss" if self.validation is not None else "train_loss"
        for schedule in parts(self.update.lr):
            if isinstance(schedule, ReduceLROnPlateau):
                metric = schedule.monitor or default
                if metric not in self.history:
                    raise ValueError(f"ReduceLROnPlateau: monitor {metric!r} is not recorded; the history has "
                                     f"{sorted(self.history.metrics)}")
                schedule.step(self.history[metric][-1], metric)

    def end(self) -> History:
        """Every callback's ``on_train_end``; the history."""
        for callback in self.callbacks:
            callback.on_train_end(self.state)
        return self.history

    # ------------------------------------------------------------------ ends other than the last epoch
    def diverged(self, message: str) -> FloatingPointError:
        """The error of a diverged run: ``message`` with advice, the finished epochs in ``error.history``."""
        error = FloatingPointError(f"fit: {message}; {ADVICE}. The epochs completed are in error.history")
        error.history = self.history
        error.reason = message  # what went wrong, without fit's advice: callers with advice of their own use it
        return error

    def interrupted(self) -> KeyboardInterrupt:
        """The ``KeyboardInterrupt`` of a Ctrl-C, the finished epochs in ``error.history``."""
        position = self.position
        where = (f"after minibatch {position.batch} of epoch {position.epoch + 1}" if position.batch
                 else f"after epoch {position.epoch}")
        error = KeyboardInterrupt(f"fit: interrupted {where}; the finished epochs are in error.history")
        error.history = self.history
        return error


def current_lr(update: Any, state_key: str) -> float | None:
    """The rate of the last update of the parameter ``state_key`` (``None`` for a plain float rate)."""
    if isinstance(update, Optimizer):
        state = update.state.get(state_key)
        return update.lr(max(state["step"] - 1, 0)) if state else update.lr(0)
    return None


def non_finite_parameters(net: Any) -> str | None:
    """The first parameter or gradient holding NaN or infinity, as ``"layers[i].W"``/``"layers[i].dW"``."""
    for index, layer in enumerate(net.layers):
        for name in getattr(layer, "param_names", ()):
            for attr in (name, "d" + name):
                value = getattr(layer, attr, None)
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                    return f"layers[{index}].{attr} ({layer!r})"
    return None
