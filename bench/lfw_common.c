/* LFW pairs, image set and per-image pipeline run shared by
 * `herken-bench lfw` (bench_lfw.c) and the LFW guard of `herken-bench check`
 * (check_extra.c). */
#define _GNU_SOURCE
#include "lfw_common.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "calibrate.h"
#include "internal.h"
#include "pipeline/pipeline.h"

#define NAME_MAX_LEN 200

typedef struct lfw_run {
	const hk_engine *engine;
	lfw_image *img;
	size_t n;
	atomic_size_t next, done;
	int nvar; /* embeddings per image: 1, or the 4 variants */
	int centre; /* subject = face nearest the centre (else the engine's rule) */
	int all_rules; /* also embed the other rules' subjects */
	int progress;
} lfw_run;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends a path; the array grows as needed. */
static int push_path(char ***v, size_t *n, size_t *cap, char *p)
{
	if (!p)
		return -1;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 1024;
		char **nv = realloc(*v, c * sizeof *nv);
		if (!nv) {
			free(p);
			return -1;
		}
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = p;
	return 0;
}

static char *image_path(const char *dir, const char *name, long num)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s/%s_%04ld.jpg", dir, name, name, num) < 0)
		return NULL;
	return p;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX_LEN || strstr(s, ".."))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x21)
			return 0;
	return 1;
}

static int parse_num(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 9999)
		return -1;
	*out = v;
	return 0;
}

/* Reads pairs.txt: "folds\tper" then folds x (per matched "name n1 n2",
 * per mismatched "name1 n1 name2 n2"). Paths are collected, unsorted. */
static int read_pairs(const char *file, const char *dir, long max_folds, lfw_pair **pairs,
                      size_t *npairs, char ***paths_a, char ***paths_b)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "lfw: cannot open %s: %s\n", file, strerror(errno));
		return -1;
	}
	char line[1024];
	long folds = 0, per = 0;
	if (!fgets(line, sizeof line, f) || sscanf(line, "%ld %ld", &folds, &per) != 2 ||
	    folds < 1 || folds > 100 || per < 1 || per > 100000) {
		fprintf(stderr, "lfw: %s: bad header line\n", file);
		fclose(f);
		return -1;
	}
	if (max_folds > 0 && folds > max_folds)
		folds = max_folds;
	size_t n = (size_t)(folds * per * 2);
	lfw_pair *p = calloc(n, sizeof *p);
	char **pa = calloc(n, sizeof *pa), **pb = calloc(n, sizeof *pb);
	int rc = p && pa && pb ? 0 : -1;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!fgets(line, sizeof line, f) || !strchr(line, '\n')) {
			fprintf(stderr, "lfw: %s: line %zu missing or too long\n", file, i + 2);
			rc = -1;
			break;
		}
		char *tok[5], *save = NULL;
		int nt = 0;
		for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
			if (nt < 5)
				tok[nt++] = t;
			else
				nt = 6;
		long n1, n2;
		size_t fold = i / (size_t)(2 * per);
		int same = (i % (size_t)(2 * per)) < (size_t)per;
		if (same && nt == 3 && valid_name(tok[0]) && !parse_num(tok[1], &n1) &&
		    !parse_num(tok[2], &n2)) {
			pa[i] = image_path(dir, tok[0], n1);
			pb[i] = image_path(dir, tok[0], n2);
		} else if (!same && nt == 4 && valid_name(tok[0]) && valid_name(tok[2]) &&
		           !parse_num(tok[1], &n1) && !parse_num(tok[3], &n2)) {
			pa[i] = image_path(dir, tok[0], n1);
			pb[i] = image_path(dir, tok[2], n2);
		} else {
			fprintf(stderr, "lfw: %s: line %zu is not a %s pair\n", file, i + 2,
			        same ? "matched" : "mismatched");
			rc = -1;
			break;
		}
		if (!pa[i] || !pb[i])
			rc = -1;
		p[i].same = (uint8_t)same;
		p[i].fold = (uint8_t)fold;
	}
	fclose(f);
	*pairs = p;
	*npairs = n;
	*paths_a = pa;
	*paths_b = pb;
	return rc;
}

/* Every <Name>/<file>.jpg under dir (for the whole-dataset throughput run). */
static int list_all(const char *dir, char ***v, size_t *n, size_t *cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.')
			continue;
		char *sub = NULL;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0)
			return -1;
		DIR *sd = opendir(sub);
		if (sd) {
			struct dirent *fe;
			while ((fe = readdir(sd)) && !rc) {
				size_t l = strlen(fe->d_name);
				if (l > 4 && !strcmp(fe->d_name + l - 4, ".jpg")) {
					char *p = NULL;
					rc = asprintf(&p, "%s/%s", sub, fe->d_name) < 0 ? -1
					                                                  : push_path(v, n, cap, p);
				}
			}
			closedir(sd);
		}
		free(sub);
	}
	closedir(d);
	return rc;
}

/* The four alignment/flip variants of one face, from two alignments x two
 * views (4 chips): O-Net + flip, O-Net, detector keypoints + flip, detector
 * keypoints; each exactly what an engine configured that way returns. */
static hk_status embed_variants(const hk_engine *e, const hk_image *img, const hk_face *f,
                                float *out)
{
	hk_face det = *f;
	for (int k = 0; k < 4; k++) {
		det.landmarks[k][0] = f->keypoints[k][0] - 0.5f;
		det.landmarks[k][1] = f->keypoints[k][1] - 0.5f;
	}
	det.landmarks[4][0] = det.landmarks[3][0];
	det.landmarks[4][1] = det.landmarks[3][1];
	det.landmark_source = HK_LANDMARKS_DETECTOR;
	float v[4][HK_EMBED_DIM];
	hk_status st = hk__engine_embed_views(e, img, f, 1, v[0], v[1]);
	if (!st)
		st = hk__engine_embed_views(e, img, &det, 1, v[2], v[3]);
	for (int a = 0; a < 2 && !st; a++)
		if (hk__combine_views(v[2 * a], v[2 * a + 1], out + (2 * a) * HK_EMBED_DIM) ||
		    hk__combine_views(v[2 * a], NULL, out + (2 * a + 1) * HK_EMBED_DIM))
			st = HK_E_RANGE;
	hk__wipe(v, sizeof v);
	return st;
}

size_t hkb_pick_subject(const hk_face *faces, size_t n, const hk_image *img, int r)
{
	if (r == HKB_RULE_ENGINE)
		return hk__subject_face(faces, n, img);
	size_t best = SIZE_MAX;
	double best_v = 0;
	for (size_t k = 0; k < n; k++) {
		if (faces[k].reject != HK_FACE_OK)
			continue;
		const float *b = faces[k].box;
		double dx = (b[0] + b[2]) / 2.0 - img->width / 2.0;
		double dy = (b[1] + b[3]) / 2.0 - img->height / 2.0;
		double v = r == HKB_RULE_CENTRE ? -(dx * dx + dy * dy) : (double)(b[2] - b[0]) * (b[3] - b[1]);
		if (best == SIZE_MAX || v > best_v) {
			best_v = v;
			best = k;
		}
	}
	return best;
}

/* The two rules other than the first, in HKB_RULE_* order. */
static void other_rules(int centre, int out[2])
{
	int first = centre ? HKB_RULE_CENTRE : HKB_RULE_ENGINE, k = 0;
	for (int r = 0; r < 3; r++)
		if (r != first)
			out[k++] = r;
}

size_t hkb_lfw_use_rule(hkb_lfw_set *s, int centre, int r)
{
	int o[2];
	other_rules(centre, o);
	size_t moved = 0;
	for (int k = 0; k < 2; k++)
		if (o[k] == r)
			for (size_t i = 0; i < s->nimg; i++)
				if (s->img[i].emb_other[k]) {
					float *t = s->img[i].emb;
					s->img[i].emb = s->img[i].emb_other[k];
					s->img[i].emb_other[k] = t;
					moved++;
				}
	return moved;
}

static hk_status embed_face(const lfw_run *r, const hk_image *img, const hk_face *f, float *out)
{
	return r->nvar == 1 ? hk_engine_embed(r->engine, img, f, 1, out)
	                    : embed_variants(r->engine, img, f, out);
}

static void *worker(void *arg)
{
	lfw_run *r = arg;
	hk_face *faces = malloc(64 * sizeof *faces);
	for (size_t i; faces && (i = atomic_fetch_add(&r->next, 1)) < r->n;) {
		lfw_image *im = &r->img[i];
		hk_image img;
		double t0 = hkb_now();
		hk_status st = hk_image_load(im->path, &img);
		double t1 = hkb_now();
		im->t_decode = t1 - t0;
		if (st) {
			im->state = IMG_ERROR;
			fprintf(stderr, "\nlfw: %s: %s\n", im->path, hk_last_error());
			goto next;
		}
		size_t n = 0;
		st = hk_engine_detect(r->engine, &img, faces, 64, &n);
		double t2 = hkb_now();
		im->t_detect = t2 - t1;
		size_t best = st ? SIZE_MAX
		                 : hkb_pick_subject(faces, n < 64 ? n : 64, &img,
		                                r->centre ? HKB_RULE_CENTRE : HKB_RULE_ENGINE);
		im->nfaces = (uint32_t)n;
		if (best != SIZE_MAX) {
			memcpy(im->box, faces[best].box, sizeof im->box);
			im->score = faces[best].score;
		}
		if (st) {
			im->state = IMG_ERROR;
			fprintf(stderr, "\nlfw: %s: %s\n", im->path, hk_last_error());
		} else if (best == SIZE_MAX) {
			im->state = IMG_NOFACE;
		} else {
			im->emb = malloc((size_t)r->nvar * HK_EMBED_DIM * sizeof *im->emb);
			st = !im->emb ? HK_E_NOMEM : embed_face(r, &img, &faces[best], im->emb);
			im->t_embed = hkb_now() - t2;
			int o[2];
			other_rules(r->centre, o);
			for (int k = 0; k < 2 && !st && r->all_rules; k++) {
				size_t ob = hkb_pick_subject(faces, n < 64 ? n : 64, &img, o[k]);
				if (ob == best || ob == SIZE_MAX)
					continue;
				im->emb_other[k] = malloc((size_t)r->nvar * HK_EMBED_DIM * sizeof(float));
				st = !im->emb_other[k] ? HK_E_NOMEM
				                       : embed_face(r, &img, &faces[ob], im->emb_other[k]);
			}
			if (st) {
				free(im->emb);
				im->emb = NULL;
				im->state = IMG_ERROR;
				fprintf(stderr, "\nlfw: %s: %s\n", im->path, hk_last_error());
			} else {
				im->state = faces[best].flags & HK_FACE_RESCUED ? IMG_RESCUED : IMG_OK;
				im->onet = faces[best].landmark_source == HK_LANDMARKS_ONET;
			}
		}
		hk_image_free(&img);
	next:;
		size_t d = atomic_fetch_add(&r->done, 1) + 1;
		if (r->progress)
			hkb_progress("lfw images", d, r->n);
		else if (d % 1000 == 0 || d == r->n)
			fprintf(stderr, "lfw: %zu/%zu images\n", d, r->n); /* logs */
	}
	free(faces);
	return NULL;
}

/* Scores of every pair for embedding variant v; pairs with an image without
 * a usable face (or, when no_rescue, found only by the rescue pass) get
 * UNDETECTED_SCORE. Returns the number of such pairs. */
size_t hkb_lfw_score_pairs(const lfw_pair *pairs, size_t np, const lfw_image *img, int nvar,
                           int v, int no_rescue, float *score, size_t *genuine)
{
	size_t undet = 0;
	*genuine = 0;
	for (size_t i = 0; i < np; i++) {
		const lfw_image *A = &img[pairs[i].a], *B = &img[pairs[i].b];
		int ok = A->emb && B->emb &&
		         !(no_rescue && (A->state == IMG_RESCUED || B->state == IMG_RESCUED));
		if (ok) {
			score[i] = hk_cosine(A->emb + (size_t)v * HK_EMBED_DIM,
			                     B->emb + (size_t)v * HK_EMBED_DIM, HK_EMBED_DIM);
		} else {
			score[i] = UNDETECTED_SCORE;
			undet++;
			*genuine += pairs[i].same;
		}
	}
	(void)nvar;
	return undet;
}

int hkb_lfw_index(hkb_lfw_set *s, char **pa, char **pb, const char *all_dir)
{
	int rc = 0;
	char **paths = NULL;
	size_t npaths = 0, cap = 0;
	for (size_t i = 0; i < s->np && !rc; i++) {
		rc |= push_path(&paths, &npaths, &cap, strdup(pa[i]));
		rc |= push_path(&paths, &npaths, &cap, strdup(pb[i]));
	}
	if (!rc && all_dir)
		rc = list_all(all_dir, &paths, &npaths, &cap);
	if (!rc) {
		qsort(paths, npaths, sizeof *paths, cmp_str);
		size_t u = 0;
		for (size_t i = 0; i < npaths; i++) {
			if (u && !strcmp(paths[u - 1], paths[i]))
				free(paths[i]);
			else
				paths[u++] = paths[i];
		}
		npaths = u;
		s->img = calloc(npaths ? npaths : 1, sizeof *s->img);
		rc = s->img ? 0 : -1;
	}
	for (size_t i = 0; !rc && i < npaths; i++)
		s->img[i].path = paths[i];
	if (!rc)
		s->nimg = npaths;
	for (size_t i = 0; i < s->np; i++) {
		if (!rc) {
			char **fa = bsearch(&pa[i], paths, npaths, sizeof *paths, cmp_str);
			char **fb = bsearch(&pb[i], paths, npaths, sizeof *paths, cmp_str);
			s->pairs[i].a = (uint32_t)(fa - paths);
			s->pairs[i].b = (uint32_t)(fb - paths);
		}
		if (pa)
			free(pa[i]);
		if (pb)
			free(pb[i]);
	}
	if (rc) /* paths not handed to img */
		for (size_t i = 0; i < npaths; i++)
			free(paths[i]);
	free(pa);
	free(pb);
	free(paths);
	if (rc)
		hkb_lfw_free(s);
	return rc;
}

int hkb_lfw_load(const char *pairs_file, const char *dir, long max_folds, int all_images,
                 hkb_lfw_set *s)
{
	memset(s, 0, sizeof *s);
	char **pa = NULL, **pb = NULL;
	int rc = read_pairs(pairs_file, dir, max_folds, &s->pairs, &s->np, &pa, &pb);
	if (rc) { /* read_pairs may leave a partial list */
		for (size_t i = 0; i < s->np; i++) {
			if (pa)
				free(pa[i]);
			if (pb)
				free(pb[i]);
		}
		free(pa);
		free(pb);
		hkb_lfw_free(s);
		return rc;
	}
	return hkb_lfw_index(s, pa, pb, all_images ? dir : NULL);
}

int hkb_kfold_eval(const float *score, const uint8_t *same, const uint8_t *fold, size_t np,
                   unsigned nf, hkb_kfold_result *r)
{
	memset(r, 0, sizeof *r);
	if (nf > 100 || hk__kfold(score, same, fold, np, nf, r->acc, r->thr))
		return -1;
	double var = 0;
	for (unsigned f = 0; f < nf; f++) {
		r->mean += r->acc[f] / nf;
		r->mthr += r->thr[f] / nf;
	}
	for (unsigned f = 0; f < nf; f++)
		var += (r->acc[f] - r->mean) * (r->acc[f] - r->mean) / nf;
	r->sd = sqrt(var);
	r->se = r->sd / sqrt((double)nf);
	r->tar = hk__tar_at_far(score, same, np, 1e-3, &r->far_thr);
	return 0;
}

int hkb_lfw_write_images(const char *path, const lfw_image *img, size_t nimg)
{
	FILE *fi = fopen(path, "w");
	if (!fi)
		return -1;
	static const char *const state[] = {"ok", "rescued", "no_face", "error"};
	fprintf(fi, "# path\tstate\tfaces\tx0\ty0\tx1\ty1\tscore\tlandmarks\n");
	for (size_t i = 0; i < nimg; i++)
		fprintf(fi, "%s\t%s\t%u\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f\t%s\n", img[i].path,
		        state[img[i].state], img[i].nfaces, img[i].box[0], img[i].box[1],
		        img[i].box[2], img[i].box[3], img[i].score,
		        img[i].emb ? (img[i].onet ? "onet" : "detector") : "-");
	return fclose(fi) ? -1 : 0;
}

double hkb_lfw_embed(const hk_engine *e, hkb_lfw_set *s, long threads, int nvar,
                     int centre, int all_rules, int progress)
{
	lfw_run run = {.engine = e, .img = s->img, .n = s->nimg, .progress = progress,
	               .nvar = nvar, .centre = centre, .all_rules = all_rules};
	atomic_init(&run.next, 0);
	atomic_init(&run.done, 0);
	pthread_t th[64];
	if (threads > 64)
		threads = 64;
	double t0 = hkb_now();
	long started = 0;
	for (long t = 0; t < threads; t++)
		started += !pthread_create(&th[started], NULL, worker, &run);
	if (!started)
		worker(&run);
	for (long t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	return hkb_now() - t0;
}

/* ---- the same through hk_embed_many ------------------------------------- */

#define NO_FACE UINT32_MAX

typedef struct job_run {
	hkb_lfw_set *s;
	int centre, all_rules, progress;
	uint32_t (*pick)[3]; /* per image: the subject, the other rules' faces */
	size_t done;
} job_run;

/* Marks the faces the rules pick, as worker() embeds them. */
static int job_select(void *user, uint64_t id, const hk_image *img, const hk_face *faces,
                      const uint8_t *usable, size_t n, uint8_t *embed)
{
	job_run *r = user;
	uint32_t *pk = r->pick[id];
	size_t best = hkb_pick_subject(faces, n, img, r->centre ? HKB_RULE_CENTRE : HKB_RULE_ENGINE);
	pk[0] = pk[1] = pk[2] = NO_FACE;
	if (best == SIZE_MAX)
		return 0;
	pk[0] = (uint32_t)best;
	embed[best] = 1;
	int o[2];
	other_rules(r->centre, o);
	for (int k = 0; k < 2 && r->all_rules; k++) {
		size_t ob = hkb_pick_subject(faces, n, img, o[k]);
		if (ob != best && ob != SIZE_MAX) {
			pk[1 + k] = (uint32_t)ob;
			embed[ob] = 1;
		}
	}
	(void)usable;
	return 0;
}

static float *copy_emb(const float *v)
{
	float *c = v ? malloc(HK_EMBED_DIM * sizeof *c) : NULL;
	if (c)
		memcpy(c, v, HK_EMBED_DIM * sizeof *c);
	return c;
}

static int job_result(void *user, const hk_embed_result *res)
{
	job_run *r = user;
	lfw_image *im = &r->s->img[res->id];
	const uint32_t *pk = r->pick[res->id];
	im->nfaces = (uint32_t)res->found;
	if (res->status) {
		im->state = IMG_ERROR;
		fprintf(stderr, "\nlfw: %s: %s\n", im->path, res->error);
	} else if (pk[0] == NO_FACE) {
		im->state = IMG_NOFACE;
	} else {
		const hk_embed_face *f = &res->faces[pk[0]];
		memcpy(im->box, f->face.box, sizeof im->box);
		im->score = f->face.score;
		im->emb = copy_emb(f->embedding);
		for (int k = 0; k < 2; k++)
			if (pk[1 + k] != NO_FACE)
				im->emb_other[k] = copy_emb(res->faces[pk[1 + k]].embedding);
		im->state = f->face.flags & HK_FACE_RESCUED ? IMG_RESCUED : IMG_OK;
		im->onet = f->face.landmark_source == HK_LANDMARKS_ONET;
		if (!im->emb)
			im->state = IMG_ERROR;
	}
	size_t d = ++r->done;
	if (r->progress)
		hkb_progress("lfw images", d, r->s->nimg);
	else if (d % 1000 == 0 || d == r->s->nimg)
		fprintf(stderr, "lfw: %zu/%zu images\n", d, r->s->nimg); /* logs */
	return 0;
}

double hkb_lfw_embed_job(const hk_engine *e, hkb_lfw_set *s, long detect_threads,
                         long embed_threads, int centre,
                         int all_rules, int progress, hk_embed_stats *st)
{
	job_run r = {.s = s, .centre = centre, .all_rules = all_rules, .progress = progress};
	r.pick = calloc(s->nimg ? s->nimg : 1, sizeof *r.pick);
	const char **paths = calloc(s->nimg ? s->nimg : 1, sizeof *paths);
	for (size_t i = 0; paths && i < s->nimg; i++)
		paths[i] = s->img[i].path;
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
	hk_frames *src = NULL;
	double t0 = hkb_now(), wall = -1;
	if (!r.pick || !paths || hk_frames_open_list(paths, s->nimg, &fp, &src)) {
		fprintf(stderr, "lfw: cannot open the images as a frame source: %s\n", hk_last_error());
	} else {
		hk_embed_params jp;
		hk_embed_default_params(&jp);
		jp.detect_threads = (uint32_t)detect_threads;
		jp.embed_threads = (uint32_t)embed_threads;
		jp.select_fn = job_select;
		jp.on_result = job_result;
		jp.user = &r;
		if (hk_embed_many(e, src, &jp, st))
			fprintf(stderr, "lfw: %s\n", hk_last_error());
		else
			wall = hkb_now() - t0;
	}
	hk_frames_destroy(src);
	free(paths);
	free(r.pick);
	return wall;
}

void hkb_lfw_free(hkb_lfw_set *s)
{
	for (size_t i = 0; s->img && i < s->nimg; i++) {
		if (s->img[i].emb)
			hk__wipe(s->img[i].emb, HK_EMBED_DIM * sizeof(float));
		free(s->img[i].emb);
		for (int k = 0; k < 2; k++) {
			if (s->img[i].emb_other[k])
				hk__wipe(s->img[i].emb_other[k], HK_EMBED_DIM * sizeof(float));
			free(s->img[i].emb_other[k]);
		}
		free(s->img[i].path);
	}
	free(s->img);
	free(s->pairs);
	memset(s, 0, sizeof *s);
}

int hkb_engine_arg(int argc, char **argv, int *i, hk_engine_params *ep)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!strcmp(a, "--no-onet"))
		ep->onet = HK_OFF;
	else if (!strcmp(a, "--no-flip"))
		ep->flip = HK_OFF;
	else if (!strcmp(a, "--no-rescue"))
		ep->rescue = HK_OFF;
	else if (v && !strcmp(a, "--precision") && hkb_parse_precision(v, &ep->precision) == 0)
		++*i;
	else if (v && !strcmp(a, "--models"))
		ep->model_dir = argv[++*i];
	else if (v && !strcmp(a, "--detector") && (!strcmp(v, "dense") || !strcmp(v, "sparse"))) {
		ep->detector = !strcmp(v, "dense") ? HK_DETECTOR_DENSE : HK_DETECTOR_SPARSE;
		++*i;
	} else if (v && !strcmp(a, "--align") && (!strcmp(v, "frontal") || !strcmp(v, "pose") ||
	                                                !strcmp(v, "visible"))) {
		ep->align = !strcmp(v, "pose")      ? HK_ALIGN_POSE
		            : !strcmp(v, "visible") ? HK_ALIGN_VISIBLE
		                                    : HK_ALIGN_FRONTAL;
		++*i;
	} else if (v && !strcmp(a, "--passes")) {
		/* comma-separated: flip, rotate, zoom, always; or none */
		uint32_t bits = 0;
		char buf[128];
		snprintf(buf, sizeof buf, "%s", v);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			bits |= !strcmp(t, "flip")     ? HK_PASS_FLIP
			        : !strcmp(t, "rotate") ? HK_PASS_ROTATE
			        : !strcmp(t, "zoom")   ? HK_PASS_ZOOM
			        : !strcmp(t, "always") ? HK_PASS_ALWAYS
			        : !strcmp(t, "mtcnn")  ? HK_PASS_MTCNN
			        : !strcmp(t, "none")   ? HK_PASS_NONE
			                               : 1u << 31;
		if (bits >> 31)
			return 0;
		ep->passes = bits;
		++*i;
	} else
		return 0;
	return 1;
}
