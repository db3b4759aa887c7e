/*
 * Measured int8 multiply-add peak of one core, per ISA tier (included by
 * bench/bench_peak_*.c, each compiled with its tier's flags). NACC
 * independent accumulator chains hide the instruction latency; each round
 * updates every chain once with `OPS` int8 operations (2 per product).
 * Thread CPU time, so the figure is the core's, not our share of it.
 * `herken-bench kernels` reports tile_i8 as a share of these.
 */
#ifndef HK_PEAK_I8_H
#define HK_PEAK_I8_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <time.h>

#define HKB_NACC 12

static inline double hkb_tcpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__GNUC__) && !defined(__clang__)
#define HKB_UNROLL _Pragma("GCC unroll 16")
#else
#define HKB_UNROLL _Pragma("unroll")
#endif

/*
 * Body of a peak function: VT acc[NACC] initialised by INIT(i), each round
 * acc[i] = STEP(acc[i]), until `seconds` of CPU time; SINK(acc) keeps the
 * result alive. Returns GOP/s.
 */
#define HKB_PEAK_BODY(VT, INIT, STEP, OPS, seconds)                            \
	VT acc[HKB_NACC];                                                      \
	HKB_UNROLL for (int i = 0; i < HKB_NACC; i++) acc[i] = INIT(i);        \
	long iters = 0;                                                        \
	double t0 = hkb_tcpu(), t;                                             \
	do {                                                                   \
		for (int r = 0; r < 1024; r++) {                               \
			HKB_UNROLL for (int i = 0; i < HKB_NACC; i++)          \
				acc[i] = STEP(acc[i]);                         \
		}                                                              \
		iters += 1024;                                                 \
		t = hkb_tcpu() - t0;                                           \
	} while (t < (seconds));                                               \
	volatile VT sink_;                                                     \
	HKB_UNROLL for (int i = 0; i < HKB_NACC; i++) sink_ = acc[i];          \
	(void)sink_;                                                           \
	return (double)iters * HKB_NACC * (OPS) / t / 1e9;

/* Per tier; defined in the files compiled for that tier (weak elsewhere). */
double hkb_i8_peak_avx2(double seconds);
double hkb_i8_peak_avxvnni(double seconds);
double hkb_i8_peak_avx512vnni(double seconds);
double hkb_i8_peak_neon(double seconds);
double hkb_i8_peak_i8mm(double seconds);

#endif
