/*
 * herken-bench search --impl herken-q4 / herken-i8: the 4-bit first pass
 * with a proven bound (simd/q4.h) against the plain int8 tile scan, in the
 * same harness: int8 rows quantised as the gallery does (per-row amax /
 * 127), queries to the tier's i8_qmax, k' = 64 candidates per query re-ranked
 * in fp32 from an in-memory copy. The only difference between the two rows
 * is the first pass, so their ratio is the 4-bit pass's gain or loss; the
 * number of rows re-scored exactly is reported per query.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_q4.h"
#include "hk_simd.h"
#include "q4.h"

struct hkb_q4 {
	size_t n, cap, d, d8;
	int codes;
	const hk__kernel_table *K;
	int8_t *r8, *c4;
	int32_t *rsum8, *csum4, *be;
	float *scale, *x; /* x: n x d normalised fp32 (the re-rank copy) */
	uint64_t rescored, queries;
};

hkb_q4 *hkb_q4_create(size_t dim, size_t cap, int codes)
{
	hkb_q4 *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->d = dim;
	p->d8 = (dim + 63) / 64 * 64;
	p->cap = cap;
	p->codes = codes;
	p->K = hk__kernels();
	p->r8 = aligned_alloc(64, cap * p->d8);
	p->c4 = codes ? aligned_alloc(64, cap * p->d8) : NULL;
	p->rsum8 = malloc(cap * 4);
	p->csum4 = malloc(cap * 4);
	p->be = malloc(cap * 4);
	p->scale = malloc(cap * 4);
	p->x = malloc(cap * dim * 4);
	if (!p->r8 || (codes && !p->c4) || !p->rsum8 || !p->csum4 || !p->be ||
	    !p->scale || !p->x || p->d8 > 1024) {
		hkb_q4_destroy(p);
		return NULL;
	}
	return p;
}

void hkb_q4_destroy(hkb_q4 *p)
{
	if (!p)
		return;
	free(p->r8), free(p->c4), free(p->rsum8), free(p->csum4), free(p->be);
	free(p->scale), free(p->x), free(p);
}

/* x normalised, int8 with |v| <= qmax (scale amax / qmax); returns scale. */
static float quant(const float *x, size_t d, size_t d8, int qmax, int8_t *q,
                   int32_t *sum)
{
	float amax = 0;
	for (size_t i = 0; i < d; i++)
		amax = fmaxf(amax, fabsf(x[i]));
	float sc = amax > 0 ? amax / (float)qmax : 1.0f;
	int32_t s = 0;
	for (size_t i = 0; i < d8; i++) {
		long v = i < d ? lrintf(x[i] / sc) : 0;
		v = v > qmax ? qmax : v < -qmax ? -qmax : v;
		q[i] = (int8_t)v;
		s += (int32_t)v;
	}
	*sum = s;
	return sc;
}

static void normalise(const float *in, size_t d, float *out)
{
	double s = 0;
	for (size_t i = 0; i < d; i++)
		s += (double)in[i] * in[i];
	float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
	for (size_t i = 0; i < d; i++)
		out[i] = in[i] * inv;
}

int hkb_q4_add(hkb_q4 *p, const float *x, size_t n)
{
	if (p->n + n > p->cap)
		return -1;
	for (size_t r = 0; r < n; r++) {
		size_t i = p->n++;
		float *xi = p->x + i * p->d;
		normalise(x + r * p->d, p->d, xi);
		int8_t *r8 = p->r8 + i * p->d8;
		p->scale[i] = quant(xi, p->d, p->d8, 127, r8, &p->rsum8[i]);
		if (p->codes)
			hk__q4_encode(r8, p->d8, p->c4 + i * p->d8, &p->csum4[i], &p->be[i]);
	}
	return 0;
}

static int cand_desc(const void *a, const void *b)
{
	const hk__cand *x = a, *y = b;
	return (x->score < y->score) - (x->score > y->score);
}

int hkb_q4_search(hkb_q4 *p, const float *q, size_t nq, int k, float *scores,
                  int64_t *ids)
{
	enum { KK = 64 };
	size_t d = p->d, d8 = p->d8;
	uint8_t *qu = aligned_alloc(64, 64 * d8);
	float *qf = malloc(64 * d * 4);
	hk__cand *cand = malloc(64 * KK * sizeof *cand);
	if (!qu || !qf || !cand) {
		free(qu), free(qf), free(cand);
		return -1;
	}
	hk__q4_rows R = {p->n, d8, p->r8, p->rsum8, p->scale, p->c4, p->csum4, p->be};
	int qmax = hk__i8_qmax(p->K);
	for (size_t j0 = 0; j0 < nq; j0 += 64) {
		size_t nt = nq - j0 < 64 ? nq - j0 : 64;
		hk__heap h[64];
		for (size_t j = 0; j < nt; j++) {
			int32_t unused;
			normalise(q + (j0 + j) * d, d, qf + j * d);
			quant(qf + j * d, d, d8, qmax, (int8_t *)qu + j * d8, &unused);
			for (size_t i = 0; i < d8; i++)
				qu[j * d8 + i] = (uint8_t)(((int8_t *)qu)[j * d8 + i] + 128);
			h[j] = (hk__heap){cand + j * KK, 0, KK};
		}
		hk__q4_search(p->K, &R, qu, nt, d8, h, &p->rescored);
		for (size_t j = 0; j < nt; j++) {
			hk__cand *c = h[j].c;
			for (uint32_t i = 0; i < h[j].n; i++)
				c[i].score = p->K->dot_f32(qf + j * d, p->x + (size_t)c[i].slot * d, d);
			qsort(c, h[j].n, sizeof *c, cand_desc);
			for (int i = 0; i < k; i++) {
				int ok = (uint32_t)i < h[j].n;
				scores[(j0 + j) * k + i] = ok ? c[i].score : -INFINITY;
				ids[(j0 + j) * k + i] = ok ? (int64_t)c[i].slot : -1;
			}
		}
	}
	p->queries += nq;
	free(qu), free(qf), free(cand);
	return 0;
}

double hkb_q4_rescored_per_query(hkb_q4 *p, int reset)
{
	double r = p->queries ? (double)p->rescored / (double)p->queries : 0;
	if (reset)
		p->rescored = p->queries = 0;
	return r;
}
