/*
 * The queries-in-lanes int8 tile on 8-lane ymm vectors, shared by
 * scan_avx2.c (vpmaddubsw + vpmaddwd) and scan_avxvnni.c (vpdpbusd). Include
 * only from those files, after defining
 *
 *   HK_TILE8_DP(acc, q, r)  acc + per lane sum of the 4 products of the u8
 *                           bytes of q with the s8 bytes of r
 *   or HK_TILE8_DP2(acc, q0, r0, q1, r1)  the same for two groups at once
 *   HK_TILE8_BIAS           byte subtracted from each query byte when packing:
 *                           the u8 operand is qu - BIAS = q + (128 - BIAS)
 *   HK_TILE8_SHIFT          log2(128 - BIAS): the result is
 *                           dot_u8 - (row_sum << SHIFT), the exact signed dot
 *   HK_TILE8_ROWS           rows per micro-kernel call, 2 or 3 (3 needs all
 *                           16 registers for the accumulators and operands)
 *
 * and it defines `static void hk__tile8(...)` with the tile_i8 signature.
 *
 * Layout: up to 32 queries per pass (4 vectors of 8 lanes), dims in slices
 * of 256; vector (g * 4 + qb), lane l holds the 4 bytes of query 8 qb + l
 * at dims 4g..4g+3 of the slice (8 KiB, stays in L1). A 2- or 3-row x
 * 32-query micro-kernel broadcasts 4 bytes of each row (vpbroadcastd from
 * the row-major copy, no packing of rows) against 4 packed query vectors:
 * 8 or 12 independent accumulators. Eight rows of a tile are turned
 * row-in-lanes by an 8x8 transpose, so stores to out[j * ldo + i] are contiguous. Rows
 * come from memory once per 32 queries and per slice.
 */
#ifndef HK_TILE8_X86_H
#define HK_TILE8_X86_H

#include <immintrin.h>
#include <string.h>

#include "x86_reduce.h"

#define QB 32  /* queries per packed block (4 vectors of 8 lanes)     */
#define KB 256 /* dims per packed slice: 64 groups x 4 x 32 B = 8 KiB */

static inline __m256i bcast32(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* In-register 8x8 transpose of 32-bit elements. */
static inline void transpose8(__m256i v[8])
{
	__m256i t[8], u[8];
	HK_UNROLL for (int k = 0; k < 4; k++) {
		t[2 * k] = _mm256_unpacklo_epi32(v[2 * k], v[2 * k + 1]);
		t[2 * k + 1] = _mm256_unpackhi_epi32(v[2 * k], v[2 * k + 1]);
	}
	HK_UNROLL for (int m = 0; m < 2; m++) {
		__m256i *s = t + 4 * m;
		u[4 * m + 0] = _mm256_unpacklo_epi64(s[0], s[2]);
		u[4 * m + 1] = _mm256_unpackhi_epi64(s[0], s[2]);
		u[4 * m + 2] = _mm256_unpacklo_epi64(s[1], s[3]);
		u[4 * m + 3] = _mm256_unpackhi_epi64(s[1], s[3]);
	}
	/* u[4m + k], 128-bit half h = column 4h + k of rows 4m..4m+3. */
	HK_UNROLL for (int k = 0; k < 4; k++) {
		v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
		v[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
	}
}

/*
 * Pack queries [0, nqq) x dims [k0, k0 + kl) (kl a multiple of 64) into qp,
 * each byte minus HK_TILE8_BIAS. A full group of 8 queries x 32 dims is one
 * 8x8 dword transpose; the rest go byte by byte. Missing queries are zero
 * (their results are computed, never stored).
 */
static void pack_queries(const uint8_t *qu, size_t nqq, size_t qstride,
                         size_t k0, size_t kl, uint32_t *qp)
{
	const __m256i bias = _mm256_set1_epi8((char)HK_TILE8_BIAS);
	size_t ng = kl / 4, full = nqq / 8;
	for (size_t qb = 0; qb < full; qb++) {
		for (size_t c = 0; c < kl; c += 32) {
			__m256i v[8];
			HK_UNROLL for (int l = 0; l < 8; l++)
				v[l] = _mm256_sub_epi8(
				    _mm256_loadu_si256((const __m256i *)(qu + (qb * 8 + l) * qstride +
				                                         k0 + c)),
				    bias);
			transpose8(v);
			HK_UNROLL for (int k = 0; k < 8; k++)
				_mm256_store_si256((__m256i *)(qp + ((c / 4 + k) * 4 + qb) * 8), v[k]);
		}
	}
	for (size_t j = full * 8; j < QB; j++) {
		uint8_t *dst = (uint8_t *)(qp + (j / 8) * 8 + (j % 8));
		const uint8_t *src = j < nqq ? qu + j * qstride + k0 : NULL;
		for (size_t g = 0; g < ng; g++)
			for (size_t b = 0; b < 4; b++)
				dst[g * 128 + b] =
				    src ? (uint8_t)(src[4 * g + b] - HK_TILE8_BIAS) : 0;
	}
}

/*
 * nr rows (2 or 3) x (8 * nqb) queries over ng groups; t[qb * 8 + r]. With
 * 3 rows and 4 query vectors, 12 accumulators + 3 row broadcasts + 1 query
 * vector fill the 16 registers; 12 chains hide vpdpbusd's 4-cycle latency
 * at 2 per cycle (8 chains reached 86 % of the peak on Zen 5). GCC 12
 * spills accumulators at 16 live registers, so a file may supply the full
 * case (HK_TILE8_ROWS rows x 4 query vectors) as HK_TILE8_MICRO_FULL (asm).
 */
HK_AINL void micro(const __m256i *qp, size_t ng, const int8_t *const *p,
                   __m256i *t, int nqb, int nr)
{
#ifdef HK_TILE8_MICRO_FULL
	if (nr == HK_TILE8_ROWS && nqb == 4) {
		HK_TILE8_MICRO_FULL(qp, ng, p, t);
		return;
	}
#endif
	__m256i acc[3][4];
	HK_UNROLL for (int r = 0; r < nr; r++)
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			acc[r][qb] = _mm256_setzero_si256();
#ifdef HK_TILE8_DP2
	/* two groups per step (ng is a multiple of 16) */
	for (size_t g = 0; g < ng; g += 2) {
		__m256i ra[3], rb[3];
		HK_UNROLL for (int r = 0; r < nr; r++) {
			ra[r] = bcast32(p[r] + 4 * g);
			rb[r] = bcast32(p[r] + 4 * g + 4);
		}
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			__m256i q0 = _mm256_load_si256(qp + g * 4 + qb);
			__m256i q1 = _mm256_load_si256(qp + g * 4 + 4 + qb);
			HK_UNROLL for (int r = 0; r < nr; r++)
				acc[r][qb] = HK_TILE8_DP2(acc[r][qb], q0, ra[r], q1, rb[r]);
		}
	}
#else
	for (size_t g = 0; g < ng; g++) {
		__m256i rb[3];
		HK_UNROLL for (int r = 0; r < nr; r++)
			rb[r] = bcast32(p[r] + 4 * g);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			__m256i q = _mm256_load_si256(qp + g * 4 + qb);
			HK_UNROLL for (int r = 0; r < nr; r++)
				acc[r][qb] = HK_TILE8_DP(acc[r][qb], q, rb[r]);
		}
	}
#endif
	HK_UNROLL for (int qb = 0; qb < nqb; qb++)
		HK_UNROLL for (int r = 0; r < nr; r++)
			t[qb * 8 + r] = acc[r][qb];
}

/*
 * One slice of dims for up to 32 queries (nqq) over all rows. first: the
 * slice starts the sums (store minus the row-sum correction); otherwise it
 * adds to what out holds.
 */
HK_AINL void tile_slice(const __m256i *qp, size_t nqq, const int8_t *rows,
                        const int32_t *row_sums, size_t count, size_t k0,
                        size_t kl, size_t stride, int32_t *out, size_t ldo,
                        int first, int nqb)
{
	__m256i t[32];
	size_t ng = kl / 4;
	for (size_t i = 0; i < count; i += 8) {
		size_t nr = count - i < 8 ? count - i : 8;
		/* Rows past the end repeat the last row (results not stored). */
		const int8_t *p[8];
		HK_UNROLL for (size_t r = 0; r < 8; r++)
			p[r] = rows + (i + (r < nr ? r : nr - 1)) * stride + k0;
		/* the next 8 rows, one line per 64 bytes: they come from memory on
		 * the first pass and the hardware prefetcher lags 8 interleaved
		 * streams */
		size_t npf = count - i > 16 ? 8 : count - i > 8 ? count - i - 8 : 0;
		for (size_t b = 0; b < npf * kl; b += 64)
			_mm_prefetch((const char *)(rows + (i + 8) * stride + k0) +
			                 (b / kl) * stride + b % kl,
			             _MM_HINT_T0);
		HK_UNROLL for (int r = 0; r < 8; r += HK_TILE8_ROWS) {
			int rr = 8 - r < HK_TILE8_ROWS ? 8 - r : HK_TILE8_ROWS;
			micro(qp, ng, p + r, t + r, nqb, rr);
		}
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr),
		                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		__m256i corr = _mm256_slli_epi32(_mm256_maskload_epi32(row_sums + i, m),
		                                 HK_TILE8_SHIFT);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			transpose8(t + 8 * qb);
			for (size_t l = 0; l < 8; l++) {
				size_t j = (size_t)qb * 8 + l;
				if (j >= nqq)
					break;
				int32_t *dst = out + j * ldo + i;
				__m256i v = t[8 * qb + l];
				if (nr == 8) {
					/* full tile: plain moves (vpmaskmovd stores are
					 * slow on AMD: ~10 % of the avx2 batch on Zen 5) */
					v = first ? _mm256_sub_epi32(v, corr)
					          : _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)dst));
					_mm256_storeu_si256((__m256i *)dst, v);
				} else {
					v = first ? _mm256_sub_epi32(v, corr)
					          : _mm256_add_epi32(v, _mm256_maskload_epi32(dst, m));
					_mm256_maskstore_epi32(dst, m, v);
				}
			}
		}
	}
}

static void hk__tile8(const uint8_t *qu, size_t nq, size_t qstride,
                      const int8_t *rows, const int32_t *row_sums, size_t count,
                      size_t dim, size_t stride, int32_t *out, size_t ldo)
{
	HK__TILE_PASSES(QB, KB, 8, __m256i)
}

#undef QB
#undef KB
#endif
