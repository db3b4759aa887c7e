#define _POSIX_C_SOURCE 200809L
/*
 * The recogniser: detect -> quality -> track -> embed the best views ->
 * visit template -> decision at the policy's threshold -> events.
 *
 * A track is a visit. Its template is built from its best `best_k` usable
 * views (kept sorted by quality, embeddings only: no pixels are kept), and
 * matched again whenever a new view enters it. Everything that held a
 * face embedding is wiped when the track ends.
 */
#include "internal.h"
#include "pipeline/pipeline.h"
#include "recognizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D HK_EMBED_DIM
#define MAX_K 32
#define THUMB_W 32
#define THUMB_H 18

typedef struct view {
	float q;
	float emb[D];
} view;

typedef struct track {
	uint32_t id;
	int confirmed;
	float box[4];
	float vel[4]; /* box coordinates per microsecond */
	int64_t t_first, t_last;
	int64_t t_view; /* when the last view was embedded */
	int rescued;    /* its last face came from the engine's rescue */
	uint32_t hits, used;
	uint32_t nviews;
	view *views; /* best_k, best first */
	float last_emb[D];
	int have_emb;
	uint32_t best_reasons; /* reasons of the best-scoring face seen */
	float best_any;
	int dirty;   /* template changed since the last match */
	int decided; /* a DECISION event was emitted */
	uint32_t outcome;
	float score, tq;
	double rate; /* the rate the decision stands at */
	uint32_t tviews;
	char subject[HK_SUBJECT_MAX + 1];
	uint32_t ncand;
	hk_candidate cand[HK_CANDIDATES_MAX];
} track;

struct hk_recognizer {
	hk_recognizer_params p;
	char *claimed;
	hk_calib *cal; /* NULL: tracking only, or an explicit threshold without one */
	float thr;
	track *tr;
	size_t ntr, captr;
	uint32_t next_id;
	hk_event *q;
	size_t qhead, qn, qcap;
	uint32_t w, h;
	int64_t last_t; /* time of the previous frame (INT64_MIN: none) */
	uint8_t thumb[THUMB_W * THUMB_H]; /* previous frame, grey, for scene cuts */
	int have_thumb;
	/* per-frame scratch, max_faces each */
	hk_face *faces, *tmpf;
	hk_quality *qual;
	float *emb;
	int *have, *owner;
	hk_frame_face *ff; /* the last frame's faces (hk_recognizer_frame_faces) */
	size_t nff, nff_found;
	hk_recognizer_stats st;
	hk__rec_tuning tune;
	uint32_t scan_phase; /* next view of the rotating scan */
	int64_t t_miss;      /* last rescue that found nothing */
	int missed;          /* t_miss is valid */
	hk__region *reg;     /* 1 + roi_max regions */
};

/* ------------------------------------------------------------------ */
/* Policy                                                             */
/* ------------------------------------------------------------------ */

/*
 * The decision policy: the cosine threshold for the target rate, from the
 * embedder's shipped calibration (hk_calib, core/calib): 1:1 at target FMR,
 * 1:N at target FPIR for a gallery of n templates (the threshold rises
 * with n). An explicit params.threshold replaces the target. The rate a
 * decision stands at is the calibrated FMR / modelled FPIR at its score.
 */
static hk_status policy_threshold(hk_recognizer *r, uint64_t n)
{
	if (r->p.threshold != 0) {
		r->thr = r->p.threshold;
		return HK_OK;
	}
	if (r->p.mode == HK_DECIDE_IDENTIFY)
		return hk_calib_score_at_fpir(r->cal, r->p.target_rate, n ? n : 1, &r->thr);
	return hk_calib_score_at_fmr(r->cal, r->p.target_rate, &r->thr);
}

static double rate_at(const hk_recognizer *r, float score, uint64_t n)
{
	double rate = NAN;
	if (!r->cal || !isfinite(score))
		return NAN;
	if (r->p.mode == HK_DECIDE_IDENTIFY)
		hk_calib_fpir(r->cal, score, n ? n : 1, &rate);
	else
		hk_calib_fmr(r->cal, score, &rate);
	return rate;
}

static uint64_t gallery_templates(const hk_recognizer *r)
{
	if (r->p.gallery)
		return hk_gallery_size(r->p.gallery);
	if (r->p.store) {
		hk_store_info si;
		if (hk_store_get_info(r->p.store, &si) == HK_OK)
			return si.templates;
	}
	return 0;
}

/* Match a template: outcome, score and subject. */
static hk_status match(hk_recognizer *r, const float *tmpl, track *t)
{
	uint64_t t0 = hk__now_ns();
	t->subject[0] = 0;
	t->score = NAN;
	t->rate = NAN;
	if (!r->p.gallery && !r->p.store) {
		t->outcome = HK_OUTCOME_UNDECIDED;
		return HK_OK;
	}
	uint64_t ntpl = gallery_templates(r);
	hk_status s = policy_threshold(r, ntpl);
	if (s != HK_OK)
		return s;
	r->st.queries++;
	t->ncand = 0;
	if (r->p.gallery && r->p.mode == HK_DECIDE_IDENTIFY) {
		float sc[HK_CANDIDATES_MAX];
		hk_template_id id[HK_CANDIDATES_MAX];
		s = hk_gallery_search(r->p.gallery, tmpl, r->p.top_k, sc, id);
		if (s == HK_OK) {
			t->score = id[0] == HK_NO_ID ? NAN : sc[0];
			t->outcome = HK_OUTCOME_STRANGER;
			for (uint32_t c = 0; c < r->p.top_k && id[c] != HK_NO_ID; c++) {
				hk_candidate *cd = &t->cand[t->ncand];
				if (hk_gallery_subject_of(r->p.gallery, id[c], cd->subject,
				                          sizeof cd->subject) != HK_OK)
					continue;
				cd->score = sc[c];
				t->ncand++;
			}
			if (id[0] != HK_NO_ID && sc[0] >= r->thr &&
			    hk_gallery_subject_of(r->p.gallery, id[0], t->subject, sizeof t->subject) == HK_OK)
				t->outcome = HK_OUTCOME_MATCH;
		}
	} else if (r->p.gallery) {
		float sc;
		s = hk_gallery_verify(r->p.gallery, r->claimed, tmpl, &sc, NULL);
		if (s == HK_E_NOT_FOUND) {
			t->outcome = HK_OUTCOME_STRANGER;
			s = HK_OK;
		} else if (s == HK_OK) {
			t->score = sc;
			t->outcome = sc >= r->thr ? HK_OUTCOME_MATCH : HK_OUTCOME_STRANGER;
			if (t->outcome == HK_OUTCOME_MATCH)
				snprintf(t->subject, sizeof t->subject, "%s", r->claimed);
		}
	} else if (r->p.mode == HK_DECIDE_IDENTIFY) {
		/* The store reports only matches: a stranger's nearest subject
		 * (and score) is not disclosed. */
		hk_store_match m[HK_CANDIDATES_MAX];
		size_t n = 0;
		s = hk_store_identify(r->p.store, tmpl, r->thr, r->p.source, r->p.top_k, m, &n);
		if (s == HK_OK) {
			t->outcome = n ? HK_OUTCOME_MATCH : HK_OUTCOME_STRANGER;
			if (n) {
				t->score = m[0].score;
				memcpy(t->subject, m[0].subject, sizeof t->subject);
			}
			for (size_t c = 0; c < n; c++) {
				memcpy(t->cand[c].subject, m[c].subject, sizeof t->cand[c].subject);
				t->cand[c].score = m[c].score;
			}
			t->ncand = (uint32_t)n;
			hk__wipe(m, sizeof m);
		}
	} else {
		float sc;
		int ok = 0;
		s = hk_store_verify(r->p.store, r->claimed, tmpl, r->thr, r->p.source, &sc, &ok);
		if (s == HK_E_NOT_FOUND) {
			t->outcome = HK_OUTCOME_STRANGER;
			s = HK_OK;
		} else if (s == HK_OK) {
			t->score = sc;
			t->outcome = ok ? HK_OUTCOME_MATCH : HK_OUTCOME_STRANGER;
			if (ok)
				snprintf(t->subject, sizeof t->subject, "%s", r->claimed);
		}
	}
	r->st.match_ns += hk__now_ns() - t0;
	t->rate = rate_at(r, t->score, ntpl);
	/* 1:1: the claimed subject is the one candidate, when it was scored. */
	if (r->p.mode == HK_DECIDE_VERIFY && isfinite(t->score)) {
		snprintf(t->cand[0].subject, sizeof t->cand[0].subject, "%s", r->claimed);
		t->cand[0].score = t->score;
		t->ncand = 1;
	}
	for (uint32_t c = 0; c < t->ncand; c++)
		t->cand[c].rate = rate_at(r, t->cand[c].score, ntpl);
	return s;
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

static hk_status emit(hk_recognizer *r, uint32_t type, const track *t, int64_t now,
                      uint32_t end_reason)
{
	if (r->qhead + r->qn == r->qcap) {
		if (r->qhead) {
			memmove(r->q, r->q + r->qhead, r->qn * sizeof *r->q);
			r->qhead = 0;
		} else {
			size_t nc = r->qcap ? 2 * r->qcap : 64;
			hk_event *nq = realloc(r->q, nc * sizeof *nq);
			if (!nq)
				return hk__err(HK_E_NOMEM, "recognizer: event queue");
			r->q = nq;
			r->qcap = nc;
		}
	}
	hk_event *e = &r->q[r->qhead + r->qn++];
	memset(e, 0, sizeof *e);
	e->type = type;
	e->track = t->id;
	e->time_us = now;
	memcpy(e->box, t->box, sizeof e->box);
	e->outcome = t->outcome;
	e->score = t->score;
	e->threshold = r->thr;
	e->rate = t->rate;
	e->target = r->p.threshold != 0 ? NAN : r->p.target_rate;
	e->quality = t->tq;
	e->views = t->tviews;
	e->reasons = t->nviews ? 0 : t->best_reasons;
	e->end_reason = end_reason;
	e->start_us = t->t_first;
	e->duration_us = t->t_last - t->t_first;
	e->frames_seen = t->hits;
	e->frames_used = t->used;
	memcpy(e->subject, t->subject, sizeof e->subject);
	e->ncandidates = type == HK_EV_TRACK_STARTED ? 0 : t->ncand;
	memcpy(e->candidates, t->cand, e->ncandidates * sizeof *t->cand);
	return HK_OK;
}

static size_t drain(hk_recognizer *r, hk_event *ev, size_t max)
{
	size_t k = r->qn < max ? r->qn : max;
	if (k) {
		memcpy(ev, r->q + r->qhead, k * sizeof *ev);
		r->qhead += k;
		r->qn -= k;
		if (!r->qn)
			r->qhead = 0;
	}
	return k;
}

size_t hk_recognizer_pending(const hk_recognizer *r)
{
	return r ? r->qn : 0;
}

/* ------------------------------------------------------------------ */
/* Visit template and decisions                                       */
/* ------------------------------------------------------------------ */

static void build_template(const hk_recognizer *r, const track *t, float *out)
{
	memset(out, 0, D * sizeof *out);
	uint32_t agg = r->p.aggregate ? r->p.aggregate : HK_AGG_MEAN;
	uint32_t n = agg == HK_AGG_BEST ? 1 : t->nviews;
	for (uint32_t i = 0; i < n; i++) {
		float w = agg == HK_AGG_QWMEAN ? t->views[i].q + 1e-3f : 1.f;
		for (int d = 0; d < D; d++)
			out[d] += w * t->views[i].emb[d];
	}
	double ss = 0;
	for (int d = 0; d < D; d++)
		ss += (double)out[d] * out[d];
	float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.f;
	for (int d = 0; d < D; d++)
		out[d] *= inv;
}

/* Match the track's current template; emits DECISION / REVISED when the
 * decision is new or changed (final: at the end of the visit, no event). */
static hk_status decide(hk_recognizer *r, track *t, int64_t now, int final)
{
	if (!t->nviews)
		return HK_OK;
	if (!r->p.gallery && !r->p.store) {
		/* Tracking only: no identities, the visit says how good it was. */
		t->tq = t->views[0].q;
		t->tviews = t->nviews;
		t->dirty = 0;
		return HK_OK;
	}
	if (!final && !t->decided && t->views[0].q < r->p.decide_quality)
		return HK_OK;
	if (!t->dirty && t->decided)
		return HK_OK;
	float tmpl[D];
	build_template(r, t, tmpl);
	uint32_t old_out = t->outcome;
	char old_sub[HK_SUBJECT_MAX + 1];
	memcpy(old_sub, t->subject, sizeof old_sub);
	hk_status s = match(r, tmpl, t);
	hk__wipe(tmpl, sizeof tmpl);
	if (s != HK_OK)
		return s;
	t->dirty = 0;
	t->tq = t->views[0].q;
	t->tviews = t->nviews;
	if (final)
		return HK_OK;
	if (!t->decided) {
		t->decided = 1;
		return emit(r, HK_EV_DECISION, t, now, HK_END_NONE);
	}
	if (old_out != t->outcome || strcmp(old_sub, t->subject))
		return emit(r, HK_EV_REVISED, t, now, HK_END_NONE);
	return HK_OK;
}

static void track_free(track *t)
{
	if (t->views) {
		hk__wipe(t->views, MAX_K * sizeof *t->views);
		free(t->views);
	}
	hk__wipe(t, sizeof *t);
}

static hk_status end_track(hk_recognizer *r, size_t i, int64_t now, uint32_t reason)
{
	track *t = &r->tr[i];
	hk_status s = HK_OK;
	if (t->confirmed) {
		if (t->dirty || (!t->decided && t->nviews))
			s = decide(r, t, now, 1);
		if (!t->nviews) {
			t->outcome = HK_OUTCOME_UNDECIDED;
			t->score = NAN;
			t->ncand = 0;
			t->subject[0] = 0;
			t->tq = 0;
			t->tviews = 0;
		}
		hk_status s2 = emit(r, HK_EV_VISIT_ENDED, t, now, reason);
		if (s == HK_OK)
			s = s2;
	}
	track_free(t);
	r->tr[i] = r->tr[--r->ntr];
	memset(&r->tr[r->ntr], 0, sizeof r->tr[r->ntr]);
	return s;
}

static hk_status end_all(hk_recognizer *r, int64_t now, uint32_t reason)
{
	hk_status s = HK_OK;
	/* Oldest visit first: ids ascend with creation. */
	while (r->ntr) {
		size_t oldest = 0;
		for (size_t i = 1; i < r->ntr; i++)
			if (r->tr[i].id < r->tr[oldest].id)
				oldest = i;
		hk_status s2 = end_track(r, oldest, now, reason);
		if (s == HK_OK)
			s = s2;
	}
	return s;
}

/* ------------------------------------------------------------------ */
/* Tracking                                                           */
/* ------------------------------------------------------------------ */

static track *track_new(hk_recognizer *r, const hk_face *f, int64_t now)
{
	if (r->ntr == r->captr) {
		size_t nc = r->captr ? 2 * r->captr : 16;
		track *nt = realloc(r->tr, nc * sizeof *nt);
		if (!nt)
			return NULL;
		memset(nt + r->captr, 0, (nc - r->captr) * sizeof *nt);
		r->tr = nt;
		r->captr = nc;
	}
	track *t = &r->tr[r->ntr];
	memset(t, 0, sizeof *t);
	t->views = calloc(MAX_K, sizeof *t->views);
	if (!t->views)
		return NULL;
	r->ntr++;
	t->id = 0; /* numbered when confirmed */
	memcpy(t->box, f->box, sizeof t->box);
	t->t_first = t->t_last = now;
	t->score = NAN;
	t->best_any = -1.f;
	return t;
}

static void predict(const track *t, int64_t now, float *box)
{
	double dt = (double)(now - t->t_last);
	for (int k = 0; k < 4; k++)
		box[k] = t->box[k] + (float)(t->vel[k] * dt);
}

/* Affinity of a track's predicted box and a detection: the overlap, or
 * for a fast face that left its predicted box, a pass mark when the centres
 * are within half a face and the sizes within 1.5x. */
static float affinity(const hk_recognizer *r, const float *pred, const float *box)
{
	float iou = hk__box_iou(pred, box);
	if (iou >= r->p.iou_min)
		return iou;
	float pw = pred[2] - pred[0], ph = pred[3] - pred[1];
	float bw = box[2] - box[0], bh = box[3] - box[1];
	float side = sqrtf(fmaxf(pw * ph, 1e-6f));
	float ratio = sqrtf(fmaxf(bw * bh, 1e-6f)) / side;
	float dx = (pred[0] + pred[2] - box[0] - box[2]) / 2;
	float dy = (pred[1] + pred[3] - box[1] - box[3]) / 2;
	if (sqrtf(dx * dx + dy * dy) < 0.5f * side && ratio > 0.67f && ratio < 1.5f)
		return r->p.iou_min;
	return 0.f;
}

static void track_update(track *t, const hk_face *f, int64_t now)
{
	double dt = (double)(now - t->t_last);
	if (dt > 0) {
		for (int k = 0; k < 4; k++) {
			double v = (f->box[k] - t->box[k]) / dt;
			t->vel[k] = (float)(t->hits > 1 ? 0.5 * t->vel[k] + 0.5 * v : v);
		}
	}
	memcpy(t->box, f->box, sizeof t->box);
	t->t_last = now;
	t->hits++;
}

static float dotf(const float *a, const float *b)
{
	float s = 0;
	for (int d = 0; d < D; d++)
		s += a[d] * b[d];
	return s;
}

/* Embed faces idx[0..n) (into r->emb rows) in one engine call. */
static hk_status embed_some(hk_recognizer *r, const hk_image *img, const size_t *idx, size_t n)
{
	if (!n)
		return HK_OK;
	uint64_t t0 = hk__now_ns();
	for (size_t i = 0; i < n; i++)
		r->tmpf[i] = r->faces[idx[i]];
	float *tmp = malloc(n * D * sizeof *tmp);
	if (!tmp)
		return hk__err(HK_E_NOMEM, "recognizer: embeddings");
	hk_status s = hk_engine_embed(r->p.engine, img, r->tmpf, n, tmp);
	if (s == HK_OK)
		for (size_t i = 0; i < n; i++) {
			memcpy(r->emb + idx[i] * D, tmp + i * D, D * sizeof *tmp);
			r->have[idx[i]] = 1;
		}
	hk__wipe(tmp, n * D * sizeof *tmp);
	free(tmp);
	r->st.embedded += n;
	r->st.embed_ns += hk__now_ns() - t0;
	return s;
}

typedef struct pair {
	float a;
	uint32_t t, f;
} pair;

static int by_aff(const void *pa, const void *pb)
{
	const pair *a = pa, *b = pb;
	if (a->a != b->a)
		return (a->a < b->a) - (a->a > b->a);
	if (a->t != b->t)
		return (a->t > b->t) - (a->t < b->t);
	return (a->f > b->f) - (a->f < b->f);
}

/* Ties faces to tracks; r->owner[f] = track index or -1. */
static hk_status associate(hk_recognizer *r, const hk_image *img, size_t nf, int64_t now,
                           const int *active)
{
	size_t nt = r->ntr;
	for (size_t f = 0; f < nf; f++)
		r->owner[f] = -1;
	if (!nt || !nf)
		return HK_OK;
	pair *pr = malloc(nt * nf * sizeof *pr);
	if (!pr)
		return hk__err(HK_E_NOMEM, "recognizer: association");
	size_t np = 0;
	for (size_t t = 0; t < nt; t++) {
		float pred[4];
		predict(&r->tr[t], now, pred);
		for (size_t f = 0; f < nf; f++) {
			if (!active[f])
				continue;
			float a = affinity(r, pred, r->faces[f].box);
			if (a > 0)
				pr[np++] = (pair){a, (uint32_t)t, (uint32_t)f};
		}
	}
	/* Competition: a face that two tracks want about equally goes to the
	 * one whose last embedding it resembles most. */
	for (size_t f = 0; f < nf; f++) {
		float b1 = 0, b2 = 0;
		for (size_t i = 0; i < np; i++) {
			if (pr[i].f != f)
				continue;
			if (pr[i].a > b1) {
				b2 = b1;
				b1 = pr[i].a;
			} else if (pr[i].a > b2) {
				b2 = b2 > pr[i].a ? b2 : pr[i].a;
			}
		}
		if (b2 <= 0 || b1 - b2 > 0.15f)
			continue;
		if (!r->have[f]) {
			hk_status s = embed_some(r, img, &f, 1);
			if (s != HK_OK) {
				free(pr);
				return s;
			}
		}
		for (size_t i = 0; i < np; i++)
			if (pr[i].f == f && r->tr[pr[i].t].have_emb)
				pr[i].a += dotf(r->emb + f * D, r->tr[pr[i].t].last_emb);
	}
	qsort(pr, np, sizeof *pr, by_aff);
	char *tused = calloc(nt, 1);
	if (!tused) {
		free(pr);
		return hk__err(HK_E_NOMEM, "recognizer: association");
	}
	for (size_t i = 0; i < np; i++) {
		if (tused[pr[i].t] || r->owner[pr[i].f] >= 0)
			continue;
		tused[pr[i].t] = 1;
		r->owner[pr[i].f] = (int)pr[i].t;
	}
	free(tused);
	free(pr);
	return HK_OK;
}

/* Inserts view (q, emb) into t's best-K list if it belongs there. */
static void add_view(hk_recognizer *r, track *t, float q, const float *emb)
{
	uint32_t k = r->p.best_k;
	uint32_t pos = t->nviews;
	while (pos > 0 && t->views[pos - 1].q < q)
		pos--;
	if (pos >= k)
		return;
	uint32_t last = t->nviews < k ? t->nviews : k - 1;
	memmove(&t->views[pos + 1], &t->views[pos], (last - pos) * sizeof *t->views);
	t->views[pos].q = q;
	memcpy(t->views[pos].emb, emb, D * sizeof *emb);
	if (t->nviews < k)
		t->nviews++;
	t->dirty = 1;
}

static int wants_view(const hk_recognizer *r, const track *t, float q)
{
	return t->nviews < r->p.best_k || q > t->views[t->nviews - 1].q;
}

/* On a stream, consecutive frames give nearly the same view: a track with
 * a view takes the next one only view_gap_us later, a full template only a
 * view better than its worst by view_margin, and at most embed_per_frame
 * faces are embedded per frame, tracks without a view first, then those
 * whose last view is oldest. Keeps the first want[0..k) and returns k. */
static size_t ration_views(hk_recognizer *r, const int *tidx, size_t *want, size_t nw, int64_t now)
{
	if (r->p.stills)
		return nw;
	size_t k = 0;
	for (size_t i = 0; i < nw; i++) {
		const track *t = &r->tr[tidx[want[i]]];
		if (t->nviews && now - t->t_view < r->tune.view_gap_us)
			continue;
		if (t->nviews >= r->p.best_k &&
		    !(r->qual[want[i]].score >= t->views[t->nviews - 1].q + r->tune.view_margin))
			continue;
		want[k++] = want[i];
	}
	if (r->tune.embed_per_frame && k > r->tune.embed_per_frame) {
		/* Insertion sort by need (k <= max_faces): no view yet, then the
		 * oldest view. */
		int64_t key[k];
		for (size_t i = 0; i < k; i++) {
			const track *t = &r->tr[tidx[want[i]]];
			key[i] = t->nviews ? t->t_view : INT64_MIN;
		}
		for (size_t i = 1; i < k; i++)
			for (size_t j = i; j > 0 && key[j] < key[j - 1]; j--) {
				int64_t tk = key[j];
				size_t tw = want[j];
				key[j] = key[j - 1];
				want[j] = want[j - 1];
				key[j - 1] = tk;
				want[j - 1] = tw;
			}
		k = r->tune.embed_per_frame;
	}
	return k;
}

/* ------------------------------------------------------------------ */
/* Stream tuning                                                      */
/* ------------------------------------------------------------------ */

void hk__rec_default_tuning(hk__rec_tuning *t)
{
	memset(t, 0, sizeof *t);
	t->stream_detect = 1;
	t->roi_max = 16;
	t->roi_scale = 6.f;
	t->roi_grid = 1;
	t->rescue_gap_us = 1000000;
	t->view_gap_us = 100000;
	t->view_margin = 0.02f;
	t->embed_per_frame = 2;
}

void hk__recognizer_tune(hk_recognizer *r, const hk__rec_tuning *t)
{
	hk__rec_tuning d;
	hk__rec_default_tuning(&d);
	r->tune = *t;
	if (!r->tune.roi_scale)
		r->tune.roi_scale = d.roi_scale;
	if (!r->tune.roi_grid)
		r->tune.roi_grid = d.roi_grid;

	if (r->tune.roi_max > d.roi_max)
		r->tune.roi_max = d.roi_max; /* r->reg holds 1 + d.roi_max */
}

/* The detector sees a scan view letterboxed to 192x192: a face needs about
 * 16 px there, i.e. 1/12 of the view's long side. One tile per side up to
 * 1000 px, so 720p and 1080p frames get 2 x 2 tiles (faces from ~65 px at
 * 1080p), smaller frames the full view only. */
uint32_t hk__rec_tiles(const hk_recognizer *r, uint32_t w, uint32_t h)
{
	if (r->p.detect_tiles)
		return r->p.detect_tiles;
	return (w > h ? w : h) >= 1000 ? 2 : 1;
}

/* ------------------------------------------------------------------ */
/* Public                                                             */
/* ------------------------------------------------------------------ */

void hk_recognizer_default_params(hk_recognizer_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	p->source = HK_SOURCE_STREAM;
	p->target_rate = 0; /* HK_DEFAULT_FPIR (1:N) or HK_DEFAULT_FMR (1:1) */
	p->decide_quality = 0.35f;
	p->best_k = 8;
	p->aggregate = HK_AGG_DEFAULT;
	p->iou_min = 0.2f;
	p->lost_after_us = 800000;
	p->min_hits = 2;
	p->max_faces = 32;
	hk_quality_default_params(&p->quality);
}

hk_status hk_recognizer_create(const hk_recognizer_params *p, hk_recognizer **out)
{
	if (!p || !out)
		return hk__err(HK_E_INVALID, "hk_recognizer_create: NULL argument");
	*out = NULL;
	if (!p->engine)
		return hk__err(HK_E_INVALID, "hk_recognizer_create: an engine is required");
	if (p->gallery && p->store)
		return hk__err(HK_E_INVALID, "hk_recognizer_create: give a gallery or a store, not both");
	if (p->mode > HK_DECIDE_VERIFY || p->aggregate > HK_AGG_BEST)
		return hk__err(HK_E_INVALID, "hk_recognizer_create: bad mode or aggregate");
	if (p->mode == HK_DECIDE_VERIFY && (!p->claimed_subject || !p->claimed_subject[0]))
		return hk__err(HK_E_INVALID, "hk_recognizer_create: 1:1 needs claimed_subject");
	if (p->gallery && hk_gallery_dim(p->gallery) != D)
		return hk__err(HK_E_DIM, "hk_recognizer_create: gallery dim %u, embedder %d",
		               hk_gallery_dim(p->gallery), D);
	if (p->store && p->mode == HK_DECIDE_IDENTIFY) {
		hk_store_info si;
		hk_status s = hk_store_get_info(p->store, &si);
		if (s != HK_OK)
			return s;
		if (si.dim != D)
			return hk__err(HK_E_DIM, "hk_recognizer_create: store dim %u, embedder %d",
			               si.dim, D);
		if (!si.policy.allow_identify)
			return hk__err(HK_E_POLICY, "hk_recognizer_create: the gallery's policy does "
			                            "not allow 1:N identification (claim an identity "
			                            "for 1:1, or change the policy)");
	}
	hk_recognizer *r = calloc(1, sizeof *r);
	if (!r)
		return hk__err(HK_E_NOMEM, "hk_recognizer_create");
	r->p = *p;
	r->last_t = INT64_MIN;
	hk_recognizer_params d;
	hk_recognizer_default_params(&d);
	if (!r->p.source && !p->gallery && !p->store)
		r->p.source = HK_SOURCE_STREAM;
	if (r->p.target_rate <= 0)
		r->p.target_rate = r->p.mode == HK_DECIDE_VERIFY ? HK_DEFAULT_FMR : HK_DEFAULT_FPIR;
	if (r->p.decide_quality <= 0)
		r->p.decide_quality = d.decide_quality;
	if (!r->p.best_k)
		r->p.best_k = d.best_k;
	if (r->p.best_k > MAX_K)
		r->p.best_k = MAX_K;
	if (r->p.iou_min <= 0)
		r->p.iou_min = d.iou_min;
	if (r->p.lost_after_us <= 0)
		r->p.lost_after_us = d.lost_after_us;
	if (!r->p.min_hits)
		r->p.min_hits = d.min_hits;
	if (r->p.stills)
		r->p.min_hits = 1;
	if (!r->p.max_faces)
		r->p.max_faces = d.max_faces;
	if (!r->p.top_k)
		r->p.top_k = 1;
	if (r->p.top_k > HK_CANDIDATES_MAX)
		r->p.top_k = HK_CANDIDATES_MAX;
	if (r->p.scene_cut <= 0)
		r->p.scene_cut = 20.f;
	hk__quality_resolve(&p->quality, &r->p.quality);
	size_t m = r->p.max_faces;
	r->faces = calloc(m, sizeof *r->faces);
	r->tmpf = calloc(m, sizeof *r->tmpf);
	r->qual = calloc(m, sizeof *r->qual);
	r->emb = calloc(m * D, sizeof *r->emb);
	r->have = calloc(m, sizeof *r->have);
	r->owner = calloc(m, sizeof *r->owner);
	r->ff = calloc(m, sizeof *r->ff);
	hk__rec_default_tuning(&r->tune);
	r->reg = calloc(1 + r->tune.roi_max, sizeof *r->reg);
	if (p->claimed_subject)
		r->claimed = strdup(p->claimed_subject);
	r->p.claimed_subject = r->claimed;
	if (!r->faces || !r->tmpf || !r->qual || !r->emb || !r->have || !r->owner || !r->reg ||
	    !r->ff ||
	    (p->claimed_subject && !r->claimed)) {
		hk_recognizer_destroy(r);
		return hk__err(HK_E_NOMEM, "hk_recognizer_create");
	}
	if (p->gallery || p->store) {
		/* No decision without its calibration: an engine whose embedder has
		 * none needs an explicit threshold (and its rates are then unknown). */
		hk_status s = hk_calib_for_engine(p->engine, &r->cal);
		if (s != HK_OK && r->p.threshold == 0) {
			hk_recognizer_destroy(r);
			return s;
		}
		if ((s = policy_threshold(r, gallery_templates(r))) != HK_OK) {
			hk_recognizer_destroy(r);
			return s;
		}
	}
	*out = r;
	return HK_OK;
}

void hk_recognizer_destroy(hk_recognizer *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ntr; i++)
		track_free(&r->tr[i]);
	free(r->tr);
	if (r->q) {
		hk__wipe(r->q, r->qcap * sizeof *r->q);
		free(r->q);
	}
	if (r->emb)
		hk__wipe(r->emb, (size_t)r->p.max_faces * D * sizeof *r->emb);
	free(r->emb);
	free(r->faces);
	free(r->tmpf);
	free(r->qual);
	free(r->have);
	free(r->owner);
	free(r->ff);
	free(r->reg);
	free(r->claimed);
	hk_calib_destroy(r->cal);
	free(r);
}

static int in_roi(const hk_recognizer *r, const float *b)
{
	const float *roi = r->p.roi;
	if (roi[0] == 0 && roi[1] == 0 && roi[2] == 0 && roi[3] == 0)
		return 1;
	float cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
	return cx >= roi[0] && cx < roi[2] && cy >= roi[1] && cy < roi[3];
}

static hk_status confirm(hk_recognizer *r, track *t, int64_t now)
{
	t->confirmed = 1;
	t->id = ++r->next_id;
	r->st.visits++;
	return emit(r, HK_EV_TRACK_STARTED, t, now, HK_END_NONE);
}

/* Detection over tiles: the detector sees the whole frame letterboxed to
 * 192x192, so in a 1080p frame a face needs ~100 px to be found. With
 * detect_tiles = n the frame is also cut into n x n tiles overlapping by a
 * quarter (views into the same pixels, no copy), each detected alone, and
 * the faces merged (IoU > 0.3: the higher score stays). */
static void shift_face(hk_face *f, float dx, float dy)
{
	for (int k = 0; k < 2; k++) {
		f->box[2 * k] += dx;
		f->box[2 * k + 1] += dy;
	}
	for (int k = 0; k < 6; k++) {
		f->keypoints[k][0] += dx;
		f->keypoints[k][1] += dy;
	}
	for (int k = 0; k < 5; k++) {
		f->landmarks[k][0] += dx;
		f->landmarks[k][1] += dy;
	}
}

/* Tile (tx, ty) of n x n over a w x h frame: origin and size. */
static void tile_rect(uint32_t w, uint32_t h, uint32_t n, uint32_t tx, uint32_t ty, uint32_t *x0,
                      uint32_t *y0, uint32_t *tw, uint32_t *th)
{
	*tw = w / n + w / (4 * n);
	*th = h / n + h / (4 * n);
	*x0 = n > 1 ? (uint32_t)((uint64_t)(w - *tw) * tx / (n - 1)) : 0;
	*y0 = n > 1 ? (uint32_t)((uint64_t)(h - *th) * ty / (n - 1)) : 0;
}

static hk_status detect_tiles(hk_recognizer *r, const hk_image *img, size_t *nf)
{
	uint32_t n = r->p.detect_tiles;
	for (uint32_t ty = 0; ty < n; ty++)
		for (uint32_t tx = 0; tx < n; tx++) {
			uint32_t x0, y0, tw, th;
			tile_rect(img->width, img->height, n, tx, ty, &x0, &y0, &tw, &th);
			hk_image v = {tw, th, img->stride, 0, img->data + (size_t)y0 * img->stride + 3 * (size_t)x0};
			size_t m = 0;
			hk_status s = hk_engine_detect(r->p.engine, &v, r->tmpf, r->p.max_faces, &m);
			if (s != HK_OK)
				return s;
			if (m > r->p.max_faces)
				m = r->p.max_faces;
			for (size_t i = 0; i < m; i++) {
				hk_face f = r->tmpf[i];
				shift_face(&f, (float)x0, (float)y0);
				size_t j;
				for (j = 0; j < *nf; j++)
					if (hk__box_iou(f.box, r->faces[j].box) > 0.3f)
						break;
				if (j < *nf) {
					if (f.score > r->faces[j].score)
						r->faces[j] = f;
				} else if (*nf < r->p.max_faces) {
					r->faces[(*nf)++] = f;
				}
			}
		}
	return HK_OK;
}

/* Neighbourhoods of tracks close together share one detector run when
 * the square around them is at most `merge` times the smallest of their
 * own (*least: the smallest so far): the faces shrink a little in the
 * view, the run is saved. 1 when q went into a. */
static int merge_region(hk__region *a, float *least, const hk__region *q, float merge)
{
	if (a->grid != q->grid || !(merge >= 1))
		return 0;
	float x0 = fminf(a->cx - a->side / 2, q->cx - q->side / 2);
	float y0 = fminf(a->cy - a->side / 2, q->cy - q->side / 2);
	float x1 = fmaxf(a->cx + a->side / 2, q->cx + q->side / 2);
	float y1 = fmaxf(a->cy + a->side / 2, q->cy + q->side / 2);
	float side = fmaxf(x1 - x0, y1 - y0);
	if (side > merge * fminf(*least, q->side))
		return 0;
	*least = fminf(*least, q->side);
	*a = (hk__region){(x0 + x1) / 2, (y0 + y1) / 2, side, a->grid, a->thr};
	return 1;
}

/* Stream detection: the neighbourhood of every live track (its box moved
 * by its velocity, roi_scale times its side, four to a detector run) and
 * one view of the scan, in rotation: the full frame, then each of the
 * n x n tiles. A face already tracked is looked for every frame at a
 * scale where it is large; a new face is found within 1 + n x n frames
 * (5 at 720p/1080p: 0.2 s at 25 frames/s) if a scan view shows it at
 * ~16 px or more. */
static hk_status detect_stream(hk_recognizer *r, const hk_image *img, int64_t now, size_t *nf)
{
	uint32_t n = hk__rec_tiles(r, img->width, img->height);
	uint32_t nscan = 1 + (n > 1 ? n * n : 0), ph = r->scan_phase++ % nscan;
	hk__region *reg = r->reg;
	size_t nr = 0;
	if (ph == 0) {
		reg[nr++] = (hk__region){img->width / 2.f, img->height / 2.f,
		                         (float)(img->width > img->height ? img->width : img->height), 1, 0};
	} else {
		uint32_t x0, y0, tw, th;
		tile_rect(img->width, img->height, n, (ph - 1) % n, (ph - 1) / n, &x0, &y0, &tw, &th);
		reg[nr++] = (hk__region){x0 + tw / 2.f, y0 + th / 2.f, (float)(tw > th ? tw : th), 1, 0};
	}
	float least[1 + r->tune.roi_max];
	for (size_t i = 0; i < r->ntr && nr < 1 + (size_t)r->tune.roi_max; i++) {
		float b[4];
		if (r->tr[i].rescued)
			continue; /* the rescue looks for it again (below) */
		predict(&r->tr[i], now, b);
		float side = fmaxf(b[2] - b[0], b[3] - b[1]);
		if (!(side > 0) || !isfinite(side))
			continue;
		hk__region q = {(b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
		                fmaxf(r->tune.roi_scale * side, 48.f), r->tune.roi_grid, 0};
		size_t j;
		for (j = 1; j < nr && !merge_region(&reg[j], &least[j], &q, r->tune.roi_merge); j++)
			;
		if (j == nr) {
			least[nr] = q.side;
			reg[nr++] = q;
		}
	}
	hk_status s = hk__engine_detect_regions(r->p.engine, img, reg, nr, r->faces, r->p.max_faces, nf);
	/* Nothing found and no visit in view: a face the plain views miss (a
	 * profile, one filling the frame, one just below the threshold) gets
	 * the engine's rescue. Once a rescue finds nothing, the next waits
	 * rescue_gap_us: an empty stream would otherwise pay six more
	 * detector runs on every frame. */
	int visit = 0;
	for (size_t i = 0; i < r->ntr; i++)
		visit |= r->tr[i].confirmed && !r->tr[i].rescued;
	if (s == HK_OK && !*nf && !visit && r->tune.rescue_gap_us >= 0 &&
	    (!r->missed || now - r->t_miss >= r->tune.rescue_gap_us)) {
		s = hk_engine_detect(r->p.engine, img, r->faces, r->p.max_faces, nf);
		if (s == HK_OK && !*nf) {
			r->missed = 1;
			r->t_miss = now;
		}
	}
	if (*nf > r->p.max_faces)
		*nf = r->p.max_faces;
	return s;
}

/* 1 when img differs from the previous frame by more than scene_cut (mean
 * absolute grey difference at 32x18, each cell the mean of a 4x4 sample
 * grid). Updates the stored thumbnail. */
static int scene_cut(hk_recognizer *r, const hk_image *img)
{
	uint8_t th[THUMB_W * THUMB_H];
	for (int j = 0; j < THUMB_H; j++)
		for (int i = 0; i < THUMB_W; i++) {
			unsigned acc = 0;
			for (int v = 0; v < 4; v++)
				for (int u = 0; u < 4; u++) {
					size_t x = ((size_t)i * 4 + (size_t)u) * img->width / (THUMB_W * 4);
					size_t y = ((size_t)j * 4 + (size_t)v) * img->height / (THUMB_H * 4);
					const uint8_t *px = img->data + y * img->stride + 3 * x;
					acc += (77u * px[0] + 150u * px[1] + 29u * px[2]) >> 8;
				}
			th[j * THUMB_W + i] = (uint8_t)(acc / 16);
		}
	int cut = 0;
	if (r->have_thumb) {
		unsigned long sad = 0;
		for (size_t k = 0; k < sizeof th; k++)
			sad += (unsigned long)abs((int)th[k] - (int)r->thumb[k]);
		cut = (float)sad / sizeof th > r->p.scene_cut;
	}
	memcpy(r->thumb, th, sizeof th);
	r->have_thumb = 1;
	return cut;
}

/* Keeps the frame's faces for hk_recognizer_frame_faces: quality, the
 * visit each joined, and the subject among the usable ones. */
static void frame_faces_keep(hk_recognizer *r, const hk_image *img, size_t nf, size_t found,
                             const int *active)
{
	for (size_t f = 0; f < nf; f++) {
		hk_frame_face *o = &r->ff[f];
		o->face = r->faces[f];
		o->quality = r->qual[f];
		o->track = active[f] && r->owner[f] >= 0 ? r->tr[r->owner[f]].id : 0;
		o->subject = 0;
		/* the subject rule sees only the usable faces */
		r->tmpf[f] = r->faces[f];
		r->tmpf[f].reject = r->qual[f].reasons ? HK_FACE_TOO_SMALL : HK_FACE_OK;
	}
	size_t subj = hk__subject_face(r->tmpf, nf, img);
	if (subj < nf)
		r->ff[subj].subject = 1;
	r->nff = nf;
	r->nff_found = found;
}

static hk_status process(hk_recognizer *r, const hk_image *img, int64_t now)
{
	uint64_t t0 = hk__now_ns();
	size_t nf = 0;
	r->nff = r->nff_found = 0;
	hk_status s;
	size_t found;
	if (!r->p.stills && r->tune.stream_detect) {
		if ((s = detect_stream(r, img, now, &nf)) != HK_OK)
			return s;
		found = nf;
	} else {
		if ((s = hk_engine_detect(r->p.engine, img, r->faces, r->p.max_faces, &nf)) != HK_OK)
			return s;
		found = nf;
		if (nf > r->p.max_faces)
			nf = r->p.max_faces;
		if (r->p.detect_tiles > 1 && (s = detect_tiles(r, img, &nf)) != HK_OK)
			return s;
		if (found < nf)
			found = nf;
	}
	uint64_t t1 = hk__now_ns();
	r->st.detect_ns += t1 - t0;
	r->st.faces += nf;
	int active[nf ? nf : 1];
	for (size_t f = 0; f < nf; f++) {
		r->have[f] = 0;
		active[f] = in_roi(r, r->faces[f].box);
		if (hk_face_quality(img, &r->faces[f], &r->p.quality, &r->qual[f]) != HK_OK) {
			memset(&r->qual[f], 0, sizeof r->qual[f]);
			r->qual[f].reasons = HK_Q_TOO_SMALL; /* an empty box */
			active[f] = 0;
		}
		if (!in_roi(r, r->faces[f].box))
			r->qual[f].reasons |= HK_Q_OUTSIDE_ROI;
		if (!active[f])
			continue;
		r->st.usable += r->qual[f].reasons == 0;
	}
	r->st.quality_ns += hk__now_ns() - t1;

	if (r->p.stills) {
		for (size_t f = 0; f < nf; f++)
			r->owner[f] = -1;
	} else if ((s = associate(r, img, nf, now, active)) != HK_OK) {
		return s;
	}
	/* Existing tracks first (their indices are stable until tracks are
	 * added or ended), then new tracks for unclaimed faces. */
	size_t n_old = r->ntr;
	int *tidx = r->owner;
	for (size_t f = 0; f < nf; f++) {
		if (!active[f])
			continue;
		track *t;
		if (tidx[f] >= 0) {
			t = &r->tr[tidx[f]];
			track_update(t, &r->faces[f], now);
		} else {
			if (!(t = track_new(r, &r->faces[f], now)))
				return hk__err(HK_E_NOMEM, "recognizer: tracks");
			t->hits = 1;
			tidx[f] = (int)(r->ntr - 1);
		}
		t->rescued = (r->faces[f].flags & HK_FACE_RESCUED) != 0;
		if (r->qual[f].score > t->best_any) {
			t->best_any = r->qual[f].score;
			t->best_reasons = r->qual[f].reasons;
		}
	}
	(void)n_old;
	/* Embed the usable faces that would enter their track's template
	 * (a still without gallery or store is only detected and assessed:
	 * nothing would use its embedding). */
	int embed = !r->p.stills || r->p.gallery || r->p.store;
	size_t want[nf ? nf : 1], nw = 0;
	for (size_t f = 0; f < nf; f++) {
		if (!active[f] || r->qual[f].reasons)
			continue;
		track *t = &r->tr[tidx[f]];
		t->used++;
		if (embed && !r->have[f] && wants_view(r, t, r->qual[f].score))
			want[nw++] = f;
	}
	nw = ration_views(r, tidx, want, nw, now);
	if ((s = embed_some(r, img, want, nw)) != HK_OK)
		return s;
	for (size_t i = 0; i < nw; i++)
		r->tr[tidx[want[i]]].t_view = now;
	for (size_t f = 0; f < nf; f++) {
		if (!active[f] || !r->have[f])
			continue;
		track *t = &r->tr[tidx[f]];
		memcpy(t->last_emb, r->emb + f * D, sizeof t->last_emb);
		t->have_emb = 1;
		if (!r->qual[f].reasons)
			add_view(r, t, r->qual[f].score, r->emb + f * D);
	}
	hk__wipe(r->emb, nf * D * sizeof *r->emb);
	/* Confirm, decide. */
	for (size_t i = 0; i < r->ntr; i++) {
		track *t = &r->tr[i];
		if (t->t_last != now)
			continue;
		if (!t->confirmed && t->hits >= r->p.min_hits && (s = confirm(r, t, now)) != HK_OK)
			return s;
		if (t->confirmed && (s = decide(r, t, now, 0)) != HK_OK)
			return s;
	}
	frame_faces_keep(r, img, nf, found, active);
	/* End lost tracks (stills: every track, in face order). */
	if (r->p.stills)
		return end_all(r, now, HK_END_STILL);
	for (size_t i = 0; i < r->ntr;) {
		track *t = &r->tr[i];
		if (now - t->t_last > r->p.lost_after_us ||
		           (!t->confirmed && t->t_last != now)) {
			if ((s = end_track(r, i, now, HK_END_LOST)) != HK_OK)
				return s;
		} else {
			i++;
		}
	}
	return HK_OK;
}

hk_status hk_recognizer_push_frame(hk_recognizer *r, const hk_image *img, int64_t t_us,
                                   hk_event *ev, size_t max, size_t *n)
{
	if (n)
		*n = 0;
	if (!r || !img || !img->data || (max && !ev) || !n)
		return hk__err(HK_E_INVALID, "hk_recognizer_push_frame: NULL argument");
	if (!img->width || !img->height || img->stride < 3 * img->width)
		return hk__err(HK_E_INVALID, "hk_recognizer_push_frame: bad image geometry");
	hk_status s = HK_OK;
	/* A clock that went back (a source that restarted, often with a new
	 * size) ends every visit at the old clock's last time: no visit spans
	 * two clocks, and no duration is negative. */
	int reset = r->last_t != INT64_MIN && t_us < r->last_t;
	int64_t t_end = reset ? r->last_t : t_us;
	if (r->w && (img->width != r->w || img->height != r->h))
		s = end_all(r, t_end, HK_END_SIZE_CHANGED);
	else if (reset)
		s = end_all(r, t_end, HK_END_TIME_RESET);
	else if (!r->p.stills && scene_cut(r, img) && r->ntr)
		s = end_all(r, t_us, HK_END_SCENE_CUT);
	r->last_t = t_us;
	r->w = img->width;
	r->h = img->height;
	r->st.frames++;
	if (s == HK_OK)
		s = process(r, img, t_us);
	*n = drain(r, ev, max);
	return s;
}

hk_status hk_recognizer_end(hk_recognizer *r, int64_t t_us, uint32_t reason, hk_event *ev,
                            size_t max, size_t *n)
{
	if (n)
		*n = 0;
	if (!r || (max && !ev) || !n)
		return hk__err(HK_E_INVALID, "hk_recognizer_end: NULL argument");
	if (r->last_t != INT64_MIN && t_us < r->last_t)
		t_us = r->last_t;
	hk_status s = end_all(r, t_us, reason ? reason : HK_END_SOURCE_ENDED);
	r->last_t = INT64_MIN;
	r->nff = r->nff_found = 0;
	r->w = r->h = 0;
	r->have_thumb = 0;
	*n = drain(r, ev, max);
	return s;
}

hk_status hk_recognizer_get_stats(const hk_recognizer *r, hk_recognizer_stats *s)
{
	if (!r || !s)
		return hk__err(HK_E_INVALID, "hk_recognizer_get_stats: NULL argument");
	*s = r->st;
	return HK_OK;
}

const char *hk_event_type_str(uint32_t type)
{
	switch (type) {
	case HK_EV_TRACK_STARTED: return "track-started";
	case HK_EV_DECISION: return "decision";
	case HK_EV_REVISED: return "revised";
	case HK_EV_VISIT_ENDED: return "visit-ended";
	default: return "unknown";
	}
}

const char *hk_outcome_str(uint32_t outcome)
{
	switch (outcome) {
	case HK_OUTCOME_UNDECIDED: return "undecided";
	case HK_OUTCOME_MATCH: return "match";
	case HK_OUTCOME_STRANGER: return "stranger";
	default: return "unknown";
	}
}

const char *hk_end_reason_str(uint32_t reason)
{
	switch (reason) {
	case HK_END_NONE: return "";
	case HK_END_LOST: return "lost";
	case HK_END_SOURCE_ENDED: return "source-ended";
	case HK_END_SOURCE_ERROR: return "source-error";
	case HK_END_SIZE_CHANGED: return "size-changed";
	case HK_END_STILL: return "still";
	case HK_END_SCENE_CUT: return "scene-cut";
	case HK_END_TIME_RESET: return "time-reset";
	default: return "unknown";
	}
}

hk_status hk_recognizer_poll(hk_recognizer *r, hk_event *ev, size_t max, size_t *n)
{
	if (n)
		*n = 0;
	if (!r || (max && !ev) || !n)
		return hk__err(HK_E_INVALID, "hk_recognizer_poll: NULL argument");
	*n = drain(r, ev, max);
	return HK_OK;
}

hk_status hk_recognizer_frame_faces(const hk_recognizer *r, hk_frame_face *faces, size_t max,
                                    size_t *n)
{
	if (n)
		*n = 0;
	if (!r || (max && !faces) || !n)
		return hk__err(HK_E_INVALID, "hk_recognizer_frame_faces: NULL argument");
	size_t k = r->nff < max ? r->nff : max;
	memcpy(faces, r->ff, k * sizeof *faces);
	*n = r->nff_found;
	return HK_OK;
}
