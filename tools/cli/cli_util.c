/* Helpers shared by the CLI's command files: output escaping, strict
 * parsing of numbers and subject ids, process hardening. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli.h"
#include "herken.h"

/* C1 control characters U+0080..U+009F are encoded c2 80..c2 9f. */
static int is_c1(const unsigned char *p, size_t n)
{
	return n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = hk_utf8_len((const char *)p);
		if (!n) {
			fputs("\\ufffd", f); /* one U+FFFD per invalid byte */
			p++;
		} else if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (is_c1(p, n)) {
			fprintf(f, "\\u%04x", p[1]);
			p += 2;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

/* A ring of buffers so that several esc() results can appear in one
 * printf; the CLI is single-threaded. */
#define ESC_RING 8
#define ESC_MAX 8192

const char *esc(const char *s)
{
	static char ring[ESC_RING][ESC_MAX];
	static unsigned next;
	if (!s)
		return "(null)";
	char *out = ring[next++ % ESC_RING];
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		if (o + 8 >= ESC_MAX) {
			memcpy(out + o, "...", 4);
			return out;
		}
		size_t n = hk_utf8_len((const char *)p);
		if (!n || *p < 0x20 || *p == 0x7f || is_c1(p, n)) {
			size_t k = n ? n : 1;
			for (size_t i = 0; i < k; i++)
				o += (size_t)snprintf(out + o, ESC_MAX - o, "\\x%02x", p[i]);
			p += k;
		} else if (*p == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
			p++;
		} else {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		}
	}
	out[o] = 0;
	return out;
}

int cli_long(const char *s, long lo, long hi, long *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int cli_double(const char *s, double lo, double hi, double *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

const char *cli_subject_problem(const char *s)
{
	if (!s || !*s)
		return "is empty";
	size_t len = strlen(s);
	if (len > HK_SUBJECT_MAX)
		return "is longer than 255 bytes";
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = hk_utf8_len((const char *)p);
		if (!n)
			return "is not valid UTF-8";
		if (*p < 0x20 || *p == 0x7f || is_c1(p, n))
			return "holds a control character";
		p += n;
	}
	return NULL;
}

void cli_undumpable(void)
{
	/* No core dump and no ptrace attach by other processes of the same
	 * user while a key is in memory. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

const char *cli_model_file(const char *role)
{
	size_t n = 0;
	const hk_model_file *t = hk_model_files(&n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].role, role))
			return t[i].file;
	return "";
}
