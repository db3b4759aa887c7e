/* The pinned model table, internal side (public side: hk_model_files()). */
#ifndef HK_MODELS_H
#define HK_MODELS_H

#include "herken.h"

/* The row of models.def with this role ("detector-sparse", ...), or NULL. */
const hk_model_file *hk__model_by_role(const char *role);

/* HK_OK unless path's file name is a pinned model's and data[len] does not
 * have its sha256: then HK_E_FORMAT naming the file and both digests. */
hk_status hk__model_verify(const char *path, const void *data, size_t len);

#endif
