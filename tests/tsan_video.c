/* ThreadSanitizer driver for the video sources (io/video*.c): the FFmpeg
 * decode thread against a consumer that releases frames from another
 * thread, destroy in the middle of a stream, and a network open that
 * times out (the interrupt callback reads the stop flag while destroy may
 * set it). Plain main(): Criterion cannot start under TSan. Skips the clip
 * parts when $HERKEN_SHARED/datasets/video is absent. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herken.h"

#define FAIL(...)                                                                         \
	do {                                                                              \
		fprintf(stderr, "tsan_video: " __VA_ARGS__);                              \
		fputc('\n', stderr);                                                      \
		return 1;                                                                 \
	} while (0)

typedef struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	hk_frame *q[8];
	int head, n, done;
	hk_frames *src;
	uint64_t released, checksum;
} ring;

/* Releases frames handed over by the reader, from its own thread. */
static void *releaser(void *arg)
{
	ring *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (!r->n && !r->done)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->n && r->done) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		hk_frame *f = r->q[r->head];
		r->head = (r->head + 1) % 8;
		r->n--;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		if (f->status == HK_OK)
			r->checksum += f->image.data[f->image.stride * (f->image.height / 2)];
		hk_frames_release(r->src, f);
		r->released++;
	}
}

static int clip_cross_thread_release(const char *clip)
{
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.queue_depth = 2;
	fp.max_frames = 6;
	/* One codec thread: libavcodec's own frame threads synchronise with
	 * atomics TSan cannot see in the uninstrumented library (false
	 * reports in av_buffer_unref); our threads are what is checked. */
	fp.decode_threads = 1;
	ring r;
	memset(&r, 0, sizeof r);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (hk_frames_open(clip, &fp, &r.src) != HK_OK)
		FAIL("%s", hk_last_error());
	pthread_t t;
	pthread_create(&t, NULL, releaser, &r);
	uint64_t got = 0;
	hk_frame *f;
	for (;;) {
		hk_status s = hk_frames_next(r.src, &f);
		if (s == HK_E_LIMIT) {
			usleep(1000);
			continue;
		}
		if (s != HK_OK || !f)
			break;
		got++;
		pthread_mutex_lock(&r.mu);
		while (r.n == 8)
			pthread_cond_wait(&r.cv, &r.mu);
		r.q[(r.head + r.n) % 8] = f;
		r.n++;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
	}
	pthread_mutex_lock(&r.mu);
	r.done = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	pthread_join(t, NULL);
	hk_frames_destroy(r.src);
	if (got != 275 || r.released != got)
		FAIL("stage clip: %llu frames read, %llu released (want 275)",
		     (unsigned long long)got, (unsigned long long)r.released);
	printf("tsan_video: %llu frames released from another thread\n", (unsigned long long)got);
	return 0;
}

static int clip_destroy_midway(const char *clip)
{
	for (int round = 0; round < 3; round++) {
		hk_frames *src;
		hk_frames_params fp;
		hk_frames_default_params(&fp);
		fp.decode_threads = 1;
		if (hk_frames_open(clip, &fp, &src) != HK_OK)
			FAIL("%s", hk_last_error());
		hk_frame *f;
		for (int i = 0; i < 5 * round + 1 && hk_frames_next(src, &f) == HK_OK && f; i++)
			hk_frames_release(src, f);
		hk_frames_destroy(src); /* the decode thread is still running */
	}
	return 0;
}

static int network_timeout(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4) ||
	    getsockname(s, (struct sockaddr *)&a, &len))
		FAIL("cannot listen on 127.0.0.1");
	char url[64];
	snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/x", ntohs(a.sin_port));
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.timeout_ms = 200;
	hk_frames *src = NULL;
	hk_status st = hk_frames_open(url, &fp, &src);
	close(s);
	if (st != HK_E_IO || src)
		FAIL("silent RTSP peer: %d %s", st, hk_last_error());
	return 0;
}

int main(void)
{
	if (network_timeout())
		return 1;
	const char *sh = getenv("HERKEN_SHARED");
	char clip[4096];
	snprintf(clip, sizeof clip, "%s/datasets/video/stage_clip_10s.mp4", sh ? sh : "");
	if (!sh || access(clip, R_OK) != 0) {
		printf("tsan_video: %s absent, clip parts skipped\n", clip);
		return 0;
	}
	if (clip_cross_thread_release(clip) || clip_destroy_midway(clip))
		return 1;
	return 0;
}
