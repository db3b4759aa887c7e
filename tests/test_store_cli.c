/* The herken CLI's durable-gallery commands, run as a user would: exit
 * codes, JSON output, key handling, refusals, tamper detection. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdarg.h>
#include <sys/wait.h>

#include "test_store_util.h"

static char dir[256], herken[512], out[512];

static void setup(void)
{
	st_tmpdir(dir, sizeof dir);
	const char *b = getenv("HERKEN_BUILD");
	snprintf(herken, sizeof herken, "%s/herken", b ? b : "build/release");
	snprintf(out, sizeof out, "%s/out.txt", dir);
}

static void teardown(void) { st_rmrf(dir); }

TestSuite(store_cli, .init = setup, .fini = teardown);

/* Run `herken ARGS` with the key file; stdout+stderr into out; exit code. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "%s %s > %s 2>&1", herken, args, out);
	int st = system(cmd);
	cr_assert(WIFEXITED(st), "%s", cmd);
	return WEXITSTATUS(st);
}

static char *output(void)
{
	size_t n;
	uint8_t *b = st_slurp(out, &n);
	cr_assert_not_null(b);
	b = realloc(b, n + 1);
	b[n] = 0;
	return (char *)b;
}

#define ENROL "enroll --gallery %s/g --key-file %s/key --purpose desk " \
              "--consent-version v2 --channel desk-1 --dim 4 "

Test(store_cli, enrol_erase_export_audit)
{
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	char p[512];
	snprintf(p, sizeof p, "%s/key", dir);
	st_spit(p, "000102030405060708090a0b0c0d0e0f"
	           "101112131415161718191a1b1c1d1e1f\n", 65);
	snprintf(p, sizeof p, "%s/a.txt", dir);
	st_spit(p, "0.1 0.2 0.3 0.4\n0.2 0.1 0.4 0.3\n", 32);
	float raw[4] = {0.5f, -0.5f, 0.25f, 1.0f};
	snprintf(p, sizeof p, "%s/b.f32", dir);
	st_spit(p, raw, sizeof raw);

	cr_assert_eq(run(ENROL "--subject alice --expires +30d --embedding %s/a.txt"
	                 " --json", dir, dir, dir), 0, "%s", output());
	char *o = output();
	cr_assert(strstr(o, "\"templates_added\": 2"), "%s", o);
	free(o);
	cr_assert_eq(run(ENROL "--subject bob --expires 2099-01-01 --embedding "
	                 "%s/b.f32", dir, dir, dir), 0);
	/* refusals: no expiry (consent), stream source (policy) */
	cr_assert_eq(run(ENROL "--subject carol --embedding %s/b.f32", dir, dir,
	                 dir), 5);
	cr_assert_eq(run(ENROL "--subject carol --expires +1d --source stream "
	                 "--embedding %s/b.f32", dir, dir, dir), 5);
	o = output();
	cr_assert(strstr(o, "stream"), "%s", o);
	free(o);
	/* usage errors and a dimension mismatch in the probe file */
	cr_assert_eq(run(ENROL "--subject x --expires +1d", dir, dir), 2);
	cr_assert_eq(run(ENROL "--subject x --expires tomorrow --embedding "
	                 "%s/b.f32", dir, dir, dir), 2);
	snprintf(p, sizeof p, "%s/c.txt", dir);
	st_spit(p, "1 2 3\n", 6);
	cr_assert_eq(run(ENROL "--subject x --expires +1d --embedding %s/c.txt",
	                 dir, dir, dir), 3);

	cr_assert_eq(run("export --gallery %s/g --key-file %s/key --subject alice",
	                 dir, dir), 0);
	o = output();
	cr_assert(strstr(o, "\"consent_version\": \"v2\""), "%s", o);
	cr_assert(strstr(o, "\"templates\": 2"), "%s", o);
	free(o);

	cr_assert_eq(run("erase --gallery %s/g --key-file %s/key --subject alice "
	                 "--json", dir, dir), 0);
	o = output();
	char *d = strstr(o, "\"digest\": \"");
	cr_assert(d && strlen(d) > 11 + 64, "%s", o);
	free(o);
	cr_assert_eq(run("erase --gallery %s/g --key-file %s/key --subject alice",
	                 dir, dir), 1);
	cr_assert_eq(run("compact --gallery %s/g --key-file %s/key --json", dir,
	                 dir), 0);
	o = output();
	cr_assert(strstr(o, "\"subjects\": 1"), "%s", o);
	free(o);

	cr_assert_eq(run("audit verify --gallery %s/g --key-file %s/key", dir,
	                 dir), 0);
	o = output();
	cr_assert(strstr(o, "intact"), "%s", o);
	free(o);
	/* edit one byte of the first audit entry */
	snprintf(p, sizeof p, "%s/g/audit.hk", dir);
	size_t n;
	uint8_t *a = st_slurp(p, &n);
	cr_assert(a && n > 64 + 128);
	a[64 + 40] ^= 1;
	st_spit(p, a, n);
	free(a);
	cr_assert_eq(run("audit verify --gallery %s/g --key-file %s/key --json",
	                 dir, dir), 3);
	o = output();
	cr_assert(strstr(o, "\"intact\": false"), "%s", o);
	cr_assert(strstr(o, "\"first_bad_entry\": 0"), "%s", o);
	free(o);
}

Test(store_cli, keys)
{
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	char p[512];
	snprintf(p, sizeof p, "%s/key", dir);
	uint8_t k[32];
	st_key(k, 3);
	st_spit(p, k, 32); /* raw 32-byte key file */
	snprintf(p, sizeof p, "%s/b.txt", dir);
	st_spit(p, "1 0 0 0", 7);
	cr_assert_eq(run(ENROL "--subject bob --expires +1d --embedding %s/b.txt",
	                 dir, dir, dir), 0, "%s", output());
	/* same key in hex through the environment */
	char hexk[65];
	for (int i = 0; i < 32; i++)
		snprintf(hexk + 2 * i, 3, "%02x", k[i]);
	cr_assert_eq(run("info --gallery %s/g", dir), 2); /* no key at all */
	setenv("HERKEN_MASTER_KEY", hexk, 1);
	cr_assert_eq(run("info --gallery %s/g --json", dir), 0);
	char *o = output();
	cr_assert(strstr(o, "\"templates\": 1"), "%s", o);
	free(o);
	hexk[0] = hexk[0] == 'f' ? '0' : 'f';
	setenv("HERKEN_MASTER_KEY", hexk, 1);
	cr_assert_eq(run("info --gallery %s/g", dir), 3);
	o = output();
	cr_assert(strstr(o, "wrong master key"), "%s", o);
	free(o);
	setenv("HERKEN_MASTER_KEY", "abc", 1);
	cr_assert_eq(run("info --gallery %s/g", dir), 2);
	unsetenv("HERKEN_MASTER_KEY");
	/* --help for every command */
	const char *cmds[] = {"enroll", "erase", "export", "audit", "compact",
	                      "info"};
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(run("%s --help", cmds[i]), 0, "%s", cmds[i]);
		o = output();
		cr_assert(strstr(o, "usage: herken"), "%s", o);
		free(o);
	}
}

/* Enrolment and 1:1 from photos through the face pipeline: the customer of
 * sample1.jpg (its largest face) matches itself and not sample6's. */
Test(store_cli, photos_through_the_pipeline)
{
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	const char *sh = getenv("HERKEN_SHARED");
	const char *models = getenv("HERKEN_MODELS");
	char m[512], a[512], b[512], p[600];
	snprintf(m, sizeof m, "%s", models ? models : ".cache/models");
	snprintf(a, sizeof a, "%s/golden/images/sample1.jpg", sh ? sh : "../shared");
	snprintf(b, sizeof b, "%s/golden/images/sample6.jpg", sh ? sh : "../shared");
	snprintf(p, sizeof p, "%s/MobileFaceNet.tflite", m);
	if (access(a, R_OK) || access(b, R_OK) || access(p, R_OK))
		cr_skip_test("golden photos or models absent");
	snprintf(p, sizeof p, "%s/key", dir);
	st_spit(p, "000102030405060708090a0b0c0d0e0f"
	           "101112131415161718191a1b1c1d1e1f\n", 65);
	setenv("HERKEN_MODELS", m, 1);
	cr_assert_eq(run("enroll --gallery %s/g --key-file %s/key --purpose desk "
	                 "--consent-version v2 --channel desk-1 --expires +1y "
	                 "--subject c1 --json %s", dir, dir, a), 0, "%s", output());
	char *o = output();
	cr_expect(strstr(o, "\"templates_added\": 1") != NULL, "%s", o);
	free(o);
	cr_assert_eq(run("verify --gallery %s/g --key-file %s/key --subject c1 "
	                 "--json %s", dir, dir, a), 0, "%s", output());
	o = output();
	const char *sc = strstr(o, "\"score\": ");
	cr_assert_not_null(sc, "%s", o);
	cr_expect_gt(strtod(sc + 9, NULL), 0.99, "%s", o);
	free(o);
	cr_expect_eq(run("verify --gallery %s/g --key-file %s/key --subject c1 %s",
	                 dir, dir, b), 1, "%s", output());
	/* a photo is never stored: no JPEG marker in any gallery file */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -rlaF JFIF %s/g > /dev/null", dir);
	cr_expect_neq(WEXITSTATUS(system(cmd)), 0, "JPEG bytes found in the gallery");
}
