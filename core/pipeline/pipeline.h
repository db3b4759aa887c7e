/* Internal pieces of the recognition pipeline (core/pipeline): pure image
 * maths and tensor decoding, separated from the engine so that tests can
 * check each step against the golden tensors without running a model.
 * Not public: names are hk__, the header is not installed. */
#ifndef HK_PIPELINE_H
#define HK_PIPELINE_H

#include "herken.h"

#include <stddef.h>
#include <stdint.h>

/* Detector geometry (MediaPipe full-range: 192x192 input, 48x48 anchors). */
#define HK__DET_SIZE 192
#define HK__DET_GRID 48
#define HK__DET_ANCHORS (HK__DET_GRID * HK__DET_GRID)
#define HK__DET_REGS 16
#define HK__ONET_SIZE 48
#define HK__CHIP_SIZE 112

/* A detection in the detector's normalised input frame ([0,1] across the
 * 192x192 letterbox) or, after hk__letterbox_unmap, in image pixels (edge
 * convention: pixel k covers [k, k+1)). */
typedef struct hk__det {
	float box[4]; /* x0, y0, x1, y1 */
	float kp[6][2];
	float score;
	uint32_t cluster; /* anchors merged by weighted NMS */
} hk__det;

/*
 * Resample the source rectangle [x0, x0+sw) x [y0, y0+sh) of img (edge
 * convention, float, may extend outside the image: outside is black) to
 * ow x oh RGB floats (0..255, row-major, interleaved). When the rectangle
 * shrinks on both axes the output is the exact area average (separable
 * fractional coverage, denominator the full footprint: INTER_AREA);
 * otherwise bilinear sampling at x0 + (j+0.5)*sw/ow - 0.5, zero outside.
 * With filter HK__BILINEAR the bilinear sampling is used on every axis.
 * out holds ow*oh*3 floats. HK_E_NOMEM or HK_E_INVALID on bad sizes.
 */
enum { HK__AREA_OR_BILINEAR = 0, HK__BILINEAR = 1 };
hk_status hk__resample(const hk_image *img, double x0, double y0, double sw,
                       double sh, uint32_t ow, uint32_t oh, int filter, float *out);

/* Letterbox geometry: scale = size / (zoom * max(W, H)), image centred
 * (zoom > 1 shrinks the image inside the input: the rescue pass). */
typedef struct hk__letterbox {
	double scale, pad_x, pad_y; /* in detector-input pixels */
} hk__letterbox;

hk__letterbox hk__letterbox_of(uint32_t w, uint32_t h, uint32_t size, double zoom);

/* Letterbox img into size x size floats normalised v/127.5 - 1 (NHWC RGB),
 * black padding. Bilinear sampling with half-pixel centres and no
 * anti-aliasing, like the reference pipeline: on the six golden photos it
 * reproduces the reference detector scores to ~0.01, while an area filter
 * lowers the weakest face of sample4 from 0.65 to below 0.5. */
hk_status hk__letterbox_input(const hk_image *img, uint32_t size, double zoom,
                              float *out, hk__letterbox *lb);

/* Map a detection from normalised input coordinates to image pixels. */
void hk__letterbox_unmap(const hk__letterbox *lb, uint32_t size, hk__det *d);

/*
 * Decode the 2304 anchors (regressors [2304*16], logits [2304]) into
 * candidates with score >= thr (normalised input coordinates), then
 * weighted NMS at IoU > iou, best score first. Writes at most max
 * detections into out and returns how many were written. scratch must
 * hold 2 * HK__DET_ANCHORS hk__det.
 */
size_t hk__decode_detections(const float *regs, const float *logits, float thr,
                             float iou, hk__det *scratch, hk__det *out,
                             size_t max);

/* Weighted NMS over n candidates in scratch (any order; reordered): the
 * best remaining one and every candidate overlapping it by IoU > iou form
 * a cluster, output as the score-weighted mean box and keypoints with the
 * best score and the summed cluster sizes. rest holds n hk__det. Writes at
 * most max into out, returns how many. Also fuses detections of several
 * passes (box voting). */
size_t hk__weighted_nms(hk__det *scratch, size_t n, float iou, hk__det *rest, hk__det *out,
                        size_t max);

float hk__iou(const float *a, const float *b);

/* O-Net square crop of a box (f = 1): side max(w,h), centred. */
typedef struct hk__crop {
	double x, y, s;
} hk__crop;

hk__crop hk__onet_crop(const float box[4]);

/* O-Net input for a crop: 48x48 area resize, (v - 127.5) / 128, RGB,
 * transposed (tensor H walks image x). out holds 48*48*3 floats. */
hk_status hk__onet_input(const hk_image *img, const hk__crop *c, float *out);

/* Square crop c resampled to N x N (area filter when shrinking), RGB
 * (v - 127.5) / 128, transposed (tensor H walks image x): the input of
 * every MTCNN stage (R-Net N = 24, O-Net N = 48). out holds N*N*3 floats. */
hk_status hk__mtcnn_input(const hk_image *img, const hk__crop *c, uint32_t N, float *out);

/* HK_E_UNSUPPORTED unless pnet maps HxWx3 (transposed) to (H-12)/2+1 x
 * (W-12)/2+1 cells of [2] (probabilities) and [4] (box regression) and rnet
 * maps 24x24x3 to [2] and [4]. */
hk_status hk__mtcnn_check(const hk_model *pnet, const hk_model *rnet);

/* The MTCNN cascade on img (core/pipeline/mtcnn.c): the image pyramid down
 * from faces of min_face pixels packed into P-Net's one input, R-Net and
 * O-Net on the survivors (thresholds 0.6, 0.7, 0.7), weighted NMS after
 * each stage. Faces in image pixels with O-Net's probability as score and
 * its eyes, nose and mouth centre as keypoints (ears = eyes); at most max
 * into out, *n of them. onet_outs: O-Net's output indices of [2], [4],
 * [10]. */
hk_status hk__mtcnn_detect(const hk_image *img, const hk_model *pnet, const hk_model *rnet,
                           const hk_model *onet, const size_t onet_outs[3], float min_face,
                           hk__det *out, size_t max, size_t *n);

/* Landmarks [x0..x4, y0..y4] as crop fractions -> image points with pixel
 * centres at integer coordinates (the warp's convention). */
void hk__onet_landmarks(const hk__crop *c, const float lm[10], float pts[5][2]);

/* Pass-1 box regression (dx0, dy0, dx1, dy1) in crop units -> refined box. */
void hk__onet_refine(const hk__crop *c, const float reg[4], float box[4]);

/* The ArcFace 112x112 template (left eye, right eye, nose, left mouth,
 * right mouth, image order). */
extern const float hk__arcface_template[5][2];

/*
 * Least-squares similarity transform (rotation, uniform scale, translation)
 * mapping src[n] onto dst[n]: m = [a, -b, tx, b, a, ty], dst ~ m * src.
 * Returns -1 when the points are degenerate (all equal).
 */
int hk__similarity(const float (*src)[2], const float (*dst)[2], size_t n,
                   double m[6]);

/* Inverse of a similarity (or any invertible affine) m. -1 if singular. */
int hk__affine_invert(const double m[6], double inv[6]);

/*
 * Warp: output pixel (x, y) of the size x size RGB chip samples img
 * bilinearly at inv * (x, y, 1) (pixel centres at integer coordinates, zero
 * outside). inv maps chip to image. chip holds size*size*3 bytes, rounded.
 */
void hk__warp(const hk_image *img, const double inv[6], uint32_t size,
              uint8_t *chip);

/* Mirror a size x size RGB chip horizontally, in place. */
void hk__chip_mirror(uint8_t *chip, uint32_t size);

/* Alignment transform (chip -> image, for hk__warp) from n = 5 points in
 * template order (O-Net), or n = 4 detector keypoints (eyes, nose, mouth
 * centre; matched to the template with the mouth corners averaged). Points
 * use pixel centres at integer coordinates. -1 if degenerate. */
int hk__align_inverse(const float (*pts)[2], size_t n, double inv[6]);

/* Pose template k (0 profile with the nose to the image left, 1 turned
 * left, 2 frontal = the ArcFace template, 3 turned right, 4 right profile)
 * in the ArcFace 112x112 frame. */
void hk__pose_template(int k, float tpl[5][2]);

/* Like hk__align_inverse, onto whichever of the five pose templates the
 * points fit best (least residual after the similarity); *chosen (may be
 * NULL) gets its index. -1 if degenerate. */
int hk__align_inverse_pose(const float (*pts)[2], size_t n, double inv[6], int *chosen);

/* HK_ALIGN_VISIBLE: above this |yaw| (degrees) only the visible side is
 * fitted. Chosen a priori, below the quality gate's default max_yaw of 40;
 * not fitted on any data set. */
#define HK__VISIBLE_YAW 30.f

/* Yaw-gated alignment: with n = 5 points and |yaw| > HK__VISIBLE_YAW the
 * similarity of the visible eye, the nose and the visible mouth corner onto
 * the frontal template's eye and mouth corner of that side and the nose
 * moved sideways as yaw moves it; otherwise hk__align_inverse. *side (may be
 * NULL): 0 image-left side fitted, 1 image-right, -1 frontal path. -1 if
 * degenerate. */
int hk__align_inverse_visible(const float (*pts)[2], size_t n, float yaw, double inv[6],
                              int *side);

/* The detector's eyes, nose and mouth centre, pixel-centre convention. */
void hk__det_points4(const hk__det *d, float pts[4][2]);

/* ---- engine internals for benchmarks ---- */

/* The face hk_engine_embed_largest takes, the engine's one subject rule:
 * the largest usable face, or, among usable faces of at least half its
 * area, the one nearest the image centre (at a desk the customer is
 * centred; a bystander can come as close). SIZE_MAX when none is usable. */
size_t hk__subject_face(const hk_face *faces, size_t n, const hk_image *img);

/* Embeddings of the plain chip (plain[n*192]) and, when mirror is not NULL,
 * of the mirrored chip (mirror[n*192]) of each face, each L2-normalised by
 * the embedder; the engine's flip setting is ignored. */
hk_status hk__engine_embed_views(const hk_engine *e, const hk_image *img,
                                 const hk_face *faces, size_t n, float *plain,
                                 float *mirror);

/* The aligned 112x112 RGB chip of face f under the engine's alignment
 * mode into chip[112*112*3], and with mirror its mirror image right after
 * it (chip holds twice as much then): what hk_engine_embed feeds the
 * embedder. -1 when the landmarks are degenerate. */
int hk__engine_cut_chip(const hk_engine *e, const hk_image *img, const hk_face *f, uint8_t *chip,
                        int mirror);

/* A new copy of the engine's embedder (hk__engine_embedder, internal.h):
 * same file, precision and threads; the caller destroys it. A second
 * executor for hk_embed_many. */
hk_status hk__engine_load_embedder(const hk_engine *e, hk_model **out);

/* What hk_engine_embed returns from the views: normalise(plain + mirror),
 * or normalise(plain) when mirror is NULL. out may alias plain. -1 when the
 * sum is zero or not finite. */
int hk__combine_views(const float *plain, const float *mirror, float *out);

/*
 * Stream detection (the recogniser's detector on video). A region is a
 * square of the image, [cx - side/2, cx + side/2) on both axes (it may
 * reach outside the image: black there), shown to the detector either as
 * its whole 192x192 input (grid 1: a full-frame or tile scan) or as one
 * 96x96 cell of a 2x2 mosaic (grid 2: the neighbourhood of a tracked
 * face, so four tracks cost one detector run). All inputs go to the
 * detector in one batch; a detection that touches the edge of its cell
 * where that edge lies inside the image is a face cut by the view and is
 * dropped (its own region or another view sees it whole); the rest are
 * merged across views (IoU > nms_iou: the higher score stays) and O-Net
 * runs once on the survivors. No rescue pass and no extra views: on a
 * stream a face missed now is looked for again in the next frame.
 * faces[max] and *n as hk_engine_detect (best score first).
 */
typedef struct hk__region {
	float cx, cy, side; /* image pixels                                 */
	uint32_t grid;      /* 1: the whole detector input; 2: a 2x2 cell   */
	float thr;          /* least score of a face in this view (0: the
	                       engine's score_threshold)                    */
} hk__region;

hk_status hk__engine_detect_regions(const hk_engine *e, const hk_image *img,
                                    const hk__region *reg, size_t nreg, hk_face *faces,
                                    size_t max, size_t *n);

/* ---- accuracy guards of reduced-precision runs (guard.c) ----
 * Fixed before anything was measured, from the pipeline's needs: a face
 * counts as found again at IoU >= 0.5 (the VOC rule), its score may move by
 * 0.05; O-Net's points may move by 5 % of the eye distance (the spread of
 * O-Net's own error is several times that), its face probability by 0.05. */
#define HK__DET_GUARD_IOU 0.5f
#define HK__DET_GUARD_SCORE 0.05
#define HK__ONET_GUARD_DEV 0.05
#define HK__ONET_GUARD_PROB 0.05

typedef struct hk__det_guard {
	size_t images, faces;   /* fp32 detections (score >= thr) */
	size_t matched, missed; /* found again by the other run at IoU >= 0.5, or not */
	size_t extra;           /* the other run's detections matching none */
	double min_iou, iou_sum, max_score_diff;
} hk__det_guard;

/* Decodes both runs of one detector input (regressors [2304*16], logits
 * [2304]) at score threshold thr, NMS IoU 0.3, and adds the comparison of
 * the second against the first into g (zeroed by the caller first). */
hk_status hk__det_guard_add(const float *regs32, const float *logits32, const float *regs8,
                            const float *logits8, float thr, hk__det_guard *g);
int hk__det_guard_holds(const hk__det_guard *g);

typedef struct hk__onet_guard {
	size_t faces;
	double max_dev, dev_sum; /* worst landmark shift / fp32 eye distance, per face */
	double max_prob_diff;    /* face probability */
} hk__onet_guard;

/* O-Net outputs of one crop: landmarks [10] (x0..x4, y0..y4) and
 * probabilities [2], fp32 run first. */
void hk__onet_guard_add(const float lm32[10], const float prob32[2], const float lm8[10],
                        const float prob8[2], hk__onet_guard *g);
int hk__onet_guard_holds(const hk__onet_guard *g);

/* Runs the fp32 model m32 and the reduced-precision m8 (same file) on n
 * inputs in[n * H*W*C], one at a time, and adds their comparison into dg
 * (detectors, score threshold 0.6) or og (O-Net). */
hk_status hk__guard_models(const hk_model *m32, const hk_model *m8, const float *in, size_t n,
                           hk__det_guard *dg, hk__onet_guard *og);

#endif
