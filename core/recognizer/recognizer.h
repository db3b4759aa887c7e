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

#endif
