/*
 * Row kernels, AVX2 + FMA + F16C, and the avx2 tier's table.
 *
 * Rows are taken 8 at a time, chunk-outer/row-inner so that the 8 row
 * accumulators are independent FMA chains and each query chunk is loaded
 * once per block; the 8 sums are reduced together (x86_reduce.h). Fewer
 * than 8 remaining rows go through the one-row path.
 *
 * int8: vpmaddubsw would saturate (u8 query up to 255 x 127 twice exceeds
 * int16), so rows and the signed query are widened to 16 bits and
 * multiplied with vpmaddwd, which is exact: |2 * 128 * 127| < 2^31.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>

#define ROW(T, base, r, stride) ((const T *)((const char *)(base) + (r) * (stride)))

static inline __m256 ld_f16(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_load_si128((const __m128i *)p));
}

void hk__scan_f32_avx2(const float *q, const float *rows, size_t count,
                       size_t dim, size_t stride, float *out)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		const float *b = ROW(float, rows, i, stride);
		__m256 acc[8];
		for (int r = 0; r < 8; r++)
			acc[r] = _mm256_setzero_ps();
		for (size_t c = 0; c < dim; c += 8) {
			__m256 qv = _mm256_loadu_ps(q + c);
			for (int r = 0; r < 8; r++)
				acc[r] = _mm256_fmadd_ps(
				    _mm256_load_ps(ROW(float, b, r, stride) + c), qv, acc[r]);
		}
		_mm256_storeu_ps(out + i, hk__rsum8_ps(acc));
	}
	for (; i < count; i++) {
		const float *p = ROW(float, rows, i, stride);
		__m256 a = _mm256_setzero_ps();
		for (size_t c = 0; c < dim; c += 8)
			a = _mm256_fmadd_ps(_mm256_load_ps(p + c), _mm256_loadu_ps(q + c), a);
		out[i] = hk__hsum256_ps(a);
	}
}

void hk__scan_f16_avx2(const float *q, const uint16_t *rows, size_t count,
                       size_t dim, size_t stride, float *out)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		const uint16_t *b = ROW(uint16_t, rows, i, stride);
		__m256 acc[8];
		for (int r = 0; r < 8; r++)
			acc[r] = _mm256_setzero_ps();
		for (size_t c = 0; c < dim; c += 8) {
			__m256 qv = _mm256_loadu_ps(q + c);
			for (int r = 0; r < 8; r++)
				acc[r] = _mm256_fmadd_ps(ld_f16(ROW(uint16_t, b, r, stride) + c),
				                         qv, acc[r]);
		}
		_mm256_storeu_ps(out + i, hk__rsum8_ps(acc));
	}
	for (; i < count; i++) {
		const uint16_t *p = ROW(uint16_t, rows, i, stride);
		__m256 a = _mm256_setzero_ps();
		for (size_t c = 0; c < dim; c += 8)
			a = _mm256_fmadd_ps(ld_f16(p + c), _mm256_loadu_ps(q + c), a);
		out[i] = hk__hsum256_ps(a);
	}
}

/* 16 query bytes, offset-128 u8 -> signed 16-bit lanes. */
static inline __m256i ld_q16(const uint8_t *qu)
{
	__m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)qu));
	return _mm256_sub_epi16(w, _mm256_set1_epi16(128));
}

static inline __m256i ld_r16(const int8_t *p)
{
	return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p));
}

static void scan_i8_avx2(const uint8_t *qu, const int8_t *rows,
                         const int32_t *row_sums, size_t count, size_t dim,
                         size_t stride, int32_t *out)
{
	(void)row_sums; /* the query is made signed, no correction needed */
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		const int8_t *b = rows + i * stride;
		__m256i acc[8];
		for (int r = 0; r < 8; r++)
			acc[r] = _mm256_setzero_si256();
		for (size_t c = 0; c < dim; c += 16) {
			__m256i qv = ld_q16(qu + c);
			for (int r = 0; r < 8; r++)
				acc[r] = _mm256_add_epi32(
				    acc[r], _mm256_madd_epi16(ld_r16(b + r * stride + c), qv));
		}
		_mm256_storeu_si256((__m256i *)(out + i), hk__rsum8_epi32(acc));
	}
	for (; i < count; i++) {
		const int8_t *p = rows + i * stride;
		__m256i a = _mm256_setzero_si256();
		for (size_t c = 0; c < dim; c += 16)
			a = _mm256_add_epi32(a, _mm256_madd_epi16(ld_r16(p + c), ld_q16(qu + c)));
		out[i] = hk__hsum256_epi32(a);
	}
}

static void tile_i8_avx2(const uint8_t *qu, size_t nq, size_t qstride,
                         const int8_t *rows, const int32_t *row_sums,
                         size_t count, size_t dim, size_t stride, int32_t *out,
                         size_t ldo)
{
	hk__tile_i8_by_scan(scan_i8_avx2, qu, nq, qstride, rows, row_sums, count,
	                    dim, stride, out, ldo);
}

const hk_kernels hk__kernels_avx2 = {
	.isa = HK_ISA_AVX2,
	.name = "avx2",
	.dot_f32 = hk__dot_f32_avx2,
	.dot_f16 = hk__dot_f16_avx2,
	.dot_f32_f16 = hk__dot_f32_f16_avx2,
	.dot_f32_bf16 = hk__dot_f32_bf16_avx2,
	.dot_i8 = hk__dot_i8_avx2,
	.scan_f32 = hk__scan_f32_avx2,
	.scan_f16 = hk__scan_f16_avx2,
	.scan_i8 = scan_i8_avx2,
	.tile_i8 = tile_i8_avx2,
};
