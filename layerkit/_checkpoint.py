"""Checkpoints of ``fit``: the whole ``TrainingRun`` in one model file, written atomically.

A checkpoint is a model file (``layerkit.io``: the net's config and arrays,
the optimizer's state) with two more kinds of entries::

    fit_state           JSON: position, generators' states, history, modes, callbacks' configs,
                        and what must match on resume (loss, update rule, data, batch size)
    fit/callbacks/<i>/<key>   the arrays of callback i (early stopping's best weights)

so ``Net.load(checkpoint)`` reads the net. The file is replaced atomically:
a crash (even SIGKILL) while writing leaves the previous checkpoint. Resuming
checks everything before changing anything: a checkpoint of another net,
loss, optimizer or data set raises ``ValueError`` and leaves the run as it was.
"""
from __future__ import annotations

import json
import os
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np

from layerkit import io as _io
from layerkit.config import net_config
from layerkit.diagnostics import Diagnostics
from layerkit.history import History
from layerkit.optim.base import Optimizer, optimizer_from_state_dict
from layerkit.optim.schedules import without_state

KIND = "layerkit.fit"
VERSION = 1
CALLBACK_PREFIX = "fit/callbacks/"


class CheckpointError(ValueError):
    """A checkpoint that cannot resume this run; the message says which file and why."""


class Checkpoint:
    """Where and how often a run is saved.

    Parameters
    ----------
    path : str or path-like
    every_epochs : int
        Save after every ``every_epochs``-th epoch (and after the last).
    every_batches : int, optional
        Also save after every ``every_batches``-th minibatch of the run.
    """

    def __init__(self, path: str | os.PathLike, every_epochs: int = 1, every_batches: int | None = None) -> None:
        self.path, self.every_epochs, self.every_batches = Path(path), every_epochs, every_batches

    def prepare(self, run: Any) -> None:
        """Before training: a net that cannot be saved fails now, not after its first epoch; stale files go."""
        net_config(run.net)  # ConfigError for a layer that is not registered
        if not isinstance(run.update, (float, Optimizer)):
            raise TypeError(f"fit: checkpoint= saves the state of a layerkit.optim optimizer or a float rate, "
                            f"and {type(run.update).__name__} is neither: its state could not be resumed")
        self.remove_leftovers()

    def remove_leftovers(self) -> None:
        """Remove the temporary files of writes cut short by a crash (``.<name>.<random><suffix>`` beside it)."""
        folder = self.path.parent
        for leftover in folder.glob(f".{glob_escape(self.path.name)}.*{glob_escape(self.path.suffix)}"):
            leftover.unlink(missing_ok=True)

    def after_batch(self, run: Any) -> None:
        if self.every_batches is not None and run.position.step % self.every_batches == 0:
            self.save(run)

    def after_epoch(self, run: Any) -> None:
        if run.position.epoch % self.every_epochs == 0 or run.finished:
            self.save(run)

    def save(self, run: Any) -> None:
        """Write the run's whole state to ``path`` (atomically)."""
        entries = _io.net_entries(run.net, optimizer=run.update if isinstance(run.update, Optimizer) else None)
        state, arrays = _fit_state(run)
        entries["fit_state"] = np.array(json.dumps(state))
        entries.update(arrays)
        _io.write_entries(self.path, entries)

    def restore(self, run: Any) -> bool:
        """Continue ``run`` from ``path``; ``False`` (and nothing changed) when there is no file there.

        Raises
        ------
        CheckpointError
            (a ``ValueError``) The file is not a checkpoint, or one of another
            net, loss, optimizer or data; nothing of the run is changed.
        layerkit.io.ModelFileError
            The file is corrupt or truncated.
        """
        if not self.path.exists():
            return False
        where = os.fspath(self.path)
        entries = _io.read_entries(self.path)
        if "fit_state" not in entries:
            raise CheckpointError(f"{where} is a saved net, not a fit checkpoint (it holds no training state)")
        try:
            state = json.loads(str(entries["fit_state"][()]))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: its training state is not valid JSON: {error}") from error
        apply = _checked(run, entries, state, where)  # every check first: nothing is half loaded
        apply()
        return True


# ---------------------------------------------------------------------- writing
def _fit_state(run: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    position, arrays, callbacks = run.position, {}, []
    for index, callback in enumerate(run.callbacks):
        saved = callback.state_dict()
        callbacks.append({"type": _qualname(type(callback)), "config": saved["config"]})
        for key, value in saved["arrays"].items():
            arrays[f"{CALLBACK_PREFIX}{index}/{key}"] = np.asarray(value)
    diagnostics = run.history.diagnostics
    state = {
        "kind": KIND, "version": VERSION,
        "expects": _expectations(run),
        "position": {"epoch": position.epoch, "batch": position.batch, "step": position.step,
                     "total_loss": position.total_loss, "total_correct": position.total_correct,
                     "has_accuracy": position.has_accuracy, "stop": run.state.stop},
        "last_batch": [run.state.batch, run.state.batch_loss, run.state.batch_size],
        # mid-epoch: the state before the epoch's shuffle, which the resumed run draws again
        "rng": _jsonable(position.epoch_rng if position.batch else run.rng.bit_generator.state),
        "layer_rngs": {key: _jsonable(gen.bit_generator.state) for key, gen in _layer_generators(run.net).items()},
        "modes": _modes(run.net),
        "history": {"metrics": run.history.metrics, "stopped_early": run.history.stopped_early},
        "diagnostics": None if diagnostics is None else {
            **diagnostics.to_dict(), "sums": diagnostics._sums, "counts": diagnostics._counts,
            "active": {key: value.tolist() for key, value in diagnostics._active.items()}},
        "callbacks": callbacks,
    }
    return state, arrays


def _expectations(run: Any) -> dict[str, Any]:
    """What a resumed run must share with the saved one (compared as JSON)."""
    update = run.update
    rule = ({"optimizer": without_state(update.config())} if isinstance(update, Optimizer)
            else {"rate": float(update)} if isinstance(update, float) else {"update": _qualname(type(update))})
    return {"loss": _loss_name(run.loss_fn), "update": rule, "rows": len(run.source),
            "batch_size": run.batch_size, "shuffle": run.shuffle, "weighted": run.sample_weight is not None,
            "validation": run.validation is not None, "clip_norm": run.clip_norm,
            "diagnostics": run.history.diagnostics is not None}


def _loss_name(loss_fn: Any) -> str:
    kind = loss_fn if callable(loss_fn) and hasattr(loss_fn, "__qualname__") else type(loss_fn)
    return _qualname(kind)


def _qualname(kind: Any) -> str:
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', type(kind).__name__)}"


def _layer_generators(net: Any) -> dict[str, np.random.Generator]:
    """Every random generator a layer holds (dropout's masks), keyed ``"<path>.<attribute>"``."""
    found = {}
    for path, layer in net.walk():
        for name, value in vars(layer).items() if hasattr(layer, "__dict__") else ():
            if isinstance(value, np.random.Generator):
                found[f"{path}.{name}"] = value
    return found


def _modes(net: Any) -> dict[str, bool]:
    return {path: bool(layer.training) for path, layer in net.walk()
            if isinstance(getattr(layer, "training", None), (bool, np.bool_))}


def _jsonable(value: Any) -> Any:
    """A generator's state as JSON: arrays become ``{"ndarray": list, "dtype": str}``."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            return np.array(value["ndarray"], dtype=value["dtype"])
        return {key: _from_json(item) for key, item in value.items()}
    return value


# ---------------------------------------------------------------------- reading
def _checked(run: Any, entries: dict[str, Any], state: Any, where: str) -> Any:
    """Check the checkpoint against ``run``; return the function that loads it (which cannot fail)."""
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise CheckpointError(f"{where}: not a fit checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{where}: checkpoint version {state.get('version')!r}, this layerkit reads {VERSION}")
    try:
        return _checked_parts(run, entries, state, where)
    except (KeyError, TypeError, IndexError) as error:
        raise CheckpointError(f"{where}: its training state is malformed ({type(error).__name__}: {error})") from error


def _checked_parts(run: Any, entries: dict[str, Any], state: dict[str, Any], where: str) -> Any:
    stored_config = _io._json_entry(entries, "config", where)
    config = json.loads(json.dumps(net_config(run.net)))
    if stored_config != config:
        raise CheckpointError(f"{where} was written for another net: it holds {_short(stored_config)}, "
                              f"this run trains {_short(config)}")
    expects = json.loads(json.dumps(_expectations(run)))  # as stored: tuples become lists
    for key, value in expects.items():
        if state["expects"].get(key) != value:
            raise CheckpointError(f"{where} was written by another run: its {key} is {state['expects'].get(key)!r}, "
                                  f"this run's is {value!r}; remove the file (or resume=False) to start afresh")
    fresh = _io.layers_of(entries, where)  # every array checked against the config (shape, dtype, state)
    optimizer = None
    if isinstance(run.update, Optimizer):
        try:
            optimizer = optimizer_from_state_dict(_io.optimizer_state(entries, where))
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"{where}: its optimizer state cannot be loaded: {error}") from error
    generators = _layer_generators(run.net)
    if set(state["layer_rngs"]) != set(generators):
        raise CheckpointError(f"{where}: it holds the random generators {sorted(state['layer_rngs'])}, "
                              f"the net has {sorted(generators)}")
    rng_states = {key: _checked_rng(gen, state["layer_rngs"][key], where) for key, gen in generators.items()}
    rng_state = _checked_rng(run.rng, state["rng"], where)
    kinds = [_qualname(type(callback)) for callback in run.callbacks]
    if [saved["type"] for saved in state["callbacks"]] != kinds:
        raise CheckpointError(f"{where}: it was written with the callbacks "
                              f"{[saved['type'] for saved in state['callbacks']]}, this run has {kinds}")
    callback_states = [_callback_state(index, saved, entries) for index, saved in enumerate(state["callbacks"])]
    history = History.from_dict({"metrics": state["history"]["metrics"],
                                 "stopped_early": state["history"]["stopped_early"]})
    diagnostics = _diagnostics(state["diagnostics"])
    position = state["position"]
    numbers = (int(position["epoch"]), int(position["batch"]), int(position["step"]),
               float(position["total_loss"]), float(position["total_correct"]))
    last_batch = (int(state["last_batch"][0]), float(state["last_batch"][1]), int(state["last_batch"][2]))
    modes = {path: bool(mode) for path, mode in state["modes"].items()}
    layers = dict(run.net.walk())
    if set(modes) - set(layers):
        raise CheckpointError(f"{where}: it holds modes of layers {sorted(set(modes) - set(layers))} the net lacks")

    def apply() -> None:
        _copy_arrays(fresh, run.net)
        if optimizer is not None:
            run.update.load_state_dict(optimizer.state_dict())
        run.rng.bit_generator.state = rng_state
        for key, gen in generators.items():
            gen.bit_generator.state = rng_states[key]
        for path, mode in modes.items():  # walk order: a block before its children
            layers[path].training = mode
        run.history.metrics, run.history.stopped_early = history.metrics, history.stopped_early
        if diagnostics is not None:
            run.history.diagnostics = diagnostics
        for callback, saved in zip(run.callbacks, callback_states):
            callback.load_state_dict(saved)
        target = run.position
        target.epoch, target.batch, target.step, target.total_loss, target.total_correct = numbers
        target.has_accuracy = bool(position["has_accuracy"])
        run.state.stop = bool(position["stop"])
        run.state.epoch = target.epoch
        run.state.batch, run.state.batch_loss, run.state.batch_size = last_batch
    return apply


def _short(config: Any) -> str:
    text = json.dumps(config)
    return text if len(text) <= 300 else text[:300] + "..."


def _checked_rng(generator: np.random.Generator, saved: Any, where: str) -> Any:
    value = _from_json(saved)
    trial = type(generator.bit_generator)()
    try:
        trial.state = value
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{where}: a saved random generator state does not fit "
                              f"{type(generator.bit_generator).__name__}: {error}") from error
    return value


def _callback_state(index: int, saved: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
    prefix = f"{CALLBACK_PREFIX}{index}/"
    return {"config": saved["config"],
            "arrays": {key[len(prefix):]: value for key, value in entries.items() if key.startswith(prefix)}}


def _diagnostics(saved: Any) -> Diagnostics | None:
    if saved is None:
        return None
    diagnostics = Diagnostics.from_dict(saved)
    diagnostics._sums = {key: float(value) for key, value in saved["sums"].items()}
    diagnostics._counts = {key: int(value) for key, value in saved["counts"].items()}
    diagnostics._active = {key: np.array(value, dtype=bool) for key, value in saved["active"].items()}
    return diagnostics


def _copy_arrays(fresh: list[Any], net: Any) -> None:
    """The arrays of the checked ``fresh`` layers into ``net``'s, in place where they can be."""
    targets = _io.saved_arrays(net.layers)
    for key, (layer, name) in _io.saved_arrays(fresh).items():
        value = getattr(layer, name)
        target_layer, target_name = targets[key]
        current = getattr(target_layer, target_name)
        if (isinstance(current, np.ndarray) and current.shape == value.shape and current.dtype == value.dtype
                and current.flags.writeable):
            current[...] = value  # in place: the compiled plan and the optimizer keep their references
        else:
            setattr(target_layer, target_name, np.array(value, copy=True))

