/* Helpers for the model tests: file loading, a bounds-checked reader for
 * golden/mobilefacenet/embeddings.json, and a tiny TFLite flatbuffer writer
 * for synthetic models (laid out front to back: every offset points
 * forward, every scalar field takes a 4-byte slot). */
#ifndef HK_TEST_NN_UTIL_H
#define HK_TEST_NN_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"

static inline void *tn_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END)) {
		fclose(f);
		return NULL;
	}
	long n = ftell(f);
	rewind(f);
	void *d = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
		free(d);
		d = NULL;
	}
	fclose(f);
	if (d)
		*len = (size_t)n;
	return d;
}

/* Every file of a directory (a fuzz corpus or shipped tables, run from the
 * repository root) read whole and handed to one(path, bytes, len, ctx);
 * hidden files are skipped, unreadable ones too. Returns the number of
 * files handed over, or -1 when the directory is absent. */
static inline int tn_dir_each(const char *dir,
			      void (*one)(const char *path, uint8_t *d, size_t len, void *ctx),
			      void *ctx)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return -1;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		size_t len = 0;
		uint8_t *d = tn_read_file(p, &len);
		if (!d)
			continue;
		one(p, d, len, ctx);
		free(d);
		n++;
	}
	closedir(dp);
	return n;
}

/* tests/corpus/<name>: the fuzz corpus of one parser. */
static inline int tn_corpus_each(const char *name,
				 void (*one)(const char *path, uint8_t *d, size_t len, void *ctx),
				 void *ctx)
{
	char dir[256];
	snprintf(dir, sizeof dir, "tests/corpus/%s", name);
	return tn_dir_each(dir, one, ctx);
}

/* $HERKEN_SHARED/golden/<rel> into buf, or NULL when HERKEN_SHARED is unset. */
static inline const char *tn_golden(char *buf, size_t cap, const char *rel)
{
	const char *sh = getenv("HERKEN_SHARED");
	if (!sh || !*sh)
		return NULL;
	snprintf(buf, cap, "%s/golden/%s", sh, rel);
	return buf;
}

/* Model file: <hk_model_dir(NULL)>/<name>. */
static inline const char *tn_model(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", hk_model_dir(NULL), name);
	FILE *f = fopen(buf, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return buf;
}

/* Read n floats from a raw little-endian .f32 file; 0 on success. */
static inline int tn_read_f32(const char *path, float *out, size_t n)
{
	size_t len = 0;
	void *d = tn_read_file(path, &len);
	if (!d || len != n * sizeof(float)) {
		free(d);
		return -1;
	}
	memcpy(out, d, len);
	free(d);
	return 0;
}

/* ---- minimal JSON: {"ids": ["..", ..], "emb": [[num, ..], ..]} ---- */

typedef struct tn_json {
	const char *p, *end;
} tn_json;

static inline void tn_ws(tn_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static inline int tn_lit(tn_json *j, char c)
{
	tn_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 1;
	}
	return 0;
}

/* A string into out (cap), no escapes other than copying them verbatim. */
static inline int tn_str(tn_json *j, char *out, size_t cap)
{
	if (!tn_lit(j, '"'))
		return -1;
	size_t n = 0;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\' && j->p + 1 < j->end)
			j->p++;
		if (n + 1 < cap)
			out[n++] = *j->p;
		j->p++;
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	out[n] = 0;
	return 0;
}

static inline int tn_num(tn_json *j, double *v)
{
	tn_ws(j);
	char tmp[64];
	size_t n = 0;
	while (j->p + n < j->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", j->p[n]))
		n++;
	if (n == 0 || n >= sizeof tmp - 1)
		return -1;
	memcpy(tmp, j->p, n);
	tmp[n] = 0;
	char *e;
	*v = strtod(tmp, &e);
	if (e != tmp + n)
		return -1;
	j->p += n;
	return 0;
}

/* Parses the embeddings file: ids[max][32], emb[max*dim]. Returns the
 * count or -1; every row must have exactly dim numbers. */
static inline int tn_parse_embeddings(const char *txt, size_t len, char (*ids)[32],
                                      float *emb, int max, int dim)
{
	tn_json j = {txt, txt + len};
	int nid = 0, nemb = 0;
	if (!tn_lit(&j, '{'))
		return -1;
	for (;;) {
		char key[32];
		if (tn_str(&j, key, sizeof key) || !tn_lit(&j, ':') || !tn_lit(&j, '['))
			return -1;
		if (!strcmp(key, "ids")) {
			if (!tn_lit(&j, ']'))
				do {
					if (nid >= max || tn_str(&j, ids[nid], 32))
						return -1;
					nid++;
				} while (tn_lit(&j, ','));
			if (nid && !tn_lit(&j, ']'))
				return -1;
		} else if (!strcmp(key, "emb")) {
			do {
				if (nemb >= max || !tn_lit(&j, '['))
					return -1;
				int k = 0;
				do {
					double v;
					if (k >= dim || tn_num(&j, &v))
						return -1;
					emb[(size_t)nemb * dim + k++] = (float)v;
				} while (tn_lit(&j, ','));
				if (k != dim || !tn_lit(&j, ']'))
					return -1;
				nemb++;
			} while (tn_lit(&j, ','));
			if (!tn_lit(&j, ']'))
				return -1;
		} else {
			return -1;
		}
		if (tn_lit(&j, '}'))
			break;
		if (!tn_lit(&j, ','))
			return -1;
	}
	return nid == nemb ? nid : -1;
}

/* ---- TFLite writer ---- */

typedef struct tn_fb {
	uint8_t b[1 << 16];
	size_t n;
} tn_fb;

static inline size_t tn_put(tn_fb *w, const void *d, size_t len)
{
	while (w->n % 4)
		w->b[w->n++] = 0;
	size_t at = w->n;
	memcpy(w->b + w->n, d, len);
	w->n += len;
	return at;
}

/* A table with k 4-byte fields; present[i] = 0 leaves field i absent.
 * Returns the table position; field i lives at pos + 4 + 4 i. */
static inline size_t tn_table(tn_fb *w, int k, const uint32_t *vals, const char *present)
{
	uint16_t vt[2 + 16];
	vt[0] = (uint16_t)(4 + 2 * k);
	vt[1] = (uint16_t)(4 + 4 * k);
	for (int i = 0; i < k; i++)
		vt[2 + i] = present[i] ? (uint16_t)(4 + 4 * i) : 0;
	size_t v = tn_put(w, vt, (size_t)(4 + 2 * k));
	while (w->n % 4)
		w->b[w->n++] = 0;
	size_t t = w->n;
	int32_t soff = (int32_t)(t - v);
	tn_put(w, &soff, 4);
	for (int i = 0; i < k; i++)
		tn_put(w, &vals[i], 4);
	return t;
}

static inline void tn_patch(tn_fb *w, size_t field, size_t target)
{
	uint32_t rel = (uint32_t)(target - field);
	memcpy(w->b + field, &rel, 4);
}

static inline size_t tn_vec(tn_fb *w, const void *el, uint32_t n, size_t elsz)
{
	size_t at = tn_put(w, &n, 4);
	if (n)
		memcpy(w->b + w->n, el, n * elsz), w->n += n * elsz;
	return at;
}

/* Offsets vector of n slots; slot i at pos + 4 + 4 i, patched later. */
static inline size_t tn_offvec(tn_fb *w, uint32_t n)
{
	size_t at = tn_put(w, &n, 4);
	memset(w->b + w->n, 0, 4 * (size_t)n);
	w->n += 4 * (size_t)n;
	return at;
}

typedef struct tn_tensor {
	int ndim;
	int32_t shape[4];
	const float *data; /* NULL: activation */
} tn_tensor;

typedef struct tn_op {
	int code;
	int nin, nout;
	int32_t in[4], out[1];
	int opt_type;        /* BuiltinOptions union type, 0 none */
	int nopt;
	uint32_t opt[8];     /* option fields, 4-byte slots */
} tn_op;

/* Serialise a one-subgraph model; returns its length. */
static inline size_t tn_build(tn_fb *w, const tn_tensor *t, int nt, const tn_op *ops, int nops,
                              int input, int output)
{
	w->n = 0;
	uint32_t hdr[2] = {0, 0};
	tn_put(w, hdr, 8);
	memcpy(w->b + 4, "TFL3", 4);
	const char all[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	uint32_t mv[5] = {3, 0, 0, 0, 0};
	const char mp[5] = {1, 1, 1, 0, 1};
	size_t model = tn_table(w, 5, mv, mp);
	tn_patch(w, 0, model);
	/* operator codes: one per op */
	size_t codes = tn_offvec(w, (uint32_t)nops);
	tn_patch(w, model + 8, codes);
	for (int i = 0; i < nops; i++) {
		uint32_t cv[4] = {(uint32_t)(ops[i].code < 127 ? ops[i].code : 127), 0, 1, (uint32_t)ops[i].code};
		const char cp[4] = {1, 0, 1, 1};
		size_t c = tn_table(w, 4, cv, cp);
		tn_patch(w, codes + 4 + 4 * (size_t)i, c);
	}
	/* buffers: 0 empty, then one per constant tensor */
	size_t bufs = tn_offvec(w, (uint32_t)(nt + 1));
	tn_patch(w, model + 20, bufs);
	for (int i = 0; i <= nt; i++) {
		uint32_t bv[1] = {0};
		const char bp[1] = {(char)(i > 0 && t[i - 1].data)};
		size_t b = tn_table(w, 1, bv, bp);
		tn_patch(w, bufs + 4 + 4 * (size_t)i, b);
		if (bp[0]) {
			size_t cnt = 1;
			for (int d = 0; d < t[i - 1].ndim; d++)
				cnt *= (size_t)t[i - 1].shape[d];
			size_t v = tn_vec(w, t[i - 1].data, (uint32_t)(cnt * 4), 1);
			tn_patch(w, b + 4, v);
		}
	}
	size_t sgs = tn_offvec(w, 1);
	tn_patch(w, model + 12, sgs);
	uint32_t sv[4] = {0};
	size_t sg = tn_table(w, 4, sv, all);
	tn_patch(w, sgs + 4, sg);
	size_t tv = tn_offvec(w, (uint32_t)nt);
	tn_patch(w, sg + 4, tv);
	for (int i = 0; i < nt; i++) {
		uint32_t vv[3] = {0, 0, t[i].data ? (uint32_t)(i + 1) : 0};
		size_t tt = tn_table(w, 3, vv, all);
		tn_patch(w, tv + 4 + 4 * (size_t)i, tt);
		size_t sh = tn_vec(w, t[i].shape, (uint32_t)t[i].ndim, 4);
		tn_patch(w, tt + 4, sh);
	}
	int32_t io = input;
	tn_patch(w, sg + 8, tn_vec(w, &io, 1, 4));
	io = output;
	tn_patch(w, sg + 12, tn_vec(w, &io, 1, 4));
	size_t ov = tn_offvec(w, (uint32_t)nops);
	tn_patch(w, sg + 16, ov);
	for (int i = 0; i < nops; i++) {
		uint32_t opv[5] = {(uint32_t)i, 0, 0, (uint32_t)ops[i].opt_type, 0};
		const char opp[5] = {1, 1, 1, (char)(ops[i].opt_type != 0), (char)(ops[i].opt_type != 0)};
		size_t o = tn_table(w, 5, opv, opp);
		tn_patch(w, ov + 4 + 4 * (size_t)i, o);
		tn_patch(w, o + 8, tn_vec(w, ops[i].in, (uint32_t)ops[i].nin, 4));
		tn_patch(w, o + 12, tn_vec(w, ops[i].out, (uint32_t)ops[i].nout, 4));
		if (ops[i].opt_type) {
			size_t ot = tn_table(w, ops[i].nopt, ops[i].opt, all);
			tn_patch(w, o + 20, ot);
		}
	}
	return w->n;
}

/* The synthetic model used by tests and as fuzz seed: input [1,3,3,2] ->
 * CONV_2D 1x1 (2->2, bias, VALID) -> ADD with the input + RELU -> output.
 * code_override replaces the ADD's builtin code when nonzero. */
static const float tn_w[4] = {0.5f, -1.0f, 2.0f, 0.25f};
static const float tn_b[2] = {0.1f, -0.2f};

static inline size_t tn_small_model(tn_fb *w, int code_override)
{
	tn_tensor t[5] = {
		{4, {1, 3, 3, 2}, NULL},
		{4, {2, 1, 1, 2}, tn_w},
		{1, {2}, tn_b},
		{4, {1, 3, 3, 2}, NULL},
		{4, {1, 3, 3, 2}, NULL},
	};
	tn_op ops[2] = {
		/* Conv2DOptions: padding VALID, stride_w 1, stride_h 1, act NONE */
		{3, 3, 1, {0, 1, 2}, {3}, 1, 4, {1, 1, 1, 0}},
		/* AddOptions: act RELU */
		{code_override ? code_override : 0, 2, 1, {3, 0}, {4}, 11, 1, {1}},
	};
	return tn_build(w, t, 5, ops, 2, 0, 4);
}

/* Reference output of tn_small_model for x[18]. */
static inline void tn_small_ref(const float *x, float *y)
{
	for (int p = 0; p < 9; p++)
		for (int o = 0; o < 2; o++) {
			float v = tn_b[o] + tn_w[2 * o] * x[2 * p] + tn_w[2 * o + 1] * x[2 * p + 1];
			v += x[2 * p + o];
			y[2 * p + o] = v > 0 ? v : 0;
		}
}

#endif
