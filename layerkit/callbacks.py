"""Callbacks of ``fit``: code that runs after each minibatch and each epoch.

A callback receives the ``FitState`` of the run: the net, the update rule,
the history so far, the current epoch and batch, and a ``stop`` flag that
ends training after the current epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from layerkit.history import History
from layerkit.optim.base import net_parameters
from layerkit.optim.schedules import _check_count, _check_real


@dataclass
class FitState:
    """What a callback sees of a running ``fit``.

    Attributes
    ----------
    net : Net
    update : float or Optimizer
        What ``net.step`` receives.
    history : History
        Metrics of the finished epochs.
    epochs : int
        Epochs asked for.
    epoch : int
        Index of the current epoch (0-based).
    batch : int
        Index of the current minibatch within the epoch (0-based).
    batch_loss : float
        Mean loss of the current minibatch, measured before its update.
    batch_size : int
        Rows in the current minibatch.
    stop : bool
        Set to ``True`` to end training after the current epoch.
    """

    net: Any
    update: Any
    history: History
    epochs: int
    epoch: int = 0
    batch: int = 0
    batch_loss: float = math.nan
    batch_size: int = 0
    stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class; override the hooks you need (each receives the ``FitState``)."""

    def on_train_begin(self, state: FitState) -> None:
        pass

    def on_epoch_begin(self, state: FitState) -> None:
        pass

    def on_batch_end(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState) -> None:
        pass

    def on_train_end(self, state: FitState) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What a resumed ``fit`` needs of this callback: ``{"config": JSON-able dict, "arrays": {str: ndarray}}``.

        ``fit(..., checkpoint=path)`` saves it with the run, and on resume
        calls ``on_train_begin`` and then ``load_state_dict`` with it. The base
        class keeps nothing; a callback whose behaviour depends on what it saw
        in earlier epochs overrides both.
        """
        return {"config": {}, "arrays": {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (called after ``on_train_begin`` on resume)."""

    @property
    def wants_batches(self) -> bool:
        """Whether ``on_batch_end`` does anything: ``fit`` then calls Python after every minibatch.

        True when a subclass overrides ``on_batch_end``; without one, ``fit``
        may run whole epochs in the compiled core.
        """
        return type(self).on_batch_end is not Callback.on_batch_end


class LambdaCallback(Callback):
    """A callback from plain functions ``f(state)``.

    Parameters
    ----------
    on_batch_end, on_epoch_end : callable, optional
    """

    def __init__(self, on_batch_end: Callable[[FitState], Any] | None = None,
                 on_epoch_end: Callable[[FitState], Any] | None = None) -> None:
        for name, function in (("on_batch_end", on_batch_end), ("on_epoch_end", on_epoch_end)):
            if function is not None and not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {type(function).__name__}")
        self._batch, self._epoch = on_batch_end, on_epoch_end

    def on_batch_end(self, state: FitState) -> None:
        if self._batch is not None:
            self._batch(state)

    @property
    def wants_batches(self) -> bool:
        """Whether an ``on_batch_end`` function was given."""
        return self._batch is not None

    def on_epoch_end(self, state: FitState) -> None:
        if self._epoch is not None:
            self._epoch(state)


class EarlyStopping(Callback):
    """Stop when a monitored metric has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, optional
        A ``History`` metric; by default ``"val_loss"`` when validation data is
        given, else ``"train_loss"``.
    patience : int >= 1
        Epochs without improvement before stopping.
    min_delta : float >= 0
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        ``"auto"`` maximises metrics whose name contains ``"accuracy"`` and
        minimises the others.
    restore_best_weights : bool
        At the end, copy the parameters of the best epoch back into the net
        (in place, so optimizers keep their references), and with them the
        non-trained state its layers list in ``state_names`` (batch norm's
        running statistics).

    Attributes
    ----------
    best : float
        Best value seen.
    best_epoch : int
        0-based epoch of ``best``.
    stopped_epoch : int or None
        0-based epoch after which training stopped, ``None`` if it did not.
    """

    def __init__(self, monitor: str | None = None, patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"EarlyStopping: monitor must be a metric name, got {type(monitor).__name__}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = _check_count(patience, "EarlyStopping: patience")
        self.min_delta = _check_real(min_delta, "EarlyStopping: min_delta", low=0.0)
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self.best = math.nan
        self.best_epoch = -1
        self.stopped_epoch: int | None = None
        self._wait = 0
        self._best_weights: dict[str, np.ndarray] | None = None
        self._best_state: dict[str, np.ndarray] = {}

    def on_train_begin(self, state: FitState) -> None:
        self._reset()
        if self.monitor is None:
            self._metric = "val_loss" if state.extra.get("has_validation") else "train_loss"
        else:
            self._metric = self.monitor
        mode = self.mode
        if mode == "auto":
            mode = "max" if "accuracy" in self._metric else "min"
        self._sign = 1.0 if mode == "min" else -1.0

    def on_epoch_end(self, state: FitState) -> None:
        if self._metric not in state.history:
            raise ValueError(f"EarlyStopping: monitor {self._metric!r} is not recorded; "
                             f"the history has {sorted(state.history.metrics)}")
        value = state.history[self._metric][-1]
        if self.best_epoch < 0 or self._sign * (self.best - value) > self.min_delta:
            self.best, self.best_epoch, self._wait = value, state.epoch, 0
            if self.restore_best_weights:
                self._best_weights = {k: p.copy() for k, p in net_parameters(state.net).items()}
                self._best_state = {key: np.array(getattr(layer, name), copy=True)
                                    for key, (layer, name) in _net_state(state.net).items()}
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = state.epoch
            state.stop = True

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            for key, param in net_parameters(state.net).items():
                param[...] = self._best_weights[key]
            for key, (layer, name) in _net_state(state.net).items():  # batch norm's running statistics
                setattr(layer, name, self._best_state[key].copy())

    def state_dict(self) -> dict[str, Any]:
        """The best value and epoch, the epochs waited, and the best epoch's weights (when kept)."""
        arrays = {f"weights/{key}": value for key, value in (self._best_weights or {}).items()}
        arrays.update({f"state/{key}": value for key, value in self._best_state.items()})
        config = {"best": self.best, "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch,
                  "wait": self._wait, "has_weights": self._best_weights is not None}
        return {"config": config, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        who = "EarlyStopping.load_state_dict"
        config, arrays = state.get("config"), state.get("arrays")
        keys = {"best", "best_epoch", "stopped_epoch", "wait", "has_weights"}
        if not isinstance(config, dict) or set(config) != keys or not isinstance(arrays, dict):
            raise ValueError(f"{who}: expected a config with {sorted(keys)} and arrays, got {state!r:.200}")
        weights = {key[len("weights/"):]: np.array(value) for key, value in arrays.items()
                   if key.startswith("weights/")}
        kept = {key[len("state/"):]: np.array(value) for key, value in arrays.items() if key.startswith("state/")}
        self.best, self.best_epoch, self.stopped_epoch = float(config["best"]), int(config["best_epoch"]), \
            config["stopped_epoch"]
        self._wait = int(config["wait"])
        self._best_weights = weights if config["has_weights"] else None
        self._best_state = kept

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, restore_best_weights={self.restore_best_weights})")


def _net_state(net: Any) -> dict[str, tuple[Any, str]]:
    """Every ``state_names`` array of the net's layers, keyed like its parameters (``"1.running_mean"``)."""
    return {f"{index}.{name}": (layer, name)
            for index, layer in enumerate(getattr(net, "layers", ())) for name in getattr(layer, "state_names", ())}


class LiveLearningCurve(Callback):
    """Redraw the learning curves (``History.plot``) while ``fit`` runs, in a notebook or to a file.

    In Jupyter (IPython with a kernel) the figure appears below the cell and
    is redrawn in place after every ``every`` epochs and at the end. Outside
    a notebook, with ``path``, the image file is rewritten instead (an image
    viewer that reloads it shows the run); without ``path`` nothing is shown
    and ``figure`` holds the last drawing. IPython is used when it is
    installed and running, never required.

    Parameters
    ----------
    every : int, default 1
        Epochs between two drawings.
    path : str or PathLike, optional
        Also write the figure there (atomically; the format follows the suffix).
    title : str, optional

    Attributes
    ----------
    figure : matplotlib.figure.Figure or None
        The last drawing.
    draws : int
        How many times the curves were drawn.

    Examples
    --------
    >>> history = lk.fit(net, x, y, epochs=50, callbacks=[LiveLearningCurve()])  # doctest: +SKIP
    """

    def __init__(self, every: int = 1, path: Any = None, title: str | None = None) -> None:
        self.every = _check_count(every, "LiveLearningCurve: every")
        self.path = path
        self.title = title
        self.figure: Any = None
        self.draws = 0
        self._handle: Any = None

    def on_train_begin(self, state: FitState) -> None:
        self._handle = None

    def on_epoch_end(self, state: FitState) -> None:
        if (state.epoch + 1) % self.every == 0:
            self._draw(state.history)

    def on_train_end(self, state: FitState) -> None:
        if state.history.epochs and state.history.epochs % self.every:  # the last epochs since a drawing
            self._draw(state.history)

    def _draw(self, history: History) -> None:
        from layerkit.plotting import plot_history, save_figure

        self.figure = plot_history(history, title=self.title)
        self.draws += 1
        if self.path is not None:
            save_figure(self.figure, self.path)
        display = _notebook_display()
        if display is None:
            return
        image = display.Image(data=_png(self.figure), format="png")
        if self._handle is None:
            self._handle = display.display(image, display_id=True)
        else:
            self._handle.update(image)

    def __repr__(self) -> str:
        return f"LiveLearningCurve(every={self.every}, path={self.path!r})"


def _notebook_display() -> Any:
    """``IPython.display`` when this process runs an IPython kernel (a notebook), else ``None``."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):  # no IPython, or a terminal IPython
        return None
    import IPython.display

    return IPython.display


def _png(figure: Any) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
