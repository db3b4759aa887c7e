/*
 * Every compiled and supported kernel tier against the scalar reference in
 * the same binary (hk__kernels_for), the fp16/bf16 converters, and the
 * dispatch cap. int8 results must be exact; float results must agree within
 * a tolerance relative to sum |a_i * b_i| (the scale of the rounding error).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_simd.h"
#include "test_vec.h"
#include "internal.h"

/* fp32 accumulation of up to ~600 terms in a different order than the
 * double reference: a few ulps per term relative to sum|a_i b_i|. */
#define TOL_F32 2e-6

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { return tv_xorshift(&rng_state); }
static float rndf(void) { return (float)((int32_t)rnd() % 20001) / 10000.0f; }
static int8_t rnd_i8(void) { return (int8_t)((int)(rnd() % 255) - 127); }

/* Tiers to test: all compiled and supported except scalar itself. */
static int tiers(const hk__kernel_table **out)
{
	int n = 0;
	for (int isa = 1; isa <= HK_ISA_I8MM; isa++) {
		const hk__kernel_table *k = hk__kernels_for((hk_isa)isa);
		if (k)
			out[n++] = k;
	}
	return n;
}

static void check_f(const char *what, const hk__kernel_table *k, float got,
                    float ref, double mag, size_t n)
{
	double tol = TOL_F32 * mag + 1e-30;
	cr_assert(fabs((double)got - ref) <= tol,
	          "%s/%s n=%zu: got %.9g want %.9g (|diff| %.3g > tol %.3g)", k->name,
	          what, n, got, ref, fabs((double)got - ref), tol);
}

Test(simd, tiers_are_consistent)
{
	const hk__kernel_table *s = hk__kernels_for(HK_ISA_SCALAR);
	cr_assert_not_null(s);
	cr_assert_eq(s, &hk__kernels_scalar);
	cr_assert_null(hk__kernels_for((hk_isa)99));
	const hk__kernel_table *ks[8];
	int n = tiers(ks);
	for (int i = 0; i < n; i++) {
		cr_assert_str_eq(ks[i]->name, hk_isa_name(ks[i]->isa));
		cr_assert(hk__cpu_tiers() & (1u << ks[i]->isa));
		cr_assert(ks[i]->isa <= hk__cpu_detect());
	}
	const hk__kernel_table *cur = hk__kernels();
	cr_assert_eq(cur->isa, hk_cpu_isa());
	cr_assert_eq(hk__kernels_for(cur->isa), cur);
	cr_assert_str_eq(hk_isa_name((hk_isa)42), "unknown");
}

/* ---- pair kernels ----------------------------------------------------- */

Test(simd, pair_kernels_match_scalar)
{
	const hk__kernel_table *s = &hk__kernels_scalar, *ks[8];
	int nt = tiers(ks);
	enum { MAXN = 257, OFF = 3 };
	float *fa = malloc((MAXN + OFF) * 4), *fb = malloc((MAXN + OFF) * 4);
	uint16_t *ha = malloc((MAXN + OFF) * 2), *hb = malloc((MAXN + OFF) * 2);
	uint16_t *bb = malloc((MAXN + OFF) * 2);
	int8_t *ia = malloc(MAXN + OFF), *ib = malloc(MAXN + OFF);
	for (size_t i = 0; i < MAXN + OFF; i++) {
		fa[i] = rndf();
		fb[i] = rndf();
		ha[i] = hk__f32_to_f16(rndf());
		hb[i] = hk__f32_to_f16(rndf() * 100);
		bb[i] = hk__f32_to_bf16(rndf() * 3);
		ia[i] = rnd_i8();
		ib[i] = rnd_i8();
	}
	for (size_t n = 0; n <= MAXN; n++) {
		for (size_t o = 0; o < OFF; o++) {
			size_t o2 = (o + 1) % OFF; /* different misalignment per side */
			double m32 = 0, m16 = 0, m3216 = 0, mbf = 0;
			for (size_t i = 0; i < n; i++) {
				m32 += fabs((double)fa[o + i] * fb[o2 + i]);
				m16 += fabs((double)hk__f16_to_f32(ha[o + i]) *
				            hk__f16_to_f32(hb[o2 + i]));
				m3216 += fabs((double)fa[o + i] * hk__f16_to_f32(hb[o2 + i]));
				mbf += fabs((double)fa[o + i] * hk__bf16_to_f32(bb[o2 + i]));
			}
			float r32 = s->dot_f32(fa + o, fb + o2, n);
			float r16 = s->dot_f16(ha + o, hb + o2, n);
			float r3216 = s->dot_f32_f16(fa + o, hb + o2, n);
			float rbf = s->dot_f32_bf16(fa + o, bb + o2, n);
			int32_t ri8 = s->dot_i8(ia + o, ib + o2, n);
			for (int t = 0; t < nt; t++) {
				const hk__kernel_table *k = ks[t];
				check_f("dot_f32", k, k->dot_f32(fa + o, fb + o2, n), r32, m32, n);
				check_f("dot_f16", k, k->dot_f16(ha + o, hb + o2, n), r16, m16, n);
				check_f("dot_f32_f16", k, k->dot_f32_f16(fa + o, hb + o2, n), r3216,
				        m3216, n);
				check_f("dot_f32_bf16", k, k->dot_f32_bf16(fa + o, bb + o2, n),
				        rbf, mbf, n);
				cr_assert_eq(k->dot_i8(ia + o, ib + o2, n), ri8, "%s dot_i8 n=%zu",
				             k->name, n);
			}
		}
	}
	free(fa), free(fb), free(ha), free(hb), free(bb), free(ia), free(ib);
}

Test(simd, pair_kernels_extremes)
{
	const hk__kernel_table *s = &hk__kernels_scalar, *ks[8];
	int nt = tiers(ks);
	enum { N = 131 };
	int8_t p[N], m[N];
	uint16_t hmax[N], hsub[N], hz[N];
	float one[N];
	memset(p, 127, N);
	memset(m, -127, N);
	for (int i = 0; i < N; i++) {
		hmax[i] = i & 1 ? 0xfbff : 0x7bff; /* -65504 / 65504 */
		hsub[i] = i & 1 ? 0x8001 : 0x0001; /* smallest subnormals */
		hz[i] = i & 1 ? 0x8000 : 0x0000;
		one[i] = 1.0f;
	}
	for (int t = 0; t < nt; t++) {
		const hk__kernel_table *k = ks[t];
		cr_assert_eq(k->dot_i8(p, p, N), 127 * 127 * N);
		cr_assert_eq(k->dot_i8(p, m, N), -127 * 127 * N);
		cr_assert_eq(k->dot_i8(m, m, N), 127 * 127 * N);
		/* Alternating signs cancel exactly: one leftover term. */
		cr_assert_eq(k->dot_f32_f16(one, hmax, N), s->dot_f32_f16(one, hmax, N));
		cr_assert_eq(k->dot_f32_f16(one, hmax, N), 65504.0f);
		cr_assert_eq(k->dot_f16(hsub, hmax, N), s->dot_f16(hsub, hmax, N));
		cr_assert_eq(k->dot_f16(hz, hmax, N), 0.0f);
		cr_assert_eq(k->dot_f32_f16(one, hsub, N), ldexpf(1.0f, -24));
	}
}

/* ---- row kernels ------------------------------------------------------ */

static const size_t counts[] = {0, 1, 2, 3, 5, 17, 1000};
static const size_t dims_i8[] = {64, 128, 192, 320, 576};
static const size_t dims_f[] = {32, 96, 192, 352, 576};

static size_t round64(size_t x) { return (x + 63) / 64 * 64; }

/* Row buffers get 64 bytes of slack per row beyond the padded dim, to make
 * stride != row size; out gets a canary after count. */
#define CANARY_I 0x5a5a5a5a
#define CANARY_F -12345.5f

static void fill_i8(int8_t *rows, int32_t *sums, size_t count, size_t dim,
                    size_t stride, int mode)
{
	for (size_t i = 0; i < count; i++) {
		int32_t s = 0;
		for (size_t j = 0; j < stride; j++) {
			int8_t v = 0;
			if (j < dim)
				v = mode == 0 ? rnd_i8() : mode == 1 ? 127 : -127;
			rows[i * stride + j] = j < dim ? v : (int8_t)0x55; /* slack junk */
			if (j < dim)
				s += v;
		}
		sums[i] = s;
	}
}

/* The query as tier k accepts it: q = qu - 128 clamped to +-i8_qmax (the
 * extremes of a 7-bit tier are its own +-63, which is what it must get
 * exactly right). */
static uint8_t *tier_query(const hk__kernel_table *k, const uint8_t *qu, size_t n)
{
	uint8_t *t = malloc(n);
	int m = hk__i8_qmax(k);
	for (size_t i = 0; i < n; i++) {
		int q = (int)qu[i] - 128;
		t[i] = (uint8_t)(128 + (q > m ? m : q < -m ? -m : q));
	}
	return t;
}

static void check_scan_i8(const hk__kernel_table *k, const uint8_t *qu,
                          const int8_t *rows, const int32_t *sums, size_t count,
                          size_t dim, size_t stride)
{
	int32_t *ref = malloc((count + 1) * 4), *got = malloc((count + 1) * 4);
	uint8_t *qt = tier_query(k, qu, dim);
	qu = qt;
	hk__kernels_scalar.scan_i8(qu, rows, sums, count, dim, stride, ref);
	got[count] = CANARY_I;
	k->scan_i8(qu, rows, sums, count, dim, stride, got);
	for (size_t i = 0; i < count; i++)
		cr_assert_eq(got[i], ref[i], "%s scan_i8 count=%zu dim=%zu row %zu: %d != %d",
		             k->name, count, dim, i, got[i], ref[i]);
	cr_assert_eq(got[count], CANARY_I, "%s scan_i8 wrote past count", k->name);
	free(ref), free(got), free(qt);
}

Test(simd, scan_i8_matches_scalar)
{
	const hk__kernel_table *ks[8];
	int nt = tiers(ks);
	for (size_t di = 0; di < sizeof dims_i8 / sizeof *dims_i8; di++) {
		size_t dim = dims_i8[di], stride = round64(dim) + 64;
		int8_t *rows = hk__aalloc(1000 * stride);
		int32_t *sums = malloc(1000 * 4);
		uint8_t *qbuf = malloc(dim + 1), *qu = qbuf + 1; /* unaligned query */
		for (int mode = 0; mode < 3; mode++) {
			fill_i8(rows, sums, 1000, dim, stride, mode);
			for (size_t j = 0; j < dim; j++)
				qu[j] = mode == 0 ? (uint8_t)(rnd_i8() + 128)
				                  : mode == 1 ? 255 : 1; /* q = +-127 */
			for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
				for (int t = 0; t < nt; t++)
					check_scan_i8(ks[t], qu, rows, sums, counts[ci], dim, stride);
		}
		hk__afree(rows), free(sums), free(qbuf);
	}
}

/*
 * tile_i8_hits of tier k against ref (the scalar tile_i8 results): the same
 * out, and bit i of query j set iff (float)ref * scale > floor, with NaN
 * scales (tombstones) and floors of -inf, +inf and a query's median score;
 * the words' bits past count clear, bytes past them untouched.
 */
static void check_tile_hits(const hk__kernel_table *k, const uint8_t *qt,
                            size_t nq, size_t qstride, const int8_t *rows,
                            const int32_t *sums, size_t count, size_t dim,
                            size_t stride, const int32_t *ref, size_t ldo)
{
	size_t words = (count + 63) / 64, ldb = 8 * words + 8, len = nq * ldo;
	float *scale = malloc((count + 1) * 4), *floor = malloc(nq * 4);
	uint8_t *bits = malloc(nq * ldb);
	int32_t *got = malloc((len + 1) * 4);
	for (size_t i = 0; i < count; i++)
		scale[i] = i % 7 == 3 ? NAN : 1e-4f * (float)(1 + (i * 37) % 101);
	for (size_t j = 0; j < nq; j++) {
		float m = 0; /* a mid score: about half the rows are hits */
		size_t i0 = count / 2 % 7 == 3 ? count / 2 - 1 : count / 2;
		if (count)
			m = (float)ref[j * ldo + i0] * scale[i0];
		floor[j] = j % 4 == 0 ? -INFINITY : j % 4 == 1 ? INFINITY : m;
	}
	memset(bits, 0xa5, nq * ldb);
	for (size_t x = 0; x <= len; x++)
		got[x] = CANARY_I;
	hk__tile_hits h = {scale, floor, bits, ldb};
	k->tile_i8_hits(qt, nq, qstride, rows, sums, count, dim, stride, got, ldo, &h);
	for (size_t x = 0; x <= len; x++)
		cr_assert_eq(got[x], ref[x], "%s tile_i8_hits out at %zu", k->name, x);
	for (size_t j = 0; j < nq; j++) {
		for (size_t i = 0; i < 8 * words * 8; i++) {
			int want = i < count && (float)ref[j * ldo + i] * scale[i] > floor[j];
			int have = (bits[j * ldb + i / 8] >> (i % 8)) & 1;
			cr_assert_eq(have, want, "%s tile_i8_hits nq=%zu count=%zu dim=%zu q%zu row %zu",
			             k->name, nq, count, dim, j, i);
		}
		for (size_t b = 8 * words; b < ldb; b++)
			cr_assert_eq(bits[j * ldb + b], 0xa5, "%s tile_i8_hits wrote past the words",
			             k->name);
	}
	free(scale), free(floor), free(bits), free(got);
}

Test(simd, tile_i8_matches_scalar)
{
	const hk__kernel_table *ks[8];
	int nt = tiers(ks);
	static const size_t nqs[] = {1, 5, 16, 17, 64, 70};
	static const size_t tcounts[] = {0, 1, 3, 17, 33, 300};
	static const size_t tdims[] = {64, 192, 320, 576};
	for (size_t di = 0; di < sizeof tdims / sizeof *tdims; di++) {
		size_t dim = tdims[di], stride = round64(dim);
		int8_t *rows = hk__aalloc(300 * stride);
		int32_t *sums = malloc(300 * 4);
		size_t qstride = dim + 3;
		uint8_t *qu = malloc(70 * qstride);
		/* modes: random; rows -127 x q max; rows +127 x q max; rows +127 x q min */
		for (int mode = 0; mode < 4; mode++) {
			fill_i8(rows, sums, 300, dim, stride, mode == 0 ? 0 : mode == 1 ? 2 : 1);
			for (size_t j = 0; j < 70 * qstride; j++)
				qu[j] = mode == 0 ? (uint8_t)(rnd_i8() + 128) : mode == 3 ? 1 : 255;
			for (size_t a = 0; a < sizeof nqs / sizeof *nqs; a++) {
				for (size_t b = 0; b < sizeof tcounts / sizeof *tcounts; b++) {
					size_t nq = nqs[a], count = tcounts[b], ldo = count + 5;
					size_t len = nq * ldo;
					int32_t *ref = malloc((len + 1) * 4), *got = malloc((len + 1) * 4);
					for (int t = 0; t < nt; t++) {
						uint8_t *qt = tier_query(ks[t], qu, 70 * qstride);
						for (size_t x = 0; x <= len; x++)
							ref[x] = got[x] = CANARY_I;
						hk__kernels_scalar.tile_i8(qt, nq, qstride, rows, sums, count,
						                           dim, stride, ref, ldo);
						ks[t]->tile_i8(qt, nq, qstride, rows, sums, count, dim, stride,
						               got, ldo);
						for (size_t x = 0; x <= len; x++)
							cr_assert_eq(got[x], ref[x],
							             "%s tile_i8 nq=%zu count=%zu dim=%zu at %zu: %d != %d",
							             ks[t]->name, nq, count, dim, x, got[x], ref[x]);
						if (ks[t]->tile_i8_hits)
							check_tile_hits(ks[t], qt, nq, qstride, rows, sums, count,
							                dim, stride, ref, ldo);
						free(qt);
					}
					free(ref), free(got);
				}
			}
		}
		hk__afree(rows), free(sums), free(qu);
	}
}

static double mag_row_f(const float *q, const float *rf, const uint16_t *rh,
                        size_t dim)
{
	double m = 0;
	for (size_t j = 0; j < dim; j++)
		m += fabs((double)q[j] * (rf ? rf[j] : hk__f16_to_f32(rh[j])));
	return m;
}

Test(simd, scan_f32_f16_match_scalar)
{
	const hk__kernel_table *ks[8];
	int nt = tiers(ks);
	for (size_t di = 0; di < sizeof dims_f / sizeof *dims_f; di++) {
		size_t dim = dims_f[di];
		size_t s32 = round64(dim * 4) + 64, s16 = round64(dim * 2) + 64;
		float *rf = hk__aalloc(1000 * s32);
		uint16_t *rh = hk__aalloc(1000 * s16);
		float *qbuf = malloc((dim + 1) * 4), *q = qbuf + 1;
		float *ref = malloc(1001 * 4), *got = malloc(1001 * 4);
		for (int mode = 0; mode < 3; mode++) {
			for (size_t i = 0; i < 1000; i++) {
				float *a = (float *)((char *)rf + i * s32);
				uint16_t *h = (uint16_t *)((char *)rh + i * s16);
				for (size_t j = 0; j < s32 / 4; j++)
					a[j] = j < dim ? rndf() : NAN; /* slack is never read */
				for (size_t j = 0; j < s16 / 2; j++) {
					uint16_t v = hk__f32_to_f16(rndf());
					if (mode == 1) /* fp16 max / subnormal / zero */
						v = (uint16_t[]){0x7bff, 0xfbff, 0x0001, 0x8001, 0x0000,
						                 0x8000, 0x03ff}[(i + j) % 7];
					h[j] = j < dim ? v : 0x7e00;
				}
			}
			for (size_t j = 0; j < dim; j++)
				q[j] = mode == 2 ? 1e-3f * rndf() : rndf();
			for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
				size_t count = counts[ci];
				for (int f16 = 0; f16 < 2; f16++) {
					if (f16)
						hk__kernels_scalar.scan_f16(q, rh, count, dim, s16, ref);
					else
						hk__kernels_scalar.scan_f32(q, rf, count, dim, s32, ref);
					for (int t = 0; t < nt; t++) {
						got[count] = CANARY_F;
						if (f16)
							ks[t]->scan_f16(q, rh, count, dim, s16, got);
						else
							ks[t]->scan_f32(q, rf, count, dim, s32, got);
						for (size_t i = 0; i < count; i++) {
							const float *a = (const float *)((const char *)rf + i * s32);
							const uint16_t *h =
							    (const uint16_t *)((const char *)rh + i * s16);
							double m = mag_row_f(q, f16 ? NULL : a, h, dim);
							check_f(f16 ? "scan_f16" : "scan_f32", ks[t], got[i], ref[i],
							        m, dim);
						}
						cr_assert_eq(got[count], CANARY_F, "%s wrote past count",
						             ks[t]->name);
					}
				}
			}
		}
		hk__afree(rf), hk__afree(rh), free(qbuf), free(ref), free(got);
	}
}

Test(simd, read_probe_matches_scalar)
{
	const hk__kernel_table *ks[8];
	int nt = tiers(ks);
	uint32_t *buf = hk__aalloc(64 * 37);
	for (size_t i = 0; i < 16 * 37; i++)
		buf[i] = rnd() * 2654435761u;
	for (size_t lines = 0; lines <= 37; lines++) {
		uint32_t want = hk__kernels_scalar.read_sum(buf, 64 * lines);
		for (int t = 0; t < nt; t++)
			cr_assert_eq(ks[t]->read_sum(buf, 64 * lines), want, "%s read_sum %zu lines",
			             ks[t]->name, lines);
	}
	hk__afree(buf);
}

/* ---- converters ------------------------------------------------------- */

static float bits_f(uint32_t x)
{
	float f;
	memcpy(&f, &x, 4);
	return f;
}

Test(simd, f16_round_trip_and_rounding)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = hk__f16_to_f32((uint16_t)h);
		uint16_t back = hk__f32_to_f16(f);
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
			cr_assert(isnan(f));
			cr_assert((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN stays NaN");
		} else {
			cr_assert_eq(back, h, "round trip 0x%04x -> %g -> 0x%04x", h, f, back);
		}
	}
	/* Ties go to even, elsewhere to nearest. */
	cr_assert_eq(hk__f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
	cr_assert_eq(hk__f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
	cr_assert_eq(hk__f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
	cr_assert_eq(hk__f32_to_f16(65519.0f), 0x7bff);
	cr_assert_eq(hk__f32_to_f16(65520.0f), 0x7c00); /* tie rounds to Inf */
	cr_assert_eq(hk__f32_to_f16(-1e9f), 0xfc00);
	cr_assert_eq(hk__f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even 0 */
	cr_assert_eq(hk__f32_to_f16(3 * ldexpf(1, -25)), 0x0002);
	cr_assert_eq(hk__f32_to_f16(ldexpf(1, -26)), 0x0000);
	cr_assert_eq(hk__f32_to_f16(-0.0f), 0x8000);
	cr_assert_eq(hk__f32_to_f16(INFINITY), 0x7c00);
	cr_assert_eq(hk__f32_to_f16(-INFINITY), 0xfc00);
	uint16_t n = hk__f32_to_f16(NAN);
	cr_assert((n & 0x7c00) == 0x7c00 && (n & 0x3ff));
	/* Subnormal rounding up into the normal range. */
	cr_assert_eq(hk__f32_to_f16(ldexpf(1023.5f, -24)), 0x0400);
}

Test(simd, bf16_round_trip_and_rounding)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = hk__bf16_to_f32((uint16_t)h);
		uint16_t back = hk__f32_to_bf16(f);
		if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
			cr_assert(isnan(hk__bf16_to_f32(back)));
		else
			cr_assert_eq(back, h);
	}
	cr_assert_eq(hk__f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
	cr_assert_eq(hk__f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
	cr_assert_eq(hk__f32_to_bf16(bits_f(0x3f808001)), 0x3f81);
	cr_assert_eq(hk__f32_to_bf16(bits_f(0x7f7fffff)), 0x7f80); /* max -> Inf */
	cr_assert_eq(hk__f32_to_bf16(INFINITY), 0x7f80);
	cr_assert(isnan(hk__bf16_to_f32(hk__f32_to_bf16(bits_f(0x7f800001)))),
	          "a NaN with low payload bits stays NaN");
}

/* The hardware conversions in the SIMD tiers agree bit for bit with the
 * scalar converter on every fp16 value (dot with 1.0 over one element, and
 * over 16 so the vector path, not the scalar tail, converts). */
Test(simd, hw_f16_conversion_matches_scalar)
{
	const hk__kernel_table *ks[8];
	int nt = tiers(ks);
	float one[16];
	uint16_t h16[16];
	for (int i = 0; i < 16; i++)
		one[i] = 0;
	one[0] = 1;
	for (int t = 0; t < nt; t++) {
		for (uint32_t h = 0; h < 65536; h++) {
			if ((h & 0x7c00) == 0x7c00)
				continue; /* Inf/NaN: Inf*0 in the other lanes */
			memset(h16, 0, sizeof h16);
			h16[0] = (uint16_t)h;
			float want = hk__f16_to_f32((uint16_t)h);
			float got = ks[t]->dot_f32_f16(one, h16, 16);
			cr_assert(got == want || (got == 0 && want == 0),
			          "%s: 0x%04x -> %g, want %g", ks[t]->name, h, got, want);
		}
	}
}

/* ---- dispatch --------------------------------------------------------- */

Test(simd, isa_parse)
{
	hk_isa v;
	cr_assert_eq(hk__isa_parse("avx512vnni", &v), 0);
	cr_assert_eq(v, HK_ISA_AVX512VNNI);
	cr_assert_eq(hk__isa_parse("AVX2", &v), 0);
	cr_assert_eq(v, HK_ISA_AVX2);
	cr_assert_eq(hk__isa_parse("neon", &v), 0);
	cr_assert_eq(v, HK_ISA_NEON);
	cr_assert_eq(hk__isa_parse("avx3", &v), -1);
	cr_assert_eq(hk__isa_parse("", &v), -1);
	cr_assert_eq(hk__isa_parse(NULL, &v), -1);
}

Test(simd, max_isa_cap)
{
	unsigned all = 0xff; /* pretend the CPU has every tier */
#if defined(HK_ARCH_X86)
	hk_isa top = HK_ISA_AMX;
	cr_assert_eq(hk__isa_choose(all, "avx512vnni"), HK_ISA_AVX512VNNI);
	cr_assert_eq(hk__isa_choose(all, "avx2"), HK_ISA_AVX2);
	cr_assert_eq(hk__isa_choose(all, "avxvnni"), HK_ISA_AVXVNNI);
	cr_assert_eq(hk__isa_choose(all, "avx512"), HK_ISA_AVX512);
	cr_assert_eq(hk__isa_choose(all, "neon"), HK_ISA_SCALAR); /* not built */
	cr_assert_eq(hk__isa_choose(all, "i8mm"), HK_ISA_AMX);   /* not built */
	/* Ice Lake server: AVX-512 VNNI but no AVX-VNNI. */
	unsigned icx = (1u << HK_ISA_SCALAR) | (1u << HK_ISA_AVX2) |
	               (1u << HK_ISA_AVX512) | (1u << HK_ISA_AVX512VNNI);
	cr_assert_eq(hk__isa_choose(icx, "avxvnni"), HK_ISA_AVX2);
	cr_assert_eq(hk__isa_choose(icx, NULL), HK_ISA_AVX512VNNI);
	/* Without OS support for AVX state only scalar remains. */
	cr_assert_eq(hk__isa_choose(1u, "avx512vnni"), HK_ISA_SCALAR);
#elif defined(HK_ARCH_ARM64)
	hk_isa top = HK_ISA_I8MM;
	cr_assert_eq(hk__isa_choose(all, "avx2"), HK_ISA_NEON);
	cr_assert_eq(hk__isa_choose(all, "neon"), HK_ISA_NEON);
	cr_assert_eq(hk__isa_choose(all & ~(1u << HK_ISA_I8MM), NULL), HK_ISA_NEON);
	cr_assert_eq(hk__isa_choose(1u, "neon"), HK_ISA_SCALAR);
#else
	hk_isa top = HK_ISA_SCALAR;
#endif
	cr_assert_eq(hk__isa_choose(all, "scalar"), HK_ISA_SCALAR);
	cr_assert_eq(hk__isa_choose(all, "SCALAR"), HK_ISA_SCALAR);
	cr_assert_eq(hk__isa_choose(all, NULL), top);
	cr_assert_eq(hk__isa_choose(all, ""), top);
	cr_assert_eq(hk__isa_choose(all, "bogus"), top, "unknown cap is ignored");
	/* The real CPU's tiers with no cap give hk__cpu_detect(), all compiled. */
	cr_assert_eq(hk__isa_choose(hk__cpu_tiers(), NULL), hk__cpu_detect());
}

static void *get_table(void *arg)
{
	(void)arg;
	return (void *)hk__kernels();
}

/* The table is chosen once even when threads race for it (run under TSan). */
Test(simd, dispatch_is_thread_safe)
{
	pthread_t th[4];
	void *got[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, get_table, NULL), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_join(th[i], &got[i]), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(got[i], hk__kernels());
		cr_assert_eq(((const hk__kernel_table *)got[i])->isa, hk_cpu_isa());
	}
}

static int log_warned;
static void count_warn(int level, const char *msg, void *user)
{
	(void)user;
	if (level == HK_LOG_WARN && strstr(msg, "HERKEN_MAX_ISA"))
		log_warned++;
}

/* An unknown cap is ignored; simd/ only reports it (hk__kernels_status)
 * and the library warns once, when the first gallery picks its kernels. */
Test(simd, unknown_cap_warns)
{
	cr_assert_eq(hk__isa_choose(0x7f, "sse9"), hk__isa_choose(0x7f, NULL));
	setenv("HERKEN_MAX_ISA", "sse9", 1);
	hk_set_log(count_warn, NULL, HK_LOG_DEBUG);
	log_warned = 0;
	cr_assert_eq(hk__kernels_status(), -EINVAL);
	cr_assert_eq(log_warned, 0, "simd/ itself never logs");
	hk_gallery_params gp;
	hk_gallery_default_params(&gp);
	gp.dim = 16;
	hk_gallery *g = NULL;
	cr_assert_eq(hk_gallery_create(&gp, &g), HK_OK, "%s", hk_last_error());
	hk_gallery_destroy(g);
	hk_set_log(NULL, NULL, 0);
	unsetenv("HERKEN_MAX_ISA");
	cr_assert_eq(log_warned, 1);
}

#if defined(HK_ARCH_X86)
/* Oracle for detection: the kernel's view of the CPU flags (which also
 * reflects XCR0: Linux clears AVX flags the OS does not enable). */
static int has_flag(const char *flags, const char *f)
{
	size_t n = strlen(f);
	for (const char *p = flags; (p = strstr(p, f)); p += n)
		if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

Test(simd, detection_matches_proc_cpuinfo)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		cr_skip_test("/proc/cpuinfo absent");
	static char line[8192];
	int found = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5)) {
			found = 1;
			break;
		}
	fclose(f);
	if (!found)
		cr_skip_test("no flags line in /proc/cpuinfo");
	int t2 = has_flag(line, "avx2") && has_flag(line, "fma") && has_flag(line, "f16c");
	int t512 = t2 && has_flag(line, "avx512f") && has_flag(line, "avx512bw") &&
	           has_flag(line, "avx512vl") && has_flag(line, "avx512dq");
	unsigned want = 1u << HK_ISA_SCALAR;
	want |= t2 ? 1u << HK_ISA_AVX2 : 0;
	want |= t2 && has_flag(line, "avx_vnni") ? 1u << HK_ISA_AVXVNNI : 0;
	want |= t512 ? 1u << HK_ISA_AVX512 : 0;
	want |= t512 && has_flag(line, "avx512_vnni") ? 1u << HK_ISA_AVX512VNNI : 0;
	want |= t512 && has_flag(line, "avx512_vnni") && has_flag(line, "amx_tile") &&
	                has_flag(line, "amx_int8")
	            ? 1u << HK_ISA_AMX
	            : 0;
	cr_assert_eq(hk__cpu_tiers(), want, "tiers 0x%x, /proc/cpuinfo says 0x%x",
	             hk__cpu_tiers(), want);
}
#endif
