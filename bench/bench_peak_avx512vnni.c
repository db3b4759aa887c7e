/* Measured int8 peak of one core with AVX512-VNNI: vpdpbusd on zmm (64
 * products per instruction). See peak_i8.h. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include <immintrin.h>

#include "peak_i8.h"

#define I8_INIT(i) _mm512_set1_epi32(i)
#define I8_STEP(a) _mm512_dpbusd_epi32(a, x, y)
double hkb_i8_peak_avx512vnni(double seconds)
{
	const __m512i x = _mm512_set1_epi8(5), y = _mm512_set1_epi8(3);
	HKB_PEAK_BODY(__m512i, I8_INIT, I8_STEP, 128, seconds)
}
#endif
