"""Optimizers by name (``"adam"``, ``"sgd"``, ...), with each one's usual default learning rate."""
from __future__ import annotations

from typing import Any

from layerkit.optim.adagrad import AdaGrad
from layerkit.optim.adam import Adam, AdamW
from layerkit.optim.base import Optimizer
from layerkit.optim.rmsprop import RMSprop
from layerkit.optim.schedules import Schedule
from layerkit.optim.sgd import SGD

OPTIMIZER_NAMES: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": AdaGrad,
}
# Keras' defaults (torch's differ for SGD, which has none, and RMSprop/Adagrad, 1e-2)
DEFAULT_LR: dict[str, float] = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-3}


def optimizer_by_name(name: str, lr: float | Schedule | None = None, who: str = "optimizer") -> Optimizer:
    """A new optimizer from its name, case-insensitive.

    Parameters
    ----------
    name : {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
    lr : float or Schedule, optional
        By default the usual rate of that optimizer (Keras' defaults): 0.01
        for ``"sgd"``, 0.001 for the others.
    who : str
        Prefix of the error messages.

    Returns
    -------
    Optimizer
    """
    key = name.lower() if isinstance(name, str) else name
    cls = OPTIMIZER_NAMES.get(key)
    if cls is None:
        raise ValueError(f"{who}: unknown optimizer {name!r}; expected one of {sorted(OPTIMIZER_NAMES)} "
                         "or an optimizer instance such as layerkit.optim.Adam(lr=1e-3)")
    return cls(lr=DEFAULT_LR[key] if lr is None else lr)


def check_not_a_class(value: Any, who: str) -> None:
    """``TypeError`` when ``value`` is an optimizer class rather than an instance."""
    if isinstance(value, type) and issubclass(value, Optimizer):
        raise TypeError(f"{who}: got the class {value.__name__}, not an optimizer: instantiate it, "
                        f"as {value.__name__}(lr=...), or pass its name, optimizer={value.__name__.lower()!r}")
