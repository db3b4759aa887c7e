/* hk_embed_many: a photo collection through the engine as a pipeline.
 *
 *   reader thread    hk_frames_next -> image slot (at most max_images)
 *   detect threads   decode if needed, hk_engine_detect, usable/subject,
 *                    chips cut straight into free chip slots, frame released
 *   embed threads    up to `batch` ready chips (any images) -> one embedder
 *                    call on the thread's own executor -> per-view vectors
 *   calling thread   delivers images in read order once all their chips are
 *                    back: views combined as hk_engine_embed combines them
 *
 * One mutex guards the job's queues (a handful of operations per image and
 * per chip, against milliseconds of model work); chip pixels are written
 * and read outside it, in slots owned by one thread at a time. */
#define _GNU_SOURCE
#include "pipeline.h"

#include "internal.h"
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHIP_BYTES ((size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3)

enum { REC_EMPTY = 0, REC_QUEUED, REC_WORKING, REC_DONE };

typedef struct rec {
	int state;
	uint64_t seq;
	hk_frame *frame;     /* until its chips are cut                 */
	hk_status status;
	char error[256];
	uint64_t id;
	char *name;
	uint32_t w, h;
	size_t found, nfaces;
	hk_embed_face *faces; /* max_faces                               */
	size_t nsel;
	uint32_t *sel;       /* face index of selected face j           */
	float *views;        /* nsel x nviews x HK_EMBED_DIM            */
	float *emb;          /* nsel x HK_EMBED_DIM, combined at delivery */
	size_t chips_out;    /* chips queued and not yet embedded       */
	int cutting;         /* the detect thread still cuts chips      */
} rec;

typedef struct chip_ref {
	uint64_t seq;
	uint32_t sel, view;
} chip_ref;

typedef struct job {
	const hk_engine *e;
	hk_frames *src;
	hk_embed_params p;
	hk_engine_params ep;
	size_t nviews;
	const hk_model **models; /* embed thread k runs models[k] */
	hk_model **copies;       /* models[1..] owned by the job */

	pthread_mutex_t mu;
	pthread_cond_t cv_read;   /* a slot freed or a frame released  */
	pthread_cond_t cv_detect; /* a frame read or the reader ended  */
	pthread_cond_t cv_free;   /* a chip slot freed                 */
	pthread_cond_t cv_ready;  /* a chip ready or the input ended   */
	pthread_cond_t cv_done;   /* an image done or the threads ended */

	rec *recs;                /* max_images, by seq % max_images   */
	uint64_t nread, ndetect, ndelivered;
	int reader_done, stop;
	hk_status src_status;
	char src_error[256];
	unsigned detect_busy;
	uint64_t held;            /* frames read and not released       */

	uint8_t *slots;           /* max_chips x CHIP_BYTES             */
	chip_ref *slot_ref;
	uint32_t *free_slots, nfree;
	uint32_t *ready, ready_head, nready; /* FIFO of slot indices    */
	uint64_t chip_seq;        /* chips made ready so far (flush test) */
	unsigned threads_left;    /* detect + embed threads still running */
	unsigned detect_left;

	hk_embed_stats st;
	double t0;
} job;

static double now_s(void)
{
	return (double)hk__now_ns() * 1e-9;
}

void hk_embed_default_params(hk_embed_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	hk_quality_default_params(&p->quality);
	p->max_faces = 64;
	p->batch = 8;
	p->flush_us = 2000;
	p->max_images = 64;
	p->max_chips = 64;
	p->progress_ms = 500;
}

static hk_status resolve(const hk_embed_params *in, unsigned engine_threads, hk_embed_params *p)
{
	hk_embed_params d;
	hk_embed_default_params(&d);
	*p = in ? *in : d;
	unsigned cores = hk__ncores();
	if (!p->max_faces)
		p->max_faces = d.max_faces;
	if (!p->batch)
		p->batch = d.batch;
	if (!p->flush_us)
		p->flush_us = d.flush_us;
	if (!p->detect_threads)
		p->detect_threads = cores ? cores : 1;
	if (!p->embed_threads) /* one executor per core its model leaves free */
		p->embed_threads = cores && engine_threads && engine_threads < cores
		                       ? cores / engine_threads : 1;
	if (!p->max_images)
		p->max_images = d.max_images;
	if (!p->max_chips)
		p->max_chips = d.max_chips;
	if (!p->progress_ms)
		p->progress_ms = d.progress_ms;
	if (p->select > HK_EMBED_NONE || p->use_quality > 1)
		return hk__err(HK_E_INVALID, "hk_embed_many: unknown select or use_quality value");
	if (p->max_faces > 4096 || p->batch > 256 || p->detect_threads > 64 ||
	    p->embed_threads > 64 || p->max_images > 65536 || p->max_chips > 65536)
		return hk__err(HK_E_LIMIT, "hk_embed_many: a limit in the params is too large");
	if (p->max_chips < 2)
		p->max_chips = 2; /* a face's two views */
	return HK_OK;
}

static void rec_clear(rec *r, size_t max_faces, size_t nviews)
{
	if (r->views)
		hk__wipe(r->views, sizeof(float) * HK_EMBED_DIM * nviews * r->nsel);
	if (r->emb)
		hk__wipe(r->emb, sizeof(float) * HK_EMBED_DIM * r->nsel);
	free(r->views);
	free(r->emb);
	free(r->sel);
	free(r->name);
	hk_embed_face *faces = r->faces;
	if (faces)
		hk__wipe(faces, sizeof *faces * max_faces);
	memset(r, 0, sizeof *r);
	r->faces = faces;
}

static void set_error(rec *r, hk_status st, const char *msg)
{
	r->status = st;
	snprintf(r->error, sizeof r->error, "%s", msg && *msg ? msg : hk_status_str(st));
}

/* ---- detect threads ------------------------------------------------------ */

/* Usable flags, subject and selection of r's faces; returns the chips to
 * cut (0 and r->status set when the image fails here). */
static size_t choose(job *j, rec *r, const hk_image *img, const hk_face *raw, hk_face *tmp,
                     uint8_t *usable, uint8_t *pick)
{
	const hk_embed_params *p = &j->p;
	size_t n = r->nfaces, nusable = 0, rejected = 0;
	for (size_t i = 0; i < n; i++) {
		hk_embed_face *f = &r->faces[i];
		memset(f, 0, sizeof *f);
		f->face = raw[i];
		if (p->use_quality) {
			if (hk_face_quality(img, &raw[i], &p->quality, &f->quality) != HK_OK) {
				memset(&f->quality, 0, sizeof f->quality);
				f->quality.reasons = HK_Q_TOO_SMALL; /* an empty box */
			}
			usable[i] = f->quality.reasons == 0;
		} else {
			usable[i] = raw[i].reject == HK_FACE_OK;
		}
		f->usable = usable[i];
		nusable += usable[i];
		rejected += raw[i].reject != HK_FACE_OK;
		tmp[i] = raw[i];
		tmp[i].reject = usable[i] ? HK_FACE_OK : HK_FACE_TOO_SMALL;
		pick[i] = 0;
	}
	size_t subj = hk__subject_face(tmp, n, img);
	if (subj < n)
		r->faces[subj].subject = 1;
	if (p->select_fn) {
		if (p->select_fn(p->user, r->id, img, raw, usable, n, pick)) {
			set_error(r, HK_E_STATE, "the select callback failed this image");
			return 0;
		}
	} else if (p->select == HK_EMBED_ALL) {
		memcpy(pick, usable, n);
	} else if (p->select == HK_EMBED_SUBJECT) {
		if (subj < n) {
			pick[subj] = 1;
		} else {
			char msg[200];
			if (r->found == 0)
				snprintf(msg, sizeof msg, "no face found in the %ux%u image", img->width,
				         img->height);
			else if (p->use_quality)
				snprintf(msg, sizeof msg, "no usable face: %zu found, none passes the quality rule",
				         r->found);
			else
				snprintf(msg, sizeof msg, "no usable face: %zu found, %zu smaller than the "
				         "%.0f-pixel floor", r->found, rejected, j->ep.min_face);
			set_error(r, HK_E_NOT_FOUND, msg);
			return 0;
		}
	}
	(void)nusable;
	size_t nsel = 0;
	for (size_t i = 0; i < n; i++)
		nsel += pick[i] != 0;
	return nsel;
}

/* Takes n free chip slots at once (waits for them; a thread never holds
 * some while waiting for more, so max_chips >= n always progresses);
 * mu held. */
static void take_slots(job *j, uint32_t *s, size_t n)
{
	while (j->nfree < n)
		pthread_cond_wait(&j->cv_free, &j->mu);
	for (size_t i = 0; i < n; i++)
		s[i] = j->free_slots[--j->nfree];
}

static void push_ready(job *j, uint32_t s, uint64_t seq, uint32_t sel, uint32_t view)
{
	j->slot_ref[s] = (chip_ref){seq, sel, view};
	uint32_t cap = j->p.max_chips;
	j->ready[(j->ready_head + j->nready) % cap] = s;
	j->nready++;
	j->chip_seq++;
	if (j->p.max_chips - j->nfree > j->st.peak_chips)
		j->st.peak_chips = j->p.max_chips - j->nfree;
	pthread_cond_signal(&j->cv_ready);
}

/* rec done when its chips are cut and all are back; mu held. */
static void maybe_done(job *j, rec *r)
{
	if (r->state == REC_WORKING && !r->cutting && r->chips_out == 0) {
		r->state = REC_DONE;
		pthread_cond_broadcast(&j->cv_done);
	}
}

static void release_frame(job *j, rec *r, hk_image *own)
{
	if (own->data)
		hk_image_free(own);
	pthread_mutex_lock(&j->mu);
	hk_frame *fr = r->frame;
	r->frame = NULL;
	pthread_mutex_unlock(&j->mu);
	if (fr) {
		hk_frames_release(j->src, fr);
		pthread_mutex_lock(&j->mu);
		j->held--;
		pthread_cond_broadcast(&j->cv_read);
		pthread_mutex_unlock(&j->mu);
	}
}

typedef struct det_scratch {
	hk_face *raw, *tmp;
	uint8_t *usable, *pick;
} det_scratch;

static void detect_one(job *j, rec *r, det_scratch *sc)
{
	double t0 = now_s();
	hk_frame *fr = r->frame;
	hk_image own = {0};
	const hk_image *img = &fr->image;
	int stopped;
	pthread_mutex_lock(&j->mu);
	stopped = j->stop;
	pthread_mutex_unlock(&j->mu);
	if (stopped) {
		set_error(r, HK_E_STATE, "job stopped");
		goto out;
	}
	if (fr->status != HK_OK) {
		set_error(r, fr->status, fr->error);
		goto out;
	}
	if (!img->data) {
		hk_status s = hk_image_decode(fr->bytes, fr->len, &own);
		if (s) {
			set_error(r, s, hk_last_error());
			goto out;
		}
		img = &own;
	}
	r->w = img->width;
	r->h = img->height;
	size_t found = 0;
	hk_status s = hk_engine_detect(j->e, img, sc->raw, j->p.max_faces, &found);
	if (s) {
		set_error(r, s, hk_last_error());
		goto out;
	}
	r->found = found;
	r->nfaces = found < j->p.max_faces ? found : j->p.max_faces;
	size_t nsel = choose(j, r, img, sc->raw, sc->tmp, sc->usable, sc->pick);
	if (!nsel)
		goto out;
	const size_t nv = j->nviews;
	r->sel = malloc(sizeof *r->sel * nsel);
	r->views = malloc(sizeof(float) * HK_EMBED_DIM * nv * nsel);
	r->emb = malloc(sizeof(float) * HK_EMBED_DIM * nsel);
	if (!r->sel || !r->views || !r->emb) {
		free(r->sel);
		free(r->views);
		free(r->emb);
		r->sel = NULL;
		r->views = r->emb = NULL;
		set_error(r, HK_E_NOMEM, "out of memory for the embeddings");
		goto out;
	}
	for (size_t i = 0; i < r->nfaces; i++)
		if (sc->pick[i])
			r->sel[r->nsel++] = (uint32_t)i;
	for (size_t k = 0; k < r->nsel; k++) {
		/* Both views of a face in adjacent slots' worth of work: cut the
		 * plain chip into one slot, its mirror into another. */
		uint32_t sl[2] = {0, 0}, s0, s1;
		pthread_mutex_lock(&j->mu);
		take_slots(j, sl, nv);
		pthread_mutex_unlock(&j->mu);
		s0 = sl[0];
		s1 = sl[1];
		uint8_t *c0 = j->slots + (size_t)s0 * CHIP_BYTES;
		int bad = hk__engine_cut_chip(j->e, img, &r->faces[r->sel[k]].face, c0, 0);
		if (!bad && nv == 2) {
			uint8_t *c1 = j->slots + (size_t)s1 * CHIP_BYTES;
			memcpy(c1, c0, CHIP_BYTES);
			hk__chip_mirror(c1, HK__CHIP_SIZE);
		}
		pthread_mutex_lock(&j->mu);
		if (bad) {
			j->free_slots[j->nfree++] = s0;
			if (nv == 2)
				j->free_slots[j->nfree++] = s1;
			pthread_cond_broadcast(&j->cv_free);
			char msg[96];
			snprintf(msg, sizeof msg, "embed: face %u has degenerate landmarks", r->sel[k]);
			set_error(r, HK_E_RANGE, msg); /* embed threads may read it now */
		} else {
			push_ready(j, s0, r->seq, (uint32_t)k, 0);
			if (nv == 2)
				push_ready(j, s1, r->seq, (uint32_t)k, 1);
			r->chips_out += nv;
		}
		pthread_mutex_unlock(&j->mu);
		if (bad)
			break;
	}
out:
	release_frame(j, r, &own);
	double dt = now_s() - t0;
	pthread_mutex_lock(&j->mu);
	j->st.detect_s += dt;
	r->cutting = 0;
	maybe_done(j, r);
	pthread_mutex_unlock(&j->mu);
}

static void *detect_main(void *arg)
{
	job *j = arg;
	det_scratch sc = {0};
	size_t mf = j->p.max_faces;
	sc.raw = malloc(sizeof *sc.raw * mf);
	sc.tmp = malloc(sizeof *sc.tmp * mf);
	sc.usable = malloc(mf);
	sc.pick = malloc(mf);
	int ok = sc.raw && sc.tmp && sc.usable && sc.pick;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (j->ndetect == j->nread && !j->reader_done)
			pthread_cond_wait(&j->cv_detect, &j->mu);
		if (j->ndetect == j->nread)
			break;
		rec *r = &j->recs[j->ndetect % j->p.max_images];
		j->ndetect++;
		r->state = REC_WORKING;
		r->cutting = 1;
		j->detect_busy++;
		pthread_mutex_unlock(&j->mu);
		if (ok) {
			detect_one(j, r, &sc);
		} else {
			hk_image none = {0};
			set_error(r, HK_E_NOMEM, "out of memory for a detect thread");
			release_frame(j, r, &none);
			pthread_mutex_lock(&j->mu);
			r->cutting = 0;
			maybe_done(j, r);
			pthread_mutex_unlock(&j->mu);
		}
		pthread_mutex_lock(&j->mu);
		j->detect_busy--;
	}
	j->detect_left--;
	j->threads_left--;
	pthread_cond_broadcast(&j->cv_ready); /* the embed threads may flush */
	pthread_cond_broadcast(&j->cv_done);
	pthread_mutex_unlock(&j->mu);
	free(sc.raw);
	if (sc.tmp)
		hk__wipe(sc.tmp, sizeof *sc.tmp * mf);
	free(sc.tmp);
	free(sc.usable);
	free(sc.pick);
	return NULL;
}

/* ---- embed threads ------------------------------------------------------- */

typedef struct embed_arg {
	job *j;
	const hk_model *m;
} embed_arg;

static void deadline_after(struct timespec *ts, uint32_t us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += (long)us * 1000;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

static void *embed_main(void *arg)
{
	embed_arg *ea = arg;
	job *j = ea->j;
	const uint32_t B = j->p.batch, cap = j->p.max_chips;
	uint8_t *batch = malloc(CHIP_BYTES * B);
	float *out = malloc(sizeof(float) * HK_EMBED_DIM * B);
	uint32_t *took = malloc(sizeof *took * B);
	chip_ref *refs = malloc(sizeof *refs * B);
	int ok = batch && out && took && refs;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		/* Wait for a full batch; a partial one goes when no chip came for
		 * flush_us or when no more can come. */
		for (;;) {
			if (j->nready >= B || j->detect_left == 0)
				break;
			if (!j->nready) {
				pthread_cond_wait(&j->cv_ready, &j->mu);
				continue;
			}
			uint64_t seen = j->chip_seq;
			struct timespec ts;
			deadline_after(&ts, j->p.flush_us);
			int rc = 0;
			while (j->chip_seq == seen && j->nready && j->nready < B && j->detect_left && !rc)
				rc = pthread_cond_timedwait(&j->cv_ready, &j->mu, &ts);
			if (rc && j->nready)
				break; /* nothing new for flush_us: go with what is there */
		}
		if (!j->nready)
			break; /* no detect thread left and nothing queued */
		uint32_t n = j->nready < B ? j->nready : B;
		for (uint32_t i = 0; i < n; i++) {
			took[i] = j->ready[(j->ready_head + i) % cap];
			refs[i] = j->slot_ref[took[i]];
		}
		j->ready_head = (j->ready_head + n) % cap;
		j->nready -= n;
		if (j->nready)
			pthread_cond_signal(&j->cv_ready); /* another embed thread */
		pthread_mutex_unlock(&j->mu);
		for (uint32_t i = 0; ok && i < n; i++)
			memcpy(batch + (size_t)i * CHIP_BYTES, j->slots + (size_t)took[i] * CHIP_BYTES,
			       CHIP_BYTES);
		double t0 = now_s();
		hk_status s = ok ? hk_embed_chips(ea->m, batch, n, out) : HK_E_NOMEM;
		char msg[256];
		if (s)
			snprintf(msg, sizeof msg, "%s", ok ? hk_last_error() : "out of memory for an embed thread");
		double dt = now_s() - t0;
		pthread_mutex_lock(&j->mu);
		j->st.embed_s += dt;
		j->st.batches++;
		j->st.chips += n;
		if (n > j->st.max_batch)
			j->st.max_batch = n;
		for (uint32_t i = 0; i < n; i++) {
			j->free_slots[j->nfree++] = took[i];
			rec *r = &j->recs[refs[i].seq % j->p.max_images];
			if (s && r->status == HK_OK)
				set_error(r, s, msg);
			else if (!s)
				memcpy(r->views + ((size_t)refs[i].sel * j->nviews + refs[i].view) * HK_EMBED_DIM,
				       out + (size_t)i * HK_EMBED_DIM, sizeof(float) * HK_EMBED_DIM);
			r->chips_out--;
			maybe_done(j, r);
		}
		pthread_cond_broadcast(&j->cv_free);
	}
	j->threads_left--;
	pthread_cond_broadcast(&j->cv_done);
	pthread_mutex_unlock(&j->mu);
	if (batch)
		hk__wipe(batch, CHIP_BYTES * B);
	if (out)
		hk__wipe(out, sizeof(float) * HK_EMBED_DIM * B);
	free(batch);
	free(out);
	free(took);
	free(refs);
	return NULL;
}

/* ---- reader thread ------------------------------------------------------- */

static void *reader_main(void *arg)
{
	job *j = arg;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->stop && j->nread - j->ndelivered >= j->p.max_images)
			pthread_cond_wait(&j->cv_read, &j->mu);
		if (j->stop)
			break;
		pthread_mutex_unlock(&j->mu);
		hk_frame *fr = NULL;
		hk_status s = hk_frames_next(j->src, &fr);
		pthread_mutex_lock(&j->mu);
		if (HK_STATUS_PRIMARY(s) == HK_E_LIMIT && j->held) {
			/* the source's frames are all in the job: wait for a release */
			uint64_t h = j->held;
			while (!j->stop && j->held == h)
				pthread_cond_wait(&j->cv_read, &j->mu);
			continue;
		}
		if (s) {
			j->src_status = s;
			snprintf(j->src_error, sizeof j->src_error, "%s", hk_last_error());
			break;
		}
		if (!fr)
			break;
		if (j->stop) {
			pthread_mutex_unlock(&j->mu);
			hk_frames_release(j->src, fr);
			pthread_mutex_lock(&j->mu);
			break;
		}
		rec *r = &j->recs[j->nread % j->p.max_images];
		r->state = REC_QUEUED;
		r->seq = j->nread;
		r->frame = fr;
		r->id = fr->id;
		r->name = strdup(fr->name ? fr->name : "");
		j->held++;
		j->nread++;
		if (j->nread - j->ndelivered > j->st.peak_images)
			j->st.peak_images = j->nread - j->ndelivered;
		pthread_cond_signal(&j->cv_detect);
	}
	j->reader_done = 1;
	pthread_cond_broadcast(&j->cv_detect);
	pthread_cond_broadcast(&j->cv_done);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* ---- the calling thread: delivery ---------------------------------------- */

/* Combines r's views and calls on_result; 0 to go on. */
static int deliver(job *j, rec *r)
{
	size_t embedded = 0;
	for (size_t k = 0; r->status == HK_OK && k < r->nsel; k++) {
		const float *v = r->views + k * j->nviews * HK_EMBED_DIM;
		float *dst = r->emb + k * HK_EMBED_DIM;
		if (hk__combine_views(v, j->nviews == 2 ? v + HK_EMBED_DIM : NULL, dst)) {
			char msg[96];
			snprintf(msg, sizeof msg, "embed: face %u gave a zero/non-finite embedding", r->sel[k]);
			set_error(r, HK_E_RANGE, msg);
			break;
		}
		r->faces[r->sel[k]].embedding = dst;
		embedded++;
	}
	if (r->status != HK_OK) {
		for (size_t i = 0; i < r->nfaces; i++)
			r->faces[i].embedding = NULL;
		embedded = 0;
	}
	j->st.images++;
	j->st.errors += r->status != HK_OK;
	j->st.faces += r->nfaces;
	j->st.embedded += embedded;
	if (!j->p.on_result)
		return 0;
	hk_embed_result res = {
		.seq = r->seq, .id = r->id, .name = r->name ? r->name : "", .status = r->status,
		.error = r->status ? r->error : "", .width = r->w, .height = r->h, .found = r->found,
		.nfaces = r->nfaces, .faces = r->faces, .embedded = embedded};
	return j->p.on_result(j->p.user, &res);
}

static void job_free(job *j)
{
	for (uint32_t i = 0; j->recs && i < j->p.max_images; i++) {
		rec_clear(&j->recs[i], j->p.max_faces, j->nviews);
		free(j->recs[i].faces);
	}
	free(j->recs);
	if (j->slots)
		hk__wipe(j->slots, CHIP_BYTES * j->p.max_chips);
	free(j->slots);
	free(j->slot_ref);
	free(j->free_slots);
	free(j->ready);
	for (uint32_t k = 1; j->copies && k < j->p.embed_threads; k++)
		hk_model_destroy(j->copies[k]);
	free(j->copies);
	free(j->models);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv_read);
	pthread_cond_destroy(&j->cv_detect);
	pthread_cond_destroy(&j->cv_free);
	pthread_cond_destroy(&j->cv_ready);
	pthread_cond_destroy(&j->cv_done);
}

static hk_status job_init(job *j)
{
	const uint32_t M = j->p.max_images, C = j->p.max_chips, E = j->p.embed_threads;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv_read, NULL);
	pthread_cond_init(&j->cv_detect, NULL);
	pthread_cond_init(&j->cv_free, NULL);
	pthread_cond_init(&j->cv_ready, &ca);
	pthread_cond_init(&j->cv_done, NULL);
	pthread_condattr_destroy(&ca);
	j->recs = calloc(M, sizeof *j->recs);
	j->slots = malloc(CHIP_BYTES * C);
	j->slot_ref = calloc(C, sizeof *j->slot_ref);
	j->free_slots = malloc(sizeof *j->free_slots * C);
	j->ready = malloc(sizeof *j->ready * C);
	j->models = calloc(E, sizeof *j->models);
	j->copies = calloc(E, sizeof *j->copies);
	if (!j->recs || !j->slots || !j->slot_ref || !j->free_slots || !j->ready || !j->models ||
	    !j->copies)
		return hk__err(HK_E_NOMEM, "hk_embed_many: out of memory");
	for (uint32_t i = 0; i < M; i++)
		if (!(j->recs[i].faces = calloc(j->p.max_faces, sizeof(hk_embed_face))))
			return hk__err(HK_E_NOMEM, "hk_embed_many: out of memory");
	for (uint32_t i = 0; i < C; i++)
		j->free_slots[i] = C - 1 - i;
	j->nfree = C;
	j->models[0] = hk__engine_embedder(j->e);
	for (uint32_t k = 1; k < E; k++) {
		hk_status s = hk__engine_load_embedder(j->e, &j->copies[k]);
		if (s)
			return s;
		j->models[k] = j->copies[k];
	}
	return HK_OK;
}

hk_status hk_embed_many(const hk_engine *e, hk_frames *src, const hk_embed_params *params,
                        hk_embed_stats *stats)
{
	if (stats)
		memset(stats, 0, sizeof *stats);
	if (!e || !src)
		return hk__err(HK_E_INVALID, "hk_embed_many: NULL engine or source");
	job *j = calloc(1, sizeof *j);
	if (!j)
		return hk__err(HK_E_NOMEM, "hk_embed_many: out of memory");
	j->e = e;
	j->src = src;
	j->t0 = now_s();
	hk_engine_get_params(e, &j->ep);
	hk_status st = resolve(params, j->ep.threads, &j->p);
	if (st) {
		free(j);
		return st;
	}
	j->nviews = j->ep.flip == HK_ON ? 2 : 1;
	st = job_init(j);
	const uint32_t D = j->p.detect_threads, E = j->p.embed_threads;
	pthread_t *th = calloc(1 + D + E, sizeof *th);
	embed_arg *ea = calloc(E, sizeof *ea);
	if (!st && (!th || !ea))
		st = hk__err(HK_E_NOMEM, "hk_embed_many: out of memory");
	j->st.total = hk_frames_count(src);
	j->st.embedders = E;
	/* Start embed and detect threads first (they wait), the reader last. */
	size_t started = 0;
	pthread_mutex_lock(&j->mu);
	j->detect_left = D;
	j->threads_left = D + E;
	pthread_mutex_unlock(&j->mu);
	for (uint32_t k = 0; !st && k < E; k++) {
		ea[k] = (embed_arg){j, j->models[k]};
		if (pthread_create(&th[started], NULL, embed_main, &ea[k]))
			st = hk__err(HK_E_BACKEND, "hk_embed_many: cannot start a thread");
		else
			started++;
	}
	size_t nembed = started;
	for (uint32_t k = 0; !st && k < D; k++) {
		if (pthread_create(&th[started], NULL, detect_main, j))
			st = hk__err(HK_E_BACKEND, "hk_embed_many: cannot start a thread");
		else
			started++;
	}
	pthread_mutex_lock(&j->mu);
	/* threads that never started do not count down */
	j->detect_left -= D - (unsigned)(started - nembed);
	j->threads_left -= D + E - (unsigned)started;
	pthread_cond_broadcast(&j->cv_ready);
	pthread_mutex_unlock(&j->mu);
	int reader = 0;
	if (!st) {
		if (pthread_create(&th[started], NULL, reader_main, j))
			st = hk__err(HK_E_BACKEND, "hk_embed_many: cannot start a thread");
		else
			reader = 1, started++;
	}
	hk_status result = st;
	pthread_mutex_lock(&j->mu);
	if (!reader) {
		/* Nothing was read: let the started threads see the end. */
		j->reader_done = 1;
		pthread_cond_broadcast(&j->cv_detect);
	}
	double last = now_s();
	for (;;) {
		rec *r = j->ndelivered < j->nread ? &j->recs[j->ndelivered % j->p.max_images] : NULL;
		if (r && r->state == REC_DONE) {
			pthread_mutex_unlock(&j->mu);
			int stop = j->stop ? 1 : deliver(j, r);
			pthread_mutex_lock(&j->mu);
			rec_clear(r, j->p.max_faces, j->nviews);
			j->ndelivered++;
			if (stop && !j->stop) {
				j->stop = 1;
				result = hk__err(HK_E_STATE, "hk_embed_many: stopped by on_result");
			}
			pthread_cond_broadcast(&j->cv_read);
		} else if (j->reader_done && j->ndelivered == j->nread && j->threads_left == 0) {
			break;
		} else {
			pthread_cond_wait(&j->cv_done, &j->mu);
		}
		if (j->p.on_progress && !j->stop && now_s() - last >= j->p.progress_ms * 1e-3) {
			last = now_s();
			j->st.wall_s = last - j->t0;
			hk_embed_stats snap = j->st;
			pthread_mutex_unlock(&j->mu);
			j->p.on_progress(j->p.user, &snap);
			pthread_mutex_lock(&j->mu);
		}
	}
	pthread_mutex_unlock(&j->mu);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (!result && j->src_status) {
		result = j->src_status;
		hk__err(result, "%s", j->src_error);
	}
	j->st.wall_s = now_s() - j->t0;
	if (j->p.on_progress && started)
		j->p.on_progress(j->p.user, &j->st);
	if (stats)
		*stats = j->st;
	free(th);
	free(ea);
	job_free(j);
	free(j);
	return result;
}
