/* Measured int8 peak of one core with AVX512-VNNI: vpdpbusd on zmm (64
 * products per instruction). See peak_i8.h. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include "peak_i8.h"

#define I8_SETUP "vpternlogd $0xff, %%zmm12, %%zmm12, %%zmm12\n\tvpabsb %%zmm12, %%zmm13\n\t"
#define I8_STEP(i) "vpdpbusd %%zmm12, %%zmm13, %%zmm" HKB_S(i) "\n\t"
double hkb_i8_peak_avx512vnni(double seconds)
{
	HKB_ASM_PEAK(I8_SETUP, I8_STEP, 128, seconds)
}
#endif
