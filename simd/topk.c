#include "topk.h"

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

/* The filter loop is written so that the compiler vectorises it: no early
 * exit, an OR-reduction of the comparisons. */
static void offer(hk__heap *h, const float *s, size_t cnt, uint32_t base)
{
	float floor = hk__heap_floor(h);
	int any = 0;
	for (size_t i = 0; i < cnt; i++)
		any |= s[i] > floor;
	if (!any)
		return;
	for (size_t i = 0; i < cnt; i++)
		if (s[i] > hk__heap_floor(h))
			hk__heap_push(h, s[i], base + (uint32_t)i);
}

void hk__topk_block_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	for (size_t i = 0; i < cnt; i++)
		tmp[i] = (float)dots[i] * scale[i];
	offer(h, tmp, cnt, base);
}

void hk__topk_block_f32(hk__heap *h, const float *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp)
{
	for (size_t i = 0; i < cnt; i++)
		tmp[i] = dots[i] * scale[i];
	offer(h, tmp, cnt, base);
}

void hk__heap_merge(hk__heap *dst, const hk__heap *src)
{
	for (uint32_t i = 0; i < src->n; i++)
		hk__heap_push(dst, src->c[i].score, src->c[i].slot);
}
