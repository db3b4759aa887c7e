/*
 * The 4-bit first pass (q4.h): codes, bound and the bounded search.
 *
 * Measured (herken-bench search --impl herken-q4,herken-i8, n = 1e6,
 * d = 192, uniform data, see the commit and README): the bound, although
 * proven, is loose next to the spread of the scores of random unit
 * vectors, so a large share of the gallery is re-scored exactly; and the
 * pass itself costs as much arithmetic as the int8 scan on the VNNI tiers
 * (vpdpbusd multiplies 4 bytes whatever their width). It is therefore a
 * benchmark variant only; the gallery keeps the plain int8 scan.
 */
#include "q4.h"

#include <math.h>
#include <string.h>

/* ceil(sqrt(x)), exact for x < 2^52. */
static int64_t ceil_sqrt(uint64_t x)
{
	int64_t s = (int64_t)sqrt((double)x);
	while ((uint64_t)s * (uint64_t)s < x)
		s++;
	while (s > 0 && (uint64_t)(s - 1) * (uint64_t)(s - 1) >= x)
		s--;
	return s;
}

void hk__q4_encode(const int8_t *r8, size_t d8, int8_t *c4, int32_t *csum,
                   int32_t *be)
{
	int32_t s = 0;
	uint64_t e2 = 0;
	for (size_t i = 0; i < d8; i++) {
		int r = r8[i];
		/* round half away from zero: |r| <= 127 gives |c| <= 7, |e| <= 8 */
		int c = r >= 0 ? (r + HK_Q4_STEP / 2) / HK_Q4_STEP
		               : -((-r + HK_Q4_STEP / 2) / HK_Q4_STEP);
		int e = r - HK_Q4_STEP * c;
		c4[i] = (int8_t)c;
		s += c;
		e2 += (uint64_t)(e * e);
	}
	*csum = s;
	*be = (int32_t)ceil_sqrt(e2);
}

int64_t hk__q4_bound(uint64_t q2, int32_t be)
{
	return ceil_sqrt(q2) * be;
}

#define ROWS 256 /* rows per block: 64 x 256 int32 results stay in L2 */

void hk__q4_search(const hk__kernel_table *K, const hk__q4_rows *R,
                   const uint8_t *qu, size_t nq, size_t qstride,
                   hk__heap *heaps, uint64_t *rescored)
{
	_Alignas(64) int32_t dots[64 * ROWS];
	_Alignas(64) int32_t lo[ROWS], up[ROWS];
	_Alignas(64) float tmp[ROWS];
	uint64_t hits[ROWS / 64];
	size_t d8 = R->d8, kk = nq ? heaps[0].cap : 0;
	int8_t qs[64 * 1024]; /* signed queries for the exact re-score */
	int64_t bq[64];
	hk__cand lbc[64 * 64];
	hk__heap lb[64];
	uint64_t nres = 0;
	if (nq > 64 || d8 > 1024 || kk > 64)
		return; /* outside this variant's contract (q4.h) */
	for (size_t j = 0; j < nq; j++) {
		uint64_t q2 = 0;
		for (size_t i = 0; i < d8; i++) {
			int v = (int)qu[j * qstride + i] - 128;
			qs[j * d8 + i] = (int8_t)v;
			q2 += (uint64_t)(v * v);
		}
		bq[j] = ceil_sqrt(q2);
		lb[j] = (hk__heap){lbc + j * 64, 0, (uint32_t)kk};
	}
	for (size_t b = 0; b < R->n; b += ROWS) {
		size_t cnt = R->n - b < ROWS ? R->n - b : ROWS;
		if (!R->c4) {
			K->tile_i8(qu, nq, qstride, R->r8 + b * d8, R->rsum8 + b, cnt, d8,
			           d8, dots, ROWS);
			for (size_t j = 0; j < nq; j++)
				hk__topk_block_i32(&heaps[j], dots + j * ROWS, R->scale + b, cnt,
				                   (uint32_t)b, tmp);
			continue;
		}
		K->tile_i8(qu, nq, qstride, R->c4 + b * d8, R->csum4 + b, cnt, d8, d8,
		           dots, ROWS);
		for (size_t j = 0; j < nq; j++) {
			const int32_t *d4 = dots + j * ROWS;
			/* integers below 2^24 (d8 <= 1024): exact as float */
			for (size_t i = 0; i < cnt; i++) {
				int32_t bnd = (int32_t)bq[j] * R->be[b + i];
				lo[i] = HK_Q4_STEP * d4[i] - bnd;
				up[i] = HK_Q4_STEP * d4[i] + bnd;
			}
			hk__topk_block_i32(&lb[j], lo, R->scale + b, cnt, (uint32_t)b, tmp);
			float th = hk__heap_floor(&lb[j]), ef = hk__heap_floor(&heaps[j]);
			th = th > ef ? th : ef;
			/* fl(U s) > the float below th  <=>  fl(U s) >= th */
			if (!hk__score_block_i32(up, R->scale + b, cnt, nextafterf(th, -INFINITY),
			                         tmp, hits))
				continue;
			for (size_t w = 0; w < (cnt + 63) / 64; w++)
				for (uint64_t m = hits[w]; m; m &= m - 1) {
					size_t i = w * 64 + (size_t)__builtin_ctzll(m);
					size_t row = b + i;
					if (!(tmp[i] > hk__heap_floor(&heaps[j])))
						continue; /* cannot enter: exact <= upper bound */
					int32_t x = K->dot_i8(qs + j * d8, R->r8 + row * d8, d8);
					hk__heap_push(&heaps[j], (float)x * R->scale[row], (uint32_t)row);
					nres++;
				}
		}
	}
	if (rescored)
		*rescored += nres;
}
