"""``History``: the per-epoch metrics of a ``fit`` run, with plotting and saving."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerkit._atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from layerkit.diagnostics import Diagnostics


@dataclass
class History:
    """Per-epoch metrics of a ``fit`` run.

    Attributes
    ----------
    metrics : dict of str to list of float
        ``"train_loss"`` (mean over the epoch's minibatches, each measured
        before its update), ``"train_accuracy"`` where the loss is a
        classifier's, ``"val_loss"``/``"val_accuracy"`` when validation data
        was given, and ``"lr"`` (the rate of the epoch's last update) when an
        optimizer was used.
    diagnostics : Diagnostics or None
        Per-layer statistics when ``fit(..., diagnostics=True)``.
    stopped_early : bool
        Whether early stopping ended the run before ``epochs``.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    diagnostics: "Diagnostics | None" = None
    stopped_early: bool = False

    def append(self, **values: float | None) -> None:
        """Add one epoch's values; ``None`` values are skipped."""
        for key, value in values.items():
            if value is not None:
                self.metrics.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        try:
            return self.metrics[key]
        except KeyError:
            raise KeyError(f"History has no metric {key!r}; it has {sorted(self.metrics)}") from None

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    @property
    def epochs(self) -> int:
        """Number of recorded epochs."""
        return len(self.metrics.get("train_loss", []))

    def last(self) -> dict[str, float]:
        """The metrics of the last epoch."""
        return {key: values[-1] for key, values in self.metrics.items() if values}

    # ------------------------------------------------------------------ output
    def _repr_html_(self) -> str:
        """The metrics as an HTML table, one row per epoch (the first 5 and last 10 of a long run)."""
        from layerkit._html import html_table

        keys = list(self.metrics)
        n = max((len(values) for values in self.metrics.values()), default=0)
        shown = list(range(n)) if n <= 20 else list(range(5)) + [-1] + list(range(n - 10, n))

        def value(key: str, epoch: int) -> str:
            values = self.metrics[key]
            return f"{values[epoch]:.6g}" if epoch < len(values) else ""

        rows = [["..."] * (len(keys) + 1) if epoch < 0 else [epoch + 1, *(value(k, epoch) for k in keys)]
                for epoch in shown]
        notes = ["stopped early" if self.stopped_early else ""] + (
            [] if self.diagnostics is None else [repr(self.diagnostics)])
        return html_table(["epoch", *keys], rows, caption=f"History of {n} epoch{'' if n == 1 else 's'}",
                          notes=[note for note in notes if note], right=range(len(keys) + 1))

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None) -> Any:
        """Learning curves; see ``layerkit.plotting.plot_history``."""
        from layerkit.plotting import plot_history

        return plot_history(self, path, title=title)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"metrics": ..., "stopped_early": ..., "diagnostics": ... or None}``."""
        return {"metrics": {key: list(values) for key, values in self.metrics.items()},
                "stopped_early": self.stopped_early,
                "diagnostics": None if self.diagnostics is None else self.diagnostics.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        """Inverse of ``to_dict``."""
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise ValueError(f"History.from_dict: expected a dict with a 'metrics' dict, got {type(data).__name__}")
        diagnostics = None
        if data.get("diagnostics") is not None:
            from layerkit.diagnostics import Diagnostics

            diagnostics = Diagnostics.from_dict(data["diagnostics"])
        return cls({key: [float(v) for v in values] for key, values in data["metrics"].items()},
                   diagnostics, bool(data.get("stopped_early", False)))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the metrics as JSON (``.json``, diagnostics included) or CSV (``.csv``, one row per epoch).

        The file is written atomically: an existing file is replaced only by a complete one.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        elif suffix == ".csv":
            keys = list(self.metrics)
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["epoch", *keys])
                for epoch in range(max((len(v) for v in self.metrics.values()), default=0)):
                    writer.writerow([epoch + 1, *(repr(self.metrics[k][epoch]) if epoch < len(self.metrics[k])
                                                  else "" for k in keys)])
        else:
            raise ValueError(f"History.save: path must end in .json or .csv, got {path.name!r} "
                             "(use History.plot(path) for a figure)")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        """Read a file written by ``save`` (JSON or CSV)."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            return cls.from_dict(json.loads(path.read_text()))
        if path.suffix.lower() == ".csv":
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            metrics: dict[str, list[float]] = {}
            for row in rows:
                for key, value in row.items():
                    if key != "epoch" and value != "":
                        metrics.setdefault(key, []).append(float(value))
            return cls(metrics)
        raise ValueError(f"History.load: path must end in .json or .csv, got {path.name!r}")
