"""Weight initialisers of ``Linear``.

An initialiser takes the fan-in and fan-out, a ``numpy.random.Generator`` and
a dtype, and returns an array of shape ``(n_in, n_out)``. ``Linear(..., init=)``
accepts

- a name: ``"xavier"``/``"glorot"`` (uniform), ``"xavier_normal"``,
  ``"he"``/``"he_normal"``, ``"he_uniform"``, ``"lecun_normal"``,
  ``"lecun_uniform"``, ``"orthogonal"``, ``"zeros"`` (see ``INITIALIZERS``);
- a factory's result: ``normal(std)``, ``uniform(limit)``;
- any callable ``(n_in, n_out, rng, dtype) -> W``.

Every built-in initialiser and factory draws in float64 and casts to the
layer's dtype, so one seed gives one net in either dtype: a float32 layer's
weights are the float64 layer's, rounded (the estimators' ``dtype="float32"``
and ``"float64"`` start alike for one ``random_state``). A callable of your
own should do the same.

Names and factories are kept in configs and saved files (a factory as
``{"type": "normal", "std": 0.01}``); a plain callable is not, and saving a
net that uses one raises an error naming the layer.

>>> import layerkit as lk
>>> lk.Linear(256, 256, init="lecun_normal", rng=0).W.std().round(3)
0.062
>>> lk.Linear(4, 3, init=lk.init.normal(0.01)).get_config()["init"]
{'type': 'normal', 'std': 0.01}
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping

import numpy as np

__all__ = [
    "INITIALIZERS", "Initializer", "Normal", "Uniform", "Custom", "normal", "uniform", "resolve", "draw", "describe",
    "config_of",
    "xavier_uniform", "xavier_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
    "orthogonal", "zeros",
]


def xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Glorot and Bengio (2010): uniform on ``[-a, a]`` with ``a = sqrt(6 / (n_in + n_out))``.

    The variance ``a**2 / 3 = 2 / (n_in + n_out)`` balances the forward and the
    backward signal. (The ``sqrt(6 / (n_in * n_out))`` of the Radboud
    University Deep Learning course, assignment 1, section 1.4, divides by the
    product, which is not Glorot's rule and shrinks wide layers.)
    """
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def xavier_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Glorot normal: standard deviation ``sqrt(2 / (n_in + n_out))``."""
    return (rng.standard_normal(size=(n_in, n_out)) * np.sqrt(2.0 / (n_in + n_out))).astype(dtype, copy=False)


def he_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """He et al. (2015): normal with standard deviation ``sqrt(2 / n_in)``, for ReLU nets."""
    return (rng.standard_normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype, copy=False)


def he_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """He uniform: on ``[-a, a]`` with ``a = sqrt(6 / n_in)`` (variance ``2 / n_in``)."""
    a = np.sqrt(6.0 / n_in)
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def lecun_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """LeCun normal, ``N(0, 1/n_in)``: the variance of a layer's output equals its input's."""
    return (rng.standard_normal(size=(n_in, n_out)) * np.sqrt(1.0 / n_in)).astype(dtype, copy=False)


def lecun_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """LeCun uniform: on ``[-a, a]`` with ``a = sqrt(3 / n_in)`` (variance ``1 / n_in``)."""
    a = np.sqrt(3.0 / n_in)
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def orthogonal(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR decomposition of a Gaussian one.

    ``W.T @ W`` is the identity when ``n_in >= n_out``, ``W @ W.T`` otherwise.
    The signs of ``R``'s diagonal are folded into ``Q`` so the distribution is
    uniform (Haar) over orthogonal matrices.
    """
    rows, cols = max(n_in, n_out), min(n_in, n_out)
    q, r = np.linalg.qr(rng.standard_normal(size=(rows, cols)))
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    w = q if n_in >= n_out else q.T
    return np.ascontiguousarray(w, dtype=dtype)


def zeros(n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """All zeros (every unit of the layer then learns the same thing: for output layers and tests)."""
    return np.zeros((n_in, n_out), dtype=dtype)


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
}
"""The initialisers ``Linear`` accepts by name."""


def _positive_real(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{who}: expected a finite real number > 0, got {type(value).__name__} {value!r}")
    return float(value)


class Initializer:
    """A parametrised initialiser that configs and saved files can keep (see ``normal``, ``uniform``).

    Subclasses set ``name`` (the key under ``FACTORIES``) and implement
    ``__call__``; ``get_config()`` is ``{"type": name, **arguments}``.
    """

    name: str = ""

    def __call__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
        raise NotImplementedError

    def arguments(self) -> dict[str, Any]:
        """The factory's arguments."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """``{"type": name, **arguments}``: what a config stores; ``resolve`` rebuilds it."""
        return {"type": self.name, **self.arguments()}

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and other.arguments() == self.arguments()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.arguments().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{value!r}" for value in self.arguments().values())
        return f"layerkit.init.{self.name}({args})"


class Normal(Initializer):
    """``N(0, std**2)`` for every weight; made by ``normal(std)``."""

    name = "normal"

    def __init__(self, std: float) -> None:
        self.std = _positive_real(std, "layerkit.init.normal: std")

    def __call__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
        return (rng.standard_normal(size=(n_in, n_out)) * self.std).astype(dtype, copy=False)

    def arguments(self) -> dict[str, Any]:
        return {"std": self.std}


class Uniform(Initializer):
    """Uniform on ``[-limit, limit]`` for every weight; made by ``uniform(limit)``."""

    name = "uniform"

    def __init__(self, limit: float) -> None:
        self.limit = _positive_real(limit, "layerkit.init.uniform: limit")

    def __call__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
        return rng.uniform(-self.limit, self.limit, size=(n_in, n_out)).astype(dtype, copy=False)

    def arguments(self) -> dict[str, Any]:
        return {"limit": self.limit}


class Custom:
    """What a layer keeps of a plain callable initialiser once it has run: its name only.

    The callable itself is not kept, so that a layer pickles (a lambda or a
    local function does not) and holds no reference to the closure; a config
    cannot rebuild it, and says so.
    """

    def __init__(self, function: Callable[..., np.ndarray]) -> None:
        self.name = getattr(function, "__qualname__", None) or type(function).__name__

    def __eq__(self, other: Any) -> bool:
        return type(other) is Custom and other.name == self.name

    def __hash__(self) -> int:
        return hash((Custom, self.name))

    def __repr__(self) -> str:
        return self.name


def normal(std: float) -> Normal:
    """Initialiser drawing every weight from ``N(0, std**2)`` (``normal(1.0)``: the seed's ``N(0, 1)``).

    Parameters
    ----------
    std : float
        Standard deviation, > 0.

    Returns
    -------
    Normal
        Pass it as ``Linear(..., init=normal(0.01))``; configs keep it.
    """
    return Normal(std)


def uniform(limit: float) -> Uniform:
    """Initialiser drawing every weight uniformly from ``[-limit, limit]``.

    Parameters
    ----------
    limit : float
        Half-width of the interval, > 0.

    Returns
    -------
    Uniform
    """
    return Uniform(limit)


FACTORIES: dict[str, type[Initializer]] = {"normal": Normal, "uniform": Uniform}
"""The factories a config may name: ``{"type": "normal", "std": 0.1}``."""


def resolve(init: Any, who: str = "init") -> tuple[Any, Callable[..., np.ndarray]]:
    """``(what to keep, the function to call)`` for an ``init`` argument.

    Parameters
    ----------
    init : str, Initializer, dict or callable
        A name of ``INITIALIZERS``, a factory's result, a factory's config
        ``{"type": "normal", "std": 0.1}``, or a callable
        ``(n_in, n_out, rng, dtype) -> W``.
    who : str
        The caller, for messages.

    Raises
    ------
    ValueError
        Unknown name or factory, or bad factory arguments.
    TypeError
        Anything else.
    """
    if isinstance(init, str):
        function = INITIALIZERS.get(init.lower())
        if function is None:
            raise ValueError(f"{who}: init must be one of {sorted(INITIALIZERS)}, layerkit.init.normal(std), "
                             f"layerkit.init.uniform(limit) or a callable (n_in, n_out, rng, dtype) -> W; "
                             f"got {init!r}")
        return init.lower(), function
    if isinstance(init, Mapping):
        kind = init.get("type")
        factory = FACTORIES.get(kind) if isinstance(kind, str) else None
        if factory is None:
            raise ValueError(f"{who}: an init given as a dict must be a factory's config with 'type' one of "
                             f"{sorted(FACTORIES)}, got {dict(init)!r}")
        try:
            made = factory(**{key: value for key, value in init.items() if key != "type"})
        except TypeError as error:
            raise ValueError(f"{who}: bad arguments for layerkit.init.{kind}: {error}") from error
        return made, made
    if isinstance(init, Initializer):
        return init, init
    if callable(init):
        return Custom(init), init
    raise TypeError(f"{who}: init must be a name (str), layerkit.init.normal(std), layerkit.init.uniform(limit) "
                    f"or a callable (n_in, n_out, rng, dtype) -> W; got {type(init).__name__} {init!r}")


def draw(function: Callable[..., np.ndarray], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any,
         who: str, axes: str = "(fan_in, fan_out)") -> np.ndarray:
    """Call an initialiser and check what it returned.

    Parameters
    ----------
    function : callable
        ``function(fan_in, fan_out, rng, dtype)``, as ``resolve`` returns it.
    fan_in, fan_out : int
    rng : numpy.random.Generator
    dtype : numpy dtype
    who : str
        The layer and its ``init``, named in messages.
    axes : str
        How messages name the two axes (``"(n_in, n_out)"`` for ``Linear``).

    Returns
    -------
    ndarray of shape (fan_in, fan_out)
        As the initialiser returned it: real and finite.
    """
    drawn = np.asarray(function(fan_in, fan_out, rng, dtype))
    if drawn.shape != (fan_in, fan_out):
        raise ValueError(f"{who} returned shape {drawn.shape}, expected {axes} = {(fan_in, fan_out)}")
    if drawn.dtype.kind not in "fiu":
        raise TypeError(f"{who} returned dtype {drawn.dtype}, expected real numbers")
    if not np.isfinite(drawn).all():
        raise ValueError(f"{who} returned NaN or infinite weights")
    return drawn


def describe(init: Any) -> Any:
    """What a config keeps of a resolved ``init``: the name, the factory's config, or ``None`` (a ``Custom``)."""
    if isinstance(init, str):
        return init
    if isinstance(init, Initializer):
        return init.get_config()
    return None


def config_of(init: Any, layer: Any) -> Any:
    """``describe(init)`` for ``layer.get_config()``; a ``TypeError`` naming ``layer`` for a plain callable."""
    described = describe(init)
    if described is None:
        raise TypeError(
            f"{layer!r}: its init {init!r} is a plain callable, which a config or file cannot keep; "
            "use an initialiser name, layerkit.init.normal(std) or layerkit.init.uniform(limit), or "
            "save the architecture yourself")
    return described
