/* The herken CLI against a hostile tester (issue 11): every row is a
 * command with the exit code README promises and a phrase of the message.
 * Each row runs in a scratch directory that holds G (a gallery of three
 * subjects, dim 4), key (0600) and e.txt (one embedding). Output is checked
 * to be valid UTF-8 without raw control bytes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <limits.h>
#include <sys/wait.h>

#include "test_store_util.h"

static char dir[256], herken[PATH_MAX];

static void setup(void)
{
	st_tmpdir(dir, sizeof dir);
	const char *b = getenv("HERKEN_BUILD");
	char rel[512];
	snprintf(rel, sizeof rel, "%s/herken", b ? b : "build/release");
	if (!realpath(rel, herken)) /* the rows run in dir */
		snprintf(herken, sizeof herken, "%s", rel);
}

static void teardown(void) { st_rmrf(dir); }

TestSuite(cli_hostile, .init = setup, .fini = teardown);

/* Runs shell text in dir with H=herken; stdout+stderr into dir/out. A
 * command that blocks is killed by timeout(1) and reported as 124: the
 * rows that could block assert an exit code other than 124. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char body[4096], cmd[PATH_MAX + 4096 + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "cd %s && export H=%s && timeout 120 sh -c '%s' > out 2>&1 "
	         "</dev/null", dir, herken, body);
	int st = system(cmd);
	cr_assert(WIFEXITED(st), "%s", cmd);
	return WEXITSTATUS(st);
}

static char *out_text(size_t *n)
{
	char p[512];
	snprintf(p, sizeof p, "%s/out", dir);
	uint8_t *b = st_slurp(p, n);
	cr_assert_not_null(b);
	b = realloc(b, *n + 1);
	b[*n] = 0;
	return (char *)b;
}

/* Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF) and
 * no control byte other than newline. */
static int clean_utf8(const unsigned char *p, size_t n, size_t *bad)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		*bad = i;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		size_t k = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
		           : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (!k || i + k > n)
			return 0;
		unsigned cp = c & (0xff >> (k + 1));
		for (size_t j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		unsigned min = k == 2 ? 0x80 : k == 3 ? 0x800 : 0x10000;
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp < 0xa0))
			return 0;
		i += k;
	}
	return 1;
}

#define E "--key-file key --purpose desk --consent-version v1 --channel d " \
          "--expires +30d --dim 4 --embedding e.txt"

static void make_gallery(void)
{
	char p[512];
	snprintf(p, sizeof p, "%s/key", dir);
	uint8_t k[32];
	st_key(k, 9);
	cr_assert_eq(st_spit(p, k, 32), 0);
	snprintf(p, sizeof p, "%s/e.txt", dir);
	cr_assert_eq(st_spit(p, "1 0 0 0\n", 8), 0);
	cr_assert_eq(sh("for s in a b c; do $H enroll --gallery G --subject $s " E
	                " || exit 9; done"), 0);
}

typedef struct row {
	const char *what, *cmd; /* shell text; $H is herken */
	int exit;
	const char *needle;     /* in stdout+stderr, or NULL */
} row;

static void run_rows(const row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = sh("%s", rows[i].cmd);
		size_t len;
		char *o = out_text(&len);
		cr_expect_eq(rc, rows[i].exit, "%s: `%s` exit %d, want %d: %s",
		             rows[i].what, rows[i].cmd, rc, rows[i].exit, o);
		if (rows[i].needle)
			cr_expect(strstr(o, rows[i].needle), "%s: no '%s' in: %s",
			          rows[i].what, rows[i].needle, o);
		size_t bad = 0;
		cr_expect(clean_utf8((const unsigned char *)o, len, &bad),
		          "%s: raw control or invalid UTF-8 byte at %zu: %s",
		          rows[i].what, bad, o);
		free(o);
	}
}

/* Items 5, 6 (images), 7, 8, 9 of issue 11. */
Test(cli_hostile, exit_code_table)
{
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	make_gallery();
	static const row rows[] = {
	    /* 7: strict parsing */
	    {"typo in a privacy setting",
	     "$H info --gallery G --key-file key --inactivity-days thirty", 2,
	     "--inactivity-days 'thirty'"},
	    {"trailing junk in a number",
	     "$H info --gallery G --key-file key --inactivity-days 30x", 2, NULL},
	    {"negative days", "$H info --gallery G --key-file key --inactivity-days -1",
	     2, NULL},
	    {"--dim not a number", "$H enroll --gallery N --subject z --dim 4x "
	     "--key-file key --purpose p --consent-version v --channel c "
	     "--expires +1d --embedding e.txt", 2, "--dim"},
	    {"--k not a number", "$H identify --gallery G --key-file key --k 3q "
	     "--embedding e.txt", 2, NULL},
	    {"empty subject id", "$H enroll --gallery G --subject \"\" " E, 2,
	     "is empty"},
	    {"10 kB subject id",
	     "$H enroll --gallery G --subject $(head -c 10000 /dev/zero | tr "
	     "\"\\\\0\" x) " E, 2, "longer than 255 bytes"},
	    {"ESC in a subject id",
	     "$H erase --gallery G --key-file key --subject \"$(printf "
	     "\"a\\\\033b\")\"", 2, "a\\x1bb' holds a control character"},
	    {"newline in a subject id",
	     "$H export --gallery G --key-file key --subject \"$(printf "
	     "\"a\\\\nb\")\"", 2, "control character"},
	    {"non-UTF-8 subject id",
	     "$H verify --gallery G --key-file key --embedding e.txt --subject "
	     "\"$(printf \"caf\\\\351\")\"", 2, "not valid UTF-8"},
	    /* 8: JSON is valid UTF-8, text output escapes control bytes */
	    {"invalid bytes in a JSON string",
	     "$H models --json --models \"$(printf \"m\\\\377\\\\033d\")\"", 3,
	     "\"dir\":\"m\\ufffd\\u001bd\""},
	    {"ESC in text output",
	     "$H models --models \"$(printf \"m\\\\033d\")\"", 3,
	     "model directory: m\\x1bd"},
	    {"ESC in an error message",
	     "$H detect x.jpg --models \"$(printf \"m\\\\033d\")\"", 3,
	     "model file m\\x1bd/"},
	    /* 6: images must be regular files, sized before reading */
	    {"a FIFO as a probe", "mkfifo ff && $H verify --gallery G --key-file key "
	     "--subject a --embedding ff", 3, "not a regular file"},
	    /* 5: key hygiene */
	    {"world-readable key file", "chmod 644 key && $H info --gallery G "
	     "--key-file key; r=$?; chmod 600 key; exit $r", 3, "mode 0644"},
	    {"all-zero key", "head -c 32 /dev/zero > zk && chmod 600 zk && "
	     "$H info --gallery G --key-file zk", 3, "all zeros"},
	    {"all-zero key in the environment",
	     "HERKEN_MASTER_KEY=$(head -c 32 /dev/zero | od -An -v -tx1 | tr -d "
	     "\"\\\\n \") $H info --gallery G", 3, "all zeros"},
	    {"key file is a symlink", "ln -s key kl && $H info --gallery G "
	     "--key-file kl", 3, "symbolic link"},
	    /* 9: consistent exit codes */
	    {"refused by consent", "$H enroll --gallery G --subject d --key-file key "
	     "--purpose p --consent-version v --channel c --expires 2001-01-01 "
	     "--embedding e.txt", 5, NULL},
	    {"unknown subject", "$H erase --gallery G --key-file key --subject zz", 1,
	     NULL},
	};
	run_rows(rows, sizeof rows / sizeof rows[0]);
}

/* 9: a second process on a busy gallery is exit 6, not "internal error". */
Test(cli_hostile, busy_gallery)
{
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	make_gallery();
	char g[512];
	snprintf(g, sizeof g, "%s/G", dir);
	uint8_t k[32];
	st_key(k, 9);
	hk_store_params p;
	st_params(&p, k, 4, NULL);
	p.flags = 0;
	hk_store *st = NULL;
	cr_assert_eq(hk_store_open(g, &p, &st), HK_OK, "%s", hk_last_error());
	int rc = sh("$H info --gallery G --key-file key");
	size_t n;
	char *o = out_text(&n);
	cr_expect_eq(rc, 6, "exit %d: %s", rc, o);
	cr_expect(strstr(o, "open in another process"), "%s", o);
	free(o);
	hk_store_close(st);
	cr_expect_eq(sh("$H info --gallery G --key-file key"), 0);
}

/* 6: a FIFO, device or directory as an image is refused without blocking
 * and without reading (main read /dev/zero up to 2 GB, then said "limit"). */
Test(cli_hostile, images_are_regular_files)
{
	char f[512];
	snprintf(f, sizeof f, "%s/fifo", dir);
	cr_assert_eq(mkfifo(f, 0600), 0);
	hk_image img;
	cr_expect_eq(hk_image_load(f, &img), HK_E_IO); /* no writer: no block */
	cr_expect(strstr(hk_last_error(), "not a regular file"), "%s",
	          hk_last_error());
	cr_expect_eq(hk_image_load("/dev/zero", &img), HK_E_IO);
	cr_expect(strstr(hk_last_error(), "not a regular file"), "%s",
	          hk_last_error());
	cr_expect_eq(hk_image_load(dir, &img), HK_E_IO);
	hk_model_params mp;
	hk_model_default_params(&mp);
	hk_model *m = NULL;
	cr_expect_eq(hk_model_load(f, &mp, &m), HK_E_IO);
	cr_expect_null(m);
	cr_expect_eq(hk_model_load("/dev/zero", &mp, &m), HK_E_IO);
}
