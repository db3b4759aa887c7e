/*
 * Row kernels, aarch64 Advanced SIMD + dotprod, and the neon tier's table.
 *
 * Each row is read front to back with four accumulators and reduced with
 * one across-vector add. int8: the offset query turns signed with an XOR (qu ^ 0x80 ==
 * qu - 128 as int8), then SDOT gives the exact signed dot directly, so the
 * row sums are not needed. tile_i8 scans L1/L2-sized row blocks per query.
 */
#include "hk_simd.h"

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

static void scan_f32_neon(const float *q, const float *rows, size_t count,
                          size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f32);
}

static void scan_f16_neon(const float *q, const uint16_t *rows, size_t count,
                          size_t dim, size_t stride, float *out)
{
	scan_rows(q, (const char *)rows, count, dim, stride, out, ld_f16);
}

static void scan_i8_neon(const uint8_t *qu, const int8_t *rows,
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

static void tile_i8_neon(const uint8_t *qu, size_t nq, size_t qstride,
                         const int8_t *rows, const int32_t *row_sums,
                         size_t count, size_t dim, size_t stride, int32_t *out,
                         size_t ldo)
{
	hk__tile_i8_by_scan(scan_i8_neon, qu, nq, qstride, rows, row_sums, count,
	                    dim, stride, out, ldo);
}

static uint32_t read_sum_neon(const void *p, size_t bytes)
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
	.dot_f32 = hk__dot_f32_neon,
	.dot_f16 = hk__dot_f16_neon,
	.dot_f32_f16 = hk__dot_f32_f16_neon,
	.dot_f32_bf16 = hk__dot_f32_bf16_neon,
	.dot_i8 = hk__dot_i8_neon,
	.scan_f32 = scan_f32_neon,
	.scan_f16 = scan_f16_neon,
	.scan_i8 = scan_i8_neon,
	.tile_i8 = tile_i8_neon,
	.read_sum = read_sum_neon,
};
