/* The pinned model table (core/models.def) and the sha256 check at every
 * load of a pinned file (issue 11 item 4). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

Test(models, table_rows_are_complete_and_distinct)
{
	size_t n = 0;
	const hk_model_file *t = hk_model_files(&n);
	cr_assert_eq(n, 8);
	const char *roles[] = {"detector-sparse", "detector-dense", "landmarks", "embedder",
	                       "embedder-dlib", "embedder-dlib-weights", "mtcnn-pnet",
	                       "mtcnn-rnet"};
	for (size_t i = 0; i < n; i++) {
		cr_expect_str_eq(t[i].role, roles[i]);
		cr_expect(is_hex64(t[i].sha256), "%s: sha256 '%s'", t[i].file, t[i].sha256);
		cr_expect(strstr(t[i].path, t[i].file) != NULL, "%s inside %s", t[i].file, t[i].path);
		cr_expect(strchr(t[i].package, '@') != NULL, "%s: pinned version", t[i].package);
		for (size_t j = 0; j < i; j++) {
			cr_expect_str_neq(t[i].file, t[j].file);
			cr_expect_str_neq(t[i].sha256, t[j].sha256);
		}
	}
	cr_expect_eq(t[0].kind, HK_MODEL_DETECTOR);
	cr_expect_eq(t[2].kind, HK_MODEL_LANDMARKS);
	cr_expect_eq(t[3].kind, HK_MODEL_EMBEDDER);
	cr_expect_eq(t[4].kind, HK_MODEL_EMBEDDER);
	cr_expect_eq(t[5].kind, HK_MODEL_AUTO); /* a shard, read through t[4] */
}

Test(models, directory_order_explicit_then_env_then_default)
{
	setenv("HERKEN_MODELS", "/from/env", 1);
	cr_expect_str_eq(hk_model_dir("/given"), "/given");
	cr_expect_str_eq(hk_model_dir(NULL), "/from/env");
	cr_expect_str_eq(hk_model_dir(""), "/from/env");
	unsetenv("HERKEN_MODELS");
	const char *d = hk_model_dir(NULL);
	/* No install under the default prefix on a build machine: the tree's
	 * cache; with one, <prefix>/share/herken/models. */
	cr_expect(!strcmp(d, ".cache/models") || strstr(d, "/share/herken/models"), "%s", d);
}

static int copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
	char buf[65536];
	size_t n;
	int rc = a && b ? 0 : -1;
	while (!rc && (n = fread(buf, 1, sizeof buf, a)) > 0)
		if (fwrite(buf, 1, n, b) != n)
			rc = -1;
	if (a)
		fclose(a);
	if (b && fclose(b))
		rc = -1;
	return rc;
}

/* The dense detector copied over the sparse one's name: the engine and a
 * direct hk_model_load refuse it with HK_E_FORMAT naming the file and both
 * digests. */
Test(models, swapped_model_is_refused_at_load)
{
	const char *src = hk_model_dir(NULL);
	size_t n = 0;
	const hk_model_file *t = hk_model_files(&n);
	char from[4200], to[4200];
	for (size_t i = 0; i < n; i++) {
		snprintf(from, sizeof from, "%s/%s", src, t[i].file);
		if (access(from, R_OK))
			cr_skip_test("models absent (make models)");
	}
	char dir[] = "/tmp/herken-models-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	for (size_t i = 0; i < n; i++) {
		/* row 0 (detector-sparse) gets row 1's (detector-dense) bytes */
		snprintf(from, sizeof from, "%s/%s", src, t[i == 0 ? 1 : i].file);
		snprintf(to, sizeof to, "%s/%s", dir, t[i].file);
		cr_assert_eq(copy_file(from, to), 0, "%s", to);
	}
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.model_dir = dir;
	hk_engine *e = NULL;
	hk_status s = hk_engine_create(&ep, &e);
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", hk_last_error());
	cr_expect_eq(s, HK_E_FORMAT, "engine: %d %s", s, msg);
	cr_expect_null(e);
	snprintf(to, sizeof to, "%s/%s", dir, t[0].file);
	cr_expect(strstr(msg, to) != NULL, "names the file: %s", msg);
	cr_expect(strstr(msg, t[0].sha256) != NULL, "names the pinned digest: %s", msg);
	cr_expect(strstr(msg, t[1].sha256) != NULL, "names the digest found: %s", msg);

	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.threads = 1;
	hk_model *m = NULL;
	cr_expect_eq(hk_model_load(to, &mp, &m), HK_E_FORMAT, "%s", hk_last_error());
	cr_expect_null(m);
	/* The same bytes under their own name load (and pass the check). */
	snprintf(to, sizeof to, "%s/%s", dir, t[1].file);
	cr_expect_eq(hk_model_load(to, &mp, &m), HK_OK, "%s", hk_last_error());
	hk_model_destroy(m);
	/* Under a name that is not pinned: loaded as the caller's own model. */
	snprintf(from, sizeof from, "%s/%s", dir, t[0].file);
	snprintf(to, sizeof to, "%s/custom-detector.tflite", dir);
	cr_assert_eq(rename(from, to), 0);
	m = NULL;
	cr_expect_eq(hk_model_load(to, &mp, &m), HK_OK, "%s", hk_last_error());
	hk_model_destroy(m);
	for (size_t i = 0; i < n; i++) {
		snprintf(to, sizeof to, "%s/%s", dir, t[i].file);
		unlink(to);
	}
	snprintf(to, sizeof to, "%s/custom-detector.tflite", dir);
	unlink(to);
	cr_expect_eq(rmdir(dir), 0);
}
