/* Verification protocol maths (LFW 10-fold, TAR@FAR) on synthetic scores
 * with hand-computed and brute-force oracles. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "calibrate.h"

Test(pipeline_protocol, best_threshold_by_hand)
{
	/* sorted: .1 diff, .35 diff, .4 same, .5 diff, .8 same. Calling
	 * everything above t "same": t below all -> 2 right, past .1 -> 3,
	 * past .35 -> 4 (first maximum), past .4 -> 3, past .5 -> 4. */
	const float s[] = {0.1f, 0.4f, 0.35f, 0.8f, 0.5f};
	const uint8_t same[] = {0, 1, 0, 1, 0};
	double acc;
	double t = hk__best_threshold(s, same, NULL, 5, &acc);
	cr_assert_float_eq(t, (0.35 + 0.4) / 2, 1e-6);
	cr_assert_float_eq(acc, 0.8, 1e-12);
	cr_assert_float_eq(hk__accuracy_at(s, same, 5, t), 0.8, 1e-12);
	/* Mask out the .35 pair: the best cut moves below .4 -> 3 of 4 right
	 * first at t between .1 and .4. */
	const uint8_t mask[] = {1, 1, 0, 1, 1};
	t = hk__best_threshold(s, same, mask, 5, &acc);
	cr_assert_float_eq(t, (0.1 + 0.4) / 2, 1e-6);
	cr_assert_float_eq(acc, 0.75, 1e-12);
	const uint8_t none[] = {0, 0, 0, 0, 0};
	cr_assert(isnan(hk__best_threshold(s, same, none, 5, NULL)));
}

Test(pipeline_protocol, best_threshold_matches_brute_force)
{
	srand(7);
	enum { N = 300 };
	float s[N];
	uint8_t same[N];
	for (int i = 0; i < N; i++) {
		same[i] = (uint8_t)(i & 1);
		/* Coarse scores so that ties occur. */
		s[i] = (float)((rand() % 40) / 40.0 + (same[i] ? 0.3 : 0.0));
	}
	double acc;
	double t = hk__best_threshold(s, same, NULL, N, &acc);
	double brute = 0;
	for (int i = 0; i < N; i++)
		for (int d = -1; d <= 1; d += 2) {
			double a = hk__accuracy_at(s, same, N, s[i] + d * 1e-4);
			brute = a > brute ? a : brute;
		}
	cr_assert_float_eq(acc, brute, 1e-12);
	cr_assert_float_eq(hk__accuracy_at(s, same, N, t), acc, 1e-12);
}

Test(pipeline_protocol, tar_at_far)
{
	/* 1000 impostors at 0.000..0.999, genuine at 0.9905..0.9985 and 0.5:
	 * FAR 1e-3 allows one impostor above t, so t = 0.998 (the second
	 * highest) and genuine pairs above it count. */
	enum { NI = 1000, NG = 10 };
	float s[NI + NG];
	uint8_t same[NI + NG];
	for (int i = 0; i < NI; i++) {
		s[i] = i / 1000.0f;
		same[i] = 0;
	}
	for (int i = 0; i < NG; i++) {
		s[NI + i] = i < 9 ? 0.9905f + i * 0.001f : 0.5f;
		same[NI + i] = 1;
	}
	double t;
	double tar = hk__tar_at_far(s, same, NI + NG, 1e-3, &t);
	cr_assert_float_eq(t, 0.998, 1e-6);
	/* genuine (0.9905 .. 0.9985 in steps of 0.001) above 0.998: 0.9985 */
	cr_assert_float_eq(tar, 1.0 / NG, 1e-12);
	/* FAR 0: above the highest impostor (0.999): none. */
	tar = hk__tar_at_far(s, same, NI + NG, 0, &t);
	cr_assert_float_eq(t, 0.999, 1e-6);
	cr_assert_float_eq(tar, 0.0, 1e-12);
	/* FAR 1: everything accepted, t below the lowest impostor. */
	tar = hk__tar_at_far(s, same, NI + NG, 1.0, &t);
	cr_assert_float_eq(tar, 1.0, 1e-12);
	cr_assert(isnan(hk__tar_at_far(s, same, NI, 1e-3, &t)), "no genuine pairs");
}

static double gauss(void)
{
	double u = (rand() + 1.0) / (RAND_MAX + 2.0), v = (rand() + 1.0) / (RAND_MAX + 2.0);
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

Test(pipeline_protocol, tenfold_on_gaussian_scores)
{
	/* Genuine ~ N(0.6, 0.1), impostor ~ N(0, 0.1), 10 folds of 300+300:
	 * the Bayes threshold is 0.3 and the expected accuracy Phi(3) = 0.99865. */
	enum { N = 6000 };
	float *s = malloc(N * sizeof *s);
	uint8_t *same = malloc(N), *fold = malloc(N);
	srand(42);
	for (int i = 0; i < N; i++) {
		fold[i] = (uint8_t)(i / 600);
		same[i] = (i % 600) < 300;
		s[i] = (float)((same[i] ? 0.6 : 0.0) + 0.1 * gauss());
	}
	double acc[10], thr[10], mean = 0;
	cr_assert_eq(hk__kfold(s, same, fold, N, 10, acc, thr), 0);
	for (int f = 0; f < 10; f++) {
		mean += acc[f] / 10;
		cr_expect(fabs(thr[f] - 0.3) < 0.06, "fold %d threshold %.3f", f, thr[f]);
		cr_expect(acc[f] > 0.99 && acc[f] <= 1.0);
	}
	cr_assert(fabs(mean - 0.99865) < 0.002, "mean accuracy %.5f", mean);
	/* Each fold's accuracy is the accuracy of its own pairs at its threshold. */
	cr_assert_float_eq(acc[3], hk__accuracy_at(s + 1800, same + 1800, 600, thr[3]), 1e-12);
	fold[5] = 10;
	cr_assert_eq(hk__kfold(s, same, fold, N, 10, acc, thr), -1);
	free(s);
	free(same);
	free(fold);
}

/* The open-set calibration's bound on a thin tail: against tabled chi-square
 * quantiles (lambda = chi2(conf, 2k + 2) / 2) and, for integer counts,
 * against the Poisson CDF summed term by term. */
Test(pipeline_protocol, poisson_upper_bound)
{
	cr_assert_float_eq(hk__poisson_upper(0, 0.90), log(10.0), 1e-9);
	cr_assert_float_eq(hk__poisson_upper(4, 0.90), 15.9872 / 2, 1e-3);
	cr_assert_float_eq(hk__poisson_upper(2, 0.95), 12.5916 / 2, 1e-3);
	for (int k = 0; k <= 30; k++) {
		double l = hk__poisson_upper(k, 0.9), term = exp(-l), cdf = term;
		for (int i = 1; i <= k; i++) {
			term *= l / i;
			cdf += term;
		}
		cr_assert_float_eq(cdf, 0.1, 1e-9, "k = %d: P(X <= k) = %g at %g", k, cdf, l);
	}
	/* Real counts (weighted events) lie between their integer neighbours;
	 * the bound rises with the count and the confidence; conf 0 is k. */
	double prev = 0;
	for (double k = 0; k <= 10; k += 0.25) {
		double u = hk__poisson_upper(k, 0.9);
		cr_assert(u > prev && u > k, "k = %g: %g after %g", k, u, prev);
		cr_assert(hk__poisson_upper(k, 0.95) > u && hk__poisson_upper(k, 0.5) < u);
		cr_assert_float_eq(hk__poisson_upper(k, 0.0), k, 0);
		prev = u;
	}
}
