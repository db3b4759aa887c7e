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

struct hk_calib {
	uint8_t sha[32];
	size_t n;
	double *score; /* ascending */
	double *lfmr;  /* log10 FMR, strictly descending */
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
	free(c->score);
	free(c->lfmr);
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
	size_t pos = 0, ln = 0, want = 0;
	int too_long = 0, stage = 0; /* 0 magic, 1 embedder, 2 points, 3 rows, 4 end */
	hk_status st = HK_OK;
	while (!st && stage < 4 && next_line(text, len, &pos, &ln, line, sizeof line, &too_long)) {
		if (too_long) {
			st = hk__err(HK_E_FORMAT, "calibration line %zu: too long", ln);
			break;
		}
		char extra[8];
		if (stage == 0) {
			int v = 0;
			if (sscanf(line, "herken-calibration %d %7s", &v, extra) != 1 || v != 1)
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: expected \"herken-calibration 1\"", ln);
			stage = 1;
		} else if (stage == 1) {
			if (strncmp(line, "embedder ", 9) || hex_sha(line + 9, c->sha))
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: expected \"embedder <sha256 hex>\"", ln);
			stage = 2;
		} else if (stage == 2) {
			unsigned long n = 0;
			if (sscanf(line, "points %lu %7s", &n, extra) != 1 || n < 2 ||
			    n > CALIB_MAX_POINTS) {
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: expected \"points <2..%d>\"", ln,
				             CALIB_MAX_POINTS);
				break;
			}
			want = n;
			c->score = malloc(n * sizeof *c->score);
			c->lfmr = malloc(n * sizeof *c->lfmr);
			if (!c->score || !c->lfmr)
				st = hk__err(HK_E_NOMEM, "calibration table");
			stage = 3;
		} else if (stage == 3 && c->n == want) {
			if (strcmp(line, "end"))
				st = hk__err(HK_E_FORMAT, "calibration line %zu: expected \"end\" after %zu "
				                          "points", ln, want);
			stage = 4;
		} else {
			double s, f;
			if (sscanf(line, "%lf %lf %7s", &s, &f, extra) != 2 || !isfinite(s) ||
			    s < -1.0 || s > 1.0 || !(f > 0.0) || f > 1.0) {
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: expected \"<score in [-1,1]> <fmr in "
				             "(0,1]>\"", ln);
				break;
			}
			double lf = log10(f);
			if (c->n && (s <= c->score[c->n - 1] || lf >= c->lfmr[c->n - 1])) {
				st = hk__err(HK_E_FORMAT,
				             "calibration line %zu: not monotone (score must rise and FMR "
				             "fall strictly)", ln);
				break;
			}
			c->score[c->n] = s;
			c->lfmr[c->n] = lf;
			c->n++;
		}
	}
	if (!st && stage < 4)
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

hk_status hk_calib_builtin(const uint8_t sha256[32], hk_calib **out)
{
	if (!sha256 || !out)
		return hk__err(HK_E_INVALID, "hk_calib_builtin: NULL argument");
	*out = NULL;
	for (size_t i = 0; hk__calib_builtin[i]; i++) {
		const char *t = hk__calib_builtin[i], *e = strstr(t, "\nembedder ");
		uint8_t sha[32];
		if (!e || hex_sha(e + 10, sha) || memcmp(sha, sha256, 32))
			continue;
		return hk_calib_parse(t, strlen(t), sha256, out);
	}
	char h[65];
	sha_hex(sha256, h);
	return hk__err(HK_E_FORMAT,
	               "no calibration ships for embedder sha256 %s: calibrate it "
	               "(herken-bench calibrate) and load the file with hk_calib_load", h);
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
	hk_status st = hk__sha256_file(path, sha);
	return st ? st : hk_calib_builtin(sha, out);
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

hk_status hk_calib_fmr(const hk_calib *c, float score, double *fmr)
{
	if (!c || !fmr)
		return hk__err(HK_E_INVALID, "hk_calib_fmr: NULL argument");
	if (isnan(score))
		return hk__err(HK_E_RANGE, "hk_calib_fmr: score is NaN");
	double s = score;
	size_t n = c->n;
	if (s <= c->score[0]) {
		*fmr = pow(10.0, c->lfmr[0]);
		return HK_OK;
	}
	if (s >= c->score[n - 1]) {
		*fmr = pow(10.0, c->lfmr[n - 1]);
		return HK_OK;
	}
	size_t lo = 0, hi = n - 1; /* score[lo] < s < score[hi] */
	while (hi - lo > 1) {
		size_t m = lo + (hi - lo) / 2;
		if (c->score[m] <= s)
			lo = m;
		else
			hi = m;
	}
	double w = (s - c->score[lo]) / (c->score[hi] - c->score[lo]);
	*fmr = pow(10.0, c->lfmr[lo] + w * (c->lfmr[hi] - c->lfmr[lo]));
	return HK_OK;
}

hk_status hk_calib_score_at_fmr(const hk_calib *c, double fmr, float *score)
{
	if (!c || !score)
		return hk__err(HK_E_INVALID, "hk_calib_score_at_fmr: NULL argument");
	if (!(fmr > 0.0 && fmr < 1.0))
		return hk__err(HK_E_RANGE, "target FMR %g is outside (0, 1)", fmr);
	double lf = log10(fmr);
	size_t n = c->n;
	if (lf > c->lfmr[0] || lf < c->lfmr[n - 1])
		return hk__err(HK_E_RANGE,
		               "target FMR %g is beyond the calibration (it covers %.3g down to %.3g)",
		               fmr, pow(10.0, c->lfmr[0]), pow(10.0, c->lfmr[n - 1]));
	size_t lo = 0, hi = n - 1; /* lfmr[lo] >= lf >= lfmr[hi] */
	while (hi - lo > 1) {
		size_t m = lo + (hi - lo) / 2;
		if (c->lfmr[m] >= lf)
			lo = m;
		else
			hi = m;
	}
	double w = (c->lfmr[lo] - lf) / (c->lfmr[lo] - c->lfmr[hi]);
	double s = c->score[lo] + w * (c->score[hi] - c->score[lo]);
	/* The float at or above s whose FMR is at most the target. */
	float f = (float)s;
	if ((double)f < s)
		f = nextafterf(f, 2.0f);
	*score = f;
	return HK_OK;
}

/* 1 - (1 - p)^(1/n) and 1 - (1 - q)^n without cancellation. */
static double per_comparison(double fpir, uint64_t n)
{
	return -expm1(log1p(-fpir) / (double)n);
}

hk_status hk_calib_fpir(const hk_calib *c, float score, uint64_t n, double *fpir)
{
	if (!fpir)
		return hk__err(HK_E_INVALID, "hk_calib_fpir: NULL argument");
	if (n == 0)
		return hk__err(HK_E_RANGE, "gallery size N = 0: FPIR needs N >= 1");
	double f;
	hk_status st = hk_calib_fmr(c, score, &f);
	if (st)
		return st;
	*fpir = f >= 1.0 ? 1.0 : -expm1((double)n * log1p(-f));
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
	hk_status st = hk_calib_score_at_fmr(c, per_comparison(fpir, n), score);
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
