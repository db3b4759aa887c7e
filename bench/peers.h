/* C interface of the C++ peer adapter (bench/peers.cpp). */
#ifndef HKB_PEERS_H
#define HKB_PEERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hkb_peer hkb_peer;

/* impl: faiss-flat | faiss-sq8 | faiss-fp16 | hnswlib */
hkb_peer *hkb_peer_create(const char *impl, int dim, int threads);
int hkb_peer_build(hkb_peer *p, const float *x, size_t n, int hnsw_m,
                   int hnsw_ef_construction);
void hkb_peer_set_ef(hkb_peer *p, int ef);
/* Threads used by the following searches (OpenMP and OpenBLAS). */
void hkb_peer_set_threads(hkb_peer *p, int threads);
/* scores[nq*k], ids[nq*k] (row index of the built data; -1 padding) */
int hkb_peer_search(hkb_peer *p, const float *q, size_t nq, int k,
                    float *scores, int64_t *ids);
/* Bytes one exhaustive query streams (0 for graph indexes). */
size_t hkb_peer_memory(const hkb_peer *p, size_t n);
const char *hkb_peer_error(void);
void hkb_peer_destroy(hkb_peer *p);

#ifdef __cplusplus
}
#endif

#endif
