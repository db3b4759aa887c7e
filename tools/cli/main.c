/* herken CLI entry: dispatches to the command functions (every command is always built). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "herken.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} cmds[] = {
	{"detect", hk_cli_detect, "find faces in images"},
	{"embed", hk_cli_embed, "print face embeddings"},
	{"verify", hk_cli_verify, "1:1: are two photos (or photo and subject) the same person"},
	{"identify", hk_cli_identify, "1:N: who in the gallery is this"},
	{"enroll", hk_cli_enroll, "enrol a consenting subject into a gallery"},
	{"erase", hk_cli_erase, "erase a subject (consent withdrawn)"},
	{"export", hk_cli_export, "a subject's records for an access request"},
	{"audit", hk_cli_audit, "verify the audit log's hash chain"},
	{"compact", hk_cli_compact, "rewrite a gallery without erased/expired data"},
	{"info", hk_cli_info, "describe a gallery"},
	{"models", hk_cli_models, "list and check the model files"},
	{"pack", hk_cli_pack, "write a frame batch file from image files"},
	{"watch", hk_cli_watch, "recognise faces in a video, stream or camera, one decision per visit"},
};

static void usage(FILE *f)
{
	fprintf(f, "herken %s — privacy-first face recognition\n\n"
	           "usage: herken COMMAND [options]   (herken COMMAND --help)\n\ncommands:\n",
	        hk_version());
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].what);
}

/*
 * `verify` and `identify` serve two kinds of gallery: a folder of photos
 * (<subject>/<photo>, built in memory by the pipeline commands) and a
 * durable consented gallery (a directory holding keys.hk). The second goes
 * to the store's commands.
 */
static int durable_gallery(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--gallery"))
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/keys.hk", argv[i + 1]);
		return access(p, F_OK) == 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return HK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return HK_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("herken %s\n", hk_version());
		return HK_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (durable_gallery(argc - 1, argv + 1)) {
			if (!strcmp(argv[1], "verify"))
				return hk_cli_store_verify(argc - 1, argv + 1);
			if (!strcmp(argv[1], "identify"))
				return hk_cli_store_identify(argc - 1, argv + 1);
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "herken: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return HK_EXIT_USAGE;
}
