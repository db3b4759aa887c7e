/* Data types of a bf16 or int8 run: which activations are stored as bf16
 * or s8, the input's conversion, and the s8 weights, steps and biases of
 * the nodes that run in int8. The lowering itself is exec.c. */
#include "nn/exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A node lowered to a oneDNN primitive (everything else is a C kernel). */
int hk__nnx_is_prim(const hk__nn_node *nd, const hk__nn_tensor *T)
{
	switch (nd->kind) {
	case NK_CONV: case NK_FC: case NK_MAXPOOL:
		return 1;
	case NK_PRELU:
		return T[nd->src].ndim != 3;
	case NK_RESIZE:
		return nd->half_pixel && !nd->align_corners;
	default:
		return 0;
	}
}

/* bf16 (or s8) storage for tensors that only oneDNN primitives touch.
 * oneDNN wants f32 src -> f32 dst for convolutions and equal types for the
 * other primitives, so demote to f32 until that holds. Graph outputs stay
 * f32; the input is converted while it is copied in. s8 (int8 runs) only
 * for tensors with a calibrated range, written by convolutions, inner
 * products, PReLU or max pooling (the last two keep their input's step);
 * a float convolution reads its residual in float. */
static int s8_ok(const hk__nn_node *nd, const hk__nn_tensor *T)
{
	/* a pooling's activations run in C on floats (exec.c pool_post_act) */
	return nd->kind == NK_CONV || nd->kind == NK_FC || (nd->kind == NK_MAXPOOL && !nd->npost) ||
	       (nd->kind == NK_PRELU && T[nd->src].ndim == 4);
}

/* A channel or spatial PAD: data movement only (exec.c runs it on any
 * element size), so it keeps its input's type and step; in the dense
 * detector it sits on every residual path and would otherwise leave the
 * convolutions after it in fp32. */
static int moves_only(const hk__nn_node *nd)
{
	return nd->kind == NK_PAD && !nd->npost;
}

/* PReLU node p reads the output of a convolution that nothing else reads. */
static int prelu_input_conv(const hk__nn_net *net, int p, int *conv)
{
	int t = net->node[p].src, readers = 0;
	*conv = -1;
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		if (nd->dst == t && nd->kind == NK_CONV)
			*conv = i;
		readers += (nd->src == t) + (nd->src1 == t);
		for (int k = 0; k < nd->npost; k++)
			readers += nd->post[k].tensor == t;
	}
	for (int k = 0; k < net->noutputs; k++)
		readers += net->outputs[k] == t;
	return *conv >= 0 && readers == 1;
}

static int rq_wanted(void)
{
	const char *v = getenv("HERKEN_INT8_PRELU");
	return !(v && !strcmp(v, "s8"));
}

hk_status hk__nnx_choose_dtypes(hk__nn_exec *x, const float *absmax)
{
	const hk__nn_net *net = x->net;
	const hk__nn_tensor *T = net->g.t;
	const unsigned char want = x->prec == HK_PREC_INT8 ? DT_S8 : DT_BF16;
	x->dt = calloc((size_t)net->g.ntensors, 1);
	if (!x->dt)
		return hk__err(HK_E_NOMEM, "out of memory");
	if (want == DT_S8 && rq_wanted() && !(x->rq = calloc((size_t)net->nnodes, 1)))
		return hk__err(HK_E_NOMEM, "out of memory");
	for (int i = 0; x->rq && i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int only = -1;
		x->rq[i] = nd->kind == NK_PRELU && T[nd->src].ndim == 4 && absmax[nd->dst] > 0 &&
		           prelu_input_conv(net, i, &only);
	}
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		if ((hk__nnx_is_prim(nd, T) || (want == DT_S8 && moves_only(nd))) &&
		    (want == DT_BF16 || ((s8_ok(nd, T) || moves_only(nd)) && absmax[nd->dst] > 0)))
			x->dt[nd->dst] = want;
	}
	if (want == DT_BF16 || absmax[net->input] > 0)
		x->dt[net->input] = want;
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int prim = hk__nnx_is_prim(nd, T) || (want == DT_S8 && moves_only(nd));
		int ts[2 + HK__NN_MAX_POST] = {nd->src, nd->src1}, k = 2;
		for (int j = 0; j < nd->npost; j++)
			ts[k++] = nd->post[j].tensor;
		for (int j = 0; j < k; j++)
			if (ts[j] >= 0 && !T[ts[j]].is_const && !prim)
				x->dt[ts[j]] = 0;
		if (!prim)
			x->dt[nd->dst] = 0;
	}
	for (int k = 0; k < net->noutputs; k++)
		x->dt[net->outputs[k]] = 0;
	/* int8: a PReLU after an int8 convolution reads it in f32 and writes
	 * s8 (hk__nnx_prelu_rq); the convolution writes f32 */
	for (int i = 0; want == DT_S8 && i < net->nnodes; i++)
		if (hk__nnx_prelu_rq(x, &net->node[i]))
			x->dt[net->node[i].src] = DT_F32;
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < net->nnodes; i++) {
			const hk__nn_node *nd = &net->node[i];
			if ((!hk__nnx_is_prim(nd, T) && !(want == DT_S8 && moves_only(nd))) ||
			    (hk__nnx_prelu_rq(x, nd) && x->dt[nd->dst] == DT_S8))
				continue;
			unsigned char *a = &x->dt[nd->src], *b = &x->dt[nd->dst];
			int conv = nd->kind == NK_CONV || nd->kind == NK_FC;
			if ((conv && !*a && *b) || (!conv && *a != *b)) {
				*a = *b = 0;
				changed = 1;
			}
			for (int k = 0; conv && !*a && want == DT_S8 && k < nd->npost; k++)
				if (nd->post[k].kind == NP_BINARY && x->dt[nd->post[k].tensor]) {
					x->dt[nd->post[k].tensor] = 0;
					changed = 1;
				}
		}
	}
	return HK_OK;
}

static uint16_t f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
	u += 0x7fffu + ((u >> 16) & 1);     /* round to nearest even */
	return (uint16_t)(u >> 16);
}

void hk__nnx_load_input(const hk__nn_exec *x, void *dst, const float *input, size_t n)
{
	const hk__nn_net *net = x->net;
	size_t cnt = hk__nn_item_count(&net->g.t[net->input]) * n;
	if (hk__nnx_act_dt(x, net->input) == dnnl_bf16) {
		uint16_t *d = (uint16_t *)dst;
		for (size_t i = 0; i < cnt; i++)
			d[i] = f32_to_bf16(input[i]);
	} else if (hk__nnx_act_dt(x, net->input) == dnnl_s8) {
		int8_t *d = (int8_t *)dst;
		const float inv = 1.0f / x->qs[net->input];
		for (size_t i = 0; i < cnt; i++) {
			float v = nearbyintf(input[i] * inv);
			d[i] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
		}
	} else {
		memcpy(dst, input, cnt * sizeof(float));
	}
}

/* s8 weights of int8 node ni, one step per output channel (max |w| / 127),
 * in the TFLite layout; the bias in accumulator units (oneDNN 2.x adds it
 * before the output scale). */
static hk_status quantise_node(hk__nn_exec *x, int ni)
{
	const hk__nn_node *nd = &x->net->node[ni];
	const hk__nn_tensor *w = &x->net->g.t[nd->weights];
	/* output channel of element i: FC [O,I] and conv OHWI lead with it,
	 * depthwise [1,KH,KW,C] ends with it */
	int dw = nd->kind == NK_CONV && nd->groups > 1;
	size_t O = dw ? (size_t)w->shape[3] : (size_t)w->shape[0], per = w->count / O;
	x->wq[ni] = malloc(w->count ? w->count : 1);
	x->wsc[ni] = malloc(O * sizeof(float));
	x->qbias[ni] = nd->bias >= 0 ? malloc(O * sizeof(float)) : NULL;
	if (!x->wq[ni] || !x->wsc[ni] || (nd->bias >= 0 && !x->qbias[ni]))
		return hk__err(HK_E_NOMEM, "out of memory");
	for (size_t o = 0; o < O; o++) {
		float m = 0;
		for (size_t i = 0; i < per; i++) {
			float v = fabsf(w->f[dw ? i * O + o : o * per + i]);
			m = v > m ? v : m;
		}
		float wstep = m > 0 ? m / 127.0f : 1.0f;
		x->wsc[ni][o] = wstep;
		for (size_t i = 0; i < per; i++) {
			size_t at = dw ? i * O + o : o * per + i;
			x->wq[ni][at] = (int8_t)nearbyintf(w->f[at] / wstep);
		}
		if (x->qbias[ni])
			x->qbias[ni][o] = x->net->g.t[nd->bias].f[o] / (hk__nnx_qstep(x, nd->src) * wstep);
	}
	return HK_OK;
}

hk_status hk__nnx_init_int8(hk__nn_exec *x, const float *absmax)
{
	const hk__nn_net *net = x->net;
	int nt = net->g.ntensors;
	x->qs = calloc((size_t)nt, sizeof *x->qs);
	x->wq = calloc((size_t)net->nnodes, sizeof *x->wq);
	x->wsc = calloc((size_t)net->nnodes, sizeof *x->wsc);
	x->qbias = calloc((size_t)net->nnodes, sizeof *x->qbias);
	if (!x->qs || !x->wq || !x->wsc || !x->qbias)
		return hk__err(HK_E_NOMEM, "out of memory");
	for (int t = 0; t < nt; t++)
		x->qs[t] = absmax[t] > 0 ? absmax[t] / 127.0f : 1.0f;
	/* PReLU (in place) and max pooling cannot rescale: input and output
	 * share one step, wide enough for both (MobileFaceNet has PReLU slopes
	 * up to ~5, so the output can be the wider one) */
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < net->nnodes; i++) {
			const hk__nn_node *nd = &net->node[i];
			if ((nd->kind == NK_PRELU || nd->kind == NK_MAXPOOL || moves_only(nd)) && x->dt[nd->dst] == DT_S8 &&
			    x->dt[nd->src] == DT_S8 && x->qs[nd->src] != x->qs[nd->dst]) {
				float s = fmaxf(x->qs[nd->src], x->qs[nd->dst]);
				x->qs[nd->src] = x->qs[nd->dst] = s;
				changed = 1;
			}
		}
	}
	hk_status s = HK_OK;
	for (int i = 0; i < net->nnodes && !s; i++)
		if (hk__nnx_node_int8(x, &net->node[i]))
			s = quantise_node(x, i);
	return s;
}

void hk__nnx_visit_as_f32(const hk__nn_exec *x, int t, const void *buf, size_t n, float *scratch,
                          void (*visit)(void *user, int tensor, const float *v, size_t count),
                          void *user)
{
	size_t cnt = hk__nn_item_count(&x->net->g.t[t]) * n;
	dnnl_data_type_t d = hk__nnx_act_dt(x, t);
	if (d == dnnl_f32) {
		visit(user, t, buf, cnt);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (d == dnnl_s8) {
			scratch[i] = (float)((const int8_t *)buf)[i] * x->qs[t];
		} else {
			uint32_t u = (uint32_t)((const uint16_t *)buf)[i] << 16;
			memcpy(&scratch[i], &u, 4);
		}
	}
	visit(user, t, scratch, cnt);
}
