"""Numerical gradient checks of layers and nets: ``check_grad`` and ``assert_grad``.

How a check works
-----------------
The scalar ``f = sum(forward(x) * dy)`` (``dy`` random unless given) has the
gradient that ``backward(x, dy)`` returns for ``x`` and stores as ``d<name>``
for each parameter. Each is compared with central differences
``(f(p + eps) - f(p - eps)) / (2 eps)``, in float64; the difference of the two
outputs is taken before the sum, so untouched outputs cancel exactly.

Cost: every compared coordinate costs two forward passes, so at most
``max_coords`` coordinates per tensor are compared (a seeded sample when the
tensor is larger). On top of that, ``directions`` random unit directions per
tensor perturb *every* coordinate at once (Chainer-style directional
derivatives), which catches an error in coordinates outside the sample for
two forward passes each. A direction's tolerance scales with the terms its
derivative sums (``sum(|grad * v|)``), since that sum may cancel to near zero. Rows of a batch are never assumed independent, so
layers that mix samples (normalisation over the batch) are checked correctly.

Non-differentiable points: a layer lists the inputs where it has a kink in
``kinks`` (``ReLU.kinks == (0.0,)``). Inputs drawn by the checker keep at
least ``max(1e-3, 10 * eps)`` away from them, and a given input closer than
``10 * eps`` is nudged to that distance (reported in ``GradReport.notes``).
Kinks inside a net (a ReLU after a Linear) cannot be avoided that way, so a
coordinate whose one-sided differences ``(f(p+eps) - f(p)) / eps`` and
``(f(p) - f(p-eps)) / eps`` disagree by more than ``100 * eps`` (relative) is
left out of the comparison and counted as a kink instead.

Random layers (dropout): every ``numpy.random.Generator`` or ``RandomState``
held in a layer's attributes is rewound to its state at the start of the check
before every forward and backward pass, so each pass draws the same numbers;
for any other source of randomness pass ``reset``, a callable that receives the
layer and reseeds it. A layer whose forward still gives different outputs for
the same input, or changes its attributes, is refused with ``GradcheckError``.

Modes and state: a layer is checked in its current mode (``layer.training``)
through ``forward_pass``/``backward_pass``, each backward pass receiving the
``ctx`` of its forward pass. The arrays a layer lists in ``state_names``
(batch norm's running statistics, which a training-mode forward updates) are
put back before every pass and at the end, so they are not "changed state";
any other attribute a forward changes still gets the layer refused.

float32: a layer with float32 parameters or ``dtype`` is checked through a
float64 deep copy (``eps = 1e-6`` is below float32 resolution); the report says
so. The layer's own parameters are perturbed in place and restored bit for bit.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from layerkit.testing._target import CheckTarget, GradcheckError, float32_reason, float64_copy, layers_of
from layerkit.testing.report import DEFAULT_ATOL, DEFAULT_RTOL, GradReport, TensorReport
from layerkit.warnings import undeclared_gradients

__all__ = ["check_grad", "assert_grad", "random_input", "GradcheckError"]

DEFAULT_MAX_COORDS = 200


def _kink_margin(eps: float) -> float:
    return max(1e-3, 10 * eps)


def _push_from_kinks(x: np.ndarray, kinks: tuple[float, ...], margin: float) -> int:
    """Move entries of ``x`` closer than ``margin`` to a kink out to that distance, in place."""
    moved = np.zeros(x.shape, dtype=bool)
    for kink in kinks:
        offset = x - kink
        near = np.abs(offset) < margin
        x[near] = kink + np.where(offset[near] < 0, -margin, margin)
        moved |= near
    return int(np.count_nonzero(moved))


def random_input(shape: tuple[int, ...], *, kinks: tuple[float, ...] = (), margin: float = 1e-3,
                 seed: Any = None) -> np.ndarray:
    """Standard normal float64 input that keeps ``margin`` away from every kink.

    Parameters
    ----------
    shape : tuple of int
        Usually ``(n_samples, n_in)``.
    kinks : tuple of float
        Points of non-differentiability of the layer that receives it.
    margin : float
        Smallest distance of any entry to a kink.
    seed : None, int or numpy.random.Generator

    Returns
    -------
    x : ndarray, shape ``shape``, float64
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = rng.standard_normal(tuple(shape))
    _push_from_kinks(x, tuple(kinks), margin)
    return x


def _check_options(eps: Any, max_coords: Any, directions: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < 1:
        raise ValueError(f"check_grad: eps must be a float in (0, 1), got {eps!r}")
    if max_coords is not None and (isinstance(max_coords, bool) or not isinstance(max_coords, numbers.Integral)
                                   or max_coords < 1):
        raise ValueError(f"check_grad: max_coords must be a positive int or None (all), got {max_coords!r}")
    if isinstance(directions, bool) or not isinstance(directions, numbers.Integral) or directions < 0:
        raise ValueError(f"check_grad: directions must be an int >= 0, got {directions!r}")
    return float(eps)


def _prepare_input(x: Any, target_obj: Any, who: str, rng: np.random.Generator, eps: float,
                   nudge_kinks: bool, notes: list[str]) -> np.ndarray:
    first = layers_of(target_obj)[0] if layers_of(target_obj) else target_obj
    kinks = tuple(getattr(first, "kinks", ()))
    if getattr(first, "integer_input", False):  # indices (Embedding): discrete, no input gradient
        array = np.asarray(first.example_input(rng) if x is None else x)
        if array.dtype.kind not in "iu":
            raise TypeError(f"check_grad: x for {who} must hold integer indices, got dtype {array.dtype}")
        notes.append("x holds integer indices: only the parameters' gradients are checked")
        return np.array(array, dtype=np.int64, order="C", copy=True)
    if x is None:
        shape = getattr(first, "example_input_shape", None)
        if shape is None:
            raise GradcheckError(f"check_grad: {who} declares no example_input_shape; pass x")
        return random_input(shape, kinks=kinks, margin=_kink_margin(eps), seed=rng)
    array = np.asarray(x)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"check_grad: x for {who} must hold real numbers, got dtype {array.dtype}")
    if array.dtype == np.float32:
        notes.append("x was float32 and is checked in float64")
    array = np.array(array, dtype=np.float64, order="C", copy=True)
    if not np.isfinite(array).all():
        raise ValueError(f"check_grad: x for {who} contains NaN or infinite values")
    close = 10 * eps
    near = sum(int(np.count_nonzero(np.abs(array - kink) < close)) for kink in kinks)
    if near:
        if not nudge_kinks:
            raise GradcheckError(
                f"check_grad: {near} entries of x are within 10*eps={close:g} of a kink of {who} "
                f"(kinks={kinks}); the gradient is not defined there. Move them or pass nudge_kinks=True"
            )
        _push_from_kinks(array, kinks, close)
        notes.append(f"{near} entries of x were within {close:g} of a kink {kinks} and were moved to that distance")
    return array


def _refuse_stateful(target: CheckTarget, x: np.ndarray, who: str) -> np.ndarray:
    """Run forward three times and refuse a layer that changes or is not reproducible."""
    x_before = x.copy()
    y0 = np.asarray(target.forward(x))
    if not np.array_equal(x, x_before, equal_nan=True):
        raise GradcheckError(f"check_grad: {who}.forward modified its input x in place; a layer must not")
    if y0.dtype != np.float64:
        raise GradcheckError(
            f"check_grad: {who}.forward returned {y0.dtype} for a float64 input even in the checker's float64 "
            "copy; give the layer a float64 mode (a dtype attribute or float64 parameters) to check it"
        )
    if not np.isfinite(y0).all():
        raise GradcheckError(f"check_grad: {who}.forward returned NaN or infinite values for this x")
    before = target.state()
    y1 = np.asarray(target.forward(x.copy()))
    after = target.state()
    changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
    if changed:
        raise GradcheckError(
            f"check_grad: refusing {who}: its forward changes its own state between calls "
            f"(attributes {', '.join(changed)}). Layers keep no per-call state; backward receives x instead"
        )
    if y1.shape != y0.shape or not np.array_equal(y0, y1, equal_nan=True):
        gap = float(np.max(np.abs(y1 - y0))) if y1.shape == y0.shape else float("nan")
        raise GradcheckError(
            f"check_grad: refusing {who}: forward gave different outputs for the same x on two calls "
            f"(max difference {gap:.3g}); the layer is random or keeps state. Hold its randomness in a "
            "numpy.random.Generator attribute (the checker rewinds it before every pass) or pass "
            "reset=callable(layer) that reseeds it"
        )
    return y0


def _refuse_undeclared_gradients(target: CheckTarget, who: str) -> None:
    """A gradient ``d<name>`` stored for an array ``<name>`` missing from ``param_names`` is never
    checked (nor trained): fail, naming it, rather than pass a layer whose ``dW`` may be wrong."""
    for index, layer in enumerate(target.layers):
        missing = undeclared_gradients(layer)
        if missing:
            where = f"layers[{index}] ({layer!r})" if target.is_net else who
            names = ", ".join(missing)
            raise GradcheckError(
                f"check_grad: {where} stores the gradients {', '.join('d' + m for m in missing)} of its "
                f"arrays {names}, which param_names does not list, so they can be neither checked nor "
                f"trained; add param_names = "
                f"{tuple(list(getattr(layer, 'param_names', ()) or ()) + missing)!r} to the class"
            )


def _prepare_dy(dy: Any, shape: tuple[int, ...], who: str, rng: np.random.Generator) -> np.ndarray:
    if dy is None:
        return rng.standard_normal(shape)
    array = np.asarray(dy)
    if array.shape != shape:
        raise ValueError(f"check_grad: dy must have the shape of {who}'s output {shape}, got {array.shape}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"check_grad: dy must hold real numbers, got dtype {array.dtype}")
    return np.array(array, dtype=np.float64)


def _analytic_gradients(target: CheckTarget, x: np.ndarray, dy: np.ndarray, params: list[Any],
                        arrays: list[np.ndarray], who: str) -> tuple[Any, list[Any]]:
    """Run backward once; return ``dx`` and each parameter's stored gradient (``None`` if missing)."""
    dy_before = dy.copy()
    target.clear_gradients()
    dx = target.backward(x.copy(), dy)
    if not np.array_equal(dy, dy_before):
        raise GradcheckError(f"check_grad: {who}.backward modified dy in place; a layer must not")
    for param, array in zip(params, arrays):
        if getattr(param.owner, param.attr) is not array:
            raise GradcheckError(
                f"check_grad: refusing {who}: its forward or backward replaces parameter {param.name} "
                "instead of keeping the array (the checker perturbs it in place)"
            )
    return dx, [getattr(p.owner, "d" + p.attr, None) for p in params]


def _gradient_problem(grad: Any, shape: tuple[int, ...], what: str) -> str | None:
    if grad is None:
        return f"backward stored no gradient {what}" if what.startswith("d") else f"backward returned no {what}"
    grad = np.asarray(grad)
    if grad.shape != shape:
        hint = " (transposed?)" if grad.shape == shape[::-1] else ""
        return f"{what} has shape {grad.shape}, expected {shape}{hint}"
    if grad.dtype.kind not in "fiu":
        return f"{what} has dtype {grad.dtype}, expected floats"
    if not np.isfinite(grad).all():
        return f"{what} contains NaN or infinite values"
    return None


class _Probe:
    """Perturbs one array in place and measures the derivative of ``sum(forward * dy)``."""

    def __init__(self, array: np.ndarray, evaluate: Callable[[], np.ndarray], y0: np.ndarray,
                 dy: np.ndarray, eps: float) -> None:
        self.array, self.evaluate, self.y0, self.dy, self.eps = array, evaluate, y0, dy, eps
        self.base = array.copy()

    def _kinked(self, up: float, down: float) -> bool:
        return abs(up - down) > 100 * self.eps * max(1.0, abs(up), abs(down))

    def coordinate(self, flat: int) -> tuple[float, bool]:
        """Central difference along one coordinate, and whether it sits at a kink."""
        origin = self.base.flat[flat]
        plus, minus = origin + self.eps, origin - self.eps
        try:
            self.array.flat[flat] = plus
            y_plus = self.evaluate()
            self.array.flat[flat] = minus
            y_minus = self.evaluate()
        finally:
            self.array.flat[flat] = origin
        central = float(np.sum((y_plus - y_minus) * self.dy) / (plus - minus))
        up = float(np.sum((y_plus - self.y0) * self.dy) / (plus - origin))
        down = float(np.sum((self.y0 - y_minus) * self.dy) / (origin - minus))
        return central, self._kinked(up, down)

    def direction(self, v: np.ndarray) -> tuple[float, bool]:
        """Central difference along the unit direction ``v`` (all coordinates at once)."""
        try:
            np.copyto(self.array, self.base + self.eps * v)
            y_plus = self.evaluate()
            np.copyto(self.array, self.base - self.eps * v)
            y_minus = self.evaluate()
        finally:
            np.copyto(self.array, self.base)
        central = float(np.sum((y_plus - y_minus) * self.dy) / (2 * self.eps))
        up = float(np.sum((y_plus - self.y0) * self.dy) / self.eps)
        down = float(np.sum((self.y0 - y_minus) * self.dy) / self.eps)
        return central, self._kinked(up, down)

    def restored(self) -> bool:
        return self.array.tobytes() == self.base.tobytes()


def _compare(name: str, probe: _Probe, grad: Any, what: str, rng: np.random.Generator,
             max_coords: int | None, directions: int) -> TensorReport:
    shape = probe.array.shape
    report = TensorReport(name, shape)
    report.problem = _gradient_problem(grad, shape, what)
    if report.problem is not None:
        return report
    grad = np.asarray(grad, dtype=np.float64)
    size = probe.array.size
    if max_coords is None or size <= max_coords:
        coords = np.arange(size)
    else:
        coords = np.sort(rng.choice(size, size=max_coords, replace=False))
    kept, numeric = [], []
    for flat in coords:
        value, kinked = probe.coordinate(int(flat))
        if kinked:
            report.n_kinks += 1
        else:
            kept.append(int(flat))
            numeric.append(value)
    report.indices = np.array(kept, dtype=np.intp)
    report.numeric = np.array(numeric, dtype=np.float64)
    report.analytic = np.ravel(grad)[report.indices]
    for _ in range(directions if size else 0):
        v = rng.standard_normal(shape)
        v /= np.linalg.norm(v)
        value, kinked = probe.direction(v)
        if not kinked:
            report.directional.append((float(np.sum(grad * v)), value))
            report.directional_scale.append(float(np.sum(np.abs(grad * v))))
    if not probe.restored():  # pragma: no cover - guards the in-place restore above
        raise RuntimeError(f"check_grad: {name} was not restored exactly after perturbation")
    return report


def check_grad(
    layer: Any,
    x: Any = None,
    *,
    dy: Any = None,
    eps: float = 1e-6,
    seed: int | None = None,
    max_coords: int | None = DEFAULT_MAX_COORDS,
    directions: int = 1,
    reset: Callable[[Any], None] | None = None,
    nudge_kinks: bool = True,
) -> GradReport:
    """Compare a layer's analytic gradients with central finite differences.

    Parameters
    ----------
    layer : Layer or Net
        A layer (parameters from ``param_names``, gradients stored by
        ``backward`` as ``d<name>``) or a ``layerkit.Net`` (checked through its
        trace; parameters are named ``layers[i].<name>``).
    x : array_like, shape (n_samples, n_in), optional
        The input; by default a standard normal one of the layer's
        ``example_input_shape`` (the first layer's, for a net), away from kinks.
    dy : array_like, shape (n_samples, n_out), optional
        Weights of the checked scalar ``sum(forward(x) * dy)``; random normal by default.
    eps : float
        Finite-difference step (in float64).
    seed : int, optional
        Seed of ``dy``, ``x``, the coordinate samples and the directions.
        Drawn (and recorded in the report) when not given.
    max_coords : int or None
        Most coordinates compared per tensor; a seeded sample of larger
        tensors. ``None`` compares every coordinate.
    directions : int
        Random unit directions per tensor along which the derivative is also
        compared (each perturbs all coordinates at once).
    reset : callable, optional
        ``reset(layer)`` runs before every forward and backward pass, for
        randomness the checker cannot rewind by itself (it already rewinds
        numpy Generators and RandomStates held as attributes).
    nudge_kinks : bool
        Move entries of a given ``x`` that lie within ``10 * eps`` of one of
        the layer's ``kinks`` to that distance (and say so in the report)
        instead of raising ``GradcheckError``.

    Returns
    -------
    GradReport
        Per tensor (``x`` first, then the parameters): errors, the worst
        index, and the analytic and numeric values there. A first layer that
        takes integer indices (``integer_input``, as ``Embedding``) has no
        ``x`` entry: its parameters alone are checked, and ``x`` is by
        default the layer's ``example_input(rng)``.

    Raises
    ------
    GradcheckError
        The layer changes its own state in forward, is not reproducible, or
        returns float32 even in float64.
    """
    eps = _check_options(eps, max_coords, directions)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    rng = np.random.default_rng(seed)
    who = repr(layer)
    notes: list[str] = []
    reason = float32_reason(layer)
    try:
        checked = float64_copy(layer) if reason else layer
    except Exception as error:
        raise GradcheckError(
            f"check_grad: {who} computes in float32 ({reason}) and could not be deep-copied to check it "
            f"in float64: {type(error).__name__}: {error}"
        ) from error
    if reason:
        notes.append(f"({reason}; the original layer is untouched)")
    target = CheckTarget(checked, reset)
    x = _prepare_input(x, checked, who, rng, eps, nudge_kinks, notes)
    params = target.parameters()
    arrays = [getattr(p.owner, p.attr) for p in params]

    try:
        y0 = _refuse_stateful(target, x, who)
        dy = _prepare_dy(dy, y0.shape, who, rng)
        dx, grads = _analytic_gradients(target, x, dy, params, arrays, who)
        _refuse_undeclared_gradients(target, who)
        evaluate = lambda: np.asarray(target.forward(x))  # noqa: E731 - perturbed arrays are read in place
        tensors = {}
        if x.dtype.kind == "f":  # integer indices have no gradient
            tensors["x"] = _compare("x", _Probe(x, evaluate, y0, dy, eps), dx, "dx", rng, max_coords, directions)
        for param, array, grad in zip(params, arrays, grads):
            tensors[param.name] = _compare(param.name, _Probe(array, evaluate, y0, dy, eps), grad,
                                           "d" + param.attr, rng, max_coords, directions)
    finally:
        target.restore()
    return GradReport(who, tensors, eps, seed, "float32" if reason else None, notes)


def assert_grad(
    layer: Any,
    x: Any = None,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    **options: Any,
) -> GradReport:
    """Check gradients like ``check_grad`` and raise unless all agree.

    A coordinate agrees when ``|analytic - numeric| <= atol + rtol * |numeric|``
    (as ``numpy.isclose``).

    Parameters
    ----------
    layer, x
        As for ``check_grad``.
    rtol, atol : float
        Relative and absolute tolerance.
    **options
        Passed to ``check_grad``: ``dy``, ``eps``, ``seed``, ``max_coords``,
        ``directions``, ``reset``, ``nudge_kinks``.

    Returns
    -------
    GradReport
        When every tensor agrees.

    Raises
    ------
    AssertionError
        Naming the layer, each failing tensor (``x``, ``W``, ``layers[2].b``),
        its worst index and the analytic and numeric values there, followed by
        the full report.
    """
    report = check_grad(layer, x, **options)
    failures = report.failures(rtol, atol)
    if failures:
        lines = [f"gradient check failed for {report.layer} (rtol={rtol:g}, atol={atol:g}):"]
        lines += ["  " + tensor.describe_failure(rtol, atol) for tensor in failures]
        raise AssertionError("\n".join(lines) + "\n" + str(report))
    return report
