/* herken detect / embed / verify / identify / models: the recognition
 * pipeline on files. Exit codes as in cli.h; --json output is one JSON
 * object on stdout, errors and progress go to stderr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "herken.h"

#define MAX_FACES 256


/* ---- shared option handling ---------------------------------------------- */

typedef struct opts {
	hk_engine_params ep;
	int json;
	int all;               /* embed: every face, not just the largest */
	float threshold;       /* verify/identify; NAN = calibrated (--fmr / --fpir) */
	double fmr, fpir;      /* verify --fmr, identify --fpir (0: HK_DEFAULT_*) */
	const char *draw;      /* detect --draw OUT.png */
	const char *gallery;   /* identify --gallery DIR */
	long top;              /* identify --top K */
	const char *frames;    /* identify --frames DIR|LIST|BATCH|- */
	uint32_t frame_w, frame_h; /* --frame-size WxH for raw RGB24 on stdin */
	long face;             /* verify --face N (-1: largest) */
	int nfiles;
	char **files;
} opts;

static const char engine_help[] =
    "engine options:\n"
    "  --models DIR        model directory (default: $HERKEN_MODELS, else the installed\n"
    "                      models, else .cache/models; see hk_model_dir)\n"
    "  --detector NAME     sparse (default) or dense full-range detector\n"
    "  --score T           detection score threshold (default 0.6)\n"
    "  --min-face PX       quality floor: smallest usable face side (default 16)\n"
    "  --no-onet           align on the detector's keypoints instead of O-Net's\n"
    "  --no-flip           do not add the mirrored chip's embedding\n"
    "  --no-rescue         no second look when no face reaches the threshold\n";

static int parse_float(const char *s, float lo, float hi, float *out)
{
	double v;
	if (cli_double(s, lo, hi, &v))
		return -1;
	*out = (float)v;
	return 0;
}

/* Parses argv (argv[0] = command); returns -1 after printing a usage error,
 * 1 when --help was printed, 0 otherwise. `allowed` lists the command's own
 * options. */
static int parse_opts(int argc, char **argv, const char *usage, const char *allowed,
                      opts *o)
{
	memset(o, 0, sizeof *o);
	hk_engine_default_params(&o->ep);
	o->threshold = NAN;
	o->top = 5;
	o->face = -1;
	o->files = calloc((size_t)argc, sizeof *o->files);
	if (!o->files)
		return -1;
	const char *cmd = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 0, bad = 0;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("%s\n%s", usage, engine_help);
			return 1;
		} else if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				o->files[o->nfiles++] = argv[i];
			break;
		} else if (a[0] != '-' || !a[1]) {
			o->files[o->nfiles++] = argv[i];
			continue;
		} else if (!strcmp(a, "--json") && strstr(allowed, "json")) {
			o->json = 1;
		} else if (!strcmp(a, "--all") && strstr(allowed, "all")) {
			o->all = 1;
		} else if (!strcmp(a, "--no-onet")) {
			o->ep.onet = HK_OFF;
		} else if (!strcmp(a, "--no-flip")) {
			o->ep.flip = HK_OFF;
		} else if (!strcmp(a, "--no-rescue")) {
			o->ep.rescue = HK_OFF;
		} else if (!strcmp(a, "--models")) {
			takes = 1;
			o->ep.model_dir = val;
		} else if (!strcmp(a, "--detector")) {
			takes = 1;
			if (val && !strcmp(val, "dense"))
				o->ep.detector = HK_DETECTOR_DENSE;
			else if (val && !strcmp(val, "sparse"))
				o->ep.detector = HK_DETECTOR_SPARSE;
			else
				bad = 1;
		} else if (!strcmp(a, "--score")) {
			takes = 1;
			bad = !val || parse_float(val, 0.01f, 0.99f, &o->ep.score_threshold);
		} else if (!strcmp(a, "--min-face")) {
			takes = 1;
			bad = !val || parse_float(val, 1, 1e4f, &o->ep.min_face);
		} else if (!strcmp(a, "--threshold") && strstr(allowed, "threshold")) {
			takes = 1;
			bad = !val || parse_float(val, -1, 1, &o->threshold);
		} else if ((!strcmp(a, "--fmr") && strstr(allowed, "fmr")) ||
		           (!strcmp(a, "--fpir") && strstr(allowed, "fpir"))) {
			takes = 1;
			double *dst = a[3] == 'm' ? &o->fmr : &o->fpir;
			char *end = NULL;
			errno = 0;
			*dst = val ? strtod(val, &end) : 0;
			bad = !val || errno || end == val || *end || !(*dst > 0 && *dst < 1);
		} else if (!strcmp(a, "--draw") && strstr(allowed, "draw")) {
			takes = 1;
			o->draw = val;
		} else if (!strcmp(a, "--gallery") && strstr(allowed, "gallery")) {
			takes = 1;
			o->gallery = val;
		} else if (!strcmp(a, "--face") && strstr(allowed, "face")) {
			takes = 1;
			float t;
			bad = !val || parse_float(val, 0, MAX_FACES - 1, &t) || t != floorf(t);
			if (!bad)
				o->face = (long)t;
		} else if (!strcmp(a, "--frames") && strstr(allowed, "frames")) {
			takes = 1;
			o->frames = val;
		} else if (!strcmp(a, "--frame-size") && strstr(allowed, "frames")) {
			takes = 1;
			unsigned w = 0, h = 0;
			char c = 0;
			bad = !val || sscanf(val, "%ux%u%c", &w, &h, &c) != 2 || !w || !h ||
			      w > 16384 || h > 16384 || strspn(val, "0123456789x") != strlen(val);
			o->frame_w = w;
			o->frame_h = h;
		} else if (!strcmp(a, "--top") && strstr(allowed, "top")) {
			takes = 1;
			float t;
			bad = !val || parse_float(val, 1, HK_CANDIDATES_MAX, &t) || t != floorf(t);
			if (!bad)
				o->top = (long)t;
		} else {
			fprintf(stderr, "herken %s: unknown option '%s'\n%s\n", cmd, esc(a), usage);
			return -1;
		}
		if (takes && !val) {
			fprintf(stderr, "herken %s: %s needs a value\n%s\n", cmd, a, usage);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "herken %s: bad value '%s' for %s\n", cmd, esc(val), esc(a));
			return -1;
		}
		i += takes;
	}
	return 0;
}

static int make_engine(const char *cmd, const opts *o, hk_engine **e)
{
	hk_status st = hk_engine_create(&o->ep, e);
	if (st == HK_OK)
		return HK_EXIT_OK;
	fprintf(stderr, "herken %s: cannot load the models: %s\n", cmd, esc(hk_last_error()));
	return HK_STATUS_PRIMARY(st) == HK_E_NOMEM || HK_STATUS_PRIMARY(st) == HK_E_BACKEND
	           ? HK_EXIT_INTERNAL
	           : HK_EXIT_INPUT;
}

/* What a command holds beside its options and engine, released by end():
 * the faces of one image, embeddings (wiped before they are freed) and the
 * calibration its decisions use. */
typedef struct work {
	hk_face *faces;     /* MAX_FACES                              */
	hk_frame_face *ff;  /* MAX_FACES: the recogniser's view of one photo */
	hk_event *ended;    /* MAX_FACES: its visit-ended events      */
	float *emb;         /* nemb x HK_EMBED_DIM, NULL when nemb = 0 */
	size_t nemb;
	hk_calib *cal;      /* NULL until decision_setup()            */
	hk_recognizer *rec; /* stills; made by each command           */
} work;

static void end(opts *o, hk_engine *e, work *w)
{
	if (w->emb)
		sodium_memzero(w->emb, sizeof *w->emb * HK_EMBED_DIM * w->nemb);
	free(w->emb);
	free(w->faces);
	free(w->ff);
	if (w->ended)
		sodium_memzero(w->ended, sizeof *w->ended * MAX_FACES);
	free(w->ended);
	hk_recognizer_destroy(w->rec);
	hk_calib_destroy(w->cal);
	hk_engine_destroy(e);
	free(o->files);
}

/* A command's start: parse the options, check the arguments (check returns
 * a message for a usage error, or NULL), load the engine and allocate *w
 * for nemb embeddings. Returns -1 to go on, else the exit code, with
 * everything released. */
typedef const char *(*args_check)(const opts *o);

static int begin(int argc, char **argv, const char *usage, const char *allowed,
                 args_check check, size_t nemb, opts *o, hk_engine **e, work *w)
{
	memset(w, 0, sizeof *w);
	int r = parse_opts(argc, argv, usage, allowed, o);
	const char *msg = r ? NULL : check(o);
	if (!r && msg)
		fprintf(stderr, "herken %s: %s\n%s\n", argv[0], msg, usage);
	/* embed runs hk_embed_many, which overlaps the models itself: one
	 * oneDNN thread each (for one file too, so that a photo's embedding
	 * does not depend on how many were given) */
	if (!r && !msg && !strcmp(argv[0], "embed") && !o->ep.threads)
		o->ep.threads = 1;
	int rc = r > 0 ? HK_EXIT_OK : r < 0 || msg ? HK_EXIT_USAGE : make_engine(argv[0], o, e);
	if (rc == HK_EXIT_OK && !r && !msg) {
		w->faces = malloc(sizeof *w->faces * MAX_FACES);
		w->ff = malloc(sizeof *w->ff * MAX_FACES);
		w->ended = malloc(sizeof *w->ended * MAX_FACES);
		w->emb = nemb ? malloc(sizeof *w->emb * HK_EMBED_DIM * nemb) : NULL;
		w->nemb = nemb;
		if (w->faces && w->ff && w->ended && (w->emb || !nemb))
			return -1;
		fprintf(stderr, "herken %s: out of memory\n", argv[0]);
		rc = HK_EXIT_INTERNAL;
	}
	end(o, *e, w);
	return rc;
}

/* ---- photos through the recogniser -------------------------------------- */

/* A recogniser for photos (stills: each photo is its own set of visits,
 * decided in the same call) over gallery g (NULL: detect and assess
 * only). Its usable-face rule is hk_face_quality's, the same as for the
 * frames of `herken watch`. claim: 1:1 against that subject. */
static hk_status stills_recognizer(const hk_engine *e, const hk_gallery *g, const char *claim,
                                   const opts *o, hk_recognizer **r)
{
	hk_recognizer_params rp;
	hk_recognizer_default_params(&rp);
	rp.engine = e;
	rp.gallery = g;
	rp.stills = 1;
	rp.max_faces = MAX_FACES;
	rp.source = HK_SOURCE_FILE;
	if (o) {
		rp.top_k = (uint32_t)o->top;
		rp.mode = claim ? HK_DECIDE_VERIFY : HK_DECIDE_IDENTIFY;
		rp.claimed_subject = claim;
		rp.target_rate = claim ? o->fmr : o->fpir;
		/* the recogniser takes any non-zero threshold as given */
		if (!isnan(o->threshold))
			rp.threshold = o->threshold != 0 ? o->threshold : -FLT_MIN;
	}
	return hk_recognizer_create(&rp, r);
}

/* Pushes one photo: its visit-ended events (one per face in the region,
 * face order) into ended[MAX_FACES], *nended; its faces into ff[MAX_FACES],
 * *nff (found: may exceed MAX_FACES). */
static hk_status stills_push(hk_recognizer *r, const hk_image *img, hk_event *ended,
                             size_t *nended, hk_frame_face *ff, size_t *nff)
{
	hk_event ev[8];
	size_t n = 0;
	*nended = *nff = 0;
	hk_status st = hk_recognizer_push_frame(r, img, 0, ev, 8, &n);
	for (;;) {
		for (size_t i = 0; i < n; i++)
			if (ev[i].type == HK_EV_VISIT_ENDED && ended && *nended < MAX_FACES)
				ended[(*nended)++] = ev[i];
		if (!hk_recognizer_pending(r) || hk_recognizer_poll(r, ev, 8, &n) || !n)
			break;
	}
	sodium_memzero(ev, sizeof ev);
	if (!st)
		st = hk_recognizer_frame_faces(r, ff, MAX_FACES, nff);
	return st;
}

/* The face of ff[0..n) that joined visit track, or NULL. */
static const hk_frame_face *face_of_visit(const hk_frame_face *ff, size_t n, uint32_t track)
{
	for (size_t k = 0; k < n && k < MAX_FACES; k++)
		if (ff[k].track == track)
			return &ff[k];
	return NULL;
}

static size_t count_usable(const hk_frame_face *ff, size_t n)
{
	size_t u = 0;
	for (size_t k = 0; k < n && k < MAX_FACES; k++)
		u += ff[k].quality.reasons == 0;
	return u;
}

/* "3 faces found: yaw; too-small,blur; blur" into buf. */
static const char *why_unusable(const hk_frame_face *ff, size_t n, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "no usable face: %zu found", n);
	for (size_t k = 0; k < n && k < MAX_FACES && o < len; k++) {
		char why[128];
		hk_quality_reasons_str(ff[k].quality.reasons, why, sizeof why);
		o += (size_t)snprintf(buf + o, len - o, "%s%s", k ? "; " : " (", why);
	}
	if (n && o < len)
		snprintf(buf + o, len - o, ")");
	return buf;
}

hk_status hk_cli_subject_embed(const hk_engine *e, const hk_image *img, hk_face *face,
                               float emb[HK_EMBED_DIM], char *why, size_t len)
{
	hk_frame_face *ff = malloc(sizeof *ff * MAX_FACES);
	hk_recognizer *r = NULL;
	size_t nff = 0, ne = 0;
	hk_status st = ff ? stills_recognizer(e, NULL, NULL, NULL, &r) : HK_E_NOMEM;
	if (!st)
		st = stills_push(r, img, NULL, &ne, ff, &nff);
	const hk_frame_face *s = NULL;
	for (size_t k = 0; !st && k < nff && k < MAX_FACES; k++)
		if (ff[k].subject)
			s = &ff[k];
	if (!st && !s) {
		why_unusable(ff, nff, why, len);
		st = HK_E_NOT_FOUND;
	} else if (!st) {
		st = hk_engine_embed(e, img, &s->face, 1, emb);
	}
	if (st && HK_STATUS_PRIMARY(st) != HK_E_NOT_FOUND)
		snprintf(why, len, "%s", hk_last_error());
	if (!st && face)
		*face = s->face;
	hk_recognizer_destroy(r);
	free(ff);
	return st;
}

static int exit_for(hk_status st)
{
	switch (HK_STATUS_PRIMARY(st)) {
	case HK_OK: return HK_EXIT_OK;
	case HK_E_NOMEM:
	case HK_E_BACKEND:
	case HK_E_STATE: return HK_EXIT_INTERNAL;
	case HK_E_POLICY:
	case HK_E_CONSENT: return HK_EXIT_REFUSED;
	default: return HK_EXIT_INPUT;
	}
}

static void progress(const char *what, size_t done, size_t total)
{
	static int tty = -1;
	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty || total < 4)
		return;
	fprintf(stderr, "\r%s %zu/%zu", what, done, total);
	if (done == total)
		fputs("\n", stderr);
	fflush(stderr);
}

/* ---- JSON output ---------------------------------------------------------- */


static const char *reject_name(uint32_t r)
{
	return r == HK_FACE_TOO_SMALL ? "too_small" : r ? "unknown" : NULL;
}

/* The face's fields, without the enclosing braces (callers append).
 * "usable" is the recogniser's rule (hk_face_quality: no reason set);
 * "reject" the detector's own size floor. */
static void json_face_fields(FILE *f, const hk_frame_face *ff)
{
	const hk_face *fc = &ff->face;
	fprintf(f, "\"box\":[%.2f,%.2f,%.2f,%.2f],\"score\":%.5f,\"keypoints\":[", fc->box[0],
	        fc->box[1], fc->box[2], fc->box[3], fc->score);
	for (int k = 0; k < 6; k++)
		fprintf(f, "%s[%.2f,%.2f]", k ? "," : "", fc->keypoints[k][0], fc->keypoints[k][1]);
	fputs("],\"landmarks\":[", f);
	for (int k = 0; k < 5; k++)
		fprintf(f, "%s[%.2f,%.2f]", k ? "," : "", fc->landmarks[k][0], fc->landmarks[k][1]);
	fprintf(f, "],\"landmark_source\":\"%s\",\"landmark_score\":%.5f,\"usable\":%s,\"reject\":",
	        fc->landmark_source == HK_LANDMARKS_ONET ? "onet" : "detector", fc->landmark_score,
	        ff->quality.reasons == 0 ? "true" : "false");
	if (fc->reject)
		json_str(f, reject_name(fc->reject));
	else
		fputs("null", f);
	char why[256];
	hk_quality_reasons_str(ff->quality.reasons, why, sizeof why);
	const hk_quality *q = &ff->quality;
	fprintf(f, ",\"rescued\":%s,\"quality\":{\"score\":%.3f,\"reasons\":",
	        fc->flags & HK_FACE_RESCUED ? "true" : "false", q->score);
	json_str(f, why);
	fprintf(f, ",\"side\":%.1f,\"yaw\":%.1f,\"pitch\":%.1f,\"roll\":%.1f,\"sharpness\":%.1f,"
	           "\"brightness\":%.1f},\"subject\":%s",
	        q->side, q->yaw, q->pitch, q->roll, q->sharpness, q->brightness,
	        ff->subject ? "true" : "false");
}

static void json_face(FILE *f, const hk_frame_face *fc)
{
	fputc('{', f);
	json_face_fields(f, fc);
	fputc('}', f);
}

static void json_vec(FILE *f, const float *v, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%.7g", i ? "," : "", v[i]);
	fputc(']', f);
}

static void text_face(FILE *f, size_t i, const hk_frame_face *ff)
{
	const hk_face *fc = &ff->face;
	fprintf(f, "  face %zu: box %.0f,%.0f %.0fx%.0f  score %.3f%s  landmarks %s  quality %.2f", i,
	        fc->box[0], fc->box[1], fc->box[2] - fc->box[0], fc->box[3] - fc->box[1], fc->score,
	        fc->flags & HK_FACE_RESCUED ? " (rescued)" : "",
	        fc->landmark_source == HK_LANDMARKS_ONET ? "O-Net" : "detector", ff->quality.score);
	if (ff->quality.reasons) {
		char why[256];
		hk_quality_reasons_str(ff->quality.reasons, why, sizeof why);
		fprintf(f, "  NOT USABLE: %s", why);
	}
	fputc('\n', f);
}

/* ---- image loading ---------------------------------------------------------- */

static hk_status load_image(const char *cmd, const char *path, hk_image *img)
{
	hk_status st = hk_image_load(path, img);
	if (st)
		fprintf(stderr, "herken %s: %s: %s\n", cmd, esc(path), esc(hk_last_error()));
	return st;
}

/* ---- detect ----------------------------------------------------------------- */

static const char detect_usage[] =
    "usage: herken detect IMG... [--json] [--draw OUT.png] [engine options]\n"
    "Find every face: box, detector score, 6 keypoints, 5 alignment landmarks, and\n"
    "its quality (size, detector score, pose, sharpness, exposure): a face is usable\n"
    "when no quality reason is set, the rule `herken watch` and every other command\n"
    "apply (the photo goes through the recogniser as a video frame does); the\n"
    "subject is the face `embed` and `enroll` would take.\n"
    "  --json          one JSON object: {\"images\":[{\"path\",\"width\",\"height\",\"faces\":[...]}\n"
    "                  or {\"path\",\"error\"}]}\n"
    "  --draw OUT.png  write the (single) image with boxes and landmarks drawn\n"
    "exit: 0 a usable face in every image, 1 some image without one,\n"
    "      2 usage, 3 unreadable image or models, 4 internal error";

static const char *detect_check(const opts *o)
{
	return !o->nfiles                   ? "no image given"
	       : o->draw && o->nfiles != 1 ? "--draw takes exactly one image"
	                                   : NULL;
}

int hk_cli_detect(int argc, char **argv)
{
	opts o;
	hk_engine *e = NULL;
	work w;
	int rc = begin(argc, argv, detect_usage, "json draw", detect_check, 0, &o, &e, &w);
	if (rc >= 0)
		return rc;
	if (stills_recognizer(e, NULL, NULL, NULL, &w.rec)) {
		fprintf(stderr, "herken detect: %s\n", esc(hk_last_error()));
		end(&o, e, &w);
		return HK_EXIT_INTERNAL;
	}
	hk_frame_face *faces = w.ff;
	int worst = HK_EXIT_OK;
	if (o.json)
		fputs("{\"images\":[", stdout);
	for (int i = 0; i < o.nfiles; i++) {
		hk_image img;
		size_t n = 0, ne = 0;
		hk_status st = load_image("detect", o.files[i], &img);
		if (!st) {
			st = stills_push(w.rec, &img, NULL, &ne, faces, &n);
			if (st)
				fprintf(stderr, "herken detect: %s: %s\n", esc(o.files[i]), esc(hk_last_error()));
		}
		size_t nw = n < MAX_FACES ? n : MAX_FACES, usable = count_usable(faces, n);
		if (st) {
			int ec = exit_for(st);
			worst = ec > worst ? ec : worst;
		} else if (!usable && worst == HK_EXIT_OK) {
			worst = HK_EXIT_NOMATCH;
		}
		if (o.json) {
			fputs(i ? ",{\"path\":" : "{\"path\":", stdout);
			json_str(stdout, o.files[i]);
			if (st) {
				fputs(",\"error\":", stdout);
				json_str(stdout, hk_last_error());
			} else {
				printf(",\"width\":%u,\"height\":%u,\"faces\":[", img.width, img.height);
				for (size_t k = 0; k < nw; k++) {
					if (k)
						fputc(',', stdout);
					json_face(stdout, &faces[k]);
				}
				fputc(']', stdout);
			}
			fputc('}', stdout);
		} else if (!st) {
			printf("%s: %zu face%s (%zu usable), %ux%u\n", esc(o.files[i]), n, n == 1 ? "" : "s",
			       usable, img.width, img.height);
			for (size_t k = 0; k < nw; k++)
				text_face(stdout, k, &faces[k]);
		}
		if (!st && o.draw) {
			cli_draw_faces(&img, faces, nw);
			if (cli_write_png(o.draw, &img)) {
				fprintf(stderr, "herken detect: cannot write %s: %s\n", esc(o.draw), strerror(errno));
				worst = HK_EXIT_INPUT;
			}
		}
		if (!st || img.data)
			hk_image_free(&img);
		progress("detect", (size_t)i + 1, (size_t)o.nfiles);
	}
	if (o.json)
		fputs("]}\n", stdout);
	end(&o, e, &w);
	return worst;
}

/* ---- embed ------------------------------------------------------------------ */

static const char embed_usage[] =
    "usage: herken embed IMG... [--all] [--json] [engine options]\n"
    "Print the 192-d L2-normalised embedding of the largest usable face of each image\n"
    "(--all: of every usable face). Text: one line per face, 'PATH<TAB>FACE<TAB>v0 v1 ...'.\n"
    "  --json  {\"images\":[{\"path\",\"faces\":[{...face..., \"embedding\":[192]}]} or {\"path\",\"error\"}]}\n"
    "exit: 0 every image gave an embedding, 1 some image had no usable face,\n"
    "      2 usage, 3 unreadable image or models, 4 internal error";

static const char *embed_check(const opts *o)
{
	return o->nfiles ? NULL : "no image given";
}

/* One image's lines or JSON object, from hk_embed_many (called in input
 * order on the main thread). */
typedef struct embed_out {
	const opts *o;
	int worst;
	size_t done, total;
} embed_out;

static int embed_result(void *user, const hk_embed_result *r)
{
	embed_out *eo = user;
	const opts *o = eo->o;
	/* HK_E_NOT_FOUND on a decoded image: no usable face, not an error */
	int none = HK_STATUS_PRIMARY(r->status) == HK_E_NOT_FOUND && r->width > 0;
	hk_status st = none ? HK_OK : r->status;
	hk_frame_face ff[MAX_FACES];
	for (size_t k = 0; k < r->nfaces && k < MAX_FACES; k++)
		ff[k] = (hk_frame_face){r->faces[k].face, r->faces[k].quality, 0, r->faces[k].subject};
	if (st) {
		fprintf(stderr, "herken embed: %s: %s\n", esc(r->name), esc(r->error));
	} else if (!r->embedded) {
		char why[1024];
		fprintf(stderr, "herken embed: %s: %s\n", esc(r->name),
		        why_unusable(ff, r->found, why, sizeof why));
	}
	int ec = st ? exit_for(st) : r->embedded ? HK_EXIT_OK : HK_EXIT_NOMATCH;
	eo->worst = ec > eo->worst ? ec : eo->worst;
	if (o->json) {
		fputs(r->seq ? ",{\"path\":" : "{\"path\":", stdout);
		json_str(stdout, r->name);
		if (st) {
			fputs(",\"error\":", stdout);
			json_str(stdout, r->error);
		} else {
			fputs(",\"faces\":[", stdout);
			for (size_t k = 0, m = 0; k < r->nfaces; k++) {
				if (!r->faces[k].embedding)
					continue;
				fputs(m++ ? ",{" : "{", stdout);
				json_face_fields(stdout, &ff[k]);
				fputs(",\"embedding\":", stdout);
				json_vec(stdout, r->faces[k].embedding, HK_EMBED_DIM);
				fputc('}', stdout);
			}
			fputc(']', stdout);
		}
		fputc('}', stdout);
	} else {
		for (size_t k = 0, m = 0; !st && k < r->nfaces; k++) {
			if (!r->faces[k].embedding)
				continue;
			printf("%s\t%zu\t", esc(r->name), m++);
			for (size_t d = 0; d < HK_EMBED_DIM; d++)
				printf("%s%.7g", d ? " " : "", r->faces[k].embedding[d]);
			putchar('\n');
		}
	}
	sodium_memzero(ff, sizeof ff);
	progress("embed", ++eo->done, eo->total);
	return 0;
}

int hk_cli_embed(int argc, char **argv)
{
	opts o;
	hk_engine *e = NULL;
	work w;
	int rc = begin(argc, argv, embed_usage, "json all", embed_check, 0, &o, &e, &w);
	if (rc >= 0)
		return rc;
	/* The files as a frame source (read and decoded by its threads, in the
	 * order given), detected, aligned and embedded as a pipeline; each
	 * face's usability is the recogniser's quality rule and the subject
	 * its choice among the usable faces, as for `herken detect`. */
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
	hk_frames *src = NULL;
	embed_out eo = {.o = &o, .worst = HK_EXIT_OK, .total = (size_t)o.nfiles};
	if (hk_frames_open_list((const char *const *)o.files, (size_t)o.nfiles, &fp, &src)) {
		fprintf(stderr, "herken embed: %s\n", esc(hk_last_error()));
		end(&o, e, &w);
		return HK_EXIT_INTERNAL;
	}
	hk_embed_params jp;
	hk_embed_default_params(&jp);
	jp.select = o.all ? HK_EMBED_ALL : HK_EMBED_SUBJECT;
	jp.use_quality = 1;
	jp.max_faces = MAX_FACES;
	jp.on_result = embed_result;
	jp.user = &eo;
	if (o.json)
		fputs("{\"images\":[", stdout);
	hk_status st = hk_embed_many(e, src, &jp, NULL);
	if (o.json)
		fputs("]}\n", stdout);
	if (st) {
		fprintf(stderr, "herken embed: %s\n", esc(hk_last_error()));
		eo.worst = HK_EXIT_INTERNAL;
	}
	hk_frames_destroy(src);
	end(&o, e, &w);
	return eo.worst;
}

/* ---- decisions at stated rates ------------------------------------------------ */

/* The threshold a decision uses: --threshold as given, else the one the
 * calibration shipped for the engine's embedder gives for the target rate
 * (FMR for 1:1; FPIR for 1:N with n gallery templates). *cal (NULL when
 * it could not be loaded and --threshold was given) reports the rate of
 * each decision. Never a silent fallback to a fixed threshold. */
static int decision_setup(const char *cmd, const hk_engine *e, const opts *o, int identify,
                          uint64_t n, hk_calib **cal, float *thr, double *target)
{
	*cal = NULL;
	*target = identify ? (o->fpir > 0 ? o->fpir : HK_DEFAULT_FPIR)
	                   : (o->fmr > 0 ? o->fmr : HK_DEFAULT_FMR);
	hk_status st = hk_calib_for_engine(e, cal);
	if (!isnan(o->threshold)) {
		*thr = o->threshold;
		if (st)
			fprintf(stderr, "herken %s: %s (decisions are reported without their rate)\n",
			        cmd, esc(hk_last_error()));
		return HK_EXIT_OK;
	}
	if (!st)
		st = identify ? hk_calib_score_at_fpir(*cal, *target, n, thr)
		              : hk_calib_score_at_fmr(*cal, *target, thr);
	if (st) {
		fprintf(stderr, "herken %s: %s\n", cmd, esc(hk_last_error()));
		hk_calib_destroy(*cal);
		*cal = NULL;
		return exit_for(st);
	}
	return HK_EXIT_OK;
}

/* FMR (1:1) or FPIR for n templates (1:N) at score; NAN without a calibration. */
static double rate_of(const hk_calib *cal, int identify, float score, uint64_t n)
{
	double r = NAN;
	if (cal && (identify ? hk_calib_fpir(cal, score, n, &r) : hk_calib_fmr(cal, score, &r)))
		r = NAN;
	return r;
}

static void json_rate(FILE *f, double r)
{
	if (isnan(r))
		fputs("null", f);
	else
		fprintf(f, "%.3g", r);
}

/* ---- verify ----------------------------------------------------------------- */

static const char verify_usage[] =
    "usage: herken verify A B [--face N] [--fmr R | --threshold T] [--json] [engine options]\n"
    "1:1 check: is the person of photo A (its largest face, or face N as numbered by\n"
    "`herken detect A`) in photo B? Every usable face of B is compared; the best\n"
    "score decides at the threshold of a stated false-match rate: --fmr R (default\n"
    "1e-4: about 1 stranger in 10,000 would be taken for this person), through the\n"
    "calibration shipped for the embedder (herken.h, Calibration); --threshold T\n"
    "overrides it. The FMR the best score stands at is reported.\n"
    "  --json  {\"a\":{\"path\",\"face_index\",\"face\"},\"b\":{\"path\",\"faces\":[{...,\"match_score\"}]},\n"
    "           \"best_face\",\"score\",\"threshold\",\"match\",\"threshold_from\",\"target_fmr\",\"fmr\"}\n"
    "exit: 0 same person, 1 different people, 2 usage,\n"
    "      3 unreadable image, no usable face, or models missing, 4 internal error";

static const char *verify_check(const opts *o)
{
	return o->nfiles == 2 ? NULL : "needs exactly two images";
}

int hk_cli_verify(int argc, char **argv)
{
	opts o;
	hk_engine *e = NULL;
	work w;
	int rc = begin(argc, argv, verify_usage, "json threshold fmr face", verify_check, 1, &o, &e,
	               &w);
	if (rc >= 0)
		return rc;
	float thr = 0;
	double target = 0;
	rc = decision_setup("verify", e, &o, 0, 1, &w.cal, &thr, &target);
	hk_calib *cal = w.cal;
	hk_frame_face fa, *faces = malloc(sizeof *faces * MAX_FACES);
	const hk_event *dec[MAX_FACES];
	float scores[MAX_FACES];
	size_t nb = 0, ia = 0, best = 0;
	hk_gallery *g = NULL;
	hk_recognizer *rb = NULL;
	if (!faces)
		rc = HK_EXIT_INTERNAL;
	/* A: its subject (or face --face N) becomes the claimed identity "A" of
	 * a one-subject gallery; every face of B is then a 1:1 decision. */
	for (int i = 0; i < 2 && !rc; i++) {
		hk_image img;
		hk_status st = load_image("verify", o.files[i], &img);
		if (st) {
			rc = exit_for(st);
			break;
		}
		size_t n = 0, ne = 0;
		if (i == 0) {
			hk_gallery_params gp;
			hk_gallery_default_params(&gp);
			gp.dim = HK_EMBED_DIM;
			st = stills_recognizer(e, NULL, NULL, NULL, &w.rec);
			if (!st)
				st = stills_push(w.rec, &img, NULL, &ne, w.ff, &n);
			ia = n;
			for (size_t k = 0; !st && k < n && k < MAX_FACES; k++)
				if (o.face >= 0 ? (long)k == o.face : (int)w.ff[k].subject)
					ia = k;
			if (!st && ia == n) {
				char why[1024];
				fprintf(stderr, "herken verify: %s: %s\n", esc(o.files[i]),
				        o.face >= 0 ? "no face with that --face index (see herken detect)"
				                    : why_unusable(w.ff, n, why, sizeof why));
				rc = HK_EXIT_INPUT;
			} else if (!st) {
				fa = w.ff[ia];
				st = hk_engine_embed(e, &img, &fa.face, 1, w.emb);
				if (!st)
					st = hk_gallery_create(&gp, &g);
				if (!st)
					st = hk_gallery_add(g, "A", w.emb, NULL);
				if (!st)
					st = stills_recognizer(e, g, "A", &o, &rb);
			}
		} else {
			/* visits end in face order: the decided ones are B's usable faces */
			st = stills_push(rb, &img, w.ended, &ne, w.ff, &n);
			for (size_t k = 0; !st && k < ne; k++) {
				const hk_frame_face *f = face_of_visit(w.ff, n, w.ended[k].track);
				if (w.ended[k].outcome == HK_OUTCOME_UNDECIDED || !f)
					continue;
				dec[nb] = &w.ended[k];
				scores[nb] = w.ended[k].score;
				faces[nb++] = *f;
			}
			if (!st && !nb) {
				char why[1024];
				fprintf(stderr, "herken verify: %s: %s\n", esc(o.files[i]),
				        why_unusable(w.ff, n, why, sizeof why));
				rc = HK_EXIT_INPUT;
			}
		}
		if (st) {
			fprintf(stderr, "herken verify: %s: %s\n", esc(o.files[i]), esc(hk_last_error()));
			rc = exit_for(st);
		}
		hk_image_free(&img);
	}
	if (!rc) {
		for (size_t k = 0; k < nb; k++)
			if (scores[k] > scores[best])
				best = k;
		float s = scores[best];
		int match = dec[best]->outcome == HK_OUTCOME_MATCH;
		double fmr = rate_of(cal, 0, s, 1);
		if (o.json) {
			fputs("{\"a\":{\"path\":", stdout);
			json_str(stdout, o.files[0]);
			printf(",\"face_index\":%zu,\"face\":", ia);
			json_face(stdout, &fa);
			fputs("},\"b\":{\"path\":", stdout);
			json_str(stdout, o.files[1]);
			fputs(",\"faces\":[", stdout);
			for (size_t k = 0; k < nb; k++) {
				fputs(k ? ",{" : "{", stdout);
				json_face_fields(stdout, &faces[k]);
				printf(",\"match_score\":%.5f}", scores[k]);
			}
			printf("]},\"best_face\":%zu,\"score\":%.5f,\"threshold\":%.4f,\"match\":%s,"
			       "\"threshold_from\":\"%s\",\"target_fmr\":",
			       best, s, thr, match ? "true" : "false",
			       isnan(o.threshold) ? "calibration" : "--threshold");
			json_rate(stdout, isnan(o.threshold) ? target : NAN);
			fputs(",\"threshold_fmr\":", stdout);
			json_rate(stdout, isnan(o.threshold) ? target : rate_of(cal, 0, thr, 1));
			fputs(",\"fmr\":", stdout);
			json_rate(stdout, fmr);
			fputs("}\n", stdout);
		} else {
			const float *ab = fa.face.box;
			printf("A %s: face %zu at %.0f,%.0f (%.0fx%.0f)\n", esc(o.files[0]), ia, ab[0], ab[1],
			       ab[2] - ab[0], ab[3] - ab[1]);
			printf("B %s: %zu usable face%s\n", esc(o.files[1]), nb, nb == 1 ? "" : "s");
			for (size_t k = 0; nb > 1 && k < nb; k++) {
				const float *b = faces[k].face.box;
				printf("  face at %.0f,%.0f (%.0fx%.0f): score %.4f%s\n", b[0], b[1], b[2] - b[0],
				       b[3] - b[1], scores[k], k == best ? "  <- best" : "");
			}
			if (isnan(o.threshold))
				printf("%s: score %.4f %s threshold %.4f (false-match rate %.2g, calibrated)\n",
				       match ? "same person" : "different people", s, match ? ">=" : "<",
				       thr, target);
			else
				printf("%s: score %.4f %s threshold %.4f (--threshold, an expert override: "
				       "FMR %.2g at this threshold)\n",
				       match ? "same person" : "different people", s, match ? ">=" : "<",
				       thr, rate_of(cal, 0, thr, 1));
			if (!isnan(fmr) && match)
				printf("about 1 stranger in %.0f scores this high (FMR %.2g at this score)\n",
				       1.0 / fmr, fmr);
			else if (!isnan(fmr))
				printf("FMR %.2g at this score: above the target, not accepted\n", fmr);
		}
		rc = match ? HK_EXIT_OK : HK_EXIT_NOMATCH;
	}
	hk_recognizer_destroy(rb);
	hk_gallery_destroy(g);
	free(faces);
	end(&o, e, &w);
	return rc;
}

/* ---- identify --------------------------------------------------------------- */

static const char identify_usage[] =
    "usage: herken identify --gallery DIR (PROBE... | --frames SPEC) [--top K]\n"
    "                       [--fpir R | --threshold T] [--json] [engine options]\n"
    "1:N search. The gallery is built in memory from DIR/<subject>/<photo> (the\n"
    "subject of each photo, as `herken detect` marks it); every usable face of each\n"
    "probe photo is a visit of its own through the recogniser (the rule and the call\n"
    "of `herken watch`) and is reported with its best K subjects (--top K, 1..16,\n"
    "default 5) and the decision at the threshold of a\n"
    "stated false-positive identification rate for the gallery's size N: --fpir R\n"
    "(default 1e-3: about 1 stranger in 1,000 taken for some customer, whatever N;\n"
    "the threshold rises with N); --threshold T overrides it.\n"
    "  --frames SPEC      probes from a frame source read with io_uring (pread\n"
    "                     fallback) and decoded in parallel: a directory, a file\n"
    "                     listing paths, a frame-batch file, or - for Y4M / raw\n"
    "                     RGB24 on stdin (then --frame-size WxH); frames stay in RAM\n"
    "  --json  {\"gallery\":{\"dir\",\"subjects\",\"templates\",\"skipped\":[{\"path\",\"error\"}]},\n"
    "           \"threshold\",\"threshold_from\",\"target_fpir\",\"probes\":[{\"path\",\"faces\":[{\"box\",\"score\",\"fpir\",\"match\",\n"
    "           \"candidates\":[{\"subject\",\"score\"}]}]} or {\"path\",\"error\"}]}\n"
    "exit: 0 some probe face matched a subject, 1 none did, 2 usage,\n"
    "      3 unreadable gallery, models missing, or some probe or frame unreadable\n"
    "        (a truncated stream too; the other probes are still searched and reported),\n"
    "      4 internal error";

/* Adds the largest face of every photo under dir/<subject>/; counts what
 * had to be skipped (reported, never fatal). */
int hk_cli_build_gallery(hk_engine *e, const char *dir, hk_gallery *g, int json,
                         FILE *skipped, size_t *nskipped)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "herken identify: cannot open gallery %s: %s\n", esc(dir), strerror(errno));
		return HK_EXIT_INPUT;
	}
	struct dirent *de;
	char **paths = NULL, **subjects = NULL;
	size_t n = 0, cap = 0;
	int rc = HK_EXIT_OK;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
		struct stat sb;
		if (stat(sub, &sb) || !S_ISDIR(sb.st_mode))
			continue;
		DIR *sd = opendir(sub);
		if (!sd)
			continue;
		struct dirent *fe;
		while ((fe = readdir(sd)) && !rc) {
			if (fe->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				char **np = realloc(paths, cap * sizeof *np), **ns;
				if (np)
					paths = np;
				ns = realloc(subjects, cap * sizeof *ns);
				if (ns)
					subjects = ns;
				if (!np || !ns) {
					rc = HK_EXIT_INTERNAL;
					break;
				}
			}
			if (asprintf(&paths[n], "%s/%s", sub, fe->d_name) < 0) {
				rc = HK_EXIT_INTERNAL;
				break;
			}
			subjects[n] = strdup(de->d_name);
			if (!subjects[n]) {
				free(paths[n]);
				rc = HK_EXIT_INTERNAL;
				break;
			}
			n++;
		}
		closedir(sd);
	}
	closedir(d);
	float emb[HK_EMBED_DIM];
	for (size_t i = 0; i < n && !rc; i++) {
		struct stat sb;
		if (stat(paths[i], &sb) || !S_ISREG(sb.st_mode))
			continue;
		hk_image img;
		char why[1024] = "";
		hk_status st = hk_image_load(paths[i], &img);
		if (!st) {
			st = hk_cli_subject_embed(e, &img, NULL, emb, why, sizeof why);
			hk_image_free(&img);
		}
		if (!st)
			st = hk_gallery_add(g, subjects[i], emb, NULL);
		if (st) {
			if (!why[0])
				snprintf(why, sizeof why, "%s", hk_last_error());
			if (!json)
				fprintf(stderr, "herken identify: gallery photo %s skipped: %s\n", esc(paths[i]),
				        esc(why));
			fputs((*nskipped)++ ? ",{\"path\":" : "{\"path\":", skipped);
			json_str(skipped, paths[i]);
			fputs(",\"error\":", skipped);
			json_str(skipped, why);
			fputc('}', skipped);
			if (HK_STATUS_PRIMARY(st) == HK_E_NOMEM)
				rc = HK_EXIT_INTERNAL;
		}
		progress("gallery", i + 1, n);
	}
	sodium_memzero(emb, sizeof emb);
	for (size_t i = 0; i < n; i++) {
		free(paths[i]);
		free(subjects[i]);
	}
	free(paths);
	free(subjects);
	if (!rc && hk_gallery_size(g) == 0) {
		fprintf(stderr, "herken identify: no usable face in gallery %s (expected DIR/<subject>/<photo>)\n",
		        esc(dir));
		rc = HK_EXIT_INPUT;
	}
	return rc;
}

static const char *identify_check(const opts *o)
{
	if (!o->gallery)
		return "--gallery DIR is required";
	if (o->frames && o->nfiles)
		return "give probe images or --frames, not both";
	return o->nfiles || o->frames ? NULL : "no probe image given";
}

int hk_cli_identify(int argc, char **argv)
{
	opts o;
	hk_engine *e = NULL;
	work w;
	int rc = begin(argc, argv, identify_usage, "json threshold fpir gallery top frames",
	               identify_check, MAX_FACES, &o, &e, &w);
	if (rc >= 0)
		return rc;
	rc = HK_EXIT_OK;
	float thr = 0;
	double target = 0;
	uint64_t ntpl = 0;
	hk_gallery_params gp;
	hk_gallery_default_params(&gp);
	gp.dim = HK_EMBED_DIM;
	hk_gallery *g = NULL;
	char *skipped_buf = NULL;
	size_t skipped_len = 0, nskipped = 0;
	FILE *skipped = open_memstream(&skipped_buf, &skipped_len);
	if (!skipped) {
		rc = HK_EXIT_INTERNAL;
	} else if (hk_gallery_create(&gp, &g)) {
		fprintf(stderr, "herken identify: %s\n", esc(hk_last_error()));
		rc = HK_EXIT_INTERNAL;
	} else {
		rc = hk_cli_build_gallery(e, o.gallery, g, o.json, skipped, &nskipped);
	}
	if (!rc) {
		ntpl = hk_gallery_size(g);
		rc = decision_setup("identify", e, &o, 1, ntpl, &w.cal, &thr, &target);
	}
	hk_status rs = rc ? HK_OK : stills_recognizer(e, g, NULL, &o, &w.rec);
	if (rs) {
		fprintf(stderr, "herken identify: %s\n", esc(hk_last_error()));
		rc = exit_for(rs);
	}
	const hk_calib *cal = w.cal;
	if (skipped)
		fclose(skipped);
	int any_match = 0, bad_probe = 0;
	if (!rc) {
		if (o.json) {
			fputs("{\"gallery\":{\"dir\":", stdout);
			json_str(stdout, o.gallery);
			printf(",\"subjects\":%zu,\"templates\":%zu,\"skipped\":[%s]},\"threshold\":%.4f,"
			       "\"threshold_from\":\"%s\",\"target_fpir\":",
			       hk_gallery_subject_count(g), hk_gallery_size(g),
			       skipped_buf ? skipped_buf : "", thr,
			       isnan(o.threshold) ? "calibration" : "--threshold");
			json_rate(stdout, isnan(o.threshold) ? target : NAN);
			fputs(",\"threshold_fpir\":", stdout);
			json_rate(stdout, isnan(o.threshold) ? target : rate_of(cal, 1, thr, ntpl));
			fputs(",\"probes\":[", stdout);
		} else {
			printf("gallery %s: %zu subjects, %zu photos enrolled, %zu skipped; threshold %.4f\n",
			       esc(o.gallery), hk_gallery_subject_count(g), hk_gallery_size(g), nskipped, thr);
			if (isnan(o.threshold))
				printf("operating point: false-positive identification rate %.2g for %llu "
				       "templates (about 1 stranger in %.0f taken for a customer), calibrated\n",
				       target, (unsigned long long)ntpl, 1.0 / target);
			else
				printf("operating point: --threshold %.4f, an expert override; it stands at "
				       "false-positive identification rate %.2g for %llu templates\n",
				       thr, rate_of(cal, 1, thr, ntpl), (unsigned long long)ntpl);
		}
	}
	hk_frames *fr = NULL;
	if (!rc && o.frames) {
		hk_frames_params fp;
		hk_frames_default_params(&fp);
		fp.flags |= HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
		fp.stream_width = o.frame_w;
		fp.stream_height = o.frame_h;
		if (hk_frames_open(o.frames, &fp, &fr)) {
			fprintf(stderr, "herken identify: --frames %s: %s\n", esc(o.frames), esc(hk_last_error()));
			rc = HK_EXIT_INPUT;
		}
	}
	for (int i = 0; !rc; i++) {
		hk_image img = {0};
		hk_frame *frame = NULL;
		const char *name = NULL;
		size_t found = 0, n = 0;
		hk_status st;
		const char *errmsg = NULL; /* a frame's own error message */
		if (fr) {
			if ((st = hk_frames_next(fr, &frame))) {
				fprintf(stderr, "herken identify: frames: %s\n", esc(hk_last_error()));
				rc = HK_EXIT_INTERNAL;
				break;
			}
			if (!frame)
				break;
			name = frame->name;
			st = frame->status;
			if (!st)
				img = frame->image; /* a view: the source owns and wipes it */
			else {
				errmsg = frame->error;
				fprintf(stderr, "herken identify: %s\n", esc(errmsg));
			}
		} else {
			if (i >= o.nfiles)
				break;
			name = o.files[i];
			st = load_image("identify", name, &img);
		}
		/* each usable face is a visit of its own, decided in this call */
		size_t ne = 0;
		if (!st)
			st = stills_push(w.rec, &img, w.ended, &ne, w.ff, &found);
		for (size_t v = 0; !st && v < ne; v++)
			n += w.ended[v].outcome != HK_OUTCOME_UNDECIDED;
		if (st && img.data)
			fprintf(stderr, "herken identify: %s: %s\n", esc(name), esc(hk_last_error()));
		if (o.json) {
			fputs(i ? ",{\"path\":" : "{\"path\":", stdout);
			json_str(stdout, name);
		} else if (!st) {
			printf("%s: %zu usable face%s\n", esc(name), n, n == 1 ? "" : "s");
		}
		if (st) {
			if (o.json) {
				fputs(",\"error\":", stdout);
				json_str(stdout, errmsg ? errmsg : hk_last_error());
			}
			int ec = exit_for(st);
			if (ec == HK_EXIT_INTERNAL)
				rc = ec;
			else
				bad_probe = 1;
		} else {
			if (o.json)
				fputs(",\"faces\":[", stdout);
			for (size_t v = 0, f = 0; v < ne; v++) {
				const hk_event *ev = &w.ended[v];
				const hk_frame_face *ff = face_of_visit(w.ff, found, ev->track);
				if (ev->outcome == HK_OUTCOME_UNDECIDED || !ff)
					continue;
				const float *b = ff->face.box;
				int match = ev->outcome == HK_OUTCOME_MATCH;
				any_match |= match;
				if (o.json) {
					printf("%s{\"box\":[%.2f,%.2f,%.2f,%.2f],\"score\":%.5f,\"fpir\":", f ? "," : "",
					       b[0], b[1], b[2], b[3], ff->face.score);
					json_rate(stdout, ev->ncandidates ? ev->rate : 0.0);
					fputs(",\"match\":", stdout);
					if (match)
						json_str(stdout, ev->subject);
					else
						fputs("null", stdout);
					fputs(",\"candidates\":[", stdout);
				} else {
					printf("  face %zu at %.0f,%.0f: %s", f, b[0], b[1],
					       match ? esc(ev->subject) : "no match");
					if (match)
						printf(" (score %.4f, FPIR %.2g)", ev->score, ev->rate);
					fputs("  candidates:", stdout);
				}
				for (uint32_t c = 0; c < ev->ncandidates; c++) {
					const hk_candidate *cd = &ev->candidates[c];
					if (o.json) {
						fputs(c ? ",{\"subject\":" : "{\"subject\":", stdout);
						json_str(stdout, cd->subject);
						printf(",\"score\":%.5f}", cd->score);
					} else {
						printf(" %s %.4f", esc(cd->subject), cd->score);
					}
				}
				fputs(o.json ? "]}" : "\n", stdout);
				f++;
			}
			if (o.json)
				fputc(']', stdout);
		}
		if (o.json)
			fputc('}', stdout);
		if (frame)
			hk_frames_release(fr, frame);
		else if (img.data)
			hk_image_free(&img);
		progress("identify", (size_t)i + 1, fr ? (size_t)hk_frames_count(fr) : (size_t)o.nfiles);
	}
	if (!rc && o.json)
		fputs("]}\n", stdout);
	if (!rc)
		rc = bad_probe ? HK_EXIT_INPUT : any_match ? HK_EXIT_OK : HK_EXIT_NOMATCH;
	free(skipped_buf);
	hk_frames_destroy(fr);
	hk_gallery_destroy(g);
	end(&o, e, &w);
	return rc;
}

/* ---- models ------------------------------------------------------------------- */

static const char models_usage[] =
    "usage: herken models [--models DIR] [--json]\n"
    "List the model files herken needs, check their sha256 against the pinned\n"
    "values and that each one loads. Fetch them with `make models`.\n"
    "exit: 0 all present, verified and loadable, 3 otherwise";

static int file_sha256(const char *path, char hex[65], long *size)
{
	/* a regular file only: a FIFO or device is never read */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		return -1;
	}
	crypto_hash_sha256_state s;
	crypto_hash_sha256_init(&s);
	unsigned char buf[65536], out[crypto_hash_sha256_BYTES];
	size_t n;
	*size = 0;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		crypto_hash_sha256_update(&s, buf, n);
		*size += (long)n;
	}
	int err = ferror(f);
	fclose(f);
	if (err)
		return -1;
	crypto_hash_sha256_final(&s, out);
	sodium_bin2hex(hex, 65, out, sizeof out);
	return 0;
}

int hk_cli_models(int argc, char **argv)
{
	opts o;
	int r = parse_opts(argc, argv, models_usage, "json", &o);
	if (r || o.nfiles) {
		if (!r)
			fprintf(stderr, "herken models: unexpected argument '%s'\n%s\n", esc(o.files[0]),
			        models_usage);
		free(o.files);
		return r > 0 ? HK_EXIT_OK : HK_EXIT_USAGE;
	}
	if (sodium_init() < 0) {
		free(o.files);
		return HK_EXIT_INTERNAL;
	}
	const char *dir = hk_model_dir(o.ep.model_dir);
	size_t npinned = 0;
	const hk_model_file *pinned = hk_model_files(&npinned);
	int rc = HK_EXIT_OK;
	if (o.json) {
		fputs("{\"dir\":", stdout);
		json_str(stdout, dir);
		fputs(",\"models\":[", stdout);
	} else {
		printf("model directory: %s\n", esc(dir));
	}
	for (size_t i = 0; i < npinned; i++) {
		char path[4200], hex[65] = "";
		long size = 0;
		snprintf(path, sizeof path, "%s/%s", dir, pinned[i].file);
		int present = file_sha256(path, hex, &size) == 0;
		int verified = present && !strcmp(hex, pinned[i].sha256);
		const char *load_err = NULL;
		uint32_t h = 0, w = 0, c = 0;
		/* a weights shard (kind AUTO) is loaded through its manifest's row */
		if (verified && pinned[i].kind != HK_MODEL_AUTO) {
			hk_model_params mp;
			hk_model_default_params(&mp);
			mp.kind = pinned[i].kind;
			hk_model *m = NULL;
			if (hk_model_load(path, &mp, &m))
				load_err = hk_last_error();
			else
				hk_model_input_shape(m, &h, &w, &c);
			hk_model_destroy(m);
		}
		int ok = verified && !load_err;
		if (!ok)
			rc = HK_EXIT_INPUT;
		if (o.json) {
			fputs(i ? ",{\"file\":" : "{\"file\":", stdout);
			json_str(stdout, pinned[i].file);
			printf(",\"present\":%s,\"bytes\":%ld,\"sha256\":\"%s\",\"verified\":%s,\"loads\":%s,"
			       "\"input\":[%u,%u,%u]",
			       present ? "true" : "false", size, hex, verified ? "true" : "false",
			       ok ? "true" : "false", h, w, c);
			if (load_err) {
				fputs(",\"error\":", stdout);
				json_str(stdout, load_err);
			}
			fputc('}', stdout);
		} else {
			printf("  %-42s %s, from %s\n      %s", pinned[i].file, pinned[i].role,
			       pinned[i].package,
			       !present    ? "MISSING (run `make models`)"
			       : !verified ? "sha256 MISMATCH"
			       : load_err  ? "does not load: "
			                   : "ok, sha256 verified");
			if (load_err)
				fputs(load_err, stdout);
			if (ok && h)
				printf(", input %ux%ux%u, %ld bytes", h, w, c, size);
			else if (ok)
				printf(", weights shard, %ld bytes", size);
			putchar('\n');
		}
	}
	if (o.json)
		fputs("]}\n", stdout);
	free(o.files);
	return rc;
}
