/* int8 without VNNI: the executor's int8 convolutions on herken's own
 * exact s8 x s8 kernels (simd/conv_i8.h) instead of oneDNN's, which halve
 * the weights there. Taken when oneDNN's int8 convolutions lack VNNI
 * (hk__int8_vnni() == 0, e.g. a Zen 3 core or ONEDNN_MAX_CPU_ISA=AVX2);
 * HERKEN_INT8_OWN=0 keeps oneDNN everywhere, =1 takes them everywhere.
 *
 * Covered: int8 convolutions (groups 1 of any size via im2col rows, and
 * depthwise with multiplier 1), dilation 1, post-ops ReLU, PReLU and a
 * residual add of an s8 tensor, s8 or f32 output. A requantising PReLU
 * right after such a convolution (hk__nnx_prelu_rq) is fused into its
 * epilogue: conv -> PReLU -> s8 with no f32 tensor in memory. Weights are
 * packed once per exec (node-local, like oneDNN's reordered weights). */
#include "nn/exec.h"

#include "conv_i8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_ROWS 64 /* im2col rows per gemm call */

struct hk__nnx_own8 {
	hk__i8_gemm_fn gemm;
	hk__i8_dw_fn dw;
	unsigned char *role; /* per node: HK__OWN8_* */
	hk__i8_conv *conv;   /* per node (role CONV) */
	int *fused;          /* per node: the fused PReLU node, or -1 */
	int8_t *col;         /* im2col rows, COL_ROWS x col_k */
	size_t col_k;
};

enum { OWN_NONE = 0, OWN_CONV = 1, OWN_FUSED_PRELU = 2 };

/* Post-ops the kernels have, with an s8 residual: 1 yes. */
static int posts_ok(const hk__nn_exec *x, const hk__nn_node *nd)
{
	int adds = 0;
	for (int k = 0; k < nd->npost; k++) {
		const hk__nn_postop *q = &nd->post[k];
		if (q->kind == NP_ACT && q->alg != NA_RELU)
			return 0;
		if (q->kind == NP_BINARY &&
		    (q->alg != NA_ADD || hk__nnx_act_dt(x, q->tensor) != dnnl_s8 || adds++ ||
		     x->net->g.t[q->tensor].count != x->net->g.t[nd->dst].count))
			return 0;
	}
	return nd->npost <= HK__I8_MAX_OPS - 1;
}

static int eligible(const hk__nn_exec *x, int ni)
{
	const hk__nn_node *nd = &x->net->node[ni];
	const hk__nn_tensor *T = x->net->g.t;
	if (nd->kind != NK_CONV || !hk__nnx_node_int8(x, nd) || !x->wq[ni] || nd->dh != 1 || nd->dw != 1 ||
	    T[nd->src].ndim != 4 || T[nd->dst].ndim != 4 || hk__nnx_act_dt(x, nd->dst) == dnnl_bf16)
		return 0;
	if (nd->groups > 1 && (nd->groups != T[nd->src].shape[3] || nd->groups != T[nd->dst].shape[3] ||
	                       T[nd->weights].shape[3] != nd->groups))
		return 0;
	return posts_ok(x, nd);
}

/* The requantising PReLU reading conv node ni's output, or -1. */
static int prelu_after(const hk__nn_exec *x, int ni)
{
	const hk__nn_net *net = x->net;
	const int t = net->node[ni].dst;
	if (hk__nnx_act_dt(x, t) != dnnl_f32)
		return -1;
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *p = &net->node[i];
		if (p->src == t && hk__nnx_prelu_rq(x, p) && hk__nnx_act_dt(x, p->dst) == dnnl_s8 &&
		    net->g.t[p->src1].count == (size_t)net->g.t[t].shape[3])
			return i;
	}
	return -1;
}

static float *padded(size_t n)
{
	return calloc(n + HK__I8_NB, sizeof(float));
}

static hk_status prepare(hk__nn_exec *x, int ni, hk__i8_conv *c)
{
	const hk__nn_net *net = x->net;
	const hk__nn_node *nd = &net->node[ni];
	const hk__nn_tensor *T = net->g.t, *w = &T[nd->weights];
	const size_t N = (size_t)T[nd->dst].shape[3];
	memset(c, 0, sizeof *c);
	c->dw = nd->groups > 1;
	c->N = N;
	c->K = w->count / N; /* OHWI row per output channel; depthwise [1,KH,KW,C] */
	c->H = T[nd->src].shape[1];
	c->W = T[nd->src].shape[2];
	c->OH = T[nd->dst].shape[1];
	c->OW = T[nd->dst].shape[2];
	c->kh = nd->kh;
	c->kw = nd->kw;
	c->sh = nd->sh;
	c->sw = nd->sw;
	c->pt = nd->pt;
	c->pl = nd->pl;
	c->w = malloc(w->count);
	c->scale = padded(N);
	c->bias = padded(N);
	if (!c->w || !c->scale || !c->bias)
		return hk__err(HK_E_NOMEM, "out of memory");
	memcpy(c->w, x->wq[ni], w->count);
	for (size_t i = 0; i < w->count; i++) /* the kernels' contract */
		c->w[i] = c->w[i] < -127 ? -127 : c->w[i];
	const float sin = hk__nnx_qstep(x, nd->src);
	for (size_t o = 0; o < N; o++) {
		c->scale[o] = sin * x->wsc[ni][o];
		c->bias[o] = nd->bias >= 0 ? T[nd->bias].f[o] : 0.0f;
	}
	for (int k = 0; k < nd->npost; k++) {
		const hk__nn_postop *q = &nd->post[k];
		if (q->kind == NP_ACT) {
			c->op[c->nops++] = HK__I8_RELU;
		} else if (q->kind == NP_BINARY) {
			c->res_step = hk__nnx_qstep(x, q->tensor);
			c->op[c->nops++] = HK__I8_ADD;
		} else {
			if (!(c->slope[c->nops] = padded(N)))
				return hk__err(HK_E_NOMEM, "out of memory");
			for (size_t o = 0; o < N; o++)
				c->slope[c->nops][o] = T[q->tensor].count == 1 ? T[q->tensor].f[0] : T[q->tensor].f[o];
			c->op[c->nops++] = HK__I8_PRELU;
		}
	}
	int p = prelu_after(x, ni), out = nd->dst;
	x->own8->fused[ni] = p;
	if (p >= 0) { /* PReLU fused: always the last op */
		if (!(c->slope[c->nops] = padded(N)))
			return hk__err(HK_E_NOMEM, "out of memory");
		memcpy(c->slope[c->nops], T[net->node[p].src1].f, N * sizeof(float));
		c->op[c->nops++] = HK__I8_PRELU;
		x->own8->role[p] = OWN_FUSED_PRELU;
		out = net->node[p].dst;
	}
	c->out_f32 = hk__nnx_act_dt(x, out) == dnnl_f32;
	c->inv_out = 1.0f / hk__nnx_qstep(x, out);
	if (hk__i8_conv_pack(c))
		return hk__err(HK_E_NOMEM, "out of memory");
	if (!c->dw && (nd->kh != 1 || nd->kw != 1 || nd->sh != 1 || nd->sw != 1 || nd->pt || nd->pl) &&
	    c->K > x->own8->col_k)
		x->own8->col_k = c->K;
	return HK_OK;
}

hk_status hk__nnx_own8_init(hk__nn_exec *x)
{
	if (x->prec != HK_PREC_INT8 || !hk__int8_own())
		return HK_OK;
	const hk__nn_net *net = x->net;
	hk__nnx_own8 *o = x->own8 = calloc(1, sizeof *o);
	if (!o || !(o->role = calloc((size_t)net->nnodes, 1)) ||
	    !(o->conv = calloc((size_t)net->nnodes, sizeof *o->conv)) ||
	    !(o->fused = malloc((size_t)net->nnodes * sizeof *o->fused)))
		return hk__err(HK_E_NOMEM, "out of memory");
	const char *name;
	hk__i8_conv_kernels(&o->gemm, &o->dw, &name);
	int any = 0;
	for (int i = 0; i < net->nnodes; i++) {
		o->fused[i] = -1;
		if (!eligible(x, i))
			continue;
		hk_status s = prepare(x, i, &o->conv[i]);
		if (s)
			return s;
		o->role[i] = OWN_CONV;
		any = 1;
	}
	if (o->col_k && !(o->col = malloc(COL_ROWS * o->col_k)))
		return hk__err(HK_E_NOMEM, "out of memory");
	if (any)
		snprintf(x->impl, sizeof x->impl, "herken exact s8s8 (%s)", name);
	return HK_OK;
}

void hk__nnx_own8_free(hk__nn_exec *x)
{
	hk__nnx_own8 *o = x->own8;
	if (!o)
		return;
	for (int i = 0; o->conv && i < x->net->nnodes; i++)
		hk__i8_conv_free(&o->conv[i]);
	free(o->conv);
	free(o->role);
	free(o->fused);
	free(o->col);
	free(o);
	x->own8 = NULL;
}

int hk__nnx_own8_role(const hk__nn_exec *x, int ni)
{
	return x->own8 ? x->own8->role[ni] : OWN_NONE;
}

int hk__nnx_own8_fused(const hk__nn_exec *x, int ni)
{
	return x->own8 && x->own8->role[ni] == OWN_CONV ? x->own8->fused[ni] : -1;
}

/* Rows r0.. of the im2col matrix of item-major output pixels. */
static void im2col(const hk__i8_conv *c, const int8_t *src, size_t Cin, size_t r0, size_t nr, int8_t *col)
{
	for (size_t r = 0; r < nr; r++) {
		size_t m = r0 + r, per = (size_t)c->OH * (size_t)c->OW, i = m / per;
		int oy = (int)(m % per / (size_t)c->OW), ox = (int)(m % (size_t)c->OW);
		int8_t *d = col + r * c->K;
		for (int ky = 0; ky < c->kh; ky++)
			for (int kx = 0; kx < c->kw; kx++, d += Cin) {
				int y = oy * c->sh - c->pt + ky, xx = ox * c->sw - c->pl + kx;
				const int8_t *s = src + ((i * (size_t)c->H + (size_t)y) * (size_t)c->W + (size_t)xx) * Cin;
				int in = y >= 0 && y < c->H && xx >= 0 && xx < c->W;
				if (Cin > 16 && in) /* a call per 3-byte pixel cost 2/3 of the first conv */
					memcpy(d, s, Cin);
				else if (Cin > 16)
					memset(d, 0, Cin);
				else
					for (size_t j = 0; j < Cin; j++)
						d[j] = in ? s[j] : 0;
			}
	}
}

void hk__nnx_own8_run(const hk__nn_exec *x, int ni, size_t n, float *const *buf, int visiting)
{
	const hk__nnx_own8 *o = x->own8;
	const hk__nn_net *net = x->net;
	const hk__nn_node *nd = &net->node[ni];
	if (o->role[ni] == OWN_FUSED_PRELU) {
		/* only when visiting: the f32 output the unfused conv left */
		if (!visiting)
			return;
		const hk__i8_conv *c = NULL;
		for (int i = 0; i < net->nnodes && !c; i++)
			if (o->fused[i] == ni)
				c = &o->conv[i];
		const float *v = buf[nd->src];
		int8_t *q = (int8_t *)buf[nd->dst];
		const float *slope = c->slope[c->nops - 1];
		for (size_t i = 0, cnt = hk__nn_item_count(&net->g.t[nd->dst]) * n; i < cnt; i++) {
			float s = v[i] * slope[i % c->N];
			q[i] = hk__i8_quant(c, v[i] > 0.0f ? v[i] : s);
		}
		return;
	}
	hk__i8_conv c = o->conv[ni];
	int out = o->fused[ni] >= 0 ? net->node[o->fused[ni]].dst : nd->dst;
	if (visiting && o->fused[ni] >= 0) { /* the conv's own f32 output */
		c.nops--;
		c.out_f32 = 1;
		out = nd->dst;
	}
	int res = -1;
	for (int k = 0; k < nd->npost; k++)
		if (nd->post[k].kind == NP_BINARY)
			res = nd->post[k].tensor;
	const size_t Cin = (size_t)net->g.t[nd->src].shape[3];
	hk__i8_io io = {(const int8_t *)buf[nd->src], Cin, res >= 0 ? (const int8_t *)buf[res] : NULL,
	                c.N, buf[out], c.N};
	if (c.dw) {
		o->dw(&c, n, &io);
		return;
	}
	const size_t M = n * (size_t)c.OH * (size_t)c.OW;
	if (c.kh == 1 && c.kw == 1 && c.sh == 1 && c.sw == 1 && !c.pt && !c.pl) {
		o->gemm(&c, M, &io);
		return;
	}
	const size_t osz = c.out_f32 ? sizeof(float) : 1;
	for (size_t r0 = 0; r0 < M; r0 += COL_ROWS) {
		size_t nr = M - r0 < COL_ROWS ? M - r0 : COL_ROWS;
		im2col(&c, (const int8_t *)buf[nd->src], Cin, r0, nr, o->col);
		hk__i8_io rio = {o->col, c.K, io.res ? io.res + r0 * c.N : NULL, c.N,
		                 (char *)buf[out] + r0 * c.N * osz, c.N};
		o->gemm(&c, nr, &rio);
	}
}
