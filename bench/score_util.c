/* All-pairs scoring, histograms, calibration fit; see score_util.h. */
#define _GNU_SOURCE
#include "score_util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "openset_fit.h"
#include "hk_simd.h"
#include "internal.h"

#define D HK_EMBED_DIM
#define QBLOCK 64   /* queries per pass over a row block               */
#define RBLOCK 1024 /* rows per block: 768 KiB of fp32, stays in L2    */

int hkb_set_alloc(hkb_set *s, size_t n)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	s->x = hk__aalloc((n ? n : 1) * D * sizeof(float));
	s->label = calloc(n ? n : 1, sizeof *s->label);
	s->ok = calloc(n ? n : 1, 1);
	if (!s->x || !s->label || !s->ok) {
		hkb_set_free(s);
		return -1;
	}
	return 0;
}

void hkb_set_free(hkb_set *s)
{
	if (s->x)
		hk__wipe(s->x, s->n * D * sizeof(float));
	hk__afree(s->x);
	free(s->label);
	free(s->ok);
	memset(s, 0, sizeof *s);
}

void hkb_scan(const hkb_set *s, const float *q, int q_ok, size_t from, size_t count, float *out)
{
	hk__kernels()->scan_f32(q, s->x + from * D, count, D, D * sizeof(float), out);
	for (size_t j = 0; j < count; j++)
		if (!q_ok || !s->ok[from + j])
			out[j] = -1.0f;
}

typedef struct job {
	const hkb_set *s;
	atomic_size_t next;
	double lo, hi; /* collect mode when hi > lo */
	pthread_mutex_t mu;
	hkb_pairs *p;
} job;

typedef struct part {
	uint64_t *ih, *gh;
	float *gen, *col;
	size_t ngen, capg, ncol, capc;
	uint64_t pairs;
	int fail;
} part;

static int push(float **v, size_t *n, size_t *cap, float x)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 4096;
		float *nv = realloc(*v, c * sizeof *nv);
		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

static void *pairs_worker(void *arg)
{
	job *j = arg;
	const hkb_set *s = j->s;
	int collect = j->hi > j->lo;
	part pt = {0};
	if (!collect) {
		pt.ih = calloc(HKB_NBINS, sizeof *pt.ih);
		pt.gh = calloc(HKB_NBINS, sizeof *pt.gh);
		if (!pt.ih || !pt.gh)
			pt.fail = 1;
	}
	float *out = malloc(RBLOCK * sizeof *out);
	if (!out)
		pt.fail = 1;
	size_t nqb = (s->n + QBLOCK - 1) / QBLOCK;
	for (size_t qb; !pt.fail && (qb = atomic_fetch_add(&j->next, 1)) < nqb;) {
		size_t q0 = qb * QBLOCK, q1 = q0 + QBLOCK < s->n ? q0 + QBLOCK : s->n;
		for (size_t r0 = q0 + 1; r0 < s->n; r0 += RBLOCK) {
			size_t r1 = r0 + RBLOCK < s->n ? r0 + RBLOCK : s->n;
			for (size_t q = q0; q < q1; q++) {
				size_t a = q + 1 > r0 ? q + 1 : r0;
				if (a >= r1)
					continue;
				hkb_scan(s, s->x + q * D, s->ok[q], a, r1 - a, out);
				pt.pairs += r1 - a;
				uint32_t lq = s->label[q];
				for (size_t k = a; k < r1; k++) {
					float v = out[k - a];
					int g = s->label[k] == lq;
					if (collect) {
						if (!g && v >= j->lo && v < j->hi &&
						    push(&pt.col, &pt.ncol, &pt.capc, v))
							pt.fail = 1;
					} else if (g) {
						pt.gh[hkb_bin(v)]++;
						if (push(&pt.gen, &pt.ngen, &pt.capg, v))
							pt.fail = 1;
					} else {
						pt.ih[hkb_bin(v)]++;
					}
				}
			}
		}
	}
	free(out);
	pthread_mutex_lock(&j->mu);
	hkb_pairs *p = j->p;
	if (pt.fail)
		p->pairs = UINT64_MAX;
	else if (p->pairs != UINT64_MAX) {
		p->pairs += pt.pairs;
		for (uint32_t b = 0; !collect && b < HKB_NBINS; b++) {
			p->ihist[b] += pt.ih[b];
			p->ghist[b] += pt.gh[b];
			p->nimp += pt.ih[b];
		}
		float **dst = collect ? &p->col : &p->gen;
		size_t *dn = collect ? &p->ncol : (size_t *)&p->ngen;
		const float *src = collect ? pt.col : pt.gen;
		size_t sn = collect ? pt.ncol : pt.ngen;
		float *nv = realloc(*dst, (*dn + sn + 1) * sizeof **dst);
		if (!nv)
			p->pairs = UINT64_MAX;
		else {
			if (sn)
				memcpy(nv + *dn, src, sn * sizeof *src);
			*dst = nv;
			*dn += sn;
		}
	}
	pthread_mutex_unlock(&j->mu);
	free(pt.ih);
	free(pt.gh);
	free(pt.gen);
	free(pt.col);
	return NULL;
}

int hkb_score_pairs(const hkb_set *s, int threads, double col_lo, double col_hi, hkb_pairs *p)
{
	int collect = col_hi > col_lo;
	if (!collect) {
		memset(p, 0, sizeof *p);
		p->ihist = calloc(HKB_NBINS, sizeof *p->ihist);
		p->ghist = calloc(HKB_NBINS, sizeof *p->ghist);
		if (!p->ihist || !p->ghist)
			return -1;
	} else {
		free(p->col);
		p->col = NULL;
		p->ncol = 0;
	}
	_Static_assert(sizeof(size_t) == sizeof(uint64_t), "ngen is counted as size_t");
	job j = {.s = s, .lo = col_lo, .hi = col_hi, .p = p};
	atomic_init(&j.next, 0);
	pthread_mutex_init(&j.mu, NULL);
	uint64_t before = p->pairs;
	p->pairs = 0;
	double t0 = hkb_now();
	pthread_t th[16];
	int started = 0;
	for (int t = 0; t < threads && t < 16; t++)
		started += !pthread_create(&th[started], NULL, pairs_worker, &j);
	if (!started)
		pairs_worker(&j);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&j.mu);
	p->seconds += hkb_now() - t0;
	if (p->pairs == UINT64_MAX)
		return -1;
	p->pairs += before;
	return 0;
}

void hkb_pairs_free(hkb_pairs *p)
{
	free(p->ihist);
	free(p->ghist);
	free(p->gen);
	free(p->col);
	memset(p, 0, sizeof *p);
}

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x < y) - (x > y);
}

int hkb_impostor_rank(const hkb_set *s, int threads, hkb_pairs *p, uint64_t k, float *score)
{
	if (k < 1)
		k = 1;
	if (k > p->nimp)
		return -1;
	uint64_t above = 0;
	uint32_t b = HKB_NBINS;
	while (b > 0 && above + p->ihist[b - 1] < k)
		above += p->ihist[--b];
	if (b == 0)
		return -1;
	b--; /* rank k lies in bin b: (k - above)-th highest inside it */
	double lo = hkb_bin_lo(b), hi = b + 1 < HKB_NBINS ? hkb_bin_lo(b + 1) : 2.0;
	if (b == 0)
		lo = -2.0;
	uint64_t pairs = p->pairs;
	if (hkb_score_pairs(s, threads, lo, hi, p))
		return -1;
	p->pairs = pairs + (p->pairs - pairs);
	if (p->ncol != p->ihist[b])
		return -1; /* the two passes disagree: a kernel is not deterministic */
	qsort(p->col, p->ncol, sizeof *p->col, cmp_desc);
	*score = p->col[k - above - 1];
	return 0;
}

int hkb_calib_fit(const uint64_t *ihist, uint64_t nimp, uint64_t ngen, const uint8_t sha[32],
                  const char *precision, const char *note, const struct hkb_osfit *os, char **text)
{
	enum { MIN_COUNT = 25, PER_DECADE = 10, MAXP = 400 };
	double ps[MAXP], pf[MAXP];
	int np = 0;
	/* cums[b] = impostors with score >= the lower edge of bin b. */
	uint64_t cum = 0;
	uint64_t *cums = malloc(HKB_NBINS * sizeof *cums);
	if (!cums)
		return -1;
	for (uint32_t b = HKB_NBINS; b-- > 0;) {
		cum += ihist[b];
		cums[b] = cum;
	}
	/* Empirical points, lowest FMR first (highest score). */
	double emp_s[MAXP], emp_f[MAXP];
	int ne = 0;
	for (int k = 3; k < 12 * PER_DECADE && ne < MAXP; k++) {
		double target = pow(10.0, -(double)k / PER_DECADE);
		if (target * nimp < MIN_COUNT)
			break;
		/* Lowest bin edge with cums <= target * nimp. */
		uint32_t lo = 0, hi = HKB_NBINS - 1;
		if (cums[hi] > target * nimp)
			break;
		while (hi - lo > 1) {
			uint32_t m = lo + (hi - lo) / 2;
			if ((double)cums[m] <= target * nimp)
				hi = m;
			else
				lo = m;
		}
		if (!cums[hi])
			break;
		emp_s[ne] = hkb_bin_lo(hi);
		emp_f[ne] = (double)cums[hi] / nimp;
		ne++;
	}
	free(cums);
	if (ne < 8)
		return -1;
	/* Tail: least squares of log10 FMR on score over the lowest two decades
	 * of the empirical points. */
	double fmin = emp_f[ne - 1], sx = 0, sy = 0, sxx = 0, sxy = 0;
	int nt = 0;
	for (int i = 0; i < ne; i++)
		if (emp_f[i] <= fmin * 100.0) {
			double x = emp_s[i], y = log10(emp_f[i]);
			sx += x;
			sy += y;
			sxx += x * x;
			sxy += x * y;
			nt++;
		}
	double slope = (nt * sxy - sx * sy) / (nt * sxx - sx * sx);
	double icpt = (sy - slope * sx) / nt;
	if (!(slope < 0))
		return -1;
	/* Points: empirical (ascending score), then the model below fmin. */
	for (int i = 0; i < ne; i++) {
		if (np && (emp_s[i] <= ps[np - 1] || emp_f[i] >= pf[np - 1]))
			continue;
		ps[np] = emp_s[i];
		pf[np] = emp_f[i];
		np++;
	}
	double last_s = ps[np - 1], last_lf = log10(pf[np - 1]);
	for (int k = 1; np < MAXP; k++) {
		double lf = last_lf - (double)k / PER_DECADE;
		if (lf < -12.0)
			break;
		double s = (lf - icpt) / slope;
		if (s <= last_s)
			continue;
		if (s > 1.0)
			break;
		ps[np] = s;
		pf[np] = pow(10.0, lf);
		np++;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -1;
	char hex[65];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", sha[i]);
	fprintf(f, "herken-calibration 3\n");
	fprintf(f, "# score -> false-match rate of one embedder (see core/herken.h, Calibration).\n");
	fprintf(f, "# Written by herken-bench calibrate. Fitted on: %s\n", note);
	fprintf(f, "# %llu impostor pairs, %llu genuine pairs. Points with FMR >= %.3g are\n",
	        (unsigned long long)nimp, (unsigned long long)ngen, fmin);
	fprintf(f, "# empirical (>= %d impostor pairs at or above the score); below that a MODEL:\n",
	        MIN_COUNT);
	fprintf(f, "#   log10 FMR = %.4f %+.4f * score (least squares over FMR in [%.3g, %.3g]).\n",
	        icpt, slope, fmin, fmin * 100.0);
	fprintf(f, "embedder %s\nprecision %s\npoints %d\n", hex, precision, np);
	for (int i = 0; i < np; i++)
		fprintf(f, "%.6f %.6e%s\n", ps[i], pf[i],
		        pf[i] < fmin * 0.999 ? "  # model" : "");
	if (os && hkb_osfit_write(os, f)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fprintf(f, "end\n");
	if (fclose(f))
		return -1;
	/* Points in ascending score order: the empirical walk already is. */
	*text = buf;
	return 0;
}
