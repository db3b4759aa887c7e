/* Per-face quality: size, detector score, pose from the 5 landmarks,
 * sharpness and exposure, each with a reason when it makes the face
 * unusable. This file is the library's one "usable face" rule. */
#include "internal.h"
#include "recognizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TEX 32 /* face texture side: sharpness/exposure are measured here */

void hk_quality_default_params(hk_quality_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	hk__quality_resolve(p, p);
}

static float or_default(float v, float d)
{
	return v > 0 ? v : d;
}

void hk__quality_resolve(const hk_quality_params *in, hk_quality_params *q)
{
	hk_quality_params z = {0};
	if (!in)
		in = &z;
	hk_quality_params o;
	o.min_side = or_default(in->min_side, 32.f);
	o.good_side = or_default(in->good_side, 96.f);
	if (o.good_side <= o.min_side)
		o.good_side = o.min_side + 1.f;
	o.min_score = or_default(in->min_score, 0.5f);
	o.max_yaw = or_default(in->max_yaw, 40.f);
	o.max_pitch = or_default(in->max_pitch, 30.f);
	o.max_roll = or_default(in->max_roll, 60.f);
	o.min_sharpness = or_default(in->min_sharpness, 25.f);
	o.min_brightness = or_default(in->min_brightness, 40.f);
	o.max_brightness = or_default(in->max_brightness, 220.f);
	*q = o;
}

void hk__pose_from_landmarks(const float lm[5][2], float *yaw, float *pitch,
                             float *roll)
{
	const double rad = 180.0 / 3.14159265358979323846;
	double ex = lm[1][0] - lm[0][0], ey = lm[1][1] - lm[0][1];
	double d = sqrt(ex * ex + ey * ey);
	*roll = (float)(atan2(ey, ex) * rad);
	if (d < 1e-6) {
		*yaw = *pitch = 90.f;
		return;
	}
	/* Rotate every point about the eye midpoint so that the eyes lie on
	 * the x axis, in units of the eye distance. */
	double c = ex / d, s = ey / d;
	double mx = (lm[0][0] + lm[1][0]) / 2, my = (lm[0][1] + lm[1][1]) / 2;
	double p[5][2];
	for (int i = 0; i < 5; i++) {
		double x = lm[i][0] - mx, y = lm[i][1] - my;
		p[i][0] = (c * x + s * y) / d;
		p[i][1] = (-s * x + c * y) / d;
	}
	/* Frontal (ArcFace template): the nose lies on the midline between the
	 * eye midpoint and the mouth midpoint, half-way down. Turning the head
	 * by yaw moves the nose sideways by about sin(yaw) x 0.6 eye distances
	 * (nose depth relative to the eye distance of an average face) and
	 * shortens the eye distance, which the normalisation already absorbs. */
	double mouth_x = (p[3][0] + p[4][0]) / 2, mouth_y = (p[3][1] + p[4][1]) / 2;
	if (mouth_y < 1e-3) {
		*yaw = *pitch = 90.f;
		return;
	}
	double off = p[2][0] - mouth_x * (p[2][1] / mouth_y);
	double sy = off / 0.6;
	sy = sy > 1 ? 1 : sy < -1 ? -1 : sy;
	*yaw = (float)(asin(sy) * rad);
	/* Nose height between the eye line (0) and the mouth line (1): 0.50 on
	 * the template; looking up/down moves it by about sin(pitch) x 0.7. */
	double t = p[2][1] / mouth_y - 0.50;
	double sp = t / 0.7;
	sp = sp > 1 ? 1 : sp < -1 ? -1 : sp;
	*pitch = (float)(asin(sp) * rad);
}

void hk__face_texture(const hk_image *img, const float box[4],
                      float *sharpness, float *brightness, float *clipped)
{
	float g[TEX * TEX];
	double bw = box[2] - box[0], bh = box[3] - box[1];
	/* Area-average each cell (a few samples per axis), so small faces are
	 * not aliased into false sharpness. */
	int sub = (int)ceil(fmax(bw, bh) / TEX);
	sub = sub < 1 ? 1 : sub > 4 ? 4 : sub;
	size_t nclip = 0;
	double sum = 0;
	for (int j = 0; j < TEX; j++)
		for (int i = 0; i < TEX; i++) {
			double acc = 0;
			int cnt = 0;
			for (int v = 0; v < sub; v++)
				for (int u = 0; u < sub; u++) {
					double x = box[0] + (i + (u + 0.5) / sub) * bw / TEX;
					double y = box[1] + (j + (v + 0.5) / sub) * bh / TEX;
					long xi = (long)floor(x), yi = (long)floor(y);
					if (xi < 0 || yi < 0 || xi >= (long)img->width ||
					    yi >= (long)img->height)
						continue;
					const uint8_t *px = img->data + (size_t)yi * img->stride + 3 * (size_t)xi;
					acc += 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
					cnt++;
				}
			float l = cnt ? (float)(acc / cnt) : 0.f;
			g[j * TEX + i] = l;
			sum += l;
			nclip += l <= 5.f || l >= 250.f;
		}
	double lsum = 0, lsq = 0;
	size_t n = 0;
	for (int j = 1; j < TEX - 1; j++)
		for (int i = 1; i < TEX - 1; i++) {
			double l = 4.0 * g[j * TEX + i] - g[j * TEX + i - 1] - g[j * TEX + i + 1] -
			           g[(j - 1) * TEX + i] - g[(j + 1) * TEX + i];
			lsum += l;
			lsq += l * l;
			n++;
		}
	double mean = lsum / n;
	*sharpness = (float)(lsq / n - mean * mean);
	*brightness = (float)(sum / (TEX * TEX));
	*clipped = (float)nclip / (TEX * TEX);
	hk__wipe(g, sizeof g);
}

static float ramp(float v, float lo, float hi)
{
	if (v <= lo)
		return 0.f;
	if (v >= hi)
		return 1.f;
	return (v - lo) / (hi - lo);
}

hk_status hk_face_quality(const hk_image *img, const hk_face *face,
                          const hk_quality_params *p, hk_quality *q)
{
	if (!img || !img->data || !face || !q)
		return hk__err(HK_E_INVALID, "hk_face_quality: NULL argument");
	hk_quality_params o;
	hk__quality_resolve(p, &o);
	memset(q, 0, sizeof *q);
	const float *b = face->box;
	float w = b[2] - b[0], h = b[3] - b[1];
	if (!(w > 0 && h > 0))
		return hk__err(HK_E_RANGE, "hk_face_quality: empty box");
	q->side = sqrtf(w * h);
	q->det_score = face->score;
	hk__pose_from_landmarks(face->landmarks, &q->yaw, &q->pitch, &q->roll);
	hk__face_texture(img, b, &q->sharpness, &q->brightness, &q->clipped);

	uint32_t r = 0;
	if (q->side < o.min_side || face->reject != HK_FACE_OK)
		r |= HK_Q_TOO_SMALL;
	if (q->det_score < o.min_score)
		r |= HK_Q_LOW_SCORE;
	if (fabsf(q->yaw) > o.max_yaw)
		r |= HK_Q_YAW;
	if (fabsf(q->pitch) > o.max_pitch)
		r |= HK_Q_PITCH;
	if (fabsf(q->roll) > o.max_roll)
		r |= HK_Q_ROLL;
	if (q->sharpness < o.min_sharpness)
		r |= HK_Q_BLUR;
	if (q->brightness < o.min_brightness)
		r |= HK_Q_DARK;
	if (q->brightness > o.max_brightness || q->clipped > 0.3f)
		r |= HK_Q_BRIGHT;
	float ix0 = fmaxf(b[0], 0.f), iy0 = fmaxf(b[1], 0.f);
	float ix1 = fminf(b[2], (float)img->width), iy1 = fminf(b[3], (float)img->height);
	float inside = (ix1 > ix0 && iy1 > iy0) ? (ix1 - ix0) * (iy1 - iy0) / (w * h) : 0.f;
	if (inside < 0.75f)
		r |= HK_Q_EDGE;
	q->reasons = r;

	/* The score ranks usable views: each factor is 1 when the property
	 * is comfortably good and falls to (near) 0 at its limit. */
	float f_size = 0.3f + 0.7f * ramp(q->side, o.min_side, o.good_side);
	float f_det = ramp(q->det_score, o.min_score - 0.1f, 0.9f);
	float f_pose = (1.f - ramp(fabsf(q->yaw), 10.f, o.max_yaw + 10.f)) *
	               (1.f - ramp(fabsf(q->pitch), 10.f, o.max_pitch + 10.f));
	float f_sharp = 0.3f + 0.7f * ramp(q->sharpness, o.min_sharpness, 4.f * o.min_sharpness);
	float f_expo = 1.f - ramp(fabsf(q->brightness - 120.f), 60.f, 120.f);
	q->score = f_size * f_det * f_pose * f_sharp * f_expo;
	if (!(q->score >= 0.f))
		q->score = 0.f;
	return HK_OK;
}

const char *hk_quality_reasons_str(uint32_t reasons, char *buf, size_t len)
{
	static const char *const names[] = {"too-small", "low-score", "yaw",  "pitch",
	                                    "roll",      "blur",      "dark", "bright",
	                                    "edge",      "outside-roi"};
	if (!buf || !len)
		return "";
	buf[0] = 0;
	size_t at = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(reasons & (1u << i)))
			continue;
		int k = snprintf(buf + at, len - at, "%s%s", at ? "," : "", names[i]);
		if (k < 0 || (size_t)k >= len - at) {
			buf[at] = 0; /* only whole names */
			break;
		}
		at += (size_t)k;
	}
	return buf;
}

float hk__box_iou(const float *a, const float *b)
{
	float x0 = fmaxf(a[0], b[0]), y0 = fmaxf(a[1], b[1]);
	float x1 = fminf(a[2], b[2]), y1 = fminf(a[3], b[3]);
	float iw = x1 - x0, ih = y1 - y0;
	if (iw <= 0 || ih <= 0)
		return 0.f;
	float inter = iw * ih;
	float u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
	return u > 0 ? inter / u : 0.f;
}
