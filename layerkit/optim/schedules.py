"""Learning-rate schedules: ``schedule(t)`` is the rate of update number ``t`` (0, 1, 2, ...).

A schedule is a pure function of the step index, so it has no state to save
beyond its configuration; the one exception, ``ReduceLROnPlateau``, follows a
metric of the history and keeps its progress in its config's ``"state"``. An optimizer given a schedule instead of a float
evaluates it at the index of the update it is about to make: a parameter's
first update uses ``schedule(0)``, its second ``schedule(1)``. This is what
``torch.optim.lr_scheduler`` gives when ``scheduler.step()`` is called after
every ``optimizer.step()``. To change the rate once per epoch instead, wrap
the schedule in ``PerEpoch(schedule, steps_per_epoch)``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any


def _check_real(value: Any, who: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: expected a real number, got {type(value).__name__} {value!r:.60}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{who}: expected a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{who}: expected a number {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{who}: expected a number <= {high}, got {value}")
    return value


def _check_count(value: Any, who: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: expected an integer, got {type(value).__name__} {value!r:.60}")
    if value < minimum:
        raise ValueError(f"{who}: expected an integer >= {minimum}, got {value}")
    return int(value)


class Schedule:
    """Base class: a learning rate as a function of the update index ``t >= 0``."""

    def __call__(self, t: int) -> float:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-able description; ``schedule_from_config(s.config())`` rebuilds ``s``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.config().items() if key != "type")
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.config() == other.config()

    __hash__ = None  # type: ignore[assignment]


class Constant(Schedule):
    """``eta_t = lr``."""

    def __init__(self, lr: float) -> None:
        self.lr = _check_real(lr, "Constant: lr", low=0.0)

    def __call__(self, t: int) -> float:
        return self.lr

    def config(self) -> dict[str, Any]:
        return {"type": "Constant", "lr": self.lr}


class ExponentialDecay(Schedule):
    """``eta_t = lr * decay**t`` (``torch.optim.lr_scheduler.ExponentialLR`` with ``gamma=decay``).

    Parameters
    ----------
    lr : float
        The first rate ``eta_0``.
    decay : float in (0, 1]
        Factor per update.
    """

    def __init__(self, lr: float, decay: float) -> None:
        self.lr = _check_real(lr, "ExponentialDecay: lr", low=0.0)
        self.decay = _check_real(decay, "ExponentialDecay: decay", low=0.0, high=1.0, low_open=True)

    def __call__(self, t: int) -> float:
        return self.lr * self.decay ** t

    def config(self) -> dict[str, Any]:
        return {"type": "ExponentialDecay", "lr": self.lr, "decay": self.decay}


class StepDecay(Schedule):
    """``eta_t = lr * gamma**(t // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _check_real(lr, "StepDecay: lr", low=0.0)
        self.step_size = _check_count(step_size, "StepDecay: step_size")
        self.gamma = _check_real(gamma, "StepDecay: gamma", low=0.0, high=1.0, low_open=True)

    def __call__(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"type": "StepDecay", "lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class CosineDecay(Schedule):
    """Half a cosine from ``lr`` down to ``min_lr`` over ``total_steps`` updates, then ``min_lr``.

    ``eta_t = min_lr + (lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2`` for
    ``t <= total_steps``: ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
    ``T_max=total_steps``, ``eta_min=min_lr`` (which, unlike this schedule,
    rises again after ``T_max``).
    """

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0) -> None:
        self.lr = _check_real(lr, "CosineDecay: lr", low=0.0)
        self.total_steps = _check_count(total_steps, "CosineDecay: total_steps")
        self.min_lr = _check_real(min_lr, "CosineDecay: min_lr", low=0.0, high=self.lr)

    def __call__(self, t: int) -> float:
        if t >= self.total_steps:
            return self.min_lr
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2

    def config(self) -> dict[str, Any]:
        return {"type": "CosineDecay", "lr": self.lr, "total_steps": self.total_steps, "min_lr": self.min_lr}


class Warmup(Schedule):
    """Linear warm-up for ``steps`` updates, then ``after`` (started from its own ``t = 0``).

    ``eta_t = after(0) * (start_factor + (1 - start_factor) * t / steps)`` for
    ``t < steps``, then ``after(t - steps)``. With a constant ``after`` this is
    ``torch.optim.lr_scheduler.LinearLR(start_factor, total_iters=steps)``.

    Parameters
    ----------
    after : Schedule or float
        What follows the warm-up; a float means a constant rate.
    steps : int
        Length of the warm-up.
    start_factor : float in [0, 1]
        Fraction of ``after(0)`` used at ``t = 0``.
    """

    def __init__(self, after: Schedule | float, steps: int, start_factor: float = 0.0) -> None:
        self.after = as_schedule(after, "Warmup: after")
        self.steps = _check_count(steps, "Warmup: steps")
        self.start_factor = _check_real(start_factor, "Warmup: start_factor", low=0.0, high=1.0)

    def __call__(self, t: int) -> float:
        if t < self.steps:
            return self.after(0) * (self.start_factor + (1 - self.start_factor) * t / self.steps)
        return self.after(t - self.steps)

    def config(self) -> dict[str, Any]:
        return {"type": "Warmup", "after": self.after.config(), "steps": self.steps,
                "start_factor": self.start_factor}


class PerEpoch(Schedule):
    """Advance ``schedule`` once per epoch: ``eta_t = schedule(t // steps_per_epoch)``.

    Parameters
    ----------
    schedule : Schedule
    steps_per_epoch : int
        Minibatches per epoch, ``ceil(n_samples / batch_size)``.
    """

    def __init__(self, schedule: Schedule, steps_per_epoch: int) -> None:
        self.schedule = as_schedule(schedule, "PerEpoch: schedule")
        self.steps_per_epoch = _check_count(steps_per_epoch, "PerEpoch: steps_per_epoch")

    def __call__(self, t: int) -> float:
        return self.schedule(t // self.steps_per_epoch)

    def config(self) -> dict[str, Any]:
        return {"type": "PerEpoch", "schedule": self.schedule.config(), "steps_per_epoch": self.steps_per_epoch}


class ReduceLROnPlateau(Schedule):
    """The rate ``lr``, multiplied by ``factor`` each time a monitored metric stops improving.

    ``fit`` calls ``step(value)`` after every epoch with the epoch's value of
    ``monitor`` (a ``History`` metric). When the metric has not improved for
    more than ``patience`` epochs in a row, the rate becomes
    ``max(rate * factor, min_lr)``; then ``cooldown`` epochs pass before the
    count of bad epochs starts again. The rule and the defaults are those of
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (Keras' callback of the same
    name cuts after ``patience`` bad epochs instead of ``patience + 1``). The
    rate does not depend on the update index ``t``.

    Parameters
    ----------
    lr : float
        The first rate.
    monitor : str, optional
        The metric to follow: by default ``"val_loss"`` when ``fit`` has
        validation data, else ``"train_loss"``.
    factor : float in (0, 1)
        Multiplier of the rate at each cut.
    patience : int >= 0
        Epochs without improvement that are tolerated; the next one cuts.
    threshold : float >= 0
        Smallest change that counts as an improvement, relative to the best
        value (``threshold_mode="rel"``) or absolute (``"abs"``).
    threshold_mode : {"rel", "abs"}
    cooldown : int >= 0
        Epochs after a cut during which bad epochs are not counted.
    min_lr : float >= 0
        The rate never goes below it.
    mode : {"auto", "min", "max"}
        ``"auto"`` maximises metrics whose name contains ``"accuracy"`` and
        minimises the others.

    Attributes
    ----------
    rate : float
        The current rate.
    best : float or None
        The best value seen (``None`` before the first ``step``).
    bad_epochs : int
        Epochs since the last improvement (reset by a cut and during cooldown).
    cuts : int
        Cuts made so far.

    Examples
    --------
    >>> from layerkit.optim import ReduceLROnPlateau
    >>> plateau = ReduceLROnPlateau(0.1, factor=0.5, patience=1)
    >>> for loss in (1.0, 0.9, 0.9, 0.9):
    ...     plateau.step(loss)
    >>> plateau.rate
    0.05
    """

    def __init__(self, lr: float, monitor: str | None = None, factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, mode: str = "auto") -> None:
        who = "ReduceLROnPlateau"
        self.lr = _check_real(lr, f"{who}: lr", low=0.0)
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"{who}: monitor must be a metric name (str) or None, got {type(monitor).__name__}")
        self.monitor = monitor
        self.factor = _check_real(factor, f"{who}: factor", low=0.0, low_open=True)
        if self.factor >= 1.0:
            raise ValueError(f"{who}: factor must be below 1 (it multiplies the rate at each cut), got {factor}")
        self.patience = _check_count(patience, f"{who}: patience", minimum=0)
        self.threshold = _check_real(threshold, f"{who}: threshold", low=0.0)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{who}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.cooldown = _check_count(cooldown, f"{who}: cooldown", minimum=0)
        self.min_lr = _check_real(min_lr, f"{who}: min_lr", low=0.0)
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.rate, self.best, self.bad_epochs, self.cuts, self._cooldown_left = self.lr, None, 0, 0, 0

    def __call__(self, t: int) -> float:
        return self.rate

    def step(self, value: float, metric: str | None = None) -> None:
        """Take one epoch's value of the monitored metric (named ``metric`` for ``mode="auto"``)."""
        value = float(value)
        if self._improves(value, metric or self.monitor or "loss"):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            cut = max(self.rate * self.factor, self.min_lr)
            if self.rate - cut > 1e-8:  # torch's eps: a cut too small to matter is not made
                self.rate = cut
                self.cuts += 1
            self._cooldown_left, self.bad_epochs = self.cooldown, 0

    def _improves(self, value: float, metric: str) -> bool:
        if self.best is None:
            return value == value  # any number beats no value; NaN never improves
        maximise = self.mode == "max" or (self.mode == "auto" and "accuracy" in metric)
        sign = -1.0 if maximise else 1.0  # compare as a minimisation
        value, best = sign * value, sign * self.best
        if self.threshold_mode == "rel":
            return value < best - abs(best) * self.threshold
        return value < best - self.threshold

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, and the progress (``"state"``) so a saved run resumes."""
        return {"type": "ReduceLROnPlateau", "lr": self.lr, "monitor": self.monitor, "factor": self.factor,
                "patience": self.patience, "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "mode": self.mode,
                "state": {"rate": self.rate, "best": self.best, "bad_epochs": self.bad_epochs,
                          "cuts": self.cuts, "cooldown_left": self._cooldown_left}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the progress saved in ``config()["state"]``."""
        who = "ReduceLROnPlateau: state"
        if not isinstance(state, dict) or set(state) != {"rate", "best", "bad_epochs", "cuts", "cooldown_left"}:
            raise ValueError(f"{who}: expected a dict with rate, best, bad_epochs, cuts and cooldown_left, "
                             f"got {state!r:.200}")
        rate = _check_real(state["rate"], f"{who}: rate", low=0.0)
        best = None if state["best"] is None else _check_real(state["best"], f"{who}: best")
        counts = [_check_count(state[key], f"{who}: {key}", minimum=0)
                  for key in ("bad_epochs", "cuts", "cooldown_left")]
        self.rate, self.best = rate, best
        self.bad_epochs, self.cuts, self._cooldown_left = counts

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(lr={self.lr!r}, monitor={self.monitor!r}, factor={self.factor!r}, "
                f"patience={self.patience!r}, rate={self.rate!r})")


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls
    for cls in (Constant, ExponentialDecay, StepDecay, CosineDecay, Warmup, PerEpoch, ReduceLROnPlateau)
}


def parts(schedule: Schedule) -> list[Schedule]:
    """``schedule`` and every schedule inside it (a ``Warmup``'s ``after``, a ``PerEpoch``'s ``schedule``)."""
    found = [schedule]
    for name in ("after", "schedule"):
        inner = getattr(schedule, name, None)
        if isinstance(inner, Schedule):
            found += parts(inner)
    return found


def without_state(config: Any) -> Any:
    """A schedule's (or an optimizer's) config without the progress of the schedules in it."""
    if isinstance(config, dict):
        return {key: without_state(value) for key, value in config.items() if key != "state"}
    return config


def as_schedule(lr: Schedule | float, who: str = "lr") -> Schedule:
    """A ``Schedule`` from a schedule or a float (a ``Constant``)."""
    if isinstance(lr, Schedule):
        return lr
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return Constant(_check_real(lr, who, low=0.0))
    raise TypeError(f"{who}: expected a learning rate (float) or a layerkit.optim Schedule, "
                    f"got {type(lr).__name__} {lr!r:.60}")


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from ``Schedule.config()``."""
    if not isinstance(config, dict) or config.get("type") not in SCHEDULES:
        raise ValueError(f"schedule config: expected a dict with 'type' in {sorted(SCHEDULES)}, got {config!r}")
    kwargs = {key: value for key, value in config.items() if key not in ("type", "state")}
    for key in ("after", "schedule"):
        if isinstance(kwargs.get(key), dict):
            kwargs[key] = schedule_from_config(kwargs[key])
    schedule = SCHEDULES[config["type"]](**kwargs)
    if "state" in config:
        load_state = getattr(schedule, "load_state", None)
        if load_state is None:
            raise ValueError(f"schedule config: {config['type']} keeps no state, got 'state' in {config!r:.200}")
        load_state(config["state"])
    return schedule
