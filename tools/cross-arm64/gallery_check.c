/*
 * Cross-arm64 check (tools/cross-arm64.sh): the in-memory gallery's search,
 * one query at a time and as a batch of 64, on whatever tier dispatch picks
 * (run under qemu; HERKEN_MAX_ISA=scalar gives the reference). Checks in
 * the run: batch == single (ids equal, scores within 1e-6), recall@10
 * against a brute-force double-precision top 10 >= 0.98, and each query
 * made from a stored template (plus noise) finds it first. Prints every
 * result as "r CONFIG QUERY RANK ID SCORE" so that the script can compare
 * this tier with the scalar run line by line. Exit 0 = all checks passed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "hk_simd.h"

static unsigned long long st = 0x9e3779b97f4a7c15ull;
static double unif(void)
{
	st ^= st << 13; st ^= st >> 7; st ^= st << 17;
	return (double)(st >> 11) / 9007199254740992.0;
}
static float gauss(void)
{
	double u = unif() + 1e-12, v = unif();
	return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

enum { NQ = 64, K = 10 };
static int fails;
#define CHECK(c, ...) do { if (!(c)) { if (fails++ < 20) { printf(__VA_ARGS__); printf("\n"); } } } while (0)

static void norm(float *v, unsigned d)
{
	double s = 0;
	for (unsigned i = 0; i < d; i++) s += (double)v[i] * v[i];
	for (unsigned i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}

static void run(int cfg, unsigned n, unsigned d, unsigned threads, hk_scan_type scan)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = d;
	p.threads = threads;
	p.scan_type = scan;
	p.huge_pages = HK_HUGE_OFF;
	hk_gallery *g = NULL;
	if (hk_gallery_create(&p, &g) != HK_OK) {
		printf("config %d: create: %s\n", cfg, hk_last_error());
		fails++;
		return;
	}
	float *v = malloc((size_t)n * d * sizeof *v), *q = malloc((size_t)NQ * d * sizeof *q);
	hk_template_id *tid = malloc(n * sizeof *tid);
	char name[24];
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < d; j++) v[(size_t)i * d + j] = gauss();
		norm(v + (size_t)i * d, d);
		snprintf(name, sizeof name, "s%u", i);
		if (hk_gallery_add(g, name, v + (size_t)i * d, &tid[i]) != HK_OK) {
			printf("config %d: add: %s\n", cfg, hk_last_error());
			fails++;
			return;
		}
	}
	/* even queries: a stored template plus noise; odd ones: random */
	for (unsigned t = 0; t < NQ; t++) {
		unsigned src = (t * 7919u) % n;
		for (unsigned j = 0; j < d; j++)
			q[(size_t)t * d + j] = t % 2 ? gauss() : v[(size_t)src * d + j] + 0.3f * gauss() / sqrtf((float)d);
		norm(q + (size_t)t * d, d);
	}
	static float s1[NQ * K], sb[NQ * K];
	static hk_template_id i1[NQ * K], ib[NQ * K];
	for (unsigned t = 0; t < NQ; t++)
		CHECK(hk_gallery_search(g, q + (size_t)t * d, K, s1 + t * K, i1 + t * K) == HK_OK,
		      "config %d: search: %s", cfg, hk_last_error());
	CHECK(hk_gallery_search_batch(g, q, NQ, K, sb, ib) == HK_OK, "config %d: batch: %s", cfg, hk_last_error());
	unsigned hit = 0;
	double *ex = malloc(n * sizeof *ex);
	for (unsigned t = 0; t < NQ; t++) {
		for (unsigned r = 0; r < K; r++) {
			CHECK(i1[t * K + r] == ib[t * K + r] && fabsf(s1[t * K + r] - sb[t * K + r]) <= 1e-6f,
			      "config %d query %u rank %u: single %lld %.7f, batch %lld %.7f", cfg, t, r,
			      (long long)i1[t * K + r], s1[t * K + r], (long long)ib[t * K + r], sb[t * K + r]);
			printf("r %d %u %u %lld %.7f\n", cfg, t, r, (long long)ib[t * K + r], sb[t * K + r]);
		}
		if (t % 2 == 0)
			CHECK(ib[t * K] == tid[(t * 7919u) % n], "config %d query %u: stored template not first", cfg, t);
		/* brute-force top K in double */
		for (unsigned i = 0; i < n; i++) {
			double s = 0;
			for (unsigned j = 0; j < d; j++) s += (double)q[(size_t)t * d + j] * v[(size_t)i * d + j];
			ex[i] = s;
		}
		for (unsigned r = 0; r < K; r++) {
			unsigned best = 0;
			for (unsigned i = 1; i < n; i++) if (ex[i] > ex[best]) best = i;
			for (unsigned r2 = 0; r2 < K; r2++) hit += ib[t * K + r2] == tid[best];
			ex[best] = -INFINITY;
		}
	}
	double recall = (double)hit / (NQ * K);
	printf("config %d: n %u dim %u threads %u scan %s: recall@%d %.4f\n", cfg, n, d, threads,
	       scan == HK_SCAN_FP16 ? "fp16" : "int8", K, recall);
	CHECK(recall >= 0.98, "config %d: recall@%d %.4f < 0.98", cfg, K, recall);
	free(ex); free(v); free(q); free(tid);
	hk_gallery_destroy(g);
}

int main(void)
{
	printf("dispatch picks: %s\n", hk__kernels()->name);
	run(0, 5003, 192, 1, HK_SCAN_INT8);
	run(1, 3001, 128, 2, HK_SCAN_INT8);
	run(2, 2003, 192, 1, HK_SCAN_FP16);
	printf("gallery search (single and batch of %d) on %s: %s (%d failures)\n", NQ,
	       hk__kernels()->name, fails ? "FAIL" : "ok", fails);
	return fails != 0;
}
