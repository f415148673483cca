"""The estimators' hyperparameters: ``MLPClassifier``'s, their validation, and the old layerkit spellings.

``PARAMETER_CONSTRAINTS`` are scikit-learn 1.9's for ``MLPClassifier`` (its
``_parameter_constraints``), widened where an old layerkit spelling still
passes for one release (``learning_rate`` as a number or a ``Schedule``, a
layer spec in ``hidden_layer_sizes``), plus layerkit's own extras.
``resolve`` turns the parameters into the values training uses and warns
(``FutureWarning``) about the old spellings, saying what to write instead.
"""
from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions

from layerkit.optim import OPTIMIZERS
from layerkit.optim.base import Optimizer
from layerkit.optim.schedules import Schedule

OPTIMIZER_NAMES = {name.lower(): cls for name, cls in OPTIMIZERS.items()}
# MLPClassifier's activation names -> layerkit's built-in layers
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("lbfgs", "sgd", "adam")
SCHEDULES = ("constant", "invscaling", "adaptive")

PARAMETER_CONSTRAINTS: dict = {
    "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "solver": [StrOptions(set(SOLVERS))],
    "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
    # a number or a Schedule: the old spelling of learning_rate_init (FutureWarning)
    "learning_rate": [StrOptions(set(SCHEDULES)), Interval(numbers.Real, 0, None, closed="left"), Schedule],
    "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither"), Schedule],
    "power_t": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
    "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
    "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
    "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
    "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
    # layerkit's extras
    "hidden_layers": [None, list, tuple],
    "optimizer": [None, StrOptions(set(OPTIMIZER_NAMES)), Optimizer],
    "optimizer_params": [None, dict],
    "epochs": [None, Interval(numbers.Integral, 1, None, closed="left")],  # old spelling of max_iter
    "dtype": [StrOptions({"auto", "float64", "float32"}), type, np.dtype],
    "checkpoint": [None, str, os.PathLike],  # a file that fit saves the run to and resumes from
}


@dataclass
class Resolved:
    """What training uses, after the old spellings are translated."""

    hidden: list  # a Net.from_config spec of the hidden part
    mlp_shaped: bool  # Linear + activation layers from hidden_layer_sizes (initialised as MLPClassifier)
    max_iter: int
    schedule: str  # "constant", "invscaling" or "adaptive"
    learning_rate_init: Any  # float or Schedule


def _is_layer_spec(value: Any) -> bool:
    """Whether ``hidden_layer_sizes`` holds layer names or dicts (the old positional ``hidden_layers``)."""
    if isinstance(value, (str, Mapping)):
        return True
    try:
        return any(isinstance(item, (str, Mapping)) or hasattr(item, "forward") for item in value)
    except TypeError:
        return False


def resolve(est: Any) -> Resolved:
    """The values training uses; ``FutureWarning`` for each old spelling, ``ValueError`` for a clash."""
    who = type(est).__name__
    max_iter = est.max_iter
    if est.epochs is not None:
        if max_iter != 200:
            raise ValueError(f"{who}: give max_iter, not epochs (its old name); got epochs={est.epochs} and "
                             f"max_iter={max_iter}")
        warnings.warn(f"{who}: epochs is renamed max_iter, as in MLPClassifier; write max_iter={est.epochs} "
                      "(epochs will be removed in the next release)", FutureWarning, stacklevel=5)
        max_iter = est.epochs
    schedule, rate = est.learning_rate, est.learning_rate_init
    if not isinstance(schedule, str):
        if rate != 0.001:
            raise ValueError(f"{who}: learning_rate is a schedule name ('constant', 'invscaling', 'adaptive'), "
                             f"as in MLPClassifier; give the rate as learning_rate_init only (got "
                             f"learning_rate={schedule!r} and learning_rate_init={rate!r})")
        warnings.warn(f"{who}: learning_rate now names the schedule, as in MLPClassifier; write "
                      f"learning_rate_init={schedule!r} for the rate (a number or a layerkit Schedule for "
                      "learning_rate will be refused in the next release)", FutureWarning, stacklevel=5)
        schedule, rate = "constant", schedule
    if isinstance(rate, Schedule) and schedule != "constant":
        raise ValueError(f"{who}: learning_rate={schedule!r} changes a number; with a layerkit Schedule as "
                         f"learning_rate_init ({rate!r}) leave learning_rate='constant'")
    sizes, layers = est.hidden_layer_sizes, est.hidden_layers
    if layers is None and _is_layer_spec(getattr(est, "loss", None)) and not isinstance(est.loss, str):
        # NetRegressor's first argument is MLPRegressor's loss; it used to be the hidden layers
        warnings.warn(f"{who}: the first argument is loss, as in MLPRegressor; pass layers and blocks as "
                      "hidden_layers=[...] (a layer spec as the first argument will be refused in the next "
                      "release)", FutureWarning, stacklevel=5)
        layers = est.loss
    if layers is None and _is_layer_spec(sizes):
        warnings.warn(f"{who}: the first argument is hidden_layer_sizes, as in MLPClassifier; pass layers and "
                      "blocks as hidden_layers=[...] (a layer spec in hidden_layer_sizes will be refused in the "
                      "next release)", FutureWarning, stacklevel=5)
        layers, sizes = sizes, None
    if layers is not None:
        if sizes is not None and not _same(sizes, (100,)):
            raise ValueError(f"{who}: give hidden_layers or hidden_layer_sizes, not both (got hidden_layers="
                             f"{layers!r} and hidden_layer_sizes={sizes!r})")
        return Resolved(list(layers), False, max_iter, schedule, rate)
    sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    spec: list[Any] = []
    for n in sizes:
        spec += [{"type": "linear", "n_out": int(n)}, ACTIVATIONS[est.activation]]
    return Resolved(spec, True, max_iter, schedule, rate)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (list(a) == list(b))
    except Exception:  # noqa: BLE001 - an unusual spec compares unequal
        return False


__all__ = ["PARAMETER_CONSTRAINTS", "Resolved", "resolve", "ACTIVATIONS", "OPTIMIZER_NAMES", "SOLVERS"]
