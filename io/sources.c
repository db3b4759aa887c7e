/* Frame sources: path lists, list files and directory walks. */
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

static int add_path(char ***v, uint64_t *n, uint64_t *cap, const char *p)
{
	if (*n == *cap) {
		uint64_t nc = *cap ? *cap * 2 : 64;
		char **nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	if (!((*v)[*n] = strdup(p)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

HK_API hk_status hk_frames_open_list(const char *const *paths, size_t n,
                                     const hk_frames_params *p,
                                     hk_frames **out)
{
	if (!out || (!paths && n))
		return hk__err(HK_E_INVALID, "hk_frames_open_list: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = hk__fr_frames_new(SRC_FILES, p, &f);
	if (s)
		return s;
	uint64_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		if (!paths[i] || add_path(&f->paths, &f->n, &cap, paths[i]) != 0) {
			hk_frames_destroy(f);
			return paths[i] ? hk__err(HK_E_NOMEM, "frames: out of memory")
			                : hk__err(HK_E_INVALID, "frames: path %zu is NULL", i);
		}
	}
	return hk__fr_frames_finish_open(f, out);
}

static int image_ext(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return 0;
	static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".pgm"};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		if (!strcasecmp(dot, ext[i]))
			return 1;
	return 0;
}

static int walk(const char *dir, int recursive, char ***v, uint64_t *n,
                uint64_t *cap, int depth)
{
	if (depth > 64)
		return -ELOOP;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	size_t dl = strlen(dir);
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		size_t len = dl + 1 + strlen(e->d_name) + 1;
		char *path = malloc(len);
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		snprintf(path, len, "%s%s%s", dir,
		         (dl && dir[dl - 1] == '/') ? "" : "/", e->d_name);
		int type = e->d_type;
		if (type == DT_UNKNOWN || type == DT_LNK) {
			struct stat st;
			type = stat(path, &st) != 0 ? DT_UNKNOWN
			       : S_ISDIR(st.st_mode) ? DT_DIR
			       : S_ISREG(st.st_mode) ? DT_REG
			                              : DT_UNKNOWN;
		}
		if (type == DT_DIR && recursive)
			rc = walk(path, recursive, v, n, cap, depth + 1);
		else if (type == DT_REG && image_ext(e->d_name))
			rc = add_path(v, n, cap, path);
		free(path);
	}
	closedir(d);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

HK_API hk_status hk_frames_open_dir(const char *dir, const hk_frames_params *p,
                                    hk_frames **out)
{
	if (!out || !dir)
		return hk__err(HK_E_INVALID, "hk_frames_open_dir: NULL argument");
	*out = NULL;
	hk_frames *f = NULL;
	hk_status s = hk__fr_frames_new(SRC_FILES, p, &f);
	if (s)
		return s;
	uint64_t cap = 0;
	int rc = walk(dir, !!(f->p.flags & HK_FRAMES_RECURSIVE), &f->paths, &f->n,
	              &cap, 0);
	if (rc < 0) {
		hk_frames_destroy(f);
		return hk__errno_status(rc, dir);
	}
	if (f->n)
		qsort(f->paths, f->n, sizeof *f->paths, cmp_path);
	return hk__fr_frames_finish_open(f, out);
}

/* Reads a list file: one path per line. */
hk_status hk__fr_open_listfile(const char *spec, const hk_frames_params *p,
                               hk_frames **out)
{
	uint8_t *b;
	size_t n;
	int rc = hk__read_file(spec, (size_t)64 << 20, &b, &n);
	if (rc < 0)
		return hk__errno_status(rc, spec);
	char **v = NULL;
	uint64_t cnt = 0, cap = 0;
	size_t i = 0;
	hk_status s = HK_OK;
	while (i < n && s == HK_OK) {
		size_t j = i;
		while (j < n && b[j] != '\n')
			j++;
		size_t e = j;
		if (e > i && b[e - 1] == '\r')
			e--;
		if (e > i && b[i] != '#') {
			if (memchr(b + i, '\0', e - i)) {
				s = hk__err(HK_E_FORMAT, "%s: NUL byte in a path", spec);
				break;
			}
			char save = (char)b[e];
			b[e] = '\0';
			if (add_path(&v, &cnt, &cap, (char *)b + i) != 0)
				s = hk__err(HK_E_NOMEM, "frames: out of memory");
			b[e] = (uint8_t)save;
		}
		i = j + 1;
	}
	free(b);
	if (s == HK_OK)
		s = hk_frames_open_list((const char *const *)v, (size_t)cnt, p, out);
	for (uint64_t k = 0; k < cnt; k++)
		free(v[k]);
	free(v);
	return s;
}

