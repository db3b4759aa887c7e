/* Helpers of the aarch64 batch tiles (scan_neon.c, tile_i8mm.c). */
#ifndef HK_NEON_TILE_H
#define HK_NEON_TILE_H

#include <arm_neon.h>

#include "hk_simd.h"

/* dst[0..nr) = v (first slice of dims) or += v; nr <= 4. */
static inline void hk__store_rows(int32_t *dst, int32x4_t v, size_t nr, int first)
{
	if (nr == 4) {
		vst1q_s32(dst, first ? v : vaddq_s32(vld1q_s32(dst), v));
		return;
	}
	int32_t t[4];
	vst1q_s32(t, v);
	for (size_t r = 0; r < nr; r++)
		dst[r] = first ? t[r] : dst[r] + t[r];
}

/* Query bytes as signed int8 (qu ^ 0x80 == qu - 128): SDOT and SMMLA are
 * s8 x s8, so no row-sum correction is needed. */
static inline int8_t hk__q_signed(uint8_t qu) { return (int8_t)(qu ^ 0x80); }

#endif
