/* herken detect --draw: face boxes and landmarks drawn onto an image, and
 * the image written as PNG (libpng). */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "herken.h"

static void put_px(hk_image *im, long x, long y, const uint8_t c[3])
{
	if (x < 0 || y < 0 || x >= (long)im->width || y >= (long)im->height)
		return;
	memcpy(im->data + (size_t)y * im->stride + (size_t)x * 3, c, 3);
}

void cli_draw_faces(hk_image *im, const hk_frame_face *faces, size_t n)
{
	long t = (long)(im->width > im->height ? im->width : im->height) / 400 + 1;
	for (size_t i = 0; i < n; i++) {
		const hk_face *f = &faces[i].face;
		const uint8_t ok[3] = {0, 230, 0}, bad[3] = {230, 0, 0}, dot[3] = {255, 220, 0};
		const uint8_t *c = faces[i].quality.reasons ? bad : ok;
		long x0 = lroundf(f->box[0]), y0 = lroundf(f->box[1]);
		long x1 = lroundf(f->box[2]), y1 = lroundf(f->box[3]);
		for (long k = 0; k < t; k++) {
			for (long x = x0; x <= x1; x++) {
				put_px(im, x, y0 + k, c);
				put_px(im, x, y1 - k, c);
			}
			for (long y = y0; y <= y1; y++) {
				put_px(im, x0 + k, y, c);
				put_px(im, x1 - k, y, c);
			}
		}
		for (int p = 0; p < 5; p++)
			for (long dy = -t; dy <= t; dy++)
				for (long dx = -t; dx <= t; dx++)
					put_px(im, lroundf(f->landmarks[p][0]) + dx,
					       lroundf(f->landmarks[p][1]) + dy, dot);
	}
}

int cli_write_png(const char *path, const hk_image *im)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!png || !info || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, im->width, im->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < im->height; y++)
		png_write_row(png, im->data + (size_t)y * im->stride);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return fclose(f) ? -1 : 0;
}
