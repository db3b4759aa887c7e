/*
 * int8 row kernels with AVX512-VNNI (vpdpbusd on zmm), and the avx512vnni
 * tier's table; fp32/fp16 entries are the AVX-512 kernels.
 *
 * scan_i8 (one query): bandwidth bound. 16 rows per block, each row a short
 * chain of vpdpbusd against the query held in registers (specialised for
 * dim/64 = 1..8 chunks, e.g. d=192 is 3 zmm), the block's 16 sums reduced
 * together and corrected by -128 * row_sum in one vector, software prefetch
 * PF_DIST bytes ahead of each row. No branches inside a block.
 *
 * tile_i8 (many queries): compute bound, the shared register-blocked tile
 * driver (tile_x86.h) on zmm: 64 queries in 4 vectors x 16 lanes, 4-row
 * micro-kernels, 16-row tiles, the next tile prefetched.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>
#include <string.h>

/* nblk full blocks of 16 rows; the query in registers when nc is a constant. */
HK_AINL void scan_blocks(const uint8_t *qu, const int8_t *rows,
                      const int32_t *row_sums, size_t nblk, size_t nc,
                      size_t stride, int32_t *out)
{
	__m512i qv[8];
	HK_UNROLL for (size_t c = 0; c < nc && c < 8; c++)
		qv[c] = _mm512_loadu_si512(qu + 64 * c);
	for (size_t bi = 0; bi < nblk; bi++) {
		const int8_t *b = rows + bi * 16 * stride;
		__m512i acc[16];
		HK_UNROLL for (int r = 0; r < 16; r++) {
			const int8_t *p = b + r * stride;
			__m512i a = _mm512_setzero_si512();
			HK_UNROLL for (size_t c = 0; c < nc; c++) {
				_mm_prefetch((const char *)p + HK_PF_DIST + 64 * c, _MM_HINT_T0);
				__m512i q = nc <= 8 ? qv[c] : _mm512_loadu_si512(qu + 64 * c);
				a = _mm512_dpbusd_epi32(a, q, _mm512_load_si512(p + 64 * c));
			}
			acc[r] = a;
		}
		__m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(row_sums + 16 * bi), 7);
		_mm512_storeu_si512(out + 16 * bi, _mm512_sub_epi32(hk__rsum16_epi32(acc), corr));
	}
}

void hk__scan_i8_avx512vnni(const uint8_t *qu, const int8_t *rows,
                            const int32_t *row_sums, size_t count, size_t dim,
                            size_t stride, int32_t *out)
{
	size_t nblk = count / 16, nc = dim / 64;
	switch (nc) {
	case 1: scan_blocks(qu, rows, row_sums, nblk, 1, stride, out); break;
	case 2: scan_blocks(qu, rows, row_sums, nblk, 2, stride, out); break;
	case 3: scan_blocks(qu, rows, row_sums, nblk, 3, stride, out); break;
	case 4: scan_blocks(qu, rows, row_sums, nblk, 4, stride, out); break;
	case 5: scan_blocks(qu, rows, row_sums, nblk, 5, stride, out); break;
	case 6: scan_blocks(qu, rows, row_sums, nblk, 6, stride, out); break;
	case 7: scan_blocks(qu, rows, row_sums, nblk, 7, stride, out); break;
	case 8: scan_blocks(qu, rows, row_sums, nblk, 8, stride, out); break;
	default: scan_blocks(qu, rows, row_sums, nblk, nc, stride, out); break;
	}
	for (size_t i = nblk * 16; i < count; i++) {
		const int8_t *p = rows + i * stride;
		__m512i a = _mm512_setzero_si512();
		for (size_t c = 0; c < dim; c += 64)
			a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(qu + c),
			                        _mm512_load_si512(p + c));
		out[i] = hk__hsum512_epi32(a) - 128 * row_sums[i];
	}
}

/* ---- tile_i8: vpdpbusd on the shared tile driver (tile_x86.h), zmm --- */

/*
 * 16 queries per vector, 64 per pass; a 4-row x 64-query register block
 * (16 accumulators, 4 row broadcasts, 4 query vectors of the 32 zmm) and
 * 16-row tiles with the next tile's rows prefetched; vpdpbusd in place
 * (HK__IN_PLACE).
 */
#define HK_TILE_DP(acc, q, r)                                                  \
	HK__IN_PLACE(acc, "vpdpbusd %2, %1, %0", "v"(q), "v"(r))
#define HK_TILE_W 16
#define HK_TILE_BIAS 0
#define HK_TILE_SHIFT 7
#define HK_TILE_ROWS 4
#include "tile_x86.h"

void hk__tile_i8_avx512vnni(const uint8_t *qu, size_t nq, size_t qstride,
                            const int8_t *rows, const int32_t *row_sums,
                            size_t count, size_t dim, size_t stride,
                            int32_t *out, size_t ldo)
{
	hk__tile(qu, nq, qstride, rows, row_sums, count, dim, stride, out, ldo);
}

const hk__kernel_table hk__kernels_avx512vnni = {
	.isa = HK_ISA_AVX512VNNI,
	.name = "avx512vnni",
	HK__AVX512_FP_ENTRIES,
	.scan_i8 = hk__scan_i8_avx512vnni,
	.tile_i8 = hk__tile_i8_avx512vnni,
	.tile_i8_hits = hk__tile_h,
};
