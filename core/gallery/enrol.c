/*
 * Durable gallery: enrolment, erasure (with receipts), expiry and
 * inactivity sweeps. Locking: see store.c.
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

/* Compact once the log has passed params.auto_compact_bytes; the first
 * writer to see the flag does it. */
static hk_status auto_compact(hk_store *st)
{
	if (!atomic_exchange(&st->compact_due, 0))
		return HK_OK;
	return hk_store_compact(st);
}

static hk_status text_arg(const char *v, const char *what, size_t max)
{
	if (!v || !*v)
		return hk__err(HK_E_CONSENT, "consent record has no %s", what);
	if (strlen(v) > max)
		return hk__err(HK_E_CONSENT, "consent %s is longer than %zu bytes",
		               what, max);
	return HK_OK;
}

hk_status hk__st_check_vec(const hk_store *st, const float *v)
{
	double nn = 0;
	for (uint32_t d = 0; d < st->dim; d++) {
		if (!isfinite(v[d]))
			return hk__err(HK_E_RANGE, "embedding component %u is %f", d,
			               (double)v[d]);
		nn += (double)v[d] * v[d];
	}
	if (nn == 0)
		return hk__err(HK_E_RANGE, "embedding has zero length");
	return HK_OK;
}

/* Why an enrolment is refused (consent or policy), or HK_OK. */
static hk_status enrol_refusal(const hk_consent *c, int64_t now)
{
	hk_status s;
	if (!c)
		return hk__err(HK_E_CONSENT, "no consent record: no template "
		               "without consent");
	if ((s = text_arg(c->subject, "subject", HK_SUBJECT_MAX)) ||
	    (s = text_arg(c->purpose, "purpose", HK_STORE_TEXT_MAX)) ||
	    (s = text_arg(c->consent_version, "consent-text version",
	                  HK_STORE_TEXT_MAX)) ||
	    (s = text_arg(c->channel, "channel", HK_STORE_TEXT_MAX)))
		return s;
	if (c->time <= 0 || c->time > now + 300)
		return hk__err(HK_E_CONSENT, "consent time %lld is not a past time "
		               "(now %lld)", (long long)c->time, (long long)now);
	if (c->expires == 0)
		return hk__err(HK_E_CONSENT, "consent record has no expiry");
	if (c->expires <= now)
		return hk__err(HK_E_CONSENT, "consent expired at %lld (now %lld)",
		               (long long)c->expires, (long long)now);
	if (c->source == HK_SOURCE_STREAM || c->source > HK_SOURCE_STREAM)
		return hk__err(HK_E_POLICY, "templates from a stream source are "
		               "never enrolled");
	return HK_OK;
}

hk_status hk_store_enroll(hk_store *st, const hk_consent *c, const float *emb,
                          size_t n, hk_enroll_receipt *r)
{
	if (!st)
		return hk__err(HK_E_INVALID, "hk_store_enroll: store is NULL");
	hk_status s;
	uint64_t seq = 0;
	int64_t now = hk__st_now(st);
	if ((s = enrol_refusal(c, now))) {
		/* every refusal is audited (the subject is not named: a refused
		 * enrolment creates no key, hence no pseudonym) */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", hk_last_error());
		hk_status a = hk__audit(st, HK__A_REFUSED, HK__D_REFUSED, 0, 0,
		                        c ? c->source : 0, (uint32_t)n, NULL,
		                        HK__A_ENROL);
		if (a)
			return a;
		return hk__err(s, "%s", msg);
	}
	if (!emb || n == 0)
		return hk__err(HK_E_INVALID, "hk_store_enroll: no embeddings");
	if (n > HK__REC_MAX / 4 / st->dim - 1)
		return hk__err(HK_E_LIMIT, "%zu templates in one enrolment", n);
	for (size_t i = 0; i < n; i++)
		if ((s = hk__st_check_vec(st, emb + i * st->dim)))
			return s;

	pthread_rwlock_wrlock(&st->rw);
	hk__subj *old = hk__by_name(st, c->subject);
	bool fresh = !old || old->state != HK__S_LIVE;
	uint64_t key_id, key_off;
	uint8_t key[32];
	if (fresh) {
		s = HK_OK;
		if (st->pool_head == st->pool_n) {
			st->pool_head = st->pool_n = 0;
			s = hk__st_pool_refill(st);
		}
		if (s) {
			pthread_mutex_lock(&st->gc_mu);
			st->failed = 1;
			pthread_mutex_unlock(&st->gc_mu);
			goto out;
		}
		hk__pkey *pk = &st->pool[st->pool_head];
		key_id = pk->id;
		key_off = pk->off;
		memcpy(key, pk->key, 32);
	} else {
		key_id = old->key_id;
		key_off = old->key_off;
		memcpy(key, old->key, 32);
	}
	uint8_t *plain = NULL, *rec = NULL;
	size_t plen, rlen;
	if ((s = hk__st_body_build(st->dim, now, c->time, c->expires, now, c->source,
	                    c->subject, c->purpose, c->consent_version,
	                    c->channel, NULL, 0, emb, (uint32_t)n, &plain, &plen)))
		goto out;
	pthread_mutex_lock(&st->wal_mu);
	seq = atomic_load(&st->seq) + 1;
	s = hk__seal_record(st, HK__R_ENROL, seq, key_id, key, plain, plen, &rec,
	                    &rlen);
	if (!s)
		s = hk__st_wal_append_locked(st, rec, rlen, seq);
	if (!s)
		atomic_store(&st->seq, seq);
	pthread_mutex_unlock(&st->wal_mu);
	free(rec);
	if (!s && fresh) {
		/* the key leaves the pool: the record now names it */
		sodium_memzero(st->pool + st->pool_head, sizeof *st->pool);
		st->pool_head++;
	}
	if (!s) {
		hk__body_view v;
		s = hk__body_parse(plain, plen, st->dim, HK__R_ENROL, &v);
		if (!s)
			s = hk__st_apply_body(st, HK__R_ENROL, key_id, key_off, key, &v);
		if (s) {
			/* the log holds the record but memory does not: refuse
			 * further writes until a reopen replays it */
			pthread_mutex_lock(&st->gc_mu);
			st->failed = 1;
			pthread_mutex_unlock(&st->gc_mu);
		}
	}
	sodium_memzero(plain, plen);
	free(plain);
	hk__subj *sj = s ? NULL : hk__by_key(st, key_id);
	if (!s)
		s = hk__audit(st, HK__A_ENROL, HK__D_DONE, 0, 0, c->source,
		              (uint32_t)n, sj->pseudo, 0);
	if (!s && r) {
		r->version = seq;
		r->time = now;
		r->n_templates = (uint32_t)n;
		r->subject_templates = sj->n_tids;
	}
out:
	sodium_memzero(key, sizeof key);
	pthread_rwlock_unlock(&st->rw);
	if (s)
		return s;
	s = hk__commit_wait(st, seq);
	return s ? s : auto_compact(st);
}

/* ---- erase -------------------------------------------------------- */

static void receipt_digest(const hk_store *st, const hk_erasure_receipt *r,
                           uint8_t out[32])
{
	crypto_generichash_state g;
	crypto_generichash_init(&g, st->k->receipt, 32, 32);
	crypto_generichash_update(&g, (const uint8_t *)r->subject,
	                          strnlen(r->subject, sizeof r->subject));
	uint8_t b[20];
	memcpy(b, &r->time, 8);
	memcpy(b + 8, &r->version, 8);
	memcpy(b + 16, &r->n_templates, 4);
	crypto_generichash_update(&g, b, sizeof b);
	crypto_generichash_final(&g, out, 32);
}

hk_status hk_store_check_receipt(const hk_store *st,
                                 const hk_erasure_receipt *r)
{
	if (!st || !r)
		return hk__err(HK_E_INVALID, "hk_store_check_receipt: NULL");
	uint8_t d[32];
	receipt_digest(st, r, d);
	if (sodium_memcmp(d, r->digest, 32))
		return hk__err(HK_E_CRYPTO, "erasure receipt was not issued by this "
		               "gallery or was altered");
	return HK_OK;
}

hk_status hk_store_erase(hk_store *st, const char *subject,
                         hk_erasure_receipt *r)
{
	if (!st || !subject || !*subject || strlen(subject) > HK_SUBJECT_MAX)
		return hk__err(HK_E_INVALID, "hk_store_erase: bad arguments");
	int64_t now = hk__st_now(st);
	pthread_rwlock_wrlock(&st->rw);
	hk__subj *s = hk__by_name(st, subject);
	if (!s) {
		pthread_rwlock_unlock(&st->rw);
		return hk__err(HK_E_NOT_FOUND, "no subject '%s' in the gallery",
		               subject);
	}
	uint8_t pseudo[16];
	memcpy(pseudo, s->pseudo, 16);
	uint32_t n_tpl = s->n_tids;
	hk_status e = HK_OK;
	uint64_t seq = 0;
	pthread_mutex_lock(&st->wal_mu);
	for (hk__subj *p = s; p && !e; p = p->older) {
		e = hk__st_wal_plain_locked(st, HK__R_ERASE, p->key_id, now, 3,
		                     p->n_tids, &seq);
		if (!e)
			e = hk__st_key_shred_at(st, p->key_id, p->key_off);
	}
	pthread_mutex_unlock(&st->wal_mu);
	if (!e && fdatasync(st->keys_fd))
		e = hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_KEYS,
		            strerror(errno));
	if (e) {
		pthread_mutex_lock(&st->gc_mu);
		st->failed = 1;
		pthread_mutex_unlock(&st->gc_mu);
		/* still hide it: the caller asked for it to be gone */
		hk__st_hide_subject(st, s, 0);
		pthread_rwlock_unlock(&st->rw);
		return e;
	}
	while (s) {
		hk__subj *o = s->older;
		hk__st_drop_subject(st, s);
		st->shredded++;
		s = o;
	}
	e = hk__audit(st, HK__A_ERASE, HK__D_DONE, 0, 0, 0, n_tpl, pseudo, 0);
	pthread_rwlock_unlock(&st->rw);
	if (!e)
		e = hk__commit_wait(st, seq);
	if (e)
		return e;
	if (r) {
		memset(r, 0, sizeof *r);
		snprintf(r->subject, sizeof r->subject, "%s", subject);
		r->time = now;
		r->version = seq;
		r->n_templates = n_tpl;
		receipt_digest(st, r, r->digest);
	}
	return auto_compact(st);
}

/* ---- expiry ------------------------------------------------------- */

/* Caller holds rw exclusively. */
hk_status hk__sweep(hk_store *st, int64_t now, size_t *count)
{
	size_t n = 0;
	int64_t next = INT64_MAX;
	hk_status s = HK_OK;
	uint64_t seq = 0;
	for (size_t i = 0; i < st->by_name.cap && !s; i++) {
		hk__subj *sj = hk__st_map_at(&st->by_name, i);
		if (!sj || sj->state != HK__S_LIVE)
			continue;
		uint32_t reason = 0;
		if (sj->expires <= now)
			reason = 1;
		else if (st->policy.inactivity_limit_s > 0 &&
		         atomic_load(&sj->last_active) +
		                 st->policy.inactivity_limit_s <= now)
			reason = 2;
		if (!reason) {
			int64_t d = hk__st_deadline_of(st, sj);
			if (d < next)
				next = d;
			continue;
		}
		uint32_t nt = sj->n_tids;
		pthread_mutex_lock(&st->wal_mu);
		s = hk__st_wal_plain_locked(st, HK__R_EXPIRE, sj->key_id, now, reason, nt,
		                     &seq);
		pthread_mutex_unlock(&st->wal_mu);
		hk__st_hide_subject(st, sj, reason);
		if (!s)
			s = hk__audit(st, HK__A_EXPIRE, HK__D_DONE, 0, 0, 0, nt,
			              sj->pseudo, 0);
		n++;
	}
	atomic_store(&st->next_deadline, s ? now : next);
	if (count)
		*count = n;
	return s;
}

hk_status hk_store_expire(hk_store *st, size_t *n)
{
	if (!st)
		return hk__err(HK_E_INVALID, "hk_store_expire: store is NULL");
	pthread_rwlock_wrlock(&st->rw);
	hk_status s = hk__sweep(st, hk__st_now(st), n);
	uint64_t seq = atomic_load(&st->seq);
	pthread_rwlock_unlock(&st->rw);
	return s ? s : hk__commit_wait(st, seq);
}

/* Queries call this before taking the shared lock. */
hk_status hk__maybe_sweep(hk_store *st, int64_t now)
{
	if (now < atomic_load(&st->next_deadline))
		return HK_OK;
	pthread_rwlock_wrlock(&st->rw);
	hk_status s = HK_OK;
	if (now >= atomic_load(&st->next_deadline))
		s = hk__sweep(st, now, NULL);
	pthread_rwlock_unlock(&st->rw);
	return s;
}

/* Record that a subject matched (inactivity clock). Shared lock held. */
void hk__touch(hk_store *st, hk__subj *s, int64_t now)
{
	int64_t la = atomic_load(&s->last_active);
	while (la < now && !atomic_compare_exchange_weak(&s->last_active, &la, now))
		;
	int64_t lim = st->policy.inactivity_limit_s;
	if (lim <= 0)
		return;
	pthread_mutex_lock(&st->wal_mu);
	if (now - s->persisted_active >= (lim + 15) / 16) {
		uint64_t seq;
		if (!hk__st_wal_plain_locked(st, HK__R_TOUCH, s->key_id, now, 0, s->n_tids,
		                      &seq))
			s->persisted_active = now;
	}
	pthread_mutex_unlock(&st->wal_mu);
}

