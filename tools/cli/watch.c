/* herken watch: a video file, network stream, camera or frame list through
 * the recogniser; one line per event (JSON lines with --json). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "herken.h"

static const char watch_usage[] =
    "usage: herken watch SOURCE [options]\n"
    "\n"
    "Tracks every face of a video and makes one decision per visit (a visit\n"
    "is one person's track), from the visit's best views. Nothing is ever\n"
    "enrolled from the stream; frames stay in memory.\n"
    "\n"
    "SOURCE: a video file (.mp4 .mkv .avi .mov ...), a network stream\n"
    "(rtsp:// http:// ...), a camera (/dev/videoN), or anything --frames\n"
    "takes (a directory or list of photos, '-' for Y4M on stdin).\n"
    "\n"
    "options:\n"
    "  --gallery DIR      durable gallery (DIR/keys.hk; key: --key-file or\n"
    "                     HERKEN_MASTER_KEY) or photo folder DIR/<subject>/<photo>;\n"
    "                     without it faces are tracked, not identified\n"
    "  --key-file F       master key of a durable gallery\n"
    "  --claim SUBJECT    1:1: decide only 'is this SUBJECT' (default 1:N)\n"
    "  --fpir R           1:N target false-positive identification rate (1e-3)\n"
    "  --fmr R            1:1 (--claim) target false-match rate (1e-4)\n"
    "  --threshold T      cosine threshold instead of the calibrated one\n"
    "  --json             one JSON object per event\n"
    "  --max-fps F        process at most F frames per second of video time\n"
    "  --roi X0,Y0,X1,Y1  only faces whose centre lies in this rectangle (px)\n"
    "  --tiles N          N x N overlapping tiles scanned in rotation with the\n"
    "                     full frame, one view a frame, next to the views around\n"
    "                     each track (small faces in large frames; default: 2\n"
    "                     from 1000 px on, else 1 = full frame only)\n"
    "  --best-k K         views in a visit template (default 8)\n"
    "  --template T       mean (default), qwmean (quality-weighted), best\n"
    "  --lost-after S     a visit ends after S seconds without its face (0.8)\n"
    "  --timeout-ms MS    network, camera or pipe ('-'): give up after MS\n"
    "                     without data (5000)\n"
    "  --models DIR       model directory (default $HERKEN_MODELS)\n"
    "\n"
    "events: track-started, decision, revised, visit-ended (the visit's final\n"
    "decision: match, stranger, or undecided when no face was usable).\n"
    "exit: 0 the source ended, 2 usage, 3 the source or gallery cannot be\n"
    "opened (missing, corrupt or truncated, unknown codec, no answer within\n"
    "--timeout-ms), 4 internal error, 5 refused by the gallery's policy,\n"
    "6 busy (camera or gallery in use), 7 the source failed mid-stream\n"
    "(stalled or corrupt data; the visits were ended, their events printed).\n";

typedef struct wopts {
	const char *source, *gallery, *key_file, *claim, *models;
	double fpir, max_fps, lost_after;
	float threshold, roi[4];
	long best_k, timeout_ms;
	uint32_t aggregate, tiles;
	int json;
} wopts;

static int parse_num(const char *s, double lo, double hi, double *out)
{
	return cli_double(s, lo, hi, out);
}

/* 0, 1 after --help, -1 after a usage error. */
static int parse(int argc, char **argv, wopts *o)
{
	memset(o, 0, sizeof *o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		double d = 0;
		int bad = 0, takes = 1;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(watch_usage, stdout);
			return 1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
			takes = 0;
		} else if (a[0] != '-' || !a[1]) {
			if (o->source) {
				fprintf(stderr, "herken watch: one SOURCE only ('%s' and '%s')\n", esc(o->source), esc(a));
				return -1;
			}
			o->source = a;
			takes = 0;
		} else if (!v) {
			fprintf(stderr, "herken watch: %s needs a value (or is unknown; see --help)\n", esc(a));
			return -1;
		} else if (!strcmp(a, "--gallery")) {
			o->gallery = v;
		} else if (!strcmp(a, "--key-file")) {
			o->key_file = v;
		} else if (!strcmp(a, "--template")) {
			o->aggregate = !strcmp(v, "qwmean") ? HK_AGG_QWMEAN : !strcmp(v, "mean") ? HK_AGG_MEAN
			               : !strcmp(v, "best")  ? HK_AGG_BEST
			                                     : 99;
			bad = o->aggregate == 99;
		} else if (!strcmp(a, "--tiles")) {
			bad = parse_num(v, 1, 8, &d) || d != floor(d);
			o->tiles = (uint32_t)d;
		} else if (!strcmp(a, "--claim")) {
			o->claim = v;
		} else if (!strcmp(a, "--models")) {
			o->models = v;
		} else if (!strcmp(a, "--fpir") || !strcmp(a, "--fmr")) {
			bad = parse_num(v, 1e-12, 0.5, &o->fpir);
		} else if (!strcmp(a, "--threshold")) {
			bad = parse_num(v, -1, 1, &d);
			o->threshold = (float)d;
		} else if (!strcmp(a, "--max-fps")) {
			bad = parse_num(v, 0.01, 1000, &o->max_fps);
		} else if (!strcmp(a, "--lost-after")) {
			bad = parse_num(v, 0.01, 3600, &o->lost_after);
		} else if (!strcmp(a, "--best-k")) {
			bad = parse_num(v, 1, 32, &d) || d != floor(d);
			o->best_k = (long)d;
		} else if (!strcmp(a, "--timeout-ms")) {
			bad = parse_num(v, 1, 3600000, &d) || d != floor(d);
			o->timeout_ms = (long)d;
		} else if (!strcmp(a, "--roi")) {
			char c;
			bad = sscanf(v, "%f,%f,%f,%f%c", &o->roi[0], &o->roi[1], &o->roi[2], &o->roi[3],
			             &c) != 4 ||
			      !(o->roi[2] > o->roi[0] && o->roi[3] > o->roi[1]);
		} else {
			fprintf(stderr, "herken watch: unknown option '%s' (see --help)\n", esc(a));
			return -1;
		}
		if (bad) {
			fprintf(stderr, "herken watch: bad value '%s' for %s\n", esc(v), esc(a));
			return -1;
		}
		i += takes;
	}
	if (!o->source) {
		fprintf(stderr, "herken watch: SOURCE is required\n%s", watch_usage);
		return -1;
	}
	return 0;
}

static int exit_for(hk_status s)
{
	switch (HK_STATUS_PRIMARY(s)) {
	case HK_OK: return HK_EXIT_OK;
	case HK_E_INVALID: return HK_EXIT_USAGE;
	case HK_E_POLICY: case HK_E_CONSENT: return HK_EXIT_REFUSED;
	case HK_E_BUSY: return HK_EXIT_BUSY;
	case HK_E_NOMEM: case HK_E_BACKEND: return HK_EXIT_INTERNAL;
	default: return HK_EXIT_INPUT;
	}
}

static void json_num(FILE *f, double v, const char *fmt)
{
	if (isfinite(v))
		fprintf(f, fmt, v);
	else
		fputs("null", f);
}

static int rate_is_fpir = 1; /* 0 with --claim (1:1) */

static void print_event(const hk_event *e, int json)
{
	double t = e->time_us / 1e6;
	char why[128];
	hk_quality_reasons_str(e->reasons, why, sizeof why);
	int has_decision = e->type != HK_EV_TRACK_STARTED;
	if (json) {
		printf("{\"event\":\"%s\",\"visit\":%u,\"t\":%.3f,\"box\":[%.0f,%.0f,%.0f,%.0f]",
		       hk_event_type_str(e->type), e->track, t, e->box[0], e->box[1], e->box[2],
		       e->box[3]);
		if (has_decision) {
			printf(",\"outcome\":\"%s\",\"subject\":", hk_outcome_str(e->outcome));
			if (e->outcome == HK_OUTCOME_MATCH)
				json_str(stdout, e->subject);
			else
				fputs("null", stdout);
			fputs(",\"score\":", stdout);
			json_num(stdout, e->score, "%.4f");
			fputs(",\"threshold\":", stdout);
			json_num(stdout, e->threshold, "%.4f");
			fputs(",\"target\":", stdout);
			json_num(stdout, e->target, "%.3g");
			fputs(",\"rate\":", stdout);
			json_num(stdout, e->rate, "%.3g");
			printf(",\"quality\":%.3f,\"views\":%u", e->quality, e->views);
		}
		if (e->type == HK_EV_VISIT_ENDED) {
			printf(",\"start\":%.3f,\"duration\":%.3f,\"frames_seen\":%u,\"frames_used\":%u,"
			       "\"end\":\"%s\",\"reasons\":",
			       e->start_us / 1e6, e->duration_us / 1e6, e->frames_seen, e->frames_used,
			       hk_end_reason_str(e->end_reason));
			json_str(stdout, why);
		}
		puts("}");
		return;
	}
	printf("%7.2fs  visit %-3u %-13s", t, e->track, hk_event_type_str(e->type));
	if (e->type == HK_EV_TRACK_STARTED) {
		printf(" face %.0fx%.0f at (%.0f,%.0f)\n", e->box[2] - e->box[0], e->box[3] - e->box[1],
		       e->box[0], e->box[1]);
		return;
	}
	if (e->outcome == HK_OUTCOME_MATCH)
		printf(" MATCH %s", esc(e->subject));
	else
		printf(" %s", hk_outcome_str(e->outcome));
	if (isfinite(e->score))
		printf(" (score %.3f, threshold %.3f", e->score, e->threshold);
	else if (e->outcome != HK_OUTCOME_UNDECIDED)
		printf(" (threshold %.3f", e->threshold);
	if (e->outcome != HK_OUTCOME_UNDECIDED) {
		const char *what = rate_is_fpir ? "FPIR" : "FMR";
		if (isfinite(e->target))
			printf(" for %s %.0e", what, e->target);
		if (isfinite(e->rate))
			printf(", stands at %.1e", e->rate);
		printf(", quality %.2f, %u views)", e->quality, e->views);
	}
	if (e->type == HK_EV_VISIT_ENDED) {
		printf(" — %.2fs, %u frames seen, %u used, %s", e->duration_us / 1e6, e->frames_seen,
		       e->frames_used, hk_end_reason_str(e->end_reason));
		if (e->outcome == HK_OUTCOME_UNDECIDED && why[0])
			printf(" (best face: %s)", why);
	}
	putchar('\n');
}

static void print_all(const hk_event *ev, size_t n, int json)
{
	for (size_t i = 0; i < n; i++)
		print_event(&ev[i], json);
	fflush(stdout);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int hk_cli_watch(int argc, char **argv)
{
	wopts o;
	int pr = parse(argc, argv, &o);
	if (pr)
		return pr > 0 ? HK_EXIT_OK : HK_EXIT_USAGE;

	hk_engine *e = NULL;
	hk_gallery *g = NULL;
	hk_store *st = NULL;
	hk_recognizer *r = NULL;
	hk_frames *src = NULL;
	int rc = HK_EXIT_OK;
	hk_status s;

	/* The source first: a bad source is reported before models load. */
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
	/* A pipe waits for ever unless told: a live one must not. */
	fp.timeout_ms = o.timeout_ms ? (uint32_t)o.timeout_ms : 5000;
	if ((s = hk_frames_open(o.source, &fp, &src)) != HK_OK) {
		fprintf(stderr, "herken watch: %s (%s)\n", esc(hk_last_error()), hk_status_str(s));
		return exit_for(s);
	}
	hk_engine_params ep;
	hk_engine_default_params(&ep);
	ep.model_dir = o.models;
	/* One oneDNN thread per model: a stream's detector runs are small
	 * batches of 192 x 192 views, where a two-thread team costs more than
	 * it saves, and the decoder has its own threads. herken-bench stream,
	 * 1080p x 4 faces, 2-core Zen 5, quiet, same run: 61.2 frames/s and
	 * 16.2 CPU ms a frame with one thread, 36.7 and 37.8 with two. */
	ep.threads = 1;
	if ((s = hk_engine_create(&ep, &e)) != HK_OK) {
		fprintf(stderr, "herken watch: cannot load the models: %s\n", esc(hk_last_error()));
		rc = exit_for(s);
		goto out;
	}
	if (o.gallery) {
		char kp[4096];
		snprintf(kp, sizeof kp, "%s/keys.hk", o.gallery);
		if (access(kp, F_OK) == 0) {
			if ((rc = hk_cli_open_store("watch", o.gallery, o.key_file, &st)))
				goto out;
		} else {
			hk_gallery_params gp;
			hk_gallery_default_params(&gp);
			gp.dim = HK_EMBED_DIM;
			if ((s = hk_gallery_create(&gp, &g)) != HK_OK) {
				rc = exit_for(s);
				goto out;
			}
			FILE *skipped = fopen("/dev/null", "w");
			size_t nskipped = 0;
			rc = hk_cli_build_gallery(e, o.gallery, g, o.json, skipped, &nskipped);
			if (skipped)
				fclose(skipped);
			if (rc)
				goto out;
		}
	}
	hk_recognizer_params rp;
	hk_recognizer_default_params(&rp);
	rp.engine = e;
	rp.gallery = g;
	rp.store = st;
	rp.source = HK_SOURCE_STREAM;
	if (o.claim) {
		rp.mode = HK_DECIDE_VERIFY;
		rate_is_fpir = 0;
		rp.claimed_subject = o.claim;
	}
	if (o.fpir > 0)
		rp.target_rate = o.fpir;
	if (o.threshold != 0)
		rp.threshold = o.threshold;
	if (o.best_k)
		rp.best_k = (uint32_t)o.best_k;
	rp.aggregate = o.aggregate;
	rp.detect_tiles = o.tiles;
	if (o.lost_after > 0)
		rp.lost_after_us = (int64_t)(o.lost_after * 1e6);
	memcpy(rp.roi, o.roi, sizeof rp.roi);
	if ((s = hk_recognizer_create(&rp, &r)) != HK_OK) {
		fprintf(stderr, "herken watch: %s (%s)\n", esc(hk_last_error()), hk_status_str(s));
		rc = exit_for(s);
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	hk_event ev[64];
	size_t n = 0;
	int64_t t = 0, next_t = INT64_MIN, last_t = -1;
	uint64_t frames = 0, skipped = 0, failed = 0;
	uint32_t end_reason = HK_END_SOURCE_ENDED;
	for (;;) {
		if (interrupted)
			break;
		hk_frame *fr = NULL;
		if ((s = hk_frames_next(src, &fr)) != HK_OK || !fr) {
			if (s != HK_OK) {
				fprintf(stderr, "herken watch: %s\n", esc(hk_last_error()));
				end_reason = HK_END_SOURCE_ERROR;
				failed++;
			}
			break;
		}
		if (fr->status != HK_OK) {
			/* Mid-stream failure: say so; a stalled or ended stream
			 * delivers nothing more, so the loop ends at the next call. */
			failed++;
			end_reason = HK_END_SOURCE_ERROR;
			if (o.json) {
				printf("{\"event\":\"source-error\",\"frame\":");
				json_str(stdout, fr->name);
				printf(",\"status\":\"%s\",\"message\":", hk_status_str(fr->status));
				json_str(stdout, fr->error);
				puts("}");
			} else {
				printf("source error at %s: %s\n", esc(fr->name), esc(fr->error));
			}
			fflush(stdout);
			hk_frames_release(src, fr);
			continue;
		}
		/* Video time; a frame without one (photos) counts at 25 fps. */
		t = fr->pts_us >= 0 ? fr->pts_us : (int64_t)fr->id * 40000;
		if (t < last_t) /* a restarted clock: the recogniser ends the visits */
			next_t = INT64_MIN;
		last_t = t;
		if (o.max_fps > 0) {
			if (t < next_t) {
				skipped++;
				hk_frames_release(src, fr);
				continue;
			}
			int64_t step = (int64_t)(1e6 / o.max_fps);
			next_t = (next_t == INT64_MIN || t - next_t > step ? t : next_t) + step;
		}
		s = hk_recognizer_push_frame(r, &fr->image, t, ev, 64, &n);
		hk_frames_release(src, fr);
		frames++;
		print_all(ev, n, o.json);
		while (hk_recognizer_pending(r) && hk_recognizer_poll(r, ev, 64, &n) == HK_OK && n)
			print_all(ev, n, o.json);
		if (s != HK_OK) {
			fprintf(stderr, "herken watch: %s (%s)\n", esc(hk_last_error()), hk_status_str(s));
			rc = exit_for(s);
			break;
		}
	}
	s = hk_recognizer_end(r, t, end_reason, ev, 64, &n);
	print_all(ev, n, o.json);
	hk_frames_stats fs;
	hk_recognizer_stats rs;
	hk_frames_get_stats(src, &fs);
	hk_recognizer_get_stats(r, &rs);
	fprintf(stderr,
	        "herken watch: %llu frames processed (%llu skipped by --max-fps, %llu dropped by "
	        "the source, %llu source errors), %llu faces (%llu usable, %llu embedded), %llu "
	        "visits, %llu queries; ms per frame: detect %.1f, quality %.2f, embed %.1f, "
	        "match %.2f\n",
	        (unsigned long long)frames, (unsigned long long)skipped,
	        (unsigned long long)fs.dropped, (unsigned long long)failed,
	        (unsigned long long)rs.faces, (unsigned long long)rs.usable,
	        (unsigned long long)rs.embedded, (unsigned long long)rs.visits,
	        (unsigned long long)rs.queries, frames ? rs.detect_ns / 1e6 / frames : 0.0,
	        frames ? rs.quality_ns / 1e6 / frames : 0.0,
	        frames ? rs.embed_ns / 1e6 / frames : 0.0, frames ? rs.match_ns / 1e6 / frames : 0.0);
	if (!rc && s != HK_OK)
		rc = exit_for(s);
	if (!rc && end_reason == HK_END_SOURCE_ERROR)
		rc = HK_EXIT_SOURCE;
out:
	hk_recognizer_destroy(r);
	hk_frames_destroy(src);
	hk_gallery_destroy(g);
	if (st)
		hk_store_close(st);
	hk_engine_destroy(e);
	return rc;
}
