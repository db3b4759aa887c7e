/* AVX-512 block scoring for the top-k scan: 16 scores per step, converted,
 * scaled and compared with the heap floor in registers. Tombstones carry a
 * NaN scale, and an ordered compare is false for NaN, so they never pass. */
#include <immintrin.h>

#include "topk.h"

int hk__score_block_i32_avx512(const int32_t *dots, const float *scale,
                               size_t cnt, float floor, float *out)
{
	__m512 f = _mm512_set1_ps(floor);
	__mmask16 any = 0;
	size_t i = 0;
	for (; i + 16 <= cnt; i += 16) {
		__m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(dots + i)),
		                         _mm512_loadu_ps(scale + i));
		_mm512_storeu_ps(out + i, s);
		any |= _mm512_cmp_ps_mask(s, f, _CMP_GT_OQ);
	}
	if (i < cnt) {
		__mmask16 m = (__mmask16)((1u << (cnt - i)) - 1);
		__m512 s = _mm512_mul_ps(
		    _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, dots + i)),
		    _mm512_maskz_loadu_ps(m, scale + i));
		_mm512_mask_storeu_ps(out + i, m, s);
		any |= _mm512_mask_cmp_ps_mask(m, s, f, _CMP_GT_OQ);
	}
	return any != 0;
}

int hk__score_block_f32_avx512(const float *dots, const float *scale,
                               size_t cnt, float floor, float *out)
{
	__m512 f = _mm512_set1_ps(floor);
	__mmask16 any = 0;
	size_t i = 0;
	for (; i + 16 <= cnt; i += 16) {
		__m512 s = _mm512_mul_ps(_mm512_loadu_ps(dots + i), _mm512_loadu_ps(scale + i));
		_mm512_storeu_ps(out + i, s);
		any |= _mm512_cmp_ps_mask(s, f, _CMP_GT_OQ);
	}
	if (i < cnt) {
		__mmask16 m = (__mmask16)((1u << (cnt - i)) - 1);
		__m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dots + i),
		                         _mm512_maskz_loadu_ps(m, scale + i));
		_mm512_mask_storeu_ps(out + i, m, s);
		any |= _mm512_mask_cmp_ps_mask(m, s, f, _CMP_GT_OQ);
	}
	return any != 0;
}
