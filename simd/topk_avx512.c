/* AVX-512 block scoring for the top-k scan: 16 scores per step, converted,
 * scaled and compared with the heap floor in registers. Tombstones carry a
 * NaN scale, and an ordered compare is false for NaN, so they never pass. */
#include <immintrin.h>

#include "hk_simd.h"
#include "topk.h"

/* One body for int32 and float dots (exactly one of di, df non-NULL). */
HK_AINL int score16(const int32_t *di, const float *df, const float *scale,
                    size_t cnt, float floor, float *out, uint64_t *hits)
{
	__m512 f = _mm512_set1_ps(floor);
	uint64_t any = 0;
	for (size_t w = 0; w < (cnt + 63) / 64; w++)
		hits[w] = 0;
	for (size_t i = 0; i < cnt; i += 16) {
		__mmask16 k = cnt - i >= 16 ? (__mmask16)0xffff
		                            : (__mmask16)((1u << (cnt - i)) - 1);
		__m512 d = di ? _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, di + i))
		              : _mm512_maskz_loadu_ps(k, df + i);
		__m512 s = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, scale + i));
		_mm512_mask_storeu_ps(out + i, k, s);
		uint64_t m = _mm512_mask_cmp_ps_mask(k, s, f, _CMP_GT_OQ);
		hits[i / 64] |= m << (i % 64);
		any |= m;
	}
	return any != 0;
}

int hk__score_block_i32_avx512(const int32_t *dots, const float *scale,
                               size_t cnt, float floor, float *out, uint64_t *hits)
{
	return score16(dots, NULL, scale, cnt, floor, out, hits);
}

int hk__score_block_f32_avx512(const float *dots, const float *scale,
                               size_t cnt, float floor, float *out, uint64_t *hits)
{
	return score16(NULL, dots, scale, cnt, floor, out, hits);
}
