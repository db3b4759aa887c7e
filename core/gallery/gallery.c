/*
 * In-memory gallery and exact cosine search.
 *
 * Layout (slot = one stored template, in insertion order; compaction keeps
 * the order, so template ids are ascending over slots and id -> slot is a
 * binary search):
 *   master  exact copy, fp32, normalised, rows of d32 floats (HK_EXACT_FP32)
 *   m16     exact copy, fp16, rows of d16 halves (HK_EXACT_FP16)
 *   xf      exact copy, fp32 rows in an unlinked file (HK_EXACT_FILE), each
 *           row ChaCha20-encrypted under a key that lives only in RAM, with
 *           the slot as nonce; appended rows gather in a small resident
 *           buffer and are written with one pwrite per XF_PEND rows. The
 *           re-rank reads each candidate row with pread: the process maps
 *           no page of the file. (A read-only mapping was tried first: the
 *           kernel's fault-around maps 16 cached pages per fault, and 3
 *           queries of 64 candidates mapped all 528 pages of a 3000-row
 *           file into the process.)
 *   s8      int8 scan copy, rows of d8 bytes, q = round(x / scale * 127)
 *   rsum    per-row sum of s8 (the u8-offset trick of the VNNI kernels)
 *   rscale  per-row dequantisation factor; NaN marks a tombstone, so the
 *           scan drops removed rows without a branch (NaN > x is false)
 *   s16     fp16 scan copy, rows of d16 halves (HK_SCAN_FP16 only)
 *
 * A query scans the compact copy into per-shard heaps of kk candidates,
 * then re-scores the candidates from the exact copy, keeps each subject's
 * best template and returns the top k.
 *
 * Resident bytes per 192-d template with the int8 scan (measured by
 * hk_gallery_get_info): scan copy 192 + rsum/rscale/id/subject 20, plus the
 * exact copy: 768 (FP32), 384 (FP16) or 0 (FILE), plus the subject table
 * (about 48 bytes per subject whose name is shorter than 16 bytes).
 */
#define _GNU_SOURCE
#include "gallery_priv.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hk_gallery_default_params(hk_gallery_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	p->scan_type = HK_SCAN_INT8;
	p->rerank = 64;
	p->huge_pages = HK_HUGE_AUTO;
	p->capacity = 1024;
}

/* ---------------------------------------------------------------- */
/* subjects                                                          */
/* ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

int64_t hk__g_subject_find(const hk_gallery *g, const char *name, size_t len)
{
	if (g->hcap == 0)
		return -1;
	uint32_t mask = g->hcap - 1;
	for (uint32_t i = (uint32_t)fnv1a(name, len) & mask;; i = (i + 1) & mask) {
		uint32_t e = g->hash[i];
		if (e == 0)
			return -1;
		const hk__subj *s = &g->subs[e - 1];
		if (s->len == len && !memcmp(subj_name(s), name, len))
			return e - 1;
	}
}

static void hash_insert(uint32_t *hash, uint32_t hcap, const hk__subj *s,
                        uint32_t idx)
{
	uint32_t mask = hcap - 1;
	uint32_t i = (uint32_t)fnv1a(subj_name(s), s->len) & mask;
	while (hash[i])
		i = (i + 1) & mask;
	hash[i] = idx + 1;
}

static hk_status hash_rebuild(hk_gallery *g, uint32_t want)
{
	uint32_t hcap = 16;
	while (hcap < 2 * want + 2)
		hcap *= 2;
	uint32_t *h = calloc(hcap, sizeof *h);
	if (!h)
		return hk__err(HK_E_NOMEM, "gallery: out of memory (subject index)");
	for (uint32_t i = 0; i < g->nsubs; i++)
		hash_insert(h, hcap, &g->subs[i], i);
	free(g->hash);
	g->hash = h;
	g->hcap = hcap;
	return HK_OK;
}

static hk_status subject_get_or_add(hk_gallery *g, const char *name,
                                    size_t len, uint32_t *out)
{
	int64_t f = hk__g_subject_find(g, name, len);
	if (f >= 0) {
		*out = (uint32_t)f;
		return HK_OK;
	}
	if (g->nsubs == UINT32_MAX - 1)
		return hk__err(HK_E_LIMIT, "gallery: too many subjects");
	if (g->nsubs == g->capsubs) {
		/* not realloc: the old table holds inline names, wipe it */
		uint32_t nc = g->capsubs ? g->capsubs * 2 : 64;
		hk__subj *ns = malloc((size_t)nc * sizeof *ns);
		if (!ns)
			return hk__err(HK_E_NOMEM, "gallery: out of memory (subjects)");
		if (g->nsubs)
			memcpy(ns, g->subs, (size_t)g->nsubs * sizeof *ns);
		hk__wipe(g->subs, (size_t)g->nsubs * sizeof *ns);
		free(g->subs);
		g->subs = ns;
		g->capsubs = nc;
	}
	if (2 * (g->nsubs + 1) + 2 > g->hcap) {
		hk_status st = hash_rebuild(g, g->nsubs + 1);
		if (st)
			return st;
	}
	hk__subj *s = &g->subs[g->nsubs];
	memset(s, 0, sizeof *s);
	char *dst = s->name.in;
	if (len >= SUBJ_INLINE) {
		dst = s->name.p = malloc(len + 1);
		if (!dst)
			return hk__err(HK_E_NOMEM, "gallery: out of memory (subject name)");
	}
	memcpy(dst, name, len);
	dst[len] = 0;
	s->len = (uint32_t)len;
	hash_insert(g->hash, g->hcap, s, g->nsubs);
	*out = g->nsubs++;
	return HK_OK;
}

static void subject_free(hk__subj *s)
{
	if (s->len >= SUBJ_INLINE) {
		hk__wipe(s->name.p, s->len);
		free(s->name.p);
	}
	if (s->captids) {
		hk__wipe(s->t.many, (size_t)s->captids * sizeof *s->t.many);
		free(s->t.many);
	}
	hk__wipe(s, sizeof *s);
}

/* Append id to s's template list. */
static hk_status subject_push(hk__subj *s, hk_template_id id)
{
	if (s->captids == 0 && s->ntids == 0) {
		s->t.one = id;
		s->ntids = 1;
		return HK_OK;
	}
	if (s->ntids == s->captids || s->captids == 0) {
		uint32_t nc = s->captids ? s->captids * 2 : 4;
		hk_template_id *nt = malloc((size_t)nc * sizeof *nt);
		if (!nt)
			return hk__err(HK_E_NOMEM, "gallery_add: out of memory");
		memcpy(nt, subj_tids(s), (size_t)s->ntids * sizeof *nt);
		if (s->captids) {
			hk__wipe(s->t.many, (size_t)s->captids * sizeof *nt);
			free(s->t.many);
		}
		s->t.many = nt;
		s->captids = nc;
	}
	s->t.many[s->ntids++] = id;
	return HK_OK;
}

hk_status hk__g_check_subject(const char *subject, size_t *len)
{
	if (!subject)
		return hk__err(HK_E_INVALID, "subject is NULL");
	size_t l = strnlen(subject, HK_SUBJECT_MAX + 1);
	if (l == 0 || l > HK_SUBJECT_MAX)
		return hk__err(HK_E_INVALID,
		               "subject id must be 1..%d bytes (got %zu%s)",
		               HK_SUBJECT_MAX, l, l > HK_SUBJECT_MAX ? "+" : "");
	*len = l;
	return HK_OK;
}

/* ---------------------------------------------------------------- */
/* vectors                                                           */
/* ---------------------------------------------------------------- */

/* Normalise v into out[dim]; HK_E_RANGE on NaN/Inf/zero. */
hk_status hk__g_normalise(const float *v, uint32_t dim, float *out,
                           const char *what)
{
	if (!v)
		return hk__err(HK_E_INVALID, "%s is NULL", what);
	double ss = 0;
	for (uint32_t i = 0; i < dim; i++) {
		if (!isfinite(v[i]))
			return hk__err(HK_E_RANGE, "%s component %u is not finite", what,
			               i);
		ss += (double)v[i] * v[i];
	}
	if (!(ss > 0) || !isfinite(ss))
		return hk__err(HK_E_RANGE, "%s has zero (or overflowing) length",
		               what);
	double inv = 1.0 / sqrt(ss);
	for (uint32_t i = 0; i < dim; i++)
		out[i] = (float)(v[i] * inv);
	return HK_OK;
}

/* Symmetric int8 quantisation: x ~ q * scale, q in [-qmax, qmax]. */
static float quantise(const float *x, uint32_t dim, uint32_t dpad, int qmax,
                      int8_t *q, int32_t *sum)
{
	float amax = 0;
	for (uint32_t i = 0; i < dim; i++)
		amax = fmaxf(amax, fabsf(x[i]));
	float scale = amax > 0 ? amax / (float)qmax : 1.0f;
	float inv = 1.0f / scale;
	int32_t s = 0;
	for (uint32_t i = 0; i < dim; i++) {
		long v = lrintf(x[i] * inv);
		if (v > qmax)
			v = qmax;
		if (v < -qmax)
			v = -qmax;
		q[i] = (int8_t)v;
		s += (int32_t)v;
	}
	for (uint32_t i = dim; i < dpad; i++)
		q[i] = 0;
	if (sum)
		*sum = s;
	return scale;
}

/* Query in offset-128 u8 form for the int8 kernels, in the range the tier's
 * kernels accept (7 bits on avx2, hk_simd.h). */
float hk__g_quantise_query(const hk__kernel_table *K, const float *x, uint32_t dim,
                            uint32_t dpad, uint8_t *qu)
{
	int8_t *q = (int8_t *)qu;
	float scale = quantise(x, dim, dpad, hk__i8_qmax(K), q, NULL);
	for (uint32_t i = 0; i < dpad; i++)
		qu[i] = (uint8_t)((int)q[i] + 128);
	return scale;
}

/* ---------------------------------------------------------------- */
/* storage                                                           */
/* ---------------------------------------------------------------- */

hk_status hk__g_arrays_alloc(const hk_gallery *g, size_t cap, arrays *a)
{
	memset(a, 0, sizeof *a);
	size_t row_m = g->exact == HK_EXACT_FP32 ? (size_t)g->d32 * 4 : 0;
	size_t row_8 = g->scan == HK_SCAN_INT8 ? g->d8 : 0;
	size_t row_16 = g->scan == HK_SCAN_FP16 ? (size_t)g->d16 * 2 : 0;
	size_t row_h = g->exact == HK_EXACT_FP16 ? (size_t)g->d16 * 2 : 0;
	/* per slot: master, s8, s16, then rsum, rscale, tid, subj, m16 (each
	 * section starts 64-byte aligned) */
	size_t per[8] = {row_m, row_8, row_16, 4, 4, 8, 4, row_h};
	size_t off[8], total = 0;
	for (int i = 0; i < 8; i++) {
		size_t b;
		if (hk__mul_size(cap, per[i], &b))
			return hk__err(HK_E_OVERFLOW, "gallery: capacity overflow");
		off[i] = total;
		total += round_up(b, 64);
		if (total < off[i])
			return hk__err(HK_E_OVERFLOW, "gallery: capacity overflow");
	}
	int mode = g->huge == HK_HUGE_OFF ? 1 : g->huge == HK_HUGE_THP ? 2 : 0;
	char *base = hk__mem_alloc(total, mode, &a->kind);
	if (!base)
		return hk__err(HK_E_NOMEM, "gallery: cannot map %zu bytes", total);
	a->base = base;
	a->bytes = total;
	a->cap = cap;
	a->master = row_m ? (float *)(base + off[0]) : NULL;
	a->m16 = row_h ? (uint16_t *)(base + off[7]) : NULL;
	a->s8 = row_8 ? (int8_t *)(base + off[1]) : NULL;
	a->s16 = row_16 ? (uint16_t *)(base + off[2]) : NULL;
	a->rsum = (int32_t *)(base + off[3]);
	a->rscale = (float *)(base + off[4]);
	a->tids = (hk_template_id *)(base + off[5]);
	a->subj = (uint32_t *)(base + off[6]);
	return HK_OK;
}

void hk__g_arrays_adopt(hk_gallery *g, const arrays *a)
{
	g->a = *a;
}

/* Copy slot src of g into slot dst of a. */
void hk__g_copy_slot(const hk_gallery *g, arrays *a, size_t dst, size_t src)
{
	if (a->master)
		memcpy(a->master + dst * g->d32, g->a.master + src * g->d32,
		       (size_t)g->d32 * 4);
	if (a->m16)
		memcpy(a->m16 + dst * g->d16, g->a.m16 + src * g->d16,
		       (size_t)g->d16 * 2);
	if (a->s8)
		memcpy(a->s8 + dst * g->d8, g->a.s8 + src * g->d8, g->d8);
	if (a->s16)
		memcpy(a->s16 + dst * g->d16, g->a.s16 + src * g->d16,
		       (size_t)g->d16 * 2);
	a->rsum[dst] = g->a.rsum[src];
	a->rscale[dst] = g->a.rscale[src];
	a->tids[dst] = g->a.tids[src];
	a->subj[dst] = g->a.subj[src];
}

/*
 * Each shard thread first-touches (zeroes) its share of the new mapping so
 * that, on a NUMA machine, the pages of the rows it scans are local to it.
 */
typedef struct touch_job {
	arrays *a;
} touch_job;

static void touch_shard(void *arg, unsigned shard, unsigned nshards)
{
	touch_job *j = arg;
	size_t lo = j->a->bytes / nshards * shard;
	size_t hi = shard + 1 == nshards ? j->a->bytes : j->a->bytes / nshards * (shard + 1);
	lo &= ~(size_t)4095;
	hi = shard + 1 == nshards ? hi : (hi & ~(size_t)4095);
	if (hi > lo)
		memset((char *)j->a->base + lo, 0, hi - lo);
}

void hk__g_first_touch(hk_gallery *g, arrays *a)
{
	touch_job j = {a};
	if (!g->pool || hk__pool_try_run(g->pool, touch_shard, &j) != 0)
		touch_shard(&j, 0, 1);
}

void hk__g_arrays_release(hk_gallery *g)
{
	if (!g->a.base)
		return;
	hk__wipe(g->a.base, g->a.bytes); /* templates are biometric data */
	hk__mem_free(g->a.base, g->a.bytes);
	g->a.base = NULL;
	g->a.master = NULL;
	g->a.m16 = NULL;
}

/* ---------------------------------------------------------------- */
/* lifecycle                                                         */
/* ---------------------------------------------------------------- */

/* The kernel choice, reported once per process through the log callback
 * (simd/ is a leaf and does not log). */
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static void kernels_report(void)
{
	const hk__kernel_table *k = hk__kernels();
	if (hk__kernels_status() != 0)
		hk__log(HK_LOG_WARN,
		        "HERKEN_MAX_ISA=%s is not one of scalar|neon|avx2|avxvnni|"
		        "avx512|avx512vnni|amx|i8mm; ignored",
		        getenv("HERKEN_MAX_ISA"));
	hk__log(HK_LOG_INFO, "kernels: %s (cpu supports up to %s)", k->name,
	        hk_isa_name(hk__cpu_detect()));
}

hk_status hk_gallery_create(const hk_gallery_params *p, hk_gallery **out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "gallery_create: out is NULL");
	*out = NULL;
	if (!p)
		return hk__err(HK_E_INVALID, "gallery_create: params is NULL");
	if (p->dim == 0 || p->dim > DIM_MAX)
		return hk__err(HK_E_INVALID, "gallery_create: dim %u not in 1..%u",
		               p->dim, DIM_MAX);
	uint32_t scan = p->scan_type ? p->scan_type : HK_SCAN_INT8;
	if (scan > HK_SCAN_FP32)
		return hk__err(HK_E_INVALID, "gallery_create: bad scan_type %u",
		               p->scan_type);
	uint32_t exact = p->exact_type ? p->exact_type : HK_EXACT_FP32;
	if (exact > HK_EXACT_FILE)
		return hk__err(HK_E_INVALID, "gallery_create: bad exact_type %u",
		               p->exact_type);
	if (scan == HK_SCAN_FP32 && exact != HK_EXACT_FP32)
		return hk__err(HK_E_INVALID, "gallery_create: scan_type FP32 scans "
		               "the exact copy, so exact_type must be FP32");
	if (exact == HK_EXACT_FILE && sodium_init() < 0)
		return hk__err(HK_E_CRYPTO, "gallery_create: libsodium init failed");
	if (p->huge_pages > HK_HUGE_THP)
		return hk__err(HK_E_INVALID, "gallery_create: bad huge_pages %u",
		               p->huge_pages);
	hk_gallery *g = calloc(1, sizeof *g);
	if (!g)
		return hk__err(HK_E_NOMEM, "gallery_create: out of memory");
	g->dim = p->dim;
	g->d8 = (uint32_t)round_up(p->dim, HK_SIMD_PAD_I8);
	g->d16 = (uint32_t)round_up(p->dim, HK_SIMD_PAD_F16);
	g->d32 = (uint32_t)round_up(p->dim, HK_SIMD_PAD_F32);
	g->scan = scan;
	g->exact = exact;
	hk__g_xf_init(&g->xf);
	if (exact == HK_EXACT_FILE) {
		const char *dir = p->exact_dir ? p->exact_dir : getenv("TMPDIR");
		g->xdir = strdup(dir && *dir ? dir : "/var/tmp");
		if (!g->xdir) {
			free(g);
			return hk__err(HK_E_NOMEM, "gallery_create: out of memory");
		}
	}
	g->rerank = p->rerank ? p->rerank : 64;
	g->huge = p->huge_pages;
	g->next_id = 1;
	pthread_once(&kernels_once, kernels_report);
	g->K = hk__kernels();
	pthread_rwlock_init(&g->lock, NULL);
	unsigned nt = p->threads ? p->threads : hk__ncores();
	if (nt > MAX_SHARDS)
		nt = MAX_SHARDS;
	g->pool = hk__pool_create(nt);
	hk_status st = g->pool ? HK_OK : HK_E_BACKEND;
	if (!st)
		st = hash_rebuild(g, 16);
	if (!st && p->capacity > 64) {
		/* room for a subject per template of the hint: address space only
		 * until used, and no copy of the table while it fills (at 10
		 * million subjects the doubling copy added 268 MB to the peak) */
		g->subs = malloc((size_t)p->capacity * sizeof *g->subs);
		g->capsubs = p->capacity;
		st = g->subs ? HK_OK : hk__err(HK_E_NOMEM, "gallery_create: out of memory");
	}
	if (!st)
		st = hk__g_grow(g, p->capacity ? p->capacity : 1024);
	if (st) {
		hk_gallery_destroy(g);
		return st;
	}
	*out = g;
	return HK_OK;
}

void hk_gallery_destroy(hk_gallery *g)
{
	if (!g)
		return;
	hk__pool_destroy(g->pool);
	hk__g_arrays_release(g);
	hk__g_xf_close(g, &g->xf);
	free(g->xdir);
	for (uint32_t i = 0; i < g->nsubs; i++)
		subject_free(&g->subs[i]);
	free(g->subs);
	free(g->hash);
	pthread_rwlock_destroy(&g->lock);
	free(g);
}

/* ---------------------------------------------------------------- */
/* writers                                                           */
/* ---------------------------------------------------------------- */

/* x: normalised, d32 floats, zero padded. FILE: hk__g_xf_reserve() first. */
static void write_slot(hk_gallery *g, size_t slot, const float *x)
{
	if (g->a.master)
		memcpy(g->a.master + slot * g->d32, x, (size_t)g->d32 * 4);
	if (g->a.m16) {
		uint16_t *h = g->a.m16 + slot * g->d16;
		for (uint32_t i = 0; i < g->d16; i++)
			h[i] = i < g->dim ? hk__f32_to_f16(x[i]) : 0;
	}
	if (g->exact == HK_EXACT_FILE)
		hk__g_xf_append(g, &g->xf, x);
	if (g->scan == HK_SCAN_INT8) {
		g->a.rscale[slot] =
		    quantise(x, g->dim, g->d8, 127, g->a.s8 + slot * g->d8, &g->a.rsum[slot]);
	} else {
		g->a.rscale[slot] = 1.0f;
		g->a.rsum[slot] = 0;
	}
	if (g->scan == HK_SCAN_FP16) {
		uint16_t *h = g->a.s16 + slot * g->d16;
		for (uint32_t i = 0; i < g->d16; i++)
			h[i] = i < g->dim ? hk__f32_to_f16(x[i]) : 0;
	}
}

hk_status hk_gallery_add(hk_gallery *g, const char *subject,
                         const float *embedding, hk_template_id *out_id)
{
	if (!g)
		return hk__err(HK_E_INVALID, "gallery_add: gallery is NULL");
	size_t len;
	hk_status st = hk__g_check_subject(subject, &len);
	if (st)
		return st;
	float x[DIM_MAX];
	st = hk__g_normalise(embedding, g->dim, x, "embedding");
	if (st)
		return st;
	memset(x + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
	pthread_rwlock_wrlock(&g->lock);
	if (g->n == g->a.cap && (st = hk__g_grow(g, g->n + 1)))
		goto out;
	if (g->exact == HK_EXACT_FILE && (st = hk__g_xf_reserve(g)))
		goto out;
	uint32_t si = 0;
	if ((st = subject_get_or_add(g, subject, len, &si)))
		goto out;
	hk__subj *s = &g->subs[si];
	hk_template_id id = g->next_id;
	if ((st = subject_push(s, id)))
		goto out;
	g->next_id++;
	size_t slot = g->n;
	write_slot(g, slot, x);
	g->a.tids[slot] = id;
	g->a.subj[slot] = si;
	if (s->live++ == 0)
		g->live_subs++;
	if (s->live > g->tps_max)
		g->tps_max = s->live;
	g->live++;
	g->n++;
	if (out_id)
		*out_id = id;
out:
	pthread_rwlock_unlock(&g->lock);
	hk__wipe(x, sizeof x);
	return st;
}

int64_t hk__g_slot_of(const hk_gallery *g, hk_template_id id)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->a.tids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < g->n && g->a.tids[lo] == id)
		return (int64_t)lo;
	return -1;
}

static void tombstone(hk_gallery *g, size_t slot)
{
	g->a.rscale[slot] = NAN;
	/* the bytes go now; compaction reclaims the slot */
	if (g->a.master)
		hk__wipe(g->a.master + slot * g->d32, (size_t)g->d32 * 4);
	if (g->a.m16)
		hk__wipe(g->a.m16 + slot * g->d16, (size_t)g->d16 * 2);
	if (g->exact == HK_EXACT_FILE)
		hk__g_xf_wipe(g, &g->xf, slot);
	if (g->a.s8)
		hk__wipe(g->a.s8 + slot * g->d8, g->d8);
	if (g->a.s16)
		hk__wipe(g->a.s16 + slot * g->d16, (size_t)g->d16 * 2);
	g->a.rsum[slot] = 0;
	hk__subj *s = &g->subs[g->a.subj[slot]];
	if (--s->live == 0)
		g->live_subs--;
	g->live--;
}

hk_status hk_gallery_remove(hk_gallery *g, hk_template_id id)
{
	if (!g)
		return hk__err(HK_E_INVALID, "gallery_remove: gallery is NULL");
	hk_status st = HK_OK;
	pthread_rwlock_wrlock(&g->lock);
	int64_t slot = hk__g_slot_of(g, id);
	if (slot < 0 || !hk__g_slot_live(g, (size_t)slot))
		st = hk__err(HK_E_NOT_FOUND, "gallery_remove: no live template %lld",
		             (long long)id);
	else
		tombstone(g, (size_t)slot);
	pthread_rwlock_unlock(&g->lock);
	return st;
}

hk_status hk_gallery_remove_subject(hk_gallery *g, const char *subject,
                                    size_t *n_removed)
{
	if (n_removed)
		*n_removed = 0;
	if (!g)
		return hk__err(HK_E_INVALID, "gallery_remove_subject: gallery is NULL");
	size_t len;
	hk_status st = hk__g_check_subject(subject, &len);
	if (st)
		return st;
	size_t removed = 0;
	pthread_rwlock_wrlock(&g->lock);
	int64_t si = hk__g_subject_find(g, subject, len);
	if (si >= 0) {
		hk__subj *s = &g->subs[si];
		const hk_template_id *t = subj_tids(s);
		for (uint32_t i = 0; i < s->ntids; i++) {
			int64_t slot = hk__g_slot_of(g, t[i]);
			if (slot >= 0 && hk__g_slot_live(g, (size_t)slot)) {
				tombstone(g, (size_t)slot);
				removed++;
			}
		}
	}
	pthread_rwlock_unlock(&g->lock);
	if (n_removed)
		*n_removed = removed;
	if (!removed)
		return hk__err(HK_E_NOT_FOUND,
		               "gallery_remove_subject: subject has no live template");
	return HK_OK;
}

hk_status hk_gallery_compact(hk_gallery *g)
{
	if (!g)
		return hk__err(HK_E_INVALID, "gallery_compact: gallery is NULL");
	hk_status st = HK_OK;
	pthread_rwlock_wrlock(&g->lock);
	size_t cap = g->live + g->live / 16; /* slots are resident: no doubling */
	if (cap < 1024)
		cap = 1024;
	arrays a;
	if ((st = hk__g_arrays_alloc(g, cap, &a)))
		goto out;
	/* FILE: live rows go to a new file under a new key, first, while a
	 * failure can still leave the gallery as it was */
	hk__xfile nf;
	hk__g_xf_init(&nf);
	if (g->exact == HK_EXACT_FILE) {
		float row[DIM_MAX] __attribute__((aligned(64)));
		st = hk__g_xf_open(g, &nf);
		for (size_t i = 0; i < g->n && !st; i++) {
			if (!hk__g_slot_live(g, i))
				continue;
			if (nf.npend == XF_PEND && (st = hk__g_xf_flush(g, &nf)))
				break;
			if ((st = hk__g_xf_read(g, &g->xf, i, row)))
				break;
			hk__g_xf_append(g, &nf, row);
		}
		hk__wipe(row, sizeof row);
		if (st) {
			hk__g_xf_close(g, &nf);
			hk__mem_free(a.base, a.bytes);
			goto out;
		}
	}
	hk__g_first_touch(g, &a);
	/* new subject table: only subjects with live templates */
	uint32_t *remap = malloc((size_t)(g->nsubs ? g->nsubs : 1) * sizeof *remap);
	hk__subj *ns = calloc(g->live_subs ? g->live_subs : 1, sizeof *ns);
	if (!remap || !ns) {
		free(remap);
		free(ns);
		hk__g_xf_close(g, &nf);
		hk__mem_free(a.base, a.bytes);
		st = hk__err(HK_E_NOMEM, "gallery_compact: out of memory");
		goto out;
	}
	uint32_t nn = 0, tps = 0;
	for (uint32_t i = 0; i < g->nsubs; i++) {
		hk__subj *s = &g->subs[i];
		if (s->live == 0) {
			remap[i] = UINT32_MAX;
			subject_free(s);
			continue;
		}
		/* keep only live template ids */
		hk_template_id *t = subj_tids(s);
		uint32_t k = 0;
		for (uint32_t j = 0; j < s->ntids; j++) {
			int64_t slot = hk__g_slot_of(g, t[j]);
			if (slot >= 0 && hk__g_slot_live(g, (size_t)slot))
				t[k++] = t[j];
		}
		hk__wipe(t + k, (size_t)(s->ntids - k) * sizeof *t);
		s->ntids = k;
		if (s->live > tps)
			tps = s->live;
		remap[i] = nn;
		ns[nn++] = *s;
	}
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (!hk__g_slot_live(g, i))
			continue;
		hk__g_copy_slot(g, &a, k, i);
		a.subj[k] = remap[g->a.subj[i]];
		k++;
	}
	free(remap);
	hk__g_arrays_release(g);
	hk__g_arrays_adopt(g, &a);
	if (g->exact == HK_EXACT_FILE) {
		hk__g_xf_close(g, &g->xf);
		g->xf = nf;
	}
	g->n = k;
	hk__wipe(g->subs, (size_t)g->nsubs * sizeof *g->subs); /* inline names */
	free(g->subs);
	g->subs = ns;
	g->nsubs = g->capsubs = nn;
	if (g->capsubs == 0) {
		g->capsubs = 1;
	}
	g->live_subs = nn;
	g->tps_max = tps;
	st = hash_rebuild(g, nn);
out:
	pthread_rwlock_unlock(&g->lock);
	return st;
}
