/* int8 support around the executor: the table of calibrated activation
 * ranges (core/nn/int8_ranges.txt, keyed by the model file's sha256), the
 * calibration run that produces it, and the CPU check.
 *
 * A model is in the table only if its int8 run passed its accuracy guards
 * (see int8_ranges.txt); HK_PREC_AUTO relies on that. */
#define _GNU_SOURCE
#include "nn/exec.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ranges_table[] =
#include "nn/int8_ranges.txt"
	;

void hk__sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, data, len);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

/* Parses the "model <sha256>" section of text: lines "<tensor> <absmax>"
 * until "end". 1 found, 0 not there, -1 malformed. */
static int eq_line(hk__nn_net *net, const char *l);

static int parse_ranges(const char *text, const char *sha, hk__nn_net *net, float *out,
                        unsigned char *keep_f32, int *guard_ok, int only_guarded)
{
	char head[80];
	snprintf(head, sizeof head, "model %s", sha);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, head, strlen(head)) || (l[strlen(head)] != '\n' && l[strlen(head)] != ' '))
			continue;
		/* "model <sha256> guard-fail": int8 runs when asked for, never by
		 * HK_PREC_AUTO; "guard-vnni": the guard holds only where oneDNN's
		 * int8 convolutions have VNNI (hk__int8_vnni); "guard-exact": where
		 * the int8 convolutions are exact (hk__int8_exact) */
		const char *mark = l + strlen(head);
		*guard_ok = strncmp(mark, " guard-fail", 11) != 0 &&
		            (strncmp(mark, " guard-vnni", 11) != 0 || hk__int8_vnni()) &&
		            (strncmp(mark, " guard-exact", 12) != 0 || hk__int8_exact());
		if (!*guard_ok && only_guarded)
			return 0;
		for (l = strchr(l, '\n'); l && *++l;) {
			if (!strncmp(l, "end", 3))
				return 1;
			if (*l == 'f') { /* "f <tensor>": f32 on the own kernels */
				char *e;
				long t = strtol(l + 1, &e, 10);
				if (e == l + 1 || t < 0 || t >= net->g.ntensors)
					return -1;
				if (hk__int8_own())
					keep_f32[t] = 1;
				l = strchr(e, '\n');
				continue;
			}
			if (*l == 'e' || *l == 'g') {
				if (eq_line(net, l))
					return -1;
				l = strchr(l, '\n');
				continue;
			}
			char *e;
			long t = strtol(l, &e, 10);
			if (e == l || t < 0 || t >= net->g.ntensors)
				return -1;
			float v = strtof(e, &e);
			if (!(v > 0) || !isfinite(v) || (*e != '\n' && *e != ' '))
				return -1;
			out[t] = v;
			l = strchr(e, '\n');
		}
		return -1;
	}
	return 0;
}

hk_status hk__int8_ranges(const char *sha, hk__nn_net *net, int only_guarded, float **out)
{
	int guard_ok_v = 1, *guard_ok = &guard_ok_v;
	*out = NULL;
	float *r = calloc((size_t)net->g.ntensors, sizeof *r);
	unsigned char *keep = calloc((size_t)net->g.ntensors, 1);
	if (!r || !keep) {
		free(r);
		free(keep);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	int got = 0;
	/* a candidate calibration (`herken-bench int8-calibrate` output) is
	 * tried before it is committed */
	const char *file = getenv("HERKEN_INT8_RANGES");
	if (file && *file) {
		FILE *f = fopen(file, "rb");
		char *text = NULL;
		size_t cap = 0;
		if (!f) {
			free(r);
			free(keep);
			return hk__err(HK_E_NOT_FOUND, "HERKEN_INT8_RANGES: cannot open %s", file);
		}
		ssize_t n = getdelim(&text, &cap, '\0', f);
		fclose(f);
		/* the table's own format: lines are C string literals */
		for (ssize_t i = 0, o = 0; i <= n && text; i++) {
			if (i < n && text[i] == '"')
				continue;
			if (i + 1 < n && text[i] == '\\' && text[i + 1] == 'n') {
				text[o++] = ' ';
				i++;
				continue;
			}
			text[o++] = i < n ? text[i] : '\0';
		}
		got = n > 0 ? parse_ranges(text, sha, net, r, keep, guard_ok, only_guarded) : 0;
		free(text);
	}
	if (!got)
		got = parse_ranges(ranges_table, sha, net, r, keep, guard_ok, only_guarded);
	for (int t = 0; got > 0 && t < net->g.ntensors; t++)
		if (keep[t])
			r[t] = 0; /* no range: the tensor stays f32 */
	free(keep);
	if (got <= 0) {
		free(r);
		return got < 0 ? hk__err(HK_E_FORMAT, "int8 ranges of model %.16s...: malformed", sha)
		               : hk__err(HK_E_NOT_FOUND, "no int8 calibration for model sha256 %s", sha);
	}
	*out = r;
	return HK_OK;
}

int hk__int8_vnni(void)
{
	/* without VNNI oneDNN 2.6 multiplies with vpmaddubsw, whose 16-bit
	 * sums can saturate (oneDNN's "nuances of int8" page), so it runs s8
	 * inputs with halved weights; the embedder's min golden-face cosine
	 * falls from 0.9951 to 0.9804 under ONEDNN_MAX_CPU_ISA=AVX2 */
	const unsigned vnni = dnnl_cpu_isa_avx512_core_vnni;
	return ((unsigned)dnnl_get_effective_cpu_isa() & vnni) == vnni;
}

int hk__int8_own(void)
{
	const char *v = getenv("HERKEN_INT8_OWN");
	if (v && (!strcmp(v, "0") || !strcmp(v, "1")))
		return *v == '1';
	return !hk__int8_vnni();
}

int hk__int8_exact(void)
{
	return hk__int8_vnni() || hk__int8_own();
}

const char *hk__int8_missing_isa(void)
{
	dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
	return (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2 ? NULL : "AVX2";
}


/* ---- cross-layer equalisation ----
 * The channels of one MobileFaceNet activation differ in range by up to
 * ~100x (batch norm folded per channel), and one s8 step per tensor crushes
 * the small ones; a PReLU between two convolutions shares one step between
 * its input and output (slopes reach ~5). PReLU and ReLU are positively
 * homogeneous, so multiplying output channel c of a convolution A (weights
 * and bias) by g_c and dividing input channel c of the only convolution B
 * that reads it by g_c leaves B's output unchanged while the tensor between
 * them gets channel ranges r_c * g_c. g_c = 2^(k_c/4), the largest that
 * keeps r_c * g_c <= max r; k_c is one character (0-9a-zA-Z) per channel in
 * the ranges table. Measured on the golden faces (MobileFaceNet, AVX-512
 * VNNI): cosine vs fp32 0.825 without it, 0.9925 with whole octaves, 0.9930
 * with quarter octaves. */

/* Node reading tensor t (any operand) and how often; outputs count many. */
static int readers(const hk__nn_net *net, int t, int *only)
{
	int n = 0;
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int u = (nd->src == t) + (nd->src1 == t);
		for (int k = 0; k < nd->npost; k++)
			u += nd->post[k].tensor == t;
		if (u) {
			n += u;
			*only = i;
		}
	}
	for (int k = 0; k < net->noutputs; k++)
		n += 1000 * (net->outputs[k] == t);
	return n;
}

int hk__int8_eq_pair(const hk__nn_net *net, int a, int *b_out)
{
	const hk__nn_node *A = &net->node[a];
	if (A->kind != NK_CONV)
		return 0;
	for (int k = 0; k < A->npost; k++)
		if (A->post[k].kind != NP_ACT || A->post[k].alg != NA_RELU)
			return 0;
	int t = A->dst, b = -1;
	if (readers(net, t, &b) != 1)
		return 0;
	if (net->node[b].kind == NK_PRELU && net->node[b].src == t) {
		t = net->node[b].dst;
		if (readers(net, t, &b) != 1)
			return 0;
	}
	const hk__nn_node *B = &net->node[b];
	if (B->kind != NK_CONV || B->src != t)
		return 0;
	const hk__nn_tensor *wb = &net->g.t[B->weights];
	int C = net->g.t[t].shape[3];
	if (B->groups > 1 && wb->shape[3] != C)
		return 0; /* depth multiplier > 1 */
	*b_out = b;
	return 1;
}

/* One channel's equalisation k (channel multiplied by 2^(k/4)) from its
 * character 0-9a-zA-Z; -1 for any other. */
static int eq_digit(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'Z' ? ch - 'A' + 36 : -1;
}

/* Output of the PReLU between an equalisable pair led by node a, or -1. */
static int eq_mid(const hk__nn_net *net, int a)
{
	int b = -1;
	if (readers(net, net->node[a].dst, &b) == 1 && net->node[b].kind == NK_PRELU)
		return net->node[b].dst;
	return -1;
}

/* Output channel c of convolution node ni (weights and bias) times g. */
static void scale_out(hk__nn_net *net, int ni, int c, float g)
{
	const hk__nn_node *A = &net->node[ni];
	hk__nn_tensor *w = &net->g.t[A->weights];
	if (A->groups > 1) { /* [1,KH,KW,C] */
		for (size_t i = (size_t)c; i < w->count; i += (size_t)w->shape[3])
			w->f[i] *= g;
	} else { /* OHWI */
		for (size_t i = 0, per = w->count / (size_t)w->shape[0]; i < per; i++)
			w->f[(size_t)c * per + i] *= g;
	}
	if (A->bias >= 0)
		net->g.t[A->bias].f[c] *= g;
}

/* Input channel c of convolution node ni times g (the last axis of both
 * OHWI and depthwise [1,KH,KW,C] weights). */
static void scale_in(hk__nn_net *net, int ni, int c, float g)
{
	hk__nn_tensor *w = &net->g.t[net->node[ni].weights];
	for (size_t i = (size_t)c; i < w->count; i += (size_t)w->shape[3])
		w->f[i] *= g;
}

static void eq_apply(hk__nn_net *net, int a, int b, const char *digits)
{
	const hk__nn_tensor *wa = &net->g.t[net->node[a].weights];
	int C = net->node[a].groups > 1 ? wa->shape[3] : wa->shape[0];
	for (int c = 0; c < C; c++) {
		float g = exp2f(0.25f * (float)eq_digit(digits[c]));
		scale_out(net, a, c, g);
		scale_in(net, b, c, 1.0f / g);
	}
}

/* A residual chain: tensors joined by fused residual adds (conv X adds r
 * into its output y: r and y must scale alike), the convolutions that
 * write them and the convolutions that read them. Equalised as one: every
 * writer's output channel c times g_c, every reader's input channel c over
 * g_c. */
#define EQ_GROUP_MAX 32
typedef struct eq_group {
	int nt, nw, nr;
	int t[EQ_GROUP_MAX], w[EQ_GROUP_MAX], r[EQ_GROUP_MAX];
} eq_group;

static int in_list(const int *v, int n, int x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

/* The chain through tensor t0; 1 when it can be equalised. */
static int eq_chain(const hk__nn_net *net, int t0, eq_group *g)
{
	memset(g, 0, sizeof *g);
	g->t[g->nt++] = t0;
	for (int grew = 1; grew;) {
		grew = 0;
		for (int i = 0; i < net->nnodes; i++) {
			const hk__nn_node *nd = &net->node[i];
			for (int k = 0; k < nd->npost; k++) {
				if (nd->post[k].kind != NP_BINARY)
					continue;
				int a = nd->post[k].tensor, b = nd->dst;
				int ia = in_list(g->t, g->nt, a), ib = in_list(g->t, g->nt, b);
				if (ia == ib)
					continue;
				if (g->nt == EQ_GROUP_MAX)
					return 0;
				g->t[g->nt++] = ia ? b : a;
				grew = 1;
			}
		}
	}
	if (g->nt < 2)
		return 0;
	const int C = net->g.t[t0].shape[net->g.t[t0].ndim - 1];
	for (int j = 0; j < g->nt; j++) {
		const hk__nn_tensor *T = &net->g.t[g->t[j]];
		if (T->ndim != 4 || T->shape[3] != C)
			return 0;
		for (int k = 0; k < net->noutputs; k++)
			if (net->outputs[k] == g->t[j])
				return 0;
	}
	for (int i = 0; i < net->nnodes; i++) {
		const hk__nn_node *nd = &net->node[i];
		int writes = in_list(g->t, g->nt, nd->dst), reads_src = in_list(g->t, g->nt, nd->src);
		int reads_other = in_list(g->t, g->nt, nd->src1);
		for (int k = 0; k < nd->npost; k++)
			if (in_list(g->t, g->nt, nd->post[k].tensor) &&
			    !(writes && nd->post[k].kind == NP_BINARY))
				reads_other = 1;
		if (writes) {
			if (nd->kind != NK_CONV || g->nw == EQ_GROUP_MAX)
				return 0;
			for (int k = 0; k < nd->npost; k++)
				if (nd->post[k].kind == NP_ACT && nd->post[k].alg != NA_RELU)
					return 0;
			g->w[g->nw++] = i;
		}
		if (reads_other)
			return 0;
		if (reads_src) {
			if (nd->kind != NK_CONV || g->nr == EQ_GROUP_MAX ||
			    (nd->groups > 1 && net->g.t[nd->weights].shape[3] != C))
				return 0;
			g->r[g->nr++] = i;
		}
	}
	return g->nw > 0;
}

static void chain_apply(hk__nn_net *net, const eq_group *g, const char *digits)
{
	int C = net->g.t[g->t[0]].shape[3];
	for (int c = 0; c < C; c++) {
		float s = exp2f(0.25f * (float)eq_digit(digits[c]));
		for (int i = 0; i < g->nw; i++)
			scale_out(net, g->w[i], c, s);
		for (int i = 0; i < g->nr; i++)
			scale_in(net, g->r[i], c, 1.0f / s);
	}
}

/* "e <weights tensor> <digits>": equalise the pair led by that
 * convolution; "g <weights tensor> <digits>": the residual chain its
 * output belongs to. 0 ok, -1 no such pair or chain, or a wrong length. */
static int eq_line(hk__nn_net *net, const char *l)
{
	char *e;
	long w = strtol(l + 1, &e, 10);
	while (*e == ' ')
		e++;
	if (*l == 'g') {
		eq_group g;
		for (int a = 0; a < net->nnodes; a++) {
			if (net->node[a].weights != w || !eq_chain(net, net->node[a].dst, &g))
				continue;
			int k = 0;
			while (eq_digit(e[k]) >= 0)
				k++;
			if (k != net->g.t[g.t[0]].shape[3])
				return -1;
			chain_apply(net, &g, e);
			return 0;
		}
		return -1;
	}
	for (int a = 0; a < net->nnodes; a++) {
		int b;
		if (net->node[a].weights != w || !hk__int8_eq_pair(net, a, &b))
			continue;
		int C = net->g.t[net->node[a].dst].shape[3], k = 0;
		while (eq_digit(e[k]) >= 0)
			k++;
		if (k != C)
			return -1;
		eq_apply(net, a, b, e);
		return 0;
	}
	return -1;
}

/* ---- calibration ---- */

/* Per-channel k (0-9a-zA-Z, quarter octaves) that brings every channel
 * range r[c] up to, never past, the largest (strength 1), or part of the
 * way: a residual chain divides the input channels of several
 * convolutions, whose per-output-channel weight steps then lose the small
 * ones (on the golden faces, full chain equalisation was worse than none;
 * half of it, balancing activation and weight steps, was the best tried). */
static char *eq_digits(const float *r, int C, double strength)
{
	char *d = calloc((size_t)C + 1, 1);
	float R = 0;
	for (int c = 0; c < C; c++)
		R = fmaxf(R, r[c]);
	for (int c = 0; d && c < C; c++) {
		double k = r[c] > 0 ? floor(4 * strength * log2(R / r[c])) : 61;
		d[c] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[k < 0 ? 0 : k > 61 ? 61 : (int)k];
	}
	return d;
}

typedef struct stats {
	const hk__nn_net *net;
	float *amax;      /* per tensor */
	float **chmax;    /* per tensor: per-channel max |v| (NULL: not wanted) */
} stats;

static void visit(void *user, int t, const float *v, size_t count)
{
	stats *st = user;
	float a = st->amax[t];
	for (size_t i = 0; i < count; i++)
		a = fmaxf(a, fabsf(v[i]));
	st->amax[t] = a;
	if (st->chmax[t]) {
		const hk__nn_tensor *T = &st->net->g.t[t];
		size_t C = (size_t)T->shape[T->ndim - 1];
		for (size_t i = 0; i < count; i++)
			st->chmax[t][i % C] = fmaxf(st->chmax[t][i % C], fabsf(v[i]));
	}
}

static hk_status run_stats(const hk__nn_net *net, const float *input, size_t n, stats *st)
{
	hk__nn_exec x;
	const size_t batch = 8;
	hk_status s = hk__nn_exec_init(&x, net, batch, NULL, HK_PREC_FP32, NULL);
	size_t item = hk__nn_item_count(&net->g.t[net->input]);
	for (size_t done = 0; !s && done < n; done += batch)
		s = hk__nn_exec_visit(&x, input + done * item, n - done < batch ? n - done : batch, visit, st);
	hk__nn_exec_free(&x);
	return s;
}


hk_status hk__int8_calibrate(const void *data, size_t len, const float *input, size_t n,
                             hk__int8_calib *out)
{
	memset(out, 0, sizeof *out);
	hk__nn_net net;
	hk_status s = hk__nn_build(data, len, &net);
	if (s)
		return s;
	int nt = net.g.ntensors;
	stats st = {&net, calloc((size_t)nt, sizeof(float)), calloc((size_t)nt, sizeof(float *))};
	char **eq = calloc((size_t)nt, sizeof *eq), **geq = calloc((size_t)nt, sizeof *geq);
	int *pair = malloc((size_t)net.nnodes * sizeof *pair);
	if (!st.amax || !st.chmax || !eq || !geq || !pair) {
		s = hk__err(HK_E_NOMEM, "out of memory");
		goto out;
	}
	/* pass 1: channel ranges of the tensors between equalisable pairs */
	for (int a = 0; a < net.nnodes && !s; a++) {
		pair[a] = -1;
		if (hk__int8_eq_pair(&net, a, &pair[a])) {
			int t2 = eq_mid(&net, a);
			size_t C = (size_t)net.g.t[net.node[a].dst].shape[3];
			st.chmax[net.node[a].dst] = calloc(C, sizeof(float));
			if (t2 >= 0)
				st.chmax[t2] = calloc(C, sizeof(float));
			if (!st.chmax[net.node[a].dst] || (t2 >= 0 && !st.chmax[t2]))
				s = hk__err(HK_E_NOMEM, "out of memory");
		}
	}
	for (int a = 0; a < net.nnodes && !s; a++) {
		eq_group g;
		if (!eq_chain(&net, net.node[a].dst, &g) || g.w[0] != a)
			continue;
		for (int j = 0; j < g.nt && !s; j++)
			if (!(st.chmax[g.t[j]] = calloc((size_t)net.g.t[g.t[j]].shape[3], sizeof(float))))
				s = hk__err(HK_E_NOMEM, "out of memory");
	}
	if (!s)
		s = run_stats(&net, input, n, &st);
	for (int a = 0; a < net.nnodes && !s; a++) {
		if (pair[a] < 0)
			continue;
		int t = net.node[a].dst, C = net.g.t[t].shape[3], w = net.node[a].weights;
		/* a PReLU between reads the convolution's output in f32
		 * (hk__nnx_prelu_rq): only its s8 output's channel ranges count */
		int t2 = eq_mid(&net, a);
		for (int c = 0; c < C && t2 >= 0; c++)
			st.chmax[t][c] = st.chmax[t2][c];
		double strength = 1.0;
		if (!(eq[w] = eq_digits(st.chmax[t], C, strength))) {
			s = hk__err(HK_E_NOMEM, "out of memory");
			break;
		}
		eq_apply(&net, a, pair[a], eq[w]);
	}
	for (int a = 0; a < net.nnodes && !s; a++) {
		eq_group g;
		if (!eq_chain(&net, net.node[a].dst, &g) || g.w[0] != a)
			continue;
		int C = net.g.t[g.t[0]].shape[3], w = net.node[a].weights;
		for (int j = 1; j < g.nt; j++)
			for (int c = 0; c < C; c++)
				st.chmax[g.t[0]][c] = fmaxf(st.chmax[g.t[0]][c], st.chmax[g.t[j]][c]);
		if (!(geq[w] = eq_digits(st.chmax[g.t[0]], C, 0.5))) {
			s = hk__err(HK_E_NOMEM, "out of memory");
			break;
		}
		chain_apply(&net, &g, geq[w]);
	}
	/* pass 2 on the equalised net: tensor ranges (the max |value|: clipping
	 * at the MSE-optimal point of a histogram was worse on the golden faces,
	 * 0.9896 vs 0.9925, which are sharper photos than LFW's) */
	memset(st.amax, 0, (size_t)nt * sizeof(float));
	for (int t = 0; t < nt; t++) {
		free(st.chmax[t]);
		st.chmax[t] = NULL;
	}
	if (!s)
		s = run_stats(&net, input, n, &st);
out:
	free(pair);
	if (st.chmax)
		for (int t = 0; t < nt; t++)
			free(st.chmax[t]);
	free(st.chmax);
	if (!s) {
		out->amax = st.amax;
		out->eq = eq;
		out->geq = geq;
		out->ntensors = nt;
	} else {
		free(st.amax);
		for (int t = 0; t < nt; t++) {
			if (eq)
				free(eq[t]);
			if (geq)
				free(geq[t]);
		}
		free(eq);
		free(geq);
	}
	hk__nn_net_free(&net);
	return s;
}

void hk__int8_calib_free(hk__int8_calib *c)
{
	for (int t = 0; t < c->ntensors; t++) {
		if (c->eq)
			free(c->eq[t]);
		if (c->geq)
			free(c->geq[t]);
	}
	free(c->eq);
	free(c->geq);
	free(c->amax);
	memset(c, 0, sizeof *c);
}
