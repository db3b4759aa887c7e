/* Durable gallery: functions shared between store.c and query.c. */
#ifndef HK_STORE_OPS_H
#define HK_STORE_OPS_H

#include "store_priv.h"

int64_t hk__st_now(const hk_store *st);
hk_status hk__seal_record(const hk_store *st, uint16_t type, uint64_t seq,
                          uint64_t key_id, const uint8_t key[32],
                          const uint8_t *plain, size_t plen, uint8_t **out,
                          size_t *outlen);
hk_status hk__commit_wait(hk_store *st, uint64_t seq);
hk_status hk__audit(hk_store *st, uint32_t op, uint32_t decision, float score,
                    float threshold, uint32_t source, uint32_t count,
                    const uint8_t pseudo[16], uint32_t refused_op);
hk_status hk__st_check_vec(const hk_store *st, const float *v);
hk_status hk__sweep(hk_store *st, int64_t now, size_t *count);
hk_status hk__maybe_sweep(hk_store *st, int64_t now);
void hk__touch(hk_store *st, hk__subj *s, int64_t now);
int hk__st_cmp_u64(const void *a, const void *b);

#endif
