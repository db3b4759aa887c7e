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

/*
 * Body of a queries-in-lanes tile_i8 (scan_neon.c, tile_i8mm.c): passes of
 * up to QBN queries in groups of PER (4 lanes for SDOT, 2 for SMMLA), KBN-dim
 * slices packed by PACK into the stack, each run by TILE specialised for
 * the number of query groups (1..4). Expects the tile_i8 parameter names.
 */
#define HK__NEON_PASSES(QBN, KBN, PER, PACK, TILE)                              \
	(void)row_sums; /* signed queries: no correction */                   \
	_Alignas(16) int8_t qp[(KBN) * (QBN)];                                 \
	for (size_t j0 = 0; j0 < nq && count; j0 += (QBN)) {                   \
		size_t nqq = nq - j0 < (QBN) ? nq - j0 : (QBN);                 \
		int ng = (int)((nqq + (PER) - 1) / (PER));                     \
		for (size_t k0 = 0; k0 < dim; k0 += (KBN)) {                    \
			size_t kl = dim - k0 < (KBN) ? dim - k0 : (KBN);        \
			PACK(qu + j0 * qstride, nqq, qstride, k0, kl, qp);      \
			const int8x16_t *q = (const int8x16_t *)qp;             \
			int32_t *o = out + j0 * ldo;                            \
			int f = k0 == 0;                                        \
			if (ng == 1)                                            \
				TILE(q, nqq, rows, count, k0, kl, stride, o, ldo, f, 1); \
			else if (ng == 2)                                       \
				TILE(q, nqq, rows, count, k0, kl, stride, o, ldo, f, 2); \
			else if (ng == 3)                                       \
				TILE(q, nqq, rows, count, k0, kl, stride, o, ldo, f, 3); \
			else                                                    \
				TILE(q, nqq, rows, count, k0, kl, stride, o, ldo, f, 4); \
		}                                                               \
	}

#endif
