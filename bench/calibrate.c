/* Verification protocol maths: accuracy-maximising thresholds, k-fold
 * cross-validation (the LFW View 2 protocol), TAR at a fixed FAR, and the
 * Poisson upper bound the open-set calibration puts on thin tails. */
#include "calibrate.h"

#include <math.h>
#include <stdlib.h>

double hk__accuracy_at(const float *score, const uint8_t *same, size_t n, double t)
{
	if (n == 0)
		return NAN;
	size_t right = 0;
	for (size_t i = 0; i < n; i++)
		right += (score[i] >= t) == (same[i] != 0);
	return (double)right / n;
}

typedef struct scored {
	float s;
	uint8_t same;
} scored;

static int by_score(const void *pa, const void *pb)
{
	const scored *a = pa, *b = pb;
	return (a->s > b->s) - (a->s < b->s);
}

double hk__best_threshold(const float *score, const uint8_t *same, const uint8_t *mask,
                          size_t n, double *acc)
{
	scored *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		return NAN;
	size_t m = 0, pos = 0;
	for (size_t i = 0; i < n; i++) {
		if (mask && !mask[i])
			continue;
		v[m].s = score[i];
		v[m].same = same[i] != 0;
		pos += v[m].same;
		m++;
	}
	if (m == 0) {
		free(v);
		return NAN;
	}
	qsort(v, m, sizeof *v, by_score);
	/* Threshold below everything: every pair is called "same". Moving it
	 * past a group of equal scores flips those pairs to "different". */
	size_t right = pos, best = right;
	double best_t = v[0].s - 1.0;
	for (size_t i = 0; i < m;) {
		size_t j = i;
		while (j < m && v[j].s == v[i].s) {
			if (v[j].same)
				right--;
			else
				right++;
			j++;
		}
		if (right > best) {
			best = right;
			best_t = j < m ? ((double)v[i].s + v[j].s) / 2 : v[i].s + 1.0;
		}
		i = j;
	}
	if (acc)
		*acc = (double)best / m;
	free(v);
	return best_t;
}

static int desc_float(const void *pa, const void *pb)
{
	float a = *(const float *)pa, b = *(const float *)pb;
	return (a < b) - (a > b);
}

double hk__tar_at_far(const float *score, const uint8_t *same, size_t n, double far,
                      double *thr)
{
	size_t ni = 0, ng = 0;
	for (size_t i = 0; i < n; i++)
		ni += !same[i];
	ng = n - ni;
	if (ni == 0 || ng == 0 || !(far >= 0))
		return NAN;
	float *imp = malloc(ni * sizeof *imp);
	if (!imp)
		return NAN;
	for (size_t i = 0, k = 0; i < n; i++)
		if (!same[i])
			imp[k++] = score[i];
	qsort(imp, ni, sizeof *imp, desc_float);
	size_t allowed = (size_t)floor(far * (double)ni + 1e-9);
	/* Accept score > t with t = the (allowed+1)-th highest impostor score:
	 * at most `allowed` impostors lie strictly above it. */
	double t = allowed < ni ? imp[allowed] : imp[ni - 1] - 1.0;
	free(imp);
	size_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc += same[i] && score[i] > t;
	if (thr)
		*thr = t;
	return (double)acc / ng;
}

int hk__kfold(const float *score, const uint8_t *same, const uint8_t *fold, size_t n,
              unsigned k, double *acc, double *thr)
{
	if (k == 0 || n == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (fold[i] >= k)
			return -1;
	uint8_t *mask = malloc(n);
	float *ts = malloc(n * sizeof *ts);
	uint8_t *tl = malloc(n);
	int rc = 0;
	if (!mask || !ts || !tl)
		rc = -1;
	for (unsigned f = 0; f < k && !rc; f++) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++) {
			mask[i] = fold[i] != f;
			if (!mask[i]) {
				ts[m] = score[i];
				tl[m++] = same[i];
			}
		}
		double t = hk__best_threshold(score, same, mask, n, NULL);
		if (m == 0 || isnan(t)) {
			rc = -1;
			break;
		}
		thr[f] = t;
		acc[f] = hk__accuracy_at(ts, tl, m, t);
	}
	free(mask);
	free(ts);
	free(tl);
	return rc;
}

/* Lower regularised incomplete gamma P(a, x), a > 0, x >= 0, by its power
 * series: the terms fall once n passes x, so 5,000 cover x up to a few
 * thousand (the counts here are below 100). */
static double gamma_p(double a, double x)
{
	if (x <= 0)
		return 0.0;
	double ap = a, del = 1.0 / a, sum = del;
	for (int n = 0; n < 5000 && fabs(del) > fabs(sum) * 1e-15; n++) {
		ap += 1.0;
		del *= x / ap;
		sum += del;
	}
	double p = sum * exp(-x + a * log(x) - lgamma(a));
	return p > 1.0 ? 1.0 : p;
}

double hk__poisson_upper(double k, double conf)
{
	if (k < 0)
		k = 0;
	if (!(conf > 0))
		return k;
	/* P(Poisson(l) <= k) = 1 - P(k + 1, l), falling in l. */
	double lo = k, hi = k + 20.0 + 20.0 * sqrt(k + 1.0);
	for (int i = 0; i < 200; i++) {
		double m = 0.5 * (lo + hi);
		if (1.0 - gamma_p(k + 1.0, m) > 1.0 - conf)
			lo = m;
		else
			hi = m;
	}
	return 0.5 * (lo + hi);
}
