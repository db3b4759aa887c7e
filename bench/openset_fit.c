/* The open-set tail of a calibration; see openset_fit.h. */
#define _GNU_SOURCE
#include "openset_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "herken.h"

#define D HK_EMBED_DIM
#define MIN_EVENTS 25.0
#define BULK_HI 1e-3
#define BULK_LO 1e-5
#define PI_AT 1e-7 /* pi is counted where the bulk model is this low */

void hkb_osfit_free(hkb_osfit *f)
{
	free(f->qcum);
	free(f->gcum);
	memset(f, 0, sizeof *f);
}

double hkb_osfit_q_emp(const hkb_osfit *f, double t)
{
	return f->qcum[hkb_bin((float)t)] / f->qnorm;
}

double hkb_osfit_sgen(const hkb_osfit *f, double t)
{
	return f->gnorm > 0 ? f->gcum[hkb_bin((float)t)] / f->gnorm : 0.0;
}

static double bulk(const hkb_osfit *f, double t)
{
	return pow(10.0, f->a + f->b * t);
}

double hkb_osfit_q(const hkb_osfit *f, double t)
{
	double e = hkb_osfit_q_emp(f, t);
	if (e >= f->q_emp_min)
		return e;
	return bulk(f, t) + f->pi * hkb_osfit_sgen(f, t);
}

void hkb_osfit_set_conf(hkb_osfit *f, double conf)
{
	double sg = hkb_osfit_sgen(f, f->u);
	double k = hk__poisson_upper(f->events, conf), expect = bulk(f, f->u) * f->qnorm;
	f->conf = conf;
	f->pi = sg > 0 && k > expect ? (k - expect) / f->qnorm / sg : 0.0;
}

int hkb_osfit_run(const hkb_set *s, unsigned min_images, hkb_osfit *f)
{
	memset(f, 0, sizeof *f);
	f->min_images = min_images ? min_images : 1;
	uint32_t maxl = 0;
	for (size_t i = 0; i < s->n; i++)
		maxl = s->label[i] > maxl ? s->label[i] : maxl;
	uint32_t *cnt = calloc((size_t)maxl + 1, sizeof *cnt);
	float *sc = malloc((s->n ? s->n : 1) * sizeof *sc);
	f->qcum = calloc(HKB_NBINS, sizeof *f->qcum);
	f->gcum = calloc(HKB_NBINS, sizeof *f->gcum);
	if (!cnt || !sc || !f->qcum || !f->gcum) {
		free(cnt);
		free(sc);
		hkb_osfit_free(f);
		return -1;
	}
	for (size_t i = 0; i < s->n; i++)
		f->npeople += !cnt[s->label[i]]++;
	for (uint32_t l = 0; l <= maxl; l++)
		f->ncand += cnt[l] >= f->min_images;
	f->nprobe = s->n;
	/* Every image a probe; every other person with >= min_images photos a
	 * candidate gallery entry (weight 1/n: its enrolled photo is one of its
	 * n); its own person's other photos the genuine side, weighted the
	 * same way. Histograms first, suffix sums after. */
	for (size_t i = 0; i < s->n; i++) {
		hkb_scan(s, s->x + i * D, s->ok[i], 0, s->n, sc);
		uint32_t li = s->label[i];
		for (size_t j = 0; j < s->n; j++) {
			if (j == i)
				continue;
			uint32_t lj = s->label[j];
			if (lj != li && cnt[lj] >= f->min_images)
				f->qcum[hkb_bin(sc[j])] += 1.0 / cnt[lj];
			else if (lj == li)
				f->gcum[hkb_bin(sc[j])] += 1.0 / (cnt[li] - 1);
		}
	}
	for (size_t i = 0; i < s->n; i++)
		f->qnorm += (double)(f->ncand - (cnt[s->label[i]] >= f->min_images));
	free(cnt);
	free(sc);
	for (uint32_t b = HKB_NBINS - 1; b-- > 0;) {
		f->qcum[b] += f->qcum[b + 1];
		f->gcum[b] += f->gcum[b + 1];
	}
	f->gnorm = f->gcum[0];
	f->q_emp_min = MIN_EVENTS / f->qnorm;
	/* Bulk: least squares of log10 q over the measured points with q in
	 * [lo, BULK_HI], 10 per decade; lo is BULK_LO or, on a smaller set,
	 * the lowest q that 25 events back. */
	double lo = BULK_LO > f->q_emp_min ? BULK_LO : f->q_emp_min;
	double sx = 0, sy = 0, sxx = 0, sxy = 0;
	int n = 0, k = 0;
	for (uint32_t b = HKB_NBINS; b-- > 0;) {
		double q = f->qcum[b] / f->qnorm;
		double target = lo * pow(10.0, 0.1 * k);
		if (target > BULK_HI * 1.0001)
			break;
		if (q >= target) {
			double x = hkb_bin_lo(b), y = log10(q);
			sx += x, sy += y, sxx += x * x, sxy += x * y;
			n++;
			while (lo * pow(10.0, 0.1 * k) <= q)
				k++;
		}
	}
	if (n < 8)
		return -1;
	f->b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
	f->a = (sy - f->b * sx) / n;
	if (!(f->b < 0))
		return -1;
	/* Look-alikes: what lies above u beyond the bulk, over the genuine
	 * share above u; the point estimate, then the bound the model uses. */
	f->u = (log10(PI_AT) - f->a) / f->b;
	f->events = hkb_osfit_q_emp(f, f->u) * f->qnorm;
	hkb_osfit_set_conf(f, 0.0);
	f->pi_point = f->pi;
	hkb_osfit_set_conf(f, HKB_OS_CONF);
	return 0;
}

int hkb_osfit_write(const hkb_osfit *f, FILE *out)
{
	enum { MAXR = 400 };
	double rs[MAXR], rq[MAXR];
	int m = 0;
	/* Measured points (>= MIN_EVENTS behind each), 10 per decade from
	 * q = 0.5 down, then the model every 0.005 of score up to 1. */
	for (int k = 3; m < MAXR; k++) {
		double target = pow(10.0, -0.1 * k);
		if (target < f->q_emp_min)
			break;
		/* lowest bin edge whose q <= target (qcum falls with the bin) */
		uint32_t lo = 0, hi = HKB_NBINS;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (f->qcum[mid] / f->qnorm <= target)
				hi = mid;
			else
				lo = mid + 1;
		}
		if (lo >= HKB_NBINS || f->qcum[lo] <= 0)
			break;
		double s = hkb_bin_lo(lo), q = f->qcum[lo] / f->qnorm;
		if (m && (s <= rs[m - 1] || q >= rq[m - 1]))
			continue;
		rs[m] = s;
		rq[m] = q;
		m++;
	}
	if (m < 2)
		return -1;
	int nemp = m;
	for (double s = floor(rs[m - 1] / 0.005) * 0.005 + 0.005; s <= 1.0 + 1e-9 && m < MAXR;
	     s += 0.005) {
		double q = bulk(f, s) + f->pi * hkb_osfit_sgen(f, s);
		if (q >= rq[m - 1] * 0.9999 || q < 1e-14)
			continue;
		rs[m] = s > 1.0 ? 1.0 : s;
		rq[m] = q;
		m++;
	}
	fprintf(out,
	        "# Open set (FPIR(t, N) = 1 - (1 - q(t))^N), measured on the same train set:\n"
	        "# %zu images as non-mated probes against the other %zu people with >= %u\n"
	        "# photo(s), each person's photos weighted 1/n. Points with q >= %.3g are measured; above\n"
	        "# score %.4f a MODEL: q(t) = 10^(%.4f %+.4f t) + %.3g * S_gen(t), where\n"
	        "# S_gen is the train genuine score survival (look-alikes, duplicates\n"
	        "# and relatives score like the same person) and %.3g is their rate per\n"
	        "# (probe, enrolled person): %.1f train events above %.4f, bulk removed,\n"
	        "# as the one-sided %.0f %% Poisson upper bound (point estimate %.3g).\n",
	        f->nprobe, f->ncand - (f->min_images <= 1), f->min_images, f->q_emp_min, rs[nemp - 1], f->a, f->b, f->pi, f->pi,
	        f->events, f->u, 100 * f->conf, f->pi_point);
	fprintf(out, "openset %d\n", m);
	for (int i = 0; i < m; i++)
		fprintf(out, "%.6f %.6e%s\n", rs[i], rq[i], i >= nemp ? "  # model" : "");
	return 0;
}
