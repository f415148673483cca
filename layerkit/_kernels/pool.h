/* Included by layerkit/_core.pyx through _kernels/pool.pxi: the 2x2, stride-2 max pooling of conv nets.
 *
 * Plain C so that the selections stay selections: on random data a branch per comparison is mispredicted
 * half of the time. The maximum of a window is its first maximum in row-major order, and a NaN wins (the
 * last one), as in torch's kernel and in pool.pxi's general loops.
 */
#ifndef LAYERKIT_POOL_H
#define LAYERKIT_POOL_H

#include <stddef.h>

#include "simd.h"

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
static inline __attribute__((always_inline)) void lk_max_pool_halving_backward_impl_##SUFFIX(              \
        const T* x, const T* dy, T* dx, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho,      \
        Py_ssize_t Wo, int relu) {                                                                       \
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
                if (relu) { /* and then a ReLU's backward: x is its output, which is <= 0 where its input was */ \
                    e0 &= !(a <= 0); e1 &= !(b <= 0); e2 &= !(c <= 0); e3 &= !(d <= 0);                  \
                }                                                                                        \
                d0[2 * ow] = e0 ? grad : (T)0;                                                           \
                d0[2 * ow + 1] = e1 ? grad : (T)0;                                                       \
                d1[2 * ow] = e2 ? grad : (T)0;                                                           \
                d1[2 * ow + 1] = e3 ? grad : (T)0;                                                       \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
static void lk_max_pool_halving_backward_##SUFFIX(const T* x, const T* dy, T* dx, Py_ssize_t planes,      \
                                                 Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) { \
    lk_max_pool_halving_backward_impl_##SUFFIX(x, dy, dx, planes, H, W, Ho, Wo, 0);                      \
}                                                                                                        \
/* the gradient through a ReLU and then this pooling, in one pass: the ReLU's backward (dy where its input \
 * is not <= 0, else 0) applied to the pooling's, from the pooling's input x (the ReLU's output) */       \
static void lk_max_pool_relu_halving_backward_##SUFFIX(const T* x, const T* dy, T* dx, Py_ssize_t planes, \
                                                      Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) { \
    lk_max_pool_halving_backward_impl_##SUFFIX(x, dy, dx, planes, H, W, Ho, Wo, 1);                      \
}

LK_DEFINE_HALVING(float, f_scalar)
LK_DEFINE_HALVING(double, d)

/* float32 with AVX-512: 16 windows at once. A row pair's 32 numbers are split into the windows' four corners
 * (even and odd columns of each row), the same selections run as masks, and the gradients are interleaved
 * back; rows of fewer windows take masked loads and stores. The same results, bit for bit. */
#if LK_HAVE_V4
#define LK_POOL_V4 __attribute__((target("arch=x86-64-v4")))

typedef struct { __m512 a, b, c, d; __mmask16 lo, hi, out; } lk_pool_window16;

/* the four corners of windows ow .. ow + count - 1 of the row pair r0, r1 */
LK_POOL_V4 static inline lk_pool_window16 lk_pool_corners16(const float* r0, const float* r1, Py_ssize_t ow,
                                                            Py_ssize_t count) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    lk_pool_window16 w;
    Py_ssize_t n2 = 2 * count;
    w.lo = (__mmask16)(n2 >= 16 ? 0xFFFFu : (1u << n2) - 1u);
    w.hi = (__mmask16)(n2 > 16 ? (1u << (n2 - 16)) - 1u : 0u);
    w.out = (__mmask16)(count >= 16 ? 0xFFFFu : (1u << count) - 1u);
    __m512 p0 = _mm512_maskz_loadu_ps(w.lo, r0 + 2 * ow), p1 = _mm512_maskz_loadu_ps(w.hi, r0 + 2 * ow + 16);
    __m512 q0 = _mm512_maskz_loadu_ps(w.lo, r1 + 2 * ow), q1 = _mm512_maskz_loadu_ps(w.hi, r1 + 2 * ow + 16);
    w.a = _mm512_permutex2var_ps(p0, even, p1);
    w.b = _mm512_permutex2var_ps(p0, odd, p1);
    w.c = _mm512_permutex2var_ps(q0, even, q1);
    w.d = _mm512_permutex2var_ps(q0, odd, q1);
    return w;
}

/* LK_TAKES(v, m) ? v : m, lane by lane */
LK_POOL_V4 static inline __m512 lk_pool_take16(__m512 v, __m512 m) {
    __mmask16 k = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(k, m, v);
}

LK_POOL_V4 static void lk_max_pool_halving_forward_f_v4(const float* x, float* y, Py_ssize_t planes,
                                                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) {
    for (Py_ssize_t p = 0; p < planes; ++p)
        for (Py_ssize_t oh = 0; oh < Ho; ++oh) {
            const float* r0 = x + p * H * W + 2 * oh * W;
            float* out = y + (p * Ho + oh) * Wo;
            for (Py_ssize_t ow = 0; ow < Wo; ow += 16) {
                lk_pool_window16 w = lk_pool_corners16(r0, r0 + W, ow, Wo - ow);
                __m512 m = lk_pool_take16(w.d, lk_pool_take16(w.c, lk_pool_take16(w.b, w.a)));
                _mm512_mask_storeu_ps(out + ow, w.out, m);
            }
        }
}

LK_POOL_V4 static void lk_max_pool_halving_backward_f_v4(const float* x, const float* dy, float* dx,
                                                         Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W,
                                                         Py_ssize_t Ho, Py_ssize_t Wo, int relu) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (Py_ssize_t p = 0; p < planes; ++p)
        for (Py_ssize_t oh = 0; oh < Ho; ++oh) {
            const float* r0 = x + p * H * W + 2 * oh * W;
            float* d0 = dx + p * H * W + 2 * oh * W;
            const float* g = dy + (p * Ho + oh) * Wo;
            for (Py_ssize_t ow = 0; ow < Wo; ow += 16) {
                lk_pool_window16 w = lk_pool_corners16(r0, r0 + W, ow, Wo - ow);
                __m512 m = lk_pool_take16(w.d, lk_pool_take16(w.c, lk_pool_take16(w.b, w.a)));
                __m512 grad = _mm512_maskz_loadu_ps(w.out, g + ow);
                __mmask16 e0 = _mm512_cmp_ps_mask(w.a, m, _CMP_EQ_OQ);
                __mmask16 e1 = _mm512_cmp_ps_mask(w.b, m, _CMP_EQ_OQ) & ~e0;
                __mmask16 e2 = _mm512_cmp_ps_mask(w.c, m, _CMP_EQ_OQ) & ~(e0 | e1);
                __mmask16 e3 = ~(e0 | e1 | e2);
                __mmask16 nan = _mm512_cmp_ps_mask(m, m, _CMP_UNORD_Q);
                if (nan) {  /* a NaN: the last one takes the gradient */
                    __mmask16 n3 = _mm512_cmp_ps_mask(w.d, w.d, _CMP_UNORD_Q);
                    __mmask16 n2 = ~n3 & _mm512_cmp_ps_mask(w.c, w.c, _CMP_UNORD_Q);
                    __mmask16 n1 = ~(n3 | n2) & _mm512_cmp_ps_mask(w.b, w.b, _CMP_UNORD_Q);
                    __mmask16 n0 = ~(n3 | n2 | n1);
                    e0 = (e0 & ~nan) | (n0 & nan); e1 = (e1 & ~nan) | (n1 & nan);
                    e2 = (e2 & ~nan) | (n2 & nan); e3 = (e3 & ~nan) | (n3 & nan);
                }
                if (relu) {  /* then a ReLU's backward: x is its output, <= 0 where its input was */
                    e0 &= _mm512_cmp_ps_mask(w.a, zero, _CMP_NLE_UQ); e1 &= _mm512_cmp_ps_mask(w.b, zero, _CMP_NLE_UQ);
                    e2 &= _mm512_cmp_ps_mask(w.c, zero, _CMP_NLE_UQ); e3 &= _mm512_cmp_ps_mask(w.d, zero, _CMP_NLE_UQ);
                }
                __m512 g0 = _mm512_maskz_mov_ps(e0, grad), g1 = _mm512_maskz_mov_ps(e1, grad);
                __m512 g2 = _mm512_maskz_mov_ps(e2, grad), g3 = _mm512_maskz_mov_ps(e3, grad);
                _mm512_mask_storeu_ps(d0 + 2 * ow, w.lo, _mm512_permutex2var_ps(g0, lo, g1));
                _mm512_mask_storeu_ps(d0 + 2 * ow + 16, w.hi, _mm512_permutex2var_ps(g0, hi, g1));
                _mm512_mask_storeu_ps(d0 + W + 2 * ow, w.lo, _mm512_permutex2var_ps(g2, lo, g3));
                _mm512_mask_storeu_ps(d0 + W + 2 * ow + 16, w.hi, _mm512_permutex2var_ps(g2, hi, g3));
            }
        }
}
#define LK_POOL_PICK(v4, scalar) (lk_use_v4() ? (v4) : (scalar))
#else
#define LK_POOL_PICK(v4, scalar) (scalar)
#endif

static void lk_max_pool_halving_forward_f(const float* x, float* y, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W,
                                          Py_ssize_t Ho, Py_ssize_t Wo) {
    LK_POOL_PICK(lk_max_pool_halving_forward_f_v4(x, y, planes, H, W, Ho, Wo),
                 lk_max_pool_halving_forward_f_scalar(x, y, planes, H, W, Ho, Wo));
}
static void lk_max_pool_halving_backward_f(const float* x, const float* dy, float* dx, Py_ssize_t planes,
                                           Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) {
    LK_POOL_PICK(lk_max_pool_halving_backward_f_v4(x, dy, dx, planes, H, W, Ho, Wo, 0),
                 lk_max_pool_halving_backward_f_scalar(x, dy, dx, planes, H, W, Ho, Wo));
}
static void lk_max_pool_relu_halving_backward_f(const float* x, const float* dy, float* dx, Py_ssize_t planes,
                                                Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) {
    LK_POOL_PICK(lk_max_pool_halving_backward_f_v4(x, dy, dx, planes, H, W, Ho, Wo, 1),
                 lk_max_pool_relu_halving_backward_f_scalar(x, dy, dx, planes, H, W, Ho, Wo));
}

#endif
