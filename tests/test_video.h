/* Shared by the video and recogniser tests (tests/test_video.c). */
#ifndef HK_TEST_VIDEO_H
#define HK_TEST_VIDEO_H

#include <pthread.h>
#include <stddef.h>

#include "herken.h"

/* $HERKEN_SHARED/datasets/video/<name> into buf when readable, else NULL. */
const char *hkt_video_path(const char *name, char *buf, size_t len);

/* A 127.0.0.1 TCP server sending MJPEG: `first` frames of img (cropped to
 * a multiple of 16), `second` 32 pixels narrower, 20 ms apart, then
 * silence with the connection open until hkt_server_stop. */
typedef struct server {
	int lsock, port;
	const hk_image *img;
	int first, second;
	volatile int stop;
	pthread_t thr;
} server;

void hkt_server_start(server *sv, const hk_image *img, int first, int second);
void hkt_server_stop(server *sv);

#endif
