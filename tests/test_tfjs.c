/* The TF.js weights-manifest loader (core/nn/tfjs.c) and dlib's ResNet built
 * from face-api's manifest: against face-api's own tensors
 * ($HERKEN_SHARED/golden/dlib), and the bad inputs — a missing, truncated or
 * over-long shard, a file whose sha256 is not the pinned one, a malformed
 * manifest — each an error naming the file, never a wrong embedding. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"
#include "nn/nn.h"
#include "test_nn_util.h"

#define MANIFEST "face_recognition_model-weights_manifest.json"
#define SHARD "face_recognition_model.bin"
#define NFACES 22
#define IN (150 * 150 * 3)

static const char *faces[NFACES] = {
	"sample1_f0", "sample1_f1", "sample1_f2", "sample2_f0", "sample2_f1", "sample2_f2",
	"sample3_f0", "sample3_f1", "sample3_f2", "sample4_f0", "sample4_f1", "sample4_f2",
	"sample4_f3", "sample5_f0", "sample5_f1", "sample5_f2", "sample5_f3", "sample5_f4",
	"sample6_f0", "sample6_f1", "sample6_f2", "sample6_f3",
};

static const char *model_or_skip(char *buf, size_t cap)
{
	char s[512];
	if (!tn_model(buf, cap, MANIFEST) || !tn_model(s, sizeof s, SHARD))
		cr_skip_test("dlib model absent (run `make models` or set HERKEN_MODELS)");
	return buf;
}

static hk_model *load(const char *path, hk_status *s)
{
	hk_model_params p;
	hk_model_default_params(&p);
	p.threads = 1;
	p.max_batch = 4;
	hk_model *m = NULL;
	*s = hk_model_load(path, &p, &m);
	return m;
}

Test(tfjs_dlib, golden_faces, .timeout = 180)
{
	char mp[512], gp[512];
	model_or_skip(mp, sizeof mp);
	if (!tn_golden(gp, sizeof gp, "dlib/README.md") || access(gp, R_OK))
		cr_skip_test("golden/dlib absent");
	hk_status s;
	hk_model *m = load(mp, &s);
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	cr_expect_eq(hk_model_get_kind(m), HK_MODEL_EMBEDDER);
	uint32_t h, w, c;
	hk_model_input_shape(m, &h, &w, &c);
	cr_assert(h == 150 && w == 150 && c == 3);
	cr_assert_eq(hk_model_output_size(m, 0), 128);
	const char *q = getenv("HERKEN_NN_QUICK");
	int nf = q && *q == '1' ? 4 : NFACES;
	float *in = malloc(sizeof(float) * IN);
	for (int i = 0; i < nf; i++) {
		char rel[128];
		float out[128], ref[128], *o = out;
		snprintf(rel, sizeof rel, "dlib/%s.dlib_input_1x150x150x3.f32", faces[i]);
		tn_golden(gp, sizeof gp, rel);
		cr_assert_eq(tn_read_f32(gp, in, IN), 0, "%s", gp);
		snprintf(rel, sizeof rel, "dlib/%s.dlib_descriptor_128.f32", faces[i]);
		tn_golden(gp, sizeof gp, rel);
		cr_assert_eq(tn_read_f32(gp, ref, 128), 0, "%s", gp);
		cr_assert_eq(hk_model_run(m, in, 1, &o), HK_OK, "%s", hk_last_error());
		double d = 0, na = 0, nb = 0, mx = 0;
		for (int k = 0; k < 128; k++) {
			d += (double)out[k] * ref[k];
			na += (double)out[k] * out[k];
			nb += (double)ref[k] * ref[k];
			mx = fmax(mx, fabs((double)out[k] - ref[k]));
		}
		/* the two TF.js runtimes agree to 4.6e-7; oneDNN's summation
		 * order gives 7.5e-7 here */
		cr_expect_geq(d / sqrt(na * nb), 0.99999, "%s: cosine %.8f", faces[i], d / sqrt(na * nb));
		cr_expect_leq(mx, 1e-4, "%s: max abs difference %.2e", faces[i], mx);
	}
	free(in);
	/* chips: 150x150 bytes in, 128 unit-length floats out */
	uint8_t *chip = malloc(IN * 2);
	for (size_t i = 0; i < (size_t)IN * 2; i++)
		chip[i] = (uint8_t)(i * 7 + i / 450);
	float e[256];
	cr_assert_eq(hk_embed_chips(m, chip, 2, e), HK_OK, "%s", hk_last_error());
	for (int k = 0; k < 2; k++) {
		double n2 = 0;
		for (int j = 0; j < 128; j++)
			n2 += (double)e[k * 128 + j] * e[k * 128 + j];
		cr_expect(fabs(n2 - 1) < 1e-4, "chip %d: |e|^2 = %f", k, n2);
	}
	free(chip);
	hk_model_destroy(m);
}

/* ---- bad files: a scratch copy of the model, altered ---- */

static char *read_or_die(const char *path, size_t *len)
{
	char *d = tn_read_file(path, len);
	cr_assert_not_null(d, "read %s", path);
	return d;
}

static void write_or_die(const char *dir, const char *name, const void *d, size_t len)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f, "%s", p);
	cr_assert_eq(fwrite(d, 1, len, f), len);
	fclose(f);
}

static hk_status load_in(const char *dir, const char *name, char *msg, size_t cap)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	hk_status s;
	hk_model *m = load(p, &s);
	snprintf(msg, cap, "%s", hk_last_error());
	hk_model_destroy(m);
	return s;
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[1024];
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

Test(tfjs_bad, shards_and_digests_named, .timeout = 60)
{
	char mp[512], sp[512];
	model_or_skip(mp, sizeof mp);
	tn_model(sp, sizeof sp, SHARD);
	size_t ml, sl;
	char *man = read_or_die(mp, &ml);
	char *shard = read_or_die(sp, &sl);
	char dir[] = "/tmp/herken-tfjs-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char msg[2048], want[1200];
	const hk_model_file *pin = NULL;
	size_t np;
	const hk_model_file *t = hk_model_files(&np);
	for (size_t i = 0; i < np; i++)
		if (!strcmp(t[i].file, SHARD))
			pin = &t[i];
	cr_assert_not_null(pin, "the shard is pinned in core/models.def");

	/* the shard missing */
	write_or_die(dir, MANIFEST, man, ml);
	snprintf(want, sizeof want, "%s/%s", dir, SHARD);
	cr_expect_eq(load_in(dir, MANIFEST, msg, sizeof msg), HK_E_NOT_FOUND, "%s", msg);
	cr_expect(strstr(msg, want) != NULL, "names the shard: %s", msg);

	/* the pinned shard one byte short: its sha256 is not the pinned one */
	write_or_die(dir, SHARD, shard, sl - 1);
	cr_expect_eq(load_in(dir, MANIFEST, msg, sizeof msg), HK_E_FORMAT, "%s", msg);
	cr_expect(strstr(msg, want) && strstr(msg, pin->sha256), "names the shard and its digest: %s", msg);

	/* the pinned manifest altered (a quantisation scale) */
	char *man2 = malloc(ml);
	memcpy(man2, man, ml);
	char *sc = strstr(man2, "\"scale\":");
	cr_assert_not_null(sc);
	sc[9] = sc[9] == '1' ? '2' : '1';
	write_or_die(dir, MANIFEST, man2, ml);
	write_or_die(dir, SHARD, shard, sl);
	snprintf(want, sizeof want, "%s/%s", dir, MANIFEST);
	cr_expect_eq(load_in(dir, MANIFEST, msg, sizeof msg), HK_E_FORMAT, "%s", msg);
	cr_expect(strstr(msg, want) != NULL, "names the manifest: %s", msg);
	free(man2);

	/* unpinned names (a model of the caller's own): sizes still checked */
	char *man3 = malloc(ml + 1);
	char *at = memmem(man, ml, SHARD, strlen(SHARD));
	cr_assert_not_null(at);
	size_t pre = (size_t)(at - man);
	memcpy(man3, man, pre);
	memcpy(man3 + pre, "own.bin", 7);
	size_t rest = ml - pre - strlen(SHARD);
	memcpy(man3 + pre + 7, at + strlen(SHARD), rest);
	size_t ml3 = pre + 7 + rest;
	write_or_die(dir, "own.json", man3, ml3);
	snprintf(want, sizeof want, "%s/own.bin", dir);
	write_or_die(dir, "own.bin", shard, sl - 4096);
	cr_expect_eq(load_in(dir, "own.json", msg, sizeof msg), HK_E_FORMAT, "%s", msg);
	cr_expect(strstr(msg, want) && strstr(msg, "truncated"), "truncated shard named: %s", msg);
	char *longer = malloc(sl + 1);
	memcpy(longer, shard, sl);
	longer[sl] = 0;
	write_or_die(dir, "own.bin", longer, sl + 1);
	cr_expect_eq(load_in(dir, "own.json", msg, sizeof msg), HK_E_FORMAT, "%s", msg);
	cr_expect(strstr(msg, want) != NULL, "over-long shard named: %s", msg);
	free(longer);
	free(man3);
	free(man);
	free(shard);
	rm_dir(dir);
}

static hk_status build(const char *text, size_t wbytes, char *msg, size_t cap)
{
	uint8_t *w = calloc(wbytes + 1, 1);
	hk__nn_net net;
	hk_status s = hk__tfjs_build_memory(text, strlen(text), w, wbytes, &net);
	snprintf(msg, cap, "%s", hk_last_error());
	if (!s)
		hk__nn_net_free(&net);
	free(w);
	return s;
}

Test(tfjs_bad, malformed_manifests)
{
	char msg[512];
	cr_expect_eq(build("", 0, msg, sizeof msg), HK_E_FORMAT);
	cr_expect_eq(build("[{\"paths\":[\"../w.bin\"],\"weights\":[]}]", 0, msg, sizeof msg), HK_E_FORMAT);
	cr_expect(strstr(msg, "plain file name"), "%s", msg);
	cr_expect_eq(build("[{\"paths\":[\"w.bin\"],\"weights\":[{\"name\":\"fc\",\"shape\":[2],"
	                   "\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"min\":0}}]}]",
	                   2, msg, sizeof msg), HK_E_FORMAT);
	cr_expect(strstr(msg, "scale and min"), "%s", msg);
	cr_expect_eq(build("[{\"paths\":[\"w.bin\"],\"weights\":[{\"name\":\"fc\",\"shape\":[2],"
	                   "\"dtype\":\"float32\"}]}] x", 8, msg, sizeof msg), HK_E_FORMAT);
	cr_expect(strstr(msg, "trailing"), "%s", msg);
	/* well-formed, but 3 bytes where 8 are declared */
	cr_expect_eq(build("[{\"paths\":[\"w.bin\"],\"weights\":[{\"name\":\"fc\",\"shape\":[2],"
	                   "\"dtype\":\"float32\"}]}]", 3, msg, sizeof msg), HK_E_FORMAT);
	cr_expect(strstr(msg, "holds 3 bytes"), "%s", msg);
	/* well-formed and complete, but not dlib's network: the missing weight named */
	cr_expect_eq(build("[{\"paths\":[\"w.bin\"],\"weights\":[{\"name\":\"fc\",\"shape\":[2],"
	                   "\"dtype\":\"float32\"}]}]", 8, msg, sizeof msg), HK_E_FORMAT);
	cr_expect(strstr(msg, "conv32_down/conv/filters"), "%s", msg);
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 99);
	deep[199] = 0;
	cr_expect_eq(build(deep, 0, msg, sizeof msg), HK_E_FORMAT);
}

/* tests/corpus/tfjs (seeds + what the fuzzer found): manifest, NUL, shard
 * bytes. Any status is fine, no crash (also under ASan). */
static void tfjs_replay_one(const char *p, uint8_t *d, size_t len, void *ctx)
{
	(void)ctx;
	const uint8_t *nul = memchr(d, 0, len);
	size_t tl = nul ? (size_t)(nul - d) : len;
	const uint8_t *w = nul ? nul + 1 : d + len;
	hk__nn_net net;
	hk_status s = hk__tfjs_build_memory((const char *)d, tl, w, len - (size_t)(w - d), &net);
	if (!s)
		hk__nn_net_free(&net);
	else
		cr_expect(s < 0 && strlen(hk_last_error()) > 0, "%s", p);
}

Test(tfjs_fuzz, corpus_replay, .timeout = 120)
{
	int n = tn_corpus_each("tfjs", tfjs_replay_one, NULL);
	if (n < 0)
		cr_skip_test("tests/corpus/tfjs absent (run from the repository root)");
	cr_expect_geq(n, 5, "corpus seeds replayed: %d", n);
}
