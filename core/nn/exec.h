/* oneDNN execution of a built net on one NUMA node. Not public. */
#ifndef HK_NN_EXEC_H
#define HK_NN_EXEC_H

#include "nn/nn.h"

#include <oneapi/dnnl/dnnl.h>

/* Memory placement of one node: alloc(size) returns 64-byte aligned memory
 * bound to the node (or NULL). */
typedef struct hk__nn_mem {
	void *(*alloc)(void *user, size_t size);
	void (*free)(void *user, void *p, size_t size);
	void *user;
} hk__nn_mem;

typedef struct hk__nn_wcache hk__nn_wcache; /* reordered weights, per node */
typedef struct hk__nn_plan hk__nn_plan;     /* primitives for one batch size */

/* Everything one NUMA node owns: engine, stream, weights in oneDNN's
 * layouts, plans per batch size. Used by one thread at a time. */
typedef struct hk__nn_exec {
	const hk__nn_net *net;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	hk__nn_mem mem;
	hk__nn_wcache *wc;      /* nnodes entries */
	float **consts;         /* per tensor: node-local copy of biases/slopes */
	hk__nn_plan **plans;    /* index = batch size, 1..max_batch */
	size_t max_batch;
	char impl[160];         /* implementation of the first convolution */
	int bf16;               /* bf16 activations between oneDNN primitives */
	unsigned char *dt;      /* per tensor: 1 = stored as bf16 */
	int one_thread;         /* oneDNN runs 1 thread: tune by thread CPU time */
	char (*chosen)[48];     /* per node: implementation picked by the first plan */
} hk__nn_exec;

hk_status hk__nn_exec_init(hk__nn_exec *x, const hk__nn_net *net,
                           size_t max_batch, const hk__nn_mem *mem, int bf16);
void hk__nn_exec_free(hk__nn_exec *x);

/* Run n <= max_batch items; creates the plan for n on first use. */
hk_status hk__nn_exec_run(hk__nn_exec *x, const float *input, size_t n,
                          float *const *outputs);

/* Activation arena of the plan for batch n (0 if not created yet). */
size_t hk__nn_exec_arena_bytes(const hk__nn_exec *x, size_t n);

/* One run of n items adding each node's thread CPU time (ns) into ns[node]
 * (exact with one oneDNN thread; diagnostics only). */
hk_status hk__nn_exec_profile(hk__nn_exec *x, const float *input, size_t n, double *ns);

/* "avx512_core_amx" etc.: the ISA oneDNN dispatches to in this process. */
const char *hk__nn_isa_name(void);

/* HK_OK when oneDNN runs bf16 convolutions here, else HK_E_UNSUPPORTED
 * naming what is missing (probed once per process). */
hk_status hk__nn_bf16_check(void);

#endif
