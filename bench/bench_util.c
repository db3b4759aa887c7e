#define _GNU_SOURCE
#include "bench.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herken.h"
#include "models.h"

double hkb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double hkb_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double hkb_quantile(double *v, size_t n, double p)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof *v, cmp_double);
	size_t i = (size_t)ceil(p * (double)n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

double hkb_median(double *v, size_t n)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char *hkb_cpu_name(void)
{
	static char name[128];
	if (name[0])
		return name;
	snprintf(name, sizeof name, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return name;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');
			if (c) {
				c += 2;
				c[strcspn(c, "\n")] = 0;
				snprintf(name, sizeof name, "%s", c);
			}
			break;
		}
	}
	fclose(f);
	return name;
}

int hkb_parse_list(const char *s, long *out, int max)
{
	int n = 0;
	while (*s) {
		char *end;
		double v = strtod(s, &end); /* accepts 1e6 */
		if (end == s || v < 0 || v > 1e12 || n >= max)
			return -1;
		out[n++] = (long)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void hkb_rng_seed(hkb_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hkb_rng_next(hkb_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

double hkb_rng_uniform(hkb_rng *r) { return (hkb_rng_next(r) >> 11) * 0x1.0p-53; }

double hkb_rng_normal(hkb_rng *r)
{
	double u1 = hkb_rng_uniform(r), u2 = hkb_rng_uniform(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void hkb_progress(const char *label, size_t done, size_t total)
{
	static int tty = -1;
	if (tty < 0)
		tty = isatty(2);
	if (!tty || total == 0)
		return;
	fprintf(stderr, "\r%s %3zu%%", label, done * 100 / total);
	if (done >= total)
		fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

void hkb_print_header(const char *suite, uint64_t seed)
{
	printf("<!-- herken-bench %s | herken %s | cpu: %s | %ld cores | isa tier: %s | seed %llu -->\n",
	       suite, hk_version(), hkb_cpu_name(), sysconf(_SC_NPROCESSORS_ONLN),
	       hk_isa_name(hk_cpu_isa()), (unsigned long long)seed);
}

const char *hkb_data_path(const char *flag, const char *rel, char *buf, size_t cap)
{
	if (flag && *flag)
		snprintf(buf, cap, "%s", flag);
	else {
		const char *sh = getenv("HERKEN_SHARED");
		snprintf(buf, cap, "%s%s%s", sh && *sh ? sh : "../shared", *rel ? "/" : "", rel);
	}
	return buf;
}

const char *hkb_model_file(const char *role)
{
	const hk_model_file *m = hk__model_by_role(role);
	return m ? m->file : "";
}

static const char *const prec_names[] = {"fp32", "bf16", "int8", "auto"};

int hkb_parse_precision(const char *s, uint32_t *out)
{
	for (uint32_t i = 0; i < 4; i++)
		if (!strcmp(s, prec_names[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

const char *hkb_precision_name(uint32_t p)
{
	return p < 4 ? prec_names[p] : "?";
}

const char *hkb_align_name(uint32_t a)
{
	return a == HK_ALIGN_POSE ? "pose" : a == HK_ALIGN_VISIBLE ? "visible" : "frontal";
}

static int rmrf_one(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb;
	(void)f;
	(void)w;
	return remove(p);
}

void hkb_rmrf(const char *dir)
{
	nftw(dir, rmrf_one, 16, FTW_DEPTH | FTW_PHYS);
}
