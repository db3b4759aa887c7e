/*
 * herken-bench kernels: throughput of the distance kernels per ISA tier.
 *
 *   herken-bench kernels [--dim 192] [--n 1000000] [--nq 64] [--reps 5]
 *                        [--tile-rows 4096]
 *                        [--seed 1] [--json]
 *
 * For every tier this CPU supports: GB/s of scan_i8 / scan_f16 / scan_f32
 * over an n-row array (rows padded to 64-byte strides, as the engine stores
 * them), GOP/s (2 ops per multiply-add) of tile_i8 with nq queries, and the
 * tier's plain read-bandwidth probe over the int8 array's bytes. Results are
 * checked against the scalar tier on a sample of rows before timing
 * ("verified"); a mismatch aborts with exit code 1. Medians of --reps runs.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "hk_simd.h"
#include "internal.h"
#include "peak_i8.h"

#pragma weak hkb_i8_peak_avx2
#pragma weak hkb_i8_peak_avxvnni
#pragma weak hkb_i8_peak_avx512vnni
#pragma weak hkb_i8_peak_neon
#pragma weak hkb_i8_peak_i8mm

typedef struct {
	size_t n, dim, nq, tile_rows;
	int reps, json;
	uint64_t seed;
} opts;

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench kernels [--dim 192] [--n 1000000] [--nq 64] "
	           "[--tile-rows 4096] [--reps 5] [--seed 1] [--json]\n");
}

static int parse(int argc, char **argv, opts *o)
{
	*o = (opts){.n = 1000000, .dim = 192, .nq = 64, .tile_rows = 4096, .reps = 5,
	            .seed = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v[1];
		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc || hkb_parse_list(argv[i + 1], v, 1) != 1) {
			usage(stderr);
			return -1;
		}
		i++;
		if (!strcmp(a, "--dim"))
			o->dim = (size_t)v[0];
		else if (!strcmp(a, "--n"))
			o->n = (size_t)v[0];
		else if (!strcmp(a, "--nq"))
			o->nq = (size_t)v[0];
		else if (!strcmp(a, "--tile-rows"))
			o->tile_rows = (size_t)v[0];
		else if (!strcmp(a, "--reps"))
			o->reps = (int)v[0];
		else if (!strcmp(a, "--seed"))
			o->seed = (uint64_t)v[0];
		else {
			usage(stderr);
			return -1;
		}
	}
	if (o->dim == 0 || o->dim > 4096 || o->n == 0 || o->nq == 0 || o->nq > 4096 ||
	    o->tile_rows == 0 || o->tile_rows > 65536 || o->reps < 1 || o->reps > 1000) {
		fprintf(stderr, "herken-bench kernels: --dim 1..4096, --n >= 1, --nq 1..4096, "
		                "--tile-rows 1..65536, --reps 1..1000\n");
		return -1;
	}
	return 0;
}

static size_t pad(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Data shared by all tiers: the same unit-norm vectors in three forms. */
typedef struct {
	size_t n, dim, di8, s8, s16, s32;
	int8_t *r8;
	int32_t *sums;
	uint16_t *r16;
	float *r32;
	uint8_t *qu;  /* nq queries, offset-128, stride di8 */
	uint8_t *qun; /* the same within |q| <= 31 (tiers with i8_qmax < 127) */
	float *qf;   /* query 0 in fp32, padded */
} data;

static int make_data(data *d, const opts *o)
{
	memset(d, 0, sizeof *d);
	d->n = o->n;
	d->dim = o->dim;
	d->di8 = pad(o->dim, HK_SIMD_PAD_I8);
	size_t d16 = pad(o->dim, HK_SIMD_PAD_F16), d32 = pad(o->dim, HK_SIMD_PAD_F32);
	d->s8 = pad(d->di8, 64);
	d->s16 = pad(d16 * 2, 64);
	d->s32 = pad(d32 * 4, 64);
	size_t b8, b16, b32;
	if (hk__mul_size(d->n, d->s8, &b8) || hk__mul_size(d->n, d->s16, &b16) ||
	    hk__mul_size(d->n, d->s32, &b32))
		return -1;
	d->r8 = hk__aalloc(b8);
	d->r16 = hk__aalloc(b16);
	d->r32 = hk__aalloc(b32);
	d->sums = malloc(d->n * sizeof *d->sums);
	d->qu = calloc(o->nq, d->di8);
	d->qun = calloc(o->nq, d->di8);
	d->qf = hk__aalloc(d32 * 4);
	if (!d->r8 || !d->r16 || !d->r32 || !d->sums || !d->qu || !d->qun || !d->qf)
		return -1;
	memset(d->r8, 0, b8);
	memset(d->r16, 0, b16);
	memset(d->r32, 0, b32);
	memset(d->qf, 0, d32 * 4);
	hkb_rng rng;
	hkb_rng_seed(&rng, o->seed);
	float *v = malloc(d->dim * sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < d->n + o->nq; i++) {
		double nn = 0;
		for (size_t j = 0; j < d->dim; j++) {
			v[j] = (float)hkb_rng_normal(&rng);
			nn += (double)v[j] * v[j];
		}
		float inv = (float)(1 / sqrt(nn));
		if (i < d->n) {
			int8_t *r8 = d->r8 + i * d->s8;
			uint16_t *r16 = (uint16_t *)((char *)d->r16 + i * d->s16);
			float *r32 = (float *)((char *)d->r32 + i * d->s32);
			int32_t s = 0;
			for (size_t j = 0; j < d->dim; j++) {
				float x = v[j] * inv;
				r32[j] = x;
				r16[j] = hk__f32_to_f16(x);
				long q = lrintf(x * 127.0f * 4); /* ~4 sigma per lane */
				q = q > 127 ? 127 : q < -127 ? -127 : q;
				r8[j] = (int8_t)q;
				s += (int32_t)q;
			}
			d->sums[i] = s;
		} else {
			size_t j0 = i - d->n;
			for (size_t j = 0; j < d->dim; j++) {
				float x = v[j] * inv;
				long q = lrintf(x * 127.0f * 4);
				q = q > 127 ? 127 : q < -127 ? -127 : q;
				d->qu[j0 * d->di8 + j] = (uint8_t)(q + 128);
				long qn = lrintf(x * 31.0f * 4);
				qn = qn > 31 ? 31 : qn < -31 ? -31 : qn;
				d->qun[j0 * d->di8 + j] = (uint8_t)(qn + 128);
				if (j0 == 0)
					d->qf[j] = x;
			}
			for (size_t j = d->dim; j < d->di8; j++)
				d->qu[j0 * d->di8 + j] = d->qun[j0 * d->di8 + j] = 128; /* padding: 0 */
		}
		hkb_progress("generating", i + 1, d->n + o->nq);
	}
	free(v);
	return 0;
}

static void free_data(data *d)
{
	hk__afree(d->r8), hk__afree(d->r16), hk__afree(d->r32), hk__afree(d->qf);
	free(d->sums), free(d->qu), free(d->qun);
}

/* Compare a tier with scalar on rows [off, off + cnt): ints exactly, floats
 * within 1e-5 of sum |q_i r_i| (<= ~1 for unit vectors). */
static int verify(const hk__kernel_table *k, const data *d, size_t off, size_t cnt,
                  size_t nq)
{
	const uint8_t *qu = hk__i8_qmax(k) < 127 ? d->qun : d->qu;
	const hk__kernel_table *s = &hk__kernels_scalar;
	size_t dp16 = pad(d->dim, HK_SIMD_PAD_F16), dp32 = pad(d->dim, HK_SIMD_PAD_F32);
	int32_t *a = malloc(cnt * nq * 4), *b = malloc(cnt * nq * 4);
	float *fa = malloc(cnt * 4), *fb = malloc(cnt * 4);
	int bad = !a || !b || !fa || !fb;
	const int8_t *r8 = d->r8 + off * d->s8;
	if (!bad) {
		s->scan_i8(qu, r8, d->sums + off, cnt, d->di8, d->s8, a);
		k->scan_i8(qu, r8, d->sums + off, cnt, d->di8, d->s8, b);
		bad |= memcmp(a, b, cnt * 4) != 0;
		s->tile_i8(qu, nq, d->di8, r8, d->sums + off, cnt, d->di8, d->s8, a, cnt);
		k->tile_i8(qu, nq, d->di8, r8, d->sums + off, cnt, d->di8, d->s8, b, cnt);
		bad |= memcmp(a, b, cnt * nq * 4) != 0;
		const uint16_t *r16 = (const uint16_t *)((const char *)d->r16 + off * d->s16);
		const float *r32 = (const float *)((const char *)d->r32 + off * d->s32);
		s->scan_f16(d->qf, r16, cnt, dp16, d->s16, fa);
		k->scan_f16(d->qf, r16, cnt, dp16, d->s16, fb);
		for (size_t i = 0; i < cnt; i++)
			bad |= fabsf(fa[i] - fb[i]) > 1e-5f;
		s->scan_f32(d->qf, r32, cnt, dp32, d->s32, fa);
		k->scan_f32(d->qf, r32, cnt, dp32, d->s32, fb);
		for (size_t i = 0; i < cnt; i++)
			bad |= fabsf(fa[i] - fb[i]) > 1e-5f;
	}
	free(a), free(b), free(fa), free(fb);
	return bad ? -1 : 0;
}

/* peak: the tier's measured int8 peak in GOP/s (tile rows only, else 0);
 * cpu_gops: the kernel's GOP/s over thread CPU time, the clock the peak is
 * measured on, so the share holds when the machine is shared. */
static void emit(const opts *o, const char *isa, const char *kernel, size_t n,
                 double gbs, double gops, double probe, double peak, double cpu_gops)
{
	double share = peak > 0 ? 100 * cpu_gops / peak : 0;
	if (o->json) {
		printf("{\"suite\":\"kernels\",\"impl\":\"herken\",\"isa\":\"%s\","
		       "\"kernel\":\"%s\",\"dim\":%zu,\"n\":%zu,\"gb_per_s\":%.3f,"
		       "\"gops\":%.3f,\"probe_gb_per_s\":%.3f",
		       isa, kernel, o->dim, n, gbs, gops, probe);
		if (peak > 0)
			printf(",\"cpu_gops\":%.3f,\"i8_peak_gops\":%.3f,\"of_i8_peak\":%.4f",
			       cpu_gops, peak, share / 100);
		printf("}\n");
	} else if (peak > 0) {
		printf("| %-10s | %-10s | %4zu | %8zu | %8.2f | %8.2f | %8.2f | %5.0f %% | %9.1f | %5.1f %% |\n",
		       isa, kernel, o->dim, n, gbs, gops, probe, 100 * gbs / probe, peak, share);
	} else {
		printf("| %-10s | %-10s | %4zu | %8zu | %8.2f | %8.2f | %8.2f | %5.0f %% |         - |       - |\n",
		       isa, kernel, o->dim, n, gbs, gops, probe, 100 * gbs / probe);
	}
	fflush(stdout);
}

/* The int8 peak of the instructions tile_i8 of a tier runs (peak_i8.h), or
 * NULL: scalar has none worth a figure, amx's tiles are not measured. */
static double (*i8_peak(hk_isa isa))(double)
{
	switch (isa) {
	case HK_ISA_AVX2: return hkb_i8_peak_avx2;
	case HK_ISA_AVXVNNI: return hkb_i8_peak_avxvnni;
	case HK_ISA_AVX512: return hkb_i8_peak_avx2; /* its tile is the ymm one */
	case HK_ISA_AVX512VNNI: return hkb_i8_peak_avx512vnni;
	case HK_ISA_NEON: return hkb_i8_peak_neon;
	case HK_ISA_I8MM: return hkb_i8_peak_i8mm;
	default: return NULL;
	}
}

enum kind { K_PROBE, K_SCAN_I8, K_SCAN_F16, K_SCAN_F32, K_TILE, K_COUNT };

static volatile uint32_t sink;

/* One timed run of kernel `w` of tier k over rows [0, n). */
static void run_once(const hk__kernel_table *k, const data *d, enum kind w, size_t n,
                     size_t nq, size_t tblk, void *out)
{
	const uint8_t *qu = hk__i8_qmax(k) < 127 ? d->qun : d->qu;
	size_t dp16 = pad(d->dim, HK_SIMD_PAD_F16), dp32 = pad(d->dim, HK_SIMD_PAD_F32);
	switch (w) {
	case K_PROBE: sink += k->read_sum(d->r8, n * d->s8); break;
	case K_SCAN_I8: k->scan_i8(qu, d->r8, d->sums, n, d->di8, d->s8, out); break;
	case K_SCAN_F16: k->scan_f16(d->qf, d->r16, n, dp16, d->s16, out); break;
	case K_SCAN_F32: k->scan_f32(d->qf, d->r32, n, dp32, d->s32, out); break;
	default:
		for (size_t i = 0; i < n; i += tblk) {
			size_t c = n - i < tblk ? n - i : tblk;
			k->tile_i8(qu, nq, d->di8, d->r8 + i * d->s8, d->sums + i, c, d->di8,
			           d->s8, out, c);
		}
	}
}

int hk__bench_kernels(int argc, char **argv)
{
	opts o;
	if (parse(argc, argv, &o))
		return 2;
	data d;
	if (make_data(&d, &o)) {
		fprintf(stderr, "herken-bench kernels: out of memory for n=%zu dim=%zu\n", o.n,
		        o.dim);
		free_data(&d);
		return 1;
	}
	hkb_print_header("kernels", o.seed);
	if (!o.json) {
		printf("\n| isa        | kernel     |  dim |        n |     GB/s |    GOP/s | probe GB/s | of probe |\n");
		printf("|------------|------------|-----:|---------:|---------:|---------:|---------:|--------:|\n");
	}
	size_t osz = d.n > o.nq * o.tile_rows ? d.n : o.nq * o.tile_rows;
	void *out = malloc(osz * 4);
	double *t = malloc(o.reps * sizeof *t), *tp = malloc(o.reps * sizeof *tp);
	double *tc = malloc(o.reps * sizeof *tc), *pk = malloc(o.reps * sizeof *pk);
	int rc = 0;
	if (!out || !t || !tp || !tc || !pk) {
		fprintf(stderr, "herken-bench kernels: out of memory\n");
		rc = 1;
		goto done;
	}
	for (int isa = 0; isa <= HK_ISA_I8MM; isa++) {
		const hk__kernel_table *k = hk__kernels_for((hk_isa)isa);
		if (!k)
			continue;
		double (*peakf)(double) = i8_peak(k->isa);
		size_t vn = d.n < 1000 ? d.n : 1000;
		size_t nqv = o.nq < 70 ? o.nq : 70;
		if (verify(k, &d, 0, vn, nqv) || verify(k, &d, d.n - vn, vn, nqv)) {
			fprintf(stderr, "herken-bench kernels: %s disagrees with scalar\n", k->name);
			rc = 1;
			goto done;
		}
		if (!o.json)
			printf("<!-- %s: verified against scalar on %zu + %zu rows -->\n", k->name,
			       vn, vn);
		else
			fprintf(stderr, "%s: verified\n", k->name);
		for (int w = 0; w < K_COUNT; w++) {
			/* The scalar tile is ~100x slower: time it on a slice. */
			size_t n = w == K_TILE && isa == HK_ISA_SCALAR && d.n > 20000 ? 20000 : d.n;
			size_t rowb = w == K_SCAN_F16 ? d.s16 : w == K_SCAN_F32 ? d.s32 : d.s8;
			/* The probe reads the same bytes right before each run, so the
			 * ratio holds on a shared, noisy machine. */
			const void *src = w == K_SCAN_F16   ? (const void *)d.r16
			                  : w == K_SCAN_F32 ? (const void *)d.r32
			                                    : (const void *)d.r8;
			for (int r = 0; r < o.reps; r++) {
				double t0 = hkb_now();
				if (w != K_PROBE)
					sink += k->read_sum(src, n * rowb);
				tp[r] = hkb_now() - t0;
				t0 = hkb_now();
				double c0 = hkb_tcpu();
				run_once(k, &d, (enum kind)w, n, o.nq, o.tile_rows, out);
				t[r] = hkb_now() - t0;
				tc[r] = hkb_tcpu() - c0;
			}
			/* the peak after the runs (interleaving it slowed the kernel: the
			 * core leaves its power state between them) */
			for (int r = 0; r < o.reps; r++)
				pk[r] = w == K_TILE && peakf ? peakf(0.05) : 0;
			double sec = hkb_median(t, o.reps);
			double probe = (double)n * rowb / hkb_median(w == K_PROBE ? t : tp, o.reps) / 1e9;
			double ops = w == K_PROBE ? 0 : 2.0 * n * d.dim * (w == K_TILE ? o.nq : 1);
			char name[32];
			static const char *const names[] = {"read_probe", "scan_i8", "scan_f16",
			                                    "scan_f32", "tile_i8"};
			if (w == K_TILE)
				snprintf(name, sizeof name, "tile_i8x%zu", o.nq);
			else
				snprintf(name, sizeof name, "%s", names[w]);
			emit(&o, k->name, name, n, (double)n * rowb / sec / 1e9, ops / sec / 1e9, probe,
			     hkb_median(pk, o.reps), ops / hkb_median(tc, o.reps) / 1e9);
		}
	}
done:
	free(out), free(t), free(tp), free(tc), free(pk);
	free_data(&d);
	return rc;
}
