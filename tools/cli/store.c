/* herken CLI: the durable gallery — enroll, erase, export, audit, compact,
 * info, and verify / identify against a gallery directory. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "herken.h"

/* Routed to by `herken verify|identify --gallery G` (see cli.h). */
int hk_cli_store_verify(int argc, char **argv);
int hk_cli_store_identify(int argc, char **argv);

#define MAX_EMB_FILES 64

static void print_op(const struct hk_store_info *i, int json);

typedef struct opts {
	const char *gallery, *subject, *purpose, *version, *channel, *expires,
	    *consent_time, *source, *key_file, *threshold, *k, *dim,
	    *allow_identify, *inactivity_days, *fmr, *fpir;
	const char *emb[MAX_EMB_FILES];
	int n_emb;
	int json, help, compact;
	int explained; /* a usage error already printed its own message */
	char **pos; /* positional arguments */
	int n_pos;
} opts;

static const struct {
	const char *name;
	size_t off;
} optvals[] = {
#define O(n, f) {n, offsetof(opts, f)}
	O("--gallery", gallery), O("--subject", subject),
	O("--purpose", purpose), O("--consent-version", version),
	O("--channel", channel), O("--expires", expires),
	O("--consent-time", consent_time), O("--source", source),
	O("--key-file", key_file), O("--threshold", threshold), O("--k", k),
	O("--dim", dim), O("--allow-identify", allow_identify),
	O("--inactivity-days", inactivity_days),
	O("--fmr", fmr), O("--fpir", fpir),
#undef O
};

/* Returns 0, or prints the problem and returns HK_EXIT_USAGE. */
static int parse(int argc, char **argv, opts *o)
{
	memset(o, 0, sizeof *o);
	o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
	if (!o->pos)
		return HK_EXIT_INTERNAL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!strcmp(a, "--compact")) {
			o->compact = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = 1;
			continue;
		}
		if (!strcmp(a, "--embedding")) {
			if (i + 1 >= argc || o->n_emb == MAX_EMB_FILES) {
				fprintf(stderr, "herken %s: --embedding needs a file\n",
				        argv[0]);
				return HK_EXIT_USAGE;
			}
			o->emb[o->n_emb++] = argv[++i];
			continue;
		}
		size_t j;
		for (j = 0; j < sizeof optvals / sizeof optvals[0]; j++)
			if (!strcmp(a, optvals[j].name))
				break;
		if (j < sizeof optvals / sizeof optvals[0]) {
			if (i + 1 >= argc) {
				fprintf(stderr, "herken %s: %s needs a value\n", argv[0], a);
				return HK_EXIT_USAGE;
			}
			*(const char **)((char *)o + optvals[j].off) = argv[++i];
			continue;
		}
		if (a[0] == '-' && a[1]) {
			fprintf(stderr, "herken %s: unknown option %s (see --help)\n",
			        argv[0], esc(a));
			return HK_EXIT_USAGE;
		}
		o->pos[o->n_pos++] = argv[i];
	}
	const char *why = o->subject ? cli_subject_problem(o->subject) : NULL;
	if (why) {
		fprintf(stderr, "herken %s: --subject '%s' %s\n", argv[0],
		        esc(o->subject), why);
		o->explained = 1;
		return HK_EXIT_USAGE;
	}
	return 0;
}

/* --help on stdout; after a usage error the help goes to stderr unless the
 * error was explained on its own. */
static void help_out(const opts *o, const char *help, int rc)
{
	if (!rc)
		fputs(help, stdout);
	else if (!o->explained)
		fputs(help, stderr);
}

static int exit_of(hk_status s)
{
	switch (HK_STATUS_PRIMARY(s)) {
	case HK_OK: return HK_EXIT_OK;
	case HK_E_NOT_FOUND: return HK_EXIT_NOMATCH;
	case HK_E_INVALID: return HK_EXIT_USAGE;
	case HK_E_IO: case HK_E_FORMAT: case HK_E_DIM: case HK_E_RANGE:
	case HK_E_CRYPTO: case HK_E_UNSUPPORTED: case HK_E_EXISTS:
		return HK_EXIT_INPUT;
	case HK_E_CONSENT: case HK_E_POLICY: return HK_EXIT_REFUSED;
	case HK_E_BUSY: return HK_EXIT_BUSY;
	default: return HK_EXIT_INTERNAL;
	}
}

static int fail(const char *cmd, hk_status s)
{
	fprintf(stderr, "herken %s: %s (%s)\n", cmd, esc(hk_last_error()),
	        hk_status_str(s));
	return exit_of(s);
}


static void hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; i < slen; i++) {
		if (isspace((unsigned char)s[i]))
			continue;
		int v = isdigit((unsigned char)s[i]) ? s[i] - '0'
		        : isxdigit((unsigned char)s[i])
		            ? tolower((unsigned char)s[i]) - 'a' + 10
		            : -1;
		if (v < 0 || j >= 2 * n)
			return -1;
		if (j % 2 == 0)
			out[j / 2] = (uint8_t)(v << 4);
		else
			out[j / 2] |= (uint8_t)v;
		j++;
	}
	return j == 2 * n ? 0 : -1;
}

/* The master key: --key-file (32 raw bytes or 64 hex digits; a regular
 * file readable by its owner only) or HERKEN_MASTER_KEY (64 hex digits;
 * wiped and removed from the environment once read). The process is made
 * undumpable first; every copy is wiped with sodium_memzero. An all-zero
 * key is refused. */
static int load_key(const char *cmd, const opts *o, uint8_t key[32])
{
	cli_undumpable();
	if (o->key_file) {
		int fd = open(o->key_file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		                               O_NOCTTY | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb)) {
			fprintf(stderr, "herken %s: key file %s: %s\n", cmd,
			        esc(o->key_file), errno == ELOOP ? "is a symbolic link"
			                                        : strerror(errno));
			if (fd >= 0)
				close(fd);
			return HK_EXIT_INPUT;
		}
		if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077)) {
			close(fd);
			if (!S_ISREG(sb.st_mode))
				fprintf(stderr, "herken %s: key file %s is not a regular "
				        "file\n", cmd, esc(o->key_file));
			else
				fprintf(stderr, "herken %s: key file %s is readable or "
				        "writable by group or others (mode %04o): refused; "
				        "chmod 600 it\n", cmd, esc(o->key_file),
				        (unsigned)(sb.st_mode & 07777));
			return HK_EXIT_INPUT;
		}
		char buf[256];
		ssize_t n = sb.st_size <= (off_t)sizeof buf
		                ? read(fd, buf, sizeof buf) : -1;
		close(fd);
		int bad = n == 32 ? (memcpy(key, buf, 32), 0)
		          : n > 0 ? unhex(buf, (size_t)n, key, 32) : -1;
		sodium_memzero(buf, sizeof buf);
		if (bad) {
			sodium_memzero(key, 32);
			fprintf(stderr, "herken %s: key file %s must hold 32 bytes or 64 "
			        "hex digits\n", cmd, esc(o->key_file));
			return HK_EXIT_INPUT;
		}
	} else {
		char *e = getenv("HERKEN_MASTER_KEY");
		if (!e || !*e) {
			fprintf(stderr, "herken %s: no master key: pass --key-file FILE "
			        "or set HERKEN_MASTER_KEY (64 hex digits); a gallery is "
			        "always encrypted\n", cmd);
			return HK_EXIT_USAGE;
		}
		int bad = unhex(e, strlen(e), key, 32);
		sodium_memzero(e, strlen(e));
		unsetenv("HERKEN_MASTER_KEY");
		if (bad) {
			sodium_memzero(key, 32);
			fprintf(stderr, "herken %s: HERKEN_MASTER_KEY must be 64 hex "
			        "digits\n", cmd);
			return HK_EXIT_USAGE;
		}
	}
	if (sodium_is_zero(key, 32)) {
		fprintf(stderr, "herken %s: the master key is all zeros: refused "
		        "(generate one, e.g. head -c 32 /dev/urandom > key)\n", cmd);
		return HK_EXIT_INPUT;
	}
	return 0;
}

/* "2027-01-31", "2027-01-31T12:00:00Z", "@1767225600", "+365d", "+2y". */
static int parse_time(const char *s, int64_t now, int64_t *out)
{
	char *end;
	if (s[0] == '@') {
		long long v = strtoll(s + 1, &end, 10);
		if (end == s + 1 || *end)
			return -1;
		*out = v;
		return 0;
	}
	if (s[0] == '+') {
		long long v = strtoll(s + 1, &end, 10);
		if (end == s + 1 || v < 0 || v > 100000)
			return -1;
		int64_t unit = !strcmp(end, "d") ? 86400 : !strcmp(end, "y") ? 31536000
		               : !strcmp(end, "h") ? 3600 : 0;
		if (!unit)
			return -1;
		*out = now + (int64_t)v * unit;
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *r = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!r || *r) {
		memset(&tm, 0, sizeof tm);
		r = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!r || *r)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static void iso(char *b, size_t n, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(b, n, "%lld", (long long)t);
}

/*
 * Embeddings from a file: raw little-endian float32 (a multiple of dim
 * values) or text (numbers separated by spaces, commas or newlines).
 * Appends to *v (n templates so far).
 */
/*
 * Append the embedding of the subject of each photo to *v (the usable
 * face hk_cli_subject_embed picks, through the recogniser; models from hk_model_dir(): an
 * explicit --models, $HERKEN_MODELS, installed, or .cache/models). The
 * photo and its face crop stay in RAM and are wiped.
 */
static int embed_photos(const char *cmd, char **paths, int np, uint32_t dim,
                        float **v, size_t *n)
{
	if (dim != HK_EMBED_DIM) {
		fprintf(stderr, "herken %s: photos give %d-d embeddings, the gallery "
		        "holds %u-d ones\n", cmd, HK_EMBED_DIM, dim);
		return HK_EXIT_INPUT;
	}
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	hk_engine *e = NULL;
	if (hk_engine_create(&ep, &e)) {
		fprintf(stderr, "herken %s: %s\n", cmd, esc(hk_last_error()));
		return HK_EXIT_INPUT;
	}
	int rc = 0;
	for (int i = 0; i < np && !rc; i++) {
		hk_image img = {0};
		hk_face face;
		float *nv = realloc(*v, (*n + 1) * HK_EMBED_DIM * sizeof(float));
		if (!nv) {
			rc = HK_EXIT_INTERNAL;
			break;
		}
		*v = nv;
		char why[1024] = "";
		hk_status st = hk_image_load(paths[i], &img);
		if (!st)
			st = hk_cli_subject_embed(e, &img, &face, nv + *n * HK_EMBED_DIM, why, sizeof why);
		if (st) {
			fprintf(stderr, "herken %s: %s: %s\n", cmd, esc(paths[i]),
			        esc(why[0] ? why : hk_last_error()));
			rc = HK_EXIT_INPUT;
		} else {
			(*n)++;
		}
		hk_image_free(&img);
	}
	hk_engine_destroy(e);
	return rc;
}

static int read_embeddings(const char *cmd, const char *path, uint32_t dim,
                           float **v, size_t *n)
{
	/* a regular file only (a FIFO would block), sized by fstat */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb)) {
		fprintf(stderr, "herken %s: %s: %s\n", cmd, esc(path), strerror(errno));
		if (fd >= 0)
			close(fd);
		return HK_EXIT_INPUT;
	}
	long len = (long)sb.st_size;
	if (!S_ISREG(sb.st_mode) || len <= 0 || len > (64l << 20)) {
		close(fd);
		fprintf(stderr, "herken %s: %s: %s\n", cmd, esc(path),
		        S_ISREG(sb.st_mode) ? "empty or larger than 64 MiB"
		                            : "not a regular file");
		return HK_EXIT_INPUT;
	}
	char *b = malloc((size_t)len + 1);
	size_t got = 0;
	while (b && got < (size_t)len) {
		ssize_t r = read(fd, b + got, (size_t)len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)len) {
		free(b);
		fprintf(stderr, "herken %s: %s: read failed\n", cmd, esc(path));
		return HK_EXIT_INPUT;
	}
	b[len] = 0;
	int text = 1;
	for (long i = 0; i < len && text; i++) {
		unsigned char c = (unsigned char)b[i];
		text = isdigit(c) || isspace(c) || strchr("+-.,eEinfaINFA", c);
	}
	size_t cnt = 0;
	float *vals = NULL;
	if (text) {
		size_t cap = 0;
		char *p = b;
		for (;;) {
			while (*p && (isspace((unsigned char)*p) || *p == ','))
				p++;
			if (!*p)
				break;
			char *end;
			float x = strtof(p, &end);
			if (end == p) {
				fprintf(stderr, "herken %s: %s: not a number at byte %ld\n",
				        cmd, esc(path), (long)(p - b));
				free(vals);
				free(b);
				return HK_EXIT_INPUT;
			}
			if (cnt == cap) {
				cap = cap ? 2 * cap : 256;
				float *nv = realloc(vals, cap * sizeof *nv);
				if (!nv) {
					free(vals);
					free(b);
					return HK_EXIT_INTERNAL;
				}
				vals = nv;
			}
			vals[cnt++] = x;
			p = end;
		}
	} else {
		if (len % 4) {
			free(b);
			fprintf(stderr, "herken %s: %s: %ld bytes is not a whole number "
			        "of float32 values\n", cmd, esc(path), len);
			return HK_EXIT_INPUT;
		}
		cnt = (size_t)len / 4;
		vals = malloc(cnt * sizeof *vals);
		if (vals)
			memcpy(vals, b, cnt * sizeof *vals);
	}
	free(b);
	if (!vals || cnt == 0 || cnt % dim) {
		free(vals);
		fprintf(stderr, "herken %s: %s: %zu values, not a multiple of the "
		        "gallery dimension %u\n", cmd, esc(path), cnt, dim);
		return HK_EXIT_INPUT;
	}
	float *all = realloc(*v, (*n * dim + cnt) * sizeof *all);
	if (!all) {
		free(vals);
		return HK_EXIT_INTERNAL;
	}
	memcpy(all + *n * dim, vals, cnt * sizeof *vals);
	free(vals);
	*v = all;
	*n += cnt / dim;
	return 0;
}

static int parse_source(const char *cmd, const char *s, uint32_t *out)
{
	if (!s || !strcmp(s, "desk"))
		*out = HK_SOURCE_DESK;
	else if (!strcmp(s, "file"))
		*out = HK_SOURCE_FILE;
	else if (!strcmp(s, "stream"))
		*out = HK_SOURCE_STREAM;
	else {
		fprintf(stderr, "herken %s: --source is desk, file or stream\n", cmd);
		return HK_EXIT_USAGE;
	}
	return 0;
}

static int parse_yesno(const char *cmd, const char *s, uint32_t *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0"))
		*out = 0;
	else {
		fprintf(stderr, "herken %s: expected yes or no, got '%s'\n", cmd,
		        esc(s));
		return HK_EXIT_USAGE;
	}
	return 0;
}

/* Open o->gallery; create it when allowed and absent. */
static int open_gallery(const char *cmd, const opts *o, int create,
                        hk_store **st)
{
	if (!o->gallery) {
		fprintf(stderr, "herken %s: --gallery DIR is required\n", cmd);
		return HK_EXIT_USAGE;
	}
	long dim = 0;
	double days = 0;
	if (o->dim && cli_long(o->dim, 1, 65536, &dim)) {
		fprintf(stderr, "herken %s: --dim '%s' is not a whole number in "
		        "1..65536\n", cmd, esc(o->dim));
		return HK_EXIT_USAGE;
	}
	if (o->inactivity_days &&
	    cli_double(o->inactivity_days, 0, 36500, &days)) {
		fprintf(stderr, "herken %s: --inactivity-days '%s' is not a number "
		        "of days in 0..36500 (0: no limit)\n", cmd,
		        esc(o->inactivity_days));
		return HK_EXIT_USAGE;
	}
	uint32_t allow = 0;
	int rc;
	if (o->allow_identify &&
	    (rc = parse_yesno(cmd, o->allow_identify, &allow)))
		return rc;
	uint8_t key[32];
	if ((rc = load_key(cmd, o, key)))
		return rc;
	hk_store_params p;
	hk_store_default_params(&p);
	p.master_key = key;
	if (create) {
		p.flags = HK_STORE_CREATE;
		char kp[4096];
		snprintf(kp, sizeof kp, "%s/keys.hk", o->gallery);
		int exists = access(kp, F_OK) == 0;
		p.dim = o->dim ? (uint32_t)dim : exists ? 0 : 192;
		p.policy.allow_identify = allow;
		p.policy.inactivity_limit_s = (int64_t)(days * 86400);
	} else if (o->dim) {
		p.dim = (uint32_t)dim;
	}
	hk_status s = hk_store_open(o->gallery, &p, st);
	sodium_memzero(key, sizeof key);
	if (s)
		return fail(cmd, s);
	return 0;
}

static int close_gallery(const char *cmd, hk_store *st, int rc)
{
	hk_status s = hk_store_close(st);
	if (s && !rc)
		return fail(cmd, s);
	return rc;
}

static int finish(opts *o, int rc)
{
	free(o->pos);
	return rc;
}

/* A command's end: the gallery closed (its error reported when the command
 * had none), the options freed. Returns the exit code. */
static int end(const char *cmd, opts *o, hk_store *st, int rc)
{
	return finish(o, close_gallery(cmd, st, rc));
}

static int has_subject(const opts *o)
{
	return o->subject != NULL;
}

/* A command's start: parse the options; --help, or a usage error (the
 * options, or args_ok(o) false when given), prints the help; then, when st
 * is not NULL, the gallery is opened (argv[0] names the command). Returns
 * 0 to go on (*rc = 0), else 1 with the exit code in *rc and the options
 * freed. */
static int begin(int argc, char **argv, const char *help, int (*args_ok)(const opts *o),
                 opts *o, hk_store **st, int *rc)
{
	*rc = parse(argc, argv, o);
	if (!*rc && !o->help && args_ok && !args_ok(o))
		*rc = HK_EXIT_USAGE;
	if (*rc || o->help) {
		help_out(o, help, *rc);
		*rc = finish(o, *rc);
		return 1;
	}
	if (st && (*rc = open_gallery(argv[0], o, 0, st)))
		*rc = finish(o, *rc);
	return *rc != 0;
}

/* ---- enroll -------------------------------------------------------- */

static const char enroll_help[] =
    "usage: herken enroll --gallery DIR --subject ID --purpose TEXT\n"
    "         --consent-version V --channel WHERE --expires WHEN\n"
    "         (PHOTO... | --embedding FILE ...) [options]\n\n"
    "Enrol a consenting subject. No consent record, no template.\n"
    "  PHOTO                the subject of each photo is enrolled: the face\n"
    "                       `herken detect` marks (the largest usable one, or\n"
    "                       the most central of similar size); the photo\n"
    "                       itself is never stored\n"
    "  --embedding FILE     raw float32 or text embeddings (repeatable; one\n"
    "                       file may hold several templates)\n"
    "  --expires WHEN       consent expiry: 2027-06-30, 2027-06-30T12:00:00Z,\n"
    "                       @UNIX, +365d, +2y\n"
    "  --consent-time WHEN  when consent was given (default: now)\n"
    "  --source desk|file   how the templates were captured (stream: refused)\n"
    "  --key-file FILE      master key (32 bytes or 64 hex digits); else\n"
    "                       HERKEN_MASTER_KEY (64 hex digits)\n"
    "  --dim N              dimension when creating the gallery (192)\n"
    "  --allow-identify yes|no, --inactivity-days N   policy at creation\n"
    "  --json               machine-readable output\n"
    "Exit: 0 enrolled, 2 usage, 3 bad input or key, 5 refused (consent).\n";

int hk_cli_enroll(int argc, char **argv)
{
	opts o;
	int rc;
	if (begin(argc, argv, enroll_help, NULL, &o, NULL, &rc))
		return rc;
	if (!o.subject || !(o.n_emb || o.n_pos)) {
		fprintf(stderr, "herken enroll: --subject and a PHOTO or --embedding "
		        "are required\n%s", enroll_help);
		return finish(&o, HK_EXIT_USAGE);
	}
	int64_t now = (int64_t)time(NULL), expires = 0, ctime = now;
	if (o.expires && parse_time(o.expires, now, &expires)) {
		fprintf(stderr, "herken enroll: cannot read --expires '%s'\n",
		        esc(o.expires));
		return finish(&o, HK_EXIT_USAGE);
	}
	if (o.consent_time && parse_time(o.consent_time, now, &ctime)) {
		fprintf(stderr, "herken enroll: cannot read --consent-time '%s'\n",
		        esc(o.consent_time));
		return finish(&o, HK_EXIT_USAGE);
	}
	hk_consent c = {.subject = o.subject, .purpose = o.purpose,
	                .consent_version = o.version, .channel = o.channel,
	                .time = ctime, .expires = expires};
	if ((rc = parse_source("enroll", o.source, &c.source)))
		return finish(&o, rc);
	hk_store *st;
	if ((rc = open_gallery("enroll", &o, 1, &st)))
		return finish(&o, rc);
	hk_store_info info;
	hk_store_get_info(st, &info);
	float *v = NULL;
	size_t n = 0;
	for (int i = 0; i < o.n_emb && !rc; i++)
		rc = read_embeddings("enroll", o.emb[i], info.dim, &v, &n);
	if (!rc && o.n_pos)
		rc = embed_photos("enroll", o.pos, o.n_pos, info.dim, &v, &n);
	hk_enroll_receipt r;
	if (!rc) {
		hk_status s = hk_store_enroll(st, &c, v, n, &r);
		if (s)
			rc = fail("enroll", s);
	}
	free(v);
	if (!rc) {
		char t[32];
		iso(t, sizeof t, r.time);
		if (o.json) {
			printf("{\"subject\": ");
			json_str(stdout, o.subject);
			printf(", \"templates_added\": %u, \"subject_templates\": %u, "
			       "\"version\": %llu, \"time\": \"%s\", ", r.n_templates,
			       r.subject_templates, (unsigned long long)r.version, t);
			hk_store_info inf;
			if (!hk_store_get_info(st, &inf))
				print_op(&inf, 1);
			else
				printf("\"operating_point\": null");
			printf("}\n");
		} else {
			printf("enrolled %s: %u template(s), %u in total (gallery "
			       "version %llu, %s)\n", esc(o.subject), r.n_templates,
			       r.subject_templates, (unsigned long long)r.version, t);
			hk_store_info inf;
			if (!hk_store_get_info(st, &inf))
				print_op(&inf, 0);
		}
	}
	return end("enroll", &o, st, rc);
}

/* ---- erase --------------------------------------------------------- */

static const char erase_help[] =
    "usage: herken erase --gallery DIR --subject ID [--compact] [--json]\n"
    "                    [--key-file F]\n\n"
    "Erase a subject (consent withdrawn): gone from search at once, its key\n"
    "destroyed on disk; `herken compact` then removes its bytes from every\n"
    "file. Prints the erasure receipt (keep it).\n"
    "  --compact   compact right away (the bytes are gone when it returns)\n"
    "Exit: 0 erased, 1 no such subject, 2 usage, 3 bad input or key.\n";

int hk_cli_erase(int argc, char **argv)
{
	opts o;
	hk_store *st;
	int rc;
	if (begin(argc, argv, erase_help, has_subject, &o, &st, &rc))
		return rc;
	hk_erasure_receipt r;
	hk_status s = hk_store_erase(st, o.subject, &r);
	if (!s && o.compact)
		s = hk_store_compact(st);
	if (s) {
		rc = fail("erase", s);
	} else {
		char t[32];
		iso(t, sizeof t, r.time);
		if (o.json) {
			printf("{\"subject\": ");
			json_str(stdout, r.subject);
			printf(", \"time\": \"%s\", \"version\": %llu, \"templates\": %u, "
			       "\"digest\": \"", t, (unsigned long long)r.version,
			       r.n_templates);
			hex(stdout, r.digest, sizeof r.digest);
			printf("\"}\n");
		} else {
			printf("erased %s: %u template(s) at %s, gallery version %llu\n"
			       "receipt digest ", esc(r.subject), r.n_templates, t,
			       (unsigned long long)r.version);
			hex(stdout, r.digest, sizeof r.digest);
			printf("\n");
		}
	}
	return end("erase", &o, st, rc);
}

/* ---- export -------------------------------------------------------- */

static const char export_help[] =
    "usage: herken export --gallery DIR --subject ID [--key-file F]\n\n"
    "Print (JSON) what an access request needs: the consent record,\n"
    "enrolment dates, template count and match history. Never templates.\n"
    "Exit: 0 ok, 1 no such subject, 2 usage, 3 bad input or key.\n";

int hk_cli_export(int argc, char **argv)
{
	opts o;
	hk_store *st;
	int rc;
	if (begin(argc, argv, export_help, has_subject, &o, &st, &rc))
		return rc;
	size_t need = 0;
	hk_status s = hk_store_export(st, o.subject, NULL, 0, &need);
	char *buf = NULL;
	if (HK_STATUS_PRIMARY(s) == HK_E_OVERFLOW && (buf = malloc(need)))
		s = hk_store_export(st, o.subject, buf, need, NULL);
	if (s)
		rc = fail("export", s);
	else
		fputs(buf, stdout);
	free(buf);
	return end("export", &o, st, rc);
}

/* ---- audit --------------------------------------------------------- */

static const char audit_help[] =
    "usage: herken audit verify --gallery DIR [--json] [--key-file F]\n\n"
    "Check the audit log's keyed hash chain. Prints the number of entries\n"
    "and the head MAC; record the head elsewhere to detect a later\n"
    "truncation of the log.\n"
    "Exit: 0 intact, 2 usage, 3 the chain is broken (edited, reordered or\n"
    "removed entries) or bad key.\n";

static int audit_args(const opts *o)
{
	return o->n_pos == 1 && !strcmp(o->pos[0], "verify");
}

int hk_cli_audit(int argc, char **argv)
{
	opts o;
	hk_store *st;
	int rc;
	if (begin(argc, argv, audit_help, audit_args, &o, &st, &rc))
		return rc;
	hk_audit_report r;
	hk_status s = hk_store_audit_verify(st, &r);
	if (o.json) {
		printf("{\"intact\": %s, \"entries\": %llu", s ? "false" : "true",
		       (unsigned long long)r.entries);
		if (s)
			printf(", \"first_bad_entry\": %llu, \"error\": ",
			       (unsigned long long)r.bad_entry);
		else
			printf(", \"head\": \"");
		if (s)
			json_str(stdout, hk_last_error());
		else {
			hex(stdout, r.head, sizeof r.head);
			printf("\"");
		}
		printf("}\n");
	} else if (!s) {
		printf("audit log intact: %llu entries, head ",
		       (unsigned long long)r.entries);
		hex(stdout, r.head, sizeof r.head);
		printf("\n");
	}
	if (s)
		rc = o.json ? exit_of(s) : fail("audit", s);
	return end("audit", &o, st, rc);
}

/* ---- compact / info ------------------------------------------------ */

static const char compact_help[] =
    "usage: herken compact --gallery DIR [--json] [--key-file F]\n\n"
    "Rewrite the gallery files without erased and expired subjects.\n";

/* ---- operating point (calibrated decisions) ------------------------ */

/* The calibration shipped for the embedder in $HERKEN_MODELS (else
 * .cache/models): store decisions stand at a stated FMR / FPIR. */
static int calib_of(const char *cmd, hk_calib **cal)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", hk_model_dir(NULL), cli_model_file("embedder"));
	if (hk_calib_for_model(path, cal)) {
		fprintf(stderr, "herken %s: %s\n", cmd, esc(hk_last_error()));
		return HK_EXIT_INPUT;
	}
	return 0;
}

/* The shipped calibration without a message (NULL when there is none):
 * only to state the rate an explicit --threshold stands at. */
static hk_calib *calib_quiet(void)
{
	char path[4096];
	hk_calib *cal = NULL;
	snprintf(path, sizeof path, "%s/%s", hk_model_dir(NULL), cli_model_file("embedder"));
	return hk_calib_for_model(path, &cal) ? NULL : cal;
}

/* --threshold is an expert override of the calibrated operating point:
 * say so, and the rate (FMR, or FPIR for n templates) it stands at. */
static void expert_line(float thr, const char *what, double rate, uint64_t n)
{
	if (isnan(rate))
		printf("--threshold %.4f (expert override): its %s is unknown (no calibration for "
		       "this embedder)\n", (double)thr, what);
	else if (n > 1)
		printf("--threshold %.4f (expert override) stands at %s %.2g for N = %llu templates "
		       "(about 1 stranger in %.0f)\n", (double)thr, what, rate, (unsigned long long)n,
		       rate > 0 ? 1.0 / rate : INFINITY);
	else
		printf("--threshold %.4f (expert override) stands at %s %.2g (about 1 stranger in "
		       "%.0f)\n", (double)thr, what, rate, rate > 0 ? 1.0 / rate : INFINITY);
}

/* --fmr / --fpir: a rate inside (0, 1); absent: 0 (the policy's). */
static int rate_arg(const char *cmd, const char *name, const char *v, double *r)
{
	*r = 0;
	if (v && (cli_double(v, 0, 1, r) || !(*r > 0 && *r < 1))) {
		fprintf(stderr, "herken %s: %s must be a rate inside (0, 1), got '%s'\n", cmd, name,
		        esc(v));
		return HK_EXIT_USAGE;
	}
	return 0;
}

static void json_num(double v)
{
	if (!isfinite(v))
		printf("null");
	else
		printf("%.4g", v);
}

/* Where a verify/identify threshold came from and the rate (name: "fmr" or
 * "fpir") it stands at: the calibrated target, or what --threshold gives. */
static void json_threshold_from(const hk_decision *d, const char *name, double thr_rate)
{
	printf(", \"threshold_from\": \"%s\", \"threshold_%s\": ",
	       d->kind ? "calibration" : "--threshold", name);
	json_num(d->kind ? d->target : thr_rate);
}

/* The policy's operating point and the thresholds it gives now. */
static void print_op(const hk_store_info *i, int json)
{
	double fmr = i->policy.target_fmr > 0 ? i->policy.target_fmr : HK_DEFAULT_FMR;
	double fpir = i->policy.target_fpir > 0 ? i->policy.target_fpir : HK_DEFAULT_FPIR;
	hk_calib *cal = NULL;
	float t1 = NAN, tn = NAN;
	if (!calib_of("info", &cal)) {
		if (hk_calib_score_at_fmr(cal, fmr, &t1))
			t1 = NAN;
		if (!i->templates || hk_calib_score_at_fpir(cal, fpir, i->templates, &tn))
			tn = NAN;
	}
	hk_calib_destroy(cal);
	if (json) {
		printf("\"operating_point\": {\"target_fmr\": %.4g, \"fmr_from\": \"%s\", "
		       "\"threshold_1to1\": ", fmr, i->policy.target_fmr > 0 ? "policy" : "default");
		json_num(t1);
		printf(", \"target_fpir\": %.4g, \"fpir_from\": \"%s\", \"n\": %llu, "
		       "\"threshold_1toN\": ", fpir, i->policy.target_fpir > 0 ? "policy" : "default",
		       (unsigned long long)i->templates);
		json_num(tn);
		printf("}");
		return;
	}
	printf("operating point: 1:1 at FMR %.2g (%s; threshold %.4f): about 1 stranger in %.0f "
	       "taken for a claimed customer;\n"
	       "                 1:N at FPIR %.2g (%s) for N = %llu templates (threshold ",
	       fmr, i->policy.target_fmr > 0 ? "policy" : "default", (double)t1, 1.0 / fmr, fpir,
	       i->policy.target_fpir > 0 ? "policy" : "default", (unsigned long long)i->templates);
	if (isnan(tn))
		printf("none: %s", i->templates ? "no calibration" : "empty gallery");
	else
		printf("%.4f", (double)tn);
	printf("): about 1 stranger in %.0f taken for some customer\n", 1.0 / fpir);
}

static void print_info(const hk_store_info *i, int json)
{
	if (json) {
		printf("{\"dim\": %u, \"format\": %u, \"version\": %llu, "
		       "\"subjects\": %llu, \"templates\": %llu, "
		       "\"hidden_subjects\": %llu, \"erased_pending\": %llu, "
		       "\"allow_identify\": %s, \"inactivity_limit_s\": %lld, "
		       "\"bytes\": {\"wal\": %llu, \"snapshot\": %llu, \"keys\": %llu, "
		       "\"audit\": %llu}, \"audit_entries\": %llu, "
		       "\"torn_bytes_cut\": %llu, ",
		       i->dim, i->format_version, (unsigned long long)i->version,
		       (unsigned long long)i->subjects,
		       (unsigned long long)i->templates,
		       (unsigned long long)i->hidden_subjects,
		       (unsigned long long)i->erased_pending,
		       i->policy.allow_identify ? "true" : "false",
		       (long long)i->policy.inactivity_limit_s,
		       (unsigned long long)i->wal_bytes,
		       (unsigned long long)i->snapshot_bytes,
		       (unsigned long long)i->keys_bytes,
		       (unsigned long long)i->audit_bytes,
		       (unsigned long long)i->audit_entries,
		       (unsigned long long)i->torn_bytes_cut);
		print_op(i, 1);
		printf("}\n");
		return;
	}
	uint64_t disk = i->wal_bytes + i->snapshot_bytes + i->keys_bytes;
	char ilim[48] = "none";
	if (i->policy.inactivity_limit_s > 0)
		snprintf(ilim, sizeof ilim, "%lld s (%.1f days)",
		         (long long)i->policy.inactivity_limit_s,
		         (double)i->policy.inactivity_limit_s / 86400.0);
	printf("gallery version %llu, dimension %u, format %u\n"
	       "subjects %llu, templates %llu (hidden, awaiting compaction: %llu "
	       "subjects; erased keys awaiting compaction: %llu)\n"
	       "policy: 1:N identification %s, inactivity limit %s\n"
	       "files: wal %llu B, snapshot %llu B, keys %llu B, audit %llu B "
	       "(%llu entries)%s\n",
	       (unsigned long long)i->version, i->dim, i->format_version,
	       (unsigned long long)i->subjects, (unsigned long long)i->templates,
	       (unsigned long long)i->hidden_subjects,
	       (unsigned long long)i->erased_pending,
	       i->policy.allow_identify ? "allowed" : "off (1:1 only)",
	       ilim,
	       (unsigned long long)i->wal_bytes,
	       (unsigned long long)i->snapshot_bytes,
	       (unsigned long long)i->keys_bytes,
	       (unsigned long long)i->audit_bytes,
	       (unsigned long long)i->audit_entries,
	       i->torn_bytes_cut ? " — a torn tail was cut at open" : "");
	if (i->templates)
		printf("on disk: %.1f bytes per template (wal + snapshot + keys)\n",
		       (double)disk / (double)i->templates);
	print_op(i, 0);
}

int hk_cli_compact(int argc, char **argv)
{
	opts o;
	hk_store *st;
	int rc;
	if (begin(argc, argv, compact_help, NULL, &o, &st, &rc))
		return rc;
	hk_status s = hk_store_compact(st);
	hk_store_info info;
	if (s)
		rc = fail("compact", s);
	else if (!hk_store_get_info(st, &info))
		print_info(&info, o.json);
	return end("compact", &o, st, rc);
}

static const char info_help[] =
    "usage: herken info --gallery DIR [--json] [--key-file F]\n"
    "                   [--allow-identify yes|no] [--inactivity-days N]\n"
    "                   [--fmr R] [--fpir R]\n\n"
    "Describe a gallery and its operating point; the policy options change its\n"
    "policy (audited): --fmr R the 1:1 false-match rate, --fpir R the 1:N false-\n"
    "positive identification rate at the gallery's size (defaults 1e-4, 1e-3).\n";

int hk_cli_info(int argc, char **argv)
{
	opts o;
	hk_store *st;
	int rc;
	if (begin(argc, argv, info_help, NULL, &o, &st, &rc))
		return rc;
	hk_store_info info;
	hk_store_get_info(st, &info);
	if (o.allow_identify || o.inactivity_days || o.fmr || o.fpir) {
		hk_store_policy p = info.policy;
		if ((o.fmr && (rc = rate_arg("info", "--fmr", o.fmr, &p.target_fmr))) ||
		    (o.fpir && (rc = rate_arg("info", "--fpir", o.fpir, &p.target_fpir))))
			return end("info", &o, st, rc);
		if (o.allow_identify &&
		    (rc = parse_yesno("info", o.allow_identify, &p.allow_identify)))
			return end("info", &o, st, rc);
		double days = 0;
		if (o.inactivity_days) {
			cli_double(o.inactivity_days, 0, 36500, &days); /* checked at open */
			p.inactivity_limit_s = (int64_t)(days * 86400);
		}
		hk_status s = hk_store_set_policy(st, &p);
		if (s)
			return end("info", &o, st, fail("info", s));
		hk_store_get_info(st, &info);
	}
	print_info(&info, o.json);
	return end("info", &o, st, rc);
}

/* ---- verify / identify against a gallery --------------------------- */

static const char sverify_help[] =
    "usage: herken verify --gallery DIR --subject ID --embedding FILE\n"
    "         [--fmr R | --threshold T] [--source desk|file|stream] [--json]\n\n"
    "1:1: does the probe match the claimed subject? Always allowed; audited.\n"
    "Exit: 0 match, 1 no match or unknown subject, 2 usage, 3 bad input.\n";

static int probe(const char *cmd, const opts *o, hk_store *st, float **q)
{
	hk_store_info info;
	hk_store_get_info(st, &info);
	size_t n = 0;
	*q = NULL;
	int rc = o->n_emb == 1 && !o->n_pos
	             ? read_embeddings(cmd, o->emb[0], info.dim, q, &n)
	         : !o->n_emb && o->n_pos == 1
	             ? embed_photos(cmd, o->pos, 1, info.dim, q, &n)
	             : HK_EXIT_USAGE;
	if (!rc && n != 1) {
		fprintf(stderr, "herken %s: the probe file holds %zu embeddings, "
		        "expected one\n", cmd, n);
		rc = HK_EXIT_INPUT;
	}
	if (rc == HK_EXIT_USAGE)
		fprintf(stderr, "herken %s: the probe is exactly one PHOTO or one "
		        "--embedding FILE\n", cmd);
	return rc;
}

static int threshold_of(const char *cmd, const opts *o, float *t)
{
	*t = NAN; /* no fixed threshold: the calibration's, unless --threshold */
	if (!o->threshold)
		return 0;
	char *end;
	*t = strtof(o->threshold, &end);
	if (end == o->threshold || *end || !isfinite(*t)) {
		fprintf(stderr, "herken %s: bad --threshold '%s'\n", cmd,
		        esc(o->threshold));
		return HK_EXIT_USAGE;
	}
	return 0;
}
/* verify / identify: the threshold (--threshold, else the calibration at
 * the rate flag's target), the probe's source, the gallery opened and the
 * probe read. 0 with *cal (NULL under --threshold), *st and *q to release;
 * else the exit code with all of them released. */
static int query_setup(const char *cmd, const opts *o, const char *rate_flag, const char *rate,
                       float *thr, uint32_t *src, double *target, hk_calib **cal,
                       hk_store **st, float **q)
{
	int rc;
	*cal = NULL;
	if ((rc = threshold_of(cmd, o, thr)) || (rc = parse_source(cmd, o->source, src)) ||
	    (rc = rate_arg(cmd, rate_flag, rate, target)) ||
	    (!o->threshold && (rc = calib_of(cmd, cal))))
		return rc;
	if ((rc = open_gallery(cmd, o, 0, st))) {
		hk_calib_destroy(*cal);
		return rc;
	}
	if ((rc = probe(cmd, o, *st, q))) {
		hk_calib_destroy(*cal);
		return close_gallery(cmd, *st, rc);
	}
	return 0;
}

int hk_cli_store_verify(int argc, char **argv)
{
	opts o;
	int rc;
	if (begin(argc, argv, sverify_help, has_subject, &o, NULL, &rc))
		return rc;
	float thr, *q = NULL;
	uint32_t src;
	double target = 0;
	hk_calib *cal;
	hk_store *st;
	if ((rc = query_setup("verify", &o, "--fmr", o.fmr, &thr, &src, &target, &cal, &st, &q)))
		return finish(&o, rc);
	float score = 0;
	int match = 0;
	double thr_rate = NAN; /* the FMR --threshold stands at */
	hk_decision d = {0};
	d.rate = NAN;
	hk_status s;
	if (cal) {
		s = hk_store_verify_at(st, cal, o.subject, q, target, src, &d);
		score = d.score;
		match = d.match;
		thr = d.threshold;
	} else {
		s = hk_store_verify(st, o.subject, q, thr, src, &score, &match);
		hk_calib *x = calib_quiet();
		if (!x || hk_calib_fmr(x, thr, &thr_rate))
			thr_rate = NAN;
		hk_calib_destroy(x);
	}
	hk_calib_destroy(cal);
	free(q);
	if (s && HK_STATUS_PRIMARY(s) != HK_E_NOT_FOUND) {
		rc = fail("verify", s);
	} else if (o.json) {
		printf("{\"subject\": ");
		json_str(stdout, o.subject);
		if (s)
			printf(", \"enrolled\": false, \"match\": false}\n");
		else {
			printf(", \"enrolled\": true, \"score\": %.6f, \"threshold\": "
			       "%.6f, \"match\": %s, \"target_fmr\": ", (double)score, (double)thr,
			       match ? "true" : "false");
			json_num(d.kind ? d.target : NAN);
			printf(", \"fmr\": ");
			json_num(d.kind ? d.rate : NAN);
			json_threshold_from(&d, "fmr", thr_rate);
			printf("}\n");
		}
		rc = s || !match ? HK_EXIT_NOMATCH : HK_EXIT_OK;
	} else {
		if (s)
			printf("%s is not enrolled: no match\n", esc(o.subject));
		else
			printf("%s: score %.4f, threshold %.4f: %s\n", esc(o.subject), (double)score,
			       (double)thr, match ? "MATCH" : "no match");
		if (!s && !d.kind)
			expert_line(thr, "FMR", thr_rate, 1);
		if (!s && d.kind)
			printf("target FMR %.2g; this score's FMR %.2g\n", d.target, d.rate);
		rc = s || !match ? HK_EXIT_NOMATCH : HK_EXIT_OK;
	}
	return end("verify", &o, st, rc);
}

static const char sidentify_help[] =
    "usage: herken identify --gallery DIR --embedding FILE [--k N]\n"
    "         [--fpir R | --threshold T] [--source desk|file|stream] [--json]\n\n"
    "1:N: who in the gallery is this? Refused unless the gallery's policy\n"
    "allows identification (herken info --allow-identify yes). Audited.\n"
    "Exit: 0 a match, 1 nobody above the threshold, 5 refused by policy.\n";

int hk_cli_store_identify(int argc, char **argv)
{
	opts o;
	int rc;
	if (begin(argc, argv, sidentify_help, NULL, &o, NULL, &rc))
		return rc;
	float thr;
	uint32_t src;
	long k = 5;
	if (o.k && cli_long(o.k, 1, 1024, &k)) {
		fprintf(stderr, "herken identify: --k is 1..1024\n");
		return finish(&o, HK_EXIT_USAGE);
	}
	double target = 0;
	hk_calib *cal;
	hk_store *st;
	float *q = NULL;
	if ((rc = query_setup("identify", &o, "--fpir", o.fpir, &thr, &src, &target, &cal, &st, &q)))
		return finish(&o, rc);
	hk_store_match *m = calloc((size_t)k, sizeof *m);
	size_t n = 0;
	hk_decision d = {0};
	hk_status s = !m    ? HK_E_NOMEM
	              : cal ? hk_store_identify_at(st, cal, q, target, src, (size_t)k, m, &n, &d)
	                    : hk_store_identify(st, q, thr, src, (size_t)k, m, &n);
	double thr_rate = NAN; /* the FPIR --threshold stands at */
	uint64_t ntpl = 0;
	if (!cal && !s) {
		hk_store_info info;
		hk_calib *x = calib_quiet();
		if (!hk_store_get_info(st, &info))
			ntpl = info.templates;
		if (!x || !ntpl || hk_calib_fpir(x, thr, ntpl, &thr_rate))
			thr_rate = NAN;
		hk_calib_destroy(x);
	}
	if (cal)
		thr = d.threshold;
	hk_calib_destroy(cal);
	free(q);
	if (s) {
		rc = fail("identify", s);
	} else {
		if (o.json) {
			printf("{\"threshold\": %.6f, \"target_fpir\": ", (double)thr);
			json_num(d.kind ? d.target : NAN);
			printf(", \"n\": %llu, \"best_score\": ", (unsigned long long)d.n);
			json_num(d.kind ? d.score : NAN);
			printf(", \"fpir\": ");
			json_num(d.kind ? d.rate : NAN);
			json_threshold_from(&d, "fpir", thr_rate);
			printf(", \"matches\": [");
			for (size_t i = 0; i < n; i++) {
				printf("%s{\"subject\": ", i ? ", " : "");
				json_str(stdout, m[i].subject);
				printf(", \"score\": %.6f}", (double)m[i].score);
			}
			printf("]}\n");
		} else if (!n) {
			printf("nobody above threshold %.4f\n", (double)thr);
		}
		if (!o.json && d.kind)
			printf("threshold %.4f: FPIR %.2g for N = %llu templates; the best score %.4f "
			       "stands at FPIR %.2g\n", (double)thr, d.target, (unsigned long long)d.n,
			       (double)d.score, d.rate);
		if (!o.json && !d.kind)
			expert_line(thr, "FPIR", thr_rate, ntpl);
		for (size_t i = 0; i < n && !o.json; i++)
			printf("%zu. %s  %.4f\n", i + 1, esc(m[i].subject),
			       (double)m[i].score);
		rc = n ? HK_EXIT_OK : HK_EXIT_NOMATCH;
	}
	free(m);
	return end("identify", &o, st, rc);
}

/* For `herken watch`: open an existing durable gallery for queries. */
int hk_cli_open_store(const char *cmd, const char *dir, const char *key_file, hk_store **st)
{
	opts o;
	memset(&o, 0, sizeof o);
	o.gallery = dir;
	o.key_file = key_file;
	return open_gallery(cmd, &o, 0, st);
}
