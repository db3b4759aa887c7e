/*
 * Pair kernels, AVX-512 F/BW/VL/DQ. Any n, unaligned pointers: the tail is
 * done with masked loads (masked-off lanes read as zero and never fault).
 */
#include "hk_simd.h"

#include <immintrin.h>

static inline __mmask16 tail16(size_t left)
{
	return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static inline __m512 ld_f16(const uint16_t *p, __mmask16 m)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline __m512 ld_bf16(const uint16_t *p, __mmask16 m)
{
	__m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
	return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

float hk__dot_f32_avx512(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
		                     _mm512_loadu_ps(b + i + 16), s1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = tail16(n - i);
		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
		                     _mm512_maskz_loadu_ps(m, b + i), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float hk__dot_f16_avx512(const uint16_t *a, const uint16_t *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(ld_f16(a + i, 0xffff), ld_f16(b + i, 0xffff), s0);
		s1 = _mm512_fmadd_ps(ld_f16(a + i + 16, 0xffff),
		                     ld_f16(b + i + 16, 0xffff), s1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = tail16(n - i);
		s0 = _mm512_fmadd_ps(ld_f16(a + i, m), ld_f16(b + i, m), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float hk__dot_f32_f16_avx512(const float *a, const uint16_t *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), ld_f16(b + i, 0xffff), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
		                     ld_f16(b + i + 16, 0xffff), s1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = tail16(n - i);
		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), ld_f16(b + i, m),
		                     s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float hk__dot_f32_bf16_avx512(const float *a, const uint16_t *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), ld_bf16(b + i, 0xffff), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
		                     ld_bf16(b + i + 16, 0xffff), s1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = tail16(n - i);
		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), ld_bf16(b + i, m),
		                     s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
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
	return _mm512_reduce_add_epi32(s);
}
