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
typedef struct hk__nnx_own8 hk__nnx_own8;   /* own exact int8 convolutions (exec_i8.c) */

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
	unsigned char *rq;      /* int8: per node, a PReLU that requantises
	                           (f32 in, s8 out; hk__nnx_prelu_rq) */
	int one_thread;         /* oneDNN runs 1 thread: tune by thread CPU time */
	char (*chosen)[48];     /* per node: implementation picked by the first plan */
	hk__nnx_own8 *own8;     /* int8 without VNNI: nodes on herken's own kernels */
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

/* One run of n items that shows every tensor the plan materialises (the
 * input, then each node's output, n items NHWC, as fp32 whatever the
 * tensor's storage) to visit: the statistics int8 is calibrated with (fp32
 * runs), and the per-layer error of an int8 or bf16 run against fp32. */
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


/* ---- data types of bf16 and int8 runs (exec_q.c) ---- */

enum { DT_F32 = 0, DT_BF16 = 1, DT_S8 = 2 }; /* hk__nn_exec.dt entries */

static inline dnnl_data_type_t hk__nnx_act_dt(const hk__nn_exec *x, int t)
{
	if (!x->dt || t < 0)
		return dnnl_f32;
	return x->dt[t] == DT_BF16 ? dnnl_bf16 : x->dt[t] == DT_S8 ? dnnl_s8 : dnnl_f32;
}

static inline size_t hk__nnx_act_elsize(const hk__nn_exec *x, int t)
{
	dnnl_data_type_t d = hk__nnx_act_dt(x, t);
	return d == dnnl_bf16 ? 2 : d == dnnl_s8 ? 1 : 4;
}

/* Real value of one step of tensor t (1 for float tensors). */
static inline float hk__nnx_qstep(const hk__nn_exec *x, int t)
{
	return x->qs && t >= 0 && x->dt[t] == DT_S8 ? x->qs[t] : 1.0f;
}

/* The node runs in int8: a convolution or inner product reading s8. */
static inline int hk__nnx_node_int8(const hk__nn_exec *x, const hk__nn_node *nd)
{
	return (nd->kind == NK_CONV || nd->kind == NK_FC) && hk__nnx_act_dt(x, nd->src) == dnnl_s8;
}

/* int8: PReLU node nd reads its convolution's output in f32 and writes
 * s8 (a jit PReLU in place, then a scaled reorder). Rounding the
 * convolution's output to s8 before the PReLU was the int8 embedder's main
 * loss: on the 22 golden faces, fp32 with every s8 tensor rounded except
 * the PReLU inputs gives min cosine 0.9959 against 0.9857 with all rounded
 * (asymmetric u8 ranges on every tensor: 0.9857, no gain). */
static inline int hk__nnx_prelu_rq(const hk__nn_exec *x, const hk__nn_node *nd)
{
	return x->rq && x->rq[nd - x->net->node];
}

/* A node lowered to a oneDNN primitive (everything else is a C kernel). */
int hk__nnx_is_prim(const hk__nn_node *nd, const hk__nn_tensor *T);

/* x->dt for a bf16 or int8 run (absmax: calibrated ranges, int8 only). */
hk_status hk__nnx_choose_dtypes(hk__nn_exec *x, const float *absmax);

/* int8: x->qs from absmax, then s8 weights, steps and biases of the
 * nodes that run in int8. After hk__nnx_choose_dtypes. */
hk_status hk__nnx_init_int8(hk__nn_exec *x, const float *absmax);

/* The caller's fp32 input of n items into dst, in the input's data type. */
void hk__nnx_load_input(const hk__nn_exec *x, void *dst, const float *input, size_t n);

/* visit(user, t, values) with tensor t's n items in buf as fp32 (s8 and
 * bf16 converted into scratch, which holds the largest tensor). */
void hk__nnx_visit_as_f32(const hk__nn_exec *x, int t, const void *buf, size_t n, float *scratch,
                          void (*visit)(void *user, int tensor, const float *v, size_t count),
                          void *user);

/* ---- int8 without VNNI: herken's exact s8 x s8 convolutions (exec_i8.c) ---- */

/* After hk__nnx_init_int8: when oneDNN's int8 convolutions lack VNNI
 * (HERKEN_INT8_OWN=0|1 forces), packs the weights of the int8 convolutions
 * the own kernels cover; x->own8 stays NULL otherwise. */
hk_status hk__nnx_own8_init(hk__nn_exec *x);
void hk__nnx_own8_free(hk__nn_exec *x);
/* 0: node ni is oneDNN's or C's; 1: an own convolution; 2: a requantising
 * PReLU fused into the own convolution before it (nothing to run). */
int hk__nnx_own8_role(const hk__nn_exec *x, int ni);
/* The PReLU node fused into own convolution ni, or -1. */
int hk__nnx_own8_fused(const hk__nn_exec *x, int ni);
/* Node ni (role != 0) on n items. visiting: unfused, so that the
 * convolution's f32 output exists too (hk__nn_exec_visit); bit-identical. */
void hk__nnx_own8_run(const hk__nn_exec *x, int ni, size_t n, float *const *buf, int visiting);
#endif
