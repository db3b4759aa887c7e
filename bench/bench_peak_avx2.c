/* Measured FMA peak of one core (AVX2 ymm): 12 independent FMA chains
 * hide the 4-cycle latency on two FMA ports. Used by `herken-bench infer`
 * to express GFLOP/s as a fraction of what the core can do. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "bench.h"

double hkb_fma_peak_avx2(double seconds);

double hkb_fma_peak_avx2(double seconds)
{
	__m256 a[12], m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++)
		a[i] = _mm256_set1_ps((float)i);
	long iters = 0;
	double t0 = hkb_now(), t;
	do {
		for (int r = 0; r < 4096; r++)
			for (int i = 0; i < 12; i++)
				a[i] = _mm256_fmadd_ps(a[i], m, c);
		iters += 4096;
		t = hkb_now() - t0;
	} while (t < seconds);
	__m256 s = a[0];
	for (int i = 1; i < 12; i++)
		s = _mm256_add_ps(s, a[i]);
	float tmp[8];
	_mm256_storeu_ps(tmp, s);
	volatile float sink = tmp[0] + tmp[7];
	(void)sink;
	return (double)iters * 12 * 8 * 2 / t / 1e9;
}
#endif
