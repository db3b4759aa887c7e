/* int8 guards of the detectors and O-Net on the golden inputs
 * (core/pipeline/guard.c): the same faces on the six golden photos, the
 * same landmarks on the 22 golden faces. The ranges table's mark must tell
 * the truth: HK_PREC_AUTO may take int8 for a model only where its guard
 * holds here. Skips with a message when the models or the golden data are
 * absent. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "pipeline/pipeline.h"
#include "test_nn_util.h"

/* The golden inputs of a detector (6 photos) or O-Net (its 22 faces). */
static size_t golden_inputs(int det, float **out)
{
	const size_t item = det ? (size_t)HK__DET_SIZE * HK__DET_SIZE * 3 : (size_t)HK__ONET_SIZE * HK__ONET_SIZE * 3;
	float *in = malloc(48 * item * sizeof(float));
	size_t n = 0;
	cr_assert_not_null(in);
	for (int s = 1; s <= 6; s++)
		for (int f = 0; f < (det ? 1 : 8); f++) {
			char rel[96], p[600];
			if (det)
				snprintf(rel, sizeof rel, "detector/sample%d.det_input_1x192x192x3.f32", s);
			else
				snprintf(rel, sizeof rel, "onet/sample%d_f%d.onet_input_1x48x48x3.f32", s, f);
			if (tn_golden(p, sizeof p, rel) && !tn_read_f32(p, in + n * item, item))
				n++;
		}
	if (!n) {
		free(in);
		cr_skip_test("golden %s inputs absent (HERKEN_SHARED)", det ? "detector" : "O-Net");
	}
	*out = in;
	return n;
}

static hk_model *load_prec(const char *path, uint32_t prec)
{
	hk_model_params p;
	hk_model_default_params(&p);
	p.threads = 1;
	p.precision = prec;
	hk_model *m = NULL;
	hk_status s = hk_model_load(path, &p, &m);
	if (s == HK_E_UNSUPPORTED && prec == HK_PREC_INT8 && strstr(hk_last_error(), "needs"))
		cr_skip_test("%s", hk_last_error());
	cr_assert_eq(s, HK_OK, "load %s: %s", path, hk_last_error());
	return m;
}

/* Guard figures of one model; *auto_int8: HK_PREC_AUTO took int8. */
static int guard_of(const char *file, int det, hk__det_guard *dg, hk__onet_guard *og, int *auto_int8)
{
	char mp[512];
	if (!tn_model(mp, sizeof mp, file))
		cr_skip_test("%s absent (run `make models` or set HERKEN_MODELS)", file);
	float *in = NULL;
	size_t n = golden_inputs(det, &in);
	hk_model *m32 = load_prec(mp, HK_PREC_FP32), *m8 = load_prec(mp, HK_PREC_INT8);
	hk_model_info info;
	cr_assert_eq(hk_model_get_info(m8, &info), HK_OK);
	cr_expect_eq(info.precision, HK_PREC_INT8);
	cr_expect_gt(info.int8_nodes, det ? 8u : 3u, "%s: %u nodes in int8", file, info.int8_nodes);
	memset(dg, 0, sizeof *dg);
	memset(og, 0, sizeof *og);
	cr_assert_eq(hk__guard_models(m32, m8, in, n, dg, og), HK_OK, "%s", hk_last_error());
	hk_model_destroy(m8);
	hk_model *ma = load_prec(mp, HK_PREC_AUTO);
	cr_assert_eq(hk_model_get_info(ma, &info), HK_OK);
	*auto_int8 = info.precision == HK_PREC_INT8;
	hk_model_destroy(ma);
	hk_model_destroy(m32);
	free(in);
	return det ? hk__det_guard_holds(dg) : hk__onet_guard_holds(og);
}

static void det_guard(const char *file, int nfaces)
{
	hk__det_guard g;
	hk__onet_guard unused;
	int auto8;
	int holds = guard_of(file, 1, &g, &unused, &auto8);
	cr_expect_eq(g.images, 6u);
	cr_expect_eq(g.faces, (size_t)nfaces, "%s: %zu fp32 faces on the golden photos", file, g.faces);
	/* a broken int8 path loses most faces, a weak calibration one or two */
	cr_expect_geq(g.matched + 2, g.faces, "%s: int8 found %zu of %zu faces", file, g.matched, g.faces);
	cr_expect_gt(g.max_score_diff, 0, "%s: int8 scores identical to fp32 (path not taken?)", file);
	cr_expect(!auto8 || holds,
	          "%s: AUTO took int8 but the guard fails (%zu of %zu found, %zu extra, IoU min %.3f, "
	          "score diff %.3f): mark it guard-fail", file, g.matched, g.faces, g.extra, g.min_iou,
	          g.max_score_diff);
}

Test(int8_guard, detector_dense, .timeout = 120)
{
	det_guard("face_detection_full_range.tflite", 21);
}

Test(int8_guard, detector_sparse, .timeout = 120)
{
	det_guard("face_detection_full_range_sparse.tflite", 22);
}

Test(int8_guard, onet, .timeout = 120)
{
	hk__det_guard unused;
	hk__onet_guard g;
	int auto8;
	int holds = guard_of("onet.tflite", 0, &unused, &g, &auto8);
	cr_expect_eq(g.faces, 22u);
	cr_expect_lt(g.max_dev, 0.2, "O-Net int8 landmarks off by %.3f eye distances (broken path?)", g.max_dev);
	cr_expect_gt(g.max_dev, 0, "O-Net int8 identical to fp32 (path not taken?)");
	cr_expect(!auto8 || holds, "AUTO took int8 for O-Net but its guard fails: shift %.4f, prob %.4f",
	          g.max_dev, g.max_prob_diff);
	/* with VNNI the committed calibration holds (measured: 0.016, 0.024) */
	if (auto8)
		cr_expect(holds);
}
