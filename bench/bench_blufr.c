/* herken-bench blufr: the LFW BLUFR protocol (../shared/datasets/lfw_blufr/
 * README.md) on herken's own embeddings, plus the checks of the calibrated
 * decisions (core/calib.c) on its test data:
 *
 *  - verification: every unordered pair of a trial's test images (~50 M),
 *    scored with herken's fp32 scan kernel; threshold = the impostor score
 *    at rank round(FAR x impostors), exact (a histogram pass finds the bin,
 *    a second pass collects that bin); VR = genuine share >= threshold.
 *  - open set: probes against the 1,000 gallery images; DIR at FAR (=FPIR)
 *    1 % and 0.1 %, rank 1; CMC ranks 1..10.
 *  - the library's default 1:N operating point: for trial t the calibration
 *    is fitted on trial t's TRAIN split only (the procedure of `herken-bench
 *    calibrate`), the threshold is hk_calib_score_at_fpir(HK_DEFAULT_FPIR,
 *    N); FPIR and DIR measured on trial t's test probes. The calibration
 *    shipped in the library was fitted on trial 1's train split: its figures
 *    are reported on trial 1's test data only.
 *  - predicted (calibration) against measured FPIR at gallery sizes
 *    N = 10, 30, 100, 300, 1000 (nested random subsets of the gallery); the
 *    calibration carries an open-set table fitted on the train split
 *    (openset_fit.h; its look-alike rate at the one-sided HKB_OS_CONF
 *    upper bound).
 *  - the ambiguity margin rule (best - second best >= m): DIR at equal
 *    measured FPIR, against m = 0.
 *
 * `herken-bench calibrate` writes the calibration file from a train split;
 * `herken-bench calib-check` checks the open-set tail model on train
 * halves only (fit on one half of a train split's people, measure on the
 * other). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "blufr_common.h"
#include "openset_fit.h"
#include "score_util.h"

#define D HK_EMBED_DIM
#define NT 10
#define CMC_R 10
#define N_SIZES 5
#define N_MARGINS 4
#define ROC_PTS 25  /* FAR 1e-6 .. 1, 4 per decade */
#define OROC_PTS 17 /* FPIR 1e-4 .. 1, 4 per decade */

static const uint64_t gsizes[N_SIZES] = {10, 30, 100, 300, 1000};
static const double margins[N_MARGINS] = {0.0, 0.02, 0.05, 0.10};
static const double pred_fpir[2] = {1e-2, 1e-3};
#define N_OPS 8
static const double op_targets[N_OPS] = {1e-2, 3e-3, 1e-3, 5e-4, 3e-4, 1e-4, 3e-5, 1e-5};

typedef struct trial_res {
	double vr3, vr4, thr3, thr4;
	double dir2, dir3, thr_dir2, thr_dir3;
	double cmc[CMC_R];
	double roc[ROC_PTS];   /* VR at FAR grid */
	double oroc[OROC_PTS]; /* DIR at FPIR grid */
	size_t ntest, ngal, nprobe, ngen_probe, nimp_probe;
	uint64_t nimp_pairs, ngen_pairs, pairs;
	double pair_s;
	/* default operating point, calibration from this trial's train split */
	double def_thr, def_fpir, def_dir;
	/* other targets (operating points), same calibration */
	double op_fpir[N_OPS], op_dir[N_OPS], op_thr[N_OPS];
	/* predicted vs measured FPIR: [target][size] */
	double pred[2][N_SIZES], meas[2][N_SIZES], thr_n[2][N_SIZES];
	double dir_n[2][N_SIZES]; /* DIR of the mated probes of the subset there */
	/* margin rule: DIR at measured FPIR 1e-2 / 1e-3 */
	double mdir[N_MARGINS][2];
	size_t undetected;
	int have_def;
	hkb_osfit os; /* the open-set fit on the train split (figures only) */
} trial_res;

static int cmp_desc_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y) - (x > y);
}

/* Half (0 or 1) a person falls in when a split is halved by people. */
static int person_half(uint32_t label)
{
	return (int)((label * 2654435761u) >> 13) & 1;
}

static int in_set(const hkb_blufr *b, int t, size_t i, const char *roles, int half)
{
	return b->role[t][i] && strchr(roles, b->role[t][i]) &&
	       (half < 0 || person_half(b->label[i]) == half);
}

/* Rows of b whose role in trial t is one of roles and, when half >= 0,
 * whose person is in that half. */
static int build_set_half(const hkb_blufr *b, int t, const char *roles, int half, hkb_set *s)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += in_set(b, t, i, roles, half);
	if (hkb_set_alloc(s, n))
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++)
		if (in_set(b, t, i, roles, half)) {
			memcpy(s->x + k * D, b->emb + i * D, D * sizeof(float));
			s->label[k] = b->label[i];
			s->ok[k] = b->ok[i];
			k++;
		}
	return 0;
}

static int build_set(const hkb_blufr *b, int t, const char *roles, hkb_set *s)
{
	return build_set_half(b, t, roles, -1, s);
}

static size_t rank_k(double share, size_t n)
{
	size_t k = (size_t)llround(share * (double)n);
	return k < 1 ? 1 : k > n ? n : k;
}

/* Fit the calibration on a train set: the 1:1 table from its impostor
 * pairs, the open-set table from it as non-mated probes (openset_fit.h).
 * *os (may be NULL) gets the open-set fit's figures. */
static int fit_calib(const hkb_set *s, int threads, const uint8_t sha[32], const char *precision,
                     const char *note, hk_calib **cal, char **text_out, hkb_osfit *os_out)
{
	hkb_pairs p;
	hkb_osfit os;
	char *text = NULL;
	int rc = hkb_osfit_run(s, HKB_OS_MIN_IMAGES, &os);
	if (rc)
		fprintf(stderr, "open-set fit failed (%s)\n", note);
	if (!rc)
		rc = hkb_score_pairs(s, threads, 0, 0, &p);
	if (!rc) {
		rc = hkb_calib_fit(p.ihist, p.nimp, p.ngen, sha, precision, note, &os, &text);
		hkb_pairs_free(&p);
	}
	if (!rc && hk_calib_parse(text, strlen(text), sha, cal)) {
		fprintf(stderr, "calibration fit does not parse: %s\n", hk_last_error());
		rc = -1;
	}
	if (!rc && text_out)
		*text_out = text;
	else
		free(text);
	if (os_out) {
		*os_out = os;
		os_out->qcum = os_out->gcum = NULL;
	}
	hkb_osfit_free(&os);
	return rc;
}

/* Probe-side open-set data of one trial. */
typedef struct probe_info {
	float best, second;
	int correct;  /* best gallery entry is the probe's person */
	int genuine;  /* the probe's person is enrolled */
	int rank;     /* rank of the own gallery entry (genuine), 0 if none */
	int own;      /* own gallery row (genuine), -1 if none */
} probe_info;

/* Threshold at measured FPIR p: the impostor value at rank round(p*n) of
 * the descending list v (impostors failing a rule are -inf). */
static double thr_at(const double *v_desc, size_t n, double p)
{
	return v_desc[rank_k(p, n) - 1];
}

/* Verification over all unordered test pairs: VR at FAR 1e-3 / 1e-4 and
 * the ROC into r. */
static int verification(const hkb_set *test, int threads, trial_res *r)
{
	hkb_pairs p;
	if (hkb_score_pairs(test, threads, 0, 0, &p))
		return -1;
	r->nimp_pairs = p.nimp;
	r->ngen_pairs = p.ngen;
	float t3, t4;
	if (hkb_impostor_rank(test, threads, &p, rank_k(1e-3, p.nimp), &t3) ||
	    hkb_impostor_rank(test, threads, &p, rank_k(1e-4, p.nimp), &t4)) {
		hkb_pairs_free(&p);
		return -1;
	}
	size_t g3 = 0, g4 = 0;
	for (size_t i = 0; i < p.ngen; i++) {
		g3 += p.gen[i] >= t3;
		g4 += p.gen[i] >= t4;
	}
	r->thr3 = t3;
	r->thr4 = t4;
	r->vr3 = (double)g3 / p.ngen;
	r->vr4 = (double)g4 / p.ngen;
	r->pairs = p.pairs;
	r->pair_s = p.seconds;
	/* ROC on the histogram grid (bin-edge thresholds; for the plot). */
	{
		uint64_t ci = 0, cg = 0;
		int k = 0;
		for (uint32_t bb = HKB_NBINS; bb-- > 0 && k < ROC_PTS;) {
			ci += p.ihist[bb];
			cg += p.ghist[bb];
			while (k < ROC_PTS && (double)ci / p.nimp >= pow(10.0, -6.0 + 0.25 * k)) {
				r->roc[k++] = (double)cg / p.ngen;
			}
		}
	}
	hkb_pairs_free(&p);
	return 0;
}

/* One trial; open_only skips the verification pairs (VR stays 0). */
static int run_trial(const hkb_blufr *b, int t, int threads, int open_only, trial_res *r)
{
	memset(r, 0, sizeof *r);
	hkb_set test, gal, train;
	if (build_set(b, t, "gp", &test) || build_set(b, t, "g", &gal) ||
	    build_set(b, t, "r", &train))
		return -1;
	r->ntest = test.n;
	r->ngal = gal.n;
	for (size_t i = 0; i < test.n; i++)
		r->undetected += !test.ok[i];

	if (!open_only && verification(&test, threads, r))
		return -1;

	/* ---- open set: probes against the gallery ---- */
	int *gal_of_label = NULL; /* label -> gallery row + 1 */
	uint32_t maxl = 0;
	for (size_t i = 0; i < b->n; i++)
		maxl = b->label[i] > maxl ? b->label[i] : maxl;
	gal_of_label = calloc(maxl + 1, sizeof *gal_of_label);
	size_t np = test.n - gal.n;
	probe_info *pi = calloc(np ? np : 1, sizeof *pi);
	float *sc = malloc(gal.n * sizeof *sc);
	float *allsc = malloc(np * gal.n * sizeof *allsc); /* for subsets */
	if (!gal_of_label || !pi || !sc || !allsc)
		return -1;
	for (size_t g = 0; g < gal.n; g++)
		gal_of_label[gal.label[g]] = (int)g + 1;
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->role[t][i] != 'p')
			continue;
		hkb_scan(&gal, b->emb + i * D, b->ok[i], 0, gal.n, sc);
		memcpy(allsc + k * gal.n, sc, gal.n * sizeof *sc);
		probe_info *q = &pi[k++];
		int own = gal_of_label[b->label[i]] - 1;
		q->genuine = own >= 0;
		q->own = own;
		size_t bi = 0;
		q->best = q->second = -INFINITY;
		for (size_t g = 0; g < gal.n; g++) {
			if (sc[g] > q->best) {
				q->second = q->best;
				q->best = sc[g];
				bi = g;
			} else if (sc[g] > q->second) {
				q->second = sc[g];
			}
		}
		q->correct = q->genuine && (int)bi == own;
		if (q->genuine) {
			int rk = 1;
			for (size_t g = 0; g < gal.n; g++)
				rk += sc[g] > sc[own] || (sc[g] == sc[own] && (int)g < own);
			q->rank = rk;
		}
	}
	r->nprobe = np;
	double *imax = malloc(np * sizeof *imax);
	size_t ni = 0, ng = 0;
	for (size_t i = 0; i < np; i++) {
		if (pi[i].genuine)
			ng++;
		else
			imax[ni++] = pi[i].best;
	}
	r->ngen_probe = ng;
	r->nimp_probe = ni;
	qsort(imax, ni, sizeof *imax, cmp_desc_d);
	double td2 = thr_at(imax, ni, 1e-2), td3 = thr_at(imax, ni, 1e-3);
	size_t d2 = 0, d3 = 0;
	for (size_t i = 0; i < np; i++) {
		if (!pi[i].genuine)
			continue;
		d2 += pi[i].correct && pi[i].best >= td2;
		d3 += pi[i].correct && pi[i].best >= td3;
		for (int c = 0; c < CMC_R; c++)
			r->cmc[c] += pi[i].rank >= 1 && pi[i].rank <= c + 1;
	}
	for (int c = 0; c < CMC_R; c++)
		r->cmc[c] /= ng;
	r->dir2 = (double)d2 / ng;
	r->dir3 = (double)d3 / ng;
	r->thr_dir2 = td2;
	r->thr_dir3 = td3;
	for (int kk = 0; kk < OROC_PTS; kk++) {
		double th = thr_at(imax, ni, pow(10.0, -4.0 + 0.25 * kk));
		size_t d = 0;
		for (size_t i = 0; i < np; i++)
			d += pi[i].genuine && pi[i].correct && pi[i].best >= th;
		r->oroc[kk] = (double)d / ng;
	}

	/* ---- margin rule: accept iff best >= t and best - second >= m ---- */
	for (int m = 0; m < N_MARGINS; m++) {
		double *v = malloc(ni * sizeof *v);
		size_t nv = 0;
		for (size_t i = 0; i < np; i++)
			if (!pi[i].genuine)
				v[nv++] = pi[i].best - pi[i].second >= margins[m] ? pi[i].best : -INFINITY;
		qsort(v, nv, sizeof *v, cmp_desc_d);
		for (int f = 0; f < 2; f++) {
			double th = thr_at(v, nv, pred_fpir[f]);
			if (th == -INFINITY) /* fewer impostors pass the margin than the rate: all */
				th = -2.0;
			size_t d = 0;
			for (size_t i = 0; i < np; i++)
				d += pi[i].genuine && pi[i].correct && pi[i].best >= th &&
				     pi[i].best - pi[i].second >= margins[m];
			r->mdir[m][f] = (double)d / ng;
		}
		free(v);
	}

	/* ---- calibration fitted on this trial's train split ---- */
	hk_calib *cal = NULL;
	char note[128];
	snprintf(note, sizeof note, "BLUFR trial %d train split", t);
	if (train.n >= 100 && !fit_calib(&train, threads, b->model_sha, b->precision, note, &cal, NULL, &r->os)) {
		float thr;
		if (!hk_calib_score_at_fpir(cal, HK_DEFAULT_FPIR, gal.n, &thr)) {
			size_t fi = 0, dd = 0;
			for (size_t i = 0; i < np; i++) {
				fi += !pi[i].genuine && pi[i].best >= thr;
				dd += pi[i].genuine && pi[i].correct && pi[i].best >= thr;
			}
			r->def_thr = thr;
			r->def_fpir = (double)fi / ni;
			r->def_dir = (double)dd / ng;
			r->have_def = 1;
		}
		for (int o = 0; o < N_OPS; o++) {
			float th;
			if (hk_calib_score_at_fpir(cal, op_targets[o], gal.n, &th))
				continue;
			size_t fi = 0, dd = 0;
			for (size_t i = 0; i < np; i++) {
				fi += !pi[i].genuine && pi[i].best >= th;
				dd += pi[i].genuine && pi[i].correct && pi[i].best >= th;
			}
			r->op_thr[o] = th;
			r->op_fpir[o] = (double)fi / ni;
			r->op_dir[o] = (double)dd / ng;
		}
		/* Predicted vs measured FPIR at nested random gallery subsets. */
		size_t *perm = malloc(gal.n * sizeof *perm);
		hkb_rng rng;
		hkb_rng_seed(&rng, 1000 + (uint64_t)t);
		for (size_t g = 0; g < gal.n; g++)
			perm[g] = g;
		for (size_t g = gal.n; g-- > 1;) {
			size_t j = hkb_rng_next(&rng) % (g + 1), tmp = perm[g];
			perm[g] = perm[j];
			perm[j] = tmp;
		}
		size_t *at = malloc(gal.n * sizeof *at); /* gallery row -> place in perm */
		for (size_t g = 0; g < gal.n; g++)
			at[perm[g]] = g;
		for (int f = 0; f < 2; f++)
			for (int z = 0; z < N_SIZES; z++) {
				uint64_t N = gsizes[z] < gal.n ? gsizes[z] : gal.n;
				float thz;
				if (hk_calib_score_at_fpir(cal, pred_fpir[f], N, &thz))
					continue;
				size_t fi = 0, gm = 0, gh = 0;
				for (size_t i = 0; i < np; i++) {
					if (pi[i].genuine && at[pi[i].own] >= N)
						continue; /* its person is not in this gallery */
					float mx = -INFINITY;
					size_t bg = 0;
					for (size_t g = 0; g < N; g++)
						if (allsc[i * gal.n + perm[g]] > mx) {
							mx = allsc[i * gal.n + perm[g]];
							bg = perm[g];
						}
					if (pi[i].genuine) {
						gm++;
						gh += (int)bg == pi[i].own && mx >= thz;
					} else {
						fi += mx >= thz;
					}
				}
				r->dir_n[f][z] = gm ? (double)gh / gm : NAN;
				r->pred[f][z] = pred_fpir[f];
				r->meas[f][z] = (double)fi / ni;
				r->thr_n[f][z] = thz;
			}
		free(perm);
		free(at);
	}
	hk_calib_destroy(cal);
	free(imax);
	free(gal_of_label);
	free(pi);
	free(sc);
	free(allsc);
	hkb_set_free(&test);
	hkb_set_free(&gal);
	hkb_set_free(&train);
	return 0;
}

/* The shipped calibration on trial 1's test probes (it was fitted on trial
 * 1's train split): FPIR and DIR at the default target for N = 1000. */
static int shipped_check(const hkb_blufr *b, const hk_calib *cal, double *thr_out,
                         double *fpir, double *dir, double meas[2][N_SIZES])
{
	hkb_set gal;
	if (build_set(b, 1, "g", &gal))
		return -1;
	float thr;
	if (hk_calib_score_at_fpir(cal, HK_DEFAULT_FPIR, gal.n, &thr)) {
		hkb_set_free(&gal);
		return -1;
	}
	*thr_out = thr;
	float *sc = malloc(gal.n * sizeof *sc);
	size_t fi = 0, ni = 0, dd = 0, ng = 0;
	size_t fz[2][N_SIZES] = {{0}};
	float tz[2][N_SIZES];
	for (int f = 0; f < 2; f++)
		for (int z = 0; z < N_SIZES; z++)
			if (hk_calib_score_at_fpir(cal, pred_fpir[f], gsizes[z], &tz[f][z]))
				tz[f][z] = INFINITY;
	for (size_t i = 0; i < b->n; i++) {
		if (b->role[1][i] != 'p')
			continue;
		hkb_scan(&gal, b->emb + i * D, b->ok[i], 0, gal.n, sc);
		size_t bi = 0;
		int own = -1;
		for (size_t g = 0; g < gal.n; g++) {
			if (sc[g] > sc[bi])
				bi = g;
			if (gal.label[g] == b->label[i])
				own = (int)g;
		}
		if (own >= 0) {
			ng++;
			dd += (int)bi == own && sc[bi] >= thr;
		} else {
			ni++;
			fi += sc[bi] >= thr;
			/* prefixes of the gallery as subsets (gallery order is the
			 * protocol's, unrelated to the scores) */
			for (int z = 0; z < N_SIZES; z++) {
				float mx = -INFINITY;
				for (size_t g = 0; g < gsizes[z] && g < gal.n; g++)
					mx = fmaxf(mx, sc[g]);
				for (int f = 0; f < 2; f++)
					fz[f][z] += mx >= tz[f][z];
			}
		}
	}
	*fpir = (double)fi / ni;
	*dir = (double)dd / ng;
	for (int f = 0; f < 2; f++)
		for (int z = 0; z < N_SIZES; z++)
			meas[f][z] = (double)fz[f][z] / ni;
	free(sc);
	hkb_set_free(&gal);
	return 0;
}

static void plots(const char *prefix, const trial_res *r, int gp)
{
	char fn[4200];
	snprintf(fn, sizeof fn, "%s_curves.tsv", prefix);
	FILE *f = fopen(fn, "w");
	if (!f)
		return;
	fprintf(f, "# block 0: FAR VR_mean (verification ROC)\n");
	for (int k = 0; k < ROC_PTS; k++) {
		double m = 0;
		for (int t = 0; t < NT; t++)
			m += r[t].roc[k] / NT;
		fprintf(f, "%.6g\t%.6f\n", pow(10.0, -6.0 + 0.25 * k), m);
	}
	fprintf(f, "\n\n# block 1: FPIR DIR_mean (open-set ROC, N = 1000)\n");
	for (int k = 0; k < OROC_PTS; k++) {
		double m = 0;
		for (int t = 0; t < NT; t++)
			m += r[t].oroc[k] / NT;
		fprintf(f, "%.6g\t%.6f\n", pow(10.0, -4.0 + 0.25 * k), m);
	}
	fprintf(f, "\n\n# block 2: rank CMC_mean (closed set, genuine probes)\n");
	for (int c = 0; c < CMC_R; c++) {
		double m = 0;
		for (int t = 0; t < NT; t++)
			m += r[t].cmc[c] / NT;
		fprintf(f, "%d\t%.6f\n", c + 1, m);
	}
	fclose(f);
	if (!gp)
		return;
	char cmd[20000];
	snprintf(cmd, sizeof cmd,
	         "gnuplot -e \"set terminal svg size 1400,450; set output '%s.svg';"
	         " set multiplot layout 1,3 title 'herken on LFW BLUFR (mean of 10 trials)';"
	         " set grid; set key bottom right;"
	         " set logscale x; set xlabel 'FAR'; set ylabel 'VR'; set yrange [0.8:1.001];"
	         " plot '%s' index 0 using 1:2 with linespoints title 'verification ROC';"
	         " set xlabel 'FPIR (N = 1000)'; set ylabel 'DIR (rank 1)'; set yrange [0.5:1.001];"
	         " plot '%s' index 1 using 1:2 with linespoints title 'open-set ROC';"
	         " unset logscale x; set xlabel 'rank'; set ylabel 'identification rate';"
	         " set yrange [0.9:1.001]; set xrange [1:10];"
	         " plot '%s' index 2 using 1:2 with linespoints title 'CMC';"
	         " unset multiplot\" 2>/dev/null",
	         prefix, fn, fn, fn);
	if (system(cmd) != 0)
		fprintf(stderr, "blufr: gnuplot failed; the curves are in %s\n", fn);
}

#define MS(field, scale)                                                                 \
	do {                                                                                 \
		double v_[NT];                                                                   \
		for (int t_ = 0; t_ < NT; t_++)                                                  \
			v_[t_] = (scale) * r[t_].field;                                              \
		hkb_mean_std(v_, NT, &mean, &sd);                                                \
	} while (0)

static int run_trials(const hkb_blufr *b, int ntr, int threads, int open_only, trial_res *r)
{
	memset(r, 0, NT * sizeof *r);
	double t0 = hkb_now();
	for (int t = 1; t <= ntr; t++) {
		if (run_trial(b, t, threads, open_only, &r[t - 1])) {
			fprintf(stderr, "blufr: trial %d failed\n", t);
			return -1;
		}
		fprintf(stderr,
		        "blufr: %s trial %d: VR@1e-3 %.4f DIR@1e-2 %.4f; open-set fit: look-alike rate %.3g "
		        "(bound; point %.3g, %.1f events >= %.3f); default: threshold %.4f FPIR %.5f DIR %.4f (%.1f s)\n",
		        b->precision, t, r[t - 1].vr3, r[t - 1].dir2, r[t - 1].os.pi, r[t - 1].os.pi_point,
		        r[t - 1].os.events, r[t - 1].os.u,
		        r[t - 1].def_thr, r[t - 1].def_fpir, r[t - 1].def_dir, hkb_now() - t0);
	}
	for (int t = ntr; t < NT; t++) /* --trials K: repeat for the statistics */
		r[t] = r[t % ntr];
	return 0;
}

/* The library's default 1:N operating point at one precision. */
typedef struct prec_point {
	uint32_t prec;
	double fpir_m, fpir_s, dir_m, dir_s, thr_m; /* per-trial calibrations, % */
	double meas3[N_SIZES];                      /* measured FPIR at 1e-3 by N */
	int have_shipped;                           /* the shipped table, trial 1 */
	double s_thr, s_fpir, s_dir;
} prec_point;

static void point_of(const hkb_blufr *b, const trial_res *r, prec_point *pp)
{
	double mean, sd;
	memset(pp, 0, sizeof *pp);
	pp->prec = b->prec;
	MS(def_fpir, 100);
	pp->fpir_m = mean, pp->fpir_s = sd;
	MS(def_dir, 100);
	pp->dir_m = mean, pp->dir_s = sd;
	MS(def_thr, 1);
	pp->thr_m = mean;
	for (int z = 0; z < N_SIZES; z++) {
		MS(meas[1][z], 1);
		pp->meas3[z] = mean;
	}
	hk_calib *cal = NULL;
	double meas[2][N_SIZES];
	pp->have_shipped = !hkb_blufr_calib(b, &cal) &&
	                   !shipped_check(b, cal, &pp->s_thr, &pp->s_fpir, &pp->s_dir, meas);
	if (!cal)
		fprintf(stderr, "blufr: %s\n", hk_last_error());
	hk_calib_destroy(cal);
}

/* The default operating point from the embeddings at precision prec (the
 * open set only: no verification pairs). */
static int other_precision(const hkb_blufr_opts *o, uint32_t prec, int ntr, int threads,
                           prec_point *pp)
{
	hkb_blufr_opts o2 = *o;
	o2.precision = prec;
	o2.cache = NULL; /* --cache names the run's own precision's file */
	hkb_blufr b;
	trial_res r[NT];
	if (hkb_blufr_load(&o2, "blufr", &b))
		return -1;
	int rc = run_trials(&b, ntr, threads, 1, r);
	if (!rc)
		point_of(&b, r, pp);
	hkb_blufr_free(&b);
	return rc;
}

static const char blufr_usage[] =
    "usage: herken-bench blufr [--json] [--out PREFIX] [--trials K] [options]\n"
    "LFW BLUFR (10 trials): VR at FAR 0.1 %% over all test pairs, open-set DIR at\n"
    "FAR 1 %% (rank 1), the library's default 1:N operating point, calibration-\n"
    "predicted against measured FPIR, the margin rule. Plots PREFIX.svg (gnuplot).\n"
    "  --trials K    only the first K trials (quick look; the protocol is 10)\n";

int hk__bench_blufr(int argc, char **argv)
{
	hkb_blufr_opts o = {.centre = 1};
	int json = 0, ntr = NT;
	const char *prefix = "blufr";
	for (int i = 1; i < argc; i++) {
		int a = hkb_blufr_arg(argc, argv, &i, &o);
		if (a == 1)
			continue;
		long v;
		if (a == 0 && !strcmp(argv[i], "--json")) {
			json = 1;
		} else if (a == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			printf(blufr_usage);
			fputs(hkb_blufr_usage, stdout);
			return 0;
		} else if (a == 0 && !strcmp(argv[i], "--out") && i + 1 < argc) {
			prefix = argv[++i];
		} else if (a == 0 && !strcmp(argv[i], "--trials") && i + 1 < argc &&
		           hkb_parse_list(argv[i + 1], &v, 1) == 1 && v >= 1 && v <= NT) {
			ntr = (int)v;
			i++;
		} else {
			fprintf(stderr, "blufr: bad argument '%s'\n", argv[i]);
			fprintf(stderr, blufr_usage);
			return 2;
		}
	}
	double wall0 = hkb_now();
	hkb_blufr b;
	int rc = hkb_blufr_load(&o, "blufr", &b);
	if (rc)
		return rc;
	int threads = o.threads ? (int)o.threads : 2;
	hk_calib *shipped = NULL;
	hk_status cst = hkb_blufr_calib(&b, &shipped);
	if (cst)
		fprintf(stderr, "blufr: %s\n", hk_last_error());
	trial_res r[NT];
	double t_trials = hkb_now();
	if (run_trials(&b, ntr, threads, 0, r)) {
		hk_calib_destroy(shipped);
		hkb_blufr_free(&b);
		return 3;
	}
	double trials_s = hkb_now() - t_trials;
	double s_thr = NAN, s_fpir = NAN, s_dir = NAN, s_meas[2][N_SIZES];
	int have_shipped = shipped && !shipped_check(&b, shipped, &s_thr, &s_fpir, &s_dir, s_meas);
	/* The default operating point at this run's precision, fp32, the
	 * library's default and AUTO's choice on this CPU (each from its own
	 * embeddings and calibrations). */
	prec_point pts[4];
	int npts = 1;
	point_of(&b, r, pts);
	uint32_t lib_prec, auto_prec;
	{
		hk_engine_params ep;
		hk_engine_default_params(&ep);
		lib_prec = hkb_resolve_precision(o.model_dir, ep.precision);
		auto_prec = hkb_resolve_precision(o.model_dir, HK_PREC_AUTO);
		const uint32_t want[3] = {HK_PREC_FP32, lib_prec, auto_prec};
		for (int k = 0; k < 3; k++) {
			int seen = 0;
			for (int j = 0; j < npts; j++)
				seen |= pts[j].prec == want[k];
			if (!seen && !other_precision(&o, want[k], ntr, threads, &pts[npts]))
				npts++;
		}
	}
	double wall = hkb_now() - wall0;
	uint64_t pairs = 0;
	double pair_s = 0;
	size_t undet = 0;
	for (int t = 0; t < ntr; t++) {
		pairs += r[t].pairs;
		pair_s += r[t].pair_s;
	}
	undet = b.undetected;
	int gp = system("command -v gnuplot >/dev/null 2>&1") == 0;
	plots(prefix, r, gp);

	double mean, sd;
	double vr3m, vr3s, d2m, d2s, vr4m, vr4s, d3m, d3s, fm, fs, dm, ds;
	MS(vr3, 100);
	vr3m = mean, vr3s = sd;
	MS(vr4, 100);
	vr4m = mean, vr4s = sd;
	MS(dir2, 100);
	d2m = mean, d2s = sd;
	MS(dir3, 100);
	d3m = mean, d3s = sd;
	MS(def_fpir, 100);
	fm = mean, fs = sd;
	MS(def_dir, 100);
	dm = mean, ds = sd;
	double cmc[CMC_R], pred_m[2][N_SIZES], meas_m[2][N_SIZES], mdir[N_MARGINS][2];
	double dirn_m[2][N_SIZES];
	for (int c = 0; c < CMC_R; c++) {
		MS(cmc[c], 100);
		cmc[c] = mean;
	}
	for (int f = 0; f < 2; f++)
		for (int z = 0; z < N_SIZES; z++) {
			MS(meas[f][z], 1);
			meas_m[f][z] = mean;
			MS(dir_n[f][z], 100);
			dirn_m[f][z] = mean;
			pred_m[f][z] = pred_fpir[f];
		}
	for (int m = 0; m < N_MARGINS; m++)
		for (int f = 0; f < 2; f++) {
			MS(mdir[m][f], 100);
			mdir[m][f] = mean;
		}
	double opf[N_OPS], opfs[N_OPS], opd[N_OPS], opds[N_OPS], opt[N_OPS], opts[N_OPS];
	for (int q = 0; q < N_OPS; q++) {
		MS(op_fpir[q], 100);
		opf[q] = mean, opfs[q] = sd;
		MS(op_dir[q], 100);
		opd[q] = mean, opds[q] = sd;
		MS(op_thr[q], 1);
		opt[q] = mean, opts[q] = sd;
	}
	char sha[17];
	hkb_hex(b.model_sha, 8, sha);
	if (json) {
		printf("{\"suite\":\"blufr\",\"protocol\":\"LFW BLUFR, %d trials\",\"trials\":%d,"
		       "\"vr_far_1e-3_mean\":%.3f,\"vr_far_1e-3_std\":%.3f,\"vr_far_1e-3_lower\":%.3f,"
		       "\"dir_far_1e-2_mean\":%.3f,\"dir_far_1e-2_std\":%.3f,\"dir_far_1e-2_lower\":%.3f,"
		       "\"vr_far_1e-4_mean\":%.3f,\"vr_far_1e-4_std\":%.3f,"
		       "\"dir_far_1e-3_mean\":%.3f,\"dir_far_1e-3_std\":%.3f,\"cmc\":[",
		       NT, ntr, vr3m, vr3s, vr3m - vr3s, d2m, d2s, d2m - d2s, vr4m, vr4s, d3m, d3s);
		for (int c = 0; c < CMC_R; c++)
			printf("%s%.3f", c ? "," : "", cmc[c]);
		printf("],\"default_fpir_target\":%g,\"default_fpir_n1000\":%.5f,"
		       "\"default_fpir_n1000_std\":%.5f,\"default_dir_n1000\":%.3f,"
		       "\"default_dir_n1000_std\":%.3f,\"default_calibration\":\"per trial, fitted on "
		       "that trial's train split\"",
		       HK_DEFAULT_FPIR, fm, fs, dm, ds);
		if (have_shipped)
			printf(",\"shipped_calibration_trial1\":{\"threshold\":%.4f,\"fpir_n1000\":%.5f,"
			       "\"dir_n1000\":%.3f}",
			       s_thr, 100 * s_fpir, 100 * s_dir);
		printf(",\"library_default_precision\":\"%s\",\"auto_precision\":\"%s\","
		       "\"default_by_precision\":[", hkb_precision_name(lib_prec),
		       hkb_precision_name(auto_prec));
		for (int k = 0; k < npts; k++) {
			const prec_point *q = &pts[k];
			printf("%s{\"precision\":\"%s\",\"default_fpir_n1000\":%.5f,"
			       "\"default_fpir_n1000_std\":%.5f,\"default_dir_n1000\":%.3f,"
			       "\"default_dir_n1000_std\":%.3f,\"threshold_mean\":%.4f,"
			       "\"fpir_1e-3_measured_by_n\":[", k ? "," : "", hkb_precision_name(q->prec),
			       q->fpir_m, q->fpir_s, q->dir_m, q->dir_s, q->thr_m);
			for (int z = 0; z < N_SIZES; z++)
				printf("%s{\"n\":%llu,\"measured\":%.5f,\"ratio\":%.2f}", z ? "," : "",
				       (unsigned long long)gsizes[z], q->meas3[z], q->meas3[z] / 1e-3);
			printf("]");
			if (q->have_shipped)
				printf(",\"shipped_calibration_trial1\":{\"threshold\":%.4f,\"fpir_n1000\":%.5f,"
				       "\"dir_n1000\":%.3f}", q->s_thr, 100 * q->s_fpir, 100 * q->s_dir);
			printf("}");
		}
		printf("]");
		printf(",\"open_set_fit\":{\"model\":\"q(t) = 10^(a + b t) + lookalike_rate * S_gen(t), "
		       "FPIR = 1 - (1 - q)^N, fitted per trial on its train split; lookalike_rate = "
		       "the one-sided upper bound of its point estimate\",\"confidence\":%g,"
		       "\"trials\":[", HKB_OS_CONF);
		for (int t = 0; t < ntr; t++)
			printf("%s{\"trial\":%d,\"lookalike_rate\":%.3g,\"lookalike_rate_point\":%.3g,"
			       "\"events\":%.1f,\"above\":%.4f,"
			       "\"default_threshold\":%.4f,\"default_fpir\":%.5f,\"default_dir\":%.4f}",
			       t ? "," : "", t + 1, r[t].os.pi, r[t].os.pi_point, r[t].os.events, r[t].os.u, r[t].def_thr,
			       r[t].def_fpir, r[t].def_dir);
		printf("]}");
		printf(",\"fpir_predicted_vs_measured\":[");
		for (int f = 0; f < 2; f++)
			for (int z = 0; z < N_SIZES; z++)
				printf("%s{\"n\":%llu,\"predicted\":%g,\"measured\":%.5f,\"ratio\":%.2f,\"dir\":%.2f}",
				       f + z ? "," : "", (unsigned long long)gsizes[z], pred_m[f][z],
				       meas_m[f][z], meas_m[f][z] / pred_m[f][z], dirn_m[f][z]);
		printf("],\"operating_points_n1000\":[");
		for (int q = 0; q < N_OPS; q++)
			printf("%s{\"fpir_target\":%g,\"threshold_mean\":%.4f,\"fpir_mean\":%.4f,"
			       "\"fpir_std\":%.4f,\"dir_mean\":%.3f,\"dir_std\":%.3f}",
			       q ? "," : "", op_targets[q], opt[q], opf[q], opfs[q], opd[q], opds[q]);
		printf("],\"margin_rule\":[");
		for (int m = 0; m < N_MARGINS; m++)
			printf("%s{\"margin\":%.2f,\"dir_fpir_1e-2\":%.3f,\"dir_fpir_1e-3\":%.3f}",
			       m ? "," : "", margins[m], mdir[m][0], mdir[m][1]);
		printf("],\"undetected\":%zu,\"undetected_scored_as\":-1,\"images\":%zu,"
		       "\"pairs\":%llu,\"pairs_s\":%.2f,\"pairs_per_s\":%.4g,\"trials_s\":%.2f,"
		       "\"embed_s\":%.1f,\"embeddings_from_cache\":%s,\"wall_s\":%.2f,"
		       "\"embedder_sha256\":\"%s...\",\"precision\":\"%s\",\"cpu\":\"%s\",\"isa\":\"%s\","
		       "\"threads\":%d,\"files\":\"%s.svg %s_curves.tsv\"}\n",
		       undet, b.n, (unsigned long long)pairs, pair_s, pairs / pair_s, trials_s,
		       b.embed_wall_s, b.from_cache ? "true" : "false", wall, sha, b.precision, hkb_cpu_name(),
		       hk_isa_name(hk_cpu_isa()), threads, prefix, prefix);
	} else {
		hkb_print_header("blufr", 0);
		printf("## LFW BLUFR (%d trials%s), embedder %s... in %s, subject = %s face\n\n", ntr,
		       ntr < NT ? ", repeated to 10 for the statistics: NOT the protocol" : "", sha, b.precision,
		       o.centre ? "centre" : "largest");
		printf("| metric | mean ± std | mean − std |\n|---|---|---|\n");
		printf("| VR @ FAR = 0.1 %% (all test pairs) | %.2f ± %.2f | %.2f |\n", vr3m, vr3s,
		       vr3m - vr3s);
		printf("| DIR @ FAR = 1 %%, rank 1 (N = 1,000) | %.2f ± %.2f | %.2f |\n", d2m, d2s,
		       d2m - d2s);
		printf("| VR @ FAR = 0.01 %% | %.2f ± %.2f | %.2f |\n", vr4m, vr4s, vr4m - vr4s);
		printf("| DIR @ FAR = 0.1 %%, rank 1 | %.2f ± %.2f | %.2f |\n", d3m, d3s, d3m - d3s);
		printf("\nCMC (closed set, genuine probes), ranks 1-10:");
		for (int c = 0; c < CMC_R; c++)
			printf(" %.2f", cmc[c]);
		printf("\n\n### The library's default 1:N operating point (FPIR target %g, N = 1,000)\n\n",
		       HK_DEFAULT_FPIR);
		printf("Calibration fitted per trial on that trial's train split (people disjoint "
		       "from its test set): measured FPIR %.3f %% ± %.3f, DIR %.2f %% ± %.2f.\n",
		       fm, fs, dm, ds);
		if (have_shipped)
			printf("Shipped calibration (fitted on trial 1's train split), trial 1 test: "
			       "threshold %.4f, FPIR %.3f %%, DIR %.2f %%.\n",
			       s_thr, 100 * s_fpir, 100 * s_dir);
		printf("\nBy precision (each from its own embeddings, per-trial calibrations and shipped "
		       "table; the library's default here is %s, AUTO picks %s):\n\n"
		       "| precision | threshold | measured FPIR (%%) | DIR (%%) | shipped table, trial 1: "
		       "threshold, FPIR, DIR |\n|---|---|---|---|---|\n",
		       hkb_precision_name(lib_prec), hkb_precision_name(auto_prec));
		for (int k = 0; k < npts; k++)
			printf("| %s | %.3f | %.3f ± %.3f | %.2f ± %.2f | %.4f, %.3f %%, %.2f %% |\n",
			       hkb_precision_name(pts[k].prec), pts[k].thr_m, pts[k].fpir_m, pts[k].fpir_s,
			       pts[k].dir_m, pts[k].dir_s, pts[k].s_thr, 100 * pts[k].s_fpir,
			       100 * pts[k].s_dir);
		printf("\nOther targets, N = 1,000 (same per-trial calibrations; FPIR and DIR in %%):\n\n"
		       "| FPIR target | threshold | measured FPIR | DIR |\n|---|---|---|---|\n");
		for (int q = 0; q < N_OPS; q++)
			printf("| %g | %.3f ± %.3f | %.3f ± %.3f | %.2f ± %.2f |\n", op_targets[q], opt[q],
			       opts[q], opf[q], opfs[q], opd[q], opds[q]);
		printf("\nOpen-set fit per trial (train split): look-alike rate per (probe, enrolled "
		       "person) as its one-sided %.0f %% upper bound (point estimate, train events it "
		       "rests on):", 100 * HKB_OS_CONF);
		for (int t = 0; t < ntr; t++)
			printf(" %d: %.2g (%.2g, %.1f);", t + 1, r[t].os.pi, r[t].os.pi_point,
			       r[t].os.events);
		printf("\n");
		printf("\n### Calibration-predicted against measured FPIR (mean of the trials)\n\n"
		       "| N | predicted | measured | measured / predicted | DIR there (%%) |\n"
		       "|---|---|---|---|---|\n");
		for (int f = 0; f < 2; f++)
			for (int z = 0; z < N_SIZES; z++)
				printf("| %llu | %.4f | %.4f | %.2f | %.2f |\n", (unsigned long long)gsizes[z],
				       pred_m[f][z], meas_m[f][z], meas_m[f][z] / pred_m[f][z], dirn_m[f][z]);
		if (have_shipped) {
			printf("\nShipped calibration on trial 1 (gallery prefixes):");
			for (int f = 0; f < 2; f++)
				for (int z = 0; z < N_SIZES; z++)
					printf(" N=%llu@%g: %.4f;", (unsigned long long)gsizes[z], pred_fpir[f],
					       s_meas[f][z]);
			printf("\n");
		}
		printf("\n### Ambiguity margin rule (accept iff best ≥ t and best − second ≥ m; t set "
		       "for the measured FPIR)\n\n| m | DIR @ FPIR 1 %% | DIR @ FPIR 0.1 %% |\n|---|---|---|\n");
		for (int m = 0; m < N_MARGINS; m++)
			printf("| %.2f | %.2f | %.2f |\n", margins[m], mdir[m][0], mdir[m][1]);
		printf("\nimages %zu, undetected %zu (scored -1); %llu pairs scored in %.1f s "
		       "(%.3g pairs/s, %d threads, %s kernel); trials %.1f s; wall %.1f s%s\n",
		       b.n, undet, (unsigned long long)pairs, pair_s, pairs / pair_s, threads,
		       hk_isa_name(hk_cpu_isa()), trials_s, wall,
		       b.from_cache ? " (embeddings from the cache)" : "");
		printf("plots: %s.svg, data %s_curves.tsv\n", prefix, prefix);
	}
	hk_calib_destroy(shipped);
	hkb_blufr_free(&b);
	return 0;
}

static const char calibrate_usage[] =
    "usage: herken-bench calibrate [--trial T] [--out FILE] [options]\n"
    "Fit the score -> FMR calibration of the embedder on the impostor pairs of\n"
    "BLUFR trial T's TRAIN split (default 1) and write it (default stdout).\n";

int hk__bench_calibrate(int argc, char **argv)
{
	hkb_blufr_opts o = {.centre = 1};
	long trial = 1;
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		int a = hkb_blufr_arg(argc, argv, &i, &o);
		if (a == 1)
			continue;
		if (a == 0 && !strcmp(argv[i], "--trial") && i + 1 < argc &&
		    hkb_parse_list(argv[i + 1], &trial, 1) == 1 && trial >= 1 && trial <= NT) {
			i++;
		} else if (a == 0 && !strcmp(argv[i], "--out") && i + 1 < argc) {
			out = argv[++i];
		} else {
			fprintf(stderr, "calibrate: bad argument '%s'\n%s%s", argv[i], calibrate_usage,
			        hkb_blufr_usage);
			return 2;
		}
	}
	hkb_blufr b;
	int rc = hkb_blufr_load(&o, "calibrate", &b);
	if (rc)
		return rc;
	hkb_set train;
	hk_calib *cal = NULL;
	char *text = NULL, note[200];
	size_t people = 0;
	if (build_set(&b, (int)trial, "r", &train)) {
		hkb_blufr_free(&b);
		return 3;
	}
	{
		uint8_t *seen = calloc(6000, 1);
		for (size_t i = 0; seen && i < train.n; i++)
			if (train.label[i] < 6000 && !seen[train.label[i]]++)
				people++;
		free(seen);
	}
	snprintf(note, sizeof note,
	         "LFW BLUFR trial %ld train split (%zu images, %zu people; disjoint from trial "
	         "%ld's test people), subject = %s face", trial, train.n, people, trial,
	         o.centre ? "centre" : "largest");
	rc = fit_calib(&train, o.threads ? (int)o.threads : 2, b.model_sha, b.precision, note, &cal,
	               &text, NULL);
	if (rc) {
		fprintf(stderr, "calibrate: the fit failed\n");
	} else {
		FILE *f = out ? fopen(out, "w") : stdout;
		if (!f || fputs(text, f) < 0 || (out && fclose(f))) {
			fprintf(stderr, "calibrate: cannot write %s\n", out ? out : "stdout");
			rc = 3;
		} else if (out) {
			fprintf(stderr, "calibrate: wrote %s\n", out);
		}
	}
	free(text);
	hk_calib_destroy(cal);
	hkb_set_free(&train);
	hkb_blufr_free(&b);
	return rc ? 3 : 0;
}

/* ---- herken-bench calib-check: the open-set tail on train data only ---- */

#define CK_Q 4
#define CK_C 5
static const double ck_q[CK_Q] = {1e-5, 4e-6, 2e-6, 1e-6};
static const double ck_conf[CK_C] = {0.0, 0.5, 0.8, HKB_OS_CONF, 0.95};

/* The threshold a fit gives for per-comparison rate q: the lowest score
 * from which on its q(t) stays <= q (scanned down from 1 in 1/8192). */
static double ck_threshold(const hkb_osfit *f, double q)
{
	double t = 1.0;
	for (int i = 1; i <= 8192 * 2; i++) {
		double s = 1.0 - i / 8192.0;
		if (hkb_osfit_q(f, s) > q)
			break;
		t = s;
	}
	return t;
}

/* ---- calib-check --tnorm: gallery-cohort score normalisation (T-norm),
 * judged on train halves only ----
 *
 * Per trial and train half: the gallery is each person's first photo
 * (N = the half's people); every other photo of an enrolled person is a
 * mated search; every photo of the half is a non-mated search against the
 * gallery without its own person. A search's score is its best score
 * (raw) or the best normalised by the other scores of the same search,
 * (best - mean) / std over the cohort of the K next-highest scores (K = 0:
 * raw; -1: all the others). Within a search the normalisation keeps the
 * order, so rank 1 is the same: only who passes the threshold changes.
 * DIR = mate first and its value >= the threshold at measured FPIR. */
#define TN_K 5
static const int tn_k[TN_K] = {0, 10, 50, 200, -1};

typedef struct tn_search {
	float v[TN_K];
	int mated, first;
} tn_search;

static int cmp_desc_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x < y) - (x > y);
}

/* sc[n] (sorted descending in place) -> v[TN_K]. */
static void tn_values(float *sc, size_t n, float *v)
{
	qsort(sc, n, sizeof *sc, cmp_desc_f);
	for (int k = 0; k < TN_K; k++) {
		size_t m = tn_k[k] < 0 ? n - 1 : (size_t)tn_k[k] < n - 1 ? (size_t)tn_k[k] : n - 1;
		if (m < 2) {
			v[k] = sc[0];
			continue;
		}
		double s1 = 0, s2 = 0;
		for (size_t i = 1; i <= m; i++) {
			s1 += sc[i];
			s2 += (double)sc[i] * sc[i];
		}
		double mu = s1 / m, var = s2 / m - mu * mu;
		v[k] = (float)((sc[0] - mu) / sqrt(var > 1e-12 ? var : 1e-12));
	}
}

/* The searches of one train half into *out (malloc'ed), count in *n. */
static int tn_half(const hkb_set *h, tn_search **out, size_t *n)
{
	uint32_t maxl = 0;
	for (size_t i = 0; i < h->n; i++)
		maxl = h->label[i] > maxl ? h->label[i] : maxl;
	long *grow = malloc((maxl + 1) * sizeof *grow); /* label -> gallery row */
	hkb_set gal;
	if (!grow || hkb_set_alloc(&gal, h->n)) {
		free(grow);
		return -1;
	}
	for (uint32_t l = 0; l <= maxl; l++)
		grow[l] = -1;
	size_t ng = 0;
	uint8_t *enrolled = calloc(h->n, 1);
	for (size_t i = 0; i < h->n; i++)
		if (grow[h->label[i]] < 0) {
			grow[h->label[i]] = (long)ng;
			memcpy(gal.x + ng * D, h->x + i * D, D * sizeof(float));
			gal.label[ng] = h->label[i];
			gal.ok[ng] = h->ok[i];
			enrolled[i] = 1;
			ng++;
		}
	gal.n = ng;
	tn_search *s = malloc(2 * h->n * sizeof *s);
	float *sc = malloc(ng * sizeof *sc), *co = malloc(ng * sizeof *co);
	size_t k = 0;
	for (size_t i = 0; s && sc && co && enrolled && i < h->n; i++) {
		hkb_scan(&gal, h->x + i * D, h->ok[i], 0, ng, sc);
		long own = grow[h->label[i]];
		/* non-mated: the gallery without the probe's person */
		size_t m = 0;
		for (size_t g = 0; g < ng; g++)
			if ((long)g != own)
				co[m++] = sc[g];
		tn_values(co, m, s[k].v);
		s[k].mated = 0;
		s[k++].first = 0;
		if (enrolled[i])
			continue;
		/* mated: the whole gallery, its mate enrolled from another photo */
		int first = 1;
		for (size_t g = 0; g < ng; g++)
			first &= (long)g == own || sc[g] < sc[own];
		memcpy(co, sc, ng * sizeof *co);
		tn_values(co, ng, s[k].v);
		s[k].mated = 1;
		s[k++].first = first;
	}
	int rc = s && sc && co && enrolled ? 0 : -1;
	free(sc);
	free(co);
	free(enrolled);
	free(grow);
	hkb_set_free(&gal);
	if (rc) {
		free(s);
		return -1;
	}
	*out = s;
	*n = k;
	return 0;
}

/* DIR of method k at measured FPIR p over searches s[n] (the threshold is
 * the non-mated value at rank round(p * non-mated)); *thr gets it. */
static double tn_dir(const tn_search *s, size_t n, int k, double p, double *thr)
{
	double *v = malloc((n ? n : 1) * sizeof *v);
	size_t nn = 0, nm = 0, hit = 0;
	for (size_t i = 0; v && i < n; i++)
		if (!s[i].mated)
			v[nn++] = s[i].v[k];
	if (!v || !nn) {
		free(v);
		return NAN;
	}
	qsort(v, nn, sizeof *v, cmp_desc_d);
	double t = thr_at(v, nn, p);
	free(v);
	for (size_t i = 0; i < n; i++)
		if (s[i].mated) {
			nm++;
			hit += s[i].first && s[i].v[k] >= t;
		}
	if (thr)
		*thr = t;
	return nm ? (double)hit / nm : NAN;
}

static int tnorm_check(const hkb_blufr *b)
{
	tn_search *all[2] = {NULL, NULL}, *tr[NT][2];
	size_t nall[2] = {0, 0}, ntr[NT][2];
	for (int t = 1; t <= NT; t++)
		for (int h = 0; h < 2; h++) {
			hkb_set hs;
			tn_search *x = NULL;
			size_t nx = 0;
			if (build_set_half(b, t, "r", h, &hs) || tn_half(&hs, &x, &nx))
				return -1;
			hkb_set_free(&hs);
			tr[t - 1][h] = x;
			ntr[t - 1][h] = nx;
			tn_search *g = realloc(all[h], (nall[h] + nx) * sizeof *g);
			if (!g)
				return -1;
			memcpy(g + nall[h], x, nx * sizeof *x);
			all[h] = g;
			nall[h] += nx;
		}
	static const double fp[2] = {1e-2, 1e-3};
	printf("<!-- herken-bench calib-check --tnorm | herken %s | train splits only -->\n"
	       "## T-norm against the gallery itself, on train halves (no test split read)\n\n"
	       "Pooled over the 10 trials' halves; DIR (%%) at measured FPIR, gallery = one photo "
	       "per person of the half:\n\n| cohort K | half 0: DIR @ 1e-2 | @ 1e-3 | half 1: DIR @ "
	       "1e-2 | @ 1e-3 |\n|---|---|---|---|---|\n", hk_version());
	int best = 0;
	double best_d = -1;
	for (int k = 0; k < TN_K; k++) {
		double d[2][2];
		for (int h = 0; h < 2; h++)
			for (int f = 0; f < 2; f++)
				d[h][f] = 100 * tn_dir(all[h], nall[h], k, fp[f], NULL);
		if (tn_k[k] == 0)
			printf("| raw score |");
		else if (tn_k[k] < 0)
			printf("| all others |");
		else
			printf("| %d |", tn_k[k]);
		printf(" %.2f | %.2f | %.2f | %.2f |\n", d[0][0], d[0][1], d[1][0], d[1][1]);
		if (k > 0 && d[0][1] > best_d) {
			best_d = d[0][1];
			best = k;
		}
	}
	size_t nn = 0, nm = 0;
	for (size_t i = 0; i < nall[1]; i++)
		nn += !all[1][i].mated, nm += all[1][i].mated;
	printf("\nTuned on half 0 (best DIR @ 1e-3): K = %d. Measured on half 1 (%zu non-mated, "
	       "%zu mated searches pooled), per trial DIR @ FPIR 1e-2 (raw -> T-norm):",
	       tn_k[best], nn, nm);
	int gains = 0;
	for (int t = 0; t < NT; t++) {
		double r0 = 100 * tn_dir(tr[t][1], ntr[t][1], 0, 1e-2, NULL);
		double r1 = 100 * tn_dir(tr[t][1], ntr[t][1], best, 1e-2, NULL);
		gains += r1 > r0;
		printf(" %d: %.1f -> %.1f;", t + 1, r0, r1);
	}
	double p0 = 100 * tn_dir(all[1], nall[1], 0, 1e-3, NULL);
	double p1 = 100 * tn_dir(all[1], nall[1], best, 1e-3, NULL);
	printf("\n\nHalf 1 pooled, DIR @ FPIR 1e-3: raw %.2f, T-norm K = %d %.2f (%+.2f points); "
	       "trials where T-norm gains at 1e-2: %d of %d\n", p0, tn_k[best], p1, p1 - p0, gains,
	       NT);
	for (int t = 0; t < NT; t++)
		for (int h = 0; h < 2; h++)
			free(tr[t][h]);
	free(all[0]);
	free(all[1]);
	return 0;
}

static const char calib_check_usage[] =
    "usage: herken-bench calib-check [options]\n"
    "The open-set calibration's tail model checked on TRAIN data only (no test\n"
    "split is read): each BLUFR trial's train people are split in two halves by\n"
    "person; the model fitted on one half (openset_fit.h) sets the threshold\n"
    "where it predicts a per-comparison stranger rate q, and the other half\n"
    "measures q there (both directions, 10 trials). For the look-alike rate's\n"
    "point estimate and its one-sided Poisson upper bounds.\n"
    "  --min-images K  gallery candidates: people with >= K photos (default "
    "the calibration's)\n"
    "  --tnorm         instead: score normalisation against the gallery (T-norm),\n"
    "                  DIR at equal FPIR on train halves\n";

int hk__bench_calib_check(int argc, char **argv)
{
	hkb_blufr_opts o = {.centre = 1};
	unsigned min_img = HKB_OS_MIN_IMAGES;
	int tnorm = 0;
	for (int i = 1; i < argc; i++) {
		int a = hkb_blufr_arg(argc, argv, &i, &o);
		if (a == 1)
			continue;
		long v;
		if (a == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			fputs(calib_check_usage, stdout);
			fputs(hkb_blufr_usage, stdout);
			return 0;
		}
		if (a == 0 && !strcmp(argv[i], "--tnorm")) {
			tnorm = 1;
			continue;
		}
		if (a == 0 && !strcmp(argv[i], "--min-images") && i + 1 < argc &&
		    hkb_parse_list(argv[i + 1], &v, 1) == 1 && v >= 1 && v <= 100) {
			min_img = (unsigned)v;
			i++;
			continue;
		}
		fprintf(stderr, "calib-check: bad argument '%s'\n%s", argv[i], calib_check_usage);
		return 2;
	}
	hkb_blufr b;
	int rc = hkb_blufr_load(&o, "calib-check", &b);
	if (rc)
		return rc;
	if (tnorm) {
		rc = tnorm_check(&b) ? 3 : 0;
		hkb_blufr_free(&b);
		return rc;
	}
	double pred[CK_C][CK_Q] = {{0}}, meas[CK_C][CK_Q] = {{0}};
	int over[CK_C][CK_Q] = {{0}}, ndir = 0;
	printf("<!-- herken-bench calib-check | herken %s | train splits only -->\n"
	       "## Open-set tail model, fitted on one half of a train split, measured on the other\n\n"
	       "Per fit: train events above u behind the look-alike rate, its point estimate,\n"
	       "its %.0f %% upper bound (the calibration's):\n\n",
	       hk_version(), 100 * HKB_OS_CONF);
	for (int t = 1; t <= NT; t++) {
		hkb_set h[2];
		hkb_osfit f[2];
		int ok[2];
		if (build_set_half(&b, t, "r", 0, &h[0]) || build_set_half(&b, t, "r", 1, &h[1])) {
			hkb_blufr_free(&b);
			return 3;
		}
		{
			hkb_set all;
			hkb_osfit fa;
			if (build_set(&b, t, "r", &all) == 0) {
				if (!hkb_osfit_run(&all, min_img, &fa))
					printf("trial %d whole train split: %zu candidates, %.3g comparisons, "
					       "%.1f events >= %.3f, pi %.3g, bound %.3g; q(0.70) %.3g, "
					       "q(0.75) %.3g, q(0.80) %.3g measured\n", t, fa.ncand, fa.qnorm,
					       fa.events, fa.u, fa.pi_point, fa.pi, hkb_osfit_q_emp(&fa, 0.70),
					       hkb_osfit_q_emp(&fa, 0.75), hkb_osfit_q_emp(&fa, 0.80));
				hkb_osfit_free(&fa);
				hkb_set_free(&all);
			}
		}
		for (int d = 0; d < 2; d++) {
			ok[d] = !hkb_osfit_run(&h[d], min_img, &f[d]);
			if (!f[d].qcum) {
				fprintf(stderr, "calib-check: out of memory\n");
				hkb_blufr_free(&b);
				return 3;
			}
		}
		for (int d = 0; d < 2; d++) {
			hkb_osfit *x = &f[d], *y = &f[1 - d];
			if (!ok[d]) {
				printf("trial %d half %d: fit failed (too little data)\n", t, d);
				continue;
			}
			printf("trial %d half %d -> %d: %zu images, %.1f events >= %.3f, pi %.3g, "
			       "bound %.3g\n", t, d, 1 - d, x->nprobe, x->events, x->u, x->pi_point, x->pi);
			ndir++;
			for (int c = 0; c < CK_C; c++) {
				hkb_osfit_set_conf(x, ck_conf[c]);
				for (int k = 0; k < CK_Q; k++) {
					double thr = ck_threshold(x, ck_q[k]);
					double m = hkb_osfit_q_emp(y, thr) * y->qnorm, p = ck_q[k] * y->qnorm;
					pred[c][k] += p;
					meas[c][k] += m;
					over[c][k] += m > p;
				}
			}
		}
		for (int d = 0; d < 2; d++) {
			hkb_osfit_free(&f[d]);
			hkb_set_free(&h[d]);
		}
	}
	printf("\nSums over %d fits: events predicted on the other half / measured there "
	       "(ratio measured / predicted; fits where measured > predicted):\n\n| look-alike rate |",
	       ndir);
	for (int k = 0; k < CK_Q; k++)
		printf(" q = %g |", ck_q[k]);
	printf("\n|---|");
	for (int k = 0; k < CK_Q; k++)
		printf("---|");
	printf("\n");
	for (int c = 0; c < CK_C; c++) {
		if (ck_conf[c] > 0)
			printf("| %.0f %% upper bound%s |", 100 * ck_conf[c],
			       ck_conf[c] == HKB_OS_CONF ? " (shipped)" : "");
		else
			printf("| point estimate |");
		for (int k = 0; k < CK_Q; k++)
			printf(" %.1f / %.1f (%.2f; %d) |", pred[c][k], meas[c][k],
			       pred[c][k] > 0 ? meas[c][k] / pred[c][k] : NAN, over[c][k]);
		printf("\n");
	}
	hkb_blufr_free(&b);
	return 0;
}
