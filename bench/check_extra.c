/*
 * Workloads and accuracy guards of `herken-bench check` beyond the search
 * workloads of bench_check.c: model inference, ingest + decode, the durable
 * store, and the golden-tensor / LFW accuracy guards.
 *
 * Determinism rules every workload here follows (instruction counts must be
 * the same for the same binary and input):
 *   - fixed seeds, fixed sizes, one thread per model (oneDNN runs its
 *     OpenMP team with one thread, so no barrier spins are counted);
 *   - everything that is set up once (model import, oneDNN primitive
 *     creation and its JIT, file generation, a store to replay) happens
 *     before hkc_start(); the first call of each batch size (which creates
 *     the primitives for that size) is a warm-up outside the region;
 *   - the pread engine with one I/O thread and one decoder, frames in
 *     order (io_uring completions race with the consumer under valgrind);
 *   - the store runs on a fixed clock with group commit off.
 * Workloads need only the models (make models); guards also need
 * $HERKEN_SHARED (golden tensors, LFW). Absent inputs are HKC_SKIP.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "bench.h"
#include "check.h"
#include "herken.h"
#include "lfw_common.h"
#include "calibrate.h"
#include "pipeline/pipeline.h"
/* golden embeddings.json reader shared with the model tests */
#include "../tests/test_nn_util.h"

/* ---------------------------------------------------------------- */
/* helpers                                                          */

/* Model file path into buf; NULL when the file is absent. */
static const char *model_path(char *buf, size_t cap, const char *file)
{
	snprintf(buf, cap, "%s/%s", hk_model_dir(NULL), file);
	return access(buf, R_OK) ? NULL : buf;
}

/* Loads a model with one thread; NULL (and *skip) when the file is absent. */
static hk_model *load_model(const char *file, hk_model_kind kind, uint32_t max_batch, int *skip)
{
	char p[4096];
	*skip = !model_path(p, sizeof p, file);
	if (*skip)
		return NULL;
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.kind = kind;
	mp.threads = 1;
	mp.numa_node = 0;
	mp.max_batch = max_batch;
	hk_model *m = NULL;
	if (hk_model_load(p, &mp, &m) != HK_OK) {
		fprintf(stderr, "check: %s: %s\n", p, hk_last_error());
		return NULL;
	}
	return m;
}

static void fill_bytes(uint8_t *b, size_t n, uint64_t seed)
{
	hkb_rng r;
	hkb_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(hkb_rng_next(&r) >> 56);
}

/* ---------------------------------------------------------------- */
/* inference                                                        */

#define CHIP (112 * 112 * 3)

/* Embeds `reps` batches of `batch` synthetic chips (pixels from a fixed
 * seed: oneDNN's kernels do the same work whatever the values). */
static long wl_embed(size_t batch, int reps)
{
	int skip;
	hk_model *m = load_model(hkb_model_file("embedder"), HK_MODEL_EMBEDDER, 8, &skip);
	if (!m)
		return skip ? HKC_SKIP : -1;
	uint8_t *chips = malloc(CHIP * batch);
	float *emb = malloc(batch * HK_EMBED_DIM * sizeof *emb);
	long items = -1;
	if (chips && emb) {
		fill_bytes(chips, CHIP * batch, 112);
		/* warm-up: creates the primitives of this batch size */
		if (hk_embed_chips(m, chips, batch, emb) == HK_OK) {
			hk_status st = HK_OK;
			hkc_start();
			for (int r = 0; r < reps && !st; r++)
				st = hk_embed_chips(m, chips, batch, emb);
			hkc_stop();
			items = st ? -1 : (long)(batch * (size_t)reps);
		}
	}
	free(chips);
	free(emb);
	hk_model_destroy(m);
	return items;
}

static long wl_embed_b1(void) { return wl_embed(1, 2); }
static long wl_embed_b8(void) { return wl_embed(8, 1); }

/* The default (sparse) full-range detector on one synthetic 192x192 frame,
 * raw network only. */
static long wl_detect_b1(void)
{
	int skip;
	hk_model *m = load_model(hkb_model_file("detector-sparse"), HK_MODEL_DETECTOR, 1,
	                         &skip);
	if (!m)
		return skip ? HKC_SKIP : -1;
	enum { IN = 192 * 192 * 3, REPS = 2 };
	float *in = malloc(IN * sizeof *in);
	float *reg = malloc(2304 * 16 * sizeof *reg), *logit = malloc(2304 * sizeof *logit);
	long items = -1;
	if (in && reg && logit) {
		hkb_rng r;
		hkb_rng_seed(&r, 192);
		for (size_t i = 0; i < IN; i++)
			in[i] = (float)(2 * hkb_rng_uniform(&r) - 1);
		float *outs[2] = {reg, logit};
		if (hk_model_run(m, in, 1, outs) == HK_OK) {
			hk_status st = HK_OK;
			hkc_start();
			for (int k = 0; k < REPS && !st; k++)
				st = hk_model_run(m, in, 1, outs);
			hkc_stop();
			items = st ? -1 : REPS;
		}
	}
	free(in);
	free(reg);
	free(logit);
	hk_model_destroy(m);
	return items;
}

/* ---------------------------------------------------------------- */
/* ingest + decode                                                  */

enum { INGEST_FRAMES = 12 };

/* Writes INGEST_FRAMES synthetic JPEGs (640x480 and 320x240, 4:2:0 and
 * 4:4:4, camera-like gradients and noise from a fixed seed) into dir. */
static int gen_frames(const char *dir, char **paths)
{
	tjhandle tj = tjInitCompress();
	uint8_t *rgb = malloc(640 * 480 * 3);
	hkb_rng r;
	hkb_rng_seed(&r, 480);
	int rc = tj && rgb ? 0 : -1;
	for (int f = 0; f < INGEST_FRAMES && !rc; f++) {
		int W = f % 3 ? 640 : 320, H = f % 3 ? 480 : 240;
		for (int y = 0; y < H; y++)
			for (int x = 0; x < W; x++)
				for (int c = 0; c < 3; c++) {
					int v = (x * (c + 1) + y * (3 - c) + f * 17) / 5 % 220 +
					        (int)(hkb_rng_next(&r) % 15) - 7 + (((x / 40 + y / 30) & 1) ? 30 : 0);
					rgb[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
				}
		unsigned char *jb = NULL;
		unsigned long jn = 0;
		if (tjCompress2(tj, rgb, W, 0, H, TJPF_RGB, &jb, &jn, f % 4 ? TJSAMP_420 : TJSAMP_444,
		                90, 0)) {
			rc = -1;
			break;
		}
		if (asprintf(&paths[f], "%s/frame%02d.jpg", dir, f) < 0) {
			paths[f] = NULL;
			rc = -1;
		}
		int fd = rc ? -1 : open(paths[f], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, jb, jn) != (ssize_t)jn)
			rc = -1;
		if (fd >= 0)
			close(fd);
		tjFree(jb);
	}
	free(rgb);
	if (tj)
		tjDestroy(tj);
	return rc;
}

static long wl_ingest(void)
{
	char dir[] = "/tmp/herken-check-ingest-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	char *paths[INGEST_FRAMES] = {0};
	long items = -1;
	if (gen_frames(dir, paths) == 0) {
		hk_frames_params fp;
		hk_frames_default_params(&fp);
		fp.engine = HK_FRAMES_PREAD;
		fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER | HK_FRAMES_NO_PIN;
		fp.queue_depth = 4;
		fp.io_threads = 1;
		fp.decode_threads = 1;
		hk_frames *src = NULL;
		size_t good = 0, n = 0;
		uint64_t sum = 0;
		hkc_start();
		hk_status st = hk_frames_open_list((const char *const *)paths, INGEST_FRAMES, &fp, &src);
		hk_frame *fr;
		while (!st && (st = hk_frames_next(src, &fr)) == HK_OK && fr) {
			n++;
			if (fr->status == HK_OK && fr->image.width) {
				good++;
				sum += fr->image.data[fr->image.stride * (fr->image.height / 2) + 3];
			}
			hk_frames_release(src, fr);
		}
		hk_frames_destroy(src);
		hkc_stop();
		if (!st && good == INGEST_FRAMES && n == INGEST_FRAMES && sum > 0)
			items = INGEST_FRAMES;
		else
			fprintf(stderr, "check: ingest: %zu of %d frames decoded (%s)\n", good,
			        INGEST_FRAMES, st ? hk_last_error() : "ok");
	}
	for (int f = 0; f < INGEST_FRAMES; f++)
		free(paths[f]);
	hkb_rmrf(dir);
	return items;
}

/* ---------------------------------------------------------------- */
/* durable store                                                    */

enum { STORE_SUBJECTS = 48, STORE_PER = 2 };

static int64_t fixed_clock(void *user)
{
	(void)user;
	return 1800000000; /* 2027-01-15 */
}

static hk_status store_open(const char *dir, int create, hk_store **st)
{
	static const uint8_t key[HK_STORE_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	hk_store_params sp;
	hk_store_default_params(&sp);
	sp.master_key = key;
	sp.flags = create ? HK_STORE_CREATE : 0;
	sp.dim = HK_EMBED_DIM;
	sp.commit_window_us = 0;
	sp.clock = fixed_clock;
	sp.gallery.threads = 1;
	sp.gallery.huge_pages = HK_HUGE_OFF;
	return hk_store_open(dir, &sp, st);
}

/* Enrols STORE_SUBJECTS subjects x STORE_PER templates; measured when
 * `measure`. Returns the templates enrolled or -1. */
static long store_fill(const char *dir, int measure)
{
	hk_store *st = NULL;
	if (store_open(dir, 1, &st)) {
		fprintf(stderr, "check: store: %s\n", hk_last_error());
		return -1;
	}
	float *v = malloc(STORE_SUBJECTS * STORE_PER * HK_EMBED_DIM * sizeof *v);
	if (!v) {
		hk_store_close(st);
		return -1;
	}
	hkb_rng r;
	hkb_rng_seed(&r, 4242);
	for (size_t i = 0; i < STORE_SUBJECTS * STORE_PER * HK_EMBED_DIM; i++)
		v[i] = (float)hkb_rng_normal(&r);
	hk_status s = HK_OK;
	if (measure)
		hkc_start();
	for (int i = 0; i < STORE_SUBJECTS && !s; i++) {
		char subj[32];
		snprintf(subj, sizeof subj, "customer-%04d", i);
		hk_consent c = {.subject = subj, .purpose = "desk", .consent_version = "v1",
		                .channel = "check", .time = fixed_clock(NULL) - 60,
		                .expires = fixed_clock(NULL) + 365 * 86400, .source = HK_SOURCE_DESK};
		s = hk_store_enroll(st, &c, v + (size_t)i * STORE_PER * HK_EMBED_DIM, STORE_PER, NULL);
	}
	if (measure)
		hkc_stop();
	if (s)
		fprintf(stderr, "check: store enrol: %s\n", hk_last_error());
	free(v);
	if (hk_store_close(st))
		s = HK_E_IO;
	return s ? -1 : STORE_SUBJECTS * STORE_PER;
}

static long wl_store_enrol(void)
{
	char dir[] = "/tmp/herken-check-store-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	long n = store_fill(dir, 1);
	hkb_rmrf(dir);
	return n;
}

/* Reopen = decrypt keys, replay the log into the in-memory gallery. */
static long wl_store_replay(void)
{
	char dir[] = "/tmp/herken-check-store-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	long n = store_fill(dir, 0);
	if (n > 0) {
		hk_store *st = NULL;
		hkc_start();
		hk_status s = store_open(dir, 0, &st);
		hkc_stop();
		hk_store_info info;
		if (s || hk_store_get_info(st, &info) || info.templates != (uint64_t)n) {
			fprintf(stderr, "check: store replay: %s\n", s ? hk_last_error() : "template count");
			n = -1;
		}
		hk_store_close(st);
	}
	hkb_rmrf(dir);
	return n;
}

/* ---------------------------------------------------------------- */
/* accuracy guards (run natively)                                   */

/* The shared directory (hkb_data_path), NULL when it is absent. */
static const char *shared_dir(void)
{
	static char dir[1024];
	hkb_data_path(NULL, "", dir, sizeof dir);
	return access(dir, R_OK) ? NULL : dir;
}

/* 1 - the minimum cosine of the 22 golden faces, in ppm, against golden/mobilefacenet/
 * embeddings.json (the oracle of the model tests). */
static int guard_embed_cosine(double *value)
{
	const char *sh = shared_dir();
	char p[4096];
	if (!sh)
		return HKC_SKIP;
	snprintf(p, sizeof p, "%s/golden/mobilefacenet/embeddings.json", sh);
	size_t len = 0;
	char *txt = tn_read_file(p, &len);
	if (!txt)
		return HKC_SKIP;
	enum { MAXF = 64 };
	static char ids[MAXF][32];
	static float ref[MAXF * HK_EMBED_DIM];
	int n = tn_parse_embeddings(txt, len, ids, ref, MAXF, HK_EMBED_DIM);
	free(txt);
	if (n <= 0)
		return -1;
	int skip;
	hk_model *m = load_model(hkb_model_file("embedder"), HK_MODEL_EMBEDDER, 32, &skip);
	if (!m)
		return skip ? HKC_SKIP : -1;
	float *in = malloc((size_t)n * CHIP * sizeof *in), *out = malloc((size_t)n * HK_EMBED_DIM * sizeof *out);
	int rc = in && out ? 0 : -1;
	for (int i = 0; i < n && !rc; i++) {
		snprintf(p, sizeof p, "%s/golden/mobilefacenet/%s.mobilefacenet_input_1x112x112x3.f32", sh, ids[i]);
		rc = tn_read_f32(p, in + (size_t)i * CHIP, CHIP);
	}
	if (!rc && hk_model_run(m, in, (size_t)n, &out) != HK_OK)
		rc = -1;
	double mn = 1;
	for (int i = 0; i < n && !rc; i++) {
		const float *a = out + (size_t)i * HK_EMBED_DIM, *b = ref + (size_t)i * HK_EMBED_DIM;
		double d = 0, na = 0, nb = 0; /* in double: 1 - cos is ~1e-7 */
		for (int j = 0; j < HK_EMBED_DIM; j++) {
			d += (double)a[j] * b[j];
			na += (double)a[j] * a[j];
			nb += (double)b[j] * b[j];
		}
		double c = d / sqrt(na * nb);
		mn = c < mn ? c : mn;
	}
	free(in);
	free(out);
	hk_model_destroy(m);
	*value = (1 - mn) * 1e6;
	return rc;
}

/* 1 - cosine in parts per million: the model tests require cosine >=
 * 0.99999, i.e. <= 10 ppm. */
static int embed_floor(double v) { return v <= 10; }

/* Worst max-abs error of the detector's raw outputs (dense and sparse, six
 * photos, regressors and logits) against golden/detector, in units of the
 * model tests' tolerance max(2e-3, 1e-5 x the tensor's largest magnitude):
 * <= 1 passes those tests. */
static int guard_detector(double *value)
{
	const char *sh = shared_dir();
	if (!sh)
		return HKC_SKIP;
	const char *const files[2] = {hkb_model_file("detector-dense"),
	                             hkb_model_file("detector-sparse")};
	static const char *const tags[2] = {"dense", "sparse"};
	enum { IN = 192 * 192 * 3, NR = 2304 * 16, NL = 2304 };
	float *buf = malloc((IN + 2 * NR + 2 * NL) * sizeof *buf);
	if (!buf)
		return -1;
	float *in = buf, *reg = in + IN, *logit = reg + NR, *greg = logit + NL, *glog = greg + NR;
	double worst = 0;
	int rc = 0;
	for (int v = 0; v < 2 && !rc; v++) {
		int skip;
		hk_model *m = load_model(files[v], HK_MODEL_DETECTOR, 1, &skip);
		if (!m) {
			rc = skip ? HKC_SKIP : -1;
			break;
		}
		for (int k = 1; k <= 6 && !rc; k++) {
			char p[4096];
			snprintf(p, sizeof p, "%s/golden/detector/sample%d.det_input_1x192x192x3.f32", sh, k);
			rc = tn_read_f32(p, in, IN) ? HKC_SKIP : 0;
			snprintf(p, sizeof p, "%s/golden/detector/sample%d.%s.regressors.f32", sh, k, tags[v]);
			rc = rc ? rc : tn_read_f32(p, greg, NR) ? HKC_SKIP : 0;
			snprintf(p, sizeof p, "%s/golden/detector/sample%d.%s.logits.f32", sh, k, tags[v]);
			rc = rc ? rc : tn_read_f32(p, glog, NL) ? HKC_SKIP : 0;
			float *outs[2] = {reg, logit};
			if (!rc && hk_model_run(m, in, 1, outs) != HK_OK)
				rc = -1;
			const float *got[2] = {reg, logit}, *want[2] = {greg, glog};
			const size_t cnt[2] = {NR, NL};
			for (int t = 0; t < 2 && !rc; t++) {
				double mx = 0, md = 0;
				for (size_t i = 0; i < cnt[t]; i++) {
					mx = fmax(mx, fabs(want[t][i]));
					md = fmax(md, fabs((double)want[t][i] - got[t][i]));
				}
				worst = fmax(worst, md / fmax(2e-3, 1e-5 * mx));
			}
		}
		hk_model_destroy(m);
	}
	free(buf);
	*value = worst;
	return rc;
}

static int detector_floor(double v) { return v <= 1.0; }

/* ---- LFW fold 1 through the full pipeline (computed once for both guards) */

static struct {
	int done, rc;
	double acc, thr;
} lfw1;

static void lfw_fold1(void)
{
	if (lfw1.done)
		return;
	lfw1.done = 1;
	lfw1.rc = HKC_SKIP;
	const char *sh = shared_dir();
	if (!sh)
		return;
	char dir[4096], pairs[4200];
	hkb_data_path(NULL, "datasets/lfw", dir, sizeof dir);
	snprintf(pairs, sizeof pairs, "%s/pairs.txt", dir);
	struct stat sb;
	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || stat(pairs, &sb))
		return;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.threads = 1;
	hk_engine *e = NULL;
	hk_status cs = hk_engine_create(&ep, &e);
	if (cs) {
		fprintf(stderr, "check: lfw: %s\n", hk_last_error());
		if (HK_STATUS_PRIMARY(cs) != HK_E_NOT_FOUND)
			lfw1.rc = -1; /* a model is broken; absent models skip */
		return;
	}
	lfw1.rc = -1;
	hkb_lfw_set set;
	if (hkb_lfw_load(pairs, dir, 1, 0, &set) == 0) {
		hkb_lfw_embed(e, &set, 2, 1, 1 /* subject: the centre face, as herken-bench lfw */, 0, 0);
		float *score = malloc(set.np * sizeof *score);
		uint8_t *same = malloc(set.np);
		if (score && same) {
			size_t genuine;
			hkb_lfw_score_pairs(set.pairs, set.np, set.img, 1, 0, 0, score, &genuine);
			for (size_t i = 0; i < set.np; i++)
				same[i] = set.pairs[i].same;
			lfw1.thr = hk__best_threshold(score, same, NULL, set.np, &lfw1.acc);
			lfw1.rc = isfinite(lfw1.thr) ? 0 : -1;
		}
		free(score);
		free(same);
		hkb_lfw_free(&set);
	}
	hk_engine_destroy(e);
}

static int guard_lfw_acc(double *v)
{
	lfw_fold1();
	*v = lfw1.acc;
	return lfw1.rc;
}

static int guard_lfw_thr(double *v)
{
	lfw_fold1();
	*v = lfw1.thr;
	return lfw1.rc;
}

/* ---------------------------------------------------------------- */
/* registries                                                       */

static const hkc_workload extra[] = {
	{"embed-b1", "faces", wl_embed_b1, 0, 0},
	{"embed-b8", "faces", wl_embed_b8, 0, 1}, /* ~200 CPU-s under callgrind */
	{"detect-b1", "frames", wl_detect_b1, 0, 0},
	{"ingest-decode", "frames", wl_ingest, 0, 0},
	{"store-enrol", "templates", wl_store_enrol, 0, 0},
	{"store-replay", "templates", wl_store_replay, 0, 0},
};

const hkc_workload *hkc_extra_workloads(size_t *n)
{
	*n = sizeof extra / sizeof extra[0];
	return extra;
}

/* Tolerances: the golden figures move only when the arithmetic changes
 * (oneDNN's ISA differs between machines: measured spread well inside
 * these); one LFW pair is 1/600 = 0.00167 of accuracy. */
static const hkc_guard guards[] = {
	{"golden-embed-1-mincos-ppm", guard_embed_cosine, 2, embed_floor},
	{"golden-detector-err/tol", guard_detector, 0.25, detector_floor},
	{"lfw-fold1-accuracy", guard_lfw_acc, 0.005, NULL},
	{"lfw-fold1-threshold", guard_lfw_thr, 0.02, NULL},
};

const hkc_guard *hkc_extra_guards(size_t *n)
{
	*n = sizeof guards / sizeof guards[0];
	return guards;
}
