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

/* ---- tile_i8 ----------------------------------------------------------
 * The AVX512-VNNI design on 8-lane vectors and 16 registers: queries in
 * lanes, up to 32 queries packed per pass (4 vectors), a 2-row x 32-query
 * micro-kernel (8 accumulators, 4 query loads + 2 row broadcasts per 8
 * vpdpbusd), 8-row tiles turned row-in-lanes by an 8x8 transpose so the
 * stores to out[j * ldo + i] are contiguous.
 */

#define QB 32  /* queries per packed block (4 vectors of 8 lanes)   */
#define KB 256 /* dims per packed slice: 64 groups x 4 x 32 B = 8 KiB */

static inline __m256i bcast32(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* Vector (g * 4 + qb), lane l = 4 bytes of query 8 * qb + l at dim k0 + 4g;
 * missing queries are zero (computed, never stored). */
static void pack_queries(const uint8_t *qu, size_t nqq, size_t qstride,
                         size_t k0, size_t kl, uint32_t *qp)
{
	size_t ng = kl / 4;
	for (size_t j = 0; j < QB; j++) {
		uint32_t *dst = qp + (j / 8) * 8 + (j % 8);
		const uint8_t *src = qu + j * qstride + k0;
		for (size_t g = 0; g < ng; g++) {
			uint32_t v = 0;
			if (j < nqq)
				memcpy(&v, src + 4 * g, 4);
			dst[g * 32] = v;
		}
	}
}

/* 2 rows x (8 * nqb) queries over ng groups; t[qb * 8 + r]. */
HK_AINL void micro2(const __m256i *qp, size_t ng, const int8_t *p0,
                    const int8_t *p1, __m256i *t, int nqb)
{
	__m256i acc[2][4];
	HK_UNROLL for (int r = 0; r < 2; r++)
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			acc[r][qb] = _mm256_setzero_si256();
	for (size_t g = 0; g < ng; g++) {
		__m256i r0 = bcast32(p0 + 4 * g), r1 = bcast32(p1 + 4 * g);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			__m256i q = _mm256_load_si256(qp + g * 4 + qb);
			acc[0][qb] = _mm256_dpbusd_avx_epi32(acc[0][qb], q, r0);
			acc[1][qb] = _mm256_dpbusd_avx_epi32(acc[1][qb], q, r1);
		}
	}
	HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
		t[qb * 8] = acc[0][qb];
		t[qb * 8 + 1] = acc[1][qb];
	}
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

HK_AINL void tile_slice(const __m256i *qp, size_t nqq, const int8_t *rows,
                        const int32_t *row_sums, size_t count, size_t k0,
                        size_t kl, size_t stride, int32_t *out, size_t ldo,
                        int first, int nqb)
{
	__m256i t[32];
	size_t ng = kl / 4;
	for (size_t i = 0; i < count; i += 8) {
		size_t nr = count - i < 8 ? count - i : 8;
		HK_UNROLL for (size_t r = 0; r < 8; r += 2) {
			/* Rows past the end repeat the last row (results not stored). */
			const int8_t *p0 = rows + (i + (r < nr ? r : nr - 1)) * stride + k0;
			const int8_t *p1 = rows + (i + (r + 1 < nr ? r + 1 : nr - 1)) * stride + k0;
			micro2(qp, ng, p0, p1, t + r, nqb);
		}
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr),
		                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		__m256i corr = _mm256_slli_epi32(_mm256_maskload_epi32(row_sums + i, m), 7);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			transpose8(t + 8 * qb);
			for (size_t l = 0; l < 8; l++) {
				size_t j = (size_t)qb * 8 + l;
				if (j >= nqq)
					break;
				int32_t *dst = out + j * ldo + i;
				__m256i v = t[8 * qb + l];
				v = first ? _mm256_sub_epi32(v, corr)
				          : _mm256_add_epi32(v, _mm256_maskload_epi32(dst, m));
				_mm256_maskstore_epi32(dst, m, v);
			}
		}
	}
}

static void tile_i8_avxvnni(const uint8_t *qu, size_t nq, size_t qstride,
                            const int8_t *rows, const int32_t *row_sums,
                            size_t count, size_t dim, size_t stride,
                            int32_t *out, size_t ldo)
{
	HK__TILE_PASSES(QB, KB, 8, __m256i)
}

const hk__kernel_table hk__kernels_avxvnni = {
	.isa = HK_ISA_AVXVNNI,
	.name = "avxvnni",
	HK__AVX2_FP_ENTRIES,
	.scan_i8 = scan_i8_avxvnni,
	.tile_i8 = tile_i8_avxvnni,
};
