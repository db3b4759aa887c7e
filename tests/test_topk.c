/* Top-k selection: the heap against sorting, block scoring per ISA against
 * the scalar reference (NaN tombstones never pass). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "topk.h"

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x < y) - (x > y);
}

Test(topk, heap_keeps_the_k_largest)
{
	srand(5);
	for (int trial = 0; trial < 50; trial++) {
		int n = rand() % 2000, k = 1 + rand() % 70;
		float *v = malloc((n + 1) * sizeof *v);
		hk__cand c[70];
		hk__heap h = {c, 0, (uint32_t)k};
		for (int i = 0; i < n; i++) {
			v[i] = (float)(rand() % 500) / 7.0f; /* many ties */
			hk__heap_push(&h, v[i], (uint32_t)i);
		}
		cr_assert_eq(h.n, (uint32_t)(n < k ? n : k));
		float got[70];
		for (uint32_t i = 0; i < h.n; i++) {
			got[i] = c[i].score;
			cr_assert_eq(v[c[i].slot], c[i].score);
		}
		qsort(got, h.n, sizeof *got, cmp_desc);
		qsort(v, n, sizeof *v, cmp_desc);
		for (uint32_t i = 0; i < h.n; i++)
			cr_assert_eq(got[i], v[i]);
		free(v);
	}
}

typedef struct variant {
	const char *name;
	hk_isa need;
	hk__score_i32_fn fi;
	hk__score_f32_fn ff;
} variant;

Test(topk, score_block_variants_match_scalar)
{
	variant vs[] = {
#if defined(HK_ARCH_X86)
		{"avx2", HK_ISA_AVX2, hk__score_block_i32_avx2, hk__score_block_f32_avx2},
		{"avx512", HK_ISA_AVX512, hk__score_block_i32_avx512, hk__score_block_f32_avx512},
#endif
		{"scalar", HK_ISA_SCALAR, hk__score_block_i32_scalar, hk__score_block_f32_scalar},
	};
	srand(9);
	int32_t d[300];
	float df[300], sc[300], o1[300], o2[300];
	uint64_t h1[5], h2[5];
	int tested = 0;
	for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++) {
		/* a tier is testable when this CPU runs at it or above (x86 tiers) */
		if (vs[v].need != HK_ISA_SCALAR &&
		    !(hk_cpu_isa() >= vs[v].need && hk_cpu_isa() != HK_ISA_NEON))
			continue;
		tested++;
		for (size_t cnt = 0; cnt <= 300; cnt += (cnt < 40 ? 1 : 37)) {
			for (size_t i = 0; i < cnt; i++) {
				d[i] = rand() % 200001 - 100000;
				df[i] = (float)d[i] / 1000.0f;
				sc[i] = (rand() % 10 == 0) ? NAN : (float)(rand() % 1000) / 1e4f;
			}
			size_t nw = (cnt + 63) / 64;
			const float floors[] = {-INFINITY, 0.0f, 5.0f, 1e9f};
			for (int f = 0; f < 4; f++) {
				memset(h2, 0xa5, sizeof h2); /* every word must be written */
				int a = hk__score_block_i32_scalar(d, sc, cnt, floors[f], o1, h1);
				int b = vs[v].fi(d, sc, cnt, floors[f], o2, h2);
				cr_assert_eq(!!a, !!b, "%s i32 cnt %zu floor %f", vs[v].name, cnt, floors[f]);
				cr_assert_eq(memcmp(o1, o2, cnt * sizeof(float)), 0, "%s i32 scores", vs[v].name);
				cr_assert_eq(memcmp(h1, h2, nw * 8), 0, "%s i32 hits cnt %zu", vs[v].name, cnt);
				/* the bitmap says exactly which scores beat the floor */
				for (size_t i = 0; i < cnt; i++)
					cr_assert_eq((int)((h1[i / 64] >> (i % 64)) & 1), o1[i] > floors[f]);
				memset(h2, 0xa5, sizeof h2);
				a = hk__score_block_f32_scalar(df, sc, cnt, floors[f], o1, h1);
				b = vs[v].ff(df, sc, cnt, floors[f], o2, h2);
				cr_assert_eq(!!a, !!b, "%s f32 cnt %zu", vs[v].name, cnt);
				cr_assert_eq(memcmp(o1, o2, cnt * sizeof(float)), 0, "%s f32 scores", vs[v].name);
				cr_assert_eq(memcmp(h1, h2, nw * 8), 0, "%s f32 hits cnt %zu", vs[v].name, cnt);
			}
		}
		/* all tombstones: nothing passes even an -inf floor */
		for (int i = 0; i < 50; i++)
			sc[i] = NAN;
		cr_assert_eq(vs[v].fi(d, sc, 50, -INFINITY, o1, h1), 0, "%s: NaN passed", vs[v].name);
		cr_assert_eq(h1[0], 0, "%s: NaN hit", vs[v].name);
	}
	cr_assert_geq(tested, 1);
}
