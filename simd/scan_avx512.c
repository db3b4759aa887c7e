/*
 * Row kernels, AVX-512 F/BW/VL/DQ, and the avx512 tier's table.
 *
 * Rows are taken 16 at a time and each row is read front to back (the
 * 16-row block is one sequential stream, prefetched HK_PF_DIST ahead), with
 * two accumulators per row; the block's 16 sums are reduced together into
 * one vector (x86_reduce.h). Reading the block chunk-outer instead (16
 * interleaved streams) measured 5-8 GB/s for fp16 against ~12 row-outer.
 * Fewer than 16 remaining rows use a one-row path. int8 without VNNI widens
 * to 16 bits and uses vpmaddwd (exact; vpmaddubsw could saturate).
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>

/* 16 elements of a row starting at element c, as fp32. */
typedef __m512 (*ld16_fn)(const char *row, size_t c);

static inline __m512 ld_f32(const char *row, size_t c)
{
	return _mm512_load_ps((const float *)row + c);
}

static inline __m512 ld_f16(const char *row, size_t c)
{
	return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)((const uint16_t *)row + c)));
}

HK_AINL __m512 row_acc(const float *q, const char *p, size_t dim, ld16_fn ld,
                       size_t esz)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	size_t c = 0;
	for (; c + 32 <= dim; c += 32) {
		_mm_prefetch(p + HK_PF_DIST + c * esz, _MM_HINT_T0);
		if (esz == 4)
			_mm_prefetch(p + HK_PF_DIST + c * esz + 64, _MM_HINT_T0);
		a0 = _mm512_fmadd_ps(ld(p, c), _mm512_loadu_ps(q + c), a0);
		a1 = _mm512_fmadd_ps(ld(p, c + 16), _mm512_loadu_ps(q + c + 16), a1);
	}
	if (c < dim)
		a0 = _mm512_fmadd_ps(ld(p, c), _mm512_loadu_ps(q + c), a0);
	return _mm512_add_ps(a0, a1);
}

HK_AINL void scan_rows(const float *q, const char *rows, size_t count,
                       size_t dim, size_t stride, float *out, ld16_fn ld,
                       size_t esz)
{
	size_t i = 0;
	for (; i + 16 <= count; i += 16) {
		const char *b = rows + i * stride;
		__m512 acc[16];
		HK_UNROLL for (int r = 0; r < 16; r++)
			acc[r] = row_acc(q, b + r * stride, dim, ld, esz);
		_mm512_storeu_ps(out + i, hk__rsum16_ps(acc));
	}
	for (; i < count; i++)
		out[i] = _mm512_reduce_add_ps(row_acc(q, rows + i * stride, dim, ld, esz));
}

void hk__scan_f32_avx512(const float *q, const float *rows, size_t count,
                         size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f32, 4);
}

void hk__scan_f16_avx512(const float *q, const uint16_t *rows, size_t count,
                         size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f16, 2);
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

/* Signed dot of one int8 row (dim a multiple of 64) with the query. */
HK_AINL __m512i row_acc_i8(const uint8_t *qu, const int8_t *p, size_t dim)
{
	__m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
	for (size_t c = 0; c < dim; c += 64) {
		_mm_prefetch((const char *)p + HK_PF_DIST + c, _MM_HINT_T0);
		a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(ld_r16(p + c), ld_q16(qu + c)));
		a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(ld_r16(p + c + 32),
		                                             ld_q16(qu + c + 32)));
	}
	return _mm512_add_epi32(a0, a1);
}

static void scan_i8_avx512(const uint8_t *qu, const int8_t *rows,
                           const int32_t *row_sums, size_t count, size_t dim,
                           size_t stride, int32_t *out)
{
	(void)row_sums; /* the query is made signed, no correction needed */
	size_t i = 0;
	for (; i + 16 <= count; i += 16) {
		__m512i acc[16];
		HK_UNROLL for (int r = 0; r < 16; r++)
			acc[r] = row_acc_i8(qu, rows + (i + r) * stride, dim);
		_mm512_storeu_si512(out + i, hk__rsum16_epi32(acc));
	}
	for (; i < count; i++)
		out[i] = hk__hsum512_epi32(row_acc_i8(qu, rows + i * stride, dim));
}

/* Four independent 64-byte streams per 256 bytes. */
uint32_t hk__read_sum_avx512(const void *p, size_t bytes)
{
	const char *b = p;
	__m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 256 <= bytes; i += 256) {
		s0 = _mm512_add_epi32(s0, _mm512_load_si512(b + i));
		s1 = _mm512_add_epi32(s1, _mm512_load_si512(b + i + 64));
		s2 = _mm512_add_epi32(s2, _mm512_load_si512(b + i + 128));
		s3 = _mm512_add_epi32(s3, _mm512_load_si512(b + i + 192));
	}
	for (; i < bytes; i += 64)
		s0 = _mm512_add_epi32(s0, _mm512_load_si512(b + i));
	return (uint32_t)hk__hsum512_epi32(
	    _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
}

const hk__kernel_table hk__kernels_avx512 = {
	.isa = HK_ISA_AVX512,
	.name = "avx512",
	HK__AVX512_FP_ENTRIES,
	.scan_i8 = scan_i8_avx512,
	.tile_i8 = hk__tile_i8_avx2, /* ymm vpmaddubsw, 6-bit queries */
	.tile_i8_hits = hk__tile_i8_hits_avx2,
	.i8_qmax = 31,
};
