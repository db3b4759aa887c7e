/*
 * int8 row kernels with AVX-VNNI (vpdpbusd on ymm), and the avxvnni tier's
 * table; fp32/fp16 entries are the AVX2 kernels (VNNI adds nothing there).
 *
 * vpdpbusd multiplies u8 x s8 with 32-bit accumulation and no intermediate
 * saturation, so dot_u8(qu, row) is exact and the signed result is
 * dot_u8(qu, row) - 128 * row_sum.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>
#include <string.h>

/* dot_u8(qu, row) of one row (dim a multiple of 64), read front to back. */
HK_AINL __m256i row_acc(const uint8_t *qu, const int8_t *p, size_t dim)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
	for (size_t c = 0; c < dim; c += 64) {
		_mm_prefetch((const char *)p + HK_PF_DIST + c, _MM_HINT_T0);
		a0 = _mm256_dpbusd_avx_epi32(a0, _mm256_loadu_si256((const __m256i *)(qu + c)),
		                             _mm256_load_si256((const __m256i *)(p + c)));
		a1 = _mm256_dpbusd_avx_epi32(a1,
		                             _mm256_loadu_si256((const __m256i *)(qu + c + 32)),
		                             _mm256_load_si256((const __m256i *)(p + c + 32)));
	}
	return _mm256_add_epi32(a0, a1);
}

static void scan_i8_avxvnni(const uint8_t *qu, const int8_t *rows,
                            const int32_t *row_sums, size_t count, size_t dim,
                            size_t stride, int32_t *out)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8) {
		__m256i acc[8];
		HK_UNROLL for (int r = 0; r < 8; r++)
			acc[r] = row_acc(qu, rows + (i + r) * stride, dim);
		__m256i corr = _mm256_slli_epi32(
		    _mm256_loadu_si256((const __m256i *)(row_sums + i)), 7);
		_mm256_storeu_si256((__m256i *)(out + i),
		                    _mm256_sub_epi32(hk__rsum8_epi32(acc), corr));
	}
	for (; i < count; i++)
		out[i] = hk__hsum256_epi32(row_acc(qu, rows + i * stride, dim)) -
		         128 * row_sums[i];
}

/* ---- tile_i8: vpdpbusd on the shared 8-lane tile (tile8_x86.h) --------- */

#define HK_TILE8_DP(acc, q, r) _mm256_dpbusd_avx_epi32(acc, q, r)
#define HK_TILE8_BIAS 0
#define HK_TILE8_SHIFT 7
#define HK_TILE8_ROWS 3

/*
 * The 3-row x 32-query micro-kernel in asm: GCC 12 spills accumulators of
 * the C version at 16 live ymm registers (measured: 197 against 263 GOP/s
 * for the 2-row version). Accumulators are the 12 "=&x" operands, zeroed
 * in the asm (GCC places them in ymm0..11 as 12..15 are clobbered), ymm12..14 hold the
 * three row broadcasts and ymm15 the query vector. AT&T operand order:
 * vpdpbusd s8, u8, acc.
 */
#define ZERO(a) "vpxor %[" a "], %[" a "], %[" a "]\n\t"
#define DP3(a, b, c, off)                                                      \
	"vmovdqa " off "(%[q]), %%ymm15\n\t"                                   \
	"%{vex%} vpdpbusd %%ymm12, %%ymm15, %[" a "]\n\t"                      \
	"%{vex%} vpdpbusd %%ymm13, %%ymm15, %[" b "]\n\t"                      \
	"%{vex%} vpdpbusd %%ymm14, %%ymm15, %[" c "]\n\t"
static inline void micro34_asm(const __m256i *qp, size_t ng,
                               const int8_t *const *p, __m256i *t)
{
	__m256i a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23;
	const int8_t *p0 = p[0], *p1 = p[1], *p2 = p[2];
	const __m256i *q = qp;
	size_t n = ng;
	__asm__ volatile(
		    ZERO("a00") ZERO("a01") ZERO("a02") ZERO("a03")
		    ZERO("a10") ZERO("a11") ZERO("a12") ZERO("a13")
		    ZERO("a20") ZERO("a21") ZERO("a22") ZERO("a23")
		    "test %[n], %[n]\n\t"
		    "jz 2f\n\t"
		    "1:\n\t"
		    "vpbroadcastd (%[p0]), %%ymm12\n\t"
		    "vpbroadcastd (%[p1]), %%ymm13\n\t"
		    "vpbroadcastd (%[p2]), %%ymm14\n\t"
		    DP3("a00", "a10", "a20", "0") DP3("a01", "a11", "a21", "32")
		    DP3("a02", "a12", "a22", "64") DP3("a03", "a13", "a23", "96")
		    "add $4, %[p0]\n\t"
		    "add $4, %[p1]\n\t"
		    "add $4, %[p2]\n\t"
		    "sub $-128, %[q]\n\t"
		    "dec %[n]\n\t"
		    "jnz 1b\n\t"
		    "2:\n\t"
		    : [a00] "=&x"(a00), [a01] "=&x"(a01), [a02] "=&x"(a02), [a03] "=&x"(a03),
		      [a10] "=&x"(a10), [a11] "=&x"(a11), [a12] "=&x"(a12), [a13] "=&x"(a13),
		      [a20] "=&x"(a20), [a21] "=&x"(a21), [a22] "=&x"(a22), [a23] "=&x"(a23),
		      [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [q] "+r"(q), [n] "+r"(n)
		    :
		    : "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
	t[0] = a00, t[1] = a10, t[2] = a20;
	t[8] = a01, t[9] = a11, t[10] = a21;
	t[16] = a02, t[17] = a12, t[18] = a22;
	t[24] = a03, t[25] = a13, t[26] = a23;
}
#undef DP3
#undef ZERO
#define HK_TILE8_MICRO_FULL micro34_asm
#include "tile8_x86.h"

const hk__kernel_table hk__kernels_avxvnni = {
	.isa = HK_ISA_AVXVNNI,
	.name = "avxvnni",
	HK__AVX2_FP_ENTRIES,
	.scan_i8 = scan_i8_avxvnni,
	.tile_i8 = hk__tile8,
};
