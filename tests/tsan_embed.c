/* ThreadSanitizer driver for hk_embed_many (core/pipeline/job.c): reader,
 * detect and embed threads and the delivering caller over small queues
 * (two images in flight, two chip slots, partial batches flushed at once),
 * a missing file in the middle, a job stopped by its callback. Plain
 * main(): Criterion cannot start under TSan. Skips (exit 0) without the
 * models or $HERKEN_SHARED/golden/images. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"

#define FAIL(...)                                                                         \
	do {                                                                              \
		fprintf(stderr, "tsan_embed: " __VA_ARGS__);                              \
		fputc('\n', stderr);                                                      \
		return 1;                                                                 \
	} while (0)

typedef struct seen {
	uint64_t n, errors, embedded, stop_after;
	int out_of_order;
} seen;

static int on_result(void *user, const hk_embed_result *r)
{
	seen *s = user;
	s->out_of_order |= r->seq != s->n;
	s->n++;
	s->errors += r->status != HK_OK;
	s->embedded += r->embedded;
	return s->stop_after && s->n >= s->stop_after;
}

static hk_status run(const hk_engine *e, char **paths, size_t n, hk_embed_params *jp, seen *s)
{
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
	fp.queue_depth = 2;
	hk_frames *src = NULL;
	hk_status st = hk_frames_open_list((const char *const *)paths, n, &fp, &src);
	if (st)
		return st;
	jp->on_result = on_result;
	jp->user = s;
	st = hk_embed_many(e, src, jp, NULL);
	hk_frames_destroy(src);
	return st;
}

int main(void)
{
	const char *shared = getenv("HERKEN_SHARED");
	char *paths[14];
	size_t n = 0;
	char p[4096];
	snprintf(p, sizeof p, "%s/golden/images/sample1.jpg", shared ? shared : "");
	if (!shared || access(p, R_OK)) {
		fprintf(stderr, "tsan_embed: golden photos absent (HERKEN_SHARED): skipped\n");
		return 0;
	}
	for (int rep = 0; rep < 2; rep++)
		for (int i = 1; i <= 6; i++) {
			snprintf(p, sizeof p, "%s/golden/images/sample%d.jpg", shared, i);
			paths[n++] = strdup(p);
			if (rep == 0 && i == 3)
				paths[n++] = strdup("/nonexistent/herken/photo.jpg");
		}
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.threads = 1;
	hk_engine *e = NULL;
	hk_status st = hk_engine_create(&ep, &e);
	if (st == HK_E_NOT_FOUND || st == HK_E_UNSUPPORTED) {
		fprintf(stderr, "tsan_embed: models absent: skipped (%s)\n", hk_last_error());
		return 0;
	}
	if (st)
		FAIL("engine: %s", hk_last_error());
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.select = HK_EMBED_ALL;
	jp.detect_threads = 3;
	jp.embed_threads = 2;
	jp.max_images = 2;
	jp.max_chips = 2;
	jp.batch = 4;
	jp.flush_us = 1;
	seen s = {0};
	if ((st = run(e, paths, n, &jp, &s)))
		FAIL("run: %s", hk_last_error());
	if (s.n != n || s.errors != 1 || s.out_of_order || s.embedded < 10)
		FAIL("%llu results (want %zu), %llu errors, %llu embedded, order %s",
		     (unsigned long long)s.n, n, (unsigned long long)s.errors,
		     (unsigned long long)s.embedded, s.out_of_order ? "broken" : "kept");
	hk_embed_default_params(&jp);
	jp.detect_threads = 2;
	jp.embed_threads = 2;
	seen t = {.stop_after = 4};
	if (run(e, paths, n, &jp, &t) != HK_E_STATE || t.n != 4)
		FAIL("stop: %llu results", (unsigned long long)t.n);
	hk_engine_destroy(e);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	fprintf(stderr, "tsan_embed: ok (%llu images, %llu faces embedded)\n",
	        (unsigned long long)s.n, (unsigned long long)s.embedded);
	return 0;
}
