/* herken-bench embedders: a second embedder (dlib's ResNet from face-api's
 * TF.js manifest) measured alone and fused with MobileFaceNet, before it is
 * adopted.
 *
 * Every image goes once through the engine's detection and 5-point
 * landmarks; the subject's face (the largest usable one, the engine's rule
 * at the time of the measurement, and for LFW also the one nearest the centre) is embedded by the
 * engine (MobileFaceNet, 112x112 ArcFace alignment, + mirrored chip) and
 * by dlib's ResNet (150x150 chip: a similarity from the same 5 points to
 * dlib's mean-face positions at padding 0.25, + mirrored chip). The
 * embeddings are cached (.cache/, never committed).
 *
 * Fusion is score-level: w * cos_mfn + (1 - w) * cos_dlib, w on a grid of
 * 0.05. w is fitted on training-side data only: LFW View 1 (DevTrain
 * pairs) for LFW View 2; each BLUFR trial's train split for that trial;
 * the other cfp_dev fold for each cfp_dev fold. An image without a usable
 * face scores -1 in every variant (never dropped).
 *
 * Reports: LFW 10-fold accuracy (largest and centre rules), cfp_dev FF/FP
 * 2-fold accuracy, BLUFR VR at FAR 0.1 % and DIR at FPIR 1 % (mean, std,
 * mean - std over 10 trials), pose-diverse enrolment on cfp_dev (open set:
 * one fold's people enrolled, the other fold's are strangers, and the
 * reverse; DIR at FPIR 1 % for frontal and profile probes, template =
 * one frontal photo, mean of frontal + profile, or max over the views),
 * and the CPU cost per face (process CPU time, median, one thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"
#include "lfw_common.h"
#include "herken.h"
#include "internal.h"
#include "pipeline/pipeline.h"

#define DM HK_EMBED_DIM /* MobileFaceNet */
#define DD 128          /* dlib */
#define NW 21           /* fusion weights 0, 0.05, ..., 1 */
#define NV 3            /* variants: mfn, dlib, fused */
#define NBINS (1u << 16)

static const char *vname[NV] = {"mobilefacenet", "dlib", "fused"};

/* dlib's mean face (get_face_chip_details, landmarks 17..67 in [0,1]) at
 * the 5 alignment points — eye centres (means of 36..41 and 42..47), nose
 * tip (30), mouth corners (48, 54) — on a 150x150 chip with padding 0.25:
 * chip = (0.25 + v) / 1.5 * 150. */
static const float dlib_tpl[5][2] = {
	{47.549f, 46.599f}, {100.476f, 46.599f}, {74.013f, 76.563f},
	{50.415f, 103.023f}, {97.610f, 103.023f},
};

typedef struct rec {
	uint8_t ok[2];     /* [rule]: 0 largest, 1 centre                  */
	float m[2][DM];
	float d[2][DD];
} rec;

typedef struct set {
	size_t n;
	char **path;       /* absolute                                     */
	uint32_t *label;
	uint8_t *pose;     /* cfp: 0 frontal, 1 profile                    */
	rec *r;
} set;

static void set_free(set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->path[i]);
	free(s->path);
	free(s->label);
	free(s->pose);
	free(s->r);
}

typedef struct ctx {
	const hk_engine *e;
	const hk_model *dlib;
	set *s;
	atomic_size_t next, done;
	int centre;
} ctx;

/* ---- embedding ---- */

/* dlib embedding of one face: plain + mirrored chip, summed, normalised. */
static hk_status dlib_embed(const hk_model *m, const hk_image *img, const hk_face *f, float *out)
{
	/* detector keypoints carry the mouth centre twice: 4 points, as the
	 * engine's own alignment does */
	float tpl[5][2];
	memcpy(tpl, dlib_tpl, sizeof tpl);
	size_t np = 5;
	if (f->landmark_source == HK_LANDMARKS_DETECTOR) {
		tpl[3][0] = (tpl[3][0] + tpl[4][0]) / 2;
		tpl[3][1] = (tpl[3][1] + tpl[4][1]) / 2;
		np = 4;
	}
	double fwd[6], inv[6];
	if (hk__similarity((const float (*)[2])f->landmarks, (const float (*)[2])tpl, np, fwd) ||
	    hk__affine_invert(fwd, inv))
		return HK_E_RANGE;
	uint8_t chip[2][150 * 150 * 3];
	hk__warp(img, inv, 150, chip[0]);
	memcpy(chip[1], chip[0], sizeof chip[0]);
	hk__chip_mirror(chip[1], 150);
	float e[2][DD];
	hk_status s = hk_embed_chips(m, chip[0], 2, e[0]);
	hk__wipe(chip, sizeof chip);
	if (s)
		return s;
	double n2 = 0;
	for (int k = 0; k < DD; k++) {
		out[k] = e[0][k] + e[1][k];
		n2 += (double)out[k] * out[k];
	}
	for (int k = 0; k < DD; k++)
		out[k] = (float)(out[k] / sqrt(n2));
	return HK_OK;
}

static void *worker(void *arg)
{
	ctx *c = arg;
	hk_face faces[64];
	for (size_t i; (i = atomic_fetch_add(&c->next, 1)) < c->s->n;) {
		rec *r = &c->s->r[i];
		memset(r, 0, sizeof *r);
		hk_image img;
		if (hk_image_load(c->s->path[i], &img)) {
			fprintf(stderr, "\nembedders: %s: %s\n", c->s->path[i], hk_last_error());
			goto next;
		}
		size_t n = 0;
		if (!hk_engine_detect(c->e, &img, faces, 64, &n)) {
			n = n < 64 ? n : 64;
			size_t b[2] = {hkb_pick_subject(faces, n, &img, HKB_RULE_LARGEST),
			              c->centre ? hkb_pick_subject(faces, n, &img, HKB_RULE_CENTRE) : SIZE_MAX};
			for (int k = 0; k < 2; k++) {
				if (b[k] == SIZE_MAX)
					continue;
				if (k == 1 && b[1] == b[0]) {
					memcpy(r->m[1], r->m[0], sizeof r->m[0]);
					memcpy(r->d[1], r->d[0], sizeof r->d[0]);
					r->ok[1] = r->ok[0];
					continue;
				}
				r->ok[k] = !hk_engine_embed(c->e, &img, &faces[b[k]], 1, r->m[k]) &&
				           !dlib_embed(c->dlib, &img, &faces[b[k]], r->d[k]);
			}
		}
		hk_image_free(&img);
	next:
		hkb_progress("embedders: images", atomic_fetch_add(&c->done, 1) + 1, c->s->n);
	}
	return NULL;
}

/* Embeds s (or reads the cache: keyed by the image list, the rule set and
 * this file's version of the pipeline). 0 ok. */
static int embed_set(const hk_engine *e, const hk_model *dlib, set *s, int centre, const char *cache,
                     long threads)
{
	uint64_t key = hk_fnv1a64(HK_FNV1A64_INIT, "embedders v1", 12);
	key = hk_fnv1a64(key, &centre, sizeof centre);
	for (size_t i = 0; i < s->n; i++)
		key = hk_fnv1a64(key, s->path[i], strlen(s->path[i]) + 1);
	s->r = calloc(s->n, sizeof *s->r);
	if (!s->r)
		return -1;
	FILE *f = fopen(cache, "rb");
	if (f) {
		uint64_t k2 = 0, n2 = 0;
		int ok = fread(&k2, 8, 1, f) == 1 && fread(&n2, 8, 1, f) == 1 && k2 == key && n2 == s->n &&
		         fread(s->r, sizeof *s->r, s->n, f) == s->n;
		fclose(f);
		if (ok) {
			fprintf(stderr, "embedders: %zu embeddings from %s\n", s->n, cache);
			return 0;
		}
	}
	ctx c = {.e = e, .dlib = dlib, .s = s, .centre = centre};
	pthread_t th[16];
	int nt = threads < 1 ? 2 : threads > 16 ? 16 : (int)threads;
	double t0 = hkb_now();
	for (int t = 0; t < nt; t++)
		pthread_create(&th[t], NULL, worker, &c);
	for (int t = 0; t < nt; t++)
		pthread_join(th[t], NULL);
	fprintf(stderr, "\nembedders: %zu images in %.0f s\n", s->n, hkb_now() - t0);
	f = fopen(cache, "wb");
	if (f) {
		uint64_t n2 = s->n;
		fwrite(&key, 8, 1, f);
		fwrite(&n2, 8, 1, f);
		fwrite(s->r, sizeof *s->r, s->n, f);
		fclose(f);
	}
	return 0;
}

/* ---- scores ---- */

static float dot(const float *a, const float *b, int n)
{
	float s = 0;
	for (int k = 0; k < n; k++)
		s += a[k] * b[k];
	return s;
}

/* The two cosines of images i, j under rule; -1 when either has no face. */
static void cos2(const set *s, size_t i, size_t j, int rule, float *cm, float *cd)
{
	const rec *a = &s->r[i], *b = &s->r[j];
	if (!a->ok[rule] || !b->ok[rule]) {
		*cm = *cd = -1;
		return;
	}
	*cm = dot(a->m[rule], b->m[rule], DM);
	*cd = dot(a->d[rule], b->d[rule], DD);
}

static float fuse(float cm, float cd, double w)
{
	return cm == -1 && cd == -1 ? -1 : (float)(w * cm + (1 - w) * cd);
}

typedef struct pair {
	uint32_t a, b;
	uint8_t same, fold;
	float cm, cd;
} pair;

/* Best accuracy over thresholds on pairs[0..n) with fold != skip (or all
 * when skip < 0) at weight w; *thr gets the threshold. */
static int cmp_f(const void *x, const void *y)
{
	float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

static double best_acc(const pair *p, size_t n, int only, int skip, double w, float *thr)
{
	size_t m = 0, npos = 0;
	typedef struct { float s; uint8_t g; } sg;
	sg *a = malloc(n * sizeof *a);
	for (size_t i = 0; i < n; i++) {
		if ((only >= 0 && p[i].fold != only) || (skip >= 0 && p[i].fold == skip))
			continue;
		a[m].s = fuse(p[i].cm, p[i].cd, w);
		a[m].g = p[i].same;
		npos += p[i].same;
		m++;
	}
	qsort(a, m, sizeof *a, cmp_f); /* sg starts with the float */
	/* threshold between a[k-1] and a[k]: below -> different */
	size_t neg_below = 0, pos_below = 0;
	double best = -1;
	*thr = -2;
	for (size_t k = 0; k <= m; k++) {
		if (k == 0 || k == m || a[k].s != a[k - 1].s) {
			double acc = (double)(neg_below + (npos - pos_below)) / m;
			if (acc > best) {
				best = acc;
				*thr = k == 0 ? a[0].s - 1e-6f : k == m ? a[m - 1].s + 1e-6f : (a[k - 1].s + a[k].s) / 2;
			}
		}
		if (k < m) {
			neg_below += !a[k].g;
			pos_below += a[k].g;
		}
	}
	free(a);
	return best;
}

static double acc_at(const pair *p, size_t n, int only, double w, float thr)
{
	size_t m = 0, c = 0;
	for (size_t i = 0; i < n; i++) {
		if (only >= 0 && p[i].fold != only)
			continue;
		float s = fuse(p[i].cm, p[i].cd, w);
		c += (s >= thr) == p[i].same;
		m++;
	}
	return m ? (double)c / m : 0;
}

/* w maximising the mean of best accuracies on pairs (fold != skip). */
static double fit_w_acc(const pair *p, size_t n, int skip)
{
	double bw = 1, ba = -1;
	for (int k = 0; k < NW; k++) {
		double w = k / (double)(NW - 1);
		float t;
		double a = best_acc(p, n, -1, skip, w, &t);
		if (a > ba + 1e-12) {
			ba = a;
			bw = w;
		}
	}
	return bw;
}

/* k-fold protocol: for fold f, threshold chosen on the other folds. */
static void kfold(const pair *p, size_t n, int nf, double w, double *mean, double *sd)
{
	double a[16], s = 0, s2 = 0;
	for (int f = 0; f < nf; f++) {
		float t;
		best_acc(p, n, -1, f, w, &t);
		a[f] = acc_at(p, n, f, w, t);
		s += a[f];
	}
	*mean = s / nf;
	for (int f = 0; f < nf; f++)
		s2 += (a[f] - *mean) * (a[f] - *mean);
	*sd = sqrt(s2 / nf);
}

/* ---- data sets ---- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d) {
		perror("strdup");
		exit(3);
	}
	return d;
}

static void set_push(set *s, size_t *cap, const char *path, uint32_t label, uint8_t pose)
{
	if (s->n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		s->path = realloc(s->path, *cap * sizeof *s->path);
		s->label = realloc(s->label, *cap * sizeof *s->label);
		s->pose = realloc(s->pose, *cap);
		if (!s->path || !s->label || !s->pose)
			exit(3);
	}
	s->path[s->n] = xstrdup(path);
	s->label[s->n] = label;
	s->pose[s->n] = pose;
	s->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static long find_path(const set *s, const char *p)
{
	char *const *hit = bsearch(&p, s->path, s->n, sizeof *s->path, cmp_str);
	return hit ? (long)(hit - s->path) : -1;
}

/* LFW: BLUFR's images.tsv (all 13,233 images, BLUFR order = index - 1). */
static int lfw_load(const char *lfw, const char *blufr, set *s)
{
	char p[8192], line[1024];
	snprintf(p, sizeof p, "%s/images.tsv", blufr);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	size_t cap = 0;
	while (fgets(line, sizeof line, f)) {
		char path[512];
		unsigned idx, lab;
		if (sscanf(line, "%u\t%511s\t%u", &idx, path, &lab) != 3)
			continue;
		if (idx != s->n + 1) {
			fclose(f);
			return -1;
		}
		snprintf(p, sizeof p, "%s/%s", lfw, path);
		set_push(s, &cap, p, lab, 0);
	}
	fclose(f);
	return s->n ? 0 : -1;
}

/* LFW pairs file (pairs.txt: folds; pairsDevTrain.txt: one block). Index
 * lookup through a sorted copy of the paths. */
static pair *lfw_pairs(const char *file, const char *lfw, const set *sorted, const long *orig,
                       size_t *np)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return NULL;
	char line[512];
	int folds = 1, per = 0;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return NULL;
	}
	if (sscanf(line, "%d %d", &folds, &per) != 2) {
		per = atoi(line); /* DevTrain: "1100": 1100 same, then 1100 different */
		folds = 1;
	}
	if (folds < 1 || folds > 10 || per < 1 || per > 100000) {
		fclose(f);
		return NULL;
	}
	pair *p = calloc((size_t)folds * per * 2, sizeof *p);
	size_t n = 0, ln = 0;
	while (p && fgets(line, sizeof line, f)) {
		char a[256], b[256];
		int i, j;
		char pa[8192], pb[8192];
		int same;
		if (sscanf(line, "%255s %d %255s %d", a, &i, b, &j) == 4) {
			same = 0;
		} else if (sscanf(line, "%255s %d %d", a, &i, &j) == 3) {
			strcpy(b, a);
			same = 1;
		} else {
			continue;
		}
		size_t fold = ln++ / (2 * (size_t)per);
		snprintf(pa, sizeof pa, "%s/%s/%s_%04d.jpg", lfw, a, a, i);
		snprintf(pb, sizeof pb, "%s/%s/%s_%04d.jpg", lfw, b, b, j);
		long x = find_path(sorted, pa), y = find_path(sorted, pb);
		if (x < 0 || y < 0 || n >= (size_t)folds * per * 2)
			continue;
		p[n].a = (uint32_t)orig[x];
		p[n].b = (uint32_t)orig[y];
		p[n].same = (uint8_t)same;
		p[n].fold = (uint8_t)fold;
		n++;
	}
	fclose(f);
	*np = n;
	return p;
}

/* cfp_dev: every image under images/NNN/{frontal,profile}/XX.jpg. */
static int cfp_load(const char *dir, set *s)
{
	size_t cap = 0;
	char p[8192];
	for (int id = 1; id <= 999; id++)
		for (int pose = 0; pose < 2; pose++)
			for (int k = 1; k <= 20; k++) { /* numbers have gaps */
				snprintf(p, sizeof p, "%s/images/%03d/%s/%02d.jpg", dir, id, pose ? "profile" : "frontal", k);
				struct stat st;
				if (!stat(p, &st))
					set_push(s, &cap, p, (uint32_t)id, (uint8_t)pose);
			}
	return s->n ? 0 : -1;
}

/* cfp pairs file: fold same path_a path_b; s is sorted by path (cfp_load
 * order is sorted). person -> fold in fold_of[]. */
static pair *cfp_pairs(const char *dir, const char *name, const set *s, uint8_t *fold_of, size_t *np)
{
	char p[8192], line[1024];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	size_t cap = 2048, n = 0;
	pair *v = calloc(cap, sizeof *v);
	while (v && fgets(line, sizeof line, f)) {
		int fold, same;
		char a[512], b[512], pa[8192], pb[8192];
		if (sscanf(line, "%d\t%d\t%511s\t%511s", &fold, &same, a, b) != 4)
			continue;
		snprintf(pa, sizeof pa, "%s/%s", dir, a);
		snprintf(pb, sizeof pb, "%s/%s", dir, b);
		long x = find_path(s, pa), y = find_path(s, pb);
		if (x < 0 || y < 0 || n == cap)
			continue;
		v[n] = (pair){(uint32_t)x, (uint32_t)y, (uint8_t)same, (uint8_t)fold, 0, 0};
		fold_of[s->label[x]] = (uint8_t)(fold + 1);
		fold_of[s->label[y]] = (uint8_t)(fold + 1);
		n++;
	}
	fclose(f);
	*np = n;
	return v;
}

/* ---- BLUFR ---- */

typedef struct hist {
	uint32_t *imp; /* NBINS */
	uint64_t nimp;
	float *gen;
	size_t ngen, gcap;
} hist;

static uint32_t bin(float s)
{
	double x = ((double)s + 1.0) * 0.5 * NBINS;
	return x <= 0 ? 0 : x >= NBINS ? NBINS - 1 : (uint32_t)x;
}

static void hist_add(hist *h, float s, int same)
{
	if (same) {
		if (h->ngen == h->gcap) {
			h->gcap = h->gcap ? h->gcap * 2 : 4096;
			h->gen = realloc(h->gen, h->gcap * sizeof *h->gen);
		}
		h->gen[h->ngen++] = s;
	} else {
		h->imp[bin(s)]++;
		h->nimp++;
	}
}

/* VR at FAR far: threshold = lower edge of the first bin (from the top)
 * where the impostors above reach far (bin width 3e-5). */
static double vr_at(const hist *h, double far)
{
	uint64_t c = 0, lim = (uint64_t)(far * (double)h->nimp);
	uint32_t b = NBINS;
	while (b > 0 && c + h->imp[b - 1] <= lim)
		c += h->imp[--b];
	double thr = (double)b / NBINS * 2.0 - 1.0;
	size_t g = 0;
	for (size_t i = 0; i < h->ngen; i++)
		g += h->gen[i] >= thr;
	return h->ngen ? (double)g / h->ngen : 0;
}

/* Histograms of every pair among idx[n], one per fusion weight w[k]. */
static void pair_hists(const set *s, const size_t *idx, size_t n, int rule, const double *w,
                       int nw, hist *h)
{
	for (int k = 0; k < nw; k++) {
		memset(&h[k], 0, sizeof h[k]);
		h[k].imp = calloc(NBINS, sizeof *h[k].imp);
	}
	for (size_t a = 0; a < n; a++)
		for (size_t b = a + 1; b < n; b++) {
			float cm, cd;
			cos2(s, idx[a], idx[b], rule, &cm, &cd);
			int same = s->label[idx[a]] == s->label[idx[b]];
			for (int k = 0; k < nw; k++)
				hist_add(&h[k], fuse(cm, cd, w[k]), same);
		}
}

static int cmp_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y) - (x > y);
}

static void mean_sd(const double *v, int n, double *m, double *sd)
{
	double s = 0, s2 = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	*m = s / n;
	for (int i = 0; i < n; i++)
		s2 += (v[i] - *m) * (v[i] - *m);
	*sd = sqrt(s2 / n);
}

/* DIR at FPIR fpir of probes against a gallery, scores from sc(probe,
 * gallery) in a matrix [np][ng]; genuine[i] = own gallery row or -1. */
static double dir_at(const float *sc, size_t np, size_t ng, const long *own, double fpir)
{
	double *imax = malloc((np + 1) * sizeof *imax);
	size_t ni = 0, ngen = 0, d = 0;
	for (size_t i = 0; i < np; i++) {
		const float *r = sc + i * ng;
		float b = -INFINITY;
		for (size_t g = 0; g < ng; g++)
			b = r[g] > b ? r[g] : b;
		if (own[i] < 0)
			imax[ni++] = b;
	}
	qsort(imax, ni, sizeof *imax, cmp_desc);
	size_t k = (size_t)floor(fpir * (double)ni);
	double thr = k < ni ? imax[k] : -INFINITY; /* accept > thr: at most k impostors */
	for (size_t i = 0; i < np; i++) {
		if (own[i] < 0)
			continue;
		ngen++;
		const float *r = sc + i * ng;
		size_t bi = 0;
		for (size_t g = 1; g < ng; g++)
			if (r[g] > r[bi])
				bi = g;
		d += (long)bi == own[i] && r[bi] > thr;
	}
	free(imax);
	return ngen ? (double)d / ngen : 0;
}

static int blufr_run(const set *s, const char *blufr, int json, double vr_out[NV][2], double dir_out[NV][2])
{
	char p[8192], line[256];
	snprintf(p, sizeof p, "%s/trials.tsv", blufr);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	uint8_t *role[11];
	for (int t = 0; t < 11; t++)
		role[t] = calloc(s->n, 1);
	while (fgets(line, sizeof line, f)) {
		int t;
		char r[32];
		unsigned idx;
		if (sscanf(line, "%d\t%31s\t%u", &t, r, &idx) == 3 && t >= 1 && t <= 10 && idx >= 1 && idx <= s->n)
			role[t][idx - 1] = r[0] == 't' ? 'r' : r[0];
	}
	fclose(f);
	double vr[NV][10], dir[NV][10], wfit[10];
	const int rule = 1; /* BLUFR as herken-bench blufr: the centre face */
	for (int t = 1; t <= 10; t++) {
		/* fit w on the train split: VR at FAR 0.1 % */
		size_t *tr = malloc(s->n * sizeof *tr), ntr = 0;
		for (size_t i = 0; i < s->n; i++)
			if (role[t][i] == 'r')
				tr[ntr++] = i;
		hist hw[NW];
		double ww[NW];
		for (int k = 0; k < NW; k++)
			ww[k] = k / (double)(NW - 1);
		pair_hists(s, tr, ntr, rule, ww, NW, hw);
		double bw = 1, bv = -1;
		for (int k = 0; k < NW; k++) {
			double v = vr_at(&hw[k], 1e-3);
			if (v > bv + 1e-12) {
				bv = v;
				bw = ww[k];
			}
			free(hw[k].imp);
			free(hw[k].gen);
		}
		free(tr);
		wfit[t - 1] = bw;
		double wv[NV] = {1, 0, bw};
		/* test: all pairs of gallery + probe */
		size_t *te = malloc(s->n * sizeof *te), nte = 0;
		for (size_t i = 0; i < s->n; i++)
			if (role[t][i] == 'g' || role[t][i] == 'p')
				te[nte++] = i;
		hist h[NV];
		pair_hists(s, te, nte, rule, wv, NV, h);
		for (int v = 0; v < NV; v++) {
			vr[v][t - 1] = vr_at(&h[v], 1e-3);
			free(h[v].imp);
			free(h[v].gen);
		}
		/* open set */
		size_t *gal = malloc(s->n * sizeof *gal), ng = 0, npb = 0;
		size_t *prb = malloc(s->n * sizeof *prb);
		for (size_t i = 0; i < s->n; i++) {
			if (role[t][i] == 'g')
				gal[ng++] = i;
			else if (role[t][i] == 'p')
				prb[npb++] = i;
		}
		long *own = malloc(npb * sizeof *own);
		float *sc[NV];
		for (int v = 0; v < NV; v++)
			sc[v] = malloc(npb * ng * sizeof(float));
		for (size_t i = 0; i < npb; i++) {
			own[i] = -1;
			for (size_t g = 0; g < ng; g++) {
				if (s->label[gal[g]] == s->label[prb[i]])
					own[i] = (long)g;
				float cm, cd;
				cos2(s, prb[i], gal[g], rule, &cm, &cd);
				for (int v = 0; v < NV; v++)
					sc[v][i * ng + g] = fuse(cm, cd, wv[v]);
			}
		}
		for (int v = 0; v < NV; v++) {
			dir[v][t - 1] = dir_at(sc[v], npb, ng, own, 1e-2);
			free(sc[v]);
		}
		free(own);
		free(gal);
		free(prb);
		free(te);
		fprintf(stderr, "embedders: BLUFR trial %d: w %.2f, VR %.4f/%.4f/%.4f DIR %.4f/%.4f/%.4f\n", t, bw,
		        vr[0][t - 1], vr[1][t - 1], vr[2][t - 1], dir[0][t - 1], dir[1][t - 1], dir[2][t - 1]);
	}
	printf("\n### BLUFR (10 trials, centre face; fusion weight fitted on each trial's train split: VR at FAR 0.1 %%)\n\n");
	printf("| embedder | VR@FAR 0.1 %% mean ± sd | μ−σ | DIR@FPIR 1 %% mean ± sd | μ−σ |\n|---|---|---|---|---|\n");
	for (int v = 0; v < NV; v++) {
		mean_sd(vr[v], 10, &vr_out[v][0], &vr_out[v][1]);
		mean_sd(dir[v], 10, &dir_out[v][0], &dir_out[v][1]);
		printf("| %s | %.2f ± %.2f | %.2f | %.2f ± %.2f | %.2f |\n", vname[v], 100 * vr_out[v][0],
		       100 * vr_out[v][1], 100 * (vr_out[v][0] - vr_out[v][1]), 100 * dir_out[v][0],
		       100 * dir_out[v][1], 100 * (dir_out[v][0] - dir_out[v][1]));
	}
	printf("\nfusion weights (MobileFaceNet share) per trial:");
	for (int t = 0; t < 10; t++)
		printf(" %.2f", wfit[t]);
	printf("\n");
	if (json) {
		printf("{\"suite\":\"embedders\",\"part\":\"blufr\"");
		for (int v = 0; v < NV; v++)
			printf(",\"%s\":{\"vr\":%.5f,\"vr_sd\":%.5f,\"dir\":%.5f,\"dir_sd\":%.5f}", vname[v], vr_out[v][0],
			       vr_out[v][1], dir_out[v][0], dir_out[v][1]);
		printf("}\n");
	}
	for (int t = 0; t < 11; t++)
		free(role[t]);
	return 0;
}

/* ---- pose-diverse enrolment on cfp_dev ---- */

enum { T_FRONT = 0, T_MEAN = 1, T_MAX = 2, NT = 3 };
static const char *tname[NT] = {"one frontal", "mean(frontal, profile)", "max over (frontal, profile)"};

/* Score of probe i against person p's enrolment (images ef, ep; ep < 0:
 * none) for variant v at weight w. */
static float enrol_score(const set *s, size_t i, long ef, long ep, int tmpl, int v, double w)
{
	const rec *q = &s->r[i];
	if (!q->ok[0])
		return -1;
	double wv = v == 0 ? 1 : v == 1 ? 0 : w;
	float sf = -1, sp = -1, smean = -1;
	float cm, cd;
	if (ef >= 0 && s->r[ef].ok[0]) {
		cos2(s, i, (size_t)ef, 0, &cm, &cd);
		sf = fuse(cm, cd, wv);
	}
	if (ep >= 0 && s->r[ep].ok[0]) {
		cos2(s, i, (size_t)ep, 0, &cm, &cd);
		sp = fuse(cm, cd, wv);
	}
	if (tmpl == T_FRONT)
		return sf;
	if (tmpl == T_MAX)
		return sf > sp ? sf : sp;
	/* mean template: per embedder, normalise(mean of unit views), then fuse */
	if (sf == -1 || sp == -1)
		return sf > sp ? sf : sp;
	const rec *a = &s->r[ef], *b = &s->r[ep];
	double dm = 0, nm = 0, dd = 0, nd = 0;
	for (int k = 0; k < DM; k++) {
		double t = (double)a->m[0][k] + b->m[0][k];
		dm += t * q->m[0][k];
		nm += t * t;
	}
	for (int k = 0; k < DD; k++) {
		double t = (double)a->d[0][k] + b->d[0][k];
		dd += t * q->d[0][k];
		nd += t * t;
	}
	smean = fuse((float)(dm / sqrt(nm)), (float)(dd / sqrt(nd)), wv);
	return smean;
}

static void enrol_run(const set *s, const uint8_t *fold_of, double w_cfp[2], int json)
{
	/* per person: the enrolment images, the first frontal and the first
	 * profile photo with a usable face (at a desk the photo is retaken
	 * until one is found) */
	long ef[1000], ep[1000];
	for (int p = 0; p < 1000; p++)
		ef[p] = ep[p] = -1;
	for (size_t i = 0; i < s->n; i++) {
		long *e = s->pose[i] ? ep : ef;
		if (s->label[i] < 1000 && e[s->label[i]] < 0 && s->r[i].ok[0])
			e[s->label[i]] = (long)i;
	}
	double res[NV][NT][2] = {{{0}}}; /* [variant][template][probe pose] */
	size_t und[2] = {0};
	for (int enrolled_fold = 1; enrolled_fold <= 2; enrolled_fold++) {
		double w = w_cfp[enrolled_fold - 1]; /* fitted without the enrolled fold's FP pairs */
		int people[1000], ng = 0;
		for (int p = 1; p < 1000; p++)
			if (fold_of[p] == enrolled_fold && ef[p] >= 0)
				people[ng++] = p;
		/* probes: enrolled people's other photos (genuine), the other
		 * fold's people's photos (strangers) */
		size_t np = 0;
		size_t *pr = malloc(s->n * sizeof *pr);
		for (size_t i = 0; i < s->n; i++) {
			uint32_t l = s->label[i];
			if (l >= 1000 || !fold_of[l] || (long)i == ef[l] || (long)i == ep[l])
				continue;
			pr[np++] = i;
		}
		for (int pose = 0; pose < 2; pose++)
			for (size_t k = 0; k < np; k++)
				und[pose] += enrolled_fold == 1 && s->pose[pr[k]] == pose && !s->r[pr[k]].ok[0];
		for (int v = 0; v < NV; v++)
			for (int tm = 0; tm < NT; tm++) {
				float *sc = malloc(np * (size_t)ng * sizeof *sc);
				long *own = malloc(np * sizeof *own);
				for (size_t k = 0; k < np; k++) {
					own[k] = -1;
					for (int g = 0; g < ng; g++) {
						if ((int)s->label[pr[k]] == people[g])
							own[k] = g;
						sc[k * ng + g] = enrol_score(s, pr[k], ef[people[g]], tm == T_FRONT ? -1 : ep[people[g]], tm, v, w);
					}
				}
				/* FPIR threshold over all strangers; DIR per probe pose */
				for (int pose = 0; pose < 2; pose++) {
					long *own2 = malloc(np * sizeof *own2);
					for (size_t k = 0; k < np; k++)
						own2[k] = own[k] >= 0 && s->pose[pr[k]] != pose ? -2 : own[k];
					/* dir_at counts own < 0 as impostor: keep only strangers (-1) */
					float *sc2 = malloc(np * (size_t)ng * sizeof *sc2);
					long *own3 = malloc(np * sizeof *own3);
					size_t n2 = 0;
					for (size_t k = 0; k < np; k++) {
						if (own2[k] == -2)
							continue;
						memcpy(sc2 + n2 * ng, sc + k * ng, (size_t)ng * sizeof *sc);
						own3[n2++] = own2[k];
					}
					res[v][tm][pose] += dir_at(sc2, n2, (size_t)ng, own3, 1e-2) / 2;
					free(sc2);
					free(own2);
					free(own3);
				}
				free(sc);
				free(own);
			}
		free(pr);
	}
	printf("\n### Pose-diverse enrolment, cfp_dev open set (one fold's people enrolled, the other fold's are strangers, and the reverse; mean of the two; DIR at FPIR 1 %% over all stranger photos; largest face)\n\n");
	printf("undetected probe photos (counted as missed): frontal %zu, profile %zu\n\n", und[0], und[1]);
	printf("| embedder | template | DIR frontal probes | DIR profile probes |\n|---|---|---|---|\n");
	for (int v = 0; v < NV; v++)
		for (int tm = 0; tm < NT; tm++)
			printf("| %s | %s | %.2f | %.2f |\n", vname[v], tname[tm], 100 * res[v][tm][0], 100 * res[v][tm][1]);
	if (json) {
		printf("{\"suite\":\"embedders\",\"part\":\"enrolment\"");
		for (int v = 0; v < NV; v++)
			for (int tm = 0; tm < NT; tm++)
				printf(",\"%s_%s\":{\"frontal\":%.5f,\"profile\":%.5f}", vname[v],
				       tm == T_FRONT ? "front" : tm == T_MEAN ? "mean" : "max", res[v][tm][0], res[v][tm][1]);
		printf("}\n");
	}
}

/* ---- cost ---- */

static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void cost_run(const char *dir, int json)
{
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.threads = 1;
	mp.max_batch = 2;
	char p[4200];
	hk_model *m[2] = {NULL, NULL};
	snprintf(p, sizeof p, "%s/MobileFaceNet.tflite", dir);
	hk_model_load(p, &mp, &m[0]);
	snprintf(p, sizeof p, "%s/face_recognition_model-weights_manifest.json", dir);
	hk_model_load(p, &mp, &m[1]);
	if (!m[0] || !m[1]) {
		fprintf(stderr, "embedders: cost: %s\n", hk_last_error());
		hk_model_destroy(m[0]);
		hk_model_destroy(m[1]);
		return;
	}
	static uint8_t chip[2][150 * 150 * 3];
	for (size_t i = 0; i < sizeof chip[0]; i++)
		chip[0][i] = chip[1][i] = (uint8_t)(i * 13 + i / 300);
	float out[2 * DM];
	enum { R = 41 };
	double t[2][R];
	for (int r = 0; r < R; r++) /* interleaved: the same load for both */
		for (int k = 0; k < 2; k++) {
			double c0 = cpu_s();
			hk_embed_chips(m[k], chip[0], 1, out);
			t[k][r] = (cpu_s() - c0) * 1e3;
		}
	hk_model_info in[2];
	hk_model_get_info(m[0], &in[0]);
	hk_model_get_info(m[1], &in[1]);
	double med[2] = {hkb_median(t[0], R), hkb_median(t[1], R)};
	printf("\n### Cost per face (one chip, one thread, process CPU ms, median of %d interleaved runs; %s, oneDNN %s)\n\n", R,
	       hkb_cpu_name(), in[0].isa);
	printf("| embedder | MFLOP | CPU ms/face | ratio |\n|---|---|---|---|\n");
	printf("| mobilefacenet (%s) | %.0f | %.2f | 1.00 |\n", hkb_precision_name(in[0].precision), in[0].flops / 1e6, med[0]);
	printf("| dlib (%s) | %.0f | %.2f | %.2f |\n", hkb_precision_name(in[1].precision), in[1].flops / 1e6, med[1],
	       med[1] / med[0]);
	printf("\n(the engine embeds a face and its mirror: twice these per face; fusion adds the dlib column)\n");
	if (json)
		printf("{\"suite\":\"embedders\",\"part\":\"cost\",\"mfn_cpu_ms\":%.3f,\"dlib_cpu_ms\":%.3f}\n", med[0], med[1]);
	hk_model_destroy(m[0]);
	hk_model_destroy(m[1]);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: herken-bench embedders [--only lfw|cfp|blufr|cost|all] [--threads N] [--json]\n"
	                "  data: $HERKEN_SHARED/datasets/{lfw,lfw_blufr,cfp_dev}; caches .cache/embedders-{lfw,cfp}.bin\n");
}

int hk__bench_embedders(int argc, char **argv)
{
	const char *only = "all";
	long threads = 2;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atol(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			usage();
			return 1;
		}
	}
	int all = !strcmp(only, "all");
	hkb_print_header("embedders", 0);
	const char *mdir = hk_model_dir(NULL);
	if (all || !strcmp(only, "cost"))
		cost_run(mdir, json);
	if (!all && !strcmp(only, "cost"))
		return 0;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.threads = 1;
	hk_engine *e = NULL;
	if (hk_engine_create(&ep, &e)) {
		fprintf(stderr, "embedders: %s\n", hk_last_error());
		return 2;
	}
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.threads = 1;
	mp.max_batch = 2;
	hk_model *dlib = NULL;
	char p[4200];
	snprintf(p, sizeof p, "%s/face_recognition_model-weights_manifest.json", mdir);
	if (hk_model_load(p, &mp, &dlib)) {
		fprintf(stderr, "embedders: %s\n", hk_last_error());
		hk_engine_destroy(e);
		return 2;
	}
	mkdir(".cache", 0755);
	char lfw[4096], blufr[4096], cfp[4096];
	hkb_data_path(NULL, "datasets/lfw", lfw, sizeof lfw);
	hkb_data_path(NULL, "datasets/lfw_blufr", blufr, sizeof blufr);
	hkb_data_path(NULL, "datasets/cfp_dev", cfp, sizeof cfp);
	int rc = 0;
	if (all || !strcmp(only, "cfp")) {
		set s = {0};
		uint8_t fold_of[1000] = {0};
		if (cfp_load(cfp, &s) || embed_set(e, dlib, &s, 0, ".cache/embedders-cfp.bin", threads)) {
			fprintf(stderr, "embedders: cfp_dev absent at %s\n", cfp);
			rc = 2;
		} else {
			printf("\n### cfp_dev (2 folds: threshold and fusion weight from the other fold; largest face; %zu images)\n\n", s.n);
			size_t und[2] = {0};
			for (size_t i = 0; i < s.n; i++)
				und[s.pose[i]] += !s.r[i].ok[0];
			printf("undetected: frontal %zu, profile %zu (their pairs score -1)\n\n", und[0], und[1]);
			printf("| pairs | embedder | accuracy mean ± sd | fusion w per fold |\n|---|---|---|---|\n");
			double wfp[2] = {1, 1};
			const char *names[2] = {"pairs_ff.tsv", "pairs_fp.tsv"};
			for (int k = 0; k < 2; k++) {
				size_t np = 0;
				pair *pp = cfp_pairs(cfp, names[k], &s, fold_of, &np);
				if (!pp || !np)
					continue;
				for (size_t i = 0; i < np; i++)
					cos2(&s, pp[i].a, pp[i].b, 0, &pp[i].cm, &pp[i].cd);
				double acc[NV][2], w[2];
				for (int f = 0; f < 2; f++) {
					w[f] = fit_w_acc(pp, np, f); /* on the other fold */
					double wv[NV] = {1, 0, w[f]};
					for (int v = 0; v < NV; v++) {
						float t;
						best_acc(pp, np, -1, f, wv[v], &t);
						acc[v][f] = acc_at(pp, np, f, wv[v], t);
					}
				}
				if (k == 1) {
					/* enrolling fold f's people: w from the other fold */
					wfp[0] = w[1];
					wfp[1] = w[0];
				}
				for (int v = 0; v < NV; v++) {
					double m, sd;
					mean_sd(acc[v], 2, &m, &sd);
					printf("| %s | %s | %.2f ± %.2f | %s |\n", k ? "FP" : "FF", vname[v], 100 * m, 100 * sd,
					       v == 2 ? (snprintf(p, sizeof p, "%.2f, %.2f", w[0], w[1]), p) : "");
					if (json)
						printf("{\"suite\":\"embedders\",\"part\":\"cfp_%s\",\"embedder\":\"%s\",\"accuracy\":%.5f}\n",
						       k ? "fp" : "ff", vname[v], m);
				}
				free(pp);
			}
			enrol_run(&s, fold_of, wfp, json);
		}
		set_free(&s);
	}
	if (all || !strcmp(only, "lfw") || !strcmp(only, "blufr")) {
		set s = {0};
		if (lfw_load(lfw, blufr, &s) || embed_set(e, dlib, &s, 1, ".cache/embedders-lfw.bin", threads)) {
			fprintf(stderr, "embedders: LFW / BLUFR lists absent at %s, %s\n", lfw, blufr);
			rc = 2;
		} else {
			/* sorted view for path lookups */
			set so = s;
			long *orig = malloc(s.n * sizeof *orig);
			so.path = malloc(s.n * sizeof *so.path);
			memcpy(so.path, s.path, s.n * sizeof *so.path);
			qsort(so.path, s.n, sizeof *so.path, cmp_str);
			for (size_t i = 0; i < s.n; i++)
				orig[i] = -1;
			for (size_t i = 0; i < s.n; i++) {
				long k = find_path(&so, s.path[i]);
				if (k >= 0)
					orig[k] = (long)i;
			}
			if (all || !strcmp(only, "lfw")) {
				char pf[4200], pv[4200];
				snprintf(pf, sizeof pf, "%s/pairs.txt", lfw);
				snprintf(pv, sizeof pv, "%s/pairsDevTrain.txt", lfw);
				size_t np = 0, nv = 0;
				pair *pp = lfw_pairs(pf, lfw, &so, orig, &np), *pv1 = lfw_pairs(pv, lfw, &so, orig, &nv);
				printf("\n### LFW View 2 (10 folds, %zu pairs; fusion weight fitted on View 1 DevTrain, %zu pairs)\n\n", np, nv);
				printf("| face rule | embedder | accuracy mean ± sd | undetected pairs |\n|---|---|---|---|\n");
				for (int rule = 0; rule < 2 && pp && pv1; rule++) {
					for (size_t i = 0; i < nv; i++)
						cos2(&s, pv1[i].a, pv1[i].b, rule, &pv1[i].cm, &pv1[i].cd);
					for (size_t i = 0; i < np; i++)
						cos2(&s, pp[i].a, pp[i].b, rule, &pp[i].cm, &pp[i].cd);
					size_t und = 0;
					for (size_t i = 0; i < np; i++)
						und += pp[i].cm == -1 && pp[i].cd == -1;
					double w = fit_w_acc(pv1, nv, -1);
					printf("| %s | View 1 selection curve (w: accuracy) |", rule ? "centre" : "largest");
					for (int k = 0; k < NW; k += 4) {
						float t;
						printf(" %.2f: %.2f", k / (double)(NW - 1), 100 * best_acc(pv1, nv, -1, -1, k / (double)(NW - 1), &t));
					}
					printf(" | |\n");
					double wv[NV] = {1, 0, w};
					for (int v = 0; v < NV; v++) {
						double m, sd;
						kfold(pp, np, 10, wv[v], &m, &sd);
						printf("| %s | %s%s | %.2f ± %.2f | %zu |\n", rule ? "centre" : "largest", vname[v],
						       v == 2 ? (snprintf(p, sizeof p, " (w %.2f)", w), p) : "", 100 * m, 100 * sd, und);
						if (json)
							printf("{\"suite\":\"embedders\",\"part\":\"lfw\",\"rule\":\"%s\",\"embedder\":\"%s\",\"w\":%.2f,\"accuracy\":%.5f}\n",
							       rule ? "centre" : "largest", vname[v], wv[v], m);
					}
				}
				free(pp);
				free(pv1);
			}
			if (all || !strcmp(only, "blufr")) {
				double vr[NV][2], dir[NV][2];
				blufr_run(&s, blufr, json, vr, dir);
			}
			free(so.path);
			free(orig);
		}
		set_free(&s);
	}
	hk_model_destroy(dlib);
	hk_engine_destroy(e);
	return rc;
}
