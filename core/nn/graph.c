/* TFLite op list -> validated, fused node list.
 *
 * Every activation tensor is float32 NHWC with dim 0 the batch; per-item
 * shapes are checked op by op against what the op computes, so the kernels
 * can trust them. Passes:
 *   1. constant folding of DEQUANTIZE (fp16 weights) and DENSIFY (sparse);
 *   2. PReLU spelled out -> one PReLU node:
 *        relu(x) + a*(x - |x|)         (MobileFaceNet: slope 2a)
 *        relu(x) + a*(-relu(-x))       (O-Net: slope a);
 *   3. explicit PAD on H/W folded into the following convolution;
 *   4. conv/FC + fused activation + PReLU / residual ADD / RELU absorbed as
 *      oneDNN post-ops while the intermediate has a single consumer. */
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t hk__nn_item_count(const hk__nn_tensor *t)
{
	size_t c = 1;
	for (int i = 1; i < t->ndim; i++)
		c *= (size_t)t->shape[i];
	return c;
}

typedef struct bctx {
	hk__nn_net *net;
	hk__nn_graph *g;
	int *producer;  /* tensor -> op index (-1) */
	int *nuse;      /* tensor -> consumers among live ops (+1 if output) */
	char *dead;     /* op removed */
	int cap;        /* tensor capacity (synthesised tensors appended) */
	int batch;      /* declared batch of the input */
} bctx;

static const char *opn(const hk__nn_op *o) { return hk__tflite_op_name(o->code); }

static hk_status shape_err(const bctx *c, int opi, const char *what)
{
	return hk__err(HK_E_FORMAT, "tflite: operator %d (%s): %s", opi, opn(&c->g->op[opi]), what);
}

/* An activation tensor: rank >= 1, batch dim equal to the input's. */
static int is_act(const bctx *c, int t)
{
	const hk__nn_tensor *x = &c->g->t[t];
	return t >= 0 && !x->is_const && x->ndim >= 1 && x->shape[0] == c->batch;
}

static int new_tensor(bctx *c, const hk__nn_tensor *like, size_t count)
{
	if (c->g->ntensors >= c->cap)
		return -1;
	int id = c->g->ntensors++;
	hk__nn_tensor *t = &c->g->t[id];
	memset(t, 0, sizeof *t);
	if (like) {
		*t = *like;
		t->f = NULL;
		t->i32 = NULL;
	}
	t->is_const = 1;
	t->type = TFL_T_FLOAT32;
	t->count = count;
	t->f = calloc(count ? count : 1, sizeof(float));
	if (!t->f) {
		c->g->ntensors--;
		return -1;
	}
	return id;
}

/* ---- pass 1: constant folding ---- */
static hk_status fold_constants(bctx *c)
{
	hk__nn_graph *g = c->g;
	for (int i = 0; i < g->nops; i++) {
		hk__nn_op *o = &g->op[i];
		if (o->code != TFL_DEQUANTIZE && o->code != TFL_DENSIFY)
			continue;
		if (o->nin != 1 || o->nout != 1 || o->in[0] < 0)
			return shape_err(c, i, "expects one input and one output");
		hk__nn_tensor *src = &g->t[o->in[0]], *dst = &g->t[o->out[0]];
		if (!src->is_const || !src->f)
			return hk__err(HK_E_UNSUPPORTED, "tflite: operator %d (%s) on a non-constant float tensor", i, opn(o));
		if (dst->is_const)
			return shape_err(c, i, "output is a constant");
		if (dst->count != src->count)
			return shape_err(c, i, "input and output sizes differ");
		dst->f = malloc((src->count ? src->count : 1) * sizeof(float));
		if (!dst->f)
			return hk__err(HK_E_NOMEM, "out of memory");
		memcpy(dst->f, src->f, src->count * sizeof(float));
		dst->is_const = 1;
		dst->type = TFL_T_FLOAT32;
		c->dead[i] = 1;
	}
	return HK_OK;
}

static void count_uses(bctx *c)
{
	hk__nn_graph *g = c->g;
	for (int t = 0; t < c->cap; t++) {
		c->nuse[t] = 0;
		c->producer[t] = -1;
	}
	for (int i = 0; i < g->nops; i++) {
		if (c->dead[i])
			continue;
		for (int k = 0; k < g->op[i].nin; k++)
			if (g->op[i].in[k] >= 0)
				c->nuse[g->op[i].in[k]]++;
		for (int k = 0; k < g->op[i].nout; k++)
			c->producer[g->op[i].out[k]] = i;
	}
	for (int k = 0; k < g->noutputs; k++)
		c->nuse[g->outputs[k]] += 1000; /* never fuse away an output */
}

/* op producing t if live, of the given code and t used exactly once. */
static hk__nn_op *prod1(bctx *c, int t, int code)
{
	if (t < 0 || c->nuse[t] != 1 || c->producer[t] < 0)
		return NULL;
	hk__nn_op *o = &c->g->op[c->producer[t]];
	return o->code == code && o->act == TFL_ACT_NONE ? o : NULL;
}

/* ---- pass 2: PReLU ---- */
static hk_status fuse_prelu(bctx *c, int opi)
{
	hk__nn_graph *g = c->g;
	hk__nn_op *add = &g->op[opi];
	if (add->code != TFL_ADD || add->nin != 2 || add->act != TFL_ACT_NONE)
		return HK_OK;
	for (int sw = 0; sw < 2; sw++) {
		int p = add->in[sw], q = add->in[1 - sw];
		hk__nn_op *relu = prod1(c, p, TFL_RELU), *mul = prod1(c, q, TFL_MUL);
		if (!relu || !mul || relu->nin != 1 || mul->nin != 2)
			continue;
		int x = relu->in[0];
		int a = -1, z = -1;
		for (int k = 0; k < 2; k++)
			if (mul->in[k] >= 0 && g->t[mul->in[k]].is_const && g->t[mul->in[k]].f) {
				a = mul->in[k];
				z = mul->in[1 - k];
			}
		if (a < 0 || z < 0 || !is_act(c, x))
			continue;
		float scale = 0;
		hk__nn_op *dead[4] = {0};
		int nd = 0;
		hk__nn_op *sub = prod1(c, z, TFL_SUB), *neg2 = prod1(c, z, TFL_NEG);
		if (sub && sub->nin == 2 && sub->in[0] == x) {
			hk__nn_op *ab = prod1(c, sub->in[1], TFL_ABS);
			if (ab && ab->in[0] == x) {
				scale = 2.0f; /* x - |x| = 2 min(x, 0) */
				dead[nd++] = sub;
				dead[nd++] = ab;
			}
		} else if (neg2 && neg2->nin == 1) {
			hk__nn_op *r1 = prod1(c, neg2->in[0], TFL_RELU);
			hk__nn_op *n1 = r1 ? prod1(c, r1->in[0], TFL_NEG) : NULL;
			if (n1 && n1->in[0] == x) {
				scale = 1.0f; /* -relu(-x) = min(x, 0) */
				dead[nd++] = neg2;
				dead[nd++] = r1;
				dead[nd++] = n1;
			}
		}
		if (scale == 0)
			continue;
		const hk__nn_tensor *xt = &g->t[x], *at = &g->t[a];
		int C = xt->shape[xt->ndim - 1];
		if (at->count != (size_t)C && at->count != 1)
			continue;
		if (g->t[add->out[0]].count != xt->count)
			return shape_err(c, opi, "PReLU output shape differs from its input");
		int s = new_tensor(c, NULL, (size_t)C);
		if (s < 0)
			return hk__err(HK_E_NOMEM, "out of memory");
		hk__nn_tensor *st = &g->t[s];
		st->ndim = 1;
		st->shape[0] = C;
		snprintf(st->name, sizeof st->name, "prelu_slope");
		for (int i = 0; i < C; i++)
			st->f[i] = scale * g->t[a].f[at->count == 1 ? 0 : i];
		c->dead[relu - g->op] = 1;
		c->dead[mul - g->op] = 1;
		for (int i = 0; i < nd; i++)
			c->dead[dead[i] - g->op] = 1;
		/* rewrite the ADD in place as a pseudo op: code -1 = PRELU */
		add->code = -1;
		add->in[0] = x;
		add->in[1] = s;
		count_uses(c);
		return HK_OK;
	}
	return HK_OK;
}

/* ---- node construction ---- */

static int act_alg(int act)
{
	switch (act) {
	case TFL_ACT_RELU: return NA_RELU;
	case TFL_ACT_RELU6: return NA_RELU6;
	case TFL_ACT_RELU_N1_TO_1: return NA_RELU_N1;
	case TFL_ACT_TANH: return NA_TANH;
	default: return -1;
	}
}

static void add_act(hk__nn_node *nd, int act)
{
	int a = act_alg(act);
	if (a >= 0) {
		nd->post[nd->npost].kind = NP_ACT;
		nd->post[nd->npost].alg = a;
		nd->post[nd->npost].tensor = -1;
		nd->npost++;
	}
}

static int same_pad(int in, int k, int s, int d, int *before, int *after, int *out)
{
	int ek = (k - 1) * d + 1;
	int o = (in + s - 1) / s;
	int tot = (o - 1) * s + ek - in;
	if (tot < 0)
		tot = 0;
	*before = tot / 2;
	*after = tot - tot / 2;
	*out = o;
	return 0;
}

static int valid_out(int in, int k, int s, int d)
{
	int ek = (k - 1) * d + 1;
	return in < ek ? 0 : (in - ek) / s + 1;
}

static int geom_ok(int v) { return v >= 1 && v <= 4096; }

static hk_status build_window(bctx *c, int opi, hk__nn_node *nd, const hk__nn_tensor *x,
                              const hk__nn_tensor *y, int kh, int kw, int oc)
{
	const hk__nn_op *o = &c->g->op[opi];
	if (x->ndim != 4 || y->ndim != 4)
		return shape_err(c, opi, "expects 4-d NHWC tensors");
	if (!geom_ok(kh) || !geom_ok(kw) || !geom_ok(o->stride_h) || !geom_ok(o->stride_w) ||
	    !geom_ok(o->dil_h) || !geom_ok(o->dil_w) || (o->padding != 0 && o->padding != 1))
		return shape_err(c, opi, "bad kernel, stride, dilation or padding");
	nd->kh = kh; nd->kw = kw;
	nd->sh = o->stride_h; nd->sw = o->stride_w;
	nd->dh = o->dil_h; nd->dw = o->dil_w;
	int oh, ow;
	if (o->padding == 0) {
		same_pad(x->shape[1], kh, nd->sh, nd->dh, &nd->pt, &nd->pb, &oh);
		same_pad(x->shape[2], kw, nd->sw, nd->dw, &nd->pl, &nd->pr, &ow);
	} else {
		oh = valid_out(x->shape[1], kh, nd->sh, nd->dh);
		ow = valid_out(x->shape[2], kw, nd->sw, nd->dw);
	}
	if (oh < 1 || ow < 1 || y->shape[1] != oh || y->shape[2] != ow || y->shape[3] != oc)
		return shape_err(c, opi, "output shape does not match the window geometry");
	return HK_OK;
}

static int reduce_last_axis(const hk__nn_graph *g, const hk__nn_op *o, const hk__nn_tensor *x)
{
	if (o->nin < 2 || o->in[1] < 0)
		return 0;
	const hk__nn_tensor *ax = &g->t[o->in[1]];
	if (!ax->is_const || !ax->i32 || ax->count != 1)
		return 0;
	int a = ax->i32[0];
	if (a < 0)
		a += x->ndim;
	return a == x->ndim - 1 && a >= 1;
}

/* b broadcasts onto a (numpy rules, aligned right) and a has y's shape. A
 * constant b must not carry the batch; an activation b has the full rank. */
static int bcast_ok(const bctx *c, int ta, int tb, int ty)
{
	const hk__nn_tensor *a = &c->g->t[ta], *b = &c->g->t[tb], *y = &c->g->t[ty];
	int r = a->ndim;
	if (y->ndim != r || b->ndim > r || (!b->is_const && b->ndim != r))
		return 0;
	for (int i = 0; i < r; i++) {
		int j = i - (r - b->ndim);
		int db = j >= 0 ? b->shape[j] : 1;
		if (a->shape[i] != y->shape[i] || (db != y->shape[i] && db != 1))
			return 0;
		if (i == 0 && j == 0 && b->is_const && db != 1)
			return 0;
	}
	return 1;
}

static hk_status build_node(bctx *c, int opi, hk__nn_node *nd)
{
	hk__nn_graph *g = c->g;
	hk__nn_op *o = &g->op[opi];
	memset(nd, 0, sizeof *nd);
	nd->src = nd->src1 = nd->weights = nd->bias = -1;
	nd->groups = 1;
	if (o->nout != 1)
		return shape_err(c, opi, "expects one output");
	nd->dst = o->out[0];
	hk__nn_tensor *y = &g->t[nd->dst];
	if (!is_act(c, nd->dst))
		return shape_err(c, opi, "output is not a batch tensor");
	int x = o->nin > 0 ? o->in[0] : -1;
	if (o->code != TFL_ADD && o->code != TFL_SUB && o->code != TFL_MUL &&
	    o->code != TFL_DIV && !is_act(c, x))
		return shape_err(c, opi, "first input is not a batch tensor");
	nd->src = x;
	const hk__nn_tensor *xt = x >= 0 ? &g->t[x] : NULL;
	hk_status s;
	switch (o->code) {
	case -1: /* fused PReLU */
		nd->kind = NK_PRELU;
		nd->src1 = o->in[1];
		if (y->count != xt->count)
			return shape_err(c, opi, "PReLU shape mismatch");
		return HK_OK;
	case TFL_CONV_2D:
	case TFL_DEPTHWISE_CONV_2D: {
		if (o->nin < 2 || o->in[1] < 0 || !g->t[o->in[1]].is_const || !g->t[o->in[1]].f)
			return shape_err(c, opi, "weights must be a float constant");
		const hk__nn_tensor *w = &g->t[o->in[1]];
		if (w->ndim != 4 || xt->ndim != 4)
			return shape_err(c, opi, "expects 4-d weights and input");
		int ic = xt->shape[3], oc;
		if (o->code == TFL_CONV_2D) {
			oc = w->shape[0];
			if (w->shape[3] != ic || oc < 1)
				return shape_err(c, opi, "weights do not match the input channels");
		} else {
			oc = w->shape[3];
			if (w->shape[0] != 1 || o->depth_mult < 1 || ic < 1 ||
			    (int64_t)ic * o->depth_mult != oc)
				return shape_err(c, opi, "depthwise weights do not match the input channels");
			nd->groups = ic;
		}
		if ((s = build_window(c, opi, nd, xt, y, w->shape[1], w->shape[2], oc)))
			return s;
		nd->kind = NK_CONV;
		nd->weights = o->in[1];
		if (o->nin > 2 && o->in[2] >= 0) {
			const hk__nn_tensor *b = &g->t[o->in[2]];
			if (!b->is_const || !b->f || b->count != (size_t)oc)
				return shape_err(c, opi, "bias must be a float constant of output-channel size");
			nd->bias = o->in[2];
		}
		nd->flops = 2.0 * y->shape[1] * y->shape[2] * oc * w->shape[1] * w->shape[2] *
		            (double)(ic / nd->groups);
		add_act(nd, o->act);
		return HK_OK;
	}
	case TFL_FULLY_CONNECTED: {
		if (o->nin < 2 || o->in[1] < 0 || !g->t[o->in[1]].is_const || !g->t[o->in[1]].f)
			return shape_err(c, opi, "weights must be a float constant");
		const hk__nn_tensor *w = &g->t[o->in[1]];
		if (w->ndim != 2 || (size_t)w->shape[1] != hk__nn_item_count(xt) ||
		    hk__nn_item_count(y) != (size_t)w->shape[0] || w->shape[0] < 1)
			return shape_err(c, opi, "weights do not match input/output sizes");
		nd->kind = NK_FC;
		nd->weights = o->in[1];
		if (o->nin > 2 && o->in[2] >= 0) {
			const hk__nn_tensor *b = &g->t[o->in[2]];
			if (!b->is_const || !b->f || b->count != (size_t)w->shape[0])
				return shape_err(c, opi, "bias must be a float constant of output size");
			nd->bias = o->in[2];
		}
		nd->flops = 2.0 * w->shape[0] * w->shape[1];
		add_act(nd, o->act);
		return HK_OK;
	}
	case TFL_MAX_POOL_2D:
		nd->kind = NK_MAXPOOL;
		if ((s = build_window(c, opi, nd, xt, y, o->filter_h, o->filter_w, xt->ndim == 4 ? xt->shape[3] : 0)))
			return s;
		if (nd->pt >= nd->kh || nd->pb >= nd->kh || nd->pl >= nd->kw || nd->pr >= nd->kw)
			return shape_err(c, opi, "padding as large as the window");
		add_act(nd, o->act);
		return HK_OK;
	case TFL_ADD: case TFL_SUB: case TFL_MUL: case TFL_DIV: {
		if (o->nin != 2 || o->in[0] < 0 || o->in[1] < 0)
			return shape_err(c, opi, "expects two inputs");
		int a = o->in[0], b = o->in[1];
		const hk__nn_tensor *at = &g->t[a], *bt = &g->t[b];
		if ((at->is_const && !at->f) || (bt->is_const && !bt->f))
			return shape_err(c, opi, "constant operand is not float");
		if (!is_act(c, a) && !is_act(c, b))
			return shape_err(c, opi, "no batch operand");
		/* kernels broadcast b onto a: make a the full-shape activation */
		if (!is_act(c, a) || (is_act(c, b) && bt->count > at->count)) {
			if (o->code == TFL_SUB || o->code == TFL_DIV) {
				if (!is_act(c, a) || at->count != y->count)
					return hk__err(HK_E_UNSUPPORTED, "tflite: operator %d (%s): broadcast of the first operand", opi, opn(o));
			} else {
				int t = a; a = b; b = t;
			}
		}
		if (g->t[a].count != y->count || !bcast_ok(c, a, b, nd->dst))
			return shape_err(c, opi, "operand shapes do not broadcast to the output");
		nd->kind = NK_BINARY;
		nd->alg = o->code == TFL_ADD ? NA_ADD : o->code == TFL_SUB ? NA_SUB :
		          o->code == TFL_MUL ? NA_MUL : NA_DIV;
		nd->src = a;
		nd->src1 = b;
		add_act(nd, o->act);
		return HK_OK;
	}
	case TFL_RELU: case TFL_NEG: case TFL_ABS: case TFL_EXP:
		if (y->count != xt->count)
			return shape_err(c, opi, "output size differs from input");
		nd->kind = NK_UNARY;
		nd->alg = o->code == TFL_RELU ? NA_RELU : o->code == TFL_NEG ? NA_NEG :
		          o->code == TFL_ABS ? NA_ABS : NA_EXP;
		return HK_OK;
	case TFL_SUM: case TFL_REDUCE_MAX:
		if (!reduce_last_axis(g, o, xt))
			return hk__err(HK_E_UNSUPPORTED, "tflite: operator %d (%s): only reduction over the last axis", opi, opn(o));
		if (hk__nn_item_count(y) * (size_t)xt->shape[xt->ndim - 1] != hk__nn_item_count(xt))
			return shape_err(c, opi, "output size does not match the reduction");
		nd->kind = NK_REDUCE;
		nd->alg = o->code == TFL_SUM ? NA_SUM : NA_MAX;
		return HK_OK;
	case TFL_PAD: {
		if (o->nin != 2 || o->in[1] < 0)
			return shape_err(c, opi, "expects paddings");
		const hk__nn_tensor *p = &g->t[o->in[1]];
		if (!p->is_const || !p->i32 || p->count != (size_t)xt->ndim * 2 || y->ndim != xt->ndim || xt->ndim != 4)
			return shape_err(c, opi, "paddings must be a constant [4,2]");
		for (int d = 0; d < xt->ndim; d++) {
			int a = p->i32[2 * d], b = p->i32[2 * d + 1];
			if (a < 0 || b < 0 || a > 4096 || b > 4096 || (d == 0 && (a || b)) ||
			    y->shape[d] != xt->shape[d] + a + b)
				return shape_err(c, opi, "bad paddings");
			nd->pads[d][0] = a;
			nd->pads[d][1] = b;
		}
		nd->kind = NK_PAD;
		return HK_OK;
	}
	case TFL_RESIZE_BILINEAR: {
		if (xt->ndim != 4 || y->ndim != 4 || y->shape[3] != xt->shape[3] || xt->shape[1] < 1 || xt->shape[2] < 1)
			return shape_err(c, opi, "expects 4-d tensors with equal channels");
		if (o->nin > 1 && o->in[1] >= 0) {
			const hk__nn_tensor *sz = &g->t[o->in[1]];
			if (!sz->is_const || !sz->i32 || sz->count != 2 ||
			    sz->i32[0] != y->shape[1] || sz->i32[1] != y->shape[2])
				return shape_err(c, opi, "size input does not match the output");
		}
		if (o->align_corners && o->half_pixel)
			return shape_err(c, opi, "align_corners with half_pixel_centers");
		nd->kind = NK_RESIZE;
		nd->half_pixel = o->half_pixel;
		nd->align_corners = o->align_corners;
		return HK_OK;
	}
	case TFL_DEPTH_TO_SPACE: {
		int bs = o->block_size;
		if (bs < 1 || bs > 64 || xt->ndim != 4 || y->ndim != 4 ||
		    xt->shape[3] % (bs * bs) || y->shape[1] != xt->shape[1] * bs ||
		    y->shape[2] != xt->shape[2] * bs || y->shape[3] != xt->shape[3] / (bs * bs))
			return shape_err(c, opi, "bad block size or shapes");
		nd->kind = NK_D2S;
		nd->block = bs;
		return HK_OK;
	}
	case TFL_RESHAPE:
		if (y->count != xt->count)
			return shape_err(c, opi, "reshape changes the element count");
		nd->kind = NK_COPY;
		return HK_OK;
	default:
		return hk__err(HK_E_UNSUPPORTED, "tflite: operator %d: unsupported op %s", opi, opn(o));
	}
}

/* ---- pass 3/4 on nodes ---- */

static int node_uses(const hk__nn_node *nd, int t)
{
	int n = (nd->src == t) + (nd->src1 == t);
	for (int k = 0; k < nd->npost; k++)
		n += nd->post[k].tensor == t;
	return n;
}

static int consumers(const hk__nn_net *net, int t, int *only)
{
	int n = 0;
	for (int i = 0; i < net->nnodes; i++) {
		if (net->node[i].kind < 0)
			continue;
		int u = node_uses(&net->node[i], t);
		if (u) {
			n += u;
			*only = i;
		}
	}
	for (int k = 0; k < net->noutputs; k++)
		if (net->outputs[k] == t)
			n += 1000;
	return n;
}

static int producer_node(const hk__nn_net *net, int t)
{
	for (int i = 0; i < net->nnodes; i++)
		if (net->node[i].kind >= 0 && net->node[i].dst == t)
			return i;
	return -1;
}

static void fold_pads(hk__nn_net *net)
{
	for (int i = 0; i < net->nnodes; i++) {
		hk__nn_node *nd = &net->node[i];
		if (nd->kind != NK_CONV)
			continue;
		int p = producer_node(net, nd->src), only = -1;
		if (p < 0 || net->node[p].kind != NK_PAD || consumers(net, nd->src, &only) != 1)
			continue;
		hk__nn_node *pd = &net->node[p];
		if (pd->pads[3][0] || pd->pads[3][1])
			continue; /* channel padding stays a node */
		nd->pt += pd->pads[1][0];
		nd->pb += pd->pads[1][1];
		nd->pl += pd->pads[2][0];
		nd->pr += pd->pads[2][1];
		nd->src = pd->src;
		pd->kind = -1;
	}
}

/* Node k only reads tensors produced before position `before`. */
static int hoistable(const hk__nn_net *net, int k, int before)
{
	const hk__nn_node *nd = &net->node[k];
	int ts[2 + HK__NN_MAX_POST] = {nd->src, nd->src1}, n = 2;
	for (int j = 0; j < nd->npost; j++)
		ts[n++] = nd->post[j].tensor;
	for (int j = 0; j < n; j++) {
		if (ts[j] < 0 || net->g.t[ts[j]].is_const)
			continue;
		int p = producer_node(net, ts[j]);
		if (p >= before)
			return 0;
	}
	return 1;
}

/* oneDNN 2.6 has the prelu post-op only in its reference convolution (ref:any,
 * ~100x slower than brgconv): PReLU stays a node and runs as the jit prelu
 * primitive. Flip this when a oneDNN with brgemm prelu post-ops is used. */
static const int fuse_prelu_post = 0;

static void fuse_post(hk__nn_net *net)
{
	hk__nn_graph *g = &net->g;
	for (int i = 0; i < net->nnodes; i++) {
		hk__nn_node *nd = &net->node[i];
		if (nd->kind != NK_CONV && nd->kind != NK_FC)
			continue;
		for (;;) {
			int j = -1;
			if (nd->npost >= HK__NN_MAX_POST || consumers(net, nd->dst, &j) != 1)
				break;
			hk__nn_node *u = &net->node[j];
			const hk__nn_tensor *d = &g->t[nd->dst];
			int C = d->shape[d->ndim - 1];
			hk__nn_postop po = {0, 0, -1};
			if (u->kind == NK_UNARY && u->alg == NA_RELU) {
				po.kind = NP_ACT;
				po.alg = NA_RELU;
			} else if (u->kind == NK_PRELU && fuse_prelu_post &&
			           g->t[u->src1].count == (size_t)C) {
				po.kind = NP_PRELU;
				po.tensor = u->src1;
			} else if (u->kind == NK_BINARY && u->alg == NA_ADD && u->npost <= 1 &&
			           g->t[u->src].count == g->t[u->src1].count &&
			           !g->t[u->src].is_const && !g->t[u->src1].is_const) {
				int other = u->src == nd->dst ? u->src1 : u->src;
				int pp = producer_node(net, other);
				if (pp > i && hoistable(net, pp, i)) {
					/* move the residual's producer (e.g. a channel PAD) in
					 * front of the conv so that the add can be fused */
					hk__nn_node tmp = net->node[pp];
					memmove(&net->node[i + 1], &net->node[i], (size_t)(pp - i) * sizeof tmp);
					net->node[i] = tmp;
					i++;
					nd = &net->node[i];
					pp = i - 1;
				}
				if (other == nd->dst || pp >= i || nd->npost + 1 + u->npost > HK__NN_MAX_POST)
					break; /* the residual must exist before the conv runs */
				po.kind = NP_BINARY;
				po.alg = NA_ADD;
				po.tensor = other;
			} else {
				break;
			}
			nd->post[nd->npost++] = po;
			if (u->kind == NK_BINARY)
				for (int k = 0; k < u->npost; k++)
					nd->post[nd->npost++] = u->post[k];
			nd->dst = u->dst;
			u->kind = -1;
		}
	}
}

void hk__nn_net_free(hk__nn_net *net)
{
	if (!net)
		return;
	hk__nn_graph_free(&net->g);
	free(net->node);
	memset(net, 0, sizeof *net);
}

hk_status hk__nn_build(const void *data, size_t len, hk__nn_net *net)
{
	memset(net, 0, sizeof *net);
	hk_status s = hk__tflite_parse(data, len, &net->g);
	return s ? s : hk__nn_build_graph(net);
}

hk_status hk__nn_build_graph(hk__nn_net *net)
{
	hk_status s = HK_OK;
	hk__nn_graph *g = &net->g;
	bctx c = {net, g, NULL, NULL, NULL, 0, 0};
	c.cap = g->ntensors + g->nops + 4;
	hk__nn_tensor *nt = realloc(g->t, (size_t)c.cap * sizeof *nt);
	c.producer = malloc((size_t)c.cap * sizeof(int));
	c.nuse = malloc((size_t)c.cap * sizeof(int));
	c.dead = calloc((size_t)g->nops, 1);
	net->node = calloc((size_t)g->nops, sizeof *net->node);
	if (nt)
		g->t = nt;
	if (!nt || !c.producer || !c.nuse || !c.dead || !net->node) {
		s = hk__err(HK_E_NOMEM, "out of memory");
		goto out;
	}
	memset(g->t + g->ntensors, 0, (size_t)(c.cap - g->ntensors) * sizeof *nt);

	if (g->ninputs != 1) {
		s = hk__err(HK_E_UNSUPPORTED, "tflite: %d graph inputs (expected 1)", g->ninputs);
		goto out;
	}
	net->input = g->inputs[0];
	const hk__nn_tensor *in = &g->t[net->input];
	if (in->is_const || in->ndim != 4 || in->shape[0] < 1 || in->type != TFL_T_FLOAT32 ||
	    in->shape[1] < 1 || in->shape[2] < 1 || in->shape[3] < 1) {
		s = hk__err(HK_E_UNSUPPORTED, "tflite: input must be a float32 NHWC tensor");
		goto out;
	}
	c.batch = in->shape[0];
	if (g->noutputs < 1) {
		s = hk__err(HK_E_FORMAT, "tflite: no graph outputs");
		goto out;
	}
	net->noutputs = g->noutputs;
	memcpy(net->outputs, g->outputs, sizeof net->outputs);

	if ((s = fold_constants(&c)))
		goto out;
	/* topological order and single assignment */
	{
		char *avail = calloc((size_t)c.cap, 1);
		if (!avail) {
			s = hk__err(HK_E_NOMEM, "out of memory");
			goto out;
		}
		for (int t = 0; t < g->ntensors; t++)
			avail[t] = (char)g->t[t].is_const;
		avail[net->input] = 1;
		for (int i = 0; i < g->nops && !s; i++) {
			if (c.dead[i])
				continue;
			hk__nn_op *o = &g->op[i];
			for (int k = 0; k < o->nin && !s; k++)
				if (o->in[k] >= 0 && !avail[o->in[k]])
					s = shape_err(&c, i, "reads a tensor before it is written");
			for (int k = 0; k < o->nout && !s; k++) {
				if (avail[o->out[k]])
					s = shape_err(&c, i, "writes a tensor that already has a value");
				avail[o->out[k]] = 1;
			}
		}
		for (int k = 0; k < g->noutputs && !s; k++)
			if (!avail[g->outputs[k]] || g->t[g->outputs[k]].is_const)
				s = hk__err(HK_E_FORMAT, "tflite: graph output %d is never computed", g->outputs[k]);
		free(avail);
		if (s)
			goto out;
	}
	count_uses(&c);
	for (int i = 0; i < g->nops; i++)
		if (!c.dead[i] && (s = fuse_prelu(&c, i)))
			goto out;
	for (int i = 0; i < g->nops; i++) {
		if (c.dead[i])
			continue;
		if ((s = build_node(&c, i, &net->node[net->nnodes])))
			goto out;
		net->nnodes++;
	}
	for (int k = 0; k < net->noutputs; k++)
		if (!is_act(&c, net->outputs[k])) {
			s = hk__err(HK_E_FORMAT, "tflite: output %d is not a batch tensor", k);
			goto out;
		}
	fold_pads(net);
	fuse_post(net);
	/* compact */
	int n = 0, counts[16] = {0}, post = 0;
	for (int i = 0; i < net->nnodes; i++) {
		if (net->node[i].kind < 0)
			continue;
		net->node[n++] = net->node[i];
		counts[net->node[i].kind]++;
		post += net->node[i].npost;
		net->flops += net->node[i].flops;
	}
	net->nnodes = n;
	snprintf(net->summary, sizeof net->summary,
	         "%d nodes: conv %d, fc %d, pool %d, resize %d, d2s %d, pad %d, binary %d, unary %d, prelu %d, reduce %d, copy %d; %d fused post-ops",
	         n, counts[NK_CONV], counts[NK_FC], counts[NK_MAXPOOL], counts[NK_RESIZE],
	         counts[NK_D2S], counts[NK_PAD], counts[NK_BINARY], counts[NK_UNARY],
	         counts[NK_PRELU], counts[NK_REDUCE], counts[NK_COPY], post);
out:
	free(c.producer);
	free(c.nuse);
	free(c.dead);
	if (s)
		hk__nn_net_free(net);
	return s;
}
