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
	int prec;               /* HK_PREC_FP32, _BF16 or _INT8 */
	unsigned char *dt;      /* per tensor: 0 f32, 1 bf16, 2 s8 (int8 runs) */
	float *qs;              /* int8: per tensor, real value of one s8 step */
	int8_t **wq;            /* int8: per node, s8 weights in TFLite layout  */
	float **wsc;            /* int8: per node, per-output-channel weight steps */
	float **qbias;          /* int8: per node, bias in accumulator units      */
	int one_thread;         /* oneDNN runs 1 thread: tune by thread CPU time */
	char (*chosen)[48];     /* per node: implementation picked by the first plan */
} hk__nn_exec;

/* prec: HK_PREC_FP32, HK_PREC_BF16 or HK_PREC_INT8. For int8, absmax gives
 * the calibrated range of every tensor (ntensors floats, <= 0 unknown): a
 * tensor with a range that only oneDNN primitives touch is stored as s8 with
 * step absmax/127; convolutions and inner products whose input is s8 run in
 * int8 with s8 per-output-channel weights (requantisation fused as output
 * scales and post-ops); everything else stays fp32. */
hk_status hk__nn_exec_init(hk__nn_exec *x, const hk__nn_net *net,
                           size_t max_batch, const hk__nn_mem *mem, int prec,
                           const float *absmax);

/* One fp32 run of n items that shows every tensor the plan materialises
 * (the input, then each node's output, n items NHWC) to visit: the
 * statistics int8 is calibrated with. */
hk_status hk__nn_exec_visit(hk__nn_exec *x, const float *input, size_t n,
                            void (*visit)(void *user, int tensor, const float *v, size_t count),
                            void *user);
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
