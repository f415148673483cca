/* The optimizers' update rules, one pass over a parameter, float32 and float64.
 *
 * Each loop does, element by element, the operations of the optimizer's
 * NumPy rule (layerkit/optim/) in the same order, each rounded to the
 * parameter's dtype: the constants are rounded to the dtype first, as NumPy
 * rounds a Python float that meets a float32 array. Contracting a multiply
 * and an add into one FMA would round once instead of twice, so these
 * functions are compiled with fp-contract off; sqrt and division are
 * correctly rounded in IEEE arithmetic, as NumPy's are. The results are those
 * of the NumPy rule, bit for bit.
 *
 * A loop reads the gradient and the state arrays once and writes the
 * parameter and the state in place. `decay` is the L2 coefficient of the
 * parameter (0: none); the per-update scalars (learning rate, bias
 * corrections) are computed by the caller in double precision, as Python
 * computes them.
 */
#ifndef LAYERKIT_OPTIM_H
#define LAYERKIT_OPTIM_H

#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 8
#define LK_OPT_FN static __attribute__((noinline, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                                       optimize("fp-contract=off", "no-math-errno")))
#elif defined(__GNUC__) && !defined(__clang__)
#define LK_OPT_FN static __attribute__((noinline, optimize("fp-contract=off", "no-math-errno")))
#else
#pragma STDC FP_CONTRACT OFF
#define LK_OPT_FN static
#endif

/* NumPy's maximum: NaN wins */
#define LK_OPT_MAX(a, b) ((a) != (a) ? (a) : ((a) >= (b) ? (a) : (b)))

#define LK_OPT_SQRT_double sqrt
#define LK_OPT_SQRT_float sqrtf

/* The loops, each with its options as constants (L2: an L2 term in the gradient; ...), so that every
 * variant is a loop without branches, which GCC vectorises; the functions below pick the variant. */

#define LK_SGD_LOOP(T, L2, MOMENTUM, FIRST, NESTEROV)                                                  \
    for (ptrdiff_t i = 0; i < n; i++) {                                                                \
        T pi = p[i], gi = g[i], d;                                                                     \
        if (L2) { T w = cd * pi; gi = gi + w; }                                                        \
        if (MOMENTUM) {                                                                                \
            T b;                                                                                       \
            if (FIRST) { b = gi; }                                                                     \
            else { T s = cdamp * gi; b = buf[i] * cm; b = b + s; }                                     \
            buf[i] = b;                                                                                \
            if (NESTEROV) { T s = cm * b; d = gi + s; } else { d = b; }                                \
        } else {                                                                                       \
            d = gi;                                                                                    \
        }                                                                                              \
        T u = clr * d;                                                                                 \
        p[i] = pi - u;                                                                                 \
    }

#define LK_ADAM_LOOP(T, L2, SCALE, AMS)                                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                                \
        T pi = p[i], gi = g[i];                                                                        \
        if (SCALE) pi = pi * cw;                                                                       \
        if (L2) { T w = cd * pi; gi = gi + w; }                                                        \
        T s = gi * c1;                                                                                 \
        T mi = m[i] * b1; mi = mi + s; m[i] = mi;                                                      \
        s = gi * gi; s = s * c2;                                                                       \
        T vi = v[i] * b2; vi = vi + s; v[i] = vi;                                                      \
        if (AMS) { T x = vmax[i]; vi = LK_OPT_MAX(x, vi); vmax[i] = vi; }                              \
        T d = LK_OPT_SQRT_##T(vi); d = d / cb2; d = d + ce;                                            \
        T u = mi / d; u = u * cs;                                                                      \
        p[i] = pi - u;                                                                                 \
    }

#define LK_RMSPROP_LOOP(T, L2, CENTERED, MOMENTUM)                                                     \
    for (ptrdiff_t i = 0; i < n; i++) {                                                                \
        T pi = p[i], gi = g[i], d;                                                                     \
        if (L2) { T w = cd * pi; gi = gi + w; }                                                        \
        T s = c1 * gi; s = s * gi;                                                                     \
        T si = sq[i] * ca; si = si + s; sq[i] = si;                                                    \
        if (CENTERED) {                                                                                \
            T a = ga[i] * ca; T t = c1 * gi; a = a + t; ga[i] = a;                                     \
            T aa = a * a; d = si - aa; d = LK_OPT_SQRT_##T(d);                                         \
        } else {                                                                                       \
            d = LK_OPT_SQRT_##T(si);                                                                   \
        }                                                                                              \
        d = d + ce;                                                                                    \
        T q = gi / d;                                                                                  \
        if (MOMENTUM) { T b = buf[i] * cm; b = b + q; buf[i] = b; q = b; }                             \
        T u = clr * q;                                                                                 \
        p[i] = pi - u;                                                                                 \
    }

#define LK_ADAGRAD_LOOP(T, L2)                                                                         \
    for (ptrdiff_t i = 0; i < n; i++) {                                                                \
        T pi = p[i], gi = g[i];                                                                        \
        if (L2) { T w = cd * pi; gi = gi + w; }                                                        \
        T s = gi * gi; T a = acc[i] + s; acc[i] = a;                                                   \
        T d = LK_OPT_SQRT_##T(a); d = d + ce;                                                          \
        T u = cl * gi; u = u / d;                                                                      \
        p[i] = pi - u;                                                                                 \
    }

#define LK_OPT_DEFINE(T, SUF)                                                                          \
/* SGD; buf NULL without momentum: p -= lr * g; else torch.optim.SGD's buffer (set to g at step 1) */  \
LK_OPT_FN void lk_sgd_##SUF(T* restrict p, const T* restrict g, T* restrict buf, ptrdiff_t n,       \
                            double decay, double lr, double momentum, double dampening, int nesterov,  \
                            int first) {                                                               \
    const T cd = (T)decay, clr = (T)lr, cm = (T)momentum, cdamp = (T)(1.0 - dampening);                \
    if (decay != 0.0) {                                                                                \
        if (buf == NULL) { LK_SGD_LOOP(T, 1, 0, 0, 0) }                                                \
        else if (first) { if (nesterov) { LK_SGD_LOOP(T, 1, 1, 1, 1) } else { LK_SGD_LOOP(T, 1, 1, 1, 0) } } \
        else if (nesterov) { LK_SGD_LOOP(T, 1, 1, 0, 1) } else { LK_SGD_LOOP(T, 1, 1, 0, 0) }          \
    } else {                                                                                           \
        if (buf == NULL) { LK_SGD_LOOP(T, 0, 0, 0, 0) }                                                \
        else if (first) { if (nesterov) { LK_SGD_LOOP(T, 0, 1, 1, 1) } else { LK_SGD_LOOP(T, 0, 1, 1, 0) } } \
        else if (nesterov) { LK_SGD_LOOP(T, 0, 1, 0, 1) } else { LK_SGD_LOOP(T, 0, 1, 0, 0) }          \
    }                                                                                                  \
}                                                                                                      \
                                                                                                       \
/* Adam / AdamW; vmax NULL without AMSGrad. step_size = lr / (1 - beta1**t),                          \
   bias2 = sqrt(1 - beta2**t), shrink = 1 - lr * decay (decoupled) */                                  \
LK_OPT_FN void lk_adam_##SUF(T* restrict p, const T* restrict g, T* restrict m, T* restrict v,      \
                             T* restrict vmax, ptrdiff_t n, double decay, int decoupled, double beta1, \
                             double beta2, double eps, double step_size, double bias2, double shrink) { \
    const T cd = (T)decay, c1 = (T)(1.0 - beta1), b1 = (T)beta1, c2 = (T)(1.0 - beta2), b2 = (T)beta2; \
    const T cb2 = (T)bias2, ce = (T)eps, cs = (T)step_size, cw = (T)shrink;                             \
    const int l2 = decay != 0.0 && !decoupled, scale = decay != 0.0 && decoupled;                      \
    if (vmax != NULL) {                                                                                \
        if (l2) { LK_ADAM_LOOP(T, 1, 0, 1) } else if (scale) { LK_ADAM_LOOP(T, 0, 1, 1) }              \
        else { LK_ADAM_LOOP(T, 0, 0, 1) }                                                              \
    } else {                                                                                           \
        if (l2) { LK_ADAM_LOOP(T, 1, 0, 0) } else if (scale) { LK_ADAM_LOOP(T, 0, 1, 0) }              \
        else { LK_ADAM_LOOP(T, 0, 0, 0) }                                                              \
    }                                                                                                  \
}                                                                                                      \
                                                                                                       \
/* RMSprop; ga NULL unless centered, buf NULL without momentum */                                     \
LK_OPT_FN void lk_rmsprop_##SUF(T* restrict p, const T* restrict g, T* restrict sq, T* restrict ga, \
                                T* restrict buf, ptrdiff_t n, double decay, double lr, double alpha,   \
                                double eps, double momentum) {                                         \
    const T cd = (T)decay, clr = (T)lr, ca = (T)alpha, c1 = (T)(1.0 - alpha), ce = (T)eps;              \
    const T cm = (T)momentum;                                                                          \
    const int l2 = decay != 0.0;                                                                       \
    if (ga != NULL) {                                                                                  \
        if (buf != NULL) { if (l2) { LK_RMSPROP_LOOP(T, 1, 1, 1) } else { LK_RMSPROP_LOOP(T, 0, 1, 1) } } \
        else { if (l2) { LK_RMSPROP_LOOP(T, 1, 1, 0) } else { LK_RMSPROP_LOOP(T, 0, 1, 0) } }          \
    } else {                                                                                           \
        if (buf != NULL) { if (l2) { LK_RMSPROP_LOOP(T, 1, 0, 1) } else { LK_RMSPROP_LOOP(T, 0, 0, 1) } } \
        else { if (l2) { LK_RMSPROP_LOOP(T, 1, 0, 0) } else { LK_RMSPROP_LOOP(T, 0, 0, 0) } }          \
    }                                                                                                  \
}                                                                                                      \
                                                                                                       \
/* AdaGrad; clr = lr / (1 + (t - 1) * lr_decay) */                                                     \
LK_OPT_FN void lk_adagrad_##SUF(T* restrict p, const T* restrict g, T* restrict acc, ptrdiff_t n,   \
                                double decay, double clr, double eps) {                                \
    const T cd = (T)decay, cl = (T)clr, ce = (T)eps;                                                   \
    if (decay != 0.0) { LK_ADAGRAD_LOOP(T, 1) } else { LK_ADAGRAD_LOOP(T, 0) }                         \
}

LK_OPT_DEFINE(double, d)
LK_OPT_DEFINE(float, f)

#endif
