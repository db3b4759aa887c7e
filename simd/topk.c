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

int hk__score_block_i32_scalar(const int32_t *dots, const float *scale,
                               size_t cnt, float floor, float *out)
{
	int any = 0;
	for (size_t i = 0; i < cnt; i++) {
		out[i] = (float)dots[i] * scale[i];
		any |= out[i] > floor;
	}
	return any;
}

int hk__score_block_f32_scalar(const float *dots, const float *scale,
                               size_t cnt, float floor, float *out)
{
	int any = 0;
	for (size_t i = 0; i < cnt; i++) {
		out[i] = dots[i] * scale[i];
		any |= out[i] > floor;
	}
	return any;
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

/* Only a block with a score above the floor takes the insertion path. */
static void offer(hk__heap *h, const float *s, size_t cnt, uint32_t base)
{
	for (size_t i = 0; i < cnt; i++)
		if (s[i] > hk__heap_floor(h))
			hk__heap_push(h, s[i], base + (uint32_t)i);
}

void hk__topk_block_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	pthread_once(&score_once, score_choose);
	if (score_i32(dots, scale, cnt, hk__heap_floor(h), tmp))
		offer(h, tmp, cnt, base);
}

void hk__topk_block_f32(hk__heap *h, const float *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	pthread_once(&score_once, score_choose);
	if (score_f32(dots, scale, cnt, hk__heap_floor(h), tmp))
		offer(h, tmp, cnt, base);
}

void hk__heap_merge(hk__heap *dst, const hk__heap *src)
{
	for (uint32_t i = 0; i < src->n; i++)
		hk__heap_push(dst, src->c[i].score, src->c[i].slot);
}
