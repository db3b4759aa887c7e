/* herken-bench infer: latency and throughput of the face models on oneDNN.
 *
 * Per model, batch size and thread count: median wall time of one
 * hk_model_run call, ms per item, ms per item per core, items/s, GFLOP/s
 * (FLOPs counted from the graph: 2 x multiply-adds of convolutions and FC
 * layers) against the measured FMA peak of the cores used, and which ISA
 * and convolution implementation oneDNN chose. Outputs are verified against
 * the golden tensors ($HERKEN_SHARED/golden) before anything is timed. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "herken.h"
#include "pipeline/pipeline.h"

double hkb_fma_peak_avx512(double seconds);
double hkb_fma_peak_avx2(double seconds);
#pragma weak hkb_fma_peak_avx512
#pragma weak hkb_fma_peak_avx2
double hkb_i8_peak_avx2(double seconds);
double hkb_i8_peak_avxvnni(double seconds);
double hkb_i8_peak_avx512vnni(double seconds);
#pragma weak hkb_i8_peak_avx2
#pragma weak hkb_i8_peak_avxvnni
#pragma weak hkb_i8_peak_avx512vnni
/* internal (core/nn/exec.h): the ISA oneDNN dispatches to in this process */
const char *hk__nn_isa_name(void);

/* The models are the pinned table (core/models.def, hk_model_files()). */
typedef hk_model_file bmodel;

static int read_f32(const char *path, float *out, size_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t got = fread(out, sizeof(float), n, f);
	int extra = fgetc(f) != EOF;
	fclose(f);
	return got == n && !extra ? 0 : -1;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: herken-bench infer [--model embedder|detector-dense|detector-sparse|landmarks|all]\n"
	           "                          [--batch 1,8,32] [--threads 1,2] [--precision fp32,bf16,int8,auto|both]\n"
	           "                          [--chunk N] [--min-time SECONDS] [--json]\n"
	           "--chunk: items per primitive call (default 0: as many as keep activations in L2).\n"
	           "CPU ms/item is process CPU time per item: the per-core cost, robust to other load.\n"
	           "Models from hk_model_dir(): $HERKEN_MODELS, installed, or .cache/models; golden tensors from\n"
	           "$HERKEN_SHARED/golden verify the outputs before timing.\n");
}

/* Golden input of the first reference item and a check of the outputs.
 * Returns 1 verified, 0 no golden data, -1 mismatch. */
static int golden_input(const bmodel *bm, float *in, size_t item)
{
	char sh[512], p[600];
	hkb_data_path(NULL, "", sh, sizeof sh);
	if (bm->kind == HK_MODEL_EMBEDDER)
		snprintf(p, sizeof p, "%s/golden/mobilefacenet/sample1_f0.mobilefacenet_input_1x112x112x3.f32", sh);
	else if (bm->kind == HK_MODEL_DETECTOR)
		snprintf(p, sizeof p, "%s/golden/detector/sample1.det_input_1x192x192x3.f32", sh);
	else
		snprintf(p, sizeof p, "%s/golden/onet/sample1_f0.onet_input_1x48x48x3.f32", sh);
	return read_f32(p, in, item) == 0;
}

static const char *prec_name(int p) { return hkb_precision_name((uint32_t)p); }

/* Tolerances per precision: fp32 is the reference arithmetic; bf16 and
 * int8 get the guard of their accuracy (int8 embedder: cosine >= 0.995). */
static int verify(const bmodel *bm, float *const *out, char *msg, size_t cap, int prec)
{
	const int bf16 = prec != HK_PREC_FP32;
	char sh[512], p[600];
	hkb_data_path(NULL, "", sh, sizeof sh);
	if (bm->kind == HK_MODEL_EMBEDDER) {
		float ref[192];
		snprintf(p, sizeof p, "%s/golden/mobilefacenet/raw_output/sample1_f0.mfn_embedding_192.f32", sh);
		if (read_f32(p, ref, 192))
			return 0;
		double d = 0, na = 0, nb = 0;
		for (int i = 0; i < 192; i++) {
			d += (double)ref[i] * out[0][i];
			na += (double)ref[i] * ref[i];
			nb += (double)out[0][i] * out[0][i];
		}
		double cs = d / sqrt(na * nb);
		/* int8: 0.95 tells a working int8 run from a broken one; the
		 * accuracy guard (0.995 per face) is reported beside it */
		snprintf(msg, cap, "cosine vs golden %.8f%s", cs,
		         prec != HK_PREC_INT8 ? "" : cs >= 0.995 ? " (int8 guard >= 0.995: pass)"
		                                                 : " (int8 guard >= 0.995: FAIL)");
		return cs >= (prec == HK_PREC_FP32 ? 0.99999 : prec == HK_PREC_BF16 ? 0.999 : 0.95) ? 1 : -1;
	}
	if (bm->kind == HK_MODEL_DETECTOR) {
		static float reg[2304 * 16];
		snprintf(p, sizeof p, "%s/golden/detector/sample1.%s.regressors.f32", sh,
		         strstr(bm->role, "sparse") ? "sparse" : "dense");
		if (read_f32(p, reg, 2304 * 16))
			return 0;
		double md = 0, mx = 0;
		for (int i = 0; i < 2304 * 16; i++) {
			md = fmax(md, fabs((double)reg[i] - out[0][i]));
			mx = fmax(mx, fabs(reg[i]));
		}
		snprintf(msg, cap, "regressors max |diff| vs golden %.2e", md);
		if (prec == HK_PREC_INT8) {
			/* int8: the detections, not the raw anchors (whose
			 * regressors far from any face move by pixels) */
			static float lg[2304];
			hk__det_guard g = {0};
			snprintf(p, sizeof p, "%s/golden/detector/sample1.%s.logits.f32", sh,
			         strstr(bm->role, "sparse") ? "sparse" : "dense");
			if (read_f32(p, lg, 2304) || hk__det_guard_add(reg, lg, out[0], out[1], 0.6f, &g))
				return 0;
			snprintf(msg, cap, "sample1: %zu of %zu faces found again, IoU min %.3f, max |score diff| "
			         "%.3f (int8 guard: %s)", g.matched, g.faces, g.min_iou, g.max_score_diff,
			         hk__det_guard_holds(&g) ? "pass" : "FAIL");
			return g.matched > 0 ? 1 : -1;
		}
		return md <= (bf16 ? 0.05 * mx : fmax(2e-3, 1e-5 * mx)) ? 1 : -1;
	}
	float prob[2];
	snprintf(p, sizeof p, "%s/golden/onet/sample1_f0.onet_prob1_1x2.f32", sh);
	if (read_f32(p, prob, 2))
		return 0;
	double md = fmax(fabs(prob[0] - out[0][0]), fabs(prob[1] - out[0][1]));
	snprintf(msg, cap, "prob max |diff| vs golden %.2e", md);
	return md <= (prec == HK_PREC_INT8 ? HK__ONET_GUARD_PROB : bf16 ? 1e-2 : 1e-4) ? 1 : -1;
}

int hk__bench_infer(int argc, char **argv)
{
	const char *which = "all";
	long batches[16] = {1, 8, 32}, threads[8] = {1, 2};
	int nb = 3, nt = 2, json = 0, np = 2, precs[4] = {HK_PREC_FP32, HK_PREC_BF16};
	double min_time = 1.0;
	long chunk = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (v && !strcmp(a, "--model")) {
			which = v;
			i++;
		} else if (v && !strcmp(a, "--batch")) {
			if ((nb = hkb_parse_list(v, batches, 16)) <= 0)
				goto bad;
			i++;
		} else if (v && !strcmp(a, "--threads")) {
			if ((nt = hkb_parse_list(v, threads, 8)) <= 0)
				goto bad;
			i++;
		} else if (v && !strcmp(a, "--precision")) {
			if (!strcmp(v, "both")) {
				np = 2, precs[0] = HK_PREC_FP32, precs[1] = HK_PREC_BF16;
			} else {
				char buf[64], *save = NULL;
				snprintf(buf, sizeof buf, "%s", v);
				np = 0;
				for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
					uint32_t p;
					if (hkb_parse_precision(t, &p) || np == 4)
						goto bad;
					precs[np++] = (int)p;
				}
				if (!np)
					goto bad;
			}
			i++;
		} else if (v && !strcmp(a, "--chunk")) {
			chunk = atol(v);
			if (chunk < 0 || chunk > 1024)
				goto bad;
			i++;
		} else if (v && !strcmp(a, "--min-time")) {
			min_time = atof(v);
			i++;
		} else {
			goto bad;
		}
	}
	for (int i = 0; i < nb; i++)
		if (batches[i] < 1 || batches[i] > 1024)
			goto bad;
	for (int i = 0; i < nt; i++)
		if (threads[i] < 1 || threads[i] > 256)
			goto bad;

	hkb_print_header("infer", 0);
	double peak = 0;
	const char *peak_isa = "none";
	/* the peak of the vectors oneDNN actually uses: under
	 * ONEDNN_MAX_CPU_ISA=AVX2 an AVX-512 core runs the AVX2 kernels, so
	 * the AVX2 FMA peak is the honest reference */
	const char *dnnl_isa = hk__nn_isa_name();
	if (!strncmp(dnnl_isa, "avx512", 6) && __builtin_cpu_supports("avx512f") && hkb_fma_peak_avx512) {
		peak = hkb_fma_peak_avx512(0.3);
		peak_isa = "avx512 fma";
	} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && hkb_fma_peak_avx2) {
		peak = hkb_fma_peak_avx2(0.3);
		peak_isa = "avx2 fma";
	}
	/* int8 rows: the int8 multiply-add peak of the tier oneDNN runs
	 * (bench/peak_i8.h, as `herken-bench kernels` measures it) */
	double i8peak = 0;
	const char *i8isa = "none";
	if (strstr(dnnl_isa, "avx512_core_") && hkb_i8_peak_avx512vnni) { /* vnni, bf16, amx tiers */
		i8peak = hkb_i8_peak_avx512vnni(0.3);
		i8isa = "avx512 vnni";
	} else if (!strcmp(dnnl_isa, "avx2_vnni") && hkb_i8_peak_avxvnni) {
		i8peak = hkb_i8_peak_avxvnni(0.3);
		i8isa = "avx-vnni";
	} else if (__builtin_cpu_supports("avx2") && hkb_i8_peak_avx2) {
		i8peak = hkb_i8_peak_avx2(0.3);
		i8isa = "avx2 vpmaddubsw";
	}
	printf("<!-- FMA peak of one core, measured in thread CPU time: %.1f GFLOP/s (%s, fp32); int8 peak %.1f GOP/s (%s; int8 rows are a share of it); CPU ms/item = process CPU time per item (robust to other load), wall times depend on the load -->\n\n", peak, peak_isa, i8peak, i8isa);
	printf("| model | prec | batch | threads | p50 ms | ms/item | ms/item x threads | CPU ms/item | items/s | GFLOP/s per core (CPU time) | %% of core FMA peak | ISA | conv impl |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	int ran = 0, rc = 0;
	const char *md = hk_model_dir(NULL);
	size_t nmodels = 0;
	const bmodel *models = hk_model_files(&nmodels);
	for (size_t mi = 0; mi < nmodels; mi++) {
		const bmodel *bm = &models[mi];
		if ((strcmp(which, "all") && strcmp(which, bm->role)) || bm->kind == HK_MODEL_AUTO)
			continue; /* a weights shard: run through its manifest's row */
		char path[600];
		snprintf(path, sizeof path, "%s/%s", md, bm->file);
		for (int pi = 0; pi < np; pi++)
		for (int ti = 0; ti < nt; ti++) {
			int prec = precs[pi];
			hk_model_params mp;
			hk_model_default_params(&mp);
			mp.kind = bm->kind;
			mp.threads = (uint32_t)threads[ti];
			mp.precision = (uint32_t)prec;
			mp.chunk = (uint32_t)chunk;
			long maxb = 1;
			for (int i = 0; i < nb; i++)
				maxb = batches[i] > maxb ? batches[i] : maxb;
			mp.max_batch = (uint32_t)maxb;
			hk_model *m = NULL;
			hk_status s = hk_model_load(path, &mp, &m);
			if (s == HK_E_UNSUPPORTED) {
				/* a capability this CPU lacks (bf16 without AVX-512 ...): a row
				 * that says so, not a failure */
				printf("| %s | %s | - | %ld | unsupported: %s |\n", bm->role, prec_name(prec),
				       threads[ti], hk_last_error());
				if (json)
					printf("{\"suite\":\"infer\",\"impl\":\"herken-onednn\",\"model\":\"%s\",\"threads\":%ld,"
					       "\"precision\":\"%s\",\"unsupported\":\"%s\"}\n",
					       bm->role, threads[ti], prec_name(prec), hk_last_error());
				ran++;
				continue;
			}
			if (s) {
				fprintf(stderr, "infer: %s: %s%s\n", bm->role, hk_last_error(),
				        s == HK_E_NOT_FOUND || s == HK_E_IO ? " (run `make models`)" : "");
				rc = 1;
				break;
			}
			hk_model_info info;
			hk_model_get_info(m, &info);
			uint32_t h, w, c;
			hk_model_input_shape(m, &h, &w, &c);
			size_t item = (size_t)h * w * c, nout = hk_model_output_count(m);
			float *in = malloc(sizeof(float) * item * (size_t)maxb);
			float *outs[8] = {0};
			for (size_t o = 0; o < nout && o < 8; o++)
				outs[o] = malloc(sizeof(float) * hk_model_output_size(m, o) * (size_t)maxb);
			hkb_rng rng;
			hkb_rng_seed(&rng, 42);
			int have = golden_input(bm, in, item);
			if (!have)
				for (size_t i = 0; i < item; i++)
					in[i] = (float)(hkb_rng_uniform(&rng) * 2 - 1);
			for (long b = 1; b < maxb; b++)
				memcpy(in + (size_t)b * item, in, sizeof(float) * item);
			/* verify once per load, before timing */
			char vmsg[256] = "no golden data: not verified";
			if (hk_model_run(m, in, 1, outs) != HK_OK) {
				fprintf(stderr, "infer: %s: %s\n", bm->role, hk_last_error());
				rc = 1;
			} else if (have && verify(bm, outs, vmsg, sizeof vmsg, (int)info.precision) < 0) {
				fprintf(stderr, "infer: %s: OUTPUT MISMATCH (%s), not timing\n", bm->role, vmsg);
				rc = 1;
			} else {
				printf("<!-- %s %s, %ld thread(s), %u item(s) per primitive call: %s; graph: %s -->\n", bm->role,
				       prec_name((int)info.precision), threads[ti], info.chunk, vmsg, info.graph);
				for (int bi = 0; bi < nb; bi++) {
					size_t bsz = (size_t)batches[bi];
					double tms[4096];
					int reps = 0;
					for (int wmu = 0; wmu < 3; wmu++)
						hk_model_run(m, in, bsz, outs);
					double t_start = hkb_now(), c_start = cpu_now();
					while (reps < 4096 && (reps < 5 || hkb_now() - t_start < min_time)) {
						double t0 = hkb_now();
						hk_model_run(m, in, bsz, outs);
						tms[reps++] = (hkb_now() - t0) * 1e3;
					}
					double cpu_item = (cpu_now() - c_start) * 1e3 / ((double)reps * (double)bsz);
					double p50 = hkb_median(tms, (size_t)reps);
					double per = p50 / (double)bsz, per_core = per * (double)threads[ti];
					/* GFLOP/s per core from CPU time: what a core achieves while it
					 * runs the model, independent of other load on the machine */
					double gflops = info.flops / (cpu_item * 1e-3) / 1e9;
					double rpeak = info.precision == HK_PREC_INT8 ? i8peak : peak;
					double pct = rpeak > 0 ? 100.0 * gflops / rpeak : 0;
					printf("| %s | %s | %zu | %ld | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f | %s | %s |\n",
					       bm->role, prec_name((int)info.precision), bsz, threads[ti], p50, per, per_core, cpu_item, 1e3 / per, gflops, pct,
					       info.isa, info.impl);
					if (json)
						printf("{\"suite\":\"infer\",\"impl\":\"herken-onednn\",\"model\":\"%s\",\"batch\":%zu,"
						       "\"threads\":%ld,\"precision\":\"%s\",\"p50_ms\":%.4f,\"per_item_ms\":%.4f,\"per_item_core_ms\":%.4f,\"cpu_ms_per_item\":%.4f,"
						       "\"items_per_s\":%.2f,\"gflops_per_core\":%.2f,\"peak_gflops_per_core\":%.2f,"
						       "\"isa\":\"%s\",\"conv_impl\":\"%s\",\"mflop_per_item\":%.2f,\"verified\":%s,\"check\":\"%s\"}\n",
						       bm->role, bsz, threads[ti], prec_name((int)info.precision), p50, per, per_core, cpu_item, 1e3 / per, gflops, rpeak,
						       info.isa, info.impl, info.flops / 1e6, have ? "true" : "false", vmsg);
					fflush(stdout);
					ran++;
				}
			}
			free(in);
			for (int o = 0; o < 8; o++)
				free(outs[o]);
			hk_model_destroy(m);
		}
	}
	if (!ran && !rc) {
		fprintf(stderr, "infer: no model matches '%s'\n", which);
		return 2;
	}
	return rc;
bad:
	usage(stderr);
	return 2;
}
