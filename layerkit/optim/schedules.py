"""Learning-rate schedules: ``schedule(t)`` is the rate of update number ``t`` (0, 1, 2, ...).

A schedule is a pure function of the step index, so it has no state to save
beyond its configuration. An optimizer given a schedule instead of a float
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


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls for cls in (Constant, ExponentialDecay, StepDecay, CosineDecay, Warmup, PerEpoch)
}


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
    kwargs = {key: value for key, value in config.items() if key != "type"}
    for key in ("after", "schedule"):
        if isinstance(kwargs.get(key), dict):
            kwargs[key] = schedule_from_config(kwargs[key])
    return SCHEDULES[config["type"]](**kwargs)
