/* Included by layerkit/_core.pyx through _kernels/conv.pxi: im2col and col2im of one sample.
 *
 * Plain C with restrict pointers, so that the compiler vectorises the short row copies (10 to 30 numbers
 * in a small conv net) in place instead of calling memcpy for each: Cython's pointers may alias.
 * col has C*kh*kw rows of Ho*Wo numbers, ld apart; row (c, i, j) holds input channel c at kernel offset
 * (i, j) for every output position, zero where it falls in the padding.
 */
#ifndef LAYERKIT_CONV_H
#define LAYERKIT_CONV_H

#include <stddef.h>

/* GCC turns the row copies and zero fills into calls to memcpy and memset (loop distribution into library
 * calls): one call per 10 to 30 numbers, which cost as much as the rest of im2col (perf, LeNet-5). Keep the
 * loops inline. */
#if defined(__GNUC__) && !defined(__clang__)
#define LK_CONV_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define LK_CONV_INLINE_LOOPS
#endif

/* the first output index o with o * stride + offset >= 0 */
static inline Py_ssize_t lk_out_lo(Py_ssize_t offset, Py_ssize_t stride) {
    return offset >= 0 ? 0 : (-offset + stride - 1) / stride;
}

/* one past the last output index o < n_out with o * stride + offset < size */
static inline Py_ssize_t lk_out_hi(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size, Py_ssize_t n_out) {
    if (offset >= size) return 0;
    Py_ssize_t hi = (size - 1 - offset) / stride + 1;
    return hi < n_out ? hi : n_out;
}

#define LK_DEFINE_IM2COL(T, SUFFIX)                                                                      \
static LK_CONV_INLINE_LOOPS void lk_im2col_##SUFFIX(const T* restrict x, T* restrict col, Py_ssize_t ld, Py_ssize_t C,          \
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,   \
                               Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, \
                               Py_ssize_t Ho, Py_ssize_t Wo) {                                           \
    for (Py_ssize_t c = 0; c < C; ++c)                                                                   \
    for (Py_ssize_t i = 0; i < kh; ++i) {                                                                \
        Py_ssize_t off_h = i * dh - ph;                                                                  \
        Py_ssize_t lo_h = lk_out_lo(off_h, sh), hi_h = lk_out_hi(off_h, sh, H, Ho);                      \
        if (lo_h > Ho) lo_h = Ho; /* a tap that sees only padding (it may start past the output) */      \
        if (hi_h < lo_h) hi_h = lo_h;                                                                    \
        for (Py_ssize_t j = 0; j < kw; ++j) {                                                            \
            T* restrict row = col + ((c * kh + i) * kw + j) * ld;                                        \
            Py_ssize_t off_w = j * dw - pw;                                                              \
            Py_ssize_t lo_w = lk_out_lo(off_w, sw), hi_w = lk_out_hi(off_w, sw, W, Wo);                  \
            if (lo_w > Wo) lo_w = Wo;                                                                    \
            if (hi_w < lo_w) hi_w = lo_w;                                                                \
            for (Py_ssize_t p = 0; p < lo_h * Wo; ++p) row[p] = 0;                                       \
            for (Py_ssize_t oh = lo_h; oh < hi_h; ++oh) {                                                \
                T* restrict out = row + oh * Wo;                                                         \
                const T* restrict src = x + (c * H + oh * sh + off_h) * W + off_w;                       \
                for (Py_ssize_t ow = 0; ow < lo_w; ++ow) out[ow] = 0;                                    \
                if (sw == 1) {                                                                           \
                    for (Py_ssize_t ow = lo_w; ow < hi_w; ++ow) out[ow] = src[ow];                       \
                } else {                                                                                 \
                    for (Py_ssize_t ow = lo_w; ow < hi_w; ++ow) out[ow] = src[ow * sw];                  \
                }                                                                                        \
                for (Py_ssize_t ow = hi_w; ow < Wo; ++ow) out[ow] = 0;                                   \
            }                                                                                            \
            for (Py_ssize_t p = hi_h * Wo; p < Ho * Wo; ++p) row[p] = 0;                                 \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* dx (C, H, W) = the adjoint of im2col applied to col: overlapping patches summed */                    \
static LK_CONV_INLINE_LOOPS void lk_col2im_##SUFFIX(const T* restrict col, Py_ssize_t ld, T* restrict dx, Py_ssize_t C,        \
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,   \
                               Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, \
                               Py_ssize_t Ho, Py_ssize_t Wo) {                                           \
    for (Py_ssize_t p = 0; p < C * H * W; ++p) dx[p] = 0;                                                \
    for (Py_ssize_t c = 0; c < C; ++c)                                                                   \
    for (Py_ssize_t i = 0; i < kh; ++i) {                                                                \
        Py_ssize_t off_h = i * dh - ph;                                                                  \
        Py_ssize_t lo_h = lk_out_lo(off_h, sh), hi_h = lk_out_hi(off_h, sh, H, Ho);                      \
        for (Py_ssize_t j = 0; j < kw; ++j) {                                                            \
            const T* restrict row = col + ((c * kh + i) * kw + j) * ld;                                  \
            Py_ssize_t off_w = j * dw - pw;                                                              \
            Py_ssize_t lo_w = lk_out_lo(off_w, sw), hi_w = lk_out_hi(off_w, sw, W, Wo);                  \
            for (Py_ssize_t oh = lo_h; oh < hi_h; ++oh) {                                                \
                const T* restrict in = row + oh * Wo;                                                    \
                T* restrict dst = dx + (c * H + oh * sh + off_h) * W + off_w;                            \
                if (sw == 1) {                                                                           \
                    for (Py_ssize_t ow = lo_w; ow < hi_w; ++ow) dst[ow] += in[ow];                       \
                } else {                                                                                 \
                    for (Py_ssize_t ow = lo_w; ow < hi_w; ++ow) dst[ow * sw] += in[ow];                  \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}

LK_DEFINE_IM2COL(float, f)
LK_DEFINE_IM2COL(double, d)

/* The sum of a[0:n] in 16 interleaved partial sums (then added pairwise): one running sum is a chain of
 * dependent adds that the compiler may not reorder, 4 cycles a number; 16 lanes vectorise. For the bias
 * gradient, which sums every output position of every sample. */
#define LK_DEFINE_SUM(T, SUFFIX)                                                                         \
static inline T lk_sum_##SUFFIX(const T* restrict a, Py_ssize_t n) {                                     \
    T lane[16] = {0};                                                                                    \
    Py_ssize_t i = 0;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                                         \
        for (int k = 0; k < 16; ++k) lane[k] += a[i + k];                                                \
    for (int k = 0; i < n; ++i, ++k) lane[k] += a[i];                                                    \
    for (int w = 8; w >= 1; w /= 2)                                                                      \
        for (int k = 0; k < w; ++k) lane[k] += lane[k + w];                                              \
    return lane[0];                                                                                      \
}

LK_DEFINE_SUM(float, f)
LK_DEFINE_SUM(double, d)

#endif
