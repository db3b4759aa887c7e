/*
 * herken-bench ingest: frame ingest throughput of the io/ frame sources
 * (io_uring plain / SQPOLL / O_DIRECT, pread pool) against mmap and fio
 * (io_uring and psync engines) on the same files in the same run, cold and
 * warm page cache, read-only and read+decode.
 *
 * Every engine is verified before it is timed: a checksum over all bytes
 * (per-file FNV-1a, combined by frame id) must equal the one computed with
 * plain read(); fio must report exactly the set's byte count.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "bench.h"
#include "herken.h"

typedef struct fset {
	const char *label;
	char **paths; /* paths inside farm (hard or symbolic links) */
	size_t n;
	uint64_t bytes;
	uint64_t bytes4k; /* sum of sizes rounded down to 4 KiB: what fio reads */
	size_t max_size;
	char farm[256]; /* flat directory of links: the same files for fio */
	char gen[256];  /* generated files to delete, or "" */
	uint64_t checksum;
} fset;

typedef struct opts {
	const char *files;
	const char *engine;
	const char *cache;
	int decode, json, reps, synth, qd;
} opts;

typedef struct result {
	double seconds;
	uint64_t bytes, frames, checksum;
	int ok;
	char note[128];
} result;

/* ---------------------------------------------------------------- sets */

/* Order-independent combination of per-file hashes keyed by frame id. */
static uint64_t mix(uint64_t id, uint64_t h)
{
	uint64_t z = h + id * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 31);
}

static int add(char ***v, size_t *n, size_t *cap, const char *p)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		char **nv = realloc(*v, *cap * sizeof *nv);
		if (!nv)
			return -1;
		*v = nv;
	}
	(*v)[(*n)++] = strdup(p);
	return 0;
}

static int is_image(const char *name)
{
	const char *d = strrchr(name, '.');
	return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") ||
	             !strcasecmp(d, ".png") || !strcasecmp(d, ".ppm") ||
	             !strcasecmp(d, ".pgm"));
}

static void walk(const char *dir, char ***v, size_t *n, size_t *cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			walk(p, v, n, cap);
		else if (S_ISREG(st.st_mode) && is_image(e->d_name))
			add(v, n, cap, p);
	}
	closedir(d);
}

static int cmps(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Links every source file into a flat temp directory (hard links where
 * possible): fio's opendir= then sees exactly the set, and every engine
 * opens the same paths. Computes the reference checksum with read(). */
static int fset_build(fset *s, char **src, size_t n)
{
	snprintf(s->farm, sizeof s->farm, "/tmp/hk_ingest_farm_XXXXXX");
	if (!mkdtemp(s->farm))
		return -1;
	size_t cap = 0;
	uint8_t *buf = malloc(1 << 24);
	for (size_t i = 0; i < n; i++) {
		char p[512];
		snprintf(p, sizeof p, "%s/%06zu.jpg", s->farm, i);
		if (link(src[i], p) != 0 && symlink(src[i], p) != 0)
			return -1;
		add(&s->paths, &s->n, &cap, p);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			return -1;
		size_t len = 0;
		ssize_t r;
		uint64_t h = HK_FNV1A64_INIT;
		while ((r = read(fd, buf, 1 << 24)) > 0) {
			h = hk_fnv1a64(h, buf, (size_t)r);
			len += (size_t)r;
		}
		close(fd);
		s->bytes += len;
		s->bytes4k += len / 4096 * 4096;
		if (len > s->max_size)
			s->max_size = len;
		s->checksum ^= mix(i, h);
	}
	free(buf);
	return 0;
}

static void fset_free(fset *s)
{
	if (s->farm[0])
		hkb_rmrf(s->farm);
	if (s->gen[0])
		hkb_rmrf(s->gen);
	for (size_t i = 0; i < s->n; i++)
		free(s->paths[i]);
	free(s->paths);
}

/* Synthetic 1080p camera-like frames: smooth gradients, edges and sensor
 * noise, JPEG quality 92, 4:2:0 (about 0.5-1 MB each). */
static int gen_1080p(fset *s, int count)
{
	snprintf(s->gen, sizeof s->gen, "/tmp/hk_ingest_1080p_XXXXXX");
	if (!mkdtemp(s->gen))
		return -1;
	const int W = 1920, H = 1080;
	uint8_t *rgb = malloc((size_t)W * H * 3);
	tjhandle tj = tjInitCompress();
	hkb_rng r;
	hkb_rng_seed(&r, 1080);
	char **src = NULL;
	size_t n = 0, cap = 0;
	for (int f = 0; f < count; f++) {
		for (int y = 0; y < H; y++)
			for (int x = 0; x < W; x++) {
				uint8_t *p = rgb + ((size_t)y * W + x) * 3;
				int noise = (int)(hkb_rng_next(&r) % 13) - 6;
				int band = ((x + f * 37) / 64 + y / 48) & 1 ? 40 : 0;
				for (int c = 0; c < 3; c++) {
					int v = (x * (c + 1) + y * (3 - c) + f * 11) / 12 % 200 +
					        band + noise;
					p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
				}
			}
		unsigned char *jb = NULL;
		unsigned long jn = 0;
		if (tjCompress2(tj, rgb, W, 0, H, TJPF_RGB, &jb, &jn, TJSAMP_420, 92,
		                0) != 0)
			return -1;
		char p[512];
		snprintf(p, sizeof p, "%s/frame%04d.jpg", s->gen, f);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, jb, jn) != (ssize_t)jn)
			return -1;
		close(fd);
		tjFree(jb);
		add(&src, &n, &cap, p);
		hkb_progress("generating 1080p frames", (size_t)f + 1, (size_t)count);
	}
	tjDestroy(tj);
	free(rgb);
	int rc = fset_build(s, src, n);
	for (size_t i = 0; i < n; i++)
		free(src[i]);
	free(src);
	return rc;
}

static int load_spec(fset *s, const char *spec)
{
	char **src = NULL;
	size_t n = 0, cap = 0;
	struct stat st;
	if (stat(spec, &st) != 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		walk(spec, &src, &n, &cap);
	} else {
		FILE *f = fopen(spec, "r");
		char line[4096];
		while (f && fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (line[0] && line[0] != '#')
				add(&src, &n, &cap, line);
		}
		if (f)
			fclose(f);
	}
	if (n == 0)
		return -1;
	qsort(src, n, sizeof *src, cmps);
	int rc = fset_build(s, src, n);
	for (size_t i = 0; i < n; i++)
		free(src[i]);
	free(src);
	return rc;
}

/* ------------------------------------------------------------- engines */

static void drop_cache(const fset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int fd = open(s->paths[i], O_RDONLY);
		if (fd < 0)
			continue;
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

static uint32_t buffer_for(const fset *s)
{
	size_t b = (s->max_size + 1 + 4095) / 4096 * 4096;
	if (b < 65536)
		b = 65536;
	return (uint32_t)b;
}

typedef enum {
	E_URING, E_URING_SQPOLL, E_URING_DIRECT, E_PREAD, E_PREAD1, E_MMAP,
	E_FIO_URING, E_FIO_PSYNC, E_DECODE_MEM, E_COUNT
} engine_id;

static const char *const ENAME[E_COUNT] = {
        "io_uring", "io_uring+sqpoll", "io_uring+odirect", "pread",
        "pread-1thread", "mmap", "fio-io_uring", "fio-psync", "decode-only"};

static void run_frames(const fset *s, engine_id e, int decode, int verify,
                       int qd, result *r)
{
	hk_frames_params p;
	hk_frames_default_params(&p);
	p.queue_depth = (uint32_t)qd;
	p.buffer_size = buffer_for(s);
	p.max_bytes = (uint64_t)512 << 20;
	p.engine = (e == E_PREAD || e == E_PREAD1) ? HK_FRAMES_PREAD
	                                           : HK_FRAMES_IO_URING;
	if (e == E_PREAD1)
		p.io_threads = 1;
	if (e == E_URING_SQPOLL)
		p.flags |= HK_FRAMES_SQPOLL;
	if (e == E_URING_DIRECT)
		p.flags |= HK_FRAMES_DIRECT;
	if (decode)
		p.flags |= HK_FRAMES_DECODE;
	hk_frames *src = NULL;
	/* Setup (buffers allocated and registered, threads started) is not
	 * timed, as fio's bandwidth figure excludes its own setup. */
	if (hk_frames_open_list((const char *const *)s->paths, s->n, &p, &src)) {
		snprintf(r->note, sizeof r->note, "open: %s", hk_last_error());
		return;
	}
	double t0 = hkb_now();
	hk_frame *fr;
	uint64_t sum = 0, bytes = 0, frames = 0, errs = 0;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		if (fr->status != HK_OK)
			errs++;
		bytes += fr->len;
		if (verify)
			sum ^= mix(fr->id, hk_fnv1a64(HK_FNV1A64_INIT, fr->bytes, fr->len));
		frames++;
		hk_frames_release(src, fr);
	}
	r->seconds = hkb_now() - t0;
	hk_frames_stats st;
	hk_frames_get_stats(src, &st);
	hk_frames_destroy(src);
	r->bytes = bytes;
	r->frames = frames;
	r->checksum = sum;
	r->ok = errs == 0 && frames == s->n && bytes == s->bytes;
	if (e == E_URING_SQPOLL && !(st.flags & HK_FRAMES_HAVE_SQPOLL))
		snprintf(r->note, sizeof r->note, "SQPOLL refused");
	else if (e == E_URING_DIRECT && !(st.flags & HK_FRAMES_HAVE_DIRECT))
		snprintf(r->note, sizeof r->note, "O_DIRECT refused by the fs");
	else if (e != E_PREAD && e != E_PREAD1 && !(st.flags & HK_FRAMES_HAVE_REGBUF))
		snprintf(r->note, sizeof r->note, "buffers not registered");
	if (errs)
		snprintf(r->note, sizeof r->note, "%llu frame errors",
		         (unsigned long long)errs);
}

static void run_mmap(const fset *s, int decode, int verify, result *r)
{
	double t0 = hkb_now();
	uint64_t sum = 0, bytes = 0, touch = 0;
	int ok = 1;
	for (size_t i = 0; i < s->n; i++) {
		int fd = open(s->paths[i], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			ok = 0;
			continue;
		}
		size_t len = (size_t)st.st_size;
		if (len) {
			uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
			                  fd, 0);
			if (m == MAP_FAILED) {
				ok = 0;
				close(fd);
				continue;
			}
			for (size_t k = 0; k < len; k += 4096)
				touch += m[k];
			if (verify)
				sum ^= mix(i, hk_fnv1a64(HK_FNV1A64_INIT, m, len));
			if (decode) {
				hk_image im;
				if (hk_image_decode(m, len, &im) != HK_OK)
					ok = 0;
				hk_image_free(&im);
			}
			munmap(m, len);
		} else if (verify) {
			sum ^= mix(i, HK_FNV1A64_INIT);
		}
		bytes += len;
		close(fd);
	}
	r->seconds = hkb_now() - t0;
	r->bytes = bytes;
	r->frames = s->n;
	r->checksum = sum;
	r->ok = ok && bytes == s->bytes;
	(void)touch;
}

/* Decode rate alone: one thread, frames already in memory. */
static void run_decode_mem(const fset *s, result *r)
{
	size_t n = s->n < 400 ? s->n : 400;
	uint8_t **b = calloc(n, sizeof *b);
	size_t *len = calloc(n, sizeof *len);
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		int fd = open(s->paths[i], O_RDONLY);
		struct stat st;
		fstat(fd, &st);
		len[i] = (size_t)st.st_size;
		b[i] = malloc(len[i] + 1);
		if (read(fd, b[i], len[i]) != (ssize_t)len[i])
			len[i] = 0;
		close(fd);
		bytes += len[i];
	}
	int ok = 1;
	double t0 = hkb_now();
	for (size_t i = 0; i < n; i++) {
		hk_image im;
		if (hk_image_decode(b[i], len[i], &im) != HK_OK)
			ok = 0;
		hk_image_free(&im);
	}
	r->seconds = hkb_now() - t0;
	for (size_t i = 0; i < n; i++)
		free(b[i]);
	free(b);
	free(len);
	r->bytes = bytes;
	r->frames = n;
	r->ok = ok;
}

/* Runs fio on the farm directory; parses bw_bytes and io_bytes from its
 * JSON output. */
static void run_fio(const fset *s, engine_id e, int cold, int qd, result *r)
{
	/* fio reads each file rounded down to a multiple of its minimum block
	 * size (odd-sized whole files are not expressible: bs_unaligned with
	 * bsrange=1-MAX reads every byte but measured 100x slower), so fio
	 * reads the 4 KiB-aligned part of each file with bsrange=4k-MAX,
	 * MAX = the largest file, i.e. as few reads per file as it can; its
	 * MB/s is over the bytes it read (total_ios reported). Cold = our
	 * fadvise DONTNEED + fio's invalidate=1; buffered like "io_uring". */
	char bs[48], depth[32], opendir[300], invalidate[16];
	size_t maxbs = (s->max_size + 4095) / 4096 * 4096;
	snprintf(bs, sizeof bs, "--bsrange=4k-%zu", maxbs < 4096 ? 4096 : maxbs);
	snprintf(depth, sizeof depth, "--iodepth=%d", e == E_FIO_URING ? qd : 1);
	snprintf(invalidate, sizeof invalidate, "--invalidate=%d", cold);
	snprintf(opendir, sizeof opendir, "--opendir=%s", s->farm);
	int pfd[2];
	if (pipe(pfd) != 0)
		return;
	double t0 = hkb_now();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2);
		close(pfd[0]);
		close(pfd[1]);
		execlp("fio", "fio", "--name=ingest", "--readonly", opendir,
		       "--rw=read", bs,
		       e == E_FIO_URING ? "--ioengine=io_uring" : "--ioengine=psync",
		       depth, "--direct=0", invalidate, "--openfiles=64", "--thread",
		       "--output-format=json", "--group_reporting", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap);
	ssize_t k;
	while ((k = read(pfd[0], out + len, cap - 1 - len)) > 0) {
		len += (size_t)k;
		if (len + 1 >= cap)
			out = realloc(out, cap *= 2);
	}
	out[len] = '\0';
	close(pfd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	double wall = hkb_now() - t0;
	const char *rd = strstr(out, "\"read\"");
	const char *iob = rd ? strstr(rd, "\"io_bytes\"") : NULL;
	const char *bw = rd ? strstr(rd, "\"bw_bytes\"") : NULL;
	const char *rt = rd ? strstr(rd, "\"runtime\"") : NULL;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !iob || !bw || !rt) {
		snprintf(r->note, sizeof r->note, "fio failed (status %d)",
		         WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		free(out);
		return;
	}
	r->bytes = strtoull(strchr(iob, ':') + 1, NULL, 10);
	double bwb = strtod(strchr(bw, ':') + 1, NULL);
	r->seconds = bwb > 0 ? (double)r->bytes / bwb : wall;
	const char *ti = rd ? strstr(rd, "\"total_ios\"") : NULL;
	r->frames = s->n;
	r->ok = r->bytes == s->bytes4k;
	if (ti)
		snprintf(r->note, sizeof r->note,
		         "%.2f reads per file, 4K-aligned part = %.1f %% of bytes",
		         strtod(strchr(ti, ':') + 1, NULL) / (double)s->n,
		         100.0 * (double)s->bytes4k / (double)s->bytes);
	if (!r->ok)
		snprintf(r->note, sizeof r->note, "fio read %llu of %llu bytes",
		         (unsigned long long)r->bytes, (unsigned long long)s->bytes4k);
	free(out);
}

static int fio_present(void)
{
	return system("fio --version >/dev/null 2>&1") == 0;
}

/* --------------------------------------------------------------- driver */

typedef struct row {
	const char *set, *impl, *cache;
	int decode;
	size_t files;
	double mbps, fps, secs;
	int ok;
	char note[128];
} row;

static row rows[256];
static int nrows;

static void emit(const opts *o, const fset *s, engine_id e, int cold,
                 int decode, double *secs, int nrep, const result *last)
{
	row *w = &rows[nrows < 255 ? nrows++ : 255];
	double med = hkb_median(secs, (size_t)nrep);
	w->set = s->label;
	w->impl = ENAME[e];
	w->cache = e == E_DECODE_MEM ? "memory" : cold ? "cold" : "warm";
	w->decode = decode;
	w->files = (size_t)last->frames;
	w->secs = med;
	w->mbps = med > 0 ? (double)last->bytes / med / 1e6 : 0;
	w->fps = med > 0 ? (double)last->frames / med : 0;
	w->ok = last->ok;
	snprintf(w->note, sizeof w->note, "%s", last->note);
	if (o->json)
		printf("{\"suite\":\"ingest\",\"set\":\"%s\",\"impl\":\"%s\","
		       "\"cache\":\"%s\",\"decode\":%s,\"files\":%zu,\"bytes\":%llu,"
		       "\"mb_per_s\":%.1f,\"frames_per_s\":%.1f,\"seconds\":%.4f,"
		       "\"reps\":%d,\"queue_depth\":%d,\"verified\":%s%s%s%s}\n",
		       w->set, w->impl, w->cache, decode ? "true" : "false", w->files,
		       (unsigned long long)last->bytes, w->mbps, w->fps, med, nrep,
		       o->qd, w->ok ? "true" : "false", w->note[0] ? ",\"note\":\"" : "",
		       w->note, w->note[0] ? "\"" : "");
	fflush(stdout);
}

static int want_engine(const opts *o, engine_id e)
{
	if (!strcmp(o->engine, "all"))
		return 1;
	if (!strcmp(o->engine, "io_uring"))
		return e == E_URING || e == E_URING_SQPOLL || e == E_URING_DIRECT;
	if (!strcmp(o->engine, "pread"))
		return e == E_PREAD || e == E_PREAD1;
	return !strcmp(o->engine, ENAME[e]);
}

static int bench_set(const opts *o, fset *s)
{
	int fails = 0, fio = fio_present();
	/* Verification pass (warm): every engine's checksum equals read()'s. */
	for (engine_id e = E_URING; e <= E_MMAP; e++) {
		if (!want_engine(o, e))
			continue;
		result r = {0};
		if (e == E_MMAP)
			run_mmap(s, 0, 1, &r);
		else
			run_frames(s, e, 0, 1, o->qd, &r);
		if (!r.ok || r.checksum != s->checksum) {
			fprintf(stderr, "ingest: %s on %s FAILED verification (%s)\n",
			        ENAME[e], s->label, r.note);
			fails++;
		}
	}
	/* The machine is shared and its load drifts: repetitions are
	 * interleaved (rep 1 of every engine, then rep 2, ...) so that every
	 * engine sees the same conditions, and the median is reported. */
	for (int cold = 0; cold <= 1; cold++) {
		if ((cold && !strcmp(o->cache, "warm")) ||
		    (!cold && !strcmp(o->cache, "cold")))
			continue;
		for (int dec = 0; dec <= o->decode; dec++) {
			engine_id list[E_COUNT];
			int nl = 0;
			for (engine_id e = E_URING; e < E_COUNT; e++) {
				if (!want_engine(o, e) || (e == E_DECODE_MEM && (!dec || cold)))
					continue;
				if ((e == E_FIO_URING || e == E_FIO_PSYNC) && (dec || !fio))
					continue;
				if (e == E_URING_DIRECT && !cold)
					continue; /* O_DIRECT is the cold-frame path */
				if (dec && (e == E_URING_SQPOLL || e == E_PREAD1))
					continue;
				list[nl++] = e;
			}
			int nrep = o->reps < 32 ? o->reps : 32;
			double secs[E_COUNT][32];
			result last[E_COUNT];
			memset(last, 0, sizeof last);
			for (int k = 0; k < nrep; k++)
				for (int j = 0; j < nl; j++) {
					engine_id e = list[j];
					result r = {0};
					if (cold)
						drop_cache(s);
					else if (k == 0 && j == 0)
						run_mmap(s, 0, 0, &r); /* warm up */
					memset(&r, 0, sizeof r);
					if (e == E_MMAP)
						run_mmap(s, dec, 0, &r);
					else if (e == E_FIO_URING || e == E_FIO_PSYNC)
						run_fio(s, e, cold, o->qd, &r);
					else if (e == E_DECODE_MEM)
						run_decode_mem(s, &r);
					else
						run_frames(s, e, dec, 0, o->qd, &r);
					secs[j][k] = r.seconds;
					if (k == 0 || !r.ok || last[j].ok)
						last[j] = r;
				}
			for (int j = 0; j < nl; j++) {
				if (!last[j].ok)
					fails++;
				emit(o, s, list[j], cold, dec, secs[j], nrep, &last[j]);
			}
		}
	}
	return fails;
}

static const row *find(const char *set, const char *impl, const char *cache,
                       int dec)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].set, set) && !strcmp(rows[i].impl, impl) &&
		    !strcmp(rows[i].cache, cache) && rows[i].decode == dec)
			return &rows[i];
	return NULL;
}

static void report(const opts *o, fset *sets, int nsets)
{
	FILE *out = o->json ? stderr : stdout;
	fprintf(out, "\n| set | impl | cache | decode | files | MB/s | frames/s | "
	             "vs fio-io_uring | verified |\n"
	             "|---|---|---|---|---:|---:|---:|---:|---|\n");
	for (int i = 0; i < nrows; i++) {
		const row *w = &rows[i];
		const row *f = find(w->set, "fio-io_uring", w->cache, 0);
		char ratio[32] = "";
		if (f && f->mbps > 0 && !w->decode)
			snprintf(ratio, sizeof ratio, "%.1f %%", 100 * w->mbps / f->mbps);
		fprintf(out, "| %s | %s | %s | %s | %zu | %.1f | %.0f | %s | %s%s%s |\n",
		        w->set, w->impl, w->cache, w->decode ? "yes" : "no", w->files,
		        w->mbps, w->fps, ratio, w->ok ? "yes" : "NO",
		        w->note[0] ? " — " : "", w->note);
	}
	fprintf(out, "\n");
	for (int k = 0; k < nsets; k++) {
		const char *set = sets[k].label;
		for (int cold = 0; cold <= 1; cold++) {
			const char *c = cold ? "cold" : "warm";
			const row *u = find(set, "io_uring", c, 0);
			const row *ud = cold ? find(set, "io_uring+odirect", c, 0) : NULL;
			const row *us = find(set, "io_uring+sqpoll", c, 0);
			const row *f = find(set, "fio-io_uring", c, 0);
			const row *p = find(set, "pread", c, 0);
			const row *p1 = find(set, "pread-1thread", c, 0);
			const row *best = u;
			if (ud && (!best || ud->mbps > best->mbps))
				best = ud;
			if (us && (!best || us->mbps > best->mbps))
				best = us;
			if (best && f && f->mbps > 0)
				fprintf(out, "- %s %s: best io_uring (%s) %.1f MB/s = %.1f %% "
				             "of fio io_uring %.1f MB/s\n", set, c, best->impl,
				        best->mbps, 100 * best->mbps / f->mbps, f->mbps);
			if (u && p && p->mbps > 0)
				fprintf(out, "- %s %s: io_uring / pread pool = %.2fx "
				             "(%.0f vs %.0f frames/s)%s\n", set, c,
				        u->fps / p->fps, u->fps, p->fps, "");
			if (u && p1 && p1->mbps > 0)
				fprintf(out, "- %s %s: io_uring / pread 1 thread = %.2fx\n",
				        set, c, u->fps / p1->fps);
			if (u && us && u->mbps > 0)
				fprintf(out, "- %s %s: SQPOLL / plain ring = %.2fx\n", set, c,
				        us->mbps / u->mbps);
			if (u && ud && u->mbps > 0)
				fprintf(out, "- %s %s: O_DIRECT / plain ring = %.2fx\n", set, c,
				        ud->mbps / u->mbps);
			const row *d = find(set, "io_uring", c, 1);
			long cores = sysconf(_SC_NPROCESSORS_ONLN);
			if (d)
				fprintf(out, "- %s %s: read+decode %.1f frames/s on %ld "
				             "decode threads = %.1f frames/s per core\n",
				        set, c, d->fps, cores, d->fps / (double)cores);
		}
		const row *dm = find(set, "decode-only", "memory", 1);
		if (dm)
			fprintf(out, "- %s: decode alone, 1 thread: %.1f frames/s per "
			             "core (the ingest limit once reads are this fast)\n",
			        set, dm->fps);
	}
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: herken-bench ingest [--files DIR|LIST] [--engine "
	        "io_uring|pread|mmap|fio-io_uring|fio-psync|all]\n"
	        "         [--cache cold|warm|both] [--decode] [--json] [--reps N]\n"
	        "         [--synthetic N (1080p JPEGs, 0 = none)] [--qd N]\n"
	        "Without --files: LFW from $HERKEN_SHARED/datasets/lfw when "
	        "present, plus N synthetic 1080p frames.\n");
}

int hk__bench_ingest(int argc, char **argv)
{
	opts o = {NULL, "all", "both", 0, 0, 3, 48, 32};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--files") && v) {
			o.files = v;
			i++;
		} else if (!strcmp(a, "--engine") && v) {
			o.engine = v;
			i++;
		} else if (!strcmp(a, "--cache") && v) {
			o.cache = v;
			i++;
		} else if (!strcmp(a, "--reps") && v) {
			o.reps = atoi(v);
			i++;
		} else if (!strcmp(a, "--synthetic") && v) {
			o.synth = atoi(v);
			i++;
		} else if (!strcmp(a, "--qd") && v) {
			o.qd = atoi(v);
			i++;
		} else if (!strcmp(a, "--decode")) {
			o.decode = 1;
		} else if (!strcmp(a, "--json")) {
			o.json = 1;
		} else {
			usage();
			return !strcmp(a, "--help") ? 0 : 2;
		}
	}
	if (o.reps < 1 || o.qd < 1 || o.qd > 4096 ||
	    (strcmp(o.cache, "cold") && strcmp(o.cache, "warm") &&
	     strcmp(o.cache, "both"))) {
		usage();
		return 2;
	}
	int known = 0;
	for (engine_id e = E_URING; e < E_COUNT; e++)
		known |= !strcmp(o.engine, ENAME[e]);
	if (!known && strcmp(o.engine, "all") && strcmp(o.engine, "io_uring") &&
	    strcmp(o.engine, "pread")) {
		usage();
		return 2;
	}
	if (!o.json)
		hkb_print_header("ingest", 1080);
	fset sets[2];
	memset(sets, 0, sizeof sets);
	int nsets = 0;
	if (o.files) {
		sets[0].label = "files";
		if (load_spec(&sets[0], o.files) != 0) {
			fprintf(stderr, "ingest: no image files in %s\n", o.files);
			fset_free(&sets[0]);
			return 2;
		}
		nsets = 1;
	} else {
		char lfw[4096];
		hkb_data_path(NULL, "datasets/lfw", lfw, sizeof lfw); /* --files overrides */
		struct stat st;
		if (stat(lfw, &st) == 0 && S_ISDIR(st.st_mode)) {
			sets[nsets].label = "lfw";
			if (load_spec(&sets[nsets], lfw) == 0)
				nsets++;
			else
				fset_free(&sets[nsets]);
		} else {
			fprintf(stderr, "ingest: %s absent, synthetic set only\n", lfw);
		}
		if (o.synth > 0) {
			sets[nsets].label = "1080p";
			if (gen_1080p(&sets[nsets], o.synth) != 0) {
				fprintf(stderr, "ingest: cannot generate 1080p frames\n");
				fset_free(&sets[nsets]);
			} else {
				nsets++;
			}
		}
	}
	if (!o.json)
		for (int k = 0; k < nsets; k++)
			printf("<!-- set %s: %zu files, %.1f MB, largest %zu bytes, "
			       "read buffer %u, queue depth %d, %d reps (median) -->\n",
			       sets[k].label, sets[k].n, sets[k].bytes / 1e6,
			       sets[k].max_size, buffer_for(&sets[k]), o.qd, o.reps);
	int fails = 0;
	for (int k = 0; k < nsets; k++)
		fails += bench_set(&o, &sets[k]);
	report(&o, sets, nsets);
	for (int k = 0; k < nsets; k++)
		fset_free(&sets[k]);
	if (fails)
		fprintf(stderr, "ingest: %d verification failures\n", fails);
	return fails ? 1 : 0;
}
