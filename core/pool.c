/* Pinned worker pool (hwloc) and huge-page allocation. */
#define _GNU_SOURCE
#include "pool.h"
#include "internal.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct hk__pool {
	unsigned n; /* shards, caller included */
	pthread_t *threads;
	pthread_mutex_t busy; /* held by the caller that owns the current job */
	pthread_mutex_t mu;
	pthread_cond_t cv_start, cv_done;
	unsigned long generation;
	unsigned pending;
	int stop;
	hk__pool_fn fn;
	void *arg;
	hwloc_topology_t topo; /* the process-wide topology (see hk__topology()) */
	int pin; /* hwloc says thread binding works */
};

/*
 * hk__topology(): the one topology of this machine for the whole library
 * (the pool, the model executor, the frame decoders). Loading one costs
 * ~17 ms (hwloc dlopens its plugins), so it is done once per process and
 * shared: after load, hwloc allows concurrent read-only use. It is never
 * destroyed (reachable until exit).
 */
static hwloc_topology_t shared_topo;
static int shared_ok;
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;

static void topo_load(void)
{
	if (hwloc_topology_init(&shared_topo) != 0)
		return;
	if (hwloc_topology_load(shared_topo) != 0) {
		hwloc_topology_destroy(shared_topo);
		return;
	}
	shared_ok = 1;
}

hwloc_topology_t hk__topology(void)
{
	pthread_once(&topo_once, topo_load);
	return shared_ok ? shared_topo : NULL;
}

typedef struct {
	hk__pool *p;
	unsigned shard;
} worker_arg;

static void pin_self(hk__pool *p, unsigned shard)
{
	if (!p->pin)
		return;
	int ncores = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
	if (ncores <= 0)
		return;
	hwloc_obj_t core =
	    hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_CORE, shard % (unsigned)ncores);
	if (!core || !core->cpuset)
		return;
	if (hwloc_set_cpubind(p->topo, core->cpuset, HWLOC_CPUBIND_THREAD) != 0)
		hk__log(HK_LOG_DEBUG, "pool: could not pin shard %u", shard);
}

static void *worker_main(void *v)
{
	worker_arg wa = *(worker_arg *)v;
	free(v);
	hk__pool *p = wa.p;
	pin_self(p, wa.shard);
	unsigned long seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->generation == seen)
			pthread_cond_wait(&p->cv_start, &p->mu);
		if (p->stop)
			break;
		seen = p->generation;
		hk__pool_fn fn = p->fn;
		void *arg = p->arg;
		pthread_mutex_unlock(&p->mu);
		fn(arg, wa.shard, p->n);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->cv_done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

unsigned hk__ncores(void)
{
	hwloc_topology_t t = hk__topology();
	unsigned n = 0;
	if (t) {
		int c = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
		if (c > 0)
			n = (unsigned)c;
	}
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	return n;
}

hk__pool *hk__pool_create(unsigned nthreads)
{
	hk__pool *p = calloc(1, sizeof *p);
	if (!p) {
		hk__err(HK_E_NOMEM, "pool: out of memory");
		return NULL;
	}
	if (nthreads == 0)
		nthreads = hk__ncores();
	if (nthreads > 1024)
		nthreads = 1024;
	p->n = nthreads;
	pthread_mutex_init(&p->busy, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_start, NULL);
	pthread_cond_init(&p->cv_done, NULL);
	p->topo = hk__topology();
	if (p->topo) {
		const struct hwloc_topology_support *s =
		    hwloc_topology_get_support(p->topo);
		p->pin = s && s->cpubind && s->cpubind->set_thread_cpubind;
	}
	p->threads = calloc(nthreads, sizeof *p->threads);
	if (!p->threads)
		goto fail;
	for (unsigned i = 1; i < nthreads; i++) {
		worker_arg *wa = malloc(sizeof *wa);
		if (!wa)
			goto fail;
		wa->p = p;
		wa->shard = i;
		if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
			free(wa);
			p->n = i; /* threads 1..i-1 exist */
			hk__pool_destroy(p);
			hk__err(HK_E_BACKEND, "pool: pthread_create failed");
			return NULL;
		}
	}
	return p;
fail:
	hk__pool_destroy(p);
	hk__err(HK_E_NOMEM, "pool: out of memory");
	return NULL;
}

void hk__pool_destroy(hk__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv_start);
	pthread_mutex_unlock(&p->mu);
	if (p->threads)
		for (unsigned i = 1; i < p->n; i++)
			if (p->threads[i])
				pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->busy);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv_start);
	pthread_cond_destroy(&p->cv_done);
	free(p);
}

unsigned hk__pool_size(const hk__pool *p) { return p ? p->n : 1; }

int hk__pool_try_run(hk__pool *p, hk__pool_fn fn, void *arg)
{
	if (pthread_mutex_trylock(&p->busy) != 0)
		return -1;
	if (p->n > 1) {
		pthread_mutex_lock(&p->mu);
		p->fn = fn;
		p->arg = arg;
		p->pending = p->n - 1;
		p->generation++;
		pthread_cond_broadcast(&p->cv_start);
		pthread_mutex_unlock(&p->mu);
	}
	fn(arg, 0, p->n);
	if (p->n > 1) {
		pthread_mutex_lock(&p->mu);
		while (p->pending)
			pthread_cond_wait(&p->cv_done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_unlock(&p->busy);
	return 0;
}

/*
 * Scan copies of multi-GB galleries are TLB-bound on 4 KiB pages. Prefer
 * explicitly reserved huge pages (MAP_HUGETLB, only when the admin set
 * vm.nr_hugepages), else ask for transparent huge pages with madvise.
 */
#define HUGE_2M (2u << 20)

void *hk__mem_alloc(size_t size, int mode, int *kind)
{
	*kind = HK__MEM_PLAIN;
	if (size == 0)
		size = 1;
	size_t len = (size + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);
	if (len < size)
		return NULL;
	void *p = MAP_FAILED;
	if (mode == 0 /* auto */ && size >= HUGE_2M) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		         MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p != MAP_FAILED) {
			*kind = HK__MEM_HUGETLB;
			return p;
		}
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	         -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mode != 1 /* off */ && size >= HUGE_2M &&
	    madvise(p, len, MADV_HUGEPAGE) == 0)
		*kind = HK__MEM_THP;
	return p;
}

void hk__mem_free(void *p, size_t size)
{
	if (!p)
		return;
	if (size == 0)
		size = 1;
	size_t len = (size + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);
	munmap(p, len);
}
