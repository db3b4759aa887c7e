/* Measured FMA peak of one core (AVX2 ymm): 12 independent FMA chains
 * hide the 4-cycle latency on two FMA ports. Used by `herken-bench infer`
 * to express GFLOP/s as a fraction of what the core can do. The int8
 * peak (peak_i8.h) is below it. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include <immintrin.h>
#include <time.h>

#include "bench.h"
#include "peak_i8.h"

double hkb_fma_peak_avx2(double seconds);

double hkb_fma_peak_avx2(double seconds)
{
	__m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
	__m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
	__m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
	__m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
	long iters = 0;
	double t0 = hkb_tcpu(), t;
	do {
		for (int r = 0; r < 4096; r++)
		{
#define F(x) x = _mm256_fmadd_ps(x, m, c)
			F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11);
#undef F
		}
		iters += 4096;
		t = hkb_tcpu() - t0;
	} while (t < seconds);
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
	s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
	float tmp[8];
	_mm256_storeu_ps(tmp, s);
	volatile float sink = tmp[0] + tmp[7];
	(void)sink;
	return (double)iters * 12 * 8 * 2 / t / 1e9;
}

/* AVX2 without VNNI, the sequence tile_i8 of the avx2 tier runs per 64
 * products: vpmaddubsw x 2 + vpaddw + vpmaddwd (by ones) + vpaddd (4
 * multiply-type instructions per 64 products would be 2 x (vpmaddubsw +
 * vpmaddwd); scan_avx2.c says why 3 are enough). */
#define I8_SETUP "vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n\tvpabsb %%ymm12, %%ymm13\n\t"
/* vpmaddwd multiplies by ymm13 (257 per word): same cost as by ones */
#define I8_STEP(i)                                                             \
	"vpmaddubsw %%ymm12, %%ymm13, %%ymm14\n\t"                             \
	"vpmaddubsw %%ymm12, %%ymm13, %%ymm15\n\t"                             \
	"vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                                 \
	"vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"                               \
	"vpaddd %%ymm14, %%ymm" HKB_S(i) ", %%ymm" HKB_S(i) "\n\t"
double hkb_i8_peak_avx2(double seconds)
{
	HKB_ASM_PEAK(I8_SETUP, I8_STEP, 128, seconds)
}
#endif
