/* Branch-free double-precision exp, expm1, log1p, tanh and erf that GCC auto-vectorises.
 *
 * Every function here is `static inline`, has no branch that depends on the
 * data (both sides of a choice are computed and one is selected), and uses
 * only +, -, *, /, comparisons, selections and 64-bit integer adds and shifts
 * on the bit patterns, so a loop that calls them compiles to SIMD code
 * (SSE2 on any x86-64, AVX2 and AVX-512 in the target clones of
 * elementwise.h, NEON on ARM64). The module is built with -fno-trapping-math,
 * without which GCC refuses to if-convert the selections.
 *
 * The float32 kernels call these double-precision functions and round once,
 * so they are correctly rounded in nearly every case.
 *
 * Accuracy, measured by tests/test_simd_accuracy.py over wide ranges, in representable
 * doubles between the result and NumPy's float64 function (mpmath for erf):
 *   lk_exp     <= 1   (x in [-745, 709.78], subnormal results included)
 *   lk_expm1   <= 2
 *   lk_log1p01 <= 2   (u in [0, 1], the only range layerkit uses)
 *   lk_tanh    <= 3   (<= 2 against the exact value; NumPy's own tanh is 1 off at times)
 *   lk_erf     <= 2   (erf.h; against mpmath)
 * The float32 kernels compute in double and round once (<= 1 in float32), except sigmoid,
 * tanh and exact GELU, whose float32 loops run in float lanes (two to three times the
 * throughput): sigmoid and tanh on lk_expf and lk_tanhf (below), within 2 ulp of float32;
 * GELU on erf.h's lk_gelu_phif (with its own exp(-x^2 / 2), scaled by 2^64), forward within 4 ulp of
 * float32 for every x (no cancellation for negative x), backward within 4 ulp of |Phi(x)| + |x phi(x)|
 * (3.22 measured); and the
 * float32 erf (lk_erff, erf.h) within 1 ulp of float32 against mpmath.
 * NaN in gives NaN out; exp(+inf) = inf, exp(-inf) = 0, tanh(+-inf) = +-1.
 */
#ifndef LAYERKIT_VECMATH_H
#define LAYERKIT_VECMATH_H

#include <stdint.h>
#include <string.h>

/* Forced inlining for the kernels a loop must see whole: in _core.c's large translation unit
   GCC otherwise stops inlining at its unit-growth limit, and a loop that calls a function does
   not vectorise (erf in GELU's backward did exactly that). */
#if defined(__GNUC__)
#define LK_INLINE static inline __attribute__((always_inline))
#else
#define LK_INLINE static inline
#endif

static inline double lk_from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t lk_to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

#define LK_MAGIC 0x1.8p52              /* adding it rounds to an integer kept in the low mantissa bits */
#define LK_LOG2E 1.4426950408889634074
#define LK_LN2HI 6.93147180369123816490e-01   /* 0x3fe62e42fee00000: n * LK_LN2HI is exact for |n| < 2^20 */
#define LK_LN2LO 1.90821492927058770002e-10

/* expm1(r) for |r| <= ln(2)/2: Taylor series to r^13 (truncation < 2e-18 relative) */
LK_INLINE double lk_expm1_poly(double r) {
    double q = 1.0 / 6227020800.0;
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    return r + (r * r) * q;
}

/* x = n ln2 + r: returns expm1(r) and sets the two halves 2^n1 * 2^n2 = 2^n (each a normal number) */
LK_INLINE double lk_exp_reduce(double x, double* s1, double* s2) {
    x = x < -746.0 ? -746.0 : x;   /* exp underflows to 0 below, overflows above; NaN passes */
    x = x > 710.0 ? 710.0 : x;
    double t = x * LK_LOG2E + LK_MAGIC;
    double n = t - LK_MAGIC;
    int64_t ni = (int64_t)(lk_to_bits(t) - lk_to_bits(LK_MAGIC));
    double r = (x - n * LK_LN2HI) - n * LK_LN2LO;
    int64_t n1 = (int64_t)((uint64_t)(ni + 1100) >> 1) - 550;  /* floor(n / 2) without an arithmetic shift */
    int64_t n2 = ni - n1;
    *s1 = lk_from_bits((uint64_t)(n1 + 1023) << 52);
    *s2 = lk_from_bits((uint64_t)(n2 + 1023) << 52);
    return lk_expm1_poly(r);
}

/* exp(x), <= 1 ulp */
LK_INLINE double lk_exp(double x) {
    double s1, s2;
    double em = lk_exp_reduce(x, &s1, &s2);
    return (s1 * em + s1) * s2;
}

/* expm1(x): 2^n (expm1(r) + 1) - 1 = 2^n expm1(r) + (2^n - 1), the last term exact; above
   x = 40 the 1 no longer matters and exp(x) - 1 avoids 2^n overflowing before the product */
static inline double lk_expm1(double x) {
    double s1, s2;
    double em = lk_exp_reduce(x, &s1, &s2);
    double scale = s1 * s2;
    double small = scale * em + (scale - 1.0);
    double large = (s1 * em + s1) * s2 - 1.0;
    double r = x > 40.0 ? large : small;
    return x == 0.0 ? x : r;   /* expm1(-0) = -0 */
}

/* log1p(u) for u in [0, 1]: 2 atanh(s), s = m / (2 + m), with m = u, or m = (u - 1) / 2 and ln 2 added */
static inline double lk_log1p01(double u) {
    int big = u > 0.41421356237309503;
    double m = big ? (u - 1.0) * 0.5 : u;
    double s = m / (2.0 + m);
    double z = s * s;                     /* z <= 0.0295: 12 terms leave < 1e-19 */
    double p = 2.0 / 25.0;
    p = p * z + 2.0 / 23.0;
    p = p * z + 2.0 / 21.0;
    p = p * z + 2.0 / 19.0;
    p = p * z + 2.0 / 17.0;
    p = p * z + 2.0 / 15.0;
    p = p * z + 2.0 / 13.0;
    p = p * z + 2.0 / 11.0;
    p = p * z + 2.0 / 9.0;
    p = p * z + 2.0 / 7.0;
    p = p * z + 2.0 / 5.0;
    p = p * z + 2.0 / 3.0;
    double a = 2.0 * s + s * z * p;
    return big ? LK_LN2HI + (a + LK_LN2LO) : a;
}

/* tanh(|x|) from one reduction of -2|x|: -expm1 / (2 + expm1) below 0.55, where it has no
   cancellation, 1 - 2 exp / (1 + exp) above, where expm1 is close to -1; sign restored */
static inline double lk_tanh(double x) {
    double s1, s2;
    double em = lk_exp_reduce(-2.0 * __builtin_fabs(x), &s1, &s2);
    double scale = s1 * s2;
    double e1 = scale * em + (scale - 1.0);   /* expm1(-2|x|) */
    double e = (s1 * em + s1) * s2;           /* exp(-2|x|) */
    double small = -e1 / (2.0 + e1);
    double large = 1.0 - 2.0 * e / (1.0 + e);
    double t = __builtin_fabs(x) < 0.55 ? small : large;
    return __builtin_copysign(t, x);
}

/* ------------------------------------------------------------------ float32, in float lanes */

static inline float lk_from_bits_f(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t lk_to_bits_f(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* e^r - 1 for the reduced argument |r| <= ln 2 / 2: degree-7 Taylor polynomial (the core of the
   float exps below) */
LK_INLINE float lk_expm1f_reduced(float r) {
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    return r + (r * r) * q;
}

/* (1 + em) 2^n for n in [-150, 128], through two normal scale factors, so that a subnormal
   result is rounded once */
LK_INLINE float lk_scale2f(float em, int32_t ni) {
    int32_t n1 = (int32_t)((uint32_t)(ni + 300) >> 1) - 150;
    int32_t n2 = ni - n1;
    float s1 = lk_from_bits_f((uint32_t)(n1 + 127) << 23);
    float s2 = lk_from_bits_f((uint32_t)(n2 + 127) << 23);
    return (s1 * em + s1) * s2;
}

/* exp(x) in float arithmetic, twice the lanes of the double kernel: Cody-Waite reduction with
   a short ln 2 and a degree-7 Taylor polynomial; <= 2 ulp of float32 (measured). */
LK_INLINE float lk_expf(float x) {
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    const float magic = 0x1.8p23f;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(lk_to_bits_f(t) - lk_to_bits_f(magic));
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float em = lk_expm1f_reduced(r);
    return lk_scale2f(em, ni);
}

/* exp(hi + lo) in float lanes for hi <= 0 and |lo| < 0.1, the pair standing for an argument more
   precise than one float (erf.h passes -x^2 as -h^2 and -(x - h)(x + h)). The reduction is that
   of lk_expf, with n chosen from hi + lo and lo added to the reduced argument, so the rounding
   of hi + lo to a float never reaches the result; the result is 0 below -104 (hi is clamped to
   -120 to keep the scale factors normal), and subnormal results are rounded once. */
LK_INLINE float lk_expf_hl(float hi, float lo) {
    hi = hi < -120.0f ? -120.0f : hi;
    const float magic = 0x1.8p23f;
    float t = (hi + lo) * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(lk_to_bits_f(t) - lk_to_bits_f(magic));
    float r = ((hi - n * 0.693359375f) - n * -2.12194440e-4f) + lo;
    float em = lk_expm1f_reduced(r);
    return lk_scale2f(em, ni);
}

/* exp(x) as lk_expf, for x in [-87, 0] only (results normal): no clamps and one scale factor, the
   same bits as lk_expf there. GCC compiles lk_expf's clamps into masks and blends around the
   kernel, and its two scale factors (for subnormal results) cost five integer instructions. */
LK_INLINE float lk_expf_normal(float x) {
    const float magic = 0x1.8p23f;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float em = lk_expm1f_reduced(r);
    float s = lk_from_bits_f((lk_to_bits_f(t) - lk_to_bits_f(magic) + 127u) << 23);   /* 2^n */
    return s * em + s;
}

/* tanh(x) in float lanes: odd Taylor polynomial to x^15 below |x| = 0.55 (truncation < 3e-8),
   1 - 2 e / (1 + e) with e = exp(-2|x|) above; sign restored; <= 2 ulp of float32 (measured).
   |x| is clamped to 10 for e (in integers: one min instruction), where tanh rounds to 1 already,
   so e is a normal float; NaN, which the clamp turns into 10, takes the polynomial's side. */
static inline float lk_tanhf(float x) {
    float a = __builtin_fabsf(x);
    float z = a * a;
    float p = -929569.0f / 638512875.0f;
    p = p * z + 21844.0f / 6081075.0f;
    p = p * z + -1382.0f / 155925.0f;
    p = p * z + 62.0f / 2835.0f;
    p = p * z + -17.0f / 315.0f;
    p = p * z + 2.0f / 15.0f;
    p = p * z + -1.0f / 3.0f;
    float small = a + a * z * p;
    uint32_t ua = lk_to_bits_f(a);
    float ac = lk_from_bits_f(ua < 0x41200000u ? ua : 0x41200000u);   /* min(|x|, 10) */
    float e = lk_expf_normal(-2.0f * ac);
    float large = 1.0f - 2.0f * e / (1.0f + e);
    float t = a >= 0.55f ? large : small;
    return __builtin_copysignf(t, x);
}

#endif
