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
 * Pack queries [0, nqq) of a pass of nqp (missing ones zero: computed,
 * never stored) x dims [k0, k0 + kl) as signed bytes: query j's dims come
 * in chunks of `chunk` bytes (4 for SDOT's groups, 8 for SMMLA's blocks) at
 * qp + (j / per) * 16 + (j % per) * chunk + 64 * (chunk index), i.e. `per`
 * queries share a 16-byte vector and 4 vectors make one chunk of the pass.
 */
static inline void hk__pack_signed(const uint8_t *qu, size_t nqq, size_t qstride,
                                   size_t k0, size_t kl, int8_t *qp, size_t nqp,
                                   size_t per, size_t chunk)
{
	for (size_t j = 0; j < nqp; j++) {
		int8_t *dst = qp + (j / per) * 16 + (j % per) * chunk;
		const uint8_t *src = j < nqq ? qu + j * qstride + k0 : NULL;
		for (size_t g = 0; g < kl / chunk; g++)
			for (size_t b = 0; b < chunk; b++)
				dst[g * 64 + b] = src ? hk__q_signed(src[chunk * g + b]) : 0;
	}
}

/* The n row pointers of a tile starting at row i (nr of them real): rows
 * past the end repeat the last row (results not stored). */
HK_AINL void hk__tile_rows(const int8_t **p, const int8_t *rows, size_t i,
                           size_t nr, size_t n, size_t stride, size_t k0)
{
	HK_UNROLL for (size_t r = 0; r < n; r++)
		p[r] = rows + (i + (r < nr ? r : nr - 1)) * stride + k0;
}

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
