/* Measured int8 peak of one core with AVX-VNNI: vpdpbusd on ymm (32
 * products per instruction). See peak_i8.h. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include <immintrin.h>

#include "peak_i8.h"

#define I8_INIT(i) _mm256_set1_epi32(i)
#define I8_STEP(a) _mm256_dpbusd_avx_epi32(a, x, y)
double hkb_i8_peak_avxvnni(double seconds)
{
	const __m256i x = _mm256_set1_epi8(5), y = _mm256_set1_epi8(3);
	HKB_PEAK_BODY(__m256i, I8_INIT, I8_STEP, 64, seconds)
}
#endif
