/*
 * Pair kernels, AVX2 + FMA + F16C. Any n, unaligned pointers: the main loop
 * takes 16 elements with two accumulators (FMA latency 4, two ports), the
 * tail of fewer than 16 elements is finished in scalar code.
 */
#include "hk_simd.h"

#include <immintrin.h>
#include "x86_reduce.h"

/* 8 elements at index i as fp32, and one element for the scalar tail. */
typedef __m256 (*ld8_fn)(const void *p, size_t i);
typedef float (*ld1_fn)(const void *p, size_t i);

static inline __m256 ld_f32(const void *p, size_t i)
{
	return _mm256_loadu_ps((const float *)p + i);
}

static inline __m256 ld_f16(const void *p, size_t i)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}

/* bfloat16 -> fp32 is a 16-bit left shift of the bit pattern. */
static inline __m256 ld_bf16(const void *p, size_t i)
{
	__m256i w = _mm256_cvtepu16_epi32(
	    _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
	return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
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

HK_AINL float dot(const void *a, const void *b, size_t n, ld8_fn la, ld8_fn lb,
                  ld1_fn sa, ld1_fn sb)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(la(a, i), lb(b, i), s0);
		s1 = _mm256_fmadd_ps(la(a, i + 8), lb(b, i + 8), s1);
	}
	float s = hk__hsum256_ps(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
		s += sa(a, i) * sb(b, i);
	return s;
}

float hk__dot_f32_avx2(const float *a, const float *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f32, sc_f32, sc_f32);
}

float hk__dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f16, ld_f16, sc_f16, sc_f16);
}

float hk__dot_f32_f16_avx2(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f16, sc_f32, sc_f16);
}

float hk__dot_f32_bf16_avx2(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_bf16, sc_f32, sc_bf16);
}

/* Sign-extend to 16 bits and vpmaddwd: |a*b + c*d| <= 2*127*127 fits. */
int32_t hk__dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n)
{
	__m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
		__m256i y0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
		__m256i x1 = _mm256_cvtepi8_epi16(
		    _mm_loadu_si128((const __m128i *)(a + i + 16)));
		__m256i y1 = _mm256_cvtepi8_epi16(
		    _mm_loadu_si128((const __m128i *)(b + i + 16)));
		s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(x0, y0));
		s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(x1, y1));
	}
	int32_t r = hk__hsum256_epi32(_mm256_add_epi32(s0, s1));
	for (; i < n; i++)
		r += (int32_t)a[i] * b[i];
	return r;
}
