/* hk_embed_many: the pipelined collection path gives, image by image and in
 * input order, what the one-image calls give (hk_engine_embed_largest,
 * hk_engine_detect + hk_engine_embed) on real photos, through small
 * queues, with unreadable and corrupt files in the middle of the list and
 * a job stopped by its callback. Skips without the models or the photos
 * ($HERKEN_SHARED/golden/images, datasets/lfw). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"

static hk_engine *engine_or_skip(uint32_t precision)
{
	hk_engine_params p;
	hk_engine_default_params(&p);
	p.threads = 1;
	p.precision = precision;
	hk_engine *e = NULL;
	hk_status st = hk_engine_create(&p, &e);
	if (st == HK_E_NOT_FOUND || st == HK_E_UNSUPPORTED)
		cr_skip_test("models absent or precision unsupported: %s", hk_last_error());
	cr_assert_eq(st, HK_OK, "%s", hk_last_error());
	return e;
}

/* The list: the six golden photos, up to nlfw LFW photos (first files of
 * the first person directories, sorted), a missing file and a corrupt
 * JPEG in the middle. Skips when the photos are absent. */
typedef struct list {
	char *path[64];
	size_t n;
	int bad[64]; /* 1: must fail */
	char corrupt[64];
} list;

static void list_free(list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->path[i]);
	if (l->corrupt[0])
		unlink(l->corrupt);
}

static void add(list *l, const char *p, int bad)
{
	cr_assert_lt(l->n, 64);
	l->bad[l->n] = bad;
	l->path[l->n++] = strdup(p);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void make_list(list *l, size_t nlfw)
{
	memset(l, 0, sizeof *l);
	const char *shared = getenv("HERKEN_SHARED");
	char p[4096];
	snprintf(p, sizeof p, "%s/golden/images/sample1.jpg", shared ? shared : "");
	if (!shared || access(p, R_OK))
		cr_skip_test("golden photos absent (HERKEN_SHARED)");
	for (int i = 1; i <= 3; i++) {
		snprintf(p, sizeof p, "%s/golden/images/sample%d.jpg", shared, i);
		add(l, p, 0);
	}
	add(l, "/nonexistent/herken/photo.jpg", 1);
	snprintf(l->corrupt, sizeof l->corrupt, "/tmp/herken-embed-many-XXXXXX");
	int fd = mkstemp(l->corrupt);
	cr_assert_geq(fd, 0);
	static const unsigned char junk[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 2, 3};
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	add(l, l->corrupt, 1);
	for (int i = 4; i <= 6; i++) {
		snprintf(p, sizeof p, "%s/golden/images/sample%d.jpg", shared, i);
		add(l, p, 0);
	}
	snprintf(p, sizeof p, "%s/datasets/lfw", shared);
	DIR *d = opendir(p);
	char *names[4096];
	size_t nn = 0;
	for (struct dirent *de; d && (de = readdir(d)) && nn < 4096;)
		if (de->d_name[0] != '.')
			names[nn++] = strdup(de->d_name);
	if (d)
		closedir(d);
	qsort(names, nn, sizeof *names, cmp_str);
	for (size_t i = 0; i < nn; i++) {
		char q[4200];
		snprintf(q, sizeof q, "%s/datasets/lfw/%s/%s_0001.jpg", shared, names[i], names[i]);
		if (l->n < 8 + nlfw && !access(q, R_OK))
			add(l, q, 0);
		free(names[i]);
	}
}

typedef struct got {
	size_t n;
	uint64_t seq[64], id[64];
	hk_status status[64];
	size_t nfaces[64], embedded[64], subject[64];
	float box[64][4];
	float emb[64][HK_EMBED_DIM]; /* the subject's (SUBJECT mode) */
	size_t stop_after;           /* on_result returns 1 after this many (0: never) */
	uint64_t progress_calls;
} got;

static int on_result(void *user, const hk_embed_result *r)
{
	got *g = user;
	cr_assert_lt(g->n, 64);
	size_t i = g->n++;
	g->seq[i] = r->seq;
	g->id[i] = r->id;
	g->status[i] = r->status;
	g->nfaces[i] = r->nfaces;
	g->embedded[i] = r->embedded;
	g->subject[i] = SIZE_MAX;
	if (r->status)
		cr_assert(r->error[0], "an error carries a message");
	for (size_t k = 0; k < r->nfaces; k++)
		if (r->faces[k].embedding) {
			g->subject[i] = k;
			memcpy(g->box[i], r->faces[k].face.box, sizeof g->box[i]);
			memcpy(g->emb[i], r->faces[k].embedding, sizeof g->emb[i]);
		}
	return g->stop_after && g->n >= g->stop_after;
}

static void on_progress(void *user, const hk_embed_stats *st)
{
	got *g = user;
	g->progress_calls++;
	cr_assert_leq(st->images, st->total);
}

static hk_status run(const hk_engine *e, const list *l, hk_embed_params *jp, uint32_t flags,
                     got *g, hk_embed_stats *st)
{
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = flags;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list((const char *const *)l->path, l->n, &fp, &src), HK_OK, "%s",
	             hk_last_error());
	jp->on_result = on_result;
	jp->on_progress = on_progress;
	jp->user = g;
	hk_status s = hk_embed_many(e, src, jp, st);
	hk_frames_destroy(src);
	return s;
}

/* Every image as hk_engine_embed_largest sees it: same status, same face,
 * the same embedding to tol, bit-identical when exact (the count of
 * bit-identical ones is logged). */
static void check_against_largest(const hk_engine *e, const list *l, const got *g, float tol,
                                  int exact_required)
{
	cr_assert_eq(g->n, l->n);
	size_t exact = 0, compared = 0;
	float worst_all = 0;
	for (size_t i = 0; i < l->n; i++) {
		cr_assert_eq(g->seq[i], i, "results in input order");
		cr_assert_eq(g->id[i], i);
		if (l->bad[i]) {
			cr_assert_neq(g->status[i], HK_OK, "%s must fail", l->path[i]);
			continue;
		}
		hk_image img;
		cr_assert_eq(hk_image_load(l->path[i], &img), HK_OK);
		hk_face f;
		float ref[HK_EMBED_DIM];
		hk_status s = hk_engine_embed_largest(e, &img, &f, ref);
		hk_image_free(&img);
		cr_assert_eq(g->status[i], s, "%s: job %d, one-image path %d", l->path[i], g->status[i], s);
		if (s)
			continue;
		cr_assert_eq(g->embedded[i], 1);
		for (int k = 0; k < 4; k++)
			cr_assert_eq(g->box[i][k], f.box[k], "same detections");
		float worst = 0;
		for (size_t d = 0; d < HK_EMBED_DIM; d++)
			worst = fmaxf(worst, fabsf(g->emb[i][d] - ref[d]));
		cr_assert_leq(worst, tol, "%s: embeddings differ by %g", l->path[i], worst);
		int same = memcmp(g->emb[i], ref, sizeof ref) == 0;
		cr_assert(same || !exact_required, "%s: not bit-identical (max diff %g)", l->path[i], worst);
		exact += same;
		worst_all = fmaxf(worst_all, worst);
		compared++;
	}
	cr_assert_geq(compared, 6, "real photos were compared");
	cr_log_info("embed_many: %zu of %zu embeddings bit-identical to the one-image path, max "
	            "|diff| %g", exact, compared, worst_all);
}

/* One embedder executor: bit-identical to the one-image path (chips of
 * several images in one call give the same bits as alone). Two: the copy
 * loaded for the second executor times oneDNN's candidate fp32
 * implementations at load and keeps the fastest (core/nn/exec.c), so it
 * may run other kernels than the engine's embedder and round otherwise:
 * measured up to 2e-6 per component (int8: identical); bounded at 1e-5.
 * With that choice off (HERKEN_NN_TUNE=0), bit-identical again. */
Test(embed_many, same_as_one_image_path_fp32, .timeout = 600)
{
	list l;
	make_list(&l, 16);
	hk_engine *e = engine_or_skip(HK_PREC_FP32);
	for (uint32_t E = 1; E <= 2; E++) {
		hk_embed_params jp;
		hk_embed_default_params(&jp);
		jp.detect_threads = 2;
		jp.embed_threads = E;
		got *g = calloc(1, sizeof *g);
		hk_embed_stats st;
		cr_assert_eq(run(e, &l, &jp, HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER, g, &st), HK_OK,
		             "%s", hk_last_error());
		check_against_largest(e, &l, g, E == 1 ? 0.f : 1e-5f, E == 1);
		cr_assert_eq(st.images, l.n);
		cr_assert_geq(st.errors, 2);
		cr_assert_eq(st.embedders, E);
		cr_assert_eq(st.chips, 2 * st.embedded, "plain and mirrored chip per face");
		cr_assert_leq(st.max_batch, 8);
		cr_assert_leq(st.peak_chips, 64);
		cr_assert_geq(g->progress_calls, 1, "a final progress report");
		free(g);
	}
	hk_engine_destroy(e);
	/* Without the timing-based kernel choice every load runs the same
	 * kernels: two executors are bit-identical too (this process only:
	 * Criterion runs each test in its own). */
	setenv("HERKEN_NN_TUNE", "0", 1);
	e = engine_or_skip(HK_PREC_FP32);
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.embed_threads = 2;
	got *g = calloc(1, sizeof *g);
	cr_assert_eq(run(e, &l, &jp, HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER, g, NULL), HK_OK);
	check_against_largest(e, &l, g, 0.f, 1);
	free(g);
	hk_engine_destroy(e);
	list_free(&l);
}

Test(embed_many, same_as_one_image_path_int8, .timeout = 600)
{
	list l;
	make_list(&l, 8);
	hk_engine *e = engine_or_skip(HK_PREC_INT8);
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.embed_threads = 2;
	got *g = calloc(1, sizeof *g);
	cr_assert_eq(run(e, &l, &jp, HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER, g, NULL), HK_OK);
	check_against_largest(e, &l, g, 1e-6f, 0);
	free(g);
	hk_engine_destroy(e);
	list_free(&l);
}

/* Tiny queues (one image in flight per slot, two chip slots, batches of
 * three), more detect threads than images in flight, undecoded frames
 * (the job decodes) in completion order: still the same results, in the
 * source's order. */
Test(embed_many, tiny_queues_and_undecoded_frames, .timeout = 600)
{
	list l;
	make_list(&l, 4);
	hk_engine *e = engine_or_skip(HK_PREC_FP32);
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.detect_threads = 3;
	jp.embed_threads = 1;
	jp.max_images = 2;
	jp.max_chips = 2;
	jp.batch = 3;
	jp.flush_us = 1;
	got *g = calloc(1, sizeof *g);
	hk_embed_stats st;
	cr_assert_eq(run(e, &l, &jp, HK_FRAMES_IN_ORDER, g, &st), HK_OK, "%s", hk_last_error());
	check_against_largest(e, &l, g, 0.f, 1);
	cr_assert_leq(st.peak_images, 2);
	cr_assert_leq(st.peak_chips, 2);
	cr_assert_leq(st.max_batch, 2, "never more chips than slots");
	free(g);
	hk_engine_destroy(e);
	list_free(&l);
}

typedef struct all_acc {
	size_t n, faces, embedded, subjects;
	float worst;
	const hk_engine *e;
	const list *l;
} all_acc;

static int all_cb(void *user, const hk_embed_result *r)
{
	all_acc *a = user;
	cr_assert_eq(r->seq, a->n);
	a->n++;
	if (a->l->bad[r->seq]) {
		cr_assert_neq(r->status, HK_OK);
		return 0;
	}
	cr_assert_eq(r->status, HK_OK, "%s: %s", r->name, r->error);
	hk_image img;
	cr_assert_eq(hk_image_load(r->name, &img), HK_OK);
	size_t usable = 0, subjects = 0;
	for (size_t k = 0; k < r->nfaces; k++) {
		const hk_embed_face *f = &r->faces[k];
		hk_quality q;
		if (hk_face_quality(&img, &f->face, NULL, &q) == HK_OK)
			cr_assert_eq(f->quality.reasons, q.reasons);
		cr_assert_eq(f->usable, f->quality.reasons == 0);
		cr_assert_eq(!!f->embedding, f->usable, "ALL embeds exactly the usable faces");
		usable += f->usable;
		subjects += f->subject;
		if (!f->embedding)
			continue;
		float ref[HK_EMBED_DIM];
		cr_assert_eq(hk_engine_embed(a->e, &img, &f->face, 1, ref), HK_OK);
		for (size_t d = 0; d < HK_EMBED_DIM; d++)
			a->worst = fmaxf(a->worst, fabsf(f->embedding[d] - ref[d]));
	}
	cr_assert_eq(r->embedded, usable);
	cr_assert_eq(subjects, usable ? 1 : 0, "one subject among the usable faces");
	a->embedded += usable;
	hk_image_free(&img);
	return 0;
}

/* Every usable face under the quality rule, each as hk_engine_embed gives
 * it for that face alone. */
Test(embed_many, all_faces_with_quality_rule, .timeout = 600)
{
	list l;
	make_list(&l, 0);
	hk_engine *e = engine_or_skip(HK_PREC_FP32);
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.select = HK_EMBED_ALL;
	jp.use_quality = 1;
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list((const char *const *)l.path, l.n, &fp, &src), HK_OK);
	all_acc a = {.e = e, .l = &l};
	jp.user = &a;
	jp.on_result = all_cb;
	hk_embed_stats st;
	cr_assert_eq(hk_embed_many(e, src, &jp, &st), HK_OK, "%s", hk_last_error());
	hk_frames_destroy(src);
	cr_assert_eq(a.n, l.n);
	cr_assert_geq(a.embedded, 10, "the group photos have many usable faces");
	cr_assert_eq(st.embedded, a.embedded);
	cr_assert_leq(a.worst, 1e-5f, "two executors: see same_as_one_image_path_fp32");
	cr_log_info("embed_many, every usable face: max |diff| %g", a.worst);
	hk_engine_destroy(e);
	list_free(&l);
}

/* on_result stops the job: HK_E_STATE, nothing delivered after. */
Test(embed_many, stopped_by_callback, .timeout = 600)
{
	list l;
	make_list(&l, 8);
	hk_engine *e = engine_or_skip(HK_PREC_FP32);
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	got *g = calloc(1, sizeof *g);
	g->stop_after = 3;
	cr_assert_eq(run(e, &l, &jp, HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER, g, NULL), HK_E_STATE);
	cr_assert_eq(g->n, 3);
	/* and bad arguments */
	cr_assert_eq(hk_embed_many(NULL, NULL, NULL, NULL), HK_E_INVALID);
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list((const char *const *)l.path, 1, &fp, &src), HK_OK);
	jp.select = 9;
	cr_assert_eq(hk_embed_many(e, src, &jp, NULL), HK_E_INVALID);
	hk_frames_destroy(src);
	free(g);
	hk_engine_destroy(e);
	list_free(&l);
}
