/* Versions, status strings, per-thread error messages, logging. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* hk_utf8_len: see herken.h. */
size_t hk_utf8_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned cp, min;
	if ((c & 0xe0) == 0xc0)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

const char *hk_version(void) { return HK_VERSION_STRING; }
int hk_version_number(void) { return HK_VERSION_NUMBER; }

const char *hk_status_str(hk_status s)
{
	switch (HK_STATUS_PRIMARY(s)) {
	case HK_OK: return "HK_OK: success";
	case HK_E_INVALID: return "HK_E_INVALID: invalid argument";
	case HK_E_NOMEM: return "HK_E_NOMEM: out of memory";
	case HK_E_IO: return "HK_E_IO: input/output error";
	case HK_E_FORMAT: return "HK_E_FORMAT: malformed or truncated input";
	case HK_E_UNSUPPORTED: return "HK_E_UNSUPPORTED: unsupported feature";
	case HK_E_NOT_FOUND: return "HK_E_NOT_FOUND: not found";
	case HK_E_DIM: return "HK_E_DIM: dimension mismatch";
	case HK_E_RANGE: return "HK_E_RANGE: value out of range";
	case HK_E_STATE: return "HK_E_STATE: invalid state";
	case HK_E_CRYPTO: return "HK_E_CRYPTO: wrong key or failed authentication";
	case HK_E_CONSENT: return "HK_E_CONSENT: no valid consent record";
	case HK_E_POLICY: return "HK_E_POLICY: refused by policy";
	case HK_E_BACKEND: return "HK_E_BACKEND: backend failure";
	case HK_E_EXISTS: return "HK_E_EXISTS: already exists";
	case HK_E_OVERFLOW: return "HK_E_OVERFLOW: buffer too small or size overflow";
	case HK_E_LIMIT: return "HK_E_LIMIT: limit reached";
	case HK_E_BUSY: return "HK_E_BUSY: held by another process";
	default: return "unknown status";
	}
}

static _Thread_local char hk__errbuf[512];

const char *hk_last_error(void)
{
	return hk__errbuf[0] ? hk__errbuf : "no error";
}

static hk_log_fn hk__log_fn;
static void *hk__log_user;
static int hk__log_max = -1;

void hk_set_log(hk_log_fn fn, void *user, int max_level)
{
	hk__log_fn = fn;
	hk__log_user = user;
	hk__log_max = fn ? max_level : -1;
}

int hk__log_enabled(int level) { return hk__log_fn && level <= hk__log_max; }

static void hk__vlog(int level, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	hk__log_fn(level, buf, hk__log_user);
}

void hk__log(int level, const char *fmt, ...)
{
	if (!hk__log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	hk__vlog(level, fmt, ap);
	va_end(ap);
}

hk_status hk__err(hk_status s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hk__errbuf, sizeof hk__errbuf, fmt, ap);
	va_end(ap);
	if (hk__log_enabled(HK_LOG_DEBUG))
		hk__log(HK_LOG_DEBUG, "%s (%s)", hk__errbuf, hk_status_str(s));
	return s;
}

void *hk__aalloc(size_t size)
{
	if (size > (size_t)-1 - 63)
		return NULL;
	size = (size + 63) & ~(size_t)63;
	if (size == 0)
		size = 64;
	return aligned_alloc(64, size);
}

void hk__afree(void *p) { free(p); }

void hk__wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

uint64_t hk__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The one errno -> hk_status map of the library (io/ and the gallery's
 * file code return or see -errno; the API reports hk_status). */
hk_status hk__status_of_errno(int e)
{
	switch (e) {
	case ENOENT: case ENOTDIR: return HK_E_NOT_FOUND;
	case ENOMEM: return HK_E_NOMEM;
	case EFBIG: return HK_E_LIMIT;
	case EINVAL: return HK_E_INVALID;
	default: return HK_E_IO;
	}
}

hk_status hk__errno_status(int neg_errno, const char *what)
{
	int e = -neg_errno;
	if (e == ESPIPE)
		return hk__err(HK_E_IO, "%s: not a regular file (a FIFO, socket or "
		               "device): refused", what);
	return hk__err(hk__status_of_errno(e), "%s: %s", what, strerror(e));
}
