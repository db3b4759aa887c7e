/* herken-bench stream: the recogniser on video.
 *
 *  - visits: visit-level accuracy on LFW, on BLUFR trial 1's TEST people
 *    only (the shipped calibration was fitted on trial 1's train split).
 *    People with >= 9 test photos, sorted by label, alternate between
 *    customers (enrolled from their first photo) and strangers. A visit is
 *    k photos of one person (customers: photos 1..k, strangers: 0..k-1);
 *    its template is the mean embedding of the k views, or (the "best
 *    single face" peer) the highest score of the k views alone; every
 *    disjoint visit of a person counts (at most 8). Threshold:
 *    hk_calib_score_at_fpir(1e-3, N enrolled). Reports FNIR (customer not
 *    matched to himself) and the measured FPIR against k = 1, 2, 4, 8.
 *  - speed: synthetic 720p and 1080p frames with 1, 4 and 8 faces (LFW
 *    photos pasted on grey, drifting a few pixels a frame like a hand-held
 *    camera) through hk_recognizer_push_frame; frames/s, time per stage;
 *    and the entrance clip through the FFmpeg source: decode-only frames/s
 *    against the whole, so decode's share is measured, and the latency from
 *    a visit's start to its decision (video time).
 * Embeddings of LFW come from the BLUFR cache (herken-bench blufr builds it).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "blufr_common.h"
#include "recognizer/recognizer.h"

#define D HK_EMBED_DIM
#define NK 4
static const int ks[NK] = {1, 2, 4, 8};

static const char stream_usage[] =
    "usage: herken-bench stream [--json] [--frames N] [--no-visits] [--no-speed]\n"
    "                           [--only WxHxFACES | --only clip]\n"
    "  visit-level FNIR at FPIR 1e-3 against views per visit (LFW BLUFR trial 1\n"
    "  test people), frames/s of the recogniser at 720p/1080p with 1/4/8 faces,\n"
    "  the entrance clip through the FFmpeg source (decode share, decision latency)\n";

typedef struct person {
	uint32_t label;
	uint32_t img[64];
	int n;
} person;

static int by_label(const void *a, const void *b)
{
	const person *x = a, *y = b;
	return (x->label > y->label) - (x->label < y->label);
}

static void mean_of(const hkb_blufr *b, const uint32_t *img, int k, float *out)
{
	memset(out, 0, D * sizeof *out);
	for (int i = 0; i < k; i++)
		for (int d = 0; d < D; d++)
			out[d] += b->emb[(size_t)img[i] * D + d];
}

/* Best subject and score of a query against the customers' gallery. */
static float best_of(hk_gallery *g, const float *q, hk_template_id *id)
{
	float s;
	if (hk_gallery_search(g, q, 1, &s, id) != HK_OK)
		return -INFINITY;
	return s;
}

static int visits(const hkb_blufr *b, int json)
{
	/* Test people of trial 1 with >= 9 usable photos. */
	uint32_t maxl = 0;
	for (size_t i = 0; i < b->n; i++)
		maxl = b->label[i] > maxl ? b->label[i] : maxl;
	size_t np = 0, cap = (size_t)maxl + 1;
	person *ps = calloc(cap, sizeof *ps);
	int *slot = malloc((maxl + 1) * sizeof *slot);
	if (!ps || !slot)
		return 3;
	for (uint32_t l = 0; l <= maxl; l++)
		slot[l] = -1;
	for (size_t i = 0; i < b->n; i++) {
		uint8_t r = b->role[1][i];
		if (!b->ok[i] || (r != 'g' && r != 'p'))
			continue;
		uint32_t l = b->label[i];
		if (slot[l] < 0) {
			if (np == cap)
				break;
			slot[l] = (int)np;
			ps[np].label = l;
			np++;
		}
		person *p = &ps[slot[l]];
		if (p->n < 64)
			p->img[p->n++] = (uint32_t)i;
	}
	size_t keep = 0;
	for (size_t i = 0; i < np; i++)
		if (ps[i].n >= 9)
			ps[keep++] = ps[i];
	np = keep;
	qsort(ps, np, sizeof *ps, by_label);
	hk_gallery_params gp;
	hk_gallery_default_params(&gp);
	gp.dim = D;
	hk_gallery *g;
	if (hk_gallery_create(&gp, &g) != HK_OK)
		return 3;
	size_t ncust = 0;
	for (size_t i = 0; i < np; i += 2) {
		char name[32];
		snprintf(name, sizeof name, "%u", ps[i].label);
		hk_gallery_add(g, name, &b->emb[(size_t)ps[i].img[0] * D], NULL);
		ncust++;
	}
	hk_calib *cal = NULL;
	if (hkb_blufr_calib(b, &cal) != HK_OK) {
		fprintf(stderr, "stream: %s\n", hk_last_error());
		hk_gallery_destroy(g);
		return 3;
	}
	float thr;
	hk_calib_score_at_fpir(cal, 1e-3, ncust, &thr);
	if (!json) {
		printf("\n## Visit-level accuracy (LFW BLUFR trial 1 test people, >= 9 photos)\n\n");
		printf("%zu customers enrolled from one photo each, %zu strangers; threshold %.4f "
		       "= calibrated FPIR 1e-3 at N = %zu.\n\n",
		       ncust, np - ncust, thr, ncust);
		printf("| k views | template | genuine visits | FNIR | stranger visits | FPIR measured |\n");
		printf("|---|---|---|---|---|---|\n");
	}
	float q[D], qq[D];
	for (int ki = 0; ki < NK; ki++) {
		int k = ks[ki];
		for (int mode = 0; mode < 2; mode++) {
			size_t gen = 0, miss = 0, str = 0, fp = 0;
			for (size_t i = 0; i < np; i++) {
				const person *p = &ps[i];
				int customer = (i % 2) == 0;
				/* Every disjoint visit of k photos (8 at most per person,
				 * so the prolific few do not dominate). */
				int avail = customer ? p->n - 1 : p->n;
				int nvis = avail / k < 8 ? avail / k : 8;
				for (int vi = 0; vi < nvis; vi++) {
				const uint32_t *views = (customer ? p->img + 1 : p->img) + vi * k;
				float s;
				hk_template_id id = HK_NO_ID;
				if (mode == 0) {
					mean_of(b, views, k, q);
					s = best_of(g, q, &id);
				} else {
					s = -INFINITY;
					for (int v = 0; v < k; v++) {
						hk_template_id vid;
						memcpy(qq, &b->emb[(size_t)views[v] * D], sizeof qq);
						float sv = best_of(g, qq, &vid);
						if (sv > s) {
							s = sv;
							id = vid;
						}
					}
				}
				int hit = s >= thr;
				if (customer) {
					gen++;
					char who[32], want[32];
					snprintf(want, sizeof want, "%u", p->label);
					int right = hit && hk_gallery_subject_of(g, id, who, sizeof who) == HK_OK &&
					            !strcmp(who, want);
					miss += !right;
				} else {
					str++;
					fp += hit;
				}
				}
			}
			const char *name = mode == 0 ? "mean" : "best single";
			if (json)
				printf("{\"suite\":\"stream-visits\",\"k\":%d,\"template\":\"%s\",\"genuine\":%zu,"
				       "\"fnir\":%.4f,\"strangers\":%zu,\"fpir\":%.4f,\"threshold\":%.4f}\n",
				       k, name, gen, (double)miss / gen, str, (double)fp / str, thr);
			else
				printf("| %d | %s | %zu | %.4f | %zu | %.4f |\n", k, name, gen,
				       (double)miss / gen, str, (double)fp / str);
			if (k == 1)
				break; /* one view: both are the same */
		}
	}
	hk_calib_destroy(cal);
	hk_gallery_destroy(g);
	free(ps);
	free(slot);
	return 0;
}

/* A synthetic frame: nf LFW photos on grey, offset by (dx, dy). */
static void compose(hk_image *fr, const hk_image *ph, int nf, int dx, int dy)
{
	memset(fr->data, 110, (size_t)fr->stride * fr->height);
	int cols = nf <= 4 ? nf : 4;
	for (int f = 0; f < nf; f++) {
		const hk_image *p = &ph[f];
		int cw = (int)fr->width / cols;
		int x0 = (f % cols) * cw + (cw - (int)p->width) / 2 + dx;
		int y0 = (int)fr->height / 4 + (f / cols) * ((int)fr->height / 2) -
		         (int)p->height / 2 + dy;
		for (uint32_t y = 0; y < p->height; y++) {
			int yy = y0 + (int)y;
			if (yy < 0 || yy >= (int)fr->height)
				continue;
			for (uint32_t x = 0; x < p->width; x++) {
				int xx = x0 + (int)x;
				if (xx < 0 || xx >= (int)fr->width)
					continue;
				memcpy(fr->data + (size_t)yy * fr->stride + 3 * (size_t)xx,
				       p->data + (size_t)y * p->stride + 3 * x, 3);
			}
		}
	}
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Per-frame cost of a run: medians of wall and process CPU time (every
 * thread: oneDNN's and the decoder's), and each stage's mean share of the
 * recogniser's time from its counters; track = the rest of push_frame
 * (association, templates, events). */
typedef struct run_cost {
	double *wall, *cpu; /* per frame, seconds */
	size_t n, cap;
	double push_s;      /* sum of push_frame wall time */
} run_cost;

static void cost_add(run_cost *c, double wall, double cpu)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		double *w = realloc(c->wall, cap * sizeof *w), *u = w ? realloc(c->cpu, cap * sizeof *u) : NULL;
		if (w)
			c->wall = w;
		if (!u)
			return;
		c->cpu = u;
		c->cap = cap;
	}
	c->wall[c->n] = wall;
	c->cpu[c->n++] = cpu;
}

/* Median wall ms, median CPU ms per frame; stage ms per frame (means) into
 * ms[5]: detect, quality, track, embed, match (wall, from the counters),
 * and the same in process CPU time into cms[5] (track = the rest of the
 * mean CPU time per frame). */
static void cost_summary(run_cost *c, const hk_recognizer *r, double *wall_ms, double *cpu_ms,
                         double ms[5], double cms[5])
{
	hk_recognizer_stats s;
	hk_recognizer_get_stats(r, &s);
	const hk_recognizer_stats *st = &s;
	double per = c->n ? 1e-6 / c->n : 0, cpu4[4], mean_cpu = 0;
	hk__recognizer_cpu_ms(r, cpu4);
	for (size_t i = 0; i < c->n; i++)
		mean_cpu += c->cpu[i];
	mean_cpu = c->n ? 1e3 * mean_cpu / c->n : 0;
	const int at[4] = {0, 1, 3, 4};
	for (int k = 0; k < 4; k++)
		cms[at[k]] = c->n ? cpu4[k] / c->n : 0;
	cms[2] = fmax(0, mean_cpu - cms[0] - cms[1] - cms[3] - cms[4]);
	ms[0] = st->detect_ns * per;
	ms[1] = st->quality_ns * per;
	ms[3] = st->embed_ns * per;
	ms[4] = st->match_ns * per;
	ms[2] = fmax(0, c->n ? 1e3 * c->push_s / c->n - ms[0] - ms[1] - ms[3] - ms[4] : 0);
	*wall_ms = 1e3 * hkb_median(c->wall, c->n);
	*cpu_ms = 1e3 * hkb_median(c->cpu, c->n);
	free(c->wall);
	free(c->cpu);
	memset(c, 0, sizeof *c);
}

static const char *const stage_names[5] = {"detect", "quality", "track", "embed", "match"};

/* The modes compared in one run: "stream" is the recogniser's default on
 * a stream (regions around tracks + rotating scan, views rationed);
 * "per-frame" its former behaviour (hk_engine_detect with its rescue views
 * on every frame, every face that would enter its template embedded). */
static const char *const mode_names[3] = {"stream", "per-frame", "stream-1-thread"};

static hk_status recognizer_for(hk_engine *e, hk_gallery *g, int mode, uint32_t tiles,
                                hk_recognizer **r)
{
	hk_recognizer_params rp;
	hk_recognizer_default_params(&rp);
	rp.engine = e;
	rp.gallery = g;
	rp.detect_tiles = tiles;
	hk_status s = hk_recognizer_create(&rp, r);
	if (s == HK_OK && mode == 1) {
		hk__rec_tuning t = {0};
		hk__recognizer_tune(*r, &t);
	}
	return s;
}

/* Visits started among ev[n]; *seen5 counts the visits that ended after
 * at least 5 frames (the entrance test's rule: shorter ones are flicker). */
static uint64_t count_visits(const hk_event *ev, size_t n, uint64_t *seen5, double *lat,
                             size_t *nlat)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v += ev[i].type == HK_EV_TRACK_STARTED;
		*seen5 += ev[i].type == HK_EV_VISIT_ENDED && ev[i].frames_seen >= 5;
		if (ev[i].type == HK_EV_DECISION && *nlat < 256)
			lat[(*nlat)++] = (ev[i].time_us - ev[i].start_us) * 1e-3;
	}
	return v;
}

/* 12 frames of 1080p with 8 faces through a throwaway recogniser: oneDNN
 * creates a plan per batch size on first use, so no measured row pays. */
static void warm_up(hk_engine *e, hk_gallery *g, int mode, const hk_image *ph)
{
	hk_image fr = {1920, 1080, 3 * 1920, 0, malloc((size_t)3 * 1920 * 1080)};
	hk_recognizer *r;
	if (fr.data && recognizer_for(e, g, mode, 0, &r) == HK_OK) {
		hk_event ev[64];
		size_t n;
		for (int i = 0; i < 12; i++) {
			compose(&fr, ph, 8, i, i);
			hk_recognizer_push_frame(r, &fr, (int64_t)i * 40000, ev, 64, &n);
		}
		hk_recognizer_destroy(r);
	}
	free(fr.data);
}

static int speed(const hkb_blufr *b, const char *lfw_dir, int frames, int json, const char *only)
{
	hk_engine *e;
	if (hk_engine_create(NULL, &e) != HK_OK) {
		fprintf(stderr, "stream: %s\n", hk_last_error());
		return 3;
	}
	hk_image ph[8];
	int nph = 0;
	for (size_t i = 0; i < b->n && nph < 8; i += 997) {
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", lfw_dir, b->path[i]);
		if (b->ok[i] && hk_image_load(p, &ph[nph]) == HK_OK)
			nph++;
	}
	if (nph < 8) {
		fprintf(stderr, "stream: could not load 8 LFW photos from %s\n", lfw_dir);
		hk_engine_destroy(e);
		return 3;
	}
	/* A gallery of 1,000 random templates, so the search stage runs (every
	 * face is a stranger to it). */
	hk_gallery *g = NULL;
	hk_gallery_params gp;
	hk_gallery_default_params(&gp);
	gp.dim = D;
	hk_gallery_create(&gp, &g);
	{
		hkb_rng rng;
		hkb_rng_seed(&rng, 0x5eed);
		float v[D];
		char id[32];
		for (int i = 0; g && i < 1000; i++) {
			double s = 0;
			for (int k = 0; k < D; k++) {
				v[k] = (float)hkb_rng_normal(&rng);
				s += (double)v[k] * v[k];
			}
			for (int k = 0; k < D; k++)
				v[k] /= (float)sqrt(s);
			snprintf(id, sizeof id, "c%04d", i);
			hk_gallery_add(g, id, v, NULL);
		}
	}
	if (!json) {
		printf("\n## Recogniser per frame (synthetic frames, LFW faces, %d frames each; "
		       "gallery of 1,000 templates)\n\n"
		       "Medians per frame; CPU = process CPU time (all threads); stages = mean CPU ms "
		       "per frame spent in each stage (track = the rest of the mean CPU time per "
		       "frame).\n\n",
		       frames);
		printf("| frame | mode | faces | frames/s (wall) | wall ms | CPU ms | detect | quality | track | "
		       "embed | match | faces found/frame | faces embedded/frame |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	}
	const uint32_t sizes[2][2] = {{1280, 720}, {1920, 1080}};
	hk_engine *e1 = NULL; /* one thread per model: the peer of the goal row */
	const int nfs[3] = {1, 4, 8};
	for (int mode = 0; mode < 2; mode++)
		warm_up(e, g, mode, ph);
	for (int si = 0; si < 2; si++)
		for (int fi = 0; fi < 3; fi++)
		for (int mode = 0; mode < 3; mode++) {
			char key[64];
			if (mode == 2 && !(si == 1 && fi == 1))
				continue;
			snprintf(key, sizeof key, "%ux%ux%d", sizes[si][0], sizes[si][1], nfs[fi]);
			if (only && strcmp(only, key) && strcmp(only, "clip"))
				continue;
			if (only && !strcmp(only, "clip"))
				continue;
			hk_image fr = {sizes[si][0], sizes[si][1], 3 * sizes[si][0], 0, NULL};
			fr.data = malloc((size_t)fr.stride * fr.height);
			hk_recognizer *r;
			if (mode == 2 && !e1) {
				/* The two cores inside each model (oneDNN's OpenMP team, the
				 * engine's default) against one thread per model. */
				hk_engine_params ep;
				hk_engine_default_params(&ep);
				ep.threads = 1;
				if (hk_engine_create(&ep, &e1) != HK_OK) {
					free(fr.data);
					continue;
				}
				warm_up(e1, g, 0, ph);
			}
			if (!fr.data || recognizer_for(mode == 2 ? e1 : e, g, mode == 2 ? 0 : mode, 0, &r) != HK_OK) {
				free(fr.data);
				continue;
			}
			hk_event ev[64];
			size_t n;
			run_cost c = {0};
			for (int i = 0; i < frames; i++) {
				compose(&fr, ph, nfs[fi], (i * 3) % 40 - 20, (i * 2) % 20 - 10);
				double t0 = hkb_now(), u0 = cpu_now();
				hk_recognizer_push_frame(r, &fr, (int64_t)i * 40000, ev, 64, &n);
				double w = hkb_now() - t0;
				c.push_s += w;
				cost_add(&c, w, cpu_now() - u0);
			}
			hk_recognizer_end(r, (int64_t)frames * 40000, HK_END_SOURCE_ENDED, ev, 64, &n);
			hk_recognizer_stats st;
			hk_recognizer_get_stats(r, &st);
			double wall, cpu, ms[5], cms[5], found = (double)st.faces / frames;
			cost_summary(&c, r, &wall, &cpu, ms, cms);
			if (json)
				printf("{\"suite\":\"stream-speed\",\"mode\":\"%s\",\"width\":%u,\"height\":%u,"
				       "\"faces\":%d,\"fps\":%.2f,\"wall_ms_p50\":%.2f,\"cpu_ms_p50\":%.2f,\"detect_ms\":%.2f,"
				       "\"quality_ms\":%.3f,\"track_ms\":%.3f,\"embed_ms\":%.2f,\"match_ms\":%.3f,"
				       "\"detect_cpu_ms\":%.2f,\"quality_cpu_ms\":%.3f,\"track_cpu_ms\":%.3f,"
				       "\"embed_cpu_ms\":%.2f,\"match_cpu_ms\":%.3f,\"found\":%.2f,\"embedded\":%.2f}\n",
				       mode_names[mode], fr.width, fr.height, nfs[fi], 1e3 / wall, wall, cpu, ms[0], ms[1], ms[2],
				       ms[3], ms[4], cms[0], cms[1], cms[2], cms[3], cms[4], found,
				       (double)st.embedded / frames);
			else
				printf("| %ux%u | %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.2f | "
				       "%.2f | %.2f |\n",
				       fr.width, fr.height, mode_names[mode], nfs[fi], 1e3 / wall, wall, cpu, cms[0], cms[1],
				       cms[2], cms[3], cms[4], found, (double)st.embedded / frames);
			if (si == 1 && fi == 1 && mode == 0) {
				/* The goal: 1080p with 4 faces at >= 25 frames/s on this machine. */
				int top = 0;
				double tot = cms[0] + cms[1] + cms[2] + cms[3] + cms[4];
				for (int k = 1; k < 5; k++)
					top = cms[k] > cms[top] ? k : top;
				if (!json)
					printf("| goal 1080p x 4 faces >= 25 frames/s: %s (%.1f); largest stage %s, "
					       "%.0f %% of the recogniser's CPU time |||||||||||||\n",
					       1e3 / wall >= 25 ? "met" : "NOT met", 1e3 / wall, stage_names[top],
					       tot > 0 ? 100 * cms[top] / tot : 0);
			}
			fflush(stdout);
			hk_recognizer_destroy(r);
			free(fr.data);
		}
	hk_engine_destroy(e1);
	for (int i = 0; i < nph; i++)
		hk_image_free(&ph[i]);

	/* The entrance clip: decode only, then decode + recogniser. The source
	 * decodes on its own thread; its CPU time is the decode-only pass's. */
	char clip[4096];
	hkb_data_path(NULL, "datasets/video/entrance_1080p_4s.mp4", clip, sizeof clip);
	if (only && strcmp(only, "clip")) {
		hk_gallery_destroy(g);
		hk_engine_destroy(e);
		return 0;
	}
	hk_frames *src;
	if (hk_frames_open(clip, NULL, &src) != HK_OK) {
		fprintf(stderr, "stream: entrance clip skipped: %s\n", hk_last_error());
		hk_gallery_destroy(g);
		hk_engine_destroy(e);
		return 0;
	}
	hk_frame *f;
	uint64_t nfr = 0;
	double t0 = hkb_now(), u0 = cpu_now();
	while (hk_frames_next(src, &f) == HK_OK && f) {
		nfr++;
		hk_frames_release(src, f);
	}
	double dec = hkb_now() - t0, dec_cpu = cpu_now() - u0;
	hk_frames_destroy(src);
	/* The stream default (tiles by frame size: 2 x 2 in rotation), the
	 * per-frame peer as is and with 2 x 2 tiles on every frame (the former
	 * `herken watch --tiles 2`). */
	const int clip_mode[3] = {0, 1, 1};
	const uint32_t clip_tiles[3] = {0, 0, 2};
	for (int ci = 0; ci < 3; ci++) {
		hk_recognizer *r = NULL;
		if (recognizer_for(e, g, clip_mode[ci], clip_tiles[ci], &r) != HK_OK ||
		    hk_frames_open(clip, NULL, &src) != HK_OK) {
			fprintf(stderr, "stream: entrance clip: %s\n", hk_last_error());
			hk_recognizer_destroy(r);
			hk_gallery_destroy(g);
			hk_engine_destroy(e);
			return 3;
		}
		hk_event ev[64];
		size_t n;
		uint64_t visits = 0, long_visits = 0;
		double lat[256]; /* video ms from a visit's first face to its decision */
		size_t nlat = 0;
		run_cost c = {0};
		t0 = hkb_now();
		u0 = cpu_now();
		double tf = t0, uf = u0;
		while (hk_frames_next(src, &f) == HK_OK && f) {
			if (f->status == HK_OK) {
				double p0 = hkb_now();
				hk_recognizer_push_frame(r, &f->image, f->pts_us, ev, 64, &n);
				c.push_s += hkb_now() - p0;
				visits += count_visits(ev, n, &long_visits, lat, &nlat);
			}
			hk_frames_release(src, f);
			double t1 = hkb_now(), u1 = cpu_now();
			cost_add(&c, t1 - tf, u1 - uf); /* wait for the frame + its recognition */
			tf = t1;
			uf = u1;
		}
		double all = hkb_now() - t0;
		hk_recognizer_end(r, 0, HK_END_SOURCE_ENDED, ev, 64, &n);
		visits += count_visits(ev, n, &long_visits, lat, &nlat);
		double lat50 = nlat ? hkb_median(lat, nlat) : NAN;
		hk_recognizer_stats st;
		hk_recognizer_get_stats(r, &st);
		double wall, cpu, ms[5], cms[5];
		cost_summary(&c, r, &wall, &cpu, ms, cms);
		hk_recognizer_destroy(r);
		hk_frames_destroy(src);
		double dec_ms = nfr ? 1e3 * dec_cpu / nfr : 0;
		double found = nfr ? (double)st.faces / nfr : 0, emb = nfr ? (double)st.embedded / nfr : 0;
		if (json)
			printf("{\"suite\":\"stream-clip\",\"clip\":\"entrance_1080p_4s\",\"mode\":\"%s\","
			       "\"tiles\":%u,\"frames\":%llu,\"decode_fps\":%.2f,\"decode_cpu_ms\":%.2f,"
			       "\"fps\":%.2f,\"wall_ms_p50\":%.2f,\"cpu_ms_p50\":%.2f,\"detect_ms\":%.2f,"
			       "\"quality_ms\":%.3f,\"track_ms\":%.3f,\"embed_ms\":%.2f,\"match_ms\":%.3f,"
			       "\"detect_cpu_ms\":%.2f,\"embed_cpu_ms\":%.2f,"
			       "\"decode_share\":%.3f,\"found\":%.2f,\"embedded\":%.2f,\"visits\":%llu,"
			       "\"visits_5_frames\":%llu,\"decisions\":%zu,\"decision_latency_ms_p50\":%.1f}\n",
			       mode_names[clip_mode[ci]], clip_tiles[ci], (unsigned long long)nfr, nfr / dec,
			       dec_ms, nfr / all, wall, cpu, ms[0], ms[1], ms[2], ms[3], ms[4], cms[0], cms[3],
			       dec / all, found, emb, (unsigned long long)visits, (unsigned long long)long_visits,
			       nlat, lat50);
		else
			printf("\nentrance_1080p_4s.mp4 (1920x1080, %s, tiles %u): %llu frames; decode "
			       "alone %.1f frames/s, %.2f ms CPU per frame; decode + recogniser %.1f "
			       "frames/s, median %.1f ms wall and %.1f ms CPU per frame (detect %.1f, quality "
			       "%.2f, track %.2f, embed %.1f, match %.2f ms); decode is %.0f %% of the CPU "
			       "time; %.2f faces and %.2f embedded per frame; %llu visits, %llu seen in >= 5 "
			       "frames (hand count 12); %zu decisions, median %.0f ms (video time) from a "
			       "visit's first face to its decision\n",
			       mode_names[clip_mode[ci]], clip_tiles[ci], (unsigned long long)nfr, nfr / dec,
			       dec_ms, nfr / all, wall, cpu, ms[0], ms[1], ms[2], ms[3], ms[4],
			       cpu > 0 ? 100 * dec_ms / cpu : 0, found, emb, (unsigned long long)visits,
			       (unsigned long long)long_visits, nlat, lat50);
		fflush(stdout);
	}
	hk_gallery_destroy(g);
	hk_engine_destroy(e);
	return 0;
}

int hk__bench_stream(int argc, char **argv)
{
	hkb_blufr_opts o = {0};
	int json = 0, do_visits = 1, do_speed = 1;
	long frames = 50;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		int a = hkb_blufr_arg(argc, argv, &i, &o);
		if (a == 1)
			continue;
		if (a == 0 && !strcmp(argv[i], "--json")) {
			json = 1;
		} else if (a == 0 && !strcmp(argv[i], "--no-visits")) {
			do_visits = 0;
		} else if (a == 0 && !strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (a == 0 && !strcmp(argv[i], "--no-speed")) {
			do_speed = 0;
		} else if (a == 0 && !strcmp(argv[i], "--frames") && i + 1 < argc &&
		           hkb_parse_list(argv[i + 1], &frames, 1) == 1 && frames > 0) {
			i++;
		} else if (a == 0 && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			fputs(stream_usage, stdout);
			fputs(hkb_blufr_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "stream: bad argument '%s'\n%s", argv[i], stream_usage);
			return 2;
		}
	}
	hkb_blufr b;
	int rc = hkb_blufr_load(&o, "stream", &b);
	if (rc)
		return rc;
	if (!json)
		hkb_print_header("stream", 0);
	char lfw[4096];
	hkb_data_path(o.lfw_dir, "datasets/lfw", lfw, sizeof lfw);
	if (do_visits)
		rc = visits(&b, json);
	if (!rc && do_speed)
		rc = speed(&b, lfw, (int)frames, json, only);
	hkb_blufr_free(&b);
	return rc;
}
