/*
 * Durable gallery: open and replay (keys.hk, snapshot.hk, wal.hk,
 * audit.hk), create and close. Locking: see store.c.
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
	int have_snap;
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
	hk_status s = hk__st_record_open(rp->st, h, payload, k->key, &plain, &plen);
	if (s)
		return s;
	hk__body_view v;
	s = hk__body_parse(plain, plen, rp->st->dim, h->type, &v);
	if (!s)
		s = hk__st_apply_body(rp->st, h->type, k->id, k->off, k->key, &v);
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
		hk_status r = hk__st_key_shred_at(st, k->id, k->off);
		if (r)
			return r;
		if (fdatasync(st->keys_fd))
			return hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_KEYS,
			               strerror(errno));
		k->state = HK__KEY_SHRED;
		sodium_memzero(k->key, 32);
		st->shredded++;
		hk__st_drop_subject(st, s);
		return HK_OK;
	}
	case HK__R_EXPIRE:
		hk__st_hide_subject(st, s, t.reason);
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
			            "(or its %s was tampered with or replaced)",
			            HK__F_KEYS);
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
	st->policy.target_fmr = hk__st_rate_dec(h.target_fmr_ml);
	st->policy.target_fpir = hk__st_rate_dec(h.target_fpir_ml);

	size_t n = (len - sizeof h) / sizeof(hk__kent);
	rp->ks = sodium_allocarray(n ? n : 1, sizeof *rp->ks); /* keys inside */
	if (rp->ks)
		memset(rp->ks, 0, (n ? n : 1) * sizeof *rp->ks);
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
		return HK_OK; /* never compacted (load_wal checks that) */
	if (s)
		return s;
	rp->have_snap = 1;
	hk__fhdr h;
	if (len < sizeof h) {
		hk__st_unmap_file(buf, len);
		return hk__err(HK_E_FORMAT, "%s: truncated header", HK__F_SNAP);
	}
	memcpy(&h, buf, sizeof h);
	s = hk__fhdr_check(&h, MAGIC_SNAP, HK__F_SNAP);
	if (!s && (memcmp(h.gallery_id, st->gid, 16) || h.dim != st->dim))
		s = hk__err(HK_E_FORMAT, "%s and %s belong to different galleries", HK__F_SNAP, HK__F_KEYS);
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
		s = hk__err(HK_E_FORMAT, "%s and %s belong to different galleries", HK__F_WAL, HK__F_KEYS);
	if (!s && h.base_seq > st->snap_seq && !rp->have_snap)
		s = hk__err(HK_E_FORMAT, "%s is missing: %s starts after version "
		            "%llu, which only a snapshot holds", HK__F_SNAP,
		            HK__F_WAL, (unsigned long long)h.base_seq);
	else if (!s && h.base_seq > st->snap_seq)
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
	if (atomic_load(&st->seq) < st->khdr.durable_seq)
		return hk__err(HK_E_FORMAT, "%s ends at version %llu, but version "
		               "%llu was durable (recorded in %s): acknowledged "
		               "records were cut (log truncated or replaced)",
		               HK__F_WAL, (unsigned long long)atomic_load(&st->seq),
		               (unsigned long long)st->khdr.durable_seq, HK__F_KEYS);
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
		return hk__err(HK_E_FORMAT, "%s and %s belong to different "
		               "galleries", HK__F_AUDIT, HK__F_KEYS);
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
	uint64_t want = st->khdr.durable_audit;
	if (n < want)
		return hk__err(HK_E_FORMAT, "%s holds %llu entries, but %llu were "
		               "durable (recorded in %s): entries were cut (log "
		               "truncated or replaced)", HK__F_AUDIT,
		               (unsigned long long)n, (unsigned long long)want,
		               HK__F_KEYS);
	if (want) {
		hk__aent e;
		if (pread(st->audit_fd, &e, sizeof e,
		          (off_t)(sizeof h + (want - 1) * sizeof e)) != sizeof e)
			return hk__err(HK_E_IO, "%s: read: %s", HK__F_AUDIT,
			               strerror(errno));
		if (memcmp(e.mac, st->khdr.audit_head, sizeof st->khdr.audit_head))
			return hk__err(HK_E_FORMAT, "%s: entry %llu is not the one "
			               "recorded in %s (audit log replaced)",
			               HK__F_AUDIT, (unsigned long long)(want - 1),
			               HK__F_KEYS);
	}
	if (valid < len) {
		if (ftruncate(st->audit_fd, (off_t)valid))
			return hk__err(HK_E_IO, "%s: cutting torn tail: %s", HK__F_AUDIT,
			               strerror(errno));
		st->torn_cut += len - valid;
	}
	st->audit_n = n;
	st->audit_size = valid;
	st->audit_synced = n; /* finish_open syncs what was found */
	return HK_OK;
}

/* ---- create / open / close ---------------------------------------- */

static hk_status create_files(hk_store *st, const hk_store_params *p)
{
	if (p->dim == 0 || p->dim > 65536)
		return hk__err(HK_E_INVALID, "creating a gallery needs dim in "
		               "1..65536 (got %u)", p->dim);
	if (hk__st_bad_rate(p->policy.target_fmr) || hk__st_bad_rate(p->policy.target_fpir))
		return hk__err(HK_E_RANGE, "policy target FMR %g / FPIR %g: each must be 0 "
		               "(the default) or inside (0, 1)", p->policy.target_fmr,
		               p->policy.target_fpir);
	st->dim = p->dim;
	st->policy = p->policy;
	/* as keys.hk keeps them */
	st->policy.target_fmr = hk__st_rate_dec(hk__st_rate_enc(p->policy.target_fmr));
	st->policy.target_fpir = hk__st_rate_dec(hk__st_rate_enc(p->policy.target_fpir));
	randombytes_buf(st->gid, 16);
	memset(&st->khdr, 0, sizeof st->khdr);
	st->khdr.created = hk__st_now(st);
	hk__st_khdr_fill(st);
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

int hk__st_open_rw(hk_store *st, const char *name)
{
	return hk__st_openat(st->dirfd, name, O_RDWR);
}

/* The gallery's files, named in the error when one is missing. */
static hk_status open_file(hk_store *st, const char *dir, const char *name,
                           int *fd)
{
	*fd = hk__st_open_rw(st, name);
	if (*fd >= 0)
		return HK_OK;
	return hk__st_open_err(errno, name, dir);
}

/* Is the directory empty but for "." and ".."? 0 yes, else the name of
 * the first entry found is copied to first. */
static int dir_entries(int dirfd, char *first, size_t len)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		snprintf(first, len, "(unreadable)");
		return 1;
	}
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(first, len, "%s", e->d_name);
			n = 1;
			break;
		}
	closedir(d);
	return n;
}

/* mkdir dir 0700 and fsync its parent, so the new entry survives a power
 * loss. 0 created, 1 existed, or an error status. */
static hk_status make_dir(const char *dir, int *created)
{
	*created = 0;
	if (mkdir(dir, 0700)) {
		if (errno == EEXIST)
			return HK_OK;
		return hk__err(HK_E_IO, "%s: mkdir: %s", dir, strerror(errno));
	}
	*created = 1;
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", dir);
	size_t n = strlen(parent);
	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = 0;
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof parent, ".");
	else if (slash == parent)
		parent[1] = 0;
	else
		*slash = 0;
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fsync(pfd)) {
		int e = errno;
		if (pfd >= 0)
			close(pfd);
		return hk__err(HK_E_IO, "%s: fsync of the parent directory after "
		               "mkdir: %s", dir, strerror(e));
	}
	close(pfd);
	return HK_OK;
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
	/* What replay found may not have been synced before a crash: make it
	 * durable now, so the watermark written later never runs ahead. */
	if (fdatasync(st->wal_fd) || fdatasync(st->audit_fd))
		return hk__err(HK_E_IO, "syncing the gallery at open: %s",
		               strerror(errno));
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
	if (sodium_is_zero(p->master_key, HK_STORE_KEY_BYTES))
		return hk__err(HK_E_CRYPTO, "the master key is all zeros: refused");
	int created = 0;
	if (p->flags & HK_STORE_CREATE) {
		hk_status ms = make_dir(dir, &created);
		if (ms)
			return ms;
	}
	hk_store *st = calloc(1, sizeof *st);
	if (!st)
		return hk__err(HK_E_NOMEM, "store");
	st->dirfd = st->wal_fd = st->keys_fd = st->audit_fd = -1;
	pthread_rwlock_init(&st->rw, NULL);
	pthread_mutex_init(&st->wal_mu, NULL);
	pthread_mutex_init(&st->gc_mu, NULL);
	pthread_cond_init(&st->gc_cv, NULL);
	pthread_mutex_init(&st->audit_mu, NULL);
	pthread_mutex_init(&st->khdr_mu, NULL);
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
		s = hk__err(hk__status_of_errno(errno),
		            "gallery %s: %s", dir, strerror(errno));
		goto fail;
	}
	struct stat dsb;
	if (fstat(st->dirfd, &dsb)) {
		s = hk__err(HK_E_IO, "gallery %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (dsb.st_mode & 022) {
		/* anyone else who can write here can swap, link or delete the
		 * gallery's files */
		s = hk__err(HK_E_IO, "gallery %s is writable by group or others "
		            "(mode %04o): refused; chmod go-w it", dir,
		            (unsigned)(dsb.st_mode & 07777));
		goto fail;
	}
	if (flock(st->dirfd, LOCK_EX | LOCK_NB)) {
		s = hk__err(HK_E_BUSY, "gallery %s is open in another process",
		            dir);
		goto fail;
	}
	remove_temps(st->dirfd);
	if (faccessat(st->dirfd, HK__F_KEYS, F_OK, AT_SYMLINK_NOFOLLOW)) {
		/* A gallery opens only whole, and is created only in an empty
		 * (or new) directory: never on top of a gallery whose key store
		 * went missing, nor over anyone's files. */
		char first[256] = "";
		int other = dir_entries(st->dirfd, first, sizeof first);
		int ours = !faccessat(st->dirfd, HK__F_WAL, F_OK, AT_SYMLINK_NOFOLLOW) ||
		           !faccessat(st->dirfd, HK__F_AUDIT, F_OK, AT_SYMLINK_NOFOLLOW) ||
		           !faccessat(st->dirfd, HK__F_SNAP, F_OK, AT_SYMLINK_NOFOLLOW);
		if (ours) {
			s = hk__err(HK_E_FORMAT, "gallery %s: %s is missing (the other "
			            "files are there): restore it; nothing was changed",
			            dir, HK__F_KEYS);
			goto fail;
		}
		if (!(p->flags & HK_STORE_CREATE)) {
			s = hk__err(HK_E_NOT_FOUND, "%s is not a herken gallery (no %s)",
			            dir, HK__F_KEYS);
			goto fail;
		}
		if (other && !created) {
			s = hk__err(HK_E_EXISTS, "%s is not empty (it holds %s): a "
			            "gallery is created only in an empty or new "
			            "directory", dir, first);
			goto fail;
		}
		if ((s = create_files(st, p)))
			goto fail;
	}
	if ((s = open_file(st, dir, HK__F_KEYS, &st->keys_fd)) ||
	    (s = open_file(st, dir, HK__F_WAL, &st->wal_fd)) ||
	    (s = open_file(st, dir, HK__F_AUDIT, &st->audit_fd)))
		goto fail;
	if ((s = load_keys(st, &rp)))
		goto fail;
	hk_gallery_params gp = p->gallery;
	gp.dim = st->dim;
	if (!gp.capacity) {
		/* size the index once from the files instead of doubling it
		 * during replay (each template costs about dim * 4 bytes) */
		struct stat sb;
		uint64_t bytes = 0;
		if (!fstatat(st->dirfd, HK__F_SNAP, &sb, AT_SYMLINK_NOFOLLOW))
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
	sodium_free(rp.ks); /* wipes */
	*out = st;
	return HK_OK;
fail:
	sodium_free(rp.ks); /* wipes */
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
		/* count the audit entries, then sync, then record the count (as
		 * the group commit does): a count taken after the sync could
		 * include an entry that the sync did not cover */
		uint64_t an;
		uint8_t head[32];
		pthread_mutex_lock(&st->audit_mu);
		an = st->audit_n;
		memcpy(head, st->audit_prev, 32);
		pthread_mutex_unlock(&st->audit_mu);
		if (!s && st->audit_fd >= 0 && fdatasync(st->audit_fd))
			s = hk__err(HK_E_IO, "%s: fdatasync: %s", HK__F_AUDIT,
			            strerror(errno));
		if (!s && st->keys_fd >= 0)
			s = hk__st_watermark(st, st->synced, an, head);
	}
	for (size_t i = 0; i < st->by_key.cap; i++)
		hk__subj_free(st, hk__st_map_at(&st->by_key, i));
	hk__st_map_free(&st->by_key);
	hk__st_map_free(&st->by_name);
	sodium_free(st->pool); /* wipes */
	hk__keymem_free(st);
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
	pthread_mutex_destroy(&st->khdr_mu);
	free(st);
	return s;
}

