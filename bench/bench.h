/* Shared helpers of herken-bench: timing, statistics, output. */
#ifndef HK_BENCH_H
#define HK_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Subcommands: each returns a process exit code. Defined in
 * bench/bench_<name>.c (check and cost in bench_check.c). */
int hk__bench_search(int argc, char **argv);
int hk__bench_kernels(int argc, char **argv);
int hk__bench_infer(int argc, char **argv);
int hk__bench_ingest(int argc, char **argv);
int hk__bench_lfw(int argc, char **argv);
int hk__bench_cfp(int argc, char **argv);
int hk__bench_store(int argc, char **argv);
int hk__bench_pipeline(int argc, char **argv);
int hk__bench_check(int argc, char **argv);
int hk__bench_cost(int argc, char **argv);
int hk__bench_blufr(int argc, char **argv);
int hk__bench_calibrate(int argc, char **argv);
int hk__bench_calib_check(int argc, char **argv);
int hk__bench_stream(int argc, char **argv);
int hk__bench_openset(int argc, char **argv);
int hk__bench_int8_calibrate(int argc, char **argv);
int hk__bench_embedders(int argc, char **argv);

double hkb_now(void); /* seconds, monotonic */
double hkb_cpu_now(void); /* CPU seconds of the whole process */

/* Sorts v in place and returns the p-quantile (0..1), nearest rank. */
double hkb_quantile(double *v, size_t n, double p);
double hkb_median(double *v, size_t n);

/* "Intel(R) Xeon(R) ..." from /proc/cpuinfo, or "unknown". */
const char *hkb_cpu_name(void);

/* Parse "1,2,64" into out (max n); returns count or -1 on bad input. */
int hkb_parse_list(const char *s, long *out, int max);

/* "fp32", "bf16", "int8", "auto" <-> hk_precision; parse: 0 ok, -1 unknown. */
int hkb_parse_precision(const char *s, uint32_t *out);
const char *hkb_precision_name(uint32_t p);
/* "frontal", "pose" or "visible" (hk_align_mode; 0 = frontal). */
const char *hkb_align_name(uint32_t a);

/* xoshiro256** seeded by splitmix64: fixed seeds give fixed data. */
typedef struct hkb_rng { uint64_t s[4]; } hkb_rng;
void hkb_rng_seed(hkb_rng *r, uint64_t seed);
uint64_t hkb_rng_next(hkb_rng *r);
double hkb_rng_uniform(hkb_rng *r);  /* [0,1) */
double hkb_rng_normal(hkb_rng *r);   /* N(0,1) */

/* Progress line on stderr when it is a terminal ("\r label 42%"). */
void hkb_progress(const char *label, size_t done, size_t total);

/* Where a benchmark's data is, the one rule for every suite (and
 * datasets/verify.sh): the flag's value when given, else
 * $HERKEN_SHARED/rel, else ../shared/rel (rel e.g. "datasets/lfw"; ""
 * for the shared directory itself).
 * Written into buf; returns buf. Whether it exists is the caller's check. */
const char *hkb_data_path(const char *flag, const char *rel, char *buf, size_t cap);

/* The file name of the pinned model with this role ("detector-sparse",
 * "detector-dense", "landmarks", "embedder"; core/models.def through
 * hk__model_by_role()), or "" for an unknown role. */
const char *hkb_model_file(const char *role);

/* Removes dir and everything below it (a benchmark's scratch directory;
 * symbolic links are removed, not followed). */
void hkb_rmrf(const char *dir);

/* Prints the standard run header (CPU, ISA tier, threads, seed) as a
 * Markdown comment block on stdout. */
void hkb_print_header(const char *suite, uint64_t seed);

#endif
