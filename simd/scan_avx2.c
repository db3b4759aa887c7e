/*
 * Row kernels, AVX2 + FMA + F16C, and the avx2 tier's table.
 *
 * Rows are taken 8 at a time, each read front to back (the block is one
 * sequential stream, prefetched HK_PF_DIST ahead) with two accumulators
 * per row; the 8 sums are reduced together (x86_reduce.h). Fewer
 * than 8 remaining rows go through the one-row path.
 *
 * int8 scan (one query, bandwidth bound): rows and the signed query are
 * widened to 16 bits and multiplied with vpmaddwd, exact for any int8 query.
 * The batch tile (compute bound) uses vpmaddubsw under the tier's 6-bit
 * query contract; see tile_i8 below.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>

/* 8 elements of a row starting at element c, as fp32. */
typedef __m256 (*ld8_fn)(const char *row, size_t c);

static inline __m256 ld_f32(const char *row, size_t c)
{
	return _mm256_load_ps((const float *)row + c);
}

static inline __m256 ld_f16(const char *row, size_t c)
{
	return _mm256_cvtph_ps(_mm_load_si128((const __m128i *)((const uint16_t *)row + c)));
}

/* dim is a multiple of 16 (HK_SIMD_PAD_F32/F16). */
HK_AINL __m256 row_acc(const float *q, const char *p, size_t dim, ld8_fn ld,
                       size_t esz)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	for (size_t c = 0; c < dim; c += 16) {
		if (esz == 4 || c % 32 == 0)
			_mm_prefetch(p + HK_PF_DIST + c * esz, _MM_HINT_T0);
		a0 = _mm256_fmadd_ps(ld(p, c), _mm256_loadu_ps(q + c), a0);
		a1 = _mm256_fmadd_ps(ld(p, c + 8), _mm256_loadu_ps(q + c + 8), a1);
	}
	return _mm256_add_ps(a0, a1);
}

HK_AINL void scan_rows(const float *q, const char *rows, size_t count,
                       size_t dim, size_t stride, float *out, ld8_fn ld,
                       size_t esz)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		__m256 acc[8];
		HK_UNROLL for (int r = 0; r < 8; r++)
			acc[r] = row_acc(q, rows + (i + r) * stride, dim, ld, esz);
		_mm256_storeu_ps(out + i, hk__rsum8_ps(acc));
	}
	for (; i < count; i++)
		out[i] = hk__hsum256_ps(row_acc(q, rows + i * stride, dim, ld, esz));
}

void hk__scan_f32_avx2(const float *q, const float *rows, size_t count,
                       size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f32, 4);
}

void hk__scan_f16_avx2(const float *q, const uint16_t *rows, size_t count,
                       size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f16, 2);
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

/* Signed dot of one int8 row (dim a multiple of 64) with the query. */
HK_AINL __m256i row_acc_i8(const uint8_t *qu, const int8_t *p, size_t dim)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
	for (size_t c = 0; c < dim; c += 32) {
		if (c % 64 == 0)
			_mm_prefetch((const char *)p + HK_PF_DIST + c, _MM_HINT_T0);
		a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(ld_r16(p + c), ld_q16(qu + c)));
		a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(ld_r16(p + c + 16),
		                                             ld_q16(qu + c + 16)));
	}
	return _mm256_add_epi32(a0, a1);
}

static void scan_i8_avx2(const uint8_t *qu, const int8_t *rows,
                         const int32_t *row_sums, size_t count, size_t dim,
                         size_t stride, int32_t *out)
{
	(void)row_sums; /* the query is made signed, no correction needed */
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		__m256i acc[8];
		HK_UNROLL for (int r = 0; r < 8; r++)
			acc[r] = row_acc_i8(qu, rows + (i + r) * stride, dim);
		_mm256_storeu_si256((__m256i *)(out + i), hk__rsum8_epi32(acc));
	}
	for (; i < count; i++)
		out[i] = hk__hsum256_epi32(row_acc_i8(qu, rows + i * stride, dim));
}

/*
 * tile_i8 (many queries): compute bound, the shared 8-lane tile
 * (tile_x86.h). Without VNNI the multiply-type instructions are the limit
 * (vpmaddubsw u8 x s8 -> s16 pairs, saturating; vpmaddwd s16 pairs -> s32).
 * Two groups of 4 dims are multiplied with vpmaddubsw, their s16 pairs added
 * with vpaddw, and only the sum widened by vpmaddwd (by ones): 3 multiply-
 * type instructions per 64 products instead of 4 (measured on Zen 5: 186
 * -> see the commit), with the query in 6 bits.
 *
 * No saturation or wrap within the tier's contract (i8_qmax = 31): the query
 * is packed as qu - 96 = q + 32 in [1, 63] (|q| <= 31), rows are in
 * [-127, 127], so each vpmaddubsw pair is at most 2 * 63 * 127 = 16002 in
 * magnitude and the vpaddw of two at most 32004 < 32767. The 32-bit sums
 * are exact for any dim <= 4096 (4 * 63 * 127 * 1024 < 2^31). The result
 * is dot_u8 - 32 * row_sum. A 6-bit query costs the scan a little
 * precision (step amax / 31); the fp32 re-rank of the candidates restores
 * the order, and herken-bench search checks recall >= 0.999.
 */
#define HK_TILE_DP2(acc, q0, r0, q1, r1)                                      \
	HK__IN_PLACE(acc, "vpaddd %1, %0, %0",                                 \
	             "v"(_mm256_madd_epi16(                                    \
	                 _mm256_add_epi16(_mm256_maddubs_epi16(q0, r0),        \
	                                  _mm256_maddubs_epi16(q1, r1)),       \
	                 _mm256_set1_epi16(1))))
#define HK_TILE_W 8
#define HK_TILE_BIAS 96
#define HK_TILE_SHIFT 5
#define HK_TILE_ROWS 2 /* vpmaddubsw + vpmaddwd need temporaries */
#include "tile_x86.h"

/* Also the avx512 tier's tile (AVX-512 without VNNI has no better int8 op). */
void hk__tile_i8_avx2(const uint8_t *qu, size_t nq, size_t qstride,
                      const int8_t *rows, const int32_t *row_sums, size_t count,
                      size_t dim, size_t stride, int32_t *out, size_t ldo)
{
	hk__tile(qu, nq, qstride, rows, row_sums, count, dim, stride, out, ldo);
}

void hk__tile_i8_hits_avx2(const uint8_t *qu, size_t nq, size_t qstride,
                           const int8_t *rows, const int32_t *row_sums,
                           size_t count, size_t dim, size_t stride,
                           int32_t *out, size_t ldo, const hk__tile_hits *h)
{
	hk__tile_h(qu, nq, qstride, rows, row_sums, count, dim, stride, out, ldo, h);
}

/* Four independent 32-byte streams per 128 bytes: enough loads in flight. */
uint32_t hk__read_sum_avx2(const void *p, size_t bytes)
{
	const char *b = p;
	__m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 128 <= bytes; i += 128) {
		s0 = _mm256_add_epi32(s0, _mm256_load_si256((const __m256i *)(b + i)));
		s1 = _mm256_add_epi32(s1, _mm256_load_si256((const __m256i *)(b + i + 32)));
		s2 = _mm256_add_epi32(s2, _mm256_load_si256((const __m256i *)(b + i + 64)));
		s3 = _mm256_add_epi32(s3, _mm256_load_si256((const __m256i *)(b + i + 96)));
	}
	for (; i < bytes; i += 32)
		s0 = _mm256_add_epi32(s0, _mm256_load_si256((const __m256i *)(b + i)));
	return (uint32_t)hk__hsum256_epi32(
	    _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)));
}

const hk__kernel_table hk__kernels_avx2 = {
	.isa = HK_ISA_AVX2,
	.name = "avx2",
	HK__AVX2_FP_ENTRIES,
	.scan_i8 = scan_i8_avx2,
	.tile_i8 = hk__tile,
	.tile_i8_hits = hk__tile_h,
	.i8_qmax = 31,
};
