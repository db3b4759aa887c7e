/* BLUFR protocol files and the LFW embedding cache; see blufr_common.h. */
#define _GNU_SOURCE
#include "blufr_common.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h"
#include "lfw_common.h"

#define CACHE_MAGIC "HKEMBC\0\1"
#define CACHE_VERSION 1u

/* On-disk header (little-endian, x86/arm64 native). */
typedef struct cache_header {
	char magic[8];
	uint32_t version;
	uint32_t dim;
	uint64_t count;
	uint8_t model_sha[32];
	uint8_t paths_sha[32];
	char config[192]; /* engine settings and subject rule, NUL-padded */
} cache_header;
_Static_assert(sizeof(cache_header) == 8 + 4 + 4 + 8 + 32 + 32 + 192, "cache header layout");

const char hkb_blufr_usage[] =
    "  --lfw DIR       LFW images (default $HERKEN_SHARED/datasets/lfw, else ../shared/...)\n"
    "  --blufr DIR     BLUFR protocol files (default .../datasets/lfw_blufr)\n"
    "  --cache FILE    embedding cache (default .cache/lfw-emb-<model sha>-<subject>.bin)\n"
    "  --no-cache      embed every image, do not read or write the cache\n"
    "  --subject S     centre (default: the face nearest the image centre, the one LFW\n"
    "                  labels, as herken-bench lfw) or largest (hk_engine_embed_largest)\n"
    "  --threads N     images embedded in parallel (default 2)\n"
    "  --models DIR    model directory (default $HERKEN_MODELS)\n"
    "  --precision P   fp32 (default), bf16, int8 or auto: the engine's precision\n"
    "                  (AUTO resolved); the cache is per precision\n";

int hkb_blufr_arg(int argc, char **argv, int *i, hkb_blufr_opts *o)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!strcmp(a, "--no-cache")) {
		o->no_cache = 1;
		return 1;
	}
	const char **dst = !strcmp(a, "--lfw")     ? &o->lfw_dir
	                   : !strcmp(a, "--blufr")  ? &o->blufr_dir
	                   : !strcmp(a, "--cache")  ? &o->cache
	                   : !strcmp(a, "--models") ? &o->model_dir
	                                            : NULL;
	if (dst) {
		if (!v)
			return -1;
		*dst = v;
		++*i;
		return 1;
	}
	if (!strcmp(a, "--subject")) {
		if (!v || (strcmp(v, "centre") && strcmp(v, "largest")))
			return -1;
		o->centre = !strcmp(v, "centre");
		++*i;
		return 1;
	}
	if (!strcmp(a, "--precision")) {
		if (!v || hkb_parse_precision(v, &o->precision))
			return -1;
		++*i;
		return 1;
	}
	if (!strcmp(a, "--threads")) {
		if (!v || hkb_parse_list(v, &o->threads, 1) != 1 || o->threads < 1 || o->threads > 64)
			return -1;
		++*i;
		return 1;
	}
	return 0;
}

void hkb_hex(const uint8_t *sha, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", sha[i]);
	out[2 * n] = 0;
}

void hkb_mean_std(const double *v, size_t n, double *mean, double *sd)
{
	double s = 0, q = 0;
	for (size_t i = 0; i < n; i++)
		s += v[i];
	*mean = n ? s / n : NAN;
	for (size_t i = 0; i < n; i++)
		q += (v[i] - *mean) * (v[i] - *mean);
	*sd = n ? sqrt(q / n) : NAN;
}

/* images.tsv: "index\tpath\tlabel" with a header line, indexes 1..n in order. */
static int read_images(const char *file, hkb_blufr *b)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	char line[1024];
	size_t cap = 0;
	int rc = fgets(line, sizeof line, f) && !strncmp(line, "index", 5) ? 0 : -1;
	while (!rc && fgets(line, sizeof line, f)) {
		char path[600];
		unsigned long idx, label;
		if (sscanf(line, "%lu\t%599s\t%lu", &idx, path, &label) != 3 || idx != b->n + 1 ||
		    !label || label > 1000000 || strstr(path, "..")) {
			fprintf(stderr, "blufr: %s: bad line %zu\n", file, b->n + 2);
			rc = -1;
			break;
		}
		if (b->n == cap) {
			cap = cap ? 2 * cap : 16384;
			char **np = realloc(b->path, cap * sizeof *np);
			uint32_t *nl = np ? realloc(b->label, cap * sizeof *nl) : NULL;
			if (np)
				b->path = np;
			if (!nl) {
				rc = -1;
				break;
			}
			b->label = nl;
		}
		b->path[b->n] = strdup(path);
		b->label[b->n] = (uint32_t)label;
		if (!b->path[b->n++])
			rc = -1;
	}
	fclose(f);
	return rc || !b->n ? -1 : 0;
}

/* trials.tsv: "trial\trole\tindex". */
static int read_trials(const char *file, hkb_blufr *b)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	for (int t = 0; t <= 10; t++)
		if (!(b->role[t] = calloc(b->n, 1))) {
			fclose(f);
			return -1;
		}
	char line[256];
	int rc = fgets(line, sizeof line, f) && !strncmp(line, "trial", 5) ? 0 : -1;
	size_t ln = 1;
	while (!rc && fgets(line, sizeof line, f)) {
		ln++;
		unsigned long t, idx;
		char role[32];
		if (sscanf(line, "%lu\t%31s\t%lu", &t, role, &idx) != 3 || t > 10 || !idx ||
		    idx > b->n) {
			fprintf(stderr, "blufr: %s: bad line %zu\n", file, ln);
			rc = -1;
			break;
		}
		uint8_t r = !strcmp(role, "train")     ? 'r'
		            : !strcmp(role, "gallery")  ? 'g'
		            : !strcmp(role, "probe")    ? 'p'
		            : !strcmp(role, "devtrain") ? 'd'
		            : !strcmp(role, "devtest")  ? 't'
		                                        : 0;
		if (!r || b->role[t][idx - 1]) {
			fprintf(stderr, "blufr: %s: line %zu: unknown role or image listed twice\n",
			        file, ln);
			rc = -1;
			break;
		}
		b->role[t][idx - 1] = r;
	}
	fclose(f);
	return rc;
}

/* The precision the embedder file runs in at `want` (AUTO resolved, as
 * the engine resolves it): HK_PREC_FP32, BF16 or INT8. */
static uint32_t embedder_precision(const char *path, uint32_t want)
{
	hk_model_params mp;
	hk_model_default_params(&mp);
	mp.kind = HK_MODEL_EMBEDDER;
	mp.threads = 1;
	mp.precision = want;
	hk_model *m = NULL;
	hk_model_info mi;
	uint32_t got = want;
	if (!hk_model_load(path, &mp, &m) && !hk_model_get_info(m, &mi))
		got = mi.precision;
	hk_model_destroy(m);
	return got;
}

uint32_t hkb_resolve_precision(const char *model_dir, uint32_t want)
{
	char model[4200];
	snprintf(model, sizeof model, "%s/%s", hk_model_dir(model_dir), hkb_model_file("embedder"));
	return embedder_precision(model, want);
}

hk_status hkb_blufr_calib(const hkb_blufr *b, hk_calib **out)
{
	return hk_calib_builtin_at(b->model_sha, (hk_precision)b->prec, out);
}

static void engine_config(const hk_engine_params *p, int centre, const char *prec, char *out,
                          size_t len)
{
	memset(out, 0, len);
	snprintf(out, len,
	         "detector=%u score=%.4f nms=%.4f min_face=%.2f onet=%u flip=%u rescue=%u "
	         "rescue_thr=%.4f passes=%u align=%u subject=%s%s%s",
	         p->detector, p->score_threshold, p->nms_iou, p->min_face, p->onet, p->flip,
	         p->rescue, p->rescue_threshold, p->passes, p->align,
	         centre ? "centre" : "largest-or-central", strcmp(prec, "fp32") ? " prec=" : "",
	         strcmp(prec, "fp32") ? prec : "");
}

static void paths_sha(const hkb_blufr *b, uint8_t out[32])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	for (size_t i = 0; i < b->n; i++)
		crypto_hash_sha256_update(&st, (const unsigned char *)b->path[i],
		                          strlen(b->path[i]) + 1);
	crypto_hash_sha256_final(&st, out);
}

/* 0 and b->emb/ok filled when the cache at path matches hdr; -1 otherwise
 * (reason in why). */
static int cache_read(const char *path, const cache_header *want, hkb_blufr *b, char *why,
                      size_t wlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, wlen, "%s", strerror(errno));
		return -1;
	}
	cache_header h;
	size_t nf = b->n * HK_EMBED_DIM;
	uint8_t sum[32], got[32];
	int rc = -1;
	if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CACHE_MAGIC, 8))
		snprintf(why, wlen, "not an embedding cache");
	else if (h.version != CACHE_VERSION)
		snprintf(why, wlen, "format version %u, expected %u", h.version, CACHE_VERSION);
	else if (memcmp(h.model_sha, want->model_sha, 32))
		snprintf(why, wlen, "made with another embedder (sha256 differs)");
	else if (h.count != want->count || h.dim != want->dim)
		snprintf(why, wlen, "count/dim %llu/%u, expected %llu/%u",
		         (unsigned long long)h.count, h.dim, (unsigned long long)want->count,
		         want->dim);
	else if (memcmp(h.paths_sha, want->paths_sha, 32))
		snprintf(why, wlen, "for another image list");
	else if (memcmp(h.config, want->config, sizeof h.config))
		snprintf(why, wlen, "other engine settings (%.150s)", h.config);
	else if (fread(b->ok, 1, b->n, f) != b->n || fread(b->emb, sizeof(float), nf, f) != nf ||
	         fread(sum, 1, 32, f) != 32 || fgetc(f) != EOF)
		snprintf(why, wlen, "truncated or overlong");
	else
		rc = 0;
	fclose(f);
	if (rc)
		return rc;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)&h, sizeof h);
	crypto_hash_sha256_update(&st, b->ok, b->n);
	crypto_hash_sha256_update(&st, (const unsigned char *)b->emb, nf * sizeof(float));
	crypto_hash_sha256_final(&st, got);
	if (memcmp(sum, got, 32)) {
		snprintf(why, wlen, "checksum mismatch (damaged)");
		return -1;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->ok[i] > 1) {
			snprintf(why, wlen, "bad image state");
			return -1;
		}
	return 0;
}

static int cache_write(const char *path, const cache_header *h, const hkb_blufr *b)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0)
		return -1;
	char *slash = strrchr(path, '/');
	if (slash) { /* mkdir -p of the parent, one level is enough for .cache */
		char *d = strndup(path, (size_t)(slash - path));
		if (d)
			mkdir(d, 0755);
		free(d);
	}
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		free(tmp);
		return -1;
	}
	size_t nf = b->n * HK_EMBED_DIM;
	uint8_t sum[32];
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)h, sizeof *h);
	crypto_hash_sha256_update(&st, b->ok, b->n);
	crypto_hash_sha256_update(&st, (const unsigned char *)b->emb, nf * sizeof(float));
	crypto_hash_sha256_final(&st, sum);
	int ok = fwrite(h, sizeof *h, 1, f) == 1 && fwrite(b->ok, 1, b->n, f) == b->n &&
	         fwrite(b->emb, sizeof(float), nf, f) == nf && fwrite(sum, 1, 32, f) == 32;
	ok &= fclose(f) == 0;
	ok = ok && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	free(tmp);
	return ok ? 0 : -1;
}

int hkb_blufr_load(const hkb_blufr_opts *o, const char *suite, hkb_blufr *b)
{
	memset(b, 0, sizeof *b);
	char lfw[4096], blufr[4096], f_img[4200], f_tri[4200];
	hkb_data_path(o->lfw_dir, "datasets/lfw", lfw, sizeof lfw);
	hkb_data_path(o->blufr_dir, "datasets/lfw_blufr", blufr, sizeof blufr);
	snprintf(f_img, sizeof f_img, "%s/images.tsv", blufr);
	snprintf(f_tri, sizeof f_tri, "%s/trials.tsv", blufr);
	struct stat sb;
	if (stat(lfw, &sb) || !S_ISDIR(sb.st_mode) || stat(f_img, &sb) || stat(f_tri, &sb)) {
		fprintf(stderr, "%s: dataset absent (%s, %s): pass --lfw DIR --blufr DIR\n", suite,
		        lfw, blufr);
		return 2;
	}
	if (sodium_init() < 0 || read_images(f_img, b) || read_trials(f_tri, b)) {
		fprintf(stderr, "%s: cannot read %s or %s\n", suite, f_img, f_tri);
		hkb_blufr_free(b);
		return 3;
	}
	b->emb = calloc(b->n * HK_EMBED_DIM, sizeof *b->emb);
	b->ok = calloc(b->n, 1);
	if (!b->emb || !b->ok) {
		hkb_blufr_free(b);
		return 3;
	}

	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.threads = 1;
	ep.precision = o->precision;
	if (o->model_dir)
		ep.model_dir = o->model_dir;
	/* The resolved settings and the embedder's sha256, without loading the
	 * models when the cache answers. */
	hk_engine *e = NULL;
	cache_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, CACHE_MAGIC, 8);
	h.version = CACHE_VERSION;
	h.dim = HK_EMBED_DIM;
	h.count = b->n;
	paths_sha(b, h.paths_sha);
	if (hk_engine_create(&ep, &e)) {
		fprintf(stderr, "%s: %s\n", suite, hk_last_error());
		hkb_blufr_free(b);
		return 3;
	}
	hk_engine_get_params(e, &ep);
	char model[4200];
	snprintf(model, sizeof model, "%s/%s", ep.model_dir, hkb_model_file("embedder"));
	if (hk__sha256_file(model, h.model_sha)) {
		fprintf(stderr, "%s: cannot read %s\n", suite, model);
		hk_engine_destroy(e);
		hkb_blufr_free(b);
		return 3;
	}
	memcpy(b->model_sha, h.model_sha, 32);
	b->prec = embedder_precision(model, o->precision);
	const char *prec = hkb_precision_name(b->prec);
	snprintf(b->precision, sizeof b->precision, "%s", prec);
	engine_config(&ep, o->centre, prec, h.config, sizeof h.config);
	char cpath[4300], hex[17];
	hkb_hex(h.model_sha, 8, hex);
	if (o->cache)
		snprintf(cpath, sizeof cpath, "%s", o->cache);
	else /* fp32 keeps the name caches had before precisions existed */
		snprintf(cpath, sizeof cpath, ".cache/lfw-emb-%s-%s%s%s.bin", hex,
		         o->centre ? "centre" : "largest", strcmp(prec, "fp32") ? "-" : "",
		         strcmp(prec, "fp32") ? prec : "");
	char why[256];
	if (!o->no_cache && !cache_read(cpath, &h, b, why, sizeof why)) {
		b->from_cache = 1;
		fprintf(stderr, "%s: embeddings of %zu images from %s\n", suite, b->n, cpath);
	} else {
		if (!o->no_cache)
			fprintf(stderr, "%s: cache %s not used (%s): embedding %zu images\n", suite, cpath,
			        why, b->n);
		hkb_lfw_set s = {0};
		s.img = calloc(b->n, sizeof *s.img);
		s.nimg = b->n;
		int rc = s.img ? 0 : -1;
		for (size_t i = 0; i < b->n && !rc; i++)
			if (asprintf(&s.img[i].path, "%s/%s", lfw, b->path[i]) < 0) {
				s.img[i].path = NULL;
				rc = -1;
			}
		if (!rc) {
			b->embed_wall_s = hkb_lfw_embed(e, &s, o->threads ? o->threads : 2, 1, o->centre, 0,
			                                isatty(STDERR_FILENO));
			for (size_t i = 0; i < b->n; i++)
				if (s.img[i].emb) {
					memcpy(b->emb + i * HK_EMBED_DIM, s.img[i].emb,
					       HK_EMBED_DIM * sizeof(float));
					b->ok[i] = 1;
				}
		}
		hkb_lfw_free(&s);
		if (rc) {
			hk_engine_destroy(e);
			hkb_blufr_free(b);
			return 3;
		}
		if (!o->no_cache) {
			if (cache_write(cpath, &h, b))
				fprintf(stderr, "%s: could not write the cache %s: %s\n", suite, cpath,
				        strerror(errno));
			else
				fprintf(stderr, "%s: embeddings cached in %s\n", suite, cpath);
		}
	}
	hk_engine_destroy(e);
	for (size_t i = 0; i < b->n; i++)
		b->undetected += !b->ok[i];
	return 0;
}

void hkb_blufr_free(hkb_blufr *b)
{
	for (size_t i = 0; b->path && i < b->n; i++)
		free(b->path[i]);
	if (b->emb)
		hk__wipe(b->emb, b->n * HK_EMBED_DIM * sizeof(float));
	free(b->emb);
	free(b->ok);
	free(b->path);
	free(b->label);
	for (int t = 0; t <= 10; t++)
		free(b->role[t]);
	memset(b, 0, sizeof *b);
}
