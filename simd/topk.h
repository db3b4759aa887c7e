/*
 * Top-k selection for the scan: a bounded min-heap of (score, slot) whose
 * root is the current k-th best, fed block by block. The block filter is
 * branch-free (scores are computed and compared against the root for the
 * whole block; only a block that beats it takes the insertion path), which
 * for a random gallery is rare after the first blocks.
 *
 * A slot whose scale is NaN (a tombstone) never enters the heap: NaN > x is
 * false, so removal needs no branch in the hot loop.
 */
#ifndef HK_TOPK_H
#define HK_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct hk__cand {
	float score;
	uint32_t slot;
} hk__cand;

typedef struct hk__heap {
	hk__cand *c; /* capacity cap, caller-owned */
	uint32_t n, cap;
} hk__heap;

static inline float hk__heap_floor(const hk__heap *h)
{
	return h->n < h->cap ? -__builtin_inff() : h->c[0].score;
}

/* Offer one candidate (score must not be NaN). */
void hk__heap_push(hk__heap *h, float score, uint32_t slot);

/* Offer a block: score_i = (float)dots[i] * scale[i], slots base..base+cnt-1. */
void hk__topk_block_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp);
/* The same for float dots. */
void hk__topk_block_f32(hk__heap *h, const float *dots, const float *scale,
                        size_t cnt, uint32_t base, float *tmp);
/* Offer the rows whose bit is set in hits[(cnt + 63) / 64] (from a
 * tile_i8_hits call), scored as hk__topk_block_i32 scores them. */
void hk__topk_offer_i32(hk__heap *h, const int32_t *dots, const float *scale,
                        const uint64_t *hits, size_t cnt, uint32_t base);

/*
 * Block scoring: out[i] = dots[i] * scale[i], and bit i % 64 of
 * hits[i / 64] set iff out[i] > floor (NaN never is; all (cnt + 63) / 64
 * words are written); returns non-zero when any bit is set. The insertion
 * path then visits only the set bits: with k' = 64 candidates a random
 * gallery offers ~240 of its 1024-row blocks per query, and a scalar pass
 * over each offered block cost ~15 % of an AVX-VNNI batch search. One
 * variant per ISA; hk__topk_block_* use the one matching hk_cpu_isa().
 * Exposed for tests.
 */
typedef int (*hk__score_i32_fn)(const int32_t *dots, const float *scale,
                                size_t cnt, float floor, float *out,
                                uint64_t *hits);
typedef int (*hk__score_f32_fn)(const float *dots, const float *scale,
                                size_t cnt, float floor, float *out,
                                uint64_t *hits);
int hk__score_block_i32_scalar(const int32_t *, const float *, size_t, float, float *, uint64_t *);
int hk__score_block_f32_scalar(const float *, const float *, size_t, float, float *, uint64_t *);
#if defined(HK_ARCH_X86)
int hk__score_block_i32_avx2(const int32_t *, const float *, size_t, float, float *, uint64_t *);
int hk__score_block_f32_avx2(const float *, const float *, size_t, float, float *, uint64_t *);
int hk__score_block_i32_avx512(const int32_t *, const float *, size_t, float, float *, uint64_t *);
int hk__score_block_f32_avx512(const float *, const float *, size_t, float, float *, uint64_t *);
#endif

/* The block scoring of hk__topk_block_i32 (the variant matching
 * hk_cpu_isa()), for callers that visit the hits themselves. */
int hk__score_block_i32(const int32_t *dots, const float *scale, size_t cnt,
                        float floor, float *out, uint64_t *hits);

/* Merge src into dst (offers every element). */
void hk__heap_merge(hk__heap *dst, const hk__heap *src);

#endif
