/* herken-bench pipeline: end-to-end latency per stage (decode, detection
 * with landmarks, embedding of every face) and frames/s on a set of photos,
 * for each engine configuration asked for. Verifies its own work: every
 * photo must give the same faces and embeddings on every repetition. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "herken.h"

#define MAXF 64

static const char pipe_usage[] =
    "usage: herken-bench pipeline [IMG...] [--repeat N] [--json] [--models DIR]\n"
    "End-to-end latency per stage on photos (default: the six golden demo photos\n"
    "under $HERKEN_SHARED/golden/images), for O-Net on/off x flip on/off.\n";

typedef struct cfg {
	const char *name;
	uint32_t onet, flip;
} cfg;

int hk__bench_pipeline(int argc, char **argv)
{
	const char *files[256];
	int nfiles = 0, json = 0;
	long repeat = 3;
	const char *models = NULL;
	char defaults[6][1024];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(pipe_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (v && !strcmp(a, "--repeat") && hkb_parse_list(v, &repeat, 1) == 1 &&
		           repeat >= 1 && repeat <= 1000) {
			i++;
		} else if (v && !strcmp(a, "--models")) {
			models = v;
			i++;
		} else if (a[0] != '-' && nfiles < 256) {
			files[nfiles++] = a;
		} else {
			fprintf(stderr, "pipeline: bad argument '%s'\n%s", a, pipe_usage);
			return 2;
		}
	}
	if (nfiles == 0) {
		char sh[512];
		hkb_data_path(NULL, "", sh, sizeof sh);
		for (int k = 0; k < 6; k++) {
			snprintf(defaults[k], sizeof defaults[k], "%s/golden/images/sample%d.jpg", sh, k + 1);
			files[nfiles++] = defaults[k];
		}
	}
	static const cfg cfgs[] = {{"onet+flip", HK_ON, HK_ON},
	                           {"onet", HK_ON, HK_OFF},
	                           {"detector-keypoints+flip", HK_OFF, HK_ON},
	                           {"detector-keypoints", HK_OFF, HK_OFF}};
	size_t ncfg = sizeof cfgs / sizeof cfgs[0];
	size_t nmeas = (size_t)nfiles * (size_t)repeat;
	double *t_dec = malloc(nmeas * sizeof *t_dec), *t_det = malloc(nmeas * sizeof *t_det);
	double *t_emb = malloc(nmeas * sizeof *t_emb), *t_all = malloc(nmeas * sizeof *t_all);
	hk_face *faces = malloc(MAXF * sizeof *faces);
	float *emb = malloc(MAXF * HK_EMBED_DIM * sizeof *emb);
	float *first = malloc((size_t)nfiles * MAXF * HK_EMBED_DIM * sizeof *first);
	size_t *nfirst = calloc((size_t)nfiles, sizeof *nfirst);
	if (!t_dec || !t_det || !t_emb || !t_all || !faces || !emb || !first || !nfirst) {
		fprintf(stderr, "pipeline: out of memory\n");
		return 4;
	}
	if (!json)
		hkb_print_header("pipeline", 0);
	int rc = 0;
	if (json)
		printf("{\"suite\":\"pipeline\",\"images\":%d,\"repeat\":%ld,\"configs\":[", nfiles, repeat);
	else
		printf("| config | faces | decode ms | detect+landmarks ms | embed ms | total ms | "
		       "frames/s |\n|---|---|---|---|---|---|---|\n");
	for (size_t c = 0; c < ncfg && !rc; c++) {
		hk_engine_params ep;
		hk_engine_default_params(&ep);
		ep.model_dir = models;
		ep.onet = cfgs[c].onet;
		ep.flip = cfgs[c].flip;
		hk_engine *e = NULL;
		if (hk_engine_create(&ep, &e)) {
			fprintf(stderr, "pipeline: %s\n", hk_last_error());
			rc = 3;
			break;
		}
		size_t m = 0, total_faces = 0;
		for (long r = 0; r < repeat && !rc; r++) {
			for (int i = 0; i < nfiles && !rc; i++) {
				hk_image img;
				double t0 = hkb_now();
				if (hk_image_load(files[i], &img)) {
					fprintf(stderr, "pipeline: %s: %s\n", files[i], hk_last_error());
					rc = 3;
					break;
				}
				double t1 = hkb_now();
				size_t n = 0;
				hk_status st = hk_engine_detect(e, &img, faces, MAXF, &n);
				n = n < MAXF ? n : MAXF;
				double t2 = hkb_now();
				if (!st)
					st = hk_engine_embed(e, &img, faces, n, emb);
				double t3 = hkb_now();
				hk_image_free(&img);
				if (st) {
					fprintf(stderr, "pipeline: %s: %s\n", files[i], hk_last_error());
					rc = 4;
					break;
				}
				/* Repetitions must reproduce the first run exactly. */
				float *ref = first + (size_t)i * MAXF * HK_EMBED_DIM;
				if (r == 0) {
					nfirst[i] = n;
					memcpy(ref, emb, n * HK_EMBED_DIM * sizeof *emb);
				} else if (n != nfirst[i] ||
				           memcmp(ref, emb, n * HK_EMBED_DIM * sizeof *emb)) {
					fprintf(stderr, "pipeline: %s: repetition %ld differs from the first\n",
					        files[i], r);
					rc = 4;
				}
				total_faces += n;
				t_dec[m] = 1e3 * (t1 - t0);
				t_det[m] = 1e3 * (t2 - t1);
				t_emb[m] = 1e3 * (t3 - t2);
				t_all[m] = 1e3 * (t3 - t0);
				m++;
			}
		}
		hk_engine_destroy(e);
		if (rc)
			break;
		double mall = hkb_median(t_all, m);
		if (json)
			printf("%s{\"config\":\"%s\",\"faces_per_pass\":%zu,\"decode_ms\":%.2f,"
			       "\"detect_ms\":%.2f,\"embed_ms\":%.2f,\"total_ms\":%.2f,\"frames_per_s\":%.2f}",
			       c ? "," : "", cfgs[c].name, total_faces / (size_t)repeat,
			       hkb_median(t_dec, m), hkb_median(t_det, m), hkb_median(t_emb, m), mall,
			       1e3 / mall);
		else
			printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f |\n", cfgs[c].name,
			       total_faces / (size_t)repeat, hkb_median(t_dec, m), hkb_median(t_det, m),
			       hkb_median(t_emb, m), mall, 1e3 / mall);
	}
	if (json)
		printf("]}\n");
	else
		printf("\nmedians over %ld repetitions of %d photos; embed covers every face of a photo.\n",
		       repeat, nfiles);
	free(t_dec);
	free(t_det);
	free(t_emb);
	free(t_all);
	free(faces);
	free(emb);
	free(first);
	free(nfirst);
	return rc;
}
