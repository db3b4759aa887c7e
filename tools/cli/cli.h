/* The herken command-line tool: one file per command group, each command a
 * function `int hk_cli_<name>(int argc, char **argv)` (argv[0] is the
 * command name) returning the process exit code:
 *   0 success / match, 1 no match / not found (a valid answer),
 *   2 usage error, 3 input error (bad file, image, model), 4 internal error,
 *   5 refused by policy or consent, 6 a video source failed mid-stream
 *   (stalled, corrupt data; the events up to then were printed).
 */
#ifndef HK_CLI_H
#define HK_CLI_H

#include <stdio.h>

#include "herken.h"

enum { HK_EXIT_OK = 0, HK_EXIT_NOMATCH = 1, HK_EXIT_USAGE = 2,
       HK_EXIT_INPUT = 3, HK_EXIT_INTERNAL = 4, HK_EXIT_REFUSED = 5,
       HK_EXIT_SOURCE = 6 };

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

/* Writes s as a JSON string literal (quotes, backslashes and control
 * characters escaped). */
void json_str(FILE *f, const char *s);
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
