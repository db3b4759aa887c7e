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

static inline __m256i dp(__m256i acc, const uint8_t *qu, const int8_t *row)
{
	return _mm256_dpbusd_avx_epi32(acc, _mm256_loadu_si256((const __m256i *)qu),
	                               _mm256_load_si256((const __m256i *)row));
}

static void scan_i8_avxvnni(const uint8_t *qu, const int8_t *rows,
                            const int32_t *row_sums, size_t count, size_t dim,
                            size_t stride, int32_t *out)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		const int8_t *b = rows + i * stride;
		__m256i acc[8];
		for (int r = 0; r < 8; r++)
			acc[r] = _mm256_setzero_si256();
		for (size_t c = 0; c < dim; c += 32)
			for (int r = 0; r < 8; r++)
				acc[r] = dp(acc[r], qu + c, b + r * stride + c);
		__m256i corr = _mm256_slli_epi32(
		    _mm256_loadu_si256((const __m256i *)(row_sums + i)), 7);
		_mm256_storeu_si256((__m256i *)(out + i),
		                    _mm256_sub_epi32(hk__rsum8_epi32(acc), corr));
	}
	for (; i < count; i++) {
		const int8_t *p = rows + i * stride;
		__m256i a = _mm256_setzero_si256();
		for (size_t c = 0; c < dim; c += 32)
			a = dp(a, qu + c, p + c);
		out[i] = hk__hsum256_epi32(a) - 128 * row_sums[i];
	}
}

static void tile_i8_avxvnni(const uint8_t *qu, size_t nq, size_t qstride,
                            const int8_t *rows, const int32_t *row_sums,
                            size_t count, size_t dim, size_t stride,
                            int32_t *out, size_t ldo)
{
	hk__tile_i8_by_scan(scan_i8_avxvnni, qu, nq, qstride, rows, row_sums,
	                    count, dim, stride, out, ldo);
}

const hk_kernels hk__kernels_avxvnni = {
	.isa = HK_ISA_AVXVNNI,
	.name = "avxvnni",
	.dot_f32 = hk__dot_f32_avx2,
	.dot_f16 = hk__dot_f16_avx2,
	.dot_f32_f16 = hk__dot_f32_f16_avx2,
	.dot_f32_bf16 = hk__dot_f32_bf16_avx2,
	.dot_i8 = hk__dot_i8_avx2,
	.scan_f32 = hk__scan_f32_avx2,
	.scan_f16 = hk__scan_f16_avx2,
	.scan_i8 = scan_i8_avxvnni,
	.tile_i8 = tile_i8_avxvnni,
};
