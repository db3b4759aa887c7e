/* herken-demo-video: the second act of `make run` writes a short video from
 * the six demo photos with camera-like motion, then `herken watch` reads it
 * back through the FFmpeg source.
 *
 *   herken-demo-video OUT.mp4 DEMO_DIR
 *
 * Three scenes at 1280x720, 25 frames/s, MPEG-4 part 2 (libavcodec's own
 * encoder, so no external codec library is needed):
 *   1. a pan across sample2.jpg (three strangers);
 *   2. a zoom into sample3.jpg (the customer of sample1.jpg among two others);
 *   3. the customer walks in among the five strangers of sample5.jpg: his
 *      head (cut from sample3.jpg in memory) moves in from the left and grows.
 *
 * Privacy: the video is made of the public demo photos only (from the pinned
 * npm package), in a temporary file that run-demo.sh removes. herken never
 * writes a customer's frame or face crop to disk; this tool exists only to
 * make test footage for the demo.
 *
 * Exit: 0 written, 2 usage, 3 a photo cannot be read or the video written.
 * FFmpeg stays in io/ and tools; this file is a tool. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"

#define W 1280
#define H 720
#define FPS 25

/* Bilinear sample of src over the rectangle (x0,y0)-(x0+w,y0+h) into the
 * whole of dst (W x H RGB24); outside the photo is grey. */
static void view(const hk_image *src, double x0, double y0, double w, double h, uint8_t *dst)
{
	for (int y = 0; y < H; y++) {
		double sy = y0 + (y + 0.5) * h / H - 0.5;
		for (int x = 0; x < W; x++) {
			double sx = x0 + (x + 0.5) * w / W - 0.5;
			uint8_t *d = dst + ((size_t)y * W + x) * 3;
			int ix = (int)floor(sx), iy = (int)floor(sy);
			if (ix < 0 || iy < 0 || ix + 1 >= (int)src->width || iy + 1 >= (int)src->height) {
				d[0] = d[1] = d[2] = 96;
				continue;
			}
			double fx = sx - ix, fy = sy - iy;
			const uint8_t *p = src->data + (size_t)iy * src->stride + (size_t)ix * 3;
			const uint8_t *q = p + src->stride;
			for (int c = 0; c < 3; c++)
				d[c] = (uint8_t)((1 - fy) * ((1 - fx) * p[c] + fx * p[c + 3]) +
				                 fy * ((1 - fx) * q[c] + fx * q[c + 3]) + 0.5);
		}
	}
}

/* Paste the square (sx,sy,side) of src, scaled to out pixels, at (dx,dy)
 * of dst (nearest neighbour; clipped to the frame). */
static void paste(const hk_image *src, int sx, int sy, int side, int dx, int dy, int out,
                  uint8_t *dst)
{
	for (int y = 0; y < out; y++) {
		int ty = dy + y, py = sy + y * side / out;
		if (ty < 0 || ty >= H || py < 0 || py >= (int)src->height)
			continue;
		for (int x = 0; x < out; x++) {
			int tx = dx + x, px = sx + x * side / out;
			if (tx < 0 || tx >= W || px < 0 || px >= (int)src->width)
				continue;
			memcpy(dst + ((size_t)ty * W + tx) * 3, src->data + (size_t)py * src->stride + px * 3, 3);
		}
	}
}

typedef struct enc {
	AVFormatContext *fmt;
	AVCodecContext *cc;
	AVStream *st;
	AVFrame *yuv;
	AVPacket *pkt;
	struct SwsContext *sws;
	int64_t n;
} enc;

static int drain(enc *e, AVFrame *f)
{
	int r = avcodec_send_frame(e->cc, f);
	while (r >= 0) {
		r = avcodec_receive_packet(e->cc, e->pkt);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
			return 0;
		if (r < 0)
			break;
		av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
		e->pkt->stream_index = e->st->index;
		r = av_interleaved_write_frame(e->fmt, e->pkt);
	}
	return r < 0 ? -1 : 0;
}

static int put(enc *e, const uint8_t *rgb)
{
	const uint8_t *src[1] = {rgb};
	int stride[1] = {3 * W};
	if (av_frame_make_writable(e->yuv) < 0)
		return -1;
	sws_scale(e->sws, src, stride, 0, H, e->yuv->data, e->yuv->linesize);
	e->yuv->pts = e->n++;
	return drain(e, e->yuv);
}

static int open_enc(enc *e, const char *path)
{
	memset(e, 0, sizeof *e);
	const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
	if (!c || avformat_alloc_output_context2(&e->fmt, NULL, "mp4", path) < 0)
		return -1;
	if (!(e->st = avformat_new_stream(e->fmt, NULL)) || !(e->cc = avcodec_alloc_context3(c)))
		return -1;
	e->cc->width = W;
	e->cc->height = H;
	e->cc->pix_fmt = AV_PIX_FMT_YUV420P;
	e->cc->time_base = (AVRational){1, FPS};
	e->cc->framerate = (AVRational){FPS, 1};
	e->cc->gop_size = FPS;
	e->cc->flags |= AV_CODEC_FLAG_QSCALE;
	e->cc->global_quality = FF_QP2LAMBDA * 3;
	if (e->fmt->oformat->flags & AVFMT_GLOBALHEADER)
		e->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	if (avcodec_open2(e->cc, c, NULL) < 0 ||
	    avcodec_parameters_from_context(e->st->codecpar, e->cc) < 0)
		return -1;
	e->st->time_base = e->cc->time_base;
	e->yuv = av_frame_alloc();
	e->pkt = av_packet_alloc();
	e->sws = sws_getContext(W, H, AV_PIX_FMT_RGB24, W, H, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL,
	                        NULL, NULL);
	if (!e->yuv || !e->pkt || !e->sws)
		return -1;
	e->yuv->format = AV_PIX_FMT_YUV420P;
	e->yuv->width = W;
	e->yuv->height = H;
	if (av_frame_get_buffer(e->yuv, 0) < 0 || avio_open(&e->fmt->pb, path, AVIO_FLAG_WRITE) < 0)
		return -1;
	return avformat_write_header(e->fmt, NULL) < 0 ? -1 : 0;
}

static int close_enc(enc *e, int ok)
{
	if (ok && e->cc)
		ok = drain(e, NULL) == 0 && av_write_trailer(e->fmt) == 0;
	if (e->fmt && e->fmt->pb)
		avio_closep(&e->fmt->pb);
	avformat_free_context(e->fmt);
	avcodec_free_context(&e->cc);
	av_frame_free(&e->yuv);
	av_packet_free(&e->pkt);
	sws_freeContext(e->sws);
	return ok ? 0 : -1;
}

static double ease(double t)
{
	return t * t * (3 - 2 * t);
}

int main(int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '-') {
		fputs("usage: herken-demo-video OUT.mp4 DEMO_DIR (sample2/3/5.jpg of the demo)\n", stderr);
		return 2;
	}
	hk_image ph[3] = {{0}};
	const int which[3] = {2, 3, 5};
	for (int i = 0; i < 3; i++) {
		char p[4096];
		snprintf(p, sizeof p, "%s/sample%d.jpg", argv[2], which[i]);
		if (hk_image_load(p, &ph[i]) != HK_OK) {
			fprintf(stderr, "herken-demo-video: %s\n", hk_last_error());
			return 3;
		}
	}
	uint8_t *rgb = malloc((size_t)W * H * 3);
	enc e;
	memset(&e, 0, sizeof e);
	int ok = rgb && open_enc(&e, argv[1]) == 0;
	/* 1. Pan: a 1:1 window slides right across sample2's three faces. */
	for (int i = 0; ok && i < 60; i++) {
		double t = ease(i / 59.0);
		view(&ph[0], 640 * t, 60, W, H, rgb);
		ok = put(&e, rgb) == 0;
	}
	/* 2. Zoom: from the whole width of sample3 towards the customer. */
	for (int i = 0; ok && i < 70; i++) {
		double t = ease(i / 69.0), w = 1920 - 760 * t, h = w * H / W;
		double cx = 960 + (1170 - 960) * t, cy = 640 + (420 - 640) * t;
		view(&ph[1], cx - w / 2, cy - h / 2, w, h, rgb);
		ok = put(&e, rgb) == 0;
	}
	/* 3. Walk-in: sample5's strangers stand still (a slow pan); the
	 * customer's head from sample3 enters from the left, growing as he
	 * comes closer. */
	for (int i = 0; ok && i < 95; i++) {
		double t = i / 94.0, w = 1920 - 120 * t, h = w * H / W;
		view(&ph[2], 60 * t, 100, w, h, rgb);
		int out = (int)(190 + 110 * ease(t));
		int dx = (int)(-out + (out + 40) * ease(fmin(1, t * 1.6)));
		paste(&ph[1], 940, 170, 460, dx, 120, out, rgb);
		ok = put(&e, rgb) == 0;
	}
	if (rgb)
		memset(rgb, 0, (size_t)W * H * 3);
	free(rgb);
	for (int i = 0; i < 3; i++)
		hk_image_free(&ph[i]);
	if (close_enc(&e, ok) || !ok) {
		fprintf(stderr, "herken-demo-video: cannot write %s\n", argv[1]);
		remove(argv[1]);
		return 3;
	}
	return 0;
}
