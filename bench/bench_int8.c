/* herken-bench int8-calibrate: activation ranges for int8 inference.
 *
 * Runs the fp32 model over inputs made from real photos that are never
 * test data (LFW View 1 training pairs, pairsDevTrain.txt: every image of
 * its pairs, in file order, up to --images), the way the engine makes
 * them: embedder = O-Net-aligned chips of the face nearest the image
 * centre plus their mirror images (the engine embeds both views). Prints
 * the section of core/nn/int8_ranges.txt for the model: the largest
 * |value| of every tensor, keyed by the model file's sha256. Try it with
 * HERKEN_INT8_RANGES=FILE before committing it. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "herken.h"
#include "internal.h"
#include "nn/exec.h"
#include "nn/nn.h"
#include "pipeline/pipeline.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench int8-calibrate [--model embedder|detector-sparse|detector-dense|\n"
	           "                                  landmarks] [--images N]\n"
	           "                                  [--pairs FILE] [--lfw DIR]\n"
	           "Images of the LFW View 1 training pairs (default\n"
	           "$HERKEN_SHARED/datasets/lfw/pairsDevTrain.txt, first N = 600 distinct images);\n"
	           "prints the model's section of core/nn/int8_ranges.txt. Inputs as the engine makes them:\n"
	           "embedder: face chips and mirrors; detector: letterboxed photo at zoom 1 and 1.6;\n"
	           "landmarks: O-Net crops of the faces the fp32 engine detects.\n"
	           "  --layers      instead: int8 against fp32 per node on the golden face chips\n"
	           "                ($HERKEN_SHARED/golden/mobilefacenet; the calibration of\n"
	           "                $HERKEN_INT8_RANGES or the table): where accuracy is lost\n"
	           "  --guard       instead: the int8 guard of a detector or O-Net on its golden inputs\n"
	           "                (same faces at IoU >= 0.5, scores within 0.05; landmarks within\n"
	           "                5 %% of the eye distance): figures and whether it holds\n"
	           "  --fake W      with --layers: fp32 with only the activations or only the\n"
	           "                weights rounded as int8 rounds them (W: activations|weights)\n"
	           "  --on S        with --layers (embedder): over the golden faces (S = golden,\n"
	           "                default) or the calibration chips (S = calib: the --images\n"
	           "                above; never test data, so per-node choices can be made on them)\n");
}

/* Distinct image paths of a View 1 pairs file, in file order. */
static size_t read_view1(const char *file, const char *dir, char **paths, size_t max)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return 0;
	char line[1024];
	size_t n = 0;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return 0;
	}
	while (n < max && fgets(line, sizeof line, f)) {
		char a[256], b[256];
		long i1, i2;
		char *p[2] = {NULL, NULL};
		if (sscanf(line, "%255s %ld %255s %ld", a, &i1, b, &i2) == 4) {
			if (asprintf(&p[0], "%s/%s/%s_%04ld.jpg", dir, a, a, i1) < 0 ||
			    asprintf(&p[1], "%s/%s/%s_%04ld.jpg", dir, b, b, i2) < 0)
				break;
		} else if (sscanf(line, "%255s %ld %ld", a, &i1, &i2) == 3) {
			if (asprintf(&p[0], "%s/%s/%s_%04ld.jpg", dir, a, a, i1) < 0 ||
			    asprintf(&p[1], "%s/%s/%s_%04ld.jpg", dir, a, a, i2) < 0)
				break;
		} else {
			continue;
		}
		for (int k = 0; k < 2; k++) {
			int dup = 0;
			for (size_t j = 0; j < n && !dup; j++)
				dup = !strcmp(paths[j], p[k]);
			if (dup || n >= max)
				free(p[k]);
			else
				paths[n++] = p[k];
		}
	}
	fclose(f);
	return n;
}

/* The chip and the mirrored chip of the face nearest the centre, as
 * normalised embedder inputs (2 x 112 x 112 x 3). 0 ok, -1 no face. */
static int chips_of(const hk_engine *e, const char *path, float *out)
{
	hk_image img;
	if (hk_image_load(path, &img))
		return -1;
	hk_face faces[32];
	size_t n = 0;
	int rc = -1;
	if (!hk_engine_detect(e, &img, faces, 32, &n) && n) {
		size_t best = SIZE_MAX;
		double bd = 0;
		for (size_t k = 0; k < n && k < 32; k++) {
			if (faces[k].reject != HK_FACE_OK)
				continue;
			double dx = (faces[k].box[0] + faces[k].box[2]) / 2.0 - img.width / 2.0;
			double dy = (faces[k].box[1] + faces[k].box[3]) / 2.0 - img.height / 2.0;
			if (best == SIZE_MAX || dx * dx + dy * dy < bd) {
				bd = dx * dx + dy * dy;
				best = k;
			}
		}
		double inv[6];
		const hk_face *f = best == SIZE_MAX ? NULL : &faces[best];
		if (f && !hk__align_inverse((const float (*)[2])f->landmarks,
		                            f->landmark_source == HK_LANDMARKS_ONET ? 5 : 4, inv)) {
			const size_t item = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
			uint8_t chip[HK__CHIP_SIZE * HK__CHIP_SIZE * 3];
			hk__warp(&img, inv, HK__CHIP_SIZE, chip);
			for (int v = 0; v < 2; v++) {
				if (v)
					hk__chip_mirror(chip, HK__CHIP_SIZE);
				for (size_t i = 0; i < item; i++)
					out[v * item + i] = ((float)chip[i] - 127.5f) * 0.0078125f;
			}
			hk__wipe(chip, sizeof chip);
			rc = 0;
		}
	}
	hk_image_free(&img);
	return rc;
}

#define DET_VIEWS 2
#define ONET_FACES 4

/* The detector's inputs of one photo: the plain letterbox and the rescue
 * pass's zoomed-out one (smaller faces, wider black margins), as the
 * engine makes them. Returns how many were written (0: unreadable). */
static size_t det_inputs_of(const char *path, float *out)
{
	hk_image img;
	if (hk_image_load(path, &img))
		return 0;
	const size_t item = (size_t)HK__DET_SIZE * HK__DET_SIZE * 3;
	const double zoom[DET_VIEWS] = {1.0, 1.6};
	size_t n = 0;
	for (int v = 0; v < DET_VIEWS; v++) {
		hk__letterbox lb;
		if (!hk__letterbox_input(&img, HK__DET_SIZE, zoom[v], out + n * item, &lb))
			n++;
	}
	hk_image_free(&img);
	return n;
}

/* O-Net's inputs of one photo: the crop of every face the fp32 engine
 * detects (at most ONET_FACES), as the engine feeds them to O-Net. */
static size_t onet_inputs_of(const hk_engine *e, const char *path, float *out)
{
	hk_image img;
	if (hk_image_load(path, &img))
		return 0;
	hk_face faces[32];
	size_t nf = 0, n = 0;
	const size_t item = (size_t)HK__ONET_SIZE * HK__ONET_SIZE * 3;
	if (!hk_engine_detect(e, &img, faces, 32, &nf))
		for (size_t k = 0; k < nf && k < 32 && n < ONET_FACES; k++) {
			hk__crop c = hk__onet_crop(faces[k].box);
			if (!hk__onet_input(&img, &c, out + n * item))
				n++;
		}
	hk_image_free(&img);
	return n;
}

/* Embedder chips (and mirrors) of the first nimg distinct images of a View 1
 * pairs file: *n chips, malloc'd (wipe before freeing); NULL if none. */
static float *calib_chips(const char *pairs, const char *lfw, long nimg, size_t *n)
{
	const size_t item = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	char **paths = calloc((size_t)nimg, sizeof *paths);
	size_t np = paths ? read_view1(pairs, lfw, paths, (size_t)nimg) : 0;
	float *in = np ? malloc(np * 2 * item * sizeof(float)) : NULL;
	hk_engine *e = NULL;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	*n = 0;
	if (!in || hk_engine_create(&ep, &e))
		fprintf(stderr, "int8-calibrate: no calibration chips from %s\n", pairs);
	for (size_t i = 0; e && i < np; i++) {
		*n += chips_of(e, paths[i], in + *n * item) ? 0 : 2;
		hkb_progress("calibration images", i + 1, np);
	}
	hk_engine_destroy(e);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	if (!*n) {
		free(in);
		in = NULL;
	}
	return in;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
	if (n > 0 && !fseek(f, 0, SEEK_SET) && (buf = malloc((size_t)n)) &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = buf ? (size_t)n : 0;
	return buf;
}

/* ---- --layers: where int8 loses accuracy ----
 * fp32 and int8 runs of the same (equalised) net over the golden face
 * chips, one face at a time: the cosine of every materialised tensor
 * against fp32, min and mean over the faces. Measures, fits nothing. */

typedef struct layer_cmp {
	int mode;          /* 0 record fp32, 1 compare */
	float **ref;       /* per tensor: the fp32 run's values */
	size_t *cnt;
	double *cmin, *csum;
	double *qsum;      /* per tensor: cosine of fp32 against fp32 rounded to
	                      the int8 run's step (that tensor's own loss) */
	const float *qs;   /* per s8 tensor: step, else 0 */
	const float *fake;
} layer_cmp;

static void layer_visit(void *user, int t, const float *v, size_t count)
{
	layer_cmp *c = user;
	if (c->mode == 0) {
		free(c->ref[t]);
		c->ref[t] = malloc(count * sizeof(float));
		if (c->ref[t])
			memcpy(c->ref[t], v, count * sizeof(float));
		c->cnt[t] = c->ref[t] ? count : 0;
		return;
	}
	if (c->cnt[t] != count)
		return;
	/* --fake activations: v is the fp32 run's own buffer; rounding it in
	 * place feeds the rounded values to the nodes that read it */
	if (c->fake && c->fake[t] > 0)
		for (size_t i = 0; i < count; i++) {
			float q = nearbyintf(v[i] / c->fake[t]);
			((float *)v)[i] = (q > 127 ? 127 : q < -127 ? -127 : q) * c->fake[t];
		}
	double ab = 0, aa = 0, bb = 0;
	for (size_t i = 0; i < count; i++) {
		ab += (double)v[i] * c->ref[t][i];
		aa += (double)v[i] * v[i];
		bb += (double)c->ref[t][i] * c->ref[t][i];
	}
	double cs = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
	c->cmin[t] = cs < c->cmin[t] ? cs : c->cmin[t];
	c->csum[t] += cs;
	double qb = 0, qq = 0;
	for (size_t i = 0; c->qs[t] > 0 && i < count; i++) {
		float q = nearbyintf(c->ref[t][i] / c->qs[t]);
		q = (q > 127 ? 127 : q < -127 ? -127 : q) * c->qs[t];
		qb += (double)q * c->ref[t][i];
		qq += (double)q * q;
	}
	c->qsum[t] += c->qs[t] > 0 && qq > 0 && bb > 0 ? qb / sqrt(qq * bb) : 1.0;
}

static const char *kind_name(int k)
{
	static const char *const n[] = {"conv", "fc", "maxpool", "resize", "d2s", "pad",
	                                "binary", "unary", "prelu", "reduce", "copy"};
	return k >= 0 && k < (int)(sizeof n / sizeof n[0]) ? n[k] : "?";
}

/* One input through fp32 (recorded) and the compared run. 0 ok. */
static int layer_pair(hk__nn_exec *x32, hk__nn_exec *xc, const float *in, layer_cmp *c)
{
	c->mode = 0;
	if (hk__nn_exec_visit(x32, in, 1, layer_visit, c))
		return -1;
	c->mode = 1;
	return hk__nn_exec_visit(xc, in, 1, layer_visit, c) ? -1 : 0;
}

/* chips: nchips embedder inputs to use instead of the golden files (the
 * calibration chips of --on calib), or NULL. */
static int int8_layers(const char *model, size_t mlen, const char *golden, int role, int fake_mode,
                       const float *chips, size_t nchips)
{
	hk__nn_net net;
	hk__nn_exec x32, x8;
	float *amax = NULL;
	char sha[65];
	int rc = 1, nf = 0;
	hk__sha256_hex(model, mlen, sha);
	if (hk__nn_build(model, mlen, &net)) {
		fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
		return 1;
	}
	const int nt = net.g.ntensors;
	const size_t item = hk__nn_item_count(&net.g.t[net.input]);
	layer_cmp c = {0, calloc((size_t)nt, sizeof(float *)), calloc((size_t)nt, sizeof(size_t)),
	               malloc((size_t)nt * sizeof(double)), calloc((size_t)nt, sizeof(double)),
	               calloc((size_t)nt, sizeof(double)), NULL, NULL};
	float *steps = calloc((size_t)nt, sizeof(float));
	float *in = malloc(item * sizeof(float));
	int have32 = 0, have8 = 0, havew = 0, have2 = 0;
	hk__nn_net net2;
	hk__nn_exec xw;
	float *am2 = NULL, *fake = calloc((size_t)nt, sizeof(float));
	if (!c.ref || !c.cnt || !c.cmin || !c.csum || !c.qsum || !steps || !in || !fake ||
	    hk__int8_ranges(sha, &net, 0, &amax) ||
	    hk__nn_exec_init(&x32, &net, 1, NULL, HK_PREC_FP32, NULL) || !(have32 = 1) ||
	    hk__nn_exec_init(&x8, &net, 1, NULL, HK_PREC_INT8, amax) || !(have8 = 1)) {
		fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
		goto out;
	}
	/* --fake: the int8 rounding simulated in fp32, one side at a time */
	if (fake_mode == 1) { /* activations: every s8 tensor rounded to its step */
		if (hk__nn_exec_init(&xw, &net, 1, NULL, HK_PREC_FP32, NULL))
			goto fail;
		havew = 1;
		for (int t = 0; t < nt; t++)
			fake[t] = x8.dt[t] == DT_S8 ? x8.qs[t] : 0;
		c.fake = fake;
	} else if (fake_mode == 2) { /* weights: s8 per output channel, as int8 runs */
		if (hk__nn_build(model, mlen, &net2))
			goto fail;
		have2 = 1;
		if (hk__int8_ranges(sha, &net2, 0, &am2))
			goto fail;
		for (int i = 0; i < net2.nnodes; i++) {
			const hk__nn_node *nd = &net2.node[i];
			if (!hk__nnx_node_int8(&x8, &net.node[i]))
				continue;
			hk__nn_tensor *w = &net2.g.t[nd->weights];
			int dw = nd->kind == NK_CONV && nd->groups > 1;
			size_t O = dw ? (size_t)w->shape[3] : (size_t)w->shape[0], per = w->count / O;
			for (size_t o = 0; o < O; o++) {
				float m = 0;
				for (size_t k = 0; k < per; k++)
					m = fmaxf(m, fabsf(w->f[dw ? k * O + o : o * per + k]));
				float st = m > 0 ? m / 127.0f : 1.0f;
				for (size_t k = 0; k < per; k++) {
					size_t at = dw ? k * O + o : o * per + k;
					w->f[at] = nearbyintf(w->f[at] / st) * st;
				}
			}
		}
		if (hk__nn_exec_init(&xw, &net2, 1, NULL, HK_PREC_FP32, NULL))
			goto fail;
		havew = 1;
	}
	for (int t = 0; t < nt; t++) {
		c.cmin[t] = 2;
		steps[t] = x8.dt[t] == DT_S8 ? x8.qs[t] : 0;
	}
	c.qs = steps;
	for (size_t k = 0; k < nchips; k++, nf++)
		if (layer_pair(&x32, fake_mode ? &xw : &x8, chips + k * item, &c))
			goto fail;
	for (int s = 1; s <= 6 && !chips; s++)
		for (int f = 0; f < 8; f++) {
			char p[1200];
			if (role == 1 && f)
				break;
			if (role == 0)
				snprintf(p, sizeof p, "%s/sample%d_f%d.mobilefacenet_input_1x112x112x3.f32", golden, s, f);
			else if (role == 1)
				snprintf(p, sizeof p, "%s/sample%d.det_input_1x192x192x3.f32", golden, s);
			else
				snprintf(p, sizeof p, "%s/sample%d_f%d.onet_input_1x48x48x3.f32", golden, s, f);
			FILE *fh = fopen(p, "rb");
			if (!fh)
				continue;
			size_t got = fread(in, sizeof(float), item, fh);
			fclose(fh);
			if (got != item)
				continue;
			if (layer_pair(&x32, fake_mode ? &xw : &x8, in, &c))
				goto fail;
			nf++;
		}
	printf("# %s vs fp32 per node over %d %s (%s; oneDNN at %s, %s): cosine min / mean\n",
	       fake_mode == 1 ? "fp32 with s8-rounded activations" : fake_mode == 2 ? "fp32 with s8 weights" : "int8",
	       nf, chips ? "calibration chips" : "golden faces", chips ? "--on calib" : golden, hk__nn_isa_name(),
	       x8.impl);
	printf("%5s %-8s %6s %4s %9s %9s %9s %9s %10s\n", "node", "kind", "tensor", "dt", "min", "mean",
	       "alone", "step", "Mflop");
	for (int i = 0; i < net.nnodes && nf; i++) {
		const hk__nn_node *nd = &net.node[i];
		int t = nd->dst;
		const char *dt = x8.dt[t] == DT_S8 ? "s8" : x8.dt[t] == DT_BF16 ? "bf16" : "f32";
		printf("%5d %-8s %6d %4s %9.6f %9.6f %9.6f %9.3g %10.2f%s\n", i, kind_name(nd->kind), t, dt,
		       c.cmin[t], c.csum[t] / nf, c.qsum[t] / nf, (double)steps[t], nd->flops / 1e6,
		       hk__nnx_node_int8(&x8, nd) ? " int8" : nd->kind == NK_CONV ? " (fp32 conv)" : "");
	}
	rc = nf ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
out:
	if (have8)
		hk__nn_exec_free(&x8);
	if (have32)
		hk__nn_exec_free(&x32);
	for (int t = 0; c.ref && t < nt; t++)
		free(c.ref[t]);
	free(c.ref);
	free(c.cnt);
	free(c.cmin);
	free(c.csum);
	free(c.qsum);
	free(steps);
	free(in);
	if (havew)
		hk__nn_exec_free(&xw);
	if (have2)
		hk__nn_net_free(&net2);
	free(am2);
	free(fake);
	free(amax);
	hk__nn_net_free(&net);
	return rc;
}

/* ---- --guard: the model's int8 guard on its golden inputs ----
 * The fp32 and the int8 model (calibration of $HERKEN_INT8_RANGES or the
 * table) over the golden inputs: detector = the six golden photos'
 * letterboxed inputs, decoded at the engine's score threshold (0.6);
 * landmarks = the golden faces' O-Net crops. Prints the figures and
 * whether the guard holds (core/pipeline/guard.c). */
static int int8_guard(const char *mpath, const char *golden, int role)
{
	hk_model *m[2] = {NULL, NULL};
	int rc = 1;
	const size_t item = role == 1 ? (size_t)HK__DET_SIZE * HK__DET_SIZE * 3 : (size_t)HK__ONET_SIZE * HK__ONET_SIZE * 3;
	float *in = malloc(48 * item * sizeof(float));
	size_t n = 0;
	for (int s = 1; s <= 6 && in; s++)
		for (int f = 0; f < (role == 1 ? 1 : 8); f++) {
			char p[1200];
			if (role == 1)
				snprintf(p, sizeof p, "%s/sample%d.det_input_1x192x192x3.f32", golden, s);
			else
				snprintf(p, sizeof p, "%s/sample%d_f%d.onet_input_1x48x48x3.f32", golden, s, f);
			FILE *fh = fopen(p, "rb");
			if (fh && fread(in + n * item, sizeof(float), item, fh) == item)
				n++;
			if (fh)
				fclose(fh);
		}
	for (int k = 0; k < 2; k++) {
		hk_model_params p;
		hk_model_default_params(&p);
		p.threads = 1;
		p.precision = k ? HK_PREC_INT8 : HK_PREC_FP32;
		if (hk_model_load(mpath, &p, &m[k]))
			goto fail;
	}
	hk__det_guard dg = {0};
	hk__onet_guard og = {0};
	if (!n || hk__guard_models(m[0], m[1], in, n, &dg, &og))
		goto fail;
	if (role == 1)
		printf("%s int8 vs fp32 on %zu golden photos (%s): %zu faces, %zu found again (IoU >= 0.5), "
		       "%zu missed, %zu extra; IoU min %.3f mean %.3f; max |score diff| %.4f; guard %s\n",
		       strrchr(mpath, '/') ? strrchr(mpath, '/') + 1 : mpath, dg.images, golden, dg.faces,
		       dg.matched, dg.missed, dg.extra, dg.min_iou, dg.matched ? dg.iou_sum / dg.matched : 0,
		       dg.max_score_diff, hk__det_guard_holds(&dg) ? "holds" : "FAILS");
	else
		printf("onet.tflite int8 vs fp32 on %zu golden faces (%s): landmark shift / eye distance "
		       "max %.4f mean %.4f; max |prob diff| %.4f; guard %s\n",
		       og.faces, golden, og.max_dev, og.faces ? og.dev_sum / og.faces : 0, og.max_prob_diff,
		       hk__onet_guard_holds(&og) ? "holds" : "FAILS");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "int8-calibrate: %s\n", n ? hk_last_error() : "no golden inputs");
out:
	free(in);
	hk_model_destroy(m[0]);
	hk_model_destroy(m[1]);
	return rc;
}

int hk__bench_int8_calibrate(int argc, char **argv)
{
	const char *which = "embedder", *pairs = NULL, *lfw = NULL;
	long nimg = 600;
	int layers = 0, fake_mode = 0, guard = 0, on_calib = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--layers")) {
			layers = 1;
		} else if (!strcmp(a, "--guard")) {
			guard = 1;
		} else if (v && !strcmp(a, "--fake") && (!strcmp(v, "activations") || !strcmp(v, "weights"))) {
			fake_mode = !strcmp(v, "activations") ? 1 : 2, i++;
		} else if (v && !strcmp(a, "--on") && (!strcmp(v, "golden") || !strcmp(v, "calib"))) {
			on_calib = !strcmp(v, "calib"), i++;
		} else if (v && !strcmp(a, "--model")) {
			which = v, i++;
		} else if (v && !strcmp(a, "--images")) {
			nimg = atol(v), i++;
		} else if (v && !strcmp(a, "--pairs")) {
			pairs = v, i++;
		} else if (v && !strcmp(a, "--lfw")) {
			lfw = v, i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	const int role = !strcmp(which, "embedder") ? 0 : !strcmp(which, "landmarks") ? 2 :
	                 !strncmp(which, "detector-", 9) ? 1 : -1;
	if (role < 0 || !*hkb_model_file(which) || nimg < 1 || nimg > 20000) {
		fprintf(stderr, "int8-calibrate: --model embedder|detector-sparse|detector-dense|landmarks, "
		                "--images 1..20000\n");
		return 2;
	}
	char pbuf[1024], dbuf[1024];
	pairs = hkb_data_path(pairs, "datasets/lfw/pairsDevTrain.txt", pbuf, sizeof pbuf);
	lfw = hkb_data_path(lfw, "datasets/lfw", dbuf, sizeof dbuf);
	if (guard && role == 0) {
		fprintf(stderr, "int8-calibrate: the embedder's guard is the infer/check cosine (>= 0.995 per face)\n");
		return 2;
	}
	if (layers || guard) {
		char mp[1024], gp[1024];
		snprintf(mp, sizeof mp, "%s/%s", hk_model_dir(NULL), hkb_model_file(which));
		const char *golden = hkb_data_path(NULL, role == 0 ? "golden/mobilefacenet" : role == 1 ? "golden/detector" : "golden/onet",
		                                   gp, sizeof gp);
		size_t ml = 0;
		char *m = read_file(mp, &ml);
		size_t nc = 0;
		float *chips = layers && on_calib && role == 0 ? calib_chips(pairs, lfw, nimg, &nc) : NULL;
		int r = m && (chips || !on_calib)
		            ? (guard ? int8_guard(mp, golden, role) : int8_layers(m, ml, golden, role, fake_mode, chips, nc))
		            : 1;
		if (!m)
			fprintf(stderr, "int8-calibrate: cannot read %s\n", mp);
		if (chips)
			hk__wipe(chips, nc * (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3 * sizeof(float));
		free(chips);
		free(m);
		return r;
	}
	char **paths = calloc((size_t)nimg, sizeof *paths);
	size_t np = paths ? read_view1(pairs, lfw, paths, (size_t)nimg) : 0;
	if (!np) {
		fprintf(stderr, "int8-calibrate: no images from %s\n", pairs);
		free(paths);
		return 1;
	}
	char mpath[1024];
	snprintf(mpath, sizeof mpath, "%s/%s", hk_model_dir(NULL), hkb_model_file(which));
	size_t mlen = 0;
	char *model = read_file(mpath, &mlen);
	hk_engine *e = NULL;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	const size_t side = role == 0 ? HK__CHIP_SIZE : role == 1 ? HK__DET_SIZE : HK__ONET_SIZE;
	const size_t item = side * side * 3, per = role == 0 ? 2 : role == 1 ? DET_VIEWS : ONET_FACES;
	float *in = malloc(np * per * item * sizeof(float));
	int rc = 1;
	if (!model || !in || hk_engine_create(&ep, &e)) {
		fprintf(stderr, "int8-calibrate: %s\n", model ? hk_last_error() : "cannot read the model");
		goto out;
	}
	size_t nin = 0;
	for (size_t i = 0; i < np; i++) {
		if (role == 0)
			nin += chips_of(e, paths[i], in + nin * item) ? 0 : 2;
		else
			nin += role == 1 ? det_inputs_of(paths[i], in + nin * item)
			                 : onet_inputs_of(e, paths[i], in + nin * item);
		hkb_progress("calibration images", i + 1, np);
	}
	hk__int8_calib cal;
	if (hk__int8_calibrate(model, mlen, in, nin, &cal)) {
		fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
		goto out;
	}
	char sha[65];
	hk__sha256_hex(model, mlen, sha);
	static const char *const what[3] = {
	    "chips (O-Net-aligned face nearest the centre and its mirror image)",
	    "letterboxed inputs (zoom 1 and the rescue pass's 1.6)",
	    "O-Net crops (every face the fp32 engine detects, at most 4 an image)"};
	printf("/* %s: %zu %s\n * of the first %zu distinct images of LFW View 1 %s */\n", hkb_model_file(which), nin,
	       what[role], np, strrchr(pairs, '/') ? strrchr(pairs, '/') + 1 : pairs);
	printf("\"model %s\\n\"\n", sha);
	for (int t = 0; t < cal.ntensors; t++)
		if (cal.eq[t])
			printf("\"e %d %s\\n\"\n", t, cal.eq[t]);
	for (int t = 0; t < cal.ntensors; t++)
		if (cal.geq[t])
			printf("\"g %d %s\\n\"\n", t, cal.geq[t]);
	for (int t = 0; t < cal.ntensors; t++)
		if (cal.amax[t] > 0)
			printf("\"%d %.6g\\n\"\n", t, cal.amax[t]);
	printf("\"end\\n\"\n");
	hk__int8_calib_free(&cal);
	rc = 0;
out:
	if (in)
		hk__wipe(in, np * per * item * sizeof(float));
	free(in);
	free(model);
	hk_engine_destroy(e);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
