"""Per-layer diagnostics read from the trace and the layers' stored gradients.

``fit(..., diagnostics=True)`` hands every minibatch to a ``Diagnostics``
object, which keeps running sums and closes them into one value per epoch:

- ``grad_norm/<path>.<name>``: Euclidean norm of the gradient of each parameter
  (mean over the epoch's minibatches);
- ``activation_mean/<path>`` and ``activation_std/<path>``: mean and standard
  deviation of a layer's output (read from the trace: the output of layer
  ``i`` is the input of layer ``i + 1``);
- ``dead_fraction/<path>`` for each ``ReLU``: the fraction of its units that
  output zero for every row of the epoch;
- ``update_ratio/<path>.<name>``: ``||p_after - p_before|| / ||p_before||`` of each
  update (mean over the epoch), the rule of thumb being about 1e-3.

A layer's ``<path>`` is that of ``net.walk()`` and ``trace.walk()``: ``"3"``
for the net's layer 3 (as before blocks existed), ``"2.f.1"`` for layer 1 of
the residual block at index 2, ``"4.branches.0.0"`` inside a branch. Nested
layers are recorded like top-level ones, with two limits: the output of the
last layer inside a ``Residual``'s ``f`` or an ``Add``'s branch is in no
trace (only the block's sum is), so it gets no activation statistics; a
``ReLU`` there still gets its dead fraction (read from its input).

No hooks are needed: a forward pass already keeps every layer's input, and
``backward`` leaves every gradient on its layer.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from layerkit.layers.relu import ReLU
from layerkit.optim.base import named_parameters, net_parameters

KINDS = ("grad_norm", "activation_mean", "activation_std", "dead_fraction", "update_ratio")
PER_PARAMETER = ("grad_norm", "update_ratio")  # keyed "<layer path>.<parameter name>"; the others by path


class Diagnostics:
    """Per-layer statistics of training, one value per epoch.

    Attributes
    ----------
    records : dict of str to list of float
        ``"<kind>/<key>"`` (see the module docstring) to one value per epoch.
    labels : dict of str to str
        Layer path (``"0"``, ``"2.f.1"``) to the layer's ``repr``, for legends.
    """

    def __init__(self) -> None:
        self.records: dict[str, list[float]] = {}
        self.labels: dict[str, str] = {}
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._active: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ recording
    def snapshot(self, net: Any) -> dict[str, np.ndarray]:
        """Copies of the parameters, to pass to ``observe_batch`` after the step."""
        return {key: np.array(param, copy=True) for key, param in net_parameters(net).items()}

    def _add(self, key: str, value: float) -> None:
        self._sums[key] = self._sums.get(key, 0.0) + value
        self._counts[key] = self._counts.get(key, 0) + 1

    def observe_batch(self, net: Any, trace: Sequence[Any], output: np.ndarray,
                      before: dict[str, np.ndarray] | None = None) -> None:
        """Accumulate one minibatch.

        Parameters
        ----------
        net : Net
        trace : Trace
            From ``net.forward`` of this minibatch; the gradients of its
            ``backward`` must still be on the layers.
        output : ndarray, shape (n_samples, n_out)
            The net's output of that forward pass.
        before : dict, optional
            ``snapshot(net)`` taken before the step, for the update ratio.
        """
        for key, entry, out in _outputs(trace, output, ""):
            layer = entry[0]
            self.labels.setdefault(key, repr(layer))
            if out is not None:
                out = np.asarray(out)
                self._add(f"activation_mean/{key}", float(out.mean()))
                self._add(f"activation_std/{key}", float(out.std()))
            if isinstance(layer, ReLU) and np.ndim(entry[1]) == 2:
                active = np.any(np.asarray(entry[1]) > 0, axis=0)  # relu(x) > 0 exactly where x > 0
                seen = self._active.get(key)
                self._active[key] = active if seen is None or seen.shape != active.shape else seen | active
            if "." not in key and getattr(layer, "param_names", ()):  # (a block's: the paths inside it)
                for name, param, grad in named_parameters(layer):
                    self._add(f"grad_norm/{key}.{name}", float(np.linalg.norm(grad)))
                    old = None if before is None else before.get(f"{key}.{name}")
                    old_norm = 0.0 if old is None else float(np.linalg.norm(old))
                    if old_norm > 0:  # a ratio to an all-zero array (a fresh bias) means nothing
                        self._add(f"update_ratio/{key}.{name}", float(np.linalg.norm(param - old)) / old_norm)

    def end_epoch(self) -> None:
        """Turn the running sums into one value per record and start a new epoch."""
        for key, total in self._sums.items():
            self.records.setdefault(key, []).append(total / self._counts[key])
        for key, active in self._active.items():
            self.records.setdefault(f"dead_fraction/{key}", []).append(1.0 - float(active.mean()))
        self._sums, self._counts, self._active = {}, {}, {}

    # ------------------------------------------------------------------ reading
    @property
    def epochs(self) -> int:
        return max((len(values) for values in self.records.values()), default=0)

    def series(self, kind: str) -> dict[str, list[float]]:
        """The records of one kind (``"grad_norm"``, ...) by key (``"0.W"``, ``"3"``)."""
        if kind not in KINDS:
            raise ValueError(f"Diagnostics.series: kind must be one of {KINDS}, got {kind!r}")
        prefix = kind + "/"
        return {key[len(prefix):]: values for key, values in self.records.items() if key.startswith(prefix)}

    def grad_norms(self, name: str = "W", epoch: int = -1, *, paths: bool = False) -> dict[Any, float]:
        """Gradient norm of parameter ``name`` per layer at one epoch (default: the last).

        Parameters
        ----------
        name : str
        epoch : int
        paths : bool
            ``False``: keyed by the index of a top-level layer (``{0: ..., 3: ...}``).
            ``True``: keyed by layer path, nested layers included (``{"0": ..., "2.f.0": ...}``).
        """
        out: dict[Any, float] = {}
        for key, values in self.series("grad_norm").items():
            path, _, param = key.rpartition(".")
            if param == name and (paths or path.isdigit()):
                out[path if paths else int(path)] = values[epoch]
        return dict(sorted(out.items(), key=lambda item: path_order(str(item[0]))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{"records": ..., "labels": ...}``."""
        return {"records": {k: list(v) for k, v in self.records.items()}, "labels": dict(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Diagnostics":
        diagnostics = cls()
        diagnostics.records = {k: [float(x) for x in v] for k, v in data.get("records", {}).items()}
        diagnostics.labels = dict(data.get("labels", {}))
        return diagnostics

    def layer_paths(self) -> list[str]:
        """Every layer path recorded (``"3"``, ``"2.f.1"``), in the order of ``net.walk()``."""
        paths = set(self.labels)
        for kind in KINDS:
            for key in self.series(kind):
                paths.add(key.rpartition(".")[0] if kind in PER_PARAMETER else key)
        return sorted(paths, key=path_order)

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None) -> Any:
        """All diagnostics on one figure; see ``layerkit.plotting.plot_diagnostics``."""
        from layerkit.plotting import plot_diagnostics

        return plot_diagnostics(self, path, title=title)

    def __repr__(self) -> str:
        return f"Diagnostics({len(self.records)} records over {self.epochs} epochs)"


def path_order(path: str) -> tuple:
    """A sort key putting layer paths in the order of ``net.walk()`` (``"2" < "2.f.0" < "2.f.10" < "10"``)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.split("."))


def _outputs(trace: Sequence[Any], output: Any, prefix: str) -> Any:
    """``(path, entry, output or None)`` for every entry of ``trace`` and of the blocks' traces inside.

    The output of entry ``i`` is the input of entry ``i + 1``; that of the
    last entry is ``output`` (``None`` when unknown). A nested net's output is
    its entry's output; a ``Concatenate`` branch's is its columns of the
    block's output; a ``Residual``'s ``f`` and an ``Add`` branch's are in no
    trace.
    """
    for index, entry in enumerate(trace):
        out = trace[index + 1][1] if index + 1 < len(trace) else output
        key = f"{prefix}{index}"
        yield key, entry, out
        layer, ctx = entry[0], getattr(entry, "ctx", None)
        inner_traces = getattr(layer, "inner_traces", None)
        if inner_traces is None or ctx is None:
            continue
        widths = getattr(ctx, "widths", None)
        starts = np.cumsum((0,) + tuple(widths)) if widths is not None else None
        for number, (name, inner) in enumerate(inner_traces(ctx)):
            if not name:  # a net used as a layer: its output is the entry's
                inner_out = out
            elif _is_concatenate(layer) and out is not None and np.ndim(out) == 2 and starts is not None:
                inner_out = np.asarray(out)[:, starts[number]:starts[number + 1]]
            else:
                inner_out = None
            yield from _outputs(inner, inner_out, f"{key}.{name}." if name else f"{key}.")


def _is_concatenate(layer: Any) -> bool:
    from layerkit.blocks.concatenate import Concatenate

    return isinstance(layer, Concatenate)
