/* The pinned model table (models.def), the model directory, and the sha256
 * check every hk_model_load() of a pinned file passes. */
#include "internal.h"
#include "models.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The install prefix the library looks under for its models (the Makefile
 * compiles the installed copy with the prefix given to `make install`). */
#ifndef HK_PREFIX
#define HK_PREFIX "/usr/local"
#endif

static const hk_model_file table[] = {
#define HK_MODEL_ROW(role, file, package, path, sha256, kind) \
	{role, file, package, path, sha256, kind},
#define HK_MODEL_DIR_INSTALLED(dir)
#define HK_MODEL_DIR_DEV(dir)
#include "models.def"
#undef HK_MODEL_ROW
#undef HK_MODEL_DIR_INSTALLED
#undef HK_MODEL_DIR_DEV
};

#define HK_MODEL_ROW(role, file, package, path, sha256, kind)
#define HK_MODEL_DIR_INSTALLED(dir) static const char dir_installed[] = HK_PREFIX "/" dir;
#define HK_MODEL_DIR_DEV(dir) static const char dir_dev[] = dir;
#include "models.def"
#undef HK_MODEL_ROW
#undef HK_MODEL_DIR_INSTALLED
#undef HK_MODEL_DIR_DEV

const hk_model_file *hk_model_files(size_t *count)
{
	if (count)
		*count = sizeof table / sizeof table[0];
	return table;
}

const char *hk_model_dir(const char *dir)
{
	if (dir && *dir)
		return dir;
	const char *env = getenv("HERKEN_MODELS");
	if (env && *env)
		return env;
	struct stat st;
	if (stat(dir_installed, &st) == 0 && S_ISDIR(st.st_mode))
		return dir_installed;
	return dir_dev;
}

const hk_model_file *hk__model_by_role(const char *role)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(table[i].role, role))
			return &table[i];
	return NULL;
}

hk_status hk__model_verify(const char *path, const void *data, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const hk_model_file *m = NULL;
	for (size_t i = 0; i < sizeof table / sizeof table[0] && !m; i++)
		if (!strcmp(table[i].file, base))
			m = &table[i];
	if (!m)
		return HK_OK; /* not a pinned file: a model of the caller's own */
	unsigned char d[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(d, data, len);
	char hex[2 * sizeof d + 1];
	sodium_bin2hex(hex, sizeof hex, d, sizeof d);
	if (strcmp(hex, m->sha256))
		return hk__err(HK_E_FORMAT,
		               "model file %s: sha256 %s, pinned %s (core/models.def)",
		               path, hex, m->sha256);
	return HK_OK;
}
