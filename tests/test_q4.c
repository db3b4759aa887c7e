/*
 * The 4-bit first pass (simd/q4.h): its error bound is never violated, on
 * random and on adversarial rows (every residual at its extreme, the query
 * aligned with it, the clamped ends of the int8 range), and the bounded
 * search finds exactly the int8 scan's top k' on every compiled tier.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hk_simd.h"
#include "test_vec.h"
#include "q4.h"

static uint64_t st = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) { return tv_xorshift(&st); }

/* |dot8 - 17 dot(q, c)| <= B for one row and query, all in exact integers. */
static void check_row(const int8_t *r, const int8_t *q, size_t d8)
{
	int8_t c[1024];
	int32_t cs, be;
	hk__q4_encode(r, d8, c, &cs, &be);
	int64_t dot8 = 0, dot4 = 0, csum = 0;
	uint64_t q2 = 0;
	for (size_t i = 0; i < d8; i++) {
		cr_assert(c[i] >= -7 && c[i] <= 7, "code %d", c[i]);
		cr_assert(abs(r[i] - HK_Q4_STEP * c[i]) <= 8, "residual of %d", r[i]);
		dot8 += (int64_t)q[i] * r[i];
		dot4 += (int64_t)q[i] * c[i];
		csum += c[i];
		q2 += (uint64_t)((int)q[i] * q[i]);
	}
	cr_assert_eq(csum, cs);
	int64_t err = dot8 - HK_Q4_STEP * dot4, b = hk__q4_bound(q2, be);
	cr_assert(llabs(err) <= b, "bound violated: |%lld| > %lld", (long long)err,
	          (long long)b);
}

Test(q4, bound_holds_on_random_and_adversarial_rows)
{
	int8_t r[1024], q[1024];
	const size_t dims[] = {64, 192, 512, 1024};
	for (size_t di = 0; di < 4; di++) {
		size_t d8 = dims[di];
		for (int t = 0; t < 400; t++) {
			int qmax = t % 2 ? 127 : 31;
			for (size_t i = 0; i < d8; i++) {
				r[i] = (int8_t)((int)(rnd() % 255) - 127);
				q[i] = (int8_t)((int)(rnd() % (2 * qmax + 1)) - qmax);
			}
			check_row(r, q, d8);
		}
		/* adversarial: every residual at +-8 (r = 17c +- 8), the query
		 * +-127 with the residual's sign, so dot(q, e) = 127 * 8 * d (the
		 * Cauchy-Schwarz case of equality); then the ends of the range */
		for (int t = 0; t < 50; t++) {
			for (size_t i = 0; i < d8; i++) {
				int c = (int)(rnd() % 13) - 6, s = rnd() % 2 ? 1 : -1;
				r[i] = (int8_t)(HK_Q4_STEP * c + 8 * s);
				q[i] = (int8_t)(127 * s);
			}
			check_row(r, q, d8);
			for (size_t i = 0; i < d8; i++) {
				r[i] = (int8_t)(rnd() % 2 ? 127 : -127);
				q[i] = (int8_t)(r[i] > 0 ? 127 : -127);
			}
			check_row(r, q, d8);
		}
	}
}

static int cmp_desc(const void *a, const void *b)
{
	float x = ((const hk__cand *)a)->score, y = ((const hk__cand *)b)->score;
	return (x < y) - (x > y);
}

Test(q4, bounded_search_finds_the_int8_top_k)
{
	enum { N = 3000, D8 = 192, NQ = 21, KK = 16 };
	int8_t *r8 = aligned_alloc(64, N * D8), *c4 = aligned_alloc(64, N * D8);
	int32_t rs[N], cs[N], be[N];
	float sc[N];
	uint8_t *qu = aligned_alloc(64, NQ * D8);
	cr_assert(r8 && c4 && qu);
	for (int mode = 0; mode < 2; mode++) {
		for (size_t i = 0; i < N; i++) {
			int32_t s = 0;
			for (size_t k = 0; k < D8; k++) {
				/* mode 1: rows near the residual extremes */
				int v = mode ? HK_Q4_STEP * ((int)(rnd() % 13) - 6) + (rnd() % 2 ? 8 : -8)
				             : (int)(rnd() % 255) - 127;
				r8[i * D8 + k] = (int8_t)v;
				s += v;
			}
			rs[i] = s;
			sc[i] = i % 97 == 5 ? NAN : (float)(rnd() % 1000 + 1) * 1e-5f;
			hk__q4_encode(r8 + i * D8, D8, c4 + i * D8, &cs[i], &be[i]);
		}
		int tested = 0;
		for (int isa = 0; isa <= HK_ISA_I8MM; isa++) {
			const hk__kernel_table *K = hk__kernels_for((hk_isa)isa);
			if (!K)
				continue;
			tested++;
			int qmax = hk__i8_qmax(K);
			for (size_t i = 0; i < NQ * D8; i++)
				qu[i] = (uint8_t)(128 + (int)(rnd() % (2 * qmax + 1)) - qmax);
			hk__cand ca[NQ][KK], cb[NQ][KK];
			hk__heap ha[NQ], hb[NQ];
			for (size_t j = 0; j < NQ; j++) {
				ha[j] = (hk__heap){ca[j], 0, KK};
				hb[j] = (hk__heap){cb[j], 0, KK};
			}
			hk__q4_rows plain = {N, D8, r8, rs, sc, NULL, NULL, NULL};
			hk__q4_rows codes = {N, D8, r8, rs, sc, c4, cs, be};
			uint64_t res = 0;
			hk__q4_search(K, &plain, qu, NQ, D8, ha, NULL);
			hk__q4_search(K, &codes, qu, NQ, D8, hb, &res);
			cr_assert(res > 0 && res < (uint64_t)N * NQ, "%s: re-scored %llu", K->name,
			          (unsigned long long)res);
			for (size_t j = 0; j < NQ; j++) {
				cr_assert_eq(ha[j].n, KK);
				cr_assert_eq(hb[j].n, KK);
				qsort(ca[j], KK, sizeof(hk__cand), cmp_desc);
				qsort(cb[j], KK, sizeof(hk__cand), cmp_desc);
				/* the same scores (slots may differ only on ties) */
				for (size_t i = 0; i < KK; i++)
					cr_assert_eq(ca[j][i].score, cb[j][i].score,
					             "%s mode %d query %zu rank %zu: %g vs %g", K->name, mode,
					             j, i, ca[j][i].score, cb[j][i].score);
			}
		}
		cr_assert_geq(tested, 1);
	}
	free(r8), free(c4), free(qu);
}
