/* Video sources: the bounded producer/consumer queue shared by the FFmpeg
 * and V4L2 back ends (see video.h for the drop policy). */
#define _GNU_SOURCE
#include "internal.h"
#include "video.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VS_QUEUE_DEFAULT 4u

static int has_ext(const char *s, const char *const *ext)
{
	const char *dot = strrchr(s, '.');
	if (!dot)
		return 0;
	for (; *ext; ext++)
		if (!strcasecmp(dot + 1, *ext))
			return 1;
	return 0;
}

int hk__video_kind(const char *spec)
{
	static const char *const nets[] = {"rtsp://", "rtsps://", "rtmp://", "http://",
	                                   "https://", "udp://", "tcp://", "srt://"};
	static const char *const exts[] = {"mp4", "m4v", "mov", "mkv", "webm", "avi", "ts",
	                                   "mts", "h264", "264", "hevc", "h265", "mjpeg",
	                                   "mjpg", "flv", "mpg", "mpeg", NULL};
	if (!spec)
		return HK__VS_NONE;
	for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
		if (!strncasecmp(spec, nets[i], strlen(nets[i])))
			return HK__VS_NET;
	if (!strncmp(spec, "/dev/video", 10) || !strncmp(spec, "v4l2:", 5))
		return HK__VS_V4L2;
	if (!strncmp(spec, "file:", 5))
		return HK__VS_FILE;
	if (has_ext(spec, exts))
		return HK__VS_FILE;
	return HK__VS_NONE;
}

hk_status hk__vsrc_alloc(const hk_frames_params *p, int live, hk__vsrc **out)
{
	hk__vsrc *s = calloc(1, sizeof *s);
	if (!s)
		return hk__err(HK_E_NOMEM, "video source");
	/* queue_depth frames may wait in the queue; the caller may hold up to
	 * max_frames - queue_depth more (at least 2). */
	uint32_t q = p && p->queue_depth ? p->queue_depth : VS_QUEUE_DEFAULT;
	if (q > 64)
		q = 64;
	uint32_t n = p && p->max_frames > q + 1 ? p->max_frames : q + 2;
	if (n > 128)
		n = 128;
	s->frames = calloc(n, sizeof *s->frames);
	if (!s->frames) {
		free(s);
		return hk__err(HK_E_NOMEM, "video source");
	}
	s->nframes = n;
	s->live = live;
	s->timeout_ms = 5000;
	for (uint32_t i = 0; i < n; i++) {
		s->frames[i].next = s->free_list;
		s->free_list = &s->frames[i];
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_ready, NULL);
	pthread_cond_init(&s->cv_free, NULL);
	s->st.engine = HK_FRAMES_PREAD;
	*out = s;
	return HK_OK;
}

hk_status hk__vsrc_start(hk__vsrc *s)
{
	if (pthread_create(&s->thr, NULL, s->run, s))
		return hk__err(HK_E_BACKEND, "video source: cannot start the decode thread");
	s->thr_started = 1;
	return HK_OK;
}

int hk__vsrc_stopping(hk__vsrc *s)
{
	pthread_mutex_lock(&s->mu);
	int st = s->stop;
	pthread_mutex_unlock(&s->mu);
	return st;
}

hk__vframe *hk__vsrc_get(hk__vsrc *s)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		if (s->free_list)
			break;
		if (s->live && s->ready_head) {
			/* Drop the oldest queued frame: the freshest picture wins. */
			hk__vframe *old = s->ready_head;
			s->ready_head = old->next;
			if (!s->ready_head)
				s->ready_tail = NULL;
			s->queued--;
			s->st.dropped++;
			old->next = s->free_list;
			s->free_list = old;
			break;
		}
		/* A file waits for the consumer; a live source whose frames are
		 * all held by the consumer waits too (nothing to drop). */
		pthread_cond_wait(&s->cv_free, &s->mu);
	}
	hk__vframe *f = s->free_list;
	s->free_list = f->next;
	f->next = NULL;
	pthread_mutex_unlock(&s->mu);
	f->pub.status = HK_OK;
	f->pub.error = "";
	f->err[0] = 0;
	f->pub.bytes = NULL;
	f->pub.len = 0;
	f->pub.pts_us = -1;
	return f;
}

void hk__vsrc_put(hk__vsrc *s, hk__vframe *f)
{
	pthread_mutex_lock(&s->mu);
	f->pub.id = s->next_id++;
	snprintf(f->name, sizeof f->name, "stream[%llu]", (unsigned long long)f->pub.id);
	f->pub.name = f->name;
	if (f->pub.status != HK_OK)
		f->pub.error = f->err;
	f->next = NULL;
	if (s->ready_tail)
		s->ready_tail->next = f;
	else
		s->ready_head = f;
	s->ready_tail = f;
	s->queued++;
	pthread_cond_signal(&s->cv_ready);
	pthread_mutex_unlock(&s->mu);
}

void hk__vsrc_drop(hk__vsrc *s, hk__vframe *f)
{
	pthread_mutex_lock(&s->mu);
	s->st.dropped++;
	f->next = s->free_list;
	s->free_list = f;
	pthread_cond_signal(&s->cv_free);
	pthread_mutex_unlock(&s->mu);
}

void hk__vsrc_finish(hk__vsrc *s)
{
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_broadcast(&s->cv_ready);
	pthread_mutex_unlock(&s->mu);
}

int hk__vframe_image(hk__vframe *f, uint32_t w, uint32_t h)
{
	if (!w || !h || (uint64_t)w * h > HK_IMAGE_MAX_PIXELS)
		return -EFBIG;
	size_t need = (size_t)w * h * 3;
	if (need > f->cap) {
		if (f->buf) {
			hk__wipe(f->buf, f->cap);
			hk__afree(f->buf);
		}
		f->buf = hk__aalloc(need);
		f->cap = f->buf ? need : 0;
		if (!f->buf)
			return -ENOMEM;
	}
	f->pub.image.width = w;
	f->pub.image.height = h;
	f->pub.image.stride = 3 * w;
	f->pub.image.flags = 0; /* owned by the source, not by hk_image_free */
	f->pub.image.data = f->buf;
	return 0;
}

void hk__vframe_fail(hk__vframe *f, hk_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->err, sizeof f->err, fmt, ap);
	va_end(ap);
	f->pub.status = st;
	f->pub.error = f->err;
	memset(&f->pub.image, 0, sizeof f->pub.image);
}

hk_status hk__vsrc_next(hk__vsrc *s, hk_frame **out)
{
	*out = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->held >= s->nframes - 1 && !s->ready_head) {
		unsigned held = s->held; /* read under the lock: another thread may release */
		pthread_mutex_unlock(&s->mu);
		return hk__err(HK_E_LIMIT, "video source: the caller holds %u frames; release some",
		               held);
	}
	while (!s->ready_head && !s->done)
		pthread_cond_wait(&s->cv_ready, &s->mu);
	hk__vframe *f = s->ready_head;
	if (f) {
		s->ready_head = f->next;
		if (!s->ready_head)
			s->ready_tail = NULL;
		s->queued--;
		s->held++;
		f->held = 1;
		s->st.frames++;
		s->st.errors += f->pub.status != HK_OK;
		if (s->held > s->st.peak_frames)
			s->st.peak_frames = s->held;
		pthread_cond_signal(&s->cv_free);
	}
	pthread_mutex_unlock(&s->mu);
	*out = f ? &f->pub : NULL;
	return HK_OK;
}

void hk__vsrc_release(hk__vsrc *s, hk_frame *fr)
{
	if (!fr)
		return;
	hk__vframe *f = (hk__vframe *)fr;
	/* Frames are personal data: wipe before the buffer is reused. */
	if (f->buf && f->pub.image.data)
		hk__wipe(f->buf, (size_t)f->pub.image.stride * f->pub.image.height);
	memset(&f->pub.image, 0, sizeof f->pub.image);
	pthread_mutex_lock(&s->mu);
	if (f->held) {
		f->held = 0;
		s->held--;
		f->next = s->free_list;
		s->free_list = f;
		pthread_cond_signal(&s->cv_free);
	}
	pthread_mutex_unlock(&s->mu);
}

void hk__vsrc_stats(hk__vsrc *s, hk_frames_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
}

void hk__vsrc_destroy(hk__vsrc *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv_free);
	pthread_cond_broadcast(&s->cv_ready);
	pthread_mutex_unlock(&s->mu);
	if (s->thr_started)
		pthread_join(s->thr, NULL);
	if (s->impl_close)
		s->impl_close(s);
	for (uint32_t i = 0; i < s->nframes; i++) {
		if (s->frames[i].buf) {
			hk__wipe(s->frames[i].buf, s->frames[i].cap);
			hk__afree(s->frames[i].buf);
		}
	}
	free(s->frames);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv_ready);
	pthread_cond_destroy(&s->cv_free);
	free(s);
}

int hk__video_sniff(const char *path)
{
	/* A file named without a video extension: ISO BMFF (MP4/MOV, "ftyp"
	 * at offset 4), Matroska/WebM (EBML), AVI (RIFF....AVI ). */
	struct stat sb;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		return 0;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return 0;
	uint8_t b[12] = {0};
	size_t n = fread(b, 1, sizeof b, fp);
	fclose(fp);
	if (n < 12)
		return 0;
	if (!memcmp(b + 4, "ftyp", 4))
		return 1;
	if (b[0] == 0x1a && b[1] == 0x45 && b[2] == 0xdf && b[3] == 0xa3)
		return 1;
	if (!memcmp(b, "RIFF", 4) && !memcmp(b + 8, "AVI ", 4))
		return 1;
	return 0;
}
