/* Durable gallery under crashes and damage:
 *   - SIGKILL at random points of an enrol / erase / compact loop, then
 *     reopen: every acknowledged enrolment present, no acknowledged erasure
 *     undone, audit chain intact (HERKEN_CRASH_TRIALS trials, default 50;
 *     `make stress` runs 1000);
 *   - a bit flip at every offset and a truncation at every length of each
 *     file type: a clear error or exactly the right gallery, never a crash
 *     and never a wrong answer;
 *   - the fuzz corpus (tests/corpus/store) replayed. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "test_store_util.h"

#define DIM 8

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* These tests open thousands of galleries; hwloc topology discovery (with
 * its plugins dlopened each time) costs ~17 ms per gallery on this machine,
 * so they use a synthetic two-core topology without plugins. */
static void fast_topology(void)
{
	setenv("HWLOC_SYNTHETIC", "core:2 pu:1", 1);
	setenv("HWLOC_PLUGINS_PATH", "/nonexistent", 1);
}

static hk_status open_dir(const char *dir, hk_store **st, int64_t *now)
{
	uint8_t key[32];
	st_key(key, 0x42);
	hk_store_params p;
	st_params(&p, key, DIM, now);
	p.policy.allow_identify = 1;
	*st = NULL;
	return hk_store_open(dir, &p, st);
}

static float score_of(hk_store *st, const char *subj, uint64_t seed)
{
	float q[DIM], s;
	int m;
	st_vec(q, DIM, seed);
	hk_status r = hk_store_verify(st, subj, q, 0.99f, HK_SOURCE_DESK, &s, &m);
	if (HK_STATUS_PRIMARY(r) == HK_E_NOT_FOUND)
		return NAN;
	cr_assert_eq(r, HK_OK, "verify %s: %s", subj, hk_last_error());
	return s;
}

/* ---- SIGKILL loop -------------------------------------------------- */

enum { OP_ENROL = 1, OP_ADD = 2, OP_ERASE = 3, OP_COMPACT = 4 };
enum { M_INTENT = 1, M_ACK = 2, M_FAIL = 3 };

typedef struct msg {
	uint32_t kind, op, trial, k;
	uint64_t seed;
} msg;

enum { S_PRESENT = 1, S_ERASED = 2, S_MAYBE_NEW = 3, S_MAYBE_ERASED = 4 };

#define MAX_SEEDS 8
typedef struct subj {
	uint32_t trial, k;
	int state;
	int n;
	uint64_t seeds[MAX_SEEDS];
} subj;

static void name_of(char *buf, size_t len, uint32_t trial, uint32_t k)
{
	snprintf(buf, len, "t%u-k%u", trial, k);
}

static void send_msg(int fd, uint32_t kind, uint32_t op, uint32_t trial,
                     uint32_t k, uint64_t seed)
{
	msg m = {kind, op, trial, k, seed};
	if (write(fd, &m, sizeof m) != sizeof m)
		_exit(9);
}

/* One writer's random workload: enrolments of new subjects, extra
 * templates, erasures and (when `compacts`) compactions, each announced on
 * fd before it starts (M_INTENT) and answered when it returns (M_ACK or
 * M_FAIL). Its subjects are k = first + stride * j for j < cap; it returns
 * when j reaches cap. Of each 100 steps (r), r < p_enrol enrol, then
 * r < p_add add a template, r < p_erase (or every other step when it does
 * not compact) erase, the rest compact. A failed operation ends the
 * process (exit 4). */
typedef struct workload {
	hk_store *st;
	uint32_t trial, first, stride, cap;
	uint32_t p_enrol, p_add, p_erase;
	int compacts;
	uint64_t rs; /* rng state */
	int fd;
} workload;

static void run_workload(workload *w)
{
	int64_t now = ST_T0;
	uint32_t *live = calloc(w->cap, sizeof *live);
	uint32_t *nseeds = calloc(w->cap, sizeof *nseeds); /* templates of j */
	uint32_t n_live = 0, next = 0;
	if (!live || !nseeds)
		_exit(5);
	for (;;) {
		uint32_t r = (uint32_t)(rng_next(&w->rs) % 100);
		uint64_t seed = rng_next(&w->rs);
		uint32_t op, j = 0, i = 0;
		if (r < w->p_enrol || n_live == 0) {
			if (next >= w->cap)
				break;
			j = next++;
			op = OP_ENROL;
		} else if (r < w->p_add) {
			j = live[rng_next(&w->rs) % n_live];
			if (nseeds[j] >= MAX_SEEDS)
				continue;
			op = OP_ADD;
		} else if (r < w->p_erase || !w->compacts) {
			i = (uint32_t)(rng_next(&w->rs) % n_live);
			j = live[i];
			op = OP_ERASE;
		} else {
			op = OP_COMPACT;
		}
		int enrols = op == OP_ENROL || op == OP_ADD;
		uint32_t k = op == OP_COMPACT ? 0 : w->first + w->stride * j;
		uint64_t sd = enrols ? seed : 0;
		char name[64];
		name_of(name, sizeof name, w->trial, k);
		send_msg(w->fd, M_INTENT, op, w->trial, k, sd);
		hk_status s;
		if (enrols) {
			float v[DIM];
			st_vec(v, DIM, seed);
			hk_consent c = st_consent(name, now);
			s = hk_store_enroll(w->st, &c, v, 1, NULL);
			if (op == OP_ADD) {
				nseeds[j]++;
			} else if (!s) {
				live[n_live++] = j;
				nseeds[j] = 1;
			}
		} else if (op == OP_ERASE) {
			s = hk_store_erase(w->st, name, NULL);
			live[i] = live[--n_live];
		} else {
			s = hk_store_compact(w->st);
		}
		send_msg(w->fd, s ? M_FAIL : M_ACK, op, w->trial, k, sd);
		if (s)
			_exit(4);
	}
	free(live);
	free(nseeds);
}

static void crash_child(const char *dir, uint32_t trial, int fd)
{
	int64_t now = ST_T0;
	hk_store *st;
	if (open_dir(dir, &st, &now)) {
		send_msg(fd, M_FAIL, 0, trial, 0, 0);
		_exit(3);
	}
	workload w = {st, trial, 0, 1, 4096, 50, 68, 95, 1, trial * 7919ull + 17, fd};
	run_workload(&w);
	_exit(0);
}

typedef struct model {
	subj *v;
	size_t n, cap;
} model;

static subj *model_get(model *m, uint32_t trial, uint32_t k, int create)
{
	/* subjects of a trial are appended in k order: search from the end */
	for (size_t i = m->n; i-- > 0;) {
		if (m->v[i].trial != trial)
			break;
		if (m->v[i].k == k)
			return &m->v[i];
	}
	if (!create)
		return NULL;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1024;
		m->v = realloc(m->v, m->cap * sizeof *m->v);
	}
	subj *s = &m->v[m->n++];
	memset(s, 0, sizeof *s);
	s->trial = trial;
	s->k = k;
	return s;
}

typedef struct tally {
	uint64_t acked, lost, resurrected, checked;
} tally;

static void check_subject(hk_store *st, const subj *s, tally *t)
{
	char name[64];
	name_of(name, sizeof name, s->trial, s->k);
	if (s->state == S_PRESENT || s->state == S_MAYBE_ERASED) {
		int present = 0, absent = 0;
		for (int i = 0; i < s->n; i++) {
			float sc = score_of(st, name, s->seeds[i]);
			if (isnan(sc))
				absent++;
			else if (sc > 0.9999f)
				present++;
			else
				absent++;
		}
		if (s->state == S_PRESENT)
			t->lost += (uint64_t)absent;
		else if (present && absent)
			t->lost += (uint64_t)absent; /* half-erased: broken */
		t->checked++;
	} else if (s->state == S_ERASED) {
		if (s->n && !isnan(score_of(st, name, s->seeds[0])))
			t->resurrected++;
		if (s->n) {
			float q[DIM];
			st_vec(q, DIM, s->seeds[0]);
			hk_store_match m[3];
			size_t nm = 0;
			cr_assert_eq(hk_store_identify(st, q, -1.0f, HK_SOURCE_DESK, 3, m,
			                               &nm), HK_OK, "%s", hk_last_error());
			for (size_t i = 0; i < nm; i++)
				if (!strcmp(m[i].subject, name))
					t->resurrected++;
		}
		t->checked++;
	}
}

static void apply_msg(model *m, const msg *x, tally *t)
{
	if (x->op == OP_COMPACT)
		return;
	subj *s = model_get(m, x->trial, x->k, x->op == OP_ENROL);
	cr_assert_not_null(s);
	if (x->kind == M_INTENT) {
		if (x->op == OP_ENROL)
			s->state = S_MAYBE_NEW;
		else if (x->op == OP_ERASE)
			s->state = S_MAYBE_ERASED;
		return;
	}
	cr_assert_eq(x->kind, M_ACK, "child reported a failed operation");
	t->acked++;
	if (x->op == OP_ENROL || x->op == OP_ADD) {
		s->state = S_PRESENT;
		if (s->n < MAX_SEEDS)
			s->seeds[s->n++] = x->seed;
	} else {
		s->state = S_ERASED;
	}
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : def;
}

/* Fork child(dir, trial, fd), feed its messages into the model and kill
 * it (SIGKILL) after wait_acks acknowledged operations plus a random delay
 * of up to max_ns. */
typedef void (*child_fn)(const char *dir, uint32_t trial, int fd);
static void run_and_kill(child_fn child, const char *dir, long trial,
                         uint32_t wait_acks, long max_ns, uint64_t *rs,
                         model *m, tally *t)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		child(dir, (uint32_t)trial, pfd[1]);
		_exit(0);
	}
	close(pfd[1]);
	uint32_t acks = 0;
	msg x;
	int killed = 0;
	while (read(pfd[0], &x, sizeof x) == sizeof x) {
		apply_msg(m, &x, t);
		if (x.kind == M_ACK && ++acks >= wait_acks && !killed) {
			struct timespec ts = {0, (long)(rng_next(rs) % (uint64_t)max_ns)};
			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
			killed = 1;
		}
	}
	if (!killed)
		kill(pid, SIGKILL);
	close(pfd[0]);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	          "trial %ld: child exited with %d instead of being killed",
	          trial, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* After a trial (`after`: what ended it): the gallery reopens, its audit
 * chain is intact, and this trial's subjects and 20 older ones are as the
 * model says: nothing acknowledged lost, nothing erased back. *info gets
 * the reopened gallery's counters. */
static void check_trial(const char *dir, long trial, const char *after, model *m, tally *t,
                        uint64_t *rs, hk_store_info *info)
{
	int64_t now = ST_T0;
	hk_store *st;
	hk_status s = open_dir(dir, &st, &now);
	cr_assert_eq(s, HK_OK, "trial %ld: reopen after %s: %s", trial, after, hk_last_error());
	hk_store_get_info(st, info);
	hk_audit_report ar;
	cr_assert_eq(hk_store_audit_verify(st, &ar), HK_OK, "trial %ld: audit: %s", trial,
	             hk_last_error());
	for (size_t i = m->n; i-- > 0 && m->v[i].trial == (uint32_t)trial;)
		check_subject(st, &m->v[i], t);
	for (int j = 0; j < 20 && m->n; j++)
		check_subject(st, &m->v[rng_next(rs) % m->n], t);
	hk_store_close(st);
	cr_assert_eq(t->lost, 0, "trial %ld: lost acknowledged writes", trial);
	cr_assert_eq(t->resurrected, 0, "trial %ld: erased subject found", trial);
}

Test(crash, sigkill_enrol_erase_compact, .timeout = 3600)
{
	fast_topology();
	long trials = env_long("HERKEN_CRASH_TRIALS", 50);
	char dir[256];
	st_tmpdir(dir, sizeof dir);
	model m = {0};
	tally t = {0};
	uint64_t rs = 12345, torn = 0;
	for (long trial = 0; trial < trials; trial++) {
		/* kill after a random number of acknowledged operations, plus a
		 * random delay so the kill lands anywhere inside an operation */
		run_and_kill(crash_child, dir, trial, (uint32_t)(rng_next(&rs) % 40),
		             400000, &rs, &m, &t);
		hk_store_info info;
		check_trial(dir, trial, "SIGKILL", &m, &t, &rs, &info);
		torn += info.torn_bytes_cut;
	}
	/* final full check */
	int64_t now = ST_T0;
	hk_store *st;
	cr_assert_eq(open_dir(dir, &st, &now), HK_OK, "%s", hk_last_error());
	for (size_t i = 0; i < m.n; i++)
		check_subject(st, &m.v[i], &t);
	hk_store_info info;
	hk_store_get_info(st, &info);
	hk_store_close(st);
	fprintf(stderr, "crash: trials %ld, acknowledged ops %llu, subjects %zu "
	        "(live %llu), checks %llu, lost acknowledged writes %llu, "
	        "resurrected erased subjects %llu, torn bytes cut %llu\n",
	        trials, (unsigned long long)t.acked, m.n,
	        (unsigned long long)info.subjects, (unsigned long long)t.checked,
	        (unsigned long long)t.lost, (unsigned long long)t.resurrected,
	        (unsigned long long)torn);
	cr_assert_eq(t.lost, 0);
	cr_assert_eq(t.resurrected, 0);
	cr_assert_gt(t.acked, (uint64_t)trials);
	free(m.v);
	st_rmrf(dir);
}

/* ---- damage at every offset --------------------------------------- */

/*
 * The reference gallery: alice (3 templates: two in the snapshot, one in
 * the log), dave (log), bob (erased before compaction), carol (in the
 * snapshot, erased in the log), and audit entries of every kind.
 */
static void build_reference(const char *dir)
{
	int64_t now = ST_T0;
	hk_store *st;
	cr_assert_eq(open_dir(dir, &st, &now), HK_OK, "%s", hk_last_error());
	float v[2 * DIM];
	st_vec(v, DIM, 1);
	st_vec(v + DIM, DIM, 2);
	hk_consent c = st_consent("alice", now);
	cr_assert_eq(hk_store_enroll(st, &c, v, 2, NULL), HK_OK);
	const char *names[] = {"bob", "carol"};
	for (int i = 0; i < 2; i++) {
		st_vec(v, DIM, 10 + (uint64_t)i);
		c = st_consent(names[i], now);
		cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	}
	cr_assert_eq(hk_store_erase(st, "bob", NULL), HK_OK);
	cr_assert_eq(hk_store_compact(st), HK_OK, "%s", hk_last_error());
	st_vec(v, DIM, 20);
	c = st_consent("dave", now);
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	st_vec(v, DIM, 3);
	c = st_consent("alice", now);
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	cr_assert_eq(hk_store_erase(st, "carol", NULL), HK_OK);
	score_of(st, "alice", 1);
	cr_assert_eq(hk_store_close(st), HK_OK);
}

/* The gallery equals the reference exactly. */
static int is_reference(hk_store *st)
{
	hk_store_info info;
	hk_store_get_info(st, &info);
	if (info.subjects != 2 || info.templates != 4)
		return 0;
	static const uint64_t alice[] = {1, 2, 3};
	for (int i = 0; i < 3; i++)
		if (!(score_of(st, "alice", alice[i]) > 0.9999f))
			return 0;
	return score_of(st, "dave", 20) > 0.9999f &&
	       isnan(score_of(st, "bob", 10)) && isnan(score_of(st, "carol", 11));
}

static int clear_error(hk_status s)
{
	int p = HK_STATUS_PRIMARY(s);
	return (p == HK_E_FORMAT || p == HK_E_CRYPTO || p == HK_E_UNSUPPORTED ||
	        p == HK_E_DIM) && strcmp(hk_last_error(), "no error");
}

/* The reference gallery (build_reference) in ref[256], and work[256]. */
static void ref_and_work(char *ref, char *work)
{
	fast_topology();
	st_tmpdir(ref, 256);
	st_tmpdir(work, 256);
	build_reference(ref);
}

/* One kind of damage, applied at every byte position i of each file of
 * the reference gallery in turn: the gallery must then either refuse to
 * open with a clear error (and pass refused(), when set) or open and pass
 * opened(). */
typedef struct damage {
	const char *at;    /* "offset", "cut at": names i in a failure   */
	const char *tally; /* summary line: file, len, errors, clean      */
	/* writes orig[len] with the damage at i to path */
	void (*write)(const char *path, uint8_t *orig, size_t len, size_t i);
	void (*refused)(int f, size_t i);
	void (*opened)(hk_store *st, int f, size_t i, size_t len);
} damage;

static void damage_every_byte(const damage *d)
{
	char ref[256], work[256];
	ref_and_work(ref, work);
	for (int f = 0; f < 4; f++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", ref, st_files[f]);
		size_t len;
		uint8_t *orig = st_slurp(path, &len);
		cr_assert(orig && len >= 64, "%s", path);
		snprintf(path, sizeof path, "%s/%s", work, st_files[f]);
		size_t errors = 0, clean = 0;
		for (size_t i = 0; i < len; i++) {
			st_copy(ref, work);
			d->write(path, orig, len, i);
			int64_t now = ST_T0;
			hk_store *st;
			hk_status s = open_dir(work, &st, &now);
			if (s) {
				cr_assert(clear_error(s), "%s %s %zu: status %d (%s)",
				          st_files[f], d->at, i, s, hk_last_error());
				if (d->refused)
					d->refused(f, i);
				errors++;
				continue;
			}
			d->opened(st, f, i, len);
			hk_store_close(st);
			clean++;
		}
		fprintf(stderr, d->tally, st_files[f], len, errors, clean);
		free(orig);
	}
	st_rmrf(ref);
	st_rmrf(work);
}

static void flip_write(const char *path, uint8_t *orig, size_t len, size_t off)
{
	orig[off] ^= (uint8_t)(1u << (off % 8));
	st_spit(path, orig, len);
	orig[off] ^= (uint8_t)(1u << (off % 8));
}

static void flip_opened(hk_store *st, int f, size_t off, size_t len)
{
	cr_assert(is_reference(st), "%s offset %zu: opened with a "
	          "different gallery", st_files[f], off);
	if (f == 3) {
		hk_audit_report r;
		cr_assert_neq(hk_store_audit_verify(st, &r), HK_OK,
		              "audit flip at %zu not detected", off);
	}
}

Test(crash, bit_flip_every_offset, .timeout = 600)
{
	static const damage d = {
	    "offset", "bit flips in %s: %zu offsets, %zu clear errors, %zu opened identical\n",
	    flip_write, NULL, flip_opened};
	damage_every_byte(&d);
}

static void cut_write(const char *path, uint8_t *orig, size_t len, size_t cut)
{
	st_spit(path, orig, cut);
}

static void cut_refused(int f, size_t cut)
{
	cr_assert(strstr(hk_last_error(), st_files[f]),
	          "%s cut at %zu: the error does not name the "
	          "file: %s", st_files[f], cut, hk_last_error());
}

static void cut_opened(hk_store *st, int f, size_t cut, size_t len)
{
	/* The reference was closed cleanly: every record and audit entry in
	 * it was acknowledged and durable, so a cut of the log, snapshot or
	 * audit log is loss, never a clean recovery (keys.hk recorded how far
	 * they reached). Only keys.hk's spare keys, which no record names, may
	 * go. */
	cr_assert_eq(f, 0, "%s cut at %zu (of %zu) opened: acknowledged "
	             "data lost without an error", st_files[f], cut, len);
	hk_audit_report r;
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_OK);
	cr_assert(is_reference(st), "%s cut %zu", st_files[f], cut);
}

Test(crash, truncate_every_length, .timeout = 600)
{
	static const damage d = {
	    "cut at", "truncations of %s: %zu lengths, %zu clear errors, %zu clean recoveries\n",
	    cut_write, cut_refused, cut_opened};
	damage_every_byte(&d);
}

/* ---- fuzz corpus ---------------------------------------------------- */

Test(crash, store_corpus_replay, .timeout = 600)
{
	fast_topology();
	const char *cdir = "tests/corpus/store";
	DIR *d = opendir(cdir);
	if (!d)
		cr_skip_test("%s absent (run from the source root)", cdir);
	char work[256];
	st_tmpdir(work, sizeof work);
	struct dirent *e;
	int seeds = 0, files = 0, faults = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", cdir, e->d_name);
		size_t len;
		uint8_t *b = st_slurp(path, &len);
		cr_assert_not_null(b, "%s", path);
		hk_status s = st_fuzz_one(work, b, len);
		if (!strncmp(e->d_name, "seed-", 5)) {
			cr_assert_eq(s, HK_OK, "%s: %s", path, hk_last_error());
			seeds++;
		}
		if (!strncmp(e->d_name, "fault-", 6)) {
			cr_assert_neq(s, HK_OK, "%s: a damaged gallery opened", path);
			faults++;
		}
		files++;
		free(b);
	}
	closedir(d);
	st_rmrf(work);
	cr_assert_geq(seeds, 3, "corpus has %d seeds", seeds);
	fprintf(stderr, "store corpus: %d inputs replayed (%d valid seeds, %d "
	        "damaged galleries refused)\n", files, seeds, faults);
}

static void build_random(const char *dir, uint64_t seed, uint8_t keyseed);

/* HERKEN_STORE_CORPUS_OUT=dir writes the seed galleries (small, synthetic,
 * key 0x42) as fuzz inputs. */
Test(crash, store_corpus_write)
{
	const char *out = getenv("HERKEN_STORE_CORPUS_OUT");
	if (!out)
		cr_skip_test("HERKEN_STORE_CORPUS_OUT not set");
	char dir[256], path[1024];
	size_t len;
	uint8_t *b;
	/* 1: empty gallery */
	st_tmpdir(dir, sizeof dir);
	int64_t now = ST_T0;
	hk_store *st;
	cr_assert_eq(open_dir(dir, &st, &now), HK_OK);
	hk_store_close(st);
	b = st_bundle(dir, &len);
	snprintf(path, sizeof path, "%s/seed-empty", out);
	cr_assert_eq(st_spit(path, b, len), 0);
	free(b);
	st_rmrf(dir);
	/* 2: log only */
	st_tmpdir(dir, sizeof dir);
	cr_assert_eq(open_dir(dir, &st, &now), HK_OK);
	float v[DIM];
	st_vec(v, DIM, 1);
	hk_consent c = st_consent("alice", now);
	hk_store_enroll(st, &c, v, 1, NULL);
	c = st_consent("bob", now);
	hk_store_enroll(st, &c, v, 1, NULL);
	hk_store_erase(st, "bob", NULL);
	hk_store_close(st);
	b = st_bundle(dir, &len);
	snprintf(path, sizeof path, "%s/seed-log", out);
	cr_assert_eq(st_spit(path, b, len), 0);
	free(b);
	st_rmrf(dir);
	/* 3: the reference gallery (snapshot + log + erasures) */
	st_tmpdir(dir, sizeof dir);
	build_reference(dir);
	b = st_bundle(dir, &len);
	snprintf(path, sizeof path, "%s/seed-reference", out);
	cr_assert_eq(st_spit(path, b, len), 0);
	free(b);
	/* faults (issue 11): each refused at open. Truncated at a record or
	 * entry boundary, an older copy of a file, files of another gallery
	 * (same key), a missing file. */
	char other[256], old[256];
	st_tmpdir(other, sizeof other);
	st_tmpdir(old, sizeof old);
	build_random(other, 99, 0x42);
	st_copy(dir, old); /* the reference as it was: an older copy */
	{
		hk_store *st2;
		cr_assert_eq(open_dir(dir, &st2, &now), HK_OK, "%s", hk_last_error());
		float w[DIM];
		st_vec(w, DIM, 30);
		hk_consent c2 = st_consent("erin", now);
		cr_assert_eq(hk_store_enroll(st2, &c2, w, 1, NULL), HK_OK);
		cr_assert_eq(hk_store_erase(st2, "dave", NULL), HK_OK);
		cr_assert_eq(hk_store_close(st2), HK_OK);
	}
	char work[256];
	st_tmpdir(work, sizeof work);
	static const struct { const char *name; int file; long cut; } cuts[] = {
	    {"fault-wal-cut-record", 1, -1}, {"fault-wal-header-only", 1, 64},
	    {"fault-audit-cut-entry", 3, -128}, {"fault-audit-header-only", 3, 64},
	    {"fault-keys-header-only", 0, 128}, {"fault-snapshot-cut", 2, -1},
	};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		st_copy(dir, work);
		char f[512];
		snprintf(f, sizeof f, "%s/%s", work, st_files[cuts[i].file]);
		uint8_t *cb = st_slurp(f, &len);
		cr_assert(cb && len > 64);
		size_t keep = cuts[i].cut > 0 ? (size_t)cuts[i].cut
		              : cuts[i].cut == -128 ? len - 128 : len - 1;
		if (cuts[i].file == 1 && cuts[i].cut == -1) {
			/* back to the start of the last record */
			size_t o = 64, last = 64;
			while (o + 64 <= len) {
				uint32_t rl;
				memcpy(&rl, cb + o + 8, 4);
				last = o;
				o += 64 + rl;
			}
			keep = last;
		}
		st_spit(f, cb, keep);
		free(cb);
		b = st_bundle(work, &len);
		snprintf(path, sizeof path, "%s/%s", out, cuts[i].name);
		cr_assert_eq(st_spit(path, b, len), 0);
		free(b);
	}
	for (int fi = 0; fi < 4; fi++) {
		/* swapped in from another gallery, from an older gallery state,
		 * and missing */
		const char *srcs[2] = {other, old};
		const char *tags[2] = {"other", "older"};
		for (int k = 0; k < 2; k++) {
			st_copy(dir, work);
			char f[512], g[512];
			snprintf(f, sizeof f, "%s/%s", srcs[k], st_files[fi]);
			snprintf(g, sizeof g, "%s/%s", work, st_files[fi]);
			uint8_t *cb = st_slurp(f, &len);
			size_t cur_len;
			uint8_t *cur = st_slurp(g, &cur_len);
			int same = cb && cur && cur_len == len && !memcmp(cb, cur, len);
			free(cur);
			if (!cb || same) { /* absent, or unchanged since */
				free(cb);
				continue;
			}
			st_spit(g, cb, len);
			free(cb);
			b = st_bundle(work, &len);
			snprintf(path, sizeof path, "%s/fault-swap-%s-%s", out,
			         st_files[fi], tags[k]);
			cr_assert_eq(st_spit(path, b, len), 0);
			free(b);
		}
		st_copy(dir, work);
		char g[512];
		snprintf(g, sizeof g, "%s/%s", work, st_files[fi]);
		unlink(g);
		b = st_bundle(work, &len);
		snprintf(path, sizeof path, "%s/fault-missing-%s", out, st_files[fi]);
		cr_assert_eq(st_spit(path, b, len), 0);
		free(b);
	}
	st_rmrf(work);
	st_rmrf(other);
	st_rmrf(old);
	st_rmrf(dir);
}

/* What a power loss can leave at the end of the log: zero-filled blocks
 * (size extended, data never written) or a record whose later sectors are
 * zero: cut, and the gallery is exactly the reference. Non-zero garbage
 * after the last record is damage, not a torn write: refused. */
Test(crash, torn_tails_cut_garbage_refused)
{
	char ref[256], work[256];
	ref_and_work(ref, work);
	char path[512];
	snprintf(path, sizeof path, "%s/wal.hk", ref);
	size_t len;
	uint8_t *wal = st_slurp(path, &len);
	cr_assert(wal && len > 64);
	snprintf(path, sizeof path, "%s/wal.hk", work);
	uint8_t *buf = calloc(1, len + 8192);
	memcpy(buf, wal, len);
	/* a. 4 KiB of zeros after the last record */
	st_copy(ref, work);
	st_spit(path, buf, len + 4096);
	int64_t now = ST_T0;
	hk_store *st;
	cr_assert_eq(open_dir(work, &st, &now), HK_OK, "%s", hk_last_error());
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.torn_bytes_cut, 4096);
	cr_assert(is_reference(st));
	hk_store_close(st);
	/* b. the last record's header reached the disk, then zeros up to and
	 * past the next sector boundary */
	uint8_t rec[64];
	memcpy(rec, wal + 64, 64); /* a valid header (first record) */
	memcpy(buf + len, rec, 64);
	memset(buf + len + 64, 0, 8192 - 64);
	st_copy(ref, work);
	st_spit(path, buf, len + 2048);
	cr_assert_eq(open_dir(work, &st, &now), HK_OK, "%s", hk_last_error());
	hk_store_get_info(st, &info);
	cr_assert_eq(info.torn_bytes_cut, 2048);
	cr_assert(is_reference(st));
	hk_store_close(st);
	/* c. non-zero garbage after the last record */
	for (int i = 0; i < 700; i++)
		buf[len + (size_t)i] = (uint8_t)(i * 37 + 1);
	st_copy(ref, work);
	st_spit(path, buf, len + 700);
	hk_status s = open_dir(work, &st, &now);
	cr_assert_eq(s, HK_E_FORMAT, "%s", hk_last_error());
	cr_assert(strstr(hk_last_error(), "damaged"), "%s", hk_last_error());
	/* the refused gallery was not modified */
	size_t l2;
	uint8_t *after = st_slurp(path, &l2);
	cr_assert_eq(l2, len + 700);
	free(after);
	free(buf);
	free(wal);
	st_rmrf(ref);
	st_rmrf(work);
}

/* ---- hostile files: missing, swapped, symlinked, FIFO -------------- */

/* A gallery built by a random sequence (seed): enrolments, erasures and
 * compactions, closed cleanly. */
static void build_random(const char *dir, uint64_t seed, uint8_t keyseed)
{
	int64_t now = ST_T0;
	uint8_t key[32];
	st_key(key, keyseed);
	hk_store_params p;
	st_params(&p, key, DIM, &now);
	hk_store *st;
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_OK, "%s", hk_last_error());
	uint64_t rs = seed;
	int n = 4 + (int)(rng_next(&rs) % 24);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "s%d", (int)(rng_next(&rs) % 12));
		uint32_t r = (uint32_t)(rng_next(&rs) % 10);
		if (r < 6) {
			float v[DIM];
			st_vec(v, DIM, rng_next(&rs));
			hk_consent c = st_consent(name, now);
			cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
		} else if (r < 9) {
			hk_status s = hk_store_erase(st, name, NULL);
			cr_assert(s == HK_OK || s == HK_E_NOT_FOUND);
		} else {
			cr_assert_eq(hk_store_compact(st), HK_OK);
		}
	}
	cr_assert_eq(hk_store_close(st), HK_OK);
}

/* The four files' bytes, to check that a refused open changed nothing. */
typedef struct files {
	uint8_t *b[4];
	size_t n[4];
} files;

static files files_read(const char *dir)
{
	files f;
	for (int i = 0; i < 4; i++) {
		char p[512];
		snprintf(p, sizeof p, "%s/%s", dir, st_files[i]);
		struct stat sb; /* a FIFO or link is compared by its kind only */
		f.b[i] = NULL;
		f.n[i] = lstat(p, &sb) ? 0 : (size_t)sb.st_mode;
		if (!lstat(p, &sb) && S_ISREG(sb.st_mode))
			f.b[i] = st_slurp(p, &f.n[i]);
	}
	return f;
}

static int files_same(const files *a, const files *b)
{
	for (int i = 0; i < 4; i++)
		if (!a->b[i] != !b->b[i] || a->n[i] != b->n[i] ||
		    (a->b[i] && memcmp(a->b[i], b->b[i], a->n[i])))
			return 0;
	return 1;
}

static void files_free(files *f)
{
	for (int i = 0; i < 4; i++)
		free(f->b[i]);
}

/* open (with HK_STORE_CREATE, as an enrolment would) must fail with an
 * error naming `name`, and leave every file as it was. */
static void expect_refused(const char *work, const char *name,
                           const char *what, tally *t)
{
	files before = files_read(work);
	int64_t now = ST_T0;
	hk_store *st = NULL;
	hk_status s = open_dir(work, &st, &now);
	if (!s)
		hk_store_close(st);
	cr_assert_neq(s, HK_OK, "%s %s: opened", what, name);
	int p = HK_STATUS_PRIMARY(s);
	cr_assert(p == HK_E_FORMAT || p == HK_E_CRYPTO || p == HK_E_IO,
	          "%s %s: status %d (%s)", what, name, s, hk_last_error());
	cr_assert(strstr(hk_last_error(), name), "%s %s: the error does not "
	          "name the file: %s", what, name, hk_last_error());
	files after = files_read(work);
	cr_assert(files_same(&before, &after), "%s %s: a refused open changed "
	          "the files", what, name);
	files_free(&before);
	files_free(&after);
	t->checked++;
}

static void one_fault_round(uint64_t seed, tally *t)
{
	char ref[256], other[256], work[256], aside[256];
	st_tmpdir(ref, sizeof ref);
	st_tmpdir(other, sizeof other);
	st_tmpdir(work, sizeof work);
	st_tmpdir(aside, sizeof aside);
	build_random(ref, seed, 0x42);
	build_random(other, seed ^ 0x5555, 0x42); /* same key, another gallery */
	for (int f = 0; f < 4; f++) {
		char path[512], elsewhere[512];
		snprintf(path, sizeof path, "%s/%s", work, st_files[f]);
		snprintf(elsewhere, sizeof elsewhere, "%s/%s", aside, st_files[f]);
		char rp[512];
		snprintf(rp, sizeof rp, "%s/%s", ref, st_files[f]);
		if (access(rp, F_OK))
			continue; /* no snapshot in this gallery */
		/* missing (a snapshot taken at version 0 holds nothing: without
		 * it the gallery is the same, and nothing tells it was there) */
		size_t rn;
		uint8_t *rb = st_slurp(rp, &rn);
		uint64_t base = 1;
		if (f == 2 && rb && rn >= 24)
			memcpy(&base, rb + 16, 8);
		free(rb);
		st_copy(ref, work);
		unlink(path);
		if (base)
			expect_refused(work, st_files[f], "missing", t);
		/* swapped in from another gallery (same master key) */
		char op[512];
		snprintf(op, sizeof op, "%s/%s", other, st_files[f]);
		size_t n;
		uint8_t *b = st_slurp(op, &n);
		if (b) {
			st_copy(ref, work);
			st_spit(path, b, n);
			/* a foreign keys.hk is named through the file it
			 * contradicts: "wal.hk and keys.hk belong to different
			 * galleries" */
			expect_refused(work, f == 0 ? "keys.hk" : st_files[f],
			               "swapped", t);
			free(b);
		}
		/* a symbolic link to a valid copy outside the directory */
		st_copy(ref, work);
		b = st_slurp(path, &n);
		cr_assert_eq(st_spit(elsewhere, b, n), 0);
		unlink(path);
		cr_assert_eq(symlink(elsewhere, path), 0);
		expect_refused(work, st_files[f], "symlinked", t);
		size_t n2;
		uint8_t *b2 = st_slurp(elsewhere, &n2);
		cr_assert(n2 == n && !memcmp(b, b2, n), "the link's target changed");
		free(b);
		free(b2);
		unlink(path);
		/* a FIFO: refused without blocking */
		st_copy(ref, work);
		unlink(path);
		cr_assert_eq(mkfifo(path, 0600), 0);
		expect_refused(work, st_files[f], "FIFO", t);
		unlink(path);
	}
	st_rmrf(ref);
	st_rmrf(other);
	st_rmrf(work);
	st_rmrf(aside);
}

/* Issue 11, item 1 and 6: a gallery opens only whole; its files are never
 * followed through links nor read from FIFOs; a refused open changes no
 * byte. HERKEN_FAULT_TRIALS random galleries (default 3; `make stress`
 * runs more). */
Test(crash, faults_missing_swapped_symlinked, .timeout = 3600)
{
	fast_topology();
	long trials = env_long("HERKEN_FAULT_TRIALS", 3);
	tally t = {0};
	for (long i = 0; i < trials; i++)
		one_fault_round(0xfa17 + (uint64_t)i * 7919, &t);
	fprintf(stderr, "file faults: %ld galleries, %llu refused opens (missing, "
	        "swapped, symlinked, FIFO), 0 accepted\n", trials,
	        (unsigned long long)t.checked);
}

/* ---- power loss ------------------------------------------------------ */

/*
 * The test binary is linked with -Wl,--wrap=fsync,--wrap=fdatasync, so the
 * library's syncs come here. While recording (the power-loss child only),
 * each sync first copies what the file (or the directory's gallery
 * entries) holds, syncs, and then publishes that copy as the file's
 * durable state in pl_shadow: what a power loss at any later moment keeps.
 * Writes not yet synced are dropped. Syncs are serialised so a published
 * state never goes backwards.
 */
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

static int pl_on;
static char pl_shadow[256];
static pthread_mutex_t pl_mu = PTHREAD_MUTEX_INITIALIZER;
/* directories fsynced (inode numbers), recorded while pl_dirs_on */
static int pl_dirs_on;
static ino_t pl_dirs[64];
static int pl_ndirs;

static void pl_publish(const char *name, const void *b, size_t n)
{
	char tmp[512], dst[512];
	snprintf(tmp, sizeof tmp, "%s/.tmp", pl_shadow);
	snprintf(dst, sizeof dst, "%s/%s", pl_shadow, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n))
		_exit(8);
	close(fd);
	if (rename(tmp, dst))
		_exit(8);
}

static int pl_sync(int fd, int data_only)
{
	struct stat sb;
	if (pl_dirs_on && !fstat(fd, &sb) && S_ISDIR(sb.st_mode) &&
	    pl_ndirs < 64)
		pl_dirs[pl_ndirs++] = sb.st_ino;
	if (!pl_on)
		return data_only ? __real_fdatasync(fd) : __real_fsync(fd);
	pthread_mutex_lock(&pl_mu);
	int rc;
	if (fstat(fd, &sb)) {
		rc = -1;
	} else if (S_ISDIR(sb.st_mode)) {
		/* the gallery entries: name -> inode */
		char list[512] = "";
		size_t o = 0;
		for (int i = 0; i < 4; i++) {
			struct stat fs;
			if (!fstatat(fd, st_files[i], &fs, AT_SYMLINK_NOFOLLOW))
				o += (size_t)snprintf(list + o, sizeof list - o, "%s %llu\n",
				                      st_files[i],
				                      (unsigned long long)fs.st_ino);
		}
		rc = __real_fsync(fd);
		char name[64];
		snprintf(name, sizeof name, "dir-%llu", (unsigned long long)sb.st_ino);
		if (!rc)
			pl_publish(name, list, o);
	} else {
		size_t n = (size_t)sb.st_size;
		uint8_t *b = malloc(n ? n : 1);
		/* the descriptor may be write-only (temp files): read the file
		 * through another one */
		char self[64];
		snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
		int rfd = open(self, O_RDONLY);
		ssize_t got = rfd < 0 ? -1 : n ? pread(rfd, b, n, 0) : 0;
		if (rfd >= 0)
			close(rfd);
		if (got < 0)
			_exit(8);
		rc = data_only ? __real_fdatasync(fd) : __real_fsync(fd);
		char name[64];
		snprintf(name, sizeof name, "ino-%llu", (unsigned long long)sb.st_ino);
		if (!rc && got >= 0)
			pl_publish(name, b, (size_t)got);
		free(b);
	}
	pthread_mutex_unlock(&pl_mu);
	return rc;
}

int __wrap_fsync(int fd) { return pl_sync(fd, 0); }
int __wrap_fdatasync(int fd) { return pl_sync(fd, 1); }

/* The durable state of the gallery in dir as the shadow describes it:
 * everything synced, nothing else. */
static void pl_seed(const char *dir, const char *shadow)
{
	st_rmrf(shadow);
	cr_assert_eq(mkdir(shadow, 0700), 0);
	struct stat ds;
	cr_assert_eq(stat(dir, &ds), 0);
	char list[512] = "";
	size_t o = 0;
	for (int i = 0; i < 4; i++) {
		char p[512];
		snprintf(p, sizeof p, "%s/%s", dir, st_files[i]);
		struct stat fs;
		if (stat(p, &fs))
			continue;
		o += (size_t)snprintf(list + o, sizeof list - o, "%s %llu\n",
		                      st_files[i], (unsigned long long)fs.st_ino);
		size_t n;
		uint8_t *b = st_slurp(p, &n);
		char q[600];
		snprintf(q, sizeof q, "%s/ino-%llu", shadow,
		         (unsigned long long)fs.st_ino);
		cr_assert_eq(st_spit(q, b, n), 0);
		free(b);
	}
	char q[600];
	snprintf(q, sizeof q, "%s/dir-%llu", shadow, (unsigned long long)ds.st_ino);
	cr_assert_eq(st_spit(q, list, o), 0);
}

/* Replace dir by what the power loss left: each entry the last directory
 * sync recorded, with the content of its last file sync (empty if it was
 * never synced). */
static void pl_apply(const char *dir, const char *shadow)
{
	struct stat ds;
	cr_assert_eq(stat(dir, &ds), 0);
	char q[600];
	snprintf(q, sizeof q, "%s/dir-%llu", shadow, (unsigned long long)ds.st_ino);
	size_t n;
	uint8_t *list = st_slurp(q, &n);
	cr_assert_not_null(list, "the gallery directory was never synced");
	list = realloc(list, n + 1);
	list[n] = 0;
	uint8_t *content[4] = {0};
	size_t len[4] = {0};
	int present[4] = {0};
	for (char *line = strtok((char *)list, "\n"); line;
	     line = strtok(NULL, "\n")) {
		char name[64];
		unsigned long long ino;
		cr_assert_eq(sscanf(line, "%63s %llu", name, &ino), 2);
		for (int i = 0; i < 4; i++) {
			if (strcmp(name, st_files[i]))
				continue;
			present[i] = 1;
			snprintf(q, sizeof q, "%s/ino-%llu", shadow, ino);
			content[i] = st_slurp(q, &len[i]);
		}
	}
	free(list);
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
			continue;
		char p[600];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	for (int i = 0; i < 4; i++) {
		if (!present[i])
			continue;
		char p[600];
		snprintf(p, sizeof p, "%s/%s", dir, st_files[i]);
		cr_assert_eq(st_spit(p, content[i] ? content[i] : (const uint8_t *)"",
		                     content[i] ? len[i] : 0), 0);
		free(content[i]);
	}
}

#define PL_THREADS 4

typedef struct pl_worker {
	hk_store *st;
	uint32_t trial, t;
	int fd;
	pthread_mutex_t *mu;
} pl_worker;

/* One enrolling thread: its own subjects (k = t, t + PL_THREADS, ...),
 * enrolments, extra templates, erasures; thread 0 also compacts. */
static void *pl_work(void *arg)
{
	pl_worker *pw = arg;
	workload w = {pw->st, pw->trial, pw->t, PL_THREADS, 1024, 55, 70, 97, pw->t == 0,
	              pw->trial * 104729ull + pw->t * 7919ull + 3, pw->fd};
	run_workload(&w);
	return NULL;
}

static void pl_child(const char *dir, uint32_t trial, int fd)
{
	pl_on = 1;
	int64_t now = ST_T0;
	uint8_t key[32];
	st_key(key, 0x42);
	hk_store_params p;
	st_params(&p, key, DIM, &now);
	p.policy.allow_identify = 1;
	p.commit_window_us = 200; /* let records gather into group commits */
	hk_store *st;
	if (hk_store_open(dir, &p, &st))
		_exit(3);
	pthread_t th[PL_THREADS];
	pl_worker w[PL_THREADS];
	for (uint32_t t = 0; t < PL_THREADS; t++) {
		w[t] = (pl_worker){st, trial, t, fd, NULL};
		pthread_create(&th[t], NULL, pl_work, &w[t]);
	}
	for (uint32_t t = 0; t < PL_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

/* Issue 11, item 3: power loss, not only kill -9. A child enrols, erases
 * and compacts from PL_THREADS threads (group commit) until it is killed;
 * the gallery is then replaced by what was synced, and nothing else: every
 * acknowledged enrolment must be there, no acknowledged erasure undone,
 * the audit chain intact. HERKEN_POWERLOSS_TRIALS (default 8). */
Test(crash, powerloss_group_commit, .timeout = 3600)
{
	fast_topology();
	long trials = env_long("HERKEN_POWERLOSS_TRIALS", 8);
	char dir[200];
	st_tmpdir(dir, sizeof dir);
	snprintf(pl_shadow, sizeof pl_shadow, "%s.shadow", dir);
	rmdir(dir); /* the first child creates it (mkdir + parent fsync) */
	model m = {0};
	tally t = {0};
	uint64_t rs = 777, commits = 0, records = 0;
	for (long trial = 0; trial < trials; trial++) {
		if (trial) {
			pl_seed(dir, pl_shadow);
		} else {
			st_rmrf(pl_shadow);
			cr_assert_eq(mkdir(pl_shadow, 0700), 0);
		}
		run_and_kill(pl_child, dir, trial, 5 + (uint32_t)(rng_next(&rs) % 60),
		             300000, &rs, &m, &t);
		/* the power goes: only what was synced stays */
		pl_apply(dir, pl_shadow);
		hk_store_info info;
		check_trial(dir, trial, "power loss", &m, &t, &rs, &info);
		commits += info.commits;
		records += info.committed_records;
	}
	fprintf(stderr, "power loss: trials %ld, %d writer threads, acknowledged "
	        "ops %llu, subjects %zu, checks %llu, lost acknowledged writes "
	        "%llu, resurrected erased subjects %llu\n", trials, PL_THREADS,
	        (unsigned long long)t.acked, m.n, (unsigned long long)t.checked,
	        (unsigned long long)t.lost, (unsigned long long)t.resurrected);
	cr_assert_gt(t.acked, (uint64_t)trials);
	free(m.v);
	st_rmrf(dir);
	st_rmrf(pl_shadow);
}

/* Item 11: creating a gallery fsyncs the parent directory after mkdir. */
Test(crash, create_fsyncs_parent)
{
	fast_topology();
	char parent[256], dir[300];
	st_tmpdir(parent, sizeof parent);
	snprintf(dir, sizeof dir, "%s/g", parent);
	struct stat ps;
	cr_assert_eq(stat(parent, &ps), 0);
	pl_ndirs = 0;
	pl_dirs_on = 1;
	int64_t now = ST_T0;
	hk_store *st;
	hk_status s = open_dir(dir, &st, &now);
	pl_dirs_on = 0;
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	hk_store_close(st);
	int found = 0;
	for (int i = 0; i < pl_ndirs; i++)
		found |= pl_dirs[i] == ps.st_ino;
	cr_assert(found, "the parent directory was not fsynced after mkdir");
	st_rmrf(parent);
}
