/* One input of the calibration parser's fuzz harness (tests/fuzz_calib.c),
 * also replayed by tests/test_calib.c: parse the bytes as a calibration
 * file and, when they parse, check what every accepted table must keep:
 * rates in (0, 1], monotone in the score both ways, thresholds inside
 * [-1, 1]. 0 when the input is refused or keeps them, -1 otherwise. */
#ifndef HK_TEST_FUZZ_CALIB_ONE_H
#define HK_TEST_FUZZ_CALIB_ONE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "herken.h"

static int fuzz_calib_one(const uint8_t *data, size_t size)
{
	hk_calib *c = NULL;
	if (hk_calib_parse((const char *)data, size, NULL, &c) != HK_OK)
		return c == NULL ? 0 : -1;
	int bad = 0;
	hk_precision p = hk_calib_precision(c);
	bad |= p != HK_PREC_FP32 && p != HK_PREC_BF16 && p != HK_PREC_INT8;
	bad |= hk_calib_check(c, hk_calib_embedder(c), p) != HK_OK;
	double prev_f = 2.0, prev_q = 2.0;
	for (int i = -64; i <= 64 && !bad; i++) {
		float s = i / 64.0f;
		double f = NAN, q = NAN;
		bad |= hk_calib_fmr(c, s, &f) != HK_OK || hk_calib_fpir(c, s, 1, &q) != HK_OK;
		bad |= !(f > 0 && f <= 1 && f <= prev_f) || !(q > 0 && q <= 1 && q <= prev_q);
		prev_f = f;
		prev_q = q;
	}
	static const double rate[] = {1e-1, 1e-3, 1e-6, 1e-12};
	for (size_t k = 0; k < sizeof rate / sizeof rate[0] && !bad; k++) {
		float s;
		hk_status st = hk_calib_score_at_fmr(c, rate[k], &s);
		bad |= st != HK_OK && st != HK_E_RANGE;
		bad |= st == HK_OK && !(s >= -1.0f && s <= 1.0f);
		st = hk_calib_score_at_fpir(c, rate[k], 1000, &s);
		bad |= st != HK_OK && st != HK_E_RANGE;
		bad |= st == HK_OK && !(s >= -1.0f && s <= 1.0f);
		hk_decision d;
		st = hk_calib_decide_identify(c, 0.5f, 1000, rate[k], &d);
		bad |= st == HK_OK && d.match != (0.5f >= d.threshold);
	}
	hk_calib_destroy(c);
	return bad ? -1 : 0;
}

#endif
