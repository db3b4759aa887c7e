/*
 * Video sources behind hk_frames_open(): video files and network streams
 * (FFmpeg's libraries, io/video_ffmpeg.c) and V4L2 cameras
 * (io/video_v4l2.c). Not public: no FFmpeg or V4L2 type leaves io/.
 *
 * One producer thread per source demuxes/decodes (FFmpeg may use more
 * threads inside the codec) and converts to RGB into a fixed pool of
 * frames; the consumer takes them with hk__vsrc_next(). The queue between
 * them is bounded (queue frames):
 *   - a file is not live: the producer waits for the consumer (nothing is
 *     dropped, every frame is delivered);
 *   - a live source (network stream, camera) never waits: when the queue
 *     is full the OLDEST queued frame is dropped (the consumer always gets
 *     the freshest picture) and counted in hk_frames_stats.dropped.
 * A live source that delivers nothing for timeout_ms ends with an error
 * frame (HK_E_IO, "stalled"), so hk__vsrc_next never blocks for longer
 * than about timeout_ms.
 */
#ifndef HK_IO_VIDEO_H
#define HK_IO_VIDEO_H

#include "herken.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct hk__vframe {
	hk_frame pub; /* first: an hk_frame* is an hk__vframe* */
	struct hk__vframe *next;
	uint8_t *buf; /* RGB pixels, cap bytes */
	size_t cap;
	int held;
	char name[40];
	char err[256];
} hk__vframe;

typedef struct hk__vsrc hk__vsrc;

/* Producer side, shared by the FFmpeg and V4L2 back ends. */
struct hk__vsrc {
	pthread_mutex_t mu;
	pthread_cond_t cv_ready, cv_free;
	hk__vframe *frames;
	uint32_t nframes;
	hk__vframe *free_list, *ready_head, *ready_tail;
	uint32_t queued, held;
	int live, done;
	atomic_int stop; /* read without the lock by FFmpeg's interrupt callback */
	uint32_t timeout_ms;
	uint64_t next_id;
	hk_frames_stats st;
	pthread_t thr;
	int thr_started;
	void *impl;                      /* back end state */
	void (*impl_close)(hk__vsrc *s); /* after the thread stopped */
	void *(*run)(void *s);           /* the producer thread */
};

/* The kind of source a spec names: 0 = not a video source. */
enum { HK__VS_NONE = 0, HK__VS_FILE = 1, HK__VS_NET = 2, HK__VS_V4L2 = 3 };
int hk__video_kind(const char *spec);
/* 1 when the file at path starts like a video container (MP4, MKV, AVI). */
int hk__video_sniff(const char *path);

/* Open the source; *out is started (its producer thread runs). */
hk_status hk__video_open(const char *spec, const hk_frames_params *p, hk__vsrc **out);
hk_status hk__v4l2_open(const char *dev, const hk_frames_params *p, hk__vsrc **out);
/* The one translation of a camera's errno (open, ioctl): ENOENT, ENODEV,
 * ENXIO -> HK_E_NOT_FOUND "no such camera"; EBUSY -> HK_E_BUSY (another
 * program holds it; `herken watch` exits 6); anything else -> otherwise,
 * naming what failed. Sets hk_last_error(). */
hk_status hk__v4l2_error(int err, hk_status otherwise, const char *dev, const char *what);
hk_status hk__vsrc_next(hk__vsrc *s, hk_frame **out);
void hk__vsrc_release(hk__vsrc *s, hk_frame *fr);
void hk__vsrc_destroy(hk__vsrc *s);
void hk__vsrc_stats(hk__vsrc *s, hk_frames_stats *st);

/* Shared plumbing for back ends. */
hk_status hk__vsrc_alloc(const hk_frames_params *p, int live, hk__vsrc **out);
hk_status hk__vsrc_start(hk__vsrc *s);
/* Producer: a frame to fill (NULL when the source is stopping). Files wait
 * for a free frame; live sources drop the oldest queued one. */
hk__vframe *hk__vsrc_get(hk__vsrc *s);
/* Producer: hand a filled frame (pixels or error) to the consumer. */
void hk__vsrc_put(hk__vsrc *s, hk__vframe *f);
/* Producer: a frame the back end got but could not queue (counted). */
void hk__vsrc_drop(hk__vsrc *s, hk__vframe *f);
/* Producer: the source ended. */
void hk__vsrc_finish(hk__vsrc *s);
int hk__vsrc_stopping(hk__vsrc *s);
/* Size f's pixel buffer for w x h RGB: 0 or -ENOMEM / -EFBIG. */
int hk__vframe_image(hk__vframe *f, uint32_t w, uint32_t h);
/* Fill f as an error frame. */
void hk__vframe_fail(hk__vframe *f, hk_status st, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

#endif
