/* Image geometry of the pipeline: area/bilinear resampling of a source
 * rectangle (letterbox, O-Net crops), similarity alignment and the warp to
 * the 112x112 ArcFace chip. Pure functions, no model. */
#include "pipeline.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-axis resampling taps: output index j reads source indices
 * start[j] .. start[j]+count[j]-1 with weights w[j*maxc + t]. */
typedef struct axis_taps {
	int32_t *start;
	int32_t *count;
	float *w;
	uint32_t maxc;
} axis_taps;

static void taps_free(axis_taps *t)
{
	free(t->start);
	free(t->count);
	free(t->w);
}

/* Area average when the rectangle shrinks (sw >= on), bilinear otherwise;
 * source indices outside [0, limit) are dropped (they are black). */
static hk_status taps_make(axis_taps *t, double x0, double sw, uint32_t on,
                           uint32_t limit, int filter)
{
	double step = sw / on;
	int area = step >= 1.0 && filter != HK__BILINEAR;
	t->maxc = area ? (uint32_t)ceil(step) + 2 : 2;
	t->start = calloc(on, sizeof *t->start);
	t->count = calloc(on, sizeof *t->count);
	t->w = calloc((size_t)on * t->maxc, sizeof *t->w);
	if (!t->start || !t->count || !t->w) {
		taps_free(t);
		return hk__err(HK_E_NOMEM, "resample: out of memory for %u taps", on);
	}
	for (uint32_t j = 0; j < on; j++) {
		float *w = t->w + (size_t)j * t->maxc;
		int32_t first = INT32_MAX;
		uint32_t c = 0;
		if (area) {
			double a = x0 + j * step, b = x0 + (j + 1) * step;
			double kf = floor(a);
			for (double k = kf; k < b && c < t->maxc; k += 1.0) {
				if (k < 0 || k >= limit)
					continue;
				double lo = a > k ? a : k, hi = b < k + 1 ? b : k + 1;
				if (hi <= lo)
					continue;
				if (first == INT32_MAX)
					first = (int32_t)k;
				w[(int32_t)k - first] = (float)((hi - lo) / step);
				c = (uint32_t)((int32_t)k - first + 1);
			}
		} else {
			double s = x0 + (j + 0.5) * step - 0.5;
			double kf = floor(s), f = s - kf;
			for (int d = 0; d < 2; d++) {
				double k = kf + d;
				if (k < 0 || k >= limit)
					continue;
				if (first == INT32_MAX)
					first = (int32_t)k;
				w[(int32_t)k - first] = (float)(d ? f : 1.0 - f);
				c = (uint32_t)((int32_t)k - first + 1);
			}
		}
		t->start[j] = first == INT32_MAX ? 0 : first;
		t->count[j] = (int32_t)c;
	}
	return HK_OK;
}

hk_status hk__resample(const hk_image *img, double x0, double y0, double sw,
                       double sh, uint32_t ow, uint32_t oh, int filter, float *out)
{
	if (!img || !img->data || !out || ow == 0 || oh == 0 || img->width == 0 ||
	    img->height == 0 || img->stride < 3u * img->width)
		return hk__err(HK_E_INVALID, "resample: bad image or output size");
	if (!(sw > 0) || !(sh > 0) || !isfinite(x0) || !isfinite(y0) ||
	    !isfinite(sw) || !isfinite(sh) || sw > 1e6 || sh > 1e6 ||
	    fabs(x0) > 1e6 || fabs(y0) > 1e6)
		return hk__err(HK_E_RANGE, "resample: rectangle (%g,%g %gx%g) out of range",
		               x0, y0, sw, sh);
	axis_taps tx = {0}, ty = {0};
	hk_status st = taps_make(&tx, x0, sw, ow, img->width, filter);
	if (st)
		return st;
	st = taps_make(&ty, y0, sh, oh, img->height, filter);
	if (st) {
		taps_free(&tx);
		return st;
	}
	/* Horizontal pass on one source row at a time, then accumulate it into
	 * every output row that reads it (rows are visited in order, so each
	 * source row is filtered once per output row it touches). */
	float *row = malloc((size_t)ow * 3 * sizeof *row);
	if (!row) {
		taps_free(&tx);
		taps_free(&ty);
		return hk__err(HK_E_NOMEM, "resample: out of memory");
	}
	memset(out, 0, (size_t)ow * oh * 3 * sizeof *out);
	int32_t cached = -1;
	for (uint32_t i = 0; i < oh; i++) {
		float *o = out + (size_t)i * ow * 3;
		for (int32_t t = 0; t < ty.count[i]; t++) {
			int32_t r = ty.start[i] + t;
			float wy = ty.w[(size_t)i * ty.maxc + t];
			if (r != cached) {
				const uint8_t *src = img->data + (size_t)r * img->stride;
				for (uint32_t j = 0; j < ow; j++) {
					const float *w = tx.w + (size_t)j * tx.maxc;
					const uint8_t *p = src + (size_t)tx.start[j] * 3;
					float a = 0, b = 0, c = 0;
					for (int32_t k = 0; k < tx.count[j]; k++) {
						a += w[k] * p[3 * k];
						b += w[k] * p[3 * k + 1];
						c += w[k] * p[3 * k + 2];
					}
					row[3 * j] = a;
					row[3 * j + 1] = b;
					row[3 * j + 2] = c;
				}
				cached = r;
			}
			for (uint32_t j = 0; j < 3 * ow; j++)
				o[j] += wy * row[j];
		}
	}
	free(row);
	taps_free(&tx);
	taps_free(&ty);
	return HK_OK;
}

hk__letterbox hk__letterbox_of(uint32_t w, uint32_t h, uint32_t size, double zoom)
{
	hk__letterbox lb;
	uint32_t m = w > h ? w : h;
	lb.scale = (double)size / (m * zoom);
	lb.pad_x = (size - w * lb.scale) / 2;
	lb.pad_y = (size - h * lb.scale) / 2;
	return lb;
}

hk_status hk__letterbox_input(const hk_image *img, uint32_t size, double zoom,
                              float *out, hk__letterbox *lb)
{
	if (!img || !out || !lb || size == 0 || !(zoom >= 1 && zoom <= 16))
		return hk__err(HK_E_INVALID, "letterbox: bad argument");
	*lb = hk__letterbox_of(img->width, img->height, size, zoom);
	/* Input pixel j covers image x in [(j - pad_x)/scale, (j+1-pad_x)/scale). */
	hk_status st = hk__resample(img, -lb->pad_x / lb->scale, -lb->pad_y / lb->scale,
	                            size / lb->scale, size / lb->scale, size, size, HK__BILINEAR, out);
	if (st)
		return st;
	for (size_t i = 0; i < (size_t)size * size * 3; i++)
		out[i] = out[i] / 127.5f - 1.0f;
	return HK_OK;
}

void hk__letterbox_unmap(const hk__letterbox *lb, uint32_t size, hk__det *d)
{
	for (int k = 0; k < 4; k++) {
		double pad = k & 1 ? lb->pad_y : lb->pad_x;
		d->box[k] = (float)((d->box[k] * size - pad) / lb->scale);
	}
	for (int k = 0; k < 6; k++) {
		d->kp[k][0] = (float)((d->kp[k][0] * size - lb->pad_x) / lb->scale);
		d->kp[k][1] = (float)((d->kp[k][1] * size - lb->pad_y) / lb->scale);
	}
}

const float hk__arcface_template[5][2] = {
	{38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f},
	{41.5493f, 92.3655f}, {70.7299f, 92.2041f},
};

int hk__similarity(const float (*src)[2], const float (*dst)[2], size_t n,
                   double m[6])
{
	double msx = 0, msy = 0, mdx = 0, mdy = 0;
	for (size_t i = 0; i < n; i++) {
		msx += src[i][0];
		msy += src[i][1];
		mdx += dst[i][0];
		mdy += dst[i][1];
	}
	msx /= n;
	msy /= n;
	mdx /= n;
	mdy /= n;
	/* With centred points, [a -b; b a] minimising sum |A s - d|^2 is
	 * a = sum(s.d)/sum|s|^2, b = sum(s x d)/sum|s|^2 (the Umeyama solution
	 * without reflection). */
	double ss = 0, sa = 0, sb = 0;
	for (size_t i = 0; i < n; i++) {
		double sx = src[i][0] - msx, sy = src[i][1] - msy;
		double dx = dst[i][0] - mdx, dy = dst[i][1] - mdy;
		ss += sx * sx + sy * sy;
		sa += sx * dx + sy * dy;
		sb += sx * dy - sy * dx;
	}
	if (!(ss > 1e-12) || !isfinite(ss))
		return -1;
	double a = sa / ss, b = sb / ss;
	m[0] = a;
	m[1] = -b;
	m[2] = mdx - (a * msx - b * msy);
	m[3] = b;
	m[4] = a;
	m[5] = mdy - (b * msx + a * msy);
	return 0;
}

int hk__affine_invert(const double m[6], double inv[6])
{
	double det = m[0] * m[4] - m[1] * m[3];
	if (!(fabs(det) > 1e-12) || !isfinite(det))
		return -1;
	inv[0] = m[4] / det;
	inv[1] = -m[1] / det;
	inv[3] = -m[3] / det;
	inv[4] = m[0] / det;
	inv[2] = -(inv[0] * m[2] + inv[1] * m[5]);
	inv[5] = -(inv[3] * m[2] + inv[4] * m[5]);
	return 0;
}

/* Five-point layouts of turned faces in a 112x112 crop (insightface's
 * face_align: nose to the image left in profile, turned left, frontal,
 * turned right, right profile). Used through their similarity onto the
 * ArcFace template's frame (the frontal one defines it), so a turned face
 * lands at the scale and place the embedder was trained on. */
static const float pose_src[5][5][2] = {
	{{51.642f, 50.115f}, {57.617f, 49.990f}, {35.740f, 69.007f}, {51.157f, 89.050f}, {57.025f, 89.702f}},
	{{45.031f, 50.118f}, {65.568f, 50.872f}, {39.677f, 68.111f}, {45.177f, 86.190f}, {64.246f, 86.758f}},
	{{39.730f, 51.138f}, {72.270f, 51.138f}, {56.000f, 68.493f}, {42.463f, 87.010f}, {69.537f, 87.010f}},
	{{46.845f, 50.872f}, {67.382f, 50.118f}, {72.737f, 68.111f}, {48.167f, 86.758f}, {67.236f, 86.190f}},
	{{54.796f, 49.990f}, {60.771f, 50.115f}, {76.673f, 69.007f}, {55.388f, 89.702f}, {61.257f, 89.050f}},
};

void hk__pose_template(int k, float tpl[5][2])
{
	if (k == 2) {
		memcpy(tpl, hk__arcface_template, sizeof(float) * 10);
		return;
	}
	double m[6];
	hk__similarity(pose_src[2], hk__arcface_template, 5, m);
	for (int i = 0; i < 5; i++) {
		double x = pose_src[k][i][0], y = pose_src[k][i][1];
		tpl[i][0] = (float)(m[0] * x + m[1] * y + m[2]);
		tpl[i][1] = (float)(m[3] * x + m[4] * y + m[5]);
	}
}

/* The similarity of pts onto template k (n = 4: mouth corners averaged)
 * and its residual sum of squares in chip pixels. -1 if degenerate. */
static int fit_template(const float (*pts)[2], size_t n, int k, double m[6], double *rss)
{
	float tpl[5][2];
	hk__pose_template(k, tpl);
	if (n == 4) {
		tpl[3][0] = (tpl[3][0] + tpl[4][0]) / 2;
		tpl[3][1] = (tpl[3][1] + tpl[4][1]) / 2;
	} else if (n != 5) {
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isfinite(pts[i][0]) || !isfinite(pts[i][1]))
			return -1;
	if (hk__similarity(pts, (const float (*)[2])tpl, n, m))
		return -1;
	*rss = 0;
	for (size_t i = 0; i < n; i++) {
		double dx = m[0] * pts[i][0] + m[1] * pts[i][1] + m[2] - tpl[i][0];
		double dy = m[3] * pts[i][0] + m[4] * pts[i][1] + m[5] - tpl[i][1];
		*rss += dx * dx + dy * dy;
	}
	return 0;
}

int hk__align_inverse_pose(const float (*pts)[2], size_t n, double inv[6], int *chosen)
{
	double best_m[6], best = 0;
	int bk = -1;
	for (int k = 0; k < 5; k++) {
		double m[6], rss;
		if (fit_template(pts, n, k, m, &rss))
			return -1;
		if (bk < 0 || rss < best) {
			best = rss;
			bk = k;
			memcpy(best_m, m, sizeof m);
		}
	}
	if (chosen)
		*chosen = bk;
	return hk__affine_invert(best_m, inv);
}

int hk__align_inverse(const float (*pts)[2], size_t n, double inv[6])
{
	float tpl[5][2];
	memcpy(tpl, hk__arcface_template, sizeof tpl);
	if (n == 4) {
		tpl[3][0] = (tpl[3][0] + tpl[4][0]) / 2;
		tpl[3][1] = (tpl[3][1] + tpl[4][1]) / 2;
	} else if (n != 5) {
		return -1;
	}
	double m[6];
	for (size_t i = 0; i < n; i++)
		if (!isfinite(pts[i][0]) || !isfinite(pts[i][1]))
			return -1;
	if (hk__similarity(pts, (const float (*)[2])tpl, n, m))
		return -1;
	return hk__affine_invert(m, inv);
}

int hk__align_inverse_visible(const float (*pts)[2], size_t n, float yaw, double inv[6],
                              int *side)
{
	if (side)
		*side = -1;
	if (n != 5 || !isfinite(yaw) || fabsf(yaw) <= HK__VISIBLE_YAW)
		return hk__align_inverse(pts, n, inv);
	for (size_t i = 0; i < n; i++)
		if (!isfinite(pts[i][0]) || !isfinite(pts[i][1]))
			return -1;
	/* The nose turned towards the image right (yaw > 0) hides the image
	 * right half: the image-left eye and mouth corner are the visible
	 * ones, and the reverse. */
	const int s = yaw > 0 ? 0 : 1;
	const float (*t)[2] = hk__arcface_template;
	/* The nose sits about 0.6 eye distances in front of the eye plane (the
	 * model of hk__pose_from_landmarks), so a head turned by yaw shows it
	 * that far times sin(yaw) beside the midline. */
	const double eye_d = t[1][0] - t[0][0];
	const float src[3][2] = {{pts[s][0], pts[s][1]},
	                         {pts[2][0], pts[2][1]},
	                         {pts[3 + s][0], pts[3 + s][1]}};
	const float dst[3][2] = {
		{t[s][0], t[s][1]},
		{(float)(t[2][0] + 0.6 * eye_d * sin(yaw * 3.14159265358979323846 / 180)), t[2][1]},
		{t[3 + s][0], t[3 + s][1]},
	};
	double m[6];
	if (hk__similarity(src, dst, 3, m))
		return -1;
	if (side)
		*side = s;
	return hk__affine_invert(m, inv);
}

void hk__det_points4(const hk__det *d, float pts[4][2])
{
	for (int k = 0; k < 4; k++) {
		pts[k][0] = d->kp[k][0] - 0.5f;
		pts[k][1] = d->kp[k][1] - 0.5f;
	}
}

void hk__warp(const hk_image *img, const double inv[6], uint32_t size,
              uint8_t *chip)
{
	const int64_t w = img->width, h = img->height;
	for (uint32_t y = 0; y < size; y++) {
		for (uint32_t x = 0; x < size; x++) {
			double sx = inv[0] * x + inv[1] * y + inv[2];
			double sy = inv[3] * x + inv[4] * y + inv[5];
			uint8_t *o = chip + ((size_t)y * size + x) * 3;
			if (!(sx > -1.0 && sy > -1.0 && sx < (double)w && sy < (double)h)) {
				o[0] = o[1] = o[2] = 0;
				continue;
			}
			double fx0 = floor(sx), fy0 = floor(sy);
			int64_t x0 = (int64_t)fx0, y0 = (int64_t)fy0;
			double fx = sx - fx0, fy = sy - fy0;
			double wgt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
			double acc[3] = {0, 0, 0};
			for (int t = 0; t < 4; t++) {
				int64_t px = x0 + (t & 1), py = y0 + (t >> 1);
				if (px < 0 || py < 0 || px >= w || py >= h)
					continue;
				const uint8_t *p = img->data + (size_t)py * img->stride + (size_t)px * 3;
				acc[0] += wgt[t] * p[0];
				acc[1] += wgt[t] * p[1];
				acc[2] += wgt[t] * p[2];
			}
			for (int c = 0; c < 3; c++) {
				double v = floor(acc[c] + 0.5);
				o[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
		}
	}
}

void hk__chip_mirror(uint8_t *chip, uint32_t size)
{
	for (uint32_t y = 0; y < size; y++) {
		uint8_t *r = chip + (size_t)y * size * 3;
		for (uint32_t a = 0, b = size - 1; a < b; a++, b--)
			for (int c = 0; c < 3; c++) {
				uint8_t t = r[3 * a + c];
				r[3 * a + c] = r[3 * b + c];
				r[3 * b + c] = t;
			}
	}
}
