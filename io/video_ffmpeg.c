/*
 * Video files and network streams through FFmpeg's libraries (libavformat
 * demuxing, libavcodec decoding, libswscale to RGB24). FFmpeg stays inside
 * io/: nothing here reaches the public header.
 *
 * Timeouts: every blocking FFmpeg call (open, probe, read) runs under an
 * interrupt callback with a deadline of timeout_ms, so a network peer that
 * accepts and never answers, or a stream that stops, cannot hang the
 * process: open fails with HK_E_IO ("timed out"), a stall mid-stream ends
 * the source with an HK_E_IO error frame.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "video.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct ff {
	AVFormatContext *fmt;
	AVCodecContext *dec;
	struct SwsContext *sws;
	AVPacket *pkt;
	AVFrame *frm;
	int stream;
	AVRational tb;
	int64_t deadline_ns; /* 0: none */
	uint32_t timeout_ms;
	hk__vsrc *src;
	int sw, sh, sfmt; /* current scaler input */
	char what[64];
} ff;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int interrupt_cb(void *arg)
{
	ff *c = arg;
	if (c->src && c->src->stop)
		return 1;
	return c->deadline_ns && now_ns() > c->deadline_ns;
}

static void arm(ff *c)
{
	c->deadline_ns = c->timeout_ms ? now_ns() + (int64_t)c->timeout_ms * 1000000 : 0;
}

static const char *averr(int e, char *buf, size_t n)
{
	if (av_strerror(e, buf, n) < 0)
		snprintf(buf, n, "FFmpeg error %d", e);
	return buf;
}

static void ff_free(ff *c)
{
	if (!c)
		return;
	sws_freeContext(c->sws);
	av_frame_free(&c->frm);
	av_packet_free(&c->pkt);
	avcodec_free_context(&c->dec);
	avformat_close_input(&c->fmt);
	free(c);
}

static void ff_close(hk__vsrc *s)
{
	ff_free(s->impl);
	s->impl = NULL;
}

/* Convert the decoded frame into f (RGB24). 0 or an hk_status. */
static hk_status to_rgb(ff *c, hk__vframe *f)
{
	AVFrame *fr = c->frm;
	if (fr->width <= 0 || fr->height <= 0)
		return hk__err(HK_E_FORMAT, "%s: frame without size", c->what);
	int e = hk__vframe_image(f, (uint32_t)fr->width, (uint32_t)fr->height);
	if (e == -EFBIG) {
		hk__vframe_fail(f, HK_E_LIMIT, "%s: frame %dx%d over the pixel limit", c->what,
		                fr->width, fr->height);
		return HK_OK;
	}
	if (e)
		return hk__err(HK_E_NOMEM, "%s: frame buffer", c->what);
	c->sws = sws_getCachedContext(c->sws, fr->width, fr->height, fr->format, fr->width,
	                              fr->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL,
	                              NULL);
	if (!c->sws) {
		hk__vframe_fail(f, HK_E_UNSUPPORTED, "%s: cannot convert pixel format %s to RGB",
		                c->what, av_get_pix_fmt_name(fr->format) ? av_get_pix_fmt_name(fr->format) : "?");
		return HK_OK;
	}
	uint8_t *dst[4] = {f->buf, NULL, NULL, NULL};
	int dst_stride[4] = {3 * fr->width, 0, 0, 0};
	sws_scale(c->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst,
	          dst_stride);
	int64_t ts = fr->best_effort_timestamp;
	if (ts == AV_NOPTS_VALUE)
		ts = fr->pts;
	if (ts != AV_NOPTS_VALUE) {
		int64_t st = c->fmt->streams[c->stream]->start_time;
		if (st != AV_NOPTS_VALUE)
			ts -= st;
		f->pub.pts_us = av_rescale_q(ts, c->tb, (AVRational){1, 1000000});
	}
	return HK_OK;
}

/* Receive every frame the decoder has ready. 0, or 1 at the decoder's
 * end, or a negative hk_status. */
static int drain_decoder(hk__vsrc *s, ff *c)
{
	for (;;) {
		int e = avcodec_receive_frame(c->dec, c->frm);
		if (e == AVERROR(EAGAIN))
			return 0;
		if (e == AVERROR_EOF)
			return 1;
		if (e < 0) {
			char b[128];
			hk__vframe *f = hk__vsrc_get(s);
			if (!f)
				return 1;
			hk__vframe_fail(f, HK_E_FORMAT, "%s: decode error: %s", c->what,
			                averr(e, b, sizeof b));
			hk__vsrc_put(s, f);
			return 0;
		}
		hk__vframe *f = hk__vsrc_get(s);
		if (!f) {
			av_frame_unref(c->frm);
			return 1;
		}
		hk_status st = to_rgb(c, f);
		av_frame_unref(c->frm);
		if (st != HK_OK) {
			hk__vframe_fail(f, st, "%s", hk_last_error());
		}
		hk__vsrc_put(s, f);
	}
}

static void *ff_thread(void *arg)
{
	hk__vsrc *s = arg;
	ff *c = s->impl;
	char b[128];
	for (;;) {
		if (hk__vsrc_stopping(s))
			break;
		arm(c);
		int e = av_read_frame(c->fmt, c->pkt);
		if (e == AVERROR_EOF || (e < 0 && avio_feof(c->fmt->pb) && !s->live)) {
			/* Flush the decoder: the last frames come out now. A file
			 * that ended early shows as an EOF without an error. */
			avcodec_send_packet(c->dec, NULL);
			drain_decoder(s, c);
			break;
		}
		if (e < 0) {
			hk__vframe *f = hk__vsrc_get(s);
			if (f) {
				if (e == AVERROR_EXIT && !hk__vsrc_stopping(s))
					hk__vframe_fail(f, HK_E_IO, "%s: stalled: no data for %u ms",
					                c->what, c->timeout_ms);
				else
					hk__vframe_fail(f, e == AVERROR_INVALIDDATA ? HK_E_FORMAT : HK_E_IO,
					                "%s: read failed: %s", c->what,
					                averr(e, b, sizeof b));
				hk__vsrc_put(s, f);
			}
			break;
		}
		if (c->pkt->stream_index == c->stream) {
			pthread_mutex_lock(&s->mu);
			s->st.bytes_read += (uint64_t)c->pkt->size;
			pthread_mutex_unlock(&s->mu);
			e = avcodec_send_packet(c->dec, c->pkt);
			if (e < 0 && e != AVERROR(EAGAIN)) {
				hk__vframe *f = hk__vsrc_get(s);
				if (f) {
					hk__vframe_fail(f, HK_E_FORMAT, "%s: corrupt packet: %s", c->what,
					                averr(e, b, sizeof b));
					hk__vsrc_put(s, f);
				}
			}
			if (drain_decoder(s, c) == 1) {
				av_packet_unref(c->pkt);
				break;
			}
		}
		av_packet_unref(c->pkt);
	}
	hk__vsrc_finish(s);
	return NULL;
}

static void quiet_ffmpeg(void)
{
	/* The library never prints: FFmpeg's own log goes nowhere (its
	 * messages become our error strings instead). */
	av_log_set_level(AV_LOG_QUIET);
}

hk_status hk__video_open(const char *spec, const hk_frames_params *p, hk__vsrc **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, quiet_ffmpeg);
	*out = NULL;
	int kind = hk__video_kind(spec);
	const char *url = !strncmp(spec, "file:", 5) ? spec + 5 : spec;
	int live = kind == HK__VS_NET;
	if (kind == HK__VS_FILE) {
		struct stat sb;
		if (stat(url, &sb) != 0)
			return hk__err(hk__status_of_errno(errno), "%s: %s", url,
			               strerror(errno));
		if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISCHR(sb.st_mode))
			return hk__err(HK_E_IO, "%s: not a video file", url);
	}
	hk__vsrc *s;
	hk_status st = hk__vsrc_alloc(p, live, &s);
	if (st != HK_OK)
		return st;
	if (p && p->timeout_ms)
		s->timeout_ms = p->timeout_ms;
	ff *c = calloc(1, sizeof *c);
	if (!c) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_NOMEM, "video source");
	}
	s->impl = c;
	s->impl_close = ff_close;
	s->run = ff_thread;
	c->src = s;
	c->timeout_ms = s->timeout_ms;
	snprintf(c->what, sizeof c->what, "%.60s", url);
	char b[128];

	c->fmt = avformat_alloc_context();
	if (!c->fmt) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_NOMEM, "video source");
	}
	c->fmt->interrupt_callback.callback = interrupt_cb;
	c->fmt->interrupt_callback.opaque = c;
	AVDictionary *opt = NULL;
	if (live) {
		char us[32];
		snprintf(us, sizeof us, "%llu", (unsigned long long)s->timeout_ms * 1000ull);
		av_dict_set(&opt, "rw_timeout", us, 0);
		av_dict_set(&opt, "timeout", us, 0);
		if (!strncasecmp(url, "rtsp", 4))
			av_dict_set(&opt, "rtsp_transport", "tcp", 0);
	}
	arm(c);
	int64_t t_open = now_ns();
	int e = avformat_open_input(&c->fmt, url, NULL, &opt);
	av_dict_free(&opt);
	/* A network peer that did not answer in time shows as an interrupt,
	 * ETIMEDOUT, or (RTSP) a failed parse of the empty reply. */
	if (e < 0 && live && now_ns() - t_open >= (int64_t)s->timeout_ms * 900000)
		e = AVERROR_EXIT;
	if (e < 0) {
		c->fmt = NULL; /* freed by avformat_open_input on failure */
		hk_status code = e == AVERROR_EXIT || e == AVERROR(ETIMEDOUT) ? HK_E_IO
		                 : e == AVERROR(ENOENT)                       ? HK_E_NOT_FOUND
		                 : e == AVERROR_INVALIDDATA                   ? HK_E_FORMAT
		                 : e == AVERROR_PROTOCOL_NOT_FOUND ||
		                         e == AVERROR_DEMUXER_NOT_FOUND
		                     ? HK_E_UNSUPPORTED
		                     : HK_E_IO;
		if (e == AVERROR_EXIT)
			snprintf(b, sizeof b, "timed out after %u ms", s->timeout_ms);
		else
			averr(e, b, sizeof b);
		hk__vsrc_destroy(s);
		return hk__err(code, "%s: cannot open: %s", url, b);
	}
	arm(c);
	e = avformat_find_stream_info(c->fmt, NULL);
	if (e < 0) {
		hk_status code = e == AVERROR_EXIT ? HK_E_IO : HK_E_FORMAT;
		if (e == AVERROR_EXIT)
			snprintf(b, sizeof b, "timed out after %u ms", s->timeout_ms);
		else
			averr(e, b, sizeof b);
		hk__vsrc_destroy(s);
		return hk__err(code, "%s: cannot read the stream layout: %s", url, b);
	}
	c->stream = av_find_best_stream(c->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (c->stream < 0) {
		/* A video stream whose codec FFmpeg cannot decode is reported by
		 * name; no video stream at all is a format error. */
		for (unsigned i = 0; i < c->fmt->nb_streams; i++) {
			AVCodecParameters *cp = c->fmt->streams[i]->codecpar;
			if (cp->codec_type == AVMEDIA_TYPE_VIDEO) {
				const char *name = avcodec_get_name(cp->codec_id);
				hk__vsrc_destroy(s);
				return hk__err(HK_E_UNSUPPORTED, "%s: no decoder for the video codec '%s'",
				               url, name ? name : "?");
			}
		}
		hk__vsrc_destroy(s);
		return hk__err(HK_E_FORMAT, "%s: no video stream", url);
	}
	AVStream *vs = c->fmt->streams[c->stream];
	const AVCodec *codec = avcodec_find_decoder(vs->codecpar->codec_id);
	if (!codec) {
		enum AVCodecID id = vs->codecpar->codec_id;
		const char *name = avcodec_get_name(id);
		hk__vsrc_destroy(s);
		if (id == AV_CODEC_ID_NONE)
			return hk__err(HK_E_UNSUPPORTED, "%s: unknown video codec (FFmpeg knows "
			                                 "no codec by the name the file gives)", url);
		return hk__err(HK_E_UNSUPPORTED, "%s: no decoder for the video codec '%s'", url,
		               name ? name : "?");
	}
	c->dec = avcodec_alloc_context3(codec);
	c->pkt = av_packet_alloc();
	c->frm = av_frame_alloc();
	if (!c->dec || !c->pkt || !c->frm) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_NOMEM, "video source");
	}
	avcodec_parameters_to_context(c->dec, vs->codecpar);
	c->dec->thread_count = p && p->decode_threads ? (int)p->decode_threads : 0;
	c->tb = vs->time_base;
	e = avcodec_open2(c->dec, codec, NULL);
	if (e < 0) {
		hk__vsrc_destroy(s);
		return hk__err(HK_E_UNSUPPORTED, "%s: cannot open the %s decoder: %s", url,
		               codec->name, averr(e, b, sizeof b));
	}
	if ((st = hk__vsrc_start(s)) != HK_OK) {
		hk__vsrc_destroy(s);
		return st;
	}
	*out = s;
	return HK_OK;
}
