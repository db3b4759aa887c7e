/*
 * Transposed horizontal sums, 8x8 / 16x16 transposes and a row prefetch for
 * the x86 kernels (include only from
 * *_avx2.c / *_avx512*.c files). Reducing a block of 8 (ymm) or 16 (zmm) row
 * accumulators together costs about 3 shuffles+adds per row instead of the
 * ~10 of a per-row reduction, and yields the block's results as one vector.
 */
#ifndef HK_X86_REDUCE_H
#define HK_X86_REDUCE_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

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
 * Prefetch min(n, max) rows of kl bytes (a multiple of 64) at p, one line
 * per 64 bytes: a tile driver asks for the rows of its next tile, which
 * come from memory on the first slice (the hardware prefetcher lags that
 * many interleaved streams). No division in the loop: an earlier b / kl
 * form cost ~15 % of the avxvnni batch.
 */
#define HK__PREFETCH_ROWS(p, n, kl, stride, HINT)                              \
	for (size_t r_ = 0; r_ < (n); r_++)                                    \
		for (size_t c_ = 0; c_ < (kl); c_ += 64)                       \
			_mm_prefetch((const char *)(p) + r_ * (stride) + c_, HINT)

static inline void hk__prefetch_rows(const int8_t *p, size_t n, size_t max,
                                     size_t kl, size_t stride)
{
	HK__PREFETCH_ROWS(p, n < max ? n : max, kl, stride, _MM_HINT_T0);
}

/*
 * The same with prefetcht2 (to the outer caches, not L1) for n rows at
 * byte offset off from p, whether or not they belong to the caller: a
 * prefetch never faults and reads nothing the program sees (the address is
 * formed as an integer, so no out-of-object pointer arithmetic), and a
 * gallery's next row block is usually the next bytes. The tile drivers ask
 * for the rows HK__PF_FAR tiles ahead: on Zen 5 with 4 KiB pages (no THP
 * on the test VM, so the hardware streamer stops at every page) the zmm
 * tile over 1M x 192 B rows in 256-row calls went from ~495-535 to
 * ~595-645 GOP/s (3 runs each, shared host); 8 and 16 tiles fell between.
 */
#define HK__PF_FAR 4
static inline void hk__prefetch_rows_far(const int8_t *p, size_t off, size_t n,
                                         size_t kl, size_t stride)
{
	const char *q = (const char *)((uintptr_t)p + off);
	HK__PREFETCH_ROWS(q, n, kl, stride, _MM_HINT_T2);
}

/*
 * The first two levels of an NxN transpose of 32-bit elements (N = 8 on
 * ymm, 16 on zmm): 32-bit then 64-bit interleaves of v[0..N) into u[0..N);
 * afterwards u[4m + k], 128-bit chunk c holds column 4c + k of rows
 * 4m..4m+3. The last level(s) move whole 128-bit chunks.
 */
#define HK__TRANSPOSE_4X4(T, N, UL32, UH32, UL64, UH64)                        \
	T t[N], u[N];                                                          \
	HK_UNROLL for (int k = 0; k < N / 2; k++) {                            \
		t[2 * k] = UL32(v[2 * k], v[2 * k + 1]);                       \
		t[2 * k + 1] = UH32(v[2 * k], v[2 * k + 1]);                   \
	}                                                                      \
	HK_UNROLL for (int m = 0; m < N / 4; m++) {                            \
		T *s = t + 4 * m;                                              \
		u[4 * m + 0] = UL64(s[0], s[2]);                               \
		u[4 * m + 1] = UH64(s[0], s[2]);                               \
		u[4 * m + 2] = UL64(s[1], s[3]);                               \
		u[4 * m + 3] = UH64(s[1], s[3]);                               \
	}

/* In-register 8x8 transpose of 32-bit elements: v[r] lane c -> v[c] lane r. */
static inline void hk__transpose8(__m256i v[8])
{
	HK__TRANSPOSE_4X4(__m256i, 8, _mm256_unpacklo_epi32, _mm256_unpackhi_epi32,
	                  _mm256_unpacklo_epi64, _mm256_unpackhi_epi64)
	HK_UNROLL for (int k = 0; k < 4; k++) {
		v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
		v[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
	}
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
	HK__TRANSPOSE_4X4(__m512i, 16, _mm512_unpacklo_epi32, _mm512_unpackhi_epi32,
	                  _mm512_unpacklo_epi64, _mm512_unpackhi_epi64)
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
