/* herken pack: writes a frame batch file (format in core/herken.h) from
 * image files. The library only reads batch files ("frames never touch
 * disk"); writing one is this tool's job. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "herken.h"

static const char pack_usage[] =
    "usage: herken pack OUT FILE...\n"
    "Pack the files into the frame batch file OUT (format: core/herken.h),\n"
    "written to OUT.tmp, fsync'ed and renamed. Regular files only, each at\n"
    "most 1 GiB; a missing or unreadable file fails the whole pack and\n"
    "leaves nothing behind. The library reads it back\n"
    "(hk_frames_open, hk_frames_open_batch).\n"
    "exit: 0 written, 2 usage, 3 an input or the output failed";

#define HDR 32u

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Appends the file at path to fd; its length into *len. 0, or -1 with a
 * message. */
static int copy_in(int fd, const char *path, uint64_t *len)
{
	int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat sb;
	if (in < 0 || fstat(in, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > (1l << 30)) {
		fprintf(stderr, "herken pack: %s: %s\n", esc(path),
		        in < 0 ? strerror(errno)
		        : !S_ISREG(sb.st_mode) ? "not a regular file" : "larger than 1 GiB");
		if (in >= 0)
			close(in);
		return -1;
	}
	uint8_t buf[1 << 16];
	uint64_t n = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "herken pack: %s: %s\n", esc(path), strerror(errno));
			close(in);
			return -1;
		}
		if (r == 0)
			break;
		if (write_all(fd, buf, (size_t)r)) {
			fprintf(stderr, "herken pack: write: %s\n", strerror(errno));
			close(in);
			return -1;
		}
		n += (uint64_t)r;
	}
	close(in);
	*len = n;
	return 0;
}

int hk_cli_pack(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts(pack_usage);
		return HK_EXIT_OK;
	}
	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "%s\n", pack_usage);
		return HK_EXIT_USAGE;
	}
	const char *out = argv[1];
	size_t n = (size_t)argc - 2, ilen = n * 16 + 8;
	uint8_t *idx = malloc(ilen);
	char *tmp = malloc(strlen(out) + 5);
	if (!idx || !tmp) {
		free(idx);
		free(tmp);
		fprintf(stderr, "herken pack: out of memory\n");
		return HK_EXIT_INTERNAL;
	}
	sprintf(tmp, "%s.tmp", out);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : 0;
	if (rc)
		fprintf(stderr, "herken pack: %s: %s\n", esc(tmp), strerror(errno));
	uint8_t h[HDR] = {0};
	if (!rc && write_all(fd, h, sizeof h)) {
		fprintf(stderr, "herken pack: %s: %s\n", esc(tmp), strerror(errno));
		rc = -1;
	}
	uint64_t off = HDR;
	for (size_t i = 0; i < n && !rc; i++) {
		uint64_t len = 0;
		rc = copy_in(fd, argv[2 + i], &len);
		put64(idx + 16 * i, off);
		put64(idx + 16 * i + 8, len);
		off += len;
	}
	if (!rc) {
		put64(idx + ilen - 8, hk_fnv1a64(HK_FNV1A64_INIT, idx, ilen - 8));
		memcpy(h, HK_FRAMES_BATCH_MAGIC, 8);
		put64(h + 8, HK_FRAMES_BATCH_VERSION); /* version, flags 0 */
		put64(h + 16, n);
		put64(h + 24, off);
		if (write_all(fd, idx, ilen) || pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
		    fsync(fd)) {
			fprintf(stderr, "herken pack: %s: %s\n", esc(tmp), strerror(errno));
			rc = -1;
		}
	}
	if (fd >= 0 && close(fd) && !rc) {
		fprintf(stderr, "herken pack: %s: %s\n", esc(tmp), strerror(errno));
		rc = -1;
	}
	if (!rc && rename(tmp, out)) {
		fprintf(stderr, "herken pack: %s: %s\n", esc(out), strerror(errno));
		rc = -1;
	}
	if (rc && fd >= 0)
		unlink(tmp);
	if (!rc)
		printf("%s: %zu frames, %llu bytes\n", esc(out), n, (unsigned long long)(off + ilen));
	free(idx);
	free(tmp);
	return rc ? HK_EXIT_INPUT : HK_EXIT_OK;
}
