/*
 * int8 row kernels with AVX-VNNI (vpdpbusd on ymm), and the avxvnni tier's
 * table; fp32/fp16 entries are the AVX2 kernels (VNNI adds nothing there).
 *
 * vpdpbusd multiplies u8 x s8 with 32-bit accumulation and no intermediate
 * saturation, so dot_u8(qu, row) is exact and the signed result is
 * dot_u8(qu, row) - 128 * row_sum.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>
#include <string.h>

/* dot_u8(qu, row) of one row (dim a multiple of 64), read front to back. */
HK_AINL __m256i row_acc(const uint8_t *qu, const int8_t *p, size_t dim)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
	for (size_t c = 0; c < dim; c += 64) {
		_mm_prefetch((const char *)p + HK_PF_DIST + c, _MM_HINT_T0);
		a0 = _mm256_dpbusd_avx_epi32(a0, _mm256_loadu_si256((const __m256i *)(qu + c)),
		                             _mm256_load_si256((const __m256i *)(p + c)));
		a1 = _mm256_dpbusd_avx_epi32(a1,
		                             _mm256_loadu_si256((const __m256i *)(qu + c + 32)),
		                             _mm256_load_si256((const __m256i *)(p + c + 32)));
	}
	return _mm256_add_epi32(a0, a1);
}

static void scan_i8_avxvnni(const uint8_t *qu, const int8_t *rows,
                            const int32_t *row_sums, size_t count, size_t dim,
                            size_t stride, int32_t *out)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		__m256i acc[8];
		HK_UNROLL for (int r = 0; r < 8; r++)
			acc[r] = row_acc(qu, rows + (i + r) * stride, dim);
		__m256i corr = _mm256_slli_epi32(
		    _mm256_loadu_si256((const __m256i *)(row_sums + i)), 7);
		_mm256_storeu_si256((__m256i *)(out + i),
		                    _mm256_sub_epi32(hk__rsum8_epi32(acc), corr));
	}
	for (; i < count; i++)
		out[i] = hk__hsum256_epi32(row_acc(qu, rows + i * stride, dim)) -
		         128 * row_sums[i];
}

/* ---- tile_i8: vpdpbusd on the shared 8-lane tile (tile_x86.h) --------- */

/* vpdpbusd in place (tile_x86.h, HK__IN_PLACE) */
#define HK_TILE_DP(acc, q, r)                                                  \
	HK__IN_PLACE(acc, "%{vex%} vpdpbusd %2, %1, %0", "v"(q), "v"(r))
#define HK_TILE_W 8
#define HK_TILE_BIAS 0
#define HK_TILE_SHIFT 7
#define HK_TILE_ROWS 3
#include "tile_x86.h"

const hk__kernel_table hk__kernels_avxvnni = {
	.isa = HK_ISA_AVXVNNI,
	.name = "avxvnni",
	HK__AVX2_FP_ENTRIES,
	.scan_i8 = scan_i8_avxvnni,
	.tile_i8 = hk__tile,
	.tile_i8_hits = hk__tile_h,
};
