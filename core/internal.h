/* Internal helpers shared by the library's translation units. Not public. */
#ifndef HK_INTERNAL_H
#define HK_INTERNAL_H

#include "herken.h"

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define HK__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HK__LIKELY(x) __builtin_expect(!!(x), 1)
#define HK__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HK__PRINTF(a, b)
#define HK__LIKELY(x) (x)
#define HK__UNLIKELY(x) (x)
#endif

/*
 * Record a failure for hk_last_error() in this thread and return s, so that
 * callers can write `return hk__err(HK_E_FORMAT, "tensor %u: ...", i);`.
 * The message is also passed to the log callback at HK_LOG_DEBUG.
 */
hk_status hk__err(hk_status s, const char *fmt, ...) HK__PRINTF(2, 3);

/* Log through the user's callback, if any, at level (HK_LOG_*). */
void hk__log(int level, const char *fmt, ...) HK__PRINTF(2, 3);
int hk__log_enabled(int level);

/* 64-byte aligned allocation; size rounded up to a multiple of 64. NULL on
 * overflow or failure. Free with hk__afree(). */
void *hk__aalloc(size_t size);
void hk__afree(void *p);

/* a*b with overflow check: returns 0 and sets *out, or -1 on overflow. */
static inline int hk__mul_size(size_t a, size_t b, size_t *out)
{
	if (b != 0 && a > (size_t)-1 / b)
		return -1;
	*out = a * b;
	return 0;
}

/* Wipe memory that held personal data; not optimised away. */
void hk__wipe(void *p, size_t n);

/* Opens path for reading (O_RDONLY | O_CLOEXEC | flags) without blocking
 * on a FIFO, and only a regular file: fd (O_NONBLOCK set, no effect on a
 * regular file), or -errno: -EISDIR for a directory, -ESPIPE for a FIFO,
 * socket or device (never read). *st (may be NULL) gets its fstat. */
struct stat;
int hk__open_regular(const char *path, int flags, struct stat *st);

/* Reads a whole regular file into a malloc'd buffer, sized by fstat
 * before reading. 0 or -errno: -EFBIG over max bytes, -EISDIR for a
 * directory, -ESPIPE for a FIFO, socket or device (opened without
 * blocking, never read). The caller wipes and frees *out. */
int hk__read_file(const char *path, size_t max, uint8_t **out, size_t *outn);

/* Monotonic clock in nanoseconds. */
uint64_t hk__now_ns(void);

/* The one errno -> hk_status map (core/status.c): ENOENT, ENOTDIR ->
 * HK_E_NOT_FOUND; ENOMEM -> HK_E_NOMEM; EFBIG -> HK_E_LIMIT; EINVAL ->
 * HK_E_INVALID; anything else -> HK_E_IO. */
hk_status hk__status_of_errno(int e);
/* The same for -errno, with the message "what: strerror" (ESPIPE: "not a
 * regular file"). */
hk_status hk__errno_status(int neg_errno, const char *what);
/* sha256 of a file's bytes (core/calib.c). HK_E_NOT_FOUND / HK_E_IO. */
hk_status hk__sha256_file(const char *path, uint8_t out[32]);
/* The engine's loaded embedder (core/pipeline/engine.c), e.g. for the
 * precision it runs in; NULL for NULL. Owned by the engine. */
const hk_model *hk__engine_embedder(const hk_engine *e);

#endif
