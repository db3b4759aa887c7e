/* Frame sources: bytes equal read(), per-frame errors, engines (io_uring,
 * pread fallback, SQPOLL, O_DIRECT), in-order delivery, directory walks,
 * batch files, raw RGB24 / Y4M streams split at awkward boundaries,
 * decoding, bounded memory under a stalled consumer. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "herken.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *mkdir_tmp(void)
{
	char *d = strdup("/tmp/hk_io_test_XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, b + off, n - off);
		cr_assert_gt(w, 0);
		off += (size_t)w;
	}
	close(fd);
}

/* The oracle: plain read() of the whole file. */
static uint8_t *plain_read(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	uint8_t *b = malloc(cap);
	for (;;) {
		if (len == cap)
			b = realloc(b, cap *= 2);
		ssize_t r = read(fd, b + len, cap - len);
		if (r < 0) {
			free(b);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*n = len;
	return b;
}

typedef struct fileset {
	char *dir;
	char **paths; /* includes missing files and a directory */
	size_t n;
	int *kind; /* 0 file, 1 missing, 2 directory */
} fileset;

/* n files of odd sizes (0, 1, around and above buf), plus missing paths
 * and one directory at fixed positions. */
static fileset make_files(size_t n, size_t buf)
{
	fileset fs = {mkdir_tmp(), calloc(n, sizeof(char *)), n,
	              calloc(n, sizeof(int))};
	uint8_t *tmp = malloc(4 * buf + 7);
	for (size_t i = 0; i < n; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/f%05zu.jpg", fs.dir, i);
		fs.paths[i] = strdup(p);
		if (i % 97 == 13) {
			fs.kind[i] = 1; /* never created */
			continue;
		}
		if (i == 50) {
			fs.kind[i] = 2;
			cr_assert_eq(mkdir(p, 0755), 0);
			continue;
		}
		size_t sz;
		switch (i % 11) {
		case 0: sz = 0; break;
		case 1: sz = 1; break;
		case 2: sz = buf - 1; break;
		case 3: sz = buf; break;
		case 4: sz = buf + 1; break;
		case 5: sz = 3 * buf + 7; break;
		default: sz = 1 + rnd() % (2 * buf); sz |= 1; break;
		}
		for (size_t k = 0; k < sz; k++)
			tmp[k] = (uint8_t)rnd();
		write_file(p, tmp, sz);
	}
	free(tmp);
	return fs;
}

static void free_files(fileset *fs)
{
	rm_tree(fs->dir);
	for (size_t i = 0; i < fs->n; i++)
		free(fs->paths[i]);
	free(fs->paths);
	free(fs->kind);
	free(fs->dir);
}

/* Drains src and checks every frame against the oracle. Returns frames. */
static size_t check_all(hk_frames *src, const fileset *fs, int in_order)
{
	uint8_t *seen = calloc(fs->n, 1);
	size_t got = 0;
	uint64_t last = 0;
	hk_frame *fr;
	while (1) {
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK, "%s", hk_last_error());
		if (!fr)
			break;
		cr_assert_lt(fr->id, fs->n);
		cr_assert_eq(seen[fr->id], 0, "id %llu twice", (unsigned long long)fr->id);
		seen[fr->id] = 1;
		if (in_order) {
			cr_assert(got == 0 || fr->id == last + 1, "out of order %llu after %llu",
			          (unsigned long long)fr->id, (unsigned long long)last);
			last = fr->id;
		}
		cr_assert_str_eq(fr->name, fs->paths[fr->id]);
		switch (fs->kind[fr->id]) {
		case 1:
			cr_assert_eq(fr->status, HK_E_NOT_FOUND, "%s: %d", fr->name,
			             fr->status);
			cr_assert_not_null(strstr(fr->error, "No such file"), "%s", fr->error);
			break;
		case 2:
			cr_assert_eq(fr->status, HK_E_IO);
			cr_assert_not_null(strstr(fr->error, "directory"), "%s", fr->error);
			break;
		default: {
			size_t n;
			uint8_t *want = plain_read(fs->paths[fr->id], &n);
			cr_assert_not_null(want);
			cr_assert_eq(fr->status, HK_OK, "%s: %s", fr->name, fr->error);
			cr_assert_eq(fr->len, n, "%s: len %zu want %zu", fr->name,
			             fr->len, n);
			cr_assert(n == 0 || memcmp(fr->bytes, want, n) == 0, "%s bytes",
			          fr->name);
			free(want);
		}
		}
		got++;
		hk_frames_release(src, fr);
	}
	for (size_t i = 0; i < fs->n; i++)
		cr_assert(seen[i], "frame %zu never delivered", i);
	free(seen);
	return got;
}

static void run_engine(uint32_t engine, uint32_t flags, size_t nfiles,
                       uint32_t want_engine, uint32_t want_flags)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.engine = engine;
	p.flags = flags;
	p.buffer_size = 4096;
	p.queue_depth = 16;
	fileset fs = make_files(nfiles, 4096);
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list((const char *const *)fs.paths, fs.n, &p,
	                                 &src), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_frames_count(src), nfiles);
	cr_assert_eq(check_all(src, &fs, !!(flags & HK_FRAMES_IN_ORDER)), nfiles);
	hk_frames_stats st;
	cr_assert_eq(hk_frames_get_stats(src, &st), HK_OK);
	cr_assert_eq(st.engine, want_engine);
	cr_assert_eq(st.flags & want_flags, want_flags, "flags %x want %x",
	             st.flags, want_flags);
	cr_assert_eq(st.frames, nfiles);
	cr_assert_eq(st.errors, (uint64_t)(nfiles / 97 + (nfiles % 97 > 13) + 1));
	cr_assert_leq(st.peak_frames, p.max_frames);
	hk_frames_destroy(src);
	free_files(&fs);
}

/* Does the filesystem under /tmp accept O_DIRECT? */
static int direct_fs_ok(void)
{
	char p[] = "/tmp/hk_io_direct_XXXXXX";
	int fd = mkstemp(p);
	if (fd < 0)
		return 0;
	close(fd);
	fd = open(p, O_RDONLY | O_DIRECT);
	unlink(p);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* ------------------------------------------------------------ file lists */

Test(io, uring_bytes_equal_read)
{
	unsetenv("HERKEN_IO");
	run_engine(HK_FRAMES_IO_URING, 0, 2000, HK_FRAMES_IO_URING,
	           HK_FRAMES_HAVE_REGFILE | HK_FRAMES_HAVE_REGBUF);
}

Test(io, pread_bytes_equal_read)
{
	run_engine(HK_FRAMES_PREAD, 0, 2000, HK_FRAMES_PREAD, 0);
}

Test(io, uring_in_order)
{
	unsetenv("HERKEN_IO");
	run_engine(HK_FRAMES_IO_URING, HK_FRAMES_IN_ORDER, 700, HK_FRAMES_IO_URING, 0);
}

Test(io, pread_in_order)
{
	run_engine(HK_FRAMES_PREAD, HK_FRAMES_IN_ORDER, 700, HK_FRAMES_PREAD, 0);
}

Test(io, uring_sqpoll_and_direct)
{
	unsetenv("HERKEN_IO");
	/* O_DIRECT may be refused by the fs under /tmp: then the page cache
	 * is used and the bytes must still be equal. */
	run_engine(HK_FRAMES_IO_URING, HK_FRAMES_SQPOLL | HK_FRAMES_DIRECT, 500,
	           HK_FRAMES_IO_URING, HK_FRAMES_HAVE_SQPOLL |
	                   (direct_fs_ok() ? HK_FRAMES_HAVE_DIRECT : 0));
}

Test(io, pread_direct)
{
	run_engine(HK_FRAMES_PREAD, HK_FRAMES_DIRECT, 300, HK_FRAMES_PREAD,
	           direct_fs_ok() ? HK_FRAMES_HAVE_DIRECT : 0);
}

Test(io, env_forces_pread_fallback)
{
	setenv("HERKEN_IO", "pread", 1);
	run_engine(HK_FRAMES_AUTO, 0, 600, HK_FRAMES_PREAD, 0);
	unsetenv("HERKEN_IO");
	run_engine(HK_FRAMES_AUTO, 0, 100, HK_FRAMES_IO_URING, 0);
}

/* io_uring_setup fails with ENOSYS (as under a container's seccomp
 * profile): AUTO falls back to pread with the same results, an explicit
 * io_uring request is HK_E_BACKEND. Runs in a child: seccomp is forever. */
Test(io, seccomp_enosys_fallback)
{
	fileset fs = make_files(300, 4096);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sock_filter filt[] = {
		        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {sizeof filt / sizeof filt[0], filt};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(10);
		hk_frames_params p;
		hk_frames_default_params(&p);
		p.buffer_size = 4096;
		p.engine = HK_FRAMES_IO_URING;
		hk_frames *src = NULL;
		if (hk_frames_open_list((const char *const *)fs.paths, fs.n, &p,
		                        &src) != HK_E_BACKEND)
			_exit(11);
		unsetenv("HERKEN_IO");
		p.engine = HK_FRAMES_AUTO;
		if (hk_frames_open_list((const char *const *)fs.paths, fs.n, &p,
		                        &src) != HK_OK)
			_exit(12);
		hk_frames_stats st;
		hk_frames_get_stats(src, &st);
		if (st.engine != HK_FRAMES_PREAD)
			_exit(13);
		hk_frame *fr;
		size_t ok = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			if (fs.kind[fr->id] == 0) {
				size_t n;
				uint8_t *want = plain_read(fr->name, &n);
				if (!want || n != fr->len || (n && memcmp(want, fr->bytes, n)))
					_exit(14);
				free(want);
				ok++;
			}
			hk_frames_release(src, fr);
		}
		hk_frames_destroy(src);
		_exit(ok > 250 ? 0 : 15);
	}
	int wst;
	cr_assert_eq(waitpid(pid, &wst, 0), pid);
	cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "child status %d",
	          WEXITSTATUS(wst));
	free_files(&fs);
}

/* EACCES per frame: tests run as root, so a child drops to nobody. */
Test(io, permission_denied_per_frame)
{
	char *dir = mkdir_tmp();
	cr_assert_eq(chmod(dir, 0755), 0);
	char a[256], b[256], c[256];
	snprintf(a, sizeof a, "%s/a.jpg", dir);
	snprintf(b, sizeof b, "%s/secret.jpg", dir);
	snprintf(c, sizeof c, "%s/c.jpg", dir);
	write_file(a, (const uint8_t *)"AAAA", 4);
	write_file(b, (const uint8_t *)"BBBB", 4);
	write_file(c, (const uint8_t *)"CC", 2);
	cr_assert_eq(chmod(b, 0000), 0);
	struct passwd *pw = getpwnam("nobody");
	if (!pw || geteuid() != 0) {
		rm_tree(dir);
		free(dir);
		cr_skip_test("needs root and a 'nobody' user");
	}
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			if (setgid(pw->pw_gid) || setuid(pw->pw_uid))
				_exit(10);
			hk_frames_params p;
			hk_frames_default_params(&p);
			p.engine = engine;
			p.flags = HK_FRAMES_IN_ORDER;
			const char *paths[3] = {a, b, c};
			hk_frames *src = NULL;
			if (hk_frames_open_list(paths, 3, &p, &src) != HK_OK)
				_exit(11);
			hk_frame *fr;
			int st[3] = {1, 1, 1};
			size_t len[3] = {0};
			char err[256] = "";
			while (hk_frames_next(src, &fr) == HK_OK && fr) {
				st[fr->id] = fr->status;
				len[fr->id] = fr->len;
				if (fr->id == 1)
					snprintf(err, sizeof err, "%s", fr->error);
				hk_frames_release(src, fr);
			}
			hk_frames_destroy(src);
			if (st[0] != HK_OK || len[0] != 4 || st[2] != HK_OK || len[2] != 2)
				_exit(12);
			if (st[1] != HK_E_IO || !strstr(err, "Permission denied"))
				_exit(13);
			_exit(0);
		}
		int wst;
		cr_assert_eq(waitpid(pid, &wst, 0), pid);
		cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
		          "engine %u: child status %d", engine, WEXITSTATUS(wst));
	}
	rm_tree(dir);
	free(dir);
}

/* A list source on one engine with these flags (other params default). */
static hk_frames *open_list_on(const char *const *paths, size_t n,
                               uint32_t engine, uint32_t flags)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.engine = engine;
	p.flags = flags;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list(paths, n, &p, &src), HK_OK, "%s",
	             hk_last_error());
	return src;
}

/* A list may name a FIFO (no writer: opening it for reading would block
 * the reader thread for good), a device or a directory: each fails its own
 * frame, unread, as image and gallery files do; the regular files around
 * them still arrive. */
Test(io, list_refuses_non_regular_files, .timeout = 60)
{
	char *dir = mkdir_tmp();
	char a[256], fifo[256], sub[256], c[256];
	snprintf(a, sizeof a, "%s/a.jpg", dir);
	snprintf(fifo, sizeof fifo, "%s/fifo.jpg", dir);
	snprintf(sub, sizeof sub, "%s/sub.jpg", dir);
	snprintf(c, sizeof c, "%s/c.jpg", dir);
	write_file(a, (const uint8_t *)"AAAA", 4);
	write_file(c, (const uint8_t *)"CC", 2);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(mkdir(sub, 0700), 0);
	const char *paths[5] = {a, fifo, "/dev/zero", sub, c};
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		hk_frames *src = open_list_on(paths, 5, engine, HK_FRAMES_IN_ORDER);
		hk_frame *fr;
		int n = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			cr_assert_eq(fr->id, (uint64_t)n);
			if (n == 0 || n == 4) {
				cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
				cr_assert_eq(fr->len, n ? 2u : 4u);
			} else {
				cr_assert_eq(fr->status, HK_E_IO, "engine %u, %s: %d",
				             engine, fr->name, fr->status);
				cr_assert(strstr(fr->error, n == 3 ? "Is a directory"
				                                   : "not a regular file"),
				          "engine %u: %s", engine, fr->error);
				cr_assert_eq(fr->len, 0);
			}
			hk_frames_release(src, fr);
			n++;
		}
		cr_assert_eq(n, 5);
		hk_frames_destroy(src);
	}
	rm_tree(dir);
	free(dir);
}

Test(io, caller_holding_everything_gets_limit)
{
	fileset fs = make_files(40, 4096);
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.queue_depth = 4;
	p.max_frames = 4;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_list((const char *const *)fs.paths, fs.n, &p,
	                                 &src), HK_OK);
	hk_frame *held[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(hk_frames_next(src, &held[i]), HK_OK);
		cr_assert_not_null(held[i]);
	}
	hk_frame *fr;
	cr_assert_eq(hk_frames_next(src, &fr), HK_E_LIMIT);
	for (int i = 0; i < 4; i++)
		hk_frames_release(src, held[i]);
	hk_frames_release(src, held[0]); /* twice: ignored */
	size_t n = 4;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		n++;
		hk_frames_release(src, fr);
	}
	cr_assert_eq(n, 40);
	hk_frames_destroy(src);
	free_files(&fs);
}

Test(io, destroy_midway_and_null)
{
	hk_frames_destroy(NULL);
	hk_frames_release(NULL, NULL);
	fileset fs = make_files(300, 4096);
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		hk_frames *src = open_list_on((const char *const *)fs.paths, fs.n,
		                              engine, HK_FRAMES_DECODE);
		hk_frame *fr;
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
		cr_assert_not_null(fr);
		hk_frames_destroy(src); /* frame still held, reads in flight */
	}
	free_files(&fs);
}

/* -------------------------------------------------- directories, batches */

Test(io, directory_walk_sorted_and_filtered)
{
	char *dir = mkdir_tmp();
	char p[512];
	const char *files[] = {"b.JPG", "a.png", "c.txt", ".hidden.jpg", "sub/x.ppm",
	                       "sub/deeper/y.jpeg", "z.pgm", "noext"};
	snprintf(p, sizeof p, "%s/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/sub/deeper", dir);
	mkdir(p, 0755);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		write_file(p, (const uint8_t *)files[i], strlen(files[i]));
	}
	static const char *flat[] = {"a.png", "b.JPG", "z.pgm"};
	static const char *deep[] = {"a.png", "b.JPG", "sub/deeper/y.jpeg",
	                             "sub/x.ppm", "z.pgm"};
	for (int rec = 0; rec <= 1; rec++) {
		hk_frames_params fp;
		hk_frames_default_params(&fp);
		fp.flags = HK_FRAMES_IN_ORDER | (rec ? HK_FRAMES_RECURSIVE : 0);
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open(dir, &fp, &src), HK_OK, "%s", hk_last_error());
		const char **want = rec ? deep : flat;
		size_t nwant = rec ? 5 : 3;
		cr_assert_eq(hk_frames_count(src), nwant);
		hk_frame *fr;
		size_t i = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			snprintf(p, sizeof p, "%s/%s", dir, want[i]);
			cr_assert_str_eq(fr->name, p);
			cr_assert_eq(fr->id, i);
			const char *base = want[i];
			cr_assert_eq(fr->len, strlen(base));
			cr_assert_eq(memcmp(fr->bytes, base, fr->len), 0);
			hk_frames_release(src, fr);
			i++;
		}
		cr_assert_eq(i, nwant);
		hk_frames_destroy(src);
	}
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open("/nonexistent/herken/dir", NULL, &src),
	             HK_E_NOT_FOUND);
	rm_tree(dir);
	free(dir);
}

/* Packs paths[0..n) into the batch file out with `herken pack` (the CLI
 * writes batch files; the library only reads them). Returns its exit code;
 * skips the test when the CLI is not built. */
static int pack(const char *out, const char *const *paths, size_t n)
{
	const char *b = getenv("HERKEN_BUILD");
	char herken[512];
	snprintf(herken, sizeof herken, "%s/herken", b && *b ? b : "build/release");
	if (access(herken, X_OK))
		cr_skip_test("%s absent (make all first)", herken);
	size_t cap = strlen(herken) + strlen(out) + 64;
	for (size_t i = 0; i < n; i++)
		cap += strlen(paths[i]) + 3;
	char *cmd = malloc(cap);
	cr_assert_not_null(cmd);
	size_t len = (size_t)snprintf(cmd, cap, "%s pack '%s'", herken, out);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(cmd + len, cap - len, " '%s'", paths[i]);
	snprintf(cmd + len, cap - len, " >/dev/null 2>&1");
	int st = system(cmd);
	free(cmd);
	cr_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void check_batch(const char *batch, fileset *good, uint32_t engine,
                        uint32_t bufsize)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.engine = engine;
	p.buffer_size = bufsize;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open(batch, &p, &src), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_frames_count(src), good->n);
	hk_frame *fr;
	size_t n = 0;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		size_t len;
		uint8_t *want = plain_read(good->paths[fr->id], &len);
		cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
		char nm[64];
		snprintf(nm, sizeof nm, "batch[%llu]", (unsigned long long)fr->id);
		cr_assert_str_eq(fr->name, nm);
		cr_assert_eq(fr->len, len);
		cr_assert(len == 0 || !memcmp(fr->bytes, want, len));
		free(want);
		hk_frames_release(src, fr);
		n++;
	}
	cr_assert_eq(n, good->n);
	hk_frames_stats st;
	hk_frames_get_stats(src, &st);
	cr_assert_eq(st.engine, engine);
	hk_frames_destroy(src);
}

Test(io, batch_roundtrip_and_list_file)
{
	fileset fs = make_files(400, 4096);
	/* Only existing regular files go into the batch. */
	fileset good = fs;
	good.paths = calloc(fs.n, sizeof(char *));
	good.n = 0;
	for (size_t i = 0; i < fs.n; i++)
		if (fs.kind[i] == 0)
			good.paths[good.n++] = fs.paths[i];
	char batch[512], list[512];
	snprintf(batch, sizeof batch, "%s/frames.hkfb", fs.dir);
	cr_assert_eq(pack(batch, (const char *const *)good.paths, good.n), 0);
	check_batch(batch, &good, HK_FRAMES_IO_URING, 4096);
	check_batch(batch, &good, HK_FRAMES_PREAD, 4096);
	check_batch(batch, &good, HK_FRAMES_IO_URING, 1 << 20);
	/* A list file: comments and blank lines skipped, CRLF accepted. */
	snprintf(list, sizeof list, "%s/list.txt", fs.dir);
	FILE *lf = fopen(list, "w");
	fprintf(lf, "# frames\n\n");
	for (size_t i = 0; i < fs.n; i++)
		fprintf(lf, "%s%s\n", fs.paths[i], i % 2 ? "\r" : "");
	fclose(lf);
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.buffer_size = 4096;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open(list, &p, &src), HK_OK, "%s", hk_last_error());
	cr_assert_eq(check_all(src, &fs, 0), fs.n);
	hk_frames_destroy(src);
	/* Missing input: the writer fails (exit 3) and leaves nothing behind. */
	const char *bad[] = {fs.paths[0], "/nonexistent/herken.jpg"};
	char b2[512];
	snprintf(b2, sizeof b2, "%s/bad.hkfb", fs.dir);
	cr_assert_eq(pack(b2, bad, 2), 3);
	cr_assert_neq(access(b2, F_OK), 0);
	free(good.paths);
	free_files(&fs);
}

Test(io, batch_malformed_refused)
{
	char *dir = mkdir_tmp();
	char src1[256], batch[256];
	snprintf(src1, sizeof src1, "%s/one.jpg", dir);
	write_file(src1, (const uint8_t *)"0123456789", 10);
	snprintf(batch, sizeof batch, "%s/b.hkfb", dir);
	const char *paths[] = {src1, src1};
	cr_assert_eq(pack(batch, paths, 2), 0);
	size_t n;
	uint8_t *good = plain_read(batch, &n);
	cr_assert_eq(n, 32 + 20 + 2 * 16 + 8);
	struct { size_t off; uint8_t val; hk_status want; } cases[] = {
	        {0, 'X', HK_E_FORMAT},      /* magic */
	        {8, 2, HK_E_UNSUPPORTED},   /* version */
	        {16, 3, HK_E_FORMAT},       /* count */
	        {24, 0x10, HK_E_FORMAT},    /* index offset */
	        {52, 0xff, HK_E_FORMAT},    /* index entry offset: checksum */
	        {n - 1, 0x00, HK_E_FORMAT}, /* checksum byte */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t *b = malloc(n);
		memcpy(b, good, n);
		b[cases[i].off] ^= cases[i].val == 0 ? 0x5a : cases[i].val;
		write_file(batch, b, n);
		hk_frames *src = NULL;
		hk_status s = hk_frames_open_batch(batch, NULL, &src);
		cr_assert_eq(s, cases[i].want, "case %zu: %d (%s)", i, s, hk_last_error());
		cr_assert_null(src);
		free(b);
	}
	for (size_t cut = 0; cut < n; cut += 3) { /* truncations */
		write_file(batch, good, cut);
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_batch(batch, NULL, &src), HK_E_FORMAT,
		             "cut %zu", cut);
	}
	free(good);
	rm_tree(dir);
	free(dir);
}

/* ---------------------------------------------------------------- decode */

static uint8_t *make_jpeg(int w, int h, int seed, size_t *n)
{
	uint8_t *rgb = malloc((size_t)w * h * 3);
	for (int i = 0; i < w * h * 3; i++)
		rgb[i] = (uint8_t)(i * 7 + seed * 31 + (i / (w * 3)) * 3);
	tjhandle tj = tjInitCompress();
	unsigned char *jb = NULL;
	unsigned long jn = 0;
	cr_assert_eq(tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jb, &jn, TJSAMP_420,
	                         85, 0), 0);
	uint8_t *out = malloc(jn);
	memcpy(out, jb, jn);
	*n = jn;
	tjFree(jb);
	tjDestroy(tj);
	free(rgb);
	return out;
}

Test(io, decode_per_frame_results)
{
	char *dir = mkdir_tmp();
	enum { N = 60 };
	char *paths[N];
	hk_status want[N];
	for (int i = 0; i < N; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%02d.jpg", dir, i);
		paths[i] = strdup(p);
		size_t n;
		uint8_t *j = make_jpeg(40 + i, 30 + (i % 7), i, &n);
		want[i] = HK_OK;
		if (i % 10 == 3) {
			n = n / 2; /* truncated */
			want[i] = HK_E_FORMAT;
		} else if (i % 10 == 7) {
			memcpy(j, "RIFF\0\0\0\0WEBPVP8 ", 16);
			want[i] = HK_E_UNSUPPORTED;
		} else if (i % 10 == 9) {
			want[i] = HK_E_NOT_FOUND;
			free(j);
			continue;
		}
		write_file(p, j, n);
		free(j);
	}
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		hk_frames_params p;
		hk_frames_default_params(&p);
		p.engine = engine;
		p.flags = HK_FRAMES_DECODE;
		p.decode_threads = 3;
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_list((const char *const *)paths, N, &p, &src),
		             HK_OK);
		hk_frame *fr;
		int n = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			cr_assert_eq(fr->status, want[fr->id], "%s: %d (%s)", fr->name,
			             fr->status, fr->error);
			if (fr->status == HK_OK) {
				hk_image ref;
				cr_assert_eq(hk_image_decode(fr->bytes, fr->len, &ref), HK_OK);
				cr_assert_eq(fr->image.width, ref.width);
				cr_assert_eq(fr->image.height, ref.height);
				cr_assert_eq(fr->image.width, 40 + fr->id);
				cr_assert_eq(memcmp(fr->image.data, ref.data,
				                    (size_t)ref.stride * ref.height), 0);
				hk_image_free(&ref);
			} else {
				cr_assert_null(fr->image.data);
				cr_assert_neq(fr->error[0], '\0');
			}
			hk_frames_release(src, fr);
			n++;
		}
		cr_assert_eq(n, N);
		hk_frames_destroy(src);
	}
	for (int i = 0; i < N; i++)
		free(paths[i]);
	rm_tree(dir);
	free(dir);
}

/* A consumer that stalls: reading stops at max_frames and the decode
 * budget, then everything still arrives. */
Test(io, memory_bounded_under_stalled_consumer)
{
	char *dir = mkdir_tmp();
	enum { N = 120 };
	char *paths[N];
	size_t n;
	uint8_t *j = make_jpeg(320, 240, 1, &n); /* 230400 bytes decoded */
	for (int i = 0; i < N; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%03d.jpg", dir, i);
		paths[i] = strdup(p);
		write_file(p, j, n);
	}
	free(j);
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		hk_frames_params p;
		hk_frames_default_params(&p);
		p.engine = engine;
		p.flags = HK_FRAMES_DECODE;
		p.queue_depth = 4;
		p.max_frames = 12;
		p.decode_threads = 2;
		p.max_bytes = 4 * 230400; /* four decoded frames */
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_list((const char *const *)paths, N, &p, &src),
		             HK_OK);
		usleep(300 * 1000); /* stalled consumer */
		hk_frames_stats st;
		hk_frames_get_stats(src, &st);
		cr_assert_leq(st.peak_frames, 12);
		cr_assert_leq(st.peak_bytes, p.max_bytes, "peak %llu",
		              (unsigned long long)st.peak_bytes);
		cr_assert_leq(st.bytes_read, 12 * n, "read ahead %llu",
		              (unsigned long long)st.bytes_read);
		hk_frame *fr;
		int got = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
			cr_assert_eq(fr->image.width, 320);
			hk_frames_release(src, fr);
			got++;
		}
		cr_assert_eq(got, N);
		hk_frames_get_stats(src, &st);
		cr_assert_leq(st.peak_frames, 12);
		cr_assert_leq(st.peak_bytes, p.max_bytes);
		cr_assert_eq(st.bytes_read, N * n);
		hk_frames_destroy(src);
	}
	for (int i = 0; i < N; i++)
		free(paths[i]);
	rm_tree(dir);
	free(dir);
}

/* --------------------------------------------------------------- streams */

typedef struct writer {
	int fd;
	const uint8_t *b;
	size_t n;
} writer;

static void *writer_main(void *arg)
{
	writer *w = arg;
	static const size_t chunks[] = {1, 7, 13, 4095, 4097, 3, 65537, 2, 31, 1000};
	size_t off = 0;
	for (size_t k = 0; off < w->n; k++) {
		size_t c = chunks[k % 10];
		if (c > w->n - off)
			c = w->n - off;
		ssize_t r = write(w->fd, w->b + off, c);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(w->fd);
	return NULL;
}

/* Streams buf through a pipe written in awkward chunks. */
static hk_frames *stream_open(const uint8_t *b, size_t n, hk_frames_params *p,
                              pthread_t *th, writer *w, int *rfd)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	w->fd = fds[1];
	w->b = b;
	w->n = n;
	cr_assert_eq(pthread_create(th, NULL, writer_main, w), 0);
	*rfd = fds[0];
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_stream(fds[0], p, &src), HK_OK, "%s",
	             hk_last_error());
	return src;
}

Test(io, raw_rgb24_stream_awkward_chunks)
{
	const uint32_t W = 37, H = 19, F = 25;
	size_t fb = (size_t)W * H * 3, n = fb * F + fb / 2; /* half a frame extra */
	uint8_t *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
	for (int small = 0; small <= 1; small++) {
		hk_frames_params p;
		hk_frames_default_params(&p);
		p.stream_width = W;
		p.stream_height = H;
		p.buffer_size = small ? 4096 : 0; /* frames above the buffer size */
		pthread_t th;
		writer w;
		int rfd;
		hk_frames *src = stream_open(b, n, &p, &th, &w, &rfd);
		cr_assert_eq(hk_frames_count(src), UINT64_MAX);
		hk_frame *fr;
		uint32_t got = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			cr_assert_eq(fr->id, got);
			if (got < F) {
				cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
				cr_assert_eq(fr->image.width, W);
				cr_assert_eq(fr->image.height, H);
				cr_assert_eq(memcmp(fr->image.data, b + got * fb, fb), 0,
				             "frame %u", got);
			} else {
				cr_assert_eq(fr->status, HK_E_FORMAT);
				cr_assert_not_null(strstr(fr->error, "truncated"));
			}
			hk_frames_release(src, fr);
			got++;
		}
		cr_assert_eq(got, F + 1);
		pthread_join(th, NULL);
		hk_frames_destroy(src);
		close(rfd);
	}
	free(b);
}

static uint8_t ref_clamp(double v)
{
	long r = lround(v);
	return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

Test(io, y4m_stream_colour_spaces)
{
	static const char *cs[] = {"C420jpeg", "C444", "C422", "Cmono", "", "C420mpeg2"};
	const uint32_t W = 9, H = 7, F = 4; /* odd: chroma rounds up */
	for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
		int sub = !strcmp(cs[c], "C444") ? 0 : !strcmp(cs[c], "Cmono") ? -1
		          : !strcmp(cs[c], "C422") ? 1 : 2;
		uint32_t cw = sub == 0 ? W : (W + 1) / 2, ch = sub == 2 ? (H + 1) / 2 : H;
		size_t plane = (size_t)W * H, cpl = sub < 0 ? 0 : (size_t)cw * ch;
		char hdr[128];
		int hn = snprintf(hdr, sizeof hdr, "YUV4MPEG2 W%u H%u F25:1 Ip A1:1%s%s\n",
		                  W, H, *cs[c] ? " " : "", cs[c]);
		size_t fsz = plane + 2 * cpl, total = (size_t)hn + F * (6 + fsz);
		uint8_t *b = malloc(total), *q = b;
		memcpy(q, hdr, (size_t)hn);
		q += hn;
		for (uint32_t f = 0; f < F; f++) {
			memcpy(q, "FRAME\n", 6);
			q += 6;
			for (size_t i = 0; i < fsz; i++)
				q[i] = (uint8_t)(16 + rnd() % 225);
			q += fsz;
		}
		hk_frames_params p;
		hk_frames_default_params(&p);
		pthread_t th;
		writer w;
		int rfd;
		hk_frames *src = stream_open(b, total, &p, &th, &w, &rfd);
		hk_frame *fr;
		uint32_t got = 0;
		while (hk_frames_next(src, &fr) == HK_OK && fr) {
			cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
			cr_assert_eq(fr->image.width, W);
			cr_assert_eq(fr->image.height, H);
			const uint8_t *Y = b + hn + fr->id * (6 + fsz) + 6;
			const uint8_t *U = Y + plane, *V = U + cpl;
			for (uint32_t y = 0; y < H; y++)
				for (uint32_t x = 0; x < W; x++) {
					double yy = 1.164383 * (Y[y * W + x] - 16.0), u = 0, v = 0;
					if (sub >= 0) {
						size_t ci = (size_t)(sub == 2 ? y / 2 : y) * cw +
						            (sub == 0 ? x : x / 2);
						u = U[ci] - 128.0;
						v = V[ci] - 128.0;
					}
					uint8_t want[3] = {ref_clamp(yy + 1.596027 * v),
					                   ref_clamp(yy - 0.391762 * u - 0.812968 * v),
					                   ref_clamp(yy + 2.017232 * u)};
					const uint8_t *px = fr->image.data + y * fr->image.stride + 3 * x;
					for (int k = 0; k < 3; k++)
						cr_assert_leq(abs(px[k] - want[k]), 1,
						              "%s frame %llu (%u,%u) c%d: %u want %u",
						              cs[c], (unsigned long long)fr->id, x, y, k,
						              px[k], want[k]);
				}
			hk_frames_release(src, fr);
			got++;
		}
		cr_assert_eq(got, F, "%s", cs[c]);
		pthread_join(th, NULL);
		hk_frames_destroy(src);
		close(rfd);
		free(b);
	}
}

Test(io, stream_bad_headers)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	const char *hdrs[] = {"YUV4MPEG2 W10 H10 Ib\n", "YUV4MPEG2 W0 H10\n",
	                      "YUV4MPEG2 H10 C420\n", "YUV4MPEG2 W10 H10 C411\n",
	                      "YUV4MPEG2 W10 H10 C420p10\n"};
	hk_status want[] = {HK_E_UNSUPPORTED, HK_E_UNSUPPORTED, HK_E_UNSUPPORTED,
	                    HK_E_UNSUPPORTED, HK_E_UNSUPPORTED};
	for (size_t i = 0; i < 5; i++) {
		int fds[2];
		cr_assert_eq(pipe(fds), 0);
		cr_assert_gt(write(fds[1], hdrs[i], strlen(hdrs[i])), 0);
		close(fds[1]);
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), want[i], "%s", hdrs[i]);
		close(fds[0]);
	}
	/* Raw RGB24 without geometry. */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], "abc", 3), 3);
	close(fds[1]);
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), HK_E_INVALID);
	close(fds[0]);
	/* A Y4M stream with a garbage frame marker ends with a FORMAT frame. */
	const char *s = "YUV4MPEG2 W2 H2 C444\nFRAME\n000000000000JUNK\n";
	cr_assert_eq(pipe(fds), 0);
	cr_assert_gt(write(fds[1], s, strlen(s)), 0);
	close(fds[1]);
	cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), HK_OK);
	hk_frame *fr;
	cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
	cr_assert_eq(fr->status, HK_OK);
	hk_frames_release(src, fr);
	cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
	cr_assert_eq(fr->status, HK_E_FORMAT);
	hk_frames_release(src, fr);
	cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
	cr_assert_null(fr);
	hk_frames_destroy(src);
	close(fds[0]);
}

/* A pipe whose writer stays open but stops writing: with timeout_ms the
 * stream ends with a "stalled" HK_E_IO frame (mid-frame and between
 * frames) or fails to open; without it, it would wait for ever. */
Test(io, stream_stalled_pipe_times_out)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.timeout_ms = 200;
	const char *hdr = "YUV4MPEG2 W2 H2 C444\nFRAME\n000000000000";
	for (int mid = 0; mid <= 1; mid++) {
		int fds[2];
		cr_assert_eq(pipe(fds), 0);
		cr_assert_gt(write(fds[1], hdr, strlen(hdr)), 0);
		if (mid) /* half of the second frame */
			cr_assert_eq(write(fds[1], "FRAME\n000000", 12), 12);
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), HK_OK, "%s", hk_last_error());
		hk_frame *fr;
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
		cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
		cr_assert_eq(fr->image.width, 2);
		hk_frames_release(src, fr);
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
		cr_assert_not_null(fr);
		cr_assert_eq(fr->status, HK_E_IO, "%s", fr->error);
		cr_assert_not_null(strstr(fr->error, "stalled: no data for 200 ms"), "%s", fr->error);
		hk_frames_release(src, fr);
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
		cr_assert_null(fr);
		hk_frames_destroy(src);
		close(fds[1]);
		close(fds[0]);
	}
	/* Nothing at all: open fails after the timeout. */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), HK_E_IO);
	cr_assert_not_null(strstr(hk_last_error(), "no data within 200 ms"), "%s", hk_last_error());
	cr_assert_null(src);
	close(fds[1]);
	close(fds[0]);
}

/* ------------------------------------------------------ placement, wiping */

#include "io_internal.h"

/* Placement on a machine we do not have: 2 packages x 3 cores x 2 PUs.
 * Worker i goes to core i % 6, whose cpuset is PUs {2c, 2c+1}; a
 * synthetic topology cannot bind, and the support check says so. */
Test(io, decode_worker_placement_synthetic)
{
	hwloc_topology_t t;
	cr_assert_eq(hwloc_topology_init(&t), 0);
	cr_assert_eq(hwloc_topology_set_synthetic(t, "package:2 core:3 pu:2"), 0);
	cr_assert_eq(hwloc_topology_load(t), 0);
	for (unsigned i = 0; i < 14; i++) {
		hwloc_const_cpuset_t set;
		cr_assert_eq(hk__pin_target(t, i, &set), 0);
		unsigned core = i % 6;
		cr_assert_eq(hwloc_bitmap_weight(set), 2);
		cr_assert(hwloc_bitmap_isset(set, 2 * core) &&
		          hwloc_bitmap_isset(set, 2 * core + 1), "worker %u", i);
	}
	cr_assert_eq(hk__pin_thread(t, 0), -ENOTSUP);
	hwloc_topology_destroy(t);
	/* No cores in the topology: PUs are used. */
	cr_assert_eq(hwloc_topology_init(&t), 0);
	cr_assert_eq(hwloc_topology_set_synthetic(t, "pu:3"), 0);
	cr_assert_eq(hwloc_topology_load(t), 0);
	hwloc_const_cpuset_t set;
	cr_assert_eq(hk__pin_target(t, 4, &set), 0);
	cr_assert(hwloc_bitmap_isset(set, 1) && hwloc_bitmap_weight(set) == 1);
	hwloc_topology_destroy(t);
}

/* Released frames are wiped: the read buffer stays allocated until
 * destroy, so its bytes can be checked after release. */
Test(io, release_wipes_buffers)
{
	char *dir = mkdir_tmp();
	char path[256];
	snprintf(path, sizeof path, "%s/x.jpg", dir);
	uint8_t data[3000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i | 1);
	write_file(path, data, sizeof data);
	for (uint32_t engine = HK_FRAMES_IO_URING; engine <= HK_FRAMES_PREAD; engine++) {
		hk_frames_params p;
		hk_frames_default_params(&p);
		p.engine = engine;
		const char *paths[1] = {path};
		hk_frames *src = NULL;
		cr_assert_eq(hk_frames_open_list(paths, 1, &p, &src), HK_OK);
		hk_frame *fr;
		cr_assert_eq(hk_frames_next(src, &fr), HK_OK);
		cr_assert_eq(fr->len, sizeof data);
		const volatile uint8_t *b = fr->bytes;
		cr_assert_eq(b[0], 1);
		hk_frames_release(src, fr);
		size_t nonzero = 0;
		for (size_t i = 0; i < sizeof data; i++)
			nonzero += b[i] != 0;
		cr_assert_eq(nonzero, 0, "engine %u: %zu bytes survive release",
		             engine, nonzero);
		hk_frames_destroy(src);
	}
	rm_tree(dir);
	free(dir);
}

typedef struct slow_writer {
	int fd;
	const uint8_t *b;
	size_t n;
} slow_writer;

static void *slow_writer_main(void *arg)
{
	slow_writer *w = arg;
	cr_assert_eq(write(w->fd, w->b, 1), 1);
	usleep(50 * 1000); /* the reader sees 1 byte, then a full pipe */
	size_t off = 1;
	while (off < w->n) {
		ssize_t r = write(w->fd, w->b + off, w->n - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(w->fd);
	return NULL;
}

/* The format sniff (10 bytes) spans a 1-byte read and a 64 KiB read: the
 * sniffed bytes go back in front of a full read-ahead buffer. */
Test(io, raw_stream_sniff_across_reads)
{
	const uint32_t W = 100, H = 100, F = 4;
	size_t fb = (size_t)W * H * 3, n = fb * F;
	uint8_t *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + 7);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	slow_writer w = {fds[1], b, n};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, slow_writer_main, &w), 0);
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.stream_width = W;
	p.stream_height = H;
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open_stream(fds[0], &p, &src), HK_OK);
	hk_frame *fr;
	uint32_t got = 0;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		cr_assert_eq(fr->status, HK_OK, "%s", fr->error);
		cr_assert_eq(memcmp(fr->image.data, b + fr->id * fb, fb), 0,
		             "frame %llu", (unsigned long long)fr->id);
		hk_frames_release(src, fr);
		got++;
	}
	cr_assert_eq(got, F);
	pthread_join(th, NULL);
	hk_frames_destroy(src);
	close(fds[0]);
	free(b);
}
