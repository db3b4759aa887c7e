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

/* Decode, detect and embed the subject's face of every image with
 * `threads` threads: with centre, the usable face nearest the image centre
 * (the face LFW labels: its images were cut around it, and background faces
 * are often as large); else the largest, as hk_engine_embed_largest()
 * picks. nvar 1 (what the engine returns) or 4 (O-Net/detector alignment x
 * flip on/off). Returns the wall seconds. */
double hkb_lfw_embed(const hk_engine *e, hkb_lfw_set *s, long threads, int nvar,
                     int centre, int progress);

/* Scores of every pair for embedding variant v; pairs with an image without
 * a usable face (or, when no_rescue, found only by the rescue pass) get
 * UNDETECTED_SCORE. Returns the number of such pairs; *genuine gets how many
 * of them are genuine. */
size_t hkb_lfw_score_pairs(const lfw_pair *pairs, size_t np, const lfw_image *img, int nvar,
                           int v, int no_rescue, float *score, size_t *genuine);

/* Wipes the embeddings and frees everything. */
void hkb_lfw_free(hkb_lfw_set *s);

#endif
