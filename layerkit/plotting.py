"""Figures with matplotlib (never a side effect of training): learning curves and diagnostics.

The module reads ``History`` and ``Diagnostics`` objects through their public
attributes and imports neither (so ``History.plot`` and ``Diagnostics.plot``
can call it without an import circle). Every function returns a ``matplotlib.figure.Figure`` made without pyplot (so
no window opens and nothing global changes) and saves it atomically when
given a path; the format follows the suffix.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping

from layerkit._atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from layerkit.diagnostics import Diagnostics
    from layerkit.history import History


def new_figure(n_rows: int, n_cols: int, *, size: tuple[float, float] = (5, 4)) -> tuple[Any, Any]:
    """A constrained-layout ``Figure`` and its 2-D array of axes, without pyplot."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] * n_cols, size[1] * n_rows), layout="constrained")
    return figure, figure.subplots(n_rows, n_cols, squeeze=False)


def save_figure(figure: Any, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """Save ``figure`` to ``path`` atomically (an existing file is replaced only by a complete one)."""
    suffix = os.path.splitext(os.fspath(path))[1] or ".png"
    with atomic_path(path, suffix=suffix) as tmp:
        figure.savefig(tmp, format=suffix.lstrip("."), dpi=dpi)


def _finish(figure: Any, path: str | os.PathLike | None, title: str | None) -> Any:
    if title:
        figure.suptitle(title)
    if path is not None:
        save_figure(figure, path)
    return figure


def _is_history(value: Any) -> bool:
    """Whether ``value`` is a ``History`` (read by its ``metrics`` dict of lists)."""
    return isinstance(getattr(value, "metrics", None), Mapping) and hasattr(value, "__contains__")


def plot_history(history: "History | Mapping[str, History]", path: str | os.PathLike | None = None, *,
                 title: str | None = None) -> Any:
    """Plot loss and (where recorded) accuracy per epoch, train (solid) and validation (dashed).

    Parameters
    ----------
    history : History or dict of str to History
        As returned by ``layerkit.fit``; a dict overlays several runs (one
        colour each, labelled by its key), to compare optimizers for instance.
    path : str or PathLike, optional
        Where to save the figure.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    runs = {"": history} if _is_history(history) else history
    if not isinstance(runs, Mapping) or not runs or not all(_is_history(run) for run in runs.values()):
        raise TypeError("plot_history: expected a History or a non-empty dict of name to History, "
                        f"got {type(history).__name__}")
    panels = [("loss", "Loss")]
    if any("train_accuracy" in run or "val_accuracy" in run for run in runs.values()):
        panels.append(("accuracy", "Accuracy"))
    from matplotlib.ticker import MaxNLocator

    figure, axes = new_figure(1, len(panels))
    for ax, (metric, label) in zip(axes[0], panels):
        for color, (name, run) in enumerate(runs.items()):
            for phase, style in (("train", "-"), ("val", "--")):
                key = f"{phase}_{metric}"
                if key in run:
                    values = run[key]
                    ax.plot(range(1, len(values) + 1), values, style, color=f"C{color}",
                            label=f"{name} {phase}".strip())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _finish(figure, path, title)


def plot_diagnostics(diagnostics: "Diagnostics", path: str | os.PathLike | None = None, *,
                     title: str | None = None) -> Any:
    """Per-layer diagnostics per epoch on one figure of four panels.

    Layers are named by their paths (``"3"``, ``"2.f.1"`` inside a block) and
    coloured in the order of ``net.walk()``.

    Gradient norm per parameter and update-to-weight ratio (log scale; one
    colour per layer from input to output, the first parameter of a layer
    solid and the others dashed), activation mean with a band of one standard
    deviation per activation layer, and the fraction of dead ReLU units.

    Parameters
    ----------
    diagnostics : Diagnostics
        ``history.diagnostics`` of ``fit(..., diagnostics=True)``.
    path : str or PathLike, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    figure, axes = new_figure(2, 2)
    labels = diagnostics.labels
    # every layer path (top-level "3", nested "2.f.1") in the order of net.walk(), input to output
    rank = {path: number for number, path in enumerate(diagnostics.layer_paths())}
    cmap = colormaps["viridis"]

    def color(index: str) -> Any:
        return cmap(0.9 * rank.get(index, 0) / max(len(rank) - 1, 1))

    def layer_label(index: str) -> str:
        return f"{index} {labels.get(index, '')}".strip()

    for ax, kind, heading in ((axes[0, 0], "grad_norm", "gradient norm"),
                              (axes[1, 1], "update_ratio", "update / weight norm")):
        seen: set[str] = set()
        first_names, other_names = set(), set()
        for key, values in diagnostics.series(kind).items():
            index, _, param = key.rpartition(".")  # (the layer's path, the parameter's name)
            first = index not in seen
            seen.add(index)
            (first_names if first else other_names).add(param)
            ax.semilogy(range(1, len(values) + 1), values, "-" if first else "--", marker=".",
                        color=color(index), label=layer_label(index) if first else "_nolegend_")
        if other_names:
            heading += f" (solid: {', '.join(sorted(first_names))}; dashed: {', '.join(sorted(other_names))})"
        ax.set_title(heading, fontsize="medium")
    means, stds = diagnostics.series("activation_mean"), diagnostics.series("activation_std")
    with_params = {key.rpartition(".")[0] for key in diagnostics.series("grad_norm")}
    shown = [key for key in means if key not in with_params] or list(means)
    for key in shown:
        values = means[key]
        epochs = range(1, len(values) + 1)
        spread = stds.get(key, [0.0] * len(values))
        axes[0, 1].plot(epochs, values, color=color(key), label=layer_label(key))
        axes[0, 1].fill_between(epochs, [m - s for m, s in zip(values, spread)],
                                [m + s for m, s in zip(values, spread)], color=color(key), alpha=0.12)
    axes[0, 1].set_title("activation mean ± std" + (" (outputs of the layers without parameters)"
                                                    if len(shown) < len(means) else ""), fontsize="medium")
    dead = diagnostics.series("dead_fraction")
    for key, values in dead.items():
        axes[1, 0].plot(range(1, len(values) + 1), values, marker=".", color=color(key), label=layer_label(key))
    axes[1, 0].set_title("dead ReLU units (fraction)", fontsize="medium")
    if not dead:
        axes[1, 0].text(0.5, 0.5, "no ReLU layer", ha="center", va="center", transform=axes[1, 0].transAxes)
    axes[1, 0].set_ylim(-0.02, 1.02)
    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        handles = ax.get_legend_handles_labels()[0]
        if handles:
            ax.legend(fontsize="x-small", ncol=2 if len(handles) > 6 else 1)
    return _finish(figure, path, title)
