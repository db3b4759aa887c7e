/*
 * Distance kernels and CPU dispatch (internal to libherken).
 *
 * One file per kernel family and ISA (dot_*.c, scan_*.c); only those files
 * are compiled with ISA flags (see the Makefile). hk__kernels() returns the
 * read-only table for the tier chosen once per process (pthread_once), capped
 * by HERKEN_MAX_ISA. Every entry has a scalar reference in *_scalar.c and
 * tests compare every compiled tier against it.
 *
 * Contracts common to all kernels:
 *   - Pair kernels (dot_*) take any n >= 0 and unaligned pointers.
 *   - Row kernels (scan_*, tile_*) take rows of `stride` bytes, each row
 *     64-byte aligned, with `dim` a multiple of HK_SIMD_PAD_* elements; the
 *     padding elements of rows are zero, those of queries finite (int8:
 *     any value, it multiplies zero). The query need not be aligned.
 *   - Outputs for exactly `count` rows are written, nothing past them.
 *   - int8 data is symmetric: values in [-127, 127] (never -128). Queries
 *     for the int8 row kernels are passed offset to unsigned, qu = q + 128
 *     (1..255), because VNNI multiplies u8 x s8; kernels return the exact
 *     signed dot sum((qu - 128) * row) using row_sums[i] = sum(row i).
 *     A tier may narrow the query range (i8_qmax: |qu - 128| <= 63 on
 *     avx2); all query bytes, padding included, must respect it.
 */
#ifndef HK_SIMD_H
#define HK_SIMD_H

#include "../core/herken.h"

#include <stddef.h>
#include <stdint.h>

/* Fully unroll a short constant-count loop so its vector arrays live in
 * registers (GCC -O2 does not unroll on its own). */
#if defined(__GNUC__) && !defined(__clang__)
#define HK_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define HK_UNROLL _Pragma("unroll")
#else
#define HK_UNROLL
#endif

/* Inlined into each caller so constant arguments specialise the body. */
#define HK_AINL static inline __attribute__((always_inline))

/*
 * Software prefetch distance of the streaming row kernels, in bytes ahead
 * of the row being read. On the (shared, noisy) Sapphire Rapids VM, scan_i8
 * over 192 MB ran within noise of the read probe for 0, 1, 2 and 4 KiB;
 * 2 KiB is a middle value that stays ahead of the hardware prefetcher.
 */
#ifndef HK_PF_DIST
#define HK_PF_DIST 2048
#endif

#define HK_SIMD_PAD_I8 64  /* int8 rows/queries padded to 64 elements */
#define HK_SIMD_PAD_F16 32 /* fp16 rows padded to 32 elements         */
#define HK_SIMD_PAD_F32 16 /* fp32 rows padded to 16 elements         */

/*
 * The hit filter of tile_i8_hits: bit i % 8 of bits[j * ldb + i / 8] is set
 * iff (float)out[j * ldo + i] * scale[i] > floor[j] (float multiply, as
 * hk__score_block_i32 computes it; a NaN scale is never a hit). ldb is a
 * multiple of 8 and >= 8 * ceil(count / 64): every byte of those 64-bit
 * words is written, bits past count cleared, so a little-endian reader
 * sees bit i % 64 of word i / 64.
 */
typedef struct hk__tile_hits {
	const float *scale; /* count per-row scales (in)       */
	const float *floor; /* nq per-query floors (in)        */
	uint8_t *bits;      /* nq rows of ldb bytes (out)      */
	size_t ldb;
} hk__tile_hits;

typedef struct hk__kernel_table {
	hk_isa isa;
	const char *name; /* "scalar", "avx2", ... (hk_isa_name of isa) */

	/* Pair kernels. fp16/bf16 are raw IEEE half / bfloat16 bit patterns. */
	float (*dot_f32)(const float *a, const float *b, size_t n);
	float (*dot_f16)(const uint16_t *a, const uint16_t *b, size_t n);
	float (*dot_f32_f16)(const float *a, const uint16_t *b, size_t n);
	float (*dot_f32_bf16)(const float *a, const uint16_t *b, size_t n);
	int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t n);

	/* One query against count rows: out[i] = dot(q, row i). */
	void (*scan_f32)(const float *q, const float *rows, size_t count,
	                 size_t dim, size_t stride, float *out);
	void (*scan_f16)(const float *q, const uint16_t *rows, size_t count,
	                 size_t dim, size_t stride, float *out);
	void (*scan_i8)(const uint8_t *qu, const int8_t *rows,
	                const int32_t *row_sums, size_t count, size_t dim,
	                size_t stride, int32_t *out);

	/*
	 * nq queries (qu: nq rows of qstride bytes, offset-128 u8) against count
	 * rows: out[j * ldo + i] = dot(q_j, row i), ldo >= count. Each row comes
	 * from memory once per 64 queries (x86 VNNI packs 64 queries per pass,
	 * per 256-dim slice; other tiers scan L1/L2-sized row blocks). Packing
	 * costs O(nq * dim) per call, so pass a few thousand rows per call. The
	 * amx tier runs whole 16-query tiles x 32-row blocks with dim <= 512 on
	 * AMX and the rest on AVX512-VNNI. Uses up to ~40 KiB of stack.
	 */
	void (*tile_i8)(const uint8_t *qu, size_t nq, size_t qstride,
	                const int8_t *rows, const int32_t *row_sums, size_t count,
	                size_t dim, size_t stride, int32_t *out, size_t ldo);

	/*
	 * Read-bandwidth probe: sums the 32-bit words of bytes (a multiple of 64)
	 * at p (64-byte aligned) with plain vector loads. Benchmarks run it over
	 * as many bytes as a scan to report the scan's share of the bandwidth a
	 * bare stream reaches in the same process. (Appended field.)
	 */
	uint32_t (*read_sum)(const void *p, size_t bytes);

	/*
	 * Largest |qu - 128| the int8 row kernels of this tier accept (0 means
	 * 127, the full symmetric range). The avx2 tier says 63: its batch tile
	 * multiplies with vpmaddubsw, whose 16-bit pair sums cannot saturate
	 * only for a 7-bit query (scan_avx2.c). Callers quantise queries to
	 * hk__i8_qmax(K) for every int8 kernel of the tier, so one query and a
	 * batch score alike. (Appended field.)
	 */
	int i8_qmax;

	/*
	 * tile_i8 that also marks, per query, the rows worth offering to its
	 * top-k (h: hk__tile_hits), so the caller skips a separate scoring pass
	 * over the nq x count results (it cost ~15 % of an AVX-VNNI batch
	 * search). out is written as by tile_i8. NULL in tiers without it:
	 * callers use tile_i8 and hk__score_block_i32. (Appended field.)
	 */
	void (*tile_i8_hits)(const uint8_t *qu, size_t nq, size_t qstride,
	                     const int8_t *rows, const int32_t *row_sums,
	                     size_t count, size_t dim, size_t stride, int32_t *out,
	                     size_t ldo, const struct hk__tile_hits *h);
} hk__kernel_table;

static inline int hk__i8_qmax(const hk__kernel_table *k)
{
	return k->i8_qmax ? k->i8_qmax : 127;
}

/* The process-wide table (never NULL). */
const hk__kernel_table *hk__kernels(void);

/*
 * The table for a given tier, or NULL if that tier is not compiled in or
 * not supported by this CPU/OS. Tests and benchmarks use it to run every
 * tier side by side.
 */
const hk__kernel_table *hk__kernels_for(hk_isa isa);

/* Highest tier this CPU and OS support (ignoring HERKEN_MAX_ISA). */
hk_isa hk__cpu_detect(void);

/* Bit (1u << tier) set for every tier this CPU and OS support. */
unsigned hk__cpu_tiers(void);

/* "avx2" -> HK_ISA_AVX2 (case-insensitive). 0 on success, -1 if unknown. */
int hk__isa_parse(const char *s, hk_isa *out);

/*
 * The tier dispatch picks: the highest tier that is compiled in, present in
 * `tiers` (a hk__cpu_tiers() mask) and not above `cap` (a HERKEN_MAX_ISA
 * value; NULL or "" for no cap). Tiers are ordered by their hk_isa value, so
 * on x86 "neon" caps to scalar and on ARM any x86 name keeps neon. An unknown
 * cap is ignored (simd/ does not log: hk__kernels_status() tells the caller,
 * which warns). Exposed for tests.
 */
hk_isa hk__isa_choose(unsigned tiers, const char *cap);

/* 0, or -EINVAL when $HERKEN_MAX_ISA named no tier and was ignored by the
 * choice hk__kernels() made. */
int hk__kernels_status(void);

/* Per-tier tables, defined in the per-ISA files that are compiled in. Only
 * reference them under the matching HK_ARCH_* macro. */
extern const hk__kernel_table hk__kernels_scalar;
#if defined(HK_ARCH_X86)
extern const hk__kernel_table hk__kernels_avx2;
extern const hk__kernel_table hk__kernels_avxvnni;
extern const hk__kernel_table hk__kernels_avx512;
extern const hk__kernel_table hk__kernels_avx512vnni;
extern const hk__kernel_table hk__kernels_amx;
#elif defined(HK_ARCH_ARM64)
extern const hk__kernel_table hk__kernels_neon;
extern const hk__kernel_table hk__kernels_i8mm;
#endif

/* fp16/bf16 conversions (round to nearest even), scalar reference. */
uint16_t hk__f32_to_f16(float f);
float hk__f16_to_f32(uint16_t h);
uint16_t hk__f32_to_bf16(float f);
float hk__bf16_to_f32(uint16_t h);

/*
 * Pair kernels exported by the ISA files so that a higher tier's table can
 * reuse a lower tier's entry without a copy (e.g. avxvnni = avx2 fp kernels).
 */
#if defined(HK_ARCH_X86)
float hk__dot_f32_avx2(const float *a, const float *b, size_t n);
float hk__dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t n);
float hk__dot_f32_f16_avx2(const float *a, const uint16_t *b, size_t n);
float hk__dot_f32_bf16_avx2(const float *a, const uint16_t *b, size_t n);
int32_t hk__dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n);
float hk__dot_f32_avx512(const float *a, const float *b, size_t n);
float hk__dot_f16_avx512(const uint16_t *a, const uint16_t *b, size_t n);
float hk__dot_f32_f16_avx512(const float *a, const uint16_t *b, size_t n);
float hk__dot_f32_bf16_avx512(const float *a, const uint16_t *b, size_t n);
int32_t hk__dot_i8_avx512(const int8_t *a, const int8_t *b, size_t n);
void hk__scan_f32_avx2(const float *q, const float *rows, size_t count,
                       size_t dim, size_t stride, float *out);
void hk__scan_f16_avx2(const float *q, const uint16_t *rows, size_t count,
                       size_t dim, size_t stride, float *out);
void hk__scan_f32_avx512(const float *q, const float *rows, size_t count,
                         size_t dim, size_t stride, float *out);
void hk__scan_f16_avx512(const float *q, const uint16_t *rows, size_t count,
                         size_t dim, size_t stride, float *out);
uint32_t hk__read_sum_avx2(const void *p, size_t bytes);
void hk__tile_i8_avx2(const uint8_t *qu, size_t nq, size_t qstride,
                      const int8_t *rows, const int32_t *row_sums, size_t count,
                      size_t dim, size_t stride, int32_t *out, size_t ldo);
void hk__tile_i8_hits_avx2(const uint8_t *qu, size_t nq, size_t qstride,
                           const int8_t *rows, const int32_t *row_sums,
                           size_t count, size_t dim, size_t stride,
                           int32_t *out, size_t ldo, const hk__tile_hits *h);
/* Table entries shared by the tiers built on AVX2 resp. AVX-512 fp kernels. */
#define HK__AVX2_FP_ENTRIES                                                    \
	.dot_f32 = hk__dot_f32_avx2, .dot_f16 = hk__dot_f16_avx2,              \
	.dot_f32_f16 = hk__dot_f32_f16_avx2,                                   \
	.dot_f32_bf16 = hk__dot_f32_bf16_avx2, .dot_i8 = hk__dot_i8_avx2,      \
	.scan_f32 = hk__scan_f32_avx2, .scan_f16 = hk__scan_f16_avx2,          \
	.read_sum = hk__read_sum_avx2
#define HK__AVX512_FP_ENTRIES                                                  \
	.dot_f32 = hk__dot_f32_avx512, .dot_f16 = hk__dot_f16_avx512,          \
	.dot_f32_f16 = hk__dot_f32_f16_avx512,                                 \
	.dot_f32_bf16 = hk__dot_f32_bf16_avx512, .dot_i8 = hk__dot_i8_avx512,  \
	.scan_f32 = hk__scan_f32_avx512, .scan_f16 = hk__scan_f16_avx512,      \
	.read_sum = hk__read_sum_avx512

void hk__tile_i8_avx512vnni(const uint8_t *qu, size_t nq, size_t qstride,
                            const int8_t *rows, const int32_t *row_sums,
                            size_t count, size_t dim, size_t stride,
                            int32_t *out, size_t ldo);
void hk__scan_i8_avx512vnni(const uint8_t *qu, const int8_t *rows,
                            const int32_t *row_sums, size_t count, size_t dim,
                            size_t stride, int32_t *out);
uint32_t hk__read_sum_avx512(const void *p, size_t bytes);
#elif defined(HK_ARCH_ARM64)
float hk__dot_f32_neon(const float *a, const float *b, size_t n);
float hk__dot_f16_neon(const uint16_t *a, const uint16_t *b, size_t n);
float hk__dot_f32_f16_neon(const float *a, const uint16_t *b, size_t n);
float hk__dot_f32_bf16_neon(const float *a, const uint16_t *b, size_t n);
int32_t hk__dot_i8_neon(const int8_t *a, const int8_t *b, size_t n);
void hk__scan_f32_neon(const float *q, const float *rows, size_t count,
                       size_t dim, size_t stride, float *out);
void hk__scan_f16_neon(const float *q, const uint16_t *rows, size_t count,
                       size_t dim, size_t stride, float *out);
void hk__scan_i8_neon(const uint8_t *qu, const int8_t *rows,
                      const int32_t *row_sums, size_t count, size_t dim,
                      size_t stride, int32_t *out);
uint32_t hk__read_sum_neon(const void *p, size_t bytes);
/* Table entries shared by the neon and i8mm tiers (all but tile_i8). */
#define HK__NEON_ENTRIES                                                       \
	.dot_f32 = hk__dot_f32_neon, .dot_f16 = hk__dot_f16_neon,              \
	.dot_f32_f16 = hk__dot_f32_f16_neon,                                   \
	.dot_f32_bf16 = hk__dot_f32_bf16_neon, .dot_i8 = hk__dot_i8_neon,      \
	.scan_f32 = hk__scan_f32_neon, .scan_f16 = hk__scan_f16_neon,          \
	.scan_i8 = hk__scan_i8_neon, .read_sum = hk__read_sum_neon
#endif

/*
 * tile_i8 built from a tier's scan_i8: rows are taken in blocks small enough
 * to stay in L1/L2 and every query scans the block, so each row comes from
 * memory once per call. Used by tiers without a dedicated micro-kernel.
 */
typedef void (*hk__scan_i8_fn)(const uint8_t *qu, const int8_t *rows,
                               const int32_t *row_sums, size_t count,
                               size_t dim, size_t stride, int32_t *out);
static inline void hk__tile_i8_by_scan(hk__scan_i8_fn scan, const uint8_t *qu,
                                       size_t nq, size_t qstride,
                                       const int8_t *rows,
                                       const int32_t *row_sums, size_t count,
                                       size_t dim, size_t stride, int32_t *out,
                                       size_t ldo)
{
	size_t blk = stride ? (size_t)(32 * 1024) / stride : count;
	if (blk < 16)
		blk = 16;
	for (size_t i = 0; i < count; i += blk) {
		size_t n = count - i < blk ? count - i : blk;
		for (size_t j = 0; j < nq; j++)
			scan(qu + j * qstride, rows + i * stride, row_sums + i, n, dim,
			     stride, out + j * ldo + i);
	}
}

#endif
