/*
 * Transposed horizontal sums and a 16x16 transpose for the x86 kernels (include only from
 * *_avx2.c / *_avx512*.c files). Reducing a block of 8 (ymm) or 16 (zmm) row
 * accumulators together costs about 3 shuffles+adds per row instead of the
 * ~10 of a per-row reduction, and yields the block's results as one vector.
 */
#ifndef HK_X86_REDUCE_H
#define HK_X86_REDUCE_H

#include <immintrin.h>

/* v[0..7] -> lane r = sum of v[r]'s 8 lanes. */
static inline __m256i hk__rsum8_epi32(const __m256i v[8])
{
	__m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]),
	                              _mm256_hadd_epi32(v[2], v[3]));
	__m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]),
	                              _mm256_hadd_epi32(v[6], v[7]));
	return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
	                        _mm256_permute2x128_si256(a, b, 0x31));
}

static inline __m256 hk__rsum8_ps(const __m256 v[8])
{
	__m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
	__m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
	return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20),
	                     _mm256_permute2f128_ps(a, b, 0x31));
}

static inline int32_t hk__hsum256_epi32(__m256i s)
{
	__m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
	h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
	h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
	return _mm_cvtsi128_si32(h);
}

static inline float hk__hsum256_ps(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/*
 * Body of a queries-in-lanes tile_i8 (scan_avxvnni.c, scan_avx512vnni.c):
 * passes of up to QBV queries (LANES per vector, at most 4 vectors) and
 * KBV-dim slices; each pass packs its queries into the stack buffer with
 * pack_queries() and runs tile_slice() specialised for the number of query
 * vectors. Expects the tile_i8 parameter names in scope.
 */
#define HK__TILE_PASSES(QBV, KBV, LANES, VT)                                   \
	_Alignas(64) uint32_t qp[KBV / 4 * QBV];                               \
	if (count == 0)                                                        \
		return;                                                        \
	for (size_t j0 = 0; j0 < nq; j0 += QBV) {                              \
		size_t nqq = nq - j0 < QBV ? nq - j0 : QBV;                    \
		int nqb = (int)((nqq + LANES - 1) / LANES);                    \
		for (size_t k0 = 0; k0 < dim; k0 += KBV) {                     \
			size_t kl = dim - k0 < KBV ? dim - k0 : KBV;           \
			pack_queries(qu + j0 * qstride, nqq, qstride, k0, kl, qp); \
			const VT *q = (const VT *)qp;                          \
			int32_t *o = out + j0 * ldo;                           \
			int f = k0 == 0;                                       \
			if (nqb == 1)                                          \
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 1); \
			else if (nqb == 2)                                     \
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 2); \
			else if (nqb == 3)                                     \
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 3); \
			else                                                   \
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 4); \
		}                                                              \
	}

#ifdef __AVX512F__
/*
 * v[0..15] -> lane r = sum of v[r]'s 16 lanes, in four levels: 32-bit
 * interleave, 64-bit interleave, then two 128-bit-chunk shuffles; each level
 * halves the number of vectors.
 */
#define HK__RSUM16(T, ADD, CASTI, CASTT)                                        \
	T t8[8], t4[4], t2[2];                                                  \
	HK_UNROLL for (int k = 0; k < 8; k++) {                                           \
		__m512i a = CASTI(v[2 * k]), b = CASTI(v[2 * k + 1]);           \
		t8[k] = ADD(CASTT(_mm512_unpacklo_epi32(a, b)),                 \
		            CASTT(_mm512_unpackhi_epi32(a, b)));                \
	}                                                                       \
	HK_UNROLL for (int k = 0; k < 4; k++) {                                           \
		__m512i a = CASTI(t8[2 * k]), b = CASTI(t8[2 * k + 1]);         \
		t4[k] = ADD(CASTT(_mm512_unpacklo_epi64(a, b)),                 \
		            CASTT(_mm512_unpackhi_epi64(a, b)));                \
	}                                                                       \
	HK_UNROLL for (int k = 0; k < 2; k++) {                                           \
		__m512i a = CASTI(t4[2 * k]), b = CASTI(t4[2 * k + 1]);         \
		t2[k] = ADD(CASTT(_mm512_shuffle_i32x4(a, b, 0x88)),            \
		            CASTT(_mm512_shuffle_i32x4(a, b, 0xdd)));           \
	}                                                                       \
	__m512i a = CASTI(t2[0]), b = CASTI(t2[1]);                             \
	return ADD(CASTT(_mm512_shuffle_i32x4(a, b, 0x88)),                     \
	           CASTT(_mm512_shuffle_i32x4(a, b, 0xdd)));

/* In-register 16x16 transpose of 32-bit elements: v[r] lane c -> v[c] lane r. */
static inline void hk__transpose16(__m512i v[16])
{
	__m512i t[16], u[16];
	HK_UNROLL for (int k = 0; k < 8; k++) {
		t[2 * k] = _mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]);
		t[2 * k + 1] = _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]);
	}
	HK_UNROLL for (int m = 0; m < 4; m++) {
		__m512i *s = t + 4 * m;
		u[4 * m + 0] = _mm512_unpacklo_epi64(s[0], s[2]);
		u[4 * m + 1] = _mm512_unpackhi_epi64(s[0], s[2]);
		u[4 * m + 2] = _mm512_unpacklo_epi64(s[1], s[3]);
		u[4 * m + 3] = _mm512_unpackhi_epi64(s[1], s[3]);
	}
	/* u[4m + k], 128-bit chunk c = column 4c + k of rows 4m..4m+3. */
	HK_UNROLL for (int k = 0; k < 4; k++) {
		__m512i x0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x44);
		__m512i x1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xee);
		__m512i x2 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x44);
		__m512i x3 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xee);
		v[0 + k] = _mm512_shuffle_i32x4(x0, x2, 0x88);
		v[4 + k] = _mm512_shuffle_i32x4(x0, x2, 0xdd);
		v[8 + k] = _mm512_shuffle_i32x4(x1, x3, 0x88);
		v[12 + k] = _mm512_shuffle_i32x4(x1, x3, 0xdd);
	}
}

/* Sum of the 16 lanes with wrapping vector adds (GCC's
 * _mm512_reduce_add_epi32 adds in C int, which is UB on overflow). */
static inline int32_t hk__hsum512_epi32(__m512i v)
{
	return hk__hsum256_epi32(_mm256_add_epi32(_mm512_castsi512_si256(v),
	                                          _mm512_extracti64x4_epi64(v, 1)));
}

static inline __m512i hk__id512(__m512i x) { return x; }

static inline __m512i hk__rsum16_epi32(const __m512i v[16])
{
	HK__RSUM16(__m512i, _mm512_add_epi32, hk__id512, hk__id512)
}

static inline __m512 hk__rsum16_ps(const __m512 v[16])
{
	HK__RSUM16(__m512, _mm512_add_ps, _mm512_castps_si512, _mm512_castsi512_ps)
}
#undef HK__RSUM16
#endif

#endif
