/* The in-memory gallery: the exact copy (fp32, fp16, or rows in an
 * encrypted unlinked file, HK_EXACT_FILE), readers and the search (scan the
 * compact copy into per-shard candidates, re-rank from the exact copy: one
 * translation unit, so the re-rank inlines). Layout: gallery.c. */
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

/* ---------------------------------------------------------------- */
/* exact copy in a file (HK_EXACT_FILE)                              */
/* ---------------------------------------------------------------- */

void hk__g_xf_init(hk__xfile *f)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

void hk__g_xf_close(const hk_gallery *g, hk__xfile *f)
{
	if (f->pend) {
		hk__wipe(f->pend, (size_t)XF_PEND * hk__g_xf_row(g));
		free(f->pend);
	}
	if (f->fd >= 0)
		close(f->fd); /* unlinked: the blocks go back to the file system */
	hk__wipe(f->key, sizeof f->key); /* what they hold is unreadable now */
	hk__g_xf_init(f);
}

hk_status hk__g_xf_open(const hk_gallery *g, hk__xfile *f)
{
	hk__g_xf_init(f);
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
	f->pend = malloc((size_t)XF_PEND * hk__g_xf_row(g));
	if (!f->pend) {
		hk__g_xf_close(g, f);
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
hk_status hk__g_xf_flush(const hk_gallery *g, hk__xfile *f)
{
	size_t row = hk__g_xf_row(g), bytes = f->npend * row, done = 0;
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
hk_status hk__g_xf_reserve(hk_gallery *g)
{
	return g->xf.npend == XF_PEND ? hk__g_xf_flush(g, &g->xf) : HK_OK;
}

/* Append plain row x (d32 floats) as slot nfile + npend; needs room. */
void hk__g_xf_append(const hk_gallery *g, hk__xfile *f, const float *x)
{
	size_t row = hk__g_xf_row(g);
	xf_crypt(f, f->nfile + f->npend, row, x, f->pend + f->npend * row);
	f->npend++;
}

/* Decrypt the row of slot into out[d32]. */
hk_status hk__g_xf_read(const hk_gallery *g, const hk__xfile *f, size_t slot,
                         float *out)
{
	size_t row = hk__g_xf_row(g);
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
void hk__g_xf_wipe(const hk_gallery *g, hk__xfile *f, size_t slot)
{
	size_t row = hk__g_xf_row(g);
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
float hk__g_exact_dot(const hk_gallery *g, const float *q, size_t slot,
                       float *tmp, hk_status *st)
{
	if (g->exact == HK_EXACT_FP16)
		return g->K->dot_f32_f16(q, g->a.m16 + slot * g->d16, g->dim);
	if (g->exact == HK_EXACT_FILE) {
		hk_status s = hk__g_xf_read(g, &g->xf, slot, tmp);
		if (s) {
			*st = s;
			return NAN;
		}
		return g->K->dot_f32(q, tmp, g->d32);
	}
	return g->K->dot_f32(q, g->a.master + slot * g->d32, g->d32);
}

/* The exact copy of slot as fp32 into out[d32]. */
hk_status hk__g_exact_get(const hk_gallery *g, size_t slot, float *out)
{
	if (g->exact == HK_EXACT_FP16) {
		const uint16_t *h = g->a.m16 + slot * g->d16;
		for (uint32_t i = 0; i < g->d32; i++)
			out[i] = i < g->dim ? hk__f16_to_f32(h[i]) : 0.0f;
	} else if (g->exact == HK_EXACT_FILE) {
		return hk__g_xf_read(g, &g->xf, slot, out);
	} else {
		memcpy(out, g->a.master + slot * g->d32, (size_t)g->d32 * 4);
	}
	return HK_OK;
}

hk_status hk__g_grow(hk_gallery *g, size_t want)
{
	/* the first call gets the capacity hint: exactly that many slots, as
	 * every slot of the mapping is made resident (first touch) */
	size_t cap = g->a.cap ? g->a.cap : want;
	while (cap < want) {
		if (cap > ((size_t)1 << 40))
			return hk__err(HK_E_LIMIT, "gallery: too many templates");
		cap *= 2;
	}
	if (cap > UINT32_MAX)
		return hk__err(HK_E_LIMIT, "gallery: more than 2^32 templates");
	arrays a;
	hk_status st = hk__g_arrays_alloc(g, cap, &a);
	if (st)
		return st;
	if (g->exact == HK_EXACT_FILE && g->xf.fd < 0 && (st = hk__g_xf_open(g, &g->xf))) {
		hk__mem_free(a.base, a.bytes);
		return st;
	}
	hk__g_first_touch(g, &a);
	for (size_t i = 0; i < g->n; i++)
		hk__g_copy_slot(g, &a, i, i);
	hk__g_arrays_release(g);
	hk__g_arrays_adopt(g, &a);
	return HK_OK;
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
	info->huge_pages = (uint32_t)g->a.kind;
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
	uint64_t res = g->a.bytes + (uint64_t)g->nsubs * sizeof(hk__subj) +
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
		res += (uint64_t)XF_PEND * hk__g_xf_row(g);
		info->exact_resident_bytes = (uint64_t)XF_PEND * hk__g_xf_row(g);
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
	int64_t slot = hk__g_slot_of(g, id);
	if (slot < 0 || !hk__g_slot_live(g, (size_t)slot)) {
		st = hk__err(HK_E_NOT_FOUND, "gallery_subject_of: no live template %lld",
		             (long long)id);
	} else {
		const hk__subj *s = &g->subs[g->a.subj[slot]];
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
	int64_t slot = hk__g_slot_of(g, id);
	if (slot < 0 || !hk__g_slot_live(g, (size_t)slot))
		st = hk__err(HK_E_NOT_FOUND, "gallery_get: no live template %lld",
		             (long long)id);
	else {
		float row[DIM_MAX] __attribute__((aligned(64)));
		if (!(st = hk__g_exact_get(g, (size_t)slot, row)))
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
	hk_status st = hk__g_check_subject(subject, &len);
	if (st)
		return st;
	float q[DIM_MAX];
	if ((st = hk__g_normalise(query, g->dim, q, "query")))
		return st;
	memset(q + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
	RDLOCK(g);
	int64_t si = hk__g_subject_find(g, subject, len);
	float best = -INFINITY;
	hk_template_id bid = HK_NO_ID;
	float tmp[DIM_MAX] __attribute__((aligned(64)));
	if (si >= 0) {
		const hk__subj *s = &g->subs[si];
		const hk_template_id *t = subj_tids(s);
		for (uint32_t i = 0; i < s->ntids; i++) {
			int64_t slot = hk__g_slot_of(g, t[i]);
			if (slot < 0 || !hk__g_slot_live(g, (size_t)slot))
				continue;
			float v = hk__g_exact_dot(g, q, (size_t)slot, tmp, &st);
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

/*
 * What bounds the int8 scan's error for one query (INT8 scan): the query
 * is s_q (qq + dq), a row s_r (rq + dr), each |d| <= 1/2 (+ rounding of
 * x * (1 / s), and the clip at qmax, both < 1e-4), so the exact cosine
 * minus s_q * a, a = (qq . rq) * s_r the scan's score, is at most
 *   s_q s_r |qq . dr| + s_q |dq . (x - s_r dr)| + s_q s_r |dq . dr|
 *   <= s_q (s_r A + D (1 + s_r h sqrt(d)) + s_r D h sqrt(d)),
 * A = h min(|qq|_1, sqrt(d) |qq|_2), D = |dq|_2, h = 0.5001, |x|_2 = 1.
 */
typedef struct qbound {
	double sq, a, d; /* s_q, A, D */
} qbound;

typedef struct search_job {
	const hk_gallery *g;
	size_t nq;           /* queries in this call                        */
	const float *qf;     /* nq x d32 normalised fp32 queries            */
	const uint8_t *qu;   /* nq x d8 offset-128 int8 queries (INT8 scan) */
	const qbound *qb;    /* nq quantisation bounds (INT8 scan), or NULL */
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
	float floors[TILE_Q];
	uint64_t hits[TILE_Q * (TILE_ROWS / 64)];

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
				const int8_t *rows = g->a.s8 + b * g->d8;
				if (nt == 1) {
					K->scan_i8(j->qu + q0 * g->d8, rows, g->a.rsum + b, cnt,
					           g->d8, g->d8, dots_i);
					hk__topk_block_i32(&heaps[0], dots_i, g->a.rscale + b, cnt,
					                   (uint32_t)b, tmp);
					continue;
				}
				/* the tile in TILE_ROWS sub-blocks: 64 queries x 256 rows
				 * of int32 results (64 KiB) are read back by the top-k from
				 * L2, where 1024 rows (256 KiB) spilled to L3 */
				for (size_t s = 0; s < cnt; s += TILE_ROWS) {
					size_t sn = cnt - s < TILE_ROWS ? cnt - s : TILE_ROWS;
					const float *sc = g->a.rscale + b + s;
					uint32_t base = (uint32_t)(b + s);
					if (K->tile_i8_hits) {
						/* scored against the floors in the tile: only the
						 * hits are read back */
						for (size_t t = 0; t < nt; t++)
							floors[t] = hk__heap_floor(&heaps[t]);
						hk__tile_hits th = {sc, floors, (uint8_t *)hits,
						                    TILE_ROWS / 8};
						K->tile_i8_hits(j->qu + q0 * g->d8, nt, g->d8,
						                rows + s * g->d8, g->a.rsum + b + s, sn,
						                g->d8, g->d8, dots_i, TILE_ROWS, &th);
						for (size_t t = 0; t < nt; t++)
							hk__topk_offer_i32(&heaps[t], dots_i + t * TILE_ROWS,
							                   sc, hits + t * (TILE_ROWS / 64),
							                   sn, base);
						continue;
					}
					K->tile_i8(j->qu + q0 * g->d8, nt, g->d8, rows + s * g->d8,
					           g->a.rsum + b + s, sn, g->d8, g->d8, dots_i,
					           TILE_ROWS);
					for (size_t t = 0; t < nt; t++)
						hk__topk_block_i32(&heaps[t], dots_i + t * TILE_ROWS, sc,
						                   sn, base, tmp);
				}
			} else if (g->scan == HK_SCAN_FP16) {
				for (size_t t = 0; t < nt; t++) {
					K->scan_f16(j->qf + (q0 + t) * g->d32,
					            g->a.s16 + b * g->d16, cnt, g->d16,
					            (size_t)g->d16 * 2, dots_f);
					hk__topk_block_f32(&heaps[t], dots_f, g->a.rscale + b, cnt,
					                   (uint32_t)b, tmp);
				}
			} else if (nt == 1) {
				K->scan_f32(j->qf + q0 * g->d32, g->a.master + b * g->d32, cnt,
				            g->d32, (size_t)g->d32 * 4, dots_f);
				hk__topk_block_f32(&heaps[0], dots_f, g->a.rscale + b, cnt,
				                   (uint32_t)b, tmp);
			} else {
				/* fp32 batch: OpenBLAS sgemm computes the tile */
				float *c = (float *)dots_i;
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt,
				            (int)cnt, (int)g->d32, 1.0f, j->qf + q0 * g->d32,
				            (int)g->d32, g->a.master + b * g->d32, (int)g->d32,
				            0.0f, c, BLOCK_ROWS);
				for (size_t t = 0; t < nt; t++)
					hk__topk_block_f32(&heaps[t], c + t * BLOCK_ROWS,
					                   g->a.rscale + b, cnt, (uint32_t)b, tmp);
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
/*
 * With a scan bound (j->qb) and k <= RR_MAX: the k best candidates by scan
 * score first, then the rest; one is re-scored only if its upper bound reaches the k-th best
 * subject among those re-scored so far (that k-th only rises, so a
 * skipped one could not have entered the top k: the result is the one of
 * re-scoring all). Typically half the exact-copy reads (pread + ChaCha20
 * for HK_EXACT_FILE) of a uniform d=192 gallery are saved.
 */
#define RR_MAX 64u

/* Insert subject subj with exact score v into top[0..*n) (<= k distinct
 * subjects, by score descending). */
static void top_offer(hk__cand *top, size_t *n, size_t k, uint32_t subj, float v)
{
	size_t i = 0;
	while (i < *n && top[i].slot != subj)
		i++;
	if (i < *n) {
		if (!(v > top[i].score))
			return;
	} else if (*n < k) {
		i = (*n)++;
	} else if (v > top[k - 1].score) {
		i = k - 1;
	} else {
		return;
	}
	for (; i > 0 && top[i - 1].score < v; i--)
		top[i] = top[i - 1];
	top[i] = (hk__cand){v, subj};
}

/* Move the k best of c[0..m) by score to the front (in any order): the
 * re-rank scores them first, so the k-th subject rises early. */
static void front_k(hk__cand *c, size_t m, size_t k)
{
	size_t n = k < m ? k : m, lo = 0;
	for (size_t i = 1; i < n; i++) /* lo: the weakest of the front */
		if (c[i].score < c[lo].score)
			lo = i;
	for (size_t i = n; i < m; i++) {
		if (!(c[i].score > c[lo].score))
			continue;
		hk__cand t = c[lo];
		c[lo] = c[i];
		c[i] = t;
		for (size_t x = 0; x < n; x++)
			if (c[x].score < c[lo].score)
				lo = x;
	}
}

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
		for (uint32_t i = 0; i < cn; i++)
			work[m++] = c[i];
	}
	const float *q = j->qf + qi * g->d32;
	if (j->qb && k <= RR_MAX) {
		const qbound *b = &j->qb[qi];
		double h = 0.5001, rd = sqrt((double)g->dim);
		/* fp32 rounding of both dots; fp16 rounding of the exact copy */
		double eps = 2.4e-7 * g->dim + (g->exact == HK_EXACT_FP16 ? 1e-3 : 0);
		hk__cand top[RR_MAX];
		size_t nt = 0, kept = 0;
		front_k(work, m, k);
		for (size_t i = 0; i < m; i++) {
			double sr = g->a.rscale[work[i].slot];
			double ub = b->sq * (work[i].score + fabs(work[i].score) * 3e-7 + sr * b->a +
			                     b->d * (1.0001 + 2 * sr * h * rd)) + eps;
			if (nt == k && ub < top[k - 1].score)
				continue;
			float v = hk__g_exact_dot(g, q, work[i].slot, tmp, &st);
			top_offer(top, &nt, k, g->a.subj[work[i].slot], v);
			work[kept].slot = work[i].slot;
			work[kept++].score = v;
		}
		m = kept;
	} else {
		for (size_t i = 0; i < m; i++)
			work[i].score = hk__g_exact_dot(g, q, work[i].slot, tmp, &st);
	}
	if (g->exact == HK_EXACT_FILE)
		hk__wipe(tmp, (size_t)g->d32 * 4);
	if (st)
		return st;
	qsort(work, m, sizeof *work, cand_cmp);
	size_t out = 0;
	for (size_t i = 0; i < m && out < k; i++) {
		uint32_t subj = g->a.subj[work[i].slot];
		int dup = 0;
		for (size_t o = 0; o < out && !dup; o++)
			dup = g->a.subj[work[o].slot] == subj;
		if (dup)
			continue;
		work[out++] = work[i]; /* out <= i: safe in place */
	}
	for (size_t o = 0; o < k; o++) {
		if (o < out) {
			scores[o] = work[o].score;
			ids[o] = g->a.tids[work[o].slot];
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
	size_t qb_bytes = g->scan == HK_SCAN_INT8 ? n * sizeof(qbound) : 0;
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
	size_t scratch = qf_bytes + qu_bytes + qb_bytes + cand_n * sizeof(hk__cand) +
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
	qbound *qb = qb_bytes ? (qbound *)p : NULL;
	p += qb_bytes;
	hk__cand *cands = (hk__cand *)p;
	p += cand_n * sizeof(hk__cand);
	uint32_t *counts = (uint32_t *)p;
	p += (size_t)nshards * n * 4;
	hk__cand *work = (hk__cand *)p;

	for (size_t i = 0; i < n; i++) {
		float *q = qf + i * g->d32;
		if ((st = hk__g_normalise(queries + i * g->dim, g->dim, q, "query")))
			goto done;
		memset(q + g->dim, 0, (size_t)(g->d32 - g->dim) * 4);
		if (g->scan == HK_SCAN_INT8) {
			uint8_t *u = qu + i * g->d8;
			double sq = hk__g_quantise_query(g->K, q, g->dim, g->d8, u);
			double l1 = 0, l2 = 0, dd = 0, inv = 1 / sq;
			for (uint32_t c = 0; c < g->dim; c++) {
				double v = (int)u[c] - 128, e = q[c] * inv - v;
				l1 += fabs(v);
				l2 += v * v;
				dd += e * e;
			}
			double l2b = sqrt(l2 * (double)g->dim);
			qb[i] = (qbound){sq, 0.5001 * (l1 < l2b ? l1 : l2b),
			                 sqrt(dd) * 1.000001 + 1e-9};
		}
	}
	search_job j = {g, n, qf, qu, qb, cands, counts, (uint32_t)kk, nshards};
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
