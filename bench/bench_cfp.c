/* herken-bench cfp: CFP frontal-frontal and frontal-profile verification
 * (Sengupta et al., WACV 2016) on its development split, through the whole
 * pipeline, plus the detector's recall on its frontal and profile photos.
 *
 * Protocol (the data set's README): pairs_ff.tsv and pairs_fp.tsv, two
 * person-disjoint folds of 700 pairs each; per protocol the threshold that
 * maximises accuracy on one fold is applied to the other, and the reverse;
 * the mean of the two. A pair with a photo where no usable face was found is
 * scored -1 (decided "different"): never dropped, counted. Every photo holds
 * exactly one face, so recall = photos with a usable face / photos. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "herken.h"
#include "lfw_common.h"

#define CFP_FOLDS 2

/* One protocol file: "fold\tsame\tpath_a\tpath_b" after a header line,
 * paths relative to dir. Appends to pairs/pa/pb (capacity grown here);
 * 0, or -1 with a message naming the file and line. */
static int read_cfp_pairs(const char *dir, const char *name, uint8_t proto, lfw_pair **pairs,
                          uint8_t **protos, char ***pa, char ***pb, size_t *n, size_t *cap)
{
	char file[4200];
	snprintf(file, sizeof file, "%s/%s", dir, name);
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "cfp: cannot open %s: %s\n", file, strerror(errno));
		return -1;
	}
	char line[2048];
	size_t lineno = 0, start = *n;
	int rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "cfp: %s:%zu: line too long\n", file, lineno);
			rc = -1;
			break;
		}
		if (lineno == 1 && !strncmp(line, "fold", 4))
			continue;
		char *save = NULL, *tok[4];
		int nt = 0;
		for (char *t = strtok_r(line, "\t\r\n", &save); t; t = strtok_r(NULL, "\t\r\n", &save))
			if (nt < 4)
				tok[nt++] = t;
			else
				nt = 5;
		if (nt == 0)
			continue;
		char *end1 = NULL, *end2 = NULL;
		long fold = nt == 4 ? strtol(tok[0], &end1, 10) : -1;
		long same = nt == 4 ? strtol(tok[1], &end2, 10) : -1;
		if (nt != 4 || *end1 || *end2 || fold < 0 || fold >= CFP_FOLDS || same < 0 || same > 1 ||
		    strstr(tok[2], "..") || strstr(tok[3], "..") || tok[2][0] == '/' || tok[3][0] == '/') {
			fprintf(stderr, "cfp: %s:%zu: not \"fold same path_a path_b\" (fold 0..%d)\n", file,
			        lineno, CFP_FOLDS - 1);
			rc = -1;
			break;
		}
		if (*n == *cap) {
			size_t c = *cap ? *cap * 2 : 2048;
			lfw_pair *np = realloc(*pairs, c * sizeof *np);
			if (np)
				*pairs = np;
			uint8_t *npr = realloc(*protos, c);
			if (npr)
				*protos = npr;
			char **na = realloc(*pa, c * sizeof *na);
			if (na)
				*pa = na;
			char **nb = realloc(*pb, c * sizeof *nb);
			if (nb)
				*pb = nb;
			if (!np || !npr || !na || !nb) {
				rc = -1;
				break;
			}
			*cap = c;
		}
		char *a = NULL, *b = NULL;
		if (asprintf(&a, "%s/%s", dir, tok[2]) < 0)
			a = NULL;
		if (asprintf(&b, "%s/%s", dir, tok[3]) < 0)
			b = NULL;
		if (!a || !b) {
			free(a);
			free(b);
			rc = -1;
			break;
		}
		(*pa)[*n] = a;
		(*pb)[*n] = b;
		(*pairs)[*n] = (lfw_pair){.same = (uint8_t)same, .fold = (uint8_t)fold};
		(*protos)[*n] = proto;
		++*n;
	}
	fclose(f);
	/* The protocol needs both folds, each with genuine and impostor pairs. */
	size_t cnt[CFP_FOLDS][2] = {{0}};
	for (size_t i = start; !rc && i < *n; i++)
		cnt[(*pairs)[i].fold][(*pairs)[i].same]++;
	for (int k = 0; !rc && k < CFP_FOLDS; k++)
		if (!cnt[k][0] || !cnt[k][1]) {
			fprintf(stderr, "cfp: %s: fold %d has %zu genuine and %zu impostor pairs: the "
			        "2-fold protocol needs both in each fold\n", file, k, cnt[k][1], cnt[k][0]);
			rc = -1;
		}
	return rc;
}

/* Whether an image path is a profile photo (".../profile/NN.jpg"). */
static int is_profile(const char *path)
{
	return strstr(path, "/profile/") != NULL;
}

/* Median CPU ms (the whole process: the models run on their own worker
 * threads; nothing else runs meanwhile) of hk_engine_detect per photo: frontal
 * photos, profile photos and an empty 640x480 grey frame (what a camera
 * sees most of the time), for engine e and a peer engine without extra
 * views, interleaved in the same run. ms[kind][engine]; -1 when absent. */
enum { COST_PHOTOS = 15, COST_REPS = 3 };
static void detect_cost(const hk_engine *e, const hk_engine *peer, const hkb_lfw_set *set,
                        double ms[3][2])
{
	hk_face faces[16];
	for (int k = 0; k < 3; k++) {
		double t[2][COST_PHOTOS * COST_REPS];
		size_t nt = 0, seen = 0;
		for (size_t i = 0; i < set->nimg && seen < COST_PHOTOS; i++) {
			hk_image img = {0};
			static uint8_t grey[640 * 480 * 3];
			if (k == 2) {
				memset(grey, 128, sizeof grey);
				img = (hk_image){640, 480, 640 * 3, 0, grey};
			} else if (is_profile(set->img[i].path) != k || hk_image_load(set->img[i].path, &img)) {
				continue;
			}
			seen++;
			for (int r = 0; r < COST_REPS; r++, nt++)
				for (int w = 0; w < 2; w++) {
					size_t n = 0;
					double c0 = hkb_cpu_now();
					hk_engine_detect(w ? peer : e, &img, faces, 16, &n);
					t[w][nt] = (hkb_cpu_now() - c0) * 1e3;
				}
			if (k != 2)
				hk_image_free(&img);
		}
		for (int w = 0; w < 2; w++)
			ms[k][w] = nt ? hkb_median(t[w], nt) : -1;
	}
}

typedef struct cfp_proto {
	const char *name;
	size_t np, undet_pairs, undet_genuine;
	hkb_kfold_result r;
} cfp_proto;

static const char cfp_usage[] =
    "usage: herken-bench cfp [--cfp DIR] [--json] [--threads N] [--subject largest|centre]\n"
    "                        [--out PREFIX] [--models DIR] [--detector sparse|dense]\n"
    "                        [--no-onet] [--no-flip] [--no-rescue] [--precision P]\n"
    "                        [--passes flip,rotate,zoom,mtcnn,always|none] [--align frontal|pose|visible]\n"
    "CFP development split (frontal-frontal and frontal-profile, 2 person-disjoint\n"
    "folds; default $HERKEN_SHARED/datasets/cfp_dev, else ../shared/datasets/cfp_dev)\n"
    "through the whole pipeline; detector recall on its frontal and profile photos.\n"
    "  --subject S   largest (default: the engine's rule, hk_engine_embed_largest: the\n"
    "                largest usable face, the most central of those near its size)\n"
    "                or centre (the face nearest the photo's centre)\n"
    "  --out PREFIX  PREFIX_images.tsv (per photo), PREFIX_scores.tsv (default cfp)\n"
    "  --threads N   photos processed in parallel (default 2; each model runs 1 thread)\n";

int hk__bench_cfp(int argc, char **argv)
{
	const char *dir_flag = NULL, *prefix = "cfp";
	int json = 0, centre = 0;
	long threads = 2;
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(cfp_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (v && !strcmp(a, "--subject") && (!strcmp(v, "centre") || !strcmp(v, "largest"))) {
			centre = !strcmp(v, "centre");
			i++;
		} else if (hkb_engine_arg(argc, argv, &i, &ep)) {
		} else if (v && !strcmp(a, "--cfp")) {
			dir_flag = v;
			i++;
		} else if (v && !strcmp(a, "--out")) {
			prefix = v;
			i++;
		} else if (v && !strcmp(a, "--threads") && hkb_parse_list(v, &threads, 1) == 1 &&
		           threads >= 1 && threads <= 64) {
			i++;
		} else {
			fprintf(stderr, "cfp: bad argument '%s'\n%s", a, cfp_usage);
			return 2;
		}
	}
	char dir[4096];
	hkb_data_path(dir_flag, "datasets/cfp_dev", dir, sizeof dir);
	struct stat sb;
	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "cfp: data set absent (%s): pass --cfp DIR or set HERKEN_SHARED; "
		        "skipped\n", dir);
		return 2;
	}
	/* Both protocols in one set: FF pairs first, then FP; photos shared. */
	hkb_lfw_set set = {0};
	uint8_t *proto = NULL;
	char **pa = NULL, **pb = NULL;
	size_t cap = 0;
	int rc = read_cfp_pairs(dir, "pairs_ff.tsv", 0, &set.pairs, &proto, &pa, &pb, &set.np, &cap);
	if (!rc)
		rc = read_cfp_pairs(dir, "pairs_fp.tsv", 1, &set.pairs, &proto, &pa, &pb, &set.np, &cap);
	if (rc) {
		for (size_t i = 0; i < set.np; i++) {
			free(pa[i]);
			free(pb[i]);
		}
		free(pa);
		free(pb);
		free(proto);
		hkb_lfw_free(&set);
		fprintf(stderr, "cfp: the protocol files in %s are missing or incomplete; skipped\n",
		        dir);
		return 2;
	}
	if (hkb_lfw_index(&set, pa, pb, NULL)) {
		free(proto);
		fprintf(stderr, "cfp: out of memory\n");
		return 3;
	}
	/* A photo the pairs name must exist: a short copy is an error, not a
	 * lower score. */
	size_t missing = 0;
	for (size_t i = 0; i < set.nimg; i++)
		if (access(set.img[i].path, R_OK) && missing++ < 5)
			fprintf(stderr, "cfp: %s: %s\n", set.img[i].path, strerror(errno));
	if (missing) {
		fprintf(stderr, "cfp: %zu of the %zu photos the pairs use are missing: the data set "
		        "is incomplete; skipped\n", missing, set.nimg);
		free(proto);
		hkb_lfw_free(&set);
		return 2;
	}

	ep.threads = 1;
	hk_engine *e = NULL;
	if (hk_engine_create(&ep, &e)) {
		fprintf(stderr, "cfp: %s\n", hk_last_error());
		free(proto);
		hkb_lfw_free(&set);
		return 3;
	}
	hk_engine_get_params(e, &ep);
	if (!json)
		hkb_print_header("cfp", 0);
	fprintf(stderr, "cfp: %zu pairs, %zu photos, %ld threads\n", set.np, set.nimg, threads);
	double cpu0 = hkb_cpu_now();
	double wall = hkb_lfw_embed(e, &set, threads, 1, centre, 0, isatty(STDERR_FILENO));
	double cpu = hkb_cpu_now() - cpu0;

	/* Detection per pose: photos, usable face, found only by the rescue
	 * pass, more than one usable face (each photo holds one). */
	size_t n_img[2] = {0}, found[2] = {0}, rescued[2] = {0}, extra[2] = {0}, errors = 0;
	double t_det[2] = {0};
	for (size_t i = 0; i < set.nimg; i++) {
		const lfw_image *im = &set.img[i];
		int p = is_profile(im->path);
		n_img[p]++;
		found[p] += im->emb != NULL;
		rescued[p] += im->state == IMG_RESCUED;
		extra[p] += im->nfaces > 1;
		errors += im->state == IMG_ERROR;
		t_det[p] += im->t_detect;
	}
	size_t undetected = n_img[0] + n_img[1] - found[0] - found[1];

	cfp_proto pr[2] = {{.name = "FF"}, {.name = "FP"}};
	float *score = malloc(set.np * sizeof *score);
	uint8_t *same = malloc(set.np), *fold = malloc(set.np);
	if (!score || !same || !fold) {
		fprintf(stderr, "cfp: out of memory\n");
		rc = 3;
		goto out;
	}
	size_t ug = 0;
	hkb_lfw_score_pairs(set.pairs, set.np, set.img, 1, 0, 0, score, &ug);
	for (int k = 0; k < 2; k++) {
		/* The protocol's pairs are contiguous (FF first). */
		size_t off = 0;
		while (off < set.np && proto[off] != k)
			off++;
		size_t n = 0;
		while (off + n < set.np && proto[off + n] == k)
			n++;
		for (size_t i = 0; i < n; i++) {
			same[off + i] = set.pairs[off + i].same;
			fold[off + i] = set.pairs[off + i].fold;
			if (score[off + i] == UNDETECTED_SCORE) {
				pr[k].undet_pairs++;
				pr[k].undet_genuine += same[off + i];
			}
		}
		pr[k].np = n;
		if (hkb_kfold_eval(score + off, same + off, fold + off, n, CFP_FOLDS, &pr[k].r)) {
			fprintf(stderr, "cfp: %s: invalid fold structure\n", pr[k].name);
			rc = 2;
			goto out;
		}
	}

	/* Cost per frame of the extra views against the same engine without
	 * them, same run. */
	double cost[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	hk_engine_params pp = ep;
	pp.passes = HK_PASS_NONE;
	pp.model_dir = ep.model_dir;
	hk_engine *peer = NULL;
	if (hk_engine_create(&pp, &peer) == HK_OK)
		detect_cost(e, peer, &set, cost);
	hk_engine_destroy(peer);

	char path[4200];
	snprintf(path, sizeof path, "%s_images.tsv", prefix);
	if (hkb_lfw_write_images(path, set.img, set.nimg))
		fprintf(stderr, "cfp: cannot write %s\n", path);
	snprintf(path, sizeof path, "%s_scores.tsv", prefix);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "# protocol\tfold\tsame\tscore\tundetected\tpath_a\tpath_b\n");
		for (size_t i = 0; i < set.np; i++)
			fprintf(f, "%s\t%u\t%u\t%.6f\t%d\t%s\t%s\n", pr[proto[i]].name, set.pairs[i].fold,
			        set.pairs[i].same, score[i], score[i] == UNDETECTED_SCORE,
			        set.img[set.pairs[i].a].path, set.img[set.pairs[i].b].path);
		fclose(f);
	} else {
		fprintf(stderr, "cfp: cannot write %s\n", path);
	}

	double cpu_ms = 1e3 * cpu / (double)set.nimg;
	const char *det_name = ep.detector == HK_DETECTOR_DENSE ? "dense" : "sparse";
	if (json) {
		printf("{\"suite\":\"cfp\",\"protocol\":\"CFP dev split, 2-fold (threshold from the other "
		       "fold)\",\"ff_accuracy\":%.5f,\"fp_accuracy\":%.5f",
		       pr[0].r.mean, pr[1].r.mean);
		for (int k = 0; k < 2; k++) {
			const char *n = k ? "fp" : "ff";
			printf(",\"%s_fold_accuracy\":[%.4f,%.4f],\"%s_fold_threshold\":[%.4f,%.4f],"
			       "\"%s_tar_at_far_1e-3\":%.5f,\"%s_pairs\":%zu,\"%s_undetected_pairs\":%zu,"
			       "\"%s_undetected_genuine_pairs\":%zu",
			       n, pr[k].r.acc[0], pr[k].r.acc[1], n, pr[k].r.thr[0], pr[k].r.thr[1], n,
			       pr[k].r.tar, n, pr[k].np, n, pr[k].undet_pairs, n, pr[k].undet_genuine);
		}
		printf(",\"undetected\":%zu,\"undetected_frontal\":%zu,\"undetected_profile\":%zu,"
		       "\"undetected_scored_as\":%.1f,\"images\":%zu,\"frontal_images\":%zu,"
		       "\"profile_images\":%zu,\"recall_frontal\":%.4f,\"recall_profile\":%.4f,"
		       "\"rescued_frontal\":%zu,\"rescued_profile\":%zu,"
		       "\"multi_face_frontal\":%zu,\"multi_face_profile\":%zu,\"decode_errors\":%zu,"
		       "\"detect_ms_per_image\":{\"frontal\":%.3f,\"profile\":%.3f},"
		       "\"detect_cpu_ms\":{\"frontal\":%.3f,\"profile\":%.3f,\"empty_frame\":%.3f},"
		       "\"detect_cpu_ms_without_extra_views\":{\"frontal\":%.3f,\"profile\":%.3f,"
		       "\"empty_frame\":%.3f},"
		       "\"cpu_ms_per_image\":%.3f,\"images_per_s\":%.2f,\"wall_s\":%.2f,"
		       "\"subject\":\"%s\",\"threads\":%ld,\"detector\":\"%s\",\"onet\":%s,\"flip\":%s,"
		       "\"rescue\":%s,\"precision\":\"%s\",\"passes\":%u,\"align\":\"%s\","
		       "\"files\":\"%s_images.tsv %s_scores.tsv\"}\n",
		       undetected, n_img[0] - found[0], n_img[1] - found[1], UNDETECTED_SCORE,
		       set.nimg, n_img[0], n_img[1], n_img[0] ? (double)found[0] / n_img[0] : 0,
		       n_img[1] ? (double)found[1] / n_img[1] : 0, rescued[0], rescued[1], extra[0],
		       extra[1], errors, n_img[0] ? 1e3 * t_det[0] / n_img[0] : 0,
		       n_img[1] ? 1e3 * t_det[1] / n_img[1] : 0, cost[0][0], cost[1][0], cost[2][0],
		       cost[0][1], cost[1][1], cost[2][1], cpu_ms, set.nimg / wall, wall,
		       centre ? "centre" : "largest", threads, det_name,
		       ep.onet == HK_ON ? "true" : "false", ep.flip == HK_ON ? "true" : "false",
		       ep.rescue == HK_ON ? "true" : "false", hkb_precision_name(ep.precision), ep.passes,
		       hkb_align_name(ep.align), prefix, prefix);
	} else {
		printf("## CFP development split, 2-fold (threshold chosen on the other fold)\n\n");
		printf("pipeline: detector %s, landmarks %s, flip %s, rescue %s, extra views 0x%x, "
		       "alignment %s, precision %s; subject = %s\n\n",
		       det_name, ep.onet == HK_ON ? "O-Net" : "detector", ep.flip == HK_ON ? "on" : "off",
		       ep.rescue == HK_ON ? "on" : "off", ep.passes,
		       hkb_align_name(ep.align),
		       hkb_precision_name(ep.precision),
		       centre ? "the face nearest the centre" : "the largest usable face");
		printf("| protocol | accuracy (fold 1, fold 2) | TAR @ FAR 1e-3 | pairs scored -1 (genuine) |\n"
		       "|---|---|---|---|\n");
		for (int k = 0; k < 2; k++)
			printf("| %s (%zu pairs) | %.2f %% ± %.2f (%.2f, %.2f) | %.2f %% | %zu (%zu) |\n",
			       k ? "frontal-profile" : "frontal-frontal", pr[k].np, 100 * pr[k].r.mean,
			       100 * pr[k].r.sd, 100 * pr[k].r.acc[0], 100 * pr[k].r.acc[1],
			       100 * pr[k].r.tar, pr[k].undet_pairs, pr[k].undet_genuine);
		printf("\n| photos | count | usable face (recall) | rescued | >1 face | detect ms/photo |\n"
		       "|---|---|---|---|---|---|\n");
		for (int p = 0; p < 2; p++)
			printf("| %s | %zu | %zu (%.2f %%) | %zu | %zu | %.2f |\n", p ? "profile" : "frontal",
			       n_img[p], found[p], n_img[p] ? 100.0 * found[p] / n_img[p] : 0, rescued[p],
			       extra[p], n_img[p] ? 1e3 * t_det[p] / n_img[p] : 0);
		printf("\ndetection CPU per frame, median of %d photos x %d (this engine / without extra "
		       "views): frontal %.2f / %.2f ms, profile %.2f / %.2f ms, empty 640x480 frame "
		       "%.2f / %.2f ms\n", COST_PHOTOS, COST_REPS, cost[0][0], cost[0][1], cost[1][0],
		       cost[1][1], cost[2][0], cost[2][1]);
		printf("\n%zu photos without a usable face (their pairs scored %.0f), %zu decode errors; "
		       "CPU %.2f ms per photo, %.1f photos/s on %ld threads\n",
		       undetected, UNDETECTED_SCORE, errors, cpu_ms, set.nimg / wall, threads);
		printf("\nper photo: %s_images.tsv, scores: %s_scores.tsv\n", prefix, prefix);
	}
out:
	free(score);
	free(same);
	free(fold);
	free(proto);
	hkb_lfw_free(&set);
	hk_engine_destroy(e);
	return rc;
}
