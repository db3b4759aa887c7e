/*
 * A 4-bit first pass over an int8 scan copy, with a proven bound (internal;
 * measured by `herken-bench search --impl herken-q4,herken-i8`, not used by
 * the gallery: it did not beat the plain int8 scan, see q4.c).
 *
 * Codes: every int8 row value r (|r| <= 127) is split as r = 17 c + e with
 * c = round(r / 17) in [-7, 7] and the residual |e| <= 8. For a signed int8
 * query q the exact int8 dot is
 *
 *     dot8 = 17 * dot(q, c) + dot(q, e),
 *     |dot(q, e)| <= ||q|| ||e||                      (Cauchy-Schwarz)
 *                 <= ceil(sqrt(Q)) * ceil(sqrt(E)) = B
 *
 * with the integers Q = ||q||^2 (per query) and E = ||e||^2 (per row, which
 * stores ceil(sqrt(E))), both square roots rounded up exactly in integers.
 * Hence L = 17 dot(q, c) - B <= dot8 <= 17 dot(q, c) + B = U; L and U are
 * integers below 2^24 for d8 <= 1024, exact as float, and with a row scale
 * s >= 0 (rounding is monotone) fl(L s) <= fl(dot8 s) <= fl(U s).
 */
#ifndef HK_Q4_H
#define HK_Q4_H

#include "hk_simd.h"
#include "topk.h"

#define HK_Q4_STEP 17

/* Codes (bytes in [-7, 7], zero padded like the rows), their sum, and
 * ceil(sqrt(E)) of one int8 row of d8 bytes. */
void hk__q4_encode(const int8_t *r8, size_t d8, int8_t *c4, int32_t *csum,
                   int32_t *be);

/* B = ceil(sqrt(Q)) * be: the bound on |dot(q, e)| (see above). */
int64_t hk__q4_bound(uint64_t q2, int32_t be);

typedef struct hk__q4_rows {
	size_t n, d8;           /* rows, bytes per row (a multiple of 64)   */
	const int8_t *r8;       /* n x d8 int8 rows, 64-byte aligned         */
	const int32_t *rsum8;   /* sum of each int8 row                      */
	const float *scale;     /* score = dot8 * scale (>= 0)               */
	const int8_t *c4;       /* n x d8 codes (NULL: plain int8 scan)      */
	const int32_t *csum4;   /* sum of each code row                      */
	const int32_t *be;      /* ceil(sqrt(E)) of each row                 */
} hk__q4_rows;

/*
 * For nq <= 64 queries (offset-128 u8, qstride bytes apart, within the
 * tier's i8_qmax; d8 <= 1024, heap capacity kk <= 64), the kk rows of
 * largest int8 score fl(dot8 * scale) per query into heaps[j] (capacity
 * kk, caller-owned). With codes: the 4-bit pass bounds every row, keeps
 * the kk-th largest lower bound as a floor, and re-scores exactly (int8)
 * every row whose upper bound reaches the floor (and the exact heap's
 * floor) when its block is seen. A row of the true int8 top kk always
 * qualifies: its score is at least the floor, as kk rows seen so far score
 * at least their lower bounds. Without codes: the plain int8 tile scan.
 * *rescored (may be NULL) accumulates the rows re-scored exactly.
 */
void hk__q4_search(const hk__kernel_table *K, const hk__q4_rows *R,
                   const uint8_t *qu, size_t nq, size_t qstride,
                   hk__heap *heaps, uint64_t *rescored);

#endif
