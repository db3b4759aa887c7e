/* Pipeline maths against the golden tensors, no model needed: anchor
 * decoding + weighted NMS, letterbox, similarity alignment + warp, O-Net
 * pre/post-processing. Oracles: $HERKEN_SHARED/golden (official TFLite
 * runtime outputs and the reference pipeline's JSON). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "herken.h"
#include "pipeline/pipeline.h"
#include "test_pipeline_json.h"

static const char *golden(char *buf, size_t n, const char *rel)
{
	const char *sh = getenv("HERKEN_SHARED");
	if (!sh || !*sh)
		return NULL;
	snprintf(buf, n, "%s/golden/%s", sh, rel);
	FILE *f = fopen(buf, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return buf;
}

#define NEED(var, rel)                                                      \
	char var##_buf[1024];                                               \
	const char *var = golden(var##_buf, sizeof var##_buf, rel);         \
	if (!var)                                                           \
		cr_skip_test("golden data absent (HERKEN_SHARED/golden/%s)", rel)

static float *read_f32(const char *path, size_t want)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "open %s", path);
	float *v = malloc(want * sizeof *v);
	cr_assert(v);
	cr_assert_eq(fread(v, sizeof *v, want, f), want, "%s: short read", path);
	cr_assert_eq(fgetc(f), EOF, "%s: longer than %zu floats", path, want);
	fclose(f);
	return v;
}

/* JPEG straight through TurboJPEG (no EXIF rotation), like the reference's
 * jpeg-js decode; the test owns the pixels. */
static hk_image load_jpeg(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc((size_t)sz);
	cr_assert(buf && fread(buf, 1, (size_t)sz, f) == (size_t)sz);
	fclose(f);
	tjhandle tj = tjInitDecompress();
	int w, h, sub, cs;
	cr_assert_eq(tjDecompressHeader3(tj, buf, (unsigned long)sz, &w, &h, &sub, &cs), 0);
	hk_image img = {(uint32_t)w, (uint32_t)h, (uint32_t)w * 3, 0, malloc((size_t)w * h * 3)};
	cr_assert(img.data);
	cr_assert_eq(tjDecompress2(tj, buf, (unsigned long)sz, img.data, w, w * 3, h, TJPF_RGB,
	                           TJFLAG_ACCURATEDCT), 0, "%s", tjGetErrorStr2(tj));
	tjDestroy(tj);
	free(buf);
	return img;
}

static double num_at(const tj_doc *d, const tj_node *arr, size_t i)
{
	const tj_node *n = tj_at(d, arr, i);
	cr_assert(n && n->type == TJ_NUM);
	return n->num;
}

/* ---- detection decode + NMS against faces.json -------------------------- */

static void check_decode(const char *variant, size_t want_total, size_t want_matched,
                         double tol_box, double tol_kp)
{
	NEED(fj, "faces.json");
	tj_doc d;
	cr_assert_eq(tj_load(&d, fj), 0);
	const tj_node *faces = tj_get(&d, tj_root(&d), "faces");
	cr_assert(faces && faces->len == 22);
	hk__det *scratch = malloc(2 * HK__DET_ANCHORS * sizeof *scratch);
	size_t total = 0, matched = 0;
	double worst_box = 0, worst_kp = 0;
	for (int k = 1; k <= 6; k++) {
		char rel[128], p1[1024], p2[1024], pi[1024];
		snprintf(rel, sizeof rel, "detector/sample%d.%s.regressors.f32", k, variant);
		cr_assert(golden(p1, sizeof p1, rel));
		snprintf(rel, sizeof rel, "detector/sample%d.%s.logits.f32", k, variant);
		cr_assert(golden(p2, sizeof p2, rel));
		snprintf(rel, sizeof rel, "images/sample%d.jpg", k);
		cr_assert(golden(pi, sizeof pi, rel));
		float *regs = read_f32(p1, HK__DET_ANCHORS * 16);
		float *logits = read_f32(p2, HK__DET_ANCHORS);
		int w, h, sub, cs;
		{
			hk_image img = load_jpeg(pi);
			w = (int)img.width;
			h = (int)img.height;
			free(img.data);
			(void)sub;
			(void)cs;
		}
		hk__det dets[64];
		size_t n = hk__decode_detections(regs, logits, 0.6f, 0.3f, scratch, dets, 64);
		hk__letterbox lb = hk__letterbox_of((uint32_t)w, (uint32_t)h, 192, 1.0);
		for (size_t i = 0; i < n; i++) {
			hk__letterbox_unmap(&lb, 192, &dets[i]);
			cr_assert(dets[i].score >= 0.6f && dets[i].score <= 1.0f);
			if (i)
				cr_assert(dets[i].score <= dets[i - 1].score, "sorted by score");
		}
		total += n;
		char img_name[32];
		snprintf(img_name, sizeof img_name, "sample%d.jpg", k);
		for (size_t f = 0; f < faces->len; f++) {
			const tj_node *face = tj_at(&d, faces, f);
			if (!tj_streq(tj_get(&d, face, "image"), img_name))
				continue;
			const tj_node *det = tj_get(&d, face, "det");
			const tj_node *box = tj_get(&d, det, "box"), *kps = tj_get(&d, det, "kps");
			float gb[4];
			for (int c = 0; c < 4; c++)
				gb[c] = (float)num_at(&d, box, c);
			size_t best = n;
			float biou = 0;
			for (size_t i = 0; i < n; i++) {
				float v = hk__iou(gb, dets[i].box);
				if (v > biou) {
					biou = v;
					best = i;
				}
			}
			if (best == n || biou < 0.5f)
				continue;
			matched++;
			double side = gb[2] - gb[0];
			for (int c = 0; c < 4; c++)
				worst_box = fmax(worst_box, fabs(gb[c] - dets[best].box[c]) / side);
			for (int q = 0; q < 6; q++)
				for (int c = 0; c < 2; c++)
					worst_kp = fmax(worst_kp, fabs(num_at(&d, tj_at(&d, kps, q), c) -
					                               dets[best].kp[q][c]) / side);
		}
		free(regs);
		free(logits);
	}
	cr_log_info("%s: %zu detections, %zu of 22 golden matched, worst box err %.4f, kp err %.4f (of face side)",
	            variant, total, matched, worst_box, worst_kp);
	cr_expect_eq(total, want_total, "%s: detections at 0.6", variant);
	cr_expect_eq(matched, want_matched, "%s: golden faces matched", variant);
	cr_expect_lt(worst_box, tol_box);
	cr_expect_lt(worst_kp, tol_kp);
	free(scratch);
	tj_free(&d);
}

Test(pipeline_math, decode_sparse_finds_all_22)
{
	/* faces.json holds the sparse network's detections: same to rounding. */
	check_decode("sparse", 22, 22, 1e-3, 1e-3);
}

Test(pipeline_math, decode_dense_misses_one_in_sample2)
{
	/* A different network: same faces, boxes within ~15% of the side. */
	check_decode("dense", 21, 21, 0.2, 0.25);
}

Test(pipeline_math, nms_merges_overlaps_weighted)
{
	/* Two anchors on the same face, one far away: the pair merges into a
	 * score-weighted box, the third stays separate. */
	float *regs = calloc(HK__DET_ANCHORS * 16, sizeof *regs);
	float *logits = malloc(HK__DET_ANCHORS * sizeof *logits);
	for (int i = 0; i < HK__DET_ANCHORS; i++)
		logits[i] = -50;
	int a = 10 * 48 + 10, b = 10 * 48 + 11, c = 40 * 48 + 40;
	float side = 40; /* pixels of the 192 input */
	for (int i = 0; i < 3; i++) {
		int idx = i == 0 ? a : i == 1 ? b : c;
		regs[idx * 16 + 2] = side;
		regs[idx * 16 + 3] = side;
	}
	logits[a] = 2.0f;  /* 0.8808 */
	logits[b] = 1.0f;  /* 0.7311 */
	logits[c] = 0.5f;  /* 0.6225 */
	hk__det *scratch = malloc(2 * HK__DET_ANCHORS * sizeof *scratch);
	hk__det out[4];
	size_t n = hk__decode_detections(regs, logits, 0.6f, 0.3f, scratch, out, 4);
	cr_assert_eq(n, 2);
	cr_assert_float_eq(out[0].score, 1 / (1 + expf(-2.0f)), 1e-6);
	cr_assert_eq(out[0].cluster, 2);
	float wa = 1 / (1 + expf(-2.0f)), wb = 1 / (1 + expf(-1.0f));
	float cx = (wa * 10.5f + wb * 11.5f) / (wa + wb) / 48;
	cr_assert_float_eq((out[0].box[0] + out[0].box[2]) / 2, cx, 1e-5);
	cr_assert_float_eq(out[0].box[2] - out[0].box[0], side / 192, 1e-5);
	cr_assert_eq(out[1].cluster, 1);
	cr_assert_float_eq(out[1].box[1], 40.5f / 48 - side / 384, 1e-5);
	/* max limits the output but not the suppression. */
	cr_assert_eq(hk__decode_detections(regs, logits, 0.6f, 0.3f, scratch, out, 1), 1);
	/* NaN and huge logits are handled: NaN is no face, +inf clamps to 1. */
	logits[c] = NAN;
	logits[a] = INFINITY;
	n = hk__decode_detections(regs, logits, 0.6f, 0.3f, scratch, out, 4);
	cr_assert_eq(n, 1);
	cr_assert_float_eq(out[0].score, 1.0f, 1e-6);
	free(scratch);
	free(regs);
	free(logits);
}

/* ---- letterbox ------------------------------------------------------------ */

Test(pipeline_math, letterbox_matches_reference_input)
{
	NEED(pimg, "images/sample2.jpg");
	NEED(pin, "detector/sample2.det_input_1x192x192x3.f32");
	hk_image img = load_jpeg(pimg);
	float *mine = malloc(192 * 192 * 3 * sizeof *mine);
	hk__letterbox lb;
	cr_assert_eq(hk__letterbox_input(&img, 192, 1.0, mine, &lb), HK_OK);
	float *ref = read_f32(pin, 192 * 192 * 3);
	double sum = 0;
	size_t pad_rows = (size_t)floor(lb.pad_y);
	for (size_t i = 0; i < 192 * 192 * 3; i++)
		sum += fabs(mine[i] - ref[i]);
	double mean = sum / (192 * 192 * 3) * 127.5;
	cr_log_info("letterbox vs reference: mean |diff| %.3f levels, pad_y %.2f", mean, lb.pad_y);
	/* Same bilinear sampling; the JPEG decoders differ by a level or two. */
	cr_expect_lt(mean, 1.0);
	for (size_t i = 0; i < pad_rows * 192 * 3; i++)
		cr_assert_float_eq(mine[i], -1.0f, 1e-6, "padding at %zu", i);
	cr_assert_float_eq(lb.scale, 0.1, 1e-12);
	cr_assert_float_eq(lb.pad_y, (192 - 1367 * 0.1) / 2, 1e-9);
	free(ref);
	free(mine);
	free(img.data);
}

Test(pipeline_math, resample_area_and_bilinear)
{
	/* 4x2 image, values by column: area 2:1 shrink averages pairs. */
	uint8_t px[2 * 4 * 3];
	for (int y = 0; y < 2; y++)
		for (int x = 0; x < 4; x++)
			for (int c = 0; c < 3; c++)
				px[(y * 4 + x) * 3 + c] = (uint8_t)(x * 40 + c + y * 100);
	hk_image img = {4, 2, 12, 0, px};
	float o[2 * 1 * 3];
	cr_assert_eq(hk__resample(&img, 0, 0, 4, 2, 2, 1, HK__AREA_OR_BILINEAR, o), HK_OK);
	cr_assert_float_eq(o[0], (0 + 40 + 100 + 140) / 4.0f, 1e-4);
	cr_assert_float_eq(o[3], (80 + 120 + 180 + 220) / 4.0f, 1e-4);
	/* Fractional coverage and black outside: [-1, 3) x [0, 2) onto 1x1. */
	cr_assert_eq(hk__resample(&img, -1, 0, 4, 2, 1, 1, HK__AREA_OR_BILINEAR, o), HK_OK);
	cr_assert_float_eq(o[0], (0 + 40 + 80 + 100 + 140 + 180) / 8.0f, 1e-4);
	/* Enlarging: bilinear at pixel centres reproduces the source there. */
	float big[8 * 4 * 3];
	cr_assert_eq(hk__resample(&img, 0, 0, 4, 2, 8, 4, HK__AREA_OR_BILINEAR, big), HK_OK);
	/* Output (x=1, y=1) samples source (0.25, 0.25). */
	float want = 0.75f * 0.75f * 0 + 0.25f * 0.75f * 40 + 0.75f * 0.25f * 100 +
	             0.25f * 0.25f * 140;
	cr_assert_float_eq(big[(1 * 8 + 1) * 3], want, 1e-3);
	cr_assert_eq(hk__resample(&img, 0, 0, 0, 2, 2, 1, HK__AREA_OR_BILINEAR, o), HK_E_RANGE);
	cr_assert_eq(hk__resample(&img, NAN, 0, 4, 2, 2, 1, HK__AREA_OR_BILINEAR, o), HK_E_RANGE);
	cr_assert_eq(hk__resample(&img, 0, 0, 4, 2, 0, 1, HK__AREA_OR_BILINEAR, o), HK_E_INVALID);
}

/* ---- similarity transform and warp --------------------------------------- */

Test(pipeline_math, similarity_reproduces_reference_transforms)
{
	NEED(fj, "faces.json");
	tj_doc d;
	cr_assert_eq(tj_load(&d, fj), 0);
	const tj_node *faces = tj_get(&d, tj_root(&d), "faces");
	cr_assert(faces);
	for (size_t f = 0; f < faces->len; f++) {
		const tj_node *al = tj_get(&d, tj_at(&d, faces, f), "align");
		const tj_node *p5 = tj_get(&d, al, "points5_image"), *mr = tj_get(&d, al, "M_src_to_dst");
		cr_assert(p5 && mr && p5->len == 5 && mr->len == 6);
		float pts[5][2];
		for (int i = 0; i < 5; i++)
			for (int c = 0; c < 2; c++)
				pts[i][c] = (float)num_at(&d, tj_at(&d, p5, i), c);
		double m[6];
		cr_assert_eq(hk__similarity((const float (*)[2])pts, hk__arcface_template, 5, m), 0);
		for (int c = 0; c < 6; c++) {
			double want = num_at(&d, mr, c);
			/* points5_image is rounded to 0.01 px in the JSON. */
			double tol = c == 2 || c == 5 ? 0.05 : 5e-5;
			cr_expect(fabs(m[c] - want) <= tol, "face %zu m[%d] %.6f vs %.6f", f, c, m[c], want);
		}
		double inv[6], back[6];
		cr_assert_eq(hk__affine_invert(m, inv), 0);
		cr_assert_eq(hk__affine_invert(inv, back), 0);
		for (int c = 0; c < 6; c++)
			cr_assert_float_eq(back[c], m[c], 1e-6 * (1 + fabs(m[c])));
	}
	float same[5][2] = {{1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
	double m[6];
	cr_assert_eq(hk__similarity((const float (*)[2])same, hk__arcface_template, 5, m), -1);
	tj_free(&d);
}

static void check_warp(const char *who, const char *img_rel)
{
	char rel[256];
	NEED(gj, "abc/golden.json");
	NEED(pimg, img_rel);
	tj_doc d;
	cr_assert_eq(tj_load(&d, gj), 0);
	const tj_node *face = tj_get(&d, tj_get(&d, tj_root(&d), "faces"), who);
	const tj_node *mr = tj_get(&d, tj_get(&d, face, "alignment"), "M_src_to_dst");
	const tj_node *id = tj_get(&d, face, "id");
	cr_assert(mr && id);
	double m[6], inv[6];
	for (int c = 0; c < 6; c++)
		m[c] = num_at(&d, mr, c);
	cr_assert_eq(hk__affine_invert(m, inv), 0);
	snprintf(rel, sizeof rel, "abc/%s_%.*s.mobilefacenet_input_1x112x112x3.f32", who,
	         (int)id->len, id->str);
	char pin_buf[1024];
	const char *pin = golden(pin_buf, sizeof pin_buf, rel);
	cr_assert(pin, "%s", rel);
	hk_image img = load_jpeg(pimg);
	uint8_t chip[112 * 112 * 3];
	hk__warp(&img, inv, 112, chip);
	float *ref = read_f32(pin, 112 * 112 * 3);
	double sum = 0, mx = 0;
	for (size_t i = 0; i < sizeof chip; i++) {
		double diff = fabs(chip[i] - (ref[i] * 128.0 + 127.5));
		sum += diff;
		mx = fmax(mx, diff);
	}
	cr_log_info("warp %s: mean |diff| %.3f levels, max %.1f", who, sum / sizeof chip, mx);
	/* Decoders differ by 1-2 levels (README); the warp itself adds < 0.5. */
	cr_expect_lt(sum / sizeof chip, 2.0);
	/* Mirroring twice is the identity; once swaps columns. */
	uint8_t copy[sizeof chip];
	memcpy(copy, chip, sizeof chip);
	hk__chip_mirror(chip, 112);
	cr_assert_eq(chip[0], copy[111 * 3]);
	hk__chip_mirror(chip, 112);
	cr_assert_arr_eq(chip, copy, sizeof chip);
	free(ref);
	free(img.data);
	tj_free(&d);
}

Test(pipeline_math, warp_A_matches_reference_chip) { check_warp("A", "images/sample1.jpg"); }
Test(pipeline_math, warp_C_matches_reference_chip) { check_warp("C", "images/sample6.jpg"); }

Test(pipeline_math, align_from_detector_keypoints)
{
	/* Points exactly on the (4-point) template give the identity. */
	float p4[4][2];
	for (int i = 0; i < 3; i++) {
		p4[i][0] = hk__arcface_template[i][0];
		p4[i][1] = hk__arcface_template[i][1];
	}
	p4[3][0] = (hk__arcface_template[3][0] + hk__arcface_template[4][0]) / 2;
	p4[3][1] = (hk__arcface_template[3][1] + hk__arcface_template[4][1]) / 2;
	double inv[6];
	cr_assert_eq(hk__align_inverse((const float (*)[2])p4, 4, inv), 0);
	double id[6] = {1, 0, 0, 0, 1, 0};
	for (int c = 0; c < 6; c++)
		cr_assert_float_eq(inv[c], id[c], 1e-5);
	/* Scaled by 2 and shifted: the inverse scales back. */
	for (int i = 0; i < 4; i++) {
		p4[i][0] = 2 * p4[i][0] + 10;
		p4[i][1] = 2 * p4[i][1] - 4;
	}
	cr_assert_eq(hk__align_inverse((const float (*)[2])p4, 4, inv), 0);
	cr_assert_float_eq(inv[0], 2, 1e-5);
	cr_assert_float_eq(inv[2], 10, 1e-4);
	cr_assert_float_eq(inv[5], -4, 1e-4);
	cr_assert_eq(hk__align_inverse((const float (*)[2])p4, 3, inv), -1);
	p4[0][0] = NAN;
	cr_assert_eq(hk__align_inverse((const float (*)[2])p4, 4, inv), -1);
}

/* ---- O-Net pre/post-processing ------------------------------------------- */

Test(pipeline_math, onet_crop_input_and_landmarks)
{
	NEED(oj, "onet/onet_golden.json");
	tj_doc d;
	cr_assert_eq(tj_load(&d, oj), 0);
	const tj_node *faces = tj_get(&d, tj_root(&d), "faces");
	cr_assert(faces && faces->len == 22);
	hk_image img = {0};
	char cur[64] = "";
	float *in = malloc(48 * 48 * 3 * sizeof *in);
	double worst_in = 0, worst_lm = 0, worst_crop = 0;
	/* Every face costs a JPEG decode; under sanitizers check a subset. */
	for (size_t f = 0; f < faces->len; f += 3) {
		const tj_node *face = tj_get(&d, tj_at(&d, faces, f), "id");
		const tj_node *fo = tj_at(&d, faces, f);
		const tj_node *imn = tj_get(&d, fo, "image");
		char name[64], rel[256], path[1024];
		snprintf(name, sizeof name, "%.*s", (int)imn->len, imn->str);
		if (strcmp(name, cur)) {
			free(img.data);
			snprintf(rel, sizeof rel, "images/%s", name);
			cr_assert(golden(path, sizeof path, rel));
			img = load_jpeg(path);
			snprintf(cur, sizeof cur, "%s", name);
		}
		const tj_node *db = tj_get(&d, fo, "det_box"), *cb = tj_get(&d, fo, "crop_box");
		float box[4];
		for (int c = 0; c < 4; c++)
			box[c] = (float)num_at(&d, db, c);
		hk__crop cr = hk__onet_crop(box);
		worst_crop = fmax(worst_crop, fabs(cr.x - tj_num(tj_get(&d, cb, "x"), 1e9)));
		worst_crop = fmax(worst_crop, fabs(cr.y - tj_num(tj_get(&d, cb, "y"), 1e9)));
		worst_crop = fmax(worst_crop, fabs(cr.s - tj_num(tj_get(&d, cb, "s"), 1e9)));
		/* Input from the golden crop box, compared with the reference. */
		hk__crop gc = {tj_num(tj_get(&d, cb, "x"), 0), tj_num(tj_get(&d, cb, "y"), 0),
		               tj_num(tj_get(&d, cb, "s"), 0)};
		cr_assert_eq(hk__onet_input(&img, &gc, in), HK_OK);
		snprintf(rel, sizeof rel, "onet/%.*s.onet_input_1x48x48x3.f32", (int)face->len, face->str);
		cr_assert(golden(path, sizeof path, rel));
		float *ref = read_f32(path, 48 * 48 * 3);
		double sum = 0;
		for (int i = 0; i < 48 * 48 * 3; i++)
			sum += fabs(in[i] - ref[i]);
		worst_in = fmax(worst_in, sum / (48 * 48 * 3) * 128);
		free(ref);
		/* Landmarks mapped back from the reference outputs. */
		const tj_node *lm = tj_get(&d, fo, "conv6_3"), *li = tj_get(&d, fo, "landmarks_image");
		float l10[10], pts[5][2];
		for (int c = 0; c < 10; c++)
			l10[c] = (float)num_at(&d, lm, c);
		hk__onet_landmarks(&gc, l10, pts);
		for (int i = 0; i < 5; i++)
			for (int c = 0; c < 2; c++)
				worst_lm = fmax(worst_lm, fabs(pts[i][c] - num_at(&d, tj_at(&d, li, i), c)));
		/* Pass 2: refined box from the pass-1 regression, squared again. */
		const tj_node *p2 = tj_get(&d, fo, "pass2"), *rg = tj_get(&d, fo, "conv6_2");
		float reg[4], rbox[4];
		for (int c = 0; c < 4; c++)
			reg[c] = (float)num_at(&d, rg, c);
		hk__onet_refine(&gc, reg, rbox);
		const tj_node *rb = tj_get(&d, p2, "regressed_box"), *c2 = tj_get(&d, p2, "crop_box");
		for (int c = 0; c < 4; c++)
			cr_expect(fabs(rbox[c] - num_at(&d, rb, c)) < 0.02, "pass2 box %d", c);
		hk__crop cr2 = hk__onet_crop(rbox);
		cr_expect(fabs(cr2.x - tj_num(tj_get(&d, c2, "x"), 1e9)) < 0.02);
		cr_expect(fabs(cr2.y - tj_num(tj_get(&d, c2, "y"), 1e9)) < 0.02);
		cr_expect(fabs(cr2.s - tj_num(tj_get(&d, c2, "s"), 1e9)) < 0.02);
	}
	cr_log_info("onet: worst crop err %.4f px, input mean |diff| %.3f levels, landmarks %.4f px",
	            worst_crop, worst_in, worst_lm);
	cr_expect_lt(worst_crop, 0.01);
	cr_expect_lt(worst_in, 2.0);
	cr_expect_lt(worst_lm, 0.01);
	free(in);
	free(img.data);
	tj_free(&d);
}

Test(pipeline_math, json_reader_rejects_hostile_text)
{
	tj_doc d;
	const char *bad[] = {"", "{", "[1,", "{\"a\" 1}", "[1 2]", "\"abc", "[-]", "{\"a\":}",
	                     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	                     "[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(tj_parse(&d, bad[i], strlen(bad[i])), -1, "accepted '%s'", bad[i]);
	const char *ok = "{\"a\": [1, 2.5e1, {\"b\": true}], \"c\": \"x\"}";
	cr_assert_eq(tj_parse(&d, ok, strlen(ok)), 0);
	const tj_node *a = tj_get(&d, tj_root(&d), "a");
	cr_assert_eq(a->len, 3);
	cr_assert_float_eq(tj_num(tj_at(&d, a, 1), 0), 25.0, 1e-12);
	cr_assert(tj_get(&d, tj_at(&d, a, 2), "b")->type == TJ_BOOL);
	cr_assert(tj_streq(tj_get(&d, tj_root(&d), "c"), "x"));
	cr_assert_null(tj_at(&d, a, 3));
	cr_assert_null(tj_get(&d, tj_root(&d), "zz"));
	tj_free(&d);
}
