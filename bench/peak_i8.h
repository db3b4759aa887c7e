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
 * acc[i] = STEP(acc[i]), until `seconds` of CPU time; an empty asm keeps
 * the accumulators alive. Returns GOP/s. (aarch64; x86 uses HKB_ASM_PEAK.)
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
	HKB_UNROLL for (int i = 0; i < HKB_NACC; i++)                          \
		__asm__ volatile("" ::"w"(acc[i]));                              \
	return (double)iters * HKB_NACC * (OPS) / t / 1e9;

#if defined(__x86_64__)
/*
 * x86: the instructions are written in asm, so the compiler can neither
 * merge the loop-invariant products nor spill the accumulators (it did
 * both with intrinsics, and the figure came out 30 % low). Accumulators
 * are ymm/zmm 0..11 (48 updates per asm block), the operands 12 (-1 as
 * s8) and 13 (1 as u8), 15 holds 16-bit ones for vpmaddwd, 14 is the
 * temporary.
 */
#define HKB_S_(x) #x
#define HKB_S(x) HKB_S_(x)
#define HKB_R12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define HKB_ASM_PEAK(SETUP, M, OPS, seconds)                                   \
	long iters = 0;                                                        \
	double t0 = hkb_tcpu(), t;                                             \
	do {                                                                   \
		for (int r = 0; r < 1024; r++)                                 \
			__asm__ volatile(SETUP HKB_R12(M) HKB_R12(M) HKB_R12(M)  \
			                 HKB_R12(M)::: "xmm0", "xmm1", "xmm2", \
			                 "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",       \
			                 "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",    \
			                 "xmm13", "xmm14", "xmm15");                   \
		iters += 1024;                                                 \
		t = hkb_tcpu() - t0;                                           \
	} while (t < (seconds));                                               \
	return (double)iters * 48 * (OPS) / t / 1e9;
#endif

/* Per tier; defined in the files compiled for that tier (weak elsewhere). */
double hkb_i8_peak_avx2(double seconds);
double hkb_i8_peak_avxvnni(double seconds);
double hkb_i8_peak_avx512vnni(double seconds);
double hkb_i8_peak_neon(double seconds);
double hkb_i8_peak_i8mm(double seconds);

#endif
