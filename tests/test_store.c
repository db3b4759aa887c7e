/* Durable gallery: enrol / verify / identify / erase / expiry / policy /
 * audit / keys / export / group commit, each checked against what was
 * put in (oracle: the vectors themselves and exact cosine). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>

#include "test_store_util.h"
#include "gallery/store_priv.h" /* hk__st_test_hook, khdr */
#include "test_vec.h"

#define DIM 16

/* cr_assert_float_eq evaluates its arguments twice */
#define ASSERT_SCORE(expr, want, eps)                                        \
	do {                                                                  \
		float s_ = (expr);                                            \
		cr_assert_float_eq(s_, want, eps);                            \
	} while (0)

static char dir[256];
static uint8_t key[32];
static int64_t now;

static void setup(void)
{
	st_tmpdir(dir, sizeof dir);
	st_key(key, 1);
	now = ST_T0;
}

static void teardown(void) { st_rmrf(dir); }

TestSuite(store, .init = setup, .fini = teardown);

static hk_store *open_store(uint32_t dim)
{
	hk_store_params p;
	st_params(&p, key, dim, &now);
	hk_store *st = NULL;
	hk_status s = hk_store_open(dir, &p, &st);
	cr_assert_eq(s, HK_OK, "open: %s", hk_last_error());
	return st;
}

static void enrol(hk_store *st, const char *subj, uint64_t seed, int n)
{
	float v[8 * DIM];
	for (int i = 0; i < n; i++)
		st_vec(v + i * DIM, DIM, seed + (uint64_t)i);
	hk_consent c = st_consent(subj, now);
	hk_enroll_receipt r;
	hk_status s = hk_store_enroll(st, &c, v, (size_t)n, &r);
	cr_assert_eq(s, HK_OK, "enrol %s: %s", subj, hk_last_error());
	cr_assert_eq(r.n_templates, (uint32_t)n);
}

/* verify subj against template seed: returns the score or NAN if absent */
static float verify(hk_store *st, const char *subj, uint64_t seed)
{
	float q[DIM], score = 0;
	int match = 0;
	st_vec(q, DIM, seed);
	hk_status s = hk_store_verify(st, subj, q, 0.9f, HK_SOURCE_DESK, &score,
	                              &match);
	if (HK_STATUS_PRIMARY(s) == HK_E_NOT_FOUND)
		return NAN;
	cr_assert_eq(s, HK_OK, "verify: %s", hk_last_error());
	cr_assert_eq(match, score >= 0.9f);
	return score;
}

Test(store, enrol_verify_reopen)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 100, 2);
	enrol(st, "bob", 200, 1);
	enrol(st, "carol", 300, 3);
	enrol(st, "bob", 250, 1); /* a second enrolment adds a template */
	float a = verify(st, "alice", 101), b = verify(st, "bob", 250);
	cr_assert_float_eq(a, 1.0f, 1e-5);
	cr_assert_float_eq(b, 1.0f, 1e-5);
	/* cross score equals the exact cosine of the best template */
	float va[DIM], vc[DIM], vc2[DIM], vc3[DIM];
	st_vec(va, DIM, 100);
	st_vec(vc, DIM, 300);
	st_vec(vc2, DIM, 301);
	st_vec(vc3, DIM, 302);
	double want = fmax(tv_cosine(va, vc, DIM), fmax(tv_cosine(va, vc2, DIM),
	                                           tv_cosine(va, vc3, DIM)));
	ASSERT_SCORE(verify(st, "carol", 100), want, 1e-5);
	hk_store_info info;
	cr_assert_eq(hk_store_get_info(st, &info), HK_OK);
	cr_assert_eq(info.subjects, 3);
	cr_assert_eq(info.templates, 7);
	cr_assert_eq(info.version, 4);
	cr_assert(isnan(verify(st, "dave", 100)));
	cr_assert_eq(hk_store_close(st), HK_OK);

	st = open_store(0);
	cr_assert_eq(hk_store_get_info(st, &info), HK_OK);
	cr_assert_eq(info.subjects, 3);
	cr_assert_eq(info.templates, 7);
	cr_assert_eq(info.dim, DIM);
	ASSERT_SCORE(verify(st, "carol", 100), want, 1e-5);
	ASSERT_SCORE(verify(st, "bob", 200), 1.0f, 1e-5);
	ASSERT_SCORE(verify(st, "carol", 302), 1.0f, 1e-5);
	/* files are private */
	for (int i = 0; i < 4; i++) {
		if (i == 2)
			continue; /* no snapshot before the first compaction */
		char p[512];
		struct stat sb;
		snprintf(p, sizeof p, "%s/%s", dir, st_files[i]);
		cr_assert_eq(stat(p, &sb), 0, "%s", p);
		cr_assert_eq(sb.st_mode & 0777, 0600, "%s mode %o", p, sb.st_mode & 0777);
	}
	hk_store_close(st);
}

Test(store, consent_and_source_rules)
{
	hk_store *st = open_store(DIM);
	float v[DIM];
	st_vec(v, DIM, 1);
	cr_assert_eq(hk_store_enroll(st, NULL, v, 1, NULL), HK_E_CONSENT);
	hk_consent c = st_consent("eve", now);
	c.purpose = "";
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_E_CONSENT);
	c = st_consent("eve", now);
	c.channel = NULL;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_E_CONSENT);
	c = st_consent("eve", now);
	c.expires = now;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_E_CONSENT);
	c = st_consent("eve", now);
	c.time = now + 3600;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_E_CONSENT);
	c = st_consent("eve", now);
	c.source = HK_SOURCE_STREAM;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_E_POLICY);
	cr_assert(strstr(hk_last_error(), "stream") != NULL);
	float bad[DIM] = {0};
	c = st_consent("eve", now);
	cr_assert_eq(hk_store_enroll(st, &c, bad, 1, NULL), HK_E_RANGE);
	bad[3] = NAN;
	cr_assert_eq(hk_store_enroll(st, &c, bad, 1, NULL), HK_E_RANGE);
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.templates, 0);
	cr_assert_eq(info.version, 0);
	/* every refusal is audited: no record, purpose, channel; expired,
	 * future consent; stream source (bad vectors are not refusals) */
	cr_assert_eq(info.audit_entries, 6);
	/* a stream may query */
	enrol(st, "eve", 5, 1);
	float q[DIM], score;
	int match;
	st_vec(q, DIM, 5);
	cr_assert_eq(hk_store_verify(st, "eve", q, 0.5f, HK_SOURCE_STREAM, &score,
	                             &match), HK_OK);
	cr_assert_eq(match, 1);
	hk_store_close(st);
}

Test(store, identify_policy)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 100, 1);
	enrol(st, "bob", 200, 1);
	float q[DIM];
	st_vec(q, DIM, 200);
	hk_store_match m[3];
	size_t n = 99;
	cr_assert_eq(hk_store_identify(st, q, 0.5f, HK_SOURCE_DESK, 3, m, &n),
	             HK_E_POLICY);
	cr_assert_eq(n, 0);
	hk_store_policy pol = {.allow_identify = 1};
	cr_assert_eq(hk_store_set_policy(st, &pol), HK_OK);
	cr_assert_eq(hk_store_identify(st, q, 0.5f, HK_SOURCE_STREAM, 3, m, &n),
	             HK_OK, "%s", hk_last_error());
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].subject, "bob");
	cr_assert_float_eq(m[0].score, 1.0f, 1e-5);
	/* threshold -1: both subjects, best first */
	cr_assert_eq(hk_store_identify(st, q, -1.0f, HK_SOURCE_DESK, 3, m, &n),
	             HK_OK);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(m[1].subject, "alice");
	hk_store_close(st);
	st = open_store(0); /* the policy is persistent */
	cr_assert_eq(hk_store_identify(st, q, 0.5f, HK_SOURCE_DESK, 3, m, &n),
	             HK_OK);
	pol.allow_identify = 0;
	cr_assert_eq(hk_store_set_policy(st, &pol), HK_OK);
	cr_assert_eq(hk_store_identify(st, q, 0.5f, HK_SOURCE_DESK, 3, m, &n),
	             HK_E_POLICY);
	ASSERT_SCORE(verify(st, "bob", 200), 1.0f, 1e-5); /* 1:1 stays */
	hk_store_close(st);
}

Test(store, erase_compact_leaves_no_bytes)
{
	hk_store *st = open_store(DIM);
	enrol(st, "subject-A-4f1c9e", 700, 2);
	hk_store_close(st);
	/* A's sealed record is the only one in the log: remember a slice */
	char p[512];
	snprintf(p, sizeof p, "%s/wal.hk", dir);
	size_t wl;
	uint8_t *wal = st_slurp(p, &wl);
	cr_assert(wal && wl > 64 + 64 + 200);
	uint8_t cipher[48];
	memcpy(cipher, wal + 64 + 64 + 100, sizeof cipher);
	free(wal);
	st = open_store(0);
	enrol(st, "bob", 800, 1);
	float va[2 * DIM];
	st_vec(va, DIM, 700);
	st_vec(va + DIM, DIM, 701);
	/* never in clear, even before erasure */
	cr_assert_eq(st_dir_contains(dir, "subject-A-4f1c9e", 16), 0);
	cr_assert_eq(st_dir_contains(dir, va, sizeof va / 2), 0);
	cr_assert_eq(st_dir_contains(dir, cipher, sizeof cipher), 1);

	hk_erasure_receipt r;
	cr_assert_eq(hk_store_erase(st, "subject-A-4f1c9e", &r), HK_OK, "%s",
	             hk_last_error());
	cr_assert_str_eq(r.subject, "subject-A-4f1c9e");
	cr_assert_eq(r.n_templates, 2);
	cr_assert_eq(r.version, 3);
	cr_assert_eq(r.time, now);
	cr_assert_eq(hk_store_check_receipt(st, &r), HK_OK);
	hk_erasure_receipt forged = r;
	forged.time++;
	cr_assert_eq(hk_store_check_receipt(st, &forged), HK_E_CRYPTO);
	cr_assert(isnan(verify(st, "subject-A-4f1c9e", 700)));
	cr_assert_eq(hk_store_erase(st, "subject-A-4f1c9e", NULL), HK_E_NOT_FOUND);
	hk_store_policy pol = {.allow_identify = 1};
	hk_store_set_policy(st, &pol);
	hk_store_match m[4];
	size_t n;
	cr_assert_eq(hk_store_identify(st, va, -1.0f, HK_SOURCE_DESK, 4, m, &n),
	             HK_OK);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].subject, "bob");
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.erased_pending, 1);
	cr_assert_eq(hk_store_compact(st), HK_OK, "%s", hk_last_error());
	hk_store_get_info(st, &info);
	cr_assert_eq(info.erased_pending, 0);
	cr_assert_eq(info.subjects, 1);
	/* the ciphertext is gone from every file too */
	cr_assert_eq(st_dir_contains(dir, cipher, sizeof cipher), 0);
	cr_assert_eq(st_dir_contains(dir, "subject-A-4f1c9e", 16), 0);
	cr_assert_eq(st_dir_contains(dir, va, sizeof va / 2), 0);
	hk_store_close(st);
	st = open_store(0);
	cr_assert(isnan(verify(st, "subject-A-4f1c9e", 700)));
	ASSERT_SCORE(verify(st, "bob", 800), 1.0f, 1e-5);
	/* the subject may enrol again later with fresh consent */
	enrol(st, "subject-A-4f1c9e", 900, 1);
	ASSERT_SCORE(verify(st, "subject-A-4f1c9e", 900), 1.0f, 1e-5);
	cr_assert(verify(st, "subject-A-4f1c9e", 700) < 0.99f);
	hk_store_close(st);
}

Test(store, erased_key_makes_old_copies_unreadable)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 10, 1);
	enrol(st, "bob", 20, 1);
	hk_store_close(st);
	/* an old backup of the log, taken before erasure */
	char p[512];
	snprintf(p, sizeof p, "%s/wal.hk", dir);
	size_t wl;
	uint8_t *wal = st_slurp(p, &wl);
	st = open_store(0);
	cr_assert_eq(hk_store_erase(st, "alice", NULL), HK_OK);
	hk_store_close(st);
	/* restore the old log next to the current key store: refused as a
	 * log cut back past durable records (the erase record) */
	st_spit(p, wal, wl);
	hk_store_params sp;
	st_params(&sp, key, 0, &now);
	sp.flags = 0;
	cr_assert_eq(hk_store_open(dir, &sp, &st), HK_E_FORMAT);
	cr_assert(strstr(hk_last_error(), "wal.hk ends at version 2"), "%s",
	          hk_last_error());
	/* and alice's record in that copy cannot be opened with what keys.hk
	 * now holds: her key entry is shredded */
	snprintf(p, sizeof p, "%s/keys.hk", dir);
	size_t kl;
	uint8_t *ks = st_slurp(p, &kl);
	cr_assert(ks && kl >= 128 + 2 * 128);
	uint64_t alice_id;
	memcpy(&alice_id, wal + 64 + 24, 8); /* first record's key id */
	int shredded = 0;
	for (size_t o = 128; o + 128 <= kl; o += 128) {
		uint64_t id;
		uint32_t state;
		memcpy(&id, ks + o, 8);
		memcpy(&state, ks + o + 8, 4);
		if (id == alice_id)
			shredded = state == 2;
	}
	cr_assert(shredded, "alice's key %llu is not shredded",
	          (unsigned long long)alice_id);
	free(ks);
	free(wal);
}

Test(store, expiry_and_inactivity)
{
	hk_store *st = open_store(DIM);
	hk_store_policy pol = {.allow_identify = 1, .inactivity_limit_s = 1000};
	cr_assert_eq(hk_store_set_policy(st, &pol), HK_OK);
	float v[DIM];
	st_vec(v, DIM, 1);
	hk_consent c = st_consent("short", now);
	c.expires = now + 100;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	enrol(st, "active", 2, 1);
	enrol(st, "idle", 3, 1);
	now += 50;
	ASSERT_SCORE(verify(st, "short", 1), 1.0f, 1e-5);
	now += 550; /* t0 + 600: active matches */
	ASSERT_SCORE(verify(st, "active", 2), 1.0f, 1e-5);
	cr_assert(isnan(verify(st, "short", 1))); /* consent expired at +100 */
	now += 600; /* t0 + 1200: idle not seen for 1200 s */
	cr_assert(isnan(verify(st, "idle", 3)));
	ASSERT_SCORE(verify(st, "active", 2), 1.0f, 1e-5);
	hk_store_match m[4];
	size_t n;
	cr_assert_eq(hk_store_identify(st, v, -1.0f, HK_SOURCE_DESK, 4, m, &n),
	             HK_OK);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].subject, "active");
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.hidden_subjects, 2);
	cr_assert_eq(info.subjects, 1);
	hk_store_close(st);
	/* replay gives the same picture (touch and expiry are logged) */
	st = open_store(0);
	hk_store_get_info(st, &info);
	cr_assert_eq(info.subjects, 1);
	cr_assert_eq(info.hidden_subjects, 2);
	ASSERT_SCORE(verify(st, "active", 2), 1.0f, 1e-5);
	cr_assert_eq(hk_store_compact(st), HK_OK, "%s", hk_last_error());
	hk_store_get_info(st, &info);
	cr_assert_eq(info.hidden_subjects, 0);
	cr_assert_eq(info.templates, 1);
	/* an expired subject may consent again */
	c = st_consent("short", now);
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	ASSERT_SCORE(verify(st, "short", 1), 1.0f, 1e-5);
	hk_store_close(st);
	st = open_store(0);
	ASSERT_SCORE(verify(st, "short", 1), 1.0f, 1e-5);
	cr_assert(isnan(verify(st, "idle", 3)));
	hk_store_close(st);
}

Test(store, erase_hidden_subject_shreds_key)
{
	hk_store *st = open_store(DIM);
	float v[DIM];
	st_vec(v, DIM, 1);
	hk_consent c = st_consent("x", now);
	c.expires = now + 10;
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	now += 20;
	size_t n;
	cr_assert_eq(hk_store_expire(st, &n), HK_OK);
	cr_assert_eq(n, 1);
	c = st_consent("x", now);
	cr_assert_eq(hk_store_enroll(st, &c, v, 1, NULL), HK_OK);
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.hidden_subjects, 1);
	cr_assert_eq(hk_store_erase(st, "x", NULL), HK_OK);
	hk_store_get_info(st, &info);
	cr_assert_eq(info.hidden_subjects, 0);
	cr_assert_eq(info.erased_pending, 2); /* both keys of "x" */
	hk_store_close(st);
	st = open_store(0);
	hk_store_get_info(st, &info);
	cr_assert_eq(info.subjects, 0);
	cr_assert_eq(info.hidden_subjects, 0);
	hk_store_close(st);
}

Test(store, audit_chain_detects_edits)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 1, 1);
	for (int i = 0; i < 5; i++)
		verify(st, "alice", 1 + (uint64_t)i);
	hk_audit_report r;
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_OK, "%s", hk_last_error());
	cr_assert_eq(r.entries, 6);
	cr_assert_eq(r.bad_entry, UINT64_MAX);
	hk_store_close(st);

	char p[512];
	snprintf(p, sizeof p, "%s/audit.hk", dir);
	size_t n;
	uint8_t *a = st_slurp(p, &n);
	cr_assert_eq(n, 64 + 6 * 128);
	/* raise the score of entry 3 (a verify): offset of score is 32 */
	uint8_t *e = a + 64 + 3 * 128;
	float sc;
	memcpy(&sc, e + 32, 4);
	sc = 0.99f;
	memcpy(e + 32, &sc, 4);
	st_spit(p, a, n);
	st = open_store(0);
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_E_CRYPTO);
	cr_assert_eq(r.bad_entry, 3);
	hk_store_close(st);
	/* drop entry 2 entirely (later entries shift up) */
	free(a);
	uint8_t *orig = st_slurp(p, &n);
	cr_assert(orig && n == 64 + 6 * 128);
	memmove(orig + 64 + 2 * 128, orig + 64 + 3 * 128, n - (64 + 3 * 128));
	st_spit(p, orig, n - 128);
	free(orig);
	/* the log is now shorter than keys.hk recorded as durable: the gallery
	 * does not open (it opens only whole) */
	hk_store_params sp;
	st_params(&sp, key, 0, &now);
	sp.flags = 0;
	cr_assert_eq(hk_store_open(dir, &sp, &st), HK_E_FORMAT);
	cr_assert(strstr(hk_last_error(), "audit.hk holds 5 entries, but 6 were "
	                 "durable"), "%s", hk_last_error());
}

/* Two interleavings of concurrent writers that tsan_store can only hit by
 * chance, made deterministic by the store's test hook: the hook runs, in
 * the calling thread, what another thread could run at that point. */
static int hook_calls, hook_at;
static void (*hook_do)(hk_store *st);

static void hook(hk_store *st, int point)
{
	if (point == hook_at && hook_calls++ == 0)
		hook_do(st);
}

static void hook_run(int point, void (*fn)(hk_store *st))
{
	hook_calls = 0;
	hook_at = point;
	hook_do = fn;
	hk__st_test_hook = hook;
}

/* another writer's enrolment: its audit entry and a group commit */
static void commit_bob(hk_store *st)
{
	enrol(st, "bob", 2, 1);
	cr_assert_eq(st->khdr.durable_audit, 2, "bob's entry was committed");
}

/* audit verify reads the log, then another writer commits: keys.hk's
 * watermark now counts an entry that verify did not read. Compared with
 * that later watermark, a whole log looked cut ("holds 6517 entries, but
 * 6752 were durable" under tsan_store). */
Test(store, audit_verify_while_another_commits)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 1, 1);
	hook_run(HK__HOOK_AUDIT_READ, commit_bob);
	hk_audit_report r;
	hk_status s = hk_store_audit_verify(st, &r);
	hk__st_test_hook = NULL;
	cr_assert_eq(hook_calls, 1);
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	cr_assert_eq(r.entries, 1); /* what it read: bob's entry came later */
	cr_assert_eq(r.bad_entry, UINT64_MAX);
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_OK, "%s", hk_last_error());
	cr_assert_eq(r.entries, 2);
	hk_store_close(st);
}

/* another thread's group commit, run between a writer's log record and
 * its audit entry: it covers the record, not the entry */
static void group_commit_now(hk_store *st)
{
	cr_assert_eq(hk__commit_wait(st, st->written), HK_OK);
	cr_assert_eq(st->synced, st->written);
}

/* An enrolment or erasure is acknowledged only once its audit entry is
 * durable too, and keys.hk's watermark counts it (else a power loss can
 * take the entry of an acknowledged write, and a cut of it passes as a
 * torn tail). */
Test(store, acknowledged_write_has_durable_audit_entry)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 1, 1);
	cr_assert_eq(st->khdr.durable_audit, 1);
	hook_run(HK__HOOK_AUDIT, group_commit_now);
	enrol(st, "bob", 2, 1);
	cr_assert_eq(hook_calls, 1);
	cr_assert_eq(st->khdr.durable_seq, 2);
	cr_assert_eq(st->khdr.durable_audit, 2, "bob's enrolment was "
	             "acknowledged before its audit entry was durable");
	hook_run(HK__HOOK_AUDIT, group_commit_now);
	cr_assert_eq(hk_store_erase(st, "alice", NULL), HK_OK, "%s",
	             hk_last_error());
	hk__st_test_hook = NULL;
	cr_assert_eq(st->khdr.durable_seq, 3);
	cr_assert_eq(st->khdr.durable_audit, 3);
	hk_store_close(st);
}

Test(store, audit_recomputed_without_key_fails)
{
	/* an editor without the master key cannot re-chain: a different key's
	 * chain does not verify */
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 1, 1);
	enrol(st, "bob", 2, 1); /* entry 0 is not the last: open checks that */
	hk_store_close(st);
	char other[256];
	st_tmpdir(other, sizeof other);
	uint8_t k2[32];
	st_key(k2, 9);
	hk_store_params p;
	st_params(&p, k2, DIM, &now);
	cr_assert_eq(hk_store_open(other, &p, &st), HK_OK);
	enrol(st, "alice", 1, 1);
	hk_store_close(st);
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/audit.hk", other);
	snprintf(b, sizeof b, "%s/audit.hk", dir);
	size_t n;
	uint8_t *x = st_slurp(a, &n);
	size_t m;
	uint8_t *y = st_slurp(b, &m);
	cr_assert(x && y && n >= 64 + 128 && m >= 64 + 128);
	memcpy(y + 64, x + 64, 128); /* forged entry */
	st_spit(b, y, m);
	free(x);
	free(y);
	st = open_store(0);
	hk_audit_report r;
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_E_CRYPTO);
	cr_assert_eq(r.bad_entry, 0);
	hk_store_close(st);
	st_rmrf(other);
}

Test(store, wrong_or_missing_key)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice", 1, 1);
	hk_store_close(st);
	uint8_t k2[32];
	st_key(k2, 2);
	hk_store_params p;
	st_params(&p, k2, 0, &now);
	p.flags = 0;
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_E_CRYPTO);
	cr_assert(strstr(hk_last_error(), "wrong master key") != NULL, "%s",
	          hk_last_error());
	cr_assert_null(st);
	p.master_key = NULL;
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_E_CRYPTO);
	cr_assert(strstr(hk_last_error(), "master key") != NULL);
	/* no gallery and no create flag */
	char none[300];
	snprintf(none, sizeof none, "%s/nothing", dir);
	st_params(&p, key, DIM, &now);
	p.flags = 0;
	cr_assert_eq(HK_STATUS_PRIMARY(hk_store_open(none, &p, &st)),
	             HK_E_NOT_FOUND);
	/* dimension mismatch */
	st_params(&p, key, DIM + 1, &now);
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_E_DIM);
}

Test(store, one_process_at_a_time)
{
	hk_store *st = open_store(DIM);
	hk_store_params p;
	st_params(&p, key, DIM, &now);
	hk_store *st2 = NULL;
	cr_assert_eq(hk_store_open(dir, &p, &st2), HK_E_BUSY);
	hk_store_close(st);
	cr_assert_eq(hk_store_open(dir, &p, &st2), HK_OK);
	hk_store_close(st2);
}

Test(store, export_access_request)
{
	hk_store *st = open_store(DIM);
	enrol(st, "alice \"the\" customer", 1, 2);
	now += 86400;
	enrol(st, "alice \"the\" customer", 3, 1);
	enrol(st, "bob", 5, 1);
	verify(st, "alice \"the\" customer", 1);
	verify(st, "alice \"the\" customer", 5);
	verify(st, "bob", 5);
	char buf[4096];
	size_t need;
	cr_assert_eq(hk_store_export(st, "alice \"the\" customer", buf, 16, &need),
	             HK_E_OVERFLOW);
	cr_assert_eq(hk_store_export(st, "alice \"the\" customer", buf, sizeof buf,
	                             &need), HK_OK, "%s", hk_last_error());
	cr_assert_eq(strlen(buf) + 1, need);
	cr_assert(strstr(buf, "\"subject\": \"alice \\\"the\\\" customer\""), "%s", buf);
	cr_assert(strstr(buf, "recognise returning customers"));
	cr_assert(strstr(buf, "\"templates\": 3"));
	cr_assert(strstr(buf, "\"enrolments\": [\"2026-01-01T00:00:00Z\", "
	                      "\"2026-01-02T00:00:00Z\"]"), "%s", buf);
	/* history: 2 enrolments and 2 verifies of alice, nothing of bob's */
	int ops = 0;
	for (const char *q = buf; (q = strstr(q, "\"op\": \"verify\"")); q++)
		ops++;
	cr_assert_eq(ops, 2, "%s", buf);
	cr_assert(strstr(buf, "\"decision\": \"match\""));
	cr_assert(strstr(buf, "\"decision\": \"no-match\""));
	cr_assert(strstr(buf, "\"audit_chain\": \"verified\""));
	cr_assert_eq(hk_store_export(st, "nobody", buf, sizeof buf, NULL),
	             HK_E_NOT_FOUND);
	hk_store_close(st);
}

typedef struct worker {
	hk_store *st;
	int id, n;
	int fails;
} worker;

static void *enrol_worker(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		char name[32];
		snprintf(name, sizeof name, "w%d-%d", w->id, i);
		float v[DIM];
		st_vec(v, DIM, (uint64_t)(w->id * 1000 + i));
		hk_consent c = st_consent(name, ST_T0);
		if (hk_store_enroll(w->st, &c, v, 1, NULL))
			w->fails++;
		float s;
		int m;
		if (hk_store_verify(w->st, name, v, 0.5f, HK_SOURCE_DESK, &s, &m) ||
		    !m)
			w->fails++;
	}
	return NULL;
}

Test(store, concurrent_enrolments_group_commit)
{
	hk_store *st = open_store(DIM);
	enum { T = 4, N = 40 };
	pthread_t th[T];
	worker w[T];
	for (int i = 0; i < T; i++) {
		w[i] = (worker){st, i, N, 0};
		pthread_create(&th[i], NULL, enrol_worker, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].fails, 0);
	}
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_eq(info.subjects, T * N);
	cr_assert_eq(info.committed_records, T * N);
	cr_assert_leq(info.commits, T * N);
	cr_assert_eq(info.audit_entries, 2 * T * N, "%llu", (unsigned long long)info.audit_entries);
	hk_store_close(st);
	st = open_store(0);
	hk_store_get_info(st, &info);
	cr_assert_eq(info.audit_entries, 2 * T * N, "reopen %llu", (unsigned long long)info.audit_entries);
	for (int t = 0; t < T; t++)
		for (int i = 0; i < N; i++) {
			char name[32];
			snprintf(name, sizeof name, "w%d-%d", t, i);
			ASSERT_SCORE(verify(st, name, (uint64_t)(t * 1000 + i)),
			                   1.0f, 1e-5);
		}
	hk_audit_report r;
	cr_assert_eq(hk_store_audit_verify(st, &r), HK_OK);
	cr_assert_eq(r.entries, 2 * T * N + T * N, "%llu", (unsigned long long)r.entries);
	hk_store_close(st);
}

Test(store, auto_compaction)
{
	hk_store_params p;
	st_params(&p, key, DIM, &now);
	p.auto_compact_bytes = 2000;
	hk_store *st;
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_OK, "%s", hk_last_error());
	for (int i = 0; i < 12; i++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", i);
		enrol(st, name, 100 + (uint64_t)i, 1);
	}
	hk_store_info info;
	hk_store_get_info(st, &info);
	cr_assert_gt(info.snapshot_bytes, 0);
	cr_assert_leq(info.wal_bytes, 2000 + 400);
	cr_assert_eq(info.templates, 12);
	cr_assert_eq(hk_store_erase(st, "s3", NULL), HK_OK);
	hk_store_close(st);
	st = open_store(0);
	hk_store_get_info(st, &info);
	cr_assert_eq(info.subjects, 11);
	ASSERT_SCORE(verify(st, "s11", 111), 1.0f, 1e-5);
	cr_assert(isnan(verify(st, "s3", 103)));
	hk_store_close(st);
}

/* Issue 11: an all-zero master key, a group- or world-writable directory
 * and a non-empty directory without a gallery are refused; nothing is
 * created. */
Test(store, refuses_weak_key_unsafe_or_foreign_dir)
{
	hk_store_params p;
	uint8_t zero[32] = {0};
	st_params(&p, zero, DIM, &now);
	hk_store *st = NULL;
	char g[512];
	snprintf(g, sizeof g, "%s/g", dir);
	cr_assert_eq(hk_store_open(g, &p, &st), HK_E_CRYPTO);
	cr_assert(strstr(hk_last_error(), "all zeros"), "%s", hk_last_error());
	cr_assert_neq(access(g, F_OK), 0, "created a directory for a refused key");
	st_params(&p, key, DIM, &now);
	cr_assert_eq(chmod(dir, 0777), 0);
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_E_IO);
	cr_assert(strstr(hk_last_error(), "writable by group or others"), "%s",
	          hk_last_error());
	cr_assert_eq(chmod(dir, 0700), 0);
	/* someone's files: no gallery is created on top of them */
	char f[512];
	snprintf(f, sizeof f, "%s/notes.txt", dir);
	cr_assert_eq(st_spit(f, "x", 1), 0);
	cr_assert_eq(hk_store_open(dir, &p, &st), HK_E_EXISTS);
	cr_assert(strstr(hk_last_error(), "notes.txt"), "%s", hk_last_error());
	cr_assert_neq(access(g, F_OK), 0);
	snprintf(f, sizeof f, "%s/keys.hk", dir);
	cr_assert_neq(access(f, F_OK), 0, "keys.hk created in a foreign dir");
}
