/* Measured FMA peak of one core (AVX-512 zmm): 12 independent FMA chains
 * hide the 4-cycle latency on two FMA ports. Used by `herken-bench infer`
 * to express GFLOP/s as a fraction of what the core can do. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include <immintrin.h>
#include <time.h>

#include "bench.h"
#include "peak_i8.h"

double hkb_fma_peak_avx512(double seconds);

double hkb_fma_peak_avx512(double seconds)
{
	__m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
	__m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3);
	__m512 a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
	__m512 a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
	long iters = 0;
	double t0 = hkb_tcpu(), t;
	do {
		for (int r = 0; r < 4096; r++)
		{
#define F(x) x = _mm512_fmadd_ps(x, m, c)
			F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11);
#undef F
		}
		iters += 4096;
		t = hkb_tcpu() - t0;
	} while (t < seconds);
	__m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
	volatile float sink = _mm512_reduce_add_ps(s);
	(void)sink;
	return (double)iters * 12 * 16 * 2 / t / 1e9;
}

#endif
