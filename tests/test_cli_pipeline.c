/* herken detect / embed / verify / identify / models as a script sees them:
 * exit codes, --help, --json shape, and clear errors for bad and hostile
 * images. Runs $HERKEN_BUILD/herken; tests that need the models skip when
 * `herken models` says they are absent. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "herken.h"
#include "test_pipeline_json.h"

typedef struct run_out {
	int rc;
	char *out, *err;
	size_t out_len;
} run_out;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "open %s", path);
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);
	char tmp[8192];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		fwrite(tmp, 1, k, m);
	fclose(f);
	fclose(m);
	if (len)
		*len = n;
	return buf;
}

/* Runs `herken ARGS` (ARGS is shell text built by the tests from fixed
 * paths) with stdout and stderr captured. */
static run_out herken(const char *fmt, ...)
{
	const char *build = getenv("HERKEN_BUILD");
	char args[4096], cmd[8192], po[] = "/tmp/hk_cli_outXXXXXX", pe[] = "/tmp/hk_cli_errXXXXXX";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	int fo = mkstemp(po), fe = mkstemp(pe);
	cr_assert(fo >= 0 && fe >= 0);
	close(fo);
	close(fe);
	snprintf(cmd, sizeof cmd, "%s/herken %s >%s 2>%s </dev/null",
	         build && *build ? build : "build/release", args, po, pe);
	int st = system(cmd);
	run_out r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, NULL, NULL, 0};
	r.out = slurp(po, &r.out_len);
	r.err = slurp(pe, NULL);
	unlink(po);
	unlink(pe);
	return r;
}

static void run_free(run_out *r)
{
	free(r->out);
	free(r->err);
}

/* The model files are where herken looks (`herken models` checks them fully;
 * its own test is models_missing_is_an_input_error). */
static int models_present(void)
{
	const char *dir = getenv("HERKEN_MODELS");
	const char *files[] = {"face_detection_full_range_sparse.tflite", "onet.tflite",
	                       "MobileFaceNet.tflite"};
	for (int i = 0; i < 3; i++) {
		char p[2048];
		snprintf(p, sizeof p, "%s/%s", dir && *dir ? dir : ".cache/models", files[i]);
		if (access(p, R_OK))
			return 0;
	}
	return 1;
}

#define NEED_MODELS()                                                  \
	do {                                                           \
		if (!models_present())                                 \
			cr_skip_test("models absent (make models)");   \
	} while (0)

#define NEED_SHARED(var, rel)                                          \
	char var##_b[1024];                                            \
	const char *var = tj_shared_path(var##_b, sizeof var##_b, rel);        \
	if (!var)                                                      \
		cr_skip_test("%s absent (HERKEN_SHARED)", rel)

Test(cli_pipeline, usage_and_help)
{
	const char *cmds[] = {"detect", "embed", "verify", "identify", "models"};
	for (size_t i = 0; i < 5; i++) {
		run_out r = herken("%s --help", cmds[i]);
		cr_expect_eq(r.rc, 0, "%s --help", cmds[i]);
		cr_expect(strstr(r.out, "usage: herken") && strstr(r.out, "exit:"), "%s", r.out);
		run_free(&r);
		r = herken("%s --no-such-option", cmds[i]);
		cr_expect_eq(r.rc, 2, "%s: unknown option is a usage error", cmds[i]);
		cr_expect(strstr(r.err, "unknown option"), "%s", r.err);
		run_free(&r);
	}
	run_out r = herken("detect");
	cr_expect_eq(r.rc, 2);
	run_free(&r);
	r = herken("verify only-one.jpg");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "two images"), "%s", r.err);
	run_free(&r);
	r = herken("identify probe.jpg");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "--gallery"), "%s", r.err);
	run_free(&r);
	r = herken("detect a.jpg b.jpg --draw out.png");
	cr_expect_eq(r.rc, 2);
	run_free(&r);
	r = herken("verify a.jpg b.jpg --threshold 7");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "bad value"), "%s", r.err);
	run_free(&r);
	r = herken("detect x.jpg --score");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "needs a value"), "%s", r.err);
	run_free(&r);
}

/* `herken watch -` on a Y4M pipe whose writer stops writing (and stays
 * open): the stall is reported and the exit code is 7, after
 * --timeout-ms, not when the writer gives up. */
Test(cli_pipeline, watch_stalled_pipe_exits_7, .timeout = 60)
{
	NEED_MODELS();
	const char *build = getenv("HERKEN_BUILD");
	char cmd[2048], pe[] = "/tmp/hk_cli_errXXXXXX";
	int fe = mkstemp(pe);
	cr_assert(fe >= 0);
	close(fe);
	/* one grey 64x48 frame, then silence for 4 s with the pipe open */
	snprintf(cmd, sizeof cmd,
	         "(printf 'YUV4MPEG2 W64 H48 C444\\nFRAME\\n'; head -c 9216 /dev/zero | tr '\\0' '\\200';"
	         " sleep 4) | %s/herken watch - --timeout-ms 300 >%s 2>&1; echo $? >>%s",
	         build && *build ? build : "build/release", pe, pe);
	cr_assert_eq(system(cmd), 0);
	char *err = slurp(pe, NULL);
	unlink(pe);
	cr_expect(strstr(err, "stalled: no data for 300 ms"), "%s", err);
	cr_expect(strstr(err, "\n7\n"), "exit code 7 expected: %s", err);
	free(err);
}

Test(cli_pipeline, models_missing_is_an_input_error)
{
	run_out r = herken("models --models /nonexistent/dir --json");
	cr_expect_eq(r.rc, 3);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0, "models --json is JSON: %s", r.out);
	const tj_node *m = tj_get(&d, tj_root(&d), "models");
	size_t npinned = 0;
	hk_model_files(&npinned);
	cr_assert(m && m->len == npinned);
	for (size_t i = 0; i < npinned; i++)
		cr_expect_eq(tj_get(&d, tj_at(&d, m, i), "present")->type, TJ_BOOL);
	tj_free(&d);
	run_free(&r);
	r = herken("detect x.jpg --models /nonexistent/dir");
	cr_expect_eq(r.rc, 3);
	cr_expect(strstr(r.err, "make models"), "%s", r.err);
	run_free(&r);
}

Test(cli_pipeline, detect_json_shape)
{
	NEED_SHARED(img, "golden/images/sample4.jpg");
	NEED_MODELS();
	run_out r = herken("detect --json %s", img);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0, "not JSON: %s", r.out);
	const tj_node *im = tj_at(&d, tj_get(&d, tj_root(&d), "images"), 0);
	cr_assert(tj_streq(tj_get(&d, im, "path"), img));
	cr_expect_eq(tj_num(tj_get(&d, im, "width"), 0), 1920);
	const tj_node *faces = tj_get(&d, im, "faces");
	cr_assert(faces);
	cr_expect_eq(faces->len, 4, "sample4 has 4 faces");
	for (size_t i = 0; i < faces->len; i++) {
		const tj_node *f = tj_at(&d, faces, i);
		const tj_node *box = tj_get(&d, f, "box");
		cr_assert(box && box->len == 4);
		cr_expect_lt(tj_num(tj_at(&d, box, 0), 1e9), tj_num(tj_at(&d, box, 2), -1e9));
		cr_expect_eq(tj_get(&d, f, "keypoints")->len, 6);
		cr_expect_eq(tj_get(&d, f, "landmarks")->len, 5);
		cr_expect_eq(tj_get(&d, f, "usable")->type, TJ_BOOL);
		/* usable is the recogniser's quality rule: no reason given */
		const tj_node *q = tj_get(&d, f, "quality"), *why = tj_get(&d, q, "reasons");
		cr_assert(q && why && why->type == TJ_STR);
		cr_expect_eq(tj_get(&d, f, "usable")->num, why->len == 0);
		cr_expect(tj_streq(tj_get(&d, f, "landmark_source"), "onet") ||
		          tj_streq(tj_get(&d, f, "landmark_source"), "detector"));
		double s = tj_num(tj_get(&d, f, "score"), -1);
		cr_expect(s >= 0.6 && s <= 1);
	}
	tj_free(&d);
	run_free(&r);
	/* --draw writes a PNG of the same size. */
	char out[] = "/tmp/hk_cli_drawXXXXXX";
	int fd = mkstemp(out);
	close(fd);
	r = herken("detect %s --draw %s", img, out);
	cr_expect_eq(r.rc, 0);
	cr_expect(strstr(r.out, "4 faces"), "%s", r.out);
	size_t len;
	char *png = slurp(out, &len);
	cr_expect(len > 1000 && !memcmp(png, "\x89PNG", 4));
	free(png);
	unlink(out);
	run_free(&r);
}

Test(cli_pipeline, bad_and_hostile_images)
{
	NEED_SHARED(good, "golden/images/sample1.jpg");
	NEED_MODELS();
	char dir[] = "/tmp/hk_cli_badXXXXXX";
	cr_assert(mkdtemp(dir));
	char zero[256], trunc[256], huge[256];
	snprintf(zero, sizeof zero, "%s/zero.jpg", dir);
	snprintf(trunc, sizeof trunc, "%s/truncated.jpg", dir);
	snprintf(huge, sizeof huge, "%s/huge.png", dir);
	FILE *f = fopen(zero, "wb");
	fclose(f);
	size_t len;
	char *jpg = slurp(good, &len);
	f = fopen(trunc, "wb");
	fwrite(jpg, 1, 700, f);
	fclose(f);
	free(jpg);
	/* PNG header claiming 100000 x 100000 pixels, no data. */
	static const unsigned char png[] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
		0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0, 0x4e, 0x45, 0x12, 0x2b};
	f = fopen(huge, "wb");
	fwrite(png, 1, sizeof png, f);
	fclose(f);
	char webp_b[1024];
	const char *webp = tj_shared_path(webp_b, sizeof webp_b, "datasets/deepface_unit/img47.jpg");
	const char *paths[4] = {zero, trunc, huge, webp};
	for (int i = 0; i < 4; i++) {
		if (!paths[i])
			continue;
		run_out r = herken("detect --json %s", paths[i]);
		cr_expect_eq(r.rc, 3, "%s: exit %d", paths[i], r.rc);
		tj_doc d;
		cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0, "not JSON: %s", r.out);
		const tj_node *err = tj_get(&d, tj_at(&d, tj_get(&d, tj_root(&d), "images"), 0), "error");
		cr_assert(err && err->type == TJ_STR && err->len > 5, "%s", r.out);
		cr_log_info("%s -> %.*s", paths[i], (int)err->len, err->str);
		if (i == 3)
			cr_expect(memmem(err->str, err->len, "WebP", 4), "WebP named: %.*s", (int)err->len,
			          err->str);
		tj_free(&d);
		run_free(&r);
	}
	/* A bad image next to a good one: the good one is still reported. */
	run_out r = herken("detect %s %s", zero, good);
	cr_expect_eq(r.rc, 3);
	cr_expect(strstr(r.out, "3 faces"), "%s", r.out);
	cr_expect(strstr(r.err, "zero.jpg"), "%s", r.err);
	run_free(&r);
	unlink(zero);
	unlink(trunc);
	unlink(huge);
	rmdir(dir);
}

Test(cli_pipeline, verify_exit_codes_and_json)
{
	NEED_SHARED(a, "golden/images/sample1.jpg");
	NEED_SHARED(b, "golden/images/sample3.jpg");
	NEED_SHARED(c, "golden/images/sample6.jpg");
	NEED_MODELS();
	/* Face 1 of sample1 (best score first) is A of golden/abc; B is in
	 * sample3; nobody of sample6 is A. */
	run_out r = herken("verify --face 1 --json %s %s", a, b);
	cr_expect_eq(r.rc, 0, "A is in sample3: %s %s", r.out, r.err);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0, "not JSON: %s", r.out);
	const tj_node *root = tj_root(&d);
	double score = tj_num(tj_get(&d, root, "score"), -2);
	double thr = tj_num(tj_get(&d, root, "threshold"), -2);
	cr_expect_geq(score, thr);
	cr_expect_eq(tj_get(&d, root, "match")->type, TJ_BOOL);
	cr_expect_eq(tj_get(&d, root, "match")->num, 1);
	cr_expect_eq(tj_num(tj_get(&d, tj_get(&d, root, "a"), "face_index"), -1), 1);
	const tj_node *bf = tj_get(&d, tj_get(&d, root, "b"), "faces");
	cr_expect_eq(bf->len, 3);
	size_t best = (size_t)tj_num(tj_get(&d, root, "best_face"), 99);
	cr_assert_lt(best, bf->len);
	cr_expect_float_eq(tj_num(tj_get(&d, tj_at(&d, bf, best), "match_score"), 0), score, 1e-4);
	/* The best face of sample3 is B of golden/abc (box x0 ~ 1042). */
	cr_expect(fabs(tj_num(tj_at(&d, tj_get(&d, tj_at(&d, bf, best), "box"), 0), 0) - 1042) < 30);
	tj_free(&d);
	run_free(&r);
	r = herken("verify --face 1 %s %s", a, c);
	cr_expect_eq(r.rc, 1, "A is not in sample6: %s", r.out);
	cr_expect(strstr(r.out, "different people"), "%s", r.out);
	run_free(&r);
	/* --threshold overrides: at -1 everything matches. */
	r = herken("verify --face 1 --threshold -1 %s %s", a, c);
	cr_expect_eq(r.rc, 0);
	run_free(&r);
	r = herken("verify --face 40 %s %s", a, c);
	cr_expect_eq(r.rc, 3, "no face 40 in sample1");
	run_free(&r);
}

Test(cli_pipeline, embed_json_is_normalised)
{
	NEED_SHARED(img, "golden/images/sample6.jpg");
	NEED_MODELS();
	run_out r = herken("embed --all --json %s", img);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0);
	const tj_node *faces = tj_get(&d, tj_at(&d, tj_get(&d, tj_root(&d), "images"), 0), "faces");
	cr_assert(faces);
	cr_expect_eq(faces->len, 4);
	for (size_t i = 0; i < faces->len; i++) {
		const tj_node *v = tj_get(&d, tj_at(&d, faces, i), "embedding");
		cr_assert(v && v->len == 192);
		double nn = 0;
		for (size_t k = 0; k < 192; k++)
			nn += pow(tj_num(tj_at(&d, v, k), 0), 2);
		cr_expect_float_eq(nn, 1.0, 1e-4);
	}
	tj_free(&d);
	run_free(&r);
	r = herken("embed %s", img);
	cr_expect_eq(r.rc, 0);
	cr_expect_eq(strchr(r.out, '\n') - r.out + 1, (long)r.out_len, "one line: largest face");
	run_free(&r);
}

/* Several files: one pipeline (hk_embed_many), results in the order given,
 * a missing file in the middle reported for itself (exit 3 at the end),
 * each photo's embedding the same as when it is embedded alone. */
Test(cli_pipeline, embed_many_files_in_order)
{
	NEED_SHARED(a, "golden/images/sample1.jpg");
	NEED_SHARED(b, "golden/images/sample6.jpg");
	NEED_MODELS();
	/* oneDNN's first kernel everywhere: the timing-based choice at load
	 * would let two processes round differently (core/nn/exec.c) */
	setenv("HERKEN_NN_TUNE", "0", 1);
	run_out r = herken("embed --json %s /nonexistent/herken.jpg %s", a, b);
	cr_assert_eq(r.rc, 3, "a missing file is bad input: %s", r.err);
	cr_expect(strstr(r.err, "/nonexistent/herken.jpg"), "%s", r.err);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0);
	const tj_node *imgs = tj_get(&d, tj_root(&d), "images");
	cr_assert(imgs && imgs->len == 3);
	cr_expect(tj_streq(tj_get(&d, tj_at(&d, imgs, 0), "path"), a));
	cr_expect(tj_get(&d, tj_at(&d, imgs, 1), "error"), "the missing file has an error");
	cr_expect(tj_streq(tj_get(&d, tj_at(&d, imgs, 2), "path"), b));
	const tj_node *f = tj_at(&d, tj_get(&d, tj_at(&d, imgs, 2), "faces"), 0);
	cr_assert(f, "sample6 has a subject");
	cr_expect(tj_get(&d, f, "subject") && tj_get(&d, f, "quality"));
	/* sample6 alone: the same face, the same embedding (one oneDNN
	 * thread per model either way, the same kernels) */
	run_out r1 = herken("embed --json %s", b);
	cr_assert_eq(r1.rc, 0, "%s", r1.err);
	tj_doc d1;
	cr_assert_eq(tj_parse(&d1, r1.out, r1.out_len), 0);
	const tj_node *f1 = tj_at(&d1, tj_get(&d1, tj_at(&d1, tj_get(&d1, tj_root(&d1), "images"), 0), "faces"), 0);
	cr_assert(f1);
	const tj_node *v = tj_get(&d, f, "embedding"), *v1 = tj_get(&d1, f1, "embedding");
	cr_assert(v && v1 && v->len == 192 && v1->len == 192);
	for (size_t k = 0; k < 192; k++)
		cr_expect_float_eq(tj_num(tj_at(&d, v, k), 9), tj_num(tj_at(&d1, v1, k), -9), 1e-6);
	for (int k = 0; k < 4; k++)
		cr_expect_float_eq(tj_num(tj_at(&d, tj_get(&d, f, "box"), k), 0),
		                   tj_num(tj_at(&d1, tj_get(&d1, f1, "box"), k), -1), 0.02);
	tj_free(&d1);
	run_free(&r1);
	tj_free(&d);
	run_free(&r);
}

Test(cli_pipeline, identify_bbt_gallery)
{
	NEED_SHARED(bbt, "datasets/bbt_faceapi/amy");
	NEED_SHARED(group, "datasets/group_photos/faceapi_bbt/bbt1.jpg");
	NEED_MODELS();
	/* Gallery: the first photo of each of the 8 people (symlinks). */
	char dir[] = "/tmp/hk_cli_galXXXXXX";
	cr_assert(mkdtemp(dir));
	const char *people[] = {"amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"};
	char root[1024];
	snprintf(root, sizeof root, "%s", bbt);
	*strrchr(root, '/') = 0;
	for (int i = 0; i < 8; i++) {
		char sub[512], src[1400], dst[1400];
		snprintf(sub, sizeof sub, "%s/%s", dir, people[i]);
		cr_assert_eq(mkdir(sub, 0700), 0);
		snprintf(src, sizeof src, "%s/%s/%s1.png", root, people[i], people[i]);
		snprintf(dst, sizeof dst, "%s/%s1.png", sub, people[i]);
		if (access(src, R_OK))
			cr_skip_test("%s absent", src);
		cr_assert_eq(symlink(src, dst), 0);
	}
	run_out r = herken("identify --top 17 --gallery %s %s", dir, group);
	cr_expect_eq(r.rc, 2, "--top is 1..16 (HK_CANDIDATES_MAX)");
	run_free(&r);
	r = herken("identify --json --top 3 --gallery %s %s", dir, group);
	cr_expect(r.rc == 0 || r.rc == 1, "exit %d: %s", r.rc, r.err);
	tj_doc d;
	cr_assert_eq(tj_parse(&d, r.out, r.out_len), 0, "not JSON: %s", r.out);
	const tj_node *root_n = tj_root(&d), *g = tj_get(&d, root_n, "gallery");
	cr_expect_eq(tj_num(tj_get(&d, g, "subjects"), 0), 8);
	cr_expect_eq(tj_num(tj_get(&d, g, "templates"), 0), 8);
	const tj_node *faces = tj_get(&d, tj_at(&d, tj_get(&d, root_n, "probes"), 0), "faces");
	cr_assert(faces && faces->len >= 1);
	size_t matched = 0;
	for (size_t i = 0; i < faces->len; i++) {
		const tj_node *f = tj_at(&d, faces, i), *c = tj_get(&d, f, "candidates");
		cr_assert(c && c->len == 3);
		double s0 = tj_num(tj_get(&d, tj_at(&d, c, 0), "score"), -2);
		cr_expect_geq(s0, tj_num(tj_get(&d, tj_at(&d, c, 1), "score"), 2), "ordered");
		const tj_node *m = tj_get(&d, f, "match");
		if (m->type == TJ_STR) {
			matched++;
			const tj_node *s = tj_get(&d, tj_at(&d, c, 0), "subject");
			cr_expect(s && s->len == m->len && !memcmp(s->str, m->str, m->len),
			          "the match is the best candidate");
			cr_expect_geq(s0, tj_num(tj_get(&d, root_n, "threshold"), 2));
		}
	}
	cr_log_info("bbt1: %zu faces, %zu identified", faces->len, matched);
	cr_expect_eq(r.rc, matched ? 0 : 1);
	tj_free(&d);
	run_free(&r);
	for (int i = 0; i < 8; i++) {
		char p[1400];
		snprintf(p, sizeof p, "%s/%s/%s1.png", dir, people[i], people[i]);
		unlink(p);
		snprintf(p, sizeof p, "%s/%s", dir, people[i]);
		rmdir(p);
	}
	rmdir(dir);
}

/* `identify --frames LIST` (io_uring frame source, parallel decode) gives
 * the same answers as positional probes, and a missing or non-image frame
 * is reported for that frame while the others go on. */
Test(cli_pipeline, identify_frames_source)
{
	NEED_SHARED(amy, "datasets/bbt_faceapi/amy/amy1.png");
	NEED_SHARED(group, "datasets/group_photos/faceapi_bbt/bbt1.jpg");
	NEED_MODELS();
	char dir[] = "/tmp/hk_cli_frXXXXXX";
	cr_assert(mkdtemp(dir));
	char sub[512], dst[600], list[600], junk[600];
	snprintf(sub, sizeof sub, "%s/amy", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	snprintf(dst, sizeof dst, "%s/amy1.png", sub);
	cr_assert_eq(symlink(amy, dst), 0);
	snprintf(junk, sizeof junk, "%s/junk.jpg", dir);
	FILE *f = fopen(junk, "w");
	fputs("not an image", f);
	fclose(f);
	snprintf(list, sizeof list, "%s/probes.txt", dir);
	f = fopen(list, "w");
	fprintf(f, "# probes\n%s\n%s/missing.jpg\n%s\n", group, dir, junk);
	fclose(f);

	run_out a = herken("identify --json --gallery %s --frames %s", dir, list);
	run_out b = herken("identify --json --gallery %s %s", dir, group);
	/* two unreadable probes: exit 3, the readable one still searched */
	cr_expect_eq(a.rc, 3, "exit %d: %s", a.rc, a.err);
	cr_expect(b.rc == 0 || b.rc == 1, "exit %d: %s", b.rc, b.err);
	tj_doc da, db;
	cr_assert_eq(tj_parse(&da, a.out, a.out_len), 0, "not JSON: %s", a.out);
	cr_assert_eq(tj_parse(&db, b.out, b.out_len), 0, "not JSON: %s", b.out);
	const tj_node *pa = tj_get(&da, tj_root(&da), "probes");
	const tj_node *pb = tj_get(&db, tj_root(&db), "probes");
	cr_assert(pa && pa->len == 3, "three frames reported");
	cr_assert(pb && pb->len == 1);
	/* frames arrive in list order (in-order delivery) */
	const tj_node *fa = tj_get(&da, tj_at(&da, pa, 0), "faces");
	const tj_node *fb = tj_get(&db, tj_at(&db, pb, 0), "faces");
	cr_assert(fa && fb && fa->len == fb->len && fa->len >= 1);
	for (size_t i = 0; i < fa->len; i++) {
		const tj_node *ca = tj_get(&da, tj_at(&da, fa, i), "candidates");
		const tj_node *cb = tj_get(&db, tj_at(&db, fb, i), "candidates");
		cr_expect_float_eq(tj_num(tj_get(&da, tj_at(&da, ca, 0), "score"), 9),
		                   tj_num(tj_get(&db, tj_at(&db, cb, 0), "score"), -9), 1e-4);
	}
	cr_expect(tj_get(&da, tj_at(&da, pa, 1), "error") != NULL, "missing file reported");
	cr_expect(tj_get(&da, tj_at(&da, pa, 2), "error") != NULL, "non-image reported");
	cr_expect(strstr(a.err, "missing.jpg") != NULL, "stderr names the frame: %s", a.err);
	tj_free(&da);
	tj_free(&db);
	run_free(&a);
	run_free(&b);
	run_out c = herken("identify --gallery %s --frames %s %s", dir, list, group);
	cr_expect_eq(c.rc, 2, "probes and --frames together is a usage error");
	run_free(&c);
	unlink(dst);
	rmdir(sub);
	unlink(junk);
	unlink(list);
	rmdir(dir);
}
