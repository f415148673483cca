"""``compare_with_autodiff``: a layer's ``backward`` against automatic differentiation of a reference forward.

How the comparison works
------------------------
A reference forward ``fn(params, x) -> y`` is written with ``autograd.numpy``
(the ``autograd`` package) or ``jax.numpy``; ``params`` is a dict of the
layer's parameters by name (``{"W": ..., "b": ...}``; ``"layers[0].W"`` for a
``Net``). The layer runs ``forward`` and ``backward`` with a random ``dy``
(as a ``Net`` would: ``forward_pass``/``backward_pass`` in the layer's mode),
and automatic differentiation of ``sum(fn(params, x) * dy)`` gives the exact
gradients of the same scalar. Both are float64 (a float32 layer is compared
through a float64 copy, as in ``check_grad``), so they agree to rounding:
every coordinate of ``dx`` and of every ``d<name>`` is compared, not a
sample. The outputs are compared first, so a reference that computes another
function is reported as such rather than as a wrong gradient.

By default the finite-difference check (``check_grad``) runs as well, on the
same ``x`` and ``dy``: the reference forward is then checked against the
layer's own forward, and both gradients against central differences.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from layerkit.testing._references import chain, reference_forward
from layerkit.testing._target import CheckTarget, GradcheckError, float32_reason, float64_copy, layers_of
from layerkit.testing.gradcheck import (
    _analytic_gradients, _gradient_problem, _prepare_dy, _prepare_input, assert_grad,
)
from layerkit.testing.report import GradReport, _violation, relative_error

__all__ = ["compare_with_autodiff", "AutodiffReport", "AutodiffTensor"]

BACKENDS = ("autograd", "jax")
DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9


@dataclass
class AutodiffTensor:
    """One compared tensor: the layer's value and automatic differentiation's.

    Attributes
    ----------
    name : str
        ``"y"`` (the forward output), ``"x"`` (the input gradient) or a
        parameter name (its gradient ``d<name>``).
    layer : ndarray or None
        What the layer computed (``None`` if it stored nothing).
    reference : ndarray
        What the reference forward and automatic differentiation give.
    problem : str or None
        Why no comparison was possible (missing gradient, wrong shape).
    """

    name: str
    layer: np.ndarray | None
    reference: np.ndarray
    problem: str | None = None

    def violation(self, rtol: float, atol: float) -> np.ndarray:
        return _violation(np.ravel(self.layer), np.ravel(self.reference), rtol, atol)

    def passed(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
        return self.problem is None and not np.any(self.violation(rtol, atol) > 1)

    @property
    def max_abs_error(self) -> float:
        if self.problem is not None or self.reference.size == 0:
            return float("nan") if self.problem else 0.0
        return float(np.max(np.abs(self.layer - self.reference)))

    @property
    def max_rel_error(self) -> float:
        if self.problem is not None or self.reference.size == 0:
            return float("nan") if self.problem else 0.0
        return float(np.max(relative_error(self.layer, self.reference)))

    def describe_failure(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> str:
        """One line saying why this tensor fails (empty when it passes)."""
        what = "output y" if self.name == "y" else f"gradient of {self.name}"
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        if self.passed(rtol, atol):
            return ""
        violation = self.violation(rtol, atol)
        flat = int(np.argmax(violation))
        index = tuple(int(i) for i in np.unravel_index(flat, self.reference.shape))
        mine, theirs = float(np.ravel(self.layer)[flat]), float(np.ravel(self.reference)[flat])
        source = "forward" if self.name == "y" else "backward"
        line = (f"{self.name}: {what} differs, worst at index {index}: {source} {mine:.10g} vs autodiff "
                f"{theirs:.10g} (abs error {abs(mine - theirs):.3g}); {int(np.count_nonzero(violation > 1))} of "
                f"{violation.size} coordinates out of tolerance")
        if self.name == "y":
            line += ". The reference forward computes another function than the layer: fix that first"
        return line


@dataclass
class AutodiffReport:
    """The result of ``compare_with_autodiff``: the output, then ``x``, then each parameter.

    Attributes
    ----------
    layer : str
        ``repr`` of the compared layer or net.
    backend : str
        ``"autograd"`` or ``"jax"``.
    tensors : dict of str to AutodiffTensor
    seed : int
        Seed of ``x`` (when drawn) and ``dy``.
    gradcheck : GradReport or None
        The finite-difference check, when it ran.
    notes : list of str
    """

    layer: str
    backend: str
    tensors: dict[str, AutodiffTensor]
    seed: int
    gradcheck: GradReport | None = None
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> AutodiffTensor:
        return self.tensors[name]

    def __iter__(self) -> Iterator[AutodiffTensor]:
        return iter(self.tensors.values())

    def failures(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> list[AutodiffTensor]:
        return [tensor for tensor in self if not tensor.passed(rtol, atol)]

    def passed(self, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
        return not self.failures(rtol, atol)

    def _rows(self) -> list[list[str]]:
        return [[t.name, str(t.reference.shape), f"{t.max_abs_error:.2e}", f"{t.max_rel_error:.2e}"] for t in self]

    def _repr_html_(self) -> str:
        """The table of ``str(report)`` in HTML, each tensor's row green when it passed and red when not."""
        from layerkit._html import FAILED, PASSED, html_table

        verdict = "passed" if self.passed() else f"FAILED ({', '.join(t.name for t in self.failures())})"
        table = html_table(["tensor", "shape", "max abs err", "max rel err"], self._rows(),
                           caption=f"AutodiffReport for {self.layer}: {verdict} ({self.backend}, float64, "
                                   f"every coordinate, seed={self.seed})",
                           notes=list(self.notes) + [f"{t.name}: {t.problem}" for t in self if t.problem],
                           right=(2, 3), row_colors=[PASSED if t.passed() else FAILED for t in self])
        return table if self.gradcheck is None else table + "\n" + self.gradcheck._repr_html_()

    def __str__(self) -> str:
        header = ["tensor", "shape", "max abs err", "max rel err"]
        rows = [header] + self._rows()
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        lines = [f"AutodiffReport for {self.layer} ({self.backend}, float64, every coordinate, seed={self.seed})"]
        lines += [f"  {note}" for note in self.notes]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines += [f"  {t.name}: {t.problem}" for t in self if t.problem]
        return "\n".join(lines)


# ---------------------------------------------------------------------- backends
def _autograd_backend() -> tuple[Any, Any, Callable]:
    try:
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import erf
    except ImportError as error:
        raise ImportError('compare_with_autodiff(backend="autograd") needs the autograd package: '
                          f'pip install "layerkit[testing]" (or pip install autograd) ({error})') from error

    def vjp(fn: Callable, params: dict, x: np.ndarray, dy: np.ndarray) -> tuple[Any, dict, Any]:
        y = fn(params, x)
        d_params, dx = autograd.grad(lambda args: anp.sum(fn(args[0], args[1]) * dy))((params, x))
        return y, d_params, dx
    return anp, erf, vjp


def _jax_backend() -> tuple[Any, Any, Callable]:
    try:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import erf
    except ImportError as error:
        raise ImportError('compare_with_autodiff(backend="jax") needs JAX: pip install "layerkit[jax]" '
                          f'({error})') from error
    from layerkit.interop.jax_layer import _x64_scope

    def vjp(fn: Callable, params: dict, x: np.ndarray, dy: np.ndarray) -> tuple[Any, dict, Any]:
        with _x64_scope()(True):  # float64 whatever the global jax_enable_x64 says
            y, pullback = jax.vjp(fn, {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x))
            d_params, dx = pullback(jnp.asarray(dy, dtype=y.dtype))
        return y, d_params, dx
    return jnp, erf, vjp


def _backend(backend: Any) -> tuple[Any, Any, Callable]:
    if backend == "autograd":
        return _autograd_backend()
    if backend == "jax":
        return _jax_backend()
    raise ValueError(f"compare_with_autodiff: backend must be one of {BACKENDS}, got {backend!r}")


def _default_forward(obj: Any, xnp: Any, erf: Any, who: str) -> Callable:
    layers = layers_of(obj)
    forwards = []
    for index, layer in enumerate(layers):
        fn = reference_forward(layer, xnp, erf)
        if fn is None:
            where = f"layer {index} ({layer!r}) of {who}" if len(layers) > 1 or layer is not obj else who
            raise TypeError(
                f"compare_with_autodiff: there is no built-in reference forward for {where}; pass "
                "forward=fn(params, x), written with autograd.numpy (or jax.numpy with backend='jax'), where "
                "params is a dict of the parameters by name")
        forwards.append(fn)
    if len(layers) == 1 and layers[0] is obj:
        return forwards[0]
    return chain(forwards, [f"layers[{i}]." for i in range(len(layers))])


def _entry(name: str, mine: Any, reference: Any, what: str) -> AutodiffTensor:
    """The comparison of ``mine`` with ``reference``, or the problem (missing, shape, dtype, NaN) that prevents it."""
    reference = np.asarray(reference, dtype=np.float64)
    if mine is None:
        return AutodiffTensor(name, None, reference, f"backward stored no {what}" if what.startswith("d")
                              else f"backward returned no {what}")
    problem = _gradient_problem(mine, reference.shape, what)  # shape, dtype, NaN: as assert_grad refuses them
    if problem is not None:
        return AutodiffTensor(name, None, reference, problem)
    return AutodiffTensor(name, np.asarray(mine, dtype=np.float64), reference)


def compare_with_autodiff(
    layer: Any,
    x: Any = None,
    *,
    forward: Callable[[dict, Any], Any] | None = None,
    backend: str = "autograd",
    dy: Any = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    seed: int | None = None,
    finite_differences: bool = True,
) -> AutodiffReport:
    """Check a layer's ``backward`` against automatic differentiation of a reference forward.

    Parameters
    ----------
    layer : Layer or Net
        Parameters from ``param_names``; ``backward`` stores ``d<name>``.
    x : array_like, shape (n_samples, n_in), optional
        By default standard normal of the layer's ``example_input_shape``,
        away from its kinks.
    forward : callable, optional
        ``forward(params, x) -> y``, the reference written with
        ``autograd.numpy`` (``backend="autograd"``) or ``jax.numpy``
        (``backend="jax"``); ``params`` is a dict of float64 arrays keyed by
        parameter name (``"W"``; ``"layers[0].W"`` for a ``Net``). By default
        the built-in reference of each layer (``Linear``, the activations,
        ``Softmax``, ``LayerNorm``, ``BatchNorm1d`` in its current mode; not
        ``Dropout``, which is random); any other layer needs one.
    backend : {"autograd", "jax"}
        Which automatic differentiation runs ``forward``. JAX runs in
        float64 through its scoped 64-bit mode.
    dy : array_like, shape (n_samples, n_out), optional
        Gradient of the output; random normal by default.
    rtol, atol : float
        A coordinate agrees when ``|layer - autodiff| <= atol + rtol * |autodiff|``.
        Both sides are exact up to rounding, hence tolerances far tighter than
        a finite-difference check needs.
    seed : int, optional
        Seed of ``x`` and ``dy``; drawn and recorded in the report when not given.
    finite_differences : bool
        Also run ``assert_grad`` (central differences) with the same ``x``
        and ``dy``; its report is ``report.gradcheck``.

    Returns
    -------
    AutodiffReport
        When the output, ``dx`` and every parameter gradient agree.

    Raises
    ------
    AssertionError
        Naming the layer, the backend and each failing tensor with its worst
        index and both values, followed by the full report (and the
        finite-difference check's failure, if that fails).
    TypeError
        No reference forward for a layer that is not built in.

    Examples
    --------
    >>> import autograd.numpy as anp
    >>> import layerkit as lk
    >>> from layerkit.testing import compare_with_autodiff
    >>> report = compare_with_autodiff(lk.Linear(4, 3, rng=0), seed=0,
    ...                                forward=lambda p, x: x @ p["W"] + p["b"])
    """
    xnp, erf, vjp = _backend(backend)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    rng = np.random.default_rng(seed)
    who = repr(layer)
    if forward is not None and not callable(forward):
        raise TypeError(f"compare_with_autodiff: forward must be a callable fn(params, x), got "
                        f"{type(forward).__name__}")
    notes: list[str] = []
    reason = float32_reason(layer)
    try:
        checked = float64_copy(layer) if reason else layer
    except Exception as error:
        raise GradcheckError(f"compare_with_autodiff: {who} computes in float32 ({reason}) and could not be "
                             f"deep-copied to compare it in float64: {type(error).__name__}: {error}") from error
    # the built-in reference reads the layer's buffers (batch norm's running statistics): the float64 copy's
    reference = forward if forward is not None else _default_forward(checked, xnp, erf, who)
    if reason:
        notes.append(f"compared through a float64 copy ({reason}; the original layer is untouched)")
    target = CheckTarget(checked)
    x = _prepare_input(x, checked, who, rng, 1e-6, True, notes)
    params = target.parameters()
    arrays = [getattr(p.owner, p.attr) for p in params]
    try:
        y = np.asarray(target.forward(x.copy()))
        dy = _prepare_dy(dy, y.shape, who, rng)
        dx, grads = _analytic_gradients(target, x, dy, params, arrays, who)
    finally:
        target.restore()
    values = {p.name: np.array(a, dtype=np.float64, copy=True) for p, a in zip(params, arrays)}
    y_ref, d_params, dx_ref = vjp(reference, values, x.copy(), dy)
    y_ref = np.asarray(y_ref, dtype=np.float64)
    if y.shape != y_ref.shape:
        tensors = {"y": AutodiffTensor("y", None, y_ref, f"the reference forward returned shape {y_ref.shape}, "
                                                         f"the layer {y.shape}")}
    else:
        tensors = {"y": _entry("y", y, y_ref, "output")}
    tensors["x"] = _entry("x", dx, dx_ref, "dx")
    for param, grad in zip(params, grads):
        if param.name not in d_params:
            raise TypeError(f"compare_with_autodiff: the reference forward's gradients have no {param.name!r}")
        tensors[param.name] = _entry(param.name, grad, d_params[param.name], "d" + param.attr)
    report = AutodiffReport(who, backend, tensors, seed, notes=notes)
    failures = report.failures(rtol, atol)
    if failures:
        lines = [f"autodiff check failed for {who} (backend {backend}, rtol={rtol:g}, atol={atol:g}):"]
        lines += ["  " + tensor.describe_failure(rtol, atol) for tensor in failures]
        raise AssertionError("\n".join(lines) + "\n" + str(report))
    if finite_differences:
        report.gradcheck = assert_grad(layer, x, dy=dy, seed=seed)
    return report
