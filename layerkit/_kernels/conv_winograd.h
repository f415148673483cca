/* Included by layerkit/_core.pyx through _kernels/conv.pxi: 3x3 convolution with stride 1 by Winograd's
 * minimal filtering F(2x2, 3x3), in float32 on AVX-512 (Lavin and Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016, section 4).
 *
 * Each 2x2 block of outputs ("tile") is computed from the 4x4 input window under it as
 *
 *     Y = A^T [ (G g G^T) * (B^T d B) ] A       (* element by element)
 *
 * with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] and
 * A^T = [1 1 1 0; 0 1 -1 -1]: 16 multiplications per input channel and output channel instead of the
 * direct 36, the rest additions. The kernel's transform U = G g G^T is made once per call (in double,
 * rounded once); per sample, the input is copied once into its zero padding, and then per row of tiles and
 * block of 16 tiles:
 *
 *   - the input transform V = B^T d B of the 16 tiles, for every input channel: each vector holds one of
 *     the 16 transformed values of 16 neighbouring tiles (lanes over tiles; the window's columns of the 16
 *     tiles are the even and odd numbers of two pairs of loads). When a row has at most 8 tiles (outputs
 *     of at most 16 columns), a block holds the tiles of two rows, 8 lanes each, and when it has at most
 *     4 (8 columns), the tiles of four rows, 4 lanes each: the 32 numbers are then 16 columns of two rows
 *     of tiles, or 8 columns of four;
 *   - for each block of 16 output channels and each of the 16 transformed positions, the sum over input
 *     channels of U times V, in 16 vector accumulators (one per output channel): the multiply-adds take
 *     their U as a broadcast operand, as the direct kernels do;
 *   - the output transform A^T M A, the bias, and the 2x2 outputs of the 16 tiles interleaved back into
 *     their output rows (masked stores keep to the columns inside the output).
 *
 * The input gradient of such a layer (with at most 2 zeros of padding on each side) is the same
 * computation on dy, with the kernel flipped and its channels swapped. The sums run in another order and
 * through the transforms, so the result agrees with the direct and im2col kernels to float32 rounding, not
 * bit for bit. The weight gradient, by the transposed algorithm F(3x3, 2x2), is described further down.
 */
#ifndef LAYERKIT_CONV_WINOGRAD_H
#define LAYERKIT_CONV_WINOGRAD_H

#include <stddef.h>
#include <string.h>

#include "conv_direct.h"

/* How the tiles of a sample fill blocks of 16 lanes, and the padded arrays they are read from. */
typedef struct {
    ptrdiff_t groups;      /* rows of tiles per block: 1 (16 tiles of one row), 2 (8 of each of two rows, when
                            * a row has at most 8 tiles) or 4 (4 of each of four, when it has at most 4) */
    ptrdiff_t block_rows;  /* rows of blocks */
    ptrdiff_t blocks;      /* blocks per row of blocks */
    ptrdiff_t Hq, Wq;      /* the padded input: the windows of every block, and the columns they read past */
    ptrdiff_t Hd, Wd;      /* the padded output gradient (the weight gradient) */
} lk_wg_layout;

static inline lk_wg_layout lk_wg_layout_of(const lk_dc_geom* g) {
    lk_wg_layout t;
    ptrdiff_t tiles_h = (g->Ho + 1) / 2, tiles_w = (g->Wo + 1) / 2;
    t.groups = tiles_w <= 4 ? 4 : tiles_w <= 8 ? 2 : 1;
    t.block_rows = (tiles_h + t.groups - 1) / t.groups;
    t.blocks = t.groups > 1 ? 1 : (tiles_w + 15) / 16;
    t.Hq = 2 * t.groups * t.block_rows + 2;
    t.Wq = t.groups == 4 ? 10 : t.groups == 2 ? 18 : 32 * t.blocks + 2;
    t.Hd = 2 * t.groups * t.block_rows;
    t.Wd = t.groups == 4 ? 8 : t.groups == 2 ? 16 : 32 * t.blocks;
    return t;
}

/* scratch (numbers of float): the padded sample, U (16, C, O), V of one block (C, 16, 16), M of one block
 * of output channels (16, 16, 16) */
static inline ptrdiff_t lk_wg_scratch_f(const lk_dc_geom* g) {
    lk_wg_layout t = lk_wg_layout_of(g);
    return g->C * t.Hq * t.Wq + 16 * g->C * g->O + g->C * 256 + 16 * 256 + 16;
}

#if LK_HAVE_V4
typedef float lk_wg_vec __attribute__((vector_size(64)));
typedef int lk_wg_idx __attribute__((vector_size(64)));

#define LK_WG_ATTR __attribute__((noinline, target("arch=x86-64-v4")))
#define LK_WG_LOAD(p) ({ lk_wg_vec lk_v_; memcpy(&lk_v_, (p), sizeof lk_v_); lk_v_; })
#define LK_WG_STORE(p, v) do { lk_wg_vec lk_v_ = (v); memcpy((p), &lk_v_, sizeof lk_v_); } while (0)
#define LK_WG_BCAST(s) ((float)(s) - (lk_wg_vec){0})
/* the 8 numbers at p0, then the 8 at p1 */
#define LK_WG_PAIR8(p0, p1) \
    ((lk_wg_vec)_mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p0)), _mm256_loadu_ps(p1), 1))

/* *a, *b: the 32 numbers of one row of the windows of a block's 16 tiles from r: 32 columns (groups 1), or
 * 16 columns of two rows of tiles (2), or 8 of four (4), the rows ``step`` numbers apart */
static inline __attribute__((always_inline, target("arch=x86-64-v4"))) void lk_wg_load32(const float* r, ptrdiff_t groups, ptrdiff_t step,
                                                             lk_wg_vec* a, lk_wg_vec* b) {
    if (groups == 1) {
        *a = LK_WG_LOAD(r);
        *b = LK_WG_LOAD(r + 16);
    } else if (groups == 2) {
        *a = LK_WG_LOAD(r);
        *b = LK_WG_LOAD(r + step);
    } else {
        *a = LK_WG_PAIR8(r, r + step);
        *b = LK_WG_PAIR8(r + 2 * step, r + 3 * step);
    }
}

/* the even- and the odd-numbered of the 32 numbers in lo, hi (columns 0 and 1 of the windows of 16 tiles) */
#define LK_WG_EVEN(lo, hi) \
    __builtin_shuffle((lo), (hi), (lk_wg_idx){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define LK_WG_ODD(lo, hi) \
    __builtin_shuffle((lo), (hi), (lk_wg_idx){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})

/* U[pos][c][o] = (G g G^T)[pos] for the kernel g of output channel o and input channel c; ``flip``: g is
 * w[c][o] turned by 180 degrees (the input gradient's kernel), w being (C_out, C_in, 3, 3) of the layer */
static void lk_wg_weights(const float* restrict w, float* restrict U, ptrdiff_t C, ptrdiff_t O, int flip) {
    for (ptrdiff_t o = 0; o < O; ++o)
        for (ptrdiff_t c = 0; c < C; ++c) {
            double k[3][3], t[4][3];
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j)
                    k[i][j] = flip ? w[(c * O + o) * 9 + (2 - i) * 3 + (2 - j)] : w[(o * C + c) * 9 + i * 3 + j];
            for (int j = 0; j < 3; ++j) {  /* t = G k */
                t[0][j] = k[0][j];
                t[1][j] = 0.5 * (k[0][j] + k[1][j] + k[2][j]);
                t[2][j] = 0.5 * (k[0][j] - k[1][j] + k[2][j]);
                t[3][j] = k[2][j];
            }
            for (int i = 0; i < 4; ++i) {  /* U = t G^T */
                double u[4] = {t[i][0], 0.5 * (t[i][0] + t[i][1] + t[i][2]), 0.5 * (t[i][0] - t[i][1] + t[i][2]),
                               t[i][2]};
                for (int j = 0; j < 4; ++j) U[((i * 4 + j) * C + c) * O + o] = (float)u[j];
            }
        }
}

/* V = B^T d B of the 16 tiles whose windows start at ``rows`` (the window's first row of channel 0; the
 * next tiles 2 columns on each, in ``groups`` rows of tiles 2 rows apart): the vector of channel c and
 * position pos at V + c * c_step + pos * pos_step */
LK_WG_ATTR static void lk_wg_input_block(const float* restrict rows, float* restrict V, ptrdiff_t C,
                                         ptrdiff_t plane, ptrdiff_t Wq, ptrdiff_t groups, ptrdiff_t c_step,
                                         ptrdiff_t pos_step) {
    for (ptrdiff_t c = 0; c < C; ++c) {
        lk_wg_vec t[4][4];
        for (int i = 0; i < 4; ++i) {
            const float* r = rows + c * plane + i * Wq;
            lk_wg_vec a, b, a2, b2;
            lk_wg_load32(r, groups, 2 * Wq, &a, &b);
            lk_wg_load32(r + 2, groups, 2 * Wq, &a2, &b2);
            lk_wg_vec d0 = LK_WG_EVEN(a, b), d1 = LK_WG_ODD(a, b), d2 = LK_WG_EVEN(a2, b2), d3 = LK_WG_ODD(a2, b2);
            t[i][0] = d0 - d2;  /* d B */
            t[i][1] = d1 + d2;
            t[i][2] = d2 - d1;
            t[i][3] = d1 - d3;
        }
        float* v = V + c * c_step;
        for (int j = 0; j < 4; ++j) {  /* B^T (d B) */
            LK_WG_STORE(v + (0 * 4 + j) * pos_step, t[0][j] - t[2][j]);
            LK_WG_STORE(v + (1 * 4 + j) * pos_step, t[1][j] + t[2][j]);
            LK_WG_STORE(v + (2 * 4 + j) * pos_step, t[2][j] - t[1][j]);
            LK_WG_STORE(v + (3 * 4 + j) * pos_step, t[1][j] - t[3][j]);
        }
    }
}

/* M (16 output channels, 16 positions, 16 tiles) = sum over c of U[pos][c][o0 + k] * V[c][pos] */
LK_WG_ATTR static void lk_wg_products(const float* restrict U, const float* restrict V, float* restrict M,
                                      ptrdiff_t C, ptrdiff_t O, ptrdiff_t o0) {
    for (int pos = 0; pos < 16; ++pos) {
        lk_wg_vec acc[16];
#pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) acc[k] = (lk_wg_vec){0};
        const float* u = U + pos * C * O + o0;
        const float* v = V + pos * 16;
        for (ptrdiff_t c = 0; c < C; ++c, u += O, v += 256) {
            lk_wg_vec vv = LK_WG_LOAD(v);
#pragma GCC unroll 16
            for (int k = 0; k < 16; ++k) acc[k] += LK_WG_BCAST(u[k]) * vv;
        }
#pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) LK_WG_STORE(M + (k * 16 + pos) * 16, acc[k]);
    }
}

/* the outputs of the block's tiles for 16 output channels: y + o0 * plane is channel o0's output at the
 * block's first tile. groups 1: 32 columns of 2 rows, of which rows[0] rows and cols[0] + cols[1] columns are
 * inside the output; groups 2 or 4: 16 or 8 columns of the 2 rows of each of that many rows of tiles (2
 * output rows apart), rows[g] rows of group g and cols[0] columns inside the output */
LK_WG_ATTR static void lk_wg_output_block(const float* restrict M, const float* restrict b, float* restrict y,
                                          ptrdiff_t plane, ptrdiff_t Wo, ptrdiff_t groups, const ptrdiff_t* rows,
                                          const ptrdiff_t* cols) {
    const lk_wg_idx low = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const lk_wg_idx high = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __mmask16 mask0 = (__mmask16)((1u << cols[0]) - 1), mask1 = (__mmask16)((1u << cols[1]) - 1);
    for (int k = 0; k < 16; ++k) {
        const float* m = M + k * 256;
        lk_wg_vec s[2][4];
        for (int j = 0; j < 4; ++j) {  /* A^T M */
            lk_wg_vec m0 = LK_WG_LOAD(m + (0 * 4 + j) * 16), m1 = LK_WG_LOAD(m + (1 * 4 + j) * 16);
            lk_wg_vec m2 = LK_WG_LOAD(m + (2 * 4 + j) * 16), m3 = LK_WG_LOAD(m + (3 * 4 + j) * 16);
            s[0][j] = m0 + m1 + m2;
            s[1][j] = m1 - m2 - m3;
        }
        lk_wg_vec bias = LK_WG_BCAST(b ? b[k] : 0.0f);
        for (int r = 0; r < 2; ++r) {  /* (A^T M) A, plus the bias */
            lk_wg_vec y0 = s[r][0] + s[r][1] + s[r][2] + bias, y1 = s[r][1] - s[r][2] - s[r][3] + bias;
            __m512 lo = (__m512)__builtin_shuffle(y0, y1, low), hi = (__m512)__builtin_shuffle(y0, y1, high);
            float* out = y + k * plane + r * Wo;
            if (groups == 1) {  /* (masked: the columns inside the output) */
                if (r < rows[0]) {
                    _mm512_mask_storeu_ps(out, mask0, lo);
                    _mm512_mask_storeu_ps(out + 16, mask1, hi);
                }
            } else if (groups == 2) {
                if (r < rows[0]) _mm512_mask_storeu_ps(out, mask0, lo);
                if (r < rows[1]) _mm512_mask_storeu_ps(out + 2 * Wo, mask0, hi);
            } else {  /* the upper 8 lanes of each moved down to be stored as the next group's row */
                if (r < rows[0]) _mm512_mask_storeu_ps(out, mask0, lo);
                if (r < rows[1]) _mm512_mask_storeu_ps(out + 2 * Wo, mask0, _mm512_shuffle_f32x4(lo, lo, 0xEE));
                if (r < rows[2]) _mm512_mask_storeu_ps(out + 4 * Wo, mask0, hi);
                if (r < rows[3]) _mm512_mask_storeu_ps(out + 6 * Wo, mask0, _mm512_shuffle_f32x4(hi, hi, 0xEE));
            }
        }
    }
}

/* y (n, O, Ho, Wo) = conv(x (n, C, H, W), w) + b (b NULL: none) for the 3x3 geometry g (stride 1, padding
 * g->ph, g->pw before; Hp, Wp the padded size); O % 16 == 0. ``flip``: w is (C, O, 3, 3), used turned and
 * transposed (the input gradient: x is dy, y is dx). */
LK_WG_ATTR static void lk_wg_forward_f(const float* restrict x, const float* restrict w, const float* restrict b,
                                       float* restrict y, float* restrict scratch, const lk_dc_geom* g,
                                       ptrdiff_t n, int flip) {
    const lk_wg_layout t = lk_wg_layout_of(g);
    const ptrdiff_t C = g->C, O = g->O, Wq = t.Wq, plane = t.Hq * Wq, P = g->Ho * g->Wo, Wo = g->Wo;
    float* xp = scratch;
    float* U = xp + C * plane;
    float* V = U + 16 * C * O;
    float* M = V + C * 256;
    lk_wg_weights(w, U, C, O, flip);
    memset(xp, 0, (size_t)(C * plane) * sizeof(float));
    for (ptrdiff_t s = 0; s < n; ++s) {
        const float* xs = x + s * C * g->H * g->W;
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t h = 0; h < g->H; ++h)
                memcpy(xp + c * plane + (g->ph + h) * Wq + g->pw, xs + (c * g->H + h) * g->W,
                       (size_t)g->W * sizeof(float));
        float* ys = y + s * O * P;
        for (ptrdiff_t br = 0; br < t.block_rows; ++br)
            for (ptrdiff_t block = 0; block < t.blocks; ++block) {
                ptrdiff_t h0 = 2 * t.groups * br, w0 = 32 * block, rows[4], cols[2];
                for (int group = 0; group < 4; ++group) {  /* the output rows of each row of tiles */
                    ptrdiff_t left = g->Ho - h0 - 2 * group;
                    rows[group] = left < 0 ? 0 : left < 2 ? left : 2;
                }
                cols[0] = Wo - w0 < 16 ? Wo - w0 : 16;  /* (groups 2 and 4: Wo, at most 16 or 8) */
                cols[1] = Wo - w0 - 16 < 0 ? 0 : Wo - w0 - 16 < 16 ? Wo - w0 - 16 : 16;
                lk_wg_input_block(xp + h0 * Wq + w0, V, C, plane, Wq, t.groups, 256, 16);
                for (ptrdiff_t o0 = 0; o0 < O; o0 += 16) {
                    lk_wg_products(U, V, M, C, O, o0);
                    lk_wg_output_block(M, b ? b + o0 : NULL, ys + o0 * P + h0 * Wo + w0, P, Wo, t.groups, rows,
                                       cols);
                }
            }
    }
}

/* ---------------------------------------------------------------- weight gradient, F(3x3, 2x2)
 * The weight gradient of a tile is the correlation of its 4x4 window with its 2x2 output gradient, the
 * transpose of the forward's bilinear map in the kernel: dW_tile = G^T [ (A dy A^T) * (B^T x B) ] G, with the
 * same matrices. The sum over tiles is taken before the last transform: S[pos][o][c] accumulates
 * (A dy A^T)[pos] * (B^T x B)[pos] over every tile of every sample (16 tiles per vector, the lanes added
 * at the end), so only 16 multiplications per tile and channel pair remain. */

/* D = A g A^T of the 16 tiles' 2x2 output gradients g at ``rows`` (the block's first tile in the padded
 * gradient, Wd numbers a row; ``groups`` rows of tiles as for lk_wg_input_block): the vector of channel o
 * and position pos at D + o * o_step + pos * pos_step */
LK_WG_ATTR static void lk_wg_grad_block(const float* restrict rows, float* restrict D, ptrdiff_t O,
                                        ptrdiff_t plane, ptrdiff_t Wd, ptrdiff_t groups, ptrdiff_t o_step,
                                        ptrdiff_t pos_step) {
    for (ptrdiff_t o = 0; o < O; ++o) {
        lk_wg_vec u[2][4];
        for (int a = 0; a < 2; ++a) {
            const float* r = rows + o * plane + a * Wd;
            lk_wg_vec lo, hi;
            lk_wg_load32(r, groups, 2 * Wd, &lo, &hi);
            lk_wg_vec g0 = LK_WG_EVEN(lo, hi), g1 = LK_WG_ODD(lo, hi);
            u[a][0] = g0;  /* g A^T */
            u[a][1] = g0 + g1;
            u[a][2] = g0 - g1;
            u[a][3] = -g1;
        }
        float* d = D + o * o_step;
        for (int j = 0; j < 4; ++j) {  /* A (g A^T) */
            LK_WG_STORE(d + (0 * 4 + j) * pos_step, u[0][j]);
            LK_WG_STORE(d + (1 * 4 + j) * pos_step, u[0][j] + u[1][j]);
            LK_WG_STORE(d + (2 * 4 + j) * pos_step, u[0][j] - u[1][j]);
            LK_WG_STORE(d + (3 * 4 + j) * pos_step, -u[1][j]);
        }
    }
}

/* S[pos][o][c] += sum over the sample's tb blocks of D[pos][o][tb] * V[pos][c][tb], 4 x 4 channel pairs at a
 * time in registers; O % 4 == 0, C % 4 == 0 */
LK_WG_ATTR static void lk_wg_accumulate(const float* restrict V, const float* restrict D, float* restrict S,
                                        ptrdiff_t C, ptrdiff_t O, ptrdiff_t TB) {
    for (int pos = 0; pos < 16; ++pos)
        for (ptrdiff_t o0 = 0; o0 < O; o0 += 4)
            for (ptrdiff_t c0 = 0; c0 < C; c0 += 4) {
                lk_wg_vec acc[4][4];
                float* s = S + ((pos * O + o0) * C + c0) * 16;
#pragma GCC unroll 4
                for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
                    for (int j = 0; j < 4; ++j) acc[i][j] = LK_WG_LOAD(s + (i * C + j) * 16);
                const float* d = D + (pos * O + o0) * TB * 16;
                const float* v = V + (pos * C + c0) * TB * 16;
                for (ptrdiff_t tb = 0; tb < TB; ++tb) {
                    lk_wg_vec dv[4], vv[4];
#pragma GCC unroll 4
                    for (int i = 0; i < 4; ++i) {
                        dv[i] = LK_WG_LOAD(d + (i * TB + tb) * 16);
                        vv[i] = LK_WG_LOAD(v + (i * TB + tb) * 16);
                    }
#pragma GCC unroll 4
                    for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
                        for (int j = 0; j < 4; ++j) acc[i][j] += dv[i] * vv[j];
                }
#pragma GCC unroll 4
                for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
                    for (int j = 0; j < 4; ++j) LK_WG_STORE(s + (i * C + j) * 16, acc[i][j]);
            }
}

/* samples whose tiles one accumulation takes: at least 8 blocks, so that the sums' loads and stores are
 * few beside the multiply-adds, while their transforms stay within 512 KB (in the L2 cache: two samples of
 * 28x28 maps of 16 channels, 900 KB, ran 15% slower than one) */
static inline ptrdiff_t lk_wg_wgrad_chunk(const lk_wg_layout* t, ptrdiff_t channels) {
    ptrdiff_t TB = t->block_rows * t->blocks, chunk = (8 + TB - 1) / TB, fits = (1 << 17) / (channels * TB * 256);
    return chunk < fits ? chunk : fits > 1 ? fits : 1;
}

/* dw (O, C, 3, 3) = the weight gradient for x (n, C, H, W) and dy (n, O, Ho, Wo) of the 3x3 geometry g
 * (stride 1); O % 4 == 0 and C % 4 == 0 */
LK_WG_ATTR static void lk_wg_wgrad_f(const float* restrict x, const float* restrict dy, float* restrict dw,
                                     float* restrict scratch, const lk_dc_geom* g, ptrdiff_t n) {
    const lk_wg_layout t = lk_wg_layout_of(g);
    const ptrdiff_t C = g->C, O = g->O, Wq = t.Wq, plane = t.Hq * Wq, TB = t.block_rows * t.blocks;
    const ptrdiff_t Wd = t.Wd, plane_d = t.Hd * Wd, P = g->Ho * g->Wo;
    float* xp = scratch;
    float* dyq = xp + C * plane;
    const ptrdiff_t chunk = lk_wg_wgrad_chunk(&t, C + O);
    float* V = dyq + O * plane_d;
    float* D = V + C * chunk * TB * 256;
    float* S = D + O * chunk * TB * 256;
    memset(xp, 0, (size_t)(C * plane) * sizeof(float));
    memset(dyq, 0, (size_t)(O * plane_d) * sizeof(float));  /* outside the output: no gradient */
    memset(S, 0, (size_t)(256 * O * C) * sizeof(float));
    for (ptrdiff_t s0 = 0; s0 < n; s0 += chunk) {
      const ptrdiff_t count = n - s0 < chunk ? n - s0 : chunk, TBc = count * TB;
      for (ptrdiff_t s = s0; s < s0 + count; ++s) {
        const float* xs = x + s * C * g->H * g->W;
        const float* ds = dy + s * O * P;
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t h = 0; h < g->H; ++h)
                memcpy(xp + c * plane + (g->ph + h) * Wq + g->pw, xs + (c * g->H + h) * g->W,
                       (size_t)g->W * sizeof(float));
        for (ptrdiff_t o = 0; o < O; ++o)
            for (ptrdiff_t h = 0; h < g->Ho; ++h)
                memcpy(dyq + o * plane_d + h * Wd, ds + (o * g->Ho + h) * g->Wo, (size_t)g->Wo * sizeof(float));
        for (ptrdiff_t br = 0; br < t.block_rows; ++br)
            for (ptrdiff_t block = 0; block < t.blocks; ++block) {
                ptrdiff_t tb = (s - s0) * TB + br * t.blocks + block, h0 = 2 * t.groups * br, w0 = 32 * block;
                lk_wg_input_block(xp + h0 * Wq + w0, V + tb * 16, C, plane, Wq, t.groups, TBc * 16, C * TBc * 16);
                lk_wg_grad_block(dyq + h0 * Wd + w0, D + tb * 16, O, plane_d, Wd, t.groups, TBc * 16, O * TBc * 16);
            }
      }
      lk_wg_accumulate(V, D, S, C, O, TBc);
    }
    for (ptrdiff_t o = 0; o < O; ++o)  /* the lanes added, then dW = G^T S G */
        for (ptrdiff_t c = 0; c < C; ++c) {
            double m[4][4], t[3][4];
            for (int pos = 0; pos < 16; ++pos) {
                const float* lanes = S + ((pos * O + o) * C + c) * 16;
                double total = 0;
                for (int l = 0; l < 16; ++l) total += lanes[l];
                m[pos / 4][pos % 4] = total;
            }
            for (int q = 0; q < 4; ++q) {  /* t = G^T m */
                t[0][q] = m[0][q] + 0.5 * (m[1][q] + m[2][q]);
                t[1][q] = 0.5 * (m[1][q] - m[2][q]);
                t[2][q] = 0.5 * (m[1][q] + m[2][q]) + m[3][q];
            }
            float* out = dw + (o * C + c) * 9;
            for (int i = 0; i < 3; ++i) {  /* (G^T m) G */
                out[i * 3 + 0] = (float)(t[i][0] + 0.5 * (t[i][1] + t[i][2]));
                out[i * 3 + 1] = (float)(0.5 * (t[i][1] - t[i][2]));
                out[i * 3 + 2] = (float)(0.5 * (t[i][1] + t[i][2]) + t[i][3]);
            }
        }
}

static inline ptrdiff_t lk_wg_wgrad_scratch_f(const lk_dc_geom* g) {
    lk_wg_layout t = lk_wg_layout_of(g);
    return g->C * t.Hq * t.Wq + g->O * t.Hd * t.Wd
           + (g->C + g->O) * lk_wg_wgrad_chunk(&t, g->C + g->O) * t.block_rows * t.blocks * 256 + 256 * g->O * g->C;
}
#else
static inline ptrdiff_t lk_wg_wgrad_scratch_f(const lk_dc_geom* g) { (void)g; return 0; }
static void lk_wg_wgrad_f(const float* x, const float* dy, float* dw, float* scratch, const lk_dc_geom* g,
                          ptrdiff_t n) {
    (void)x; (void)dy; (void)dw; (void)scratch; (void)g; (void)n;  /* never called */
}
static void lk_wg_forward_f(const float* x, const float* w, const float* b, float* y, float* scratch,
                            const lk_dc_geom* g, ptrdiff_t n, int flip) {
    (void)x; (void)w; (void)b; (void)y; (void)scratch; (void)g; (void)n; (void)flip;  /* never called */
}
#endif

#endif
