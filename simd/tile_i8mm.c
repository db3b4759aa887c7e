/*
 * The i8mm tier: the neon tier with tile_i8 on SMMLA (Armv8.6 I8MM).
 *
 * SMMLA multiplies a 2x8 by an 8x2 s8 matrix into a 2x2 s32 tile: 32
 * products per instruction against SDOT's 16. A query pair and a row pair
 * each fill one 16-byte vector (8 dims of each): queries are packed once
 * per pass (signed, qu ^ 0x80), rows are read from the row-major copy,
 * 8 bytes of two rows combined per vector. A 4-row-pair x 4-query-pair
 * micro-kernel keeps 16 accumulators (8 rows x 8 queries): 16 SMMLA per
 * 8 row loads and 4 query loads. Accumulator (rp, qp) holds
 * [q0.r0, q0.r1, q1.r0, q1.r1], so zipping the 64-bit halves of two row
 * pairs gives 4 consecutive rows of one query for the stores.
 */
#include "hk_simd.h"
#include "neon_tile.h"

#include <arm_neon.h>

#define PQB 8   /* queries per pass (4 pairs)                          */
#define PKB 256 /* dims per packed slice: 4 pairs x 32 blocks x 16 B   */

/* Vector (kb * 4 + qp) = 8 dims (block kb) of queries 2qp and 2qp + 1. */
static void pack_mmla(const uint8_t *qu, size_t nqq, size_t qstride, size_t k0,
                      size_t kl, int8_t *qp)
{
	hk__pack_signed(qu, nqq, qstride, k0, kl, qp, PQB, 2, 8);
}

HK_AINL void tile_mmla(const int8x16_t *qp, size_t nqq, const int8_t *rows,
                       size_t count, size_t k0, size_t kl, size_t stride,
                       int32_t *out, size_t ldo, int first, int nqp)
{
	for (size_t i = 0; i < count; i += 8) {
		size_t nr = count - i < 8 ? count - i : 8;
		const int8_t *p[8];
		hk__tile_rows(p, rows, i, nr, 8, stride, k0);
		int32x4_t acc[4][4];
		HK_UNROLL for (int rp = 0; rp < 4; rp++)
			HK_UNROLL for (int q = 0; q < nqp; q++)
				acc[rp][q] = vdupq_n_s32(0);
		for (size_t c = 0; c < kl; c += 8) {
			const int8x16_t *q = qp + (c / 8) * 4;
			int8x16_t rv[4];
			HK_UNROLL for (int rp = 0; rp < 4; rp++)
				rv[rp] = vcombine_s8(vld1_s8(p[2 * rp] + c), vld1_s8(p[2 * rp + 1] + c));
			HK_UNROLL for (int qq = 0; qq < nqp; qq++) {
				int8x16_t qv = q[qq];
				HK_UNROLL for (int rp = 0; rp < 4; rp++)
					acc[rp][qq] = vmmlaq_s32(acc[rp][qq], qv, rv[rp]);
			}
		}
		HK_UNROLL for (int qq = 0; qq < nqp; qq++) {
			for (size_t h = 0; h < 2 && (size_t)qq * 2 + h < nqq; h++) {
				int32_t *dst = out + ((size_t)qq * 2 + h) * ldo + i;
				HK_UNROLL for (int half = 0; half < 2; half++) {
					int64x2_t a = vreinterpretq_s64_s32(acc[2 * half][qq]);
					int64x2_t b = vreinterpretq_s64_s32(acc[2 * half + 1][qq]);
					int32x4_t v = vreinterpretq_s32_s64(h ? vzip2q_s64(a, b)
					                                      : vzip1q_s64(a, b));
					size_t r0 = (size_t)half * 4;
					if (r0 < nr)
						hk__store_rows(dst + r0, v, nr - r0 < 4 ? nr - r0 : 4, first);
				}
			}
		}
	}
}

static void tile_i8_i8mm(const uint8_t *qu, size_t nq, size_t qstride,
                         const int8_t *rows, const int32_t *row_sums,
                         size_t count, size_t dim, size_t stride, int32_t *out,
                         size_t ldo)
{
	HK__NEON_PASSES(PQB, PKB, 2, pack_mmla, tile_mmla)
}

const hk__kernel_table hk__kernels_i8mm = {
	.isa = HK_ISA_I8MM,
	.name = "i8mm",
	HK__NEON_ENTRIES,
	.tile_i8 = tile_i8_i8mm,
};
