/* In-memory gallery: search against brute force, removal, compaction,
 * batches, verification, bad input, concurrency. */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "test_vec.h"

static uint64_t rng_state;
static double urand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return ((rng_state >> 11) & ((1ull << 53) - 1)) * 0x1.0p-53;
}
static float nrand(void)
{
	double u = urand() + 1e-12, v = urand();
	return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}
static void rand_vec(float *v, int d)
{
	for (int i = 0; i < d; i++)
		v[i] = nrand();
}

typedef struct ref {
	int d;
	size_t n;
	float *v;  /* normalised */
	int *subj; /* subject number */
	hk_template_id *id;
	int *live;
} ref;

static hk_gallery *make(int d, uint32_t scan, uint32_t rerank, uint32_t threads)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = (uint32_t)d;
	p.scan_type = scan;
	p.rerank = rerank;
	p.threads = threads;
	p.huge_pages = HK_HUGE_OFF;
	hk_gallery *g = NULL;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_OK, "%s", hk_last_error());
	return g;
}

/* Fill g and r with n templates of nsubj subjects (round robin). */
static void fill(hk_gallery *g, ref *r, int d, size_t n, int nsubj)
{
	r->d = d;
	r->n = n;
	r->v = malloc(n * d * sizeof(float) + 1);
	r->subj = malloc(n * sizeof(int) + 1);
	r->id = malloc(n * sizeof(hk_template_id) + 1);
	r->live = malloc(n * sizeof(int) + 1);
	char name[32];
	for (size_t i = 0; i < n; i++) {
		float *v = r->v + i * d;
		rand_vec(v, d);
		for (int j = 0; j < d; j++)
			v[j] *= 3.5f; /* not normalised on purpose */
		r->subj[i] = (int)(i % (size_t)nsubj);
		snprintf(name, sizeof name, "subject-%d", r->subj[i]);
		cr_assert_eq(hk_gallery_add(g, name, v, &r->id[i]), HK_OK, "%s",
		             hk_last_error());
		tv_unit(v, d);
		r->live[i] = 1;
	}
}

static void ref_free(ref *r)
{
	free(r->v);
	free(r->subj);
	free(r->id);
	free(r->live);
}

/* Brute-force top-k subjects (best template each), ties by lower id. */
static size_t brute(const ref *r, const float *q, size_t k, float *sc,
                    hk_template_id *ids)
{
	int nsub = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->subj[i] + 1 > nsub)
			nsub = r->subj[i] + 1;
	double *best = malloc((nsub + 1) * sizeof *best);
	hk_template_id *bid = malloc((nsub + 1) * sizeof *bid);
	for (int s = 0; s < nsub; s++) {
		best[s] = -INFINITY;
		bid[s] = HK_NO_ID;
	}
	float qn[4096];
	memcpy(qn, q, r->d * sizeof(float));
	tv_unit(qn, r->d);
	for (size_t i = 0; i < r->n; i++) {
		if (!r->live[i])
			continue;
		double dot = 0;
		for (int j = 0; j < r->d; j++)
			dot += (double)qn[j] * r->v[i * r->d + j];
		int s = r->subj[i];
		if (dot > best[s] || (dot == best[s] && r->id[i] < bid[s])) {
			best[s] = dot;
			bid[s] = r->id[i];
		}
	}
	size_t out = 0;
	for (; out < k; out++) {
		int pick = -1;
		for (int s = 0; s < nsub; s++) {
			if (bid[s] == HK_NO_ID)
				continue;
			if (pick < 0 || best[s] > best[pick] ||
			    (best[s] == best[pick] && bid[s] < bid[pick]))
				pick = s;
		}
		if (pick < 0)
			break;
		sc[out] = (float)best[pick];
		ids[out] = bid[pick];
		bid[pick] = HK_NO_ID;
	}
	for (size_t o = out; o < k; o++) {
		sc[o] = -INFINITY;
		ids[o] = HK_NO_ID;
	}
	free(best);
	free(bid);
	return out;
}

static void check_against_brute(hk_gallery *g, const ref *r, size_t k,
                                int nq)
{
	float q[4096], s1[64], s2[64];
	hk_template_id i1[64], i2[64];
	for (int t = 0; t < nq; t++) {
		rand_vec(q, r->d);
		cr_assert_eq(hk_gallery_search(g, q, k, s1, i1), HK_OK, "%s",
		             hk_last_error());
		brute(r, q, k, s2, i2);
		for (size_t o = 0; o < k; o++) {
			cr_assert_eq(i1[o], i2[o], "query %d rank %zu: id %lld vs %lld (%f vs %f)",
			             t, o, (long long)i1[o], (long long)i2[o], s1[o], s2[o]);
			if (i2[o] == HK_NO_ID)
				cr_assert(isinf(s1[o]) && s1[o] < 0);
			else
				cr_assert_float_eq(s1[o], s2[o], 2e-6);
		}
	}
}

Test(gallery, exact_when_rerank_covers_all)
{
	/* the int8 scan re-scores only candidates whose error bound reaches
	 * the k-th subject so far: still the exact result, also with several
	 * templates per subject (700 or 70 subjects) */
	const uint32_t scans[] = {HK_SCAN_INT8, HK_SCAN_FP16, HK_SCAN_FP32};
	const int dims[] = {7, 128, 192};
	for (int si = 0; si < 3; si++)
		for (int di = 0; di < 3; di++)
			for (int ns = 700; ns >= 70; ns /= 10) {
				rng_state = 42 + si * 10 + di + (uint64_t)ns;
				hk_gallery *g = make(dims[di], scans[si], 4096, 2);
				ref r;
				fill(g, &r, dims[di], 700, ns);
				check_against_brute(g, &r, 10, 20);
				hk_gallery_destroy(g);
				ref_free(&r);
			}
}

Test(gallery, default_rerank_recall)
{
	/* 20000 random templates, d=192: int8 scan + fp32 re-rank at the
	 * default rerank must find the exact top-10 almost always */
	rng_state = 7;
	hk_gallery *g = make(192, HK_SCAN_INT8, 0, 2);
	ref r;
	fill(g, &r, 192, 20000, 20000);
	float q[192], s1[10], s2[10];
	hk_template_id i1[10], i2[10];
	int hit = 0, total = 0;
	for (int t = 0; t < 50; t++) {
		rand_vec(q, 192);
		cr_assert_eq(hk_gallery_search(g, q, 10, s1, i1), HK_OK);
		brute(&r, q, 10, s2, i2);
		for (int a = 0; a < 10; a++) {
			total++;
			for (int b = 0; b < 10; b++)
				hit += i1[a] == i2[b];
		}
	}
	cr_assert_geq((double)hit / total, 0.999, "recall@10 = %f", (double)hit / total);
	hk_gallery_destroy(g);
	ref_free(&r);
}

Test(gallery, several_templates_per_subject)
{
	rng_state = 3;
	hk_gallery *g = make(64, HK_SCAN_INT8, 0, 1);
	ref r;
	fill(g, &r, 64, 900, 100); /* 9 templates each */
	cr_assert_eq(hk_gallery_size(g), 900);
	cr_assert_eq(hk_gallery_subject_count(g), 100);
	/* query = one template exactly: its subject first with score 1 */
	float s[5];
	hk_template_id ids[5];
	cr_assert_eq(hk_gallery_search(g, r.v + 123 * 64, 5, s, ids), HK_OK);
	cr_assert_eq(ids[0], r.id[123]);
	cr_assert_float_eq(s[0], 1.0f, 1e-5);
	char name[64];
	for (int a = 0; a < 5; a++)
		for (int b = a + 1; b < 5; b++) {
			char n2[64];
			hk_gallery_subject_of(g, ids[a], name, sizeof name);
			hk_gallery_subject_of(g, ids[b], n2, sizeof n2);
			cr_assert_str_neq(name, n2, "subject listed twice");
		}
	check_against_brute(g, &r, 10, 10);
	hk_gallery_destroy(g);
	ref_free(&r);
}

Test(gallery, ties_empty_and_padding)
{
	hk_gallery *g = make(16, HK_SCAN_INT8, 0, 2);
	float v[16] = {1, 2, 3};
	float s[4];
	hk_template_id ids[4];
	/* empty gallery: all padding */
	cr_assert_eq(hk_gallery_search(g, v, 4, s, ids), HK_OK);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ids[i], HK_NO_ID);
		cr_assert(isinf(s[i]) && s[i] < 0);
	}
	hk_template_id a, b, c;
	cr_assert_eq(hk_gallery_add(g, "b", v, &a), HK_OK);
	cr_assert_eq(hk_gallery_add(g, "a", v, &b), HK_OK);
	cr_assert_eq(hk_gallery_add(g, "c", v, &c), HK_OK);
	cr_assert(a < b && b < c);
	cr_assert_eq(hk_gallery_search(g, v, 4, s, ids), HK_OK);
	cr_assert_eq(ids[0], a); /* equal scores: lower id first */
	cr_assert_eq(ids[1], b);
	cr_assert_eq(ids[2], c);
	cr_assert_eq(ids[3], HK_NO_ID);
	cr_assert_float_eq(s[0], 1.0f, 1e-6);
	hk_gallery_destroy(g);
}

Test(gallery, remove_and_compact)
{
	rng_state = 11;
	hk_gallery *g = make(96, HK_SCAN_INT8, 100000, 2);
	ref r;
	fill(g, &r, 96, 3000, 1000);
	/* remove every 3rd template and all of subject 5 */
	for (size_t i = 0; i < r.n; i += 3) {
		cr_assert_eq(hk_gallery_remove(g, r.id[i]), HK_OK);
		cr_assert_eq(hk_gallery_remove(g, r.id[i]), HK_E_NOT_FOUND);
		r.live[i] = 0;
	}
	size_t nrem = 0;
	cr_assert_eq(hk_gallery_remove_subject(g, "subject-5", &nrem), HK_OK);
	for (size_t i = 0; i < r.n; i++)
		if (r.subj[i] == 5 && r.live[i]) {
			r.live[i] = 0;
			nrem--;
		}
	cr_assert_eq(nrem, 0);
	cr_assert_eq(hk_gallery_remove_subject(g, "subject-5", NULL), HK_E_NOT_FOUND);
	size_t live = 0;
	for (size_t i = 0; i < r.n; i++)
		live += r.live[i];
	cr_assert_eq(hk_gallery_size(g), live);
	check_against_brute(g, &r, 10, 20);
	/* a removed template is gone from every lookup */
	float out[96];
	cr_assert_eq(hk_gallery_get(g, r.id[0], out), HK_E_NOT_FOUND);
	char nm[64];
	cr_assert_eq(hk_gallery_subject_of(g, r.id[0], nm, sizeof nm), HK_E_NOT_FOUND);
	float sc;
	cr_assert_eq(hk_gallery_verify(g, "subject-5", r.v, &sc, NULL), HK_E_NOT_FOUND);

	hk_gallery_info before, after;
	hk_gallery_get_info(g, &before);
	cr_assert_eq(hk_gallery_compact(g), HK_OK);
	hk_gallery_get_info(g, &after);
	cr_assert_eq(before.slots, 3000);
	cr_assert_eq(after.slots, live);
	cr_assert_eq(after.live, live);
	cr_assert_eq(hk_gallery_size(g), live);
	check_against_brute(g, &r, 10, 20);
	/* ids survive compaction; template bytes round-trip */
	cr_assert_eq(hk_gallery_get(g, r.id[1], out), HK_OK);
	for (int j = 0; j < 96; j++)
		cr_assert_float_eq(out[j], r.v[96 + j], 1e-6);
	/* adding after compaction keeps ids increasing */
	hk_template_id nid;
	cr_assert_eq(hk_gallery_add(g, "new", r.v, &nid), HK_OK);
	cr_assert_gt(nid, r.id[r.n - 1]);
	hk_gallery_destroy(g);
	ref_free(&r);
}

Test(gallery, batch_equals_single_and_threads_agree)
{
	const uint32_t scans[] = {HK_SCAN_INT8, HK_SCAN_FP16, HK_SCAN_FP32};
	for (int si = 0; si < 3; si++) {
		rng_state = 99 + si;
		hk_gallery *g1 = make(192, scans[si], 0, 1);
		hk_gallery *g2 = make(192, scans[si], 0, 2);
		ref r1, r2;
		uint64_t keep = rng_state;
		fill(g1, &r1, 192, 5000, 5000);
		rng_state = keep;
		fill(g2, &r2, 192, 5000, 5000);
		enum { NQ = 70, K = 7 };
		float *q = malloc(NQ * 192 * sizeof(float));
		rand_vec(q, NQ * 192);
		float sb[NQ * K], s1[K], s2[K];
		hk_template_id ib[NQ * K], i1[K], i2[K];
		cr_assert_eq(hk_gallery_search_batch(g2, q, NQ, K, sb, ib), HK_OK, "%s",
		             hk_last_error());
		for (int t = 0; t < NQ; t++) {
			cr_assert_eq(hk_gallery_search(g1, q + t * 192, K, s1, i1), HK_OK);
			cr_assert_eq(hk_gallery_search(g2, q + t * 192, K, s2, i2), HK_OK);
			for (int o = 0; o < K; o++) {
				cr_assert_eq(i1[o], i2[o], "threads 1 vs 2, q %d rank %d", t, o);
				cr_assert_eq(s1[o], s2[o]);
				cr_assert_eq(ib[t * K + o], i2[o], "batch vs single, q %d rank %d", t, o);
				cr_assert_eq(sb[t * K + o], s2[o]);
			}
		}
		free(q);
		hk_gallery_destroy(g1);
		hk_gallery_destroy(g2);
		ref_free(&r1);
		ref_free(&r2);
	}
}

Test(gallery, verify_best_template)
{
	rng_state = 5;
	hk_gallery *g = make(32, HK_SCAN_INT8, 0, 1);
	ref r;
	fill(g, &r, 32, 40, 4);
	float sc;
	hk_template_id bid;
	cr_assert_eq(hk_gallery_verify(g, "subject-2", r.v + 6 * 32, &sc, &bid), HK_OK);
	cr_assert_eq(bid, r.id[6]);
	cr_assert_float_eq(sc, 1.0f, 1e-5);
	/* against another subject: its best template, computed by hand */
	double best = -2;
	hk_template_id want = HK_NO_ID;
	for (size_t i = 0; i < r.n; i++) {
		if (r.subj[i] != 1)
			continue;
		double d = 0;
		for (int j = 0; j < 32; j++)
			d += (double)r.v[6 * 32 + j] * r.v[i * 32 + j];
		if (d > best) {
			best = d;
			want = r.id[i];
		}
	}
	cr_assert_eq(hk_gallery_verify(g, "subject-1", r.v + 6 * 32, &sc, &bid), HK_OK);
	cr_assert_eq(bid, want);
	cr_assert_float_eq(sc, (float)best, 1e-5);
	cr_assert_eq(hk_gallery_verify(g, "nobody", r.v, &sc, &bid), HK_E_NOT_FOUND);
	hk_gallery_destroy(g);
	ref_free(&r);
}

Test(gallery, bad_input)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	hk_gallery *g = NULL;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_E_INVALID); /* dim 0 */
	cr_assert_null(g);
	cr_assert_eq(hk_gallery_create(NULL, &g), HK_E_INVALID);
	p.dim = 8;
	p.scan_type = 9;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_E_INVALID);
	g = make(8, HK_SCAN_INT8, 0, 1);
	float v[8] = {1, 0, 0, 0, 0, 0, 0, 0}, z[8] = {0};
	float nanv[8] = {1, NAN}, infv[8] = {INFINITY};
	cr_assert_eq(hk_gallery_add(g, "x", z, NULL), HK_E_RANGE);
	cr_assert_eq(hk_gallery_add(g, "x", nanv, NULL), HK_E_RANGE);
	cr_assert(strstr(hk_last_error(), "component 1") != NULL, "%s", hk_last_error());
	cr_assert_eq(hk_gallery_add(g, "x", infv, NULL), HK_E_RANGE);
	cr_assert_eq(hk_gallery_add(g, "", v, NULL), HK_E_INVALID);
	cr_assert_eq(hk_gallery_add(g, NULL, v, NULL), HK_E_INVALID);
	cr_assert_eq(hk_gallery_add(g, "x", NULL, NULL), HK_E_INVALID);
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[299] = 0;
	cr_assert_eq(hk_gallery_add(g, longname, v, NULL), HK_E_INVALID);
	longname[HK_SUBJECT_MAX] = 0;
	cr_assert_eq(hk_gallery_add(g, longname, v, NULL), HK_OK);
	cr_assert_eq(hk_gallery_size(g), 1); /* failed adds left nothing */
	float s[2];
	hk_template_id ids[2];
	cr_assert_eq(hk_gallery_search(g, nanv, 2, s, ids), HK_E_RANGE);
	cr_assert_eq(hk_gallery_search(g, v, 0, s, ids), HK_E_INVALID);
	cr_assert_eq(hk_gallery_search(g, v, 2, NULL, ids), HK_E_INVALID);
	cr_assert_eq(hk_gallery_search(NULL, v, 2, s, ids), HK_E_INVALID);
	cr_assert_eq(hk_gallery_search_batch(g, v, 0, 2, s, ids), HK_OK);
	char small[4];
	cr_assert_eq(hk_gallery_search(g, v, 1, s, ids), HK_OK);
	cr_assert_eq(hk_gallery_subject_of(g, ids[0], small, sizeof small), HK_E_OVERFLOW);
	cr_assert_eq(hk_gallery_remove(g, 12345), HK_E_NOT_FOUND);
	hk_gallery_destroy(g);
	hk_gallery_destroy(NULL);
}

/* ---- concurrency: searchers with one writer (run under TSan too) ---- */

typedef struct conc {
	hk_gallery *g;
	int stop;
	int errors;
	pthread_mutex_t mu;
} conc;

static void *searcher(void *v)
{
	conc *c = v;
	float q[64], s[5];
	hk_template_id ids[5];
	uint64_t st = 1234 + (uintptr_t)pthread_self() % 1000;
	for (int it = 0; it < 300; it++) {
		for (int j = 0; j < 64; j++) {
			st = st * 6364136223846793005ull + 1;
			q[j] = (float)((int)(st >> 40) % 200 - 100);
		}
		q[0] += 0.5f;
		hk_status r = hk_gallery_search(c->g, q, 5, s, ids);
		int bad = r != HK_OK;
		for (int o = 0; o < 5 && !bad; o++)
			bad = ids[o] != HK_NO_ID && !(s[o] >= -1.001f && s[o] <= 1.001f);
		if (bad) {
			pthread_mutex_lock(&c->mu);
			c->errors++;
			pthread_mutex_unlock(&c->mu);
		}
	}
	return NULL;
}

Test(gallery, concurrent_searches_with_writer)
{
	conc c = {.g = make(64, HK_SCAN_INT8, 0, 2)};
	pthread_mutex_init(&c.mu, NULL);
	rng_state = 17;
	float v[64];
	for (int i = 0; i < 200; i++) {
		rand_vec(v, 64);
		hk_gallery_add(c.g, i % 2 ? "odd" : "even", v, NULL);
	}
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, searcher, &c);
	hk_template_id last = HK_NO_ID;
	for (int i = 0; i < 1500; i++) {
		rand_vec(v, 64);
		char name[16];
		snprintf(name, sizeof name, "w%d", i % 50);
		cr_assert_eq(hk_gallery_add(c.g, name, v, &last), HK_OK);
		if (i % 3 == 0)
			cr_assert_eq(hk_gallery_remove(c.g, last), HK_OK);
		if (i % 500 == 499)
			cr_assert_eq(hk_gallery_compact(c.g), HK_OK);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(c.errors, 0);
	cr_assert_eq(hk_gallery_size(c.g), 200 + 1000);
	hk_gallery_destroy(c.g);
	pthread_mutex_destroy(&c.mu);
}
