/* TFLite flatbuffer reader. The file is hostile input: every offset, length
 * and index is checked against the buffer before it is read, all reads go
 * through memcpy (no alignment assumptions), sizes are overflow-checked. */
#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fb {
	const uint8_t *p;
	size_t n;
} fb;

typedef struct fbt { /* a table */
	size_t pos, vt;
	uint16_t vtlen;
} fbt;

typedef struct fbv { /* a vector */
	size_t start;
	uint32_t len;
} fbv;

static int rd(const fb *b, size_t off, size_t sz, void *out)
{
	if (off > b->n || sz > b->n - off)
		return -1;
	memcpy(out, b->p + off, sz);
	return 0;
}

static hk_status bad(const char *what, size_t off)
{
	return hk__err(HK_E_FORMAT, "tflite: %s (offset %zu)", what, off);
}

static hk_status fb_table(const fb *b, size_t pos, fbt *t)
{
	int32_t soff;
	uint16_t vtlen, tlen;
	if (rd(b, pos, 4, &soff))
		return bad("table out of range", pos);
	int64_t vt = (int64_t)pos - (int64_t)soff;
	if (vt < 0 || (uint64_t)vt > b->n)
		return bad("vtable out of range", pos);
	if (rd(b, (size_t)vt, 2, &vtlen) || rd(b, (size_t)vt + 2, 2, &tlen))
		return bad("vtable truncated", (size_t)vt);
	if (vtlen < 4 || (vtlen & 1) || (size_t)vt + vtlen > b->n)
		return bad("bad vtable length", (size_t)vt);
	if (pos + (size_t)tlen > b->n)
		return bad("table extends past end", pos);
	t->pos = pos;
	t->vt = (size_t)vt;
	t->vtlen = vtlen;
	return HK_OK;
}

/* Offset of field f inside the table (0 = absent). */
static uint16_t fb_field(const fb *b, const fbt *t, int f)
{
	uint16_t fo = 0;
	size_t at = 4 + 2 * (size_t)f;
	if (at + 2 > t->vtlen)
		return 0;
	if (rd(b, t->vt + at, 2, &fo))
		return 0;
	return fo;
}

static int64_t fb_int(const fb *b, const fbt *t, int f, size_t sz, int64_t dflt)
{
	uint16_t fo = fb_field(b, t, f);
	if (!fo)
		return dflt;
	uint8_t v[8] = {0};
	if (rd(b, t->pos + fo, sz, v))
		return dflt; /* callers validate ranges anyway */
	switch (sz) {
	case 1: return (int8_t)v[0];
	case 2: { int16_t x; memcpy(&x, v, 2); return x; }
	case 4: { int32_t x; memcpy(&x, v, 4); return x; }
	default: { int64_t x; memcpy(&x, v, 8); return x; }
	}
}

static int64_t fb_uint(const fb *b, const fbt *t, int f, size_t sz, int64_t dflt)
{
	uint16_t fo = fb_field(b, t, f);
	if (!fo)
		return dflt;
	uint8_t v[8] = {0};
	if (rd(b, t->pos + fo, sz, v))
		return dflt;
	uint64_t x = 0;
	for (size_t i = 0; i < sz; i++)
		x |= (uint64_t)v[i] << (8 * i);
	return (int64_t)(x > INT64_MAX ? INT64_MAX : x);
}

/* Follow an offset field: 1 absent, 0 found, <0 error. */
static int fb_ref(const fb *b, const fbt *t, int f, size_t *target)
{
	uint16_t fo = fb_field(b, t, f);
	uint32_t rel;
	if (!fo)
		return 1;
	if (rd(b, t->pos + fo, 4, &rel))
		return -1;
	size_t at = t->pos + fo;
	if (rel > b->n - at)
		return -1;
	*target = at + rel;
	return 0;
}

static int fb_vec_at(const fb *b, size_t pos, size_t elsz, fbv *v)
{
	uint32_t len;
	if (rd(b, pos, 4, &len))
		return -1;
	if (elsz && len > (b->n - pos - 4) / elsz)
		return -1;
	v->start = pos + 4;
	v->len = len;
	return 0;
}

/* Vector field: 1 absent (v->len = 0), 0 ok, <0 error. */
static int fb_vec(const fb *b, const fbt *t, int f, size_t elsz, fbv *v)
{
	size_t at;
	v->start = 0;
	v->len = 0;
	int r = fb_ref(b, t, f, &at);
	if (r)
		return r;
	return fb_vec_at(b, at, elsz, v);
}

static hk_status fb_vec_table(const fb *b, const fbv *v, uint32_t i, fbt *t)
{
	uint32_t rel;
	size_t at = v->start + 4 * (size_t)i;
	if (i >= v->len || rd(b, at, 4, &rel) || rel > b->n - at)
		return bad("vector element out of range", at);
	return fb_table(b, at + rel, t);
}

static int32_t fb_vec_i32(const fb *b, const fbv *v, uint32_t i)
{
	int32_t x = 0;
	rd(b, v->start + 4 * (size_t)i, 4, &x); /* range checked by fb_vec */
	return x;
}

static void fb_string(const fb *b, const fbt *t, int f, char *out, size_t cap)
{
	fbv v;
	out[0] = 0;
	if (fb_vec(b, t, f, 1, &v))
		return;
	size_t n = v.len < cap - 1 ? v.len : cap - 1;
	memcpy(out, b->p + v.start, n);
	out[n] = 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 32 || (unsigned char)out[i] > 126)
			out[i] = '?';
}

/* ---- names ---- */

const char *hk__tflite_op_name(int code)
{
	static const struct { int c; const char *n; } names[] = {
		{0, "ADD"}, {1, "AVERAGE_POOL_2D"}, {2, "CONCATENATION"},
		{3, "CONV_2D"}, {4, "DEPTHWISE_CONV_2D"}, {5, "DEPTH_TO_SPACE"},
		{6, "DEQUANTIZE"}, {8, "FLOOR"}, {9, "FULLY_CONNECTED"},
		{11, "L2_NORMALIZATION"}, {14, "LOGISTIC"}, {17, "MAX_POOL_2D"},
		{18, "MUL"}, {19, "RELU"}, {21, "RELU6"}, {22, "RESHAPE"},
		{23, "RESIZE_BILINEAR"}, {25, "SOFTMAX"}, {28, "TANH"},
		{32, "CUSTOM"}, {34, "PAD"}, {39, "TRANSPOSE"}, {40, "MEAN"},
		{41, "SUB"}, {42, "DIV"}, {43, "SQUEEZE"}, {45, "STRIDED_SLICE"},
		{47, "EXP"}, {49, "SPLIT"}, {53, "CAST"}, {54, "PRELU"},
		{55, "MAXIMUM"}, {57, "MINIMUM"}, {59, "NEG"}, {67, "TRANSPOSE_CONV"},
		{74, "SUM"}, {75, "SQRT"}, {76, "RSQRT"}, {82, "REDUCE_MAX"},
		{83, "PACK"}, {97, "RESIZE_NEAREST_NEIGHBOR"}, {98, "LEAKY_RELU"},
		{101, "ABS"}, {114, "QUANTIZE"}, {117, "HARD_SWISH"},
		{124, "DENSIFY"}, {126, "BATCH_MATMUL"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].c == code)
			return names[i].n;
	return NULL;
}

static int op_supported(int c)
{
	switch (c) {
	case TFL_ADD: case TFL_CONV_2D: case TFL_DEPTHWISE_CONV_2D:
	case TFL_DEPTH_TO_SPACE: case TFL_DEQUANTIZE: case TFL_FULLY_CONNECTED:
	case TFL_MAX_POOL_2D: case TFL_MUL: case TFL_RELU: case TFL_RESHAPE:
	case TFL_RESIZE_BILINEAR: case TFL_PAD: case TFL_SUB: case TFL_DIV:
	case TFL_EXP: case TFL_NEG: case TFL_SUM: case TFL_REDUCE_MAX:
	case TFL_ABS: case TFL_DENSIFY:
		return 1;
	default:
		return 0;
	}
}

/* ---- fp16 ---- */

static float half_to_float(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
	uint32_t u;
	if (e == 0) {
		if (m == 0) {
			u = s;
		} else { /* subnormal */
			float f = ldexpf((float)m, -24);
			return s ? -f : f;
		}
	} else if (e == 31) {
		u = s | 0x7f800000u | (m << 13);
	} else {
		u = s | ((e + 112) << 23) | (m << 13);
	}
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* ---- tensors ---- */

typedef struct sparse_dim {
	int dense; /* 1 dense, 0 CSR */
	int32_t dense_size;
	fbv seg, idx;
	int seg_t, idx_t; /* 1 int32, 2 uint16, 3 uint8 */
} sparse_dim;

static int64_t sv_get(const fb *b, const fbv *v, int t, uint32_t i)
{
	if (i >= v->len)
		return -1;
	if (t == 1)
		return fb_vec_i32(b, v, i);
	if (t == 2) {
		uint16_t x = 0;
		rd(b, v->start + 2 * (size_t)i, 2, &x);
		return x;
	}
	return b->p[v->start + i];
}

static hk_status read_sparse_vec(const fb *b, const fbt *dm, int tf, int vf,
                                 int *type, fbv *v)
{
	*type = (int)fb_uint(b, dm, tf, 1, 0);
	size_t at;
	fbt vt;
	if (*type < 1 || *type > 3)
		return hk__err(HK_E_FORMAT, "tflite: bad sparse index vector type %d", *type);
	if (fb_ref(b, dm, vf, &at))
		return bad("sparse index vector missing", dm->pos);
	hk_status s = fb_table(b, at, &vt);
	if (s)
		return s;
	size_t el = *type == 1 ? 4 : *type == 2 ? 2 : 1;
	if (fb_vec(b, &vt, 0, el, v) < 0)
		return bad("sparse values out of range", at);
	return HK_OK;
}

typedef struct densify_ctx {
	const fb *b;
	int rank, levels;
	const int32_t *dense_shape;
	int32_t trav[2 * HK__NN_MAX_DIMS];
	int32_t bmap[HK__NN_MAX_DIMS];
	int32_t bsize[HK__NN_MAX_DIMS];
	sparse_dim dim[2 * HK__NN_MAX_DIMS];
	int32_t idx[2 * HK__NN_MAX_DIMS];
	const float *src;
	size_t nsrc, used, ndst;
	float *dst;
	int err;
	size_t steps, max_steps; /* bounds the walk over empty sparse levels */
} densify_ctx;

static void densify_rec(densify_ctx *c, int level, int64_t prev)
{
	if (c->err)
		return;
	if (++c->steps > c->max_steps) {
		c->err = 1;
		return;
	}
	if (level == c->levels) {
		int64_t orig[HK__NN_MAX_DIMS] = {0};
		int i;
		for (i = 0; i < c->rank; i++)
			orig[c->trav[i]] = c->idx[i];
		for (; i < c->levels; i++) {
			int bi = c->trav[i] - c->rank;
			int od = c->bmap[bi];
			orig[od] = orig[od] * c->bsize[bi] + c->idx[i];
		}
		int64_t flat = 0;
		for (i = 0; i < c->rank; i++) {
			if (orig[i] < 0 || orig[i] >= c->dense_shape[i]) {
				c->err = 1;
				return;
			}
			flat = flat * c->dense_shape[i] + orig[i];
		}
		if (c->used >= c->nsrc || (uint64_t)flat >= c->ndst) {
			c->err = 1;
			return;
		}
		c->dst[flat] = c->src[c->used++];
		return;
	}
	const sparse_dim *d = &c->dim[level];
	if (d->dense) {
		for (int32_t i = 0; i < d->dense_size && !c->err; i++) {
			c->idx[level] = i;
			densify_rec(c, level + 1, prev * d->dense_size + i);
		}
		return;
	}
	int64_t a = sv_get(c->b, &d->seg, d->seg_t, (uint32_t)prev);
	int64_t e = prev + 1 <= UINT32_MAX ? sv_get(c->b, &d->seg, d->seg_t, (uint32_t)(prev + 1)) : -1;
	if (prev < 0 || prev > UINT32_MAX - 1 || a < 0 || e < a || (uint64_t)e > d->idx.len) {
		c->err = 1;
		return;
	}
	for (int64_t i = a; i < e && !c->err; i++) {
		int64_t ix = sv_get(c->b, &d->idx, d->idx_t, (uint32_t)i);
		if (ix < 0 || ix > INT32_MAX) {
			c->err = 1;
			return;
		}
		c->idx[level] = (int32_t)ix;
		densify_rec(c, level + 1, i);
	}
}

/* Densify vals (nvals floats, the stored non-zeros) according to the
 * sparsity table sp into dst (t->count floats, zero-filled). */
static hk_status densify(const fb *b, const fbt *sp, const hk__nn_tensor *t,
                         const float *vals, size_t nvals, float *dst)
{
	densify_ctx c;
	memset(&c, 0, sizeof c);
	c.b = b;
	c.rank = t->ndim;
	c.dense_shape = t->shape;
	fbv trav, bmap, dims;
	if (fb_vec(b, sp, 0, 4, &trav) || fb_vec(b, sp, 2, 4, &dims))
		return bad("sparsity parameters incomplete", sp->pos);
	if (fb_vec(b, sp, 1, 4, &bmap) < 0)
		return bad("sparsity block map out of range", sp->pos);
	if (bmap.len > (uint32_t)t->ndim || trav.len != t->ndim + bmap.len ||
	    dims.len != trav.len)
		return hk__err(HK_E_FORMAT, "tflite: tensor '%s': inconsistent sparsity ranks", t->name);
	c.levels = (int)trav.len;
	int seen[2 * HK__NN_MAX_DIMS] = {0};
	for (uint32_t i = 0; i < trav.len; i++) {
		c.trav[i] = fb_vec_i32(b, &trav, i);
		if (c.trav[i] < 0 || c.trav[i] >= c.levels || seen[c.trav[i]]++)
			return hk__err(HK_E_FORMAT, "tflite: tensor '%s': bad traversal order", t->name);
	}
	for (int i = 0; i < c.rank; i++)
		if (c.trav[i] >= c.rank)
			return hk__err(HK_E_UNSUPPORTED, "tflite: tensor '%s': block dimension traversed before an original one", t->name);
	for (uint32_t i = 0; i < bmap.len; i++) {
		c.bmap[i] = fb_vec_i32(b, &bmap, i);
		if (c.bmap[i] < 0 || c.bmap[i] >= c.rank)
			return hk__err(HK_E_FORMAT, "tflite: tensor '%s': bad block map", t->name);
	}
	for (uint32_t l = 0; l < dims.len; l++) {
		fbt dm;
		hk_status s = fb_vec_table(b, &dims, l, &dm);
		if (s)
			return s;
		sparse_dim *d = &c.dim[l];
		d->dense = fb_int(b, &dm, 0, 1, 0) == 0;
		d->dense_size = (int32_t)fb_int(b, &dm, 1, 4, 0);
		if (d->dense) {
			if (d->dense_size < 0 || d->dense_size > (int32_t)HK__NN_MAX_ELEMS)
				return hk__err(HK_E_FORMAT, "tflite: tensor '%s': bad dense size", t->name);
		} else {
			if ((s = read_sparse_vec(b, &dm, 2, 3, &d->seg_t, &d->seg)) ||
			    (s = read_sparse_vec(b, &dm, 4, 5, &d->idx_t, &d->idx)))
				return s;
		}
	}
	/* block sizes: dense_size of the block levels */
	for (int l = c.rank; l < c.levels; l++) {
		int bi = c.trav[l] - c.rank;
		if (!c.dim[l].dense || c.dim[l].dense_size <= 0)
			return hk__err(HK_E_UNSUPPORTED, "tflite: tensor '%s': sparse block dimension", t->name);
		c.bsize[bi] = c.dim[l].dense_size;
	}
	c.src = vals;
	c.nsrc = nvals;
	c.dst = dst;
	c.ndst = t->count;
	/* a valid format visits each expanded element once per level */
	c.max_steps = (size_t)(c.levels + 1) * (t->count + 1) + 64;
	memset(dst, 0, t->count * sizeof(float));
	densify_rec(&c, 0, 0);
	if (c.err)
		return hk__err(HK_E_FORMAT, "tflite: tensor '%s': sparse indices out of range", t->name);
	return HK_OK;
}

static hk_status read_tensor(const fb *b, const fbt *tt, const fbv *buffers,
                             int ti, hk__nn_tensor *t)
{
	fbv shape;
	hk_status s;
	if (fb_vec(b, tt, 0, 4, &shape) < 0)
		return bad("tensor shape out of range", tt->pos);
	fb_string(b, tt, 3, t->name, sizeof t->name);
	if (shape.len > HK__NN_MAX_DIMS)
		return hk__err(HK_E_UNSUPPORTED, "tflite: tensor %d '%s' has rank %u (max %d)", ti, t->name, shape.len, HK__NN_MAX_DIMS);
	t->ndim = (int)shape.len;
	t->count = 1;
	for (int i = 0; i < t->ndim; i++) {
		int32_t d = fb_vec_i32(b, &shape, (uint32_t)i);
		if (d < 0 || d > (int32_t)HK__NN_MAX_ELEMS)
			return hk__err(HK_E_FORMAT, "tflite: tensor %d '%s': bad dimension %d", ti, t->name, d);
		t->shape[i] = d;
		if (hk__mul_size(t->count, (size_t)d, &t->count) || t->count > (size_t)HK__NN_MAX_ELEMS)
			return hk__err(HK_E_FORMAT, "tflite: tensor %d '%s' too large", ti, t->name);
	}
	t->type = (int)fb_int(b, tt, 1, 1, 0);
	if (fb_field(b, tt, 4)) {
		/* quantization params with scales make it a quantized tensor */
		size_t q;
		fbt qt;
		fbv sc;
		if (fb_ref(b, tt, 4, &q) == 0 && fb_table(b, q, &qt) == HK_OK &&
		    fb_vec(b, &qt, 2, 4, &sc) == 0 && sc.len > 0 && t->type != TFL_T_FLOAT32 &&
		    t->type != TFL_T_FLOAT16)
			return hk__err(HK_E_UNSUPPORTED, "tflite: tensor '%s' is quantized (int8/uint8 models are not supported)", t->name);
	}
	uint32_t bi = (uint32_t)fb_uint(b, tt, 2, 4, 0);
	if (bi >= buffers->len)
		return hk__err(HK_E_FORMAT, "tflite: tensor %d '%s': buffer index %u out of range", ti, t->name, bi);
	fbt bt;
	if ((s = fb_vec_table(b, buffers, bi, &bt)))
		return s;
	fbv data;
	if (fb_vec(b, &bt, 0, 1, &data) < 0)
		return bad("buffer data out of range", bt.pos);
	if (data.len == 0) {
		uint64_t off = (uint64_t)fb_uint(b, &bt, 1, 8, 0);
		uint64_t size = (uint64_t)fb_uint(b, &bt, 2, 8, 0);
		if (off > 1 && size > 0) {
			if (off > b->n || size > b->n - off)
				return hk__err(HK_E_FORMAT, "tflite: buffer %u: offset %llu size %llu beyond the file", bi, (unsigned long long)off, (unsigned long long)size);
			data.start = (size_t)off;
			data.len = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
		}
	}
	if (data.len == 0)
		return HK_OK; /* activation */

	size_t el;
	switch (t->type) {
	case TFL_T_FLOAT32: case TFL_T_INT32: el = 4; break;
	case TFL_T_FLOAT16: el = 2; break;
	case TFL_T_INT64: el = 8; break;
	default:
		return hk__err(HK_E_UNSUPPORTED, "tflite: constant tensor '%s' has unsupported type %d", t->name, t->type);
	}
	size_t nvals = data.len / el;
	size_t sp_at;
	int sr = fb_ref(b, tt, 6, &sp_at);
	if (sr < 0)
		return bad("sparsity parameters out of range", tt->pos);
	int sparse = sr == 0;
	if (!sparse && (data.len % el || nvals != t->count))
		return hk__err(HK_E_FORMAT, "tflite: tensor '%s': %u data bytes for %zu elements", t->name, data.len, t->count);
	t->is_const = 1;
	const uint8_t *p = b->p + data.start;
	if (t->type == TFL_T_INT32 || t->type == TFL_T_INT64) {
		if (sparse)
			return hk__err(HK_E_UNSUPPORTED, "tflite: sparse integer tensor '%s'", t->name);
		t->i32 = malloc((t->count ? t->count : 1) * sizeof(int32_t));
		if (!t->i32)
			return hk__err(HK_E_NOMEM, "tflite: out of memory");
		for (size_t i = 0; i < t->count; i++) {
			int64_t v;
			if (el == 4) {
				int32_t x;
				memcpy(&x, p + 4 * i, 4);
				v = x;
			} else {
				memcpy(&v, p + 8 * i, 8);
			}
			if (v < INT32_MIN || v > INT32_MAX)
				return hk__err(HK_E_RANGE, "tflite: tensor '%s': value out of int32 range", t->name);
			t->i32[i] = (int32_t)v;
		}
		return HK_OK;
	}
	float *vals = malloc((nvals ? nvals : 1) * sizeof(float));
	if (!vals)
		return hk__err(HK_E_NOMEM, "tflite: out of memory");
	for (size_t i = 0; i < nvals; i++) {
		if (el == 4) {
			memcpy(&vals[i], p + 4 * i, 4);
		} else {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			vals[i] = half_to_float(h);
		}
	}
	if (!sparse) {
		t->f = vals;
		return HK_OK;
	}
	fbt sp;
	if ((s = fb_table(b, sp_at, &sp))) {
		free(vals);
		return s;
	}
	t->f = malloc((t->count ? t->count : 1) * sizeof(float));
	if (!t->f) {
		free(vals);
		return hk__err(HK_E_NOMEM, "tflite: out of memory");
	}
	s = densify(b, &sp, t, vals, nvals, t->f);
	free(vals);
	return s;
}

static hk_status read_options(const fb *b, const fbt *ot, hk__nn_op *op)
{
	size_t at;
	fbt o;
	int r = fb_ref(b, ot, 4, &at);
	if (r < 0)
		return bad("operator options out of range", ot->pos);
	int have = r == 0;
	if (have) {
		hk_status s = fb_table(b, at, &o);
		if (s)
			return s;
	}
	/* defaults */
	op->stride_w = op->stride_h = op->dil_w = op->dil_h = 1;
	op->depth_mult = 1;
	if (!have)
		return HK_OK;
	switch (op->code) {
	case TFL_CONV_2D:
		op->padding = (int)fb_int(b, &o, 0, 1, 0);
		op->stride_w = (int)fb_int(b, &o, 1, 4, 1);
		op->stride_h = (int)fb_int(b, &o, 2, 4, 1);
		op->act = (int)fb_int(b, &o, 3, 1, 0);
		op->dil_w = (int)fb_int(b, &o, 4, 4, 1);
		op->dil_h = (int)fb_int(b, &o, 5, 4, 1);
		break;
	case TFL_DEPTHWISE_CONV_2D:
		op->padding = (int)fb_int(b, &o, 0, 1, 0);
		op->stride_w = (int)fb_int(b, &o, 1, 4, 1);
		op->stride_h = (int)fb_int(b, &o, 2, 4, 1);
		op->depth_mult = (int)fb_int(b, &o, 3, 4, 1);
		op->act = (int)fb_int(b, &o, 4, 1, 0);
		op->dil_w = (int)fb_int(b, &o, 5, 4, 1);
		op->dil_h = (int)fb_int(b, &o, 6, 4, 1);
		break;
	case TFL_MAX_POOL_2D:
		op->padding = (int)fb_int(b, &o, 0, 1, 0);
		op->stride_w = (int)fb_int(b, &o, 1, 4, 1);
		op->stride_h = (int)fb_int(b, &o, 2, 4, 1);
		op->filter_w = (int)fb_int(b, &o, 3, 4, 0);
		op->filter_h = (int)fb_int(b, &o, 4, 4, 0);
		op->act = (int)fb_int(b, &o, 5, 1, 0);
		break;
	case TFL_FULLY_CONNECTED:
		op->act = (int)fb_int(b, &o, 0, 1, 0);
		if (fb_int(b, &o, 1, 1, 0) != 0)
			return hk__err(HK_E_UNSUPPORTED, "tflite: FULLY_CONNECTED with shuffled weights");
		op->keep_num_dims = (int)fb_int(b, &o, 2, 1, 0);
		break;
	case TFL_ADD: case TFL_SUB: case TFL_MUL: case TFL_DIV:
		op->act = (int)fb_int(b, &o, 0, 1, 0);
		break;
	case TFL_RESHAPE: {
		fbv ns;
		if (fb_vec(b, &o, 0, 4, &ns) < 0)
			return bad("reshape shape out of range", o.pos);
		if (ns.len > HK__NN_MAX_DIMS)
			return hk__err(HK_E_UNSUPPORTED, "tflite: RESHAPE to rank %u", ns.len);
		op->n_new_shape = (int)ns.len;
		for (uint32_t i = 0; i < ns.len; i++)
			op->new_shape[i] = fb_vec_i32(b, &ns, i);
		break;
	}
	case TFL_RESIZE_BILINEAR:
		op->align_corners = (int)fb_int(b, &o, 2, 1, 0);
		op->half_pixel = (int)fb_int(b, &o, 3, 1, 0);
		break;
	case TFL_DEPTH_TO_SPACE:
		op->block_size = (int)fb_int(b, &o, 0, 4, 0);
		break;
	case TFL_SUM: case TFL_REDUCE_MAX:
		op->keep_dims = (int)fb_int(b, &o, 0, 1, 0);
		break;
	default:
		break;
	}
	if (op->act < 0 || op->act > TFL_ACT_TANH)
		return hk__err(HK_E_UNSUPPORTED, "tflite: %s: fused activation %d", hk__tflite_op_name(op->code), op->act);
	return HK_OK;
}

static hk_status read_io(const fb *b, const fbt *t, int f, int ntensors,
                         int *out, int *n, int allow_missing, const char *what)
{
	fbv v;
	if (fb_vec(b, t, f, 4, &v) < 0)
		return bad("index vector out of range", t->pos);
	if (v.len > HK__NN_MAX_IO)
		return hk__err(HK_E_UNSUPPORTED, "tflite: %s: %u tensors (max %d)", what, v.len, HK__NN_MAX_IO);
	*n = (int)v.len;
	for (uint32_t i = 0; i < v.len; i++) {
		int32_t x = fb_vec_i32(b, &v, i);
		if (x < (allow_missing ? -1 : 0) || x >= ntensors)
			return hk__err(HK_E_FORMAT, "tflite: %s: tensor index %d out of range", what, x);
		out[i] = x;
	}
	return HK_OK;
}

void hk__nn_graph_free(hk__nn_graph *g)
{
	if (!g)
		return;
	if (g->t)
		for (int i = 0; i < g->ntensors; i++) {
			free(g->t[i].f);
			free(g->t[i].i32);
		}
	free(g->t);
	free(g->op);
	memset(g, 0, sizeof *g);
}

hk_status hk__tflite_parse(const void *data, size_t len, hk__nn_graph *g)
{
	memset(g, 0, sizeof *g);
	if (!data || len < 8)
		return hk__err(HK_E_FORMAT, "tflite: file too short (%zu bytes)", len);
	fb b = {data, len};
	if (memcmp(b.p + 4, "TFL3", 4) != 0)
		return hk__err(HK_E_FORMAT, "tflite: wrong magic (expected 'TFL3' at offset 4)");
	uint32_t root;
	rd(&b, 0, 4, &root);
	fbt model;
	hk_status s = fb_table(&b, root, &model);
	if (s)
		return s;
	uint32_t version = (uint32_t)fb_uint(&b, &model, 0, 4, 0);
	if (version != 3)
		return hk__err(HK_E_UNSUPPORTED, "tflite: schema version %u (expected 3)", version);
	fbv codes, subgraphs, buffers;
	if (fb_vec(&b, &model, 1, 4, &codes) || fb_vec(&b, &model, 2, 4, &subgraphs) ||
	    fb_vec(&b, &model, 4, 4, &buffers))
		return bad("model lacks operator codes, subgraphs or buffers", model.pos);
	if (subgraphs.len != 1)
		return hk__err(HK_E_UNSUPPORTED, "tflite: %u subgraphs (expected 1)", subgraphs.len);
	fbt sg;
	if ((s = fb_vec_table(&b, &subgraphs, 0, &sg)))
		return s;
	fbv tens, ops;
	if (fb_vec(&b, &sg, 0, 4, &tens) || fb_vec(&b, &sg, 3, 4, &ops))
		return bad("subgraph lacks tensors or operators", sg.pos);
	if (tens.len == 0 || tens.len > HK__NN_MAX_TENSORS || ops.len == 0 || ops.len > HK__NN_MAX_OPS)
		return hk__err(HK_E_FORMAT, "tflite: %u tensors, %u operators", tens.len, ops.len);
	g->ntensors = (int)tens.len;
	g->nops = (int)ops.len;
	g->t = calloc(tens.len, sizeof *g->t);
	g->op = calloc(ops.len, sizeof *g->op);
	if (!g->t || !g->op) {
		hk__nn_graph_free(g);
		return hk__err(HK_E_NOMEM, "tflite: out of memory");
	}
	for (uint32_t i = 0; i < tens.len; i++) {
		fbt tt;
		if ((s = fb_vec_table(&b, &tens, i, &tt)) ||
		    (s = read_tensor(&b, &tt, &buffers, (int)i, &g->t[i]))) {
			hk__nn_graph_free(g);
			return s;
		}
	}
	if ((s = read_io(&b, &sg, 1, g->ntensors, g->inputs, &g->ninputs, 0, "subgraph inputs")) ||
	    (s = read_io(&b, &sg, 2, g->ntensors, g->outputs, &g->noutputs, 0, "subgraph outputs"))) {
		hk__nn_graph_free(g);
		return s;
	}
	for (uint32_t i = 0; i < ops.len; i++) {
		fbt ot, ct;
		hk__nn_op *op = &g->op[i];
		if ((s = fb_vec_table(&b, &ops, i, &ot)))
			goto fail;
		uint32_t ci = (uint32_t)fb_uint(&b, &ot, 0, 4, 0);
		if (ci >= codes.len) {
			s = hk__err(HK_E_FORMAT, "tflite: operator %u: opcode index %u out of range", i, ci);
			goto fail;
		}
		if ((s = fb_vec_table(&b, &codes, ci, &ct)))
			goto fail;
		int dep = (int)fb_int(&b, &ct, 0, 1, 0);
		int code = (int)fb_int(&b, &ct, 3, 4, 0);
		if (dep > code)
			code = dep;
		op->code = code;
		if (!op_supported(code)) {
			char custom[48];
			fb_string(&b, &ct, 1, custom, sizeof custom);
			const char *nm = hk__tflite_op_name(code);
			if (code == 32)
				s = hk__err(HK_E_UNSUPPORTED, "tflite: operator %u: unsupported custom op '%s'", i, custom);
			else if (nm)
				s = hk__err(HK_E_UNSUPPORTED, "tflite: operator %u: unsupported op %s", i, nm);
			else
				s = hk__err(HK_E_UNSUPPORTED, "tflite: operator %u: unsupported op (builtin code %d)", i, code);
			goto fail;
		}
		if ((s = read_io(&b, &ot, 1, g->ntensors, op->in, &op->nin, 1, hk__tflite_op_name(code))) ||
		    (s = read_io(&b, &ot, 2, g->ntensors, op->out, &op->nout, 0, hk__tflite_op_name(code))) ||
		    (s = read_options(&b, &ot, op)))
			goto fail;
	}
	return HK_OK;
fail:
	hk__nn_graph_free(g);
	return s;
}
