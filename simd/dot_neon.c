/*
 * Pair kernels, aarch64 Advanced SIMD (+dotprod for int8). Any n, unaligned
 * pointers: 16 elements per step in four accumulators, scalar tail.
 */
#include "hk_simd.h"

#include <arm_neon.h>

/* 4 elements at index i as fp32, and one element for the scalar tail. */
typedef float32x4_t (*ld4_fn)(const void *p, size_t i);
typedef float (*ld1_fn)(const void *p, size_t i);

static inline float32x4_t ld_f32(const void *p, size_t i)
{
	return vld1q_f32((const float *)p + i);
}

static inline float32x4_t ld_f16(const void *p, size_t i)
{
	return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + i)));
}

/* bfloat16 -> fp32 is a 16-bit left shift of the bit pattern. */
static inline float32x4_t ld_bf16(const void *p, size_t i)
{
	return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + i), 16));
}

static inline float sc_f32(const void *p, size_t i) { return ((const float *)p)[i]; }
static inline float sc_f16(const void *p, size_t i)
{
	return hk__f16_to_f32(((const uint16_t *)p)[i]);
}
static inline float sc_bf16(const void *p, size_t i)
{
	return hk__bf16_to_f32(((const uint16_t *)p)[i]);
}

HK_AINL float dot(const void *a, const void *b, size_t n, ld4_fn la, ld4_fn lb,
                  ld1_fn sa, ld1_fn sb)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = vfmaq_f32(s0, la(a, i), lb(b, i));
		s1 = vfmaq_f32(s1, la(a, i + 4), lb(b, i + 4));
		s2 = vfmaq_f32(s2, la(a, i + 8), lb(b, i + 8));
		s3 = vfmaq_f32(s3, la(a, i + 12), lb(b, i + 12));
	}
	float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
	for (; i < n; i++)
		s += sa(a, i) * sb(b, i);
	return s;
}

float hk__dot_f32_neon(const float *a, const float *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f32, sc_f32, sc_f32);
}

float hk__dot_f16_neon(const uint16_t *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f16, ld_f16, sc_f16, sc_f16);
}

float hk__dot_f32_f16_neon(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f16, sc_f32, sc_f16);
}

float hk__dot_f32_bf16_neon(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_bf16, sc_f32, sc_bf16);
}

/* SDOT: 16 int8 products summed in groups of 4 into 32-bit lanes. */
int32_t hk__dot_i8_neon(const int8_t *a, const int8_t *b, size_t n)
{
	int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = vdotq_s32(s0, vld1q_s8(a + i), vld1q_s8(b + i));
		s1 = vdotq_s32(s1, vld1q_s8(a + i + 16), vld1q_s8(b + i + 16));
	}
	int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
	for (; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}
