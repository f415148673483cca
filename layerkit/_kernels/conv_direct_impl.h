/* The direct convolution kernels of conv_direct.h, for one number type: included once with
 * LK_DC_T = float (LK_DC_L = 16 lanes) and once with double (8 lanes); LK_DC_NAME suffixes the names. */

#define T LK_DC_T
#define L LK_DC_L
#define V LK_DC_NAME(lk_dc_vec)
typedef T V __attribute__((vector_size(64)));

/* unaligned loads and stores (macros, not functions: a function returning a 64-byte vector changes the
 * ABI between the clones) */
#define LOAD(p) ({ V lk_v_; memcpy(&lk_v_, (p), sizeof lk_v_); lk_v_; })
#define STORE(p, v) do { V lk_v_ = (v); memcpy((p), &lk_v_, sizeof lk_v_); } while (0)
#define BCAST(s) ((T)(s) - (V){0})  /* x - (+0) folds to x, so this is a plain broadcast (x + 0 is not) */

/* numbers read past the last padded channel by the spatial kernels (their dropped lanes) */
static inline ptrdiff_t LK_DC_NAME(lk_dc_tail)(const lk_dc_geom* g) {
    ptrdiff_t lq = g->Ho * g->Wp, nvp = lk_dc_round_up((lq + L - 1) / L, LK_DC_SF_VB);
    return nvp * L - lq + g->kw + L;
}

/* xp (C, Hp, Wp) and the tail after it all zero: once per call, as only the interior rows are written per
 * sample (the padding stays zero) */
static void LK_DC_NAME(lk_dc_pad_zero)(T* restrict xp, const lk_dc_geom* g) {
    memset(xp, 0, (size_t)(g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g)) * sizeof(T));
}

/* sample x (C, H, W) into the interior of xp (C, Hp, Wp) (ph, pw before; the rest after) */
LK_DC_ROWS LK_DC_TARGET static void LK_DC_NAME(lk_dc_pad)(const T* restrict x, T* restrict xp, const lk_dc_geom* g) {
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t h = 0; h < g->H; ++h)
            LK_DC_COPY_ROW(xp + (c * g->Hp + g->ph + h) * g->Wp + g->pw, x + (c * g->H + h) * g->W, g->W);
}

/* the offset of tap k = (c, i, j) from an output position's base in xp */
static inline ptrdiff_t LK_DC_NAME(lk_dc_tap)(const lk_dc_geom* g, ptrdiff_t k) {
    ptrdiff_t taps = g->kh * g->kw, c = k / taps, r = k % taps;
    return c * g->Hp * g->Wp + (r / g->kw) * g->Wp + r % g->kw;
}

/* ---------------------------------------------------------------- scratch sizes (numbers of T) */
static inline ptrdiff_t LK_DC_NAME(lk_dc_scratch_forward_spatial)(const lk_dc_geom* g) {
    ptrdiff_t K = g->C * g->kh * g->kw, OP = lk_dc_round_up(g->O, LK_DC_SF_OB);
    ptrdiff_t nvp = lk_dc_round_up((g->Ho * g->Wp + L - 1) / L, LK_DC_SF_VB);
    return g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g) + OP * K + OP * nvp * L;
}
static inline ptrdiff_t LK_DC_NAME(lk_dc_scratch_forward_channel)(const lk_dc_geom* g) {
    return g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g) + g->C * g->kh * g->kw * g->O;
}
static inline ptrdiff_t LK_DC_NAME(lk_dc_scratch_wgrad_spatial)(const lk_dc_geom* g) {
    ptrdiff_t K = g->C * g->kh * g->kw, OP = lk_dc_round_up(g->O, LK_DC_SW_OB);
    ptrdiff_t KP = lk_dc_round_up(K, LK_DC_SW_KB), nv = (g->Ho * g->Wp + L - 1) / L;
    return g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g) + OP * nv * L + OP * KP * L;
}
static inline ptrdiff_t LK_DC_NAME(lk_dc_scratch_wgrad_channel)(const lk_dc_geom* g) {
    ptrdiff_t K = g->C * g->kh * g->kw, KP = lk_dc_round_up(K, LK_DC_CW_KB);
    return g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g) + g->Ho * g->Wo * g->O + KP * g->O;
}

/* ---------------------------------------------------------------- forward, lanes over positions */
/* y (n, O, Ho, Wo) = conv(x (n, C, H, W), w (O, K)) + b (or no bias: b NULL) */
LK_DC_ATTR static void LK_DC_NAME(lk_dc_forward_spatial)(const T* restrict x, const T* restrict w,
                                                           const T* restrict b, T* restrict y, T* restrict scratch,
                                                           const lk_dc_geom* g, ptrdiff_t n) {
    const ptrdiff_t K = g->C * g->kh * g->kw, Sp = g->Hp * g->Wp, Lq = g->Ho * g->Wp;
    const ptrdiff_t nvp = lk_dc_round_up((Lq + L - 1) / L, LK_DC_SF_VB), Lqp = nvp * L;
    const ptrdiff_t OP = lk_dc_round_up(g->O, LK_DC_SF_OB);
    T* xp = scratch;
    T* wp = xp + g->C * Sp + LK_DC_NAME(lk_dc_tail)(g);
    T* yq = wp + OP * K;
    memset(wp, 0, (size_t)(OP * K) * sizeof(T));
    memcpy(wp, w, (size_t)(g->O * K) * sizeof(T));
    LK_DC_NAME(lk_dc_pad_zero)(xp, g);
    for (ptrdiff_t s = 0; s < n; ++s) {
        LK_DC_NAME(lk_dc_pad)(x + s * g->C * g->H * g->W, xp, g);
        for (ptrdiff_t o0 = 0; o0 < OP; o0 += LK_DC_SF_OB) {
            const T* wrow = wp + o0 * K;
            for (ptrdiff_t v0 = 0; v0 < nvp; v0 += LK_DC_SF_VB) {
                V acc[LK_DC_SF_OB][LK_DC_SF_VB];
#pragma GCC unroll 8
                for (int o = 0; o < LK_DC_SF_OB; ++o)
#pragma GCC unroll 8
                    for (int v = 0; v < LK_DC_SF_VB; ++v) acc[o][v] = (V){0};
                ptrdiff_t k = 0;
                for (ptrdiff_t c = 0; c < g->C; ++c)
                    for (ptrdiff_t i = 0; i < g->kh; ++i) {
                        const T* src = xp + c * Sp + i * g->Wp + v0 * L;
                        for (ptrdiff_t j = 0; j < g->kw; ++j, ++k) {
                            V xv[LK_DC_SF_VB];
#pragma GCC unroll 8
                            for (int v = 0; v < LK_DC_SF_VB; ++v) {
                                xv[v] = LOAD(src + j + v * L);
                                LK_DC_KEEP(xv[v]);
                            }
#pragma GCC unroll 8
                            for (int o = 0; o < LK_DC_SF_OB; ++o) {
                                V wv = BCAST(wrow[o * K + k]);
#pragma GCC unroll 8
                                for (int v = 0; v < LK_DC_SF_VB; ++v) acc[o][v] += wv * xv[v];
                            }
                        }
                    }
#pragma GCC unroll 8
                for (int o = 0; o < LK_DC_SF_OB; ++o)
#pragma GCC unroll 8
                    for (int v = 0; v < LK_DC_SF_VB; ++v) STORE(yq + (o0 + o) * Lqp + (v0 + v) * L, acc[o][v]);
            }
        }
        for (ptrdiff_t o = 0; o < g->O; ++o) {
            T bias = b ? b[o] : (T)0;
            for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
                T* dst = y + ((s * g->O + o) * g->Ho + oh) * g->Wo;
                const T* src = yq + o * Lqp + oh * g->Wp;
                for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) dst[ow] = src[ow] + bias;
            }
        }
    }
}

/* ---------------------------------------------------------------- forward, lanes over output channels */
/* one sample: y (O, Ho, Wo) = conv(xp, wt) + b, with xp padded and wt (K, O) the weights by tap; O % L == 0
 * (always inlined: called from the clones, it must be compiled for their instruction set) */
static inline __attribute__((always_inline)) void LK_DC_NAME(lk_dc_channel_sample)(const T* restrict xp, const T* restrict wt,
                                                    const T* restrict b, T* restrict y, const lk_dc_geom* g) {
    const ptrdiff_t Sp = g->Hp * g->Wp, P = g->Ho * g->Wo, O = g->O;
    for (ptrdiff_t o0 = 0; o0 < O; o0 += L) {
        for (ptrdiff_t p0 = 0; p0 < P; p0 += LK_DC_CF_PB) {
            ptrdiff_t base[LK_DC_CF_PB];
            V acc[LK_DC_CF_PB];
#pragma GCC unroll 16
            for (int q = 0; q < LK_DC_CF_PB; ++q) {
                ptrdiff_t p = p0 + q < P ? p0 + q : P - 1;  /* a short last block repeats its last position */
                base[q] = (p / g->Wo) * g->Wp + p % g->Wo;
                acc[q] = (V){0};
            }
            const T* wk = wt + o0;
            for (ptrdiff_t c = 0; c < g->C; ++c)
                for (ptrdiff_t i = 0; i < g->kh; ++i) {
                    const T* row = xp + c * Sp + i * g->Wp;
                    for (ptrdiff_t j = 0; j < g->kw; ++j, wk += O) {
                        V wv = LOAD(wk);
                        const T* at = row + j;
#pragma GCC unroll 16
                        for (int q = 0; q < LK_DC_CF_PB; ++q) acc[q] += wv * BCAST(at[base[q]]);
                    }
                }
            ptrdiff_t count = P - p0 < LK_DC_CF_PB ? P - p0 : LK_DC_CF_PB;
            for (ptrdiff_t q = 0; q < count; ++q) {
                T lanes[L];
                STORE(lanes, acc[q]);
                for (int l = 0; l < L; ++l) y[(o0 + l) * P + p0 + q] = lanes[l] + (b ? b[o0 + l] : (T)0);
            }
        }
    }
}

LK_DC_ATTR static void LK_DC_NAME(lk_dc_forward_channel)(const T* restrict x, const T* restrict w,
                                                           const T* restrict b, T* restrict y, T* restrict scratch,
                                                           const lk_dc_geom* g, ptrdiff_t n) {
    const ptrdiff_t K = g->C * g->kh * g->kw;
    T* xp = scratch;
    T* wt = xp + g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g);
    for (ptrdiff_t o = 0; o < g->O; ++o)
        for (ptrdiff_t k = 0; k < K; ++k) wt[k * g->O + o] = w[o * K + k];
    LK_DC_NAME(lk_dc_pad_zero)(xp, g);
    for (ptrdiff_t s = 0; s < n; ++s) {
        LK_DC_NAME(lk_dc_pad)(x + s * g->C * g->H * g->W, xp, g);
        LK_DC_NAME(lk_dc_channel_sample)(xp, wt, b, y + s * g->O * g->Ho * g->Wo, g);
    }
}

/* dx (n, C, H, W) from dy (n, O, Ho, Wo): the forward convolution of dy, padded by kh - 1 - ph (and so on),
 * with the kernel flipped and its channels swapped; lanes over C (C % L == 0). ``gx`` is that convolution's
 * geometry (C = O, O = C, H = Ho, ...), ``w`` the layer's (O, C, kh, kw) weights. */
LK_DC_ATTR static void LK_DC_NAME(lk_dc_xgrad_channel)(const T* restrict dy, const T* restrict w,
                                                         T* restrict dx, T* restrict scratch,
                                                         const lk_dc_geom* gx, ptrdiff_t n) {
    const ptrdiff_t O = gx->C, C = gx->O, kh = gx->kh, kw = gx->kw;
    T* dyp = scratch;
    T* wt = dyp + O * gx->Hp * gx->Wp + LK_DC_NAME(lk_dc_tail)(gx);
    for (ptrdiff_t o = 0; o < O; ++o)
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t i = 0; i < kh; ++i)
                for (ptrdiff_t j = 0; j < kw; ++j)
                    wt[((o * kh + i) * kw + j) * C + c] = w[((o * C + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
    LK_DC_NAME(lk_dc_pad_zero)(dyp, gx);
    for (ptrdiff_t s = 0; s < n; ++s) {
        LK_DC_NAME(lk_dc_pad)(dy + s * O * gx->H * gx->W, dyp, gx);
        LK_DC_NAME(lk_dc_channel_sample)(dyp, wt, NULL, dx + s * C * gx->Ho * gx->Wo, gx);
    }
}

/* ---------------------------------------------------------------- weight gradient, lanes over output channels */
/* dw (O, K) = sum over samples and positions of dy (n, O, Ho, Wo) times the input's patches; O % L == 0 */
LK_DC_ATTR static void LK_DC_NAME(lk_dc_wgrad_channel)(const T* restrict x, const T* restrict dy,
                                                         T* restrict dw, T* restrict scratch,
                                                         const lk_dc_geom* g, ptrdiff_t n) {
    const ptrdiff_t K = g->C * g->kh * g->kw, KP = lk_dc_round_up(K, LK_DC_CW_KB), O = g->O;
    const ptrdiff_t P = g->Ho * g->Wo;
    T* xp = scratch;
    T* dyt = xp + g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g);
    T* dwt = dyt + P * O;
    memset(dwt, 0, (size_t)(KP * O) * sizeof(T));
    LK_DC_NAME(lk_dc_pad_zero)(xp, g);
    for (ptrdiff_t s = 0; s < n; ++s) {
        LK_DC_NAME(lk_dc_pad)(x + s * g->C * g->H * g->W, xp, g);
        const T* dys = dy + s * O * P;
        for (ptrdiff_t o = 0; o < O; ++o)
            for (ptrdiff_t p = 0; p < P; ++p) dyt[p * O + o] = dys[o * P + p];
        for (ptrdiff_t o0 = 0; o0 < O; o0 += L)
            for (ptrdiff_t k0 = 0; k0 < KP; k0 += LK_DC_CW_KB) {
                ptrdiff_t off[LK_DC_CW_KB];
                V acc[LK_DC_CW_KB];
#pragma GCC unroll 16
                for (int q = 0; q < LK_DC_CW_KB; ++q) {
                    off[q] = k0 + q < K ? LK_DC_NAME(lk_dc_tap)(g, k0 + q) : 0;
                    acc[q] = LOAD(dwt + (k0 + q) * O + o0);
                }
                const T* dv_at = dyt + o0;
                for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
                    const T* row = xp + oh * g->Wp;
                    for (ptrdiff_t ow = 0; ow < g->Wo; ++ow, dv_at += O) {
                        V dv = LOAD(dv_at);
                        const T* at = row + ow;
#pragma GCC unroll 16
                        for (int q = 0; q < LK_DC_CW_KB; ++q) acc[q] += dv * BCAST(at[off[q]]);
                    }
                }
#pragma GCC unroll 16
                for (int q = 0; q < LK_DC_CW_KB; ++q) STORE(dwt + (k0 + q) * O + o0, acc[q]);
            }
    }
    for (ptrdiff_t o = 0; o < O; ++o)
        for (ptrdiff_t k = 0; k < K; ++k) dw[o * K + k] = dwt[k * O + o];
}

/* ---------------------------------------------------------------- weight gradient, lanes over positions */
LK_DC_ATTR LK_DC_ROWS static void LK_DC_NAME(lk_dc_wgrad_spatial)(const T* restrict x, const T* restrict dy,
                                                         T* restrict dw, T* restrict scratch,
                                                         const lk_dc_geom* g, ptrdiff_t n) {
    const ptrdiff_t K = g->C * g->kh * g->kw, KP = lk_dc_round_up(K, LK_DC_SW_KB);
    const ptrdiff_t OP = lk_dc_round_up(g->O, LK_DC_SW_OB), Lq = g->Ho * g->Wp, nv = (Lq + L - 1) / L;
    const ptrdiff_t Lqv = nv * L, P = g->Ho * g->Wo;
    T* xp = scratch;
    T* dyq = xp + g->C * g->Hp * g->Wp + LK_DC_NAME(lk_dc_tail)(g);
    T* dwv = dyq + OP * Lqv;
    /* dyq: dy in the padded width, zero in the extra columns, past the end and in the padding rows of O */
    memset(dyq, 0, (size_t)(OP * Lqv + OP * KP * L) * sizeof(T));
    LK_DC_NAME(lk_dc_pad_zero)(xp, g);
    for (ptrdiff_t s = 0; s < n; ++s) {
        LK_DC_NAME(lk_dc_pad)(x + s * g->C * g->H * g->W, xp, g);
        for (ptrdiff_t o = 0; o < g->O; ++o)
            for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
                LK_DC_COPY_ROW(dyq + o * Lqv + oh * g->Wp, dy + (s * g->O + o) * P + oh * g->Wo, g->Wo);
        for (ptrdiff_t o0 = 0; o0 < OP; o0 += LK_DC_SW_OB)
            for (ptrdiff_t k0 = 0; k0 < KP; k0 += LK_DC_SW_KB) {
                ptrdiff_t off[LK_DC_SW_KB];
                V acc[LK_DC_SW_OB][LK_DC_SW_KB];
#pragma GCC unroll 8
                for (int q = 0; q < LK_DC_SW_KB; ++q) off[q] = k0 + q < K ? LK_DC_NAME(lk_dc_tap)(g, k0 + q) : 0;
#pragma GCC unroll 8
                for (int o = 0; o < LK_DC_SW_OB; ++o)
#pragma GCC unroll 8
                    for (int q = 0; q < LK_DC_SW_KB; ++q) acc[o][q] = LOAD(dwv + ((o0 + o) * KP + k0 + q) * L);
                for (ptrdiff_t v = 0; v < nv; ++v) {
                    V xv[LK_DC_SW_KB];
#pragma GCC unroll 8
                    for (int q = 0; q < LK_DC_SW_KB; ++q) {
                        xv[q] = LOAD(xp + off[q] + v * L);
                        LK_DC_KEEP(xv[q]);
                    }
#pragma GCC unroll 8
                    for (int o = 0; o < LK_DC_SW_OB; ++o) {
                        V dv = LOAD(dyq + (o0 + o) * Lqv + v * L);
                        LK_DC_KEEP(dv);
#pragma GCC unroll 8
                        for (int q = 0; q < LK_DC_SW_KB; ++q) acc[o][q] += dv * xv[q];
                    }
                }
#pragma GCC unroll 8
                for (int o = 0; o < LK_DC_SW_OB; ++o)
#pragma GCC unroll 8
                    for (int q = 0; q < LK_DC_SW_KB; ++q) STORE(dwv + ((o0 + o) * KP + k0 + q) * L, acc[o][q]);
            }
    }
    for (ptrdiff_t o = 0; o < g->O; ++o)
        for (ptrdiff_t k = 0; k < K; ++k) {
            const T* lanes = dwv + (o * KP + k) * L;
            T sum = 0;
            for (int l = 0; l < L; ++l) sum += lanes[l];
            dw[o * K + k] = sum;
        }
}

/* ---------------------------------------------------------------- input gradient through a wide gemm */
/* The input gradient by gemm and col2im, in the padded width: dy (O, Ho, Wo) of a sample spread into
 * dyq (O, Ho*Wp) (zero in the extra columns, which are never written), dcolq (K, Ho*Wp) = W.T @ dyq by
 * the caller's gemm, then each tap's row added at its offset into xp's layout as one long row and the
 * padding cropped. Rows of Wo numbers (10 in LeNet-5) would not fill the vector lanes. */
LK_DC_ROWS LK_DC_TARGET static void LK_DC_NAME(lk_dc_spread)(const T* restrict dy, T* restrict dyq, const lk_dc_geom* g) {
    const ptrdiff_t Lq = g->Ho * g->Wp;
    for (ptrdiff_t o = 0; o < g->O; ++o)
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
            LK_DC_COPY_ROW(dyq + o * Lq + oh * g->Wp, dy + (o * g->Ho + oh) * g->Wo, g->Wo);
}

LK_DC_ATTR LK_DC_ROWS static void LK_DC_NAME(lk_dc_col2im_wide)(const T* restrict dcolq, T* restrict dxp, T* restrict dx,
                                                     const lk_dc_geom* g) {
    const ptrdiff_t K = g->C * g->kh * g->kw, Lq = g->Ho * g->Wp, Sp = g->Hp * g->Wp;
    memset(dxp, 0, (size_t)(g->C * Sp) * sizeof(T));
    for (ptrdiff_t k = 0; k < K; ++k) {
        T* restrict dst = dxp + LK_DC_NAME(lk_dc_tap)(g, k);
        const T* restrict src = dcolq + k * Lq;
        for (ptrdiff_t q = 0; q < Lq; ++q) dst[q] += src[q];
    }
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t h = 0; h < g->H; ++h)
            LK_DC_COPY_ROW(dx + (c * g->H + h) * g->W, dxp + c * Sp + (g->ph + h) * g->Wp + g->pw, g->W);
}

static inline ptrdiff_t LK_DC_NAME(lk_dc_scratch_xgrad_wide)(const lk_dc_geom* g) {
    return (g->O + g->C * g->kh * g->kw) * g->Ho * g->Wp + g->C * g->Hp * g->Wp;
}

#undef BCAST
#undef LOAD
#undef STORE
#undef V
#undef L
#undef T
