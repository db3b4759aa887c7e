/* Internals of the recogniser (core/recognizer): face quality, the
 * tracker's geometry and the decision policy. Not public. */
#ifndef HK_RECOGNIZER_INTERNAL_H
#define HK_RECOGNIZER_INTERNAL_H

#include "herken.h"

#include <stddef.h>
#include <stdint.h>

/* Resolves zero fields of q to the documented defaults. */
void hk__quality_resolve(const hk_quality_params *in, hk_quality_params *q);

/* Head pose in degrees from the 5 alignment landmarks (eye image-left,
 * eye image-right, nose, mouth corners): roll from the eye line, yaw from
 * the nose's offset from the eye/mouth midline in units of the eye
 * distance, pitch from the nose's height between the eye and mouth lines.
 * Estimates (about +-10 degrees near frontal), good enough to rank views
 * and reject profiles; not a head-pose model. */
void hk__pose_from_landmarks(const float lm[5][2], float *yaw, float *pitch,
                             float *roll);

/* Sharpness (variance of the 4-neighbour Laplacian) and exposure (mean
 * luma, share of clipped pixels) of the face box resampled to 32x32 grey,
 * so the numbers do not depend on the face's size in pixels. */
void hk__face_texture(const hk_image *img, const float box[4],
                      float *sharpness, float *brightness, float *clipped);

/* Intersection over union of two x0,y0,x1,y1 boxes. */
float hk__box_iou(const float *a, const float *b);

/*
 * How the recogniser spends its time on a stream (not in stills mode).
 * The defaults (hk__rec_default_tuning) are what every stream gets,
 * `herken watch` included; the benchmark sets others to measure them
 * against the defaults in the same run.
 */
typedef struct hk__rec_tuning {
	uint32_t stream_detect;   /* 1: every frame the neighbourhood of each
	                             track (2x2 mosaic cells) plus one scan view
	                             in rotation (full frame, then each tile);
	                             0: hk_engine_detect on the full frame (and
	                             every tile) every frame                   */
	uint32_t roi_max;         /* tracks given a neighbourhood per frame    */
	float roi_scale;          /* neighbourhood side / face side            */
	uint32_t roi_grid;        /* 2: four neighbourhoods per detector run;
	                             1: one each                              */
	float roi_merge;          /* >= 1: neighbourhoods share a run when the
	                             square around them is at most this times
	                             the smallest; 0: never                    */
	int64_t rescue_gap_us;    /* with no track and nothing found, the
	                             engine's rescue (lower threshold, zoomed
	                             and mirrored views) at most this often;
	                             < 0: never                                */
	int64_t view_gap_us;      /* least time between two embedded views of
	                             one track, once it has one (0: none)      */
	float view_margin;        /* a full template takes a view only when its
	                             quality beats the worst view by this      */
	uint32_t embed_per_frame; /* most faces embedded per frame (0: all);
	                             tracks without a view go first            */
} hk__rec_tuning;

void hk__rec_default_tuning(hk__rec_tuning *t);
/* Replaces r's tuning (before the first frame). */
void hk__recognizer_tune(hk_recognizer *r, const hk__rec_tuning *t);
/* Tiles per side of the rotating scan for a w x h stream frame:
 * detect_tiles when > 0, else by frame size. */
uint32_t hk__rec_tiles(const hk_recognizer *r, uint32_t w, uint32_t h);

#endif
