/* Score calibration and decisions at stated rates (core/calib.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"

/* The pinned MobileFaceNet (tools/models.sha256). */
static const char mfn_hex[] =
    "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b";

static void sha_of(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static const char small[] = "herken-calibration 1\n"
                            "# a comment\n"
                            "embedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
                            "points 4\n"
                            "0.10 1e-1\n"
                            "0.30 1e-3   # trailing comment\n"
                            "0.50 1e-5\n"
                            "0.70 1e-7\n"
                            "end\n";

static hk_calib *parse(const char *text)
{
	hk_calib *c = NULL;
	hk_status st = hk_calib_parse(text, strlen(text), NULL, &c);
	cr_assert_eq(st, HK_OK, "%s", hk_last_error());
	return c;
}

Test(calib, table_interpolates_log_linearly_both_ways)
{
	hk_calib *c = parse(small);
	double f;
	cr_assert_eq(hk_calib_fmr(c, 0.30f, &f), HK_OK);
	cr_expect(fabs(log10(f) + 3.0) < 1e-5, "FMR(0.3) = %g", f);
	cr_assert_eq(hk_calib_fmr(c, 0.40f, &f), HK_OK);
	cr_expect(fabs(log10(f) + 4.0) < 1e-5, "FMR(0.4) = %g, expected 1e-4", f);
	float s;
	cr_assert_eq(hk_calib_score_at_fmr(c, 1e-6, &s), HK_OK);
	cr_expect(fabsf(s - 0.60f) < 1e-5f, "score at 1e-6 = %f", s);
	/* ends are clamped */
	cr_assert_eq(hk_calib_fmr(c, -1.0f, &f), HK_OK);
	cr_expect(fabs(f - 0.1) < 1e-9);
	cr_assert_eq(hk_calib_fmr(c, 1.0f, &f), HK_OK);
	cr_expect(fabs(f - 1e-7) < 1e-15);
	hk_calib_destroy(c);
}

/* The precisions a calibration of the pinned embedder ships for. */
static const hk_precision shipped_prec[] = {HK_PREC_FP32, HK_PREC_BF16, HK_PREC_INT8};
#define N_SHIPPED (sizeof shipped_prec / sizeof shipped_prec[0])

static hk_calib *shipped(hk_precision p)
{
	uint8_t sha[32];
	sha_of(mfn_hex, sha);
	hk_calib *c = NULL;
	cr_assert_eq(hk_calib_builtin_at(sha, p, &c), HK_OK, "precision %d: %s", p, hk_last_error());
	cr_assert_eq(memcmp(hk_calib_embedder(c), sha, 32), 0);
	cr_assert_eq(hk_calib_precision(c), p);
	cr_assert_eq(hk_calib_check(c, sha, p), HK_OK, "%s", hk_last_error());
	return c;
}

/* The shipped calibrations (one per precision): present for the pinned
 * embedder, monotone, and FMR -> score -> FMR round trips. */
static void shipped_monotone(hk_precision p)
{
	hk_calib *c = shipped(p);
	double prev = 2.0;
	for (int i = -100; i <= 100; i++) {
		double f;
		cr_assert_eq(hk_calib_fmr(c, i / 100.0f, &f), HK_OK);
		cr_assert(f <= prev, "FMR rises at score %.2f: %g > %g", i / 100.0, f, prev);
		cr_assert(f > 0 && f <= 1);
		prev = f;
	}
	cr_expect(prev < 1e-6, "the table reaches down to FMR %g only", prev);
	float sprev = -2.0f;
	for (double fmr = 1e-2; fmr >= 1e-9; fmr /= 10) {
		float s;
		double back;
		cr_assert_eq(hk_calib_score_at_fmr(c, fmr, &s), HK_OK, "%s", hk_last_error());
		cr_assert(s > sprev, "threshold falls from FMR %g on", fmr);
		cr_assert_eq(hk_calib_fmr(c, s, &back), HK_OK);
		cr_expect(back <= fmr * 1.0001 && back > fmr * 0.9, "FMR %g -> %f -> %g", fmr, s, back);
		sprev = s;
	}
	/* the open-set table too: q falls, FPIR(N) rises with N */
	prev = 2.0;
	for (int i = 0; i <= 100; i++) {
		double f, f10;
		cr_assert_eq(hk_calib_fpir(c, i / 100.0f, 1, &f), HK_OK);
		cr_assert_eq(hk_calib_fpir(c, i / 100.0f, 10, &f10), HK_OK);
		cr_assert(f <= prev, "q rises at score %.2f: %g > %g", i / 100.0, f, prev);
		cr_assert(f10 >= f, "FPIR falls with N at score %.2f", i / 100.0);
		prev = f;
	}
	hk_calib_destroy(c);
}

Test(calib, shipped_tables_are_monotone_and_invert)
{
	for (size_t i = 0; i < N_SHIPPED; i++)
		shipped_monotone(shipped_prec[i]);
}

static void rises_with_n(hk_precision p)
{
	hk_calib *c = shipped(p);
	float prev = -2.0f;
	for (uint64_t n = 1; n <= 100000; n *= 10) {
		float s;
		cr_assert_eq(hk_calib_score_at_fpir(c, 1e-3, n, &s), HK_OK, "N=%llu: %s",
		             (unsigned long long)n, hk_last_error());
		cr_assert(s > prev, "N = %llu: threshold %f not above %f", (unsigned long long)n, s,
		          prev);
		double fpir;
		cr_assert_eq(hk_calib_fpir(c, s, n, &fpir), HK_OK);
		cr_expect(fpir <= 1e-3 * 1.001 && fpir > 0.9e-3, "FPIR at its threshold %g", fpir);
		prev = s;
	}
	/* The shipped table carries a measured open-set section, so the 1:N
	 * threshold for N = 1 is not the 1:1 one; a format-1 table without it
	 * falls back to q = FMR exactly. */
	cr_expect(hk_calib_has_openset(c));
	hk_calib *f1 = parse(small);
	cr_expect(!hk_calib_has_openset(f1));
	float s1, s2;
	cr_assert_eq(hk_calib_score_at_fpir(f1, 1e-4, 1, &s1), HK_OK);
	cr_assert_eq(hk_calib_score_at_fmr(f1, 1e-4, &s2), HK_OK);
	cr_expect(fabsf(s1 - s2) < 1e-5f);
	hk_calib_destroy(f1);
	hk_calib_destroy(c);
}

Test(calib, threshold_rises_with_gallery_size)
{
	for (size_t i = 0; i < N_SHIPPED; i++)
		rises_with_n(shipped_prec[i]);
}

static const char small2[] = "herken-calibration 2\n"
                             "embedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
                             "points 2\n"
                             "0.10 1e-1\n"
                             "0.70 1e-7\n"
                             "openset 3   # q per (stranger, enrolled person)\n"
                             "0.10 1e-1\n"
                             "0.50 1e-4\n"
                             "0.90 1e-6\n"
                             "end\n";

/* Format 2: FMR from the 1:1 table, FPIR from the open-set table. */
Test(calib, openset_table_drives_fpir)
{
	hk_calib *c = parse(small2);
	cr_expect(hk_calib_has_openset(c));
	double f, p;
	cr_assert_eq(hk_calib_fmr(c, 0.40f, &f), HK_OK);
	cr_expect(fabs(log10(f) + 4.0) < 1e-5, "FMR(0.4) = %g", f);
	cr_assert_eq(hk_calib_fpir(c, 0.70f, 1, &p), HK_OK);
	cr_expect(fabs(log10(p) + 5.0) < 1e-5, "FPIR(0.7, N=1) = %g, expected q = 1e-5", p);
	cr_assert_eq(hk_calib_fpir(c, 0.70f, 100, &p), HK_OK);
	cr_expect(fabs(p - (1 - pow(1 - 1e-5, 100))) < 1e-9, "FPIR(0.7, N=100) = %g", p);
	float s;
	cr_assert_eq(hk_calib_score_at_fpir(c, 1e-3, 100, &s), HK_OK, "%s", hk_last_error());
	cr_expect(fabsf(s - 0.70f) < 1e-3f, "threshold %f for q ~ 1e-5", s);
	/* beyond the open-set table (q < 1e-6): a range error naming it */
	cr_expect_eq(hk_calib_score_at_fpir(c, 1e-3, 10000, &s), HK_E_RANGE);
	cr_expect(strstr(hk_last_error(), "open-set"), "%s", hk_last_error());
	hk_decision d;
	cr_assert_eq(hk_calib_decide_identify(c, 0.75f, 100, 1e-3, &d), HK_OK);
	cr_expect_eq(d.match, 1);
	cr_assert_eq(hk_calib_fpir(c, 0.75f, 100, &p), HK_OK);
	cr_expect_eq(d.rate, p);
	hk_calib_destroy(c);
	/* bad format-2 files */
	const char *hdr = "herken-calibration 2\nembedder "
	                  "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                  "points 2\n0.1 1e-1\n0.7 1e-7\n";
	const char *tails[] = {
	    "openset 2\n0.1 1e-1\nend\n",           /* too few rows */
	    "openset 2\n0.5 1e-3\n0.4 1e-4\nend\n", /* score falls */
	    "openset 2\n0.4 1e-3\n0.5 1e-2\nend\n", /* rate rises */
	    "openset 1\n0.4 1e-3\nend\n",           /* n < 2 */
	    "openset 2\n0.4 1e-3\n0.5 1e-4\n",      /* no end */
	    "points 2\n0.4 1e-3\n0.5 1e-4\nend\n",  /* not an openset section */
	};
	for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
		char buf[1024];
		snprintf(buf, sizeof buf, "%s%s", hdr, tails[i]);
		hk_calib *x = (hk_calib *)1;
		cr_expect_eq(hk_calib_parse(buf, strlen(buf), NULL, &x), HK_E_FORMAT, "case %zu", i);
		cr_expect_null(x);
		cr_expect(strstr(hk_last_error(), "calibration"), "%s", hk_last_error());
	}
	/* a format-1 file cannot carry an openset section */
	const char v1[] = "herken-calibration 1\nembedder "
	                  "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                  "points 2\n0.1 1e-1\n0.7 1e-7\nopenset 2\n0.1 1e-1\n0.7 1e-7\nend\n";
	hk_calib *x = NULL;
	cr_expect_eq(hk_calib_parse(v1, strlen(v1), NULL, &x), HK_E_FORMAT);
}

Test(calib, decisions_carry_their_rate)
{
	hk_calib *c = parse(small);
	hk_decision d;
	/* 1:1 at FMR 1e-4: threshold 0.4 */
	cr_assert_eq(hk_calib_decide_verify(c, 0.45f, 1e-4, &d), HK_OK);
	cr_expect_eq(d.kind, HK_DECISION_VERIFY);
	cr_expect_eq(d.match, 1);
	cr_expect(fabsf(d.threshold - 0.40f) < 1e-5f);
	cr_expect(fabs(log10(d.rate) + 4.5) < 1e-4, "rate %g, expected 10^-4.5", d.rate);
	cr_expect_eq(d.target, 1e-4);
	cr_assert_eq(hk_calib_decide_verify(c, 0.35f, 1e-4, &d), HK_OK);
	cr_expect_eq(d.match, 0);
	cr_expect(d.rate > 1e-4);
	/* 1:N at FPIR 1e-3 for N = 100: per comparison ~1e-5 -> threshold ~0.5 */
	cr_assert_eq(hk_calib_decide_identify(c, 0.55f, 100, 1e-3, &d), HK_OK);
	cr_expect_eq(d.kind, HK_DECISION_IDENTIFY);
	cr_expect_eq(d.n, 100);
	cr_expect_eq(d.match, 1);
	cr_expect(fabsf(d.threshold - 0.50f) < 1e-3f, "threshold %f", d.threshold);
	cr_expect(d.rate < 1e-3 && d.rate > 1e-4, "FPIR at 0.55 for N=100: %g", d.rate);
	/* the same score with a gallery 100x larger is no longer a match */
	cr_assert_eq(hk_calib_decide_identify(c, 0.55f, 10000, 1e-3, &d), HK_OK);
	cr_expect_eq(d.match, 0);
	cr_expect(d.rate > 1e-3, "FPIR %g", d.rate);
	/* defaults */
	cr_assert_eq(hk_calib_decide_identify(c, 0.9f, 10, 0, &d), HK_OK);
	cr_expect_eq(d.target, HK_DEFAULT_FPIR);
	cr_assert_eq(hk_calib_decide_verify(c, 0.9f, 0, &d), HK_OK);
	cr_expect_eq(d.target, HK_DEFAULT_FMR);
	hk_calib_destroy(c);
}

Test(calib, bad_rates_and_sizes_are_range_errors)
{
	hk_calib *c = parse(small);
	float s;
	double f;
	hk_decision d;
	const double bad[] = {0.0, 1.0, -0.1, 1.5, NAN, INFINITY};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(hk_calib_score_at_fmr(c, bad[i], &s), HK_E_RANGE, "fmr %g", bad[i]);
		cr_expect_eq(hk_calib_score_at_fpir(c, bad[i], 10, &s), HK_E_RANGE, "fpir %g", bad[i]);
		cr_expect(strstr(hk_last_error(), "outside (0, 1)"), "%s", hk_last_error());
	}
	cr_expect_eq(hk_calib_decide_verify(c, 0.5f, -1e-3, &d), HK_E_RANGE);
	cr_expect_eq(hk_calib_decide_identify(c, 0.5f, 10, 2.0, &d), HK_E_RANGE);
	cr_expect_eq(hk_calib_score_at_fpir(c, 1e-3, 0, &s), HK_E_RANGE);
	cr_expect(strstr(hk_last_error(), "N = 0"), "%s", hk_last_error());
	cr_expect_eq(hk_calib_fpir(c, 0.5f, 0, &f), HK_E_RANGE);
	cr_expect_eq(hk_calib_decide_identify(c, 0.5f, 0, 1e-3, &d), HK_E_RANGE);
	cr_expect_eq(hk_calib_fmr(c, NAN, &f), HK_E_RANGE);
	/* beyond the table: never a made-up threshold */
	cr_expect_eq(hk_calib_score_at_fmr(c, 1e-9, &s), HK_E_RANGE);
	cr_expect(strstr(hk_last_error(), "beyond the calibration"), "%s", hk_last_error());
	cr_expect_eq(hk_calib_score_at_fpir(c, 1e-3, 1000000000ull, &s), HK_E_RANGE);
	hk_calib_destroy(c);
}

Test(calib, bad_files_are_format_errors)
{
	hk_calib *c = (hk_calib *)1;
	/* missing */
	cr_expect_eq(hk_calib_load("/nonexistent/herken.calib", NULL, &c), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "/nonexistent/herken.calib"), "%s", hk_last_error());
	cr_expect_null(c);
	/* truncated: every proper prefix that cuts a line or the end marker */
	for (size_t len = 0; len < sizeof small - 1; len += 7) {
		cr_expect_eq(hk_calib_parse(small, len, NULL, &c), HK_E_FORMAT, "prefix %zu", len);
		cr_expect_null(c);
	}
	/* through a file too */
	char path[] = "/tmp/herken-calib-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	ssize_t cut = (ssize_t)strlen(small) - 4; /* without "end\n" */
	cr_assert_eq(write(fd, small, (size_t)cut), cut);
	close(fd);
	cr_expect_eq(hk_calib_load(path, NULL, &c), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), path), "%s", hk_last_error());
	cr_expect(strstr(hk_last_error(), "truncated"), "%s", hk_last_error());
	unlink(path);
	/* another model */
	uint8_t other[32];
	sha_of(mfn_hex, other);
	other[31] ^= 1;
	cr_expect_eq(hk_calib_parse(small, strlen(small), other, &c), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "d8ba40c0127fb8ca"), "%s", hk_last_error());
	cr_expect_eq(hk_calib_builtin(other, &c), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "no calibration ships"), "%s", hk_last_error());
	/* not monotone, bad values, bad header */
	const char *bad[] = {
	    "herken-calibration 1\nembedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	    "points 2\n0.5 1e-3\n0.4 1e-4\nend\n",
	    "herken-calibration 1\nembedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	    "points 2\n0.4 1e-3\n0.5 1e-2\nend\n",
	    "herken-calibration 1\nembedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	    "points 2\n0.4 0\n0.5 1e-2\nend\n",
	    "herken-calibration 1\nembedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	    "points 2\n0.4 1e-3\n0.5 1e-4\n0.6 1e-5\nend\n",
	    "herken-calibration 2\n",
	    "herken-calibration 1\nembedder d8ba40\npoints 2\n0.4 1e-3\n0.5 1e-4\nend\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(hk_calib_parse(bad[i], strlen(bad[i]), NULL, &c), HK_E_FORMAT, "case %zu",
		             i);
		cr_expect(strstr(hk_last_error(), "calibration"), "%s", hk_last_error());
	}
}

/* Format 3 names the precision; the check refuses another model or
 * another precision with a message naming both. */
Test(calib, precision_is_part_of_the_key)
{
	static const char v3[] = "herken-calibration 3\n"
	                         "embedder d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                         "precision int8\n"
	                         "points 2\n0.1 1e-1\n0.7 1e-7\n"
	                         "openset 2\n0.1 1e-1\n0.9 1e-6\nend\n";
	uint8_t sha[32];
	sha_of(mfn_hex, sha);
	hk_calib *c = parse(v3);
	cr_expect_eq(hk_calib_precision(c), HK_PREC_INT8);
	cr_expect_eq(hk_calib_check(c, sha, HK_PREC_INT8), HK_OK, "%s", hk_last_error());
	cr_expect_eq(hk_calib_check(c, sha, HK_PREC_FP32), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "int8") && strstr(hk_last_error(), "fp32"), "%s",
	          hk_last_error());
	uint8_t other[32];
	memcpy(other, sha, 32);
	other[0] ^= 0x80;
	cr_expect_eq(hk_calib_check(c, other, HK_PREC_INT8), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "d8ba40c0127fb8ca") && strstr(hk_last_error(), "58ba40c0"),
	          "%s", hk_last_error());
	hk_calib_destroy(c);
	/* formats 1 and 2 were fitted on fp32 embeddings */
	c = parse(small);
	cr_expect_eq(hk_calib_precision(c), HK_PREC_FP32);
	cr_expect_eq(hk_calib_check(c, sha, HK_PREC_INT8), HK_E_FORMAT);
	hk_calib_destroy(c);
	/* a format-3 file without a precision line, or with a bad one */
	const char *bad[] = {"herken-calibration 3\nembedder "
	                     "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                     "points 2\n0.1 1e-1\n0.7 1e-7\nend\n",
	                     "herken-calibration 3\nembedder "
	                     "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                     "precision auto\npoints 2\n0.1 1e-1\n0.7 1e-7\nend\n",
	                     "herken-calibration 3\nembedder "
	                     "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b\n"
	                     "precision int8 fp32\npoints 2\n0.1 1e-1\n0.7 1e-7\nend\n",
	                     "herken-calibration 4\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hk_calib *x = (hk_calib *)1;
		cr_expect_eq(hk_calib_parse(bad[i], strlen(bad[i]), NULL, &x), HK_E_FORMAT, "case %zu",
		             i);
		cr_expect_null(x);
		cr_expect(strstr(hk_last_error(), i < 3 ? "precision" : "herken-calibration"), "%s",
		          hk_last_error());
	}
	/* the shipped tables: each precision its own, AUTO is no precision */
	hk_calib *f = shipped(HK_PREC_FP32), *q = shipped(HK_PREC_INT8);
	float tf, tq;
	cr_assert_eq(hk_calib_score_at_fpir(f, 1e-3, 1000, &tf), HK_OK);
	cr_assert_eq(hk_calib_score_at_fpir(q, 1e-3, 1000, &tq), HK_OK);
	cr_expect_neq(tf, tq, "int8 and fp32 tables give the same threshold %f", tf);
	cr_expect_eq(hk_calib_check(q, sha, HK_PREC_FP32), HK_E_FORMAT);
	hk_calib_destroy(f);
	hk_calib_destroy(q);
	hk_calib *x = (hk_calib *)1;
	cr_expect_eq(hk_calib_builtin_at(sha, HK_PREC_AUTO, &x), HK_E_INVALID);
	cr_expect_null(x);
	cr_expect_eq(hk_calib_builtin_at(other, HK_PREC_INT8, &x), HK_E_FORMAT);
	cr_expect(strstr(hk_last_error(), "no calibration ships"), "%s", hk_last_error());
}

/* An engine gets the table of the precision its embedder runs in: int8
 * when it runs int8 (explicitly or by AUTO), fp32 when fp32. */
static void engine_table(hk_precision want)
{
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.precision = want;
	ep.threads = 1;
	hk_engine *e = NULL;
	hk_status st = hk_engine_create(&ep, &e);
	if (st == HK_E_NOT_FOUND || (st == HK_E_UNSUPPORTED && want == HK_PREC_INT8))
		cr_skip_test("%s", hk_last_error());
	cr_assert_eq(st, HK_OK, "%s", hk_last_error());
	hk_calib *c = NULL;
	cr_assert_eq(hk_calib_for_engine(e, &c), HK_OK, "%s", hk_last_error());
	uint8_t sha[32];
	sha_of(mfn_hex, sha);
	hk_precision got = hk_calib_precision(c);
	if (want != HK_PREC_AUTO)
		cr_expect_eq(got, want, "engine at %d got the table of %d", want, got);
	/* whatever AUTO chose, the table is that precision's */
	cr_expect_eq(hk_calib_check(c, sha, got), HK_OK, "%s", hk_last_error());
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.kind = HK_MODEL_EMBEDDER;
	mp.threads = 1;
	mp.precision = want;
	char path[4200];
	snprintf(path, sizeof path, "%s/MobileFaceNet.tflite", hk_model_dir(NULL));
	hk_model *m = NULL;
	hk_model_info mi;
	cr_assert_eq(hk_model_load(path, &mp, &m), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_model_get_info(m, &mi), HK_OK);
	cr_expect_eq((uint32_t)got, mi.precision, "table %d, embedder runs %u", got, mi.precision);
	hk_model_destroy(m);
	hk_calib_destroy(c);
	hk_engine_destroy(e);
}

Test(calib, engine_int8_gets_the_int8_table, .timeout = 120)
{
	engine_table(HK_PREC_INT8);
}

Test(calib, engine_fp32_and_auto_get_their_tables, .timeout = 120)
{
	engine_table(HK_PREC_FP32);
	engine_table(HK_PREC_AUTO);
}

#include "test_store_util.h"

/* The durable gallery holds the operating point in its policy (persisted),
 * a call may override it, and every decision carries its rate. */
Test(calib, store_policy_operating_point)
{
	char dir[64];
	st_tmpdir(dir, sizeof dir);
	uint8_t key[32];
	st_key(key, 3);
	int64_t clock = ST_T0;
	hk_store_params sp;
	st_params(&sp, key, 8, &clock);
	sp.policy.allow_identify = 1;
	sp.policy.target_fpir = 2.0; /* out of range */
	hk_store *st = NULL;
	cr_assert_eq(hk_store_open(dir, &sp, &st), HK_E_RANGE);
	sp.policy.target_fpir = 1e-2;
	sp.policy.target_fmr = 1e-3;
	cr_assert_eq(hk_store_open(dir, &sp, &st), HK_OK, "%s", hk_last_error());
	hk_calib *c = parse(small);
	hk_decision d;
	hk_store_match m[2];
	size_t nm = 9;
	float q[8], v[8];
	st_vec(q, 8, 1);
	/* empty gallery: nobody can be matched, rate 0 */
	cr_assert_eq(hk_store_identify_at(st, c, q, 0, HK_SOURCE_STREAM, 2, m, &nm, &d), HK_OK,
	             "%s", hk_last_error());
	cr_expect_eq(nm, 0);
	cr_expect_eq(d.n, 0);
	cr_expect_eq(d.match, 0);
	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", i);
		hk_consent cs = st_consent(name, clock);
		st_vec(v, 8, 100 + (uint64_t)i);
		cr_assert_eq(hk_store_enroll(st, &cs, v, 1, NULL), HK_OK, "%s", hk_last_error());
	}
	/* the enrolled vector itself: score 1, a match at the policy's FPIR */
	st_vec(q, 8, 100);
	cr_assert_eq(hk_store_identify_at(st, c, q, 0, HK_SOURCE_STREAM, 2, m, &nm, &d), HK_OK,
	             "%s", hk_last_error());
	cr_expect_eq(d.kind, HK_DECISION_IDENTIFY);
	cr_expect_eq(d.n, 10);
	cr_expect_eq(d.target, 1e-2);
	cr_expect_eq(d.match, 1);
	cr_expect_geq(nm, 1);
	cr_expect_str_eq(m[0].subject, "s0");
	float thr;
	cr_assert_eq(hk_calib_score_at_fpir(c, 1e-2, 10, &thr), HK_OK);
	cr_expect_eq(d.threshold, thr);
	cr_expect(d.rate < 1e-6, "FPIR at score 1: %g", d.rate);
	/* override per call */
	cr_assert_eq(hk_store_identify_at(st, c, q, 1e-4, HK_SOURCE_STREAM, 2, m, &nm, &d), HK_OK);
	cr_expect_eq(d.target, 1e-4);
	cr_assert_eq(hk_store_verify_at(st, c, "s1", q, 0, HK_SOURCE_DESK, &d), HK_OK);
	cr_expect_eq(d.kind, HK_DECISION_VERIFY);
	cr_expect_eq(d.target, 1e-3);
	cr_expect_eq(d.match, d.score >= d.threshold);
	double f;
	cr_assert_eq(hk_calib_fmr(c, d.score, &f), HK_OK);
	cr_expect_eq(d.rate, f);
	cr_expect_eq(hk_store_verify_at(st, c, "s1", q, 1.5, HK_SOURCE_DESK, &d), HK_E_RANGE);
	/* the policy survives a reopen; a bad one is refused */
	hk_store_policy p = {.allow_identify = 1, .target_fmr = 0, .target_fpir = -1};
	cr_expect_eq(hk_store_set_policy(st, &p), HK_E_RANGE);
	p.target_fpir = 1e-3;
	cr_assert_eq(hk_store_set_policy(st, &p), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_store_close(st), HK_OK);
	sp.flags = 0;
	cr_assert_eq(hk_store_open(dir, &sp, &st), HK_OK, "%s", hk_last_error());
	hk_store_info info;
	cr_assert_eq(hk_store_get_info(st, &info), HK_OK);
	cr_expect_eq(info.policy.target_fpir, 1e-3);
	cr_expect_eq(info.policy.target_fmr, 0);
	cr_assert_eq(hk_store_verify_at(st, c, "s1", q, 0, HK_SOURCE_DESK, &d), HK_OK);
	cr_expect_eq(d.target, HK_DEFAULT_FMR);
	hk_store_close(st);
	hk_calib_destroy(c);
	st_rmrf(dir);
}

#include "fuzz_calib_one.h"
#include "test_nn_util.h"

static void calib_replay_one(const char *path, uint8_t *d, size_t len, void *ctx)
{
	int *parsed = ctx;
	cr_expect_eq(fuzz_calib_one(d, len), 0, "%s: an accepted table breaks its invariants", path);
	hk_calib *c = NULL;
	if (hk_calib_parse((const char *)d, len, NULL, &c) == HK_OK)
		++*parsed;
	hk_calib_destroy(c);
}

/* tests/corpus/calib (seeds + what the fuzzer found, tests/fuzz_calib.c)
 * and the shipped tables in core/calib (the fuzzer's second seed
 * directory): every input is refused or parses into a table that keeps
 * its rules. */
Test(calib_fuzz, corpus_replay)
{
	int parsed = 0;
	int n = tn_corpus_each("calib", calib_replay_one, &parsed);
	int shipped = tn_dir_each("core/calib", calib_replay_one, &parsed);
	if (n < 0 || shipped < 0)
		cr_skip_test("tests/corpus/calib or core/calib absent (run from the repository root)");
	cr_expect_geq(shipped, 3, "shipped tables replayed: %d", shipped);
	n += shipped;
	cr_expect_geq(n, 8, "corpus inputs replayed: %d", n);
	cr_expect_geq(parsed, 4, "seeds that parse: %d of %d", parsed, n);
}
