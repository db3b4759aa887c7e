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
	fprintf(f, "usage: herken-bench int8-calibrate [--model embedder] [--images N]\n"
	           "                                  [--pairs FILE] [--lfw DIR]\n"
	           "Images of the LFW View 1 training pairs (default\n"
	           "$HERKEN_SHARED/datasets/lfw/pairsDevTrain.txt, first N = 600 distinct images);\n"
	           "prints the model's section of core/nn/int8_ranges.txt.\n"
	           "  --layers      instead: int8 against fp32 per node on the golden face chips\n"
	           "                ($HERKEN_SHARED/golden/mobilefacenet; the calibration of\n"
	           "                $HERKEN_INT8_RANGES or the table): where accuracy is lost\n"
	           "  --fake W      with --layers: fp32 with only the activations or only the\n"
	           "                weights rounded as int8 rounds them (W: activations|weights)\n"
	           "  --on S        with --layers: over the golden faces (S = golden, default) or\n"
	           "                the calibration chips (S = calib: --images of --pairs; never\n"
	           "                test data, so per-node choices can be made on them)\n");
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

/* Chips (and mirrors) of the first nimg distinct images of a View 1 pairs
 * file: *n chips, malloc'd (wipe before freeing); NULL on failure. */
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
	if (!np)
		fprintf(stderr, "int8-calibrate: no images from %s\n", pairs);
	else if (!in || hk_engine_create(&ep, &e))
		fprintf(stderr, "int8-calibrate: %s\n", in ? hk_last_error() : "out of memory");
	for (size_t i = 0; e && i < np; i++) {
		if (!chips_of(e, paths[i], in + *n * item))
			*n += 2;
		hkb_progress("calibration images", i + 1, np);
	}
	hk_engine_destroy(e);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	if (!*n) {
		free(in);
		return NULL;
	}
	return in;
}

/* The golden face chips (sample<s>_f<f> files): *n of them, malloc'd. */
static float *golden_chips(const char *golden, size_t *n)
{
	const size_t item = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	float *in = malloc(48 * item * sizeof(float));
	*n = 0;
	for (int s = 1; in && s <= 6; s++)
		for (int f = 0; f < 8; f++) {
			char p[1200];
			snprintf(p, sizeof p, "%s/sample%d_f%d.mobilefacenet_input_1x112x112x3.f32", golden, s, f);
			FILE *fh = fopen(p, "rb");
			if (!fh)
				continue;
			size_t got = fread(in + *n * item, sizeof(float), item, fh);
			fclose(fh);
			*n += got == item;
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

static int int8_layers(const char *model, size_t mlen, const float *chips, size_t nchips,
                       const char *what, int fake_mode)
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
	int have32 = 0, have8 = 0, havew = 0, have2 = 0;
	hk__nn_net net2;
	hk__nn_exec xw;
	float *am2 = NULL, *fake = calloc((size_t)nt, sizeof(float));
	if (!c.ref || !c.cnt || !c.cmin || !c.csum || !c.qsum || !steps || !fake ||
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
	for (size_t k = 0; k < nchips; k++) {
		c.mode = 0;
		if (hk__nn_exec_visit(&x32, chips + k * item, 1, layer_visit, &c))
			goto fail;
		c.mode = 1;
		if (hk__nn_exec_visit(fake_mode ? &xw : &x8, chips + k * item, 1, layer_visit, &c))
			goto fail;
		nf++;
	}
	printf("# %s vs fp32 per node over %d %s (oneDNN at %s, %s): cosine min / mean\n",
	       fake_mode == 1 ? "fp32 with s8-rounded activations" : fake_mode == 2 ? "fp32 with s8 weights" : "int8",
	       nf, what, hk__nn_isa_name(), x8.impl);
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

int hk__bench_int8_calibrate(int argc, char **argv)
{
	const char *which = "embedder", *pairs = NULL, *lfw = NULL;
	long nimg = 600;
	int layers = 0, fake_mode = 0, on_calib = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--layers")) {
			layers = 1;
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
	if (strcmp(which, "embedder") || nimg < 1 || nimg > 20000) {
		fprintf(stderr, "int8-calibrate: only --model embedder, --images 1..20000\n");
		return 2;
	}
	char pbuf[1024], dbuf[1024];
	pairs = hkb_data_path(pairs, "datasets/lfw/pairsDevTrain.txt", pbuf, sizeof pbuf);
	lfw = hkb_data_path(lfw, "datasets/lfw", dbuf, sizeof dbuf);
	if (layers) {
		char mp[1024], gp[1024];
		snprintf(mp, sizeof mp, "%s/%s", hk_model_dir(NULL), hkb_model_file("embedder"));
		const char *golden = hkb_data_path(NULL, "golden/mobilefacenet", gp, sizeof gp);
		size_t ml = 0, nc = 0;
		char *m = read_file(mp, &ml);
		float *chips = on_calib ? calib_chips(pairs, lfw, nimg, &nc) : golden_chips(golden, &nc);
		char what[1200];
		if (on_calib)
			snprintf(what, sizeof what, "calibration chips (first %ld images of %s)", nimg, pairs);
		else
			snprintf(what, sizeof what, "golden faces (%s)", golden);
		int r = m && chips ? int8_layers(m, ml, chips, nc, what, fake_mode) : 1;
		if (!m)
			fprintf(stderr, "int8-calibrate: cannot read %s\n", mp);
		if (chips)
			hk__wipe(chips, nc * (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3 * sizeof(float));
		free(chips);
		free(m);
		return r;
	}
	size_t nin = 0;
	float *in = calib_chips(pairs, lfw, nimg, &nin);
	char mpath[1024];
	snprintf(mpath, sizeof mpath, "%s/%s", hk_model_dir(NULL), hkb_model_file("embedder"));
	size_t mlen = 0;
	char *model = read_file(mpath, &mlen);
	const size_t item = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	int rc = 1;
	if (!model || !in) {
		fprintf(stderr, "int8-calibrate: %s\n", model ? "no calibration chips" : "cannot read the model");
		goto out;
	}
	hk__int8_calib cal;
	if (hk__int8_calibrate(model, mlen, in, nin, &cal)) {
		fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
		goto out;
	}
	char sha[65];
	hk__sha256_hex(model, mlen, sha);
	printf("/* MobileFaceNet.tflite: %zu chips (O-Net-aligned face nearest the centre and its\n"
	       " * mirror image) of the first %ld distinct images of LFW View 1 %s */\n",
	       nin, nimg, strrchr(pairs, '/') ? strrchr(pairs, '/') + 1 : pairs);
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
		hk__wipe(in, nin * item * sizeof(float));
	free(in);
	free(model);
	return rc;
}
