"""``GradReport``: what a gradient check measured, per tensor, and how to read it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-7


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """``|a - n| / max(|a|, |n|)``, and 0 where both are 0."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    diff = np.abs(analytic - numeric)
    return np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)


def _violation(analytic: np.ndarray, numeric: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """``|a - n| / (atol + rtol * |n|)``: above 1 means out of tolerance (as ``numpy.isclose``)."""
    bound = atol + rtol * np.abs(numeric)
    diff = np.abs(analytic - numeric)
    return np.divide(diff, bound, out=np.where(diff > 0, np.inf, 0.0), where=bound > 0)


@dataclass
class TensorReport:
    """The comparison for one tensor (``x`` or a parameter).

    Attributes
    ----------
    name : str
        ``"x"``, ``"W"``, or ``"layers[0].W"`` inside a ``Net``.
    shape : tuple of int
    indices : ndarray of int, shape (n_checked,)
        Flat indices of the compared coordinates (all of them, or a seeded
        sample of ``max_coords``), kinks excluded.
    analytic, numeric : ndarray, shape (n_checked,)
        The backward's gradient and the central difference at those coordinates.
    n_kinks : int
        Sampled coordinates left out because the function is not differentiable
        there (the one-sided differences disagree).
    directional : list of (float, float)
        ``(analytic, numeric)`` derivatives along random unit directions that
        move every coordinate at once.
    directional_scale : list of float
        For each direction ``v``, ``sum(|grad * v|)``: the size of the terms
        the directional derivative adds up. Its tolerance is
        ``atol + rtol * max(|numeric|, scale)``, since rounding in the sum
        scales with its terms, not with a result that cancels to near zero.
    problem : str or None
        Why no comparison was possible (no gradient stored, wrong shape, ...);
        such a tensor always fails.
    """

    name: str
    shape: tuple[int, ...]
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    analytic: np.ndarray = field(default_factory=lambda: np.zeros(0))
    numeric: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_kinks: int = 0
    directional: list[tuple[float, float]] = field(default_factory=list)
    directional_scale: list[float] = field(default_factory=list)
    problem: str | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_checked(self) -> int:
        return int(self.indices.size)

    @property
    def max_abs_error(self) -> float:
        values = [np.abs(self.analytic - self.numeric)] + [np.array([abs(a - n)]) for a, n in self.directional]
        joined = np.concatenate(values)
        return float(joined.max()) if joined.size else 0.0

    @property
    def max_rel_error(self) -> float:
        values = [relative_error(self.analytic, self.numeric)] + [
            relative_error(np.array([a]), np.array([n])) for a, n in self.directional]
        joined = np.concatenate(values)
        return float(joined.max()) if joined.size else 0.0

    def _position(self, flat: int) -> int:
        return int(np.argmax(self.indices == flat))

    def worst(self, rtol: float | None = None, atol: float | None = None) -> tuple[tuple[int, ...], float, float] | None:
        """``(index, analytic, numeric)`` of the worst compared coordinate.

        Worst means largest absolute error when no tolerance is given, and
        largest error relative to the tolerance ``atol + rtol * |numeric|``
        otherwise. ``None`` when no coordinate was compared.
        """
        if self.n_checked == 0:
            return None
        if rtol is None and atol is None:
            score = np.abs(self.analytic - self.numeric)
        else:
            score = _violation(self.analytic, self.numeric, rtol or 0.0, atol or 0.0)
        at = int(np.argmax(score))
        index = tuple(int(i) for i in np.unravel_index(int(self.indices[at]), self.shape))
        return index, float(self.analytic[at]), float(self.numeric[at])

    @property
    def worst_index(self) -> tuple[int, ...] | None:
        """Index of the largest absolute error among the compared coordinates."""
        worst = self.worst()
        return None if worst is None else worst[0]

    def n_failed(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> int:
        """Compared coordinates out of tolerance."""
        return int(np.count_nonzero(_violation(self.analytic, self.numeric, rtol, atol) > 1))

    def failed_directions(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> list[tuple[float, float]]:
        """The ``(analytic, numeric)`` directional derivatives out of tolerance."""
        scales = list(self.directional_scale) + [0.0] * (len(self.directional) - len(self.directional_scale))
        return [(a, n) for (a, n), scale in zip(self.directional, scales)
                if abs(a - n) > atol + rtol * max(abs(n), scale)]

    def passed(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
        """Every comparison within ``atol + rtol * |numeric|``, and something was compared."""
        if self.problem is not None:
            return False
        if self.size and self.n_checked == 0 and not self.directional:
            return False
        return self.n_failed(rtol, atol) == 0 and not self.failed_directions(rtol, atol)

    def describe_failure(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> str:
        """One line saying why this tensor fails (empty when it passes)."""
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        if self.passed(rtol, atol):
            return ""
        if self.n_failed(rtol, atol):
            index, analytic, numeric = self.worst(rtol, atol)
            error = abs(analytic - numeric)
            rel = float(relative_error(np.array([analytic]), np.array([numeric]))[0])
            return (f"{self.name}: worst at index {index}: analytic {analytic:.10g} vs numeric {numeric:.10g} "
                    f"(abs error {error:.3g}, rel error {rel:.3g}); {self.n_failed(rtol, atol)} of "
                    f"{self.n_checked} checked coordinates out of tolerance")
        if self.failed_directions(rtol, atol):
            analytic, numeric = self.failed_directions(rtol, atol)[0]
            return (f"{self.name}: the sampled coordinates agree, but the derivative along a random direction "
                    f"does not: analytic {analytic:.10g} vs numeric {numeric:.10g} (an error in coordinates "
                    f"outside the sample; raise max_coords to locate it)")
        return (f"{self.name}: all {self.n_kinks} sampled coordinates sit at points of non-differentiability "
                "(for instance a ReLU input exactly at 0, as after a zero bias); choose another input or "
                "parameters off the kinks")

    def _repr_html_(self) -> str:
        """This tensor's row of the report, in HTML."""
        from layerkit._html import FAILED, PASSED, html_table

        passed = self.passed()
        return html_table(GradReport._HEADER, [self.row()], right=range(2, 9),
                          caption=f"{self.name}: {'passed' if passed else 'FAILED'}",
                          notes=[] if passed else [self.describe_failure()],
                          row_colors=[PASSED if passed else FAILED])

    def row(self) -> list[str]:
        checked = f"{self.n_checked}/{self.size}" + (f" (+{self.n_kinks} at kinks)" if self.n_kinks else "")
        if self.problem is not None:
            return [self.name, str(self.shape), checked, "-", "-", "-", "-", "-", "-"]
        worst = self.worst()
        directional = max((abs(a - n) for a, n in self.directional), default=None)
        return [
            self.name, str(self.shape), checked,
            f"{self.max_abs_error:.2e}", f"{self.max_rel_error:.2e}",
            "-" if worst is None else str(worst[0]),
            "-" if worst is None else f"{worst[1]:.8g}",
            "-" if worst is None else f"{worst[2]:.8g}",
            "-" if directional is None else f"{directional:.2e}",
        ]


@dataclass
class GradReport:
    """The result of ``check_grad``: one ``TensorReport`` per tensor, ``x`` first.

    Attributes
    ----------
    layer : str
        ``repr`` of the checked layer or net.
    tensors : dict of str to TensorReport
    eps : float
        Finite-difference step.
    seed : int
        Seed of ``dy``, the coordinate sample and the directions; pass it back
        to ``check_grad`` to repeat the check exactly.
    converted_from : str or None
        ``"float32"`` when the layer was checked through a float64 copy.
    notes : list of str
        Anything else the reader should know (a float32 ``x`` converted,
        inputs nudged away from kinks).
    """

    layer: str
    tensors: dict[str, TensorReport]
    eps: float
    seed: int
    converted_from: str | None = None
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> TensorReport:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"no tensor {name!r} in the report of {self.layer}; it has {list(self.tensors)}") from None

    def __iter__(self) -> Iterator[TensorReport]:
        return iter(self.tensors.values())

    def passed(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
        """Every tensor within tolerance."""
        return all(tensor.passed(rtol, atol) for tensor in self)

    def failures(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> list[TensorReport]:
        """The tensors out of tolerance, in report order."""
        return [tensor for tensor in self if not tensor.passed(rtol, atol)]

    @property
    def max_abs_error(self) -> float:
        return max((t.max_abs_error for t in self), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self), default=0.0)

    _HEADER = ["tensor", "shape", "checked", "max abs err", "max rel err", "worst index",
               "analytic", "numeric", "direction err"]

    def _repr_html_(self) -> str:
        """The table of ``str(report)`` in HTML, each tensor's row green when it passed and red when not."""
        from layerkit._html import FAILED, PASSED, html_table

        verdict = "passed" if self.passed() else f"FAILED ({', '.join(t.name for t in self.failures())})"
        notes = ([f"checked through a float64 copy of a {self.converted_from} layer"] if self.converted_from else [])
        notes += list(self.notes) + [f"{t.name}: {t.problem}" for t in self if t.problem]
        notes += [t.describe_failure() for t in self.failures() if not t.problem]
        return html_table(self._HEADER, [tensor.row() for tensor in self],
                          caption=f"GradReport for {self.layer}: {verdict} (central differences in float64, "
                                  f"eps={self.eps:g}, seed={self.seed})",
                          notes=notes, right=range(2, 9),
                          row_colors=[PASSED if t.passed() else FAILED for t in self])

    def __str__(self) -> str:
        header = self._HEADER
        rows = [header] + [tensor.row() for tensor in self]
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        lines = [f"GradReport for {self.layer} (central differences in float64, eps={self.eps:g}, seed={self.seed})"]
        if self.converted_from:
            lines.append(f"  checked through a float64 copy of a {self.converted_from} layer")
        lines += [f"  {note}" for note in self.notes]
        lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines += [f"  {tensor.name}: {tensor.problem}" for tensor in self if tensor.problem]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"GradReport(layer={self.layer!r}, tensors={list(self.tensors)}, "
                f"max_abs_error={self.max_abs_error:.3g}, max_rel_error={self.max_rel_error:.3g})")
