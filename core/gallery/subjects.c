/* Durable gallery: the in-memory subject table (open addressing, SipHash
 * on names with a per-process random key so names cannot be chosen to
 * collide). */
#define _GNU_SOURCE
#include "store_priv.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define TOMB ((hk__subj *)1)

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t hk__name_hash(const uint8_t hkey[16], const char *name)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, (const uint8_t *)name, strlen(name), hkey);
	uint64_t v;
	memcpy(&v, h, sizeof v);
	return v;
}

/* The first slot on key's probe path that holds no entry (empty, or a
 * tombstone): where key goes. */
static size_t free_slot(hk__subj *const *vals, size_t cap, uint64_t key)
{
	size_t j = mix64(key) & (cap - 1);
	while (vals[j] && vals[j] != TOMB)
		j = (j + 1) & (cap - 1);
	return j;
}

static int map_grow(hk__map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	while (m->n * 2 >= cap)
		cap *= 2;
	uint64_t *k = calloc(cap, sizeof *k);
	hk__subj **v = calloc(cap, sizeof *v);
	if (!k || !v) {
		free(k);
		free(v);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->vals[i] || m->vals[i] == TOMB)
			continue;
		size_t j = free_slot(v, cap, m->keys[i]);
		k[j] = m->keys[i];
		v[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = k;
	m->vals = v;
	m->cap = cap;
	m->used = m->n;
	return 0;
}

int hk__st_map_put(hk__map *m, uint64_t key, hk__subj *s)
{
	if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m))
		return -1;
	size_t j = free_slot(m->vals, m->cap, key);
	if (!m->vals[j])
		m->used++;
	m->keys[j] = key;
	m->vals[j] = s;
	m->n++;
	return 0;
}

/* Slot of the entry with this key for which eq(entry, ctx) holds. */
static size_t map_slot(const hk__map *m, uint64_t key,
                       int (*eq)(const hk__subj *, const void *),
                       const void *ctx)
{
	if (!m->cap)
		return SIZE_MAX;
	size_t j = mix64(key) & (m->cap - 1);
	while (m->vals[j]) {
		if (m->vals[j] != TOMB && m->keys[j] == key &&
		    (!eq || eq(m->vals[j], ctx)))
			return j;
		j = (j + 1) & (m->cap - 1);
	}
	return SIZE_MAX;
}

static int eq_name(const hk__subj *s, const void *ctx)
{
	return !strcmp(s->name, (const char *)ctx);
}

static int eq_ptr(const hk__subj *s, const void *ctx) { return s == ctx; }

hk__subj *hk__by_name(const hk_store *st, const char *name)
{
	size_t j = map_slot(&st->by_name, hk__name_hash(st->hkey, name), eq_name,
	                    name);
	return j == SIZE_MAX ? NULL : st->by_name.vals[j];
}

hk__subj *hk__by_key(const hk_store *st, uint64_t key_id)
{
	size_t j = map_slot(&st->by_key, key_id, NULL, NULL);
	return j == SIZE_MAX ? NULL : st->by_key.vals[j];
}

void hk__st_map_del(hk__map *m, uint64_t key, const hk__subj *s)
{
	size_t j = map_slot(m, key, eq_ptr, s);
	if (j == SIZE_MAX)
		return;
	m->vals[j] = TOMB;
	m->n--;
}

void hk__st_map_free(hk__map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

hk__subj *hk__st_map_at(const hk__map *m, size_t i)
{
	return (m->vals[i] && m->vals[i] != TOMB) ? m->vals[i] : NULL;
}

uint8_t *hk__key_alloc(hk_store *st)
{
	hk__keymem *m = &st->keymem;
	if (m->n_free)
		return m->free[--m->n_free];
	if (!m->n_slabs || m->used == HK__KEYSLAB) {
		uint8_t **sl = realloc(m->slabs, (m->n_slabs + 1) * sizeof *sl);
		if (!sl)
			return NULL;
		m->slabs = sl;
		uint8_t *slab = sodium_allocarray(HK__KEYSLAB, 32);
		if (!slab)
			return NULL;
		m->slabs[m->n_slabs++] = slab;
		m->used = 0;
	}
	return m->slabs[m->n_slabs - 1] + 32 * m->used++;
}

void hk__key_free(hk_store *st, uint8_t *key)
{
	if (!key)
		return;
	sodium_memzero(key, 32);
	hk__keymem *m = &st->keymem;
	if (m->n_free == m->cap_free) {
		size_t cap = m->cap_free ? 2 * m->cap_free : 64;
		uint8_t **f = realloc(m->free, cap * sizeof *f);
		if (!f)
			return; /* wiped; the slot is only lost until close */
		m->free = f;
		m->cap_free = cap;
	}
	m->free[m->n_free++] = key;
}

void hk__keymem_free(hk_store *st)
{
	hk__keymem *m = &st->keymem;
	for (size_t i = 0; i < m->n_slabs; i++)
		sodium_free(m->slabs[i]); /* wipes */
	free(m->slabs);
	free(m->free);
	memset(m, 0, sizeof *m);
}

void hk__subj_free(hk_store *st, hk__subj *s)
{
	if (!s)
		return;
	hk__key_free(st, s->key);
	if (s->name)
		sodium_memzero(s->name, strlen(s->name));
	free(s->name);
	free(s->texts);
	free(s->tids);
	free(s->enrols);
	free(s);
}

hk_status hk__subj_set_consent(hk__subj *s, const char *purpose, size_t lp,
                               const char *version, size_t lv,
                               const char *channel, size_t lc)
{
	char *t = malloc(lp + lv + lc + 3);
	if (!t)
		return hk__err(HK_E_NOMEM, "consent record");
	memcpy(t, purpose, lp);
	t[lp] = 0;
	memcpy(t + lp + 1, version, lv);
	t[lp + 1 + lv] = 0;
	memcpy(t + lp + lv + 2, channel, lc);
	t[lp + lv + 2 + lc] = 0;
	free(s->texts);
	s->texts = t;
	s->purpose = t;
	s->version = t + lp + 1;
	s->channel = t + lp + lv + 2;
	return HK_OK;
}

hk_status hk__subj_push_tid(hk__subj *s, hk_template_id id)
{
	if (s->n_tids == s->cap_tids) {
		uint32_t c = s->cap_tids ? s->cap_tids * 2 : 2;
		hk_template_id *p = realloc(s->tids, c * sizeof *p);
		if (!p)
			return hk__err(HK_E_NOMEM, "template list");
		s->tids = p;
		s->cap_tids = c;
	}
	s->tids[s->n_tids++] = id;
	return HK_OK;
}

hk_status hk__subj_push_enrol(hk__subj *s, int64_t t)
{
	if (s->n_enrols == s->cap_enrols) {
		uint32_t c = s->cap_enrols ? s->cap_enrols * 2 : 2;
		int64_t *p = realloc(s->enrols, c * sizeof *p);
		if (!p)
			return hk__err(HK_E_NOMEM, "enrolment list");
		s->enrols = p;
		s->cap_enrols = c;
	}
	s->enrols[s->n_enrols++] = t;
	return HK_OK;
}
