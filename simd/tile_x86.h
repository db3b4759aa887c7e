/*
 * The queries-in-lanes int8 tile_i8 driver for x86, on 8-lane ymm or
 * 16-lane zmm vectors: scan_avx2.c (vpmaddubsw + vpmaddwd, ymm),
 * scan_avxvnni.c (vpdpbusd, ymm) and scan_avx512vnni.c (vpdpbusd, zmm).
 * Include only from those files, after defining
 *
 *   HK_TILE_W               lanes per vector: 8 (ymm) or 16 (zmm)
 *   HK_TILE_DP(acc, q, r)   acc + per lane sum of the 4 products of the u8
 *                           bytes of q with the s8 bytes of r
 *   or HK_TILE_DP2(acc, q0, r0, q1, r1)  the same for two groups at once
 *   HK_TILE_BIAS            byte subtracted from each query byte when packing:
 *                           the u8 operand is qu - BIAS = q + (128 - BIAS)
 *   HK_TILE_SHIFT           log2(128 - BIAS): the result is
 *                           dot_u8 - (row_sum << SHIFT), the exact signed dot
 *   HK_TILE_ROWS            rows per micro-kernel (register block)
 *
 * and it defines `static void hk__tile(...)` with the tile_i8 signature and
 * `static void hk__tile_h(...)` with the tile_i8_hits one.
 *
 * Layout: up to QB = 4 W queries per pass (4 vectors of W lanes), dims in
 * slices of 256; vector (g * 4 + qb), lane l holds the 4 bytes of query
 * W qb + l at dims 4g..4g+3 of the slice (8 or 16 KiB, stays in L1). A
 * ROWS-row x 4W-query micro-kernel broadcasts 4 bytes of each row
 * (vpbroadcastd from the row-major copy, no packing of rows) against 4
 * packed query vectors: 4 ROWS independent accumulators. A tile of W rows
 * runs W / ROWS micro-kernels while the next W rows are prefetched, then a
 * WxW transpose turns it row-in-lanes so stores to out[j * ldo + i] are
 * contiguous. Rows come from memory once per 4W queries and per slice.
 */
#ifndef HK_TILE_X86_H
#define HK_TILE_X86_H

#include <immintrin.h>
#include <string.h>

#include "x86_reduce.h"

#define QB (4 * HK_TILE_W) /* queries per packed block (4 vectors)  */
#define KB 256             /* dims per packed slice                 */
#define W HK_TILE_W


#if HK_TILE_W == 8
typedef __m256i vec;
typedef __m256i vmask;
#define V_LOAD(p) _mm256_load_si256((const __m256i *)(p))
#define V_LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_STORE(p, v) _mm256_store_si256((__m256i *)(p), v)
#define V_STOREU(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define V_ZERO() _mm256_setzero_si256()
#define V_SET1(x) _mm256_set1_epi32(x)
#define V_SUB8(a, b) _mm256_sub_epi8(a, b)
#define V_SET1_8(x) _mm256_set1_epi8(x)
#define V_ADD32(a, b) _mm256_add_epi32(a, b)
#define V_SUB32(a, b) _mm256_sub_epi32(a, b)
#define V_SLLI32(a, n) _mm256_slli_epi32(a, n)
#define V_TRANSPOSE(v) hk__transpose8(v)
/* vpmaskmovd: only for partial tiles (its stores are slow on AMD: plain
 * moves for full tiles saved ~10 % of the avx2 batch on Zen 5) */
#define V_MASK(n)                                                              \
	_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)),                        \
	                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_MLOAD(m, p) _mm256_maskload_epi32((const int *)(p), m)
#define V_MSTORE(p, m, v) _mm256_maskstore_epi32((int *)(p), m, v)
typedef __m256 vecf;
#define VF_LOADM(m, p) _mm256_maskload_ps(p, m)
/* lanes of (float)v * s above f, as the low W bits */
#define V_HITS(v, s, f)                                                        \
	((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(                           \
	    _mm256_mul_ps(_mm256_cvtepi32_ps(v), s), _mm256_set1_ps(f), _CMP_GT_OQ)))
#else
typedef __m512i vec;
typedef __mmask16 vmask;
#define V_LOAD(p) _mm512_load_si512((const void *)(p))
#define V_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define V_STORE(p, v) _mm512_store_si512((void *)(p), v)
#define V_STOREU(p, v) _mm512_storeu_si512((void *)(p), v)
#define V_ZERO() _mm512_setzero_si512()
#define V_SET1(x) _mm512_set1_epi32(x)
#define V_SUB8(a, b) _mm512_sub_epi8(a, b)
#define V_SET1_8(x) _mm512_set1_epi8(x)
#define V_ADD32(a, b) _mm512_add_epi32(a, b)
#define V_SUB32(a, b) _mm512_sub_epi32(a, b)
#define V_SLLI32(a, n) _mm512_slli_epi32(a, n)
#define V_TRANSPOSE(v) hk__transpose16(v)
#define V_MASK(n) ((__mmask16)((1u << (n)) - 1))
#define V_MLOAD(m, p) _mm512_maskz_loadu_epi32(m, p)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_epi32(p, m, v)
typedef __m512 vecf;
#define VF_LOADM(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_HITS(v, s, f)                                                        \
	((unsigned)_mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_cvtepi32_ps(v), s),   \
	                              _mm512_set1_ps(f), _CMP_GT_OQ))
#endif

/*
 * A one-instruction asm that updates the accumulator in place ("+v"):
 * through plain intrinsics GCC 12 copies every accumulator each step or
 * keeps a stack copy of them (the 2-row remainder of the avxvnni tile took
 * ~35 % of the kernel in vmovdqa), which made the C micro-kernel slower
 * than hand-written asm; this way the loop is register allocated. The
 * template names the accumulator %0 and the inputs %1, %2 (AT&T order).
 */
#define HK__IN_PLACE(acc, TEMPLATE, ...)                                       \
	({                                                                     \
		vec a_ = (acc);                                                \
		__asm__(TEMPLATE : "+v"(a_) : __VA_ARGS__);                    \
		a_;                                                            \
	})

static inline vec bcast32(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return V_SET1(v);
}

/*
 * Pack queries [0, nqq) x dims [k0, k0 + kl) (kl a multiple of 64) into qp,
 * each byte minus HK_TILE_BIAS. A full group of W queries x 4W dims is one
 * WxW dword transpose; the rest go byte by byte. Missing queries are zero
 * (their results are computed, never stored).
 */
static void pack_queries(const uint8_t *qu, size_t nqq, size_t qstride,
                         size_t k0, size_t kl, uint32_t *qp)
{
	const vec bias = V_SET1_8((char)HK_TILE_BIAS);
	size_t ng = kl / 4, full = nqq / W;
	for (size_t qb = 0; qb < full; qb++) {
		for (size_t c = 0; c < kl; c += 4 * W) {
			vec v[W];
			HK_UNROLL for (int l = 0; l < W; l++)
				v[l] = V_SUB8(V_LOADU(qu + (qb * W + l) * qstride + k0 + c), bias);
			V_TRANSPOSE(v);
			HK_UNROLL for (int k = 0; k < W; k++)
				V_STORE(qp + ((c / 4 + k) * 4 + qb) * W, v[k]);
		}
	}
	for (size_t j = full * W; j < QB; j++) {
		uint8_t *dst = (uint8_t *)(qp + (j / W) * W + (j % W));
		const uint8_t *src = j < nqq ? qu + j * qstride + k0 : NULL;
		for (size_t g = 0; g < ng; g++)
			for (size_t b = 0; b < 4; b++)
				dst[g * 16 * W + b] =
				    src ? (uint8_t)(src[4 * g + b] - HK_TILE_BIAS) : 0;
	}
}

/*
 * nr rows (<= HK_TILE_ROWS) x (W * nqb) queries over ng groups;
 * t[qb * W + r]. ymm: 3 rows x 4 query vectors = 12 accumulators + 3 row
 * broadcasts + 1 query vector fill the 16 registers; 12 chains hide
 * vpdpbusd's latency at 2 per cycle (8 chains reached 86 % of the peak on
 * Zen 5). zmm: 4 x 4 = 16 accumulators of 32 registers.
 */
HK_AINL void micro(const vec *qp, size_t ng, const int8_t *const *p, vec *t,
                   int nqb, int nr)
{
	vec acc[HK_TILE_ROWS][4];
	HK_UNROLL for (int r = 0; r < nr; r++)
		HK_UNROLL for (int qb = 0; qb < nqb; qb++)
			acc[r][qb] = V_ZERO();
#ifdef HK_TILE_DP2
	/* two groups per step (ng is a multiple of 16) */
	for (size_t g = 0; g < ng; g += 2) {
		vec ra[HK_TILE_ROWS], rb[HK_TILE_ROWS];
		HK_UNROLL for (int r = 0; r < nr; r++) {
			ra[r] = bcast32(p[r] + 4 * g);
			rb[r] = bcast32(p[r] + 4 * g + 4);
		}
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			vec q0 = V_LOAD(qp + g * 4 + qb);
			vec q1 = V_LOAD(qp + g * 4 + 4 + qb);
			HK_UNROLL for (int r = 0; r < nr; r++)
				acc[r][qb] = HK_TILE_DP2(acc[r][qb], q0, ra[r], q1, rb[r]);
		}
	}
#else
	for (size_t g = 0; g < ng; g++) {
		vec rb[HK_TILE_ROWS];
		HK_UNROLL for (int r = 0; r < nr; r++)
			rb[r] = bcast32(p[r] + 4 * g);
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			vec q = V_LOAD(qp + g * 4 + qb);
			HK_UNROLL for (int r = 0; r < nr; r++)
				acc[r][qb] = HK_TILE_DP(acc[r][qb], q, rb[r]);
		}
	}
#endif
	HK_UNROLL for (int qb = 0; qb < nqb; qb++)
		HK_UNROLL for (int r = 0; r < nr; r++)
			t[qb * W + r] = acc[r][qb];
}

/*
 * One slice of dims for up to QB queries (nqq) over all rows. first: the
 * slice starts the sums (store minus the row-sum correction); otherwise it
 * adds to what out holds. h (the last slice of a tile_i8_hits call, its
 * floor and bits already offset to the pass's first query): each finished
 * W-row vector is also scored against the query's floor while in a
 * register, W bits per store.
 */
HK_AINL void tile_slice(const vec *qp, size_t nqq, const int8_t *rows,
                        const int32_t *row_sums, size_t count, size_t k0,
                        size_t kl, size_t stride, int32_t *out, size_t ldo,
                        int first, int nqb, const hk__tile_hits *h, int far)
{
	vec t[4 * W];
	size_t ng = kl / 4;
	for (size_t i = 0; i < count; i += W) {
		size_t nr = count - i < W ? count - i : W;
		/* Rows past the end repeat the last row (results not stored). */
		const int8_t *p[W];
		HK_UNROLL for (size_t r = 0; r < W; r++)
			p[r] = rows + (i + (r < nr ? r : nr - 1)) * stride + k0;
		hk__prefetch_rows(rows + (i + W) * stride + k0,
		                  count - i > W ? count - i - W : 0, W, kl, stride);
		if (far)
			hk__prefetch_rows_far(rows, (i + HK__PF_FAR * W) * stride + k0, W,
			                      kl, stride);
		HK_UNROLL for (int r = 0; r < W; r += HK_TILE_ROWS) {
			int rr = W - r < HK_TILE_ROWS ? W - r : HK_TILE_ROWS;
			micro(qp, ng, p + r, t + r, nqb, rr);
		}
		vmask m = V_MASK(nr);
		vec corr = V_SLLI32(V_MLOAD(m, row_sums + i), HK_TILE_SHIFT);
		vecf sc = h ? VF_LOADM(m, h->scale + i) : (vecf){0};
		unsigned valid = nr == W ? (1u << W) - 1 : (1u << nr) - 1;
		HK_UNROLL for (int qb = 0; qb < nqb; qb++) {
			V_TRANSPOSE(t + W * qb);
			for (size_t l = 0; l < W; l++) {
				size_t j = (size_t)qb * W + l;
				if (j >= nqq)
					break;
				int32_t *dst = out + j * ldo + i;
				vec v = t[W * qb + l];
				if (nr == W) {
					v = first ? V_SUB32(v, corr) : V_ADD32(v, V_LOADU(dst));
					V_STOREU(dst, v);
				} else {
					v = first ? V_SUB32(v, corr) : V_ADD32(v, V_MLOAD(m, dst));
					V_MSTORE(dst, m, v);
				}
				if (h) {
					uint16_t b = (uint16_t)(V_HITS(v, sc, h->floor[j]) & valid);
					memcpy(h->bits + j * h->ldb + i / 8, &b, W / 8);
				}
			}
		}
	}
}

/*
 * The tile_i8 entry: passes of up to QB queries and KB-dim slices; each
 * pass packs its queries into the stack buffer and runs tile_slice()
 * specialised for the number of query vectors.
 */
static void hk__tile_h(const uint8_t *qu, size_t nq, size_t qstride,
                       const int8_t *rows, const int32_t *row_sums,
                       size_t count, size_t dim, size_t stride, int32_t *out,
                       size_t ldo, const hk__tile_hits *hits)
{
	_Alignas(64) uint32_t qp[KB / 4 * QB];
	if (count == 0)
		return;
	if (hits) /* the bytes of the last word past count stay clear */
		for (size_t j = 0; j < nq; j++)
			memset(hits->bits + j * hits->ldb, 0, (count + 63) / 64 * 8);
	for (size_t j0 = 0; j0 < nq; j0 += QB) {
		size_t nqq = nq - j0 < QB ? nq - j0 : QB;
		int nqb = (int)((nqq + W - 1) / W);
		for (size_t k0 = 0; k0 < dim; k0 += KB) {
			size_t kl = dim - k0 < KB ? dim - k0 : KB;
			pack_queries(qu + j0 * qstride, nqq, qstride, k0, kl, qp);
			const vec *q = (const vec *)qp;
			int32_t *o = out + j0 * ldo;
			int f = k0 == 0;
			hk__tile_hits hp, *h = NULL;
			if (hits && k0 + kl == dim) {
				hp = (hk__tile_hits){hits->scale, hits->floor + j0,
				                     hits->bits + j0 * hits->ldb, hits->ldb};
				h = &hp;
			}
			int far = j0 == 0; /* later passes find the rows in cache */
			if (nqb == 1)
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 1, h, far);
			else if (nqb == 2)
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 2, h, far);
			else if (nqb == 3)
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 3, h, far);
			else
				tile_slice(q, nqq, rows, row_sums, count, k0, kl, stride, o, ldo, f, 4, h, far);
		}
	}
}

/* The tile_i8 and tile_i8_hits entries. */
static void hk__tile(const uint8_t *qu, size_t nq, size_t qstride,
                     const int8_t *rows, const int32_t *row_sums, size_t count,
                     size_t dim, size_t stride, int32_t *out, size_t ldo)
{
	hk__tile_h(qu, nq, qstride, rows, row_sums, count, dim, stride, out, ldo, NULL);
}

#undef QB
#undef KB
#undef W
#endif
