/*
 * Durable gallery: the key store, sealed records, the audit chain, applying
 * records to the in-memory state, and group commit. Open / replay / close
 * are in replay.c, enrol / erase / expiry in enrol.c, compaction in
 * compact.c, queries in query.c; formats in store_internal.h.
 *
 * Locking: st->rw guards the subject table and the in-memory gallery
 * (queries take it shared, writers exclusive). st->wal_mu serialises log
 * appends (writers hold rw exclusively; queries append TOUCH records under
 * the shared lock). st->gc_mu / gc_cv implement group commit: the first
 * waiter whose record is not yet durable becomes the leader, fsyncs
 * everything written so far, and wakes the others. st->audit_mu serialises
 * audit appends. Lock order: rw -> wal_mu -> gc_mu; rw -> audit_mu.
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




void hk_store_default_params(hk_store_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	hk_gallery_default_params(&p->gallery);
}

int64_t hk__st_now(const hk_store *st)
{
	return st->clock ? st->clock(st->clock_user) : (int64_t)time(NULL);
}

int64_t hk__st_deadline_of(const hk_store *st, const hk__subj *s)
{
	int64_t d = s->expires;
	if (st->policy.inactivity_limit_s > 0) {
		int64_t a = atomic_load_explicit(&s->last_active,
		                                 memory_order_relaxed) +
		            st->policy.inactivity_limit_s;
		if (a < d)
			d = a;
	}
	return d;
}

static void deadline_lower(hk_store *st, int64_t d)
{
	int64_t cur = atomic_load(&st->next_deadline);
	while (d < cur && !atomic_compare_exchange_weak(&st->next_deadline, &cur, d))
		;
}

/* ---- key store ---------------------------------------------------- */

void hk__st_kent_seal(const hk_store *st, hk__kent *e, uint64_t id,
                      const uint8_t key[32])
{
	memset(e, 0, sizeof *e);
	e->key_id = id;
	e->state = HK__KEY_LIVE;
	randombytes_buf(e->nonce, sizeof e->nonce);
	uint8_t ad[24];
	memcpy(ad, &id, 8);
	memcpy(ad + 8, st->gid, 16);
	crypto_aead_xchacha20poly1305_ietf_encrypt(e->wrapped, NULL, key, 32, ad,
	                                           sizeof ad, NULL, e->nonce,
	                                           st->k->wrap);
	hk__st_sum(e->sum, e, offsetof(hk__kent, sum));
}

static void kent_shred(hk__kent *e, uint64_t id)
{
	memset(e, 0, sizeof *e);
	e->key_id = id;
	e->state = HK__KEY_SHRED;
	hk__st_sum(e->sum, e, offsetof(hk__kent, sum));
}

hk_status hk__st_key_shred_at(hk_store *st, uint64_t id, uint64_t off)
{
	hk__kent e;
	kent_shred(&e, id);
	return hk__st_pwrite_all(st->keys_fd, &e, sizeof e, off, HK__F_KEYS);
}

void hk__st_khdr_fill(hk_store *st)
{
	hk__khdr *h = &st->khdr;
	memcpy(h->magic, MAGIC_KEYS, 8);
	h->version = HK__ST_FORMAT;
	h->dim = st->dim;
	memcpy(h->gallery_id, st->gid, 16);
	h->allow_identify = st->policy.allow_identify;
	h->inactivity_s = st->policy.inactivity_limit_s;
	h->target_fmr_ml = hk__st_rate_enc(st->policy.target_fmr);
	h->target_fpir_ml = hk__st_rate_enc(st->policy.target_fpir);
	hk__st_sum(h->sum, h, offsetof(hk__khdr, sum));
	crypto_generichash(h->mac, 32, (const uint8_t *)h, offsetof(hk__khdr, mac),
	                   st->k->header, 32);
}

/* Refill keys.hk's header (policy, watermark) and rewrite it in place,
 * durable: 128 bytes at offset 0, one sector, written atomically. The
 * caller holds khdr_mu. */
hk_status hk__st_khdr_write(hk_store *st)
{
	hk__st_khdr_fill(st);
	return hk__st_pwrite_sync(st->keys_fd, &st->khdr, sizeof st->khdr, 0,
	                          HK__F_KEYS);
}

/* Generate, persist and fsync a batch of subject keys before any record
 * can name them, so a durable record never refers to a key that is not. */
hk_status hk__st_pool_refill(hk_store *st)
{
	size_t n = st->pool_batch;
	if (st->pool_cap < st->pool_n + n) {
		/* guarded memory; the old block is wiped by sodium_free */
		hk__pkey *p = sodium_allocarray(st->pool_n + n, sizeof *p);
		if (!p)
			return hk__err(HK_E_NOMEM, "key pool");
		if (st->pool_n)
			memcpy(p, st->pool, st->pool_n * sizeof *p);
		sodium_free(st->pool);
		st->pool = p;
		st->pool_cap = st->pool_n + n;
	}
	hk__kent *ents = calloc(n, sizeof *ents);
	if (!ents)
		return hk__err(HK_E_NOMEM, "key pool");
	for (size_t i = 0; i < n; i++) {
		hk__pkey *k = &st->pool[st->pool_n + i];
		k->id = st->next_key_id + i;
		k->off = st->keys_size + i * sizeof(hk__kent);
		randombytes_buf(k->key, 32);
		hk__st_kent_seal(st, &ents[i], k->id, k->key);
	}
	hk_status s = hk__st_pwrite_sync(st->keys_fd, ents, n * sizeof *ents,
	                                 st->keys_size, HK__F_KEYS);
	free(ents);
	if (s) {
		sodium_memzero(st->pool + st->pool_n, n * sizeof *st->pool);
		return s;
	}
	st->pool_n += n;
	st->next_key_id += n;
	st->keys_size += n * sizeof(hk__kent);
	if (st->pool_batch < 1024)
		st->pool_batch *= 2;
	return HK_OK;
}

/* ---- records ------------------------------------------------------ */

static void record_ad(uint8_t ad[48], const hk__rhdr *h, const uint8_t gid[16])
{
	memcpy(ad, h, 32);
	memcpy(ad + 32, gid, 16);
}

hk_status hk__seal_record(const hk_store *st, uint16_t type, uint64_t seq,
                          uint64_t key_id, const uint8_t key[32],
                          const uint8_t *plain, size_t plen, uint8_t **out,
                          size_t *outlen)
{
	size_t len = 24 + plen + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	if (len > HK__REC_MAX)
		return hk__err(HK_E_LIMIT, "record of %zu bytes exceeds %u", len,
		               HK__REC_MAX);
	uint8_t *buf = malloc(sizeof(hk__rhdr) + len);
	if (!buf)
		return hk__err(HK_E_NOMEM, "record of %zu bytes", len);
	hk__rhdr h;
	memset(&h, 0, sizeof h);
	h.magic = HK__REC_MAGIC;
	h.type = type;
	h.len = (uint32_t)len;
	h.seq = seq;
	h.key_id = key_id;
	uint8_t ad[48];
	record_ad(ad, &h, st->gid);
	uint8_t *nonce = buf + sizeof h;
	randombytes_buf(nonce, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + 24, NULL, plain, plen,
	                                           ad, sizeof ad, NULL, nonce, key);
	hk__rhdr_fill(&h, type, seq, key_id, nonce, (uint32_t)len);
	memcpy(buf, &h, sizeof h);
	*out = buf;
	*outlen = sizeof h + len;
	return HK_OK;
}

hk_status hk__st_record_open(const hk_store *st, const hk__rhdr *h,
                             const uint8_t *payload, const uint8_t key[32],
                             uint8_t **plain, size_t *plen)
{
	const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
	if (h->len < 24 + ab + sizeof(hk__body))
		return hk__err(HK_E_FORMAT, "record %llu: sealed payload of %u "
		               "bytes is too short", (unsigned long long)h->seq,
		               h->len);
	size_t n = h->len - 24 - ab;
	uint8_t *p = malloc(n);
	if (!p)
		return hk__err(HK_E_NOMEM, "record of %zu bytes", n);
	uint8_t ad[48];
	record_ad(ad, h, st->gid);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, NULL, NULL, payload + 24,
	                                               h->len - 24, ad, sizeof ad,
	                                               payload, key)) {
		free(p);
		return hk__err(HK_E_CRYPTO, "record %llu (subject key %llu) fails "
		               "authentication: tampered, or sealed by another "
		               "gallery", (unsigned long long)h->seq,
		               (unsigned long long)h->key_id);
	}
	*plain = p;
	*plen = n;
	return HK_OK;
}

/* Body of an ENROL (enrols == NULL) or SUBJECT record. tpl: n x dim. */
hk_status hk__st_body_build(uint32_t dim, int64_t time, int64_t consent_time,
                            int64_t expires, int64_t last_active,
                            uint32_t source, const char *subject,
                            const char *purpose, const char *version,
                            const char *channel, const int64_t *enrols,
                            uint32_t n_enrols, const float *tpl, uint32_t n,
                            uint8_t **out, size_t *outlen)
{
	hk__body b;
	memset(&b, 0, sizeof b);
	b.time = time;
	b.consent_time = consent_time;
	b.expires = expires;
	b.last_active = last_active;
	b.n_templates = n;
	b.dim = dim;
	b.n_enrols = n_enrols;
	b.source = source;
	b.len_subject = (uint16_t)strlen(subject);
	b.len_purpose = (uint16_t)strlen(purpose);
	b.len_version = (uint16_t)strlen(version);
	b.len_channel = (uint16_t)strlen(channel);
	size_t sz = hk__body_size(&b);
	uint8_t *p = calloc(1, sz);
	if (!p)
		return hk__err(HK_E_NOMEM, "record body of %zu bytes", sz);
	memcpy(p, &b, sizeof b);
	size_t o = sizeof b;
	memcpy(p + o, subject, b.len_subject);
	o += b.len_subject;
	memcpy(p + o, purpose, b.len_purpose);
	o += b.len_purpose;
	memcpy(p + o, version, b.len_version);
	o += b.len_version;
	memcpy(p + o, channel, b.len_channel);
	o += b.len_channel;
	o = (o + 7) & ~(size_t)7;
	if (n_enrols)
		memcpy(p + o, enrols, (size_t)n_enrols * 8);
	o += (size_t)n_enrols * 8;
	memcpy(p + o, tpl, (size_t)n * dim * 4);
	*out = p;
	*outlen = sz;
	return HK_OK;
}

/* Append one record to the log; the caller holds wal_mu. */
hk_status hk__st_wal_append_locked(hk_store *st, const uint8_t *rec,
                                   size_t len, uint64_t seq)
{
	pthread_mutex_lock(&st->gc_mu);
	int failed = st->failed;
	pthread_mutex_unlock(&st->gc_mu);
	if (failed)
		return hk__err(HK_E_IO, "an earlier write or fsync of the gallery "
		               "failed; close and reopen it");
	hk_status s = hk__st_pwrite_all(st->wal_fd, rec, len, st->wal_size,
	                             HK__F_WAL);
	pthread_mutex_lock(&st->gc_mu);
	if (s)
		st->failed = 1;
	else
		st->written = seq;
	pthread_mutex_unlock(&st->gc_mu);
	if (!s) {
		st->wal_size += len;
		if (st->auto_compact && st->wal_size > st->auto_compact)
			atomic_store(&st->compact_due, 1);
	}
	return s;
}

/* Small unsealed records (ERASE / EXPIRE / TOUCH); returns the seq. */
hk_status hk__st_wal_plain_locked(hk_store *st, uint16_t type, uint64_t key_id,
                                  int64_t time, uint32_t reason, uint32_t n,
                                  uint64_t *seq_out)
{
	struct {
		hk__rhdr h;
		hk__r_time t;
	} r;
	memset(&r, 0, sizeof r);
	r.t.time = time;
	r.t.reason = reason;
	r.t.n_templates = n;
	uint64_t seq = atomic_load(&st->seq) + 1;
	hk__rhdr_fill(&r.h, type, seq, key_id, &r.t, sizeof r.t);
	hk_status s = hk__st_wal_append_locked(st, (const uint8_t *)&r, sizeof r, seq);
	if (!s) {
		atomic_store(&st->seq, seq);
		*seq_out = seq;
	}
	return s;
}

/* Returns once log record seq and every audit entry appended before the
 * call are durable and recorded in keys.hk's watermark. Waiting for the
 * entries as well matters: a writer appends its record, then (still
 * under rw) its audit entry, so another thread's group commit can cover
 * the record but not the entry; returning on the record alone would
 * acknowledge a write whose audit entry a power loss can still take. */
hk_status hk__commit_wait(hk_store *st, uint64_t seq)
{
	pthread_mutex_lock(&st->audit_mu);
	uint64_t audit_need = st->audit_n;
	pthread_mutex_unlock(&st->audit_mu);
	pthread_mutex_lock(&st->gc_mu);
	while ((st->synced < seq || st->audit_synced < audit_need) &&
	       !st->failed) {
		if (st->syncing) {
			pthread_cond_wait(&st->gc_cv, &st->gc_mu);
			continue;
		}
		st->syncing = 1;
		if (st->window_us) {
			pthread_mutex_unlock(&st->gc_mu);
			usleep(st->window_us);
			pthread_mutex_lock(&st->gc_mu);
		}
		uint64_t target = st->written;
		int wfd = st->wal_fd;
		pthread_mutex_unlock(&st->gc_mu);
		/* the audit entries written so far, and whether any of them
		 * still needs an fsync (both under audit_mu, so an entry counted
		 * here is either synced by us or was by an earlier leader) */
		uint64_t an;
		uint8_t head[32];
		pthread_mutex_lock(&st->audit_mu);
		an = st->audit_n;
		memcpy(head, st->audit_prev, 32);
		int afd = atomic_exchange(&st->audit_dirty, 0) ? st->audit_fd : -1;
		pthread_mutex_unlock(&st->audit_mu);
		int rc = fdatasync(wfd);
		if (!rc && afd >= 0)
			rc = fdatasync(afd);
		int e = errno;
		/* log and audit durable: only now may the watermark say so */
		if (!rc && hk__st_watermark(st, target, an, head))
			rc = -1, e = EIO;
		pthread_mutex_lock(&st->gc_mu);
		st->syncing = 0;
		if (rc) {
			st->failed = e ? e : EIO;
		} else {
			if (target > st->synced) {
				st->committed += target - st->synced;
				st->synced = target;
			}
			if (an > st->audit_synced)
				st->audit_synced = an;
			st->commits++;
		}
		pthread_cond_broadcast(&st->gc_cv);
	}
	int failed = st->failed;
	pthread_mutex_unlock(&st->gc_mu);
	if (failed)
		return hk__err(HK_E_IO, "gallery log write or fsync failed (%s); "
		               "nothing after it is durable: close and reopen",
		               strerror(failed > 1 ? failed : EIO));
	return HK_OK;
}

hk_status hk__st_watermark(hk_store *st, uint64_t seq, uint64_t audit_n,
                           const uint8_t head[32])
{
	hk_status s = HK_OK;
	pthread_mutex_lock(&st->khdr_mu);
	hk__khdr *h = &st->khdr;
	if (seq > h->durable_seq || audit_n > h->durable_audit) {
		if (seq > h->durable_seq)
			h->durable_seq = seq;
		if (audit_n > h->durable_audit) {
			h->durable_audit = audit_n;
			memcpy(h->audit_head, head, sizeof h->audit_head);
		}
		s = hk__st_khdr_write(st);
	}
	pthread_mutex_unlock(&st->khdr_mu);
	return s;
}

/* ---- audit -------------------------------------------------------- */

void (*hk__st_test_hook)(hk_store *st, int point);

hk_status hk__audit(hk_store *st, uint32_t op, uint32_t decision, float score,
                    float threshold, uint32_t source, uint32_t count,
                    const uint8_t pseudo[16], uint32_t refused_op)
{
	hk__aent e;
	memset(&e, 0, sizeof e);
	e.time = hk__st_now(st);
	e.version = atomic_load(&st->seq);
	e.op = op;
	e.decision = decision;
	e.score = score;
	e.threshold = threshold;
	e.source = source;
	e.count = count;
	e.refused_op = refused_op;
	if (pseudo)
		memcpy(e.subject, pseudo, 16);
	if (hk__st_test_hook)
		hk__st_test_hook(st, HK__HOOK_AUDIT);
	pthread_mutex_lock(&st->audit_mu);
	e.index = st->audit_n;
	hk__audit_mac(e.mac, st->k->audit, st->audit_prev, &e);
	hk_status s = hk__st_pwrite_all(st->audit_fd, &e, sizeof e, st->audit_size,
	                             HK__F_AUDIT);
	if (!s) {
		st->audit_n++;
		st->audit_size += sizeof e;
		memcpy(st->audit_prev, e.mac, 32);
		atomic_store(&st->audit_dirty, 1);
	}
	pthread_mutex_unlock(&st->audit_mu);
	return s;
}

/* ---- applying state ----------------------------------------------- */

static hk_status add_templates(hk_store *st, hk__subj *s, const uint8_t *raw,
                               uint32_t n)
{
	float *v = malloc((size_t)st->dim * sizeof *v);
	if (!v)
		return hk__err(HK_E_NOMEM, "template");
	hk_status r = HK_OK;
	for (uint32_t i = 0; i < n && !r; i++) {
		memcpy(v, raw + (size_t)i * st->dim * 4, (size_t)st->dim * 4);
		hk_template_id id;
		r = hk_gallery_add(st->g, s->name, v, &id);
		if (!r)
			r = hk__subj_push_tid(s, id);
		if (!r)
			st->n_templates++;
	}
	sodium_memzero(v, (size_t)st->dim * sizeof *v);
	free(v);
	return r;
}

/* Apply a parsed ENROL / SUBJECT body sealed with key key_id. */
hk_status hk__st_apply_body(hk_store *st, uint16_t type, uint64_t key_id,
                            uint64_t key_off, const uint8_t key[32],
                            const hk__body_view *v)
{
	char name[HK_SUBJECT_MAX + 1];
	memcpy(name, v->subject, v->b.len_subject);
	name[v->b.len_subject] = 0;
	hk__subj *s = hk__by_key(st, key_id);
	if (s) {
		if (s->state != HK__S_LIVE || strcmp(s->name, name) ||
		    type == HK__R_SUBJECT)
			return hk__err(HK_E_FORMAT, "subject key %llu is used by two "
			               "subjects or after expiry",
			               (unsigned long long)key_id);
	} else {
		hk__subj *old = hk__by_name(st, name);
		if (old && old->state == HK__S_LIVE)
			return hk__err(HK_E_FORMAT, "a subject has two live keys "
			               "(%llu and %llu)",
			               (unsigned long long)old->key_id,
			               (unsigned long long)key_id);
		s = calloc(1, sizeof *s);
		if (!s || !(s->name = strdup(name)) || !(s->key = hk__key_alloc(st))) {
			if (s)
				free(s->name);
			free(s);
			return hk__err(HK_E_NOMEM, "subject");
		}
		s->key_id = key_id;
		s->key_off = key_off;
		memcpy(s->key, key, 32);
		hk__pseudonym(s->pseudo, key);
		s->state = HK__S_LIVE;
		s->older = old;
		uint64_t h = hk__name_hash(st->hkey, name);
		if (old)
			hk__st_map_del(&st->by_name, h, old);
		if (hk__st_map_put(&st->by_name, h, s) ||
		    hk__st_map_put(&st->by_key, key_id, s)) {
			hk__subj_free(st, s);
			return hk__err(HK_E_NOMEM, "subject table");
		}
		st->n_live++;
	}
	hk_status r = hk__subj_set_consent(s, v->purpose, v->b.len_purpose,
	                                   v->version, v->b.len_version,
	                                   v->channel, v->b.len_channel);
	if (r)
		return r;
	s->consent_time = v->b.consent_time;
	s->expires = v->b.expires;
	s->source = v->b.source;
	int64_t la = atomic_load(&s->last_active);
	if (type == HK__R_SUBJECT) {
		for (uint32_t i = 0; i < v->b.n_enrols && !r; i++) {
			int64_t t;
			memcpy(&t, v->enrols_raw + (size_t)i * 8, 8);
			r = hk__subj_push_enrol(s, t);
		}
		la = v->b.last_active;
	} else {
		r = hk__subj_push_enrol(s, v->b.time);
		if (v->b.time > la)
			la = v->b.time;
	}
	if (r)
		return r;
	atomic_store(&s->last_active, la);
	s->persisted_active = la;
	r = add_templates(st, s, v->templates, v->b.n_templates);
	deadline_lower(st, hk__st_deadline_of(st, s));
	return r;
}

void hk__st_hide_subject(hk_store *st, hk__subj *s, uint32_t reason)
{
	if (s->state != HK__S_LIVE)
		return;
	if (s->n_tids)
		hk_gallery_remove_subject(st->g, s->name, NULL);
	st->n_templates -= s->n_tids;
	s->n_tids = 0;
	s->state = HK__S_HIDDEN;
	s->reason = reason;
	st->n_live--;
	st->n_hidden++;
}

/* Remove one entry (and only it) from every table and free it. */
void hk__st_drop_subject(hk_store *st, hk__subj *s)
{
	hk__st_hide_subject(st, s, 0);
	st->n_hidden--;
	uint64_t h = hk__name_hash(st->hkey, s->name);
	hk__subj *head = hk__by_name(st, s->name);
	if (head == s) {
		hk__st_map_del(&st->by_name, h, s);
		if (s->older)
			hk__st_map_put(&st->by_name, h, s->older);
	} else {
		for (hk__subj *p = head; p; p = p->older)
			if (p->older == s) {
				p->older = s->older;
				break;
			}
	}
	hk__st_map_del(&st->by_key, s->key_id, s);
	hk__subj_free(st, s);
}

