/* Frame sources: the pread engine (io_threads workers) and large frames
 * (files bigger than a read buffer). */
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
/* Large frames (bigger than the read buffer)                          */
/* ------------------------------------------------------------------ */

uint8_t *hk__fr_big_alloc(size_t n, size_t *cap)
{
	size_t c = (n + ALIGN_IO - 1) / ALIGN_IO * ALIGN_IO;
	if (c == 0)
		c = ALIGN_IO;
	*cap = c;
	return aligned_alloc(ALIGN_IO, c);
}

/* pread() until want bytes or EOF: bytes read, or -errno. */
ssize_t hk__fr_pread_full(int fd, uint8_t *dst, size_t want, uint64_t off)
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
int hk__fr_big_file_finish(hk_frames *f, slot *s, int blocking)
{
	const char *path = hk__fr_frame_path(f, s);
	struct stat st;
	int fd = hk__open_regular(path, 0, &st);
	if (fd < 0) {
		hk__fr_frame_fail_errno(s, fd, "open");
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
		hk__fr_frame_fail(s, HK_E_LIMIT, "%s: %lld bytes exceeds max_frame_bytes %llu",
		           path, (long long)st.st_size,
		           (unsigned long long)f->p.max_frame_bytes);
		close(fd);
		return 0;
	}
	size_t size = (size_t)st.st_size, cap;
	if (!blocking && !hk__fr_budget_try(f, s, size + ALIGN_IO)) {
		close(fd);
		return 1; /* retry when nothing is in flight */
	}
	if (blocking && hk__fr_budget_wait(f, s, size + ALIGN_IO) != 0) {
		hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
		close(fd);
		return 0;
	}
	s->heap = hk__fr_big_alloc(size, &cap);
	if (!s->heap) {
		hk__fr_frame_fail(s, HK_E_NOMEM, "%s: cannot allocate %zu bytes", path, size);
		close(fd);
		return 0;
	}
	s->heap_cap = cap;
	memcpy(s->heap, s->pool, have);
	hk__wipe(s->pool, have);
	ssize_t r = hk__fr_pread_full(fd, s->heap + have, size - have, have);
	close(fd);
	if (r < 0) {
		hk__fr_frame_fail_errno(s, (int)r, "read");
		return 0;
	}
	hk__fr_add_bytes_read(f, (size_t)r);
	s->pub.bytes = s->heap;
	s->pub.len = have + (size_t)r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pread engine                                                        */
/* ------------------------------------------------------------------ */

static void pread_file(hk_frames *f, slot *s)
{
	const char *path = hk__fr_frame_path(f, s);
	int direct = (f->p.flags & HK_FRAMES_DIRECT) && f->direct_ok;
	/* a listed FIFO, device or directory fails its frame, unread: the
	 * open cannot block this reader thread */
	int fd = hk__open_regular(path, direct ? O_DIRECT : 0, NULL);
	if (fd == -EINVAL && direct) {
		direct = 0;
		fd = hk__open_regular(path, 0, NULL);
	}
	if (fd < 0) {
		hk__fr_frame_fail_errno(s, fd, "open");
		return;
	}
	ssize_t r = hk__fr_pread_full(fd, s->pool, f->p.buffer_size, 0);
	if (r == -EINVAL && direct) { /* fs refused O_DIRECT alignment */
		close(fd);
		fd = hk__open_regular(path, 0, NULL);
		if (fd < 0) {
			hk__fr_frame_fail_errno(s, fd, "open");
			return;
		}
		direct = 0;
		r = hk__fr_pread_full(fd, s->pool, f->p.buffer_size, 0);
	}
	close(fd);
	if (r < 0) {
		hk__fr_frame_fail_errno(s, (int)r, "read");
		return;
	}
	if (direct) {
		pthread_mutex_lock(&f->mu);
		f->st.flags |= HK_FRAMES_HAVE_DIRECT;
		pthread_mutex_unlock(&f->mu);
	}
	hk__fr_add_bytes_read(f, (size_t)r);
	if ((size_t)r == f->p.buffer_size) {
		hk__fr_big_file_finish(f, s, 1);
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
		hk__fr_frame_fail(s, HK_E_LIMIT, "%s: %llu bytes exceeds max_frame_bytes",
		           s->name, (unsigned long long)len);
		return;
	}
	if (len > f->p.buffer_size) {
		size_t cap;
		if (hk__fr_budget_wait(f, s, (size_t)len + ALIGN_IO) != 0) {
			hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
			return;
		}
		if (!(s->heap = hk__fr_big_alloc((size_t)len, &cap))) {
			hk__fr_frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
			return;
		}
		s->heap_cap = cap;
		dst = s->heap;
	}
	ssize_t r = hk__fr_pread_full(f->batch_fd, dst, (size_t)len, f->boff[id]);
	if (r < 0) {
		hk__fr_frame_fail_errno(s, (int)r, "read");
		return;
	}
	hk__fr_add_bytes_read(f, (size_t)r);
	if ((uint64_t)r != len) {
		hk__fr_frame_fail(s, HK_E_FORMAT, "%s: batch file truncated", s->name);
		return;
	}
	s->pub.bytes = dst;
	s->pub.len = (size_t)len;
}

void hk__fr_name_batch(slot *s)
{
	snprintf(s->name, sizeof s->name, "batch[%llu]",
	         (unsigned long long)s->pub.id);
}

void *hk__fr_pread_worker(void *arg)
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
		slot *s = hk__fr_slot_pop_free(f);
		uint64_t id = f->next_id++;
		pthread_mutex_unlock(&f->mu);
		hk__fr_slot_reset(s, id);
		if (f->kind == SRC_FILES) {
			s->pub.name = f->paths[id];
			pread_file(f, s);
		} else {
			hk__fr_name_batch(s);
			pread_batch(f, s);
		}
		hk__fr_ready_frame(f, s);
	}
	hk__fr_producer_exit(f);
	return NULL;
}

/* ------------------------------------------------------------------ */
