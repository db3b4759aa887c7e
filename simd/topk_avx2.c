/* AVX2 block scoring for the top-k scan (8 scores per step, the last step
 * masked); see topk_avx512.c. */
#include <immintrin.h>

#include "hk_simd.h"
#include "topk.h"

/* One body for int32 and float dots (exactly one of di, df non-NULL). */
HK_AINL int score8(const int32_t *di, const float *df, const float *scale,
                   size_t cnt, float floor, float *out, uint64_t *hits)
{
	__m256 f = _mm256_set1_ps(floor);
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	uint64_t any = 0;
	for (size_t w = 0; w < (cnt + 63) / 64; w++)
		hits[w] = 0;
	for (size_t i = 0; i < cnt; i += 8) {
		int n = cnt - i >= 8 ? 8 : (int)(cnt - i);
		__m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
		__m256 d = di ? _mm256_cvtepi32_ps(_mm256_maskload_epi32((const int *)di + i, k))
		              : _mm256_maskload_ps(df + i, k);
		__m256 s = _mm256_mul_ps(d, _mm256_maskload_ps(scale + i, k));
		if (n == 8)
			_mm256_storeu_ps(out + i, s);
		else
			_mm256_maskstore_ps(out + i, k, s);
		uint64_t m = (uint64_t)_mm256_movemask_ps(
		    _mm256_and_ps(_mm256_cmp_ps(s, f, _CMP_GT_OQ), _mm256_castsi256_ps(k)));
		hits[i / 64] |= m << (i % 64);
		any |= m;
	}
	return any != 0;
}

int hk__score_block_i32_avx2(const int32_t *dots, const float *scale,
                             size_t cnt, float floor, float *out, uint64_t *hits)
{
	return score8(dots, NULL, scale, cnt, floor, out, hits);
}

int hk__score_block_f32_avx2(const float *dots, const float *scale, size_t cnt,
                             float floor, float *out, uint64_t *hits)
{
	return score8(NULL, dots, scale, cnt, floor, out, hits);
}
