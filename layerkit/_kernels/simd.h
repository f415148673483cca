/* Included by conv_direct.h and pool.h: whether the AVX-512 kernels may run.
 *
 * The direct convolution and the float32 2x2 max pooling are compiled for x86-64-v4 (AVX-512 F, BW, DQ, VL)
 * beside their portable C; this says whether the CPU has every extension of that level (asked once), and
 * ``lk_simd_kernels`` lets the tests run the portable C on such a CPU too (``_core.simd_kernels``).
 */
#ifndef LAYERKIT_SIMD_H
#define LAYERKIT_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LK_HAVE_V4 1
#include <immintrin.h>
static int lk_cpu_has_v4(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return known;
}
#else
#define LK_HAVE_V4 0
static int lk_cpu_has_v4(void) { return 0; }
#endif

/* 1: the AVX-512 kernels where the CPU has them; 0: the portable ones everywhere */
static int lk_simd_kernels = 1;

/* the AVX-512 kernels run now */
static inline int lk_use_v4(void) { return lk_simd_kernels && lk_cpu_has_v4(); }

#endif
