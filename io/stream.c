/* Frame sources: streams of raw RGB24 or Y4M frames on a file descriptor. */
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
/* Streams: raw RGB24 and Y4M                                          */
/* ------------------------------------------------------------------ */


/* Waits for input, waking up to notice hk_frames_destroy. With
 * p.timeout_ms set, a pipe that delivers nothing for that long has
 * stalled: -ETIMEDOUT (a regular file is always readable: it never
 * stalls). */
static int stream_fill(hk_frames *f)
{
	uint32_t waited = 0;
	for (;;) {
		if (f->p.timeout_ms && waited >= f->p.timeout_ms)
			return -ETIMEDOUT;
		pthread_mutex_lock(&f->mu);
		int stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return -ECANCELED;
		struct pollfd pfd = {.fd = f->stream_fd, .events = POLLIN};
		int pr = poll(&pfd, 1, 100);
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr == 0)
			waited += 100;
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

/* A pipe that went silent mid-stream: the error frame that ends it. */
static void stream_stalled(const hk_frames *f, slot *s)
{
	hk__fr_frame_fail(s, HK_E_IO, "%s: stalled: no data for %u ms", s->name,
	                  f->p.timeout_ms);
}

/* Reads one stream frame into slot s. 1 frame, 0 clean EOF. */
static int stream_frame(hk_frames *f, slot *s)
{
	if (f->y4m) {
		char line[256];
		int rc = stream_line(f, line, sizeof line);
		if (rc == 0)
			return 0;
		if (rc == -ETIMEDOUT) {
			stream_stalled(f, s);
			return 1;
		}
		if (rc < 0 || strncmp(line, "FRAME", 5) != 0) {
			hk__fr_frame_fail(s, HK_E_FORMAT, "%s: bad Y4M frame header", s->name);
			return 1;
		}
	}
	uint8_t *dst = s->pool;
	size_t n = f->stream_bytes;
	if (n > f->p.buffer_size) {
		size_t cap;
		if (hk__fr_budget_wait(f, s, n + ALIGN_IO) != 0) {
			hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
			return 1;
		}
		if (!(s->heap = hk__fr_big_alloc(n, &cap))) {
			hk__fr_frame_fail(s, HK_E_NOMEM, "%s: out of memory", s->name);
			return 1;
		}
		s->heap_cap = cap;
		dst = s->heap;
	}
	ssize_t r = stream_read(f, dst, n);
	if (r == -ETIMEDOUT) {
		stream_stalled(f, s);
		return 1;
	}
	if (r < 0) {
		hk__fr_frame_fail_errno(s, (int)r, "read");
		return 1;
	}
	hk__fr_add_bytes_read(f, (size_t)r);
	if (r == 0 && !f->y4m)
		return 0;
	s->pub.bytes = dst;
	s->pub.len = (size_t)r;
	if ((size_t)r < n) {
		hk__fr_frame_fail(s, HK_E_FORMAT, "%s: truncated frame (%zd of %zu bytes)",
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
	if (hk__fr_budget_wait(f, s, (size_t)f->sw * f->sh * 3) != 0) {
		hk__fr_frame_fail(s, HK_E_STATE, "source stopped");
		return 1;
	}
	hk_status st = hk__image_alloc(f->sw, f->sh, &s->pub.image, "Y4M");
	if (st) {
		hk__fr_frame_fail(s, st, "%s: %s", s->name, hk_last_error());
		return 1;
	}
	y4m_to_rgb(f, dst, &s->pub.image);
	return 1;
}

void *hk__fr_stream_thread(void *arg)
{
	hk_frames *f = arg;
	for (uint64_t id = 0;; id++) {
		pthread_mutex_lock(&f->mu);
		while (!f->stop && !f->free_list)
			pthread_cond_wait(&f->cv_free, &f->mu);
		slot *s = f->stop ? NULL : hk__fr_slot_pop_free(f);
		pthread_mutex_unlock(&f->mu);
		if (!s)
			break;
		hk__fr_slot_reset(s, id);
		snprintf(s->name, sizeof s->name, "stream[%llu]",
		         (unsigned long long)id);
		if (!stream_frame(f, s)) {
			hk__fr_slot_unuse(f, s);
			break;
		}
		int last = s->pub.status != HK_OK;
		hk__fr_ready_frame(f, s);
		if (last)
			break;
	}
	hk__fr_producer_exit(f);
	return NULL;
}


HK_API hk_status hk_frames_open_stream(int fd, const hk_frames_params *p,
                                       hk_frames **out)
{
	if (!out || fd < 0)
		return hk__err(HK_E_INVALID, "hk_frames_open_stream: bad argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = hk__fr_frames_new(SRC_STREAM, p, &f);
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
		return r == -ETIMEDOUT ? hk__err(HK_E_IO, "stream: no data within %u ms", pp.timeout_ms)
		                       : hk__errno_status((int)r, "stream");
	}
	if (r == (ssize_t)sizeof head && !memcmp(head, "YUV4MPEG2 ", 10)) {
		char line[512];
		int rc = stream_line(f, line, sizeof line);
		if (rc <= 0 || y4m_parse_header(f, line) != 0) {
			hk_frames_destroy(f);
			if (rc == -ETIMEDOUT)
				return hk__err(HK_E_IO, "stream: no data within %u ms", pp.timeout_ms);
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
	return hk__fr_frames_finish_open(f, out);
}

