/* Read-bandwidth probe for herken-bench: streams a buffer with 256-bit loads
 * into independent accumulators (compiled with AVX2 flags; only called when
 * the CPU has AVX2). The result is returned so the loads cannot be elided. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

uint64_t hkb_probe_read_avx2(const void *buf, size_t bytes)
{
	const __m256i *p = buf;
	size_t n = bytes / 128;
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
	for (size_t i = 0; i < n; i++) {
		a0 = _mm256_add_epi64(a0, _mm256_load_si256(p + 4 * i));
		a1 = _mm256_add_epi64(a1, _mm256_load_si256(p + 4 * i + 1));
		a2 = _mm256_add_epi64(a2, _mm256_load_si256(p + 4 * i + 2));
		a3 = _mm256_add_epi64(a3, _mm256_load_si256(p + 4 * i + 3));
	}
	a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
	uint64_t out[4];
	_mm256_storeu_si256((__m256i *)out, a0);
	return out[0] + out[1] + out[2] + out[3];
}
