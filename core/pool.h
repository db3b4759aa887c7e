/*
 * A small pool of worker threads pinned to cores with hwloc, used by the
 * gallery to split a scan into shards. One job runs at a time; a caller that
 * finds the pool busy (another search holds it) runs its work inline.
 */
#ifndef HK_POOL_H
#define HK_POOL_H

#include <stddef.h>

typedef struct hk__pool hk__pool;

/* fn(arg, shard, nshards) runs once per shard; shard 0 on the caller. */
typedef void (*hk__pool_fn)(void *arg, unsigned shard, unsigned nshards);

/* nthreads total shards (the caller counts as one); 0 = one per core.
 * Returns NULL on failure (with hk_last_error set). */
hk__pool *hk__pool_create(unsigned nthreads);
void hk__pool_destroy(hk__pool *p);
unsigned hk__pool_size(const hk__pool *p);

/*
 * Run fn over all shards and wait. Returns 0, or -1 if the pool was busy
 * (the caller should then run the work inline as a single shard).
 */
int hk__pool_try_run(hk__pool *p, hk__pool_fn fn, void *arg);

/* Number of cores (hwloc, falling back to sysconf). */
unsigned hk__ncores(void);

/* The process-wide hwloc topology of this machine, loaded once (the only
 * place the library loads it; synthetic or XML topologies for tests are
 * separate), or NULL when hwloc cannot load it. Read-only; never freed. */
struct hwloc_topology *hk__topology(void);

/* Pages of huge-page-capable memory (see hugemem.c). */
enum { HK__MEM_PLAIN = 0, HK__MEM_HUGETLB = 1, HK__MEM_THP = 2 };
void *hk__mem_alloc(size_t size, int mode, int *kind);
void hk__mem_free(void *p, size_t size);

#endif
