/* TF.js weights manifests (hostile input) and the one architecture herken
 * builds from one: dlib's face-recognition ResNet as face-api ships it.
 *
 * A manifest is JSON: an array of groups, each {"paths": [shard file
 * names], "weights": [{"name", "shape", "dtype", "quantization"?}]}. A
 * group's weights are laid out back to back over the concatenation of its
 * shards; a quantised weight stores count bytes (uint8) or 2*count
 * (uint16, float16) with value = min + scale * q. Every length, count and
 * offset is checked before it is used; the bytes a group declares must be
 * exactly the bytes its shards hold, so a truncated, padded or swapped
 * shard is an error naming the file, never a silently wrong network.
 *
 * The architecture is not in the files (face-api's src/faceRecognitionNet
 * describes it): 7x7/2 conv, 3x3/2 max-pool, residual blocks at 32, 64,
 * 128 and 256 channels (a "down" block: 3x3/2 valid conv, and a 2x2/2
 * average-pool shortcut zero-padded to the new channel count; the main
 * path zero-padded at the bottom/right when the sizes differ), global
 * average, 256 -> 128 matrix. Each conv is conv + bias, then a per-channel
 * scale (x * w + b): folded into the conv's weights here. The input
 * normalisation (v - mean) / 255 is folded into the first conv (valid
 * padding, so exactly), so the graph takes RGB 0..255 floats; the global
 * average and the final matrix become one fully connected layer. */
#include "nn/nn.h"
#include "models.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 16
#define MAX_SHARDS 64
#define MAX_WEIGHTS 4096
#define MAX_DEPTH 32

/* ---- a bounded JSON reader (just what a manifest needs) ---- */

typedef struct js {
	const char *p;
	size_t n, i;
	int depth;
	const char *err;
} js;

static void ws(js *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\n' || j->p[j->i] == '\r' || j->p[j->i] == '\t'))
		j->i++;
}

static int fail(js *j, const char *what)
{
	if (!j->err)
		j->err = what;
	return -1;
}

static int peek(js *j)
{
	ws(j);
	return j->i < j->n ? (unsigned char)j->p[j->i] : -1;
}

static int expect(js *j, char c)
{
	if (peek(j) != c)
		return fail(j, c == ':' ? "expected ':'" : c == '[' ? "expected '['" : c == '{' ? "expected '{'" : "unexpected character");
	j->i++;
	return 0;
}

/* A string into out[cap] (NUL-terminated; too long is an error). Escapes
 * are decoded for the ASCII range; anything else becomes '?'. */
static int str(js *j, char *out, size_t cap)
{
	if (expect(j, '"'))
		return fail(j, "expected a string");
	size_t k = 0;
	for (;;) {
		if (j->i >= j->n)
			return fail(j, "unterminated string");
		unsigned char c = (unsigned char)j->p[j->i++];
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(j, "control character in a string");
		if (c == '\\') {
			if (j->i >= j->n)
				return fail(j, "unterminated string");
			char e = j->p[j->i++];
			switch (e) {
			case '"': case '\\': case '/': c = (unsigned char)e; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				if (j->n - j->i < 4)
					return fail(j, "bad \\u escape");
				unsigned v = 0;
				for (int q = 0; q < 4; q++) {
					char h = j->p[j->i++];
					v <<= 4;
					if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
					else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
					else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
					else return fail(j, "bad \\u escape");
				}
				c = v >= 0x20 && v < 0x7f ? (unsigned char)v : '?';
				break;
			}
			default: return fail(j, "bad escape");
			}
		}
		if (out) {
			if (k + 1 >= cap)
				return fail(j, "string too long");
			out[k++] = (char)c;
		}
	}
	if (out)
		out[k] = 0;
	return 0;
}

static int num(js *j, double *v)
{
	ws(j);
	size_t s = j->i;
	while (j->i < j->n && j->i - s < 64 && strchr("+-0123456789.eE", j->p[j->i]) && j->p[j->i])
		j->i++;
	if (j->i == s || j->i - s >= 64)
		return fail(j, "expected a number");
	char buf[64];
	memcpy(buf, j->p + s, j->i - s);
	buf[j->i - s] = 0;
	char *end;
	errno = 0;
	*v = strtod(buf, &end);
	if (*end || !isfinite(*v))
		return fail(j, "bad number");
	return 0;
}

static int skip(js *j)
{
	int c = peek(j);
	if (c == '"')
		return str(j, NULL, 0);
	if (c == '{' || c == '[') {
		if (++j->depth > MAX_DEPTH)
			return fail(j, "nested too deeply");
		char close = c == '{' ? '}' : ']';
		j->i++;
		if (peek(j) == close) {
			j->i++;
			j->depth--;
			return 0;
		}
		for (;;) {
			if (c == '{' && (str(j, NULL, 0) || expect(j, ':')))
				return -1;
			if (skip(j))
				return -1;
			int d = peek(j);
			j->i++;
			if (d == close)
				break;
			if (d != ',')
				return fail(j, "expected ',' or a closing bracket");
		}
		j->depth--;
		return 0;
	}
	if (c == 't' || c == 'f' || c == 'n') {
		const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
		size_t l = strlen(w);
		if (j->n - j->i < l || memcmp(j->p + j->i, w, l))
			return fail(j, "bad literal");
		j->i += l;
		return 0;
	}
	double v;
	return num(j, &v);
}

/* Iterate an array / object: call first with *first = 1. Returns 1 when
 * there is an element (for an object, its key is read into key[kcap]), 0
 * at the end, -1 on error. */
static int next(js *j, char open, int *first, char *key, size_t kcap)
{
	char close = open == '{' ? '}' : ']';
	if (*first) {
		if (expect(j, open))
			return -1;
		*first = 0;
		if (peek(j) == close) {
			j->i++;
			return 0;
		}
	} else {
		int d = peek(j);
		if (d == close) {
			j->i++;
			return 0;
		}
		if (d != ',')
			return fail(j, "expected ',' or a closing bracket");
		j->i++;
	}
	if (open == '{' && (str(j, key, kcap) || expect(j, ':')))
		return -1;
	return 1;
}

/* ---- the manifest ---- */

static int shard_name_ok(const char *s)
{
	/* a plain file name next to the manifest: no directories, no "..",
	 * nothing hidden */
	if (!*s || s[0] == '.' || strchr(s, '/') || strchr(s, '\\'))
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return 1;
}

static int dtype_of(const char *s, int *bytes)
{
	if (!strcmp(s, "float32")) { *bytes = 4; return HK__TFJS_F32; }
	if (!strcmp(s, "int32")) { *bytes = 4; return HK__TFJS_I32; }
	return -1;
}

static int weight(js *j, hk__tfjs_weight *w)
{
	char key[32], dt[16] = "", qdt[16] = "";
	int first = 1, r, have_shape = 0, have_scale = 0, have_min = 0;
	memset(w, 0, sizeof *w);
	w->scale = 1;
	while ((r = next(j, '{', &first, key, sizeof key)) == 1) {
		if (!strcmp(key, "name")) {
			if (str(j, w->name, sizeof w->name))
				return -1;
		} else if (!strcmp(key, "dtype")) {
			if (str(j, dt, sizeof dt))
				return -1;
		} else if (!strcmp(key, "shape")) {
			int f2 = 1, r2;
			have_shape = 1;
			while ((r2 = next(j, '[', &f2, NULL, 0)) == 1) {
				double v;
				if (w->ndim >= HK__NN_MAX_DIMS)
					return fail(j, "weight of more than 6 dimensions");
				if (num(j, &v))
					return -1;
				if (v < 0 || v > (1 << 24) || v != floor(v))
					return fail(j, "bad dimension");
				w->shape[w->ndim++] = (int32_t)v;
			}
			if (r2 < 0)
				return -1;
		} else if (!strcmp(key, "quantization")) {
			int f2 = 1, r2;
			char k2[32];
			while ((r2 = next(j, '{', &f2, k2, sizeof k2)) == 1) {
				double v;
				if (!strcmp(k2, "dtype")) {
					if (str(j, qdt, sizeof qdt))
						return -1;
				} else if (!strcmp(k2, "scale")) {
					if (num(j, &v))
						return -1;
					w->scale = v;
					have_scale = 1;
				} else if (!strcmp(k2, "min")) {
					if (num(j, &v))
						return -1;
					w->min = v;
					have_min = 1;
				} else if (skip(j)) {
					return -1;
				}
			}
			if (r2 < 0)
				return -1;
			if (!qdt[0])
				return fail(j, "quantization without a dtype");
		} else if (skip(j)) {
			return -1;
		}
	}
	if (r < 0)
		return -1;
	if (!w->name[0] || !have_shape || !dt[0])
		return fail(j, "weight without a name, shape or dtype");
	int bytes;
	if ((w->dtype = dtype_of(dt, &bytes)) < 0)
		return fail(j, "unsupported weight dtype");
	size_t count = 1;
	for (int d = 0; d < w->ndim; d++) {
		count *= (size_t)w->shape[d];
		if (count > HK__NN_MAX_ELEMS)
			return fail(j, "weight too large");
	}
	w->count = count;
	w->q = HK__TFJS_Q_NONE;
	if (qdt[0]) {
		if (w->dtype != HK__TFJS_F32)
			return fail(j, "quantised non-float weight");
		if (!strcmp(qdt, "uint8")) {
			w->q = HK__TFJS_Q_U8;
			bytes = 1;
		} else if (!strcmp(qdt, "uint16")) {
			w->q = HK__TFJS_Q_U16;
			bytes = 2;
		} else if (!strcmp(qdt, "float16")) {
			w->q = HK__TFJS_Q_F16;
			bytes = 2;
		} else {
			return fail(j, "unsupported quantization dtype");
		}
		if (w->q != HK__TFJS_Q_F16 && (!have_scale || !have_min))
			return fail(j, "affine quantization without scale and min");
	}
	w->nbytes = count * (size_t)bytes;
	return 0;
}

void hk__tfjs_manifest_free(hk__tfjs_manifest *m)
{
	if (!m)
		return;
	free(m->w);
	free(m->shard);
	memset(m, 0, sizeof *m);
}

hk_status hk__tfjs_manifest_parse(const char *text, size_t len, hk__tfjs_manifest *m)
{
	memset(m, 0, sizeof *m);
	js j = {text, len, 0, 0, NULL};
	m->w = calloc(MAX_WEIGHTS, sizeof *m->w);
	m->shard = calloc(MAX_SHARDS, sizeof *m->shard);
	if (!m->w || !m->shard) {
		hk__tfjs_manifest_free(m);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	int first = 1, r;
	while ((r = next(&j, '[', &first, NULL, 0)) == 1) {
		if (m->ngroups >= MAX_GROUPS) {
			fail(&j, "more than 16 weight groups");
			break;
		}
		int g = m->ngroups++;
		m->group_shard0[g] = m->nshards;
		int f2 = 1, r2, have_paths = 0, have_weights = 0;
		char key[32];
		while ((r2 = next(&j, '{', &f2, key, sizeof key)) == 1) {
			int f3 = 1, r3;
			if (!strcmp(key, "paths")) {
				have_paths = 1;
				while ((r3 = next(&j, '[', &f3, NULL, 0)) == 1) {
					if (m->nshards >= MAX_SHARDS) {
						r3 = fail(&j, "more than 64 shards");
						break;
					}
					if (str(&j, m->shard[m->nshards], sizeof m->shard[0])) {
						r3 = -1;
						break;
					}
					if (!shard_name_ok(m->shard[m->nshards])) {
						r3 = fail(&j, "shard path is not a plain file name");
						break;
					}
					m->nshards++;
				}
			} else if (!strcmp(key, "weights")) {
				have_weights = 1;
				size_t off = 0;
				while ((r3 = next(&j, '[', &f3, NULL, 0)) == 1) {
					if (m->nw >= MAX_WEIGHTS) {
						r3 = fail(&j, "more than 4096 weights");
						break;
					}
					hk__tfjs_weight *w = &m->w[m->nw];
					if (weight(&j, w)) {
						r3 = -1;
						break;
					}
					w->group = g;
					w->offset = off;
					off += w->nbytes;
					m->nw++;
				}
				m->group_bytes[g] = off;
			} else {
				r3 = skip(&j);
			}
			if (r3 < 0) {
				r2 = -1;
				break;
			}
		}
		if (r2 < 0)
			break;
		if (!have_paths || !have_weights || m->group_shard0[g] == m->nshards) {
			fail(&j, "weight group without paths or weights");
			break;
		}
	}
	if (!j.err && r == 0 && peek(&j) != -1)
		fail(&j, "trailing data after the manifest");
	if (j.err || r < 0) {
		hk_status s = hk__err(HK_E_FORMAT, "tfjs manifest: %s (byte %zu)", j.err ? j.err : "malformed", j.i);
		hk__tfjs_manifest_free(m);
		return s;
	}
	if (m->ngroups == 0) {
		hk__tfjs_manifest_free(m);
		return hk__err(HK_E_FORMAT, "tfjs manifest: no weight groups");
	}
	m->group_shard0[m->ngroups] = m->nshards;
	return HK_OK;
}

static float half_to_float(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, f = h & 1023u, u;
	if (e == 0) {
		if (!f) {
			u = s;
		} else { /* subnormal */
			float v = ldexpf((float)f, -24);
			return s ? -v : v;
		}
	} else if (e == 31) {
		u = s | 0x7f800000u | (f << 13);
	} else {
		u = s | ((e + 112) << 23) | (f << 13);
	}
	float v;
	memcpy(&v, &u, 4);
	return v;
}

hk_status hk__tfjs_decode(const hk__tfjs_manifest *m, const uint8_t *const *group_data,
                          const size_t *group_len, float **vals)
{
	for (int i = 0; i < m->nw; i++)
		vals[i] = NULL;
	for (int g = 0; g < m->ngroups; g++)
		if (group_len[g] != m->group_bytes[g])
			return hk__err(HK_E_FORMAT, "tfjs: weight group %d holds %zu bytes, its weights need %zu",
			               g, group_len[g], m->group_bytes[g]);
	for (int i = 0; i < m->nw; i++) {
		const hk__tfjs_weight *w = &m->w[i];
		if (w->offset > group_len[w->group] || w->nbytes > group_len[w->group] - w->offset)
			return hk__err(HK_E_FORMAT, "tfjs: weight '%s' out of range", w->name);
		const uint8_t *p = group_data[w->group] + w->offset;
		float *v = malloc((w->count ? w->count : 1) * sizeof(float));
		if (!v)
			return hk__err(HK_E_NOMEM, "out of memory");
		vals[i] = v;
		for (size_t k = 0; k < w->count; k++) {
			switch (w->q) {
			case HK__TFJS_Q_U8:
				v[k] = (float)(w->min + w->scale * p[k]);
				break;
			case HK__TFJS_Q_U16: {
				uint16_t q;
				memcpy(&q, p + 2 * k, 2);
				v[k] = (float)(w->min + w->scale * q);
				break;
			}
			case HK__TFJS_Q_F16: {
				uint16_t q;
				memcpy(&q, p + 2 * k, 2);
				v[k] = half_to_float(q);
				break;
			}
			default:
				if (w->dtype == HK__TFJS_I32) {
					int32_t q;
					memcpy(&q, p + 4 * k, 4);
					v[k] = (float)q;
				} else {
					memcpy(&v[k], p + 4 * k, 4);
				}
			}
			if (!isfinite(v[k]))
				return hk__err(HK_E_FORMAT, "tfjs: weight '%s' holds a non-finite value", w->name);
		}
	}
	return HK_OK;
}

/* ---- dlib's ResNet as a herken graph ---- */

typedef struct gb {
	const hk__tfjs_manifest *m;
	float **vals;
	hk__nn_graph *g;
	int cap_t, cap_op;
} gb;

static const hk__tfjs_weight *find(const gb *b, const char *name, float **v)
{
	for (int i = 0; i < b->m->nw; i++)
		if (!strcmp(b->m->w[i].name, name)) {
			*v = b->vals[i];
			return &b->m->w[i];
		}
	return NULL;
}

static int add_tensor(gb *b, int ndim, const int32_t *shape, float *data, int32_t *i32)
{
	hk__nn_graph *g = b->g;
	if (g->ntensors >= b->cap_t)
		return -1;
	hk__nn_tensor *t = &g->t[g->ntensors];
	memset(t, 0, sizeof *t);
	t->ndim = ndim;
	t->count = 1;
	for (int d = 0; d < ndim; d++) {
		t->shape[d] = shape[d];
		t->count *= (size_t)shape[d];
	}
	t->type = i32 ? TFL_T_INT32 : TFL_T_FLOAT32;
	t->f = data;
	t->i32 = i32;
	t->is_const = data || i32;
	snprintf(t->name, sizeof t->name, "t%d", g->ntensors);
	return g->ntensors++;
}

static int act4(gb *b, int h, int w, int c)
{
	int32_t s[4] = {1, h, w, c};
	return add_tensor(b, 4, s, NULL, NULL);
}

static hk__nn_op *add_op(gb *b, int code)
{
	if (b->g->nops >= b->cap_op)
		return NULL;
	hk__nn_op *o = &b->g->op[b->g->nops++];
	memset(o, 0, sizeof *o);
	o->code = code;
	o->stride_w = o->stride_h = o->dil_w = o->dil_h = 1;
	o->nout = 1;
	for (int k = 0; k < HK__NN_MAX_IO; k++)
		o->in[k] = o->out[k] = -1;
	return o;
}

static hk_status missing(const char *name, const char *what)
{
	return hk__err(HK_E_FORMAT, "tfjs dlib: weight '%s' %s", name, what);
}

typedef struct act {
	int t, h, w, c;
} act;

/* conv(prefix) + bias, then the scale layer, folded into one CONV_2D.
 * mean: when not NULL, the input is (v - mean[c]) * inv (folded; valid
 * padding only). */
static hk_status conv_layer(gb *b, const char *prefix, act x, int stride, int valid, int relu,
                            const float *mean, float inv, act *y)
{
	char n[160];
	float *fw, *fb, *sw, *sb;
	const hk__tfjs_weight *wf, *wb, *ws_, *wsb;
	snprintf(n, sizeof n, "%s/conv/filters", prefix);
	if (!(wf = find(b, n, &fw)))
		return missing(n, "is missing");
	if (wf->ndim != 4 || wf->shape[0] != wf->shape[1] || wf->shape[2] != x.c || wf->shape[3] < 1 ||
	    wf->shape[0] < 1 || wf->shape[0] > 7)
		return missing(n, "has the wrong shape");
	int k = wf->shape[0], oc = wf->shape[3];
	snprintf(n, sizeof n, "%s/conv/bias", prefix);
	if (!(wb = find(b, n, &fb)) || wb->count != (size_t)oc)
		return missing(n, wb ? "has the wrong shape" : "is missing");
	snprintf(n, sizeof n, "%s/scale/weights", prefix);
	if (!(ws_ = find(b, n, &sw)) || ws_->count != (size_t)oc)
		return missing(n, ws_ ? "has the wrong shape" : "is missing");
	snprintf(n, sizeof n, "%s/scale/biases", prefix);
	if (!(wsb = find(b, n, &sb)) || wsb->count != (size_t)oc)
		return missing(n, wsb ? "has the wrong shape" : "is missing");
	size_t wc = (size_t)oc * k * k * x.c;
	float *W = malloc(wc * sizeof(float)), *B = malloc((size_t)oc * sizeof(float));
	if (!W || !B) {
		free(W);
		free(B);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	/* TF.js [kh][kw][ic][oc] -> TFLite [oc][kh][kw][ic], times the scale */
	for (int o = 0; o < oc; o++) {
		double shift = 0;
		for (int i = 0; i < k * k; i++)
			for (int c = 0; c < x.c; c++) {
				float v = fw[((size_t)i * x.c + c) * oc + o];
				if (mean) {
					shift += (double)v * mean[c] * inv;
					v *= inv;
				}
				W[((size_t)o * k * k + i) * x.c + c] = v * sw[o];
			}
		B[o] = (float)(((double)fb[o] - shift) * sw[o] + sb[o]);
	}
	int32_t wsh[4] = {oc, k, k, x.c}, bsh[1] = {oc};
	int tw = add_tensor(b, 4, wsh, W, NULL);
	if (tw < 0) {
		free(W);
		free(B);
		return hk__err(HK_E_LIMIT, "tfjs dlib: too many tensors");
	}
	int tb = add_tensor(b, 1, bsh, B, NULL);
	if (tb < 0) {
		free(B);
		return hk__err(HK_E_LIMIT, "tfjs dlib: too many tensors");
	}
	int oh = valid ? (x.h - k) / stride + 1 : (x.h + stride - 1) / stride;
	int ow = valid ? (x.w - k) / stride + 1 : (x.w + stride - 1) / stride;
	if (oh < 1 || ow < 1)
		return missing(prefix, "shrinks the image to nothing");
	y->h = oh;
	y->w = ow;
	y->c = oc;
	y->t = act4(b, oh, ow, oc);
	hk__nn_op *op = add_op(b, TFL_CONV_2D);
	if (y->t < 0 || !op)
		return hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
	op->nin = 3;
	op->in[0] = x.t;
	op->in[1] = tw;
	op->in[2] = tb;
	op->out[0] = y->t;
	op->padding = valid ? 1 : 0;
	op->stride_h = op->stride_w = stride;
	op->act = relu ? TFL_ACT_RELU : TFL_ACT_NONE;
	return HK_OK;
}

static hk_status add_relu(gb *b, int x, int y, act shape, act *out)
{
	out->h = shape.h;
	out->w = shape.w;
	out->c = shape.c;
	out->t = act4(b, shape.h, shape.w, shape.c);
	hk__nn_op *op = add_op(b, TFL_ADD);
	if (out->t < 0 || !op)
		return hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
	op->nin = 2;
	op->in[0] = x;
	op->in[1] = y;
	op->out[0] = out->t;
	op->act = TFL_ACT_RELU;
	return HK_OK;
}

/* A block's main path: conv1 (3x3, stride 1 same or stride 2 valid) with
 * relu, conv2 (3x3 same) without. */
static hk_status main_path(gb *b, const char *name, act x, int down, act *c, char n[160])
{
	act a;
	hk_status s;
	snprintf(n, 160, "%s/conv1", name);
	if ((s = conv_layer(b, n, x, down ? 2 : 1, down, 1, NULL, 1, &a)))
		return s;
	snprintf(n, 160, "%s/conv2", name);
	return conv_layer(b, n, a, 1, 0, 0, NULL, 1, c);
}

static hk_status residual(gb *b, const char *name, act x, act *y)
{
	char n[160];
	act c;
	hk_status s = main_path(b, name, x, 0, &c, n);
	if (s)
		return s;
	if (c.h != x.h || c.w != x.w || c.c != x.c)
		return missing(n, "does not keep the block's channel count");
	return add_relu(b, c.t, x.t, x, y);
}

static hk_status residual_down(gb *b, const char *name, act x, act *y)
{
	char n[160];
	act c;
	hk_status s = main_path(b, name, x, 1, &c, n);
	if (s)
		return s;
	/* shortcut: 2x2/2 average pool, channels zero-padded to c.c — one
	 * 2x2/2 convolution with 1/4 on the diagonal */
	int ph = (x.h - 2) / 2 + 1, pw = (x.w - 2) / 2 + 1;
	if (c.c < x.c || ph < 1 || pw < 1)
		return missing(n, "does not fit its block's shortcut");
	size_t wc = (size_t)c.c * 4 * x.c;
	float *W = calloc(wc, sizeof(float));
	if (!W)
		return hk__err(HK_E_NOMEM, "out of memory");
	for (int o = 0; o < x.c; o++)
		for (int i = 0; i < 4; i++)
			W[((size_t)o * 4 + i) * x.c + o] = 0.25f;
	int32_t wsh[4] = {c.c, 2, 2, x.c};
	int tw = add_tensor(b, 4, wsh, W, NULL);
	if (tw < 0) {
		free(W);
		return hk__err(HK_E_LIMIT, "tfjs dlib: too many tensors");
	}
	int tp = act4(b, ph, pw, c.c);
	hk__nn_op *op = add_op(b, TFL_CONV_2D);
	if (tp < 0 || !op)
		return hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
	op->nin = 3;
	op->in[0] = x.t;
	op->in[1] = tw;
	op->out[0] = tp;
	op->padding = 1;
	op->stride_h = op->stride_w = 2;
	/* main path zero-padded by one row and column when the pool is larger */
	int main_t = c.t;
	if (c.h != ph || c.w != pw) {
		if (c.h + 1 != ph || c.w + 1 != pw)
			return missing(n, "output does not fit its block's shortcut");
		int32_t *P = calloc(8, sizeof(int32_t));
		if (!P)
			return hk__err(HK_E_NOMEM, "out of memory");
		P[3] = 1; /* H: after */
		P[5] = 1; /* W: after */
		int32_t psh[2] = {4, 2};
		int tpad = add_tensor(b, 2, psh, NULL, P);
		if (tpad < 0) {
			free(P);
			return hk__err(HK_E_LIMIT, "tfjs dlib: too many tensors");
		}
		main_t = act4(b, ph, pw, c.c);
		hk__nn_op *pp = add_op(b, TFL_PAD);
		if (main_t < 0 || !pp)
			return hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
		pp->nin = 2;
		pp->in[0] = c.t;
		pp->in[1] = tpad;
		pp->out[0] = main_t;
	}
	act sh = {0, ph, pw, c.c};
	return add_relu(b, main_t, tp, sh, y);
}

hk_status hk__tfjs_dlib_graph(const hk__tfjs_manifest *m, float **vals, hk__nn_graph *g)
{
	memset(g, 0, sizeof *g);
	gb b = {m, vals, g, 256, 128};
	g->t = calloc((size_t)b.cap_t, sizeof *g->t);
	g->op = calloc((size_t)b.cap_op, sizeof *g->op);
	if (!g->t || !g->op) {
		hk__nn_graph_free(g);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	static const float mean[3] = {122.782f, 117.001f, 104.298f};
	static const char *const blocks[] = {
		"conv32_1", "conv32_2", "conv32_3", "+conv64_down", "conv64_1", "conv64_2", "conv64_3",
		"+conv128_down", "conv128_1", "conv128_2", "+conv256_down", "conv256_1", "conv256_2",
		"+conv256_down_out"};
	hk_status s;
	act x = {0, 150, 150, 3}, y;
	x.t = act4(&b, 150, 150, 3);
	g->ninputs = 1;
	g->inputs[0] = x.t;
	if ((s = conv_layer(&b, "conv32_down", x, 2, 1, 1, mean, 1.0f / 255.0f, &y)))
		goto out;
	/* 3x3/2 valid max-pool */
	x.h = (y.h - 3) / 2 + 1;
	x.w = (y.w - 3) / 2 + 1;
	x.c = y.c;
	x.t = act4(&b, x.h, x.w, x.c);
	hk__nn_op *op = add_op(&b, TFL_MAX_POOL_2D);
	if (x.t < 0 || !op) {
		s = hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
		goto out;
	}
	op->nin = 1;
	op->in[0] = y.t;
	op->out[0] = x.t;
	op->padding = 1;
	op->filter_h = op->filter_w = 3;
	op->stride_h = op->stride_w = 2;
	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
		s = blocks[i][0] == '+' ? residual_down(&b, blocks[i] + 1, x, &y) : residual(&b, blocks[i], x, &y);
		if (s)
			goto out;
		x = y;
	}
	/* global average + fc [256,128] -> one FC [128][h*w*c] (NHWC order) */
	{
		float *fc;
		const hk__tfjs_weight *wf = find(&b, "fc", &fc);
		if (!wf || wf->ndim != 2 || wf->shape[0] != x.c || wf->shape[1] < 1 || wf->shape[1] > 4096) {
			s = missing("fc", wf ? "has the wrong shape" : "is missing");
			goto out;
		}
		int od = wf->shape[1];
		size_t hw = (size_t)x.h * x.w, in = hw * x.c;
		float *W = malloc((size_t)od * in * sizeof(float));
		if (!W) {
			s = hk__err(HK_E_NOMEM, "out of memory");
			goto out;
		}
		for (int o = 0; o < od; o++)
			for (size_t p = 0; p < hw; p++)
				for (int c = 0; c < x.c; c++)
					W[(size_t)o * in + p * x.c + c] = fc[(size_t)c * od + o] / (float)hw;
		int32_t wsh[2] = {od, (int32_t)in}, ysh[2] = {1, od};
		int tw = add_tensor(&b, 2, wsh, W, NULL);
		if (tw < 0) {
			free(W);
			s = hk__err(HK_E_LIMIT, "tfjs dlib: too many tensors");
			goto out;
		}
		int ty = add_tensor(&b, 2, ysh, NULL, NULL);
		hk__nn_op *f = add_op(&b, TFL_FULLY_CONNECTED);
		if (ty < 0 || !f) {
			s = hk__err(HK_E_LIMIT, "tfjs dlib: graph too large");
			goto out;
		}
		f->nin = 2;
		f->in[0] = x.t;
		f->in[1] = tw;
		f->out[0] = ty;
		g->noutputs = 1;
		g->outputs[0] = ty;
	}
out:
	if (s)
		hk__nn_graph_free(g);
	return s;
}

/* ---- files ---- */

static hk_status read_pinned(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int rc = hk__read_file(path, max, buf, len);
	if (rc == -ENOENT)
		return hk__err(HK_E_NOT_FOUND, "cannot open model file '%s'", path);
	if (rc < 0)
		return hk__errno_status(rc, path);
	hk_status s = hk__model_verify(path, *buf, *len);
	if (s) {
		free(*buf);
		*buf = NULL;
	}
	return s;
}

/* Decode the groups (unless s is already an error), build the graph and
 * the net; frees vals and the manifest whatever happens. */
static hk_status finish(hk_status s, hk__tfjs_manifest *m, const uint8_t *const *gd, const size_t *gl,
                        float **vals, hk__nn_net *net)
{
	if (!s)
		s = hk__tfjs_decode(m, gd, gl, vals);
	if (!s)
		s = hk__tfjs_dlib_graph(m, vals, &net->g);
	for (int i = 0; vals && i < m->nw; i++)
		free(vals[i]);
	free(vals);
	hk__tfjs_manifest_free(m);
	if (!s)
		s = hk__nn_build_graph(net);
	return s;
}

hk_status hk__tfjs_load(const char *manifest_path, hk__nn_net *net, char sha_hex[65])
{
	memset(net, 0, sizeof *net);
	uint8_t *text = NULL;
	size_t tlen = 0;
	hk_status s = read_pinned(manifest_path, (size_t)1 << 22, &text, &tlen);
	if (s)
		return s;
	hk__sha256_hex(text, tlen, sha_hex);
	hk__tfjs_manifest m;
	s = hk__tfjs_manifest_parse((const char *)text, tlen, &m);
	free(text);
	if (s)
		return hk__err(s, "%s: %s", manifest_path, hk_last_error());
	const char *slash = strrchr(manifest_path, '/');
	size_t dlen = slash ? (size_t)(slash - manifest_path) + 1 : 0;
	uint8_t *gdata[MAX_GROUPS] = {0};
	size_t glen[MAX_GROUPS] = {0};
	float **vals = calloc((size_t)m.nw + 1, sizeof *vals);
	if (!vals) {
		hk__tfjs_manifest_free(&m);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	for (int g = 0; g < m.ngroups && !s; g++) {
		size_t want = m.group_bytes[g];
		if (want > ((size_t)1 << 30)) {
			s = hk__err(HK_E_LIMIT, "%s: weight group %d declares %zu bytes", manifest_path, g, want);
			break;
		}
		gdata[g] = malloc(want ? want : 1);
		if (!gdata[g]) {
			s = hk__err(HK_E_NOMEM, "out of memory");
			break;
		}
		for (int k = m.group_shard0[g]; k < m.group_shard0[g + 1] && !s; k++) {
			char path[4096 + 160];
			snprintf(path, sizeof path, "%.*s%s", (int)(dlen < 4096 ? dlen : 4096), manifest_path, m.shard[k]);
			uint8_t *buf;
			size_t len;
			if ((s = read_pinned(path, (size_t)1 << 30, &buf, &len)))
				break;
			if (len > want - glen[g]) {
				s = hk__err(HK_E_FORMAT, "weights shard %s: %zu bytes, more than the %zu its manifest %s declares",
				            path, len, want, manifest_path);
			} else {
				memcpy(gdata[g] + glen[g], buf, len);
				glen[g] += len;
			}
			free(buf);
		}
		if (!s && glen[g] != want) {
			char path[4096 + 160];
			snprintf(path, sizeof path, "%.*s%s", (int)(dlen < 4096 ? dlen : 4096), manifest_path,
			         m.shard[m.group_shard0[g + 1] - 1]);
			s = hk__err(HK_E_FORMAT, "weights shard %s: truncated (group %d holds %zu bytes, its manifest %s declares %zu)",
			            path, g, glen[g], manifest_path, want);
		}
	}
	hk_status r = finish(s, &m, (const uint8_t *const *)gdata, glen, vals, net);
	for (int g = 0; g < MAX_GROUPS; g++)
		free(gdata[g]);
	return r;
}

hk_status hk__tfjs_build_memory(const char *text, size_t tlen, const uint8_t *data, size_t len,
                                hk__nn_net *net)
{
	memset(net, 0, sizeof *net);
	hk__tfjs_manifest m;
	hk_status s = hk__tfjs_manifest_parse(text, tlen, &m);
	if (s)
		return s;
	float **vals = calloc((size_t)m.nw + 1, sizeof *vals);
	const uint8_t *gd[MAX_GROUPS];
	size_t gl[MAX_GROUPS];
	size_t at = 0;
	if (!vals)
		s = hk__err(HK_E_NOMEM, "out of memory");
	for (int g = 0; g < m.ngroups && !s; g++) {
		gd[g] = data + at;
		gl[g] = len - at < m.group_bytes[g] ? len - at : m.group_bytes[g];
		at += gl[g];
	}
	if (!s && at != len)
		s = hk__err(HK_E_FORMAT, "tfjs: %zu weight bytes, the manifest declares %zu", len, at);
	return finish(s, &m, gd, gl, vals, net);
}
