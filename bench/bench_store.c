/*
 * herken-bench store: the durable gallery.
 *   - enrolment throughput with group commit: T threads enrolling at once
 *     share fsyncs; T = 1 is the peer (one fsync per enrolment);
 *   - building a gallery of N templates, then open/replay time from the
 *     write-ahead log and, after compaction, from the snapshot;
 *   - on-disk bytes per template in both forms.
 * Results are verified: after each reopen, sampled subjects must match
 * their own templates (cosine > 0.9999) and the audit chain must verify.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "herken.h"

typedef struct bopts {
	long n, dim, per_subject, enrols, reps;
	long threads[8];
	int n_threads;
	const char *dir;
	int json;
	uint64_t seed;
} bopts;

static uint8_t master[HK_STORE_KEY_BYTES];

static void vec(float *v, long dim, uint64_t id)
{
	hkb_rng r;
	hkb_rng_seed(&r, id * 0x9e3779b97f4a7c15ull + 1);
	for (long i = 0; i < dim; i++)
		v[i] = (float)hkb_rng_normal(&r);
}

static hk_status open_store(const char *dir, long dim, int create,
                            hk_store **st)
{
	hk_store_params p;
	hk_store_default_params(&p);
	p.master_key = master;
	p.flags = create ? HK_STORE_CREATE : 0;
	p.dim = (uint32_t)dim;
	p.policy.allow_identify = 1;
	return hk_store_open(dir, &p, st);
}

typedef struct job {
	hk_store *st;
	const bopts *o;
	long first, count, per; /* subjects [first, first+count), per templates */
	int failed;
} job;

static void *enrol_job(void *arg)
{
	job *j = arg;
	long dim = j->o->dim;
	float *v = malloc((size_t)(j->per * dim) * sizeof *v);
	for (long s = j->first; s < j->first + j->count && !j->failed; s++) {
		char name[32];
		snprintf(name, sizeof name, "subject-%08ld", s);
		for (long t = 0; t < j->per; t++)
			vec(v + t * dim, dim, (uint64_t)(s * 64 + t));
		int64_t now = (int64_t)time(NULL);
		hk_consent c = {.subject = name, .purpose = "benchmark",
		                .consent_version = "bench-1", .channel = "bench",
		                .time = now - 1, .expires = now + 86400 * 365};
		if (hk_store_enroll(j->st, &c, v, (size_t)j->per, NULL)) {
			fprintf(stderr, "enrol %s: %s\n", name, hk_last_error());
			j->failed = 1;
		}
		if (j->first == 0)
			hkb_progress("enrol", (size_t)(s + 1), (size_t)j->count);
	}
	free(v);
	return NULL;
}

/* Enrol `subjects` subjects of `per` templates with T threads; seconds. */
static double enrol_run(hk_store *st, const bopts *o, long subjects, long per,
                        long T, int *failed)
{
	pthread_t *th = calloc((size_t)T, sizeof *th);
	job *jobs = calloc((size_t)T, sizeof *jobs);
	double t0 = hkb_now();
	long each = (subjects + T - 1) / T;
	for (long i = 0; i < T; i++) {
		long first = i * each;
		long cnt = first >= subjects ? 0 : (first + each > subjects ? subjects - first : each);
		jobs[i] = (job){st, o, first, cnt, per, 0};
		pthread_create(&th[i], NULL, enrol_job, &jobs[i]);
	}
	*failed = 0;
	for (long i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		*failed |= jobs[i].failed;
	}
	double dt = hkb_now() - t0;
	free(th);
	free(jobs);
	return dt;
}

static int check_sample(hk_store *st, const bopts *o, long subjects, long per)
{
	float *q = malloc((size_t)o->dim * sizeof *q);
	hkb_rng r;
	hkb_rng_seed(&r, o->seed);
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		long s = (long)(hkb_rng_next(&r) % (uint64_t)subjects);
		long t = (long)(hkb_rng_next(&r) % (uint64_t)per);
		char name[32];
		snprintf(name, sizeof name, "subject-%08ld", s);
		vec(q, o->dim, (uint64_t)(s * 64 + t));
		float score;
		int match;
		if (hk_store_verify(st, name, q, 0.9999f, HK_SOURCE_DESK, &score,
		                    &match) || !match)
			bad++;
	}
	hk_audit_report ar;
	if (hk_store_audit_verify(st, &ar)) {
		fprintf(stderr, "audit: %s\n", hk_last_error());
		bad++;
	}
	free(q);
	return bad;
}

static double time_open(const bopts *o, const char *dir, long subjects,
                        long per, hk_store_info *info, int *bad)
{
	double *t = calloc((size_t)o->reps, sizeof *t);
	for (long r = 0; r < o->reps; r++) {
		hk_store *st;
		double t0 = hkb_now();
		hk_status s = open_store(dir, 0, 0, &st);
		t[r] = hkb_now() - t0;
		if (s) {
			fprintf(stderr, "open: %s\n", hk_last_error());
			*bad = 1;
			break;
		}
		hk_store_get_info(st, info);
		if (r == 0)
			*bad += check_sample(st, o, subjects, per);
		hk_store_close(st);
	}
	double m = hkb_median(t, (size_t)o->reps);
	free(t);
	return m;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: herken-bench store [options]\n"
	        "  --n N            templates in the replay gallery (1000000)\n"
	        "  --dim D          embedding dimension (192)\n"
	        "  --per-subject P  templates per subject in that gallery (10)\n"
	        "  --threads LIST   enrolling threads for throughput (1,4,16)\n"
	        "  --enrols E       enrolments per throughput run (2000)\n"
	        "  --reps R         opens timed per form (3; median reported)\n"
	        "  --dir DIR        where galleries go (default /var/tmp: a real\n"
	        "                   disk, so fsync costs what it costs)\n"
	        "  --seed S, --json\n");
}

int hk__bench_store(int argc, char **argv)
{
	bopts o = {.n = 1000000, .dim = 192, .per_subject = 10, .enrols = 2000,
	           .reps = 3, .threads = {1, 4, 16}, .n_threads = 3,
	           .dir = "/var/tmp", .seed = 42};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long x[8];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			o.json = 1;
		} else if (v && !strcmp(a, "--threads")) {
			o.n_threads = hkb_parse_list(v, o.threads, 8);
			i++;
		} else if (v && !strcmp(a, "--dir")) {
			o.dir = v;
			i++;
		} else if (v && (!strcmp(a, "--n") || !strcmp(a, "--dim") ||
		                 !strcmp(a, "--per-subject") ||
		                 !strcmp(a, "--enrols") || !strcmp(a, "--reps") ||
		                 !strcmp(a, "--seed"))) {
			if (hkb_parse_list(v, x, 1) != 1 || x[0] < 1) {
				usage(stderr);
				return 2;
			}
			if (!strcmp(a, "--n"))
				o.n = x[0];
			else if (!strcmp(a, "--dim"))
				o.dim = x[0];
			else if (!strcmp(a, "--per-subject"))
				o.per_subject = x[0] > 64 ? 64 : x[0];
			else if (!strcmp(a, "--enrols"))
				o.enrols = x[0];
			else if (!strcmp(a, "--reps"))
				o.reps = x[0];
			else
				o.seed = (uint64_t)x[0];
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (o.n_threads < 1) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < HK_STORE_KEY_BYTES; i++)
		master[i] = (uint8_t)(o.seed * 131 + (uint64_t)i);
	hkb_print_header("store", o.seed);
	char base[512];
	snprintf(base, sizeof base, "%s/herken-bench-store-XXXXXX", o.dir);
	if (!mkdtemp(base)) {
		perror(base);
		return 1;
	}
	printf("<!-- galleries under %s -->\n\n", base);
	int bad = 0;

	/* 1. group commit: T threads, 1 template per enrolment */
	printf("## Enrolment throughput (group commit), d=%ld\n\n"
	       "(median of --reps runs; fsync rounds of the last run)\n\n"
	       "| threads | enrolments | seconds | templates/s | fsync rounds | "
	       "records per fsync | vs 1 thread |\n"
	       "|---:|---:|---:|---:|---:|---:|---:|\n", o.dim);
	double base_rate = 0;
	for (int ti = 0; ti < o.n_threads; ti++) {
		double runs[64];
		long reps = o.reps < 64 ? o.reps : 64;
		hk_store_info info;
		for (long r = 0; r < reps; r++) {
			char dir[600];
			snprintf(dir, sizeof dir, "%s/tp-%ld-%ld", base, o.threads[ti], r);
			hk_store *st;
			if (open_store(dir, o.dim, 1, &st)) {
				fprintf(stderr, "create: %s\n", hk_last_error());
				return 1;
			}
			int failed;
			runs[r] = enrol_run(st, &o, o.enrols, 1, o.threads[ti], &failed);
			hk_store_get_info(st, &info);
			hk_store_close(st);
			bad += failed;
			hkb_rmrf(dir);
		}
		double dt = hkb_median(runs, (size_t)reps);
		double rate = (double)o.enrols / dt;
		if (ti == 0)
			base_rate = rate;
		printf("| %ld | %ld | %.2f | %.0f | %llu | %.1f | %.1fx |\n",
		       o.threads[ti], o.enrols, dt, rate,
		       (unsigned long long)info.commits,
		       info.commits ? (double)info.committed_records / (double)info.commits : 0,
		       rate / base_rate);
		if (o.json)
			printf("{\"suite\":\"store\",\"test\":\"enrol\",\"threads\":%ld,"
			       "\"dim\":%ld,\"templates_per_s\":%.1f,\"fsyncs\":%llu}\n",
			       o.threads[ti], o.dim, rate,
			       (unsigned long long)info.commits);
	}

	/* 2. the big gallery */
	long T = o.threads[o.n_threads - 1];
	long subjects = (o.n + o.per_subject - 1) / o.per_subject;
	long n = subjects * o.per_subject;
	char dir[600];
	snprintf(dir, sizeof dir, "%s/big", base);
	hk_store *st;
	if (open_store(dir, o.dim, 1, &st)) {
		fprintf(stderr, "create: %s\n", hk_last_error());
		return 1;
	}
	int failed;
	double build = enrol_run(st, &o, subjects, o.per_subject, T, &failed);
	bad += failed;
	hk_store_info info;
	hk_store_get_info(st, &info);
	hk_store_close(st);
	printf("\n## Gallery of %ld templates (%ld subjects x %ld), d=%ld\n\n",
	       n, subjects, o.per_subject, o.dim);
	printf("- build: %.1f s with %ld threads = %.0f templates/s (%llu fsync "
	       "rounds)\n", build, T, (double)n / build,
	       (unsigned long long)info.commits);
	hk_store_info oi;
	double t_wal = time_open(&o, dir, subjects, o.per_subject, &oi, &bad);
	uint64_t wal_disk = oi.wal_bytes + oi.keys_bytes;
	printf("- open + replay from the log: %.2f s (median of %ld) = %.0f "
	       "templates/s; wal %.1f MB + keys %.1f MB = %.1f bytes/template "
	       "(audit log %.1f MB apart)\n", t_wal, o.reps, (double)n / t_wal,
	       oi.wal_bytes / 1e6, oi.keys_bytes / 1e6, (double)wal_disk / (double)n,
	       oi.audit_bytes / 1e6);
	if (open_store(dir, 0, 0, &st)) {
		fprintf(stderr, "open: %s\n", hk_last_error());
		return 1;
	}
	double t0 = hkb_now();
	hk_status cs = hk_store_compact(st);
	double t_compact = hkb_now() - t0;
	if (cs) {
		fprintf(stderr, "compact: %s\n", hk_last_error());
		bad++;
	}
	hk_store_close(st);
	double t_snap = time_open(&o, dir, subjects, o.per_subject, &oi, &bad);
	uint64_t snap_disk = oi.snapshot_bytes + oi.keys_bytes + oi.wal_bytes;
	printf("- compaction: %.2f s; open + load from the snapshot: %.2f s "
	       "(median of %ld) = %.0f templates/s; snapshot %.1f MB + keys "
	       "%.1f MB = %.1f bytes/template (fp32 payload: %ld)\n",
	       t_compact, t_snap, o.reps, (double)n / t_snap,
	       oi.snapshot_bytes / 1e6, oi.keys_bytes / 1e6,
	       (double)snap_disk / (double)n, o.dim * 4);
	printf("- verified: 100 sampled templates match their subject after each "
	       "reopen, audit chain intact: %s\n", bad ? "NO" : "yes");
	if (o.json)
		printf("{\"suite\":\"store\",\"test\":\"replay\",\"n\":%ld,\"dim\":%ld,"
		       "\"build_templates_per_s\":%.1f,\"open_wal_s\":%.3f,"
		       "\"open_snapshot_s\":%.3f,\"compact_s\":%.3f,"
		       "\"bytes_per_template_wal\":%.1f,"
		       "\"bytes_per_template_snapshot\":%.1f,\"verified\":%s}\n",
		       n, o.dim, (double)n / build, t_wal, t_snap, t_compact,
		       (double)wal_disk / (double)n, (double)snap_disk / (double)n,
		       bad ? "false" : "true");
	hkb_rmrf(base);
	return bad ? 1 : 0;
}
