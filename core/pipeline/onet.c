/* MTCNN O-Net conventions (see golden/onet/README.md): square crop of the
 * detector box, exact area resize to 48x48, RGB (v-127.5)/128, transposed
 * input (tensor H walks image x), landmarks as crop fractions. */
#include "pipeline.h"

#include "internal.h"

#include <stdlib.h>

hk__crop hk__onet_crop(const float box[4])
{
	double w = (double)box[2] - box[0], h = (double)box[3] - box[1];
	double s = w > h ? w : h;
	hk__crop c = {((double)box[0] + box[2]) / 2 - s / 2,
	              ((double)box[1] + box[3]) / 2 - s / 2, s};
	return c;
}

hk_status hk__onet_input(const hk_image *img, const hk__crop *c, float *out)
{
	return hk__mtcnn_input(img, c, HK__ONET_SIZE, out);
}

hk_status hk__mtcnn_input(const hk_image *img, const hk__crop *c, uint32_t N, float *out)
{
	float *crop = malloc(sizeof(float) * N * N * 3);
	if (!crop)
		return hk__err(HK_E_NOMEM, "mtcnn input: out of memory");
	hk_status st = hk__resample(img, c->x, c->y, c->s, c->s, N, N, HK__AREA_OR_BILINEAR, crop);
	if (st == HK_OK) {
		for (uint32_t a = 0; a < N; a++)     /* tensor H = image column */
			for (uint32_t b = 0; b < N; b++) /* tensor W = image row    */
				for (int k = 0; k < 3; k++)
					out[(a * N + b) * 3 + k] =
					    (crop[(b * N + a) * 3 + k] - 127.5f) * 0.0078125f;
	}
	hk__wipe(crop, sizeof(float) * N * N * 3);
	free(crop);
	return st;
}

void hk__onet_landmarks(const hk__crop *c, const float lm[10], float pts[5][2])
{
	for (int i = 0; i < 5; i++) {
		pts[i][0] = (float)(c->x + c->s * lm[i] - 0.5);
		pts[i][1] = (float)(c->y + c->s * lm[i + 5] - 0.5);
	}
}

void hk__onet_refine(const hk__crop *c, const float reg[4], float box[4])
{
	box[0] = (float)(c->x + c->s * reg[0]);
	box[1] = (float)(c->y + c->s * reg[1]);
	box[2] = (float)(c->x + c->s + c->s * reg[2]);
	box[3] = (float)(c->y + c->s + c->s * reg[3]);
}
