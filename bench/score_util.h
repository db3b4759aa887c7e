/* All-pairs scoring with herken's own fp32 scan kernel, score histograms
 * and the calibration fit (score_util.c), shared by `herken-bench blufr`,
 * `openset` and `calibrate`. */
#ifndef HKB_SCORE_UTIL_H
#define HKB_SCORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "herken.h"

/* Score histogram: HKB_NBINS bins over [-1, 1]. */
#define HKB_NBINS (1u << 20)
static inline uint32_t hkb_bin(float s)
{
	double x = ((double)s + 1.0) * 0.5 * HKB_NBINS;
	return x <= 0 ? 0 : x >= HKB_NBINS ? HKB_NBINS - 1 : (uint32_t)x;
}
static inline double hkb_bin_lo(uint32_t b)
{
	return (double)b / HKB_NBINS * 2.0 - 1.0;
}

/* A set of n embeddings (rows of HK_EMBED_DIM floats, 64-byte aligned),
 * labels, and ok[i] = 0 for an image with no face (scored lowest, -1). */
typedef struct hkb_set {
	size_t n;
	float *x;
	uint32_t *label;
	uint8_t *ok;
} hkb_set;

int hkb_set_alloc(hkb_set *s, size_t n);
void hkb_set_free(hkb_set *s);

/* Result of scoring every unordered pair of a set. */
typedef struct hkb_pairs {
	uint64_t *ihist;   /* HKB_NBINS impostor counts                       */
	uint64_t *ghist;   /* HKB_NBINS genuine counts                        */
	uint64_t nimp, ngen;
	float *gen;        /* all genuine scores (ngen)                       */
	float *col;        /* impostor scores collected in [col_lo, col_hi)   */
	size_t ncol;
	double seconds;    /* wall time of the scoring pass(es)               */
	uint64_t pairs;    /* pairs scored (all passes)                        */
} hkb_pairs;

/* Score all pairs with `threads` threads. When col_hi > col_lo, impostor
 * scores in [col_lo, col_hi) are collected (second pass for exact ranks)
 * and the histograms are not touched. */
int hkb_score_pairs(const hkb_set *s, int threads, double col_lo, double col_hi,
                    hkb_pairs *p);
void hkb_pairs_free(hkb_pairs *p);

/* Exact impostor score at rank k (1 = highest) of a set: one histogram
 * pass (given in p) and one collection pass. */
int hkb_impostor_rank(const hkb_set *s, int threads, hkb_pairs *p, uint64_t k, float *score);

/* Calibration text (herken.h format) from an impostor histogram: the
 * empirical FMR where at least min_count impostor pairs back it, below that
 * the fitted tail (log10 FMR linear in the score, least squares over
 * the empirical points with FMR in [tail_lo, tail_hi]) down to FMR 1e-12.
 * Format 3: precision (fp32, bf16, int8) is the precision the embeddings
 * were made in. With os (may be NULL) the open-set section follows
 * (openset_fit.h). *text is malloc'ed. Comment lines say what it was
 * fitted on (note). */
struct hkb_osfit;
int hkb_calib_fit(const uint64_t *ihist, uint64_t nimp, uint64_t ngen, const uint8_t sha[32],
                  const char *precision, const char *note, const struct hkb_osfit *os,
                  char **text);

/* One query against rows [0, n) of s: out[n]. Undetected -> -1. */
void hkb_scan(const hkb_set *s, const float *q, int q_ok, size_t from, size_t count, float *out);

#endif
