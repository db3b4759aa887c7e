/* Model import and inference against the reference runtime's tensors
 * ($HERKEN_SHARED/golden) and malformed-model handling. Model files come
 * from `make models` ($HERKEN_MODELS or .cache/models). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "herken.h"
#include "nn/nn.h"
#include "test_nn_util.h"
#include "test_vec.h"

#define NFACES 22
static const char *faces[NFACES] = {
	"sample1_f0", "sample1_f1", "sample1_f2", "sample2_f0", "sample2_f1", "sample2_f2",
	"sample3_f0", "sample3_f1", "sample3_f2", "sample4_f0", "sample4_f1", "sample4_f2",
	"sample4_f3", "sample5_f0", "sample5_f1", "sample5_f2", "sample5_f3", "sample5_f4",
	"sample6_f0", "sample6_f1", "sample6_f2", "sample6_f3",
};

/* Under sanitizers oneDNN's JIT code is not instrumented but everything
 * around it is slow: HERKEN_NN_QUICK=1 (set by the sanitizer runs, see the
 * report) keeps a subset of the golden items. */
static int quick(void)
{
	const char *q = getenv("HERKEN_NN_QUICK");
	return q && *q == '1';
}

static hk_model *load_or_skip(const char *file, hk_model_kind kind, uint32_t max_batch, uint32_t chunk)
{
	char mp[512];
	if (!tn_model(mp, sizeof mp, file))
		cr_skip_test("model %s absent (run `make models` or set HERKEN_MODELS)", file);
	hk_model_params p;
	hk_model_default_params(&p);
	p.kind = kind;
	p.max_batch = max_batch;
	p.chunk = chunk;
	p.threads = 1;
	hk_model *m = NULL;
	hk_status s = hk_model_load(mp, &p, &m);
	cr_assert_eq(s, HK_OK, "load %s: %s", file, hk_last_error());
	cr_assert_eq(hk_model_get_kind(m), kind);
	return m;
}

static void need_golden(char *buf, size_t cap, const char *rel)
{
	if (!tn_golden(buf, cap, rel))
		cr_skip_test("HERKEN_SHARED unset: golden tensors absent");
	FILE *f = fopen(buf, "rb");
	if (!f)
		cr_skip_test("golden file %s absent", buf);
	fclose(f);
}

#define FACE_IN (112 * 112 * 3)

static float *load_faces(void)
{
	char p[512];
	float *in = malloc(sizeof(float) * FACE_IN * NFACES);
	for (int i = 0; i < NFACES; i++) {
		char rel[128];
		snprintf(rel, sizeof rel, "mobilefacenet/%s.mobilefacenet_input_1x112x112x3.f32", faces[i]);
		need_golden(p, sizeof p, rel);
		cr_assert_eq(tn_read_f32(p, in + (size_t)i * FACE_IN, FACE_IN), 0, "read %s", p);
	}
	return in;
}

Test(nn_embedder, golden_cosine, .timeout = 120)
{
	char p[512];
	need_golden(p, sizeof p, "mobilefacenet/embeddings.json");
	size_t len = 0;
	char *txt = tn_read_file(p, &len);
	cr_assert(txt);
	static char ids[64][32];
	static float ref[64 * 192];
	int n = tn_parse_embeddings(txt, len, ids, ref, 64, 192);
	free(txt);
	cr_assert_eq(n, NFACES, "embeddings.json: %d entries", n);
	hk_model *m = load_or_skip("MobileFaceNet.tflite", HK_MODEL_EMBEDDER, 32, 0);
	{
		hk_model_info info;
		cr_assert_eq(hk_model_get_info(m, &info), HK_OK);
		cr_expect(info.chunk >= 1 && info.chunk <= 32, "auto chunk %u", info.chunk);
	}
	uint32_t h, w, c;
	cr_assert_eq(hk_model_input_shape(m, &h, &w, &c), HK_OK);
	cr_assert(h == 112 && w == 112 && c == 3);
	cr_assert_eq(hk_model_output_count(m), 1);
	cr_assert_eq(hk_model_output_size(m, 0), 192);
	float *in = load_faces();
	static float out[NFACES * 192];
	int nf = quick() ? 4 : NFACES;
	float *o = out;
	cr_assert_eq(hk_model_run(m, in, (size_t)nf, &o), HK_OK, "%s", hk_last_error());
	for (int i = 0; i < nf; i++) {
		cr_assert_str_eq(ids[i], faces[i]);
		tv_unit(out + i * 192, 192);
		double cs = tv_cosine(out + i * 192, ref + i * 192, 192);
		cr_expect_geq(cs, 0.99999, "face %s: cosine %.8f", faces[i], cs);
	}
	free(in);
	hk_model_destroy(m);
}

Test(nn_embedder, batch_sizes_match_batch1, .timeout = 120)
{
	hk_model *m = load_or_skip("MobileFaceNet.tflite", HK_MODEL_EMBEDDER, 32, 32);
	hk_model_info info;
	cr_assert_eq(hk_model_get_info(m, &info), HK_OK);
	cr_assert_eq(info.chunk, 32, "primitives must see the whole batch here");
	float *faces_in = load_faces();
	const size_t nb = quick() ? 7 : 32;
	float *in = malloc(sizeof(float) * FACE_IN * nb);
	for (size_t i = 0; i < nb; i++)
		memcpy(in + i * FACE_IN, faces_in + (i % NFACES) * FACE_IN, sizeof(float) * FACE_IN);
	static float one[32 * 192], many[32 * 192];
	for (size_t i = 0; i < nb; i++) {
		float *o = one + i * 192;
		cr_assert_eq(hk_model_run(m, in + i * FACE_IN, 1, &o), HK_OK, "%s", hk_last_error());
	}
	const size_t sizes[4] = {1, 2, 7, 32};
	for (int k = 0; k < 4; k++) {
		size_t b = sizes[k];
		if (b > nb)
			continue;
		float *o = many;
		cr_assert_eq(hk_model_run(m, in, b, &o), HK_OK, "%s", hk_last_error());
		for (size_t i = 0; i < b; i++) {
			double mx = 0, md = 0;
			for (int j = 0; j < 192; j++) {
				double a = one[i * 192 + j], d = fabs(a - many[i * 192 + j]);
				mx = fabs(a) > mx ? fabs(a) : mx;
				md = d > md ? d : md;
			}
			cr_expect_leq(md, 1e-5 * mx + 1e-6, "batch %zu item %zu: max diff %g (max %g)", b, i, md, mx);
		}
	}
	free(in);
	free(faces_in);
	hk_model_destroy(m);
}

Test(nn_embedder, embed_chips_normalises, .timeout = 120)
{
	hk_model *m = load_or_skip("MobileFaceNet.tflite", HK_MODEL_EMBEDDER, 8, 0);
	float *faces_in = load_faces();
	const int n = 3;
	uint8_t *chips = malloc((size_t)FACE_IN * n);
	float *fin = malloc(sizeof(float) * FACE_IN * n);
	for (size_t i = 0; i < (size_t)FACE_IN * n; i++) {
		long v = lrintf(faces_in[i] * 128.0f + 127.5f);
		chips[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		fin[i] = ((float)chips[i] - 127.5f) / 128.0f;
	}
	float emb[3 * 192], raw[3 * 192];
	cr_assert_eq(hk_embed_chips(m, chips, n, emb), HK_OK, "%s", hk_last_error());
	float *o = raw;
	cr_assert_eq(hk_model_run(m, fin, n, &o), HK_OK);
	for (int i = 0; i < n; i++) {
		double len = 0;
		for (int j = 0; j < 192; j++)
			len += (double)emb[i * 192 + j] * emb[i * 192 + j];
		cr_expect(fabs(len - 1.0) < 1e-5, "item %d length^2 %g", i, len);
		cr_expect_geq(tv_cosine(emb + i * 192, raw + i * 192, 192), 0.9999999);
		/* 8-bit rounding of the aligned face barely moves the embedding */
		float ref1[192];
		memcpy(ref1, raw + i * 192, sizeof ref1);
		float *g = faces_in + (size_t)i * FACE_IN, r2[192], *o2 = r2;
		cr_assert_eq(hk_model_run(m, g, 1, &o2), HK_OK);
		cr_expect_geq(tv_cosine(ref1, r2, 192), 0.999);
	}
	/* wrong model kind */
	free(chips);
	free(fin);
	free(faces_in);
	hk_model_destroy(m);
}

/* ---- detector ---- */

static void check_detector(const char *file, const char *tag)
{
	hk_model *m = load_or_skip(file, HK_MODEL_DETECTOR, 1, 0);
	cr_assert_eq(hk_model_output_count(m), 2);
	cr_assert_eq(hk_model_output_size(m, 0), 2304 * 16);
	cr_assert_eq(hk_model_output_size(m, 1), 2304);
	static float in[192 * 192 * 3], reg[2304 * 16], logit[2304], greg[2304 * 16], glog[2304];
	int ns = quick() ? 2 : 6;
	for (int k = 1; k <= ns; k++) {
		char p[512], rel[128];
		snprintf(rel, sizeof rel, "detector/sample%d.det_input_1x192x192x3.f32", k);
		need_golden(p, sizeof p, rel);
		cr_assert_eq(tn_read_f32(p, in, 192 * 192 * 3), 0);
		snprintf(rel, sizeof rel, "detector/sample%d.%s.regressors.f32", k, tag);
		need_golden(p, sizeof p, rel);
		cr_assert_eq(tn_read_f32(p, greg, 2304 * 16), 0);
		snprintf(rel, sizeof rel, "detector/sample%d.%s.logits.f32", k, tag);
		need_golden(p, sizeof p, rel);
		cr_assert_eq(tn_read_f32(p, glog, 2304), 0);
		float *outs[2] = {reg, logit};
		cr_assert_eq(hk_model_run(m, in, 1, outs), HK_OK, "%s", hk_last_error());
		const float *got[2] = {reg, logit}, *want[2] = {greg, glog};
		size_t cnt[2] = {2304 * 16, 2304};
		for (int t = 0; t < 2; t++) {
			double mx = 0, md = 0;
			for (size_t i = 0; i < cnt[t]; i++) {
				mx = fabs(want[t][i]) > mx ? fabs(want[t][i]) : mx;
				double d = fabs((double)want[t][i] - got[t][i]);
				md = d > md ? d : md;
			}
			double tol = fmax(2e-3, 1e-5 * mx);
			cr_expect_leq(md, tol, "%s sample%d %s: max abs diff %g > %g", tag, k,
			              t ? "logits" : "regressors", md, tol);
		}
		int nsel = 0;
		for (int a = 0; a < 2304; a++) {
			double lg = fmax(-100, fmin(100, glog[a])), lo = fmax(-100, fmin(100, logit[a]));
			int ws = 1 / (1 + exp(-lg)) >= 0.6, gs = 1 / (1 + exp(-lo)) >= 0.6;
			nsel += ws;
			cr_expect_eq(ws, gs, "%s sample%d anchor %d: score %g vs golden %g", tag, k, a,
			             1 / (1 + exp(-lo)), 1 / (1 + exp(-lg)));
		}
		cr_expect_gt(nsel, 0, "sample%d: no face in the golden output", k);
	}
	hk_model_destroy(m);
}

Test(nn_detector, dense_golden, .timeout = 120)
{
	check_detector("face_detection_full_range.tflite", "dense");
}

Test(nn_detector, sparse_golden, .timeout = 120)
{
	check_detector("face_detection_full_range_sparse.tflite", "sparse");
}

/* ---- O-Net ---- */

Test(nn_onet, golden, .timeout = 120)
{
	hk_model *m = load_or_skip("onet.tflite", HK_MODEL_LANDMARKS, 32, 0);
	cr_assert_eq(hk_model_output_count(m), 3);
	static float in[2 * NFACES * 48 * 48 * 3];
	static float prob[2 * NFACES * 2], box[2 * NFACES * 4], lm[2 * NFACES * 10];
	const char *pass[2] = {"onet_", "onet_pass2."};
	const char *names[3] = {"prob1_1x2", "conv6-2_1x4", "conv6-3_1x10"};
	const size_t sz[3] = {2, 4, 10};
	int nf = quick() ? 4 : NFACES;
	for (int ps = 0; ps < 2; ps++)
		for (int i = 0; i < nf; i++) {
			char p[512], rel[160];
			snprintf(rel, sizeof rel, "onet/%s.%s%s.f32", faces[i], pass[ps],
			         ps ? "input_1x48x48x3" : "input_1x48x48x3");
			need_golden(p, sizeof p, rel);
			cr_assert_eq(tn_read_f32(p, in + (size_t)(ps * nf + i) * 6912, 6912), 0, "%s", p);
		}
	float *outs[3] = {prob, box, lm};
	cr_assert_eq(hk_model_run(m, in, (size_t)(2 * nf), outs), HK_OK, "%s", hk_last_error());
	for (int ps = 0; ps < 2; ps++)
		for (int i = 0; i < nf; i++)
			for (int t = 0; t < 3; t++) {
				char p[512], rel[160];
				snprintf(rel, sizeof rel, "onet/%s.%s%s.f32", faces[i], pass[ps], names[t]);
				need_golden(p, sizeof p, rel);
				float want[10];
				cr_assert_eq(tn_read_f32(p, want, sz[t]), 0, "%s", p);
				const float *got = outs[t] + (size_t)(ps * nf + i) * sz[t];
				for (size_t k = 0; k < sz[t]; k++)
					cr_expect_leq(fabs(got[k] - want[k]), 1e-4, "%s %s[%zu]: %g vs %g", faces[i],
					              rel, k, got[k], want[k]);
			}
	hk_model_destroy(m);
}

/* ---- synthetic models and malformed input ---- */

Test(nn_synthetic, conv_residual_relu)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	hk_model *m = NULL;
	hk_status s = hk_model_load_memory(w.b, len, NULL, &m);
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_model_get_kind(m), HK_MODEL_AUTO);
	cr_assert_eq(hk_model_output_size(m, 0), 18);
	float x[3 * 18], y[3 * 18], ref[18];
	for (int i = 0; i < 3 * 18; i++)
		x[i] = (float)((i * 7) % 11) - 5.0f;
	float *o = y;
	cr_assert_eq(hk_model_run(m, x, 3, &o), HK_OK, "%s", hk_last_error());
	for (int b = 0; b < 3; b++) {
		tn_small_ref(x + 18 * b, ref);
		for (int i = 0; i < 18; i++)
			cr_expect_float_eq(y[18 * b + i], ref[i], 1e-5, "item %d [%d]", b, i);
	}
	hk_model_info info;
	cr_assert_eq(hk_model_get_info(m, &info), HK_OK);
	cr_expect_float_eq(info.flops, 2.0 * 9 * 2 * 2, 1e-9);
	cr_expect(strstr(info.graph, "1 fused") || strstr(info.graph, "2 fused"), "%s", info.graph);
	hk_model_destroy(m);
	hk_model_destroy(NULL);
}

Test(nn_malformed, unsupported_op_is_named)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 14); /* LOGISTIC */
	hk_model *m = NULL;
	hk_status s = hk_model_load_memory(w.b, len, NULL, &m);
	cr_assert_eq(s, HK_E_UNSUPPORTED);
	cr_assert_null(m);
	cr_expect(strstr(hk_last_error(), "LOGISTIC"), "%s", hk_last_error());
	len = tn_small_model(&w, 200); /* unknown builtin code */
	cr_assert_eq(hk_model_load_memory(w.b, len, NULL, &m), HK_E_UNSUPPORTED);
	cr_expect(strstr(hk_last_error(), "200"), "%s", hk_last_error());
}

Test(nn_malformed, magic_and_offsets)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	static uint8_t b[1 << 16];
	hk_model *m = NULL;
	memcpy(b, w.b, len);
	memcpy(b + 4, "TFL2", 4);
	cr_assert_eq(hk_model_load_memory(b, len, NULL, &m), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "magic"), "%s", hk_last_error());
	/* root offset far out of range */
	memcpy(b, w.b, len);
	uint32_t big = 0xfffffff0u;
	memcpy(b, &big, 4);
	cr_assert_eq(hk_model_load_memory(b, len, NULL, &m), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "offset"), "%s", hk_last_error());
	/* every 4-byte word replaced by a huge value: an error or a valid
	 * model, never a crash (run under ASan) */
	for (size_t at = 8; at + 4 <= len; at += 4) {
		memcpy(b, w.b, len);
		memcpy(b + at, &big, 4);
		hk_status s = hk_model_load_memory(b, len, NULL, &m);
		cr_expect(s == HK_OK || s < 0);
		if (s == HK_OK)
			hk_model_destroy(m);
		else
			cr_expect(strlen(hk_last_error()) > 5);
	}
	cr_assert_eq(hk_model_load_memory(NULL, 0, NULL, &m), HK_E_FORMAT);
	cr_assert_eq(hk_model_load("/nonexistent/model.tflite", NULL, &m), HK_E_NOT_FOUND);
}

Test(nn_malformed, truncated_synthetic)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	for (size_t cut = 0; cut < len; cut++) {
		hk_model *m = NULL;
		hk_status s = hk_model_load_memory(w.b, cut, NULL, &m);
		/* the writer puts the last constant and op vectors at the end, so
		 * every proper prefix lacks something */
		cr_expect_eq(HK_STATUS_PRIMARY(s), HK_E_FORMAT, "cut %zu: %d %s", cut, s, hk_last_error());
		cr_expect_null(m);
	}
}

Test(nn_malformed, truncated_real_model, .timeout = 60)
{
	char mp[512];
	if (!tn_model(mp, sizeof mp, "onet.tflite"))
		cr_skip_test("onet.tflite absent (make models)");
	size_t len = 0;
	uint8_t *d = tn_read_file(mp, &len);
	cr_assert(d);
	int fails = 0;
	for (int k = 0; k < 300; k++) {
		size_t cut = k < 100 ? (size_t)k : (len / 200) * (size_t)(k - 100);
		hk_model *m = NULL;
		hk_status s = hk_model_load_memory(d, cut, NULL, &m);
		if (s == HK_OK) {
			hk_model_destroy(m);
			continue;
		}
		fails++;
		cr_expect(HK_STATUS_PRIMARY(s) == HK_E_FORMAT || HK_STATUS_PRIMARY(s) == HK_E_UNSUPPORTED,
		          "cut %zu: %s", cut, hk_status_str(s));
		cr_expect(strlen(hk_last_error()) > 5);
	}
	cr_expect_geq(fails, 290, "only %d of 300 truncations rejected", fails);
	free(d);
}

Test(nn_api, bad_arguments)
{
	hk_model *m = NULL;
	hk_model_params p;
	hk_model_default_params(&p);
	cr_expect_eq(p.numa_node, -1);
	cr_expect_eq(p.max_batch, 32);
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	p.kind = HK_MODEL_EMBEDDER; /* the synthetic model is not one */
	cr_assert_eq(hk_model_load_memory(w.b, len, &p, &m), HK_E_DIM);
	p.kind = HK_MODEL_AUTO;
	p.numa_node = 4000;
	cr_assert_eq(hk_model_load_memory(w.b, len, &p, &m), HK_E_NOT_FOUND);
	p.numa_node = -1;
	cr_assert_eq(hk_model_load_memory(w.b, len, &p, &m), HK_OK);
	uint8_t chip[112 * 112 * 3] = {0};
	float e[192];
	cr_expect_eq(hk_embed_chips(m, chip, 1, e), HK_E_STATE);
	float x[18] = {0}, y[18], *o = y;
	cr_expect_eq(hk_model_run(m, NULL, 1, &o), HK_E_INVALID);
	cr_expect_eq(hk_model_run(m, x, 0, &o), HK_OK);
	cr_expect_eq(hk_model_run_on_node(m, 5, x, 1, &o), HK_E_RANGE);
	cr_expect_eq(hk_model_run_on_node(m, 0, x, 1, &o), HK_OK);
	cr_expect_eq(hk_model_output_size(m, 3), 0);
	hk_model_destroy(m);
}

/* Replays tests/corpus/tflite (seeds + whatever the fuzzer found) through
 * the loader: any status is fine, no crash (this runs under ASan too). */
static void tflite_replay_one(const char *p, uint8_t *d, size_t len, void *ctx)
{
	(void)ctx;
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.max_batch = 2;
	mp.threads = 1;
	hk_model *m = NULL;
	hk_status s = hk_model_load_memory(d, len, &mp, &m);
	if (s != HK_OK) {
		cr_expect(s < 0 && strlen(hk_last_error()) > 0, "%s", p);
		return;
	}
	uint32_t h, w, c;
	hk_model_input_shape(m, &h, &w, &c);
	size_t in = (size_t)h * w * c;
	if (in <= (1u << 20)) {
		float *x = calloc(in * 2, sizeof(float));
		float *outs[8] = {0};
		for (size_t k = 0; k < hk_model_output_count(m) && k < 8; k++)
			outs[k] = calloc(hk_model_output_size(m, k) * 2 + 1, sizeof(float));
		hk_model_run(m, x, 2, outs);
		for (int k = 0; k < 8; k++)
			free(outs[k]);
		free(x);
	}
	hk_model_destroy(m);
}

Test(nn_fuzz, corpus_replay, .timeout = 120)
{
	int n = tn_corpus_each("tflite", tflite_replay_one, NULL);
	if (n < 0)
		cr_skip_test("tests/corpus/tflite absent (run from the repository root)");
	cr_expect_geq(n, 3, "corpus has %d files", n);
}

/* The golden faces through the embedder at precision prec (into a) and at
 * fp32 (into b); returns the number of faces run. *out: the prec model
 * (NULL when it could not load: *st says why). */
static int embed_both(hk_precision prec, float *in, float *a, float *b, hk_model **out, hk_status *st)
{
	char mp[512];
	if (!tn_model(mp, sizeof mp, "MobileFaceNet.tflite"))
		cr_skip_test("MobileFaceNet.tflite absent (make models)");
	hk_model_params p;
	hk_model_default_params(&p);
	p.kind = HK_MODEL_EMBEDDER;
	p.threads = 1;
	p.precision = prec;
	*out = NULL;
	if ((*st = hk_model_load(mp, &p, out)))
		return 0;
	hk_model *m32 = load_or_skip("MobileFaceNet.tflite", HK_MODEL_EMBEDDER, 32, 0);
	int nf = quick() ? 4 : NFACES;
	float *oa = a, *ob = b;
	cr_assert_eq(hk_model_run(*out, in, (size_t)nf, &oa), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_model_run(m32, in, (size_t)nf, &ob), HK_OK);
	hk_model_destroy(m32);
	return nf;
}

/* bf16 path: 22 golden faces, cosine against the fp32 reference. */
Test(nn_embedder, bf16_close_to_fp32, .timeout = 120)
{
	float *in = load_faces();
	static float a[NFACES * 192], b[NFACES * 192];
	hk_model *m16;
	hk_status st;
	int nf = embed_both(HK_PREC_BF16, in, a, b, &m16, &st);
	if (st == HK_E_UNSUPPORTED) {
		free(in);
		cr_skip_test("%s", hk_last_error());
	}
	cr_assert_eq(st, HK_OK, "%s", hk_last_error());
	double worst = 1;
	for (int i = 0; i < nf; i++) {
		double cs = tv_cosine(a + i * 192, b + i * 192, 192);
		worst = cs < worst ? cs : worst;
		cr_expect_geq(cs, 0.999, "face %s: bf16 vs fp32 cosine %.6f", faces[i], cs);
		cr_expect_lt(cs, 0.9999999, "face %s: bf16 identical to fp32 (path not taken?)", faces[i]);
	}
	hk_model_destroy(m16);
	free(in);
}

/* The golden faces through int8 (a) and fp32 (b): the number of faces;
 * *m8 and *info of the int8 model, *in the inputs (the caller frees). */
static int int8_vs_fp32(float *a, float *b, hk_model **m8, hk_model_info *info, float **in)
{
	hk_status s;
	*in = load_faces();
	int nf = embed_both(HK_PREC_INT8, *in, a, b, m8, &s);
	if (s == HK_E_UNSUPPORTED && strstr(hk_last_error(), "needs"))
		cr_skip_test("%s", hk_last_error());
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_model_get_info(*m8, info), HK_OK);
	return nf;
}

/* int8 path: 22 golden faces against fp32. The accuracy guard is cosine
 * >= 0.995 per face; the ranges table marks a model "guard-fail" when it
 * does not hold, "guard-exact" when it holds only where the int8
 * convolutions are exact (VNNI, or herken's own s8 x s8 kernels), and
 * HK_PREC_AUTO must then not choose int8 (and must when it holds): the
 * table's mark has to tell the truth. Wherever the convolutions are exact
 * the embedder's guard must hold (this is the test of both tiers: AVX-512
 * VNNI, and ONEDNN_MAX_CPU_ISA=AVX2 on the own kernels); oneDNN's own
 * halved-weight int8 without VNNI (HERKEN_INT8_OWN=0) fails it (0.980). */
Test(nn_embedder, int8_guard, .timeout = 180)
{
	static float a[NFACES * 192], b[NFACES * 192];
	hk_model *m8;
	hk_model_info info;
	float *in;
	int nf = int8_vs_fp32(a, b, &m8, &info, &in);
	cr_expect_eq(info.precision, HK_PREC_INT8);
	/* 52 convolutions; 49 where the table's "f" line keeps the global
	 * depthwise conv and the head after it in fp32 (own kernels) */
	cr_expect_geq(info.int8_nodes, hk__int8_own() ? 49 : 50, "%u convolutions in int8", info.int8_nodes);
	int guard = 1;
	for (int i = 0; i < nf; i++) {
		double cs = tv_cosine(a + i * 192, b + i * 192, 192);
		guard &= cs >= 0.995;
		if (hk__int8_exact())
			cr_expect_geq(cs, 0.995, "face %s: int8 vs fp32 cosine %.6f (%s)", faces[i], cs,
			              hk__int8_own() ? "own s8 x s8 kernels" : "oneDNN with VNNI");
		/* far from fp32 means a broken int8 path, not a weak calibration */
		cr_expect_geq(cs, 0.9, "face %s: int8 vs fp32 cosine %.6f", faces[i], cs);
		cr_expect_lt(cs, 0.9999999, "face %s: int8 identical to fp32 (path not taken?)", faces[i]);
	}
	hk_model_destroy(m8);
	char mp[512];
	tn_model(mp, sizeof mp, "MobileFaceNet.tflite");
	hk_model_params p;
	hk_model_default_params(&p);
	p.threads = 1;
	p.precision = HK_PREC_AUTO;
	hk_model *ma = NULL;
	cr_assert_eq(hk_model_load(mp, &p, &ma), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_model_get_info(ma, &info), HK_OK);
	if (nf == NFACES)
		cr_expect_eq(info.precision == HK_PREC_INT8, guard,
		             "guard %s on the golden faces but AUTO chose %u", guard ? "holds" : "fails",
		             info.precision);
	hk_model_destroy(ma);
	free(in);
}

/* The own exact s8 x s8 kernels forced on (what a CPU without VNNI runs):
 * the golden guard holds on them on every x86 tier, and the executor
 * really took them. (Criterion runs each test in its own process.) */
Test(nn_embedder, int8_guard_own_kernels, .timeout = 180)
{
	setenv("HERKEN_INT8_OWN", "1", 1);
	static float a[NFACES * 192], b[NFACES * 192];
	hk_model *m8;
	hk_model_info info;
	float *in;
	int nf = int8_vs_fp32(a, b, &m8, &info, &in);
	cr_expect(strstr(info.impl, "herken exact s8s8"), "conv impl %s", info.impl);
	for (int i = 0; i < nf; i++) {
		double cs = tv_cosine(a + i * 192, b + i * 192, 192);
		cr_expect_geq(cs, 0.995, "face %s: int8 (own kernels) vs fp32 cosine %.6f", faces[i], cs);
		cr_expect_lt(cs, 0.9999999, "face %s: int8 identical to fp32 (path not taken?)", faces[i]);
	}
	hk_model_destroy(m8);
	free(in);
}

/* int8 of a model without a calibration: HK_E_UNSUPPORTED, named. */
Test(nn_onet, int8_without_calibration)
{
	char mp[512];
	/* MTCNN's R-Net: no calibration (O-Net has one since the detectors' int8) */
	if (!tn_model(mp, sizeof mp, "rnet.tflite"))
		cr_skip_test("rnet.tflite absent (make models)");
	hk_model_params p;
	hk_model_default_params(&p);
	p.precision = HK_PREC_INT8;
	p.threads = 1;
	hk_model *m = NULL;
	hk_status s = hk_model_load(mp, &p, &m);
	cr_expect_eq(s, HK_E_UNSUPPORTED);
	cr_expect_null(m);
	cr_expect(strstr(hk_last_error(), "calibration") || strstr(hk_last_error(), "needs"),
	          "message: %s", hk_last_error());
	p.precision = 7;
	cr_expect_eq(hk_model_load(mp, &p, &m), HK_E_INVALID);
}

/* The bf16 answer follows the CPU and ONEDNN_MAX_CPU_ISA: oneDNN 2.6 runs
 * bf16 convolutions from avx512_core (F/BW/VL/DQ) up, nowhere below. */
static int cpuinfo_flag(const char *flag)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	static char line[8192];
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5)) {
			size_t n = strlen(flag);
			for (const char *q = line; (q = strstr(q, flag)); q += n)
				if (q[-1] == ' ' && (q[n] == ' ' || q[n] == '\n' || !q[n]))
					found = 1;
			break;
		}
	if (f)
		fclose(f);
	return found;
}

Test(nn_precision, capability_follows_cpu_and_cap)
{
	cr_assert_eq(hk_precision_supported(HK_PREC_FP32), HK_OK);
	cr_assert_eq(hk_precision_supported((hk_precision)7), HK_E_INVALID);
#if !defined(HK_ARCH_X86)
	cr_skip_test("bf16 expectation written for x86 only");
#else
	const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
	int core512 = cpuinfo_flag("avx512f") && cpuinfo_flag("avx512bw") &&
	              cpuinfo_flag("avx512vl") && cpuinfo_flag("avx512dq");
	int capped = cap && *cap && strncasecmp(cap, "AVX512_CORE", 11) && strcasecmp(cap, "ALL");
	hk_status s = hk_precision_supported(HK_PREC_BF16);
	if (core512 && !capped) {
		cr_assert_eq(s, HK_OK, "%s", hk_last_error());
		return;
	}
	cr_assert_eq(s, HK_E_UNSUPPORTED, "avx512_core %d, ONEDNN_MAX_CPU_ISA=%s: status %d",
	             core512, cap ? cap : "(unset)", s);
	cr_assert(strstr(hk_last_error(), "bf16") && strstr(hk_last_error(), "AVX-512"),
	          "message does not say what is missing: %s", hk_last_error());
	/* the model loader refuses the same way */
	char mp[512];
	if (!tn_model(mp, sizeof mp, "MobileFaceNet.tflite"))
		return;
	hk_model_params p;
	hk_model_default_params(&p);
	p.precision = HK_PREC_BF16;
	hk_model *m = NULL;
	cr_assert_eq(hk_model_load(mp, &p, &m), HK_E_UNSUPPORTED);
	cr_assert_null(m);
	cr_assert(strstr(hk_last_error(), "bf16"), "%s", hk_last_error());
#endif
}
