"""Warnings layerkit gives for mistakes that would otherwise train a wrong net without a word.

Every class derives from ``LayerkitWarning`` (a ``UserWarning``), so
``warnings.simplefilter("error", lk.warnings.LayerkitWarning)`` turns all of
them into errors (in a test suite, for instance).

``UntrainedParameterWarning``
    A layer stores gradients ``d<name>`` of array attributes ``<name>`` that
    its ``param_names`` does not list (they are never updated), or overrides
    ``step()`` while listing no parameters (an optimizer never calls it).
    Given once per layer class by ``Net.step``, ``Layer.step``, the
    optimizers and ``fit``.
``DoubleSoftmaxWarning``
    A net ending in ``Softmax`` trained with ``softmax_cross_entropy``, which
    takes logits: the softmax is taken twice.
``DoubleSigmoidWarning``
    A net ending in ``Sigmoid`` trained with ``bce_with_logits``, which takes
    logits: the sigmoid is taken twice.
"""
from __future__ import annotations

import os
import sys
import warnings as _warnings
from typing import Any

import numpy as np

__all__ = ["LayerkitWarning", "UntrainedParameterWarning", "DoubleSoftmaxWarning", "DoubleSigmoidWarning",
           "undeclared_gradients", "check_trainable"]


class LayerkitWarning(UserWarning):
    """Base class of layerkit's warnings."""


class UntrainedParameterWarning(LayerkitWarning):
    """A layer holds gradients or a ``step()`` that no update reaches (see the module docstring)."""


class DoubleSoftmaxWarning(LayerkitWarning):
    """A net ending in ``Softmax`` is trained with a loss that applies the softmax itself."""


class DoubleSigmoidWarning(LayerkitWarning):
    """A net ending in ``Sigmoid`` is trained with a loss that applies the sigmoid itself."""


_warned: set[tuple[type, str]] = set()  # (layer class, kind) already warned about
_builtin: dict[type, bool] = {}  # layer class -> it is one of layerkit's own (checked on every step)
_BUILTIN_MODULES = ("layerkit.layers.", "layerkit.blocks.", "layerkit.net")


def undeclared_gradients(layer: Any) -> list[str]:
    """Names ``<name>`` for which ``layer`` holds an ndarray ``d<name>`` shaped like its ndarray
    attribute ``<name>`` that ``layer.param_names`` does not list (gradients nothing will apply)."""
    attributes = getattr(layer, "__dict__", None)
    if not attributes:
        return []
    declared = set(getattr(layer, "param_names", ()) or ())
    found = []
    for key, grad in attributes.items():
        if len(key) > 1 and key[0] == "d" and isinstance(grad, np.ndarray):
            name = key[1:]
            value = attributes.get(name)
            if (name not in declared and isinstance(value, np.ndarray)
                    and value.shape == grad.shape):
                found.append(name)
    return sorted(found)


def _overrides_step(layer: Any) -> bool:
    # Layer.step is known by its qualified name: this module is imported by layerkit.layers.base
    # and never imports it back
    step = getattr(type(layer), "step", None)
    return callable(step) and (getattr(step, "__module__", None), getattr(step, "__qualname__", None)) != (
        "layerkit.layers.base", "Layer.step")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside layerkit."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def check_trainable(layer: Any, *, optimizer: bool) -> None:
    """Warn (once per layer class) about parameters ``layer`` holds that no update reaches.

    Parameters
    ----------
    layer : object
        A layer about to be stepped.
    optimizer : bool
        Whether the update is an optimizer (which updates only ``param_names``
        and never calls a layer's own ``step()``) rather than a learning rate.
    """
    cls = type(layer)
    builtin = _builtin.get(cls)
    if builtin is None:
        builtin = _builtin[cls] = cls.__module__.startswith(_BUILTIN_MODULES)
    if builtin:
        return  # the built-in layers and blocks declare every parameter
    missing = undeclared_gradients(layer) if (cls, "gradients") not in _warned else None
    if missing:
        _warned.add((cls, "gradients"))
        names = ", ".join(missing)
        grads = ", ".join("d" + name for name in missing)
        _warnings.warn(
            f"{layer!r} ({cls.__qualname__}) stores the gradients {grads} of its arrays {names}, but "
            f"param_names does not list {names}: they are never trained. Add "
            f"param_names = {tuple(list(getattr(layer, 'param_names', ()) or ()) + missing)!r} to the class",
            UntrainedParameterWarning, stacklevel=_user_stacklevel())
    if (optimizer and not getattr(layer, "param_names", ()) and _overrides_step(layer)
            and (cls, "step") not in _warned):
        _warned.add((cls, "step"))
        _warnings.warn(
            f"{layer!r} ({cls.__qualname__}) overrides step() but lists no param_names: an optimizer "
            "never calls a layer's step(), it updates the arrays named in param_names from their "
            "gradients d<name>. Add param_names = ('W', ...) naming the layer's arrays (and drop the "
            "step() override), or train with a float learning rate",
            UntrainedParameterWarning, stacklevel=_user_stacklevel())
