/* Durable gallery: checksums, headers, the record walker (torn-tail rule),
 * sealed-body parsing, key derivation, the audit chain and file helpers. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void hk__st_sum(uint8_t out[HK__SUM], const void *p, size_t n)
{
	crypto_generichash(out, HK__SUM, p, n, NULL, 0);
}

bool hk__st_sum_ok(const uint8_t want[HK__SUM], const void *p, size_t n)
{
	uint8_t got[HK__SUM];
	hk__st_sum(got, p, n);
	return memcmp(got, want, HK__SUM) == 0;
}

void hk__fhdr_fill(hk__fhdr *h, const char magic[8], uint32_t dim,
                   uint64_t base_seq, uint64_t count, const uint8_t gid[16])
{
	memset(h, 0, sizeof *h);
	memcpy(h->magic, magic, 8);
	h->version = HK__ST_FORMAT;
	h->dim = dim;
	h->base_seq = base_seq;
	h->count = count;
	memcpy(h->gallery_id, gid, 16);
	hk__st_sum(h->sum, h, offsetof(hk__fhdr, sum));
}

hk_status hk__fhdr_check(const hk__fhdr *h, const char magic[8],
                         const char *what)
{
	if (memcmp(h->magic, magic, 8))
		return hk__err(HK_E_FORMAT, "%s: not a herken %s file (bad magic)",
		               what, what);
	if (!hk__st_sum_ok(h->sum, h, offsetof(hk__fhdr, sum)))
		return hk__err(HK_E_FORMAT, "%s: file header checksum mismatch "
		               "(damaged)", what);
	if (h->version != HK__ST_FORMAT)
		return hk__err(HK_E_UNSUPPORTED, "%s: format version %u, this "
		               "library reads %u", what, h->version, HK__ST_FORMAT);
	return HK_OK;
}

void hk__rhdr_fill(hk__rhdr *h, uint16_t type, uint64_t seq, uint64_t key_id,
                   const void *payload, uint32_t len)
{
	memset(h, 0, sizeof *h);
	h->magic = HK__REC_MAGIC;
	h->type = type;
	h->len = len;
	h->seq = seq;
	h->key_id = key_id;
	hk__st_sum(h->psum, payload, len);
	hk__st_sum(h->hsum, h, offsetof(hk__rhdr, hsum));
}

bool hk__zero_tail(const uint8_t *p, size_t n, uint64_t off)
{
	/* z = one past the last non-zero byte */
	size_t z = n;
	while (z > 0 && p[z - 1] == 0)
		z--;
	if (z == 0)
		return n > 0;
	if (z == n)
		return false;
	/* a 512-byte file boundary within [z, n) */
	uint64_t first = ((off + z + 511) / 512) * 512;
	return first < off + n;
}

hk_status hk__records_walk(const uint8_t *buf, size_t len, uint64_t file_off,
                           const char *what, bool allow_torn,
                           hk__rec_fn fn, void *user, size_t *valid_len)
{
	size_t off = 0;
	*valid_len = 0;
	while (off < len) {
		size_t rem = len - off;
		uint64_t at = file_off + off;
		bool torn = false;
		hk__rhdr h;
		if (rem < sizeof h) {
			torn = true;
		} else {
			memcpy(&h, buf + off, sizeof h);
			if (!hk__st_sum_ok(h.hsum, &h, offsetof(hk__rhdr, hsum))) {
				if (!hk__zero_tail(buf + off, rem, at))
					return hk__err(HK_E_FORMAT, "%s: record header "
					               "at offset %llu is damaged (checksum "
					               "mismatch, not a torn write)", what,
					               (unsigned long long)at);
				torn = true;
			} else if (h.magic != HK__REC_MAGIC || h.type < HK__R_ENROL ||
			           h.type > HK__R_SUBJECT || h.len > HK__REC_MAX) {
				return hk__err(HK_E_FORMAT, "%s: record at offset %llu "
				               "has type %u length %u", what,
				               (unsigned long long)at, h.type, h.len);
			} else if (h.len > rem - sizeof h) {
				torn = true; /* header reached the disk, payload did not */
			} else if (!hk__st_sum_ok(h.psum, buf + off + sizeof h, h.len)) {
				/* torn only if everything from here to the end is a
				 * write that stopped: zeros from a sector boundary on */
				if (!hk__zero_tail(buf + off, rem, at))
					return hk__err(HK_E_FORMAT, "%s: record %llu at "
					               "offset %llu is damaged (payload "
					               "checksum mismatch)", what,
					               (unsigned long long)h.seq,
					               (unsigned long long)at);
				torn = true;
			}
		}
		if (torn) {
			if (!allow_torn)
				return hk__err(HK_E_FORMAT, "%s: truncated at offset "
				               "%llu", what, (unsigned long long)at);
			*valid_len = off;
			return HK_OK;
		}
		if (fn) {
			hk_status s = fn(user, &h, buf + off + sizeof h, at);
			if (s)
				return s;
		}
		off += sizeof h + h.len;
		*valid_len = off;
	}
	return HK_OK;
}

size_t hk__body_size(const hk__body *b)
{
	size_t s = sizeof *b + b->len_subject + b->len_purpose + b->len_version +
	           b->len_channel;
	s = (s + 7) & ~(size_t)7;
	s += (size_t)b->n_enrols * 8;
	s += (size_t)b->n_templates * b->dim * 4;
	return s;
}

static bool text_ok(const char *p, size_t n, size_t min)
{
	return n >= min && n <= HK_STORE_TEXT_MAX && !memchr(p, 0, n);
}

hk_status hk__body_parse(const uint8_t *plain, size_t n, uint32_t dim,
                         uint16_t type, hk__body_view *v)
{
	memset(v, 0, sizeof *v);
	if (n < sizeof v->b)
		return hk__err(HK_E_FORMAT, "sealed body of %zu bytes is too short",
		               n);
	memcpy(&v->b, plain, sizeof v->b);
	const hk__body *b = &v->b;
	if (b->dim != dim)
		return hk__err(HK_E_FORMAT, "body dimension %u, gallery has %u",
		               b->dim, dim);
	if (b->n_templates == 0 || b->n_templates > HK__REC_MAX / 4 / dim)
		return hk__err(HK_E_FORMAT, "body has %u templates", b->n_templates);
	if (type == HK__R_ENROL ? b->n_enrols != 0
	                        : (b->n_enrols == 0 || b->n_enrols > HK__REC_MAX / 8))
		return hk__err(HK_E_FORMAT, "body has %u enrolment dates",
		               b->n_enrols);
	if (hk__body_size(b) != n)
		return hk__err(HK_E_FORMAT, "body size %zu, fields say %zu", n,
		               hk__body_size(b));
	const char *t = (const char *)plain + sizeof *b;
	v->subject = t;
	v->purpose = v->subject + b->len_subject;
	v->version = v->purpose + b->len_purpose;
	v->channel = v->version + b->len_version;
	if (!text_ok(v->subject, b->len_subject, 1) ||
	    b->len_subject > HK_SUBJECT_MAX ||
	    !text_ok(v->purpose, b->len_purpose, 1) ||
	    !text_ok(v->version, b->len_version, 1) ||
	    !text_ok(v->channel, b->len_channel, 1))
		return hk__err(HK_E_FORMAT, "body has a bad text field");
	size_t o = sizeof *b + b->len_subject + b->len_purpose + b->len_version +
	           b->len_channel;
	o = (o + 7) & ~(size_t)7;
	v->enrols_raw = plain + o;
	o += (size_t)b->n_enrols * 8;
	v->templates = plain + o;
	return HK_OK;
}

hk_status hk__keys_derive(hk__keys *k, const uint8_t master[32])
{
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'h', 'e', 'r', 'k',
	                                                  'e', 'n', 's', 't'};
	if (crypto_kdf_derive_from_key(k->wrap, 32, 1, ctx, master) ||
	    crypto_kdf_derive_from_key(k->header, 32, 2, ctx, master) ||
	    crypto_kdf_derive_from_key(k->audit, 32, 3, ctx, master) ||
	    crypto_kdf_derive_from_key(k->receipt, 32, 4, ctx, master))
		return hk__err(HK_E_CRYPTO, "key derivation failed");
	return HK_OK;
}

void hk__pseudonym(uint8_t out[16], const uint8_t subject_key[32])
{
	static const char msg[] = "herken audit pseudonym v1";
	crypto_generichash(out, 16, (const uint8_t *)msg, sizeof msg - 1,
	                   subject_key, 32);
}

void hk__audit_mac(uint8_t out[32], const uint8_t audit_key[32],
                   const uint8_t prev[32], const hk__aent *e)
{
	crypto_generichash_state s;
	crypto_generichash_init(&s, audit_key, 32, 32);
	crypto_generichash_update(&s, prev, 32);
	crypto_generichash_update(&s, (const uint8_t *)e, offsetof(hk__aent, mac));
	crypto_generichash_final(&s, out, 32);
}

void hk__audit_genesis(uint8_t out[32], const uint8_t audit_key[32],
                       const hk__fhdr *h)
{
	crypto_generichash(out, 32, (const uint8_t *)h, sizeof *h, audit_key, 32);
}

hk_status hk__audit_check(const uint8_t *buf, size_t len,
                          const uint8_t audit_key[32], hk__audit_fn fn,
                          void *user, uint64_t *entries, uint64_t *bad,
                          uint8_t head[32])
{
	*entries = 0;
	*bad = UINT64_MAX;
	if (len < sizeof(hk__fhdr))
		return hk__err(HK_E_FORMAT, "audit log: %zu bytes, shorter than "
		               "its header", len);
	hk__fhdr h;
	memcpy(&h, buf, sizeof h);
	hk_status s = hk__fhdr_check(&h, "HKAUDIT", "audit log");
	if (s)
		return s;
	uint8_t prev[32];
	hk__audit_genesis(prev, audit_key, &h);
	size_t n = (len - sizeof h) / sizeof(hk__aent);
	for (size_t i = 0; i < n; i++) {
		hk__aent e;
		memcpy(&e, buf + sizeof h + i * sizeof e, sizeof e);
		uint8_t mac[32];
		hk__audit_mac(mac, audit_key, prev, &e);
		if (e.index != i || sodium_memcmp(mac, e.mac, 32)) {
			*bad = i;
			*entries = i;
			return hk__err(HK_E_CRYPTO, "audit log: entry %zu fails the "
			               "hash chain (edited, reordered or removed "
			               "entries, or a different master key)", i);
		}
		if (fn)
			fn(user, &e);
		memcpy(prev, e.mac, 32);
	}
	*entries = n;
	if (head)
		memcpy(head, prev, 32);
	if ((len - sizeof h) % sizeof(hk__aent)) {
		*bad = n;
		return hk__err(HK_E_FORMAT, "audit log: %zu trailing bytes after "
		               "entry %zu (truncated)",
		               (len - sizeof h) % sizeof(hk__aent), n);
	}
	return HK_OK;
}

/* ---- files -------------------------------------------------------- */

int hk__st_openat(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	                                 O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat sb;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		int e = errno;
		close(fd);
		errno = S_ISREG(sb.st_mode) ? e : EMEDIUMTYPE;
		return -1;
	}
	/* regular files ignore O_NONBLOCK; clear it all the same */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

hk_status hk__st_open_err(int err, const char *name, const char *dir)
{
	const char *d = dir ? dir : "";
	const char *sep = dir ? ": " : "";
	if (err == ENOENT)
		return hk__err(HK_E_FORMAT, "%s%s%s is missing from the gallery "
		               "(a gallery opens only whole)", d, sep, name);
	if (err == ELOOP)
		return hk__err(HK_E_IO, "%s%s%s is a symbolic link: refused (a "
		               "gallery's files are never followed out of its "
		               "directory)", d, sep, name);
	if (err == EMEDIUMTYPE)
		return hk__err(HK_E_IO, "%s%s%s is not a regular file (a FIFO, "
		               "device or directory): refused", d, sep, name);
	return hk__err(hk__status_of_errno(err), "%s%s%s: %s", d, sep, name,
	               strerror(err));
}

int hk__st_create_tmp(int dirfd, const char *tmp)
{
	unlinkat(dirfd, tmp, 0); /* a leftover of a crash (a link is removed,
	                            never followed) */
	return openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	                              O_CLOEXEC, 0600);
}

/* Opens gallery file name read-only (hk__st_openat's rules) and sizes it
 * by fstat. On success *fd is open and the caller closes it. */
static hk_status open_sized(int dirfd, const char *name, int *fd, size_t *n)
{
	*fd = hk__st_openat(dirfd, name, O_RDONLY);
	if (*fd < 0)
		return errno == ENOENT ? hk__err(HK_E_NOT_FOUND, "%s is missing",
		                                 name)
		                       : hk__st_open_err(errno, name, NULL);
	struct stat sb;
	if (fstat(*fd, &sb) || sb.st_size < 0) {
		int e = errno;
		close(*fd);
		return hk__err(HK_E_IO, "%s: %s", name, strerror(e));
	}
	*n = (size_t)sb.st_size;
	return HK_OK;
}

hk_status hk__st_read_file(int dirfd, const char *name, uint8_t **buf,
                        size_t *len)
{
	*buf = NULL;
	*len = 0;
	int fd;
	size_t n;
	hk_status s = open_sized(dirfd, name, &fd, &n);
	if (s)
		return s;
	uint8_t *p = malloc(n ? n : 1);
	if (!p) {
		close(fd);
		return hk__err(HK_E_NOMEM, "%s: %zu bytes", name, n);
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(p);
			close(fd);
			return hk__err(HK_E_IO, "%s: read: %s", name, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = p;
	*len = n;
	return HK_OK;
}

hk_status hk__st_write_all(int fd, const void *p, size_t n, const char *what)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return hk__err(HK_E_IO, "%s: write: %s", what,
			               w < 0 ? strerror(errno) : "no progress");
		b += w;
		n -= (size_t)w;
	}
	return HK_OK;
}

hk_status hk__st_pwrite_all(int fd, const void *p, size_t n, uint64_t off,
                         const char *what)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return hk__err(HK_E_IO, "%s: pwrite: %s", what,
			               w < 0 ? strerror(errno) : "no progress");
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return HK_OK;
}

hk_status hk__st_pwrite_sync(int fd, const void *p, size_t n, uint64_t off,
                             const char *what)
{
	hk_status s = hk__st_pwrite_all(fd, p, n, off, what);
	if (!s && fdatasync(fd))
		s = hk__err(HK_E_IO, "%s: fdatasync: %s", what, strerror(errno));
	return s;
}

hk_status hk__st_fsync_dir(int dirfd)
{
	if (fsync(dirfd))
		return hk__err(HK_E_IO, "fsync of the gallery directory: %s",
		               strerror(errno));
	return HK_OK;
}

hk_status hk__st_atomic_write(int dirfd, const char *name, const void *p,
                           size_t n)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	int fd = hk__st_create_tmp(dirfd, tmp);
	if (fd < 0)
		return hk__err(HK_E_IO, "%s: create: %s", tmp, strerror(errno));
	hk_status s = hk__st_write_all(fd, p, n, tmp);
	if (!s && fsync(fd))
		s = hk__err(HK_E_IO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	if (!s && renameat(dirfd, tmp, dirfd, name))
		s = hk__err(HK_E_IO, "rename %s -> %s: %s", tmp, name,
		            strerror(errno));
	if (s) {
		unlinkat(dirfd, tmp, 0);
		return s;
	}
	return hk__st_fsync_dir(dirfd);
}

hk_status hk__st_map_file(int dirfd, const char *name, const uint8_t **buf,
                       size_t *len)
{
	static const uint8_t empty[1];
	*buf = NULL;
	*len = 0;
	int fd;
	size_t n;
	hk_status s = open_sized(dirfd, name, &fd, &n);
	if (s)
		return s;
	if (n == 0) {
		close(fd);
		*buf = empty;
		return HK_OK;
	}
	/* mapped, not read: replaying a 1 GB log should not first fault in
	 * and copy 1 GB of fresh anonymous pages */
	void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return hk__err(HK_E_IO, "%s: mmap: %s", name, strerror(e));
	madvise(p, n, MADV_SEQUENTIAL);
	*buf = p;
	*len = n;
	return HK_OK;
}

void hk__st_unmap_file(const uint8_t *buf, size_t len)
{
	if (buf && len)
		munmap((void *)(uintptr_t)buf, len);
}
