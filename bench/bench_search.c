/*
 * herken-bench search: exact top-k over synthetic galleries, herken against
 * FAISS (IndexFlatIP, IndexScalarQuantizer 8-bit / fp16) and hnswlib, all
 * on the same data in the same run. Every implementation's results are
 * checked against an exact fp32 ground truth (recall@10) before its speed
 * is reported; an exact method that misses its recall floor fails the run.
 *
 * Memory: the data set is never held whole. Rows come in chunks of CHUNK
 * rows, each generated from its own seed, so any chunk can be made again:
 * the ground truth streams the chunks once, each gallery build streams them
 * again, FAISS indexes are filled chunk by chunk. Only hnswlib (one build
 * call) needs the whole set; it, the FAISS peers and herken-4k (a second
 * gallery build) run up to --peer-max-n. Each herken row
 * reports the gallery's resident bytes (hk_gallery_get_info) and the
 * process's peak RSS over that build and search.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"
#include "herken.h"
#include "bench_q4.h"
#include "peers.h"

#define K 10
#define MAXL 8

uint64_t hkb_probe_read_avx2(const void *buf, size_t bytes);

typedef struct opts {
	long n[MAXL], dim[MAXL], batch[MAXL], threads[MAXL];
	int nn, nd, nb, nt;
	long queries;
	uint64_t seed;
	int json;
	int data_uniform, data_clustered;
	unsigned impl_mask;
	long rerank;
	int hnsw_m, hnsw_efc;
	uint32_t exact[4];
	int nx;
	const char *exact_dir;
	long peer_max_n;
} opts;

#define CHUNK 65536u /* rows generated at a time: 48 MiB at d=192 */

static const char *exact_names[] = {"", "fp32", "fp16", "file"};

enum {
	IMPL_HERKEN = 1, IMPL_HERKEN_4K = 2, IMPL_FLAT = 4, IMPL_SQ8 = 8,
	IMPL_FP16 = 16, IMPL_HNSW = 32, IMPL_Q4 = 64, IMPL_I8 = 128,
};

static const struct {
	const char *name;
	unsigned bit;
} impl_names[] = {
	{"herken", IMPL_HERKEN}, {"herken-4k", IMPL_HERKEN_4K},
	{"faiss-flat", IMPL_FLAT}, {"faiss-sq8", IMPL_SQ8},
	{"faiss-fp16", IMPL_FP16}, {"hnswlib", IMPL_HNSW},
	{"herken-q4", IMPL_Q4}, {"herken-i8", IMPL_I8},
};

/* ---------------------------------------------------------------- */

static void normalise_rows(float *x, size_t n, size_t d)
{
	for (size_t i = 0; i < n; i++) {
		double s = 0;
		float *r = x + i * d;
		for (size_t j = 0; j < d; j++)
			s += (double)r[j] * r[j];
		float inv = (float)(1.0 / sqrt(s));
		for (size_t j = 0; j < d; j++)
			r[j] *= inv;
	}
}

/* count N(0,1) values (Box-Muller, both halves) */
static void normals(hkb_rng *r, float *out, size_t count)
{
	for (size_t i = 0; i < count; i += 2) {
		double u1 = hkb_rng_uniform(r), u2 = hkb_rng_uniform(r);
		if (u1 < 1e-300)
			u1 = 1e-300;
		double m = sqrt(-2.0 * log(u1)), a = 2.0 * M_PI * u2;
		out[i] = (float)(m * cos(a));
		if (i + 1 < count)
			out[i + 1] = (float)(m * sin(a));
	}
}

/* One data set: n rows of d, uniform or clustered, from seed. */
typedef struct dataset {
	size_t n, d;
	int clustered;
	uint64_t seed;
} dataset;

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

/* Identity c of a clustered set: a unit vector made from its own seed, so
 * no table of n/10 centres is kept. */
static void centre(const dataset *ds, size_t c, float *out)
{
	hkb_rng r;
	hkb_rng_seed(&r, mix(ds->seed, 0xce47e000000000ull + c));
	normals(&r, out, ds->d);
	normalise_rows(out, 1, ds->d);
}

/*
 * uniform: points uniform on the sphere. clustered: n/10 "identities"
 * (centres uniform on the sphere), each sample = centre + noise with
 * expected cosine ~0.7 to its centre — close to how face embeddings of one
 * person gather. Rows come from stream `stream` (chunk number, or ~0 for
 * the queries); tmp holds d floats.
 */
static void gen(const dataset *ds, uint64_t stream, float *x, size_t rows,
                float *tmp)
{
	hkb_rng r;
	hkb_rng_seed(&r, mix(ds->seed, stream));
	size_t d = ds->d, ncent = ds->n / 10 ? ds->n / 10 : 1;
	double s = 1.02 / sqrt((double)d);
	for (size_t i = 0; i < rows; i++) {
		float *row = x + i * d;
		normals(&r, row, d);
		if (ds->clustered) {
			centre(ds, hkb_rng_next(&r) % ncent, tmp);
			for (size_t j = 0; j < d; j++)
				row[j] = tmp[j] + (float)s * row[j];
		}
	}
	normalise_rows(x, rows, d);
}

/* Chunk c of the data set into x[CHUNK * d]; returns its row count. */
static size_t gen_chunk(const dataset *ds, size_t c, float *x, float *tmp)
{
	size_t lo = c * CHUNK, cnt = ds->n - lo < CHUNK ? ds->n - lo : CHUNK;
	gen(ds, c, x, cnt, tmp);
	return cnt;
}

static size_t nchunks(const dataset *ds) { return (ds->n + CHUNK - 1) / CHUNK; }

/* exact fp32 top-K per query by blocked sgemm over regenerated chunks */
static void ground_truth(const dataset *ds, float *x, float *tmp,
                         const float *q, size_t nq, int64_t *gt, float *gts)
{
	const size_t B = 16384, d = ds->d;
	float *c = malloc(nq * B * sizeof(float));
	float *best = malloc(nq * K * sizeof(float));
	for (size_t i = 0; i < nq * K; i++) {
		best[i] = -INFINITY;
		gt[i] = -1;
	}
	for (size_t ch = 0; ch < nchunks(ds); ch++) {
		size_t rows = gen_chunk(ds, ch, x, tmp);
		for (size_t b0 = 0; b0 < rows; b0 += B) {
			size_t cnt = rows - b0 < B ? rows - b0 : B, b = ch * CHUNK + b0;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq,
			            (int)cnt, (int)d, 1.0f, q, (int)d, x + b0 * d, (int)d,
			            0.0f, c, (int)B);
			for (size_t j = 0; j < nq; j++) {
				float *bs = best + j * K;
				int64_t *bi = gt + j * K;
				for (size_t i = 0; i < cnt; i++) {
					float sc = c[j * B + i];
					if (!(sc > bs[K - 1]))
						continue;
					int p = K - 1;
					while (p > 0 && sc > bs[p - 1]) {
						bs[p] = bs[p - 1];
						bi[p] = bi[p - 1];
						p--;
					}
					bs[p] = sc;
					bi[p] = (int64_t)(b + i);
				}
			}
		}
		hkb_progress("ground truth", ch * CHUNK + rows, ds->n);
	}
	memcpy(gts, best, nq * K * sizeof(float));
	free(c);
	free(best);
}

static double recall(const int64_t *gt, const int64_t *res, size_t nq)
{
	size_t hit = 0;
	for (size_t j = 0; j < nq; j++)
		for (int a = 0; a < K; a++)
			for (int b = 0; b < K; b++)
				if (res[j * K + a] == gt[j * K + b] && gt[j * K + b] >= 0) {
					hit++;
					break;
				}
	return (double)hit / (double)(nq * K);
}

/* ---------------------------------------------------------------- */
/* bandwidth probe                                                  */

typedef struct probe_arg {
	const char *buf;
	size_t bytes;
	uint64_t sink;
} probe_arg;

static void *probe_thread(void *v)
{
	probe_arg *a = v;
	a->sink = hkb_probe_read_avx2(a->buf, a->bytes);
	return NULL;
}

/* Median GB/s of streaming `bytes` with `threads` threads. */
static double probe_bandwidth(size_t bytes, int threads)
{
	bytes = (bytes + 4095) & ~(size_t)4095;
	char *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return NAN;
	madvise(buf, bytes, MADV_HUGEPAGE);
	memset(buf, 1, bytes);
	double t[7];
	pthread_t th[64];
	probe_arg pa[64];
	size_t per = bytes / (size_t)threads & ~(size_t)127;
	for (int r = 0; r < 7; r++) {
		double t0 = hkb_now();
		for (int i = 0; i < threads; i++) {
			pa[i].buf = buf + per * i;
			pa[i].bytes = per;
			pthread_create(&th[i], NULL, probe_thread, &pa[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		t[r] = hkb_now() - t0;
	}
	munmap(buf, bytes);
	return (double)per * threads / hkb_median(t, 7) / 1e9;
}

/* ---------------------------------------------------------------- */
/* measurement                                                      */

typedef int (*search_fn)(void *ctx, const float *q, size_t nq, float *s,
                         int64_t *ids);

/* cpu_p50_ms: process CPU time per call (all threads). On a shared machine
 * the wall clock also counts the time other processes held the cores; the
 * CPU time of a single-threaded search does not, so its ratio to a peer is
 * the steadier figure. */
typedef struct result {
	double p50_ms, p99_ms, qps, recall, cpu_p50_ms;
	double score_err; /* max |score - fp32 ground truth| where ids agree */
} result;

static double pcpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int measure(search_fn fn, void *ctx, const float *q, size_t nq_total,
                   size_t d, size_t batch, const int64_t *gt, const float *gts,
                   result *out)
{
	size_t calls = nq_total / batch;
	if (calls < 10)
		calls = 10;
	float *s = malloc(batch * K * sizeof(float));
	int64_t *ids = malloc(batch * K * sizeof(int64_t));
	int64_t *res = malloc(nq_total * K * sizeof(int64_t));
	double *t = malloc(calls * sizeof(double)), *tc = malloc(calls * sizeof(double));
	int rc = fn(ctx, q, batch, s, ids); /* warm-up */
	double total = 0;
	for (size_t c = 0; c < calls && rc == 0; c++) {
		size_t off = (c * batch) % nq_total;
		double t0 = hkb_now(), c0 = pcpu();
		rc = fn(ctx, q + off * d, batch, s, ids);
		t[c] = hkb_now() - t0;
		tc[c] = pcpu() - c0;
		total += t[c];
		if (c * batch < nq_total) {
			memcpy(res + off * K, ids, batch * K * sizeof(int64_t));
			for (size_t i = 0; i < batch * K; i++)
				if (ids[i] >= 0 && ids[i] == gt[off * K + i] &&
				    fabs(s[i] - gts[off * K + i]) > out->score_err)
					out->score_err = fabs(s[i] - gts[off * K + i]);
		}
	}
	if (rc == 0) {
		out->recall = recall(gt, res, nq_total);
		out->qps = (double)(calls * batch) / total;
		double *t2 = malloc(calls * sizeof(double));
		memcpy(t2, t, calls * sizeof(double));
		out->p50_ms = hkb_median(t2, calls) * 1e3;
		out->p99_ms = hkb_quantile(t, calls, 0.99) * 1e3;
		out->cpu_p50_ms = hkb_median(tc, calls) * 1e3;
		free(t2);
	}
	free(s);
	free(ids);
	free(res);
	free(t);
	free(tc);
	return rc;
}

typedef struct herken_ctx {
	hk_gallery *g;
	hk_template_id first;
	float *s;
	hk_template_id *ids;
} herken_ctx;

static int herken_search(void *v, const float *q, size_t nq, float *s,
                         int64_t *ids)
{
	herken_ctx *h = v;
	hk_status st = nq == 1 ? hk_gallery_search(h->g, q, K, s, h->ids)
	                       : hk_gallery_search_batch(h->g, q, nq, K, s, h->ids);
	if (st != HK_OK) {
		fprintf(stderr, "herken search: %s\n", hk_last_error());
		return -1;
	}
	/* template ids were assigned in insertion order: row = id - first */
	for (size_t i = 0; i < nq * K; i++)
		ids[i] = h->ids[i] == HK_NO_ID ? -1 : (int64_t)(h->ids[i] - h->first);
	return 0;
}

static int peer_search(void *v, const float *q, size_t nq, float *s,
                       int64_t *ids)
{
	return hkb_peer_search(v, q, nq, K, s, ids);
}

/* ---------------------------------------------------------------- */
/* output                                                           */

typedef struct row {
	char impl[32];
	const char *data;
	long n, dim, batch, threads;
	result r;
	double gbps, probe, build_s;
	const char *pages;
	const char *exact;   /* herken's exact copy, "-" for peers         */
	uint64_t resident;   /* hk_gallery_info.resident_bytes (herken)    */
	uint64_t peak_rss;   /* process VmHWM over this build and search  */
	double rescored;     /* herken-q4: rows re-scored exactly per query */
} row;

static row rows[4096];
static int nrows;
static int failures;

static void print_row(const opts *o, const row *w)
{
	char gb[32] = "", pr[32] = "";
	if (w->gbps > 0)
		snprintf(gb, sizeof gb, "%.1f", w->gbps);
	if (w->probe > 0)
		snprintf(pr, sizeof pr, "%.1f", w->probe);
	char res[32] = "-", peak[32] = "-";
	if (w->resident)
		snprintf(res, sizeof res, "%.0f", (double)w->resident / (double)w->n);
	if (w->peak_rss)
		snprintf(peak, sizeof peak, "%.0f", (double)w->peak_rss / 1048576.0);
	printf("| %-14s | %-9s | %8ld | %4ld | %5ld | %2ld | %9.3f | %9.3f | %10.1f | %6.4f | %6s | %6s | %7.1f | %-5s | %-5s | %7s | %8s |\n",
	       w->impl, w->data, w->n, w->dim, w->batch, w->threads, w->r.p50_ms,
	       w->r.p99_ms, w->r.qps, w->r.recall, gb, pr, w->build_s, w->pages,
	       w->exact, res, peak);
	fflush(stdout);
	if (o->json) {
		fprintf(stdout,
		        "{\"suite\":\"search\",\"impl\":\"%s\",\"data\":\"%s\",\"n\":%ld,\"dim\":%ld,"
		        "\"batch\":%ld,\"threads\":%ld,\"k\":%d,\"p50_ms\":%.6f,\"p99_ms\":%.6f,"
		        "\"cpu_p50_ms\":%.6f,"
		        "\"qps\":%.3f,\"recall_at_10\":%.6f,\"gb_per_s\":%.3f,\"probe_gb_per_s\":%.3f,"
		        "\"build_s\":%.3f,\"isa\":\"%s\",\"pages\":\"%s\",\"exact\":\"%s\","
		        "\"resident_bytes\":%llu,\"resident_bytes_per_template\":%.1f,"
		        "\"peak_rss_bytes\":%llu,\"max_score_error\":%.3g,\"rescored_per_query\":%.1f}\n",
		        w->impl, w->data, w->n, w->dim, w->batch, w->threads, K, w->r.p50_ms,
		        w->r.p99_ms, w->r.cpu_p50_ms, w->r.qps, w->r.recall, w->gbps, w->probe, w->build_s,
		        hk_isa_name(hk_cpu_isa()), w->pages, w->exact,
		        (unsigned long long)w->resident, (double)w->resident / (double)w->n,
		        (unsigned long long)w->peak_rss, w->r.score_err, w->rescored);
		fflush(stdout);
	}
}

static void add_row(const opts *o, row *w)
{
	if (nrows < (int)(sizeof rows / sizeof rows[0]))
		rows[nrows++] = *w;
	print_row(o, w);
}

/* The row of implementation impl measured on the same workload as a (same
 * data, n, dim, batch and, if same_threads, threads); NULL if none ran. */
static const row *peer_of(const row *a, const char *impl, int same_threads)
{
	for (int j = 0; j < nrows; j++) {
		const row *b = &rows[j];
		if (!strcmp(b->impl, impl) && a->n == b->n && a->dim == b->dim &&
		    a->batch == b->batch && (!same_threads || a->threads == b->threads) &&
		    !strcmp(a->data, b->data))
			return b;
	}
	return NULL;
}

static void print_summary(void)
{
	printf("\n**herken vs FAISS IndexFlatIP, same data, same run** (speedup = FAISS p50 / herken p50; qps ratio; cpu: the same over process CPU time per call)\n\n");
	printf("| data | n | dim | batch | threads | herken p50 ms | faiss-flat p50 ms | p50 speedup | qps ratio | herken cpu ms | faiss cpu ms | cpu speedup | herken recall@10 |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < nrows; i++) {
		const row *a = &rows[i], *b;
		if (!strcmp(a->impl, "herken") && (b = peer_of(a, "faiss-flat", 1)))
			printf("| %s | %ld | %ld | %ld | %ld | %.3f | %.3f | %.2fx | %.2fx | %.3f | %.3f | %.2fx | %.4f |\n",
			       a->data, a->n, a->dim, a->batch, a->threads, a->r.p50_ms,
			       b->r.p50_ms, b->r.p50_ms / a->r.p50_ms, a->r.qps / b->r.qps,
			       a->r.cpu_p50_ms, b->r.cpu_p50_ms, b->r.cpu_p50_ms / a->r.cpu_p50_ms,
			       a->r.recall);
	}
	/* the 4-bit first pass against the plain int8 scan (bench_q4.c) */
	for (int i = 0; i < nrows; i++) {
		const row *a = &rows[i], *b;
		if (!strcmp(a->impl, "herken-q4") && (b = peer_of(a, "herken-i8", 0)))
			printf("\n4-bit first pass vs int8 scan: n=%ld dim=%ld batch=%ld: cpu p50 %.3f vs %.3f ms "
			       "(q4 speedup %.2fx), re-scored exactly %.0f rows/query (%.2f %% of n), "
			       "recall@10 %.4f vs %.4f\n",
			       a->n, a->dim, a->batch, a->r.cpu_p50_ms, b->r.cpu_p50_ms,
			       b->r.cpu_p50_ms / a->r.cpu_p50_ms, a->rescored,
			       100.0 * a->rescored / (double)a->n, a->r.recall, b->r.recall);
	}
	/* huge pages vs 4 KiB pages */
	for (int i = 0; i < nrows; i++) {
		const row *b = &rows[i], *a;
		if (!strcmp(b->impl, "herken-4k") && (a = peer_of(b, "herken", 1)))
			printf("\nhuge pages (%s) vs 4 KiB pages: n=%ld dim=%ld batch=%ld threads=%ld: p50 %.3f vs %.3f ms (%.2fx)\n",
			       a->pages, a->n, a->dim, a->batch, a->threads, a->r.p50_ms,
			       b->r.p50_ms, b->r.p50_ms / a->r.p50_ms);
	}
}

/* ---------------------------------------------------------------- */

static long mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static const char *pages_name(uint32_t kind)
{
	return kind == 1 ? "2M" : kind == 2 ? "thp" : "4k";
}

/* VmHWM / VmRSS of this process in bytes (0 if unknown). */
static uint64_t proc_status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long kb = 0;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl) && sscanf(line + kl, ": %llu", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

static uint64_t peak_before; /* VmHWM of the process before the last reset */

/* Restart the peak-RSS counter (VmHWM) at the current RSS. */
static void reset_peak_rss(void)
{
	uint64_t h = proc_status_kb("VmHWM");
	if (h > peak_before)
		peak_before = h;
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

/* Rough resident bytes of a herken gallery, to skip what cannot fit. */
static double herken_need(size_t n, size_t d, uint32_t exact)
{
	size_t d8 = (d + 63) / 64 * 64, d16 = (d + 31) / 32 * 32, d32 = (d + 15) / 16 * 16;
	double per = (double)d8 + 20 + 56; /* scan, slot arrays, subject */
	per += exact == HK_EXACT_FP32 ? 4.0 * d32 : exact == HK_EXACT_FP16 ? 2.0 * d16 : 0;
	return per * (double)n + 0.5e9;
}

static void run_herken(const opts *o, const char *impl, int huge_off,
                       const dataset *ds, float *x, float *tmp, const float *q,
                       const int64_t *gt, const float *gts, const char *data,
                       double *probe_cache)
{
	long n = (long)ds->n, d = (long)ds->d;
	for (int xi = 0; xi < o->nx; xi++)
	for (int ti = 0; ti < o->nt; ti++) {
		uint32_t exact = o->exact[xi];
		double need = herken_need(ds->n, ds->d, exact);
		long avail = mem_available();
		if (avail > 0 && need > 0.85 * (double)avail) {
			printf("\n(skipped %s exact=%s n=%ld dim=%ld: needs ~%.1f GB, %.1f GB available)\n\n",
			       impl, exact_names[exact], n, d, need / 1e9, avail / 1e9);
			continue;
		}
		hk_gallery_params p;
		hk_gallery_default_params(&p);
		p.dim = (uint32_t)d;
		p.threads = (uint32_t)o->threads[ti];
		p.capacity = (uint32_t)n;
		p.rerank = (uint32_t)o->rerank;
		p.huge_pages = huge_off ? HK_HUGE_OFF : HK_HUGE_AUTO;
		p.exact_type = exact;
		p.exact_dir = o->exact_dir;
		reset_peak_rss();
		herken_ctx h = {0};
		if (hk_gallery_create(&p, &h.g) != HK_OK) {
			fprintf(stderr, "herken: %s\n", hk_last_error());
			failures++;
			return;
		}
		double build = 0;
		char name[24];
		for (size_t ch = 0; ch < nchunks(ds); ch++) {
			size_t cnt = gen_chunk(ds, ch, x, tmp); /* not timed */
			double t0 = hkb_now();
			for (size_t r = 0; r < cnt; r++) {
				size_t i = ch * CHUNK + r;
				snprintf(name, sizeof name, "s%zu", i);
				hk_template_id id;
				if (hk_gallery_add(h.g, name, x + r * d, &id) != HK_OK) {
					fprintf(stderr, "herken add: %s\n", hk_last_error());
					failures++;
					hk_gallery_destroy(h.g);
					return;
				}
				if (i == 0)
					h.first = id;
			}
			build += hkb_now() - t0;
			hkb_progress("herken build", ch * CHUNK + cnt, ds->n);
		}
		hk_gallery_info info;
		hk_gallery_get_info(h.g, &info);
		long maxb = 0;
		for (int bi = 0; bi < o->nb; bi++)
			maxb = o->batch[bi] > maxb ? o->batch[bi] : maxb;
		h.ids = malloc((size_t)maxb * K * sizeof(hk_template_id));
		for (int bi = 0; bi < o->nb; bi++) {
			if (huge_off && o->batch[bi] != 1)
				continue;
			row w = {.data = data, .n = n, .dim = d, .batch = o->batch[bi],
			         .threads = o->threads[ti], .build_s = build,
			         .pages = pages_name(info.huge_pages),
			         .exact = exact_names[exact], .resident = info.resident_bytes};
			snprintf(w.impl, sizeof w.impl, "%s", impl);
			if (measure(herken_search, &h, q, (size_t)o->queries, (size_t)d,
			            (size_t)o->batch[bi], gt, gts, &w.r)) {
				failures++;
				continue;
			}
			w.gbps = (double)info.scan_bytes / (w.r.p50_ms * 1e-3) / 1e9;
			w.probe = probe_cache[ti];
			w.peak_rss = proc_status_kb("VmHWM");
			if (w.r.recall < 0.999) {
				fprintf(stderr, "VERIFY FAILED: herken recall@10 %.4f < 0.999\n", w.r.recall);
				failures++;
			}
			add_row(o, &w);
		}
		printf("herken exact=%s n=%ld threads=%ld: resident %.3f GB (%.1f B/template: "
		        "exact copy in RAM %.1f B/template), process RSS %.3f GB, peak %.3f GB\n",
		        exact_names[exact], n, o->threads[ti], info.resident_bytes / 1e9,
		        (double)info.resident_bytes / n, (double)info.exact_resident_bytes / n,
		        proc_status_kb("VmRSS") / 1e9, proc_status_kb("VmHWM") / 1e9);
		free(h.ids);
		hk_gallery_destroy(h.g);
	}
}

static void run_peer(const opts *o, const char *impl, const dataset *ds,
                     float *x, float *tmp, const float *q, const int64_t *gt,
                     const float *gts, const char *data)
{
	long n = (long)ds->n, d = (long)ds->d;
	int is_hnsw = !strcmp(impl, "hnswlib");
	/* FAISS indexes: the data's size again (flat), /2 (fp16), /4 (sq8);
	 * hnswlib also needs the whole set at once for its one build call */
	double need = (double)n * d * (!strcmp(impl, "faiss-sq8") ? 1 : !strcmp(impl, "faiss-fp16") ? 2 : 4);
	if (is_hnsw)
		need = (double)n * (d * 8.0 + o->hnsw_m * 8.0 + 64);
	long avail = mem_available();
	if (n > o->peer_max_n || (avail > 0 && need + 0.5e9 > 0.85 * (double)avail)) {
		printf("\n(skipped %s at n=%ld: above --peer-max-n %ld or needs ~%.1f GB of %.1f GB available)\n\n",
		       impl, n, o->peer_max_n, need / 1e9, avail / 1e9);
		return;
	}
	int maxt = 1;
	for (int ti = 0; ti < o->nt; ti++)
		maxt = o->threads[ti] > maxt ? (int)o->threads[ti] : maxt;
	hkb_peer *p = hkb_peer_create(impl, (int)d, maxt);
	if (!p) {
		fprintf(stderr, "%s: %s\n", impl, hkb_peer_error());
		failures++;
		return;
	}
	fprintf(stderr, "building %s (n=%ld, d=%ld)...\n", impl, n, d);
	double build = 0;
	int rc = 0;
	if (is_hnsw) {
		float *all = malloc((size_t)n * d * sizeof(float));
		for (size_t ch = 0; all && ch < nchunks(ds); ch++)
			gen_chunk(ds, ch, all + ch * CHUNK * d, tmp);
		double t0 = hkb_now();
		rc = !all || hkb_peer_build(p, all, (size_t)n, o->hnsw_m, o->hnsw_efc);
		build = hkb_now() - t0;
		free(all);
	} else {
		/* a FAISS build call adds (after training on the first chunk) */
		for (size_t ch = 0; !rc && ch < nchunks(ds); ch++) {
			size_t cnt = gen_chunk(ds, ch, x, tmp);
			double t0 = hkb_now();
			rc = hkb_peer_build(p, x, cnt, o->hnsw_m, o->hnsw_efc);
			build += hkb_now() - t0;
		}
	}
	if (rc) {
		fprintf(stderr, "%s build: %s\n", impl, hkb_peer_error());
		failures++;
		hkb_peer_destroy(p);
		return;
	}
	const int efs[2] = {64, 128};
	for (int e = 0; e < (is_hnsw ? 2 : 1); e++) {
		hkb_peer_set_ef(p, efs[e]);
		for (int ti = 0; ti < o->nt; ti++) {
			for (int bi = 0; bi < o->nb; bi++) {
				row w = {.data = data, .n = n, .dim = d, .batch = o->batch[bi],
				         .threads = o->threads[ti], .build_s = build, .pages = "-",
				         .exact = "-"};
				if (is_hnsw)
					snprintf(w.impl, sizeof w.impl, "hnswlib-ef%d", efs[e]);
				else
					snprintf(w.impl, sizeof w.impl, "%s", impl);
				hkb_peer_set_threads(p, (int)o->threads[ti]);
				if (measure(peer_search, p, q, (size_t)o->queries, (size_t)d,
				            (size_t)o->batch[bi], gt, gts, &w.r)) {
					fprintf(stderr, "%s search: %s\n", impl, hkb_peer_error());
					failures++;
					continue;
				}
				size_t bytes = hkb_peer_memory(p, (size_t)n);
				if (bytes)
					w.gbps = (double)bytes / (w.r.p50_ms * 1e-3) / 1e9;
				if (!strcmp(impl, "faiss-flat") && w.r.recall < 0.999) {
					fprintf(stderr, "VERIFY FAILED: faiss-flat recall@10 %.4f\n", w.r.recall);
					failures++;
				}
				add_row(o, &w);
			}
		}
	}
	hkb_peer_destroy(p);
}


/* herken-q4 / herken-i8 (bench_q4.c): one thread, the first pass compared */
static int q4_search(void *v, const float *q, size_t nq, float *s, int64_t *ids)
{
	return hkb_q4_search(v, q, nq, K, s, ids);
}

static void run_q4(const opts *o, const char *impl, const dataset *ds, float *x,
                   float *tmp, const float *q, const int64_t *gt,
                   const float *gts, const char *data)
{
	long n = (long)ds->n, d = (long)ds->d;
	hkb_q4 *p = hkb_q4_create((size_t)d, (size_t)n, !strcmp(impl, "herken-q4"));
	if (!p) {
		fprintf(stderr, "%s: out of memory (or dim > 1024)\n", impl);
		failures++;
		return;
	}
	double build = 0;
	for (size_t ch = 0; ch < nchunks(ds); ch++) {
		size_t cnt = gen_chunk(ds, ch, x, tmp);
		double t0 = hkb_now();
		hkb_q4_add(p, x, cnt);
		build += hkb_now() - t0;
	}
	for (int bi = 0; bi < o->nb; bi++) {
		row w = {.data = data, .n = n, .dim = d, .batch = o->batch[bi], .threads = 1,
		         .build_s = build, .pages = "-", .exact = "fp32"};
		snprintf(w.impl, sizeof w.impl, "%s", impl);
		hkb_q4_rescored_per_query(p, 1);
		if (measure(q4_search, p, q, (size_t)o->queries, (size_t)d,
		            (size_t)o->batch[bi], gt, gts, &w.r)) {
			failures++;
			continue;
		}
		w.rescored = hkb_q4_rescored_per_query(p, 0);
		add_row(o, &w);
		if (w.r.recall < 0.999) {
			fprintf(stderr, "VERIFY FAILED: %s recall@10 %.4f < 0.999\n", impl, w.r.recall);
			failures++;
		}
	}
	hkb_q4_destroy(p);
}
static void usage(FILE *f)
{
	fprintf(f,
	        "usage: herken-bench search [options]\n"
	        "  --n LIST         gallery sizes (default 100000,1000000)\n"
	        "  --dim LIST       dimensions (default 192)\n"
	        "  --batch LIST     queries per call (default 1,64)\n"
	        "  --threads LIST   threads (default 1,2)\n"
	        "  --impl LIST      herken,herken-4k,faiss-flat,faiss-sq8,faiss-fp16,hnswlib,\n"
	        "                   herken-q4,herken-i8 (4-bit first pass with a proven\n"
	        "                   bound vs the plain int8 scan, one thread; not in\n"
	        "                   the default)\n"
	        "                   (default all)\n"
	        "  --data LIST      uniform,clustered (default uniform)\n"
	        "  --queries N      distinct queries (default 256)\n"
	        "  --rerank N       herken re-rank candidates (default 64)\n"
	        "  --exact LIST     herken exact copy: fp32,fp16,file (default file:\n"
	        "                   only the int8 scan copy in RAM)\n"
	        "  --exact-dir DIR  directory of the file copy (default $TMPDIR or /var/tmp)\n"
	        "  --peer-max-n N   run the peers and herken-4k only up to n = N\n"
	        "                   (default 2000000)\n"
	        "  --seed N         data seed (default 42)\n"
	        "  --hnsw-efc N     hnswlib ef_construction (default 100; M=32)\n"
	        "  --json           also print one JSON object per result line\n");
}

static int parse_impls(const char *s, unsigned *mask)
{
	*mask = 0;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", s);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof impl_names / sizeof impl_names[0]; i++)
			if (!strcmp(tok, impl_names[i].name))
				bit = impl_names[i].bit;
		if (!bit)
			return -1;
		*mask |= bit;
	}
	return 0;
}

int hk__bench_search(int argc, char **argv)
{
	opts o = {.n = {100000, 1000000}, .nn = 2, .dim = {192}, .nd = 1,
	          .batch = {1, 64}, .nb = 2, .threads = {1, 2}, .nt = 2,
	          .queries = 256, .seed = 42, .data_uniform = 1,
	          .impl_mask = 63, .rerank = 64, .hnsw_m = 32, .hnsw_efc = 100,
	          .exact = {HK_EXACT_FILE}, .nx = 1, .peer_max_n = 2000000};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			o.json = 1;
			continue;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--n")) {
			bad = (o.nn = hkb_parse_list(v, o.n, MAXL)) <= 0;
		} else if (!strcmp(a, "--dim")) {
			bad = (o.nd = hkb_parse_list(v, o.dim, MAXL)) <= 0;
		} else if (!strcmp(a, "--batch")) {
			bad = (o.nb = hkb_parse_list(v, o.batch, MAXL)) <= 0;
		} else if (!strcmp(a, "--threads")) {
			bad = (o.nt = hkb_parse_list(v, o.threads, MAXL)) <= 0;
		} else if (!strcmp(a, "--impl")) {
			bad = parse_impls(v, &o.impl_mask) != 0;
		} else if (!strcmp(a, "--data")) {
			o.data_uniform = strstr(v, "uniform") != NULL;
			o.data_clustered = strstr(v, "clustered") != NULL;
			bad = !o.data_uniform && !o.data_clustered;
		} else if (!strcmp(a, "--queries")) {
			o.queries = atol(v);
			bad = o.queries <= 0;
		} else if (!strcmp(a, "--rerank")) {
			o.rerank = atol(v);
			bad = o.rerank <= 0;
		} else if (!strcmp(a, "--exact")) {
			o.nx = 0;
			char buf[64];
			snprintf(buf, sizeof buf, "%s", v);
			for (char *t = strtok(buf, ","); t && !bad; t = strtok(NULL, ",")) {
				uint32_t e = 0;
				for (uint32_t k = 1; k < 4; k++)
					if (!strcmp(t, exact_names[k]))
						e = k;
				bad = !e || o.nx == 4;
				if (!bad)
					o.exact[o.nx++] = e;
			}
			bad = bad || o.nx == 0;
		} else if (!strcmp(a, "--exact-dir")) {
			o.exact_dir = v;
		} else if (!strcmp(a, "--peer-max-n")) {
			o.peer_max_n = atol(v);
			bad = o.peer_max_n < 0;
		} else if (!strcmp(a, "--seed")) {
			o.seed = strtoull(v, NULL, 10);
		} else if (!strcmp(a, "--hnsw-efc")) {
			o.hnsw_efc = atoi(v);
			bad = o.hnsw_efc <= 0;
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "herken-bench search: bad option %s %s\n", a, v ? v : "");
			usage(stderr);
			return 2;
		}
		i++;
	}
	for (int i = 0; i < o.nb; i++)
		if (o.batch[i] < 1 || o.batch[i] > o.queries) {
			fprintf(stderr, "herken-bench search: batch must be 1..queries\n");
			return 2;
		}
	for (int i = 0; i < o.nt; i++)
		if (o.threads[i] < 1 || o.threads[i] > 64) {
			fprintf(stderr, "herken-bench search: threads must be 1..64\n");
			return 2;
		}

	hkb_print_header("search", o.seed);
	{
		/* FAISS's IndexFlatIP (and herken's fp32 batch) call OpenBLAS sgemm */
		const char *ct = getenv("OPENBLAS_CORETYPE");
		printf("<!-- OpenBLAS sgemm core: %s (OPENBLAS_CORETYPE=%s) -->\n",
		       openblas_get_corename(), ct ? ct : "unset");
	}
	printf("\n| impl           | data      |        n |  dim | batch |  t |   p50 ms  |   p99 ms  |      qps   | rec@10 |  GB/s  | probe  | build s | pages | exact | res B/t | peak RSS MiB |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int dsi = 0; dsi < 2; dsi++) {
		if ((dsi == 0 && !o.data_uniform) || (dsi == 1 && !o.data_clustered))
			continue;
		const char *data = dsi ? "clustered" : "uniform";
		for (int ni = 0; ni < o.nn; ni++)
			for (int di = 0; di < o.nd; di++) {
				long n = o.n[ni], d = o.dim[di];
				if (n < K || d < 1 || d > 4096) {
					fprintf(stderr, "skip n=%ld d=%ld: out of range\n", n, d);
					continue;
				}
				dataset ds = {(size_t)n, (size_t)d, dsi,
				              o.seed ^ ((uint64_t)n * 31 + (uint64_t)d) ^ (uint64_t)dsi << 60};
				float *x = malloc((size_t)CHUNK * d * sizeof(float));
				float *tmp = malloc((size_t)d * sizeof(float));
				float *q = malloc((size_t)o.queries * d * sizeof(float));
				int64_t *gt = malloc((size_t)o.queries * K * sizeof(int64_t));
				float *gts = malloc((size_t)o.queries * K * sizeof(float));
				if (!x || !tmp || !q || !gt || !gts) {
					fprintf(stderr, "out of memory for n=%ld d=%ld\n", n, d);
					free(x); free(tmp); free(q); free(gt); free(gts);
					failures++;
					continue;
				}
				fprintf(stderr, "%s n=%ld d=%ld: ground truth over generated chunks...\n",
				        data, n, d);
				gen(&ds, ~(uint64_t)0, q, (size_t)o.queries, tmp);
				ground_truth(&ds, x, tmp, q, (size_t)o.queries, gt, gts);
				/* the read probe runs before any index exists, so that its
				 * buffer (at most 512 MiB: past any cache) does not add to
				 * the peak RSS of a build */
				double probe_cache[MAXL] = {0};
				size_t pb = (size_t)n * (size_t)((d + 63) / 64 * 64 + 8);
				for (int ti = 0; ti < o.nt; ti++)
					probe_cache[ti] = probe_bandwidth(pb < (512u << 20) ? pb : (512u << 20),
					                                  (int)o.threads[ti]);
				if (o.impl_mask & IMPL_HERKEN)
					run_herken(&o, "herken", 0, &ds, x, tmp, q, gt, gts, data, probe_cache);
				if ((o.impl_mask & IMPL_HERKEN_4K) && n > o.peer_max_n)
					printf("\n(skipped herken-4k at n=%ld: comparisons run up to --peer-max-n %ld)\n\n",
					       n, o.peer_max_n);
				else if (o.impl_mask & IMPL_HERKEN_4K)
					run_herken(&o, "herken-4k", 1, &ds, x, tmp, q, gt, gts, data, probe_cache);
				if (o.impl_mask & IMPL_I8)
					run_q4(&o, "herken-i8", &ds, x, tmp, q, gt, gts, data);
				if (o.impl_mask & IMPL_Q4)
					run_q4(&o, "herken-q4", &ds, x, tmp, q, gt, gts, data);
				for (size_t i = 2; i < 6; i++) /* the peers */
					if (o.impl_mask & impl_names[i].bit)
						run_peer(&o, impl_names[i].name, &ds, x, tmp, q, gt, gts, data);
				free(x);
				free(tmp);
				free(q);
				free(gt);
				free(gts);
			}
	}
	print_summary();
	uint64_t peak = proc_status_kb("VmHWM");
	printf("\npeak RSS of the process (VmHWM over the whole run): %.3f GB\n",
	       (peak > peak_before ? peak : peak_before) / 1e9);
	if (failures) {
		fprintf(stderr, "herken-bench search: %d failure(s)\n", failures);
		return 1;
	}
	return 0;
}
