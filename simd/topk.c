#include "topk.h"
#include "hk_simd.h"

#include <pthread.h>

static void sift_down(hk__cand *c, uint32_t n, uint32_t i)
{
	hk__cand x = c[i];
	for (;;) {
		uint32_t l = 2 * i + 1;
		if (l >= n)
			break;
		uint32_t m = (l + 1 < n && c[l + 1].score < c[l].score) ? l + 1 : l;
		if (!(c[m].score < x.score))
			break;
		c[i] = c[m];
		i = m;
	}
	c[i] = x;
}

void hk__heap_push(hk__heap *h, float score, uint32_t slot)
{
	if (h->cap == 0)
		return;
	if (h->n < h->cap) {
		uint32_t i = h->n++;
		while (i > 0) {
			uint32_t p = (i - 1) / 2;
			if (!(score < h->c[p].score))
				break;
			h->c[i] = h->c[p];
			i = p;
		}
		h->c[i].score = score;
		h->c[i].slot = slot;
		return;
	}
	if (!(score > h->c[0].score))
		return;
	h->c[0].score = score;
	h->c[0].slot = slot;
	sift_down(h->c, h->n, 0);
}

/* One body for int32 and float dots (exactly one of di, df non-NULL). */
HK_AINL int score_scalar(const int32_t *di, const float *df, const float *scale,
                         size_t cnt, float floor, float *out, uint64_t *hits)
{
	uint64_t any = 0;
	for (size_t w = 0; w < (cnt + 63) / 64; w++)
		hits[w] = 0;
	for (size_t i = 0; i < cnt; i++) {
		out[i] = (di ? (float)di[i] : df[i]) * scale[i];
		uint64_t b = out[i] > floor;
		hits[i / 64] |= b << (i % 64);
		any |= b;
	}
	return any != 0;
}

int hk__score_block_i32_scalar(const int32_t *dots, const float *scale,
                               size_t cnt, float floor, float *out,
                               uint64_t *hits)
{
	return score_scalar(dots, NULL, scale, cnt, floor, out, hits);
}

int hk__score_block_f32_scalar(const float *dots, const float *scale,
                               size_t cnt, float floor, float *out,
                               uint64_t *hits)
{
	return score_scalar(NULL, dots, scale, cnt, floor, out, hits);
}

static hk__score_i32_fn score_i32 = hk__score_block_i32_scalar;
static hk__score_f32_fn score_f32 = hk__score_block_f32_scalar;
static pthread_once_t score_once = PTHREAD_ONCE_INIT;

static void score_choose(void)
{
#if defined(HK_ARCH_X86)
	hk_isa t = hk_cpu_isa();
	if (t >= HK_ISA_AVX512) {
		score_i32 = hk__score_block_i32_avx512;
		score_f32 = hk__score_block_f32_avx512;
	} else if (t >= HK_ISA_AVX2) {
		score_i32 = hk__score_block_i32_avx2;
		score_f32 = hk__score_block_f32_avx2;
	}
#endif
}

/* Only the scores above the floor at scoring time are visited, each checked
 * against the floor as it rises; score i is s[i], or dots[i] * scale[i]
 * when s is NULL. */
HK_AINL void visit(hk__heap *h, const float *s, const int32_t *dots,
                   const float *scale, const uint64_t *hits, size_t cnt,
                   uint32_t base)
{
	float f = hk__heap_floor(h);
	for (size_t w = 0; w < (cnt + 63) / 64; w++)
		for (uint64_t b = hits[w]; b; b &= b - 1) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(b);
			float x = s ? s[i] : (float)dots[i] * scale[i];
			if (x > f) {
				hk__heap_push(h, x, base + (uint32_t)i);
				f = hk__heap_floor(h);
			}
		}
}

static void offer(hk__heap *h, const float *s, const uint64_t *hits,
                  size_t cnt, uint32_t base)
{
	visit(h, s, NULL, NULL, hits, cnt, base);
}

void hk__topk_offer_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        const uint64_t *hits, size_t cnt, uint32_t base)
{
	visit(h, NULL, dots, scale, hits, cnt, base);
}

#define CHUNK 1024 /* rows scored per bitmap */

void hk__topk_block_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	pthread_once(&score_once, score_choose);
	uint64_t hits[CHUNK / 64];
	for (size_t i = 0; i < cnt; i += CHUNK) {
		size_t n = cnt - i < CHUNK ? cnt - i : CHUNK;
		if (score_i32(dots + i, scale + i, n, hk__heap_floor(h), tmp + i, hits))
			offer(h, tmp + i, hits, n, base + (uint32_t)i);
	}
}

void hk__topk_block_f32(hk__heap *h, const float *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	pthread_once(&score_once, score_choose);
	uint64_t hits[CHUNK / 64];
	for (size_t i = 0; i < cnt; i += CHUNK) {
		size_t n = cnt - i < CHUNK ? cnt - i : CHUNK;
		if (score_f32(dots + i, scale + i, n, hk__heap_floor(h), tmp + i, hits))
			offer(h, tmp + i, hits, n, base + (uint32_t)i);
	}
}

void hk__heap_merge(hk__heap *dst, const hk__heap *src)
{
	for (uint32_t i = 0; i < src->n; i++)
		hk__heap_push(dst, src->c[i].score, src->c[i].slot);
}

int hk__score_block_i32(const int32_t *dots, const float *scale, size_t cnt,
                        float floor, float *out, uint64_t *hits)
{
	pthread_once(&score_once, score_choose);
	return score_i32(dots, scale, cnt, floor, out, hits);
}
