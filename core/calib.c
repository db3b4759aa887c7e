/* Score calibration and decisions at stated rates (see herken.h,
 * "Calibration"). The table is piecewise log-linear: between two points
 * log10(FMR) is linear in the score, which is what an impostor tail that
 * falls off exponentially looks like, and keeps the map strictly monotone
 * both ways. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "internal.h"
#include "models.h"

#define CALIB_MAX_POINTS 100000
#define CALIB_MAX_BYTES (8u << 20)

/* score ascending, log10 rate strictly descending */
typedef struct calib_table {
	size_t n;
	double *score;
	double *lrate;
} calib_table;

struct hk_calib {
	uint8_t sha[32];
	uint32_t prec;    /* hk_precision of the embeddings it was fitted on */
	calib_table fmr;  /* 1:1: score -> FMR                                */
	calib_table open; /* open set: score -> q, FPIR = 1-(1-q)^N; n = 0 in
	                     a format-1 file (then q = FMR)                    */
};

/* Built-in tables (generated from core/calib/ *.calib by the Makefile). */
extern const char *const hk__calib_builtin[];

static int hex_sha(const char *s, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 || !s[2 * i] || !s[2 * i + 1])
			return -1;
		out[i] = (uint8_t)v;
	}
	return s[64] == 0 || s[64] == ' ' || s[64] == '\t' || s[64] == '\n' || s[64] == '\r' ? 0 : -1;
}

/* Precisions a calibration can be for: the ones an embedder runs in. */
static const char *const prec_names[] = {[HK_PREC_FP32] = "fp32", [HK_PREC_BF16] = "bf16",
                                         [HK_PREC_INT8] = "int8"};

static const char *prec_name(uint32_t p)
{
	return p <= HK_PREC_INT8 ? prec_names[p] : "unknown";
}

static void sha_hex(const uint8_t *sha, char out[65])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", sha[i]);
	out[64] = 0;
}

void hk_calib_destroy(hk_calib *c)
{
	if (!c)
		return;
	free(c->fmr.score);
	free(c->fmr.lrate);
	free(c->open.score);
	free(c->open.lrate);
	free(c);
}

/* Next line of text[*pos..len) without comments and surrounding blanks
 * into buf; 0 at the end. Counts lines in *ln. */
static int next_line(const char *text, size_t len, size_t *pos, size_t *ln, char *buf,
                     size_t cap, int *too_long)
{
	while (*pos < len) {
		size_t s = *pos, e = s;
		while (e < len && text[e] != '\n')
			e++;
		*pos = e < len ? e + 1 : e;
		++*ln;
		size_t l = e - s;
		if (l >= cap) {
			*too_long = 1;
			return 1;
		}
		memcpy(buf, text + s, l);
		buf[l] = 0;
		char *h = strchr(buf, '#');
		if (h)
			*h = 0;
		char *p = buf;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		size_t k = strlen(p);
		while (k && (p[k - 1] == ' ' || p[k - 1] == '\t' || p[k - 1] == '\r'))
			p[--k] = 0;
		if (!*p)
			continue;
		memmove(buf, p, k + 1);
		return 1;
	}
	return 0;
}

static hk_status table_alloc(calib_table *t, unsigned long n)
{
	t->score = malloc(n * sizeof *t->score);
	t->lrate = malloc(n * sizeof *t->lrate);
	return t->score && t->lrate ? HK_OK : hk__err(HK_E_NOMEM, "calibration table");
}

/* One "<score> <rate>" row appended to t. */
static hk_status table_row(calib_table *t, const char *line, size_t ln, const char *what)
{
	double s, f;
	char extra[8];
	if (sscanf(line, "%lf %lf %7s", &s, &f, extra) != 2 || !isfinite(s) || s < -1.0 ||
	    s > 1.0 || !(f > 0.0) || f > 1.0)
		return hk__err(HK_E_FORMAT,
		               "calibration line %zu: expected \"<score in [-1,1]> <%s in (0,1]>\"",
		               ln, what);
	double lf = log10(f);
	if (t->n && (s <= t->score[t->n - 1] || lf >= t->lrate[t->n - 1]))
		return hk__err(HK_E_FORMAT,
		               "calibration line %zu: not monotone (score must rise and %s fall "
		               "strictly)", ln, what);
	t->score[t->n] = s;
	t->lrate[t->n] = lf;
	t->n++;
	return HK_OK;
}

static hk_status count_line(const char *line, const char *key, size_t ln, unsigned long *n)
{
	char extra[8], fmt[32];
	snprintf(fmt, sizeof fmt, "%s %%lu %%7s", key);
	if (sscanf(line, fmt, n, extra) != 1 || *n < 2 || *n > CALIB_MAX_POINTS)
		return hk__err(HK_E_FORMAT, "calibration line %zu: expected \"%s <2..%d>\"", ln,
		               key, CALIB_MAX_POINTS);
	return HK_OK;
}

hk_status hk_calib_parse(const char *text, size_t len, const uint8_t *expect_sha256,
                         hk_calib **out)
{
	if (!out || (!text && len))
		return hk__err(HK_E_INVALID, "hk_calib_parse: NULL argument");
	*out = NULL;
	if (len > CALIB_MAX_BYTES)
		return hk__err(HK_E_FORMAT, "calibration: %zu bytes, more than a table can be", len);
	hk_calib *c = calloc(1, sizeof *c);
	if (!c)
		return hk__err(HK_E_NOMEM, "calibration");
	char line[256];
	size_t pos = 0, ln = 0;
	unsigned long want = 0, want_open = 0;
	int too_long = 0, version = 0;
	/* 0 magic, 1 embedder, 8 precision (format 3), 2 points, 3 FMR rows,
	 * 4 "openset" or "end", 5 open-set rows, 6 "end", 7 done */
	int stage = 0;
	hk_status st = HK_OK;
	while (!st && stage != 7 && next_line(text, len, &pos, &ln, line, sizeof line, &too_long)) {
		if (too_long) {
			st = hk__err(HK_E_FORMAT, "calibration line %zu: too long", ln);
			break;
		}
		char extra[8];
		if (stage == 0) {
			if (sscanf(line, "herken-calibration %d %7s", &version, extra) != 1 ||
			    version < 1 || version > 3)
				st = hk__err(HK_E_FORMAT, "calibration line %zu: expected "
				                          "\"herken-calibration <1..3>\"", ln);
			stage = 1;
		} else if (stage == 1) {
			if (strncmp(line, "embedder ", 9) || hex_sha(line + 9, c->sha))
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: expected \"embedder <sha256 hex>\"", ln);
			/* formats 1 and 2 were fitted on fp32 embeddings */
			c->prec = HK_PREC_FP32;
			stage = version == 3 ? 8 : 2;
		} else if (stage == 8) {
			char name[8];
			c->prec = HK_PREC_AUTO; /* none */
			if (sscanf(line, "precision %7s %7s", name, extra) == 1)
				for (uint32_t p = 0; p <= HK_PREC_INT8; p++)
					if (!strcmp(name, prec_names[p]))
						c->prec = p;
			if (c->prec == HK_PREC_AUTO)
				st = hk__err(HK_E_FORMAT, "calibration line %zu: expected \"precision "
				                          "fp32|bf16|int8\"", ln);
			stage = 2;
		} else if (stage == 2) {
			st = count_line(line, "points", ln, &want);
			if (!st)
				st = table_alloc(&c->fmr, want);
			stage = 3;
		} else if (stage == 3) {
			st = table_row(&c->fmr, line, ln, "fmr");
			if (c->fmr.n == want)
				stage = version >= 2 ? 4 : 6;
		} else if (stage == 4 && strncmp(line, "openset", 7) == 0) {
			st = count_line(line, "openset", ln, &want_open);
			if (!st)
				st = table_alloc(&c->open, want_open);
			stage = 5;
		} else if (stage == 5) {
			st = table_row(&c->open, line, ln, "q");
			if (c->open.n == want_open)
				stage = 6;
		} else {
			if (strcmp(line, "end"))
				st = hk__err(HK_E_FORMAT, "calibration line %zu: expected \"end\"%s", ln,
				             stage == 4 ? " or \"openset <n>\"" : "");
			stage = 7;
		}
	}
	if (!st && stage != 7)
		st = hk__err(HK_E_FORMAT, "calibration truncated after line %zu (no \"end\")", ln);
	if (!st && expect_sha256 && memcmp(expect_sha256, c->sha, 32)) {
		char a[65], b[65];
		sha_hex(c->sha, a);
		sha_hex(expect_sha256, b);
		st = hk__err(HK_E_FORMAT,
		             "calibration is for embedder sha256 %.16s..., the model in use is "
		             "%.16s...: calibrate this model (herken-bench calibrate)", a, b);
	}
	if (st) {
		hk_calib_destroy(c);
		return st;
	}
	*out = c;
	return HK_OK;
}

hk_status hk_calib_load(const char *path, const uint8_t *expect_sha256, hk_calib **out)
{
	if (!path || !out)
		return hk__err(HK_E_INVALID, "hk_calib_load: NULL argument");
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return hk__err(HK_E_FORMAT, "calibration file %s: %s", path, strerror(errno));
	char *buf = malloc(CALIB_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, CALIB_MAX_BYTES + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf)
		return hk__err(HK_E_NOMEM, "calibration file %s", path);
	if (bad) {
		free(buf);
		return hk__err(HK_E_IO, "calibration file %s: read error", path);
	}
	hk_status st = hk_calib_parse(buf, n, expect_sha256, out);
	free(buf);
	if (st) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", hk_last_error());
		return hk__err(st, "%s: %s", path, msg);
	}
	return HK_OK;
}

hk_status hk_calib_builtin_at(const uint8_t sha256[32], hk_precision precision, hk_calib **out)
{
	if (!sha256 || !out)
		return hk__err(HK_E_INVALID, "hk_calib_builtin_at: NULL argument");
	*out = NULL;
	if ((uint32_t)precision > HK_PREC_INT8)
		return hk__err(HK_E_INVALID, "hk_calib_builtin_at: precision %u is not one an embedder "
		               "runs in (fp32, bf16, int8; resolve AUTO first)", (unsigned)precision);
	char others[64] = "";
	for (size_t i = 0; hk__calib_builtin[i]; i++) {
		const char *t = hk__calib_builtin[i];
		hk_calib *c = NULL;
		/* the shipped tables are tested to parse: a failure is skipped */
		if (hk_calib_parse(t, strlen(t), sha256, &c))
			continue;
		if (c->prec == (uint32_t)precision) {
			*out = c;
			return HK_OK;
		}
		size_t l = strlen(others);
		snprintf(others + l, sizeof others - l, "%s%s", l ? ", " : "", prec_name(c->prec));
		hk_calib_destroy(c);
	}
	char h[65];
	sha_hex(sha256, h);
	if (others[0])
		return hk__err(HK_E_FORMAT,
		               "no %s calibration ships for embedder sha256 %.16s... (only %s): the "
		               "scores of one precision are not those of another; calibrate it "
		               "(herken-bench calibrate --precision %s) and load the file with "
		               "hk_calib_load", prec_name(precision), h, others, prec_name(precision));
	return hk__err(HK_E_FORMAT,
	               "no calibration ships for embedder sha256 %s: calibrate it "
	               "(herken-bench calibrate) and load the file with hk_calib_load", h);
}

hk_status hk_calib_builtin(const uint8_t sha256[32], hk_calib **out)
{
	return hk_calib_builtin_at(sha256, HK_PREC_FP32, out);
}

hk_status hk_calib_check(const hk_calib *c, const uint8_t sha256[32], hk_precision precision)
{
	if (!c || !sha256)
		return hk__err(HK_E_INVALID, "hk_calib_check: NULL argument");
	char a[65], b[65];
	sha_hex(c->sha, a);
	sha_hex(sha256, b);
	if (memcmp(c->sha, sha256, 32))
		return hk__err(HK_E_FORMAT,
		               "calibration is for embedder sha256 %.16s..., the model in use is "
		               "%.16s...: calibrate this model (herken-bench calibrate)", a, b);
	if (c->prec != (uint32_t)precision)
		return hk__err(HK_E_FORMAT,
		               "calibration of embedder %.16s... was fitted on %s embeddings, the "
		               "embedder runs in %s: calibrate that precision (herken-bench calibrate "
		               "--precision %s)", a, prec_name(c->prec), prec_name(precision),
		               prec_name(precision));
	return HK_OK;
}

hk_precision hk_calib_precision(const hk_calib *c)
{
	return c ? (hk_precision)c->prec : HK_PREC_FP32;
}

hk_status hk__sha256_file(const char *path, uint8_t out[32])
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return hk__err(HK_E_NOT_FOUND, "%s: %s", path, strerror(errno));
	if (sodium_init() < 0) {
		fclose(f);
		return hk__err(HK_E_BACKEND, "libsodium init failed");
	}
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	unsigned char buf[65536];
	size_t r;
	while ((r = fread(buf, 1, sizeof buf, f)) > 0)
		crypto_hash_sha256_update(&h, buf, r);
	int bad = ferror(f);
	fclose(f);
	crypto_hash_sha256_final(&h, out);
	return bad ? hk__err(HK_E_IO, "%s: read error", path) : HK_OK;
}

hk_status hk_calib_for_engine(const hk_engine *e, hk_calib **out)
{
	if (!e || !out)
		return hk__err(HK_E_INVALID, "hk_calib_for_engine: NULL argument");
	*out = NULL;
	hk_engine_params p;
	hk_engine_get_params(e, &p);
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", hk_model_dir(p.model_dir),
	         hk__model_by_role("embedder")->file);
	uint8_t sha[32];
	hk_model_info mi;
	hk_status st = hk_model_get_info(hk__engine_embedder(e), &mi);
	if (!st)
		st = hk__sha256_file(path, sha);
	return st ? st : hk_calib_builtin_at(sha, (hk_precision)mi.precision, out);
}

hk_status hk_calib_for_model(const char *embedder_path, hk_calib **out)
{
	if (!embedder_path || !out)
		return hk__err(HK_E_INVALID, "hk_calib_for_model: NULL argument");
	*out = NULL;
	uint8_t sha[32];
	hk_status st = hk__sha256_file(embedder_path, sha);
	return st ? st : hk_calib_builtin(sha, out);
}

const uint8_t *hk_calib_embedder(const hk_calib *c)
{
	return c ? c->sha : NULL;
}

/* log10 rate of table t at score s (clamped at its ends). */
static double table_lrate(const calib_table *t, double s)
{
	size_t n = t->n;
	if (s <= t->score[0])
		return t->lrate[0];
	if (s >= t->score[n - 1])
		return t->lrate[n - 1];
	size_t lo = 0, hi = n - 1; /* score[lo] < s < score[hi] */
	while (hi - lo > 1) {
		size_t m = lo + (hi - lo) / 2;
		if (t->score[m] <= s)
			lo = m;
		else
			hi = m;
	}
	double w = (s - t->score[lo]) / (t->score[hi] - t->score[lo]);
	return t->lrate[lo] + w * (t->lrate[hi] - t->lrate[lo]);
}

/* The lowest float score whose rate in t is <= 10^lf; HK_E_RANGE (message
 * naming `what` and the target) when lf lies outside the table. */
static hk_status table_score(const calib_table *t, double lf, const char *what, double target,
                             float *score)
{
	size_t n = t->n;
	if (lf > t->lrate[0] || lf < t->lrate[n - 1])
		return hk__err(HK_E_RANGE,
		               "target %s %g is beyond the calibration (it covers %.3g down to %.3g)",
		               what, target, pow(10.0, t->lrate[0]), pow(10.0, t->lrate[n - 1]));
	size_t lo = 0, hi = n - 1; /* lrate[lo] >= lf >= lrate[hi] */
	while (hi - lo > 1) {
		size_t m = lo + (hi - lo) / 2;
		if (t->lrate[m] >= lf)
			lo = m;
		else
			hi = m;
	}
	double w = (t->lrate[lo] - lf) / (t->lrate[lo] - t->lrate[hi]);
	double s = t->score[lo] + w * (t->score[hi] - t->score[lo]);
	float f = (float)s;
	if ((double)f < s)
		f = nextafterf(f, 2.0f);
	*score = f;
	return HK_OK;
}

/* The open-set table, or the 1:1 table of a format-1 file. */
static const calib_table *open_table(const hk_calib *c)
{
	return c->open.n ? &c->open : &c->fmr;
}

hk_status hk_calib_fmr(const hk_calib *c, float score, double *fmr)
{
	if (!c || !fmr)
		return hk__err(HK_E_INVALID, "hk_calib_fmr: NULL argument");
	if (isnan(score))
		return hk__err(HK_E_RANGE, "hk_calib_fmr: score is NaN");
	*fmr = pow(10.0, table_lrate(&c->fmr, score));
	return HK_OK;
}

hk_status hk_calib_score_at_fmr(const hk_calib *c, double fmr, float *score)
{
	if (!c || !score)
		return hk__err(HK_E_INVALID, "hk_calib_score_at_fmr: NULL argument");
	if (!(fmr > 0.0 && fmr < 1.0))
		return hk__err(HK_E_RANGE, "target FMR %g is outside (0, 1)", fmr);
	return table_score(&c->fmr, log10(fmr), "FMR", fmr, score);
}

int hk_calib_has_openset(const hk_calib *c)
{
	return c && c->open.n > 0;
}

/* 1 - (1 - p)^(1/n) without cancellation. */
static double per_comparison(double fpir, uint64_t n)
{
	return -expm1(log1p(-fpir) / (double)n);
}

hk_status hk_calib_fpir(const hk_calib *c, float score, uint64_t n, double *fpir)
{
	if (!c || !fpir)
		return hk__err(HK_E_INVALID, "hk_calib_fpir: NULL argument");
	if (n == 0)
		return hk__err(HK_E_RANGE, "gallery size N = 0: FPIR needs N >= 1");
	if (isnan(score))
		return hk__err(HK_E_RANGE, "hk_calib_fpir: score is NaN");
	double q = pow(10.0, table_lrate(open_table(c), score));
	*fpir = q >= 1.0 ? 1.0 : -expm1((double)n * log1p(-q));
	return HK_OK;
}

hk_status hk_calib_score_at_fpir(const hk_calib *c, double fpir, uint64_t n, float *score)
{
	if (!c || !score)
		return hk__err(HK_E_INVALID, "hk_calib_score_at_fpir: NULL argument");
	if (!(fpir > 0.0 && fpir < 1.0))
		return hk__err(HK_E_RANGE, "target FPIR %g is outside (0, 1)", fpir);
	if (n == 0)
		return hk__err(HK_E_RANGE, "gallery size N = 0: FPIR needs N >= 1");
	double q = per_comparison(fpir, n);
	hk_status st = table_score(open_table(c), log10(q),
	                           c->open.n ? "per-comparison open-set rate" : "FMR", q, score);
	if (st) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", hk_last_error());
		return hk__err(st, "FPIR %g at N = %llu: %s", fpir, (unsigned long long)n, msg);
	}
	return HK_OK;
}

hk_status hk_calib_decide_verify(const hk_calib *c, float score, double target_fmr,
                                 hk_decision *d)
{
	if (!c || !d)
		return hk__err(HK_E_INVALID, "hk_calib_decide_verify: NULL argument");
	memset(d, 0, sizeof *d);
	if (target_fmr == 0.0)
		target_fmr = HK_DEFAULT_FMR;
	float thr;
	hk_status st = hk_calib_score_at_fmr(c, target_fmr, &thr);
	if (!st)
		st = hk_calib_fmr(c, score, &d->rate);
	if (st)
		return st;
	d->kind = HK_DECISION_VERIFY;
	d->n = 1;
	d->score = score;
	d->threshold = thr;
	d->target = target_fmr;
	d->match = score >= thr;
	return HK_OK;
}

hk_status hk_calib_decide_identify(const hk_calib *c, float best_score, uint64_t n,
                                   double target_fpir, hk_decision *d)
{
	if (!c || !d)
		return hk__err(HK_E_INVALID, "hk_calib_decide_identify: NULL argument");
	memset(d, 0, sizeof *d);
	if (target_fpir == 0.0)
		target_fpir = HK_DEFAULT_FPIR;
	float thr = NAN;
	hk_status st = hk_calib_score_at_fpir(c, target_fpir, n, &thr);
	d->kind = HK_DECISION_IDENTIFY;
	d->n = n;
	d->target = target_fpir;
	d->threshold = thr;
	if (st)
		return st;
	/* No candidate at all (empty gallery): nobody can be taken for a
	 * customer. */
	if (isinf(best_score) && best_score < 0) {
		d->score = best_score;
		d->rate = 0.0;
		return HK_OK;
	}
	st = hk_calib_fpir(c, best_score, n, &d->rate);
	if (st)
		return st;
	d->score = best_score;
	d->match = best_score >= thr;
	return HK_OK;
}
