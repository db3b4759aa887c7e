/*
 * Durable gallery: compaction (new snapshot, rewritten keys.hk, reset
 * wal.hk) and the policy switch. Locking: see store.c.
 */
#define _GNU_SOURCE
#include "store_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bufw {
	int fd;
	uint8_t *b;
	size_t n, cap;
	hk_status s;
} bufw;

static void bw_put(bufw *w, const void *p, size_t n)
{
	if (w->s)
		return;
	if (w->n + n > w->cap) {
		w->s = hk__st_write_all(w->fd, w->b, w->n, "compaction");
		w->n = 0;
		if (w->s)
			return;
		if (n > w->cap) {
			w->s = hk__st_write_all(w->fd, p, n, "compaction");
			return;
		}
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static hk_status write_snapshot(hk_store *st, uint64_t *count)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", HK__F_SNAP);
	int fd = hk__st_create_tmp(st->dirfd, tmp);
	if (fd < 0)
		return hk__err(HK_E_IO, "%s: create: %s", tmp, strerror(errno));
	bufw w = {.fd = fd, .cap = 1u << 20};
	w.b = malloc(w.cap);
	float *tpl = NULL;
	size_t tcap = 0;
	if (!w.b)
		w.s = hk__err(HK_E_NOMEM, "snapshot buffer");
	hk__fhdr h;
	memset(&h, 0, sizeof h);
	bw_put(&w, &h, sizeof h); /* rewritten at the end */
	uint64_t idx = 0;
	for (size_t i = 0; i < st->by_name.cap && !w.s; i++) {
		hk__subj *s = hk__st_map_at(&st->by_name, i);
		if (!s || s->state != HK__S_LIVE)
			continue;
		size_t need = (size_t)s->n_tids * st->dim;
		if (need > tcap) {
			float *t = realloc(tpl, need * sizeof *t);
			if (!t) {
				w.s = hk__err(HK_E_NOMEM, "snapshot templates");
				break;
			}
			tpl = t;
			tcap = need;
		}
		for (uint32_t j = 0; j < s->n_tids && !w.s; j++)
			w.s = hk_gallery_get(st->g, s->tids[j], tpl + (size_t)j * st->dim);
		uint8_t *plain = NULL, *rec = NULL;
		size_t plen = 0, rlen;
		if (!w.s)
			w.s = hk__st_body_build(st->dim, s->enrols[0], s->consent_time,
			                 s->expires, atomic_load(&s->last_active),
			                 s->source, s->name, s->purpose, s->version,
			                 s->channel, s->enrols, s->n_enrols, tpl,
			                 s->n_tids, &plain, &plen);
		if (!w.s)
			w.s = hk__seal_record(st, HK__R_SUBJECT, idx, s->key_id, s->key,
			                      plain, plen, &rec, &rlen);
		if (!w.s)
			bw_put(&w, rec, rlen);
		if (plain)
			sodium_memzero(plain, plen);
		free(plain);
		free(rec);
		idx++;
	}
	if (tpl)
		sodium_memzero(tpl, tcap * sizeof *tpl);
	free(tpl);
	if (!w.s && w.n)
		w.s = hk__st_write_all(fd, w.b, w.n, tmp);
	free(w.b);
	hk_status s = w.s;
	if (!s) {
		hk__fhdr_fill(&h, MAGIC_SNAP, st->dim, atomic_load(&st->seq), idx,
		              st->gid);
		s = hk__st_pwrite_all(fd, &h, sizeof h, 0, tmp);
	}
	if (!s && fsync(fd))
		s = hk__err(HK_E_IO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	if (!s && renameat(st->dirfd, tmp, st->dirfd, HK__F_SNAP))
		s = hk__err(HK_E_IO, "rename %s: %s", tmp, strerror(errno));
	if (!s)
		s = hk__st_fsync_dir(st->dirfd);
	if (s)
		unlinkat(st->dirfd, tmp, 0);
	*count = idx;
	return s;
}

/* New keys.hk with only the keys of live subjects and the spare pool. */
static hk_status rewrite_keys(hk_store *st)
{
	size_t n = st->n_live + (st->pool_n - st->pool_head);
	size_t len = sizeof(hk__khdr) + n * sizeof(hk__kent);
	hk__kent *buf = malloc(len);
	if (!buf)
		return hk__err(HK_E_NOMEM, "key store of %zu bytes", len);
	/* entries in key-id order: collect, sort */
	typedef struct { uint64_t id; hk__subj *s; hk__pkey *p; } ref;
	ref *refs = malloc((n ? n : 1) * sizeof *refs);
	if (!refs) {
		free(buf);
		return hk__err(HK_E_NOMEM, "key list");
	}
	size_t m = 0;
	for (size_t i = 0; i < st->by_name.cap; i++) {
		hk__subj *s = hk__st_map_at(&st->by_name, i);
		if (s && s->state == HK__S_LIVE)
			refs[m++] = (ref){s->key_id, s, NULL};
	}
	for (size_t i = st->pool_head; i < st->pool_n; i++)
		refs[m++] = (ref){st->pool[i].id, NULL, &st->pool[i]};
	/* subjects come in hash order: sort by key id so ids stay increasing */
	qsort(refs, m, sizeof *refs, hk__st_cmp_u64);
	for (size_t i = 0; i < m; i++) {
		const uint8_t *key = refs[i].s ? refs[i].s->key : refs[i].p->key;
		hk__st_kent_seal(st, &buf[1 + i], refs[i].id, key);
		uint64_t off = sizeof(hk__khdr) + i * sizeof(hk__kent);
		if (refs[i].s)
			refs[i].s->key_off = off;
		else
			refs[i].p->off = off;
	}
	/* the header (with its watermark) and the swap of keys_fd under
	 * khdr_mu: the committing thread rewrites that header */
	pthread_mutex_lock(&st->khdr_mu);
	memcpy(buf, &st->khdr, sizeof st->khdr);
	hk_status s = hk__st_atomic_write(st->dirfd, HK__F_KEYS, buf, len);
	sodium_memzero(buf, len);
	free(buf);
	free(refs);
	int fd = s ? -1 : hk__st_open_rw(st, HK__F_KEYS);
	if (!s && fd < 0)
		s = hk__err(HK_E_IO, "%s: reopen: %s", HK__F_KEYS, strerror(errno));
	if (!s) {
		close(st->keys_fd);
		st->keys_fd = fd;
	}
	pthread_mutex_unlock(&st->khdr_mu);
	if (s)
		return s;
	st->keys_size = len;
	st->shredded = 0;
	return HK_OK;
}

static hk_status reset_wal(hk_store *st)
{
	hk__fhdr h;
	hk__fhdr_fill(&h, MAGIC_WAL, st->dim, atomic_load(&st->seq), 0, st->gid);
	hk_status s = hk__st_atomic_write(st->dirfd, HK__F_WAL, &h, sizeof h);
	if (s)
		return s;
	int fd = hk__st_open_rw(st, HK__F_WAL);
	if (fd < 0)
		return hk__err(HK_E_IO, "%s: reopen: %s", HK__F_WAL, strerror(errno));
	pthread_mutex_lock(&st->gc_mu);
	while (st->syncing)
		pthread_cond_wait(&st->gc_cv, &st->gc_mu);
	close(st->wal_fd);
	st->wal_fd = fd;
	pthread_mutex_unlock(&st->gc_mu);
	st->wal_size = sizeof h;
	return HK_OK;
}

hk_status hk_store_compact(hk_store *st)
{
	if (!st)
		return hk__err(HK_E_INVALID, "hk_store_compact: store is NULL");
	pthread_rwlock_wrlock(&st->rw);
	hk_status s = hk__sweep(st, hk__st_now(st), NULL);
	if (!s)
		s = hk__commit_wait(st, atomic_load(&st->seq));
	/* drop hidden (expired) entries: they are not written below */
	for (size_t i = 0; i < st->by_key.cap && !s; i++) {
		hk__subj *sj = hk__st_map_at(&st->by_key, i);
		if (sj && sj->state == HK__S_HIDDEN)
			hk__st_drop_subject(st, sj);
	}
	if (!s)
		s = hk_gallery_compact(st->g);
	uint64_t count = 0;
	if (!s)
		s = write_snapshot(st, &count);
	if (!s)
		s = rewrite_keys(st);
	if (!s)
		s = reset_wal(st);
	if (!s) {
		st->snap_seq = atomic_load(&st->seq);
		s = hk__audit(st, HK__A_COMPACT, HK__D_DONE, 0, 0, 0,
		              (uint32_t)st->n_templates, NULL, 0);
	}
	pthread_rwlock_unlock(&st->rw);
	return s;
}

hk_status hk_store_set_policy(hk_store *st, const hk_store_policy *p)
{
	if (!st || !p || p->inactivity_limit_s < 0)
		return hk__err(HK_E_INVALID, "hk_store_set_policy: bad arguments");
	if (hk__st_bad_rate(p->target_fmr) || hk__st_bad_rate(p->target_fpir))
		return hk__err(HK_E_RANGE, "policy target FMR %g / FPIR %g: each must be 0 "
		               "(the default) or inside (0, 1)", p->target_fmr, p->target_fpir);
	pthread_rwlock_wrlock(&st->rw);
	pthread_mutex_lock(&st->khdr_mu);
	st->policy.allow_identify = p->allow_identify ? 1 : 0;
	st->policy.inactivity_limit_s = p->inactivity_limit_s;
	st->policy.target_fmr = hk__st_rate_dec(hk__st_rate_enc(p->target_fmr));
	st->policy.target_fpir = hk__st_rate_dec(hk__st_rate_enc(p->target_fpir));
	hk_status s = hk__st_khdr_write(st);
	pthread_mutex_unlock(&st->khdr_mu);
	atomic_store(&st->next_deadline, INT64_MIN); /* re-evaluate */
	if (!s)
		s = hk__audit(st, HK__A_POLICY, HK__D_DONE, 0, 0, 0,
		              st->policy.allow_identify, NULL, 0);
	pthread_rwlock_unlock(&st->rw);
	return s;
}

int hk__st_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}
