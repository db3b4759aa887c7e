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
 * tile_i8 (many queries): compute bound. Queries go in the 16 lanes: up to
 * 64 queries are packed once per call into groups of 4 dims (lane l of
 * packed vector (g, qb) holds dims 4g..4g+3 of query 16*qb+l), and a
 * 4-row x 64-query micro-kernel broadcasts 4 bytes of a row (vpbroadcastd
 * from memory) against 4 packed query vectors: 16 independent vpdpbusd
 * per 8 loads. Rows are read straight from the row-major copy, once per
 * 64 queries and per 256-dim slice. A 16x16 transpose turns the
 * query-in-lanes tile into row-in-lanes vectors so stores to
 * out[j * ldo + i] are contiguous.
 */
#include "hk_simd.h"
#include "x86_reduce.h"

#include <immintrin.h>
#include <string.h>

static inline __m512i bcast32(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm512_set1_epi32(v);
}

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

/* ---- tile_i8 ---------------------------------------------------------- */

#define QB 64   /* queries per packed block (4 vectors of 16 lanes)        */
#define KB 256  /* dims per packed slice: 64 groups x 4 vectors = 16 KiB   */

/*
 * Pack queries [0, nqq) x dims [k0, k0 + kl) into qp: vector (g * 4 + qb),
 * lane l = 4 bytes of query 16 * qb + l at dim k0 + 4g. Missing queries
 * are zero (their results are computed but never stored). A full block of
 * 16 queries x 64 dims is one 16x16 dword transpose (64 shuffles instead
 * of 256 scalar moves).
 */
static void pack_queries(const uint8_t *qu, size_t nqq, size_t qstride,
                         size_t k0, size_t kl, uint32_t *qp)
{
	size_t ng = kl / 4, full = nqq / 16;
	for (size_t qb = 0; qb < full; qb++) {
		for (size_t c = 0; c < kl; c += 64) {
			__m512i v[16];
			HK_UNROLL for (int l = 0; l < 16; l++)
				v[l] = _mm512_loadu_si512(qu + (qb * 16 + l) * qstride + k0 + c);
			hk__transpose16(v);
			HK_UNROLL for (int k = 0; k < 16; k++)
				_mm512_store_si512(qp + ((c / 4 + k) * 4 + qb) * 16, v[k]);
		}
	}
	for (size_t j = full * 16; j < QB; j++) {
		uint32_t *dst = qp + (j / 16) * 16 + (j % 16);
		if (j >= nqq) {
			for (size_t g = 0; g < ng; g++)
				dst[g * 64] = 0;
			continue;
		}
		const uint8_t *src = qu + j * qstride + k0;
		for (size_t g = 0; g < ng; g++)
			memcpy(&dst[g * 64], src + 4 * g, 4);
	}
}

/* 4 rows x (16 * nqb) queries over ng groups of 4 dims; t[qb * 16 + r]. */
HK_AINL void micro4(const __m512i *qp, size_t ng, const int8_t *p0,
                 const int8_t *p1, const int8_t *p2, const int8_t *p3,
                 __m512i *t, int nqb)
{
	__m512i acc[4][4];
	HK_UNROLL for (int r = 0; r < 4; r++)
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			acc[r][qb] = _mm512_setzero_si512();
	for (size_t g = 0; g < ng; g++) {
		__m512i qv[4];
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			qv[qb] = _mm512_load_si512(qp + g * 4 + qb);
		__m512i rb[4] = {bcast32(p0 + 4 * g), bcast32(p1 + 4 * g),
		                 bcast32(p2 + 4 * g), bcast32(p3 + 4 * g)};
		HK_UNROLL for (int r = 0; r < 4; r++)
			HK_UNROLL for (int qb = 0; qb < nqb; qb++)
				acc[r][qb] = _mm512_dpbusd_epi32(acc[r][qb], qv[qb], rb[r]);
	}
	HK_UNROLL for (int r = 0; r < 4; r++)
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			t[qb * 16 + r] = acc[r][qb];
}

/*
 * One slice of dims for up to 64 queries (nqq) over all rows. first: the
 * slice starts the sums (store minus the row-sum correction); otherwise it
 * adds to what out holds.
 */
HK_AINL void tile_slice(const __m512i *qp, size_t nqq, const int8_t *rows,
                     const int32_t *row_sums, size_t count, size_t k0,
                     size_t kl, size_t stride, int32_t *out, size_t ldo,
                     int first, int nqb)
{
	__m512i t[64];
	size_t ng = kl / 4;
	for (size_t i = 0; i < count; i += 16) {
		size_t nr = count - i < 16 ? count - i : 16;
		HK_UNROLL for (size_t r = 0; r < 16; r += 4) {
			/* Rows past the end repeat the last row (results not stored). */
			const int8_t *p[4];
			HK_UNROLL for (size_t k = 0; k < 4; k++)
				p[k] = rows + (i + (r + k < nr ? r + k : nr - 1)) * stride + k0;
			micro4(qp, ng, p[0], p[1], p[2], p[3], t + r, nqb);
		}
		__mmask16 m = nr == 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
		__m512i corr =
		    _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, row_sums + i), 7);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			hk__transpose16(t + 16 * qb);
			for (size_t l = 0; l < 16; l++) {
				size_t j = (size_t)qb * 16 + l;
				if (j >= nqq)
					break;
				int32_t *dst = out + j * ldo + i;
				__m512i v = t[16 * qb + l];
				v = first ? _mm512_sub_epi32(v, corr)
				          : _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(m, dst));
				_mm512_mask_storeu_epi32(dst, m, v);
			}
		}
	}
}

void hk__tile_i8_avx512vnni(const uint8_t *qu, size_t nq, size_t qstride,
                            const int8_t *rows, const int32_t *row_sums,
                            size_t count, size_t dim, size_t stride,
                            int32_t *out, size_t ldo)
{
	HK__TILE_PASSES(QB, KB, 16, __m512i)
}

const hk__kernel_table hk__kernels_avx512vnni = {
	.isa = HK_ISA_AVX512VNNI,
	.name = "avx512vnni",
	HK__AVX512_FP_ENTRIES,
	.scan_i8 = hk__scan_i8_avx512vnni,
	.tile_i8 = hk__tile_i8_avx512vnni,
};
