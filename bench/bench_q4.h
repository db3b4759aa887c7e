/* The 4-bit first pass as a search benchmark variant (bench_q4.c). */
#ifndef HKB_Q4_H
#define HKB_Q4_H

#include <stddef.h>
#include <stdint.h>

typedef struct hkb_q4 hkb_q4;

/* codes: 1 = 4-bit first pass (herken-q4), 0 = plain int8 scan (herken-i8) */
hkb_q4 *hkb_q4_create(size_t dim, size_t cap, int codes);
int hkb_q4_add(hkb_q4 *p, const float *x, size_t n);
/* scores[nq*k], ids[nq*k] (row index; -1 padding) */
int hkb_q4_search(hkb_q4 *p, const float *q, size_t nq, int k, float *scores,
                  int64_t *ids);
/* rows re-scored exactly per query since the last reset */
double hkb_q4_rescored_per_query(hkb_q4 *p, int reset);
void hkb_q4_destroy(hkb_q4 *p);

#endif
