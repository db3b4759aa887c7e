/* The recognition engine: detector -> weighted NMS -> quality floor ->
 * O-Net landmarks -> similarity warp -> batched MobileFaceNet. */
#include "pipeline.h"

#include "internal.h"
#include "models.h"
#include "recognizer/recognizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DET_MAX 256    /* faces kept per detector pass */
/* O-Net face probability below which its landmarks are not trusted (expo's
 * threshold; sample2_f0, a profile with a hand over the mouth, gets 0.50 and
 * misplaced eyes) and the detector keypoints are used instead. */
#define ONET_MIN_PROB 0.7f
#define RESCUE_ZOOM 1.6 /* zoom-out factor of the rescue pass */
#define ZOOM_FAR 2.5    /* HK_PASS_ZOOM: a frame-filling face shrunk into
                           the detector's size range                    */
/* The subject: among the usable faces at least this share of the largest
 * one's area, the nearest the image centre (hk__subject_face). */
#define SUBJECT_CLOSE_AREA 0.5
#define ROTATE_DEG 30.0 /* HK_PASS_ROTATE: the image turned both ways    */

struct hk_engine {
	hk_engine_params p;
	char dir[4096];
	hk_model *det, *onet, *emb;
	hk_model *pnet, *rnet;                        /* HK_PASS_MTCNN only */
	size_t det_reg_out, det_logit_out;            /* output indices */
	size_t onet_prob_out, onet_reg_out, onet_lm_out;
};

void hk_engine_default_params(hk_engine_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	p->detector = HK_DETECTOR_SPARSE;
	p->score_threshold = 0.6f;
	p->nms_iou = 0.3f;
	p->min_face = 16.0f;
	p->onet = HK_ON;
	p->flip = HK_ON;
	p->rescue = HK_ON;
	p->rescue_threshold = 0.4f;
	p->align = HK_ALIGN_FRONTAL;
	p->passes = HK_PASS_FLIP | HK_PASS_ZOOM;
}

/* Zero fields mean "default"; out-of-range values are errors. */
static hk_status resolve_params(const hk_engine_params *in, hk_engine_params *p)
{
	hk_engine_params d;
	hk_engine_default_params(&d);
	*p = in ? *in : d;
	if (!p->detector)
		p->detector = d.detector;
	if (p->score_threshold == 0)
		p->score_threshold = d.score_threshold;
	if (p->nms_iou == 0)
		p->nms_iou = d.nms_iou;
	if (p->min_face == 0)
		p->min_face = d.min_face;
	if (!p->onet)
		p->onet = d.onet;
	if (!p->flip)
		p->flip = d.flip;
	if (!p->rescue)
		p->rescue = d.rescue;
	if (p->rescue_threshold == 0)
		p->rescue_threshold = d.rescue_threshold;
	if (!p->align)
		p->align = d.align;
	if (p->align > HK_ALIGN_VISIBLE)
		return hk__err(HK_E_INVALID, "engine params: unknown alignment %u", p->align);
	if (!p->passes)
		p->passes = d.passes;
	if (p->passes & ~(HK_PASS_FLIP | HK_PASS_ROTATE | HK_PASS_ZOOM | HK_PASS_ALWAYS | HK_PASS_NONE |
	                   HK_PASS_MTCNN) ||
	    ((p->passes & HK_PASS_NONE) && p->passes != HK_PASS_NONE))
		return hk__err(HK_E_INVALID, "engine params: unknown HK_PASS_* bit in passes, or "
		               "HK_PASS_NONE with others");
	if ((p->passes & HK_PASS_MTCNN) && p->onet == HK_OFF)
		return hk__err(HK_E_INVALID, "engine params: HK_PASS_MTCNN needs O-Net (onet on)");
	if (p->detector > HK_DETECTOR_DENSE || p->onet > HK_OFF || p->flip > HK_OFF ||
	    p->rescue > HK_OFF || p->precision > HK_PREC_AUTO)
		return hk__err(HK_E_INVALID, "engine params: unknown enum value");
	if (!(p->score_threshold > 0 && p->score_threshold < 1) ||
	    !(p->rescue_threshold > 0 && p->rescue_threshold < 1) ||
	    !(p->nms_iou > 0 && p->nms_iou < 1) || !(p->min_face > 0 && p->min_face < 1e5))
		return hk__err(HK_E_RANGE,
		               "engine params: thresholds must lie in (0,1), min_face in (0,1e5)");
	return HK_OK;
}

/* Output index of the output with per-item size `want`, or -1. */
static long output_with_size(const hk_model *m, size_t want)
{
	for (size_t i = 0; i < hk_model_output_count(m); i++)
		if (hk_model_output_size(m, i) == want)
			return (long)i;
	return -1;
}

static hk_status load_one(const hk_engine *e, const char *file, uint32_t kind, hk_model **out)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", e->dir, file);
	if (access(path, F_OK)) /* never open here: a FIFO would block */
		return hk__err(HK_E_NOT_FOUND, "model file %s not found (run `make models` or set HERKEN_MODELS)",
		               path);
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.kind = kind;
	mp.threads = e->p.threads;
	if (e->p.precision == HK_PREC_AUTO || kind == HK_MODEL_EMBEDDER ||
	    (kind == HK_MODEL_LANDMARKS && e->p.precision == HK_PREC_BF16))
		mp.precision = e->p.precision;
	hk_status st = hk_model_load(path, &mp, out);
	if (st)
		return st; /* hk_last_error() names the problem */
	return HK_OK;
}

hk_status hk_engine_create(const hk_engine_params *params, hk_engine **out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "hk_engine_create: out is NULL");
	*out = NULL;
	hk_engine *e = calloc(1, sizeof *e);
	if (!e)
		return hk__err(HK_E_NOMEM, "hk_engine_create: out of memory");
	hk_status st = resolve_params(params, &e->p);
	if (st) {
		free(e);
		return st;
	}
	const char *dir = hk_model_dir(e->p.model_dir);
	if (strlen(dir) >= sizeof e->dir) {
		free(e);
		return hk__err(HK_E_INVALID, "hk_engine_create: model_dir too long");
	}
	strcpy(e->dir, dir);
	e->p.model_dir = e->dir;
	const char *det_file =
		hk__model_by_role(e->p.detector == HK_DETECTOR_DENSE ? "detector-dense"
		                                                     : "detector-sparse")->file;
	const char *onet_file = hk__model_by_role("landmarks")->file;
	const char *emb_file = hk__model_by_role("embedder")->file;
	st = load_one(e, det_file, HK_MODEL_DETECTOR, &e->det);
	if (!st && e->p.onet == HK_ON)
		st = load_one(e, onet_file, HK_MODEL_LANDMARKS, &e->onet);
	if (!st)
		st = load_one(e, emb_file, HK_MODEL_EMBEDDER, &e->emb);
	if (!st && (e->p.passes & HK_PASS_MTCNN)) {
		st = load_one(e, hk__model_by_role("mtcnn-pnet")->file, HK_MODEL_AUTO, &e->pnet);
		if (!st)
			st = load_one(e, hk__model_by_role("mtcnn-rnet")->file, HK_MODEL_AUTO, &e->rnet);
		if (!st)
			st = hk__mtcnn_check(e->pnet, e->rnet);
	}
	if (!st) {
		long r = output_with_size(e->det, HK__DET_ANCHORS * HK__DET_REGS);
		long l = output_with_size(e->det, HK__DET_ANCHORS);
		uint32_t h = 0, w = 0, c = 0;
		hk_model_input_shape(e->det, &h, &w, &c);
		if (r < 0 || l < 0 || h != HK__DET_SIZE || w != HK__DET_SIZE || c != 3)
			st = hk__err(HK_E_UNSUPPORTED, "%s: expected a 192x192x3 detector with "
			             "[2304,16] and [2304] outputs", det_file);
		e->det_reg_out = (size_t)r;
		e->det_logit_out = (size_t)l;
	}
	if (!st && e->onet) {
		long pr = output_with_size(e->onet, 2), rg = output_with_size(e->onet, 4);
		long lm = output_with_size(e->onet, 10);
		uint32_t h = 0, w = 0, c = 0;
		hk_model_input_shape(e->onet, &h, &w, &c);
		if (pr < 0 || rg < 0 || lm < 0 || h != HK__ONET_SIZE || w != HK__ONET_SIZE || c != 3)
			st = hk__err(HK_E_UNSUPPORTED, "%s: expected 48x48x3 -> [2],[4],[10]",
			             onet_file);
		e->onet_prob_out = (size_t)pr;
		e->onet_reg_out = (size_t)rg;
		e->onet_lm_out = (size_t)lm;
	}
	if (!st) {
		uint32_t h = 0, w = 0, c = 0;
		hk_model_input_shape(e->emb, &h, &w, &c);
		if (h != HK__CHIP_SIZE || w != HK__CHIP_SIZE || c != 3 ||
		    output_with_size(e->emb, HK_EMBED_DIM) < 0)
			st = hk__err(HK_E_UNSUPPORTED, "%s: expected 112x112x3 -> [192]",
			             emb_file);
	}
	if (st) {
		hk_engine_destroy(e);
		return st;
	}
	*out = e;
	return HK_OK;
}

void hk_engine_destroy(hk_engine *e)
{
	if (!e)
		return;
	hk_model_destroy(e->det);
	hk_model_destroy(e->onet);
	hk_model_destroy(e->emb);
	hk_model_destroy(e->pnet);
	hk_model_destroy(e->rnet);
	free(e);
}

void hk_engine_get_params(const hk_engine *e, hk_engine_params *p)
{
	if (e && p)
		*p = e->p;
}

const hk_model *hk__engine_embedder(const hk_engine *e)
{
	return e ? e->emb : NULL;
}

static hk_status check_image(const hk_image *img)
{
	if (!img || !img->data || img->width == 0 || img->height == 0 ||
	    img->stride < 3u * img->width)
		return hk__err(HK_E_INVALID, "image is NULL, empty or has a bad stride");
	if ((uint64_t)img->width * img->height > HK_IMAGE_MAX_PIXELS)
		return hk__err(HK_E_LIMIT, "image of %ux%u exceeds HK_IMAGE_MAX_PIXELS",
		               img->width, img->height);
	return HK_OK;
}

/* One detector pass. A view: the image zoomed out by `zoom` (1 = plain
 * letterbox), optionally mirrored and turned by `angle` degrees about its
 * centre. Detections come back in image pixels (keypoints in the subject's
 * order again for a mirrored view). */
typedef struct det_view {
	double zoom;
	int flip;
	double angle;
	int mtcnn; /* the MTCNN cascade instead of the detector */
} det_view;

/* The detector's raw outputs of the plain view (zoom 1, not turned), kept
 * so that the rescue step decodes them again at its lower threshold
 * instead of running the detector a second time on the same input (the
 * same outputs: a model is deterministic on one input). */
typedef struct det_keep {
	float *regs, *logits;
	int have;
} det_keep;

static void keep_free(det_keep *k)
{
	free(k->regs);
	free(k->logits);
}

static hk_status detect_pass(const hk_engine *e, const hk_image *img, det_view v,
                             float thr, hk__det *out, size_t *n, det_keep *keep)
{
	if (v.mtcnn) {
		const size_t oo[3] = {e->onet_prob_out, e->onet_reg_out, e->onet_lm_out};
		return hk__mtcnn_detect(img, e->pnet, e->rnet, e->onet, oo, e->p.min_face, out, DET_MAX,
		                        n);
	}
	hk_status st = HK_E_NOMEM;
	const size_t px = (size_t)HK__DET_SIZE * HK__DET_SIZE;
	const int plain = !v.flip && v.angle == 0;
	/* keep: only the plain view at zoom 1 */
	if (!(plain && v.zoom == 1.0))
		keep = NULL;
	const int reuse = keep && keep->have;
	float *input = reuse ? NULL : malloc(sizeof(float) * px * 3);
	float *regs = keep && keep->regs ? keep->regs : malloc(sizeof(float) * HK__DET_ANCHORS * HK__DET_REGS);
	float *logits = keep && keep->logits ? keep->logits : malloc(sizeof(float) * HK__DET_ANCHORS);
	if (keep) {
		keep->regs = regs;
		keep->logits = logits;
	}
	hk__det *scratch = malloc(sizeof(hk__det) * 2 * HK__DET_ANCHORS);
	uint8_t *canvas = NULL;
	*n = 0;
	if ((!input && !reuse) || !regs || !logits || !scratch) {
		st = hk__err(HK_E_NOMEM, "detect: out of memory");
		goto done;
	}
	hk__letterbox lb;
	/* det input edge coordinates (u, v) -> image edge coordinates:
	 * centre + R(angle) F (u - 96, v - 96) / scale. */
	double a[6] = {0};
	if (reuse) {
		lb = hk__letterbox_of(img->width, img->height, HK__DET_SIZE, v.zoom);
		st = HK_OK;
	} else if (plain) {
		st = hk__letterbox_input(img, HK__DET_SIZE, v.zoom, input, &lb);
	} else {
		lb = hk__letterbox_of(img->width, img->height, HK__DET_SIZE, v.zoom);
		double t = v.angle * 3.14159265358979323846 / 180, c = cos(t) / lb.scale,
		       sn = sin(t) / lb.scale, f = v.flip ? -1 : 1, h = HK__DET_SIZE / 2.0;
		a[0] = c * f;
		a[1] = -sn;
		a[3] = sn * f;
		a[4] = c;
		a[2] = img->width / 2.0 - a[0] * h - a[1] * h;
		a[5] = img->height / 2.0 - a[3] * h - a[4] * h;
		/* hk__warp samples output pixel centres (x + 0.5 in edge
		 * coordinates) at image pixel-centre coordinates (edge - 0.5). */
		double inv[6] = {a[0], a[1], a[2] + 0.5 * (a[0] + a[1]) - 0.5,
		                 a[3], a[4], a[5] + 0.5 * (a[3] + a[4]) - 0.5};
		canvas = malloc(px * 3);
		if (!canvas) {
			st = hk__err(HK_E_NOMEM, "detect: out of memory");
			goto done;
		}
		hk__warp(img, inv, HK__DET_SIZE, canvas);
		for (size_t i = 0; i < px * 3; i++)
			input[i] = canvas[i] / 127.5f - 1.0f;
		st = HK_OK;
	}
	if (st)
		goto done;
	if (!reuse) {
		float *outs[4] = {0};
		outs[e->det_reg_out] = regs;
		outs[e->det_logit_out] = logits;
		st = hk_model_run(e->det, input, 1, outs);
		if (st)
			goto done;
		if (keep)
			keep->have = 1;
	}
	*n = hk__decode_detections(regs, logits, thr, e->p.nms_iou, scratch, out, DET_MAX);
	for (size_t i = 0; i < *n; i++) {
		hk__det *d = &out[i];
		if (plain) {
			hk__letterbox_unmap(&lb, HK__DET_SIZE, d);
			continue;
		}
		const double S = HK__DET_SIZE;
		double cu = (d->box[0] + d->box[2]) / 2 * S, cv = (d->box[1] + d->box[3]) / 2 * S;
		double hw = (d->box[2] - d->box[0]) / 2 * S / lb.scale;
		double hh = (d->box[3] - d->box[1]) / 2 * S / lb.scale;
		double cx = a[0] * cu + a[1] * cv + a[2], cy = a[3] * cu + a[4] * cv + a[5];
		d->box[0] = (float)(cx - hw);
		d->box[1] = (float)(cy - hh);
		d->box[2] = (float)(cx + hw);
		d->box[3] = (float)(cy + hh);
		for (int k = 0; k < 6; k++) {
			double u = d->kp[k][0] * S, w = d->kp[k][1] * S;
			d->kp[k][0] = (float)(a[0] * u + a[1] * w + a[2]);
			d->kp[k][1] = (float)(a[3] * u + a[4] * w + a[5]);
		}
		if (v.flip) /* the subject's right eye/ear became the left */
			for (int k = 0; k < 6; k += 4) {
				float t0 = d->kp[k][0], t1 = d->kp[k][1];
				d->kp[k][0] = d->kp[k + 1][0];
				d->kp[k][1] = d->kp[k + 1][1];
				d->kp[k + 1][0] = t0;
				d->kp[k + 1][1] = t1;
			}
	}
done:
	if (input)
		hk__wipe(input, sizeof(float) * px * 3);
	if (canvas)
		hk__wipe(canvas, px * 3);
	free(canvas);
	free(input);
	if (!keep) {
		free(regs);
		free(logits);
	}
	free(scratch);
	return st;
}

/* The extra views of e->p.passes (at most 6), after the plain one. */
static size_t extra_views(const hk_engine *e, det_view *v)
{
	size_t n = 0;
	uint32_t p = e->p.passes;
	if (p & HK_PASS_FLIP)
		v[n++] = (det_view){1.0, 1, 0, 0};
	if (p & HK_PASS_ROTATE) {
		v[n++] = (det_view){1.0, 0, ROTATE_DEG, 0};
		v[n++] = (det_view){1.0, 0, -ROTATE_DEG, 0};
	}
	if (p & HK_PASS_ZOOM) {
		v[n++] = (det_view){ZOOM_FAR, 0, 0, 0};
		if (p & HK_PASS_FLIP)
			v[n++] = (det_view){ZOOM_FAR, 1, 0, 0};
	}
	if (p & HK_PASS_MTCNN)
		v[n++] = (det_view){1.0, 0, 0, 1};
	return n;
}

/* The plain view and the extra ones at threshold thr, fused by weighted
 * NMS (box voting): at most DET_MAX detections into out. */
static hk_status detect_fused(const hk_engine *e, const hk_image *img, const det_view *views,
                              size_t nv, float thr, hk__det *out, size_t *n, det_keep *keep)
{
	*n = 0;
	hk__det *all = malloc(sizeof(hk__det) * DET_MAX * nv * 2);
	if (!all)
		return hk__err(HK_E_NOMEM, "detect: out of memory");
	size_t total = 0;
	hk_status st = HK_OK;
	for (size_t i = 0; i < nv && !st; i++) {
		size_t k = 0;
		st = detect_pass(e, img, views[i], thr, all + total, &k, keep);
		for (size_t j = 0; j < k; j++)
			all[total + j].cluster = 1;
		total += k;
	}
	if (!st)
		*n = hk__weighted_nms(all, total, e->p.nms_iou, all + DET_MAX * nv, out, DET_MAX);
	free(all);
	return st;
}

static void face_from_det(const hk__det *d, float min_face, hk_face *f)
{
	memset(f, 0, sizeof *f);
	memcpy(f->box, d->box, sizeof f->box);
	memcpy(f->keypoints, d->kp, sizeof f->keypoints);
	f->score = d->score;
	float side = fminf(d->box[2] - d->box[0], d->box[3] - d->box[1]);
	f->reject = side < min_face ? HK_FACE_TOO_SMALL : HK_FACE_OK;
	/* Detector fallback landmarks; O-Net overwrites them when it accepts. */
	float p4[4][2];
	hk__det_points4(d, p4);
	memcpy(f->landmarks, p4, sizeof p4);
	f->landmarks[4][0] = p4[3][0];
	f->landmarks[4][1] = p4[3][1];
	f->landmark_source = HK_LANDMARKS_DETECTOR;
}

/* O-Net on every face in one batch; faces whose crop O-Net accepts get its
 * 5 points. */
static hk_status run_onet(const hk_engine *e, const hk_image *img, hk_face *faces, size_t n)
{
	const size_t per = (size_t)HK__ONET_SIZE * HK__ONET_SIZE * 3;
	float *in = malloc(sizeof(float) * per * n);
	float *prob = malloc(sizeof(float) * 2 * n), *reg = malloc(sizeof(float) * 4 * n);
	float *lm = malloc(sizeof(float) * 10 * n);
	hk_status st = HK_OK;
	if (!in || !prob || !reg || !lm) {
		st = hk__err(HK_E_NOMEM, "onet: out of memory for %zu faces", n);
		goto done;
	}
	for (size_t i = 0; i < n && !st; i++) {
		hk__crop c = hk__onet_crop(faces[i].box);
		st = hk__onet_input(img, &c, in + i * per);
	}
	if (st)
		goto done;
	float *outs[3];
	outs[e->onet_prob_out] = prob;
	outs[e->onet_reg_out] = reg;
	outs[e->onet_lm_out] = lm;
	st = hk_model_run(e->onet, in, n, outs);
	if (st)
		goto done;
	for (size_t i = 0; i < n; i++) {
		float p = prob[2 * i + 1];
		if (!(p >= ONET_MIN_PROB))
			continue;
		hk__crop c = hk__onet_crop(faces[i].box);
		float pts[5][2];
		hk__onet_landmarks(&c, lm + 10 * i, pts);
		int ok = 1;
		for (int k = 0; k < 5; k++)
			ok &= isfinite(pts[k][0]) && isfinite(pts[k][1]);
		if (!ok)
			continue;
		memcpy(faces[i].landmarks, pts, sizeof pts);
		faces[i].landmark_source = HK_LANDMARKS_ONET;
		faces[i].landmark_score = p;
	}
done:
	if (in)
		hk__wipe(in, sizeof(float) * per * n);
	free(in);
	free(prob);
	free(reg);
	free(lm);
	return st;
}

/* Faces from detections (best first): the quality floor, then O-Net in
 * the batches the model was prepared for. *n = nd; at most max written. */
static hk_status finish_faces(const hk_engine *e, const hk_image *img, const hk__det *dets,
                              size_t nd, uint32_t flags, hk_face *faces, size_t max, size_t *n)
{
	*n = nd;
	size_t nw = nd < max ? nd : max;
	for (size_t i = 0; i < nw; i++) {
		face_from_det(&dets[i], e->p.min_face, &faces[i]);
		faces[i].flags = flags;
	}
	hk_status st = HK_OK;
	for (size_t i = 0; i < nw && !st && e->onet; i += 16)
		st = run_onet(e, img, faces + i, nw - i < 16 ? nw - i : 16);
	return st;
}

hk_status hk_engine_detect(const hk_engine *e, const hk_image *img, hk_face *faces,
                           size_t max, size_t *n)
{
	if (!e || !n || (max && !faces))
		return hk__err(HK_E_INVALID, "hk_engine_detect: NULL argument");
	*n = 0;
	hk_status st = check_image(img);
	if (st)
		return st;
	hk__det *dets = malloc(sizeof(hk__det) * DET_MAX * 2);
	if (!dets)
		return hk__err(HK_E_NOMEM, "detect: out of memory");
	size_t nd = 0;
	uint32_t flags = 0;
	det_view views[8] = {{1.0, 0, 0, 0}};
	size_t nx = extra_views(e, views + 1);
	det_keep keep = {0};
	if (e->p.passes & HK_PASS_ALWAYS)
		st = detect_fused(e, img, views, 1 + nx, e->p.score_threshold, dets, &nd, &keep);
	else
		st = detect_pass(e, img, views[0], e->p.score_threshold, dets, &nd, &keep);
	if (!st && nd == 0 && e->p.rescue == HK_ON) {
		/* Nothing at the threshold. Faces scored just below it are common
		 * (profiles, tight crops where the face fills the frame): look again,
		 * also zoomed out (more context around a frame-filling face) and in
		 * the extra views, and accept the best candidate down to the rescue
		 * threshold. */
		float thr = fminf(e->p.rescue_threshold, e->p.score_threshold);
		size_t n1 = 0, n2 = 0, nr = 0;
		st = detect_pass(e, img, views[0], thr, dets, &n1, &keep); /* decoded again */
		if (!st)
			st = detect_pass(e, img, (det_view){RESCUE_ZOOM, 0, 0, 0}, thr, dets + DET_MAX, &n2,
			                 NULL);
		if (!st && (n1 || n2)) {
			if (!n1 || (n2 && dets[DET_MAX].score > dets[0].score))
				dets[0] = dets[DET_MAX];
			nr = 1;
		}
		/* Still nothing: the extra views (HK_PASS_*), fused. They run only
		 * here so they never move a face the classic passes found. */
		if (!st && !nr && nx)
			st = detect_fused(e, img, views + 1, nx, thr, dets, &nr, NULL);
		if (!st && nr) {
			nd = 1;
			flags = HK_FACE_RESCUED;
		}
	}
	if (!st)
		st = finish_faces(e, img, dets, nd, flags, faces, max, n);
	keep_free(&keep);
	free(dets);
	return st;
}

/* ------------------------------------------------------------------ */
/* Stream detection: regions batched into one detector call            */
/* ------------------------------------------------------------------ */

#define CELL_EDGE 0.02 /* a box this close (share of the cell) to a cell
                          edge inside the image is a cut face          */

/* Where a region landed in the batched input. */
typedef struct placed {
	size_t slot;          /* detector input index                   */
	double u0, v0, cell;  /* cell origin and side, input pixels     */
	double x0, y0, side;  /* source square, image pixels            */
	float thr;            /* least score kept                       */
} placed;

/* The placement holding input point (u, v) of slot s, or NULL. */
static const placed *placed_at(const placed *pl, size_t np, size_t s, double u, double v)
{
	for (size_t i = 0; i < np; i++)
		if (pl[i].slot == s && u >= pl[i].u0 && u < pl[i].u0 + pl[i].cell && v >= pl[i].v0 &&
		    v < pl[i].v0 + pl[i].cell)
			return &pl[i];
	return NULL;
}

/* 1 when d (input pixels) touches an edge of p's cell that lies inside
 * the image. */
static int cut_by_view(const placed *p, const double b[4], const hk_image *img)
{
	double eps = CELL_EDGE * p->cell;
	return (b[0] <= p->u0 + eps && p->x0 > 0) || (b[1] <= p->v0 + eps && p->y0 > 0) ||
	       (b[2] >= p->u0 + p->cell - eps && p->x0 + p->side < img->width) ||
	       (b[3] >= p->v0 + p->cell - eps && p->y0 + p->side < img->height);
}

static int by_score_desc(const void *pa, const void *pb)
{
	const hk__det *a = pa, *b = pb;
	return (a->score < b->score) - (a->score > b->score);
}

/* Fills the input slots: grid-1 regions first, one slot each, then the
 * cells, four to a slot. */
static hk_status place_regions(const hk_engine *e, const hk_image *img, const hk__region *reg,
                               size_t nreg, float *input, float *tmp, placed *pl)
{
	const size_t S = HK__DET_SIZE, per = S * S * 3;
	size_t nfull = 0, ncell = 0;
	for (size_t i = 0; i < nreg; i++)
		nfull += reg[i].grid != 2;
	for (size_t i = 0; i < nreg; i++) {
		const hk__region *r = &reg[i];
		placed *p = &pl[i];
		if (!(r->side >= 1) || !isfinite(r->cx) || !isfinite(r->cy))
			return hk__err(HK_E_RANGE, "detect regions: region %zu is empty or not finite", i);
		p->side = r->side;
		p->thr = r->thr > 0 ? r->thr : e->p.score_threshold;
		p->x0 = r->cx - r->side / 2.0;
		p->y0 = r->cy - r->side / 2.0;
		if (r->grid != 2) {
			p->slot = i - ncell;
			p->u0 = p->v0 = 0;
			p->cell = (double)S;
		} else {
			size_t c = ncell++;
			p->slot = nfull + c / 4;
			p->cell = S / 2.0;
			p->u0 = (double)(c % 2) * p->cell;
			p->v0 = (double)((c / 2) % 2) * p->cell;
		}
		uint32_t cp = (uint32_t)p->cell;
		hk_status st = hk__resample(img, p->x0, p->y0, p->side, p->side, cp, cp,
		                            r->grid == 2 ? HK__AREA_OR_BILINEAR : HK__BILINEAR, tmp);
		if (st)
			return st;
		float *dst = input + p->slot * per;
		for (uint32_t y = 0; y < cp; y++) {
			float *row = dst + ((size_t)p->v0 + y) * S * 3 + (size_t)p->u0 * 3;
			const float *src = tmp + (size_t)y * cp * 3;
			for (uint32_t k = 0; k < 3 * cp; k++)
				row[k] = src[k] / 127.5f - 1.0f;
		}
	}
	return HK_OK;
}

hk_status hk__engine_detect_regions(const hk_engine *e, const hk_image *img,
                                    const hk__region *reg, size_t nreg, hk_face *faces,
                                    size_t max, size_t *n)
{
	if (!e || !n || (max && !faces) || (nreg && !reg))
		return hk__err(HK_E_INVALID, "hk__engine_detect_regions: NULL argument");
	*n = 0;
	hk_status st = check_image(img);
	if (st || !nreg)
		return st;
	if (nreg > 4096)
		return hk__err(HK_E_LIMIT, "detect regions: %zu regions", nreg);
	size_t nfull = 0, ncell = 0;
	for (size_t i = 0; i < nreg; i++) {
		nfull += reg[i].grid != 2;
		ncell += reg[i].grid == 2;
	}
	const size_t S = HK__DET_SIZE, per = S * S * 3, nslot = nfull + (ncell + 3) / 4;
	float *input = malloc(sizeof(float) * per * nslot), *tmp = malloc(sizeof(float) * per);
	float *regs = malloc(sizeof(float) * HK__DET_ANCHORS * HK__DET_REGS * nslot);
	float *logits = malloc(sizeof(float) * HK__DET_ANCHORS * nslot);
	hk__det *scratch = malloc(sizeof(hk__det) * 2 * HK__DET_ANCHORS);
	hk__det *all = malloc(sizeof(hk__det) * DET_MAX * (nslot + 1));
	placed *pl = malloc(sizeof(placed) * nreg);
	if (!input || !tmp || !regs || !logits || !scratch || !all || !pl) {
		st = hk__err(HK_E_NOMEM, "detect regions: out of memory");
		goto done;
	}
	for (size_t i = 0; i < per * nslot; i++)
		input[i] = -1.0f; /* black: the unused cells of a mosaic */
	if ((st = place_regions(e, img, reg, nreg, input, tmp, pl)))
		goto done;
	float *outs[4] = {0};
	outs[e->det_reg_out] = regs;
	outs[e->det_logit_out] = logits;
	if ((st = hk_model_run(e->det, input, nslot, outs)))
		goto done;
	size_t total = 0;
	for (size_t s = 0; s < nslot; s++) {
		hk__det *d = all + total;
		float thr = 1;
		for (size_t i = 0; i < nreg; i++)
			thr = pl[i].slot == s ? fminf(thr, pl[i].thr) : thr;
		size_t k = hk__decode_detections(regs + s * HK__DET_ANCHORS * HK__DET_REGS,
		                                 logits + s * HK__DET_ANCHORS, thr, e->p.nms_iou,
		                                 scratch, d, DET_MAX);
		for (size_t i = 0; i < k; i++) {
			double b[4];
			for (int c = 0; c < 4; c++)
				b[c] = d[i].box[c] * (double)S;
			const placed *p = placed_at(pl, nreg, s, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
			if (!p || d[i].score < p->thr || cut_by_view(p, b, img))
				continue;
			double f = p->side / p->cell;
			hk__det m = d[i];
			for (int c = 0; c < 4; c++)
				m.box[c] = (float)((c & 1 ? p->y0 : p->x0) + (b[c] - (c & 1 ? p->v0 : p->u0)) * f);
			for (int c = 0; c < 6; c++) {
				m.kp[c][0] = (float)(p->x0 + (d[i].kp[c][0] * S - p->u0) * f);
				m.kp[c][1] = (float)(p->y0 + (d[i].kp[c][1] * S - p->v0) * f);
			}
			all[total++] = m;
		}
	}
	/* Merge the views: best score first, a face overlapping a kept one is
	 * the same face seen again. */
	qsort(all, total, sizeof *all, by_score_desc);
	size_t nd = 0;
	for (size_t i = 0; i < total && nd < DET_MAX; i++) {
		size_t j;
		for (j = 0; j < nd; j++)
			if (hk__iou(all[i].box, scratch[j].box) > e->p.nms_iou)
				break;
		if (j == nd)
			scratch[nd++] = all[i];
	}
	st = finish_faces(e, img, scratch, nd, 0, faces, max, n);
done:
	if (input)
		hk__wipe(input, sizeof(float) * per * nslot);
	if (tmp)
		hk__wipe(tmp, sizeof(float) * per);
	free(input);
	free(tmp);
	free(regs);
	free(logits);
	free(scratch);
	free(all);
	free(pl);
	return st;
}

int hk__combine_views(const float *plain, const float *mirror, float *out)
{
	double ss = 0;
	for (size_t k = 0; k < HK_EMBED_DIM; k++) {
		out[k] = mirror ? plain[k] + mirror[k] : plain[k];
		ss += (double)out[k] * out[k];
	}
	if (!(ss > 0) || !isfinite(ss))
		return -1;
	float inv_norm = (float)(1.0 / sqrt(ss));
	for (size_t k = 0; k < HK_EMBED_DIM; k++)
		out[k] *= inv_norm;
	return 0;
}

/* The chip -> image transform of face f under alignment mode align. */
static int align_face(uint32_t align, const hk_face *f, double inv[6])
{
	const float (*pts)[2] = (const float (*)[2])f->landmarks;
	size_t np = f->landmark_source == HK_LANDMARKS_ONET ? 5 : 4;
	if (align == HK_ALIGN_POSE)
		return hk__align_inverse_pose(pts, np, inv, NULL);
	if (align == HK_ALIGN_VISIBLE && np == 5) {
		float yaw, pitch, roll;
		hk__pose_from_landmarks(f->landmarks, &yaw, &pitch, &roll);
		return hk__align_inverse_visible(pts, np, yaw, inv, NULL);
	}
	return hk__align_inverse(pts, np, inv);
}

int hk__engine_cut_chip(const hk_engine *e, const hk_image *img, const hk_face *f, uint8_t *chip,
                        int mirror)
{
	const size_t bytes = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	double inv[6];
	if (align_face(e->p.align, f, inv))
		return -1;
	hk__warp(img, inv, HK__CHIP_SIZE, chip);
	if (mirror) {
		memcpy(chip + bytes, chip, bytes);
		hk__chip_mirror(chip + bytes, HK__CHIP_SIZE);
	}
	return 0;
}

hk_status hk__engine_load_embedder(const hk_engine *e, hk_model **out)
{
	return load_one(e, hk__model_by_role("embedder")->file, HK_MODEL_EMBEDDER, out);
}

hk_status hk__engine_embed_views(const hk_engine *e, const hk_image *img, const hk_face *faces,
                                 size_t n, float *plain, float *mirror)
{
	if (!e || (n && (!faces || !plain)))
		return hk__err(HK_E_INVALID, "hk_engine_embed: NULL argument");
	hk_status st = check_image(img);
	if (st || n == 0)
		return st;
	const size_t chip = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	const size_t batch = 16, views = mirror ? 2 : 1;
	uint8_t *chips = malloc(chip * batch * views);
	float *out = malloc(sizeof(float) * HK_EMBED_DIM * batch * views);
	if (!chips || !out) {
		free(chips);
		free(out);
		return hk__err(HK_E_NOMEM, "embed: out of memory");
	}
	for (size_t b0 = 0; b0 < n && !st; b0 += batch) {
		size_t m = n - b0 < batch ? n - b0 : batch;
		for (size_t i = 0; i < m && !st; i++) {
			if (hk__engine_cut_chip(e, img, &faces[b0 + i], chips + i * views * chip,
			                        views == 2)) {
				st = hk__err(HK_E_RANGE, "embed: face %zu has degenerate landmarks", b0 + i);
				break;
			}
		}
		if (!st)
			st = hk_embed_chips(e->emb, chips, m * views, out);
		for (size_t i = 0; i < m && !st; i++) {
			const float *a = out + i * views * HK_EMBED_DIM;
			memcpy(plain + (b0 + i) * HK_EMBED_DIM, a, sizeof(float) * HK_EMBED_DIM);
			if (mirror)
				memcpy(mirror + (b0 + i) * HK_EMBED_DIM, a + HK_EMBED_DIM,
				       sizeof(float) * HK_EMBED_DIM);
		}
	}
	hk__wipe(chips, chip * batch * views);
	hk__wipe(out, sizeof(float) * HK_EMBED_DIM * batch * views);
	free(chips);
	free(out);
	return st;
}

hk_status hk_engine_embed(const hk_engine *e, const hk_image *img, const hk_face *faces,
                          size_t n, float *emb)
{
	if (!e || (n && (!faces || !emb)))
		return hk__err(HK_E_INVALID, "hk_engine_embed: NULL argument");
	float *mirror = NULL;
	if (e->p.flip == HK_ON && n) {
		mirror = malloc(sizeof(float) * HK_EMBED_DIM * n);
		if (!mirror)
			return hk__err(HK_E_NOMEM, "embed: out of memory");
	}
	/* The plain views land in emb, then each face's views are combined in
	 * place (out[k] depends only on plain[k] and mirror[k]). */
	hk_status st = hk__engine_embed_views(e, img, faces, n, emb, mirror);
	for (size_t i = 0; i < n && !st; i++) {
		float *dst = emb + i * HK_EMBED_DIM;
		if (hk__combine_views(dst, mirror ? mirror + i * HK_EMBED_DIM : NULL, dst))
			st = hk__err(HK_E_RANGE, "embed: face %zu gave a zero/non-finite embedding", i);
	}
	if (mirror) {
		hk__wipe(mirror, sizeof(float) * HK_EMBED_DIM * n);
		free(mirror);
	}
	return st;
}

size_t hk__subject_face(const hk_face *faces, size_t n, const hk_image *img)
{
	size_t best = SIZE_MAX;
	double amax = 0;
	for (size_t i = 0; i < n; i++) {
		double a = (double)(faces[i].box[2] - faces[i].box[0]) * (faces[i].box[3] - faces[i].box[1]);
		if (faces[i].reject == HK_FACE_OK && a > amax)
			amax = a;
	}
	double best_d = 0;
	for (size_t i = 0; i < n; i++) {
		const float *b = faces[i].box;
		double a = (double)(b[2] - b[0]) * (b[3] - b[1]);
		if (faces[i].reject != HK_FACE_OK || !(a >= SUBJECT_CLOSE_AREA * amax))
			continue;
		double dx = (b[0] + b[2]) / 2.0 - img->width / 2.0, dy = (b[1] + b[3]) / 2.0 - img->height / 2.0;
		double d = dx * dx + dy * dy;
		if (best == SIZE_MAX || d < best_d) {
			best = i;
			best_d = d;
		}
	}
	return best;
}

hk_status hk_engine_embed_largest(const hk_engine *e, const hk_image *img, hk_face *face,
                                  float emb[HK_EMBED_DIM])
{
	if (!e || !emb)
		return hk__err(HK_E_INVALID, "hk_engine_embed_largest: NULL argument");
	enum { MAXF = 64 };
	hk_face *faces = malloc(sizeof(hk_face) * MAXF);
	if (!faces)
		return hk__err(HK_E_NOMEM, "embed_largest: out of memory");
	size_t n = 0;
	hk_status st = hk_engine_detect(e, img, faces, MAXF, &n);
	size_t rejected = 0, best = st ? SIZE_MAX : hk__subject_face(faces, n < MAXF ? n : MAXF, img);
	for (size_t i = 0; !st && i < n && i < MAXF; i++)
		rejected += faces[i].reject != HK_FACE_OK;
	if (best == SIZE_MAX)
		best = MAXF;
	if (!st && best == MAXF)
		st = n == 0 ? hk__err(HK_E_NOT_FOUND, "no face found in the %ux%u image",
		                      img->width, img->height)
		            : hk__err(HK_E_NOT_FOUND, "no usable face: %zu found, %zu smaller than "
		                      "the %.0f-pixel floor", n, rejected, e->p.min_face);
	if (!st)
		st = hk_engine_embed(e, img, &faces[best], 1, emb);
	if (!st && face)
		*face = faces[best];
	free(faces);
	return st;
}

float hk_cosine(const float *a, const float *b, size_t dim)
{
	if (!a || !b)
		return 0;
	double ab = 0, aa = 0, bb = 0;
	for (size_t i = 0; i < dim; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	if (!(aa > 0) || !(bb > 0))
		return 0;
	return (float)(ab / sqrt(aa * bb));
}
