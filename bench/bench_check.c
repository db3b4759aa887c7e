/*
 * Performance-regression check by instruction counts.
 *
 *   herken-bench cost WORKLOAD     run one fixed workload; the measured
 *                                  region is bracketed with callgrind client
 *                                  requests; prints "items N" and "isa T"
 *   herken-bench check [--baseline bench/baseline.json] [--update]
 *                      [--tolerance PCT] [--only SUBSTR] [--quick] [--json]
 *
 * `check` runs every workload under `valgrind --tool=callgrind
 * --collect-atstart=no` at the dispatch tier valgrind exposes and at
 * HERKEN_MAX_ISA=avx2 and scalar, divides the instructions of the measured
 * region by the work done (queries, faces, frames, templates) and compares
 * with the committed baseline. Instruction counts are repeatable for the
 * same binary and input whatever else the machine is doing, unlike wall
 * time on a shared 2-core box. Accuracy guards run in the same pass.
 * Exit status: 0 all within tolerance, 1 a regression, 2 usage/setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include "bench.h"
#include "check.h"
#include "herken.h"

extern char **environ;

/* ---------------------------------------------------------------- */
/* measured-region control used by the workloads                    */

/* Instrumentation (not just collection) is switched: collection is a
 * per-thread state in callgrind, so toggling it would miss the work done by
 * other threads (the model worker thread, the frame reader and decoders,
 * the store's syncing thread), while instrumentation is process-wide. The
 * child runs with --instr-atstart=no, so nothing outside the region is
 * counted (and it runs faster). */
void hkc_start(void)
{
	CALLGRIND_START_INSTRUMENTATION;
	CALLGRIND_ZERO_STATS;
}

void hkc_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }

/* ---------------------------------------------------------------- */
/* search workloads                                                 */

static hk_gallery *check_gallery(uint32_t n, uint32_t d, float **queries,
                                 uint32_t nq)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = d;
	p.threads = 1; /* one thread: deterministic instruction counts */
	p.capacity = n;
	p.huge_pages = HK_HUGE_OFF;
	hk_gallery *g = NULL;
	if (hk_gallery_create(&p, &g) != HK_OK)
		return NULL;
	hkb_rng r;
	hkb_rng_seed(&r, 20261129);
	float *v = malloc((size_t)d * sizeof *v);
	char name[24];
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < d; j++)
			v[j] = (float)hkb_rng_normal(&r);
		snprintf(name, sizeof name, "s%u", i);
		hk_gallery_add(g, name, v, NULL);
	}
	free(v);
	*queries = malloc((size_t)nq * d * sizeof(float));
	for (size_t j = 0; j < (size_t)nq * d; j++)
		(*queries)[j] = (float)hkb_rng_normal(&r);
	return g;
}

static long wl_search(int batch)
{
	enum { N = 4096, D = 192, NQ = 64, K = 10 };
	float *q;
	hk_gallery *g = check_gallery(N, D, &q, NQ);
	if (!g)
		return -1;
	float s[NQ * K];
	hk_template_id ids[NQ * K];
	long sum = 0;
	hkc_start();
	if (batch)
		hk_gallery_search_batch(g, q, NQ, K, s, ids);
	else
		for (int i = 0; i < NQ; i++)
			hk_gallery_search(g, q + (size_t)i * D, K, s + i * K, ids + i * K);
	hkc_stop();
	for (int i = 0; i < NQ * K; i++)
		sum += (long)ids[i];
	hk_gallery_destroy(g);
	free(q);
	return sum > 0 ? NQ : -1;
}

static long wl_search_single(void) { return wl_search(0); }
static long wl_search_batch(void) { return wl_search(1); }

static long wl_gallery_add(void)
{
	enum { N = 2000, D = 192 };
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = D;
	p.threads = 1;
	p.capacity = N;
	p.huge_pages = HK_HUGE_OFF;
	hk_gallery *g = NULL;
	if (hk_gallery_create(&p, &g) != HK_OK)
		return -1;
	hkb_rng r;
	hkb_rng_seed(&r, 7);
	float *v = malloc((size_t)N * D * sizeof *v);
	for (size_t j = 0; j < (size_t)N * D; j++)
		v[j] = (float)hkb_rng_normal(&r);
	char name[24];
	hkc_start();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "s%d", i);
		hk_gallery_add(g, name, v + (size_t)i * D, NULL);
	}
	hkc_stop();
	long n = (long)hk_gallery_size(g);
	hk_gallery_destroy(g);
	free(v);
	return n == N ? N : -1;
}

/* ---------------------------------------------------------------- */
/* registry                                                         */

static const hkc_workload builtin[] = {
	{"search-single", "queries", wl_search_single, 1, 0},
	{"search-batch64", "queries", wl_search_batch, 1, 0},
	{"gallery-add", "templates", wl_gallery_add, 1, 0},
};

#pragma weak hkc_extra_workloads
#pragma weak hkc_extra_guards

static const hkc_workload *find_workload(const char *name)
{
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
		if (!strcmp(builtin[i].name, name))
			return &builtin[i];
	if (hkc_extra_workloads) {
		size_t n;
		const hkc_workload *w = hkc_extra_workloads(&n);
		for (size_t i = 0; i < n; i++)
			if (!strcmp(w[i].name, name))
				return &w[i];
	}
	return NULL;
}

static size_t all_workloads(const hkc_workload **out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0] && k < max; i++)
		out[k++] = &builtin[i];
	if (hkc_extra_workloads) {
		size_t n;
		const hkc_workload *w = hkc_extra_workloads(&n);
		for (size_t i = 0; i < n && k < max; i++)
			out[k++] = &w[i];
	}
	return k;
}

int hk__bench_cost(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: herken-bench cost WORKLOAD\n");
		return 2;
	}
	const hkc_workload *w = find_workload(argv[1]);
	if (!w) {
		fprintf(stderr, "herken-bench cost: unknown workload %s\n", argv[1]);
		return 2;
	}
	long items = w->run();
	if (items == HKC_SKIP) {
		printf("skip\n");
		return 0;
	}
	if (items <= 0) {
		fprintf(stderr, "herken-bench cost: workload %s failed: %s\n", w->name,
		        hk_last_error());
		return 1;
	}
	printf("items %ld\nisa %s\n", items, hk_isa_name(hk_cpu_isa()));
	return 0;
}

/* ---------------------------------------------------------------- */
/* the check                                                        */

typedef struct entry {
	char name[64];
	char isa[24];
	double value; /* instructions per item, or the accuracy figure */
	double tol;   /* accuracy only */
} entry;

static int load_baseline(const char *path, entry *e, int max, int *ne,
                         entry *acc, int *na, double *tol_pct)
{
	FILE *f = fopen(path, "r");
	*ne = *na = 0;
	if (!f)
		return -1;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		entry x = {0};
		double t;
		if (sscanf(line, " \"tolerance_pct\": %lf", &t) == 1)
			*tol_pct = t;
		else if (*ne < max && sscanf(line, " {\"name\": \"%63[^\"]\", \"isa\": \"%23[^\"]\", \"instr_per_item\": %lf}",
		                             x.name, x.isa, &x.value) == 3)
			e[(*ne)++] = x;
		else if (*na < max && sscanf(line, " {\"name\": \"%63[^\"]\", \"value\": %lf, \"tolerance\": %lf}",
		                             x.name, &x.value, &x.tol) == 3)
			acc[(*na)++] = x;
	}
	fclose(f);
	return 0;
}

static int save_baseline(const char *path, const entry *e, int ne,
                         const entry *acc, int na, double tol_pct)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "{\n  \"about\": \"instructions per item under callgrind (herken-bench check); rewrite with make bench-baseline\",\n");
	fprintf(f, "  \"tolerance_pct\": %.1f,\n  \"workloads\": [\n", tol_pct);
	for (int i = 0; i < ne; i++)
		fprintf(f, "    {\"name\": \"%s\", \"isa\": \"%s\", \"instr_per_item\": %.1f}%s\n",
		        e[i].name, e[i].isa, e[i].value, i + 1 < ne ? "," : "");
	fprintf(f, "  ],\n  \"accuracy\": [\n");
	for (int i = 0; i < na; i++)
		fprintf(f, "    {\"name\": \"%s\", \"value\": %.6f, \"tolerance\": %.6f}%s\n",
		        acc[i].name, acc[i].value, acc[i].tol, i + 1 < na ? "," : "");
	fprintf(f, "  ]\n}\n");
	return fclose(f);
}

/* Run `herken-bench cost name` under callgrind with HERKEN_MAX_ISA=cap
 * (NULL: unset). Returns 0 and fills ir/items/isa, 1 when skipped, -1 on
 * error. */
static int run_one(const char *name, const char *cap, double *ir, long *items,
                   char *isa, size_t isalen)
{
	char out[] = "/tmp/herken-callgrind-XXXXXX";
	int ofd = mkstemp(out);
	if (ofd < 0)
		return -1;
	close(ofd);
	char outarg[128], self[4096];
	snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out);
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0)
		return -1;
	self[sl] = 0;
	/* herken-cost beside this binary: the same workloads linked without
	 * FFmpeg, whose libhwy dies under valgrind on CPUs without RDTSCP (see
	 * the Makefile); this binary itself when it is absent */
	char *slash = strrchr(self, '/');
	if (slash && (size_t)(slash - self) + sizeof "/herken-cost" <= sizeof self) {
		char alt[sizeof self];
		memcpy(alt, self, (size_t)(slash - self));
		strcpy(alt + (slash - self), "/herken-cost");
		if (!access(alt, X_OK))
			strcpy(self, alt);
	}
	char *args[] = {"valgrind", "--tool=callgrind", "--instr-atstart=no",
	                "--smc-check=all", outarg, self, "cost", (char *)name, NULL};
	/* environment: HERKEN_MAX_ISA=cap, ONEDNN_MAX_CPU_ISA=AVX2 unless set,
	 * everything else inherited. valgrind hides AVX-512 (and AMX) from CPUID,
	 * so oneDNN picks its AVX2 kernels under it anyway; pinning says so and
	 * keeps the inference counts comparable should a valgrind ever expose
	 * more. (Natively oneDNN here runs avx512_core_amx: the accuracy guards
	 * measure that path.) */
	size_t ne = 0;
	int have_dnnl_cap = 0;
	while (environ[ne])
		have_dnnl_cap |= !strncmp(environ[ne++], "ONEDNN_MAX_CPU_ISA=", 19);
	char **env = calloc(ne + 4, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "HERKEN_MAX_ISA=", 15))
			env[k++] = environ[i];
	char capenv[64];
	if (cap) {
		snprintf(capenv, sizeof capenv, "HERKEN_MAX_ISA=%s", cap);
		env[k++] = capenv;
	}
	if (!have_dnnl_cap)
		env[k++] = "ONEDNN_MAX_CPU_ISA=AVX2";
	/* The model loader times a few convolution implementations and keeps
	 * the fastest; under valgrind those timings mean nothing, so the
	 * measured processes take oneDNN's own first choice (deterministic). */
	env[k++] = "HERKEN_NN_TUNE=0";
	int pfd[2];
	if (pipe(pfd)) {
		free(env);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	char logpath[sizeof out + 8];
	snprintf(logpath, sizeof logpath, "%s.log", out);
	posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int rc = posix_spawnp(&pid, "valgrind", &fa, NULL, args, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		fprintf(stderr, "check: cannot run valgrind: %s (install it: make deps)\n",
		        strerror(rc));
		unlink(out);
		return -1;
	}
	FILE *cf = fdopen(pfd[0], "r");
	char line[512];
	int skipped = 0;
	*items = -1;
	isa[0] = 0;
	while (fgets(line, sizeof line, cf)) {
		sscanf(line, "items %ld", items);
		if (sscanf(line, "isa %23s", isa) == 1)
			isa[isalen - 1] = 0;
		if (!strncmp(line, "skip", 4))
			skipped = 1;
	}
	fclose(cf);
	int status;
	waitpid(pid, &status, 0);
	*ir = -1;
	FILE *f = fopen(out, "r");
	while (f && fgets(line, sizeof line, f)) {
		double v;
		if (sscanf(line, "totals: %lf", &v) == 1 || sscanf(line, "summary: %lf", &v) == 1)
			*ir = v;
	}
	if (f)
		fclose(f);
	unlink(out);
	int ok = skipped || (WIFEXITED(status) && !WEXITSTATUS(status) && *ir > 0 && *items > 0);
	if (!ok) { /* show what valgrind and the workload said */
		FILE *lf = fopen(logpath, "r");
		while (lf && fgets(line, sizeof line, lf))
			if (strncmp(line, "==", 2))
				fputs(line, stderr);
		if (lf)
			fclose(lf);
	}
	unlink(logpath);
	if (skipped)
		return 1;
	return ok ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench check [--baseline FILE] [--update] [--tolerance PCT]\n"
	           "                          [--only SUBSTR] [--quick] [--json]\n"
	           "  Counts instructions per item of fixed workloads under callgrind and\n"
	           "  compares them with the baseline (default bench/baseline.json).\n"
	           "  --update rewrites the baseline with the figures measured now (rows\n"
	           "  not measured, e.g. with --only or --quick, keep their old figures).\n"
	           "  --quick leaves out the slow workloads (CI's gate: .ci/run).\n");
}

#define MAXE 256

int hk__bench_check(int argc, char **argv)
{
	const char *path = "bench/baseline.json", *only = NULL;
	int update = 0, json = 0, quick = 0;
	double tol = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--update"))
			update = 1;
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--baseline") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--tolerance") && i + 1 < argc)
			tol = atof(argv[++i]);
		else if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	static entry base[MAXE], acc_base[MAXE], now[MAXE], acc_now[MAXE];
	int nb = 0, nab = 0, nn = 0, nan_ = 0;
	double tol_pct = 3.0;
	if (load_baseline(path, base, MAXE, &nb, acc_base, &nab, &tol_pct) && !update) {
		fprintf(stderr, "check: no baseline at %s (create it with make bench-baseline)\n", path);
		return 2;
	}
	if (tol >= 0)
		tol_pct = tol;

	const hkc_workload *wl[MAXE];
	size_t nw = all_workloads(wl, MAXE);
	const char *caps[] = {NULL, "avx2", "scalar"};
	int regress = 0, errors = 0;
	double t0 = hkb_now();
	printf("| workload | isa | unit | baseline instr/item | now instr/item | change |\n");
	printf("|---|---|---|---|---|---|\n");
	for (size_t w = 0; w < nw; w++) {
		if ((only && !strstr(wl[w]->name, only)) || (quick && wl[w]->slow))
			continue;
		char seen[3][24] = {{0}};
		for (int c = 0; c < (wl[w]->per_isa ? 3 : 1); c++) {
			double ir;
			long items;
			char isa[24];
			int rc = run_one(wl[w]->name, caps[c], &ir, &items, isa, sizeof isa);
			if (rc == 1) {
				printf("| %s | - | %s | - | skipped (data or models absent) | - |\n",
				       wl[w]->name, wl[w]->unit);
				break;
			}
			if (rc < 0) {
				printf("| %s | %s | %s | - | ERROR | - |\n", wl[w]->name,
				       caps[c] ? caps[c] : "native", wl[w]->unit);
				errors++;
				continue;
			}
			int dup = 0;
			for (int s = 0; s < c; s++)
				dup |= !strcmp(seen[s], isa);
			snprintf(seen[c], sizeof seen[c], "%s", isa);
			if (dup)
				continue;
			double per = ir / (double)items;
			entry e = {0};
			snprintf(e.name, sizeof e.name, "%s", wl[w]->name);
			snprintf(e.isa, sizeof e.isa, "%s", isa);
			e.value = per;
			if (nn < MAXE)
				now[nn++] = e;
			const entry *b = NULL;
			for (int i = 0; i < nb; i++)
				if (!strcmp(base[i].name, e.name) && !strcmp(base[i].isa, e.isa))
					b = &base[i];
			if (b) {
				double ch = (per / b->value - 1) * 100;
				int bad = ch > tol_pct;
				regress |= bad;
				printf("| %s | %s | %s | %.1f | %.1f | %+.2f %%%s |\n", e.name, isa,
				       wl[w]->unit, b->value, per, ch, bad ? " **REGRESSION**" : "");
			} else {
				printf("| %s | %s | %s | (none) | %.1f | new |\n", e.name, isa,
				       wl[w]->unit, per);
			}
			if (json)
				fprintf(stderr, "{\"suite\":\"check\",\"workload\":\"%s\",\"isa\":\"%s\",\"instr_per_item\":%.1f}\n",
				        e.name, isa, per);
			fflush(stdout);
		}
	}
	/* baseline rows this run did not measure (skipped workloads, or a tier
	 * this machine or valgrind does not expose): listed, not failed */
	for (int i = 0; i < nb; i++) {
		if (only && !strstr(base[i].name, only))
			continue;
		int seen_now = 0;
		for (int j = 0; j < nn; j++)
			seen_now |= !strcmp(base[i].name, now[j].name) && !strcmp(base[i].isa, now[j].isa);
		if (!seen_now)
			printf("| %s | %s | - | %.1f | not measured in this run | - |\n", base[i].name,
			       base[i].isa, base[i].value);
	}
	/* accuracy guards run natively (no valgrind): they are deterministic */
	if (hkc_extra_guards) {
		size_t ng;
		const hkc_guard *g = hkc_extra_guards(&ng);
		printf("\n| accuracy guard | baseline | now | tolerance | result |\n|---|---|---|---|---|\n");
		for (size_t i = 0; i < ng; i++) {
			if (only && !strstr(g[i].name, only))
				continue;
			double v;
			int rc = g[i].run(&v);
			if (rc == HKC_SKIP) {
				printf("| %s | - | skipped (data or models absent) | - | - |\n", g[i].name);
				continue;
			}
			if (rc != 0) {
				printf("| %s | - | ERROR | - | FAIL |\n", g[i].name);
				errors++;
				continue;
			}
			entry e = {0};
			snprintf(e.name, sizeof e.name, "%s", g[i].name);
			e.value = v;
			e.tol = g[i].tolerance;
			if (nan_ < MAXE)
				acc_now[nan_++] = e;
			const entry *b = NULL;
			for (int j = 0; j < nab; j++)
				if (!strcmp(acc_base[j].name, e.name))
					b = &acc_base[j];
			int bad = b && fabs(v - b->value) > b->tol;
			int floor_bad = g[i].floor_ok && !g[i].floor_ok(v);
			regress |= bad || floor_bad;
			char bs[64] = "(none)";
			if (b)
				snprintf(bs, sizeof bs, "%.6f ± %.6f", b->value, b->tol);
			printf("| %s | %s | %.6f | %.6f | %s |\n", e.name, bs, v, e.tol,
			       bad || floor_bad ? "**FAIL**" : "ok");
		}
	}
	printf("\nchecked in %.0f s; tolerance %.1f %% per workload\n", hkb_now() - t0, tol_pct);
	if (update) {
		/* rows this run did not measure (--only, --quick, a skipped
		 * workload or guard) keep their baseline figures */
		for (int i = 0; i < nb && nn < MAXE; i++) {
			int seen_now = 0;
			for (int j = 0; j < nn; j++)
				seen_now |= !strcmp(base[i].name, now[j].name) && !strcmp(base[i].isa, now[j].isa);
			if (!seen_now && find_workload(base[i].name))
				now[nn++] = base[i];
		}
		for (int i = 0; i < nab && nan_ < MAXE; i++) {
			int seen_now = 0;
			for (int j = 0; j < nan_; j++)
				seen_now |= !strcmp(acc_base[i].name, acc_now[j].name);
			if (!seen_now)
				acc_now[nan_++] = acc_base[i];
		}
		if (save_baseline(path, now, nn, acc_now, nan_, tol_pct)) {
			fprintf(stderr, "check: cannot write %s\n", path);
			return 2;
		}
		printf("baseline written to %s (%d workloads, %d guards): review its diff\n", path, nn, nan_);
		return errors ? 2 : 0;
	}
	if (errors) {
		printf("RESULT: %d workload(s) could not be measured\n", errors);
		return 2;
	}
	printf("RESULT: %s\n", regress ? "REGRESSION (see rows marked above)" : "ok, no workload costs more than the tolerance");
	return regress ? 1 : 0;
}
