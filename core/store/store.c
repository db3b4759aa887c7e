/*
 * Durable gallery: open / replay, enrol, erase, expiry, compaction, group
 * commit. Formats are described in store_internal.h.
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

#include "store_ops.h"

static const char MAGIC_WAL[8] = "HKWAL\0\0";
static const char MAGIC_SNAP[8] = "HKSNAP\0";
static const char MAGIC_AUDIT[8] = "HKAUDIT";
static const char MAGIC_KEYS[8] = "HKKEYS\0";

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

static int64_t deadline_of(const hk_store *st, const hk__subj *s)
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

static void kent_seal(const hk_store *st, hk__kent *e, uint64_t id,
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

static hk_status key_shred_at(hk_store *st, uint64_t id, uint64_t off)
{
	hk__kent e;
	kent_shred(&e, id);
	return hk__st_pwrite_all(st->keys_fd, &e, sizeof e, off, HK__F_KEYS);
}

static void khdr_fill(hk_store *st)
{
	hk__khdr *h = &st->khdr;
	memcpy(h->magic, MAGIC_KEYS, 8);
	h->version = HK__ST_FORMAT;
	h->dim = st->dim;
	memcpy(h->gallery_id, st->gid, 16);
	h->allow_identify = st->policy.allow_identify;
	h->inactivity_s = st->policy.inactivity_limit_s;
	hk__st_sum(h->sum, h, offsetof(hk__khdr, sum));
	crypto_generichash(h->mac, 32, (const uint8_t *)h, offsetof(hk__khdr, mac),
	                   st->k->header, 32);
}

/* Generate, persist and fsync a batch of subject keys before any record
 * can name them, so a durable record never refers to a key that is not. */
static hk_status pool_refill(hk_store *st)
{
	size_t n = st->pool_batch;
	if (st->pool_cap < st->pool_n + n) {
		hk__pkey *p = realloc(st->pool, (st->pool_n + n) * sizeof *p);
		if (!p)
			return hk__err(HK_E_NOMEM, "key pool");
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
		kent_seal(st, &ents[i], k->id, k->key);
	}
	hk_status s = hk__st_pwrite_all(st->keys_fd, ents, n * sizeof *ents,
	                             st->keys_size, HK__F_KEYS);
	free(ents);
	if (!s && fdatasync(st->keys_fd))
		s = hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_KEYS,
		            strerror(errno));
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

static hk_status record_open(const hk_store *st, const hk__rhdr *h,
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
static hk_status body_build(uint32_t dim, int64_t time, int64_t consent_time,
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
static hk_status wal_append_locked(hk_store *st, const uint8_t *rec,
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
static hk_status wal_plain_locked(hk_store *st, uint16_t type, uint64_t key_id,
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
	hk_status s = wal_append_locked(st, (const uint8_t *)&r, sizeof r, seq);
	if (!s) {
		atomic_store(&st->seq, seq);
		*seq_out = seq;
	}
	return s;
}

hk_status hk__commit_wait(hk_store *st, uint64_t seq)
{
	pthread_mutex_lock(&st->gc_mu);
	while (st->synced < seq && !st->failed) {
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
		int afd = atomic_exchange(&st->audit_dirty, 0) ? st->audit_fd : -1;
		pthread_mutex_unlock(&st->gc_mu);
		int rc = fdatasync(wfd);
		if (!rc && afd >= 0)
			rc = fdatasync(afd);
		int e = errno;
		pthread_mutex_lock(&st->gc_mu);
		st->syncing = 0;
		if (rc) {
			st->failed = e ? e : EIO;
		} else {
			if (target > st->synced) {
				st->committed += target - st->synced;
				st->synced = target;
			}
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

/* ---- audit -------------------------------------------------------- */

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
static hk_status apply_body(hk_store *st, uint16_t type, uint64_t key_id,
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
		if (!s || !(s->name = strdup(name))) {
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
			hk__subj_free(s);
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
	deadline_lower(st, deadline_of(st, s));
	return r;
}

static void hide_subject(hk_store *st, hk__subj *s, uint32_t reason)
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
static void drop_subject(hk_store *st, hk__subj *s)
{
	hide_subject(st, s, 0);
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
	hk__subj_free(s);
}

/* ---- replay ------------------------------------------------------- */

typedef struct kslot {
	uint64_t id, off;
	uint32_t state;
	uint8_t key[32];
} kslot;

typedef struct replay {
	hk_store *st;
	kslot *ks;
	size_t nks;
	uint64_t expect; /* next wal seq */
	uint64_t keys_file_len;
	const char *what;
} replay;

static kslot *ks_find(replay *rp, uint64_t id)
{
	size_t lo = 0, hi = rp->nks;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (rp->ks[m].id < id)
			lo = m + 1;
		else if (rp->ks[m].id > id)
			hi = m;
		else
			return &rp->ks[m];
	}
	return NULL;
}

static hk_status replay_sealed(replay *rp, const hk__rhdr *h,
                               const uint8_t *payload, kslot *k)
{
	uint8_t *plain = NULL;
	size_t plen = 0;
	hk_status s = record_open(rp->st, h, payload, k->key, &plain, &plen);
	if (s)
		return s;
	hk__body_view v;
	s = hk__body_parse(plain, plen, rp->st->dim, h->type, &v);
	if (!s)
		s = apply_body(rp->st, h->type, k->id, k->off, k->key, &v);
	sodium_memzero(plain, plen);
	free(plain);
	return s;
}

static hk_status replay_rec(void *user, const hk__rhdr *h,
                            const uint8_t *payload, uint64_t off)
{
	replay *rp = user;
	hk_store *st = rp->st;
	bool snap = rp->what == (const char *)HK__F_SNAP;
	if (snap) {
		if (h->type != HK__R_SUBJECT || h->seq != rp->expect)
			return hk__err(HK_E_FORMAT, "%s: record at offset %llu has "
			               "type %u index %llu", rp->what,
			               (unsigned long long)off, h->type,
			               (unsigned long long)h->seq);
		rp->expect++;
	} else {
		if (h->seq != rp->expect)
			return hk__err(HK_E_FORMAT, "%s: record at offset %llu has "
			               "sequence %llu, expected %llu (records missing "
			               "or reordered)", rp->what, (unsigned long long)off,
			               (unsigned long long)h->seq,
			               (unsigned long long)rp->expect);
		rp->expect++;
		atomic_store(&st->seq, h->seq);
		if (h->seq <= st->snap_seq)
			return HK_OK; /* already in the snapshot */
		if (h->type == HK__R_SUBJECT)
			return hk__err(HK_E_FORMAT, "%s: snapshot record in the log "
			               "at offset %llu", rp->what,
			               (unsigned long long)off);
	}
	kslot *k = ks_find(rp, h->key_id);
	if (!k)
		return hk__err(HK_E_FORMAT, "%s: record %llu names subject key "
		               "%llu, which is not in %s (key store truncated or "
		               "replaced)", rp->what, (unsigned long long)h->seq,
		               (unsigned long long)h->key_id, HK__F_KEYS);
	if (k->state == HK__KEY_SHRED)
		return HK_OK; /* erased: unreadable by design */
	if (h->type == HK__R_ENROL || h->type == HK__R_SUBJECT)
		return replay_sealed(rp, h, payload, k);
	if (h->len != sizeof(hk__r_time))
		return hk__err(HK_E_FORMAT, "%s: record %llu has payload %u",
		               rp->what, (unsigned long long)h->seq, h->len);
	hk__r_time t;
	memcpy(&t, payload, sizeof t);
	hk__subj *s = hk__by_key(st, h->key_id);
	if (!s)
		return hk__err(HK_E_FORMAT, "%s: record %llu is about subject key "
		               "%llu, which enrolled nothing", rp->what,
		               (unsigned long long)h->seq,
		               (unsigned long long)h->key_id);
	switch (h->type) {
	case HK__R_ERASE: {
		/* The key entry is shredded after the record is written; a crash
		 * in between leaves it live: finish the job now. */
		hk_status r = key_shred_at(st, k->id, k->off);
		if (r)
			return r;
		if (fdatasync(st->keys_fd))
			return hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_KEYS,
			               strerror(errno));
		k->state = HK__KEY_SHRED;
		sodium_memzero(k->key, 32);
		st->shredded++;
		drop_subject(st, s);
		return HK_OK;
	}
	case HK__R_EXPIRE:
		hide_subject(st, s, t.reason);
		return HK_OK;
	case HK__R_TOUCH:
		if (t.time > atomic_load(&s->last_active))
			atomic_store(&s->last_active, t.time);
		s->persisted_active = atomic_load(&s->last_active);
		return HK_OK;
	}
	return hk__err(HK_E_FORMAT, "%s: record type %u", rp->what, h->type);
}

static hk_status load_keys(hk_store *st, replay *rp)
{
	uint8_t *buf;
	size_t len;
	hk_status s = hk__st_read_file(st->dirfd, HK__F_KEYS, &buf, &len);
	if (s)
		return s;
	if (len < sizeof(hk__khdr)) {
		free(buf);
		return hk__err(HK_E_FORMAT, "%s: %zu bytes, shorter than its header",
		               HK__F_KEYS, len);
	}
	hk__khdr h;
	memcpy(&h, buf, sizeof h);
	if (memcmp(h.magic, MAGIC_KEYS, 8))
		s = hk__err(HK_E_FORMAT, "%s: not a herken key store (bad magic)",
		            HK__F_KEYS);
	else if (!hk__st_sum_ok(h.sum, &h, offsetof(hk__khdr, sum)))
		s = hk__err(HK_E_FORMAT, "%s: header checksum mismatch (damaged)",
		            HK__F_KEYS);
	else if (h.version != HK__ST_FORMAT)
		s = hk__err(HK_E_UNSUPPORTED, "%s: format version %u, this library "
		            "reads %u", HK__F_KEYS, h.version, HK__ST_FORMAT);
	if (!s) {
		uint8_t mac[32];
		crypto_generichash(mac, 32, (const uint8_t *)&h,
		                   offsetof(hk__khdr, mac), st->k->header, 32);
		if (sodium_memcmp(mac, h.mac, 32))
			s = hk__err(HK_E_CRYPTO, "wrong master key for this gallery "
			            "(or its key store header was tampered with)");
	}
	if (!s && (h.dim == 0 || h.dim > 65536))
		s = hk__err(HK_E_FORMAT, "%s: dimension %u", HK__F_KEYS, h.dim);
	if (!s && st->dim && st->dim != h.dim)
		s = hk__err(HK_E_DIM, "gallery dimension is %u, caller asked for %u",
		            h.dim, st->dim);
	if (s) {
		free(buf);
		return s;
	}
	st->khdr = h;
	st->dim = h.dim;
	memcpy(st->gid, h.gallery_id, 16);
	st->policy.allow_identify = h.allow_identify;
	st->policy.inactivity_limit_s = h.inactivity_s;

	size_t n = (len - sizeof h) / sizeof(hk__kent);
	rp->ks = calloc(n ? n : 1, sizeof *rp->ks);
	if (!rp->ks) {
		free(buf);
		return hk__err(HK_E_NOMEM, "key table");
	}
	size_t valid = len;
	for (size_t i = 0; i < n || valid == len; i++) {
		size_t off = sizeof h + i * sizeof(hk__kent);
		if (off == len)
			break;
		hk__kent e;
		bool bad = off + sizeof e > len;
		if (!bad) {
			memcpy(&e, buf + off, sizeof e);
			bad = !hk__st_sum_ok(e.sum, &e, offsetof(hk__kent, sum)) ||
			      (e.state != HK__KEY_LIVE && e.state != HK__KEY_SHRED);
		}
		if (bad) {
			if (off + sizeof e <= len && !hk__zero_tail(buf + off, len - off, off)) {
				free(buf);
				return hk__err(HK_E_FORMAT, "%s: key entry at offset %zu "
				               "is damaged", HK__F_KEYS, off);
			}
			valid = off; /* torn append of unused pool keys */
			break;
		}
		if (rp->nks && e.key_id <= rp->ks[rp->nks - 1].id) {
			free(buf);
			return hk__err(HK_E_FORMAT, "%s: key ids out of order at "
			               "offset %zu", HK__F_KEYS, off);
		}
		kslot *k = &rp->ks[rp->nks++];
		k->id = e.key_id;
		k->off = off;
		k->state = e.state;
		if (e.state == HK__KEY_LIVE) {
			uint8_t ad[24];
			memcpy(ad, &e.key_id, 8);
			memcpy(ad + 8, st->gid, 16);
			if (crypto_aead_xchacha20poly1305_ietf_decrypt(
			        k->key, NULL, NULL, e.wrapped, sizeof e.wrapped, ad,
			        sizeof ad, e.nonce, st->k->wrap)) {
				free(buf);
				return hk__err(HK_E_CRYPTO, "%s: key %llu fails "
				               "authentication (tampered)", HK__F_KEYS,
				               (unsigned long long)e.key_id);
			}
		} else {
			st->shredded++;
		}
		st->next_key_id = e.key_id + 1;
	}
	sodium_memzero(buf, len);
	free(buf);
	/* a torn tail is cut only once the replay has succeeded (finish_open) */
	rp->keys_file_len = len;
	st->keys_size = valid;
	if (st->next_key_id == 0)
		st->next_key_id = 1;
	return HK_OK;
}

static hk_status load_snapshot(hk_store *st, replay *rp)
{
	const uint8_t *buf;
	size_t len;
	hk_status s = hk__st_map_file(st->dirfd, HK__F_SNAP, &buf, &len);
	if (HK_STATUS_PRIMARY(s) == HK_E_NOT_FOUND)
		return HK_OK; /* never compacted */
	if (s)
		return s;
	hk__fhdr h;
	if (len < sizeof h) {
		hk__st_unmap_file(buf, len);
		return hk__err(HK_E_FORMAT, "%s: truncated header", HK__F_SNAP);
	}
	memcpy(&h, buf, sizeof h);
	s = hk__fhdr_check(&h, MAGIC_SNAP, HK__F_SNAP);
	if (!s && (memcmp(h.gallery_id, st->gid, 16) || h.dim != st->dim))
		s = hk__err(HK_E_FORMAT, "%s belongs to another gallery", HK__F_SNAP);
	if (!s) {
		st->snap_seq = h.base_seq;
		rp->what = HK__F_SNAP;
		rp->expect = 0;
		size_t valid;
		s = hk__records_walk(buf + sizeof h, len - sizeof h, sizeof h,
		                     HK__F_SNAP, false, replay_rec, rp, &valid);
		if (!s && rp->expect != h.count)
			s = hk__err(HK_E_FORMAT, "%s: %llu records, header says %llu",
			            HK__F_SNAP, (unsigned long long)rp->expect,
			            (unsigned long long)h.count);
	}
	hk__st_unmap_file(buf, len);
	return s;
}

static hk_status load_wal(hk_store *st, replay *rp)
{
	const uint8_t *buf;
	size_t len;
	hk_status s = hk__st_map_file(st->dirfd, HK__F_WAL, &buf, &len);
	if (HK_STATUS_PRIMARY(s) == HK_E_NOT_FOUND)
		return hk__err(HK_E_FORMAT, "%s is missing from the gallery",
		               HK__F_WAL);
	if (s)
		return s;
	hk__fhdr h;
	if (len < sizeof h) {
		hk__st_unmap_file(buf, len);
		return hk__err(HK_E_FORMAT, "%s: truncated header", HK__F_WAL);
	}
	memcpy(&h, buf, sizeof h);
	s = hk__fhdr_check(&h, MAGIC_WAL, HK__F_WAL);
	if (!s && (memcmp(h.gallery_id, st->gid, 16) || h.dim != st->dim))
		s = hk__err(HK_E_FORMAT, "%s belongs to another gallery", HK__F_WAL);
	if (!s && h.base_seq > st->snap_seq)
		s = hk__err(HK_E_FORMAT, "%s starts after version %llu but the "
		            "snapshot covers only %llu: records are missing",
		            HK__F_WAL, (unsigned long long)h.base_seq,
		            (unsigned long long)st->snap_seq);
	size_t valid = 0;
	if (!s) {
		atomic_store(&st->seq, h.base_seq);
		rp->what = HK__F_WAL;
		rp->expect = h.base_seq + 1;
		s = hk__records_walk(buf + sizeof h, len - sizeof h, sizeof h,
		                     HK__F_WAL, true, replay_rec, rp, &valid);
		valid += sizeof h;
	}
	hk__st_unmap_file(buf, len);
	if (s)
		return s;
	if (atomic_load(&st->seq) < st->snap_seq)
		atomic_store(&st->seq, st->snap_seq);
	if (valid < len) {
		if (ftruncate(st->wal_fd, (off_t)valid) || fdatasync(st->wal_fd))
			return hk__err(HK_E_IO, "%s: cutting torn tail: %s", HK__F_WAL,
			               strerror(errno));
		st->torn_cut += len - valid;
		hk__log(HK_LOG_WARN, "%s: cut a torn tail of %zu bytes at offset %zu",
		        HK__F_WAL, len - valid, valid);
	}
	st->wal_size = valid;
	return HK_OK;
}

static hk_status load_audit(hk_store *st)
{
	struct stat sb;
	if (fstat(st->audit_fd, &sb))
		return hk__err(HK_E_IO, "%s: %s", HK__F_AUDIT, strerror(errno));
	uint64_t len = (uint64_t)sb.st_size;
	hk__fhdr h;
	if (len < sizeof h || pread(st->audit_fd, &h, sizeof h, 0) != sizeof h)
		return hk__err(HK_E_FORMAT, "%s: truncated header", HK__F_AUDIT);
	hk_status s = hk__fhdr_check(&h, MAGIC_AUDIT, HK__F_AUDIT);
	if (s)
		return s;
	if (memcmp(h.gallery_id, st->gid, 16))
		return hk__err(HK_E_FORMAT, "%s belongs to another gallery",
		               HK__F_AUDIT);
	uint64_t n = (len - sizeof h) / sizeof(hk__aent);
	uint64_t valid = sizeof h + n * sizeof(hk__aent);
	hk__audit_genesis(st->audit_prev, st->k->audit, &h);
	if (n) {
		hk__aent e;
		if (pread(st->audit_fd, &e, sizeof e,
		          (off_t)(valid - sizeof e)) != sizeof e)
			return hk__err(HK_E_IO, "%s: read: %s", HK__F_AUDIT,
			               strerror(errno));
		memcpy(st->audit_prev, e.mac, 32);
	}
	if (valid < len) {
		if (ftruncate(st->audit_fd, (off_t)valid))
			return hk__err(HK_E_IO, "%s: cutting torn tail: %s", HK__F_AUDIT,
			               strerror(errno));
		st->torn_cut += len - valid;
	}
	st->audit_n = n;
	st->audit_size = valid;
	return HK_OK;
}

/* ---- create / open / close ---------------------------------------- */

static hk_status create_files(hk_store *st, const hk_store_params *p)
{
	if (p->dim == 0 || p->dim > 65536)
		return hk__err(HK_E_INVALID, "creating a gallery needs dim in "
		               "1..65536 (got %u)", p->dim);
	st->dim = p->dim;
	st->policy = p->policy;
	randombytes_buf(st->gid, 16);
	memset(&st->khdr, 0, sizeof st->khdr);
	st->khdr.created = hk__st_now(st);
	khdr_fill(st);
	hk__fhdr h;
	hk__fhdr_fill(&h, MAGIC_WAL, st->dim, 0, 0, st->gid);
	hk_status s = hk__st_atomic_write(st->dirfd, HK__F_WAL, &h, sizeof h);
	if (!s) {
		hk__fhdr_fill(&h, MAGIC_AUDIT, st->dim, 0, 0, st->gid);
		s = hk__st_atomic_write(st->dirfd, HK__F_AUDIT, &h, sizeof h);
	}
	/* keys.hk last: its presence means the gallery exists. */
	if (!s)
		s = hk__st_atomic_write(st->dirfd, HK__F_KEYS, &st->khdr,
		                     sizeof st->khdr);
	return s;
}

static void remove_temps(int dirfd)
{
	static const char *names[] = {HK__F_KEYS, HK__F_WAL, HK__F_SNAP,
	                              HK__F_AUDIT};
	for (size_t i = 0; i < 4; i++) {
		char tmp[64];
		snprintf(tmp, sizeof tmp, "%s.tmp", names[i]);
		unlinkat(dirfd, tmp, 0);
	}
}

static int open_rw(hk_store *st, const char *name)
{
	return openat(st->dirfd, name, O_RDWR | O_CLOEXEC);
}

static hk_status finish_open(hk_store *st, replay *rp)
{
	if (rp->keys_file_len > st->keys_size) {
		if (ftruncate(st->keys_fd, (off_t)st->keys_size) ||
		    fdatasync(st->keys_fd))
			return hk__err(HK_E_IO, "%s: cutting torn tail: %s", HK__F_KEYS,
			               strerror(errno));
		st->torn_cut += rp->keys_file_len - st->keys_size;
	}
	/* Live keys no record names (spares of an earlier session, or keys of
	 * subjects a crashed compaction had already dropped) are never handed
	 * out again: the next compaction leaves them out of keys.hk. */
	return HK_OK;
}

hk_status hk_store_open(const char *dir, const hk_store_params *p,
                        hk_store **out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "hk_store_open: out is NULL");
	*out = NULL;
	if (!dir || !p)
		return hk__err(HK_E_INVALID, "hk_store_open: dir or params is NULL");
	if (!p->master_key)
		return hk__err(HK_E_CRYPTO, "no master key given (a gallery is "
		               "always encrypted: pass %d key bytes)",
		               HK_STORE_KEY_BYTES);
	if (sodium_init() < 0)
		return hk__err(HK_E_CRYPTO, "libsodium failed to initialise");
	if ((p->flags & HK_STORE_CREATE) && mkdir(dir, 0700) && errno != EEXIST)
		return hk__err(HK_E_IO, "%s: mkdir: %s", dir, strerror(errno));
	hk_store *st = calloc(1, sizeof *st);
	if (!st)
		return hk__err(HK_E_NOMEM, "store");
	st->dirfd = st->wal_fd = st->keys_fd = st->audit_fd = -1;
	pthread_rwlock_init(&st->rw, NULL);
	pthread_mutex_init(&st->wal_mu, NULL);
	pthread_mutex_init(&st->gc_mu, NULL);
	pthread_cond_init(&st->gc_cv, NULL);
	pthread_mutex_init(&st->audit_mu, NULL);
	atomic_store(&st->next_deadline, INT64_MAX);
	st->clock = p->clock;
	st->clock_user = p->clock_user;
	st->window_us = p->commit_window_us;
	st->auto_compact = p->auto_compact_bytes;
	st->pool_batch = 16;
	st->dim = p->dim;
	randombytes_buf(st->hkey, sizeof st->hkey);
	replay rp = {.st = st};
	hk_status s = HK_OK;
	st->k = sodium_malloc(sizeof *st->k);
	if (!st->k) {
		s = hk__err(HK_E_NOMEM, "key memory");
		goto fail;
	}
	if ((s = hk__keys_derive(st->k, p->master_key)))
		goto fail;
	st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd < 0) {
		s = hk__err(errno == ENOENT ? HK_E_NOT_FOUND : HK_E_IO,
		            "gallery %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(st->dirfd, LOCK_EX | LOCK_NB)) {
		s = hk__err(HK_E_BUSY, "gallery %s is open in another process",
		            dir);
		goto fail;
	}
	remove_temps(st->dirfd);
	if (faccessat(st->dirfd, HK__F_KEYS, F_OK, 0)) {
		if (!(p->flags & HK_STORE_CREATE)) {
			s = hk__err(HK_E_NOT_FOUND, "%s is not a herken gallery (no %s)",
			            dir, HK__F_KEYS);
			goto fail;
		}
		if ((s = create_files(st, p)))
			goto fail;
	}
	st->keys_fd = open_rw(st, HK__F_KEYS);
	st->wal_fd = open_rw(st, HK__F_WAL);
	st->audit_fd = open_rw(st, HK__F_AUDIT);
	if (st->keys_fd < 0 || st->wal_fd < 0 || st->audit_fd < 0) {
		s = hk__err(errno == ENOENT ? HK_E_FORMAT : HK_E_IO,
		            "gallery %s: a file is missing or unreadable: %s", dir,
		            strerror(errno));
		goto fail;
	}
	if ((s = load_keys(st, &rp)))
		goto fail;
	hk_gallery_params gp = p->gallery;
	gp.dim = st->dim;
	if (!gp.capacity) {
		/* size the index once from the files instead of doubling it
		 * during replay (each template costs about dim * 4 bytes) */
		struct stat sb;
		uint64_t bytes = 0;
		if (!fstatat(st->dirfd, HK__F_SNAP, &sb, 0))
			bytes += (uint64_t)sb.st_size;
		if (!fstat(st->wal_fd, &sb))
			bytes += (uint64_t)sb.st_size;
		uint64_t est = bytes / ((uint64_t)st->dim * 4) + 1024;
		gp.capacity = est > (1u << 30) ? (1u << 30) : (uint32_t)est;
	}
	if ((s = hk_gallery_create(&gp, &st->g)))
		goto fail;
	if ((s = load_snapshot(st, &rp)) || (s = load_wal(st, &rp)) ||
	    (s = load_audit(st)) || (s = finish_open(st, &rp)))
		goto fail;
	st->written = st->synced = atomic_load(&st->seq);
	if (rp.ks)
		sodium_memzero(rp.ks, rp.nks * sizeof *rp.ks);
	free(rp.ks);
	*out = st;
	return HK_OK;
fail:
	if (rp.ks)
		sodium_memzero(rp.ks, rp.nks * sizeof *rp.ks);
	free(rp.ks);
	{
		/* keep the message of the real failure */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", hk_last_error());
		hk_store_close(st);
		hk__err(s, "%s", msg);
	}
	return s;
}

hk_status hk_store_close(hk_store *st)
{
	if (!st)
		return HK_OK;
	hk_status s = HK_OK;
	if (st->wal_fd >= 0 && st->g) {
		s = hk__commit_wait(st, st->written);
		if (!s && st->audit_fd >= 0 && fdatasync(st->audit_fd))
			s = hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_AUDIT,
			            strerror(errno));
	}
	for (size_t i = 0; i < st->by_key.cap; i++)
		hk__subj_free(hk__st_map_at(&st->by_key, i));
	hk__st_map_free(&st->by_key);
	hk__st_map_free(&st->by_name);
	if (st->pool)
		sodium_memzero(st->pool, st->pool_cap * sizeof *st->pool);
	free(st->pool);
	hk_gallery_destroy(st->g);
	if (st->wal_fd >= 0)
		close(st->wal_fd);
	if (st->keys_fd >= 0)
		close(st->keys_fd);
	if (st->audit_fd >= 0)
		close(st->audit_fd);
	if (st->dirfd >= 0)
		close(st->dirfd); /* releases the flock */
	sodium_free(st->k);
	pthread_rwlock_destroy(&st->rw);
	pthread_mutex_destroy(&st->wal_mu);
	pthread_mutex_destroy(&st->gc_mu);
	pthread_cond_destroy(&st->gc_cv);
	pthread_mutex_destroy(&st->audit_mu);
	free(st);
	return s;
}

/* ---- enrol -------------------------------------------------------- */

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

hk_status hk_store_enroll(hk_store *st, const hk_consent *c, const float *emb,
                          size_t n, hk_enroll_receipt *r)
{
	if (!st)
		return hk__err(HK_E_INVALID, "hk_store_enroll: store is NULL");
	hk_status s;
	uint64_t seq = 0;
	int64_t now = hk__st_now(st);
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
	if (c->source == HK_SOURCE_STREAM || c->source > HK_SOURCE_STREAM) {
		hk__audit(st, HK__A_REFUSED, HK__D_REFUSED, 0, 0, c->source,
		          (uint32_t)n, NULL, HK__A_ENROL);
		return hk__err(HK_E_POLICY, "templates from a stream source are "
		               "never enrolled");
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
			s = pool_refill(st);
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
	if ((s = body_build(st->dim, now, c->time, c->expires, now, c->source,
	                    c->subject, c->purpose, c->consent_version,
	                    c->channel, NULL, 0, emb, (uint32_t)n, &plain, &plen)))
		goto out;
	pthread_mutex_lock(&st->wal_mu);
	seq = atomic_load(&st->seq) + 1;
	s = hk__seal_record(st, HK__R_ENROL, seq, key_id, key, plain, plen, &rec,
	                    &rlen);
	if (!s)
		s = wal_append_locked(st, rec, rlen, seq);
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
			s = apply_body(st, HK__R_ENROL, key_id, key_off, key, &v);
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
		e = wal_plain_locked(st, HK__R_ERASE, p->key_id, now, 3,
		                     p->n_tids, &seq);
		if (!e)
			e = key_shred_at(st, p->key_id, p->key_off);
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
		hide_subject(st, s, 0);
		pthread_rwlock_unlock(&st->rw);
		return e;
	}
	while (s) {
		hk__subj *o = s->older;
		drop_subject(st, s);
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
			int64_t d = deadline_of(st, sj);
			if (d < next)
				next = d;
			continue;
		}
		uint32_t nt = sj->n_tids;
		pthread_mutex_lock(&st->wal_mu);
		s = wal_plain_locked(st, HK__R_EXPIRE, sj->key_id, now, reason, nt,
		                     &seq);
		pthread_mutex_unlock(&st->wal_mu);
		hide_subject(st, sj, reason);
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
		if (!wal_plain_locked(st, HK__R_TOUCH, s->key_id, now, 0, s->n_tids,
		                      &seq))
			s->persisted_active = now;
	}
	pthread_mutex_unlock(&st->wal_mu);
}

/* ---- compaction ---------------------------------------------------- */

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
	int fd = openat(st->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                0600);
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
			w.s = body_build(st->dim, s->enrols[0], s->consent_time,
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
	memcpy(buf, &st->khdr, sizeof st->khdr); /* 128 bytes = one entry */
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
		kent_seal(st, &buf[1 + i], refs[i].id, key);
		uint64_t off = sizeof(hk__khdr) + i * sizeof(hk__kent);
		if (refs[i].s)
			refs[i].s->key_off = off;
		else
			refs[i].p->off = off;
	}
	hk_status s = hk__st_atomic_write(st->dirfd, HK__F_KEYS, buf, len);
	sodium_memzero(buf, len);
	free(buf);
	free(refs);
	if (s)
		return s;
	int fd = open_rw(st, HK__F_KEYS);
	if (fd < 0)
		return hk__err(HK_E_IO, "%s: reopen: %s", HK__F_KEYS, strerror(errno));
	close(st->keys_fd);
	st->keys_fd = fd;
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
	int fd = open_rw(st, HK__F_WAL);
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
			drop_subject(st, sj);
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
	pthread_rwlock_wrlock(&st->rw);
	st->policy.allow_identify = p->allow_identify ? 1 : 0;
	st->policy.inactivity_limit_s = p->inactivity_limit_s;
	khdr_fill(st);
	hk_status s = hk__st_pwrite_all(st->keys_fd, &st->khdr, sizeof st->khdr, 0,
	                             HK__F_KEYS);
	if (!s && fdatasync(st->keys_fd))
		s = hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_KEYS,
		            strerror(errno));
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
