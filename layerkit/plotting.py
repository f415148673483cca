"""Learning-curve plots with matplotlib (never a side effect of training)."""
from __future__ import annotations

import os
from typing import Any

from layerkit._atomic import atomic_path
from layerkit.training import History


def plot_history(history: History, path: str | os.PathLike | None = None, *, title: str | None = None) -> Any:
    """Plot loss and (where recorded) accuracy per epoch, train and validation.

    Parameters
    ----------
    history : History
        As returned by ``layerkit.fit``.
    path : str or PathLike, optional
        Where to save the figure (the format follows the suffix); written
        atomically, so an existing file is replaced only by a complete one.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    panels = [("loss", "Loss")]
    if "train_accuracy" in history or "val_accuracy" in history:
        panels.append(("accuracy", "Accuracy"))
    figure = Figure(figsize=(5 * len(panels), 4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, label) in zip(axes, panels):
        for phase, style in (("train", "-"), ("val", "--")):
            key = f"{phase}_{metric}"
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, style, label=phase)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    if path is not None:
        suffix = os.path.splitext(os.fspath(path))[1] or ".png"
        with atomic_path(path, suffix=suffix) as tmp:
            figure.savefig(tmp, format=suffix.lstrip("."), dpi=110)
    return figure
