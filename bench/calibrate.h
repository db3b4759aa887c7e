/* Verification protocol maths (LFW-style k-fold, TAR@FAR), used by the
 * accuracy benchmarks and their tests; not part of the library. */
#ifndef HK_BENCH_CALIBRATE_H
#define HK_BENCH_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

/* Fraction of pairs decided right at threshold t (same iff score >= t). */
double hk__accuracy_at(const float *score, const uint8_t *same, size_t n, double t);

/* The threshold maximising accuracy over the pairs whose mask[i] is set
 * (mask NULL: all): midpoints between consecutive distinct scores are
 * tried, ties go to the lowest such threshold. *acc (may be NULL) gets the
 * accuracy there. Returns NAN when no pair is selected. */
double hk__best_threshold(const float *score, const uint8_t *same, const uint8_t *mask,
                          size_t n, double *acc);

/* TAR at FAR <= far: the threshold t accepts at most floor(far * impostors)
 * impostor pairs (score > t); *thr gets t. Returns the fraction of genuine
 * pairs with score > t, or NAN without genuine or impostor pairs. */
double hk__tar_at_far(const float *score, const uint8_t *same, size_t n, double far,
                      double *thr);

/* k-fold protocol: for each fold f (fold[i] in 0..k-1), the threshold that
 * maximises accuracy on the other folds is applied to fold f. acc[k] and
 * thr[k] receive the per-fold test accuracy and threshold. -1 on bad input
 * (a fold index out of range, k == 0, or an empty fold). */
int hk__kfold(const float *score, const uint8_t *same, const uint8_t *fold, size_t n,
              unsigned k, double *acc, double *thr);

/* One-sided upper confidence bound of a Poisson mean: the lambda with
 * P(Poisson(lambda) <= k) = 1 - conf, for a count k >= 0 (real: through
 * the regularised incomplete gamma, P(X <= k) = 1 - P(k + 1, lambda)) and
 * conf in (0, 1); conf <= 0 gives k itself (the point estimate). */
double hk__poisson_upper(double k, double conf);

#endif
