/* Helpers shared by the durable-gallery tests and the store fuzz harness:
 * scratch directories, deterministic vectors, a fake clock, file access. */
#ifndef HK_TEST_STORE_UTIL_H
#define HK_TEST_STORE_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herken.h"

static const char *const st_files[4] = {"keys.hk", "wal.hk", "snapshot.hk",
                                        "audit.hk"};

/* A fresh scratch directory (tmpfs when available: fsync is cheap). */
static inline void st_tmpdir(char *buf, size_t len)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(buf, len, "%s/herken-store-XXXXXX", base);
	if (!mkdtemp(buf))
		abort();
}

static int st_rm_cb(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void st_rmrf(const char *dir)
{
	nftw(dir, st_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void st_key(uint8_t k[32], uint8_t seed)
{
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static int64_t st_clock_fn(void *user) { return *(const int64_t *)user; }

#define ST_T0 1767225600 /* 2026-01-01 */

static inline void st_params(hk_store_params *p, const uint8_t *key,
                             uint32_t dim, int64_t *clock)
{
	hk_store_default_params(p);
	p->master_key = key;
	p->flags = HK_STORE_CREATE;
	p->dim = dim;
	p->gallery.threads = 1;
	p->gallery.huge_pages = HK_HUGE_OFF;
	p->gallery.scan_type = HK_SCAN_FP32;
	if (clock) {
		p->clock = st_clock_fn;
		p->clock_user = clock;
	}
}

/* Deterministic vector for (seed): splitmix64 -> uniform(-1, 1). */
static inline void st_vec(float *v, uint32_t dim, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x1234567ull;
	for (uint32_t i = 0; i < dim; i++) {
		x += 0x9e3779b97f4a7c15ull;
		uint64_t z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		v[i] = (float)((double)(z >> 11) * 0x1.0p-52 - 1.0);
	}
}

static inline hk_consent st_consent(const char *subject, int64_t now)
{
	hk_consent c;
	memset(&c, 0, sizeof c);
	c.subject = subject;
	c.purpose = "recognise returning customers at the service desk";
	c.consent_version = "v3-2025-11";
	c.channel = "desk-2";
	c.time = now - 60;
	c.expires = now + 365 * 86400;
	c.source = HK_SOURCE_DESK;
	return c;
}

static inline uint8_t *st_slurp(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b)
		*len = (size_t)(n > 0 ? n : 0);
	return b;
}

static inline int st_spit(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	int ok = n == 0 || write(fd, p, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

/* Does any regular file in dir contain needle? */
static inline int st_dir_contains(const char *dir, const void *needle,
                                  size_t n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	int found = 0;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t len;
		uint8_t *b = st_slurp(path, &len);
		if (b && len >= n && memmem(b, len, needle, n))
			found = 1;
		free(b);
	}
	closedir(d);
	return found;
}

/* Copy the four gallery files from src to dst (missing ones stay missing). */
static inline void st_copy(const char *src, const char *dst)
{
	for (int i = 0; i < 4; i++) {
		char a[4096], b[4096];
		snprintf(a, sizeof a, "%s/%s", src, st_files[i]);
		snprintf(b, sizeof b, "%s/%s", dst, st_files[i]);
		size_t n;
		uint8_t *p = st_slurp(a, &n);
		if (p)
			st_spit(b, p, n);
		else
			unlink(b);
		free(p);
	}
}

/*
 * Store fuzz / corpus input: "HKSB" then, for keys, wal, snapshot, audit in
 * that order, a u32 little-endian length and that many bytes (length
 * 0xffffffff: file absent). Opens the gallery with key seed 0x42 and
 * exercises it. Returns the open status. Never asserts: any crash or
 * sanitizer report is the failure.
 */
static inline hk_status st_fuzz_one(const char *dir, const uint8_t *data,
                                    size_t len)
{
	if (len < 4 || memcmp(data, "HKSB", 4))
		return HK_E_FORMAT;
	size_t off = 4;
	for (int i = 0; i < 4; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, st_files[i]);
		unlink(path);
		uint32_t n;
		if (off + 4 > len)
			return HK_E_FORMAT;
		memcpy(&n, data + off, 4);
		off += 4;
		if (n == 0xffffffffu)
			continue;
		if (n > len - off)
			return HK_E_FORMAT;
		st_spit(path, data + off, n);
		off += n;
	}
	uint8_t key[32];
	st_key(key, 0x42);
	int64_t now = ST_T0 + 1000;
	hk_store_params p;
	st_params(&p, key, 0, &now);
	p.flags = 0;
	hk_store *st = NULL;
	hk_status s = hk_store_open(dir, &p, &st);
	if (s)
		return s;
	hk_store_info info;
	hk_store_get_info(st, &info);
	float q[64];
	uint32_t dim = info.dim <= 64 ? info.dim : 0;
	if (dim) {
		st_vec(q, dim, 1);
		float score;
		int match;
		hk_store_verify(st, "alice", q, 0.5f, HK_SOURCE_DESK, &score, &match);
		hk_store_match m[4];
		size_t nm;
		hk_store_identify(st, q, 0.0f, HK_SOURCE_STREAM, 4, m, &nm);
	}
	hk_audit_report r;
	hk_store_audit_verify(st, &r);
	char buf[2048];
	hk_store_export(st, "alice", buf, sizeof buf, NULL);
	hk_store_close(st);
	return HK_OK;
}

/* Pack the gallery in dir as an st_fuzz_one input (malloc'd). */
static inline uint8_t *st_bundle(const char *dir, size_t *len)
{
	size_t cap = 4, n = 4;
	uint8_t *out = malloc(cap);
	memcpy(out, "HKSB", 4);
	for (int i = 0; i < 4; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, st_files[i]);
		size_t fl;
		uint8_t *f = st_slurp(path, &fl);
		uint32_t l = f ? (uint32_t)fl : 0xffffffffu;
		out = realloc(out, cap = n + 4 + (f ? fl : 0));
		memcpy(out + n, &l, 4);
		n += 4;
		if (f) {
			memcpy(out + n, f, fl);
			n += fl;
		}
		free(f);
	}
	*len = n;
	return out;
}

#endif
