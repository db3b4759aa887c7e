/* Durable gallery: the in-memory state (internal). */
#ifndef HK_STORE_PRIV_H
#define HK_STORE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "store_internal.h"

#include <math.h>

enum { HK__S_LIVE = 1, HK__S_HIDDEN = 2 };

/* One subject key and what it protects. Guarded by hk_store.rw. */
typedef struct hk__subj {
	char *name;
	char *texts; /* purpose \0 version \0 channel \0 */
	const char *purpose, *version, *channel;
	uint64_t key_id;
	uint64_t key_off; /* offset of its entry in keys.hk */
	uint8_t *key; /* 32 bytes in st->keymem */
	uint8_t pseudo[16];
	int64_t consent_time, expires;
	_Atomic int64_t last_active; /* queries update it under the read lock */
	int64_t persisted_active;    /* guarded by wal_mu                     */
	uint32_t source;
	int state; /* HK__S_LIVE / HK__S_HIDDEN (expired, awaiting compaction) */
	uint32_t reason; /* why hidden: 1 consent expired, 2 inactive */
	int64_t *enrols;
	uint32_t n_enrols, cap_enrols;
	hk_template_id *tids;
	uint32_t n_tids, cap_tids;
	struct hk__subj *older; /* hidden predecessors with the same name */
} hk__subj;

typedef struct hk__map {
	uint64_t *keys;
	hk__subj **vals; /* NULL empty, (hk__subj *)1 deleted */
	size_t cap, n, used;
} hk__map;

typedef struct hk__pkey {
	uint64_t id, off;
	uint8_t key[32];
} hk__pkey;

/* Subject keys live in guarded, locked memory: slabs of HK__KEYSLAB keys
 * from sodium_malloc, a freed slot wiped and put on a free list. Guarded
 * by st->rw (taken for writing) or single-threaded open / close. */
#define HK__KEYSLAB 1024
typedef struct hk__keymem {
	uint8_t **slabs;
	size_t n_slabs, used; /* slots handed out of the last slab */
	uint8_t **free;
	size_t n_free, cap_free;
} hk__keymem;

struct hk_store {
	int dirfd, wal_fd, keys_fd, audit_fd;
	uint32_t dim;
	uint8_t gid[16];
	uint8_t hkey[16]; /* SipHash key for the name table */
	hk__keys *k;      /* sodium_malloc'd (guarded, locked)  */
	hk_store_policy policy;
	/* khdr_mu guards khdr and keys_fd against the committing thread,
	 * which rewrites the header's durability watermark */
	pthread_mutex_t khdr_mu;
	hk__khdr khdr;
	hk__keymem keymem;
	hk_clock_fn clock;
	void *clock_user;
	uint32_t window_us;
	uint64_t auto_compact;
	_Atomic int compact_due; /* the log passed auto_compact */
	hk_gallery *g;

	pthread_rwlock_t rw; /* subjects + gallery: queries read, writers write */

	pthread_mutex_t wal_mu; /* seq, wal appends */
	_Atomic uint64_t seq;
	uint64_t wal_size;
	uint64_t snap_seq;

	/* key store (rw write lock) */
	uint64_t keys_size, next_key_id;
	hk__pkey *pool; /* sodium_malloc'd */
	size_t pool_head, pool_n, pool_cap, pool_batch; /* spares: [head, n) */
	uint64_t shredded; /* shredded entries still in keys.hk */

	/* group commit */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
	uint64_t written, synced;
	/* audit entries [0, audit_synced) are durable (synced at open, or by a
	 * leader, which recorded them in the watermark); guarded by gc_mu */
	uint64_t audit_synced;
	int syncing, failed;
	_Atomic int audit_dirty;
	uint64_t commits, committed;

	/* audit */
	pthread_mutex_t audit_mu;
	uint64_t audit_n, audit_size;
	uint8_t audit_prev[32];

	hk__map by_name; /* newest entry per name   */
	hk__map by_key;  /* every entry, by key id  */
	uint64_t n_live, n_hidden, n_templates;
	_Atomic int64_t next_deadline;
	uint64_t torn_cut;
};

uint64_t hk__name_hash(const uint8_t hkey[16], const char *name);
int hk__st_map_put(hk__map *m, uint64_t key, hk__subj *s);
void hk__st_map_del(hk__map *m, uint64_t key, const hk__subj *s);
void hk__st_map_free(hk__map *m);
hk__subj *hk__st_map_at(const hk__map *m, size_t i);
hk__subj *hk__by_name(const hk_store *st, const char *name);
hk__subj *hk__by_key(const hk_store *st, uint64_t key_id);
void hk__subj_free(hk_store *st, hk__subj *s);
uint8_t *hk__key_alloc(hk_store *st);
void hk__key_free(hk_store *st, uint8_t *key);
void hk__keymem_free(hk_store *st);
hk_status hk__subj_set_consent(hk__subj *s, const char *purpose, size_t lp,
                               const char *version, size_t lv,
                               const char *channel, size_t lc);
hk_status hk__subj_push_tid(hk__subj *s, hk_template_id id);
hk_status hk__subj_push_enrol(hk__subj *s, int64_t t);

/* File magics (formats in store_internal.h). */
static const char MAGIC_WAL[8] = "HKWAL\0\0";
static const char MAGIC_SNAP[8] = "HKSNAP\0";
static const char MAGIC_AUDIT[8] = "HKAUDIT";
static const char MAGIC_KEYS[8] = "HKKEYS\0";

/* Shared between the store's files: store.c (records, keys, audit,
 * applying state, group commit), replay.c (open, replay, close), enrol.c
 * (enrol, erase, expiry), compact.c (compaction, policy) and query.c. */
int64_t hk__st_now(const hk_store *st);
/* A policy rate is 0 (the library default) or inside (0, 1). */
static inline int hk__st_bad_rate(double r)
{
	return !(r == 0.0 || (r > 0.0 && r < 1.0));
}
/* keys.hk keeps a rate in 16 bits as round(-1000 log10(rate)) (0: the
 * default), i.e. to 0.23 % of its value. */
static inline uint16_t hk__st_rate_enc(double r)
{
	if (r <= 0.0)
		return 0;
	double v = round(-1000.0 * log10(r));
	return v < 1.0 ? 1 : v > 65535.0 ? 65535 : (uint16_t)v;
}
static inline double hk__st_rate_dec(uint16_t v)
{
	return v ? pow(10.0, -(double)v / 1000.0) : 0.0;
}
hk_status hk__seal_record(const hk_store *st, uint16_t type, uint64_t seq,
                          uint64_t key_id, const uint8_t key[32],
                          const uint8_t *plain, size_t plen, uint8_t **out,
                          size_t *outlen);
hk_status hk__commit_wait(hk_store *st, uint64_t seq);
hk_status hk__audit(hk_store *st, uint32_t op, uint32_t decision, float score,
                    float threshold, uint32_t source, uint32_t count,
                    const uint8_t pseudo[16], uint32_t refused_op);
hk_status hk__st_check_vec(const hk_store *st, const float *v);
hk_status hk__sweep(hk_store *st, int64_t now, size_t *count);
hk_status hk__maybe_sweep(hk_store *st, int64_t now);
void hk__touch(hk_store *st, hk__subj *s, int64_t now);
int hk__st_cmp_u64(const void *a, const void *b);
hk_status hk__st_record_open(const hk_store *st, const hk__rhdr *h,
                             const uint8_t *payload, const uint8_t key[32],
                             uint8_t **plain, size_t *plen);
hk_status hk__st_apply_body(hk_store *st, uint16_t type, uint64_t key_id,
                            uint64_t key_off, const uint8_t key[32],
                            const hk__body_view *v);
hk_status hk__st_key_shred_at(hk_store *st, uint64_t id, uint64_t off);
void hk__st_drop_subject(hk_store *st, hk__subj *s);
void hk__st_hide_subject(hk_store *st, hk__subj *s, uint32_t reason);
void hk__st_khdr_fill(hk_store *st);
/* khdr_fill, then rewrite the header in place, durable (khdr_mu held). */
hk_status hk__st_khdr_write(hk_store *st);
hk_status hk__st_pool_refill(hk_store *st);
hk_status hk__st_body_build(uint32_t dim, int64_t time, int64_t consent_time,
                            int64_t expires, int64_t last_active,
                            uint32_t source, const char *subject,
                            const char *purpose, const char *version,
                            const char *channel, const int64_t *enrols,
                            uint32_t n_enrols, const float *tpl, uint32_t n,
                            uint8_t **out, size_t *outlen);
hk_status hk__st_wal_append_locked(hk_store *st, const uint8_t *rec,
                                   size_t len, uint64_t seq);
hk_status hk__st_wal_plain_locked(hk_store *st, uint16_t type, uint64_t key_id,
                                  int64_t time, uint32_t reason, uint32_t n,
                                  uint64_t *seq_out);
int64_t hk__st_deadline_of(const hk_store *st, const hk__subj *s);
void hk__st_kent_seal(const hk_store *st, hk__kent *e, uint64_t id,
                      const uint8_t key[32]);
int hk__st_open_rw(hk_store *st, const char *name);
/* Rewrite keys.hk's header with the durability watermark (seq, audit
 * entries and head) and fdatasync it. Takes khdr_mu. */
hk_status hk__st_watermark(hk_store *st, uint64_t seq, uint64_t audit_n,
                           const uint8_t head[32]);
/* Test seam, NULL outside tests: called at the points below, so that a
 * test can run what another thread could run exactly there. Set it only
 * while no other thread uses a store. */
enum {
	HK__HOOK_AUDIT = 1,     /* hk__audit, before it appends an entry (the
	                           caller may hold rw; no other lock held) */
	HK__HOOK_AUDIT_READ = 2 /* hk_store_audit_verify, after it read the
	                           log, before it checks it (no lock held) */
};
extern void (*hk__st_test_hook)(hk_store *st, int point);

#endif
