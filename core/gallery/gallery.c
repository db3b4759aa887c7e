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
#include "herken.h"
#include "internal.h"
#include "pool.h"
#include "hk_simd.h"
#include "topk.h"

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

#define DIM_MAX 4096u
#define BLOCK_ROWS 1024u   /* rows per scan block: 192 KiB of int8 at d=192 (L2) */
#define TILE_Q 64u         /* queries per batch tile                      */
#define STACK_CANDS 1024u  /* single-query scratch lives on the stack     */
#define MAX_SHARDS 64u
#define XF_PEND 256u       /* file rows buffered before one pwrite        */
#define SUBJ_INLINE 16u    /* names shorter than this live in hk__subj    */

/*
 * One subject. Most subjects have a short id and one template, so both live
 * inside the struct (names < SUBJ_INLINE bytes; the id list while captids
 * is 0): at 10 million one-template subjects, separate allocations cost
 * ~80 bytes per subject of malloc chunks. Use subj_name()/subj_tids().
 */
typedef struct hk__subj {
	union {
		char *p;
		char in[SUBJ_INLINE];
	} name;
	union {
		hk_template_id *many; /* captids > 0 */
		hk_template_id one;   /* captids == 0, ntids <= 1 */
	} t; /* every template not yet compacted away */
	uint32_t len;
	uint32_t live;
	uint32_t ntids, captids;
} hk__subj;

static const char *subj_name(const hk__subj *s)
{
	return s->len < SUBJ_INLINE ? s->name.in : s->name.p;
}

static hk_template_id *subj_tids(const hk__subj *s)
{
	return s->captids ? s->t.many : (hk_template_id *)&s->t.one;
}

/* The exact copy in a file (HK_EXACT_FILE); see the layout note above. */
typedef struct hk__xfile {
	int fd;
	size_t nfile;       /* rows [0, nfile) are in the file            */
	unsigned char *pend; /* rows [nfile, nfile + npend), encrypted     */
	size_t npend;
	unsigned char key[crypto_stream_chacha20_ietf_KEYBYTES];
} hk__xfile;

struct hk_gallery {
	uint32_t dim, d8, d16, d32;
	uint32_t scan;
	uint32_t exact;
	uint32_t rerank;
	uint32_t huge;
	size_t n, cap;
	float *master;
	uint16_t *m16;
	hk__xfile xf;
	char *xdir;
	int8_t *s8;
	int32_t *rsum;
	float *rscale;
	uint16_t *s16;
	hk_template_id *tids;
	uint32_t *subj;
	int memkind;
	void *base; /* the one mapping behind every per-slot array */
	size_t bytes;
	size_t live;
	uint32_t tps_max; /* upper bound of live templates of one hk__subj */
	hk_template_id next_id;
	hk__subj *subs;
	uint32_t nsubs, capsubs, live_subs;
	uint32_t *hash; /* subject index + 1, open addressing */
	uint32_t hcap;
	pthread_rwlock_t lock;
	hk__pool *pool;
	const hk__kernel_table *K;
};

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

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

static int64_t subject_find(const hk_gallery *g, const char *name, size_t len)
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
	int64_t f = subject_find(g, name, len);
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

static hk_status check_subject(const char *subject, size_t *len)
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
static hk_status normalise(const float *v, uint32_t dim, float *out,
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
static float quantise_query(const hk__kernel_table *K, const float *x, uint32_t dim,
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

typedef struct arrays {
	size_t cap;
	int kind;
	void *base; /* one mapping holds every per-slot array */
	size_t bytes;
	float *master;
	uint16_t *m16;
	int8_t *s8;
	int32_t *rsum;
	float *rscale;
	uint16_t *s16;
	hk_template_id *tids;
	uint32_t *subj;
} arrays;

static hk_status arrays_alloc(const hk_gallery *g, size_t cap, arrays *a)
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

static void arrays_adopt(hk_gallery *g, const arrays *a)
{
	g->cap = a->cap;
	g->memkind = a->kind;
	g->base = a->base;
	g->bytes = a->bytes;
	g->master = a->master;
	g->m16 = a->m16;
	g->s8 = a->s8;
	g->s16 = a->s16;
	g->rsum = a->rsum;
	g->rscale = a->rscale;
	g->tids = a->tids;
	g->subj = a->subj;
}

/* Copy slot src of g into slot dst of a. */
static void copy_slot(const hk_gallery *g, arrays *a, size_t dst, size_t src)
{
	if (a->master)
		memcpy(a->master + dst * g->d32, g->master + src * g->d32,
		       (size_t)g->d32 * 4);
	if (a->m16)
		memcpy(a->m16 + dst * g->d16, g->m16 + src * g->d16,
		       (size_t)g->d16 * 2);
	if (a->s8)
		memcpy(a->s8 + dst * g->d8, g->s8 + src * g->d8, g->d8);
	if (a->s16)
		memcpy(a->s16 + dst * g->d16, g->s16 + src * g->d16,
		       (size_t)g->d16 * 2);
	a->rsum[dst] = g->rsum[src];
	a->rscale[dst] = g->rscale[src];
	a->tids[dst] = g->tids[src];
	a->subj[dst] = g->subj[src];
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

static void first_touch(hk_gallery *g, arrays *a)
{
	touch_job j = {a};
	if (!g->pool || hk__pool_try_run(g->pool, touch_shard, &j) != 0)
		touch_shard(&j, 0, 1);
}

static void arrays_release(hk_gallery *g)
{
	if (!g->base)
		return;
	hk__wipe(g->base, g->bytes); /* templates are biometric data */
	hk__mem_free(g->base, g->bytes);
	g->base = NULL;
	g->master = NULL;
	g->m16 = NULL;
}

/* ---------------------------------------------------------------- */
/* exact copy in a file (HK_EXACT_FILE)                              */
/* ---------------------------------------------------------------- */

static size_t xf_row(const hk_gallery *g) { return (size_t)g->d32 * 4; }

static void xf_init(hk__xfile *f)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

static void xf_close(const hk_gallery *g, hk__xfile *f)
{
	if (f->pend) {
		hk__wipe(f->pend, (size_t)XF_PEND * xf_row(g));
		free(f->pend);
	}
	if (f->fd >= 0)
		close(f->fd); /* unlinked: the blocks go back to the file system */
	hk__wipe(f->key, sizeof f->key); /* what they hold is unreadable now */
	xf_init(f);
}

static hk_status xf_open(const hk_gallery *g, hk__xfile *f)
{
	xf_init(f);
	const char *dir = g->xdir;
	f->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
	                  errno == EINVAL)) {
		/* no O_TMPFILE on this file system: create and unlink at once */
		char path[4096];
		if (snprintf(path, sizeof path, "%s/herken-exact-XXXXXX", dir) >=
		    (int)sizeof path)
			return hk__err(HK_E_INVALID, "gallery: exact_dir too long");
		f->fd = mkostemp(path, O_CLOEXEC);
		if (f->fd >= 0)
			unlink(path);
	}
	if (f->fd < 0)
		return hk__err(HK_E_IO, "gallery: cannot create the exact copy in %s (%s)",
		               dir, strerror(errno));
	f->pend = malloc((size_t)XF_PEND * xf_row(g));
	if (!f->pend) {
		xf_close(g, f);
		return hk__err(HK_E_NOMEM, "gallery: out of memory (write buffer)");
	}
	crypto_stream_chacha20_ietf_keygen(f->key);
	return HK_OK;
}

/* XOR row src (encrypted or plain) of slot with the key stream into dst. */
static void xf_crypt(const hk__xfile *f, size_t slot, size_t bytes,
                     const void *src, void *dst)
{
	unsigned char nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
	for (int i = 0; i < 8; i++)
		nonce[i] = (unsigned char)((uint64_t)slot >> (8 * i));
	crypto_stream_chacha20_ietf_xor_ic(dst, src, bytes, nonce, 0, f->key);
}

/* Write the buffered rows to the file. */
static hk_status xf_flush(const hk_gallery *g, hk__xfile *f)
{
	size_t row = xf_row(g), bytes = f->npend * row, done = 0;
	off_t off = (off_t)(f->nfile * row);
	while (done < bytes) {
		ssize_t w = pwrite(f->fd, f->pend + done, bytes - done, off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return hk__err(HK_E_IO, "gallery: writing the exact copy: %s",
			               w < 0 ? strerror(errno) : "no progress");
		done += (size_t)w;
	}
	hk__wipe(f->pend, bytes);
	f->nfile += f->npend;
	f->npend = 0;
	return HK_OK;
}

/* Make room for one more row (flushes a full buffer). */
static hk_status xf_reserve(hk_gallery *g)
{
	return g->xf.npend == XF_PEND ? xf_flush(g, &g->xf) : HK_OK;
}

/* Append plain row x (d32 floats) as slot nfile + npend; needs room. */
static void xf_append(const hk_gallery *g, hk__xfile *f, const float *x)
{
	size_t row = xf_row(g);
	xf_crypt(f, f->nfile + f->npend, row, x, f->pend + f->npend * row);
	f->npend++;
}

/* Decrypt the row of slot into out[d32]. */
static hk_status xf_read(const hk_gallery *g, const hk__xfile *f, size_t slot,
                         float *out)
{
	size_t row = xf_row(g);
	if (slot >= f->nfile) {
		xf_crypt(f, slot, row, f->pend + (slot - f->nfile) * row, out);
		return HK_OK;
	}
	ssize_t r;
	do
		r = pread(f->fd, out, row, (off_t)(slot * row));
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)row)
		return hk__err(HK_E_IO, "gallery: reading the exact copy: %s",
		               r < 0 ? strerror(errno) : "short read");
	xf_crypt(f, slot, row, out, out); /* in place */
	return HK_OK;
}

/* Overwrite the stored row of slot with zeros (best effort on the file:
 * the row is ciphertext under a key that compaction and destroy wipe). */
static void xf_wipe(const hk_gallery *g, hk__xfile *f, size_t slot)
{
	size_t row = xf_row(g);
	if (slot >= f->nfile) {
		hk__wipe(f->pend + (slot - f->nfile) * row, row);
		return;
	}
	static const unsigned char zero[4 * DIM_MAX];
	ssize_t w;
	do
		w = pwrite(f->fd, zero, row, (off_t)(slot * row));
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)row)
		hk__log(HK_LOG_WARN, "gallery: could not zero a removed row in the "
		        "exact copy (%s); it stays encrypted until compaction",
		        w < 0 ? strerror(errno) : "short write");
}

/* ---------------------------------------------------------------- */
/* the exact copy, whichever kind                                    */
/* ---------------------------------------------------------------- */

/*
 * Exact score of slot against q (normalised, d32 floats, zero padded);
 * tmp[d32] is scratch for a decrypted file row, wiped by the caller. A
 * failed read (FILE) sets *st and scores NaN.
 */
static float exact_dot(const hk_gallery *g, const float *q, size_t slot,
                       float *tmp, hk_status *st)
{
	if (g->exact == HK_EXACT_FP16)
		return g->K->dot_f32_f16(q, g->m16 + slot * g->d16, g->dim);
	if (g->exact == HK_EXACT_FILE) {
		hk_status s = xf_read(g, &g->xf, slot, tmp);
		if (s) {
			*st = s;
			return NAN;
		}
		return g->K->dot_f32(q, tmp, g->d32);
	}
	return g->K->dot_f32(q, g->master + slot * g->d32, g->d32);
}

/* The exact copy of slot as fp32 into out[d32]. */
static hk_status exact_get(const hk_gallery *g, size_t slot, float *out)
{
	if (g->exact == HK_EXACT_FP16) {
		const uint16_t *h = g->m16 + slot * g->d16;
		for (uint32_t i = 0; i < g->d32; i++)
			out[i] = i < g->dim ? hk__f16_to_f32(h[i]) : 0.0f;
	} else if (g->exact == HK_EXACT_FILE) {
		return xf_read(g, &g->xf, slot, out);
	} else {
		memcpy(out, g->master + slot * g->d32, (size_t)g->d32 * 4);
	}
	return HK_OK;
}

static hk_status grow(hk_gallery *g, size_t want)
{
	/* the first call gets the capacity hint: exactly that many slots, as
	 * every slot of the mapping is made resident (first touch) */
	size_t cap = g->cap ? g->cap : want;
	while (cap < want) {
		if (cap > ((size_t)1 << 40))
			return hk__err(HK_E_LIMIT, "gallery: too many templates");
		cap *= 2;
	}
	if (cap > UINT32_MAX)
		return hk__err(HK_E_LIMIT, "gallery: more than 2^32 templates");
	arrays a;
	hk_status st = arrays_alloc(g, cap, &a);
	if (st)
		return st;
	if (g->exact == HK_EXACT_FILE && g->xf.fd < 0 && (st = xf_open(g, &g->xf))) {
		hk__mem_free(a.base, a.bytes);
		return st;
	}
	first_touch(g, &a);
	for (size_t i = 0; i < g->n; i++)
		copy_slot(g, &a, i, i);
	arrays_release(g);
	arrays_adopt(g, &a);
	return HK_OK;
}

/* ---------------------------------------------------------------- */
/* lifecycle                                                         */
/* ---------------------------------------------------------------- */

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
	xf_init(&g->xf);
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
	g->K = hk__kernels();
	pthread_rwlock_init(&g->lock, NULL);
	unsigned nt = p->threads ? p->threads : hk__ncores();
	if (nt > MAX_SHARDS)
		nt = MAX_SHARDS;
	g->pool = hk__pool_create(nt);
	hk_status st = g->pool ? HK_OK : HK_E_BACKEND;
	if (!st)
		st = hash_rebuild(g, 16);
	if (!st)
		st = grow(g, p->capacity ? p->capacity : 1024);
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
	arrays_release(g);
	xf_close(g, &g->xf);
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

/* x: normalised, d32 floats, zero padded. FILE: xf_reserve() first. */
static void write_slot(hk_gallery *g, size_t slot, const float *x)
{
	if (g->master)
		memcpy(g->master + slot * g->d32, x, (size_t)g->d32 * 4);
	if (g->m16) {
		uint16_t *h = g->m16 + slot * g->d16;
		for (uint32_t i = 0; i < g->d16; i++)
			h[i] = i < g->dim ? hk__f32_to_f16(x[i]) : 0;
	}
	if (g->exact == HK_EXACT_FILE)
		xf_append(g, &g->xf, x);
	if (g->scan == HK_SCAN_INT8) {
		g->rscale[slot] =
		    quantise(x, g->dim, g->d8, 127, g->s8 + slot * g->d8, &g->rsum[slot]);
	} else {
		g->rscale[slot] = 1.0f;
		g->rsum[slot] = 0;
	}
	if (g->scan == HK_SCAN_FP16) {
		uint16_t *h = g->s16 + slot * g->d16;
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
	hk_status st = check_subject(subject, &len);
	if (st)
		return st;
	float x[DIM_MAX];
	st = normalise(embedding, g->dim, x, "embedding");
	if (st)
		return st;
	memset(x + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
	pthread_rwlock_wrlock(&g->lock);
	if (g->n == g->cap && (st = grow(g, g->n + 1)))
		goto out;
	if (g->exact == HK_EXACT_FILE && (st = xf_reserve(g)))
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
	g->tids[slot] = id;
	g->subj[slot] = si;
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

static int64_t slot_of(const hk_gallery *g, hk_template_id id)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->tids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < g->n && g->tids[lo] == id)
		return (int64_t)lo;
	return -1;
}

static int slot_live(const hk_gallery *g, size_t slot)
{
	return !isnan(g->rscale[slot]);
}

static void tombstone(hk_gallery *g, size_t slot)
{
	g->rscale[slot] = NAN;
	/* the bytes go now; compaction reclaims the slot */
	if (g->master)
		hk__wipe(g->master + slot * g->d32, (size_t)g->d32 * 4);
	if (g->m16)
		hk__wipe(g->m16 + slot * g->d16, (size_t)g->d16 * 2);
	if (g->exact == HK_EXACT_FILE)
		xf_wipe(g, &g->xf, slot);
	if (g->s8)
		hk__wipe(g->s8 + slot * g->d8, g->d8);
	if (g->s16)
		hk__wipe(g->s16 + slot * g->d16, (size_t)g->d16 * 2);
	g->rsum[slot] = 0;
	hk__subj *s = &g->subs[g->subj[slot]];
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
	int64_t slot = slot_of(g, id);
	if (slot < 0 || !slot_live(g, (size_t)slot))
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
	hk_status st = check_subject(subject, &len);
	if (st)
		return st;
	size_t removed = 0;
	pthread_rwlock_wrlock(&g->lock);
	int64_t si = subject_find(g, subject, len);
	if (si >= 0) {
		hk__subj *s = &g->subs[si];
		const hk_template_id *t = subj_tids(s);
		for (uint32_t i = 0; i < s->ntids; i++) {
			int64_t slot = slot_of(g, t[i]);
			if (slot >= 0 && slot_live(g, (size_t)slot)) {
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
	if ((st = arrays_alloc(g, cap, &a)))
		goto out;
	/* FILE: live rows go to a new file under a new key, first, while a
	 * failure can still leave the gallery as it was */
	hk__xfile nf;
	xf_init(&nf);
	if (g->exact == HK_EXACT_FILE) {
		float row[DIM_MAX] __attribute__((aligned(64)));
		st = xf_open(g, &nf);
		for (size_t i = 0; i < g->n && !st; i++) {
			if (!slot_live(g, i))
				continue;
			if (nf.npend == XF_PEND && (st = xf_flush(g, &nf)))
				break;
			if ((st = xf_read(g, &g->xf, i, row)))
				break;
			xf_append(g, &nf, row);
		}
		hk__wipe(row, sizeof row);
		if (st) {
			xf_close(g, &nf);
			hk__mem_free(a.base, a.bytes);
			goto out;
		}
	}
	first_touch(g, &a);
	/* new subject table: only subjects with live templates */
	uint32_t *remap = malloc((size_t)(g->nsubs ? g->nsubs : 1) * sizeof *remap);
	hk__subj *ns = calloc(g->live_subs ? g->live_subs : 1, sizeof *ns);
	if (!remap || !ns) {
		free(remap);
		free(ns);
		xf_close(g, &nf);
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
			int64_t slot = slot_of(g, t[j]);
			if (slot >= 0 && slot_live(g, (size_t)slot))
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
		if (!slot_live(g, i))
			continue;
		copy_slot(g, &a, k, i);
		a.subj[k] = remap[g->subj[i]];
		k++;
	}
	free(remap);
	arrays_release(g);
	arrays_adopt(g, &a);
	if (g->exact == HK_EXACT_FILE) {
		xf_close(g, &g->xf);
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

/* ---------------------------------------------------------------- */
/* readers                                                           */
/* ---------------------------------------------------------------- */

size_t hk_gallery_size(const hk_gallery *g) { return g ? g->live : 0; }
size_t hk_gallery_subject_count(const hk_gallery *g)
{
	return g ? g->live_subs : 0;
}
uint32_t hk_gallery_dim(const hk_gallery *g) { return g ? g->dim : 0; }

#define RDLOCK(g) pthread_rwlock_rdlock((pthread_rwlock_t *)&(g)->lock)
#define UNLOCK(g) pthread_rwlock_unlock((pthread_rwlock_t *)&(g)->lock)

hk_status hk_gallery_get_info(const hk_gallery *g, hk_gallery_info *info)
{
	if (!g || !info)
		return hk__err(HK_E_INVALID, "gallery_get_info: NULL argument");
	RDLOCK(g);
	memset(info, 0, sizeof *info);
	info->dim = g->dim;
	info->scan_type = g->scan;
	info->huge_pages = (uint32_t)g->memkind;
	info->threads = hk__pool_size(g->pool);
	info->live = g->live;
	info->slots = g->n;
	size_t row = g->scan == HK_SCAN_INT8   ? (size_t)g->d8 + 8
	             : g->scan == HK_SCAN_FP16 ? (size_t)g->d16 * 2 + 4
	                                       : (size_t)g->d32 * 4 + 4;
	info->scan_bytes = (uint64_t)g->n * row;
	info->exact_type = g->exact;
	info->master_bytes = (uint64_t)g->n * (g->exact == HK_EXACT_FP16
	                                           ? (size_t)g->d16 * 2
	                                           : (size_t)g->d32 * 4);
	/* malloc'd blocks counted with their usable size plus the chunk
	 * header; the slot arrays at capacity (first-touched when mapped) */
	uint64_t res = g->bytes + (uint64_t)g->nsubs * sizeof(hk__subj) +
	               (uint64_t)g->hcap * 4; /* subs: untouched tail not counted */
	for (uint32_t i = 0; i < g->nsubs; i++) {
		const hk__subj *s = &g->subs[i];
		if (s->len >= SUBJ_INLINE)
			res += malloc_usable_size(s->name.p) + 8;
		if (s->captids)
			res += malloc_usable_size(s->t.many) + 8;
	}
	info->exact_resident_bytes = info->master_bytes;
	if (g->exact == HK_EXACT_FILE) {
		res += (uint64_t)XF_PEND * xf_row(g);
		info->exact_resident_bytes = (uint64_t)XF_PEND * xf_row(g);
	}
	info->resident_bytes = res;
	UNLOCK(g);
	return HK_OK;
}

hk_status hk_gallery_subject_of(const hk_gallery *g, hk_template_id id,
                                char *buf, size_t len)
{
	if (!g || !buf)
		return hk__err(HK_E_INVALID, "gallery_subject_of: NULL argument");
	hk_status st = HK_OK;
	RDLOCK(g);
	int64_t slot = slot_of(g, id);
	if (slot < 0 || !slot_live(g, (size_t)slot)) {
		st = hk__err(HK_E_NOT_FOUND, "gallery_subject_of: no live template %lld",
		             (long long)id);
	} else {
		const hk__subj *s = &g->subs[g->subj[slot]];
		if (len < (size_t)s->len + 1)
			st = hk__err(HK_E_OVERFLOW,
			             "gallery_subject_of: buffer of %zu bytes, need %u", len,
			             s->len + 1);
		else
			memcpy(buf, subj_name(s), (size_t)s->len + 1);
	}
	UNLOCK(g);
	return st;
}

hk_status hk_gallery_get(const hk_gallery *g, hk_template_id id, float *out)
{
	if (!g || !out)
		return hk__err(HK_E_INVALID, "gallery_get: NULL argument");
	hk_status st = HK_OK;
	RDLOCK(g);
	int64_t slot = slot_of(g, id);
	if (slot < 0 || !slot_live(g, (size_t)slot))
		st = hk__err(HK_E_NOT_FOUND, "gallery_get: no live template %lld",
		             (long long)id);
	else {
		float row[DIM_MAX] __attribute__((aligned(64)));
		if (!(st = exact_get(g, (size_t)slot, row)))
			memcpy(out, row, (size_t)g->dim * 4);
		hk__wipe(row, (size_t)g->d32 * 4);
	}
	UNLOCK(g);
	return st;
}

hk_status hk_gallery_verify(const hk_gallery *g, const char *subject,
                            const float *query, float *score,
                            hk_template_id *best_id)
{
	if (!g || !score)
		return hk__err(HK_E_INVALID, "gallery_verify: NULL argument");
	size_t len;
	hk_status st = check_subject(subject, &len);
	if (st)
		return st;
	float q[DIM_MAX];
	if ((st = normalise(query, g->dim, q, "query")))
		return st;
	memset(q + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
	RDLOCK(g);
	int64_t si = subject_find(g, subject, len);
	float best = -INFINITY;
	hk_template_id bid = HK_NO_ID;
	float tmp[DIM_MAX] __attribute__((aligned(64)));
	if (si >= 0) {
		const hk__subj *s = &g->subs[si];
		const hk_template_id *t = subj_tids(s);
		for (uint32_t i = 0; i < s->ntids; i++) {
			int64_t slot = slot_of(g, t[i]);
			if (slot < 0 || !slot_live(g, (size_t)slot))
				continue;
			float v = exact_dot(g, q, (size_t)slot, tmp, &st);
			if (v > best || (v == best && t[i] < bid)) {
				best = v;
				bid = t[i];
			}
		}
	}
	UNLOCK(g);
	if (g->exact == HK_EXACT_FILE)
		hk__wipe(tmp, (size_t)g->d32 * 4);
	hk__wipe(q, (size_t)g->d32 * 4);
	if (st)
		return st;
	if (bid == HK_NO_ID)
		return hk__err(HK_E_NOT_FOUND,
		               "gallery_verify: subject has no live template");
	*score = best;
	if (best_id)
		*best_id = bid;
	return HK_OK;
}

/* ---------------------------------------------------------------- */
/* search                                                            */
/* ---------------------------------------------------------------- */

typedef struct search_job {
	const hk_gallery *g;
	size_t nq;           /* queries in this call                        */
	const float *qf;     /* nq x d32 normalised fp32 queries            */
	const uint8_t *qu;   /* nq x d8 offset-128 int8 queries (INT8 scan) */
	hk__cand *cands;     /* nshards x nq x kk                           */
	uint32_t *counts;    /* nshards x nq                                */
	uint32_t kk;
	unsigned nshards;
} search_job;

static void shard_range(size_t n, unsigned shard, unsigned nshards,
                        size_t *lo, size_t *hi)
{
	/* split on BLOCK_ROWS boundaries so the blocks of a shard are whole */
	size_t blocks = (n + BLOCK_ROWS - 1) / BLOCK_ROWS;
	*lo = blocks * shard / nshards * BLOCK_ROWS;
	*hi = blocks * (shard + 1) / nshards * BLOCK_ROWS;
	if (*lo > n)
		*lo = n;
	if (*hi > n)
		*hi = n;
}

static void scan_shard(void *arg, unsigned shard, unsigned nshards)
{
	search_job *j = arg;
	const hk_gallery *g = j->g;
	const hk__kernel_table *K = g->K;
	size_t lo, hi;
	shard_range(g->n, shard, nshards, &lo, &hi);
	if (nshards != j->nshards) /* ran inline as one shard */
		shard = 0;
	hk__heap heaps[TILE_Q];
	int32_t dots_i[TILE_Q * BLOCK_ROWS] __attribute__((aligned(64)));
	float dots_f[BLOCK_ROWS] __attribute__((aligned(64)));
	float tmp[BLOCK_ROWS] __attribute__((aligned(64)));

	for (size_t q0 = 0; q0 < j->nq; q0 += TILE_Q) {
		size_t nt = j->nq - q0 < TILE_Q ? j->nq - q0 : TILE_Q;
		for (size_t t = 0; t < nt; t++) {
			size_t qi = q0 + t;
			heaps[t].c = j->cands + ((size_t)shard * j->nq + qi) * j->kk;
			heaps[t].n = 0;
			heaps[t].cap = j->kk;
		}
		for (size_t b = lo; b < hi; b += BLOCK_ROWS) {
			size_t cnt = hi - b < BLOCK_ROWS ? hi - b : BLOCK_ROWS;
			if (g->scan == HK_SCAN_INT8) {
				const int8_t *rows = g->s8 + b * g->d8;
				if (nt == 1)
					K->scan_i8(j->qu + q0 * g->d8, rows, g->rsum + b, cnt,
					           g->d8, g->d8, dots_i);
				else
					K->tile_i8(j->qu + q0 * g->d8, nt, g->d8, rows,
					           g->rsum + b, cnt, g->d8, g->d8, dots_i,
					           BLOCK_ROWS);
				for (size_t t = 0; t < nt; t++)
					hk__topk_block_i32(&heaps[t], dots_i + t * BLOCK_ROWS,
					                   g->rscale + b, cnt, (uint32_t)b, tmp);
			} else if (g->scan == HK_SCAN_FP16) {
				for (size_t t = 0; t < nt; t++) {
					K->scan_f16(j->qf + (q0 + t) * g->d32,
					            g->s16 + b * g->d16, cnt, g->d16,
					            (size_t)g->d16 * 2, dots_f);
					hk__topk_block_f32(&heaps[t], dots_f, g->rscale + b, cnt,
					                   (uint32_t)b, tmp);
				}
			} else if (nt == 1) {
				K->scan_f32(j->qf + q0 * g->d32, g->master + b * g->d32, cnt,
				            g->d32, (size_t)g->d32 * 4, dots_f);
				hk__topk_block_f32(&heaps[0], dots_f, g->rscale + b, cnt,
				                   (uint32_t)b, tmp);
			} else {
				/* fp32 batch: OpenBLAS sgemm computes the tile */
				float *c = (float *)dots_i;
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt,
				            (int)cnt, (int)g->d32, 1.0f, j->qf + q0 * g->d32,
				            (int)g->d32, g->master + b * g->d32, (int)g->d32,
				            0.0f, c, BLOCK_ROWS);
				for (size_t t = 0; t < nt; t++)
					hk__topk_block_f32(&heaps[t], c + t * BLOCK_ROWS,
					                   g->rscale + b, cnt, (uint32_t)b, tmp);
			}
		}
		for (size_t t = 0; t < nt; t++)
			j->counts[(size_t)shard * j->nq + q0 + t] = heaps[t].n;
	}
}

static int cand_cmp(const void *a, const void *b)
{
	const hk__cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot); /* slot order = id order */
}

/*
 * Re-score the candidates of query qi exactly, keep each subject's best
 * template, write the top k. seen is a scratch bitmap-free dedupe: sorted
 * candidates are scanned and a subject is emitted the first time it is met
 * (its best template, since the list is sorted by exact score).
 */
static hk_status finish_query(const search_job *j, size_t qi, size_t k,
                              hk__cand *work, float *scores,
                              hk_template_id *ids)
{
	const hk_gallery *g = j->g;
	float tmp[DIM_MAX] __attribute__((aligned(64)));
	hk_status st = HK_OK;
	size_t m = 0;
	for (unsigned s = 0; s < j->nshards; s++) {
		const hk__cand *c = j->cands + ((size_t)s * j->nq + qi) * j->kk;
		uint32_t cn = j->counts[(size_t)s * j->nq + qi];
		for (uint32_t i = 0; i < cn; i++) {
			work[m].slot = c[i].slot;
			work[m].score =
			    exact_dot(g, j->qf + qi * g->d32, c[i].slot, tmp, &st);
			m++;
		}
	}
	if (g->exact == HK_EXACT_FILE)
		hk__wipe(tmp, (size_t)g->d32 * 4);
	if (st)
		return st;
	qsort(work, m, sizeof *work, cand_cmp);
	size_t out = 0;
	for (size_t i = 0; i < m && out < k; i++) {
		uint32_t subj = g->subj[work[i].slot];
		int dup = 0;
		for (size_t o = 0; o < out && !dup; o++)
			dup = g->subj[work[o].slot] == subj;
		if (dup)
			continue;
		work[out++] = work[i]; /* out <= i: safe in place */
	}
	for (size_t o = 0; o < k; o++) {
		if (o < out) {
			scores[o] = work[o].score;
			ids[o] = g->tids[work[o].slot];
		} else {
			scores[o] = -INFINITY;
			ids[o] = HK_NO_ID;
		}
	}
	return HK_OK;
}

static hk_status search_common(const hk_gallery *g, const float *queries,
                               size_t n, size_t k, float *scores,
                               hk_template_id *ids)
{
	if (!g || !queries || !scores || !ids)
		return hk__err(HK_E_INVALID, "gallery_search: NULL argument");
	if (k == 0 || k > (1u << 20))
		return hk__err(HK_E_INVALID, "gallery_search: k=%zu not in 1..2^20", k);
	if (n == 0)
		return HK_OK;
	if (n > (1u << 24))
		return hk__err(HK_E_INVALID, "gallery_search: batch of %zu too large", n);

	size_t qf_bytes = n * g->d32 * 4, qu_bytes = n * g->d8;
	hk_status st = HK_OK;
	RDLOCK(g);
	unsigned nshards = hk__pool_size(g->pool);
	/* candidates: enough that the k best subjects are among them even when
	 * every subject has tps_max templates */
	size_t kk = g->rerank;
	size_t need = k * (g->tps_max ? g->tps_max : 1);
	if (kk < need)
		kk = need;
	if (kk > g->n)
		kk = g->n ? g->n : 1;
	size_t cand_n = (size_t)nshards * n * kk;
	size_t work_n = (size_t)nshards * kk;
	size_t scratch = qf_bytes + qu_bytes + cand_n * sizeof(hk__cand) +
	                 (size_t)nshards * n * 4 + work_n * sizeof(hk__cand) + 256;
	/* one query with a modest candidate list: no heap allocation */
	char stack[STACK_CANDS * 16 + 4 * 4096] __attribute__((aligned(64)));
	char *mem = stack;
	if (n != 1 || scratch > sizeof stack) {
		mem = hk__aalloc(scratch);
		if (!mem) {
			UNLOCK(g);
			return hk__err(HK_E_NOMEM, "gallery_search: out of memory");
		}
	}
	char *p = mem;
	float *qf = (float *)p;
	p += (qf_bytes + 63) & ~(size_t)63;
	uint8_t *qu = (uint8_t *)p;
	p += (qu_bytes + 63) & ~(size_t)63;
	hk__cand *cands = (hk__cand *)p;
	p += cand_n * sizeof(hk__cand);
	uint32_t *counts = (uint32_t *)p;
	p += (size_t)nshards * n * 4;
	hk__cand *work = (hk__cand *)p;

	for (size_t i = 0; i < n; i++) {
		float *q = qf + i * g->d32;
		if ((st = normalise(queries + i * g->dim, g->dim, q, "query")))
			goto done;
		memset(q + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
		if (g->scan == HK_SCAN_INT8)
			quantise_query(g->K, q, g->dim, g->d8, qu + i * g->d8);
	}
	search_job j = {g, n, qf, qu, cands, counts, (uint32_t)kk, nshards};
	if (g->n == 0) {
		memset(counts, 0, (size_t)nshards * n * 4);
	} else if (nshards == 1 || hk__pool_try_run(g->pool, scan_shard, &j) != 0) {
		j.nshards = 1;
		scan_shard(&j, 0, 1);
	}
	for (size_t i = 0; i < n && !st; i++)
		st = finish_query(&j, i, k, work, scores + i * k, ids + i * k);
done:
	UNLOCK(g);
	hk__wipe(qf, qf_bytes + qu_bytes);
	if (mem != stack)
		hk__afree(mem);
	return st;
}

hk_status hk_gallery_search(const hk_gallery *g, const float *query, size_t k,
                            float *scores, hk_template_id *ids)
{
	return search_common(g, query, 1, k, scores, ids);
}

hk_status hk_gallery_search_batch(const hk_gallery *g, const float *queries,
                                  size_t n, size_t k, float *scores,
                                  hk_template_id *ids)
{
	return search_common(g, queries, n, k, scores, ids);
}
