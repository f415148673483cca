/* Element-wise activations of layerkit's core, float32 and float64.
 *
 * One pair of loops (forward, backward) per activation and dtype, each a
 * plain loop over a branch-free element function, so GCC vectorises it. On
 * x86-64 Linux with GCC each loop is compiled three times (AVX-512, AVX2 with
 * FMA, and the baseline SSE2) and the loader picks the best one for the CPU
 * (`target_clones`, an ifunc); elsewhere (ARM64, clang, macOS) it is compiled
 * once at the build's baseline. There is no -march=native anywhere.
 *
 * The loops are kept out of line on purpose: inlined into the chain kernel,
 * GCC compiled the ReLU select into a compare-and-branch per element (half
 * mispredicted on random signs, 30x slower); on their own they vectorise.
 *
 * Transcendental activations compute in double precision with the kernels of
 * vecmath.h (the float32 loops convert, compute and round once), except the
 * float32 loops of sigmoid, tanh and exact GELU, which compute in float lanes
 * (vecmath.h, erf.h); their accuracy is stated in vecmath.h. NaN propagates through every forward, as in
 * NumPy and PyTorch. The backward of each activation takes the forward's
 * input x (not its output) and the gradient dy arriving at its output, and
 * follows PyTorch's formula for it (including its choice at ties and NaN:
 * ReLU passes dy where x is NaN, as torch.threshold_backward does).
 *
 * `p0` and `p1` are the activation's numeric parameters:
 *   LEAKY_RELU: p0 = negative_slope;   ELU: p0 = alpha;
 *   SOFTPLUS:   p0 = beta, p1 = threshold;   others: unused.
 */
#ifndef LAYERKIT_ELEMENTWISE_H
#define LAYERKIT_ELEMENTWISE_H

#include <stddef.h>
#include "vecmath.h"
#include "erf.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 8
#define LK_CLONES __attribute__((noinline, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LK_HAVE_CLONES 1
#else
#define LK_CLONES __attribute__((noinline))
#define LK_HAVE_CLONES 0
#endif

enum {
    LK_SIGMOID = 0, LK_RELU = 1, LK_SOFTMAX = 2, LK_TANH = 3, LK_LEAKY_RELU = 4,
    LK_ELU = 5, LK_GELU = 6, LK_GELU_TANH = 7, LK_SOFTPLUS = 8, LK_IDENTITY = 9,
    LK_N_ACTS = 10
};

#define LK_SQRT1_2 0.70710678118654752440
#define LK_GELU_BETA (1.12837916709551257390 * LK_SQRT1_2 * 0.5)   /* 1/sqrt(2 pi), as PyTorch writes it */
#define LK_GELU_TANH_BETA (1.41421356237309504880 * 1.12837916709551257390 * 0.5)  /* sqrt(2/pi) */
#define LK_GELU_KAPPA 0.044715

/* ------------------------------------------------------------ element functions (double) */

/* exp only ever sees -|v| <= 0, so it cannot overflow; both candidates are computed, one selected */
static inline double lk_sigmoid(double v) {
    double e = lk_exp(-__builtin_fabs(v));
    double d = 1.0 + e;
    return v >= 0 ? 1.0 / d : e / d;
}
static inline double lk_sigmoid_b(double v, double g) { double s = lk_sigmoid(v); return g * s * (1.0 - s); }
/* float32: the same in float lanes, on lk_expf */
static inline float lk_sigmoidf(float v) {
    float e = lk_expf(-__builtin_fabsf(v));
    float d = 1.0f + e;
    return v >= 0 ? 1.0f / d : e / d;
}
static inline float lk_sigmoidf_b(float v, float g) { float s = lk_sigmoidf(v); return g * s * (1.0f - s); }

static inline double lk_tanh_f(double v) { return lk_tanh(v); }
static inline double lk_tanh_b(double v, double g) { double t = lk_tanh(v); return g * (1.0 - t * t); }

static inline double lk_elu_f(double v, double alpha) { double e = alpha * lk_expm1(v); return v > 0 ? v : e; }
static inline double lk_elu_b(double v, double g, double alpha) {
    double e = g * alpha * lk_exp(v);
    return v > 0 ? g : e;   /* NaN x: NaN gradient, as PyTorch's vectorised ELU backward */
}

LK_INLINE double lk_gelu_f(double v) { return v * 0.5 * (1.0 + lk_erf(v * LK_SQRT1_2)); }
/* exp(-v^2 / 2) of the normal density is the exp(-(v / sqrt 2)^2) erf computes anyway */
LK_INLINE double lk_gelu_b(double v, double g) {
    double e;
    double cdf = 0.5 * (1.0 + lk_erf_e(v * LK_SQRT1_2, &e));
    double pdf = e * LK_GELU_BETA;
    return g * (cdf + v * pdf);
}

/* float32, in float lanes on erf.h's lk_gelu_phif: Phi(x) is 1/2 + x R below the thresholds,
   else 1 - e t q (x >= 0) or e t q (x < 0), and GELU's tail for x < 0 is -2 (1 - t) q e, so
   no cancellation anywhere (e comes scaled by 2^64 and t by 2^-64: the products that reach the
   subnormals, from x = -13.2, are rounded once).
   x = -inf gives NaN, as the formula x Phi(x) (and PyTorch) does; +inf gives +inf. */
LK_INLINE float lk_geluf(float v) {
    float ph, e, t, q;
    lk_gelu_phif(v, &ph, &e, &t, &q);
    float a = __builtin_fabsf(v);
    int neg = v < 0;
    float tail = ((2.0f * t - LK_GELU_F_TAIL1) * q) * e;   /* -2 (1 - t) q e, the sign in the first factor */
    float large = neg ? tail : v * (1.0f - (e * t) * q);
    float y = a < (neg ? LK_GELU_F_LOW : LK_GELU_F_SMALL) ? v * ph : large;
    return v == -__builtin_inff() ? __builtin_nanf("") : y;
}
/* g (Phi(x) + x phi(x)), phi = e / sqrt(2 pi): the e of Phi's tail is the density's */
LK_INLINE float lk_geluf_b(float v, float g) {
    float ph, e, t, q;
    lk_gelu_phif(v, &ph, &e, &t, &q);
    float a = __builtin_fabsf(v);
    int neg = v < 0;
    float et = (e * t) * q;
    float cdf = a < (neg ? LK_GELU_F_LOW : LK_GELU_F_SMALL) ? ph : (neg ? et : 1.0f - et);
    return g * (cdf + v * (e * ((float)LK_GELU_BETA * LK_GELU_F_ESCALE)));
}

static inline double lk_gelu_tanh_f(double v) {
    double inner = LK_GELU_TANH_BETA * (v + LK_GELU_KAPPA * v * v * v);
    return 0.5 * v * (1.0 + lk_tanh(inner));
}
static inline double lk_gelu_tanh_b(double v, double g) {
    double v2 = v * v;
    double inner = LK_GELU_TANH_BETA * (v + LK_GELU_KAPPA * v2 * v);
    double t = lk_tanh(inner);
    double right = 1.0 + t;
    double inner_d = LK_GELU_TANH_BETA * (1.0 + 3.0 * LK_GELU_KAPPA * v2);
    return g * (0.5 * right + 0.5 * v * (1.0 - t * t) * inner_d);
}

/* (max(u, 0) + log1p(exp(-|u|))) / beta with u = beta v: never overflows, whatever the threshold */
static inline double lk_softplus_f(double v, double beta, double threshold) {
    double u = v * beta;
    double s = ((u > 0 ? u : 0.0) + lk_log1p01(lk_exp(-__builtin_fabs(u)))) / beta;
    return u > threshold ? v : s;
}
static inline double lk_softplus_b(double v, double g, double beta, double threshold) {
    double u = v * beta;
    double s = g * lk_sigmoid(u);
    return u > threshold ? g : s;
}

/* ------------------------------------------------------------ loops */

#define LK_LOOP_F(NAME, T, EXPR)                                                              \
    static LK_CLONES void NAME(const T* restrict x, T* restrict y, ptrdiff_t n, double p0, double p1) { \
        T q0 = (T)p0; (void)q0; (void)p1;                                                       \
        for (ptrdiff_t i = 0; i < n; i++) { T xv = x[i]; y[i] = (T)(EXPR); }                    \
    }
#define LK_LOOP_B(NAME, T, EXPR)                                                              \
    static LK_CLONES void NAME(const T* restrict x, const T* restrict dy, T* restrict dx,     \
                               ptrdiff_t n, double p0, double p1) {                           \
        T q0 = (T)p0; (void)q0; (void)p1;                                                       \
        for (ptrdiff_t i = 0; i < n; i++) { T xv = x[i]; T g = dy[i]; dx[i] = (T)(EXPR); }     \
    }
#define LK_ACT_LOOPS(NAME, FWD, BWD)                         \
    LK_LOOP_F(lk_##NAME##_fwd_d, double, FWD)                \
    LK_LOOP_B(lk_##NAME##_bwd_d, double, BWD)                \
    LK_LOOP_F(lk_##NAME##_fwd_f, float, FWD)                 \
    LK_LOOP_B(lk_##NAME##_bwd_f, float, BWD)

/* transcendental ones: computed in double, rounded once (float32 sigmoid, tanh and GELU: float lanes) */
LK_LOOP_F(lk_sigmoid_fwd_d, double, lk_sigmoid(xv))
LK_LOOP_B(lk_sigmoid_bwd_d, double, lk_sigmoid_b(xv, g))
LK_LOOP_F(lk_sigmoid_fwd_f, float, lk_sigmoidf(xv))
LK_LOOP_B(lk_sigmoid_bwd_f, float, lk_sigmoidf_b(xv, g))
LK_LOOP_F(lk_tanh_fwd_d, double, lk_tanh_f(xv))
LK_LOOP_B(lk_tanh_bwd_d, double, lk_tanh_b(xv, g))
LK_LOOP_F(lk_tanh_fwd_f, float, lk_tanhf(xv))
LK_LOOP_B(lk_tanh_bwd_f, float, g * (1.0f - lk_tanhf(xv) * lk_tanhf(xv)))
LK_ACT_LOOPS(elu, lk_elu_f((double)xv, p0), lk_elu_b((double)xv, (double)g, p0))
LK_LOOP_F(lk_gelu_fwd_d, double, lk_gelu_f(xv))
LK_LOOP_B(lk_gelu_bwd_d, double, lk_gelu_b(xv, g))
LK_LOOP_F(lk_gelu_fwd_f, float, lk_geluf(xv))
LK_LOOP_B(lk_gelu_bwd_f, float, lk_geluf_b(xv, g))
LK_ACT_LOOPS(gelu_tanh, lk_gelu_tanh_f((double)xv), lk_gelu_tanh_b((double)xv, (double)g))
LK_ACT_LOOPS(softplus, lk_softplus_f((double)xv, p0, p1), lk_softplus_b((double)xv, (double)g, p0, p1))
/* piecewise-linear ones: in the array's own type (a select, which stays a vector blend).
   `xv < 0 ? 0 : xv` keeps NaN (the comparison is false), unlike `xv > 0 ? xv : 0`. */
LK_ACT_LOOPS(relu, xv < 0 ? 0 : xv, xv <= 0 ? 0 : g)
LK_ACT_LOOPS(leaky_relu, xv > 0 ? xv : xv * q0, xv > 0 ? g : g * q0)  /* q0: p0 in the array's type */

/* exp(x[i] - shift) into y[i]: the vector part of softmax */
#define LK_EXP_SHIFTED(NAME, T)                                                                 \
    static LK_CLONES void NAME(const T* restrict x, T* restrict y, ptrdiff_t n, double shift) { \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = (T)lk_exp((double)x[i] - shift);              \
    }
LK_EXP_SHIFTED(lk_exp_shifted_d, double)
/* float32 too in double: x - max rounded to float would cost up to 60 float ulps for |x - max| ~ 70 */
LK_EXP_SHIFTED(lk_exp_shifted_f, float)

/* Row-wise softmax; the row maximum is subtracted first, so no input overflows. The row sum
   is accumulated in double in eight interleaved partial sums (vector adds, and an error that
   grows with an eighth of the width). */
#define LK_SOFTMAX(SUF, T)                                                                      \
    static void lk_softmax_fwd_##SUF(const T* x, T* y, ptrdiff_t rows, ptrdiff_t cols) {        \
        for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
            const T* xr = x + i * cols;                                                         \
            T* yr = y + i * cols;                                                               \
            T m = xr[0], top[8];                                                                \
            double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, total = 0;                               \
            ptrdiff_t j = 0;                                                                    \
            for (int k = 0; k < 8; k++) top[k] = xr[0];                                         \
            for (; j + 8 <= cols; j += 8)      /* eight running maxima: no serial dependence */ \
                for (int k = 0; k < 8; k++) top[k] = xr[j + k] > top[k] ? xr[j + k] : top[k];   \
            for (; j < cols; j++) if (xr[j] > m) m = xr[j];                                     \
            for (int k = 0; k < 8; k++) if (top[k] > m) m = top[k];                             \
            lk_exp_shifted_##SUF(xr, yr, cols, (double)m);                                     \
            for (j = 0; j + 8 <= cols; j += 8)                                                  \
                for (int k = 0; k < 8; k++) part[k] += (double)yr[j + k];                       \
            for (; j < cols; j++) part[0] += (double)yr[j];                                     \
            for (int k = 0; k < 8; k++) total += part[k];                                       \
            for (ptrdiff_t j = 0; j < cols; j++) yr[j] = (T)((double)yr[j] / total);            \
        }                                                                                       \
    }                                                                                           \
    /* dx = y * (dy - <dy, y>) row by row, from the output y (dx may be y itself) */            \
    static void lk_softmax_bwd_y_##SUF(const T* y, const T* dy, T* dx, ptrdiff_t rows, ptrdiff_t cols) { \
        for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
            const T* yr = y + i * cols;                                                         \
            const T* gr = dy + i * cols;                                                        \
            T* xr = dx + i * cols;                                                              \
            T dot = 0;                                                                          \
            for (ptrdiff_t j = 0; j < cols; j++) dot += gr[j] * yr[j];                          \
            for (ptrdiff_t j = 0; j < cols; j++) xr[j] = yr[j] * (gr[j] - dot);                 \
        }                                                                                       \
    }                                                                                           \
    /* the same with y = softmax(x) recomputed into dx */                                       \
    static void lk_softmax_bwd_##SUF(const T* x, const T* dy, T* dx, ptrdiff_t rows, ptrdiff_t cols) { \
        lk_softmax_fwd_##SUF(x, dx, rows, cols);                                                \
        lk_softmax_bwd_y_##SUF(dx, dy, dx, rows, cols);                                         \
    }
LK_SOFTMAX(d, double)
LK_SOFTMAX(f, float)

/* ------------------------------------------------------------ dispatch by activation code */

#define LK_DISPATCH(SUF, T)                                                                     \
    static void lk_act_forward_##SUF(int act, const T* x, T* y, ptrdiff_t rows, ptrdiff_t cols, \
                                     double p0, double p1) {                                    \
        ptrdiff_t n = rows * cols;                                                              \
        switch (act) {                                                                          \
        case LK_SIGMOID: lk_sigmoid_fwd_##SUF(x, y, n, p0, p1); break;                          \
        case LK_RELU: lk_relu_fwd_##SUF(x, y, n, p0, p1); break;                                \
        case LK_TANH: lk_tanh_fwd_##SUF(x, y, n, p0, p1); break;                                \
        case LK_LEAKY_RELU: lk_leaky_relu_fwd_##SUF(x, y, n, p0, p1); break;                    \
        case LK_ELU: lk_elu_fwd_##SUF(x, y, n, p0, p1); break;                                  \
        case LK_GELU: lk_gelu_fwd_##SUF(x, y, n, p0, p1); break;                                \
        case LK_GELU_TANH: lk_gelu_tanh_fwd_##SUF(x, y, n, p0, p1); break;                      \
        case LK_SOFTPLUS: lk_softplus_fwd_##SUF(x, y, n, p0, p1); break;                        \
        case LK_IDENTITY: if (n > 0 && x != y) memcpy(y, x, (size_t)n * sizeof(T)); break;     \
        case LK_SOFTMAX: if (cols > 0) lk_softmax_fwd_##SUF(x, y, rows, cols); break;           \
        }                                                                                       \
    }                                                                                           \
    static void lk_act_backward_##SUF(int act, const T* x, const T* dy, T* dx, ptrdiff_t rows,  \
                                      ptrdiff_t cols, double p0, double p1) {                   \
        ptrdiff_t n = rows * cols;                                                              \
        switch (act) {                                                                          \
        case LK_SIGMOID: lk_sigmoid_bwd_##SUF(x, dy, dx, n, p0, p1); break;                     \
        case LK_RELU: lk_relu_bwd_##SUF(x, dy, dx, n, p0, p1); break;                           \
        case LK_TANH: lk_tanh_bwd_##SUF(x, dy, dx, n, p0, p1); break;                           \
        case LK_LEAKY_RELU: lk_leaky_relu_bwd_##SUF(x, dy, dx, n, p0, p1); break;               \
        case LK_ELU: lk_elu_bwd_##SUF(x, dy, dx, n, p0, p1); break;                             \
        case LK_GELU: lk_gelu_bwd_##SUF(x, dy, dx, n, p0, p1); break;                           \
        case LK_GELU_TANH: lk_gelu_tanh_bwd_##SUF(x, dy, dx, n, p0, p1); break;                 \
        case LK_SOFTPLUS: lk_softplus_bwd_##SUF(x, dy, dx, n, p0, p1); break;                   \
        case LK_IDENTITY: if (n > 0 && dy != dx) memcpy(dx, dy, (size_t)n * sizeof(T)); break; \
        case LK_SOFTMAX: if (cols > 0) lk_softmax_bwd_##SUF(x, dy, dx, rows, cols); break;      \
        }                                                                                       \
    }
LK_DISPATCH(d, double)
LK_DISPATCH(f, float)

/* Backward from the forward's output y = act(x), for the activations whose derivative is a
   function of y: sigmoid s(1 - s), tanh 1 - t^2, softmax y (dy - <dy, y>). y holds exactly the
   values the backward above recomputes from x (the same function of the same x, rounded alike),
   so the result is the same bit for bit, without the exp. Returns 0 (nothing done) for the others. */
#define LK_FROM_OUTPUT(SUF, T)                                                                  \
    static LK_CLONES void lk_sigmoid_bwd_y_##SUF(const T* restrict y, const T* restrict dy,     \
                                                T* restrict dx, ptrdiff_t n) {                  \
        for (ptrdiff_t i = 0; i < n; i++) { T s = y[i]; dx[i] = dy[i] * s * ((T)1 - s); }        \
    }                                                                                           \
    static LK_CLONES void lk_tanh_bwd_y_##SUF(const T* restrict y, const T* restrict dy,        \
                                             T* restrict dx, ptrdiff_t n) {                     \
        for (ptrdiff_t i = 0; i < n; i++) { T t = y[i]; dx[i] = dy[i] * ((T)1 - t * t); }        \
    }                                                                                           \
    static int lk_act_backward_y_##SUF(int act, const T* y, const T* dy, T* dx, ptrdiff_t rows, \
                                       ptrdiff_t cols) {                                        \
        ptrdiff_t n = rows * cols;                                                              \
        switch (act) {                                                                          \
        case LK_SIGMOID: lk_sigmoid_bwd_y_##SUF(y, dy, dx, n); return 1;                        \
        case LK_TANH: lk_tanh_bwd_y_##SUF(y, dy, dx, n); return 1;                              \
        case LK_SOFTMAX: lk_softmax_bwd_y_##SUF(y, dy, dx, rows, cols); return 1;               \
        }                                                                                       \
        return 0;                                                                               \
    }
LK_FROM_OUTPUT(d, double)
LK_FROM_OUTPUT(f, float)

/* Plain vectorised exp, tanh, expm1, log1p and erf over an array (for the accuracy tests and benchmarks). */
#define LK_MAP(NAME, EXPR)                                                                       \
    static LK_CLONES void NAME##_d(const double* restrict x, double* restrict y, ptrdiff_t n) {   \
        for (ptrdiff_t i = 0; i < n; i++) { double v = x[i]; y[i] = (EXPR); }                     \
    }                                                                                            \
    static LK_CLONES void NAME##_f(const float* restrict x, float* restrict y, ptrdiff_t n) {     \
        for (ptrdiff_t i = 0; i < n; i++) { double v = (double)x[i]; y[i] = (float)(EXPR); }      \
    }
LK_MAP(lk_map_exp, lk_exp(v))
LK_MAP(lk_map_expm1, lk_expm1(v))
LK_MAP(lk_map_log1p, lk_log1p01(v))
LK_MAP(lk_map_tanh, lk_tanh(v))
static LK_CLONES void lk_map_erf_d(const double* restrict x, double* restrict y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = lk_erf(x[i]);
}
/* float32: the float-lane erf GELU's float32 loops are built like */
static LK_CLONES void lk_map_erf_f(const float* restrict x, float* restrict y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = lk_erff(x[i]);
}

#endif
