/* herken-bench lfw: LFW View 2 (official pairs.txt, 10 folds x 600 pairs)
 * through the whole pipeline, plus a detector recall/precision check on the
 * dlib PASCAL VOC face boxes.
 *
 * Protocol: for fold f the threshold maximising accuracy on the other nine
 * folds is applied to fold f; mean accuracy, std over the folds (population,
 * like numpy's std in the insightface evaluation) and the standard error
 * std/sqrt(10). A pair with an image where no usable face was found is
 * scored -1 (decided "different"): never dropped, counted in the report. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "herken.h"
#include "internal.h"
#include "lfw_common.h"
#include "calibrate.h"
#include "pipeline/pipeline.h"

/* ---- dlib PASCAL VOC detection check ------------------------------------- */

/* Value of attribute `name` in the tag text [s, e): 0 and *out, or -1. */
static int xml_attr(const char *s, const char *e, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = s; p + nl + 2 < e; p++) {
		if ((p == s || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n') &&
		    !strncmp(p, name, nl) && p[nl] == '=' && (p[nl + 1] == '\'' || p[nl + 1] == '"')) {
			char q = p[nl + 1];
			const char *v = p + nl + 2, *ve = memchr(v, q, (size_t)(e - v));
			if (!ve || (size_t)(ve - v) >= cap)
				return -1;
			memcpy(out, v, (size_t)(ve - v));
			out[ve - v] = 0;
			return 0;
		}
	}
	return -1;
}

static int xml_num(const char *s, const char *e, const char *name, double *v)
{
	char buf[32], *end;
	if (xml_attr(s, e, name, buf, sizeof buf))
		return -1;
	*v = strtod(buf, &end);
	return end == buf || *end || !isfinite(*v) ? -1 : 0;
}

typedef struct voc_result {
	size_t images, truth, detections, matched, ignored;
	double iou_sum;
} voc_result;

static int run_voc(const hk_engine *e, const char *xml_path, voc_result *res)
{
	memset(res, 0, sizeof *res);
	FILE *f = fopen(xml_path, "rb");
	if (!f)
		return -1;
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	char buf[65536];
	size_t k;
	while (m && (k = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, k, m);
	fclose(f);
	if (!m)
		return -1;
	fclose(m);
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", xml_path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		strcpy(dir, ".");
	hk_face *faces = malloc(256 * sizeof *faces);
	const char *end = text + len;
	int rc = faces ? 0 : -1;
	for (const char *p = text; !rc && (p = strstr(p, "<image ")) && p < end;) {
		const char *te = strchr(p, '>'), *ie = strstr(p, "</image>");
		if (!te || !ie)
			break;
		char file[1024], path[5300];
		if (xml_attr(p, te, "file", file, sizeof file) || strstr(file, "..")) {
			p = ie;
			continue;
		}
		snprintf(path, sizeof path, "%s/%s", dir, file);
		float truth[256][4];
		uint8_t used[256] = {0}, ign[256] = {0};
		size_t nt = 0;
		for (const char *b = te; (b = strstr(b, "<box ")) && b < ie && nt < 256; b++) {
			const char *be = strchr(b, '>');
			double t, l, w, h;
			if (!be || xml_num(b, be, "top", &t) || xml_num(b, be, "left", &l) ||
			    xml_num(b, be, "width", &w) || xml_num(b, be, "height", &h))
				continue;
			char ig[8] = "";
			ign[nt] = !xml_attr(b, be, "ignore", ig, sizeof ig) && ig[0] == '1';
			truth[nt][0] = (float)l;
			truth[nt][1] = (float)t;
			truth[nt][2] = (float)(l + w);
			truth[nt][3] = (float)(t + h);
			nt++;
		}
		hk_image img;
		size_t n = 0;
		if (hk_image_load(path, &img) == HK_OK) {
			if (hk_engine_detect(e, &img, faces, 256, &n))
				n = 0;
			hk_image_free(&img);
		} else {
			fprintf(stderr, "voc: %s: %s\n", path, hk_last_error());
		}
		res->images++;
		/* Detections are best-first: greedy matching at IoU >= 0.5. */
		for (size_t d = 0; d < n && d < 256; d++) {
			if (faces[d].reject != HK_FACE_OK)
				continue;
			size_t best = nt;
			float bi = 0.5f;
			for (size_t g = 0; g < nt; g++) {
				float v = hk__iou(faces[d].box, truth[g]);
				if (!used[g] && v >= bi) {
					bi = v;
					best = g;
				}
			}
			if (best < nt) {
				used[best] = 1;
				if (ign[best]) {
					res->ignored++;
					continue;
				}
				res->matched++;
				res->iou_sum += bi;
			}
			res->detections++;
		}
		for (size_t g = 0; g < nt; g++)
			res->truth += !ign[g];
		p = ie;
	}
	free(faces);
	free(text);
	return rc;
}

/* ---- report ---------------------------------------------------------------- */

static void write_outputs(const char *prefix, const lfw_pair *pairs, const float *score,
                          size_t np, const lfw_image *img, size_t nimg, int gnuplot_ok)
{
	char path[4200];
	/* Per image: what was found and which face was taken. */
	snprintf(path, sizeof path, "%s_images.tsv", prefix);
	if (hkb_lfw_write_images(path, img, nimg))
		fprintf(stderr, "lfw: cannot write %s\n", path);
	snprintf(path, sizeof path, "%s_scores.tsv", prefix);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "# pair\tfold\tsame\tscore\tundetected\n");
		for (size_t i = 0; i < np; i++)
			fprintf(f, "%zu\t%u\t%u\t%.6f\t%d\n", i, pairs[i].fold, pairs[i].same, score[i],
			        !img[pairs[i].a].emb || !img[pairs[i].b].emb);
		fclose(f);
	}
	/* Score distributions: histogram of genuine and impostor cosines. */
	snprintf(path, sizeof path, "%s_hist.tsv", prefix);
	f = fopen(path, "w");
	if (f) {
		enum { BINS = 100 };
		size_t g[BINS + 1] = {0}, im[BINS + 1] = {0};
		for (size_t i = 0; i < np; i++) {
			int b = (int)floor((score[i] + 1.0) / 2.0 * BINS);
			b = b < 0 ? 0 : b > BINS ? BINS : b;
			if (pairs[i].same)
				g[b]++;
			else
				im[b]++;
		}
		fprintf(f, "# bin_low\tgenuine\timpostor\n");
		for (int b = 0; b <= BINS; b++)
			fprintf(f, "%.2f\t%zu\t%zu\n", -1.0 + 2.0 * b / BINS, g[b], im[b]);
		fclose(f);
	}
	/* ROC: one point per distinct threshold. */
	snprintf(path, sizeof path, "%s_roc.tsv", prefix);
	f = fopen(path, "w");
	float *s = malloc(np * sizeof *s);
	if (f && s) {
		memcpy(s, score, np * sizeof *s);
		size_t ng = 0, ni = 0;
		for (size_t i = 0; i < np; i++)
			ng += pairs[i].same;
		ni = np - ng;
		fprintf(f, "# threshold\tFAR\tTAR\tFRR\n");
		for (size_t i = 0; i < np; i++) {
			double t = score[i];
			size_t ta = 0, fa = 0;
			for (size_t j = 0; j < np; j++)
				if (score[j] >= t) {
					ta += pairs[j].same;
					fa += !pairs[j].same;
				}
			fprintf(f, "%.6f\t%.6g\t%.6g\t%.6g\n", t, (double)fa / ni, (double)ta / ng,
			        1.0 - (double)ta / ng);
		}
	}
	free(s);
	if (f)
		fclose(f);
	if (gnuplot_ok) {
		char cmd[13000];
		snprintf(cmd, sizeof cmd,
		         "gnuplot -e \"set terminal svg size 1000,450; set output '%s_roc.svg';"
		         " set multiplot layout 1,2 title 'herken on LFW (6000 pairs)';"
		         " set logscale x; set xlabel 'FAR'; set ylabel 'TAR'; set key bottom right;"
		         " set xrange [1e-4:1]; set yrange [0.9:1.001]; set grid;"
		         " plot '<sort -g -k2 %s_roc.tsv' using 2:3 with steps title 'ROC';"
		         " unset logscale; set logscale xy; set xlabel 'FAR (false match)';"
		         " set ylabel 'FRR (false non-match)'; set yrange [1e-3:1]; set xrange [1e-4:1];"
		         " plot '<sort -g -k2 %s_roc.tsv' using 2:4 with steps title 'DET';"
		         " unset multiplot\" 2>/dev/null",
		         prefix, prefix, prefix);
		if (system(cmd) != 0)
			fprintf(stderr, "lfw: gnuplot failed; the ROC data is in %s_roc.tsv\n", prefix);
	}
}

/* ---- the per-image path as the pipeline's peer, in the same run ------- */

typedef struct peer_run {
	double wall, cpu;
	float **emb, **other; /* per image: its subject, the two other rules' */
	uint8_t *state;
	double acc;           /* k-fold mean with its embeddings */
	size_t same_state, compared, identical;
	float max_diff;
} peer_run;

/* Takes the per-image run's embeddings out of s (the pipeline refills it). */
static int peer_keep(hkb_lfw_set *s, peer_run *pr)
{
	pr->emb = calloc(s->nimg + 1, sizeof *pr->emb);
	pr->other = calloc(2 * s->nimg + 1, sizeof *pr->other);
	pr->state = calloc(s->nimg + 1, 1);
	if (!pr->emb || !pr->other || !pr->state)
		return -1;
	for (size_t i = 0; i < s->nimg; i++) {
		lfw_image *im = &s->img[i];
		pr->emb[i] = im->emb;
		pr->other[2 * i] = im->emb_other[0];
		pr->other[2 * i + 1] = im->emb_other[1];
		pr->state[i] = im->state;
		char *path = im->path;
		memset(im, 0, sizeof *im);
		im->path = path;
	}
	return 0;
}

static void diff_into(peer_run *pr, const float *a, const float *b)
{
	if (!a || !b)
		return;
	float w = 0;
	for (size_t d = 0; d < HK_EMBED_DIM; d++)
		w = fmaxf(w, fabsf(a[d] - b[d]));
	pr->max_diff = fmaxf(pr->max_diff, w);
	pr->compared++;
	pr->identical += memcmp(a, b, HK_EMBED_DIM * sizeof *a) == 0;
}

/* States and embeddings of the two paths side by side; the peer's
 * accuracy on the same pairs (its embeddings swapped in and back). */
static void peer_compare(hkb_lfw_set *s, peer_run *pr, const lfw_pair *pairs, size_t np, int pv,
                         const uint8_t *same, const uint8_t *fold, unsigned nf)
{
	for (size_t i = 0; i < s->nimg; i++) {
		lfw_image *im = &s->img[i];
		pr->same_state += pr->state[i] == im->state;
		diff_into(pr, pr->emb[i], im->emb);
		diff_into(pr, pr->other[2 * i], im->emb_other[0]);
		diff_into(pr, pr->other[2 * i + 1], im->emb_other[1]);
	}
	float *sc = malloc(np * sizeof *sc);
	for (int pass = 0; pass < 2 && sc; pass++) {
		for (size_t i = 0; i < s->nimg; i++) {
			float *t = s->img[i].emb;
			s->img[i].emb = pr->emb[i];
			pr->emb[i] = t;
		}
		if (pass == 0) {
			size_t g;
			hkb_kfold_result kr;
			hkb_lfw_score_pairs(pairs, np, s->img, 1, pv, 0, sc, &g);
			pr->acc = hkb_kfold_eval(sc, same, fold, np, nf, &kr) ? NAN : kr.mean;
		}
	}
	free(sc);
}

static void peer_free(peer_run *pr, size_t nimg)
{
	for (size_t i = 0; pr->emb && i < nimg; i++) {
		float *v[3] = {pr->emb[i], pr->other[2 * i], pr->other[2 * i + 1]};
		for (int k = 0; k < 3; k++) {
			if (v[k])
				hk__wipe(v[k], HK_EMBED_DIM * sizeof(float));
			free(v[k]);
		}
	}
	free(pr->emb);
	free(pr->other);
	free(pr->state);
}

/* ---- the models' own cost: the floor of the per-image cost ------------- */

/* CPU ms per call of `n` items of one model (1 oneDNN thread, the engine's
 * precision), median of 15 calls on zero input; -1 when it cannot load. */
static double model_ms(const char *dir, const char *file, uint32_t kind, uint32_t prec, size_t n)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.kind = kind;
	mp.threads = 1;
	/* the engine's rule (hk_engine_params.precision) */
	mp.precision = prec == HK_PREC_AUTO || kind == HK_MODEL_EMBEDDER ||
	               (kind == HK_MODEL_LANDMARKS && prec == HK_PREC_BF16) ? prec : HK_PREC_FP32;
	mp.max_batch = (uint32_t)n;
	hk_model *m = NULL;
	if (hk_model_load(path, &mp, &m))
		return -1;
	uint32_t h, w, c;
	hk_model_input_shape(m, &h, &w, &c);
	float *in = calloc((size_t)h * w * c * n, sizeof(float)), *out[4] = {0};
	int ok = in != NULL;
	for (size_t o = 0; o < hk_model_output_count(m) && o < 4; o++)
		ok &= (out[o] = calloc(hk_model_output_size(m, o) * n, sizeof(float))) != NULL;
	double t[15];
	for (int r = 0; r < 18 && ok; r++) {
		double c0 = hkb_cpu_now();
		ok = hk_model_run(m, in, n, out) == HK_OK;
		if (r >= 3)
			t[r - 3] = (hkb_cpu_now() - c0) * 1e3;
	}
	free(in);
	for (int o = 0; o < 4; o++)
		free(out[o]);
	hk_model_destroy(m);
	return ok ? hkb_median(t, 15) : -1;
}

static const char lfw_usage[] =
    "usage: herken-bench lfw [--lfw DIR] [--pairs FILE] [--json] [--threads N]\n"
    "                        [--all-images] [--variants] [--subject centre|largest] [--out PREFIX] [--voc XML | --no-voc]\n"
    "                        [--models DIR] [--detector sparse|dense] [--no-onet]\n"
    "                        [--no-flip] [--no-rescue] [--precision fp32|bf16|int8|auto]\n"
    "                        [--passes flip,rotate,zoom,mtcnn,always|none] [--align frontal|pose|visible]\n"
    "LFW View 2 10-fold verification through the whole pipeline (defaults from\n"
    "$HERKEN_SHARED/datasets/lfw), detector recall/precision on the dlib VOC boxes.\n"
    "  --all-images  embed all 13,233 images (throughput), not only the 7,701 the pairs use\n"
    "  --subject S   centre (default: the face LFW labels, nearest the image centre)\n"
    "                or largest (the engine's rule, what hk_engine_embed_largest picks:\n"
    "                the largest usable face, the most central of those near its size)\n"
    "  --one-rule    embed only the --subject face (by default, where the centre rule,\n"
    "                the engine's rule or the largest face pick another face, it is\n"
    "                embedded too and each rule is scored: \"rules\" in --json)\n"
    "  --voc-only    only the detection check on the dlib VOC boxes\n"
    "  --out PREFIX  score files PREFIX_scores.tsv, _hist.tsv, _roc.tsv, _roc.svg (default lfw)\n"
    "  --variants    also score O-Net/detector-keypoint alignment x flip on/off, each\n"
    "                with and without the rescue pass, from the same detections\n"
    "  --folds K     only the first K folds (K >= 2; a quick check)\n"
    "  --threads N   per-image path: images processed in parallel; pipeline: detect threads\n"
    "                (default 2; each model runs 1 thread)\n"
    "  --path P      pipeline (default): hk_embed_many, chips batched across images on one\n"
    "                embedder executor per core, detection of the next images overlapped;\n"
    "                per-image: N threads each running whole images (the old path; --variants\n"
    "                always uses it)\n"
    "  --embedders N pipeline: embedder executors (default 0: one per core)\n"
    "  --peer        also run the per-image path first, in the same run: its throughput, CPU\n"
    "                time and accuracy next to the pipeline's, and how far the embeddings differ\n";

int hk__bench_lfw(int argc, char **argv)
{
	char dflt_dir[4096], dflt_pairs[4200], dflt_voc[4200];
	hkb_data_path(NULL, "datasets/lfw", dflt_dir, sizeof dflt_dir); /* --lfw overrides */
	snprintf(dflt_pairs, sizeof dflt_pairs, "%s/pairs.txt", dflt_dir);
	hkb_data_path(NULL, "datasets/group_photos/dlib_pascal_voc/testing.xml", dflt_voc,
	              sizeof dflt_voc); /* --voc overrides */
	const char *dir = dflt_dir, *pairs_file = dflt_pairs, *voc = dflt_voc, *prefix = "lfw";
	int json = 0, all_images = 0, variants = 0, centre = 1, voc_only = 0, all_rules = 1;
	int pipeline = 1, peer = 0;
	long embedders = 0;
	long threads = 2, max_folds = 0;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(lfw_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--all-images")) {
			all_images = 1;
		} else if (v && !strcmp(a, "--subject") && (!strcmp(v, "centre") || !strcmp(v, "largest"))) {
			centre = !strcmp(v, "centre");
			i++;
		} else if (v && !strcmp(a, "--path") && (!strcmp(v, "pipeline") || !strcmp(v, "per-image"))) {
			pipeline = !strcmp(v, "pipeline");
			i++;
		} else if (v && !strcmp(a, "--embedders") && hkb_parse_list(v, &embedders, 1) == 1 &&
		           embedders >= 0 && embedders <= 64) {
			i++;
		} else if (!strcmp(a, "--peer")) {
			peer = 1;
		} else if (!strcmp(a, "--one-rule")) {
			all_rules = 0;
		} else if (!strcmp(a, "--voc-only")) {
			voc_only = 1;
		} else if (!strcmp(a, "--variants")) {
			variants = 1;
		} else if (!strcmp(a, "--no-voc")) {
			voc = NULL;
		} else if (hkb_engine_arg(argc, argv, &i, &ep)) {
		} else if (v && !strcmp(a, "--lfw")) {
			dir = v;
			i++;
			snprintf(dflt_pairs, sizeof dflt_pairs, "%s/pairs.txt", dir);
		} else if (v && !strcmp(a, "--pairs")) {
			pairs_file = v;
			i++;
		} else if (v && !strcmp(a, "--voc")) {
			voc = v;
			i++;
		} else if (v && !strcmp(a, "--out")) {
			prefix = v;
			i++;
		} else if (v && !strcmp(a, "--folds") && hkb_parse_list(v, &max_folds, 1) == 1 &&
		           max_folds >= 2) {
			i++;
		} else if (v && !strcmp(a, "--threads") && hkb_parse_list(v, &threads, 1) == 1 &&
		           threads >= 1 && threads <= 64) {
			i++;
		} else {
			fprintf(stderr, "lfw: bad argument '%s'\n%s", a, lfw_usage);
			return 2;
		}
	}
	if (voc_only) {
		/* The detection check alone (e.g. to compare the two detectors). */
		hk_engine *ve = NULL;
		voc_result vr;
		if (!voc || hk_engine_create(&ep, &ve) || run_voc(ve, voc, &vr) || !vr.images) {
			fprintf(stderr, "lfw: VOC check failed: %s\n", voc ? hk_last_error() : "--no-voc");
			hk_engine_destroy(ve);
			return 3;
		}
		printf("detector %s: %zu images, %zu faces, %zu detections, %zu matched: recall %.3f, "
		       "precision %.3f, mean IoU %.3f\n",
		       ep.detector == HK_DETECTOR_DENSE ? "dense" : "sparse", vr.images, vr.truth,
		       vr.detections, vr.matched, vr.truth ? (double)vr.matched / vr.truth : 0,
		       vr.detections ? (double)vr.matched / vr.detections : 0,
		       vr.matched ? vr.iou_sum / vr.matched : 0);
		hk_engine_destroy(ve);
		return 0;
	}
	struct stat sb;
	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || stat(pairs_file, &sb)) {
		fprintf(stderr, "lfw: dataset absent (%s, %s): pass --lfw DIR --pairs FILE\n", dir,
		        pairs_file);
		return 2;
	}
	ep.threads = 1;
	hk_engine *e = NULL;
	if (hk_engine_create(&ep, &e)) {
		fprintf(stderr, "lfw: %s\n", hk_last_error());
		return 3;
	}
	hk_engine_get_params(e, &ep);
	double wall0 = hkb_now();
	hkb_lfw_set set;
	if (hkb_lfw_load(pairs_file, dir, max_folds, all_images, &set)) {
		fprintf(stderr, "lfw: cannot read the pairs or list %s\n", dir);
		hk_engine_destroy(e);
		return 2;
	}
	lfw_pair *pairs = set.pairs;
	lfw_image *img = set.img;
	size_t np = set.np, npaths = set.nimg;
	if (!json)
		hkb_print_header("lfw", 0);
	fprintf(stderr, "lfw: %zu pairs, %zu images, %ld threads\n", np, npaths, threads);

	const int nvar = variants ? 4 : 1;
	if (variants)
		pipeline = 0; /* the four variants are cut by the per-image path */
	peer = peer && pipeline;
	peer_run pr = {0};
	if (peer) {
		/* Both paths read warm files: every image once before either runs. */
		char buf[65536];
		for (size_t i = 0; i < npaths; i++) {
			FILE *wf = fopen(img[i].path, "rb");
			while (wf && fread(buf, 1, sizeof buf, wf) == sizeof buf)
				;
			if (wf)
				fclose(wf);
		}
		double c0 = hkb_cpu_now();
		pr.wall = hkb_lfw_embed(e, &set, threads, 1, centre, all_rules, isatty(STDERR_FILENO));
		pr.cpu = hkb_cpu_now() - c0;
		if (peer_keep(&set, &pr)) {
			fprintf(stderr, "lfw: out of memory\n");
			hk_engine_destroy(e);
			return 3;
		}
	}
	hk_embed_stats js = {0};
	double cpu0 = hkb_cpu_now();
	double t_images = pipeline ? hkb_lfw_embed_job(e, &set, threads, embedders, centre, all_rules,
	                                               isatty(STDERR_FILENO), &js)
	                           : hkb_lfw_embed(e, &set, threads, nvar, centre, all_rules,
	                                           isatty(STDERR_FILENO));
	double cpu_images = hkb_cpu_now() - cpu0;
	if (t_images < 0) {
		hk_engine_destroy(e);
		return 3;
	}

	size_t n_ok = 0, n_rescued = 0, n_noface = 0, n_err = 0, n_onet = 0;
	double s_dec = 0, s_det = 0, s_emb = 0;
	uint8_t *in_pairs = calloc(npaths, 1);
	for (size_t i = 0; i < np; i++)
		in_pairs[pairs[i].a] = in_pairs[pairs[i].b] = 1;
	size_t pair_imgs = 0, pair_undet = 0, pair_rescued = 0;
	for (size_t i = 0; i < npaths; i++) {
		n_ok += img[i].state == IMG_OK;
		n_rescued += img[i].state == IMG_RESCUED;
		n_noface += img[i].state == IMG_NOFACE;
		n_err += img[i].state == IMG_ERROR;
		n_onet += img[i].emb && img[i].onet;
		s_dec += img[i].t_decode;
		s_det += img[i].t_detect;
		s_emb += img[i].t_embed;
		pair_imgs += in_pairs[i];
		pair_undet += in_pairs[i] && !img[i].emb;
		pair_rescued += in_pairs[i] && img[i].state == IMG_RESCUED;
	}
	if (pipeline) { /* per-thread sums of the job: decode ran on the source's threads */
		s_dec = -(double)npaths * 1e-3;
		s_det = js.detect_s;
		s_emb = js.embed_s;
	}
	float *score = malloc(np * sizeof *score);
	uint8_t *same = malloc(np), *fold = malloc(np);
	for (size_t i = 0; i < np; i++) {
		same[i] = pairs[i].same;
		fold[i] = pairs[i].fold;
	}
	/* The variant the configured engine returns. */
	int pv = nvar == 1 ? 0 : (ep.onet == HK_ON ? 0 : 2) + (ep.flip == HK_ON ? 0 : 1);
	size_t undet_genuine = 0;
	size_t undet_pairs = hkb_lfw_score_pairs(pairs, np, img, nvar, pv, 0, score, &undet_genuine);
	unsigned nf = 0;
	for (size_t i = 0; i < np; i++)
		nf = fold[i] + 1u > nf ? fold[i] + 1u : nf;
	hkb_kfold_result kr;
	if (hkb_kfold_eval(score, same, fold, np, nf, &kr)) {
		fprintf(stderr, "lfw: fold structure is invalid\n");
		hk_engine_destroy(e);
		return 2;
	}
	const double *acc = kr.acc, *thr = kr.thr;
	double mean = kr.mean, sd = kr.sd, se = kr.se, mthr = kr.mthr, tar = kr.tar;
	double far_thr = kr.far_thr, all_acc;
	if (peer)
		peer_compare(&set, &pr, pairs, np, pv, same, fold, nf);
	double gthr = hk__best_threshold(score, same, NULL, np, &all_acc);
	/* The three subject rules on the same detections (the primary one
	 * above; the others where they pick another face). */
	static const char *const rule_name[3] = {"centre", "engine", "largest"};
	hkb_kfold_result rule_r[3];
	size_t rule_moved[3] = {0}, rule_undet[3] = {0};
	for (int r = 0; r < 3 && all_rules; r++) {
		int primary = r == (centre ? HKB_RULE_CENTRE : HKB_RULE_ENGINE);
		if (!primary)
			rule_moved[r] = hkb_lfw_use_rule(&set, centre, r);
		size_t g;
		float *rs = malloc(np * sizeof *rs);
		if (rs) {
			rule_undet[r] = hkb_lfw_score_pairs(pairs, np, img, nvar, pv, 0, rs, &g);
			hkb_kfold_eval(rs, same, fold, np, nf, &rule_r[r]);
		}
		free(rs);
		if (!primary)
			hkb_lfw_use_rule(&set, centre, r);
	}
	/* Every variant, with and without the rescue pass (a rescued image
	 * counts as undetected without it: its detections are otherwise the
	 * same). */
	hkb_kfold_result var_r[4][2];
	size_t var_undet[4][2];
	float *vscore = malloc(np * sizeof *vscore);
	for (int v = 0; v < 4 && nvar == 4 && vscore; v++)
		for (int nr = 0; nr < 2; nr++) {
			size_t g;
			var_undet[v][nr] = hkb_lfw_score_pairs(pairs, np, img, nvar, v, nr, vscore, &g);
			hkb_kfold_eval(vscore, same, fold, np, nf, &var_r[v][nr]);
		}
	free(vscore);

	/* The floor: what the models alone cost per image (detector pass, O-Net
	 * per face it ran on, the embedder on the plain and mirrored chip),
	 * measured here with one thread each; the rest of the per-image CPU
	 * time is the pipeline's overhead (decode, letterbox, warp, NMS, the
	 * rescue passes, threads). */
	const char *mdir = hk_model_dir(ep.model_dir);
	double ms_det = model_ms(mdir, hkb_model_file(ep.detector == HK_DETECTOR_DENSE ? "detector-dense"
	                                                                                 : "detector-sparse"),
	                         HK_MODEL_DETECTOR, ep.precision, 1);
	double ms_onet = ep.onet == HK_ON ? model_ms(mdir, hkb_model_file("landmarks"), HK_MODEL_LANDMARKS, ep.precision, 1) : 0;
	size_t views = ep.flip == HK_ON ? 2 : 1;
	double ms_emb = model_ms(mdir, hkb_model_file("embedder"), HK_MODEL_EMBEDDER, ep.precision, views * (size_t)nvar);
	size_t n_faces = 0, n_embedded = 0;
	for (size_t i = 0; i < npaths; i++) {
		n_faces += img[i].nfaces;
		n_embedded += img[i].emb != NULL;
	}
	double floor_ms = ms_det + ms_onet * (double)n_faces / (double)npaths +
	                  ms_emb * (double)n_embedded / (double)npaths;
	double cpu_ms = 1e3 * cpu_images / (double)npaths;

	voc_result vr = {0};
	int have_voc = voc && run_voc(e, voc, &vr) == 0 && vr.images > 0;
	double wall = hkb_now() - wall0;
	int gp = system("command -v gnuplot >/dev/null 2>&1") == 0;
	write_outputs(prefix, pairs, score, np, img, npaths, gp);

	const char *det_name = ep.detector == HK_DETECTOR_DENSE ? "dense" : "sparse";
	if (json) {
		printf("{\"suite\":\"lfw\",\"protocol\":\"LFW View 2, 10-fold, official pairs.txt\","
		       "\"pairs\":%zu,\"accuracy_mean\":%.5f,\"accuracy_std\":%.5f,\"accuracy_se\":%.5f,"
		       "\"fold_accuracy\":[",
		       np, mean, sd, se);
		for (unsigned f = 0; f < nf; f++)
			printf("%s%.4f", f ? "," : "", acc[f]);
		printf("],\"fold_threshold\":[");
		for (unsigned f = 0; f < nf; f++)
			printf("%s%.4f", f ? "," : "", thr[f]);
		printf("],\"tar_at_far_1e-3\":%.5f,\"far_1e-3_threshold\":%.5f,\"threshold\":%.5f,"
		       "\"threshold_fold_mean\":%.5f,\"accuracy_all_pairs_at_threshold\":%.5f,"
		       "\"undetected\":%zu,\"undetected_scored_as\":%.1f,\"undetected_pairs\":%zu,"
		       "\"undetected_genuine_pairs\":%zu,\"rescued\":%zu,\"decode_errors\":%zu,"
		       "\"pair_images\":%zu,\"images\":%zu,\"onet_landmarks\":%zu,"
		       "\"wall_s\":%.2f,\"images_wall_s\":%.2f,\"images_per_s\":%.2f,"
		       "\"stage_ms_per_image\":{\"decode\":%.3f,\"detect_landmarks\":%.3f,\"embed\":%.3f},"
		       "\"subject\":\"%s\",\"threads\":%ld,\"detector\":\"%s\",\"onet\":%s,\"flip\":%s,\"rescue\":%s,"
		       "\"precision\":\"%s\",\"passes\":%u,\"align\":\"%s\",\"cpu_ms_per_image\":%.3f,\"floor_ms_per_image\":%.3f,"
		       "\"overhead_ms_per_image\":%.3f,\"model_cpu_ms\":{\"detector\":%.3f,\"onet\":%.3f,"
		       "\"embedder_per_image\":%.3f},\"floor_images_per_s\":%.2f",
		       tar, far_thr, gthr, mthr, all_acc, pair_undet, UNDETECTED_SCORE, undet_pairs,
		       undet_genuine, pair_rescued, n_err, pair_imgs, npaths, n_onet, wall, t_images,
		       npaths / t_images, 1e3 * s_dec / npaths, 1e3 * s_det / npaths,
		       1e3 * s_emb / npaths, centre ? "centre" : "largest", threads, det_name, ep.onet == HK_ON ? "true" : "false",
		       ep.flip == HK_ON ? "true" : "false", ep.rescue == HK_ON ? "true" : "false",
		       hkb_precision_name(ep.precision), ep.passes,
		       hkb_align_name(ep.align), cpu_ms, floor_ms, cpu_ms - floor_ms, ms_det,
		       ms_onet, ms_emb, threads * 1e3 / floor_ms);
		if (have_voc)
			printf(",\"voc\":{\"images\":%zu,\"faces\":%zu,\"detections\":%zu,\"matched\":%zu,"
			       "\"recall\":%.4f,\"precision\":%.4f,\"mean_iou\":%.3f}",
			       vr.images, vr.truth, vr.detections, vr.matched,
			       vr.truth ? (double)vr.matched / vr.truth : 0,
			       vr.detections ? (double)vr.matched / vr.detections : 0,
			       vr.matched ? vr.iou_sum / vr.matched : 0);
		if (all_rules) {
			printf(",\"accuracy_centre_rule\":%.5f,\"accuracy_engine_rule\":%.5f,\"rules\":{",
			       rule_r[HKB_RULE_CENTRE].mean, rule_r[HKB_RULE_ENGINE].mean);
			for (int r = 0; r < 3; r++)
				printf("%s\"%s\":{\"accuracy_mean\":%.5f,\"accuracy_std\":%.5f,"
				       "\"tar_at_far_1e-3\":%.5f,\"undetected_pairs\":%zu,\"images_other_face\":%zu}",
				       r ? "," : "", rule_name[r], rule_r[r].mean, rule_r[r].sd, rule_r[r].tar,
				       rule_undet[r], rule_moved[r]);
			printf("}");
		}
		if (nvar == 4) {
			printf(",\"variants\":[");
			for (int v = 0; v < 4; v++)
				for (int nr = 0; nr < 2; nr++)
					printf("%s{\"alignment\":\"%s\",\"flip\":%s,\"rescue\":%s,"
					       "\"accuracy_mean\":%.5f,\"accuracy_std\":%.5f,\"tar_at_far_1e-3\":%.5f,"
					       "\"undetected_pairs\":%zu}",
					       v + nr ? "," : "", v < 2 ? "onet" : "detector",
					       v % 2 ? "false" : "true", nr ? "false" : "true", var_r[v][nr].mean,
					       var_r[v][nr].sd, var_r[v][nr].tar, var_undet[v][nr]);
			printf("]");
		}
		printf(",\"path\":\"%s\"", pipeline ? "pipeline" : "per-image");
		if (pipeline)
			printf(",\"job\":{\"embedders\":%u,\"detect_threads\":%ld,\"batches\":%llu,\"chips\":%llu,"
			       "\"mean_batch\":%.2f,\"max_batch\":%u,\"peak_images\":%llu,\"peak_chips\":%llu}",
			       js.embedders, threads, (unsigned long long)js.batches,
			       (unsigned long long)js.chips, js.batches ? (double)js.chips / js.batches : 0,
			       js.max_batch, (unsigned long long)js.peak_images,
			       (unsigned long long)js.peak_chips);
		if (peer)
			printf(",\"peer\":{\"path\":\"per-image\",\"threads\":%ld,\"images_wall_s\":%.2f,"
			       "\"images_per_s\":%.2f,\"cpu_ms_per_image\":%.3f,\"accuracy_mean\":%.5f,"
			       "\"images_same_state\":%zu,\"embeddings_compared\":%zu,"
			       "\"embeddings_identical\":%zu,\"max_abs_diff\":%.3g,"
			       "\"images_per_s_ratio\":%.3f,\"cpu_ratio\":%.3f}",
			       threads, pr.wall, npaths / pr.wall, 1e3 * pr.cpu / npaths, pr.acc,
			       pr.same_state, pr.compared, pr.identical, pr.max_diff,
			       pr.wall / t_images, cpu_images / pr.cpu);
		printf(",\"files\":\"%s_scores.tsv %s_hist.tsv %s_roc.tsv%s%s%s\"}\n", prefix, prefix,
		       prefix, gp ? " " : "", gp ? prefix : "", gp ? "_roc.svg" : "");
	} else {
		printf("## LFW View 2, %u-fold (official pairs.txt, %zu pairs)\n\n", nf, np);
		printf("pipeline: detector %s, landmarks %s, flip %s, rescue %s, precision %s; subject = %s\n\n",
		       det_name, ep.onet == HK_ON ? "O-Net" : "detector", ep.flip == HK_ON ? "on" : "off",
		       ep.rescue == HK_ON ? "on" : "off", hkb_precision_name(ep.precision),
		       centre ? "the face nearest the image centre" : "the largest face");
		printf("| metric | value |\n|---|---|\n");
		printf("| accuracy (%u-fold mean) | %.2f %% ± %.2f (std) ± %.2f (SE) |\n", nf,
		       100 * mean, 100 * sd, 100 * se);
		printf("| TAR @ FAR = 1e-3 (%zu pairs) | %.2f %% (threshold %.4f) |\n", np, 100 * tar,
		       far_thr);
		printf("| calibrated threshold (all pairs) | %.4f (fold mean %.4f) |\n", gthr, mthr);
		printf("| images with no usable face | %zu of %zu pair images (%zu pairs scored %.0f = "
		       "\"different\", %zu of them genuine) |\n",
		       pair_undet, pair_imgs, undet_pairs, UNDETECTED_SCORE, undet_genuine);
		printf("| faces found by the rescue pass | %zu |\n", pair_rescued);
		printf("| images processed | %zu (%zu decode errors), O-Net landmarks on %zu |\n", npaths,
		       n_err, n_onet);
		printf("| time per image (sum over %ld threads) | decode %.2f ms, detect+landmarks "
		       "%.2f ms, embed %.2f ms |\n",
		       threads, 1e3 * s_dec / npaths, 1e3 * s_det / npaths, 1e3 * s_emb / npaths);
		printf("| throughput | %.1f images/s (%zu images in %.1f s); wall %.1f s |\n",
		       npaths / t_images, npaths, t_images, wall);
		printf("| CPU per image | %.2f ms = floor %.2f ms (models alone: detector %.2f, O-Net %.2f x "
		       "%.2f faces, embedder %.2f for %zu chip(s) x %.2f embedded) + overhead %.2f ms; "
		       "the floor allows %.0f images/s on %ld threads |\n",
		       cpu_ms, floor_ms, ms_det, ms_onet, (double)n_faces / (double)npaths, ms_emb,
		       views * (size_t)nvar, (double)n_embedded / (double)npaths, cpu_ms - floor_ms,
		       threads * 1e3 / floor_ms, threads);
		if (pipeline)
			printf("| pipeline | hk_embed_many: %ld detect threads, %u embedder executors, %llu "
			       "chips in %llu calls (mean %.1f, max %u); at most %llu images and %llu chips "
			       "queued; decode on the source's threads (in the CPU total) |\n",
			       threads, js.embedders, (unsigned long long)js.chips,
			       (unsigned long long)js.batches, js.batches ? (double)js.chips / js.batches : 0,
			       js.max_batch, (unsigned long long)js.peak_images,
			       (unsigned long long)js.peak_chips);
		if (peer)
			printf("| peer: per-image threads (same run, first) | %.1f images/s, %.2f CPU ms/image, "
			       "accuracy %.2f %%; pipeline/peer: %.2fx images/s, %.2fx CPU; %zu of %zu images "
			       "in the same state, %zu of %zu embeddings bit-identical, max |diff| %.2g |\n",
			       npaths / pr.wall, 1e3 * pr.cpu / npaths, 100 * pr.acc, pr.wall / t_images,
			       cpu_images / pr.cpu, pr.same_state, npaths, pr.identical, pr.compared,
			       pr.max_diff);
		printf("\nfold accuracies:");
		for (unsigned f = 0; f < nf; f++)
			printf(" %.4f", acc[f]);
		printf("\n");
		if (all_rules) {
			printf("\n## Subject rules (same detections)\n\n| rule | accuracy | TAR@FAR=1e-3 | "
			       "images where it takes another face than --subject |\n|---|---|---|---|\n");
			for (int r = 0; r < 3; r++)
				printf("| %s | %.2f %% ± %.2f | %.2f %% | %zu |\n",
				       r == HKB_RULE_CENTRE   ? "nearest the centre (LFW's subject)"
				       : r == HKB_RULE_ENGINE ? "the engine's: largest, or most central of those near its size"
				                              : "largest",
				       100 * rule_r[r].mean, 100 * rule_r[r].sd, 100 * rule_r[r].tar, rule_moved[r]);
		}
		if (nvar == 4) {
			printf("\n## Variants (same detections; without rescue, rescued images count as "
			       "undetected)\n\n| alignment | flip | rescue | accuracy | TAR@FAR=1e-3 | "
			       "pairs scored -1 |\n|---|---|---|---|---|---|\n");
			for (int v = 0; v < 4; v++)
				for (int nr = 0; nr < 2; nr++)
					printf("| %s | %s | %s | %.2f %% ± %.2f | %.2f %% | %zu |\n",
					       v < 2 ? "O-Net 5 points" : "detector 4 keypoints",
					       v % 2 ? "off" : "on", nr ? "off" : "on", 100 * var_r[v][nr].mean,
					       100 * var_r[v][nr].sd, 100 * var_r[v][nr].tar, var_undet[v][nr]);
		}
		if (have_voc)
			printf("\n## Detection, dlib PASCAL VOC testing.xml (IoU >= 0.5)\n\n"
			       "%zu images, %zu faces, %zu detections: recall %.3f, precision %.3f, "
			       "mean IoU of matches %.3f\n",
			       vr.images, vr.truth, vr.detections,
			       vr.truth ? (double)vr.matched / vr.truth : 0,
			       vr.detections ? (double)vr.matched / vr.detections : 0,
			       vr.matched ? vr.iou_sum / vr.matched : 0);
		printf("\nscores: %s_scores.tsv, distributions: %s_hist.tsv, ROC: %s_roc.tsv%s%s%s\n",
		       prefix, prefix, prefix, gp ? ", ROC/DET plot: " : " (install gnuplot for a plot)",
		       gp ? prefix : "", gp ? "_roc.svg" : "");
	}
	peer_free(&pr, set.nimg);
	hkb_lfw_free(&set);
	free(score);
	free(same);
	free(fold);
	free(in_pairs);
	hk_engine_destroy(e);
	return 0;
}
