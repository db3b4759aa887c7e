/*
 * Row kernels, aarch64 Advanced SIMD + dotprod, and the neon tier's table.
 *
 * Each row is read front to back with four accumulators and reduced with
 * one across-vector add. int8: the offset query turns signed with an XOR (qu ^ 0x80 ==
 * qu - 128 as int8), then SDOT gives the exact signed dot directly, so the
 * row sums are not needed. tile_i8: a register-blocked SDOT micro-kernel
 * (below).
 */
#include "hk_simd.h"
#include "neon_tile.h"

#include <arm_neon.h>

/* 4 elements of a row starting at element c, as fp32. */
typedef float32x4_t (*ld4_fn)(const char *row, size_t c);

static inline float32x4_t ld_f32(const char *row, size_t c)
{
	return vld1q_f32((const float *)row + c);
}

static inline float32x4_t ld_f16(const char *row, size_t c)
{
	return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + c)));
}

/* dim: multiple of 16 (fp32 and fp16 padding); rows 64-byte aligned. */
HK_AINL void scan_rows(const float *q, const char *rows, size_t count,
                       size_t dim, size_t stride, float *out, ld4_fn ld)
{
	for (size_t i = 0; i < count; i++) {
		const char *p = rows + i * stride;
		float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
		for (size_t c = 0; c < dim; c += 16) {
			s0 = vfmaq_f32(s0, ld(p, c), vld1q_f32(q + c));
			s1 = vfmaq_f32(s1, ld(p, c + 4), vld1q_f32(q + c + 4));
			s2 = vfmaq_f32(s2, ld(p, c + 8), vld1q_f32(q + c + 8));
			s3 = vfmaq_f32(s3, ld(p, c + 12), vld1q_f32(q + c + 12));
		}
		out[i] = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
	}
}

void hk__scan_f32_neon(const float *q, const float *rows, size_t count,
                          size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f32);
}

void hk__scan_f16_neon(const float *q, const uint16_t *rows, size_t count,
                          size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f16);
}

void hk__scan_i8_neon(const uint8_t *qu, const int8_t *rows,
                         const int32_t *row_sums, size_t count, size_t dim,
                         size_t stride, int32_t *out)
{
	(void)row_sums;
	const uint8x16_t flip = vdupq_n_u8(0x80);
	for (size_t i = 0; i < count; i++) {
		const int8_t *p = rows + i * stride;
		int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
		for (size_t c = 0; c < dim; c += 64) {
			int8x16_t q0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qu + c), flip));
			int8x16_t q1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qu + c + 16), flip));
			int8x16_t q2 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qu + c + 32), flip));
			int8x16_t q3 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qu + c + 48), flip));
			s0 = vdotq_s32(s0, vld1q_s8(p + c), q0);
			s1 = vdotq_s32(s1, vld1q_s8(p + c + 16), q1);
			s2 = vdotq_s32(s2, vld1q_s8(p + c + 32), q2);
			s3 = vdotq_s32(s3, vld1q_s8(p + c + 48), q3);
		}
		out[i] = vaddvq_s32(vaddq_s32(vaddq_s32(s0, s1), vaddq_s32(s2, s3)));
	}
}

/* ---- tile_i8 ----------------------------------------------------------
 * Queries in lanes, the x86 design on 4-lane vectors and 32 registers: up
 * to 16 queries packed per pass (4 vectors), signed (qu ^ 0x80) so SDOT
 * gives the signed dot with no row-sum correction; vector (g * 4 + qb),
 * lane l = the 4 bytes of query 4 qb + l at dims 4g..4g+3 of the slice. A
 * 4-row x 16-query micro-kernel loads 16 bytes of each row (4 groups) and
 * multiplies each group against the packed queries with the by-lane SDOT:
 * 16 accumulators, 64 SDOT per 4 row loads and 16 query loads. A 4x4
 * transpose turns 4 rows x 4 queries row-in-lanes for the stores.
 */

#define NQB 16  /* queries per pass (4 vectors of 4 lanes)            */
#define NKB 256 /* dims per packed slice: 64 groups x 4 x 16 B = 4 KiB */

/* An SDOT pass: 4 queries per vector, groups of 4 dims. */
static void pack_sdot(const uint8_t *qu, size_t nqq, size_t qstride, size_t k0,
                      size_t kl, int8_t *qp)
{
	hk__pack_signed(qu, nqq, qstride, k0, kl, qp, NQB, 4, 4);
}

/* 4x4 transpose of 32-bit lanes: a..d rows in, columns out. */
static inline void transpose4(int32x4_t v[4])
{
	int32x4_t t0 = vtrn1q_s32(v[0], v[1]), t1 = vtrn2q_s32(v[0], v[1]);
	int32x4_t t2 = vtrn1q_s32(v[2], v[3]), t3 = vtrn2q_s32(v[2], v[3]);
	v[0] = vreinterpretq_s32_s64(vtrn1q_s64(vreinterpretq_s64_s32(t0), vreinterpretq_s64_s32(t2)));
	v[1] = vreinterpretq_s32_s64(vtrn1q_s64(vreinterpretq_s64_s32(t1), vreinterpretq_s64_s32(t3)));
	v[2] = vreinterpretq_s32_s64(vtrn2q_s64(vreinterpretq_s64_s32(t0), vreinterpretq_s64_s32(t2)));
	v[3] = vreinterpretq_s32_s64(vtrn2q_s64(vreinterpretq_s64_s32(t1), vreinterpretq_s64_s32(t3)));
}

/* One pass over all rows for up to 16 queries and one slice of dims; first:
 * the slice starts the sums, otherwise it adds to what out holds. */
HK_AINL void tile_sdot(const int8x16_t *qp, size_t nqq, const int8_t *rows,
                       size_t count, size_t k0, size_t kl, size_t stride,
                       int32_t *out, size_t ldo, int first, int nqb)
{
	for (size_t i = 0; i < count; i += 4) {
		size_t nr = count - i < 4 ? count - i : 4;
		const int8_t *p[4];
		hk__tile_rows(p, rows, i, nr, 4, stride, k0);
		int32x4_t acc[4][4];
		HK_UNROLL for (int r = 0; r < 4; r++)
			HK_UNROLL for (int qb = 0; qb < nqb; qb++)
				acc[r][qb] = vdupq_n_s32(0);
		for (size_t c = 0; c < kl; c += 16) {
			const int8x16_t *q = qp + (c / 4) * 4;
			int8x16_t rv[4];
			HK_UNROLL for (int r = 0; r < 4; r++)
				rv[r] = vld1q_s8(p[r] + c);
			HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
				int8x16_t q0 = q[qb], q1 = q[4 + qb], q2 = q[8 + qb], q3 = q[12 + qb];
				HK_UNROLL for (int r = 0; r < 4; r++) {
					acc[r][qb] = vdotq_laneq_s32(acc[r][qb], q0, rv[r], 0);
					acc[r][qb] = vdotq_laneq_s32(acc[r][qb], q1, rv[r], 1);
					acc[r][qb] = vdotq_laneq_s32(acc[r][qb], q2, rv[r], 2);
					acc[r][qb] = vdotq_laneq_s32(acc[r][qb], q3, rv[r], 3);
				}
			}
		}
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			int32x4_t v[4] = {acc[0][qb], acc[1][qb], acc[2][qb], acc[3][qb]};
			transpose4(v);
			for (size_t l = 0; l < 4 && (size_t)qb * 4 + l < nqq; l++)
				hk__store_rows(out + ((size_t)qb * 4 + l) * ldo + i, v[l], nr, first);
		}
	}
}

static void tile_i8_neon(const uint8_t *qu, size_t nq, size_t qstride,
                         const int8_t *rows, const int32_t *row_sums,
                         size_t count, size_t dim, size_t stride, int32_t *out,
                         size_t ldo)
{
	HK__NEON_PASSES(NQB, NKB, 4, pack_sdot, tile_sdot)
}

uint32_t hk__read_sum_neon(const void *p, size_t bytes)
{
	const uint32_t *w = p;
	uint32x4_t s0 = vdupq_n_u32(0), s1 = s0, s2 = s0, s3 = s0;
	for (size_t i = 0; i < bytes / 4; i += 16) {
		s0 = vaddq_u32(s0, vld1q_u32(w + i));
		s1 = vaddq_u32(s1, vld1q_u32(w + i + 4));
		s2 = vaddq_u32(s2, vld1q_u32(w + i + 8));
		s3 = vaddq_u32(s3, vld1q_u32(w + i + 12));
	}
	return vaddvq_u32(vaddq_u32(vaddq_u32(s0, s1), vaddq_u32(s2, s3)));
}

const hk__kernel_table hk__kernels_neon = {
	.isa = HK_ISA_NEON,
	.name = "neon",
	HK__NEON_ENTRIES,
	.tile_i8 = tile_i8_neon,
};
