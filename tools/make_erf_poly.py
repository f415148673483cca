"""Write ``layerkit/_kernels/erf.h``: a lookup-free, branch-free erf that GCC vectorises.

Run from the repository root (``python tools/make_erf_poly.py``) after changing
a degree or a range; needs mpmath (a dependency of sympy, which torch
installs). Two approximations, both computed for every lane and one selected:

* ``|x| < 1``: ``erf(x) = x + x R(x^2)``, R a polynomial of degree
  ``SMALL_DEGREE`` fitted to ``erf(sqrt z) / sqrt z - 1`` on ``z`` in [0, 1];
* ``1 <= |x|``: ``erf(x) = 1 - exp(-x^2) Q(t)``, ``t = 1 / (1 + x / 2)``,
  Q a polynomial of degree ``LARGE_DEGREE`` in ``t - T0`` fitted to
  ``erfcx(x) = erfc(x) exp(x^2)`` for ``x`` in [1, 6] (erf rounds to 1 beyond).

The fits are mpmath's Chebyshev fits (``mpmath.chebyfit``) with 40 digits;
the coefficients are rounded once to double and the rounded polynomials are
checked against mpmath on a dense grid before the header is written.

The float32 section (``lk_erff``, and ``lk_gelu_phif`` for GELU's float32
loops) has the same two forms with shorter polynomials, coefficients rounded
to float and float arithmetic, so a vector holds twice the lanes:

* erf: ``x + x R(x^2)`` below ``F_SMALL``, ``1 - exp(-x^2) Q(t)`` on
  [``F_SMALL``, 4] (erf rounds to 1 in float beyond);
* GELU's ``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` is fitted in x itself, so
  ``x / sqrt 2`` is never rounded: ``1/2 + x R(x^2)`` for ``|x|`` below
  ``G_SMALL``, and ``Phi(-|x|) = exp(-x^2 / 2) t Q(t)``, ``t = 1 / (1 + |x| / 2)``,
  on [``G_LOW``, 15] (``exp(-x^2 / 2)`` is 0 in float beyond 14.5), which
  gives GELU's tail for negative x with a relative error instead of
  ``1 + erf``'s cancellation. The factor t leaves Q between 0.2 and 0.42
  (a Q with t inside it would sum terms to near 0 at large |x| and lose
  several ulps there), and GELU's tail ``|x| Phi(-|x|) = 2 (1 - t) Q e``
  needs neither x nor a rounded 1 / t. GELU's ``exp(-x^2 / 2)`` is its own,
  inline: a degree-``G_EXP_DEGREE`` fit of exp on the reduced argument, the
  value carried times ``2^G_SCALE`` (and t times ``2^-G_SCALE``) so that one
  scale factor rebuilds it and no clamp or second factor is needed for the
  subnormal range (a single-approximation Phi(-|x|) = e t Q(t) on [0, 15] was
  tried: 10 instructions fewer, but 5 ulp near 0, where t's rounding weighs
  most, against 1/2 + x R's 2).
"""
from __future__ import annotations

import pathlib

import mpmath as mp

mp.mp.dps = 40
SMALL_DEGREE = 12
LARGE_DEGREE = 17
P = mp.mpf(1) / 2                                # t = 1 / (1 + P x)
T_LOW, T_HIGH = 1 / (1 + 6 * P), 1 / (1 + P)     # t over x in [1, 6]
T0 = (T_LOW + T_HIGH) / 2
HALF = (T_HIGH - T_LOW) / 2
OUT = pathlib.Path(__file__).resolve().parent.parent / "layerkit" / "_kernels" / "erf.h"


def small_target(z: mp.mpf) -> mp.mpf:
    if z == 0:
        return 2 / mp.sqrt(mp.pi) - 1
    r = mp.sqrt(z)
    return mp.erf(r) / r - 1


def large_target(s: mp.mpf) -> mp.mpf:
    x = (1 / (T0 + s) - 1) / P
    return mp.erfc(x) * mp.exp(x * x)


def rounded(poly: list) -> list[float]:
    """Coefficients rounded to double, lowest degree first."""
    return [float(c) for c in reversed(poly)]


def horner(coef: list[float], v: mp.mpf) -> mp.mpf:
    p = mp.mpf(coef[-1])
    for c in reversed(coef[:-1]):
        p = p * v + mp.mpf(c)
    return p


# ---------------------------------------------------------------- float32
F_SMALL, F_SMALL_DEGREE, F_LARGE_DEGREE, F_P = 0.875, 5, 7, mp.mpf(1) / 2
G_SMALL, G_LOW, G_HIGH, G_SMALL_DEGREE, G_LARGE_DEGREE, G_P = 0.75, 0.75, 15, 4, 9, mp.mpf(1) / 2   # GELU: one threshold
G_EXP_DEGREE, G_EXP_R = 6, mp.mpf("0.35")   # exp(r) = 1 + r + r^2 E(r), |r| <= ln 2 / 2 (+ rounding)
G_HIGH_BITS = 0x41700000                      # 15.0f
G_SCALE = 64                                  # GELU's exp(-x^2 / 2) is carried times 2^64


def to_float32(v) -> float:
    """``v`` rounded to float32 (through a double: the two roundings differ only at near-ties)."""
    import numpy as np

    return float(np.float32(float(v)))


def fit32(target, low, high, degree: int, relative_to=None) -> list[float]:
    """Polynomial coefficients in float32, lowest degree first, fitted to ``target`` on [low, high].

    Least squares of the relative error (relative to ``relative_to(v)``, default the target) on
    Chebyshev points, the coefficients rounded to float32 one at a time from the lowest degree,
    the higher ones refitted after each rounding so that they absorb its error (rounding them all
    at once costs several times the fit's own error).
    """
    import numpy as np

    n = 600
    nodes = [(low + high) / 2 + (high - low) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * n)) for k in range(n)]
    v = np.array([float(u) for u in nodes])
    f = np.array([float(target(u)) for u in nodes])
    w = 1 / np.abs(np.array([float((relative_to or target)(u)) for u in nodes]))
    scale = max(abs(float(low)), abs(float(high)))
    basis = (v[:, None] / scale) ** np.arange(degree + 1)
    fixed: list[float] = []
    for k in range(degree + 1):
        rest = f - (basis[:, :k] @ np.array([c * scale ** j for j, c in enumerate(fixed)]) if k else 0)
        sol, *_ = np.linalg.lstsq(basis[:, k:] * w[:, None], rest * w, rcond=None)
        fixed.append(to_float32(sol[0] / scale ** k))
    return fixed


def shifted(p: mp.mpf, low, high, function):
    """The centre t0 and half-width of t = 1 / (1 + p x) over x in [low, high].

    t0 is the float32 within 2000 ulps of the centre where ``function`` (of x) is closest to a
    float32: Q(0), the constant coefficient, is then a float with no rounding error, which no
    other coefficient could make up for at s = 0.
    """
    import numpy as np

    t_low, t_high = 1 / (1 + p * high), 1 / (1 + p * low)
    centre = np.float32(float((t_low + t_high) / 2))

    def miss(t0: np.float32) -> float:
        value = function((1 / mp.mpf(float(t0)) - 1) / p)
        nearest = np.float32(float(value))
        return float(abs(value - mp.mpf(float(nearest)))) / float(np.spacing(nearest))

    candidates = [centre + np.float32(k) * np.spacing(centre) for k in range(-2000, 2001)]
    t0 = min(candidates, key=miss)
    return float(t0), (t_high - t_low) / 2


def float32_section() -> tuple[list[str], dict]:
    """The float32 kernels' lines, and the fits' worst relative errors (rounded coefficients, exact arithmetic)."""
    sqrt2 = mp.sqrt(2)
    erf_small = fit32(small_target, 0, mp.mpf(F_SMALL) ** 2, F_SMALL_DEGREE, lambda z: 1 + small_target(z))
    f_t0, f_half = shifted(F_P, F_SMALL, 4, lambda x: mp.erfc(x) * mp.exp(x * x))
    erf_large = fit32(lambda s: (lambda x: mp.erfc(x) * mp.exp(x * x))((1 / (f_t0 + s) - 1) / F_P),
                      -f_half, f_half, F_LARGE_DEGREE)

    def phi_small_target(z):   # (Phi(sqrt z) - 1/2) / sqrt z = erf(r / sqrt 2) / (2 r)
        return 1 / (sqrt2 * mp.sqrt(mp.pi)) if z == 0 else mp.erf(mp.sqrt(z) / sqrt2) / (2 * mp.sqrt(z))

    def phi_tail(x):            # Phi(-x) exp(x^2 / 2) / t, t = 1 / (1 + x / 2)
        return mp.erfc(x / sqrt2) / 2 * mp.exp(x * x / 2) * (1 + G_P * x)

    def phi_weight(z):         # the error of Phi = 1/2 + x R, relative to Phi on the side used
        r = mp.sqrt(z)
        return mp.ncdf(-r if r < G_LOW else r) / max(r, mp.mpf(10) ** -30)

    gelu_small = fit32(phi_small_target, 0, mp.mpf(G_SMALL) ** 2, G_SMALL_DEGREE, phi_weight)
    g_t0, g_half = shifted(G_P, G_LOW, G_HIGH, phi_tail)
    gelu_large = fit32(lambda s: phi_tail((1 / (g_t0 + s) - 1) / G_P), -g_half, g_half, G_LARGE_DEGREE)
    # E(r) = (exp(r) - 1 - r) / r^2, its error weighted as the error it makes in exp(r)
    gexp = fit32(lambda r: (mp.exp(r) - 1 - r) / (r * r), -G_EXP_R, G_EXP_R, G_EXP_DEGREE - 2,
                 lambda r: mp.exp(r) / (r * r))
    worst = {
        "erf_small": max(abs(x + x * horner(erf_small, x * x) - mp.erf(x)) / mp.erf(x)
                         for x in mp.linspace(mp.mpf(1) / 1000, F_SMALL, 300)),
        "erf_large": max(abs(horner(erf_large, 1 / (1 + F_P * x) - f_t0) / (mp.erfc(x) * mp.exp(x * x)) - 1)
                         for x in mp.linspace(F_SMALL, 4, 300)),
        "gelu_small": max(abs(mp.mpf(1) / 2 + x * horner(gelu_small, x * x) - mp.ncdf(x)) / mp.ncdf(x)
                          for x in mp.linspace(-G_LOW, G_SMALL, 600)),
        "gelu_large": max(abs(horner(gelu_large, 1 / (1 + G_P * x) - g_t0) / phi_tail(x) - 1)
                          for x in mp.linspace(G_LOW, G_HIGH, 300)),
        "gelu_exp": max(abs((1 + r + r * r * horner(gexp, r)) / mp.exp(r) - 1)
                        for r in mp.linspace(-G_EXP_R, G_EXP_R, 601)),
    }
    assert all(v < mp.mpf("2e-8") for v in worst.values()), worst

    def body(name: str, coef: list[float], var: str) -> list[str]:
        out = [f"    float {name} = {coef[-1]!r}f;"]
        out += [f"    {name} = {name} * {var} + {c!r}f;" for c in reversed(coef[:-1])]
        return out

    def e(key: str) -> str:
        return mp.nstr(worst[key], 2)

    lines = [
        "/* ------------------------------------------------------------------ float32, in float lanes */",
        "",
        "/* erf(x) in float arithmetic, twice the lanes of lk_erf, both forms computed and one selected:",
        f"     |x| < {F_SMALL}: x + x R(x^2), R of degree {F_SMALL_DEGREE} (relative error of erf below {e('erf_small')});",
        f"     |x| >= {F_SMALL}: 1 - exp(-x^2) Q(t - {f_t0!r}), t = 1 / (1 + x / 2), Q of degree {F_LARGE_DEGREE} fitted",
        f"               to erfc(x) exp(x^2) on [{F_SMALL}, 4] (relative error below {e('erf_large')}); x is clamped to 4,",
        "               where erf rounds to 1; exp(-x^2) = exp(-h^2 - (x - h)(x + h)), h = x cut to 12",
        "               bits so h^2 is exact, through lk_expf_hl.",
        "   (Errors of the fits with the float coefficients, before float arithmetic.) Measured",
        "   (tests/test_simd_accuracy.py): <= 1 ulp of float32 against mpmath. NaN gives NaN,",
        "   erf(+-inf) = +-1, erf(-0) = -0. */",
        "LK_INLINE float lk_erff(float x) {",
        "    float a = __builtin_fabsf(x);",
        f"    float as = a < {F_SMALL}f ? a : {F_SMALL}f;",
        "    float z = as * as;",
        *body("r", erf_small, "z"),
        "    float small = as + as * r;",
        "    float al = a > 4.0f ? 4.0f : a;   /* keeps NaN */",
        "    float h = lk_from_bits_f(lk_to_bits_f(al) & 0xFFFFF000u);",
        "    float ex = lk_expf_hl(-(h * h), -((al - h) * (al + h)));",
        f"    float s = 1.0f / (1.0f + {float(F_P)!r}f * al) - {f_t0!r}f;",
        *body("q", erf_large, "s"),
        "    float large = 1.0f - ex * q;",
        f"    return __builtin_copysignf(a < {F_SMALL}f ? small : large, x);",
        "}",
        "",
        "/* The pieces of the normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2 that GELU's float32 loops",
        "   combine, fitted in x (x / sqrt 2 is never rounded):",
        f"     *ph = 1/2 + x R(x^2), R of degree {G_SMALL_DEGREE}, for |x| < {G_SMALL} (relative error of Phi below",
        f"           {e('gelu_small')} on [-{G_LOW}, {G_SMALL}], where it is used);",
        f"     *e  = exp(-x^2 / 2) 2^{G_SCALE} (the normal density without its 1 / sqrt(2 pi), scaled),",
        "           |x| clamped to 15 (exp(-x^2 / 2) is 0 in float beyond 14.5): exp(-h^2 / 2 - (x - h)(x + h) / 2),",
        "           h = |x| cut to 12 bits so h^2 is exact, reduced as in lk_expf_hl, with",
        "           exp(r) = 1 + r + r^2 E(r) on |r| <= %s, E of degree %d (relative error below %s); the" % (
            mp.nstr(G_EXP_R, 2), G_EXP_DEGREE - 2, e('gelu_exp')),
        f"           factor 2^{G_SCALE} keeps it a normal float for every |x| <= 15, so one scale factor",
        f"           2^(n + {G_SCALE}) rebuilds it (no second one for subnormal results);",
        f"     *t  = 2^-{G_SCALE} / (1 + |x| / 2) (the same division), so that e t, the product that can be",
        "           subnormal, needs no rescaling and is rounded once;",
        f"     *q  = Q(t - {g_t0!r}), Q of degree {G_LARGE_DEGREE} fitted to Phi(-|x|) exp(x^2 / 2) / t on",
        f"           [{G_LOW}, {G_HIGH}] (relative error below {e('gelu_large')}), so Phi(-|x|) = *e *t *q with no",
        f"           cancellation, |x| Phi(-|x|) = (2^-{G_SCALE - 1} - 2 *t) *q *e (1 - t > 0.27: no cancellation",
        "           either, and no 1 / t rounded), and Phi(|x|) = 1 - *e *t *q.",
        f"   GELU uses the first for |x| < {G_SMALL}, where 1/2 + x R loses at most a bit to cancellation for",
        "   x < 0 (one threshold for both signs: one compare and one blend fewer). */",
        "LK_INLINE void lk_gelu_phif(float x, float* ph, float* e, float* t, float* q) {",
        "    float a = __builtin_fabsf(x);",
        f"    float as = a < {G_SMALL}f ? x : {G_SMALL}f;",
        "    float z = as * as;",
        *body("r", gelu_small, "z"),
        "    *ph = 0.5f + as * r;",
        "    /* |x| clamped to 15 in integers, one min instruction (a float select GCC turned into blends",
        "       of the results); NaN gives 15 here, and reaches the results through x */",
        "    uint32_t ua = lk_to_bits_f(a);",
        f"    float al = lk_from_bits_f(ua < {G_HIGH_BITS:#x}u ? ua : {G_HIGH_BITS:#x}u);",
        "    float h = lk_from_bits_f(lk_to_bits_f(al) & 0xFFFFF000u);",
        "    float hi = -0.5f * (h * h), lo = -0.5f * ((al - h) * (al + h));",
        "    const float magic = 0x1.8p23f;",
        "    float tn = (hi + lo) * 1.44269504088896341f + magic;",
        "    float n = tn - magic;",
        "    float rr = ((hi - n * 0.693359375f) - n * -2.12194440e-4f) + lo;",
        *body("c", gexp, "rr"),
        "    float em = rr + (rr * rr) * c;",
        f"    float sc = lk_from_bits_f((lk_to_bits_f(tn) - lk_to_bits_f(magic) + {127 + G_SCALE}u) << 23);   /* 2^(n + {G_SCALE}) */",
        "    *e = sc * em + sc;",
        f"    *t = 0x1p-{G_SCALE}f / (1.0f + {float(G_P)!r}f * al);   /* 2^-{G_SCALE} RN(1 / (1 + |x| / 2)), exactly */",
        f"    float s = *t * 0x1p{G_SCALE}f - {g_t0!r}f;",
        *body("p", gelu_large, "s"),
        "    *q = p;",
        "}",
        "",
        f"#define LK_GELU_F_SMALL {G_SMALL}f",
        f"#define LK_GELU_F_LOW {G_LOW}f",
        f"#define LK_GELU_F_ESCALE 0x1p-{G_SCALE}f   /* lk_gelu_phif's *e times this is exp(-x^2 / 2) */",
        f"#define LK_GELU_F_TAIL1 0x1p-{G_SCALE - 1}f   /* 2 (1 - t) = LK_GELU_F_TAIL1 - 2 *t */",
        "",
    ]
    return lines, worst


def main() -> None:
    small = rounded(mp.chebyfit(small_target, [0, 1], SMALL_DEGREE + 1))
    large = rounded(mp.chebyfit(large_target, [-HALF, HALF], LARGE_DEGREE + 1))
    # worst relative errors of the rounded polynomials: of erf on [0, 1], of erfc on [1, 6]
    worst_small = max(abs(x + x * horner(small, x * x) - mp.erf(x)) / mp.erf(x)
                      for x in mp.linspace(mp.mpf(1) / 1000, 1, 400))
    worst_large = max(abs(horner(large, 1 / (1 + P * x) - T0) - mp.erfc(x) * mp.exp(x * x))
                      / (mp.erfc(x) * mp.exp(x * x)) for x in mp.linspace(1, 6, 400))
    assert worst_small < mp.mpf("5e-17") and worst_large < mp.mpf("2e-16"), (worst_small, worst_large)

    def body(name: str, coef: list[float], var: str) -> list[str]:
        out = [f"    double {name} = {coef[-1]!r};"]
        out += [f"    {name} = {name} * {var} + {c!r};" for c in reversed(coef[:-1])]
        return out

    f32_lines, worst32 = float32_section()
    lines = [
        "/* Generated by tools/make_erf_poly.py: do not edit. */",
        "#ifndef LAYERKIT_ERF_H",
        "#define LAYERKIT_ERF_H",
        '#include "vecmath.h"',
        "",
        "/* erf(x) and exp(-x^2) together, branch-free and lookup-free, so a loop over it vectorises.",
        "   Both approximations are computed for every lane and one is selected:",
        f"     |x| < 1:  x + x R(x^2), R of degree {SMALL_DEGREE} (Chebyshev fit, relative error of erf",
        f"               below {mp.nstr(worst_small, 2)} before rounding);",
        f"     |x| >= 1: 1 - exp(-x^2) Q(t - {float(T0)!r}), t = 1 / (1 + x / 2), Q of degree {LARGE_DEGREE}",
        f"               fitted to erfc(x) exp(x^2) on [1, 6] (relative error of erfc below {mp.nstr(worst_large, 2)});",
        "               exp(-x^2) is exp(-h^2) exp(-(x - h)(x + h)) with h = x cut to 26 bits, so h^2",
        "               is exact, and the second factor a three-term series (its argument is < 1.1e-6).",
        "   *e receives exp(-x^2) (GELU's backward reuses it as the normal density's exponential).",
        "   Measured (tests/test_simd_accuracy.py): <= 2 ulp against mpmath. NaN gives NaN,",
        "   erf(+-inf) = +-1, erf(-0) = -0. */",
        "LK_INLINE double lk_erf_e(double x, double* e) {",
        "    double a = __builtin_fabs(x);",
        "    double as = a < 1.0 ? a : 1.0;",
        "    double z = as * as;",
        *body("r", small, "z"),
        "    double small = as + as * r;",
        "    double ae = a > 28.0 ? 28.0 : a;   /* exp(-x^2) is 0 beyond; keeps NaN, and inf - inf away */",
        "    double h = lk_from_bits(lk_to_bits(ae) & 0xFFFFFFFFF8000000ULL);",
        "    double d = (ae - h) * (ae + h);",
        "    double ex = lk_exp(-(h * h)) * (1.0 - d + 0.5 * d * d);",
        "    double al = a > 6.0 ? 6.0 : a;   /* keeps NaN */",
        f"    double s = 1.0 / (1.0 + {float(P)!r} * al) - {float(T0)!r};",
        *body("q", large, "s"),
        "    double large = 1.0 - ex * q;",
        "    *e = ex;",
        "    return __builtin_copysign(a < 1.0 ? small : large, x);",
        "}",
        "",
        "LK_INLINE double lk_erf(double x) { double e; return lk_erf_e(x, &e); }",
        "",
        *f32_lines,
        "#endif",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}; worst erf relative error {mp.nstr(worst_small, 3)} (|x| < 1), "
          f"erfc {mp.nstr(worst_large, 3)} (1 <= |x| <= 6); float32 fits: "
          + ", ".join(f"{k} {mp.nstr(v, 3)}" for k, v in worst32.items()))


if __name__ == "__main__":
    main()
