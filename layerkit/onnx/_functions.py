"""Functions composed from ONNX ops that have float32 and float64 kernels in onnxruntime, at full precision.

Each takes a ``Builder`` and a tensor name and returns the output name.
``log1p`` and ``expm1`` use Kahan's tricks, ``erf``/``erfc`` Cephes' rational
approximations; ``Builder`` exposes ``sigmoid``, ``softplus``, ``expm1`` and
``log1p`` to plugin hooks.
"""
from __future__ import annotations

from typing import Any

# Cephes (public domain, S. L. Moshier, ndtr.c): erf(x) = x T(x^2) / U(x^2) for
# |x| < 1; erfc(x) = exp(-x^2) P(x) / Q(x) for 1 <= x < 8 and exp(-x^2) R(x) / S(x)
# beyond (U, Q and S monic, leading 1 omitted). Relative error ~1e-16.
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)
_ERFC_R = (5.64189583547755073984E-1, 1.27536670759978104416E0, 5.01905042251180477414E0,
           6.16021097993053585195E0, 7.40974269950448939160E0, 2.97886665372100240670E0)
_ERFC_S = (2.26052863220117276590E0, 9.39603524938001434673E0, 1.20489539808096656605E1,
           1.70814450747565897222E1, 9.60896809063285878198E0, 3.36907645100081516050E0)


# ---------------------------------------------------------------------- helpers
def where_less(b: Any, x: str, bound: float, low: str) -> str:
    """``low`` where ``x < bound``, else ``x`` (NaN stays NaN, unlike Max)."""
    return b.add_node("Where", [b.add_node("Less", [x, b.scalar(bound)]), low, x])


def expm1(b: Any, x: str) -> str:
    """``exp(x) - 1`` to full relative precision near 0 (Kahan: ``(u - 1) x / log(u)``), for x <= 0 (NaN above ~709)."""
    xc = where_less(b, x, -50.0, b.scalar(-50.0))  # expm1 is -1 to the last bit below -37
    u = b.add_node("Exp", [xc])
    d = b.add_node("Sub", [u, b.scalar(1.0)])
    ratio = b.add_node("Div", [b.add_node("Mul", [d, xc]), b.add_node("Log", [u])])
    return b.add_node("Where", [b.add_node("Equal", [d, b.scalar(0.0)]), xc, ratio])


def log1p(b: Any, u: str) -> str:
    """``log(1 + u)`` to full relative precision for small u >= 0 (Kahan: ``log(w) u / (w - 1)``)."""
    w = b.add_node("Add", [u, b.scalar(1.0)])
    d = b.add_node("Sub", [w, b.scalar(1.0)])
    ratio = b.add_node("Div", [b.add_node("Mul", [b.add_node("Log", [w]), u]), d])
    return b.add_node("Where", [b.add_node("Equal", [d, b.scalar(0.0)]), u, ratio])


def one_plus_erf(b: Any, z: str) -> str:
    """``1 + erf(z)`` without the cancellation of ``1 + erf`` for negative z (``erfc(-z)``), float64-exact."""
    z2 = b.add_node("Mul", [z, z])
    small = b.add_node("Add", [b.scalar(1.0), b.add_node("Div", [
        b.add_node("Mul", [z, b.polynomial(z2, _ERF_T)]), b.polynomial(z2, _ERF_U, monic=True)])])
    a = b.add_node("Abs", [z])
    # erfc is 0 in float64 beyond 27; clamping keeps the polynomials finite (NaN is not clamped)
    ac = b.add_node("Where", [b.add_node("Greater", [a, b.scalar(30.0)]), b.scalar(30.0), a])
    e = b.add_node("Exp", [b.add_node("Neg", [b.add_node("Mul", [ac, ac])])])
    near = b.add_node("Div", [b.polynomial(ac, _ERFC_P), b.polynomial(ac, _ERFC_Q, monic=True)])
    far = b.add_node("Div", [b.polynomial(ac, _ERFC_R), b.polynomial(ac, _ERFC_S, monic=True)])
    erfc = b.add_node("Mul", [e, b.add_node("Where", [b.add_node("Less", [ac, b.scalar(8.0)]), near, far])])
    large = b.add_node("Where", [b.add_node("Less", [z, b.scalar(0.0)]), erfc,
                                 b.add_node("Sub", [b.scalar(2.0), erfc])])
    return b.add_node("Where", [b.add_node("Less", [a, b.scalar(1.0)]), small, large])


def sigmoid(b: Any, x: str) -> str:
    """``e = exp(-|x|)``; ``1 / (1 + e)`` for x >= 0, ``e / (1 + e)`` below: no overflow, full relative precision."""
    e = b.add_node("Exp", [b.add_node("Neg", [b.add_node("Abs", [x])])])
    r = b.add_node("Div", [b.scalar(1.0), b.add_node("Add", [b.scalar(1.0), e])])
    return b.add_node("Where", [b.add_node("GreaterOrEqual", [x, b.scalar(0.0)]), r,
                                b.add_node("Mul", [e, r])], hint="sigmoid")


def softplus(b: Any, x: str, beta: float = 1.0, threshold: float | None = None) -> str:
    """``log1p(exp(beta x)) / beta``, and ``x`` where ``beta x > threshold`` (PyTorch's ``Softplus``).

    ``log1p(exp(z))`` is written ``max(z, 0) + log1p(exp(-|z|))``, which never overflows.
    """
    z = b.add_node("Mul", [x, b.scalar(beta)]) if beta != 1.0 else x
    tail = log1p(b, b.add_node("Exp", [b.add_node("Neg", [b.add_node("Abs", [z])])]))
    soft = b.add_node("Add", [b.add_node("Relu", [z]), tail])
    if beta != 1.0:
        soft = b.add_node("Div", [soft, b.scalar(beta)])
    if threshold is None:
        return soft
    above = b.add_node("Greater", [z, b.scalar(threshold)])
    return b.add_node("Where", [above, x, soft], hint="softplus")
