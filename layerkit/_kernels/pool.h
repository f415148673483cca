/* Included by layerkit/_core.pyx through _kernels/pool.pxi: the 2x2, stride-2 max pooling of conv nets.
 *
 * Plain C so that the selections stay selections: on random data a branch per comparison is mispredicted
 * half of the time. The maximum of a window is its first maximum in row-major order, and a NaN wins (the
 * last one), as in torch's kernel and in pool.pxi's general loops.
 */
#ifndef LAYERKIT_POOL_H
#define LAYERKIT_POOL_H

#include <stddef.h>

#define LK_TAKES(v, m) (((v) > (m)) | ((v) != (v)))

#define LK_DEFINE_HALVING(T, SUFFIX)                                                                     \
static void lk_max_pool_halving_forward_##SUFFIX(const T* x, T* y, Py_ssize_t planes, Py_ssize_t H,        \
                                                Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) {            \
    for (Py_ssize_t p = 0; p < planes; ++p) {                                                            \
        const T* plane = x + p * H * W;                                                                  \
        T* out = y + p * Ho * Wo;                                                                        \
        for (Py_ssize_t oh = 0; oh < Ho; ++oh) {                                                         \
            const T* r0 = plane + 2 * oh * W;                                                            \
            const T* r1 = r0 + W;                                                                        \
            for (Py_ssize_t ow = 0; ow < Wo; ++ow) {                                                     \
                T m = r0[2 * ow], v;                                                                     \
                v = r0[2 * ow + 1]; m = LK_TAKES(v, m) ? v : m;                                          \
                v = r1[2 * ow];     m = LK_TAKES(v, m) ? v : m;                                          \
                v = r1[2 * ow + 1]; m = LK_TAKES(v, m) ? v : m;                                          \
                out[oh * Wo + ow] = m;                                                                   \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* dx must be zero where no window reaches (an odd last row or column); every window position is written */ \
static void lk_max_pool_halving_backward_##SUFFIX(const T* x, const T* dy, T* dx, Py_ssize_t planes,      \
                                                 Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) { \
    for (Py_ssize_t p = 0; p < planes; ++p) {                                                            \
        const T* plane = x + p * H * W;                                                                  \
        T* dplane = dx + p * H * W;                                                                      \
        const T* g = dy + p * Ho * Wo;                                                                   \
        for (Py_ssize_t oh = 0; oh < Ho; ++oh) {                                                         \
            const T* r0 = plane + 2 * oh * W;                                                            \
            const T* r1 = r0 + W;                                                                        \
            T* d0 = dplane + 2 * oh * W;                                                                 \
            T* d1 = d0 + W;                                                                              \
            for (Py_ssize_t ow = 0; ow < Wo; ++ow) {                                                     \
                T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];               \
                T grad = g[oh * Wo + ow], m = a;                                                         \
                m = LK_TAKES(b, m) ? b : m;                                                              \
                m = LK_TAKES(c, m) ? c : m;                                                              \
                m = LK_TAKES(d, m) ? d : m;                                                              \
                int e0 = a == m, e1 = (b == m) & !e0, e2 = (c == m) & !(e0 | e1), e3 = !(e0 | e1 | e2);  \
                if (m != m) { /* a NaN: the last one takes the gradient (rare: a branch is fine) */     \
                    e3 = d != d; e2 = !e3 & (c != c); e1 = !(e3 | e2) & (b != b); e0 = !(e3 | e2 | e1);  \
                }                                                                                        \
                d0[2 * ow] = e0 ? grad : (T)0;                                                           \
                d0[2 * ow + 1] = e1 ? grad : (T)0;                                                       \
                d1[2 * ow] = e2 ? grad : (T)0;                                                           \
                d1[2 * ow + 1] = e3 ? grad : (T)0;                                                       \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}

LK_DEFINE_HALVING(float, f)
LK_DEFINE_HALVING(double, d)

#endif
