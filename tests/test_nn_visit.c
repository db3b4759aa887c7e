/* hk__nn_exec_visit on int8 runs: every materialised tensor reaches the
 * visitor as fp32 (s8 dequantised with its step), in node order, and the
 * last one is what hk__nn_exec_run returns. The per-layer error report
 * (`herken-bench int8-calibrate --layers`) relies on it. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"
#include "nn/exec.h"
#include "test_nn_util.h"

typedef struct seen {
	const hk__nn_exec *x;
	int n, bad_step, last;
	size_t last_count;
	float out[192];
} seen;

/* s8 holds -128 too: oneDNN saturates to the type's range */
static void on_tensor(void *user, int t, const float *v, size_t count)
{
	seen *s = user;
	s->n++;
	s->last = t;
	s->last_count = count;
	if (s->x->dt[t] == DT_S8)
		for (size_t i = 0; i < count; i++) {
			float k = v[i] / s->x->qs[t];
			if (fabsf(k - nearbyintf(k)) > 1e-3f || fabsf(k) > 128.5f)
				s->bad_step++;
		}
	if (count == 192)
		memcpy(s->out, v, sizeof s->out);
}

Test(nn_visit, int8_tensors_as_fp32, .timeout = 120)
{
	char mp[512], gp[512];
	if (!tn_model(mp, sizeof mp, "MobileFaceNet.tflite"))
		cr_skip_test("MobileFaceNet.tflite absent (make models)");
	if (!tn_golden(gp, sizeof gp, "mobilefacenet/sample1_f0.mobilefacenet_input_1x112x112x3.f32"))
		cr_skip_test("HERKEN_SHARED unset: golden tensors absent");
	static float in[112 * 112 * 3];
	if (tn_read_f32(gp, in, sizeof in / sizeof in[0]))
		cr_skip_test("golden file %s absent", gp);
	if (hk__int8_missing_isa())
		cr_skip_test("oneDNN int8 needs %s", hk__int8_missing_isa());
	size_t len = 0;
	void *data = tn_read_file(mp, &len);
	cr_assert(data);
	hk__nn_net net;
	cr_assert_eq(hk__nn_build(data, len, &net), HK_OK, "%s", hk_last_error());
	char sha[65];
	hk__sha256_hex(data, len, sha);
	float *amax = NULL;
	cr_assert_eq(hk__int8_ranges(sha, &net, 0, &amax), HK_OK, "%s", hk_last_error());
	hk__nn_exec x;
	cr_assert_eq(hk__nn_exec_init(&x, &net, 1, NULL, HK_PREC_INT8, amax), HK_OK, "%s", hk_last_error());
	seen s = {.x = &x};
	cr_assert_eq(hk__nn_exec_visit(&x, in, 1, on_tensor, &s), HK_OK, "%s", hk_last_error());
	cr_expect_eq(s.n, net.nnodes + 1, "%d tensors visited, %d nodes", s.n, net.nnodes);
	cr_expect_eq(s.bad_step, 0, "%d s8 values off their step", s.bad_step);
	cr_expect_eq(s.last, net.outputs[0]);
	static float out[192];
	float *o = out;
	cr_assert_eq(hk__nn_exec_run(&x, in, 1, &o), HK_OK, "%s", hk_last_error());
	cr_expect_eq(s.last_count, 192u);
	cr_expect_eq(memcmp(out, s.out, sizeof out), 0, "the visited output is not what run returns");
	double n2 = 0;
	for (int i = 0; i < 192; i++)
		n2 += (double)out[i] * out[i];
	cr_expect_gt(n2, 1e-6, "an all-zero embedding");
	hk__nn_exec_free(&x);
	free(amax);
	hk__nn_net_free(&net);
	free(data);
}
