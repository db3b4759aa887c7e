/* Accuracy guards of a reduced-precision model against its fp32 run, in the
 * pipeline's own terms (hk__det_guard_add, hk__onet_guard_add): the
 * detector must find the same faces, O-Net must put the landmarks in the
 * same places. Used by the tests (golden photos) and by herken-bench
 * int8-calibrate --guard; they measure, they fit nothing. */
#include "pipeline.h"

#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

hk_status hk__det_guard_add(const float *regs32, const float *logits32, const float *regs8,
                            const float *logits8, float thr, hk__det_guard *g)
{
	enum { MAXD = 64 };
	hk__det *scratch = malloc(sizeof(hk__det) * 2 * HK__DET_ANCHORS);
	hk__det a[MAXD], b[MAXD];
	if (!scratch)
		return hk__err(HK_E_NOMEM, "out of memory");
	size_t na = hk__decode_detections(regs32, logits32, thr, 0.3f, scratch, a, MAXD);
	size_t nb = hk__decode_detections(regs8, logits8, thr, 0.3f, scratch, b, MAXD);
	free(scratch);
	unsigned char used[MAXD] = {0};
	if (!g->images)
		g->min_iou = 1;
	g->images++;
	g->faces += na;
	for (size_t i = 0; i < na; i++) {
		size_t best = SIZE_MAX;
		float bi = 0;
		for (size_t j = 0; j < nb; j++) {
			float v = hk__iou(a[i].box, b[j].box);
			if (!used[j] && v > bi) {
				bi = v;
				best = j;
			}
		}
		if (best == SIZE_MAX || bi < 0.5f) {
			g->missed++;
			g->min_iou = 0;
			continue;
		}
		used[best] = 1;
		g->matched++;
		g->min_iou = bi < g->min_iou ? bi : g->min_iou;
		g->iou_sum += bi;
		double ds = fabs((double)a[i].score - b[best].score);
		g->max_score_diff = ds > g->max_score_diff ? ds : g->max_score_diff;
	}
	for (size_t j = 0; j < nb; j++)
		g->extra += !used[j];
	return HK_OK;
}

int hk__det_guard_holds(const hk__det_guard *g)
{
	return g->faces > 0 && !g->missed && !g->extra && g->min_iou >= HK__DET_GUARD_IOU &&
	       g->max_score_diff <= HK__DET_GUARD_SCORE;
}

void hk__onet_guard_add(const float lm32[10], const float prob32[2], const float lm8[10],
                        const float prob8[2], hk__onet_guard *g)
{
	/* points 0 and 1 are the eyes; coordinates are crop fractions */
	double eye = hypot((double)lm32[1] - lm32[0], (double)lm32[6] - lm32[5]);
	double worst = 0;
	for (int k = 0; k < 5; k++) {
		double d = hypot((double)lm8[k] - lm32[k], (double)lm8[5 + k] - lm32[5 + k]) / eye;
		worst = d > worst ? d : worst;
	}
	g->faces++;
	g->max_dev = worst > g->max_dev ? worst : g->max_dev;
	g->dev_sum += worst;
	double dp = fabs((double)prob8[1] - prob32[1]);
	g->max_prob_diff = dp > g->max_prob_diff ? dp : g->max_prob_diff;
}

int hk__onet_guard_holds(const hk__onet_guard *g)
{
	return g->faces > 0 && g->max_dev <= HK__ONET_GUARD_DEV && g->max_prob_diff <= HK__ONET_GUARD_PROB;
}

/* Output index of m with per-item size want, or -1. */
static long output_of(const hk_model *m, size_t want)
{
	for (size_t i = 0; i < hk_model_output_count(m); i++)
		if (hk_model_output_size(m, i) == want)
			return (long)i;
	return -1;
}

hk_status hk__guard_models(const hk_model *m32, const hk_model *m8, const float *in, size_t n,
                           hk__det_guard *dg, hk__onet_guard *og)
{
	const int det = hk_model_get_kind(m32) == HK_MODEL_DETECTOR;
	if (!det && hk_model_get_kind(m32) != HK_MODEL_LANDMARKS)
		return hk__err(HK_E_INVALID, "guard: a detector or O-Net");
	uint32_t h = 0, w = 0, c = 0;
	hk_model_input_shape(m32, &h, &w, &c);
	const size_t item = (size_t)h * w * c;
	/* detector [regressors, logits]; O-Net [prob, points] */
	const size_t sz[2] = {det ? HK__DET_ANCHORS * HK__DET_REGS : 2, det ? HK__DET_ANCHORS : 10};
	float *o[2][2] = {{NULL}};
	hk_status s = HK_OK;
	for (int j = 0; j < 2; j++)
		for (int k = 0; k < 2; k++)
			if (!(o[k][j] = malloc(sz[j] * sizeof(float))))
				s = hk__err(HK_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n && !s; i++) {
		for (int k = 0; k < 2 && !s; k++) {
			const hk_model *m = k ? m8 : m32;
			float *outs[4] = {NULL};
			float junk[4];
			long a = output_of(m, sz[0]), b = output_of(m, sz[1]), r = output_of(m, 4);
			if (a < 0 || b < 0 || hk_model_output_count(m) > 4) {
				s = hk__err(HK_E_DIM, "guard: unexpected outputs");
				break;
			}
			outs[a] = o[k][0];
			outs[b] = o[k][1];
			if (!det && r >= 0)
				outs[r] = junk;
			s = hk_model_run(m, in + i * item, 1, outs);
		}
		if (!s && det)
			s = hk__det_guard_add(o[0][0], o[0][1], o[1][0], o[1][1], 0.6f, dg);
		else if (!s)
			hk__onet_guard_add(o[0][1], o[0][0], o[1][1], o[1][0], og);
	}
	for (int j = 0; j < 2; j++)
		for (int k = 0; k < 2; k++)
			free(o[k][j]);
	return s;
}
