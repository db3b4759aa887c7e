/* Measured int8 peak of one core with I8MM: SMMLA (2x8 by 8x2, 32 products
 * per instruction). See peak_i8.h. */
#if defined(__aarch64__)
#define _GNU_SOURCE
#include <arm_neon.h>

#include "peak_i8.h"

#define I8_INIT(i) vdupq_n_s32(i)
#define I8_STEP(a) vmmlaq_s32(a, x, y)
double hkb_i8_peak_i8mm(double seconds)
{
	const int8x16_t x = vdupq_n_s8(5), y = vdupq_n_s8(3);
	HKB_PEAK_BODY(int32x4_t, I8_INIT, I8_STEP, 64, seconds)
}
#endif
