/* NUMA placement for model execution (hwloc). Not public. */
#ifndef HK_NN_NUMA_H
#define HK_NN_NUMA_H

#include "internal.h"

#include <hwloc.h>

#define HK__NN_MAX_NODES 64

/* One NUMA node that has CPUs: its hwloc objects and how many worker
 * threads run there. */
typedef struct hk__nn_place {
	int os_index;          /* NUMA node number as the OS names it */
	int threads;           /* oneDNN (OpenMP) threads for this node */
	hwloc_bitmap_t cpuset; /* owned */
	hwloc_bitmap_t nodeset;/* owned */
} hk__nn_place;

typedef struct hk__nn_topo {
	hwloc_topology_t topo; /* hk__topology() unless `owned` */
	int owned;            /* a synthetic or XML topology loaded here */
	int can_bind_thread;   /* binding supported and topology is this system */
	int can_bind_mem;
	int nplaces;
	hk__nn_place place[HK__NN_MAX_NODES];
} hk__nn_topo;

/* Load the topology: synthetic (e.g. "pack:2 numa:1 core:4 pu:1"), from an
 * XML file (xml_path), or the machine's (both NULL). Keeps the NUMA nodes
 * that have cores; numa_node >= 0 keeps only that OS node (HK_E_NOT_FOUND if
 * absent or without cores). threads_per_node 0 = the node's cores. */
hk_status hk__nn_topo_load(hk__nn_topo *t, const char *synthetic,
                           const char *xml_path, int numa_node,
                           int threads_per_node);
void hk__nn_topo_free(hk__nn_topo *t);

/* Split n items over the places in proportion to their threads, each share
 * a whole number of items, largest remainders first; counts[nplaces]. */
void hk__nn_split(const hk__nn_topo *t, size_t n, size_t *counts);

/* Bind the calling thread to place i (no-op when not supported). */
void hk__nn_bind_thread(const hk__nn_topo *t, int i);

/* L2 cache size of the first core of place i (1 MiB when unknown). */
size_t hk__nn_l2_bytes(const hk__nn_topo *t, int i);

/* Memory bound to place i (falls back to 64-byte aligned malloc). */
void *hk__nn_alloc_on(const hk__nn_topo *t, int i, size_t size);
void hk__nn_free_on(const hk__nn_topo *t, void *p, size_t size);

#endif
