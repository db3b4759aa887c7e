/*
 * Row kernels, AVX-512 F/BW/VL/DQ, and the avx512 tier's table.
 *
 * Rows are taken 16 at a time, chunk-outer/row-inner (16 independent FMA
 * chains, one query load per chunk), and the 16 sums are reduced together
 * into one vector (x86_reduce.h). Fewer than 16 remaining rows use the
 * one-row path. int8 without VNNI widens to 16 bits and uses vpmaddwd
 * (exact; vpmaddubsw could saturate).
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>

#define ROW(T, base, r, stride) ((const T *)((const char *)(base) + (r) * (stride)))

static inline __m512 ld_f16(const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p));
}

void hk__scan_f32_avx512(const float *q, const float *rows, size_t count,
                         size_t dim, size_t stride, float *out)
{
	size_t i = 0;
	for (; i + 16 <= count; i += 16) {
		const float *b = ROW(float, rows, i, stride);
		__m512 acc[16];
		for (int r = 0; r < 16; r++)
			acc[r] = _mm512_setzero_ps();
		for (size_t c = 0; c < dim; c += 16) {
			__m512 qv = _mm512_loadu_ps(q + c);
			for (int r = 0; r < 16; r++)
				acc[r] = _mm512_fmadd_ps(
				    _mm512_load_ps(ROW(float, b, r, stride) + c), qv, acc[r]);
		}
		_mm512_storeu_ps(out + i, hk__rsum16_ps(acc));
	}
	for (; i < count; i++) {
		const float *p = ROW(float, rows, i, stride);
		__m512 a = _mm512_setzero_ps();
		for (size_t c = 0; c < dim; c += 16)
			a = _mm512_fmadd_ps(_mm512_load_ps(p + c), _mm512_loadu_ps(q + c), a);
		out[i] = _mm512_reduce_add_ps(a);
	}
}

void hk__scan_f16_avx512(const float *q, const uint16_t *rows, size_t count,
                         size_t dim, size_t stride, float *out)
{
	size_t i = 0;
	for (; i + 16 <= count; i += 16) {
		const uint16_t *b = ROW(uint16_t, rows, i, stride);
		__m512 acc[16];
		for (int r = 0; r < 16; r++)
			acc[r] = _mm512_setzero_ps();
		for (size_t c = 0; c < dim; c += 16) {
			__m512 qv = _mm512_loadu_ps(q + c);
			for (int r = 0; r < 16; r++)
				acc[r] = _mm512_fmadd_ps(ld_f16(ROW(uint16_t, b, r, stride) + c),
				                         qv, acc[r]);
		}
		_mm512_storeu_ps(out + i, hk__rsum16_ps(acc));
	}
	for (; i < count; i++) {
		const uint16_t *p = ROW(uint16_t, rows, i, stride);
		__m512 a = _mm512_setzero_ps();
		for (size_t c = 0; c < dim; c += 16)
			a = _mm512_fmadd_ps(ld_f16(p + c), _mm512_loadu_ps(q + c), a);
		out[i] = _mm512_reduce_add_ps(a);
	}
}

/* 32 query bytes, offset-128 u8 -> signed 16-bit lanes. */
static inline __m512i ld_q16(const uint8_t *qu)
{
	__m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)qu));
	return _mm512_sub_epi16(w, _mm512_set1_epi16(128));
}

static inline __m512i ld_r16(const int8_t *p)
{
	return _mm512_cvtepi8_epi16(_mm256_load_si256((const __m256i *)p));
}

static void scan_i8_avx512(const uint8_t *qu, const int8_t *rows,
                           const int32_t *row_sums, size_t count, size_t dim,
                           size_t stride, int32_t *out)
{
	(void)row_sums; /* the query is made signed, no correction needed */
	size_t i = 0;
	for (; i + 16 <= count; i += 16) {
		const int8_t *b = rows + i * stride;
		__m512i acc[16];
		for (int r = 0; r < 16; r++)
			acc[r] = _mm512_setzero_si512();
		for (size_t c = 0; c < dim; c += 32) {
			__m512i qv = ld_q16(qu + c);
			for (int r = 0; r < 16; r++)
				acc[r] = _mm512_add_epi32(
				    acc[r], _mm512_madd_epi16(ld_r16(b + r * stride + c), qv));
		}
		_mm512_storeu_si512(out + i, hk__rsum16_epi32(acc));
	}
	for (; i < count; i++) {
		const int8_t *p = rows + i * stride;
		__m512i a = _mm512_setzero_si512();
		for (size_t c = 0; c < dim; c += 32)
			a = _mm512_add_epi32(a, _mm512_madd_epi16(ld_r16(p + c), ld_q16(qu + c)));
		out[i] = _mm512_reduce_add_epi32(a);
	}
}

static void tile_i8_avx512(const uint8_t *qu, size_t nq, size_t qstride,
                           const int8_t *rows, const int32_t *row_sums,
                           size_t count, size_t dim, size_t stride,
                           int32_t *out, size_t ldo)
{
	hk__tile_i8_by_scan(scan_i8_avx512, qu, nq, qstride, rows, row_sums, count,
	                    dim, stride, out, ldo);
}

const hk_kernels hk__kernels_avx512 = {
	.isa = HK_ISA_AVX512,
	.name = "avx512",
	.dot_f32 = hk__dot_f32_avx512,
	.dot_f16 = hk__dot_f16_avx512,
	.dot_f32_f16 = hk__dot_f32_f16_avx512,
	.dot_f32_bf16 = hk__dot_f32_bf16_avx512,
	.dot_i8 = hk__dot_i8_avx512,
	.scan_f32 = hk__scan_f32_avx512,
	.scan_f16 = hk__scan_f16_avx512,
	.scan_i8 = scan_i8_avx512,
	.tile_i8 = tile_i8_avx512,
};
