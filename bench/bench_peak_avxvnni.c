/* Measured int8 peak of one core with AVX-VNNI: vpdpbusd on ymm (32
 * products per instruction), VEX-encoded as tile_i8 runs it. See
 * peak_i8.h. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include "peak_i8.h"

#define I8_SETUP "vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n\tvpabsb %%ymm12, %%ymm13\n\t"
#define I8_STEP(i) "%{vex%} vpdpbusd %%ymm12, %%ymm13, %%ymm" HKB_S(i) "\n\t"
double hkb_i8_peak_avxvnni(double seconds)
{
	HKB_ASM_PEAK(I8_SETUP, I8_STEP, 64, seconds)
}
#endif
