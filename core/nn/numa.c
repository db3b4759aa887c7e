/* hwloc placement: which NUMA nodes run a model, how many threads each, how
 * a batch is split, where memory goes. Binding is only attempted when
 * hwloc reports support and the topology describes this machine, so the
 * same code runs on synthetic/XML topologies in tests. */
#include "nn/numa.h"
#include "pool.h"

#include <string.h>

void hk__nn_topo_free(hk__nn_topo *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nplaces; i++) {
		hwloc_bitmap_free(t->place[i].cpuset);
		hwloc_bitmap_free(t->place[i].nodeset);
	}
	if (t->topo && t->owned)
		hwloc_topology_destroy(t->topo);
	memset(t, 0, sizeof *t);
}

hk_status hk__nn_topo_load(hk__nn_topo *t, const char *synthetic,
                           const char *xml_path, int numa_node,
                           int threads_per_node)
{
	memset(t, 0, sizeof *t);
	if (!synthetic && !xml_path) {
		t->topo = hk__topology(); /* this machine: the shared one */
		if (!t->topo)
			return hk__err(HK_E_BACKEND, "hwloc: cannot load topology");
	} else {
		if (hwloc_topology_init(&t->topo))
			return hk__err(HK_E_BACKEND, "hwloc: topology init failed");
		t->owned = 1;
		int r = synthetic ? hwloc_topology_set_synthetic(t->topo, synthetic)
		                  : hwloc_topology_set_xml(t->topo, xml_path);
		if (r || hwloc_topology_load(t->topo)) {
			hwloc_topology_destroy(t->topo);
			t->topo = NULL;
			return hk__err(HK_E_BACKEND, "hwloc: cannot load topology %s",
			               synthetic ? synthetic : xml_path);
		}
	}
	const struct hwloc_topology_support *sup = hwloc_topology_get_support(t->topo);
	int this_system = hwloc_topology_is_thissystem(t->topo);
	t->can_bind_thread = this_system && sup->cpubind->set_thisthread_cpubind;
	t->can_bind_mem = this_system && sup->membind->alloc_membind && sup->membind->bind_membind;
	int nn = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
	for (int i = 0; i < nn && t->nplaces < HK__NN_MAX_NODES; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
		if (!o || !o->cpuset || hwloc_bitmap_iszero(o->cpuset))
			continue; /* memory-only node (CXL, HBM in flat mode) */
		if (numa_node >= 0 && (int)o->os_index != numa_node)
			continue;
		int cores = hwloc_get_nbobjs_inside_cpuset_by_type(t->topo, o->cpuset, HWLOC_OBJ_CORE);
		if (cores <= 0)
			cores = hwloc_get_nbobjs_inside_cpuset_by_type(t->topo, o->cpuset, HWLOC_OBJ_PU);
		if (cores <= 0)
			continue;
		hk__nn_place *p = &t->place[t->nplaces];
		p->os_index = (int)o->os_index;
		p->threads = threads_per_node > 0 ? threads_per_node : cores;
		p->cpuset = hwloc_bitmap_dup(o->cpuset);
		p->nodeset = hwloc_bitmap_dup(o->nodeset);
		if (!p->cpuset || !p->nodeset) {
			hwloc_bitmap_free(p->cpuset);
			hwloc_bitmap_free(p->nodeset);
			hk__nn_topo_free(t);
			return hk__err(HK_E_NOMEM, "hwloc: out of memory");
		}
		t->nplaces++;
	}
	if (t->nplaces == 0) {
		int want = numa_node;
		hk__nn_topo_free(t);
		if (want >= 0)
			return hk__err(HK_E_NOT_FOUND, "NUMA node %d does not exist or has no cores", want);
		return hk__err(HK_E_BACKEND, "hwloc: no NUMA node with cores");
	}
	return HK_OK;
}

void hk__nn_split(const hk__nn_topo *t, size_t n, size_t *counts)
{
	size_t total = 0, given = 0;
	for (int i = 0; i < t->nplaces; i++)
		total += (size_t)t->place[i].threads;
	size_t rem[HK__NN_MAX_NODES];
	for (int i = 0; i < t->nplaces; i++) {
		/* floor(n * w / total) without overflow for sane n */
		size_t w = (size_t)t->place[i].threads;
		counts[i] = n / total * w + (n % total) * w / total;
		rem[i] = (n % total) * w % total;
		given += counts[i];
	}
	while (given < n) { /* largest remainder first, lower index on ties */
		int best = 0;
		for (int i = 1; i < t->nplaces; i++)
			if (rem[i] > rem[best])
				best = i;
		counts[best]++;
		rem[best] = 0;
		given++;
	}
}

void hk__nn_bind_thread(const hk__nn_topo *t, int i)
{
	if (t->can_bind_thread && i >= 0 && i < t->nplaces)
		hwloc_set_cpubind(t->topo, t->place[i].cpuset, HWLOC_CPUBIND_THREAD);
}

void *hk__nn_alloc_on(const hk__nn_topo *t, int i, size_t size)
{
	size = (size + 63) & ~(size_t)63;
	if (t && t->can_bind_mem && i >= 0 && i < t->nplaces && t->nplaces > 1) {
		void *p = hwloc_alloc_membind(t->topo, size, t->place[i].nodeset, HWLOC_MEMBIND_BIND,
		                              HWLOC_MEMBIND_BYNODESET);
		return p; /* no fallback: hk__nn_free_on must know who allocated */
	}
	return hk__aalloc(size);
}

void hk__nn_free_on(const hk__nn_topo *t, void *p, size_t size)
{
	if (!p)
		return;
	size = (size + 63) & ~(size_t)63;
	if (t && t->can_bind_mem && t->nplaces > 1) {
		hwloc_free(t->topo, p, size);
		return;
	}
	hk__afree(p);
}

size_t hk__nn_l2_bytes(const hk__nn_topo *t, int i)
{
	if (t && t->topo && i >= 0 && i < t->nplaces) {
		hwloc_obj_t o = hwloc_get_obj_inside_cpuset_by_type(t->topo, t->place[i].cpuset,
		                                                     HWLOC_OBJ_L2CACHE, 0);
		if (o && o->attr && o->attr->cache.size)
			return (size_t)o->attr->cache.size;
	}
	return (size_t)1 << 20;
}
