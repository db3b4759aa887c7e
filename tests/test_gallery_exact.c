/* The gallery's exact (re-rank) copy: fp32, fp16 and an encrypted file.
 * Search, batch, verify, get, remove and compact must behave alike; the
 * file holds no plaintext and removed rows are zeroed in it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herken.h"
#include "test_vec.h"

static uint64_t rng;
static float nrand(void)
{
	double u[2];
	for (int i = 0; i < 2; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		u[i] = (((rng >> 11) & ((1ull << 53) - 1)) + 0.5) * 0x1.0p-53;
	}
	return (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static char tmpdir[64];

static void mkdir_tmp(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/var/tmp/herken-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rmdir_tmp(void) { rmdir(tmpdir); }

static hk_gallery *make(int d, uint32_t exact, uint32_t rerank, uint32_t threads)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = (uint32_t)d;
	p.rerank = rerank;
	p.threads = threads;
	p.huge_pages = HK_HUGE_OFF;
	p.exact_type = exact;
	p.exact_dir = tmpdir;
	hk_gallery *g = NULL;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_OK, "%s", hk_last_error());
	return g;
}

/* n unit vectors (d floats each), subject i % nsubj; ids out */
static float *fill(hk_gallery *g, int d, int n, int nsubj, hk_template_id *ids)
{
	float *v = malloc((size_t)n * d * sizeof *v);
	char name[48];
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < d; j++)
			v[(size_t)i * d + j] = nrand();
		tv_unit(v + (size_t)i * d, d);
		/* long names (>= 16 bytes) and short ones both occur */
		snprintf(name, sizeof name, i % 3 ? "s%d" : "a-long-subject-name-%d",
		         i % nsubj);
		cr_assert_eq(hk_gallery_add(g, name, v + (size_t)i * d, &ids[i]),
		             HK_OK, "%s", hk_last_error());
	}
	return v;
}

static double dot(const float *a, const float *b, int d)
{
	double s = 0;
	for (int i = 0; i < d; i++)
		s += (double)a[i] * b[i];
	return s;
}

static const uint32_t kinds[] = {HK_EXACT_FP32, HK_EXACT_FP16, HK_EXACT_FILE};
/* fp16 rounds each component by <= 2^-11 relative: on unit vectors the
 * score moves by <= 2^-11 (|q| |x| = 1); observed ~1e-5 */
static const float score_tol[] = {2e-6f, 5e-4f, 2e-6f};

Test(gallery_exact, search_get_verify_match_fp64_reference)
{
	mkdir_tmp();
	enum { D = 100, N = 1500, NQ = 24, K = 10 };
	for (int e = 0; e < 3; e++) {
		rng = 1234; /* same data for every kind */
		hk_gallery *g = make(D, kinds[e], 4096, 2); /* re-rank all: exact */
		hk_template_id ids[N];
		float *v = fill(g, D, N, N, ids);
		hk_gallery_info info;
		cr_assert_eq(hk_gallery_get_info(g, &info), HK_OK);
		cr_assert_eq(info.exact_type, kinds[e]);
		float *q = malloc(NQ * D * sizeof *q);
		for (int i = 0; i < NQ * D; i++)
			q[i] = nrand();
		float sb[NQ * K];
		hk_template_id ib[NQ * K];
		cr_assert_eq(hk_gallery_search_batch(g, q, NQ, K, sb, ib), HK_OK);
		for (int t = 0; t < NQ; t++) {
			float qn[D], s[K];
			hk_template_id id[K];
			memcpy(qn, q + t * D, sizeof qn);
			tv_unit(qn, D);
			cr_assert_eq(hk_gallery_search(g, q + t * D, K, s, id), HK_OK);
			/* fp64 reference top-K */
			double best[K];
			int bi[K];
			for (int k = 0; k < K; k++) {
				best[k] = -2;
				bi[k] = -1;
			}
			for (int i = 0; i < N; i++) {
				double sc = dot(qn, v + (size_t)i * D, D);
				if (sc <= best[K - 1])
					continue;
				int p = K - 1;
				while (p > 0 && sc > best[p - 1]) {
					best[p] = best[p - 1];
					bi[p] = bi[p - 1];
					p--;
				}
				best[p] = sc;
				bi[p] = i;
			}
			for (int k = 0; k < K; k++) {
				cr_assert_eq(id[k], ids[bi[k]], "kind %u q %d rank %d", kinds[e], t, k);
				cr_assert_float_eq(s[k], best[k], score_tol[e], "kind %u", kinds[e]);
				cr_assert_eq(ib[t * K + k], id[k], "batch vs single");
				cr_assert_eq(sb[t * K + k], s[k]);
			}
			/* verify = the exact score of the subject's one template */
			char name[HK_SUBJECT_MAX + 1];
			float vs;
			hk_template_id vb;
			cr_assert_eq(hk_gallery_subject_of(g, id[0], name, sizeof name), HK_OK);
			cr_assert_eq(hk_gallery_verify(g, name, q + t * D, &vs, &vb), HK_OK);
			cr_assert_eq(vb, id[0]);
			cr_assert_eq(vs, s[0]);
		}
		/* templates come back: exact, or half-rounded */
		for (int i = 0; i < N; i += 97) {
			float out[D];
			cr_assert_eq(hk_gallery_get(g, ids[i], out), HK_OK);
			for (int j = 0; j < D; j++) {
				float x = v[(size_t)i * D + j];
				float tol = kinds[e] == HK_EXACT_FP16 ? fabsf(x) * 0x1p-11f + 1e-7f
				                                      : 1e-7f;
				cr_assert_float_eq(out[j], x, tol, "kind %u", kinds[e]);
			}
		}
		free(q);
		free(v);
		hk_gallery_destroy(g);
	}
	rmdir_tmp();
}

Test(gallery_exact, resident_bytes_per_kind)
{
	mkdir_tmp();
	enum { D = 192, N = 3000 };
	uint64_t res[3];
	for (int e = 0; e < 3; e++) {
		rng = 5;
		hk_gallery *g = make(D, kinds[e], 0, 1);
		hk_template_id ids[N];
		free(fill(g, D, N, N, ids));
		hk_gallery_info info;
		cr_assert_eq(hk_gallery_get_info(g, &info), HK_OK);
		res[e] = info.resident_bytes;
		uint64_t exact_row = kinds[e] == HK_EXACT_FP16 ? 2 * D : 4 * D;
		cr_assert_eq(info.master_bytes, (uint64_t)N * exact_row);
		if (kinds[e] == HK_EXACT_FILE)
			cr_assert_eq(info.exact_resident_bytes, 256ull * 4 * D); /* buffer */
		else
			cr_assert_eq(info.exact_resident_bytes, info.master_bytes);
		hk_gallery_destroy(g);
	}
	/* 4096 slots of capacity: the exact copy's bytes per slot differ */
	cr_assert_geq(res[0] - res[1], 4096ull * 2 * D - 4096);
	cr_assert_lt(res[2], res[1]);
	rmdir_tmp();
}

/* The fd of the gallery's exact file (its link names a path in tmpdir). */
static int exact_fds(int *fd)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char link[300], target[512];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strncmp(target, tmpdir, strlen(tmpdir))) {
			*fd = atoi(e->d_name);
			count++;
		}
	}
	closedir(d);
	return count;
}

Test(gallery_exact, file_is_encrypted_and_removal_zeroes_rows)
{
	mkdir_tmp();
	enum { D = 64, N = 600 }; /* 600 rows: some flushed, some buffered */
	rng = 77;
	hk_gallery *g = make(D, HK_EXACT_FILE, 0, 2);
	hk_template_id ids[N];
	float *v = fill(g, D, N, 200, ids);
	int fd = -1;
	cr_assert_eq(exact_fds(&fd), 1);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	size_t row = D * 4, rows = (size_t)st.st_size / row;
	cr_assert_geq(rows, 256);
	cr_assert_lt(rows, N); /* the rest still in the write buffer */
	cr_assert_eq(st.st_nlink, 0, "the file must be unlinked");
	unsigned char *buf = malloc(rows * row);
	cr_assert_eq(pread(fd, buf, rows * row, 0), (ssize_t)(rows * row));
	/* no plaintext: no stored row equals its template, nor any float of it */
	for (size_t i = 0; i < rows; i++) {
		cr_assert_neq(memcmp(buf + i * row, v + i * D, row), 0);
		int same = 0;
		for (int j = 0; j < D; j++)
			same += !memcmp(buf + i * row + 4 * j, v + i * D + j, 4);
		cr_assert_lt(same, 3, "row %zu: %d plaintext floats", i, same);
	}
	/* remove one flushed row and one buffered row */
	cr_assert_eq(hk_gallery_remove(g, ids[10]), HK_OK);
	cr_assert_eq(hk_gallery_remove(g, ids[N - 1]), HK_OK);
	cr_assert_eq(pread(fd, buf, rows * row, 0), (ssize_t)(rows * row));
	for (size_t j = 0; j < row; j++)
		cr_assert_eq(buf[10 * row + j], 0, "removed row not zeroed at byte %zu", j);
	cr_assert_neq(buf[11 * row], 0);
	float out[D];
	cr_assert_eq(hk_gallery_get(g, ids[10], out), HK_E_NOT_FOUND);
	cr_assert_eq(hk_gallery_get(g, ids[N - 1], out), HK_E_NOT_FOUND);
	/* compaction: a new file, the old one closed; ids and bytes survive */
	cr_assert_eq(hk_gallery_compact(g), HK_OK);
	int fd2 = -1;
	cr_assert_eq(exact_fds(&fd2), 1);
	struct stat st2;
	cr_assert_eq(fstat(fd2, &st2), 0);
	cr_assert(st2.st_ino != st.st_ino, "compaction must write a new file");
	cr_assert_eq(hk_gallery_size(g), N - 2);
	for (int i = 0; i < N; i++) {
		hk_status s = hk_gallery_get(g, ids[i], out);
		if (i == 10 || i == N - 1) {
			cr_assert_eq(s, HK_E_NOT_FOUND);
			continue;
		}
		cr_assert_eq(s, HK_OK);
		cr_assert_eq(memcmp(out, v + (size_t)i * D, sizeof out), 0, "template %d", i);
	}
	/* search after compaction still re-ranks exactly */
	float sc[3];
	hk_template_id top[3];
	cr_assert_eq(hk_gallery_search(g, v + 300 * D, 3, sc, top), HK_OK);
	cr_assert_eq(top[0], ids[300]);
	cr_assert_float_eq(sc[0], 1.0f, 1e-6);
	hk_template_id nid;
	cr_assert_eq(hk_gallery_add(g, "after", v, &nid), HK_OK);
	cr_assert_eq(hk_gallery_get(g, nid, out), HK_OK);
	cr_assert_eq(memcmp(out, v, sizeof out), 0);
	free(buf);
	free(v);
	hk_gallery_destroy(g);
	cr_assert_eq(exact_fds(&fd2), 0, "destroy closes the file");
	rmdir_tmp();
}

Test(gallery_exact, file_survives_growth_and_subject_removal)
{
	mkdir_tmp();
	enum { D = 32, N = 5000 }; /* capacity 1024 -> 8192: four remaps */
	rng = 8;
	hk_gallery *g = make(D, HK_EXACT_FILE, 0, 1);
	hk_template_id ids[N];
	float *v = fill(g, D, N, 50, ids); /* 100 templates per subject */
	size_t nrem = 0;
	cr_assert_eq(hk_gallery_remove_subject(g, "s7", &nrem), HK_OK);
	cr_assert_gt(nrem, 0);
	float out[D], sc;
	for (int i = 0; i < N; i += 7) {
		int removed = i % 50 == 7 && i % 3;
		cr_assert_eq(hk_gallery_get(g, ids[i], out),
		             removed ? HK_E_NOT_FOUND : HK_OK);
		if (!removed)
			cr_assert_eq(memcmp(out, v + (size_t)i * D, sizeof out), 0);
	}
	/* verify: best of a subject's many templates, the query one of them */
	hk_template_id best;
	cr_assert_eq(hk_gallery_verify(g, "s8", v + 8 * D, &sc, &best), HK_OK);
	cr_assert_eq(best, ids[8]);
	cr_assert_float_eq(sc, 1.0f, 1e-6);
	cr_assert_eq(hk_gallery_compact(g), HK_OK);
	cr_assert_eq(hk_gallery_verify(g, "s8", v + 8 * D, &sc, &best), HK_OK);
	cr_assert_eq(best, ids[8]);
	free(v);
	hk_gallery_destroy(g);
	rmdir_tmp();
}

Test(gallery_exact, bad_params)
{
	hk_gallery_params p;
	hk_gallery_default_params(&p);
	p.dim = 8;
	hk_gallery *g = (hk_gallery *)1;
	p.exact_type = 9;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_E_INVALID);
	cr_assert_null(g);
	p.exact_type = HK_EXACT_FP16;
	p.scan_type = HK_SCAN_FP32;
	cr_assert_eq(hk_gallery_create(&p, &g), HK_E_INVALID);
	p.scan_type = HK_SCAN_INT8;
	p.exact_type = HK_EXACT_FILE;
	p.exact_dir = "/nonexistent/herken";
	cr_assert_eq(hk_gallery_create(&p, &g), HK_E_IO);
	cr_assert_null(g);
	cr_assert(strstr(hk_last_error(), "/nonexistent/herken") != NULL);
}
