/*
 * V4L2 cameras (/dev/videoN): memory-mapped streaming capture in MJPEG
 * (decoded with libjpeg-turbo through hk_image_decode) or YUYV (converted
 * here, BT.601 limited range). A camera is live: the capture thread never
 * waits for the consumer (video.h's drop policy); the driver's buffers are
 * requeued at once. No frame touches disk.
 *
 * Size: frames_params.stream_width/height when set, else 640x480; the
 * driver may adjust it (the frames carry their real size).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "video.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define NBUF 4

typedef struct v4l {
	int fd;
	uint32_t fourcc, w, h, bpl;
	void *map[NBUF];
	size_t maplen[NBUF];
	uint32_t nbuf;
	int streaming;
	char dev[64];
} v4l;

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r == -1 && errno == EINTR);
	return r;
}

static void v4l_close(hk__vsrc *s)
{
	v4l *v = s->impl;
	if (!v)
		return;
	if (v->streaming) {
		enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		xioctl(v->fd, VIDIOC_STREAMOFF, &t);
	}
	for (uint32_t i = 0; i < v->nbuf; i++)
		if (v->map[i] && v->map[i] != MAP_FAILED)
			munmap(v->map[i], v->maplen[i]);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
	s->impl = NULL;
}

static uint8_t clamp8(int x)
{
	return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
}

static void yuyv_to_rgb(const uint8_t *src, uint32_t bpl, uint32_t w, uint32_t h, uint8_t *dst)
{
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *s = src + (size_t)y * bpl;
		uint8_t *d = dst + (size_t)y * 3 * w;
		for (uint32_t x = 0; x + 1 < w + 1; x += 2) {
			int y0 = s[0] - 16, u = s[1] - 128, y1 = s[2] - 16, v = s[3] - 128;
			for (int k = 0; k < 2 && x + (uint32_t)k < w; k++) {
				int c = 298 * (k ? y1 : y0);
				d[0] = clamp8((c + 409 * v + 128) >> 8);
				d[1] = clamp8((c - 100 * u - 208 * v + 128) >> 8);
				d[2] = clamp8((c + 516 * u + 128) >> 8);
				d += 3;
			}
			s += 4;
		}
	}
}

static void fill(hk__vsrc *s, v4l *v, hk__vframe *f, const uint8_t *data, size_t len,
                 int64_t ts)
{
	f->pub.pts_us = ts;
	if (v->fourcc == V4L2_PIX_FMT_YUYV) {
		if (len < (size_t)v->bpl * v->h) {
			hk__vframe_fail(f, HK_E_FORMAT, "%s: short YUYV frame (%zu bytes)", v->dev, len);
			return;
		}
		if (hk__vframe_image(f, v->w, v->h)) {
			hk__vframe_fail(f, HK_E_NOMEM, "%s: frame buffer", v->dev);
			return;
		}
		yuyv_to_rgb(data, v->bpl, v->w, v->h, f->buf);
		return;
	}
	hk_image im;
	hk_status st = hk_image_decode(data, len, &im);
	if (st != HK_OK) {
		hk__vframe_fail(f, st, "%s: bad MJPEG frame: %s", v->dev, hk_last_error());
		return;
	}
	if (hk__vframe_image(f, im.width, im.height) == 0) {
		for (uint32_t y = 0; y < im.height; y++)
			memcpy(f->buf + (size_t)y * 3 * im.width, im.data + (size_t)y * im.stride,
			       3 * (size_t)im.width);
	} else {
		hk__vframe_fail(f, HK_E_NOMEM, "%s: frame buffer", v->dev);
	}
	hk_image_free(&im);
}

static void *v4l_thread(void *arg)
{
	hk__vsrc *s = arg;
	v4l *v = s->impl;
	while (!hk__vsrc_stopping(s)) {
		/* Short polls, so that destroy is noticed; the stall limit is
		 * timeout_ms in total. */
		uint32_t waited = 0;
		int r = 0;
		while (!hk__vsrc_stopping(s) && waited < s->timeout_ms) {
			struct pollfd pfd = {.fd = v->fd, .events = POLLIN};
			r = poll(&pfd, 1, 100);
			if (r != 0)
				break;
			waited += 100;
		}
		if (hk__vsrc_stopping(s))
			break;
		if (r <= 0) {
			hk__vframe *f = hk__vsrc_get(s);
			if (f) {
				if (r == 0)
					hk__vframe_fail(f, HK_E_IO, "%s: stalled: no frame for %u ms", v->dev,
					                s->timeout_ms);
				else
					hk__vframe_fail(f, HK_E_IO, "%s: poll: %s", v->dev, strerror(errno));
				hk__vsrc_put(s, f);
			}
			break;
		}
		struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
		if (xioctl(v->fd, VIDIOC_DQBUF, &b) < 0) {
			if (errno == EAGAIN)
				continue;
			hk__vframe *f = hk__vsrc_get(s);
			if (f) {
				hk__vframe_fail(f, HK_E_IO, "%s: the camera stopped: %s", v->dev,
				                strerror(errno));
				hk__vsrc_put(s, f);
			}
			break;
		}
		hk__vframe *f = hk__vsrc_get(s);
		if (f && b.index < v->nbuf) {
			int64_t ts = (int64_t)b.timestamp.tv_sec * 1000000 + b.timestamp.tv_usec;
			fill(s, v, f, v->map[b.index], b.bytesused, ts);
			pthread_mutex_lock(&s->mu);
			s->st.bytes_read += b.bytesused;
			pthread_mutex_unlock(&s->mu);
			hk__vsrc_put(s, f);
		} else if (f) {
			hk__vsrc_drop(s, f);
		}
		xioctl(v->fd, VIDIOC_QBUF, &b);
		if (!f)
			break;
	}
	hk__vsrc_finish(s);
	return NULL;
}

hk_status hk__v4l2_error(int err, hk_status otherwise, const char *dev, const char *what)
{
	switch (err) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return hk__err(HK_E_NOT_FOUND, "%s: no such camera", dev);
	case EBUSY:
		return hk__err(HK_E_BUSY, "%s: the camera is busy (used by another program)", dev);
	default:
		return hk__err(otherwise, "%s: %s: %s", dev, what, strerror(err));
	}
}

static hk_status fail(hk__vsrc *s, hk_status st, const char *dev, const char *what)
{
	int e = errno;
	hk__vsrc_destroy(s);
	return hk__v4l2_error(e, st, dev, what);
}

hk_status hk__v4l2_open(const char *spec, const hk_frames_params *p, hk__vsrc **out)
{
	*out = NULL;
	const char *dev = !strncmp(spec, "v4l2:", 5) ? spec + 5 : spec;
	int fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return hk__v4l2_error(errno, HK_E_IO, dev, "cannot open");
	hk__vsrc *s;
	hk_status st = hk__vsrc_alloc(p, 1, &s);
	if (st != HK_OK) {
		close(fd);
		return st;
	}
	if (p && p->timeout_ms)
		s->timeout_ms = p->timeout_ms;
	v4l *v = calloc(1, sizeof *v);
	if (!v) {
		close(fd);
		hk__vsrc_destroy(s);
		return hk__err(HK_E_NOMEM, "camera");
	}
	v->fd = fd;
	snprintf(v->dev, sizeof v->dev, "%.60s", dev);
	s->impl = v;
	s->impl_close = v4l_close;
	s->run = v4l_thread;

	struct v4l2_capability cap;
	memset(&cap, 0, sizeof cap);
	if (xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0)
		return fail(s, HK_E_UNSUPPORTED, dev, "not a V4L2 device");
	uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
	if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_UNSUPPORTED, "%s: not a streaming video capture device", dev);
	}
	uint32_t want_w = p && p->stream_width ? p->stream_width : 640;
	uint32_t want_h = p && p->stream_height ? p->stream_height : 480;
	const uint32_t fmts[2] = {V4L2_PIX_FMT_MJPEG, V4L2_PIX_FMT_YUYV};
	int ok = 0;
	for (int i = 0; i < 2 && !ok; i++) {
		struct v4l2_format f;
		memset(&f, 0, sizeof f);
		f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		f.fmt.pix.width = want_w;
		f.fmt.pix.height = want_h;
		f.fmt.pix.pixelformat = fmts[i];
		f.fmt.pix.field = V4L2_FIELD_ANY;
		if (xioctl(fd, VIDIOC_S_FMT, &f) < 0) {
			if (errno == EBUSY)
				return fail(s, HK_E_BUSY, dev, "set format");
			continue;
		}
		if (f.fmt.pix.pixelformat != fmts[i])
			continue;
		v->fourcc = f.fmt.pix.pixelformat;
		v->w = f.fmt.pix.width;
		v->h = f.fmt.pix.height;
		v->bpl = f.fmt.pix.bytesperline ? f.fmt.pix.bytesperline : 2 * v->w;
		ok = 1;
	}
	if (!ok) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_UNSUPPORTED, "%s: the camera offers neither MJPEG nor YUYV", dev);
	}
	struct v4l2_requestbuffers rb = {.count = NBUF, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
	                                 .memory = V4L2_MEMORY_MMAP};
	if (xioctl(fd, VIDIOC_REQBUFS, &rb) < 0 || rb.count < 2)
		return fail(s, HK_E_IO, dev, "cannot get capture buffers");
	v->nbuf = rb.count < NBUF ? rb.count : NBUF;
	for (uint32_t i = 0; i < v->nbuf; i++) {
		struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		                        .memory = V4L2_MEMORY_MMAP, .index = i};
		if (xioctl(fd, VIDIOC_QUERYBUF, &b) < 0)
			return fail(s, HK_E_IO, dev, "query buffer");
		v->maplen[i] = b.length;
		v->map[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
		if (v->map[i] == MAP_FAILED)
			return fail(s, HK_E_IO, dev, "mmap");
		if (xioctl(fd, VIDIOC_QBUF, &b) < 0)
			return fail(s, HK_E_IO, dev, "queue buffer");
	}
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (xioctl(fd, VIDIOC_STREAMON, &t) < 0)
		return fail(s, HK_E_IO, dev, "start streaming");
	v->streaming = 1;
	if ((st = hk__vsrc_start(s)) != HK_OK) {
		hk__vsrc_destroy(s);
		return st;
	}
	*out = s;
	return HK_OK;
}
