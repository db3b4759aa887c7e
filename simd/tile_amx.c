/*
 * The amx tier: the avx512vnni tier with tile_i8 on AMX-INT8 (TDPBUSD).
 *
 * TDPBUSD computes C[m][n] += sum_k u8 A[m][4k..4k+3] . s8 B[k][4n..4n+3]
 * for 16x16 int32 C. A is 16 queries x 64 dims straight from the caller's
 * query rows (tileloadd with qstride). B must hold 16 gallery rows with
 * their 4-byte dim groups in columns, i.e. the 16x16 dword transpose of 16
 * row-major 64-byte chunks: each 32-row block is transposed once (in
 * zmm registers) into a stack buffer and then used by every query tile. C
 * starts from -128 * row_sum (a tile loaded with stride 0) and is stored
 * straight into out[j * ldo + i] with stride ldo, since its rows are
 * queries and its columns gallery rows.
 *
 * Register plan: C in tmm0-3 (2 query tiles x 2 row blocks), A in tmm4-5,
 * B in tmm6-7, so each K step is 4 loads for 4 TDPBUSD. The AMX part covers
 * whole 16-query tiles x 32-row blocks with dim <= 512 (KMAX); leftover
 * queries and rows go to the AVX512-VNNI kernel.
 *
 * Tile state is per thread: every call loads the tile config and releases
 * it, so threads need no setup; the process-wide permission (arch_prctl
 * ARCH_REQ_XCOMP_PERM) is obtained once by cpu.c before this tier is
 * offered.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>
#include <string.h>

#define KMAX 512 /* dims handled on AMX: B buffer 2 x 8 KiB on the stack */

typedef struct {
	uint8_t palette, start_row, rsvd[14];
	uint16_t colsb[16];
	uint8_t rows[16];
} tilecfg;

static void config(void)
{
	_Alignas(64) tilecfg c;
	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int t = 0; t < 8; t++) {
		c.rows[t] = 16;
		c.colsb[t] = 64;
	}
	_tile_loadconfig(&c);
}

/* B layout of 16 rows x dim: per 64-dim chunk c, 16 lines of 64 bytes,
 * line k = dim group k (bytes 4k..4k+3) of rows 0..15. */
static void pack_b(const int8_t *rows, size_t stride, size_t dim, int8_t *b)
{
	for (size_t c = 0; c < dim; c += 64) {
		__m512i v[16];
		HK_UNROLL for (int r = 0; r < 16; r++)
			v[r] = _mm512_load_si512(rows + r * stride + c);
		hk__transpose16(v);
		HK_UNROLL for (int k = 0; k < 16; k++)
			_mm512_store_si512(b + c * 16 + k * 64, v[k]);
	}
}

/* Queries [j, j+32) (two tiles) or [j, j+16) (one) x rows of b0, b1. */
#define AMX_PAIR(TWO)                                                          \
	do {                                                                   \
		_tile_loadd(0, corr0, 0);                                      \
		_tile_loadd(1, corr1, 0);                                      \
		if (TWO) {                                                     \
			_tile_loadd(2, corr0, 0);                              \
			_tile_loadd(3, corr1, 0);                              \
		}                                                              \
		for (size_t c = 0; c < dim; c += 64) {                         \
			_tile_loadd(4, qu + j * qstride + c, (long)qstride);   \
			_tile_loadd(6, b0 + c * 16, 64);                       \
			_tile_loadd(7, b1 + c * 16, 64);                       \
			_tile_dpbusd(0, 4, 6);                                 \
			_tile_dpbusd(1, 4, 7);                                 \
			if (TWO) {                                             \
				_tile_loadd(5, qu + (j + 16) * qstride + c,    \
				            (long)qstride);                    \
				_tile_dpbusd(2, 5, 6);                         \
				_tile_dpbusd(3, 5, 7);                         \
			}                                                      \
		}                                                              \
		_tile_stored(0, out + j * ldo + i, (long)(ldo * 4));           \
		_tile_stored(1, out + j * ldo + i + 16, (long)(ldo * 4));      \
		if (TWO) {                                                     \
			_tile_stored(2, out + (j + 16) * ldo + i, (long)(ldo * 4)); \
			_tile_stored(3, out + (j + 16) * ldo + i + 16,         \
			             (long)(ldo * 4));                         \
		}                                                              \
	} while (0)

static void tile_i8_amx(const uint8_t *qu, size_t nq, size_t qstride,
                        const int8_t *rows, const int32_t *row_sums,
                        size_t count, size_t dim, size_t stride, int32_t *out,
                        size_t ldo)
{
	size_t nq16 = nq / 16 * 16, n32 = count / 32 * 32;
	if (nq16 == 0 || n32 == 0 || dim > KMAX) {
		hk__tile_i8_avx512vnni(qu, nq, qstride, rows, row_sums, count, dim,
		                       stride, out, ldo);
		return;
	}
	_Alignas(64) int8_t b0[KMAX * 16], b1[KMAX * 16];
	_Alignas(64) int32_t corr0[16], corr1[16];
	config();
	for (size_t i = 0; i < n32; i += 32) {
		pack_b(rows + i * stride, stride, dim, b0);
		pack_b(rows + (i + 16) * stride, stride, dim, b1);
		__m512i s0 = _mm512_loadu_si512(row_sums + i);
		__m512i s1 = _mm512_loadu_si512(row_sums + i + 16);
		_mm512_store_si512(corr0, _mm512_sub_epi32(_mm512_setzero_si512(),
		                                           _mm512_slli_epi32(s0, 7)));
		_mm512_store_si512(corr1, _mm512_sub_epi32(_mm512_setzero_si512(),
		                                           _mm512_slli_epi32(s1, 7)));
		size_t j = 0;
		for (; j + 32 <= nq16; j += 32)
			AMX_PAIR(1);
		if (j < nq16)
			AMX_PAIR(0);
	}
	_tile_release();
	if (nq16 < nq)
		hk__tile_i8_avx512vnni(qu + nq16 * qstride, nq - nq16, qstride, rows,
		                       row_sums, count, dim, stride, out + nq16 * ldo,
		                       ldo);
	if (n32 < count)
		hk__tile_i8_avx512vnni(qu, nq16, qstride, rows + n32 * stride,
		                       row_sums + n32, count - n32, dim, stride,
		                       out + n32, ldo);
}

const hk__kernel_table hk__kernels_amx = {
	.isa = HK_ISA_AMX,
	.name = "amx",
	HK__AVX512_FP_ENTRIES,
	.scan_i8 = hk__scan_i8_avx512vnni,
	.tile_i8 = tile_i8_amx,
};
