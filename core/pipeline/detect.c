/* BlazeFace full-range decoding: 48x48 anchors (one per cell, unit size),
 * sigmoid scores, MediaPipe's weighted non-maximum suppression. */
#include "pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float hk__iou(const float *a, const float *b)
{
	float ix = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
	float iy = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
	if (!(ix > 0) || !(iy > 0))
		return 0;
	float inter = ix * iy;
	float ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
	return ua > 0 ? inter / ua : 0;
}

static int by_score_desc(const void *pa, const void *pb)
{
	const hk__det *a = pa, *b = pb;
	if (a->score != b->score)
		return a->score < b->score ? 1 : -1;
	/* Stable tie-break on position so the output is deterministic. */
	if (a->box[1] != b->box[1])
		return a->box[1] < b->box[1] ? -1 : 1;
	return a->box[0] < b->box[0] ? -1 : a->box[0] > b->box[0];
}

size_t hk__decode_detections(const float *regs, const float *logits, float thr,
                             float iou, hk__det *scratch, hk__det *out,
                             size_t max)
{
	const float inv = 1.0f / HK__DET_SIZE;
	size_t n = 0;
	for (int y = 0; y < HK__DET_GRID; y++) {
		for (int x = 0; x < HK__DET_GRID; x++) {
			size_t i = (size_t)y * HK__DET_GRID + x;
			float l = logits[i];
			if (!(l == l))
				continue; /* NaN: no face */
			l = l > 100 ? 100 : l < -100 ? -100 : l;
			float s = 1.0f / (1.0f + expf(-l));
			if (!(s >= thr))
				continue;
			const float *r = regs + i * HK__DET_REGS;
			float ax = (x + 0.5f) / HK__DET_GRID, ay = (y + 0.5f) / HK__DET_GRID;
			float cx = r[0] * inv + ax, cy = r[1] * inv + ay;
			float w = r[2] * inv, h = r[3] * inv;
			if (!isfinite(cx) || !isfinite(cy) || !(w > 0) || !(h > 0) ||
			    !isfinite(w) || !isfinite(h))
				continue;
			hk__det *d = &scratch[n++];
			d->box[0] = cx - w / 2;
			d->box[1] = cy - h / 2;
			d->box[2] = cx + w / 2;
			d->box[3] = cy + h / 2;
			for (int k = 0; k < 6; k++) {
				d->kp[k][0] = r[4 + 2 * k] * inv + ax;
				d->kp[k][1] = r[5 + 2 * k] * inv + ay;
			}
			d->score = s;
			d->cluster = 1;
		}
	}
	return hk__weighted_nms(scratch, n, iou, scratch + HK__DET_ANCHORS, out, max);
}

size_t hk__weighted_nms(hk__det *scratch, size_t n, float iou, hk__det *rest, hk__det *out,
                        size_t max)
{
	qsort(scratch, n, sizeof *scratch, by_score_desc);
	/* Weighted NMS: the best remaining candidate and everything overlapping
	 * it by more than iou form a cluster; the output is the score-weighted
	 * mean of the cluster's box and keypoints with the best score. */
	size_t nout = 0;
	while (n > 0) {
		const hk__det top = scratch[0];
		double acc[16] = {0}, wsum = 0;
		size_t nrest = 0, members = 0;
		for (size_t i = 0; i < n; i++) {
			const hk__det *c = &scratch[i];
			if (i == 0 || hk__iou(top.box, c->box) > iou) {
				double wgt = c->score;
				for (int k = 0; k < 4; k++)
					acc[k] += wgt * c->box[k];
				for (int k = 0; k < 6; k++) {
					acc[4 + 2 * k] += wgt * c->kp[k][0];
					acc[5 + 2 * k] += wgt * c->kp[k][1];
				}
				wsum += wgt;
				members += c->cluster;
			} else {
				rest[nrest++] = *c;
			}
		}
		if (nout < max) {
			hk__det *o = &out[nout++];
			for (int k = 0; k < 4; k++)
				o->box[k] = (float)(acc[k] / wsum);
			for (int k = 0; k < 6; k++) {
				o->kp[k][0] = (float)(acc[4 + 2 * k] / wsum);
				o->kp[k][1] = (float)(acc[5 + 2 * k] / wsum);
			}
			o->score = top.score;
			o->cluster = (uint32_t)members;
		}
		memcpy(scratch, rest, nrest * sizeof *rest);
		n = nrest;
	}
	return nout;
}
