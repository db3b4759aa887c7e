/* Plain-C kernels for the small tail ops oneDNN does not get: PAD (channel
 * padding), RESIZE_BILINEAR with TFLite's half-pixel rule, DEPTH_TO_SPACE,
 * broadcasting ADD/SUB/MUL/DIV that could not be fused, unary ops, PReLU,
 * last-axis reductions and RESHAPE copies. All buffers NHWC float32; shapes
 * were validated by graph.c. These are memory-bound and small in the four
 * models (the largest is channel padding of a 48x48x32 map). */
#include "nn/nn.h"

#include <math.h>
#include <string.h>

static float act(int alg, float v)
{
	switch (alg) {
	case NA_RELU: return v > 0 ? v : 0;
	case NA_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
	case NA_RELU_N1: return v < -1 ? -1 : v > 1 ? 1 : v;
	case NA_TANH: return tanhf(v);
	case NA_NEG: return -v;
	case NA_ABS: return fabsf(v);
	case NA_EXP: return expf(v);
	default: return v;
	}
}

static float bin(int alg, float a, float b)
{
	switch (alg) {
	case NA_ADD: return a + b;
	case NA_SUB: return a - b;
	case NA_MUL: return a * b;
	default: return a / b;
	}
}

static void binary(const hk__nn_net *net, const hk__nn_node *nd, size_t n,
                   float *const *buf)
{
	const hk__nn_tensor *ta = &net->g.t[nd->src], *tb = &net->g.t[nd->src1];
	const float *a = buf[nd->src];
	const float *b = tb->is_const ? tb->f : buf[nd->src1];
	float *y = buf[nd->dst];
	size_t ka = hk__nn_item_count(ta);
	size_t kb = tb->is_const ? tb->count : hk__nn_item_count(tb);
	int r = ta->ndim;
	/* strides of b over a's item dims (0 where b broadcasts) */
	size_t bst[HK__NN_MAX_DIMS] = {0}, st = 1;
	int simple_c = 1;
	for (int i = r - 1; i >= 1; i--) {
		int j = i - (r - tb->ndim);
		int db = j >= 0 ? tb->shape[j] : 1;
		bst[i] = db == 1 ? 0 : st;
		st *= (size_t)db;
		if (i < r - 1 && bst[i])
			simple_c = 0;
	}
	for (size_t it = 0; it < n; it++) {
		const float *ai = a + it * ka;
		const float *bi = tb->is_const ? b : b + it * kb;
		float *yi = y + it * ka;
		if (kb == ka) {
			for (size_t k = 0; k < ka; k++)
				yi[k] = bin(nd->alg, ai[k], bi[k]);
		} else if (kb == 1) {
			for (size_t k = 0; k < ka; k++)
				yi[k] = bin(nd->alg, ai[k], bi[0]);
		} else if (simple_c && r >= 2 && kb == (size_t)ta->shape[r - 1]) {
			for (size_t k = 0; k < ka; k += kb)
				for (size_t c = 0; c < kb; c++)
					yi[k + c] = bin(nd->alg, ai[k + c], bi[c]);
		} else {
			size_t idx[HK__NN_MAX_DIMS] = {0}, off = 0;
			for (size_t k = 0; k < ka; k++) {
				yi[k] = bin(nd->alg, ai[k], bi[off]);
				for (int i = r - 1; i >= 1; i--) {
					off += bst[i];
					if (++idx[i] < (size_t)ta->shape[i])
						break;
					off -= bst[i] * idx[i];
					idx[i] = 0;
				}
			}
		}
	}
}

static void resize(const hk__nn_net *net, const hk__nn_node *nd, size_t n,
                   float *const *buf)
{
	const hk__nn_tensor *tx = &net->g.t[nd->src], *ty = &net->g.t[nd->dst];
	int ih = tx->shape[1], iw = tx->shape[2], C = tx->shape[3];
	int oh = ty->shape[1], ow = ty->shape[2];
	float sy = nd->align_corners && oh > 1 ? (float)(ih - 1) / (float)(oh - 1) : (float)ih / (float)oh;
	float sx = nd->align_corners && ow > 1 ? (float)(iw - 1) / (float)(ow - 1) : (float)iw / (float)ow;
	for (size_t b = 0; b < n; b++) {
		const float *x = buf[nd->src] + b * (size_t)ih * iw * C;
		float *y = buf[nd->dst] + b * (size_t)oh * ow * C;
		for (int oy = 0; oy < oh; oy++) {
			float fy = nd->half_pixel ? ((float)oy + 0.5f) * sy - 0.5f : (float)oy * sy;
			int y0 = (int)floorf(fy), y1 = (int)ceilf(fy);
			if (y0 < 0) y0 = 0;
			if (y1 > ih - 1) y1 = ih - 1;
			if (y0 > ih - 1) y0 = ih - 1;
			if (y1 < 0) y1 = 0;
			float dy = fy - (float)y0;
			for (int ox = 0; ox < ow; ox++) {
				float fx = nd->half_pixel ? ((float)ox + 0.5f) * sx - 0.5f : (float)ox * sx;
				int x0 = (int)floorf(fx), x1 = (int)ceilf(fx);
				if (x0 < 0) x0 = 0;
				if (x1 > iw - 1) x1 = iw - 1;
				if (x0 > iw - 1) x0 = iw - 1;
				if (x1 < 0) x1 = 0;
				float dx = fx - (float)x0;
				const float *p00 = x + ((size_t)y0 * iw + x0) * C;
				const float *p01 = x + ((size_t)y0 * iw + x1) * C;
				const float *p10 = x + ((size_t)y1 * iw + x0) * C;
				const float *p11 = x + ((size_t)y1 * iw + x1) * C;
				float *o = y + ((size_t)oy * ow + ox) * C;
				for (int c = 0; c < C; c++)
					o[c] = p00[c] * (1 - dy) * (1 - dx) + p10[c] * dy * (1 - dx) +
					       p01[c] * (1 - dy) * dx + p11[c] * dy * dx;
			}
		}
	}
}

static void d2s(const hk__nn_net *net, const hk__nn_node *nd, size_t n,
                float *const *buf)
{
	const hk__nn_tensor *tx = &net->g.t[nd->src], *ty = &net->g.t[nd->dst];
	int H = tx->shape[1], W = tx->shape[2], bs = nd->block, Co = ty->shape[3];
	for (size_t b = 0; b < n; b++) {
		const float *x = buf[nd->src] + b * tx->count / (size_t)tx->shape[0];
		float *y = buf[nd->dst] + b * ty->count / (size_t)ty->shape[0];
		for (int h = 0; h < H; h++)
			for (int w = 0; w < W; w++)
				for (int i = 0; i < bs; i++)
					for (int j = 0; j < bs; j++)
						memcpy(y + (((size_t)(h * bs + i) * W * bs) + (size_t)(w * bs + j)) * Co,
						       x + ((size_t)h * W + w) * Co * bs * bs + (size_t)(i * bs + j) * Co,
						       (size_t)Co * sizeof(float));
	}
}

void hk__nn_pad(const hk__nn_net *net, const hk__nn_node *nd, size_t n, const void *src, void *dst,
                size_t es)
{
	const hk__nn_tensor *tx = &net->g.t[nd->src], *ty = &net->g.t[nd->dst];
	int H = tx->shape[1], W = tx->shape[2], C = tx->shape[3];
	int OW = ty->shape[2], OC = ty->shape[3];
	size_t ki = hk__nn_item_count(tx) * es, ko = hk__nn_item_count(ty) * es;
	for (size_t b = 0; b < n; b++) {
		const char *x = (const char *)src + b * ki;
		char *y = (char *)dst + b * ko;
		memset(y, 0, ko);
		for (int h = 0; h < H; h++)
			for (int w = 0; w < W; w++)
				memcpy(y + (((size_t)(h + nd->pads[1][0]) * OW + (size_t)(w + nd->pads[2][0])) * OC +
				            (size_t)nd->pads[3][0]) * es,
				       x + ((size_t)h * W + w) * C * es, (size_t)C * es);
	}
}

void hk__nn_ref_node(const hk__nn_net *net, const hk__nn_node *nd, size_t n,
                     float *const *buf)
{
	const hk__nn_tensor *tx = &net->g.t[nd->src], *ty = &net->g.t[nd->dst];
	size_t kx = hk__nn_item_count(tx) * n, ky = hk__nn_item_count(ty) * n;
	const float *x = buf[nd->src];
	float *y = buf[nd->dst];
	switch (nd->kind) {
	case NK_BINARY:
		binary(net, nd, n, buf);
		break;
	case NK_UNARY:
		for (size_t k = 0; k < kx; k++)
			y[k] = act(nd->alg, x[k]);
		break;
	case NK_PRELU: {
		const hk__nn_tensor *ts = &net->g.t[nd->src1];
		size_t C = ts->count;
		for (size_t k = 0; k < kx; k += C)
			for (size_t c = 0; c < C; c++) {
				float v = x[k + c];
				y[k + c] = v > 0 ? v : v * ts->f[c];
			}
		break;
	}
	case NK_REDUCE: {
		size_t L = (size_t)tx->shape[tx->ndim - 1];
		for (size_t o = 0; o < ky; o++) {
			const float *p = x + o * L;
			float acc = nd->alg == NA_MAX ? -INFINITY : 0.0f;
			for (size_t k = 0; k < L; k++)
				acc = nd->alg == NA_MAX ? (p[k] > acc ? p[k] : acc) : acc + p[k];
			y[o] = acc;
		}
		break;
	}
	case NK_COPY:
		memcpy(y, x, kx * sizeof(float));
		break;
	case NK_RESIZE:
		resize(net, nd, n, buf);
		break;
	case NK_D2S:
		d2s(net, nd, n, buf);
		break;
	case NK_PAD:
		hk__nn_pad(net, nd, n, buf[nd->src], buf[nd->dst], sizeof(float));
		break;
	default:
		return;
	}
	for (int k = 0; k < nd->npost; k++)
		if (nd->post[k].kind == NP_ACT)
			for (size_t i = 0; i < ky; i++)
				y[i] = act(nd->post[k].alg, y[i]);
}
