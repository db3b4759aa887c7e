/*
 * Frame sources: file lists, directory walks, frame batch files and raw
 * RGB24 / Y4M streams, read through io_uring (or a pread thread pool) into
 * a fixed pool of read buffers, decoded by hwloc-pinned workers, delivered
 * to one consumer in completion order or by id.
 *
 * Threads: one producer (the io_uring thread, the stream reader, or
 * io_threads pread workers), decode_threads decoders, and the caller.
 * Everything shared is guarded by f->mu; a slot is touched without the
 * lock only by the thread whose stage owns it (state IO: producer,
 * DECODE: one decoder, USER: the caller).
 *
 * Internals return 0 or -errno; per-frame errors become hk_status at the
 * frame, open-time errors at the API.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "io_internal.h"
#include "video.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALIGN_IO 4096u
#define MAX_IO_THREADS 16u
#define BATCH_HDR 32u

enum { SRC_FILES, SRC_BATCH, SRC_STREAM };
enum { SL_FREE, SL_IO, SL_DECODE, SL_READY, SL_USER };
enum { OP_OPEN = 0, OP_READ = 1, OP_CLOSE = 2 };

typedef struct slot {
	hk_frame pub; /* first: an hk_frame* is a slot* */
	uint32_t index;
	int state;
	uint8_t *pool;     /* buffer_size bytes, ALIGN_IO aligned */
	uint8_t *heap;     /* large frame, from the budget         */
	size_t heap_cap;
	size_t budget;     /* bytes charged to the budget          */
	/* io_uring bookkeeping (producer thread only) */
	int pending, open_res, read_res, direct;
	uint64_t off;      /* batch: file offset of the frame      */
	size_t want, got;
	uint8_t *dst;
	struct slot *next; /* free / ready / decode / deferred list */
	char name[32];
	char err[224];
} slot;

typedef struct y4m_fmt {
	int cs; /* 420, 422, 444, 0 = mono */
} y4m_fmt;

struct hk_frames {
	hk_frames_params p;
	struct hk__vsrc *vs; /* a video source (io/video.c): every call goes there */
	int kind;
	int engine;
	/* sources */
	char **paths;
	uint64_t n;
	int batch_fd;
	uint64_t *boff, *blen;
	int stream_fd, y4m;
	y4m_fmt yf;
	uint32_t sw, sh;
	size_t stream_bytes; /* bytes of one frame on the wire */
	uint8_t *rbuf;       /* stream read-ahead buffer */
	size_t rpos, rend;
	/* slots */
	slot *slots;
	uint32_t nslots;
	slot *free_list, *ready_head, *ready_tail, *dec_head, *dec_tail;
	slot **win; /* in-order window, id % nslots */
	uint64_t next_expected;
	uint32_t ready_count, user_held, alive, pipeline;
	uint64_t next_id;
	int producers_left, producers_done, stop;
	size_t budget_used;
	pthread_mutex_t mu;
	pthread_cond_t cv_free, cv_ready, cv_decode, cv_budget;
	/* engine */
	struct io_uring ring;
	int have_ring, direct_ok;
	int have_regbuf; /* set before threads start, then read-only */
	uint64_t io_bytes; /* io_uring thread only: bytes not yet published */
	pthread_t io_thr[MAX_IO_THREADS];
	uint32_t nio;
	pthread_t *dec_thr;
	uint32_t ndec, dec_started;
	hwloc_topology_t topo;
	int topo_ok;
	hk_frames_stats st;
};

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

static slot *slot_pop_free(hk_frames *f)
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

static void slot_reset(slot *s, uint64_t id)
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

static void frame_fail(slot *s, hk_status st, const char *fmt, ...)
        HK__PRINTF(3, 4);
static void frame_fail(slot *s, hk_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	s->pub.status = st;
}

static hk_status errno_status(int e)
{
	switch (e) {
	case ENOENT: case ENOTDIR: return HK_E_NOT_FOUND;
	case ENOMEM: return HK_E_NOMEM;
	case EFBIG: return HK_E_LIMIT;
	default: return HK_E_IO;
	}
}

static void frame_fail_errno(slot *s, int neg, const char *op)
{
	frame_fail(s, errno_status(-neg), "%s: %s: %s", s->pub.name, op,
	           strerror(-neg));
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
static int budget_wait(hk_frames *f, slot *s, size_t bytes)
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

static int budget_try(hk_frames *f, slot *s, size_t bytes)
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
static void publish(hk_frames *f, slot *list, int decode, uint64_t bytes)
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
	publish(f, s, decode, 0);
}

static int wants_decode(const hk_frames *f)
{
	return (f->p.flags & HK_FRAMES_DECODE) && f->kind != SRC_STREAM;
}

static void ready_frame(hk_frames *f, slot *s)
{
	frame_done(f, s, wants_decode(f));
}

/* A slot taken for a frame that turned out not to exist (stream EOF). */
static void slot_unuse(hk_frames *f, slot *s)
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

static void producer_exit(hk_frames *f)
{
	pthread_mutex_lock(&f->mu);
	if (--f->producers_left == 0)
		f->producers_done = 1;
	pthread_cond_broadcast(&f->cv_ready);
	pthread_mutex_unlock(&f->mu);
}

static void add_bytes_read(hk_frames *f, size_t n)
{
	pthread_mutex_lock(&f->mu);
	f->st.bytes_read += n;
	pthread_mutex_unlock(&f->mu);
}

static const char *frame_path(const hk_frames *f, const slot *s)
{
	return f->kind == SRC_FILES ? f->paths[s->pub.id] : s->name;
}

/* ------------------------------------------------------------------ */
/* Large frames (bigger than the read buffer)                          */
/* ------------------------------------------------------------------ */

static uint8_t *big_alloc(size_t n, size_t *cap)
{
	size_t c = (n + ALIGN_IO - 1) / ALIGN_IO * ALIGN_IO;
	if (c == 0)
		c = ALIGN_IO;
	*cap = c;
	return aligned_alloc(ALIGN_IO, c);
}

/* pread() until want bytes or EOF: bytes read, or -errno. */
static ssize_t pread_full(int fd, uint8_t *dst, size_t want, uint64_t off)
{
	size_t got = 0;
	while (got < want) {
		ssize_t r = pread(fd, dst + got, want - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * The first buffer_size bytes of a file filled the read buffer: stat it
 * and read the rest into a budget buffer (synchronously; the budget has
 * already been checked by the caller when `charged`). Sets s->pub.bytes.
 */
static int big_file_finish(hk_frames *f, slot *s, int blocking)
{
	const char *path = frame_path(f, s);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		frame_fail_errno(s, -errno, "open");
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		frame_fail_errno(s, -errno, "fstat");
		close(fd);
		return 0;
	}
	size_t have = f->p.buffer_size;
	if ((uint64_t)st.st_size <= have) { /* exactly one buffer */
		s->pub.bytes = s->pool;
		s->pub.len = (size_t)st.st_size;
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > f->p.max_frame_bytes) {
		frame_fail(s, HK_E_LIMIT, "%s: %lld bytes exceeds max_frame_bytes %llu",
		           path, (long long)st.st_size,
		           (unsigned long long)f->p.max_frame_bytes);
		close(fd);
		return 0;
	}
	size_t size = (size_t)st.st_size, cap;
	if (!blocking && !budget_try(f, s, size + ALIGN_IO)) {
		close(fd);
		return 1; /* retry when nothing is in flight */
	}
	if (blocking && budget_wait(f, s, size + ALIGN_IO) != 0) {
		frame_fail(s, HK_E_STATE, "source stopped");
		close(fd);
		return 0;
	}
	s->heap = big_alloc(size, &cap);
	if (!s->heap) {
		frame_fail(s, HK_E_NOMEM, "%s: cannot allocate %zu bytes", path, size);
		close(fd);
		return 0;
	}
	s->heap_cap = cap;
	memcpy(s->heap, s->pool, have);
	hk__wipe(s->pool, have);
	ssize_t r = pread_full(fd, s->heap + have, size - have, have);
	close(fd);
	if (r < 0) {
		frame_fail_errno(s, (int)r, "read");
		return 0;
	}
	add_bytes_read(f, (size_t)r);
	s->pub.bytes = s->heap;
	s->pub.len = have + (size_t)r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pread engine                                                        */
/* ------------------------------------------------------------------ */

static void pread_file(hk_frames *f, slot *s)
{
	const char *path = frame_path(f, s);
	int direct = (f->p.flags & HK_FRAMES_DIRECT) && f->direct_ok;
	int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (fd < 0 && direct && errno == EINVAL) {
		direct = 0;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		frame_fail_errno(s, -errno, "open");
		return;
	}
	ssize_t r = pread_full(fd, s->pool, f->p.buffer_size, 0);
	if (r == -EINVAL && direct) { /* fs refused O_DIRECT alignment */
		close(fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			frame_fail_errno(s, -errno, "open");
			return;
		}
		direct = 0;
		r = pread_full(fd, s->pool, f->p.buffer_size, 0);
	}
	close(fd);
	if (r < 0) {
		frame_fail_errno(s, (int)r, "read");
		return;
	}
	if (direct) {
		pthread_mutex_lock(&f->mu);
		f->st.flags |= HK_FRAMES_HAVE_DIRECT;
		pthread_mutex_unlock(&f->mu);
	}
	add_bytes_read(f, (size_t)r);
	if ((size_t)r == f->p.buffer_size) {
		big_file_finish(f, s, 1);
		return;
	}
	s->pub.bytes = s->pool;
	s->pub.len = (size_t)r;
}

static void pread_batch(hk_frames *f, slot *s)
{
	uint64_t id = s->pub.id, len = f->blen[id];
	uint8_t *dst = s->pool;
	if (len > f->p.max_frame_bytes) {
		frame_fail(s, HK_E_LIMIT, "%s: %llu bytes exceeds max_frame_bytes",
		           s->name, (unsigned long long)len);
		return;
	}
	if (len > f->p.buffer_size) {
		size_t cap;
		if (budget_wait(f, s, (size_t)len + ALIGN_IO) != 0) {
			frame_fail(s, HK_E_STATE, "source stopped");
			return;
		}
		if (!(s->heap = big_alloc((size_t)len, &cap))) {
			frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
			return;
		}
		s->heap_cap = cap;
		dst = s->heap;
	}
	ssize_t r = pread_full(f->batch_fd, dst, (size_t)len, f->boff[id]);
	if (r < 0) {
		frame_fail_errno(s, (int)r, "read");
		return;
	}
	add_bytes_read(f, (size_t)r);
	if ((uint64_t)r != len) {
		frame_fail(s, HK_E_FORMAT, "%s: batch file truncated", s->name);
		return;
	}
	s->pub.bytes = dst;
	s->pub.len = (size_t)len;
}

static void name_batch(slot *s)
{
	snprintf(s->name, sizeof s->name, "batch[%llu]",
	         (unsigned long long)s->pub.id);
}

static void *pread_worker(void *arg)
{
	hk_frames *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (!f->stop && f->next_id < f->n && !f->free_list)
			pthread_cond_wait(&f->cv_free, &f->mu);
		if (f->stop || f->next_id >= f->n) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		slot *s = slot_pop_free(f);
		uint64_t id = f->next_id++;
		pthread_mutex_unlock(&f->mu);
		slot_reset(s, id);
		if (f->kind == SRC_FILES) {
			s->pub.name = f->paths[id];
			pread_file(f, s);
		} else {
			name_batch(s);
			pread_batch(f, s);
		}
		ready_frame(f, s);
	}
	producer_exit(f);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* io_uring engine                                                     */
/* ------------------------------------------------------------------ */

static struct io_uring_sqe *get_sqe(hk_frames *f)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	if (!sqe) { /* the ring is sized for every chain in flight */
		io_uring_submit(&f->ring);
		sqe = io_uring_get_sqe(&f->ring);
	}
	return sqe;
}

static void sqe_read(hk_frames *f, struct io_uring_sqe *sqe, slot *s,
                     int file, uint8_t *dst, size_t n, uint64_t off)
{
	if (f->have_regbuf && dst >= s->pool &&
	    dst < s->pool + f->p.buffer_size)
		io_uring_prep_read_fixed(sqe, file, dst, (unsigned)n, off,
		                         (int)s->index);
	else
		io_uring_prep_read(sqe, file, dst, (unsigned)n, off);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, (uint64_t)s->index << 2 | OP_READ);
}

/* openat -> read -> close on direct descriptor slot s->index. The read is
 * hard-linked to the close so the slot is freed even if the read fails. */
static void uring_issue_file(hk_frames *f, slot *s)
{
	const char *path = f->paths[s->pub.id];
	s->direct = (f->p.flags & HK_FRAMES_DIRECT) && f->direct_ok;
	struct io_uring_sqe *sqe = get_sqe(f);
	io_uring_prep_openat_direct(sqe, AT_FDCWD, path,
	                            O_RDONLY | (s->direct ? O_DIRECT : 0), 0,
	                            s->index);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, (uint64_t)s->index << 2 | OP_OPEN);
	sqe = get_sqe(f);
	sqe_read(f, sqe, s, (int)s->index, s->pool, f->p.buffer_size, 0);
	sqe->flags |= IOSQE_IO_HARDLINK;
	sqe = get_sqe(f);
	io_uring_prep_close_direct(sqe, s->index);
	io_uring_sqe_set_data64(sqe, (uint64_t)s->index << 2 | OP_CLOSE);
	s->pending = 3;
	s->open_res = s->read_res = 0;
}

static void uring_issue_batch_read(hk_frames *f, slot *s)
{
	struct io_uring_sqe *sqe = get_sqe(f);
	sqe_read(f, sqe, s, 0, s->dst + s->got, s->want - s->got, s->off + s->got);
	s->pending = 1;
	s->read_res = 0;
}

/* Returns 1 if the batch frame was issued, 0 when it must wait for budget
 * (nothing issued), or finishes it as an error. */
static int uring_start_batch(hk_frames *f, slot *s, int *finished)
{
	uint64_t id = s->pub.id, len = f->blen[id];
	*finished = 0;
	s->off = f->boff[id];
	s->want = (size_t)len;
	s->got = 0;
	s->dst = s->pool;
	if (len > f->p.max_frame_bytes) {
		frame_fail(s, HK_E_LIMIT, "%s: %llu bytes exceeds max_frame_bytes",
		           s->name, (unsigned long long)len);
		*finished = 1;
		return 1;
	}
	if (len == 0) {
		s->pub.bytes = s->pool;
		*finished = 1;
		return 1;
	}
	if (len > f->p.buffer_size) {
		size_t cap;
		if (!s->heap) {
			if (!budget_try(f, s, (size_t)len + ALIGN_IO))
				return 0;
			if (!(s->heap = big_alloc((size_t)len, &cap))) {
				frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
				*finished = 1;
				return 1;
			}
			s->heap_cap = cap;
		}
		s->dst = s->heap;
	}
	uring_issue_batch_read(f, s);
	return 1;
}

/* One CQE. Returns 1 when the slot's frame is complete (bytes or error),
 * 2 when it needs the large-file path, 0 while operations remain. */
static int uring_cqe(hk_frames *f, slot *s, int op, int res)
{
	if (f->kind == SRC_BATCH) {
		s->pending--;
		if (res < 0) {
			frame_fail_errno(s, res, "read");
			return 1;
		}
		s->got += (size_t)res;
		f->io_bytes += (size_t)res;
		if (res == 0 && s->got < s->want) {
			frame_fail(s, HK_E_FORMAT, "%s: batch file truncated", s->name);
			return 1;
		}
		if (s->got < s->want) { /* short read: continue */
			uring_issue_batch_read(f, s);
			return 0;
		}
		s->pub.bytes = s->dst;
		s->pub.len = s->want;
		return 1;
	}
	if (op == OP_OPEN)
		s->open_res = res;
	else if (op == OP_READ)
		s->read_res = res;
	if (--s->pending > 0)
		return 0;
	if (s->direct && (s->open_res == -EINVAL || s->read_res == -EINVAL)) {
		/* This filesystem refuses O_DIRECT: read it (and the rest)
		 * through the page cache. */
		f->direct_ok = 0;
		uring_issue_file(f, s);
		return 0;
	}
	if (s->open_res < 0) {
		frame_fail_errno(s, s->open_res, "open");
		return 1;
	}
	if (s->read_res < 0) {
		frame_fail_errno(s, s->read_res, "read");
		return 1;
	}
	if (s->direct) {
		pthread_mutex_lock(&f->mu);
		f->st.flags |= HK_FRAMES_HAVE_DIRECT;
		pthread_mutex_unlock(&f->mu);
	}
	f->io_bytes += (size_t)s->read_res;
	if ((size_t)s->read_res == f->p.buffer_size)
		return 2;
	s->pub.bytes = s->pool;
	s->pub.len = (size_t)s->read_res;
	return 1;
}

static void *uring_thread(void *arg)
{
	hk_frames *f = arg;
	const uint32_t qd = f->p.queue_depth;
	uint32_t inflight = 0;
	slot *waiting = NULL; /* batch frame issued next once budget allows */
	slot *big_head = NULL, *big_tail = NULL; /* files > buffer_size */
	for (;;) {
		int queued = 0;
		/* Issue as many frames as slots and queue depth allow. */
		while (inflight < qd) {
			slot *s = waiting;
			if (!s) {
				pthread_mutex_lock(&f->mu);
				if (!f->stop && f->next_id < f->n)
					s = slot_pop_free(f);
				if (s) {
					slot_reset(s, f->next_id++);
					s->pub.name = f->kind == SRC_FILES
					                      ? f->paths[s->pub.id]
					                      : s->name;
				}
				pthread_mutex_unlock(&f->mu);
				if (!s)
					break;
			}
			waiting = NULL;
			if (f->kind == SRC_FILES) {
				uring_issue_file(f, s);
			} else {
				int fin;
				name_batch(s);
				if (!uring_start_batch(f, s, &fin)) {
					waiting = s;
					break;
				}
				if (fin) {
					ready_frame(f, s);
					continue;
				}
			}
			inflight++;
			queued++;
		}
		if (queued)
			io_uring_submit(&f->ring);
		if (inflight == 0) {
			/* Nothing in the ring: safe to block on budget. */
			if (big_head) {
				slot *s = big_head;
				big_head = s->next;
				if (!big_head)
					big_tail = NULL;
				s->next = NULL;
				big_file_finish(f, s, 1);
				ready_frame(f, s);
				continue;
			}
			if (waiting) {
				if (budget_wait(f, waiting, (size_t)f->blen[waiting->pub.id] +
				                                    ALIGN_IO) != 0) {
					frame_fail(waiting, HK_E_STATE, "source stopped");
					ready_frame(f, waiting);
					waiting = NULL;
				} else {
					size_t cap;
					waiting->heap = big_alloc(
					        (size_t)f->blen[waiting->pub.id], &cap);
					waiting->heap_cap = cap;
					if (!waiting->heap) {
						frame_fail(waiting, HK_E_NOMEM, "%s: out of memory",
						           waiting->name);
						ready_frame(f, waiting);
						waiting = NULL;
					}
				}
				continue;
			}
			pthread_mutex_lock(&f->mu);
			while (!f->stop && f->next_id < f->n && !f->free_list)
				pthread_cond_wait(&f->cv_free, &f->mu);
			int done = f->stop || f->next_id >= f->n;
			pthread_mutex_unlock(&f->mu);
			if (done)
				break;
			continue;
		}
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&f->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break; /* cannot happen with a valid ring */
		unsigned head, seen = 0;
		slot *done_head = NULL, **done_tail = &done_head;
		io_uring_for_each_cqe(&f->ring, head, cqe)
		{
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			slot *s = &f->slots[ud >> 2];
			int done = uring_cqe(f, s, (int)(ud & 3), cqe->res);
			seen++;
			if (done == 0)
				continue;
			inflight--;
			if (done == 2) { /* try the budget now, else later */
				if (big_file_finish(f, s, 0) == 0) {
					*done_tail = s;
					done_tail = &s->next;
					s->next = NULL;
				} else {
					s->next = NULL;
					if (big_tail)
						big_tail->next = s;
					else
						big_head = s;
					big_tail = s;
				}
			} else {
				*done_tail = s;
				done_tail = &s->next;
				s->next = NULL;
			}
		}
		io_uring_cq_advance(&f->ring, seen);
		publish(f, done_head, wants_decode(f), f->io_bytes);
		f->io_bytes = 0;
		if (io_uring_sq_ready(&f->ring))
			io_uring_submit(&f->ring); /* re-issued reads */
	}
	/* Stopping: frames taken but not issued are failed. */
	while (big_head) {
		slot *s = big_head;
		big_head = s->next;
		frame_fail(s, HK_E_STATE, "source stopped");
		ready_frame(f, s);
	}
	if (waiting) {
		frame_fail(waiting, HK_E_STATE, "source stopped");
		ready_frame(f, waiting);
	}
	producer_exit(f);
	return NULL;
}

/* Creates and probes the ring. 0 or -errno. */
static int uring_setup(hk_frames *f)
{
	struct io_uring_params rp;
	unsigned entries = f->p.queue_depth * 3 + 8;
	memset(&rp, 0, sizeof rp);
	if (f->p.flags & HK_FRAMES_SQPOLL) {
		rp.flags |= IORING_SETUP_SQPOLL;
		rp.sq_thread_idle = 50;
	}
	int rc = io_uring_queue_init_params(entries, &f->ring, &rp);
	if (rc < 0 && (f->p.flags & HK_FRAMES_SQPOLL)) {
		hk__log(HK_LOG_INFO, "io: SQPOLL ring refused (%s), plain ring",
		        strerror(-rc));
		memset(&rp, 0, sizeof rp);
		rc = io_uring_queue_init_params(entries, &f->ring, &rp);
	}
	if (rc < 0)
		return rc;
	if (rp.flags & IORING_SETUP_SQPOLL)
		f->st.flags |= HK_FRAMES_HAVE_SQPOLL;
	struct io_uring_probe *pr = io_uring_get_probe_ring(&f->ring);
	int ok = pr && io_uring_opcode_supported(pr, IORING_OP_READ) &&
	         io_uring_opcode_supported(pr, IORING_OP_READ_FIXED) &&
	         io_uring_opcode_supported(pr, IORING_OP_OPENAT) &&
	         io_uring_opcode_supported(pr, IORING_OP_CLOSE);
	if (pr)
		io_uring_free_probe(pr);
	if (!ok) {
		io_uring_queue_exit(&f->ring);
		return -ENOSYS;
	}
	if (f->kind == SRC_BATCH)
		rc = io_uring_register_files(&f->ring, &f->batch_fd, 1);
	else
		rc = io_uring_register_files_sparse(&f->ring, f->nslots);
	if (rc < 0) {
		io_uring_queue_exit(&f->ring);
		return rc;
	}
	f->st.flags |= HK_FRAMES_HAVE_REGFILE;
	/* Cold opens and reads block in io-wq workers, by default at most
	 * 4 per CPU: allow one per read in flight, like a pread pool of
	 * queue_depth threads. Older kernels lack the call; harmless. */
	unsigned int workers[2] = {f->p.queue_depth, f->p.queue_depth};
	(void)io_uring_register_iowq_max_workers(&f->ring, workers);
	struct iovec *iov = calloc(f->nslots, sizeof *iov);
	if (!iov) {
		io_uring_queue_exit(&f->ring);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < f->nslots; i++) {
		iov[i].iov_base = f->slots[i].pool;
		iov[i].iov_len = f->p.buffer_size;
	}
	rc = io_uring_register_buffers(&f->ring, iov, f->nslots);
	free(iov);
	f->have_regbuf = rc == 0;
	if (rc == 0)
		f->st.flags |= HK_FRAMES_HAVE_REGBUF;
	else
		hk__log(HK_LOG_WARN,
		        "io: cannot register %u x %u byte buffers (%s): raise "
		        "RLIMIT_MEMLOCK; reading into unregistered buffers",
		        f->nslots, f->p.buffer_size, strerror(-rc));
	f->have_ring = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Streams: raw RGB24 and Y4M                                          */
/* ------------------------------------------------------------------ */

#define RBUF 65536

/* Waits for input, waking up to notice hk_frames_destroy. */
static int stream_fill(hk_frames *f)
{
	for (;;) {
		pthread_mutex_lock(&f->mu);
		int stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return -ECANCELED;
		struct pollfd pfd = {.fd = f->stream_fd, .events = POLLIN};
		int pr = poll(&pfd, 1, 100);
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			continue;
		ssize_t r = read(f->stream_fd, f->rbuf, RBUF);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		f->rpos = 0;
		f->rend = (size_t)r;
		return (int)(r > 0);
	}
}

/* Copies up to n bytes; returns bytes copied (< n only at EOF) or -errno. */
static ssize_t stream_read(hk_frames *f, uint8_t *dst, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (f->rpos == f->rend) {
			int rc = stream_fill(f);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
		}
		size_t k = f->rend - f->rpos;
		if (k > n - got)
			k = n - got;
		memcpy(dst + got, f->rbuf + f->rpos, k);
		f->rpos += k;
		got += k;
	}
	return (ssize_t)got;
}

/* One header line (without '\n') into line[cap]; 1 ok, 0 EOF before any
 * byte, -EBADMSG too long/truncated, or -errno. */
static int stream_line(hk_frames *f, char *line, size_t cap)
{
	size_t n = 0;
	for (;;) {
		uint8_t c;
		ssize_t r = stream_read(f, &c, 1);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return n == 0 ? 0 : -EBADMSG;
		if (c == '\n')
			break;
		if (n + 1 >= cap)
			return -EBADMSG;
		line[n++] = (char)c;
	}
	line[n] = '\0';
	return 1;
}

static int y4m_parse_header(hk_frames *f, const char *line)
{
	/* line starts after "YUV4MPEG2 " */
	long w = 0, h = 0;
	int cs = 420;
	const char *p = line;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char tag = *p++;
		const char *v = p;
		while (*p && *p != ' ')
			p++;
		size_t vn = (size_t)(p - v);
		if (tag == 'W' || tag == 'H') {
			char *end;
			long x = strtol(v, &end, 10);
			if (end != p || x <= 0 || x > 65536)
				return -1;
			if (tag == 'W')
				w = x;
			else
				h = x;
		} else if (tag == 'C') {
			if ((vn == 3 && !strncmp(v, "420", 3)) ||
			    (vn == 7 && !strncmp(v, "420jpeg", 7)) ||
			    (vn == 8 && (!strncmp(v, "420paldv", 8) ||
			                 !strncmp(v, "420mpeg2", 8))))
				cs = 420; /* chroma siting ignored */
			else if (vn == 3 && !strncmp(v, "422", 3))
				cs = 422;
			else if (vn == 3 && !strncmp(v, "444", 3))
				cs = 444;
			else if (vn == 4 && !strncmp(v, "mono", 4))
				cs = 0;
			else
				return -2;
		} else if (tag == 'I') {
			if (vn != 1 || (*v != 'p' && *v != '?'))
				return -2; /* interlaced streams */
		}
	}
	if (w <= 0 || h <= 0)
		return -1;
	f->sw = (uint32_t)w;
	f->sh = (uint32_t)h;
	f->yf.cs = cs;
	size_t luma = (size_t)w * (size_t)h, cw = ((size_t)w + 1) / 2,
	       ch = ((size_t)h + 1) / 2;
	switch (cs) {
	case 420: f->stream_bytes = luma + 2 * cw * ch; break;
	case 422: f->stream_bytes = luma + 2 * cw * (size_t)h; break;
	case 444: f->stream_bytes = 3 * luma; break;
	default: f->stream_bytes = luma; break;
	}
	return 0;
}

static uint8_t clamp8(int v)
{
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* BT.601 limited range YCbCr -> RGB, 16.16 fixed point. */
static void y4m_to_rgb(const hk_frames *f, const uint8_t *src, hk_image *im)
{
	const uint32_t w = f->sw, h = f->sh;
	const size_t luma = (size_t)w * h;
	const uint32_t cw = f->yf.cs == 444 ? w : (w + 1) / 2;
	const uint32_t chh = f->yf.cs == 420 ? (h + 1) / 2 : h;
	const uint8_t *Y = src, *U = src + luma, *V = U + (size_t)cw * chh;
	for (uint32_t y = 0; y < h; y++) {
		uint8_t *d = im->data + (size_t)y * im->stride;
		for (uint32_t x = 0; x < w; x++) {
			int yy = (Y[(size_t)y * w + x] - 16) * 76309; /* 1.164 */
			int u = 0, v = 0;
			if (f->yf.cs != 0) {
				uint32_t cx = f->yf.cs == 444 ? x : x / 2;
				uint32_t cy = f->yf.cs == 420 ? y / 2 : y;
				u = U[(size_t)cy * cw + cx] - 128;
				v = V[(size_t)cy * cw + cx] - 128;
			}
			d[3 * x] = clamp8((yy + 104597 * v + 32768) >> 16);
			d[3 * x + 1] = clamp8((yy - 25675 * u - 53279 * v + 32768) >> 16);
			d[3 * x + 2] = clamp8((yy + 132201 * u + 32768) >> 16);
		}
	}
}

/* Reads one stream frame into slot s. 1 frame, 0 clean EOF. */
static int stream_frame(hk_frames *f, slot *s)
{
	if (f->y4m) {
		char line[256];
		int rc = stream_line(f, line, sizeof line);
		if (rc == 0)
			return 0;
		if (rc < 0 || strncmp(line, "FRAME", 5) != 0) {
			frame_fail(s, HK_E_FORMAT, "%s: bad Y4M frame header", s->name);
			return 1;
		}
	}
	uint8_t *dst = s->pool;
	size_t n = f->stream_bytes;
	if (n > f->p.buffer_size) {
		size_t cap;
		if (budget_wait(f, s, n + ALIGN_IO) != 0) {
			frame_fail(s, HK_E_STATE, "source stopped");
			return 1;
		}
		if (!(s->heap = big_alloc(n, &cap))) {
			frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
			return 1;
		}
		s->heap_cap = cap;
		dst = s->heap;
	}
	ssize_t r = stream_read(f, dst, n);
	if (r < 0) {
		frame_fail_errno(s, (int)r, "read");
		return 1;
	}
	add_bytes_read(f, (size_t)r);
	if (r == 0 && !f->y4m)
		return 0;
	s->pub.bytes = dst;
	s->pub.len = (size_t)r;
	if ((size_t)r < n) {
		frame_fail(s, HK_E_FORMAT, "%s: truncated frame (%zd of %zu bytes)",
		           s->name, r, n);
		return 1;
	}
	if (!f->y4m) { /* the image is the read buffer itself */
		s->pub.image.width = f->sw;
		s->pub.image.height = f->sh;
		s->pub.image.stride = 3 * f->sw;
		s->pub.image.data = dst;
		return 1;
	}
	if (budget_wait(f, s, (size_t)f->sw * f->sh * 3) != 0) {
		frame_fail(s, HK_E_STATE, "source stopped");
		return 1;
	}
	hk_status st = hk__image_alloc(f->sw, f->sh, &s->pub.image, "Y4M");
	if (st) {
		frame_fail(s, st, "%s: %s", s->name, hk_last_error());
		return 1;
	}
	y4m_to_rgb(f, dst, &s->pub.image);
	return 1;
}

static void *stream_thread(void *arg)
{
	hk_frames *f = arg;
	for (uint64_t id = 0;; id++) {
		pthread_mutex_lock(&f->mu);
		while (!f->stop && !f->free_list)
			pthread_cond_wait(&f->cv_free, &f->mu);
		slot *s = f->stop ? NULL : slot_pop_free(f);
		pthread_mutex_unlock(&f->mu);
		if (!s)
			break;
		slot_reset(s, id);
		snprintf(s->name, sizeof s->name, "stream[%llu]",
		         (unsigned long long)id);
		if (!stream_frame(f, s)) {
			slot_unuse(f, s);
			break;
		}
		int last = s->pub.status != HK_OK;
		ready_frame(f, s);
		if (last)
			break;
	}
	producer_exit(f);
	return NULL;
}

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
		if (need && budget_wait(f, s, need) != 0) {
			frame_fail(s, HK_E_STATE, "source stopped");
		} else {
			hk_status st = hk_image_decode(s->pub.bytes, s->pub.len,
			                               &s->pub.image);
			if (st)
				frame_fail(s, st, "%s: %s", s->pub.name, hk_last_error());
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
static hk_status frames_new(int kind, const hk_frames_params *p, hk_frames **f)
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
		int rc = uring_setup(f);
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
		if (!(f->p.flags & HK_FRAMES_NO_PIN) && hwloc_topology_init(&f->topo) == 0) {
			if (hwloc_topology_load(f->topo) == 0)
				f->topo_ok = 1;
			else
				hwloc_topology_destroy(f->topo);
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
	void *(*fn)(void *) = f->kind == SRC_STREAM ? stream_thread
	                      : engine == HK_FRAMES_IO_URING ? uring_thread
	                                                     : pread_worker;
	uint32_t n = (fn == pread_worker) ? f->p.io_threads : 1;
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

static hk_status frames_finish_open(hk_frames *f, hk_frames **out)
{
	hk_status s = frames_start(f);
	if (s) {
		hk_frames_destroy(f);
		return s;
	}
	*out = f;
	return HK_OK;
}

static int add_path(char ***v, uint64_t *n, uint64_t *cap, const char *p)
{
	if (*n == *cap) {
		uint64_t nc = *cap ? *cap * 2 : 64;
		char **nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	if (!((*v)[*n] = strdup(p)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

HK_API hk_status hk_frames_open_list(const char *const *paths, size_t n,
                                     const hk_frames_params *p,
                                     hk_frames **out)
{
	if (!out || (!paths && n))
		return hk__err(HK_E_INVALID, "hk_frames_open_list: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = frames_new(SRC_FILES, p, &f);
	if (s)
		return s;
	uint64_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		if (!paths[i] || add_path(&f->paths, &f->n, &cap, paths[i]) != 0) {
			hk_frames_destroy(f);
			return paths[i] ? hk__err(HK_E_NOMEM, "frames: out of memory")
			                : hk__err(HK_E_INVALID, "frames: path %zu is NULL", i);
		}
	}
	return frames_finish_open(f, out);
}

static int image_ext(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return 0;
	static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".pgm"};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		if (!strcasecmp(dot, ext[i]))
			return 1;
	return 0;
}

static int walk(const char *dir, int recursive, char ***v, uint64_t *n,
                uint64_t *cap, int depth)
{
	if (depth > 64)
		return -ELOOP;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	size_t dl = strlen(dir);
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		size_t len = dl + 1 + strlen(e->d_name) + 1;
		char *path = malloc(len);
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		snprintf(path, len, "%s%s%s", dir,
		         (dl && dir[dl - 1] == '/') ? "" : "/", e->d_name);
		int type = e->d_type;
		if (type == DT_UNKNOWN || type == DT_LNK) {
			struct stat st;
			type = stat(path, &st) != 0 ? DT_UNKNOWN
			       : S_ISDIR(st.st_mode) ? DT_DIR
			       : S_ISREG(st.st_mode) ? DT_REG
			                              : DT_UNKNOWN;
		}
		if (type == DT_DIR && recursive)
			rc = walk(path, recursive, v, n, cap, depth + 1);
		else if (type == DT_REG && image_ext(e->d_name))
			rc = add_path(v, n, cap, path);
		free(path);
	}
	closedir(d);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

HK_API hk_status hk_frames_open_dir(const char *dir, const hk_frames_params *p,
                                    hk_frames **out)
{
	if (!out || !dir)
		return hk__err(HK_E_INVALID, "hk_frames_open_dir: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = frames_new(SRC_FILES, p, &f);
	if (s)
		return s;
	uint64_t cap = 0;
	int rc = walk(dir, !!(f->p.flags & HK_FRAMES_RECURSIVE), &f->paths, &f->n,
	              &cap, 0);
	if (rc < 0) {
		hk_frames_destroy(f);
		return hk__errno_status(rc, dir);
	}
	if (f->n)
		qsort(f->paths, f->n, sizeof *f->paths, cmp_path);
	return frames_finish_open(f, out);
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fnv1a(const uint8_t *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Validates the header and index of an open batch file. */
static hk_status batch_load(hk_frames *f, const char *path)
{
	struct stat st;
	if (fstat(f->batch_fd, &st) != 0)
		return hk__errno_status(-errno, path);
	uint64_t size = (uint64_t)st.st_size;
	uint8_t h[BATCH_HDR];
	if (size < BATCH_HDR + 8 ||
	    pread_full(f->batch_fd, h, BATCH_HDR, 0) != BATCH_HDR)
		return hk__err(HK_E_FORMAT, "%s: too short for a frame batch", path);
	if (memcmp(h, HK_FRAMES_BATCH_MAGIC, 8) != 0)
		return hk__err(HK_E_FORMAT, "%s: not a frame batch (bad magic)", path);
	uint32_t ver = (uint32_t)le64(h + 8) & 0xffffffffu;
	uint32_t flags = (uint32_t)(le64(h + 8) >> 32);
	if (ver != HK_FRAMES_BATCH_VERSION || flags != 0)
		return hk__err(HK_E_UNSUPPORTED, "%s: frame batch version %u flags %u",
		               path, ver, flags);
	uint64_t count = le64(h + 16), ioff = le64(h + 24);
	if (ioff < BATCH_HDR || ioff > size || count > (size - ioff) / 16 ||
	    ioff + count * 16 + 8 != size)
		return hk__err(HK_E_FORMAT, "%s: bad index (count %llu at %llu, "
		               "file %llu bytes)", path, (unsigned long long)count,
		               (unsigned long long)ioff, (unsigned long long)size);
	size_t ilen = (size_t)count * 16 + 8;
	uint8_t *idx = malloc(ilen);
	f->boff = malloc((size_t)(count ? count : 1) * sizeof *f->boff);
	f->blen = malloc((size_t)(count ? count : 1) * sizeof *f->blen);
	if (!idx || !f->boff || !f->blen) {
		free(idx);
		return hk__err(HK_E_NOMEM, "%s: index of %llu frames", path,
		               (unsigned long long)count);
	}
	if (pread_full(f->batch_fd, idx, ilen, ioff) != (ssize_t)ilen) {
		free(idx);
		return hk__err(HK_E_FORMAT, "%s: cannot read the index", path);
	}
	if (fnv1a(idx, ilen - 8) != le64(idx + ilen - 8)) {
		free(idx);
		return hk__err(HK_E_FORMAT, "%s: index checksum mismatch", path);
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t o = le64(idx + 16 * i), l = le64(idx + 16 * i + 8);
		if (o < BATCH_HDR || o > ioff || l > ioff - o) {
			free(idx);
			return hk__err(HK_E_FORMAT, "%s: frame %llu outside the data",
			               path, (unsigned long long)i);
		}
		f->boff[i] = o;
		f->blen[i] = l;
	}
	free(idx);
	f->n = count;
	return HK_OK;
}

HK_API hk_status hk_frames_open_batch(const char *path,
                                      const hk_frames_params *p,
                                      hk_frames **out)
{
	if (!out || !path)
		return hk__err(HK_E_INVALID, "hk_frames_open_batch: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = frames_new(SRC_BATCH, p, &f);
	if (s)
		return s;
	f->batch_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->batch_fd < 0) {
		s = hk__errno_status(-errno, path);
		hk_frames_destroy(f);
		return s;
	}
	s = batch_load(f, path);
	if (s) {
		hk_frames_destroy(f);
		return s;
	}
	return frames_finish_open(f, out);
}

HK_API hk_status hk_frames_open_stream(int fd, const hk_frames_params *p,
                                       hk_frames **out)
{
	if (!out || fd < 0)
		return hk__err(HK_E_INVALID, "hk_frames_open_stream: bad argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = frames_new(SRC_STREAM, p, &f);
	if (s)
		return s;
	const hk_frames_params pp = f->p;
	if (!(f->rbuf = malloc(RBUF + 16))) {
		hk_frames_destroy(f);
		return hk__err(HK_E_NOMEM, "frames: out of memory");
	}
	f->stream_fd = fd;
	f->n = UINT64_MAX;
	/* Sniff the first bytes (kept in the read-ahead buffer). */
	uint8_t head[10];
	ssize_t r = stream_read(f, head, sizeof head);
	if (r < 0) {
		hk_frames_destroy(f);
		return hk__errno_status((int)r, "stream");
	}
	if (r == (ssize_t)sizeof head && !memcmp(head, "YUV4MPEG2 ", 10)) {
		char line[512];
		int rc = stream_line(f, line, sizeof line);
		if (rc <= 0 || y4m_parse_header(f, line) != 0) {
			hk_frames_destroy(f);
			return rc > 0 ? hk__err(HK_E_UNSUPPORTED,
			                        "Y4M header not supported: '%.80s'", line)
			              : hk__err(HK_E_FORMAT, "Y4M: bad stream header");
		}
		f->y4m = 1;
	} else {
		/* Put the sniffed bytes back in front of the read-ahead. They
		 * may have come from several fills, so the buffer can need up
		 * to sizeof head bytes more than RBUF: it has 16 spare. */
		memmove(f->rbuf + r, f->rbuf + f->rpos, f->rend - f->rpos);
		f->rend = f->rend - f->rpos + (size_t)r;
		memcpy(f->rbuf, head, (size_t)r);
		f->rpos = 0;
		if (pp.stream_width == 0 || pp.stream_height == 0) {
			hk_frames_destroy(f);
			return hk__err(HK_E_INVALID,
			               "raw RGB24 stream needs stream_width/height");
		}
		if ((uint64_t)pp.stream_width * pp.stream_height > HK_IMAGE_MAX_PIXELS) {
			hk_frames_destroy(f);
			return hk__err(HK_E_LIMIT, "stream frame %ux%u too large",
			               pp.stream_width, pp.stream_height);
		}
		f->sw = pp.stream_width;
		f->sh = pp.stream_height;
		f->stream_bytes = (size_t)f->sw * f->sh * 3;
	}
	if ((uint64_t)f->sw * f->sh > HK_IMAGE_MAX_PIXELS) {
		hk_frames_destroy(f);
		return hk__err(HK_E_LIMIT, "Y4M frame %ux%u too large", f->sw, f->sh);
	}
	return frames_finish_open(f, out);
}

/* Reads a list file: one path per line. */
static hk_status open_listfile(const char *spec, const hk_frames_params *p,
                               hk_frames **out)
{
	uint8_t *b;
	size_t n;
	int rc = hk__read_file(spec, (size_t)64 << 20, &b, &n);
	if (rc < 0)
		return hk__errno_status(rc, spec);
	char **v = NULL;
	uint64_t cnt = 0, cap = 0;
	size_t i = 0;
	hk_status s = HK_OK;
	while (i < n && s == HK_OK) {
		size_t j = i;
		while (j < n && b[j] != '\n')
			j++;
		size_t e = j;
		if (e > i && b[e - 1] == '\r')
			e--;
		if (e > i && b[i] != '#') {
			if (memchr(b + i, '\0', e - i)) {
				s = hk__err(HK_E_FORMAT, "%s: NUL byte in a path", spec);
				break;
			}
			char save = (char)b[e];
			b[e] = '\0';
			if (add_path(&v, &cnt, &cap, (char *)b + i) != 0)
				s = hk__err(HK_E_NOMEM, "frames: out of memory");
			b[e] = (uint8_t)save;
		}
		i = j + 1;
	}
	free(b);
	if (s == HK_OK)
		s = hk_frames_open_list((const char *const *)v, (size_t)cnt, p, out);
	for (uint64_t k = 0; k < cnt; k++)
		free(v[k]);
	free(v);
	return s;
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
		ssize_t r = pread_full(fd, (uint8_t *)m, 8, 0);
		close(fd);
		if (r == 8 && !memcmp(m, HK_FRAMES_BATCH_MAGIC, 8))
			return hk_frames_open_batch(spec, p, out);
	}
	if (!S_ISREG(st.st_mode)) /* a FIFO or character device */
		return hk__err(HK_E_INVALID, "%s: use '-' or open_stream for pipes",
		               spec);
	return open_listfile(spec, p, out);
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
	if (f->topo_ok)
		hwloc_topology_destroy(f->topo);
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
/* Batch writer                                                        */
/* ------------------------------------------------------------------ */

static int write_all(int fd, const void *b, size_t n)
{
	const uint8_t *p = b;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

HK_API hk_status hk_frames_write_batch(const char *out_path,
                                       const char *const *paths, size_t n)
{
	if (!out_path || (!paths && n))
		return hk__err(HK_E_INVALID, "hk_frames_write_batch: NULL argument");
	size_t tl = strlen(out_path) + 5;
	char *tmp = malloc(tl);
	size_t ilen;
	if (!tmp || hk__mul_size(n, 16, &ilen) || ilen > (size_t)-1 - 8) {
		free(tmp);
		return hk__err(HK_E_NOMEM, "frames: batch of %zu frames", n);
	}
	ilen += 8;
	uint8_t *idx = malloc(ilen);
	if (!idx) {
		free(tmp);
		return hk__err(HK_E_NOMEM, "frames: batch index");
	}
	snprintf(tmp, tl, "%s.tmp", out_path);
	hk_status s = HK_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		s = hk__errno_status(-errno, tmp);
		goto out;
	}
	uint8_t h[BATCH_HDR] = {0};
	int rc = write_all(fd, h, sizeof h);
	uint64_t off = BATCH_HDR;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t *b;
		size_t len;
		rc = hk__read_file(paths[i], (size_t)1 << 30, &b, &len);
		if (rc < 0) {
			s = hk__errno_status(rc, paths[i]);
			break;
		}
		rc = write_all(fd, b, len);
		hk__wipe(b, len);
		free(b);
		put64(idx + 16 * i, off);
		put64(idx + 16 * i + 8, len);
		off += len;
	}
	if (s == HK_OK && rc == 0) {
		put64(idx + ilen - 8, fnv1a(idx, ilen - 8));
		rc = write_all(fd, idx, ilen);
		memcpy(h, HK_FRAMES_BATCH_MAGIC, 8);
		put64(h + 8, HK_FRAMES_BATCH_VERSION); /* version, flags 0 */
		put64(h + 16, n);
		put64(h + 24, off);
		if (rc == 0 && pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
			rc = -errno;
		if (rc == 0 && fsync(fd) != 0)
			rc = -errno;
	}
	if (s == HK_OK && rc < 0)
		s = hk__errno_status(rc, tmp);
	if (close(fd) != 0 && s == HK_OK)
		s = hk__errno_status(-errno, tmp);
	if (s == HK_OK && rename(tmp, out_path) != 0)
		s = hk__errno_status(-errno, out_path);
	if (s != HK_OK)
		unlink(tmp);
out:
	free(idx);
	free(tmp);
	return s;
}
