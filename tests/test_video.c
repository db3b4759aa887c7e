/* Video sources behind hk_frames_open (io/video*.c): the real clips from
 * $HERKEN_SHARED/datasets/video (frame counts, sizes, timestamps; skipped
 * when absent), and the bad inputs: missing, garbage, truncated, unknown
 * codec, a network peer that never answers, a stream that stalls mid-way
 * and changes frame size, a missing or absent camera. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "herken.h"
#include "test_video.h"
#include "video.h"

const char *hkt_video_path(const char *name, char *buf, size_t len)
{
	const char *s = getenv("HERKEN_SHARED");
	if (!s || !*s)
		return NULL;
	snprintf(buf, len, "%s/datasets/video/%s", s, name);
	return access(buf, R_OK) == 0 ? buf : NULL;
}

/* Reads every frame: counts good and bad ones, checks sizes. */
typedef struct tally {
	uint64_t good, bad;
	uint32_t w, h;
	int64_t last_pts;
	int pts_increasing;
	hk_status first_error;
	char msg[256];
} tally;

static void read_all(hk_frames *src, tally *t)
{
	memset(t, 0, sizeof *t);
	t->last_pts = -1;
	t->pts_increasing = 1;
	hk_frame *fr;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		if (fr->status == HK_OK) {
			t->good++;
			t->w = fr->image.width;
			t->h = fr->image.height;
			cr_assert_geq(fr->image.stride, 3 * fr->image.width);
			if (fr->pts_us <= t->last_pts)
				t->pts_increasing = 0;
			t->last_pts = fr->pts_us;
		} else {
			if (!t->bad++) {
				t->first_error = fr->status;
				snprintf(t->msg, sizeof t->msg, "%s", fr->error);
			}
		}
		hk_frames_release(src, fr);
	}
}

static void clip(const char *name, uint64_t frames, uint32_t w, uint32_t h)
{
	char p[4096];
	if (!hkt_video_path(name, p, sizeof p))
		cr_skip_test("%s absent (HERKEN_SHARED/datasets/video)", name);
	hk_frames *src = NULL;
	cr_assert_eq(hk_frames_open(p, NULL, &src), HK_OK, "%s", hk_last_error());
	cr_assert_eq(hk_frames_count(src), UINT64_MAX, "a video is a stream");
	tally t;
	read_all(src, &t);
	cr_assert_eq(t.bad, 0, "%s", t.msg);
	cr_assert_eq(t.good, frames);
	cr_assert_eq(t.w, w);
	cr_assert_eq(t.h, h);
	cr_assert(t.pts_increasing, "timestamps ascend");
	hk_frames_stats st;
	cr_assert_eq(hk_frames_get_stats(src, &st), HK_OK);
	cr_assert_eq(st.frames, frames);
	cr_assert_eq(st.dropped, 0, "a file is never dropped from");
	cr_assert_gt(st.bytes_read, 1000);
	hk_frames_destroy(src);
}

Test(video, stage_clip_every_frame) { clip("stage_clip_10s.mp4", 275, 640, 360); }
Test(video, comic_shop_odd_width) { clip("comic_shop_5frames.mp4", 5, 820, 460); }

Test(video, spec_kinds)
{
	hk_frames *src = (hk_frames *)0x1;
	hk_status s = hk_frames_open("/nonexistent/clip.mp4", NULL, &src);
	cr_assert_eq(s, HK_E_NOT_FOUND, "%s", hk_last_error());
	cr_assert_null(src);
	cr_assert(strstr(hk_last_error(), "/nonexistent/clip.mp4"), "%s", hk_last_error());
	s = hk_frames_open("herken-nope://x", NULL, &src);
	cr_assert_neq(s, HK_OK);
}

/* Writes b[n] to a new temporary file named *ext and opens it as a frame
 * source; the file is gone when this returns. */
static hk_status open_temp(const char *ext, const void *b, size_t n, hk_frames **src)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/herken-test-video-XXXXXX%s", ext);
	int fd = mkstemps(path, (int)strlen(ext));
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b, n), (ssize_t)n);
	close(fd);
	hk_status s = hk_frames_open(path, NULL, src);
	unlink(path);
	return s;
}

Test(video, garbage_mp4_is_format_error)
{
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 2654435761u >> 13);
	hk_frames *src = NULL;
	hk_status s = open_temp(".mp4", junk, sizeof junk, &src);
	cr_assert_eq(s, HK_E_FORMAT, "%s (%s)", hk_last_error(), hk_status_str(s));
	cr_assert(strstr(hk_last_error(), "cannot open"), "%s", hk_last_error());
}

Test(video, truncated_mp4)
{
	char p[4096];
	if (!hkt_video_path("stage_clip_10s.mp4", p, sizeof p))
		cr_skip_test("stage_clip_10s.mp4 absent");
	FILE *f = fopen(p, "rb");
	cr_assert_not_null(f);
	static uint8_t buf[300000];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	cr_assert_eq(n, sizeof buf);
	hk_frames *src = NULL;
	hk_status s = open_temp(".mp4", buf, n, &src);
	if (s != HK_OK) {
		/* The index (moov) at the end: nothing to play. */
		cr_assert_eq(s, HK_E_FORMAT, "%s", hk_last_error());
		return;
	}
	tally t;
	read_all(src, &t);
	hk_frames_destroy(src);
	/* The index is at the start: the first half plays, then it ends. */
	cr_assert_gt(t.good, 10);
	cr_assert_lt(t.good, 275);
}

/* A minimal Matroska file whose video track has a codec nobody decodes. */
static size_t ebml(uint8_t *o, uint32_t id, const void *data, size_t n)
{
	size_t k = 0;
	for (int s = 24; s >= 0; s -= 8)
		if ((id >> s) & 0xff || k)
			o[k++] = (uint8_t)(id >> s);
	o[k++] = 0x01; /* 8-byte size: marker byte + 7 bytes */
	for (int s = 48; s >= 0; s -= 8)
		o[k++] = (uint8_t)((uint64_t)n >> s);
	memcpy(o + k, data, n);
	return k + n;
}

static size_t ebml_uint(uint8_t *o, uint32_t id, uint8_t v)
{
	return ebml(o, id, &v, 1);
}

Test(video, unknown_codec_is_unsupported)
{
	uint8_t hdr[64], video[64], track[256], tracks[300], info[64], block[64], cluster[128],
	    seg[800], file[1000];
	size_t n;
	n = ebml(hdr, 0x4282, "matroska", 8);
	n += ebml_uint(hdr + n, 0x4287, 4);
	n += ebml_uint(hdr + n, 0x4285, 2);
	size_t nf = ebml(file, 0x1A45DFA3, hdr, n);
	size_t nv = ebml_uint(video, 0xB0, 64);
	nv += ebml_uint(video + nv, 0xBA, 64);
	size_t nt = ebml_uint(track, 0xD7, 1);
	nt += ebml_uint(track + nt, 0x73C5, 1);
	nt += ebml_uint(track + nt, 0x83, 1);
	nt += ebml(track + nt, 0x86, "V_HERKEN/NOPE", 13);
	nt += ebml(track + nt, 0xE0, video, nv);
	size_t nts = ebml(tracks, 0xAE, track, nt);
	uint8_t tcs[3] = {0x0f, 0x42, 0x40};
	size_t ni = ebml(info, 0x2AD7B1, tcs, 3);
	uint8_t sb[4 + 16] = {0x81, 0, 0, 0x80};
	memset(sb + 4, 0x5a, 16);
	size_t nb = ebml_uint(block, 0xE7, 0);
	nb += ebml(block + nb, 0xA3, sb, sizeof sb);
	size_t nc = ebml(cluster, 0x1F43B675, block, nb);
	size_t ns = ebml(seg, 0x1549A966, info, ni);
	ns += ebml(seg + ns, 0x1654AE6B, tracks, nts);
	memcpy(seg + ns, cluster, nc);
	ns += nc;
	nf += ebml(file + nf, 0x18538067, seg, ns);

	hk_frames *src = NULL;
	hk_status s = open_temp(".mkv", file, nf, &src);
	cr_assert_eq(s, HK_E_UNSUPPORTED, "%s (%s)", hk_last_error(), hk_status_str(s));
	cr_assert(strstr(hk_last_error(), "codec"), "%s", hk_last_error());
}

/* A local TCP port that accepts connections (the kernel completes them
 * from the backlog) and never says a word. 127.0.0.1 only. */
static int silent_port(int *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
	cr_assert_eq(listen(s, 4), 0);
	socklen_t len = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return s;
}

Test(video, rtsp_that_never_answers_times_out)
{
	int port, s = silent_port(&port);
	char url[64];
	snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/desk", port);
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.timeout_ms = 300;
	hk_frames *src = NULL;
	hk_status st = hk_frames_open(url, &fp, &src);
	close(s);
	cr_assert_eq(st, HK_E_IO, "%s (%s)", hk_last_error(), hk_status_str(st));
	cr_assert_null(src);
	cr_assert(strstr(hk_last_error(), "timed out") || strstr(hk_last_error(), "imed out"),
	          "%s", hk_last_error());
}

/* Serves MJPEG (concatenated JPEGs) over TCP: `first` frames of one size,
 * then `second` frames of another, then stays silent with the connection
 * open until told to stop. */
static unsigned char *encode(const hk_image *img, uint32_t w, uint32_t h, unsigned long *len)
{
	tjhandle tj = tjInitCompress();
	unsigned char *out = NULL;
	*len = 0;
	/* The top-left w x h of the image. */
	int r = tjCompress2(tj, img->data, (int)w, (int)img->stride, (int)h, TJPF_RGB, &out, len,
	                    TJSAMP_420, 85, 0);
	tjDestroy(tj);
	return r ? NULL : out;
}

static void *serve(void *arg)
{
	server *sv = arg;
	int c = accept(sv->lsock, NULL, NULL);
	if (c < 0)
		return NULL;
	uint32_t w = sv->img->width & ~15u, h = sv->img->height & ~15u;
	unsigned long l1, l2;
	unsigned char *j1 = encode(sv->img, w, h, &l1);
	unsigned char *j2 = encode(sv->img, w - 32, h, &l2);
	for (int i = 0; i < sv->first + sv->second && j1 && j2; i++) {
		const unsigned char *j = i < sv->first ? j1 : j2;
		unsigned long l = i < sv->first ? l1 : l2;
		if (send(c, j, l, MSG_NOSIGNAL) != (ssize_t)l)
			break;
		usleep(20000);
	}
	while (!sv->stop)
		usleep(10000);
	tjFree(j1);
	tjFree(j2);
	close(c);
	return NULL;
}

void hkt_server_start(server *sv, const hk_image *img, int first, int second)
{
	memset(sv, 0, sizeof *sv);
	sv->lsock = silent_port(&sv->port);
	sv->img = img;
	sv->first = first;
	sv->second = second;
	cr_assert_eq(pthread_create(&sv->thr, NULL, serve, sv), 0);
}

void hkt_server_stop(server *sv)
{
	sv->stop = 1;
	shutdown(sv->lsock, SHUT_RDWR);
	pthread_join(sv->thr, NULL);
	close(sv->lsock);
}

Test(video, stream_that_stalls_ends_with_an_error_frame)
{
	char p[4096];
	if (!hkt_video_path("stage_clip_stills/lin-manuel-miranda.png", p, sizeof p))
		cr_skip_test("stage_clip_stills absent");
	hk_image img;
	cr_assert_eq(hk_image_load(p, &img), HK_OK);
	server sv;
	hkt_server_start(&sv, &img, 4, 3);
	char url[64];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", sv.port);
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.timeout_ms = 400;
	hk_frames *src = NULL;
	hk_status st = hk_frames_open(url, &fp, &src);
	cr_assert_eq(st, HK_OK, "%s", hk_last_error());
	tally t;
	memset(&t, 0, sizeof t);
	uint32_t sizes[8] = {0};
	int nsizes = 0;
	hk_frame *fr;
	while (hk_frames_next(src, &fr) == HK_OK && fr) {
		if (fr->status == HK_OK) {
			t.good++;
			if (!nsizes || sizes[nsizes - 1] != fr->image.width)
				sizes[nsizes < 7 ? nsizes++ : 7] = fr->image.width;
		} else if (!t.bad++) {
			t.first_error = fr->status;
			snprintf(t.msg, sizeof t.msg, "%s", fr->error);
		}
		hk_frames_release(src, fr);
	}
	hk_frames_stats fs;
	hk_frames_get_stats(src, &fs);
	hk_frames_destroy(src);
	hkt_server_stop(&sv);
	hk_image_free(&img);
	/* A live source may drop (the consumer here is fast, but that is not
	 * promised): every frame is delivered or counted. */
	cr_assert_eq(t.good + fs.dropped, 7, "good %llu dropped %llu",
	             (unsigned long long)t.good, (unsigned long long)fs.dropped);
	cr_assert_eq(t.bad, 1, "one error frame, then the end");
	cr_assert_eq(t.first_error, HK_E_IO, "%s", t.msg);
	cr_assert(strstr(t.msg, "stalled"), "%s", t.msg);
	cr_assert_eq(nsizes, 2, "the size changed once mid-stream");
}

Test(video, camera)
{
	/* A real or virtual camera (modprobe vivid, or v4l2loopback with a
	 * writer) is used when present; otherwise only the absent-device
	 * error is checked. */
	hk_frames *src = (hk_frames *)0x1;
	hk_status s = hk_frames_open("/dev/video-herken-none", NULL, &src);
	cr_assert_eq(s, HK_E_NOT_FOUND, "%s", hk_last_error());
	cr_assert(strstr(hk_last_error(), "no such camera"), "%s", hk_last_error());
	const char *dev = getenv("HERKEN_V4L2_DEVICE");
	if (!dev)
		dev = "/dev/video0";
	if (access(dev, F_OK) != 0)
		cr_skip_test("no V4L2 device (%s absent; `modprobe vivid` to test a camera)", dev);
	hk_frames_params fp;
	hk_frames_default_params(&fp);
	fp.timeout_ms = 3000;
	s = hk_frames_open(dev, &fp, &src);
	if (s == HK_E_BUSY)
		cr_skip_test("%s busy: %s", dev, hk_last_error());
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	int good = 0;
	hk_frame *fr;
	for (int i = 0; i < 10 && hk_frames_next(src, &fr) == HK_OK && fr; i++) {
		if (fr->status == HK_OK) {
			good++;
			cr_assert_gt(fr->image.width, 0);
			cr_assert_geq(fr->pts_us, 0);
		}
		hk_frames_release(src, fr);
	}
	hk_frames_destroy(src);
	cr_assert_gt(good, 0, "the camera delivered frames");
}

/* A busy or missing camera without a camera: the errno translation every
 * V4L2 open and ioctl goes through (hk__v4l2_error). EBUSY is HK_E_BUSY,
 * which `herken watch` turns into exit 6 (README, exit codes). */
Test(video, camera_errno_translation)
{
	cr_assert_eq(hk__v4l2_error(EBUSY, HK_E_IO, "/dev/video7", "cannot open"), HK_E_BUSY);
	cr_assert_str_eq(hk_last_error(), "/dev/video7: the camera is busy (used by another program)");
	const int gone[] = {ENOENT, ENODEV, ENXIO};
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(hk__v4l2_error(gone[i], HK_E_IO, "/dev/video7", "x"), HK_E_NOT_FOUND);
		cr_assert_str_eq(hk_last_error(), "/dev/video7: no such camera");
	}
	cr_assert_eq(hk__v4l2_error(EACCES, HK_E_IO, "/dev/video7", "cannot open"), HK_E_IO);
	cr_assert(strstr(hk_last_error(), "cannot open: Permission denied"), "%s", hk_last_error());
	cr_assert_eq(hk__v4l2_error(EINVAL, HK_E_UNSUPPORTED, "/dev/video7", "set format"),
	             HK_E_UNSUPPORTED);
	/* A device that is not a camera at all: refused, not hung. */
	hk_frames *src = (hk_frames *)0x1;
	cr_assert_eq(hk_frames_open("v4l2:/dev/null", NULL, &src), HK_E_UNSUPPORTED, "%s",
	             hk_last_error());
	cr_assert(strstr(hk_last_error(), "/dev/null: not a V4L2 device"), "%s",
	          hk_last_error());
}
