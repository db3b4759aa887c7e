/*
 * Frame sources: the queue core. File lists, directory walks, frame batch
 * files and raw RGB24 / Y4M streams are read through io_uring (uring.c) or
 * a pread thread pool (pread.c) into a fixed pool of read buffers, decoded
 * by hwloc-pinned workers, delivered to one consumer in completion order
 * or by id. This file holds the slots, the memory budget, the queues, the
 * decode workers and open / next / release / destroy; the threading rules
 * are in frames_priv.h.
 */
#define _GNU_SOURCE
#include "frames_priv.h"
#include "pool.h"
#include "video.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Slots, budget, queues (all under f->mu unless noted)                */
/* ------------------------------------------------------------------ */

static void note_alive(hk_frames *f)
{
	f->alive++;
	f->pipeline++;
	if (f->alive > f->st.peak_frames)
		f->st.peak_frames = f->alive;
}

slot *hk__fr_slot_pop_free(hk_frames *f)
{
	slot *s = f->free_list;
	if (s) {
		f->free_list = s->next;
		s->next = NULL;
		s->state = SL_IO;
		note_alive(f);
	}
	return s;
}

void hk__fr_slot_reset(slot *s, uint64_t id)
{
	memset(&s->pub, 0, sizeof s->pub);
	s->pub.id = id;
	s->pub.pts_us = -1;
	s->pub.name = s->name;
	s->pub.error = s->err;
	s->err[0] = '\0';
	s->name[0] = '\0';
	s->pending = 0;
	s->got = 0;
}

void hk__fr_frame_fail(slot *s, hk_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	s->pub.status = st;
}

void hk__fr_frame_fail_errno(slot *s, int neg, const char *op)
{
	if (neg == -ESPIPE) /* hk__open_regular: a FIFO, socket or device */
		hk__fr_frame_fail(s, HK_E_IO, "%s: not a regular file (a FIFO, "
		                  "socket or device): refused", s->pub.name);
	else
		hk__fr_frame_fail(s, hk__status_of_errno(-neg), "%s: %s: %s",
		                  s->pub.name, op, strerror(-neg));
}

/* Can `bytes` more be charged for frame id? The budget may be exceeded
 * only when no frame waits for the consumer (nothing would free memory
 * otherwise) or when the in-order consumer waits for exactly this id. */
static int budget_ok(const hk_frames *f, size_t bytes, uint64_t id)
{
	return f->budget_used + bytes <= f->p.max_bytes || f->ready_count == 0 ||
	       ((f->p.flags & HK_FRAMES_IN_ORDER) && id == f->next_expected);
}

static void budget_charge(hk_frames *f, slot *s, size_t bytes)
{
	f->budget_used += bytes;
	s->budget += bytes;
	if (f->budget_used > f->st.peak_bytes)
		f->st.peak_bytes = f->budget_used;
}

/* Blocking charge (pread workers, decoders, stream reader). 0 or -1 when
 * the source is stopping. */
int hk__fr_budget_wait(hk_frames *f, slot *s, size_t bytes)
{
	pthread_mutex_lock(&f->mu);
	while (!f->stop && !budget_ok(f, bytes, s->pub.id))
		pthread_cond_wait(&f->cv_budget, &f->mu);
	int rc = f->stop ? -1 : 0;
	if (!rc)
		budget_charge(f, s, bytes);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int hk__fr_budget_try(hk_frames *f, slot *s, size_t bytes)
{
	pthread_mutex_lock(&f->mu);
	int ok = budget_ok(f, bytes, s->pub.id);
	if (ok)
		budget_charge(f, s, bytes);
	pthread_mutex_unlock(&f->mu);
	return ok;
}

/* Queues one finished slot (lock held); returns 1 if it went to a decoder. */
static int enqueue_locked(hk_frames *f, slot *s, int decode)
{
	s->next = NULL;
	if (decode && s->pub.status == HK_OK) {
		s->state = SL_DECODE;
		if (f->dec_tail)
			f->dec_tail->next = s;
		else
			f->dec_head = s;
		f->dec_tail = s;
		return 1;
	}
	s->state = SL_READY;
	f->pipeline--;
	f->ready_count++;
	if (f->p.flags & HK_FRAMES_IN_ORDER) {
		f->win[s->pub.id % f->nslots] = s;
	} else {
		if (f->ready_tail)
			f->ready_tail->next = s;
		else
			f->ready_head = s;
		f->ready_tail = s;
	}
	return 0;
}

/* The bytes (or failures) of a list of slots linked by ->next are final:
 * hand them to decoders or to the consumer under one lock, with one
 * wake-up (the io_uring thread publishes a whole CQE batch at once).
 * bytes is added to the bytes_read statistic. Called without the lock. */
void hk__fr_publish(hk_frames *f, slot *list, int decode, uint64_t bytes)
{
	int to_dec = 0, to_user = 0;
	pthread_mutex_lock(&f->mu);
	f->st.bytes_read += bytes;
	while (list) {
		slot *nx = list->next;
		if (enqueue_locked(f, list, decode))
			to_dec++;
		else
			to_user++;
		list = nx;
	}
	if (to_dec > 1)
		pthread_cond_broadcast(&f->cv_decode);
	else if (to_dec)
		pthread_cond_signal(&f->cv_decode);
	if (to_user)
		pthread_cond_broadcast(&f->cv_ready);
	pthread_mutex_unlock(&f->mu);
}

static void frame_done(hk_frames *f, slot *s, int decode)
{
	s->next = NULL;
	hk__fr_publish(f, s, decode, 0);
}

int hk__fr_wants_decode(const hk_frames *f)
{
	return (f->p.flags & HK_FRAMES_DECODE) && f->kind != SRC_STREAM;
}

void hk__fr_ready_frame(hk_frames *f, slot *s)
{
	frame_done(f, s, hk__fr_wants_decode(f));
}

/* A slot taken for a frame that turned out not to exist (stream EOF). */
void hk__fr_slot_unuse(hk_frames *f, slot *s)
{
	pthread_mutex_lock(&f->mu);
	s->state = SL_FREE;
	s->next = f->free_list;
	f->free_list = s;
	f->alive--;
	f->pipeline--;
	pthread_cond_broadcast(&f->cv_free);
	pthread_cond_broadcast(&f->cv_ready);
	pthread_mutex_unlock(&f->mu);
}

void hk__fr_producer_exit(hk_frames *f)
{
	pthread_mutex_lock(&f->mu);
	if (--f->producers_left == 0)
		f->producers_done = 1;
	pthread_cond_broadcast(&f->cv_ready);
	pthread_mutex_unlock(&f->mu);
}

void hk__fr_add_bytes_read(hk_frames *f, size_t n)
{
	pthread_mutex_lock(&f->mu);
	f->st.bytes_read += n;
	pthread_mutex_unlock(&f->mu);
}

const char *hk__fr_frame_path(const hk_frames *f, const slot *s)
{
	return f->kind == SRC_FILES ? f->paths[s->pub.id] : s->name;
}

/* ------------------------------------------------------------------ */
/* ------------------------------------------------------------------ */
/* Decode workers                                                      */
/* ------------------------------------------------------------------ */

typedef struct dec_arg {
	hk_frames *f;
	uint32_t index;
} dec_arg;

int hk__pin_target(hwloc_topology_t topo, unsigned index,
                   hwloc_const_cpuset_t *set)
{
	hwloc_obj_type_t t = HWLOC_OBJ_CORE;
	int n = hwloc_get_nbobjs_by_type(topo, t);
	if (n <= 0) {
		t = HWLOC_OBJ_PU;
		n = hwloc_get_nbobjs_by_type(topo, t);
	}
	if (n <= 0)
		return -ENODEV;
	hwloc_obj_t o = hwloc_get_obj_by_type(topo, t, index % (unsigned)n);
	if (!o || !o->cpuset)
		return -ENODEV;
	*set = o->cpuset;
	return 0;
}

int hk__pin_thread(hwloc_topology_t topo, unsigned index)
{
	const struct hwloc_topology_support *sup =
	        hwloc_topology_get_support(topo);
	if (!sup || !sup->cpubind || !sup->cpubind->set_thisthread_cpubind)
		return -ENOTSUP;
	hwloc_const_cpuset_t set;
	int rc = hk__pin_target(topo, index, &set);
	if (rc < 0)
		return rc;
	return hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD) == 0 ? 0 : -errno;
}

static void pin_worker(hk_frames *f, uint32_t index)
{
	if (f->topo_ok && hk__pin_thread(f->topo, index) == 0) {
		pthread_mutex_lock(&f->mu);
		f->st.flags |= HK_FRAMES_HAVE_PINNED;
		pthread_mutex_unlock(&f->mu);
	}
}

static void *decode_worker(void *arg)
{
	dec_arg *da = arg;
	hk_frames *f = da->f;
	pin_worker(f, da->index);
	free(da);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (!f->stop && !f->dec_head)
			pthread_cond_wait(&f->cv_decode, &f->mu);
		slot *s = f->stop ? NULL : f->dec_head;
		if (s) {
			f->dec_head = s->next;
			if (!f->dec_head)
				f->dec_tail = NULL;
			s->next = NULL;
		}
		pthread_mutex_unlock(&f->mu);
		if (!s)
			break;
		uint32_t w, h;
		size_t need = 0;
		if (hk__image_dims(s->pub.bytes, s->pub.len, &w, &h) == 0 &&
		    (uint64_t)w * h <= HK_IMAGE_MAX_PIXELS)
			need = (size_t)w * h * 3;
		if (need && hk__fr_budget_wait(f, s, need) != 0) {
			hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
		} else {
			hk_status st = hk_image_decode(s->pub.bytes, s->pub.len,
			                               &s->pub.image);
			if (st)
				hk__fr_frame_fail(s, st, "%s: %s", s->pub.name, hk_last_error());
		}
		frame_done(f, s, 0);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Open / next / release / destroy                                     */
/* ------------------------------------------------------------------ */

HK_API void hk_frames_default_params(hk_frames_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	p->queue_depth = 32;
	p->max_frames = 64;
	p->buffer_size = 256u << 10;
	p->max_bytes = (uint64_t)256 << 20;
	p->max_frame_bytes = (uint64_t)64 << 20;
}

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static hk_status normalise_params(const hk_frames_params *in,
                                  hk_frames_params *p)
{
	hk_frames_params d;
	hk_frames_default_params(&d);
	*p = in ? *in : d;
	if (p->queue_depth == 0)
		p->queue_depth = d.queue_depth;
	if (p->queue_depth > 4096)
		return hk__err(HK_E_INVALID, "frames: queue_depth %u > 4096",
		               p->queue_depth);
	if (p->max_frames == 0)
		p->max_frames = 2 * p->queue_depth;
	if (p->max_frames < p->queue_depth)
		p->max_frames = p->queue_depth;
	if (p->max_frames > 65536)
		return hk__err(HK_E_INVALID, "frames: max_frames %u > 65536",
		               p->max_frames);
	if (p->buffer_size == 0)
		p->buffer_size = d.buffer_size;
	if (p->buffer_size > (1u << 30))
		return hk__err(HK_E_INVALID, "frames: buffer_size over 1 GiB");
	/* O_DIRECT needs sector-multiple lengths in aligned buffers. */
	p->buffer_size = (p->buffer_size + ALIGN_IO - 1) / ALIGN_IO * ALIGN_IO;
	if (p->max_bytes == 0)
		p->max_bytes = d.max_bytes;
	if (p->max_frame_bytes == 0)
		p->max_frame_bytes = d.max_frame_bytes;
	if (p->decode_threads == 0)
		p->decode_threads = (uint32_t)online_cpus();
	if (p->decode_threads > 256)
		p->decode_threads = 256;
	if (p->io_threads == 0)
		p->io_threads = p->queue_depth;
	if (p->io_threads > MAX_IO_THREADS)
		p->io_threads = MAX_IO_THREADS;
	if (p->engine > HK_FRAMES_PREAD)
		return hk__err(HK_E_INVALID, "frames: engine %u", p->engine);
	return HK_OK;
}

static hk_frames *frames_alloc(int kind, const hk_frames_params *p)
{
	hk_frames *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->kind = kind;
	f->p = *p;
	f->batch_fd = -1;
	f->stream_fd = -1;
	f->direct_ok = 1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv_free, NULL);
	pthread_cond_init(&f->cv_ready, NULL);
	pthread_cond_init(&f->cv_decode, NULL);
	pthread_cond_init(&f->cv_budget, NULL);
	return f;
}

/* Normalised params and an empty source of the given kind. */
hk_status hk__fr_frames_new(int kind, const hk_frames_params *p, hk_frames **f)
{
	hk_frames_params pp;
	hk_status s = normalise_params(p, &pp);
	if (s)
		return s;
	*f = frames_alloc(kind, &pp);
	return *f ? HK_OK : hk__err(HK_E_NOMEM, "frames: out of memory");
}

static hk_status frames_slots(hk_frames *f)
{
	f->nslots = f->p.max_frames;
	f->slots = calloc(f->nslots, sizeof *f->slots);
	f->win = calloc(f->nslots, sizeof *f->win);
	if (!f->slots || !f->win)
		return hk__err(HK_E_NOMEM, "frames: slot table");
	for (uint32_t i = f->nslots; i-- > 0;) {
		slot *s = &f->slots[i];
		s->index = i;
		s->pool = aligned_alloc(ALIGN_IO, f->p.buffer_size);
		if (!s->pool)
			return hk__err(HK_E_NOMEM, "frames: %u read buffers of %u bytes",
			               f->nslots, f->p.buffer_size);
		s->next = f->free_list;
		f->free_list = s;
	}
	f->st.pool_bytes = (uint64_t)f->nslots * f->p.buffer_size;
	return HK_OK;
}

static int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	return pthread_create(t, NULL, fn, arg);
}

/* Chooses the engine, starts producer and decode threads. */
static hk_status frames_start(hk_frames *f)
{
	hk_status s = frames_slots(f);
	if (s)
		return s;
	int engine = (int)f->p.engine;
	if (engine == HK_FRAMES_AUTO) {
		const char *env = getenv("HERKEN_IO");
		if (env && !strcmp(env, "pread"))
			engine = HK_FRAMES_PREAD;
		else if (env && !strcmp(env, "io_uring"))
			engine = HK_FRAMES_IO_URING;
		else if (env && *env)
			hk__log(HK_LOG_WARN, "io: HERKEN_IO=%s not understood", env);
	}
	if (f->kind == SRC_STREAM) {
		engine = HK_FRAMES_PREAD; /* sequential reads of a pipe */
	} else if (engine != HK_FRAMES_PREAD) {
		int rc = hk__fr_uring_setup(f);
		if (rc < 0) {
			if (f->p.engine == HK_FRAMES_IO_URING)
				return hk__err(HK_E_BACKEND, "io_uring unavailable: %s",
				               strerror(-rc));
			hk__log(HK_LOG_INFO, "io: io_uring unavailable (%s): pread pool",
			        strerror(-rc));
			f->st.flags = 0;
			engine = HK_FRAMES_PREAD;
		} else {
			engine = HK_FRAMES_IO_URING;
		}
	}
	f->engine = engine;
	f->st.engine = (uint32_t)engine;
	if ((f->p.flags & HK_FRAMES_DECODE) && f->kind != SRC_STREAM) {
		if (!(f->p.flags & HK_FRAMES_NO_PIN)) {
			f->topo = hk__topology(); /* shared, never destroyed here */
			f->topo_ok = f->topo != NULL;
		}
		f->dec_thr = calloc(f->p.decode_threads, sizeof *f->dec_thr);
		if (!f->dec_thr)
			return hk__err(HK_E_NOMEM, "frames: decode threads");
		for (uint32_t i = 0; i < f->p.decode_threads; i++) {
			dec_arg *da = malloc(sizeof *da);
			if (!da)
				return hk__err(HK_E_NOMEM, "frames: decode threads");
			da->f = f;
			da->index = i;
			if (thread_start(&f->dec_thr[i], decode_worker, da) != 0) {
				free(da);
				return hk__err(HK_E_BACKEND, "frames: pthread_create failed");
			}
			f->dec_started++;
		}
	}
	void *(*fn)(void *) = f->kind == SRC_STREAM ? hk__fr_stream_thread
	                      : engine == HK_FRAMES_IO_URING ? hk__fr_uring_thread
	                                                     : hk__fr_pread_worker;
	uint32_t n = (fn == hk__fr_pread_worker) ? f->p.io_threads : 1;
	f->producers_left = (int)n;
	for (uint32_t i = 0; i < n; i++) {
		if (thread_start(&f->io_thr[i], fn, f) != 0) {
			pthread_mutex_lock(&f->mu);
			f->producers_left -= (int)(n - i);
			if (f->producers_left == 0)
				f->producers_done = 1;
			pthread_mutex_unlock(&f->mu);
			return hk__err(HK_E_BACKEND, "frames: pthread_create failed");
		}
		f->nio++;
	}
	return HK_OK;
}

hk_status hk__fr_frames_finish_open(hk_frames *f, hk_frames **out)
{
	hk_status s = frames_start(f);
	if (s) {
		hk_frames_destroy(f);
		return s;
	}
	*out = f;
	return HK_OK;
}

/* Video files, network streams and cameras (io/video*.c). */
static hk_status open_video(const char *spec, const hk_frames_params *p, hk_frames **out)
{
	hk_frames *f = calloc(1, sizeof *f);
	if (!f)
		return hk__err(HK_E_NOMEM, "hk_frames_open");
	hk_status st = hk__video_kind(spec) == HK__VS_V4L2 ? hk__v4l2_open(spec, p, &f->vs)
	                                                    : hk__video_open(spec, p, &f->vs);
	if (st != HK_OK) {
		free(f);
		return st;
	}
	*out = f;
	return HK_OK;
}

HK_API hk_status hk_frames_open(const char *spec, const hk_frames_params *p,
                                hk_frames **out)
{
	if (!spec || !out)
		return hk__err(HK_E_INVALID, "hk_frames_open: NULL argument");
	*out = NULL;
	if (!strcmp(spec, "-"))
		return hk_frames_open_stream(0, p, out);
	if (hk__video_kind(spec) || hk__video_sniff(spec))
		return open_video(spec, p, out);
	struct stat st;
	if (stat(spec, &st) != 0)
		return hk__errno_status(-errno, spec);
	if (S_ISDIR(st.st_mode))
		return hk_frames_open_dir(spec, p, out);
	if (S_ISREG(st.st_mode) && st.st_size >= 8) {
		int fd = open(spec, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return hk__errno_status(-errno, spec);
		char m[8];
		ssize_t r = hk__fr_pread_full(fd, (uint8_t *)m, 8, 0);
		close(fd);
		if (r == 8 && !memcmp(m, HK_FRAMES_BATCH_MAGIC, 8))
			return hk_frames_open_batch(spec, p, out);
	}
	if (!S_ISREG(st.st_mode)) /* a FIFO or character device */
		return hk__err(HK_E_INVALID, "%s: use '-' or open_stream for pipes",
		               spec);
	return hk__fr_open_listfile(spec, p, out);
}

HK_API hk_status hk_frames_next(hk_frames *f, hk_frame **out)
{
	if (!f || !out)
		return hk__err(HK_E_INVALID, "hk_frames_next: NULL argument");
	*out = NULL;
	if (f->vs)
		return hk__vsrc_next(f->vs, out);
	pthread_mutex_lock(&f->mu);
	for (;;) {
		slot *s = NULL;
		if (f->user_held >= f->nslots) {
			pthread_mutex_unlock(&f->mu);
			return hk__err(HK_E_LIMIT, "hk_frames_next: caller holds all %u "
			               "frames; release some", f->nslots);
		}
		if (f->p.flags & HK_FRAMES_IN_ORDER) {
			slot **w = &f->win[f->next_expected % f->nslots];
			if (*w && (*w)->pub.id == f->next_expected) {
				s = *w;
				*w = NULL;
				f->next_expected++;
			}
		} else if (f->ready_head) {
			s = f->ready_head;
			f->ready_head = s->next;
			if (!f->ready_head)
				f->ready_tail = NULL;
			s->next = NULL;
		}
		if (s) {
			f->ready_count--;
			f->user_held++;
			s->state = SL_USER;
			f->st.frames++;
			if (s->pub.status != HK_OK)
				f->st.errors++;
			pthread_cond_broadcast(&f->cv_budget);
			pthread_mutex_unlock(&f->mu);
			*out = &s->pub;
			return HK_OK;
		}
		if (f->producers_done && f->pipeline == 0 && f->ready_count == 0)
			break;
		pthread_cond_wait(&f->cv_ready, &f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return HK_OK;
}

/* Wipes a slot's frame data and drops its large buffers. No lock. */
static size_t slot_scrub(slot *s, size_t pool_size)
{
	if (s->pub.len && s->pub.bytes == s->pool)
		hk__wipe(s->pool, s->pub.len < pool_size ? s->pub.len : pool_size);
	else if (s->pub.image.data == s->pool) /* raw stream frame */
		hk__wipe(s->pool, pool_size);
	if (s->heap) {
		hk__wipe(s->heap, s->heap_cap);
		free(s->heap);
		s->heap = NULL;
		s->heap_cap = 0;
	}
	if (s->pub.image.flags & HK__IMG_OWNED)
		hk_image_free(&s->pub.image);
	memset(&s->pub.image, 0, sizeof s->pub.image);
	s->pub.bytes = NULL;
	s->pub.len = 0;
	size_t b = s->budget;
	s->budget = 0;
	return b;
}

HK_API void hk_frames_release(hk_frames *f, hk_frame *fr)
{
	if (!f || !fr)
		return;
	if (f->vs) {
		hk__vsrc_release(f->vs, fr);
		return;
	}
	slot *s = (slot *)fr;
	if (s < f->slots || s >= f->slots + f->nslots)
		return; /* not a frame of this source */
	pthread_mutex_lock(&f->mu);
	int mine = s->state == SL_USER;
	if (mine)
		s->state = SL_FREE; /* not on the free list yet: ours to scrub */
	pthread_mutex_unlock(&f->mu);
	if (!mine)
		return; /* released twice */
	size_t b = slot_scrub(s, f->p.buffer_size);
	pthread_mutex_lock(&f->mu);
	f->budget_used -= b;
	f->user_held--;
	f->alive--;
	s->next = f->free_list;
	f->free_list = s;
	pthread_cond_broadcast(&f->cv_free);
	pthread_cond_broadcast(&f->cv_budget);
	pthread_mutex_unlock(&f->mu);
}

HK_API void hk_frames_destroy(hk_frames *f)
{
	if (!f)
		return;
	if (f->vs) {
		hk__vsrc_destroy(f->vs);
		free(f);
		return;
	}
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv_free);
	pthread_cond_broadcast(&f->cv_ready);
	pthread_cond_broadcast(&f->cv_decode);
	pthread_cond_broadcast(&f->cv_budget);
	pthread_mutex_unlock(&f->mu);
	for (uint32_t i = 0; i < f->nio; i++)
		pthread_join(f->io_thr[i], NULL);
	for (uint32_t i = 0; i < f->dec_started; i++)
		pthread_join(f->dec_thr[i], NULL);
	free(f->dec_thr);
	if (f->have_ring)
		io_uring_queue_exit(&f->ring);
	for (uint32_t i = 0; f->slots && i < f->nslots; i++) {
		slot *s = &f->slots[i];
		slot_scrub(s, f->p.buffer_size);
		if (s->pool) {
			hk__wipe(s->pool, f->p.buffer_size);
			free(s->pool);
		}
	}
	free(f->slots);
	free(f->win);
	for (uint64_t i = 0; f->paths && i < f->n; i++)
		free(f->paths[i]);
	free(f->paths);
	free(f->boff);
	free(f->blen);
	if (f->batch_fd >= 0)
		close(f->batch_fd);
	if (f->rbuf) {
		hk__wipe(f->rbuf, RBUF + 16);
		free(f->rbuf);
	}
	pthread_cond_destroy(&f->cv_free);
	pthread_cond_destroy(&f->cv_ready);
	pthread_cond_destroy(&f->cv_decode);
	pthread_cond_destroy(&f->cv_budget);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

HK_API uint64_t hk_frames_count(const hk_frames *f)
{
	if (f && f->vs)
		return UINT64_MAX;
	return f ? f->n : 0;
}

HK_API hk_status hk_frames_get_stats(const hk_frames *f, hk_frames_stats *st)
{
	if (!f || !st)
		return hk__err(HK_E_INVALID, "hk_frames_get_stats: NULL argument");
	if (f->vs) {
		hk__vsrc_stats(f->vs, st);
		return HK_OK;
	}
	pthread_mutex_lock((pthread_mutex_t *)&f->mu);
	*st = f->st;
	pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
	return HK_OK;
}

/* ------------------------------------------------------------------ */
