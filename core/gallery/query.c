/* Durable gallery: 1:1 / 1:N queries, info, export, audit verification. */
#define _GNU_SOURCE
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HK__IDENTIFY_K_MAX 1024

hk_status hk_store_verify(hk_store *st, const char *subject,
                          const float *query, float threshold,
                          uint32_t source, float *score, int *match)
{
	if (!st || !subject || !query || !score || !match)
		return hk__err(HK_E_INVALID, "hk_store_verify: NULL argument");
	if (!isfinite(threshold))
		return hk__err(HK_E_RANGE, "threshold is not finite");
	hk_status s = hk__st_check_vec(st, query);
	if (s)
		return s;
	int64_t now = hk__st_now(st);
	if ((s = hk__maybe_sweep(st, now)))
		return s;
	pthread_rwlock_rdlock(&st->rw);
	hk__subj *sj = hk__by_name(st, subject);
	if (!sj || sj->state != HK__S_LIVE || !sj->n_tids) {
		/* the claimed name is not recorded: it may not be a subject */
		s = hk__audit(st, HK__A_VERIFY, HK__D_NONE, 0, threshold, source, 0,
		              NULL, 0);
		pthread_rwlock_unlock(&st->rw);
		return s ? s : hk__err(HK_E_NOT_FOUND, "no enrolled subject '%s'",
		                       subject);
	}
	float sc;
	s = hk_gallery_verify(st->g, subject, query, &sc, NULL);
	if (!s) {
		int m = sc >= threshold;
		if (m)
			hk__touch(st, sj, now);
		s = hk__audit(st, HK__A_VERIFY, m ? HK__D_MATCH : HK__D_NOMATCH, sc,
		              threshold, source, 1, sj->pseudo, 0);
		if (!s) {
			*score = sc;
			*match = m;
		}
	}
	pthread_rwlock_unlock(&st->rw);
	return s;
}

/* 1:N; with cal, the threshold is the one for FPIR target at the gallery's
 * size (live templates) under the read lock, and d gets the decision. */
static hk_status identify_impl(hk_store *st, const float *query, float threshold,
                               const hk_calib *cal, double target, uint32_t source,
                               size_t k, hk_store_match *out, size_t *n_out,
                               hk_decision *d)
{
	if (!st || !query || !out || !n_out || k == 0)
		return hk__err(HK_E_INVALID, "hk_store_identify: bad arguments");
	*n_out = 0;
	if (k > HK__IDENTIFY_K_MAX)
		return hk__err(HK_E_LIMIT, "k = %zu exceeds %d", k,
		               HK__IDENTIFY_K_MAX);
	if (!isfinite(threshold))
		return hk__err(HK_E_RANGE, "threshold is not finite");
	hk_status s = hk__st_check_vec(st, query);
	if (s)
		return s;
	int64_t now = hk__st_now(st);
	if ((s = hk__maybe_sweep(st, now)))
		return s;
	pthread_rwlock_rdlock(&st->rw);
	if (!st->policy.allow_identify) {
		s = hk__audit(st, HK__A_REFUSED, HK__D_REFUSED, 0, threshold, source,
		              0, NULL, HK__A_IDENTIFY);
		pthread_rwlock_unlock(&st->rw);
		return s ? s : hk__err(HK_E_POLICY, "1:N identification is not "
		                       "enabled by this gallery's policy (1:1 "
		                       "verification is)");
	}
	uint64_t n_live = hk_gallery_size(st->g);
	if (cal && n_live == 0) {
		threshold = 2.0f; /* an empty gallery: nobody can be taken for anyone */
	} else if (cal && (s = hk_calib_score_at_fpir(cal, target, n_live, &threshold))) {
		pthread_rwlock_unlock(&st->rw);
		return s;
	}
	float *scores = malloc(k * sizeof *scores);
	hk_template_id *ids = malloc(k * sizeof *ids);
	if (!scores || !ids) {
		s = hk__err(HK_E_NOMEM, "identify results");
		goto out;
	}
	if ((s = hk_gallery_search(st->g, query, k, scores, ids)))
		goto out;
	size_t n = 0;
	for (size_t i = 0; i < k; i++) {
		if (ids[i] == HK_NO_ID || !(scores[i] >= threshold))
			break;
		if ((s = hk_gallery_subject_of(st->g, ids[i], out[n].subject,
		                               sizeof out[n].subject)))
			goto out;
		out[n].score = scores[i];
		n++;
	}
	const uint8_t *pseudo = NULL;
	if (n) {
		hk__subj *sj = hk__by_name(st, out[0].subject);
		if (sj) {
			hk__touch(st, sj, now);
			pseudo = sj->pseudo;
		}
	}
	float top = ids[0] == HK_NO_ID ? 0.0f : scores[0];
	s = hk__audit(st, HK__A_IDENTIFY, n ? HK__D_MATCH : HK__D_NOMATCH, top,
	              threshold, source, (uint32_t)n, pseudo, 0);
	if (!s && d) {
		memset(d, 0, sizeof *d);
		d->kind = HK_DECISION_IDENTIFY;
		d->n = n_live;
		d->target = target;
		d->threshold = threshold;
		d->score = ids[0] == HK_NO_ID ? -INFINITY : scores[0];
		d->match = n > 0;
		if (n_live)
			s = hk_calib_fpir(cal, d->score, n_live, &d->rate);
	}
	if (!s)
		*n_out = n;
	else
		memset(out, 0, k * sizeof *out);
out:
	free(scores);
	free(ids);
	pthread_rwlock_unlock(&st->rw);
	return s;
}

hk_status hk_store_identify(hk_store *st, const float *query, float threshold,
                            uint32_t source, size_t k, hk_store_match *out, size_t *n_out)
{
	return identify_impl(st, query, threshold, NULL, 0, source, k, out, n_out, NULL);
}

/* The policy's target, or the library default. */
static double policy_rate(double call, double policy, double dflt)
{
	return call != 0.0 ? call : policy != 0.0 ? policy : dflt;
}

hk_status hk_store_identify_at(hk_store *st, const hk_calib *cal, const float *query,
                               double target_fpir, uint32_t source, size_t k,
                               hk_store_match *out, size_t *n_out, hk_decision *d)
{
	if (!st || !cal || !d)
		return hk__err(HK_E_INVALID, "hk_store_identify_at: NULL argument");
	pthread_rwlock_rdlock(&st->rw);
	double t = policy_rate(target_fpir, st->policy.target_fpir, HK_DEFAULT_FPIR);
	pthread_rwlock_unlock(&st->rw);
	if (!(t > 0.0 && t < 1.0))
		return hk__err(HK_E_RANGE, "target FPIR %g is outside (0, 1)", t);
	return identify_impl(st, query, 0.0f, cal, t, source, k, out, n_out, d);
}

hk_status hk_store_verify_at(hk_store *st, const hk_calib *cal, const char *subject,
                             const float *query, double target_fmr, uint32_t source,
                             hk_decision *d)
{
	if (!st || !cal || !d)
		return hk__err(HK_E_INVALID, "hk_store_verify_at: NULL argument");
	pthread_rwlock_rdlock(&st->rw);
	double t = policy_rate(target_fmr, st->policy.target_fmr, HK_DEFAULT_FMR);
	pthread_rwlock_unlock(&st->rw);
	float thr, score;
	int match;
	hk_status s = hk_calib_score_at_fmr(cal, t, &thr);
	if (!s)
		s = hk_store_verify(st, subject, query, thr, source, &score, &match);
	if (!s)
		s = hk_calib_decide_verify(cal, score, t, d);
	return s;
}

static uint64_t file_size(int dirfd, int fd, const char *name)
{
	struct stat sb;
	if (fd >= 0 ? fstat(fd, &sb) : fstatat(dirfd, name, &sb, 0))
		return 0;
	return (uint64_t)sb.st_size;
}

hk_status hk_store_get_info(hk_store *st, hk_store_info *info)
{
	if (!st || !info)
		return hk__err(HK_E_INVALID, "hk_store_get_info: NULL argument");
	memset(info, 0, sizeof *info);
	pthread_rwlock_rdlock(&st->rw);
	info->dim = st->dim;
	info->format_version = HK__ST_FORMAT;
	info->version = atomic_load(&st->seq);
	info->subjects = st->n_live;
	info->templates = st->n_templates;
	info->hidden_subjects = st->n_hidden;
	info->erased_pending = st->shredded;
	info->policy = st->policy;
	info->torn_bytes_cut = st->torn_cut;
	info->wal_bytes = file_size(st->dirfd, st->wal_fd, HK__F_WAL);
	info->snapshot_bytes = file_size(st->dirfd, -1, HK__F_SNAP);
	info->keys_bytes = file_size(st->dirfd, st->keys_fd, HK__F_KEYS);
	pthread_mutex_lock(&st->audit_mu);
	info->audit_bytes = st->audit_size;
	info->audit_entries = st->audit_n;
	pthread_mutex_unlock(&st->audit_mu);
	pthread_mutex_lock(&st->gc_mu);
	info->commits = st->commits;
	info->committed_records = st->committed;
	pthread_mutex_unlock(&st->gc_mu);
	pthread_rwlock_unlock(&st->rw);
	return HK_OK;
}

/* The audit file as it stands (whole, consistent with audit_n). */
static hk_status audit_snapshot(hk_store *st, uint8_t **buf, size_t *len)
{
	pthread_mutex_lock(&st->audit_mu);
	size_t n = (size_t)st->audit_size;
	uint8_t *p = malloc(n ? n : 1);
	hk_status s = HK_OK;
	if (!p)
		s = hk__err(HK_E_NOMEM, "audit log of %zu bytes", n);
	size_t got = 0;
	while (!s && got < n) {
		ssize_t r = pread(st->audit_fd, p + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			s = hk__err(HK_E_IO, "%s: read: %s", HK__F_AUDIT,
			            r < 0 ? strerror(errno) : "short file");
		else
			got += (size_t)r;
	}
	pthread_mutex_unlock(&st->audit_mu);
	if (s) {
		free(p);
		return s;
	}
	*buf = p;
	*len = n;
	return HK_OK;
}

hk_status hk_store_audit_verify(hk_store *st, hk_audit_report *r)
{
	if (!st)
		return hk__err(HK_E_INVALID, "hk_store_audit_verify: store is NULL");
	/* A chain cut back past what keys.hk recorded as durable is intact
	 * as a chain, but not whole. The watermark is read before the file:
	 * it only ever counts entries already written (a group commit takes
	 * it from audit_n), so the snapshot below holds at least that many.
	 * Read after the snapshot, it could count entries that other threads
	 * appended and committed meanwhile, and call a whole log cut. */
	pthread_mutex_lock(&st->khdr_mu);
	uint64_t want = st->khdr.durable_audit;
	pthread_mutex_unlock(&st->khdr_mu);
	uint8_t *buf;
	size_t len;
	hk_status s = audit_snapshot(st, &buf, &len);
	if (s)
		return s;
	if (hk__st_test_hook)
		hk__st_test_hook(st, HK__HOOK_AUDIT_READ);
	hk_audit_report tmp;
	if (!r)
		r = &tmp;
	memset(r, 0, sizeof *r);
	s = hk__audit_check(buf, len, st->k->audit, NULL, NULL, &r->entries,
	                    &r->bad_entry, r->head);
	free(buf);
	if (!s && r->entries < want) {
		r->bad_entry = r->entries;
		s = hk__err(HK_E_CRYPTO, "%s holds %llu entries, but %llu were "
		            "durable: entries were cut from its end", HK__F_AUDIT,
		            (unsigned long long)r->entries,
		            (unsigned long long)want);
	}
	return s;
}

/* ---- export (JSON) ------------------------------------------------ */

typedef struct jw {
	char *buf;
	size_t len, pos;
} jw;

static void jw_put(jw *w, const char *fmt, ...) HK__PRINTF(2, 3);
static void jw_put(jw *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = w->pos < w->len ? w->len - w->pos : 0;
	int n = vsnprintf(room ? w->buf + w->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->pos += (size_t)n;
}

static void jw_str(jw *w, const char *s)
{
	jw_put(w, "\"");
	/* always valid UTF-8: control characters escaped, each byte that is
	 * not part of valid UTF-8 replaced by U+FFFD */
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = hk_utf8_len((const char *)p);
		if (!n)
			jw_put(w, "\\ufffd");
		else if (*p == '"' || *p == '\\')
			jw_put(w, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			jw_put(w, "\\u%04x", *p);
		else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			jw_put(w, "\\u%04x", p[1]);
		else
			jw_put(w, "%.*s", (int)n, (const char *)p);
		p += n ? n : 1;
	}
	jw_put(w, "\"");
}

static void jw_time(jw *w, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char b[32];
	if (gmtime_r(&tt, &tm) && strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm))
		jw_put(w, "\"%s\"", b);
	else
		jw_put(w, "%lld", (long long)t);
}

static const char *op_name(uint32_t op)
{
	static const char *names[] = {"?", "enrol", "erase", "expire", "verify",
	                              "identify", "refused", "compact", "policy"};
	return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

static const char *decision_name(uint32_t d)
{
	static const char *names[] = {"none", "match", "no-match", "done",
	                              "refused"};
	return d < sizeof names / sizeof names[0] ? names[d] : "?";
}

typedef struct hist {
	jw *w;
	const uint8_t *pseudo;
	size_t n;
} hist;

static void hist_entry(void *user, const hk__aent *e)
{
	hist *h = user;
	if (memcmp(e->subject, h->pseudo, 16))
		return;
	jw_put(h->w, "%s\n    {\"time\": ", h->n++ ? "," : "");
	jw_time(h->w, e->time);
	jw_put(h->w, ", \"op\": \"%s\", \"decision\": \"%s\", \"version\": %llu",
	       op_name(e->op), decision_name(e->decision),
	       (unsigned long long)e->version);
	if (e->op == HK__A_VERIFY || e->op == HK__A_IDENTIFY)
		jw_put(h->w, ", \"score\": %.6f, \"threshold\": %.6f",
		       (double)e->score, (double)e->threshold);
	jw_put(h->w, "}");
}

static const char *source_name(uint32_t s)
{
	return s == HK_SOURCE_DESK ? "desk" : s == HK_SOURCE_FILE ? "file"
	                                    : "stream";
}

hk_status hk_store_export(hk_store *st, const char *subject, char *buf,
                          size_t len, size_t *needed)
{
	if (!st || !subject || (!buf && len))
		return hk__err(HK_E_INVALID, "hk_store_export: bad arguments");
	uint8_t *abuf;
	size_t alen;
	hk_status s = audit_snapshot(st, &abuf, &alen);
	if (s)
		return s;
	pthread_rwlock_rdlock(&st->rw);
	hk__subj *sj = hk__by_name(st, subject);
	if (!sj) {
		pthread_rwlock_unlock(&st->rw);
		free(abuf);
		return hk__err(HK_E_NOT_FOUND, "no subject '%s' in the gallery",
		               subject);
	}
	jw w = {buf, len, 0};
	jw_put(&w, "{\n  \"subject\": ");
	jw_str(&w, sj->name);
	jw_put(&w, ",\n  \"state\": \"%s\",\n  \"consent\": {\"purpose\": ",
	       sj->state == HK__S_LIVE ? "enrolled"
	       : sj->reason == 2       ? "hidden: inactive"
	                               : "hidden: consent expired");
	jw_str(&w, sj->purpose);
	jw_put(&w, ", \"consent_version\": ");
	jw_str(&w, sj->version);
	jw_put(&w, ", \"channel\": ");
	jw_str(&w, sj->channel);
	jw_put(&w, ", \"given\": ");
	jw_time(&w, sj->consent_time);
	jw_put(&w, ", \"expires\": ");
	jw_time(&w, sj->expires);
	jw_put(&w, ", \"source\": \"%s\"},\n  \"templates\": %u,\n"
	           "  \"enrolments\": [", source_name(sj->source), sj->n_tids);
	for (uint32_t i = 0; i < sj->n_enrols; i++) {
		jw_put(&w, i ? ", " : "");
		jw_time(&w, sj->enrols[i]);
	}
	jw_put(&w, "],\n  \"last_active\": ");
	jw_time(&w, atomic_load(&sj->last_active));
	jw_put(&w, ",\n  \"history\": [");
	hist h = {&w, sj->pseudo, 0};
	uint64_t entries, bad;
	hk_status as = hk__audit_check(abuf, alen, st->k->audit, hist_entry, &h,
	                               &entries, &bad, NULL);
	jw_put(&w, "\n  ],\n  \"audit_chain\": \"%s\"\n}\n",
	       as ? "BROKEN: history may be incomplete" : "verified");
	pthread_rwlock_unlock(&st->rw);
	free(abuf);
	if (needed)
		*needed = w.pos + 1;
	if (w.pos >= len) {
		if (len)
			buf[len - 1] = 0;
		return hk__err(HK_E_OVERFLOW, "export needs %zu bytes, buffer has "
		               "%zu", w.pos + 1, len);
	}
	return HK_OK;
}
