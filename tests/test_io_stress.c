/* Threaded stress of the frame sources: any-order and in-order delivery,
 * frames released from another thread, decode workers, files larger than
 * the read buffer, SQPOLL + O_DIRECT, a raw stream, destroy mid-way.
 *
 * Criterion cannot start under ThreadSanitizer (its inheritable arena
 * fails: Snaipe/Criterion#274), so this file also builds standalone:
 *   make SANITIZE=thread build/thread/libherken.a
 *   gcc -std=c11 -g -O1 -fsanitize=thread -DHK_STRESS_MAIN -Icore \
 *       tests/test_io_stress.c build/thread/libherken.a \
 *       $(pkg-config --libs hwloc liburing libturbojpeg libpng libsodium \
 *       openblas) -ldnnl -lpthread -lm -o build/thread/io-stress
 *   build/thread/io-stress       # exit 0, no ThreadSanitizer report
 * In the normal suite it runs as io_stress::threaded.
 */
#define _GNU_SOURCE
#include "herken.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#ifndef HK_STRESS_MAIN
#include <criterion/criterion.h>
#endif
#ifdef HK_STRESS_MAIN
#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "FAIL %s:%d %s\n", __FILE__, __LINE__, \
			        #c);                                           \
			exit(1);                                               \
		}                                                              \
	} while (0)
#else
#define CHECK(c) cr_assert(c, "%s", #c)
#endif
static char dir[] = "/tmp/hk_stress_XXXXXX";
static char *paths[400];
static size_t sizes[400];
static hk_frames *g_src;
static hk_frame *q[64];
static int qn;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static void *releaser(void *a)
{
	(void)a;
	for (;;) {
		pthread_mutex_lock(&qm);
		hk_frame *f = qn ? q[--qn] : NULL;
		pthread_mutex_unlock(&qm);
		if (f == (hk_frame *)1)
			return NULL;
		if (f)
			hk_frames_release(g_src, f);
		else
			usleep(100);
	}
}
static void run(uint32_t engine, uint32_t flags, int cross_release)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.engine = engine;
	p.flags = flags;
	p.buffer_size = 8192;
	p.queue_depth = 8;
	p.decode_threads = 3;
	p.max_bytes = 1 << 20;
	CHECK(hk_frames_open_list((const char *const *)paths, 400, &p,
	                          &g_src) == HK_OK);
	pthread_t th;
	if (cross_release)
		pthread_create(&th, NULL, releaser, NULL);
	hk_frame *f;
	int n = 0;
	while (1) {
		hk_status s = hk_frames_next(g_src, &f);
		if (s == HK_E_LIMIT) {
			usleep(200);
			continue;
		}
		CHECK(s == HK_OK);
		if (!f)
			break;
		CHECK(f->status == HK_OK);
		if (f->len != sizes[f->id]) /* say which path delivered it */
			fprintf(stderr,
			        "io_stress: engine %u flags 0x%x frame %llu (%s): "
			        "len %zu, file has %zu\n",
			        (unsigned)engine, (unsigned)flags,
			        (unsigned long long)f->id, f->name ? f->name : "?",
			        f->len, sizes[f->id]);
		CHECK(f->len == sizes[f->id]);
		if (flags & HK_FRAMES_DECODE)
			CHECK(f->image.width > 0);
		n++;
		if (cross_release) {
			for (;;) {
				pthread_mutex_lock(&qm);
				int ok = qn < 64;
				if (ok)
					q[qn++] = f;
				pthread_mutex_unlock(&qm);
				if (ok)
					break;
				usleep(50);
			}
		} else
			hk_frames_release(g_src, f);
	}
	if (cross_release) {
		/* The releaser pops the newest first: send the stop only once
		 * every frame is back, or the frames left in q would be
		 * released into the next run's source. */
		for (;;) {
			pthread_mutex_lock(&qm);
			int ok = qn == 0;
			if (ok)
				q[qn++] = (hk_frame *)1;
			pthread_mutex_unlock(&qm);
			if (ok)
				break;
			usleep(50);
		}
		pthread_join(th, NULL);
	}
	CHECK(n == 400);
	hk_frames_destroy(g_src);
	/* destroy mid-way */
	CHECK(hk_frames_open_list((const char *const *)paths, 400, &p,
	                          &g_src) == HK_OK);
	CHECK(hk_frames_next(g_src, &f) == HK_OK && f);
	usleep(2000);
	hk_frames_destroy(g_src);
}
static void *writer(void *a)
{
	int fd = *(int *)a;
	uint8_t b[3 * 17 * 9 * 20];
	memset(b, 7, sizeof b);
	size_t off = 0;
	while (off < sizeof b) {
		size_t c = off % 3 ? 5 : 1001;
		if (c > sizeof b - off)
			c = sizeof b - off;
		off += (size_t)write(fd, b + off, c);
	}
	close(fd);
	return NULL;
}
static int stress_main(void)
{
	CHECK(mkdtemp(dir));
	tjhandle tj = tjInitCompress();
	uint8_t rgb[48 * 32 * 3];
	memset(rgb, 90, sizeof rgb);
	for (int i = 0; i < 400; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%03d.jpg", dir, i);
		paths[i] = strdup(p);
		rgb[i % sizeof rgb] = (uint8_t)i;
		unsigned char *jb = NULL;
		unsigned long jn = 0;
		CHECK(tjCompress2(tj, rgb, 48, 0, 32, TJPF_RGB, &jb, &jn,
		                  TJSAMP_420, 80, 0) == 0);
		size_t pad =
		    (size_t)(i % 5) * 4000; /* some files > buffer_size */
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(write(fd, jb, jn) == (ssize_t)jn);
		uint8_t z[20000] = {0};
		if (pad)
			CHECK(write(fd, z, pad) == (ssize_t)pad);
		close(fd);
		sizes[i] = jn + pad;
		tjFree(jb);
	}
	tjDestroy(tj);
	for (uint32_t e = HK_FRAMES_IO_URING; e <= HK_FRAMES_PREAD; e++) {
		run(e, 0, 0);
		run(e, HK_FRAMES_IN_ORDER, 1);
		run(e, HK_FRAMES_DECODE, 1);
		run(e, HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER, 0);
	}
	run(HK_FRAMES_IO_URING, HK_FRAMES_SQPOLL | HK_FRAMES_DIRECT, 0);
	int fds[2];
	CHECK(pipe(fds) == 0);
	pthread_t th;
	pthread_create(&th, NULL, writer, &fds[1]);
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.stream_width = 17;
	p.stream_height = 9;
	hk_frames *s;
	CHECK(hk_frames_open_stream(fds[0], &p, &s) == HK_OK);
	hk_frame *f;
	int n = 0;
	while (hk_frames_next(s, &f) == HK_OK && f) {
		CHECK(f->status == HK_OK);
		n++;
		hk_frames_release(s, f);
	}
	CHECK(n == 20);
	pthread_join(th, NULL);
	hk_frames_destroy(s);
	close(fds[0]);
	for (int i = 0; i < 400; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	rmdir(dir);
	return 0;
}

#ifdef HK_STRESS_MAIN
int main(void)
{
	int rc = stress_main();
	fprintf(stderr, "io stress: all ok\n");
	return rc;
}
#else
Test(io_stress, threaded)
{
	cr_assert_eq(stress_main(), 0);
}
#endif
