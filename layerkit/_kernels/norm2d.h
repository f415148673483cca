/* Included by layerkit/_core.pyx through _kernels/norm2d.pxi: the float32 loops of batch normalisation
 * over one channel's run of s values, compiled for AVX-512 and AVX2 as well as the baseline (SSE2),
 * chosen when the module loads (as elementwise.h's kernels).
 *
 * The sums are kept in double, as the Cython loops for float64 do, in 8 lanes: independent chains that
 * vectorise (float -> double conversions and adds side by side), where the baseline's few scalar
 * accumulators wait on every add. Each term is computed as in those loops; only the order of the adds
 * differs.
 */
#ifndef LAYERKIT_NORM2D_H
#define LAYERKIT_NORM2D_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 8
#define LK_NORM_CLONES __attribute__((noinline, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LK_NORM_CLONES __attribute__((noinline))
#endif

static inline double lk_norm_lanes(const double* lane) {
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

/* sum(p[0:s]) */
static LK_NORM_CLONES double lk_norm_sum_f(const float* restrict p, Py_ssize_t s) {
    double lane[8] = {0};
    Py_ssize_t j = 0;
    for (; j + 8 <= s; j += 8)
        for (int k = 0; k < 8; ++k) lane[k] += (double)p[j + k];
    for (int k = 0; j < s; ++j, ++k) lane[k] += (double)p[j];
    return lk_norm_lanes(lane);
}

/* sum((p[0:s] - mu)^2), in double */
static LK_NORM_CLONES double lk_norm_sum_squares_f(const float* restrict p, Py_ssize_t s, double mu) {
    double lane[8] = {0};
    Py_ssize_t j = 0;
    for (; j + 8 <= s; j += 8)
        for (int k = 0; k < 8; ++k) {
            double d = (double)p[j + k] - mu;
            lane[k] += d * d;
        }
    for (int k = 0; j < s; ++j, ++k) {
        double d = (double)p[j] - mu;
        lane[k] += d * d;
    }
    return lk_norm_lanes(lane);
}

/* sum_dy += sum(dy), sum_dyx += sum(dy * ((x - mu) * r)) over s values */
static LK_NORM_CLONES void lk_norm_sums_dy_f(const float* restrict x, const float* restrict dy, Py_ssize_t s,
                                             float mu, float r, double* sum_dy, double* sum_dyx) {
    double a[8] = {0}, b[8] = {0};
    Py_ssize_t j = 0;
    for (; j + 8 <= s; j += 8)
        for (int k = 0; k < 8; ++k) {
            a[k] += (double)dy[j + k];
            b[k] += (double)(dy[j + k] * ((x[j + k] - mu) * r));
        }
    for (int k = 0; j < s; ++j, ++k) {
        a[k] += (double)dy[j];
        b[k] += (double)(dy[j] * ((x[j] - mu) * r));
    }
    *sum_dy += lk_norm_lanes(a);
    *sum_dyx += lk_norm_lanes(b);
}

/* y = (x - mu) * scale + shift over s values */
static LK_NORM_CLONES void lk_norm_affine_f(const float* restrict x, float* restrict y, Py_ssize_t s,
                                            float mu, float scale, float shift) {
    for (Py_ssize_t j = 0; j < s; ++j) y[j] = (x[j] - mu) * scale + shift;
}

/* dx = scale * (dy - a - ((x - mu) * r) * b) over s values */
static LK_NORM_CLONES void lk_norm_dx_f(const float* restrict x, const float* restrict dy, float* restrict dx,
                                        Py_ssize_t s, float mu, float r, float scale, float a, float b) {
    for (Py_ssize_t j = 0; j < s; ++j) dx[j] = scale * (dy[j] - a - ((x[j] - mu) * r) * b);
}

#endif
