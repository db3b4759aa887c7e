/* Frame sources: the io_uring engine (one submitting thread, registered
 * buffers and files when the kernel allows, O_DIRECT when aligned). */
#define _GNU_SOURCE
#include "frames_priv.h"

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

/* Is the listed file regular? Else its frame fails, unread. The ring opens
 * into a direct descriptor, which cannot be fstat'ed, so the type is
 * checked by path first (stat opens nothing: a FIFO cannot block it); a
 * file swapped for a FIFO between this check and the open can still hold
 * an io-wq worker (the pread engine checks the descriptor itself). */
static int uring_file_regular(hk_frames *f, slot *s)
{
	struct stat st;
	if (stat(f->paths[s->pub.id], &st) != 0) {
		hk__fr_frame_fail_errno(s, -errno, "open");
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		hk__fr_frame_fail_errno(s, S_ISDIR(st.st_mode) ? -EISDIR : -ESPIPE,
		                        "open");
		return 0;
	}
	return 1;
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
		hk__fr_frame_fail(s, HK_E_LIMIT, "%s: %llu bytes exceeds max_frame_bytes",
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
			if (!hk__fr_budget_try(f, s, (size_t)len + ALIGN_IO))
				return 0;
			if (!(s->heap = hk__fr_big_alloc((size_t)len, &cap))) {
				hk__fr_frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
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
			hk__fr_frame_fail_errno(s, res, "read");
			return 1;
		}
		s->got += (size_t)res;
		f->io_bytes += (size_t)res;
		if (res == 0 && s->got < s->want) {
			hk__fr_frame_fail(s, HK_E_FORMAT, "%s: batch file truncated", s->name);
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
		hk__fr_frame_fail_errno(s, s->open_res, "open");
		return 1;
	}
	if (s->read_res < 0) {
		hk__fr_frame_fail_errno(s, s->read_res, "read");
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

void *hk__fr_uring_thread(void *arg)
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
					s = hk__fr_slot_pop_free(f);
				if (s) {
					hk__fr_slot_reset(s, f->next_id++);
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
				if (!uring_file_regular(f, s)) {
					hk__fr_ready_frame(f, s);
					continue;
				}
				uring_issue_file(f, s);
			} else {
				int fin;
				hk__fr_name_batch(s);
				if (!uring_start_batch(f, s, &fin)) {
					waiting = s;
					break;
				}
				if (fin) {
					hk__fr_ready_frame(f, s);
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
				hk__fr_big_file_finish(f, s, 1);
				hk__fr_ready_frame(f, s);
				continue;
			}
			if (waiting) {
				if (hk__fr_budget_wait(f, waiting, (size_t)f->blen[waiting->pub.id] +
				                                    ALIGN_IO) != 0) {
					hk__fr_frame_fail(waiting, HK_E_STATE, "source stopped");
					hk__fr_ready_frame(f, waiting);
					waiting = NULL;
				} else {
					size_t cap;
					waiting->heap = hk__fr_big_alloc(
					        (size_t)f->blen[waiting->pub.id], &cap);
					waiting->heap_cap = cap;
					if (!waiting->heap) {
						hk__fr_frame_fail(waiting, HK_E_NOMEM, "%s: out of memory",
						           waiting->name);
						hk__fr_ready_frame(f, waiting);
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
				if (hk__fr_big_file_finish(f, s, 0) == 0) {
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
		hk__fr_publish(f, done_head, hk__fr_wants_decode(f), f->io_bytes);
		f->io_bytes = 0;
		if (io_uring_sq_ready(&f->ring))
			io_uring_submit(&f->ring); /* re-issued reads */
	}
	/* Stopping: frames taken but not issued are failed. */
	while (big_head) {
		slot *s = big_head;
		big_head = s->next;
		hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
		hk__fr_ready_frame(f, s);
	}
	if (waiting) {
		hk__fr_frame_fail(waiting, HK_E_STATE, "source stopped");
		hk__fr_ready_frame(f, waiting);
	}
	hk__fr_producer_exit(f);
	return NULL;
}

/* Creates and probes the ring. 0 or -errno. */
int hk__fr_uring_setup(hk_frames *f)
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

