/*
 * Durable gallery under ThreadSanitizer: enrollers (group commit), 1:1 and
 * 1:N queriers, an eraser, a compactor, expiry sweeps driven by a moving
 * clock, info and audit readers, all at once; then a reopen checks that
 * every acknowledged enrolment not erased is there and every erased
 * subject is gone. Plain driver (Criterion cannot run under TSan).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "test_store_util.h"

#define DIM 16
#define ENROLLERS 3
#define PER 40

static hk_store *st;
static _Atomic int64_t clock_now = ST_T0;
static _Atomic int done, errors;
static _Atomic int acked0; /* enroller 0's acknowledged count */
static int erased[PER];    /* written by the eraser only */

static int64_t tick_clock(void *user)
{
	(void)user;
	return atomic_load(&clock_now);
}

static void fail(const char *what, hk_status s)
{
	atomic_fetch_add(&errors, 1);
	fprintf(stderr, "FAIL: %s: %d %s\n", what, s, hk_last_error());
}

static void *enroller(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < PER; i++) {
		char name[32];
		snprintf(name, sizeof name, "e%d-%d", id, i);
		float v[2 * DIM];
		st_vec(v, DIM, (uint64_t)(id * 1000 + i));
		st_vec(v + DIM, DIM, (uint64_t)(id * 1000 + i + 500));
		hk_consent c = st_consent(name, atomic_load(&clock_now));
		if (i % 7 == 3)
			c.expires = atomic_load(&clock_now) + 5; /* expires soon */
		hk_status s = hk_store_enroll(st, &c, v, 1 + (size_t)(i % 2), NULL);
		if (s)
			fail("enroll", s);
		else if (id == 0)
			atomic_store(&acked0, i + 1);
	}
	return NULL;
}

static void *querier(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!atomic_load(&done)) {
		int id = (int)(rand_r(&seed) % ENROLLERS), i = (int)(rand_r(&seed) % PER);
		char name[32];
		snprintf(name, sizeof name, "e%d-%d", id, i);
		float q[DIM], score;
		int match;
		st_vec(q, DIM, (uint64_t)(id * 1000 + i));
		hk_status s = hk_store_verify(st, name, q, 0.9f, HK_SOURCE_STREAM,
		                              &score, &match);
		if (s && HK_STATUS_PRIMARY(s) != HK_E_NOT_FOUND)
			fail("verify", s);
		if (!s && !match)
			fail("verify: own template did not match", s);
		hk_store_match m[3];
		size_t n;
		s = hk_store_identify(st, q, 0.5f, HK_SOURCE_STREAM, 3, m, &n);
		if (s)
			fail("identify", s);
	}
	return NULL;
}

static void *eraser(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER; i += 3) {
		while (atomic_load(&acked0) <= i)
			usleep(100);
		char name[32];
		snprintf(name, sizeof name, "e0-%d", i);
		hk_erasure_receipt r;
		hk_status s = hk_store_erase(st, name, &r);
		if (s == HK_OK)
			erased[i] = 1;
		else if (HK_STATUS_PRIMARY(s) != HK_E_NOT_FOUND)
			fail("erase", s);
	}
	return NULL;
}

static void *housekeeper(void *arg)
{
	(void)arg;
	for (int round = 0; !atomic_load(&done); round++) {
		usleep(2000);
		atomic_fetch_add(&clock_now, 1);
		hk_store_info info;
		hk_status s = hk_store_get_info(st, &info);
		if (s)
			fail("info", s);
		if (round % 5 == 0 && (s = hk_store_compact(st)))
			fail("compact", s);
		if (round % 7 == 0) {
			hk_audit_report r;
			if ((s = hk_store_audit_verify(st, &r)))
				fail("audit", s);
		}
		size_t n;
		if ((s = hk_store_expire(st, &n)))
			fail("expire", s);
	}
	return NULL;
}

int main(void)
{
	char dir[256];
	st_tmpdir(dir, sizeof dir);
	uint8_t key[32];
	st_key(key, 7);
	hk_store_params p;
	st_params(&p, key, DIM, NULL);
	p.clock = tick_clock;
	p.policy.allow_identify = 1;
	p.policy.inactivity_limit_s = 100000;
	p.commit_window_us = 50;
	hk_status s = hk_store_open(dir, &p, &st);
	if (s) {
		fprintf(stderr, "open: %s\n", hk_last_error());
		return 1;
	}
	pthread_t th[ENROLLERS + 4];
	int n = 0;
	for (int i = 0; i < ENROLLERS; i++)
		pthread_create(&th[n++], NULL, enroller, (void *)(intptr_t)i);
	pthread_create(&th[n++], NULL, querier, (void *)(uintptr_t)11);
	pthread_create(&th[n++], NULL, querier, (void *)(uintptr_t)12);
	pthread_create(&th[n++], NULL, eraser, NULL);
	pthread_create(&th[n++], NULL, housekeeper, NULL);
	for (int i = 0; i < ENROLLERS; i++)
		pthread_join(th[i], NULL);
	pthread_join(th[ENROLLERS + 2], NULL); /* eraser */
	atomic_store(&done, 1);
	for (int i = ENROLLERS; i < n; i++)
		if (i != ENROLLERS + 2)
			pthread_join(th[i], NULL);
	if ((s = hk_store_close(st)))
		fail("close", s);

	/* reopen: the picture must match what was acknowledged */
	s = hk_store_open(dir, &p, &st);
	if (s) {
		fprintf(stderr, "reopen: %s\n", hk_last_error());
		return 1;
	}
	int checked = 0;
	for (int id = 0; id < ENROLLERS; id++)
		for (int i = 0; i < PER; i++) {
			if (i % 7 == 3)
				continue; /* expired by now */
			char name[32];
			snprintf(name, sizeof name, "e%d-%d", id, i);
			float q[DIM], score = 0;
			int match = 0;
			st_vec(q, DIM, (uint64_t)(id * 1000 + i));
			s = hk_store_verify(st, name, q, 0.99f, HK_SOURCE_DESK, &score,
			                    &match);
			int gone = HK_STATUS_PRIMARY(s) == HK_E_NOT_FOUND;
			if (id == 0 && erased[i] ? !gone : (s || !match))
				fail(name, s);
			checked++;
		}
	hk_audit_report r;
	if ((s = hk_store_audit_verify(st, &r)))
		fail("audit after reopen", s);
	hk_store_close(st);
	st_rmrf(dir);
	printf("tsan_store: %d subjects checked, %llu audit entries, %d failed\n",
	       checked, (unsigned long long)r.entries, atomic_load(&errors));
	return atomic_load(&errors) ? 1 : 0;
}
