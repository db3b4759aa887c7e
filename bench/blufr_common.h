/* LFW BLUFR protocol files and the embedding cache (blufr_common.c), shared
 * by `herken-bench blufr`, `herken-bench openset` and `herken-bench calibrate`.
 *
 * Every LFW image is embedded once through herken's own pipeline (the face
 * nearest the image centre, which LFW labels, as `herken-bench lfw` does; or
 * with --subject largest the face hk_engine_embed_largest picks) and the
 * result is cached in a binary file (never committed; default under .cache/). The cache is reused only when its
 * header matches: format version, the embedder's sha256, the engine
 * settings, the image list (sha256 of the paths), count, dim, and a sha256
 * over the whole file. */
#ifndef HKB_BLUFR_COMMON_H
#define HKB_BLUFR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "herken.h"

typedef struct hkb_blufr {
	size_t n;          /* images (13,233), index i = BLUFR index i+1      */
	char **path;       /* relative to the LFW directory                   */
	uint32_t *label;   /* 1..5,749                                         */
	float *emb;        /* n x HK_EMBED_DIM, zero rows for undetected       */
	uint8_t *ok;       /* 1: a usable face was embedded                    */
	size_t undetected; /* images with no usable face (ok == 0)             */
	/* trials: role of image i in trial t (0..10): 0 none, 'r' train,
	 * 'g' gallery, 'p' probe, 'd' devtrain, 't' devtest */
	uint8_t *role[11];
	double embed_wall_s; /* seconds spent embedding (0 when from cache)    */
	int from_cache;
	char precision[8];      /* the embedder's, as run: fp32, bf16, int8  */
	uint32_t prec;          /* the same as hk_precision                  */
	uint8_t model_sha[32];
} hkb_blufr;

typedef struct hkb_blufr_opts {
	const char *lfw_dir;    /* NULL: hkb_data_path(.., "datasets/lfw")   */
	const char *blufr_dir;  /* NULL: ditto, "datasets/lfw_blufr"         */
	const char *cache;      /* NULL: .cache/lfw-emb-<sha8>-<rule>.bin      */
	int no_cache;           /* neither read nor write the cache            */
	int centre;             /* subject = face nearest the centre           */
	long threads;           /* 0: 2                                        */
	const char *model_dir;  /* NULL: engine default                        */
	uint32_t precision;     /* hk_precision of the engine (0: fp32)       */
} hkb_blufr_opts;

/* Options common to the suites: --lfw --blufr --cache --no-cache --subject
 * --threads --models --precision. Returns 1 if argv[*i] was one (advancing *i past its
 * value), 0 if not, -1 on a bad value. */
int hkb_blufr_arg(int argc, char **argv, int *i, hkb_blufr_opts *o);
extern const char hkb_blufr_usage[];

/* Reads images.tsv and trials.tsv, then the embeddings (cache or pipeline).
 * 0, 2 (dataset absent: message printed), 3 (other failure). */
int hkb_blufr_load(const hkb_blufr_opts *o, const char *suite, hkb_blufr *b);
void hkb_blufr_free(hkb_blufr *b);

/* The precision the engine's embedder runs in when asked for `want`
 * (HK_PREC_AUTO resolved as hk_model_load resolves it on this CPU), with
 * the models of model_dir (NULL: the default). */
uint32_t hkb_resolve_precision(const char *model_dir, uint32_t want);

/* The calibration shipped for b's embedder at the precision its embeddings
 * were made in (hk_calib_builtin_at); the library's message on failure. */
hk_status hkb_blufr_calib(const hkb_blufr *b, hk_calib **out);

/* Hex of the first n bytes of sha (n <= 32) into out[2n+1]. */
void hkb_hex(const uint8_t *sha, size_t n, char *out);

/* Population mean and std of v[n]. */
void hkb_mean_std(const double *v, size_t n, double *mean, double *sd);

#endif
