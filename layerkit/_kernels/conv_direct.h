/* Included by layerkit/_core.pyx through _kernels/conv.pxi: direct convolution of one sample, for stride 1,
 * dilation 1 and one group, without a patch matrix.
 *
 * The input is first copied into ``xp`` (C, Hp, Wp) with its zero padding, Hp = H + padding, Wp = W +
 * padding, so every kernel tap (c, i, j) is a fixed offset c*Hp*Wp + i*Wp + j from an output position's
 * base oh*Wp + ow. Two ways to fill the 64-byte vector lanes:
 *
 *   - by output channel ("channel" kernels, when the channel count is a multiple of the lanes): a vector
 *     holds 16 (float32) or 8 (float64) output channels of one position; each tap multiplies the tap's
 *     weights of those channels by one broadcast input number;
 *   - by position ("spatial" kernels, for few channels): a vector holds consecutive positions
 *     q = oh*Wp + ow of the padded width (the Wp - Wo extra columns are computed and dropped), so a tap is
 *     a load at q + offset.
 *
 * Each keeps its accumulators in registers over all taps (forward) or over all positions (weight
 * gradient), which the patch matrix and a small gemm cannot: on LeNet-5's layers that is about twice as
 * fast (AVX-512, one thread). Sums run in a different order from the gemm's, so results agree with it to
 * rounding, not bit for bit.
 *
 * Scratch layouts and sizes are computed by the caller (``conv.pxi``) with the block sizes below.
 */
#ifndef LAYERKIT_CONV_DIRECT_H
#define LAYERKIT_CONV_DIRECT_H

#include <stddef.h>
#include <string.h>

#include "simd.h"

/* block sizes: spatial forward 6 channels x 4 vectors, spatial weight gradient 6 channels x 3 taps,
 * channel forward 12 positions, channel weight gradient 12 taps */
enum { LK_DC_SF_OB = 6, LK_DC_SF_VB = 4, LK_DC_SW_OB = 6, LK_DC_SW_KB = 3, LK_DC_CF_PB = 12, LK_DC_CW_KB = 12 };

typedef struct {
    ptrdiff_t C, H, W, O, kh, kw, ph, pw, Hp, Wp, Ho, Wo;
} lk_dc_geom;

/* Rows of 10 to 30 numbers (padding, spreading and cropping a sample) are copied by inline loops: GCC would
 * turn each into a call of memcpy, which cost 5% of a LeNet-5 step (perf, batch 256). */
#if defined(__GNUC__) && !defined(__clang__)
#define LK_DC_ROWS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define LK_DC_ROWS
#endif
#define LK_DC_COPY_ROW(dst, src, n) for (ptrdiff_t lk_i_ = 0; lk_i_ < (n); ++lk_i_) (dst)[lk_i_] = (src)[lk_i_]

static inline ptrdiff_t lk_dc_round_up(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b * b; }

/* Each kernel is compiled twice per number type: for AVX-512 (x86-64-v4, with LK_DC_KEEP pinning a vector
 * that GCC would otherwise load again as a memory operand of every multiply-add using it), and for the
 * compiler's default target; the entry points below pick one by the CPU. */
#if LK_HAVE_V4
#define LK_DC_ATTR __attribute__((noinline, target("arch=x86-64-v4")))
#define LK_DC_TARGET __attribute__((target("arch=x86-64-v4")))
#define LK_DC_KEEP(v) __asm__("" : "+v"(v))
#define LK_DC_T float
#define LK_DC_L 16
#define LK_DC_NAME(name) name##_f_v4
#include "conv_direct_impl.h"
#undef LK_DC_T
#undef LK_DC_L
#undef LK_DC_NAME
#define LK_DC_T double
#define LK_DC_L 8
#define LK_DC_NAME(name) name##_d_v4
#include "conv_direct_impl.h"
#undef LK_DC_T
#undef LK_DC_L
#undef LK_DC_NAME
#undef LK_DC_ATTR
#undef LK_DC_TARGET
#undef LK_DC_KEEP
#endif

#define LK_DC_ATTR __attribute__((noinline))
#define LK_DC_TARGET
#define LK_DC_KEEP(v) ((void)0)
#define LK_DC_T float
#define LK_DC_L 16
#define LK_DC_NAME(name) name##_f_any
#include "conv_direct_impl.h"
#undef LK_DC_T
#undef LK_DC_L
#undef LK_DC_NAME
#define LK_DC_T double
#define LK_DC_L 8
#define LK_DC_NAME(name) name##_d_any
#include "conv_direct_impl.h"
#undef LK_DC_T
#undef LK_DC_L
#undef LK_DC_NAME
#undef LK_DC_ATTR
#undef LK_DC_TARGET
#undef LK_DC_KEEP

#if LK_HAVE_V4
#define LK_DC_PICK(name, SUF, ...) (lk_use_v4() ? name##_##SUF##_v4(__VA_ARGS__) : name##_##SUF##_any(__VA_ARGS__))
#else
#define LK_DC_PICK(name, SUF, ...) (name##_##SUF##_any(__VA_ARGS__))
#endif

#define LK_DC_ENTRIES(T, SUF)                                                                                \
static ptrdiff_t lk_dc_scratch_forward_spatial_##SUF(const lk_dc_geom* g) { return lk_dc_scratch_forward_spatial_##SUF##_any(g); } \
static ptrdiff_t lk_dc_scratch_forward_channel_##SUF(const lk_dc_geom* g) { return lk_dc_scratch_forward_channel_##SUF##_any(g); } \
static ptrdiff_t lk_dc_scratch_wgrad_spatial_##SUF(const lk_dc_geom* g) { return lk_dc_scratch_wgrad_spatial_##SUF##_any(g); }     \
static ptrdiff_t lk_dc_scratch_wgrad_channel_##SUF(const lk_dc_geom* g) { return lk_dc_scratch_wgrad_channel_##SUF##_any(g); }     \
static ptrdiff_t lk_dc_scratch_xgrad_wide_##SUF(const lk_dc_geom* g) { return lk_dc_scratch_xgrad_wide_##SUF##_any(g); }         \
static void lk_dc_spread_##SUF(const T* dy, T* dyq, const lk_dc_geom* g) { LK_DC_PICK(lk_dc_spread, SUF, dy, dyq, g); }                \
static void lk_dc_col2im_wide_##SUF(const T* dcolq, T* dxp, T* dx, const lk_dc_geom* g) {                           \
    LK_DC_PICK(lk_dc_col2im_wide, SUF, dcolq, dxp, dx, g); }                                                       \
static void lk_dc_forward_spatial_##SUF(const T* x, const T* w, const T* b, T* y, T* scratch, const lk_dc_geom* g, ptrdiff_t n) { \
    LK_DC_PICK(lk_dc_forward_spatial, SUF, x, w, b, y, scratch, g, n); }                                     \
static void lk_dc_forward_channel_##SUF(const T* x, const T* w, const T* b, T* y, T* scratch, const lk_dc_geom* g, ptrdiff_t n) { \
    LK_DC_PICK(lk_dc_forward_channel, SUF, x, w, b, y, scratch, g, n); }                                     \
static void lk_dc_xgrad_channel_##SUF(const T* dy, const T* w, T* dx, T* scratch, const lk_dc_geom* g, ptrdiff_t n) { \
    LK_DC_PICK(lk_dc_xgrad_channel, SUF, dy, w, dx, scratch, g, n); }                                        \
static void lk_dc_wgrad_channel_##SUF(const T* x, const T* dy, T* dw, T* scratch, const lk_dc_geom* g, ptrdiff_t n) { \
    LK_DC_PICK(lk_dc_wgrad_channel, SUF, x, dy, dw, scratch, g, n); }                                        \
static void lk_dc_wgrad_spatial_##SUF(const T* x, const T* dy, T* dw, T* scratch, const lk_dc_geom* g, ptrdiff_t n) { \
    LK_DC_PICK(lk_dc_wgrad_spatial, SUF, x, dy, dw, scratch, g, n); }

LK_DC_ENTRIES(float, f)
LK_DC_ENTRIES(double, d)

#endif
