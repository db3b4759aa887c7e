/* Lowering of the fused node list to oneDNN primitives.
 *
 * Activations stay plain NHWC float32 (the layout of the TFLite graph and of
 * the C tail kernels); oneDNN 2.6 has NHWC JIT kernels (brgemm/jit avx512)
 * for convolutions, so no reorders are needed between layers. Weights are
 * described with format_tag_any and reordered once per node into the layout
 * the chosen implementation wants. A plan (primitives + activation arena)
 * is created once per batch size and then only executed. For convolutions
 * the first few implementations oneDNN offers are timed on the plan's own
 * buffers and the fastest is kept (pick_conv).
 */
#define _GNU_SOURCE
#include "nn/exec.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WC_SLOTS 4

static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct hk__nn_wcache {
	int n;
	dnnl_memory_desc_t md[WC_SLOTS];
	dnnl_memory_t mem[WC_SLOTS];
	void *buf[WC_SLOTS];
	size_t size[WC_SLOTS];
};

typedef struct step {
	int node;
	dnnl_primitive_t prim;
	int nargs;
	dnnl_exec_arg_t args[5 + HK__NN_MAX_POST];
	dnnl_memory_desc_t scratch_md; /* user-managed scratchpad (may be empty) */
	int has_scratch;
	int c_post_act; /* pooling: activations applied in C */
	int own;        /* hk__nnx_own8_role: herken's int8 kernels */
} step;

struct hk__nn_plan {
	size_t n;
	float *arena;
	size_t arena_bytes;
	void *scratch;       /* scratchpad shared by this plan's steps */
	size_t scratch_bytes;
	float **buf; /* per tensor */
	step *steps;
	int nsteps;
	dnnl_memory_t *mems;
	int nmems, capmems;
};

const char *hk__nn_isa_name(void)
{
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_sse41: return "sse41";
	case dnnl_cpu_isa_avx: return "avx";
	case dnnl_cpu_isa_avx2: return "avx2";
	case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
	case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
	case dnnl_cpu_isa_avx512_core: return "avx512_core";
	case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
	case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
	case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
	case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
	default: return "generic";
	}
}

/* Why dnnl_unimplemented happened, for messages: the ISA oneDNN runs at
 * and the cap when ONEDNN_MAX_CPU_ISA set it. */
static void isa_note(char *buf, size_t cap)
{
	const char *env = getenv("ONEDNN_MAX_CPU_ISA");
	snprintf(buf, cap, "oneDNN runs at %s%s%s%s", hk__nn_isa_name(),
	         env && *env ? " (ONEDNN_MAX_CPU_ISA=" : "", env && *env ? env : "",
	         env && *env ? ")" : "");
}

/* bf16 capability, asked once: a bf16 NHWC convolution with the data types
 * the executor uses (bf16 src/weights/dst, f32 bias). oneDNN 2.6 has them
 * on avx512_core (emulated) and up and nothing below, so on an AVX2 CPU
 * the primitive descriptor is dnnl_unimplemented. */
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
static hk_status bf16_status;
static char bf16_why[200];

static void bf16_probe(void)
{
	dnnl_engine_t eng = NULL;
	dnnl_memory_desc_t src, w, b, dst;
	dnnl_convolution_desc_t cd;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_dims_t ds = {1, 16, 8, 8}, dw = {16, 16, 3, 3}, db = {16};
	dnnl_dims_t st = {1, 1}, pad = {1, 1};
	dnnl_status_t r = dnnl_engine_create(&eng, dnnl_cpu, 0);
	if (r == dnnl_success) {
		dnnl_memory_desc_init_by_tag(&src, 4, ds, dnnl_bf16, dnnl_nhwc);
		dnnl_memory_desc_init_by_tag(&dst, 4, ds, dnnl_bf16, dnnl_nhwc);
		dnnl_memory_desc_init_by_tag(&w, 4, dw, dnnl_bf16, dnnl_format_tag_any);
		dnnl_memory_desc_init_by_tag(&b, 1, db, dnnl_f32, dnnl_a);
		r = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
		                                       &src, &w, &b, &dst, st, pad, pad);
		if (r == dnnl_success)
			r = dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL);
	}
	char note[96];
	isa_note(note, sizeof note);
	if (r == dnnl_success)
		bf16_status = HK_OK;
	else if (r == dnnl_unimplemented)
		bf16_status = HK_E_UNSUPPORTED;
	else
		bf16_status = r == dnnl_out_of_memory ? HK_E_NOMEM : HK_E_BACKEND;
	snprintf(bf16_why, sizeof bf16_why,
	         r == dnnl_unimplemented
	             ? "bf16: oneDNN has no bf16 convolution on this CPU (%s; "
	               "it needs AVX512-BF16, AMX-BF16 or at least AVX-512)"
	             : "bf16: oneDNN probe failed (%s)",
	         note);
	dnnl_primitive_desc_destroy(pd);
	if (eng)
		dnnl_engine_destroy(eng);
}

hk_status hk__nn_bf16_check(void)
{
	pthread_once(&bf16_once, bf16_probe);
	return bf16_status ? hk__err(bf16_status, "%s", bf16_why) : HK_OK;
}

/* dnnl_unimplemented means this CPU (or the ONEDNN_MAX_CPU_ISA cap) lacks
 * what the primitive needs: HK_E_UNSUPPORTED, saying at which ISA. */
static hk_status dn(dnnl_status_t st, const char *what, int node)
{
	if (st == dnnl_success)
		return HK_OK;
	if (st == dnnl_unimplemented) {
		char note[96];
		isa_note(note, sizeof note);
		return hk__err(HK_E_UNSUPPORTED, "oneDNN: %s: no implementation for node %d on this CPU (%s)",
		               what, node, note);
	}
	return hk__err(st == dnnl_out_of_memory ? HK_E_NOMEM : HK_E_BACKEND,
	               "oneDNN: %s failed (dnnl status %d) at node %d", what, (int)st, node);
}
#define DN(call, what) do { if ((s = dn((call), (what), ni))) goto fail; } while (0)

static void *xalloc(const hk__nn_exec *x, size_t size)
{
	return x->mem.alloc ? x->mem.alloc(x->mem.user, size) : hk__aalloc(size);
}

static void xfree(const hk__nn_exec *x, void *p, size_t size)
{
	if (!p)
		return;
	if (x->mem.free)
		x->mem.free(x->mem.user, p, size);
	else
		hk__afree(p);
}

static hk_status plan_mem(hk__nn_plan *p, const dnnl_memory_desc_t *md,
                          dnnl_engine_t eng, void *h, dnnl_memory_t *out)
{
	if (p->nmems == p->capmems) {
		int cap = p->capmems ? 2 * p->capmems : 64;
		dnnl_memory_t *m = realloc(p->mems, (size_t)cap * sizeof *m);
		if (!m)
			return hk__err(HK_E_NOMEM, "out of memory");
		p->mems = m;
		p->capmems = cap;
	}
	dnnl_status_t st = dnnl_memory_create(out, md, eng, h);
	if (st != dnnl_success)
		return hk__err(HK_E_BACKEND, "oneDNN: memory_create failed (%d)", (int)st);
	p->mems[p->nmems++] = *out;
	return HK_OK;
}

static void md_act(const hk__nn_exec *x, dnnl_memory_desc_t *md, int ti, size_t n)
{
	const hk__nn_tensor *t = &x->net->g.t[ti];
	dnnl_data_type_t dt = hk__nnx_act_dt(x, ti);
	dnnl_dims_t d;
	if (t->ndim == 4) {
		d[0] = (dnnl_dim_t)n; d[1] = t->shape[3]; d[2] = t->shape[1]; d[3] = t->shape[2];
		dnnl_memory_desc_init_by_tag(md, 4, d, dt, dnnl_nhwc);
	} else {
		d[0] = (dnnl_dim_t)n;
		d[1] = (dnnl_dim_t)hk__nn_item_count(t);
		dnnl_memory_desc_init_by_tag(md, 2, d, dt, dnnl_nc);
	}
}

/* Reordered weights of node ni for the layout pd wants (cached per node). */
static hk_status weights_for(hk__nn_exec *x, int ni, const dnnl_memory_desc_t *want,
                             dnnl_memory_t *out)
{
	hk__nn_wcache *wc = &x->wc[ni];
	for (int i = 0; i < wc->n; i++)
		if (dnnl_memory_desc_equal(&wc->md[i], want)) {
			*out = wc->mem[i];
			return HK_OK;
		}
	if (wc->n == WC_SLOTS)
		return hk__err(HK_E_BACKEND, "oneDNN: too many weight layouts for node %d", ni);
	const hk__nn_node *nd = &x->net->node[ni];
	const hk__nn_tensor *w = &x->net->g.t[nd->weights];
	dnnl_memory_desc_t user;
	dnnl_dims_t d, st;
	if (nd->kind == NK_FC) {
		d[0] = w->shape[0]; d[1] = w->shape[1];
		dnnl_memory_desc_init_by_tag(&user, 2, d, dnnl_f32, dnnl_ab);
	} else if (nd->groups == 1) { /* TFLite OHWI */
		int O = w->shape[0], KH = w->shape[1], KW = w->shape[2], I = w->shape[3];
		d[0] = O; d[1] = I; d[2] = KH; d[3] = KW;
		st[0] = (dnnl_dim_t)KH * KW * I; st[1] = 1; st[2] = (dnnl_dim_t)KW * I; st[3] = I;
		dnnl_memory_desc_init_by_strides(&user, 4, d, dnnl_f32, st);
	} else { /* TFLite [1, KH, KW, G*M] -> (G, M, 1, KH, KW) */
		int KH = w->shape[1], KW = w->shape[2], CM = w->shape[3], G = nd->groups, M = CM / G;
		d[0] = G; d[1] = M; d[2] = 1; d[3] = KH; d[4] = KW;
		st[0] = M; st[1] = 1; st[2] = 1; st[3] = (dnnl_dim_t)KW * CM; st[4] = CM;
		dnnl_memory_desc_init_by_strides(&user, 5, d, dnnl_f32, st);
	}
	hk_status s = HK_OK;
	dnnl_memory_t um = NULL, wm = NULL;
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	size_t size = dnnl_memory_desc_get_size(want);
	if (!size)
		size = 64;
	void *buf = xalloc(x, size);
	if (!buf)
		return hk__err(HK_E_NOMEM, "out of memory for weights of node %d", ni);
	if (x->wq && x->wq[ni]) /* int8: the same layout, quantised */
		user.data_type = dnnl_s8;
	DN(dnnl_memory_create(&um, &user, x->eng, x->wq && x->wq[ni] ? (void *)x->wq[ni] : (void *)w->f),
	   "weights memory");
	DN(dnnl_memory_create(&wm, want, x->eng, buf), "weights memory");
	DN(dnnl_reorder_primitive_desc_create(&rpd, &user, x->eng, want, x->eng, NULL), "weights reorder");
	DN(dnnl_primitive_create(&r, rpd), "weights reorder");
	dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, um}, {DNNL_ARG_DST, wm}};
	DN(dnnl_primitive_execute(r, x->strm, 2, a), "weights reorder");
	DN(dnnl_stream_wait(x->strm), "stream wait");
	wc->md[wc->n] = *want;
	wc->mem[wc->n] = wm;
	wc->buf[wc->n] = buf;
	wc->size[wc->n] = size;
	wc->n++;
	*out = wm;
	wm = NULL;
	buf = NULL;
fail:
	dnnl_primitive_destroy(r);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(um);
	dnnl_memory_destroy(wm);
	xfree(x, buf, size);
	return s;
}

static dnnl_alg_kind_t elt_alg(int a, float *alpha, float *beta)
{
	*alpha = 0;
	*beta = 0;
	switch (a) {
	case NA_RELU: return dnnl_eltwise_relu;
	case NA_RELU6: *beta = 6; return dnnl_eltwise_clip;
	case NA_RELU_N1: *alpha = -1; *beta = 1; return dnnl_eltwise_clip;
	default: return dnnl_eltwise_tanh;
	}
}

/* Arena offsets by liveness: first fit among the blocks live at each node. */
typedef struct blk { size_t off, size; int t; } blk;

static hk_status plan_arena(hk__nn_exec *x, hk__nn_plan *p, size_t **off_out)
{
	const hk__nn_net *net = x->net;
	int nt = net->g.ntensors;
	int *last = malloc((size_t)nt * sizeof(int));
	size_t *off = malloc((size_t)nt * sizeof(size_t));
	blk *live = malloc((size_t)(nt + 1) * sizeof(blk));
	if (!last || !off || !live) {
		free(last); free(off); free(live);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	for (int t = 0; t < nt; t++) {
		last[t] = -2;
		off[t] = SIZE_MAX;
	}
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int ts[3 + HK__NN_MAX_POST] = {nd->src, nd->src1, nd->dst}, k = 3;
		for (int j = 0; j < nd->npost; j++)
			ts[k++] = nd->post[j].tensor;
		for (int j = 0; j < k; j++)
			if (ts[j] >= 0 && !net->g.t[ts[j]].is_const)
				last[ts[j]] = i;
	}
	/* an own int8 convolution with a fused PReLU writes the PReLU's output
	 * while it reads its inputs: they live until the PReLU */
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int f = hk__nnx_own8_fused(x, i), ts[2 + HK__NN_MAX_POST] = {nd->src, nd->src1}, k = 2;
		for (int j = 0; j < nd->npost; j++)
			ts[k++] = nd->post[j].tensor;
		for (int j = 0; j < k && f >= 0; j++)
			if (ts[j] >= 0 && !net->g.t[ts[j]].is_const && last[ts[j]] < f)
				last[ts[j]] = f;
	}
	for (int k = 0; k < net->noutputs; k++)
		last[net->outputs[k]] = net->nnodes;
	int nlive = 0;
	size_t top = 0;
	/* the input first, live from the start */
	for (int i = -1; i < net->nnodes; i++) {
		int t = i < 0 ? net->input : net->node[i].dst;
		size_t sz = hk__nn_item_count(&net->g.t[t]) * p->n * hk__nnx_act_elsize(x, t);
		sz = (sz + 63) & ~(size_t)63;
		if (i >= 0 && off[t] == SIZE_MAX) {
			/* PReLU in place: its input dies here (saves a pass over
			 * fresh cache lines and arena space) */
			const hk__nn_node *nd = &net->node[i];
			if (nd->kind == NK_PRELU && nd->src != net->input && last[nd->src] == i &&
			    hk__nnx_act_elsize(x, nd->src) == hk__nnx_act_elsize(x, t) && off[nd->src] != SIZE_MAX)
				for (int j = 0; j < nlive; j++)
					if (live[j].t == nd->src) {
						live[j].t = t;
						off[t] = off[nd->src];
						break;
					}
		}
		if (off[t] == SIZE_MAX) {
			/* live sorted by offset; find the first gap */
			size_t at = 0;
			int pos = 0;
			for (; pos < nlive; pos++) {
				if (live[pos].off >= at + sz)
					break;
				if (live[pos].off + live[pos].size > at)
					at = live[pos].off + live[pos].size;
			}
			memmove(&live[pos + 1], &live[pos], (size_t)(nlive - pos) * sizeof(blk));
			live[pos] = (blk){at, sz, t};
			nlive++;
			off[t] = at;
			if (at + sz > top)
				top = at + sz;
		}
		/* release what this node was the last to read */
		for (int j = 0; j < nlive;) {
			if (last[live[j].t] <= i && live[j].t != t) {
				memmove(&live[j], &live[j + 1], (size_t)(nlive - j - 1) * sizeof(blk));
				nlive--;
			} else {
				j++;
			}
		}
	}
	free(last);
	free(live);
	p->arena_bytes = top ? top : 64;
	*off_out = off;
	return HK_OK;
}

static void plan_free(hk__nn_exec *x, hk__nn_plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nsteps; i++)
		dnnl_primitive_destroy(p->steps[i].prim);
	for (int i = 0; i < p->nmems; i++)
		dnnl_memory_destroy(p->mems[i]);
	if (p->arena)
		hk__wipe(p->arena, p->arena_bytes); /* activations of faces */
	xfree(x, p->arena, p->arena_bytes);
	xfree(x, p->scratch, p->scratch_bytes);
	free(p->mems);
	free(p->steps);
	free(p->buf);
	free(p);
}

/* Weights, bias and post-op arguments of a conv/FC step for pd. */
static hk_status wb_args(hk__nn_exec *x, hk__nn_plan *p, int ni, const_dnnl_primitive_desc_t pd,
                         const dnnl_memory_desc_t *bmd, size_t n, step *sp)
{
	const hk__nn_node *nd = &x->net->node[ni];
	const hk__nn_tensor *T = x->net->g.t;
	dnnl_memory_t wm = NULL, m;
	hk_status s;
	const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	if ((s = weights_for(x, ni, wmd, &wm)))
		return s;
	sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wm};
	if (nd->bias >= 0) {
		float *b = x->qbias && x->qbias[ni] ? x->qbias[ni] : x->consts[nd->bias];
		if ((s = plan_mem(p, bmd, x->eng, b, &m)))
			return s;
		sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m};
	}
	for (int k = 0; k < nd->npost; k++) {
		const hk__nn_postop *q = &nd->post[k];
		dnnl_memory_desc_t md;
		if (q->kind == NP_PRELU) {
			dnnl_dims_t pdims = {1, (dnnl_dim_t)T[q->tensor].count, 1, 1};
			int nd4 = T[nd->dst].ndim == 4 ? 4 : 2;
			dnnl_memory_desc_init_by_tag(&md, nd4, pdims, dnnl_f32, nd4 == 4 ? dnnl_nchw : dnnl_nc);
			if ((s = plan_mem(p, &md, x->eng, x->consts[q->tensor], &m)))
				return s;
			sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(k) | DNNL_ARG_WEIGHTS, m};
		} else if (q->kind == NP_BINARY) {
			md_act(x, &md, q->tensor, n);
			if ((s = plan_mem(p, &md, x->eng, p->buf[q->tensor], &m)))
				return s;
			sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(k) | DNNL_ARG_SRC_1, m};
		}
	}
	return HK_OK;
}

/* The second step of a requantising PReLU (hk__nnx_prelu_rq): its f32
 * result, left in place in the input's buffer, scaled into the s8 output. */
static hk_status rq_step(hk__nn_exec *x, hk__nn_plan *p, int ni, const dnnl_memory_desc_t *src,
                         const dnnl_memory_desc_t *dst)
{
	const hk__nn_node *nd = &x->net->node[ni];
	step *sp = &p->steps[p->nsteps++];
	dnnl_primitive_attr_t attr = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_memory_t m;
	hk_status s;
	const float inv = 1.0f / hk__nnx_qstep(x, nd->dst);
	sp->node = ni;
	if (!(s = dn(dnnl_primitive_attr_create(&attr), "attr", ni)) &&
	    !(s = dn(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &inv), "reorder scale", ni)) &&
	    !(s = dn(dnnl_reorder_primitive_desc_create(&pd, src, x->eng, dst, x->eng, attr), "reorder pd", ni)) &&
	    !(s = dn(dnnl_primitive_create(&sp->prim, pd), "reorder create", ni)) &&
	    !(s = plan_mem(p, src, x->eng, p->buf[nd->src], &m))) {
		sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_FROM, m};
		if (!(s = plan_mem(p, dst, x->eng, p->buf[nd->dst], &m)))
			sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_TO, m};
	}
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return s;
}

static hk_status io_args(hk__nn_exec *x, hk__nn_plan *p, const hk__nn_node *nd,
                         const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, step *sp)
{
	dnnl_memory_t m;
	hk_status s;
	if ((s = plan_mem(p, src, x->eng, p->buf[nd->src], &m)))
		return s;
	sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m};
	/* a requantising PReLU works in place on its f32 input */
	if ((s = plan_mem(p, dst, x->eng, p->buf[hk__nnx_prelu_rq(x, nd) ? nd->src : nd->dst], &m)))
		return s;
	sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DST, m};
	return HK_OK;
}

#define TUNE_CANDIDATES 3

/* HERKEN_NN_TUNE=0 turns the timing-based choice off (oneDNN's first
 * implementation is used): for reproducible instruction counts, e.g. under
 * valgrind in `herken-bench check`, where timings are meaningless. */
static int tune_enabled(void)
{
	const char *v = getenv("HERKEN_NN_TUNE");
	return !(v && !strcmp(v, "0"));
}

/* The convolution implementation for node ni: oneDNN's first choice is not
 * always the fastest on NHWC (measured here: jit_dw beats brdgmm_dw ~1.6x
 * on the detector's depthwise layers, jit beats brgconv on 3-channel
 * input), so the first TUNE_CANDIDATES non-reference implementations are
 * each run a few times on the plan's buffers and the fastest is kept. */
static hk_status pick_conv(hk__nn_exec *x, hk__nn_plan *p, int ni, const dnnl_convolution_desc_t *cd,
                           const_dnnl_primitive_attr_t attr, const dnnl_memory_desc_t *bmd,
                           const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, size_t n,
                           dnnl_primitive_desc_t *out)
{
	dnnl_primitive_desc_iterator_t it = NULL;
	dnnl_primitive_desc_t cand[TUNE_CANDIDATES] = {0};
	int nc = 0;
	int first_avx512 = 0;
	/* timing with several threads on a shared machine is too noisy to
	 * trust: then oneDNN's own first choice is used */
	const int max_cand = x->one_thread && tune_enabled() ? TUNE_CANDIDATES : 1;
	hk_status s = dn(dnnl_primitive_desc_iterator_create(&it, cd, attr, x->eng, NULL), "convolution pd", ni);
	if (s)
		return s;
	do {
		dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
		const char *impl = NULL;
		if (!pd)
			break;
		if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
			impl = NULL;
		if (nc == 0 && impl)
			first_avx512 = strstr(impl, "avx512") != NULL;
		/* never a reference or lower-ISA kernel over an AVX-512 one: with
		 * noisy timings they sometimes "won" */
		if (nc > 0 && impl && (!strncmp(impl, "ref", 3) ||
		                       (first_avx512 && !strstr(impl, "avx512")))) {
			dnnl_primitive_desc_destroy(pd);
			continue;
		}
		cand[nc++] = pd;
	} while (nc < max_cand && dnnl_primitive_desc_iterator_next(it) == dnnl_success);
	dnnl_primitive_desc_iterator_destroy(it);
	if (nc == 0)
		return hk__err(HK_E_BACKEND, "oneDNN: no convolution implementation for node %d", ni);
	int best = 0;
	double best_t = 1e300;
	/* later plans (other batch sizes) reuse the first plan's choice */
	int known = -1;
	for (int c = 0; c < nc && x->chosen[ni][0]; c++) {
		const char *impl = NULL;
		if (dnnl_primitive_desc_query(cand[c], dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
		    impl && !strcmp(impl, x->chosen[ni]))
			known = c;
	}
	if (known >= 0)
		best = known;
	for (int c = 0; c < nc && nc > 1 && known < 0; c++) {
		step tmp;
		memset(&tmp, 0, sizeof tmp);
		if ((s = wb_args(x, p, ni, cand[c], bmd, n, &tmp)) ||
		    (s = io_args(x, p, &x->net->node[ni], src, dst, &tmp)))
			break;
		const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(cand[c], dnnl_query_scratchpad_md, 0);
		size_t ss = sm ? dnnl_memory_desc_get_size(sm) : 0;
		void *sbuf = ss ? hk__aalloc(ss) : NULL;
		dnnl_memory_t smem = NULL;
		if ((ss && (!sbuf || dnnl_memory_create(&smem, sm, x->eng, sbuf) != dnnl_success)) ||
		    dnnl_primitive_create(&tmp.prim, cand[c]) != dnnl_success) {
			dnnl_memory_destroy(smem);
			hk__afree(sbuf);
			continue;
		}
		if (smem)
			tmp.args[tmp.nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, smem};
		double t = 1e300;
		for (int r = 0; r < 4; r++) {
			double t0 = x->one_thread ? thread_cpu_ns() : (double)hk__now_ns();
			if (dnnl_primitive_execute(tmp.prim, x->strm, tmp.nargs, tmp.args) != dnnl_success ||
			    dnnl_stream_wait(x->strm) != dnnl_success) {
				t = 1e300;
				break;
			}
			double dt = (x->one_thread ? thread_cpu_ns() : (double)hk__now_ns()) - t0;
			if (r > 0 && dt < t) /* first run: JIT warm-up */
				t = dt;
		}
		dnnl_primitive_destroy(tmp.prim);
		dnnl_memory_destroy(smem);
		hk__afree(sbuf);
		if (t < best_t) {
			best_t = t;
			best = c;
		}
	}
	for (int c = 0; c < nc; c++)
		if (c != best)
			dnnl_primitive_desc_destroy(cand[c]);
	if (s) {
		dnnl_primitive_desc_destroy(cand[best]);
		return s;
	}
	{
		const char *impl = NULL;
		if (dnnl_primitive_desc_query(cand[best], dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
			snprintf(x->chosen[ni], sizeof x->chosen[ni], "%s", impl);
	}
	*out = cand[best];
	return HK_OK;
}

static hk_status plan_create(hk__nn_exec *x, size_t n, hk__nn_plan **out)
{
	const hk__nn_net *net = x->net;
	const hk__nn_tensor *T = net->g.t;
	hk_status s = HK_OK;
	int ni = -1;
	size_t *off = NULL;
	hk__nn_plan *p = calloc(1, sizeof *p);
	if (!p)
		return hk__err(HK_E_NOMEM, "out of memory");
	p->n = n;
	p->buf = calloc((size_t)net->g.ntensors, sizeof(float *));
	p->steps = calloc(2 * (size_t)net->nnodes, sizeof(step)); /* + requantising PReLUs */
	if (!p->buf || !p->steps) {
		s = hk__err(HK_E_NOMEM, "out of memory");
		goto fail;
	}
	if ((s = plan_arena(x, p, &off)))
		goto fail;
	p->arena = xalloc(x, p->arena_bytes);
	if (!p->arena) {
		s = hk__err(HK_E_NOMEM, "out of memory for a %zu-byte activation arena", p->arena_bytes);
		goto fail;
	}
	memset(p->arena, 0, p->arena_bytes);
	for (int t = 0; t < net->g.ntensors; t++)
		if (off[t] != SIZE_MAX)
			p->buf[t] = (float *)((char *)p->arena + off[t]);

	for (ni = 0; ni < net->nnodes; ni++) {
		const hk__nn_node *nd = &net->node[ni];
		step *sp = &p->steps[p->nsteps++];
		sp->node = ni;
		if (!hk__nnx_is_prim(nd, T) || (sp->own = hk__nnx_own8_role(x, ni)))
			continue;
		dnnl_memory_desc_t src, dst, wany, bmd;
		dnnl_primitive_desc_t pd = NULL;
		dnnl_primitive_attr_t attr = NULL;
		dnnl_post_ops_t po = NULL;
		dnnl_memory_t m;
		md_act(x, &src, nd->src, n);
		md_act(x, &dst, nd->dst, n);
		/* user scratchpad: workers on different NUMA nodes run primitives
		 * concurrently and must not share oneDNN's global one */
		DN(dnnl_primitive_attr_create(&attr), "attr");
		DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
		if (nd->kind == NK_FC) { /* flattened NHWC item = TFLite FC input */
			dnnl_dims_t fd = {(dnnl_dim_t)n, (dnnl_dim_t)hk__nn_item_count(&T[nd->src])};
			dnnl_memory_desc_init_by_tag(&src, 2, fd, hk__nnx_act_dt(x, nd->src), dnnl_nc);
		}
		if (nd->kind == NK_PRELU) {
			dnnl_prelu_desc_t prd;
			dnnl_memory_desc_t wmd;
			const hk__nn_tensor *tx = &T[nd->src];
			dnnl_dims_t wd = {1, (dnnl_dim_t)T[nd->src1].count, 1, 1};
			int r4 = tx->ndim == 4;
			dnnl_memory_desc_init_by_tag(&wmd, r4 ? 4 : 2, wd, dnnl_f32, r4 ? dnnl_nhwc : dnnl_nc);
			DN(dnnl_prelu_forward_desc_init(&prd, dnnl_forward_inference, &src, &wmd), "prelu desc");
			DN(dnnl_primitive_desc_create(&pd, &prd, attr, x->eng, NULL), "prelu pd");
			if ((s = plan_mem(p, &wmd, x->eng, x->consts[nd->src1], &m)))
				goto fail_pd;
			sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m};
		} else if (nd->kind == NK_RESIZE) {
			/* oneDNN linear resampling uses half-pixel centres with edge
			 * clamping, i.e. TFLite half_pixel_centers=true */
			dnnl_resampling_desc_t rd;
			DN(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference, dnnl_resampling_linear,
			                                     NULL, &src, &dst), "resampling desc");
			DN(dnnl_primitive_desc_create(&pd, &rd, attr, x->eng, NULL), "resampling pd");
		} else if (nd->kind == NK_MAXPOOL) {
			dnnl_pooling_v2_desc_t pdsc;
			dnnl_dims_t strides = {nd->sh, nd->sw}, k = {nd->kh, nd->kw}, dil = {0, 0},
			            pl = {nd->pt, nd->pl}, pr = {nd->pb, nd->pr};
			DN(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, dnnl_pooling_max,
			                                     &src, &dst, strides, k, dil, pl, pr), "pooling desc");
			DN(dnnl_primitive_desc_create(&pd, &pdsc, attr, x->eng, NULL), "pooling pd");
			sp->c_post_act = 1;
		} else {
			const hk__nn_tensor *w = &T[nd->weights];
			dnnl_dims_t d;
			int O = nd->kind == NK_FC ? w->shape[0] : T[nd->dst].shape[T[nd->dst].ndim - 1];
			if (nd->kind == NK_FC) {
				d[0] = w->shape[0]; d[1] = w->shape[1];
				dnnl_memory_desc_init_by_tag(&wany, 2, d, hk__nnx_act_dt(x, nd->src), dnnl_format_tag_any);
			} else if (nd->groups == 1) {
				d[0] = w->shape[0]; d[1] = w->shape[3]; d[2] = w->shape[1]; d[3] = w->shape[2];
				dnnl_memory_desc_init_by_tag(&wany, 4, d, hk__nnx_act_dt(x, nd->src), dnnl_format_tag_any);
			} else {
				d[0] = nd->groups; d[1] = w->shape[3] / nd->groups; d[2] = 1;
				d[3] = w->shape[1]; d[4] = w->shape[2];
				dnnl_memory_desc_init_by_tag(&wany, 5, d, hk__nnx_act_dt(x, nd->src), dnnl_format_tag_any);
			}
			d[0] = O;
			dnnl_memory_desc_init_by_tag(&bmd, 1, d, dnnl_f32, dnnl_a);
			DN(dnnl_post_ops_create(&po), "post ops");
			/* int8: the post-ops run on values in units of `unit` (the
			 * output scales map the s32 accumulator there); a residual is
			 * added in its own units and the result rescaled to dst's */
			const int q8 = hk__nnx_node_int8(x, nd);
			float unit = q8 ? hk__nnx_qstep(x, nd->dst) : 1.0f;
			for (int k = 0; q8 && k < nd->npost; k++)
				if (nd->post[k].kind == NP_BINARY) {
					unit = hk__nnx_qstep(x, nd->post[k].tensor);
					break;
				}
			if (q8) {
				const float sin = hk__nnx_qstep(x, nd->src);
				float *os = malloc((size_t)O * sizeof *os);
				if (!os) {
					s = hk__err(HK_E_NOMEM, "out of memory");
					goto fail_pd;
				}
				for (int c = 0; c < O; c++)
					os[c] = sin * x->wsc[ni][c] / unit;
				dnnl_status_t st = dnnl_primitive_attr_set_output_scales(attr, O, 1 << 1, os);
				free(os);
				DN(st, "output scales");
			}
			for (int k = 0; k < nd->npost; k++) {
				const hk__nn_postop *q = &nd->post[k];
				if (q->kind == NP_ACT) {
					float al, be;
					dnnl_alg_kind_t a = elt_alg(q->alg, &al, &be);
					if (a == dnnl_eltwise_clip) {
						al /= unit;
						be /= unit;
					} else if (a != dnnl_eltwise_relu && unit != 1.0f) {
						DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, unit, 0), "rescale post-op");
						unit = 1.0f;
					}
					DN(dnnl_post_ops_append_eltwise(po, 1.0f, a, al, be), "eltwise post-op");
				} else if (q->kind == NP_BINARY && q8 && hk__nnx_qstep(x, q->tensor) != unit) {
					DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear,
					                                unit / hk__nnx_qstep(x, q->tensor), 0), "rescale post-op");
					unit = hk__nnx_qstep(x, q->tensor);
					k--; /* now add it */
					continue;
				} else if (q->kind == NP_PRELU) {
					DN(dnnl_post_ops_append_prelu(po, 1 << 1), "prelu post-op");
				} else {
					dnnl_memory_desc_t s1;
					md_act(x, &s1, q->tensor, n);
					DN(dnnl_post_ops_append_binary(po, dnnl_binary_add, &s1), "binary post-op");
				}
			}
			if (q8 && unit != hk__nnx_qstep(x, nd->dst))
				DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear,
				                                unit / hk__nnx_qstep(x, nd->dst), 0), "rescale post-op");
			DN(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops");
			dnnl_post_ops_destroy(po);
			po = NULL;
			if (nd->kind == NK_FC) {
				dnnl_inner_product_desc_t ip;
				DN(dnnl_inner_product_forward_desc_init(&ip, dnnl_forward_inference, &src, &wany,
				                                        nd->bias >= 0 ? &bmd : NULL, &dst), "inner product desc");
				DN(dnnl_primitive_desc_create(&pd, &ip, attr, x->eng, NULL), "inner product pd");
			} else {
				dnnl_convolution_desc_t cd;
				dnnl_dims_t strides = {nd->sh, nd->sw}, dil = {nd->dh - 1, nd->dw - 1},
				            pl = {nd->pt, nd->pl}, pr = {nd->pb, nd->pr};
				DN(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
				                                              dnnl_convolution_direct, &src, &wany,
				                                              nd->bias >= 0 ? &bmd : NULL, &dst,
				                                              strides, dil, pl, pr), "convolution desc");
				if ((s = pick_conv(x, p, ni, &cd, attr, &bmd, &src, &dst, n, &pd)))
					goto fail_pd;
			}
			if (!x->impl[0] && nd->kind == NK_CONV && nd->groups == 1) {
				const char *impl = NULL;
				if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
					snprintf(x->impl, sizeof x->impl, "%s", impl);
			}
			if ((s = wb_args(x, p, ni, pd, &bmd, n, sp)))
				goto fail_pd;
		}
		if ((s = io_args(x, p, nd, &src, hk__nnx_prelu_rq(x, nd) ? &src : &dst, sp)))
			goto fail_pd;
		{
			const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0);
			if (ws && ws->ndims) {
				s = hk__err(HK_E_BACKEND, "oneDNN: node %d wants a workspace in inference", ni);
				goto fail_pd;
			}
		}
		{
			dnnl_status_t st = dnnl_primitive_create(&sp->prim, pd);
			if (st != dnnl_success) {
				s = dn(st, "primitive create", ni);
				goto fail_pd;
			}
		}
		{
			const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
			size_t ss = sm ? dnnl_memory_desc_get_size(sm) : 0;
			if (ss) {
				sp->scratch_md = *sm;
				sp->has_scratch = 1;
				if (ss > p->scratch_bytes)
					p->scratch_bytes = ss;
			}
		}
		dnnl_primitive_desc_destroy(pd);
		dnnl_primitive_attr_destroy(attr);
		pd = NULL;
		attr = NULL;
		if (hk__nnx_prelu_rq(x, nd) && (s = rq_step(x, p, ni, &src, &dst)))
			goto fail;
		continue;
fail_pd:
		dnnl_primitive_desc_destroy(pd);
		dnnl_primitive_attr_destroy(attr);
		dnnl_post_ops_destroy(po);
		goto fail;
	}
	ni = -1;
	if (p->scratch_bytes) {
		p->scratch = xalloc(x, p->scratch_bytes);
		if (!p->scratch) {
			s = hk__err(HK_E_NOMEM, "out of memory for a %zu-byte scratchpad", p->scratch_bytes);
			goto fail;
		}
		for (int i = 0; i < p->nsteps; i++) {
			step *sp = &p->steps[i];
			dnnl_memory_t m;
			if (!sp->has_scratch)
				continue;
			if ((s = plan_mem(p, &sp->scratch_md, x->eng, p->scratch, &m)))
				goto fail;
			sp->args[sp->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m};
		}
	}
	free(off);
	*out = p;
	return HK_OK;
fail:
	free(off);
	plan_free(x, p);
	return s;
}

/* Plans are created one at a time process-wide. Creating and timing
 * primitives on several NUMA workers at once gave sporadically wrong
 * results in the multi-node tests under heavy load (not understood; the
 * oneDNN primitive cache and JIT are shared); creation is a one-time cost,
 * so it is serialised. Execution stays concurrent. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static hk_status plan_create_locked(hk__nn_exec *x, size_t n, hk__nn_plan **out)
{
	pthread_mutex_lock(&create_lock);
	hk_status s = plan_create(x, n, out);
	pthread_mutex_unlock(&create_lock);
	return s;
}

/* A node that runs in C: the reference kernels on floats, a PAD on the
 * element size of its tensors (s8 in int8 runs). */
static void c_node(const hk__nn_exec *x, const hk__nn_node *nd, size_t n, float *const *buf)
{
	if (nd->kind == NK_PAD)
		hk__nn_pad(x->net, nd, n, buf[nd->src], buf[nd->dst], hk__nnx_act_elsize(x, nd->dst));
	else
		hk__nn_ref_node(x->net, nd, n, buf);
}

/* The activations after a pooling (rare; plain C, in place on its output). */
static void pool_post_act(const hk__nn_net *net, const hk__nn_node *nd, size_t n, hk__nn_plan *p)
{
	for (int k = 0; k < nd->npost; k++) {
		hk__nn_node tmp = *nd;
		tmp.kind = NK_UNARY;
		tmp.alg = nd->post[k].alg;
		tmp.src = nd->dst;
		tmp.npost = 0;
		hk__nn_ref_node(net, &tmp, n, p->buf);
	}
}

/* The plan for batch n (created on first use) with the input loaded. */
static hk_status plan_load(hk__nn_exec *x, const float *input, size_t n, hk__nn_plan **out)
{
	hk_status s;
	if (n == 0 || n > x->max_batch)
		return hk__err(HK_E_INVALID, "batch %zu outside 1..%zu", n, x->max_batch);
	if (!x->plans[n] && (s = plan_create_locked(x, n, &x->plans[n])))
		return s;
	*out = x->plans[n];
	hk__nnx_load_input(x, (*out)->buf[x->net->input], input, n);
	return HK_OK;
}

hk_status hk__nn_exec_run(hk__nn_exec *x, const float *input, size_t n,
                          float *const *outputs)
{
	const hk__nn_net *net = x->net;
	hk_status s;
	hk__nn_plan *p;
	if ((s = plan_load(x, input, n, &p)))
		return s;
	for (int i = 0; i < p->nsteps; i++) {
		step *sp = &p->steps[i];
		const hk__nn_node *nd = &net->node[sp->node];
		if (sp->own) {
			hk__nnx_own8_run(x, sp->node, n, p->buf, 0);
			continue;
		}
		if (!sp->prim) {
			c_node(x, nd, n, p->buf);
			continue;
		}
		dnnl_status_t st = dnnl_primitive_execute(sp->prim, x->strm, sp->nargs, sp->args);
		if (st != dnnl_success)
			return dn(st, "execute", sp->node);
		if (sp->c_post_act)
			pool_post_act(net, nd, n, p);
	}
	dnnl_status_t st = dnnl_stream_wait(x->strm);
	if (st != dnnl_success)
		return dn(st, "stream wait", -1);
	for (int k = 0; k < net->noutputs; k++) {
		int t = net->outputs[k];
		memcpy(outputs[k], p->buf[t], hk__nn_item_count(&net->g.t[t]) * n * sizeof(float));
	}
	return HK_OK;
}

hk_status hk__nn_exec_init(hk__nn_exec *x, const hk__nn_net *net,
                           size_t max_batch, const hk__nn_mem *mem, int prec,
                           const float *absmax)
{
	memset(x, 0, sizeof *x);
	x->net = net;
	x->max_batch = max_batch;
	if (mem)
		x->mem = *mem;
	int ni = -1;
	hk_status s = HK_OK;
	x->wc = calloc((size_t)net->nnodes, sizeof *x->wc);
	x->consts = calloc((size_t)net->g.ntensors, sizeof(float *));
	x->chosen = calloc((size_t)net->nnodes, sizeof *x->chosen);
	x->plans = calloc(max_batch + 1, sizeof *x->plans);
	x->prec = prec;
	if (prec == HK_PREC_INT8 && !absmax) {
		s = hk__err(HK_E_INVALID, "int8 needs activation ranges");
		goto fail;
	}
	if ((prec == HK_PREC_BF16 || prec == HK_PREC_INT8) && (s = hk__nnx_choose_dtypes(x, absmax)))
		goto fail;
	if (prec == HK_PREC_INT8 && ((s = hk__nnx_init_int8(x, absmax)) || (s = hk__nnx_own8_init(x))))
		goto fail;
	if (!x->wc || !x->consts || !x->plans || !x->chosen) {
		s = hk__err(HK_E_NOMEM, "out of memory");
		goto fail;
	}
	DN(dnnl_engine_create(&x->eng, dnnl_cpu, 0), "engine create");
	DN(dnnl_stream_create(&x->strm, x->eng, dnnl_stream_default_flags), "stream create");
	/* node-local copies of the small constants primitives read directly */
	for (ni = 0; ni < net->nnodes; ni++) {
		const hk__nn_node *nd = &net->node[ni];
		int ts[1 + HK__NN_MAX_POST], k = 0;
		ts[k++] = nd->bias;
		if (nd->kind == NK_PRELU)
			ts[k++] = nd->src1;
		for (int j = 0; j < nd->npost; j++)
			if (nd->post[j].kind == NP_PRELU)
				ts[k++] = nd->post[j].tensor;
		for (int j = 0; j < k; j++) {
			int t = ts[j];
			if (t < 0 || x->consts[t])
				continue;
			size_t sz = net->g.t[t].count * sizeof(float);
			x->consts[t] = xalloc(x, sz ? sz : 64);
			if (!x->consts[t]) {
				s = hk__err(HK_E_NOMEM, "out of memory");
				goto fail;
			}
			memcpy(x->consts[t], net->g.t[t].f, sz);
		}
	}
	return HK_OK;
fail:
	hk__nn_exec_free(x);
	return s;
}

void hk__nn_exec_free(hk__nn_exec *x)
{
	if (!x || !x->net)
		return;
	const hk__nn_net *net = x->net;
	if (x->plans)
		for (size_t i = 0; i <= x->max_batch; i++)
			plan_free(x, x->plans[i]);
	if (x->wc)
		for (int i = 0; i < net->nnodes; i++)
			for (int k = 0; k < x->wc[i].n; k++) {
				dnnl_memory_destroy(x->wc[i].mem[k]);
				xfree(x, x->wc[i].buf[k], x->wc[i].size[k]);
			}
	if (x->consts)
		for (int t = 0; t < net->g.ntensors; t++)
			if (x->consts[t])
				xfree(x, x->consts[t], net->g.t[t].count ? net->g.t[t].count * sizeof(float) : 64);
	hk__nnx_own8_free(x);
	if (x->strm)
		dnnl_stream_destroy(x->strm);
	if (x->eng)
		dnnl_engine_destroy(x->eng);
	for (int i = 0; i < net->nnodes; i++) {
		if (x->wq)
			free(x->wq[i]);
		if (x->wsc)
			free(x->wsc[i]);
		if (x->qbias)
			free(x->qbias[i]);
	}
	free(x->wq);
	free(x->wsc);
	free(x->qbias);
	free(x->qs);
	free(x->plans);
	free(x->wc);
	free(x->dt);
	free(x->rq);
	free(x->chosen);
	free(x->consts);
	memset(x, 0, sizeof *x);
}


hk_status hk__nn_exec_profile(hk__nn_exec *x, const float *input, size_t n, double *ns)
{
	hk_status s;
	hk__nn_plan *p;
	if ((s = plan_load(x, input, n, &p)))
		return s;
	const hk__nn_net *net = x->net;
	for (int i = 0; i < p->nsteps; i++) {
		step *sp = &p->steps[i];
		double t0 = thread_cpu_ns();
		if (sp->own)
			hk__nnx_own8_run(x, sp->node, n, p->buf, 0);
		else if (!sp->prim)
			c_node(x, &net->node[sp->node], n, p->buf);
		else if (dnnl_primitive_execute(sp->prim, x->strm, sp->nargs, sp->args) != dnnl_success)
			return hk__err(HK_E_BACKEND, "oneDNN: execute failed at node %d", sp->node);
		else if (sp->c_post_act)
			pool_post_act(net, &net->node[sp->node], n, p);
		ns[sp->node] += thread_cpu_ns() - t0;
	}
	return HK_OK;
}

size_t hk__nn_exec_arena_bytes(const hk__nn_exec *x, size_t n)
{
	return n <= x->max_batch && x->plans[n] ? x->plans[n]->arena_bytes : 0;
}


hk_status hk__nn_exec_visit(hk__nn_exec *x, const float *input, size_t n,
                            void (*visit)(void *user, int tensor, const float *v, size_t count),
                            void *user)
{
	hk_status s;
	hk__nn_plan *p;
	if ((s = plan_load(x, input, n, &p)))
		return s;
	const hk__nn_net *net = x->net;
	size_t most = 0;
	for (int t = 0; t < net->g.ntensors; t++)
		if (p->buf[t] && hk__nn_item_count(&net->g.t[t]) * n > most)
			most = hk__nn_item_count(&net->g.t[t]) * n;
	float *f = x->dt ? malloc(most * sizeof(float)) : NULL;
	if (x->dt && !f)
		return hk__err(HK_E_NOMEM, "out of memory");
	hk__nnx_visit_as_f32(x, net->input, p->buf[net->input], n, f, visit, user);
	for (int i = 0; i < p->nsteps && !s; i++) {
		step *sp = &p->steps[i];
		const hk__nn_node *nd = &net->node[sp->node];
		if (sp->own)
			hk__nnx_own8_run(x, sp->node, n, p->buf, 1);
		else if (!sp->prim)
			c_node(x, nd, n, p->buf);
		else if (dnnl_primitive_execute(sp->prim, x->strm, sp->nargs, sp->args) != dnnl_success ||
		         dnnl_stream_wait(x->strm) != dnnl_success)
			s = hk__err(HK_E_BACKEND, "oneDNN: execute failed at node %d", sp->node);
		else if (sp->c_post_act)
			pool_post_act(net, nd, n, p);
		if (!s && !(i + 1 < p->nsteps && p->steps[i + 1].node == sp->node))
			hk__nnx_visit_as_f32(x, nd->dst, p->buf[nd->dst], n, f, visit, user);
	}
	free(f);
	return s;
}
