/* Frame sources: reading frame batch files (format in herken.h; `herken
 * pack`, tools/cli/pack.c, writes them) and their FNV-1a index check. */
#define _GNU_SOURCE
#include "frames_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

HK_API uint64_t hk_fnv1a64(uint64_t h, const void *data, size_t len)
{
	const uint8_t *b = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Validates the header and index of an open batch file. */
static hk_status batch_load(hk_frames *f, const char *path)
{
	struct stat st;
	if (fstat(f->batch_fd, &st) != 0)
		return hk__errno_status(-errno, path);
	uint64_t size = (uint64_t)st.st_size;
	uint8_t h[BATCH_HDR];
	if (size < BATCH_HDR + 8 ||
	    hk__fr_pread_full(f->batch_fd, h, BATCH_HDR, 0) != BATCH_HDR)
		return hk__err(HK_E_FORMAT, "%s: too short for a frame batch", path);
	if (memcmp(h, HK_FRAMES_BATCH_MAGIC, 8) != 0)
		return hk__err(HK_E_FORMAT, "%s: not a frame batch (bad magic)", path);
	uint32_t ver = (uint32_t)le64(h + 8) & 0xffffffffu;
	uint32_t flags = (uint32_t)(le64(h + 8) >> 32);
	if (ver != HK_FRAMES_BATCH_VERSION || flags != 0)
		return hk__err(HK_E_UNSUPPORTED, "%s: frame batch version %u flags %u",
		               path, ver, flags);
	uint64_t count = le64(h + 16), ioff = le64(h + 24);
	if (ioff < BATCH_HDR || ioff > size || count > (size - ioff) / 16 ||
	    ioff + count * 16 + 8 != size)
		return hk__err(HK_E_FORMAT, "%s: bad index (count %llu at %llu, "
		               "file %llu bytes)", path, (unsigned long long)count,
		               (unsigned long long)ioff, (unsigned long long)size);
	size_t ilen = (size_t)count * 16 + 8;
	uint8_t *idx = malloc(ilen);
	f->boff = malloc((size_t)(count ? count : 1) * sizeof *f->boff);
	f->blen = malloc((size_t)(count ? count : 1) * sizeof *f->blen);
	if (!idx || !f->boff || !f->blen) {
		free(idx);
		return hk__err(HK_E_NOMEM, "%s: index of %llu frames", path,
		               (unsigned long long)count);
	}
	if (hk__fr_pread_full(f->batch_fd, idx, ilen, ioff) != (ssize_t)ilen) {
		free(idx);
		return hk__err(HK_E_FORMAT, "%s: cannot read the index", path);
	}
	if (hk_fnv1a64(HK_FNV1A64_INIT, idx, ilen - 8) != le64(idx + ilen - 8)) {
		free(idx);
		return hk__err(HK_E_FORMAT, "%s: index checksum mismatch", path);
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t o = le64(idx + 16 * i), l = le64(idx + 16 * i + 8);
		if (o < BATCH_HDR || o > ioff || l > ioff - o) {
			free(idx);
			return hk__err(HK_E_FORMAT, "%s: frame %llu outside the data",
			               path, (unsigned long long)i);
		}
		f->boff[i] = o;
		f->blen[i] = l;
	}
	free(idx);
	f->n = count;
	return HK_OK;
}

HK_API hk_status hk_frames_open_batch(const char *path,
                                      const hk_frames_params *p,
                                      hk_frames **out)
{
	if (!out || !path)
		return hk__err(HK_E_INVALID, "hk_frames_open_batch: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = hk__fr_frames_new(SRC_BATCH, p, &f);
	if (s)
		return s;
	f->batch_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->batch_fd < 0) {
		s = hk__errno_status(-errno, path);
		hk_frames_destroy(f);
		return s;
	}
	s = batch_load(f, path);
	if (s) {
		hk_frames_destroy(f);
		return s;
	}
	return hk__fr_frames_finish_open(f, out);
}
