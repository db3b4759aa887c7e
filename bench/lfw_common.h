/* LFW View 2 pairs and the per-image pipeline run (lfw_common.c), shared by
 * `herken-bench lfw` and the LFW guard of `herken-bench check`. */
#ifndef HKB_LFW_COMMON_H
#define HKB_LFW_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "herken.h"

#define UNDETECTED_SCORE -1.0f

typedef struct lfw_pair {
	uint32_t a, b; /* image indices */
	uint8_t same, fold;
} lfw_pair;

enum { IMG_OK = 0, IMG_RESCUED = 1, IMG_NOFACE = 2, IMG_ERROR = 3 };

typedef struct lfw_image {
	char *path;
	float *emb; /* nvar x HK_EMBED_DIM, NULL unless a face was embedded */
	/* The subject under the other two rules (hkb_lfw_rule order without
	 * the one embedded in emb): NULL when it is the same face. */
	float *emb_other[2];
	uint8_t state;
	uint8_t onet; /* landmarks from O-Net */
	uint32_t nfaces; /* faces detected */
	float box[4], score; /* the subject's face */
	double t_decode, t_detect, t_embed;
} lfw_image;

typedef struct hkb_lfw_set {
	lfw_pair *pairs;
	size_t np;
	lfw_image *img; /* distinct images, sorted by path */
	size_t nimg;
} hkb_lfw_set;

/* Reads pairs.txt (the first max_folds folds; 0: all) with images under
 * dir, plus every image of dir when all_images. 0 or -1 (message printed). */
int hkb_lfw_load(const char *pairs_file, const char *dir, long max_folds, int all_images,
                 hkb_lfw_set *s);

/* Builds s->img from the pair paths pa[s->np], pb[s->np] (s->pairs and
 * s->np set; a and b are filled in) plus every image under all_dir when
 * it is not NULL: distinct, sorted. Takes ownership of pa, pb and their
 * strings. 0 or -1 (s freed). */
int hkb_lfw_index(hkb_lfw_set *s, char **pa, char **pb, const char *all_dir);

/* k-fold verification: per fold the threshold maximising accuracy on the
 * other folds (hk__kfold), mean, population std and SE over the folds,
 * TAR at FAR 1e-3 over all pairs. -1 on an invalid fold structure. */
typedef struct hkb_kfold_result {
	double mean, sd, se, mthr, tar, far_thr;
	double acc[100], thr[100];
} hkb_kfold_result;
int hkb_kfold_eval(const float *score, const uint8_t *same, const uint8_t *fold, size_t np,
                   unsigned nf, hkb_kfold_result *r);

/* Per-image TSV: path, state, faces found, the subject's box and score,
 * where its landmarks came from. 0 or -1. */
int hkb_lfw_write_images(const char *path, const lfw_image *img, size_t nimg);

/* Which face of an image is the subject. */
enum {
	HKB_RULE_CENTRE = 0,  /* the usable face nearest the image centre      */
	HKB_RULE_ENGINE = 1,  /* hk_engine_embed_largest's rule (hk__subject_face) */
	HKB_RULE_LARGEST = 2, /* the largest usable face                       */
};

/* Decode, detect and embed the subject's face of every image with
 * `threads` threads: with centre, the usable face nearest the image centre
 * (the face LFW labels: its images were cut around it, and background faces
 * are often as large); else the engine's rule, as hk_engine_embed_largest()
 * picks. With all_rules, where another rule picks another face, that face
 * is embedded too (emb_other; hkb_lfw_use_rule scores it). nvar 1 (what
 * the engine returns) or 4 (O-Net/detector alignment x flip on/off).
 * Returns the wall seconds. */
double hkb_lfw_embed(const hk_engine *e, hkb_lfw_set *s, long threads, int nvar,
                     int centre, int all_rules, int progress);

/* The same as hkb_lfw_embed (nvar 1) through the library's collection
 * pipeline, hk_embed_many: the images as one frame source (read and
 * decoded by its threads, in list order), detect_threads detecting and
 * cutting chips, embed_threads executors of the embedder (0: one per
 * core) batching chips across images;
 * the same faces chosen by the same rules (a select callback). *st (may be
 * NULL) gets the job's counters. Returns the wall seconds, or -1 when the
 * job could not run (message printed). */
double hkb_lfw_embed_job(const hk_engine *e, hkb_lfw_set *s, long detect_threads,
                         long embed_threads, int centre,
                         int all_rules, int progress, hk_embed_stats *st);

/* Makes emb hold the subject of rule r (HKB_RULE_*) for every image, given
 * the rule embedded first (centre or not, as passed to hkb_lfw_embed).
 * Calling it again with the first rule restores the set. Returns how many
 * images take another face than under the first rule. */
size_t hkb_lfw_use_rule(hkb_lfw_set *s, int centre, int r);

/* The subject under rule r (HKB_RULE_*); SIZE_MAX when no face is usable. */
size_t hkb_pick_subject(const hk_face *faces, size_t n, const hk_image *img, int r);

/* Scores of every pair for embedding variant v; pairs with an image without
 * a usable face (or, when no_rescue, found only by the rescue pass) get
 * UNDETECTED_SCORE. Returns the number of such pairs; *genuine gets how many
 * of them are genuine. */
size_t hkb_lfw_score_pairs(const lfw_pair *pairs, size_t np, const lfw_image *img, int nvar,
                           int v, int no_rescue, float *score, size_t *genuine);

/* The engine options common to the pipeline suites: --no-onet --no-flip
 * --no-rescue --precision P --models DIR --detector sparse|dense
 * --passes flip,rotate,zoom,mtcnn,always|none (hk_engine_params.passes)
 * --align frontal|pose|visible. 1 if
 * argv[*i] was one (into ep, *i advanced past its value), 0 if not. */
int hkb_engine_arg(int argc, char **argv, int *i, hk_engine_params *ep);

/* Wipes the embeddings and frees everything. */
void hkb_lfw_free(hkb_lfw_set *s);

#endif
