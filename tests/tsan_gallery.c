/*
 * Gallery concurrency under ThreadSanitizer: searchers (single and batch)
 * race one writer that adds, removes and compacts. Plain driver because
 * Criterion cannot run under TSan; prints "N passed, N failed".
 */
#define _GNU_SOURCE /* rand_r */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "herken.h"

#define D 48

static hk_gallery *g;
static int errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what)
{
	pthread_mutex_lock(&mu);
	errors++;
	fprintf(stderr, "FAIL: %s: %s\n", what, hk_last_error());
	pthread_mutex_unlock(&mu);
}

static void *searcher(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	float q[4 * D], s[4 * 5];
	hk_template_id ids[4 * 5];
	for (int it = 0; it < 400; it++) {
		for (int j = 0; j < 4 * D; j++)
			q[j] = (float)(rand_r(&seed) % 2001 - 1000) + 0.5f;
		hk_status st = it % 2 ? hk_gallery_search(g, q, 5, s, ids)
		                      : hk_gallery_search_batch(g, q, 4, 5, s, ids);
		if (st != HK_OK)
			fail("search");
		for (int o = 0; o < 5; o++)
			if (ids[o] != HK_NO_ID && !(fabsf(s[o]) <= 1.0001f))
				fail("score out of range");
	}
	return NULL;
}

int main(void)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = D;
	p.threads = 2;
	if (hk_gallery_create(&p, &g) != HK_OK) {
		fprintf(stderr, "create: %s\n", hk_last_error());
		return 1;
	}
	unsigned seed = 1;
	float v[D];
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, searcher, (void *)(uintptr_t)(i + 7));
	hk_template_id id;
	for (int i = 0; i < 1200; i++) {
		for (int j = 0; j < D; j++)
			v[j] = (float)(rand_r(&seed) % 2001 - 1000) + 0.25f;
		char name[16];
		snprintf(name, sizeof name, "s%d", i % 40);
		if (hk_gallery_add(g, name, v, &id) != HK_OK)
			fail("add");
		if (i % 4 == 0 && hk_gallery_remove(g, id) != HK_OK)
			fail("remove");
		if (i % 400 == 399 && hk_gallery_compact(g) != HK_OK)
			fail("compact");
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	if (hk_gallery_size(g) != 900)
		fail("size");
	hk_gallery_destroy(g);
	printf("tsan_gallery: %d passed, %d failed\n", errors ? 0 : 1, errors ? 1 : 0);
	return errors != 0;
}
