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
 *     tiles are the even and odd numbers of two pairs of loads);
 *   - for each block of 16 output channels and each of the 16 transformed positions, the sum over input
 *     channels of U times V, in 16 vector accumulators (one per output channel): the multiply-adds take
 *     their U as a broadcast operand, as the direct kernels do;
 *   - the output transform A^T M A, the bias, and the 2x2 outputs of the 16 tiles interleaved back into
 *     two output rows.
 *
 * The input gradient of such a layer (with at most 2 zeros of padding on each side) is the same
 * computation on dy, with the kernel flipped and its channels swapped. The sums run in another order and
 * through the transforms, so the result agrees with the direct and im2col kernels to float32 rounding, not
 * bit for bit (torch's oneDNN backend computes such layers by Winograd too).
 */
#ifndef LAYERKIT_CONV_WINOGRAD_H
#define LAYERKIT_CONV_WINOGRAD_H

#include <stddef.h>
#include <string.h>

#include "conv_direct.h"

/* the padded input's rows and columns: whole tiles, and whole blocks of 16 tiles plus the two columns the
 * last window reads past them */
static inline ptrdiff_t lk_wg_rows(const lk_dc_geom* g) { return 2 * ((g->Ho + 1) / 2) + 2; }
static inline ptrdiff_t lk_wg_cols(const lk_dc_geom* g) { return 32 * (((g->Wo + 1) / 2 + 15) / 16) + 2; }

/* scratch (numbers of float): the padded sample, U (16, C, O), V of one block (C, 16, 16), M of one block
 * of output channels (16, 16, 16) */
static inline ptrdiff_t lk_wg_scratch_f(const lk_dc_geom* g) {
    return g->C * lk_wg_rows(g) * lk_wg_cols(g) + 16 * g->C * g->O + g->C * 256 + 16 * 256 + 16;
}

#if LK_HAVE_V4
typedef float lk_wg_vec __attribute__((vector_size(64)));
typedef int lk_wg_idx __attribute__((vector_size(64)));

#define LK_WG_ATTR __attribute__((noinline, target("arch=x86-64-v4")))
#define LK_WG_LOAD(p) ({ lk_wg_vec lk_v_; memcpy(&lk_v_, (p), sizeof lk_v_); lk_v_; })
#define LK_WG_STORE(p, v) do { lk_wg_vec lk_v_ = (v); memcpy((p), &lk_v_, sizeof lk_v_); } while (0)
#define LK_WG_BCAST(s) ((float)(s) - (lk_wg_vec){0})

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
 * next tiles 2 columns on each): the vector of channel c and position pos at V + c * c_step + pos * pos_step */
LK_WG_ATTR static void lk_wg_input_block(const float* restrict rows, float* restrict V, ptrdiff_t C,
                                         ptrdiff_t plane, ptrdiff_t Wq, ptrdiff_t c_step, ptrdiff_t pos_step) {
    const lk_wg_idx even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const lk_wg_idx odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    for (ptrdiff_t c = 0; c < C; ++c) {
        lk_wg_vec t[4][4];
        for (int i = 0; i < 4; ++i) {
            const float* r = rows + c * plane + i * Wq;
            lk_wg_vec a = LK_WG_LOAD(r), b = LK_WG_LOAD(r + 16), a2 = LK_WG_LOAD(r + 2), b2 = LK_WG_LOAD(r + 18);
            lk_wg_vec d0 = __builtin_shuffle(a, b, even), d1 = __builtin_shuffle(a, b, odd);
            lk_wg_vec d2 = __builtin_shuffle(a2, b2, even), d3 = __builtin_shuffle(a2, b2, odd);
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

/* the outputs of the block's tiles for 16 output channels: y + o0 * plane is channel o0's output row 2 ty,
 * ``count`` of the 16 tiles are inside the output (columns 32 * block to 32 * block + 2 * count - 1) */
LK_WG_ATTR static void lk_wg_output_block(const float* restrict M, const float* restrict b, float* restrict y,
                                          ptrdiff_t Ho_left, ptrdiff_t Wo_left, ptrdiff_t plane, ptrdiff_t Wo) {
    const lk_wg_idx low = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const lk_wg_idx high = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
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
        for (int r = 0; r < 2 && r < Ho_left; ++r) {  /* (A^T M) A, plus the bias */
            lk_wg_vec y0 = s[r][0] + s[r][1] + s[r][2] + bias, y1 = s[r][1] - s[r][2] - s[r][3] + bias;
            lk_wg_vec lo = __builtin_shuffle(y0, y1, low), hi = __builtin_shuffle(y0, y1, high);
            float* out = y + k * plane + r * Wo;
            if (Wo_left >= 32) {
                LK_WG_STORE(out, lo);
                LK_WG_STORE(out + 16, hi);
            } else {
                float lanes[32];
                LK_WG_STORE(lanes, lo);
                LK_WG_STORE(lanes + 16, hi);
                for (ptrdiff_t q = 0; q < Wo_left; ++q) out[q] = lanes[q];
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
    const ptrdiff_t C = g->C, O = g->O, Hq = lk_wg_rows(g), Wq = lk_wg_cols(g), plane = Hq * Wq;
    const ptrdiff_t tiles_h = (g->Ho + 1) / 2, blocks = ((g->Wo + 1) / 2 + 15) / 16, P = g->Ho * g->Wo;
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
        for (ptrdiff_t ty = 0; ty < tiles_h; ++ty)
            for (ptrdiff_t block = 0; block < blocks; ++block) {
                lk_wg_input_block(xp + 2 * ty * Wq + 32 * block, V, C, plane, Wq, 256, 16);
                for (ptrdiff_t o0 = 0; o0 < O; o0 += 16) {
                    lk_wg_products(U, V, M, C, O, o0);
                    lk_wg_output_block(M, b ? b + o0 : NULL, ys + o0 * P + 2 * ty * g->Wo + 32 * block,
                                       g->Ho - 2 * ty, g->Wo - 32 * block, P, g->Wo);
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

/* D = A g A^T of the 16 tiles' 2x2 output gradients g at ``rows`` (row 2 ty, column 32 * block of the padded
 * gradient; Wd numbers a row): the vector of channel o and position pos at D + o * o_step + pos * pos_step */
LK_WG_ATTR static void lk_wg_grad_block(const float* restrict rows, float* restrict D, ptrdiff_t O,
                                        ptrdiff_t plane, ptrdiff_t Wd, ptrdiff_t o_step, ptrdiff_t pos_step) {
    const lk_wg_idx even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const lk_wg_idx odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    for (ptrdiff_t o = 0; o < O; ++o) {
        lk_wg_vec u[2][4];
        for (int a = 0; a < 2; ++a) {
            const float* r = rows + o * plane + a * Wd;
            lk_wg_vec lo = LK_WG_LOAD(r), hi = LK_WG_LOAD(r + 16);
            lk_wg_vec g0 = __builtin_shuffle(lo, hi, even), g1 = __builtin_shuffle(lo, hi, odd);
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

/* dw (O, C, 3, 3) = the weight gradient for x (n, C, H, W) and dy (n, O, Ho, Wo) of the 3x3 geometry g
 * (stride 1); O % 4 == 0 and C % 4 == 0 */
LK_WG_ATTR static void lk_wg_wgrad_f(const float* restrict x, const float* restrict dy, float* restrict dw,
                                     float* restrict scratch, const lk_dc_geom* g, ptrdiff_t n) {
    const ptrdiff_t C = g->C, O = g->O, Hq = lk_wg_rows(g), Wq = lk_wg_cols(g), plane = Hq * Wq;
    const ptrdiff_t tiles_h = (g->Ho + 1) / 2, blocks = ((g->Wo + 1) / 2 + 15) / 16, TB = tiles_h * blocks;
    const ptrdiff_t Hd = 2 * tiles_h, Wd = 32 * blocks, plane_d = Hd * Wd, P = g->Ho * g->Wo;
    float* xp = scratch;
    float* dyq = xp + C * plane;
    float* V = dyq + O * plane_d;
    float* D = V + C * TB * 256;
    float* S = D + O * TB * 256;
    memset(xp, 0, (size_t)(C * plane) * sizeof(float));
    memset(dyq, 0, (size_t)(O * plane_d) * sizeof(float));  /* outside the output: no gradient */
    memset(S, 0, (size_t)(256 * O * C) * sizeof(float));
    for (ptrdiff_t s = 0; s < n; ++s) {
        const float* xs = x + s * C * g->H * g->W;
        const float* ds = dy + s * O * P;
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t h = 0; h < g->H; ++h)
                memcpy(xp + c * plane + (g->ph + h) * Wq + g->pw, xs + (c * g->H + h) * g->W,
                       (size_t)g->W * sizeof(float));
        for (ptrdiff_t o = 0; o < O; ++o)
            for (ptrdiff_t h = 0; h < g->Ho; ++h)
                memcpy(dyq + o * plane_d + h * Wd, ds + (o * g->Ho + h) * g->Wo, (size_t)g->Wo * sizeof(float));
        for (ptrdiff_t ty = 0; ty < tiles_h; ++ty)
            for (ptrdiff_t block = 0; block < blocks; ++block) {
                ptrdiff_t tb = ty * blocks + block;
                lk_wg_input_block(xp + 2 * ty * Wq + 32 * block, V + tb * 16, C, plane, Wq, TB * 16, C * TB * 16);
                lk_wg_grad_block(dyq + 2 * ty * Wd + 32 * block, D + tb * 16, O, plane_d, Wd, TB * 16,
                                 O * TB * 16);
            }
        lk_wg_accumulate(V, D, S, C, O, TB);
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
    ptrdiff_t tiles_h = (g->Ho + 1) / 2, blocks = ((g->Wo + 1) / 2 + 15) / 16, TB = tiles_h * blocks;
    return g->C * lk_wg_rows(g) * lk_wg_cols(g) + g->O * 2 * tiles_h * 32 * blocks + (g->C + g->O) * TB * 256
           + 256 * g->O * g->C;
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
