/* The herken command-line tool: one file per command group, each command a
 * function `int hk_cli_<name>(int argc, char **argv)` (argv[0] is the
 * command name) returning the process exit code:
 *   0 success / match, 1 no match / not found (a valid answer),
 *   2 usage error (also a malformed number or subject id),
 *   3 input error (bad file, image, model, key, damaged gallery),
 *   4 internal error, 5 refused by policy or consent,
 *   6 busy (the gallery is open in another process, the camera is in use:
 *   retry later), 7 a video source failed mid-stream (stalled, corrupt
 *   data; the events up to then were printed).
 */
#ifndef HK_CLI_H
#define HK_CLI_H

#include <stdio.h>

#include "herken.h"

enum { HK_EXIT_OK = 0, HK_EXIT_NOMATCH = 1, HK_EXIT_USAGE = 2,
       HK_EXIT_INPUT = 3, HK_EXIT_INTERNAL = 4, HK_EXIT_REFUSED = 5,
       HK_EXIT_BUSY = 6, HK_EXIT_SOURCE = 7 };

int hk_cli_detect(int argc, char **argv);
int hk_cli_embed(int argc, char **argv);
int hk_cli_verify(int argc, char **argv);
int hk_cli_identify(int argc, char **argv);
int hk_cli_enroll(int argc, char **argv);
int hk_cli_erase(int argc, char **argv);
int hk_cli_export(int argc, char **argv);
int hk_cli_audit(int argc, char **argv);
int hk_cli_compact(int argc, char **argv);
int hk_cli_info(int argc, char **argv);
int hk_cli_models(int argc, char **argv);
int hk_cli_pack(int argc, char **argv);

/* Writes s as a JSON string literal that is always valid UTF-8: quotes and
 * backslashes escaped, control characters (C0, DEL, C1) as \u00XX, and
 * each byte that is not part of valid UTF-8 replaced by \ufffd (U+FFFD). */
void json_str(FILE *f, const char *s);
/* s for text output (stdout and stderr): control characters and bytes
 * that are not valid UTF-8 as \xHH, a backslash as two. Returns one of 8
 * static buffers (single-threaded use; text past 8 kB is cut with "..."). */
const char *esc(const char *s);
/* Strict numbers: the whole string, finite, within [lo, hi]. 0 or -1. */
int cli_long(const char *s, long lo, long hi, long *out);
int cli_double(const char *s, double lo, double hi, double *out);
/* NULL when s is a valid subject id for the CLI (1..HK_SUBJECT_MAX bytes
 * of UTF-8 without control characters), else what is wrong with it. */
const char *cli_subject_problem(const char *s);
/* prctl(PR_SET_DUMPABLE, 0): no core dump, no same-user ptrace. Called
 * before a key is read. */
void cli_undumpable(void);
/* The file name of the pinned model with this role (hk_model_files()),
 * or "" for an unknown role. */
const char *cli_model_file(const char *role);

/* detect --draw (tools/cli/draw.c): boxes (green usable, red not usable by
 * the recogniser's quality rule) and landmarks drawn onto im in place; im
 * written as an 8-bit RGB PNG, 0 or -1 with errno set by the failing call. */
void cli_draw_faces(hk_image *im, const hk_frame_face *faces, size_t n);

/* The subject of a photo (tools/cli/pipeline.c): the photo goes through a
 * stills hk_recognizer, as a frame of `herken watch` does, and the face
 * it marks as the subject among the usable ones is embedded into emb
 * (face may be NULL). On failure why[len] gets the message: for
 * HK_E_NOT_FOUND the faces found and why none is usable. */
hk_status hk_cli_subject_embed(const hk_engine *e, const hk_image *img, hk_face *face,
                               float emb[HK_EMBED_DIM], char *why, size_t len);
int cli_write_png(const char *path, const hk_image *im);

/* verify / identify against a durable gallery (tools/cli/store.c); main.c
 * routes `verify|identify --gallery DIR` here when DIR holds keys.hk. */
int hk_cli_store_verify(int argc, char **argv);
int hk_cli_store_identify(int argc, char **argv);

/* herken watch (tools/cli/watch.c) and what it borrows: a durable gallery
 * opened for queries (store.c), a folder gallery DIR/<subject>/<photo>
 * built in memory (pipeline.c; skipped photos as JSON objects into
 * `skipped`). */
int hk_cli_watch(int argc, char **argv);
int hk_cli_open_store(const char *cmd, const char *dir, const char *key_file,
                      hk_store **st);
int hk_cli_build_gallery(hk_engine *e, const char *dir, hk_gallery *g, int json,
                         FILE *skipped, size_t *nskipped);

#endif
