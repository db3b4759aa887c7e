/*
 * Pair kernels, AVX-512 F/BW/VL/DQ. Any n, unaligned pointers: the tail is
 * done with masked loads (masked-off lanes read as zero and never fault).
 */
#include "hk_simd.h"

#include "x86_reduce.h"

#include <immintrin.h>

static inline __mmask16 tail16(size_t left)
{
	return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* 16 elements at index i as fp32, lanes outside mask m read as zero. */
typedef __m512 (*ld16_fn)(const void *p, size_t i, __mmask16 m);

static inline __m512 ld_f32(const void *p, size_t i, __mmask16 m)
{
	return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

static inline __m512 ld_f16(const void *p, size_t i, __mmask16 m)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

/* bfloat16 -> fp32 is a 16-bit left shift of the bit pattern. */
static inline __m512 ld_bf16(const void *p, size_t i, __mmask16 m)
{
	__m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
	return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

HK_AINL float dot(const void *a, const void *b, size_t n, ld16_fn la, ld16_fn lb)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(la(a, i, 0xffff), lb(b, i, 0xffff), s0);
		s1 = _mm512_fmadd_ps(la(a, i + 16, 0xffff), lb(b, i + 16, 0xffff), s1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = tail16(n - i);
		s0 = _mm512_fmadd_ps(la(a, i, m), lb(b, i, m), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float hk__dot_f32_avx512(const float *a, const float *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f32);
}

float hk__dot_f16_avx512(const uint16_t *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f16, ld_f16);
}

float hk__dot_f32_f16_avx512(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_f16);
}

float hk__dot_f32_bf16_avx512(const float *a, const uint16_t *b, size_t n)
{
	return dot(a, b, n, ld_f32, ld_bf16);
}

/* Sign-extend 32 bytes to 16-bit lanes and vpmaddwd (no saturation). */
int32_t hk__dot_i8_avx512(const int8_t *a, const int8_t *b, size_t n)
{
	__m512i s = _mm512_setzero_si512();
	for (size_t i = 0; i < n; i += 32) {
		size_t left = n - i;
		__mmask32 m = left >= 32 ? (__mmask32)0xffffffffu
		                         : (__mmask32)((1u << left) - 1);
		__m512i x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
		__m512i y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
		s = _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
	}
	return hk__hsum512_epi32(s);
}
