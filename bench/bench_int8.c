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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "herken.h"
#include "internal.h"
#include "nn/nn.h"
#include "pipeline/pipeline.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench int8-calibrate [--model embedder] [--images N]\n"
	           "                                  [--pairs FILE] [--lfw DIR]\n"
	           "Images of the LFW View 1 training pairs (default\n"
	           "$HERKEN_SHARED/datasets/lfw/pairsDevTrain.txt, first N = 600 distinct images);\n"
	           "prints the model's section of core/nn/int8_ranges.txt.\n");
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

int hk__bench_int8_calibrate(int argc, char **argv)
{
	const char *which = "embedder", *pairs = NULL, *lfw = NULL;
	long nimg = 600;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
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
	char **paths = calloc((size_t)nimg, sizeof *paths);
	size_t np = paths ? read_view1(pairs, lfw, paths, (size_t)nimg) : 0;
	if (!np) {
		fprintf(stderr, "int8-calibrate: no images from %s\n", pairs);
		free(paths);
		return 1;
	}
	char mpath[1024];
	snprintf(mpath, sizeof mpath, "%s/%s", hk_model_dir(NULL), hkb_model_file("embedder"));
	size_t mlen = 0;
	char *model = read_file(mpath, &mlen);
	hk_engine *e = NULL;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	const size_t item = (size_t)HK__CHIP_SIZE * HK__CHIP_SIZE * 3;
	float *in = malloc(np * 2 * item * sizeof(float));
	int rc = 1;
	if (!model || !in || hk_engine_create(&ep, &e)) {
		fprintf(stderr, "int8-calibrate: %s\n", model ? hk_last_error() : "cannot read the model");
		goto out;
	}
	size_t nin = 0;
	for (size_t i = 0; i < np; i++) {
		if (!chips_of(e, paths[i], in + nin * item))
			nin += 2;
		hkb_progress("calibration images", i + 1, np);
	}
	hk__int8_calib cal;
	if (hk__int8_calibrate(model, mlen, in, nin, &cal)) {
		fprintf(stderr, "int8-calibrate: %s\n", hk_last_error());
		goto out;
	}
	char sha[65];
	hk__sha256_hex(model, mlen, sha);
	printf("/* MobileFaceNet.tflite: %zu chips (O-Net-aligned face nearest the centre and its\n"
	       " * mirror image) of the first %zu distinct images of LFW View 1 %s */\n",
	       nin, np, strrchr(pairs, '/') ? strrchr(pairs, '/') + 1 : pairs);
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
		hk__wipe(in, np * 2 * item * sizeof(float));
	free(in);
	free(model);
	hk_engine_destroy(e);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
