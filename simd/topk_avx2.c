/* AVX2 block scoring for the top-k scan (8 scores per step); see
 * topk_avx512.c. */
#include <immintrin.h>

#include "topk.h"

int hk__score_block_i32_avx2(const int32_t *dots, const float *scale,
                             size_t cnt, float floor, float *out)
{
	__m256 f = _mm256_set1_ps(floor);
	__m256 any = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= cnt; i += 8) {
		__m256 s = _mm256_mul_ps(
		    _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(dots + i))),
		    _mm256_loadu_ps(scale + i));
		_mm256_storeu_ps(out + i, s);
		any = _mm256_or_ps(any, _mm256_cmp_ps(s, f, _CMP_GT_OQ));
	}
	int hit = _mm256_movemask_ps(any) != 0;
	for (; i < cnt; i++) {
		out[i] = (float)dots[i] * scale[i];
		hit |= out[i] > floor;
	}
	return hit;
}

int hk__score_block_f32_avx2(const float *dots, const float *scale, size_t cnt,
                             float floor, float *out)
{
	__m256 f = _mm256_set1_ps(floor);
	__m256 any = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= cnt; i += 8) {
		__m256 s = _mm256_mul_ps(_mm256_loadu_ps(dots + i), _mm256_loadu_ps(scale + i));
		_mm256_storeu_ps(out + i, s);
		any = _mm256_or_ps(any, _mm256_cmp_ps(s, f, _CMP_GT_OQ));
	}
	int hit = _mm256_movemask_ps(any) != 0;
	for (; i < cnt; i++) {
		out[i] = dots[i] * scale[i];
		hit |= out[i] > floor;
	}
	return hit;
}
