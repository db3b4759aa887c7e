#define _GNU_SOURCE
/* Image decoding: JPEG (+EXIF orientation), PNG, PPM/PGM, sniffing, limits,
 * truncation, real photos from $HERKEN_SHARED, fuzz corpus replay. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "herken.h"
#include "test_nn_util.h"

#define HK_FUZZ_NO_MAIN
#include "fuzz_image.c"

/* ---------------------------------------------------------------- helpers */

typedef struct membuf {
	uint8_t *p;
	size_t n, cap;
} membuf;

static void mb_put(membuf *m, const void *src, size_t n)
{
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2 + 64;
		m->p = realloc(m->p, m->cap);
		cr_assert_not_null(m->p);
	}
	memcpy(m->p + m->n, src, n);
	m->n += n;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	membuf m = {0};
	uint8_t tmp[65536];
	size_t r;
	while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
		mb_put(&m, tmp, r);
	fclose(f);
	*n = m.n;
	return m.p ? m.p : calloc(1, 1);
}

static const char *shared_dir(void)
{
	const char *s = getenv("HERKEN_SHARED");
	return (s && *s) ? s : NULL;
}

/* Four quadrants: TL red, TR green, BL blue, BR white. */
enum { Q_RED, Q_GREEN, Q_BLUE, Q_WHITE };
static const uint8_t QCOL[4][3] = {
        {230, 20, 20}, {20, 200, 20}, {20, 20, 230}, {240, 240, 240}};

static uint8_t *quad_rgb(int w, int h)
{
	uint8_t *px = malloc((size_t)w * h * 3);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int q = (y >= h / 2) * 2 + (x >= w / 2);
			memcpy(px + ((size_t)y * w + x) * 3, QCOL[q], 3);
		}
	return px;
}

static uint8_t *jpeg_encode(const uint8_t *rgb, int w, int h, int pf,
                            size_t *n)
{
	tjhandle tj = tjInitCompress();
	cr_assert_not_null(tj);
	unsigned char *jb = NULL;
	unsigned long jn = 0;
	int ss = pf == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_444;
	int rc = tjCompress2(tj, rgb, w, 0, h, pf, &jb, &jn, ss, 95, 0);
	cr_assert_eq(rc, 0, "tjCompress2: %s", tjGetErrorStr2(tj));
	uint8_t *out = malloc(jn);
	memcpy(out, jb, jn);
	*n = jn;
	tjFree(jb);
	tjDestroy(tj);
	return out;
}

/* Inserts an APP1 Exif segment with the given orientation right after SOI.
 * type 3 = SHORT, 4 = LONG; be = big-endian TIFF. */
static uint8_t *with_exif(const uint8_t *j, size_t n, int orient, int be,
                          int type, size_t *outn)
{
	uint8_t t[64];
	size_t k = 0;
#define P16(v) do { uint16_t v_ = (uint16_t)(v); if (be) { t[k++] = v_ >> 8; t[k++] = v_ & 255; } else { t[k++] = v_ & 255; t[k++] = v_ >> 8; } } while (0)
#define P32(v) do { uint32_t w_ = (uint32_t)(v); if (be) { P16(w_ >> 16); P16(w_); } else { P16(w_); P16(w_ >> 16); } } while (0)
	t[k++] = be ? 'M' : 'I';
	t[k++] = be ? 'M' : 'I';
	P16(42);
	P32(8);
	P16(2);                          /* two entries */
	P16(0x010f); P16(2); P32(4); P32(0x41424300u); /* Make, ASCII, inline */
	P16(0x0112); P16(type); P32(1);
	if (type == 3) { P16(orient); P16(0); } else { P32(orient); }
	P32(0);                          /* no next IFD */
#undef P16
#undef P32
	size_t seg = 2 + 6 + k;
	membuf m = {0};
	mb_put(&m, j, 2);
	uint8_t hdr[4] = {0xff, 0xe1, (uint8_t)(seg >> 8), (uint8_t)seg};
	mb_put(&m, hdr, 4);
	mb_put(&m, "Exif\0\0", 6);
	mb_put(&m, t, k);
	mb_put(&m, j + 2, n - 2);
	*outn = m.n;
	return m.p;
}

/* JPEG of the four-quadrant test image. */
static uint8_t *quad_jpeg(int w, int h, size_t *n)
{
	uint8_t *rgb = quad_rgb(w, h);
	uint8_t *j = jpeg_encode(rgb, w, h, TJPF_RGB, n);
	free(rgb);
	return j;
}

static int near(const uint8_t *px, const uint8_t *want, int tol)
{
	for (int c = 0; c < 3; c++)
		if (abs((int)px[c] - (int)want[c]) > tol)
			return 0;
	return 1;
}

static const uint8_t *pix(const hk_image *im, uint32_t x, uint32_t y)
{
	return im->data + (size_t)y * im->stride + (size_t)x * 3;
}

/* Colour at the centre of each displayed quadrant: TL, TR, BL, BR. */
static void check_quads(const hk_image *im, const int want[4], int orient)
{
	uint32_t w = im->width, h = im->height;
	uint32_t xs[2] = {w / 4, 3 * w / 4}, ys[2] = {h / 4, 3 * h / 4};
	for (int q = 0; q < 4; q++) {
		const uint8_t *p = pix(im, xs[q & 1], ys[q >> 1]);
		cr_assert(near(p, QCOL[want[q]], 24),
		          "orientation %d quadrant %d: got %u,%u,%u want %u,%u,%u",
		          orient, q, p[0], p[1], p[2], QCOL[want[q]][0],
		          QCOL[want[q]][1], QCOL[want[q]][2]);
	}
}

/* -------------------------------------------------------------- sniffing */

Test(image, sniff_names)
{
	cr_assert_str_eq(hk_image_sniff("\xff\xd8\xff\xe0", 4), "JPEG");
	cr_assert_str_eq(hk_image_sniff("\x89PNG\r\n\x1a\n", 8), "PNG");
	cr_assert_str_eq(hk_image_sniff("RIFF\x10\0\0\0WEBPVP8 ", 16), "WebP");
	cr_assert_str_eq(hk_image_sniff("GIF89a..", 8), "GIF");
	cr_assert_str_eq(hk_image_sniff("BM\0\0\0\0", 6), "BMP");
	cr_assert_str_eq(hk_image_sniff("II*\0\x08\0\0\0", 8), "TIFF");
	cr_assert_str_eq(hk_image_sniff("MM\0*\0\0\0\x08", 8), "TIFF");
	cr_assert_str_eq(hk_image_sniff("\0\0\0\x18" "ftypheic\0\0\0\0", 16), "HEIF");
	cr_assert_str_eq(hk_image_sniff("\0\0\0\x18" "ftypavif\0\0\0\0", 16), "AVIF");
	cr_assert_str_eq(hk_image_sniff("%PDF-1.7", 8), "PDF");
	cr_assert_str_eq(hk_image_sniff("P6\n", 3), "PPM");
	cr_assert_str_eq(hk_image_sniff("P2\n", 3), "PGM (ASCII)");
	cr_assert_str_eq(hk_image_sniff("hello world", 11), "unknown");
	cr_assert_str_eq(hk_image_sniff("", 0), "empty");
}

Test(image, unsupported_formats_are_named)
{
	static const struct { const char *b; size_t n; const char *name; } c[] = {
	        {"RIFF\x10\0\0\0WEBPVP8 xxxx", 20, "WebP"},
	        {"GIF89a\1\0\1\0\0\0\0", 13, "GIF"},
	        {"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", 14, "BMP"},
	        {"II*\0\x08\0\0\0", 8, "TIFF"},
	        {"\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24, "HEIF"},
	        {"\0\0\0\x1c" "ftypavif\0\0\0\0avifmif1", 24, "AVIF"},
	        {"%PDF-1.4\n", 9, "PDF"},
	        {"just some text", 14, "unknown"},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		hk_image im;
		hk_status s = hk_image_decode(c[i].b, c[i].n, &im);
		cr_assert_eq(s, HK_E_UNSUPPORTED, "%s: status %d", c[i].name, s);
		cr_assert_null(im.data);
		cr_assert_not_null(strstr(hk_last_error(), c[i].name), "%s: '%s'",
		                   c[i].name, hk_last_error());
	}
}

Test(image, webp_named_jpg_in_shared)
{
	const char *sh = shared_dir();
	if (!sh)
		cr_skip_test("HERKEN_SHARED absent");
	char path[4096];
	snprintf(path, sizeof path, "%s/datasets/deepface_unit/img47.jpg", sh);
	size_t n;
	uint8_t *b = slurp(path, &n);
	if (!b)
		cr_skip_test("deepface_unit/img47.jpg absent");
	hk_image im;
	cr_assert_eq(hk_image_decode(b, n, &im), HK_E_UNSUPPORTED);
	cr_assert_not_null(strstr(hk_last_error(), "WebP"), "%s", hk_last_error());
	cr_assert_str_eq(hk_image_sniff(b, n), "WebP");
	cr_assert_eq(hk_image_load(path, &im), HK_E_UNSUPPORTED);
	cr_assert_not_null(strstr(hk_last_error(), "WebP"));
	free(b);
}

Test(image, empty_and_bad_args)
{
	hk_image im;
	cr_assert_eq(hk_image_decode("", 0, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode(NULL, 0, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("x", 1, NULL), HK_E_INVALID);
	cr_assert_eq(hk_image_decode(NULL, 5, &im), HK_E_INVALID);
	cr_assert_eq(hk_image_load("/nonexistent/herken/x.jpg", &im),
	             HK_E_NOT_FOUND);
	cr_assert_eq(hk_image_load("/", &im), HK_E_IO);
	hk_image_free(NULL);
	/* A caller-described image is not touched by hk_image_free. */
	uint8_t mine[3] = {1, 2, 3};
	hk_image own = {1, 1, 3, 0, mine};
	hk_image_free(&own);
	cr_assert_eq(mine[0], 1);
	cr_assert_eq(own.data, mine);
	char tmpl[] = "/tmp/hk_img_empty_XXXXXX";
	int fd = mkstemp(tmpl);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(hk_image_load(tmpl, &im), HK_E_FORMAT);
	unlink(tmpl);
}

/* ------------------------------------------------------------------- JPEG */

Test(image, jpeg_synthetic_colours)
{
	size_t n;
	uint8_t *j = quad_jpeg(64, 32, &n);
	hk_image im;
	cr_assert_eq(hk_image_decode(j, n, &im), HK_OK, "%s", hk_last_error());
	cr_assert_eq(im.width, 64);
	cr_assert_eq(im.height, 32);
	cr_assert_geq(im.stride, 3 * 64);
	static const int want[4] = {Q_RED, Q_GREEN, Q_BLUE, Q_WHITE};
	check_quads(&im, want, 1);
	hk_image_free(&im);
	cr_assert_null(im.data);
	free(j);
}

Test(image, jpeg_greyscale_to_rgb)
{
	int w = 40, h = 24;
	uint8_t *g = malloc((size_t)w * h);
	for (int i = 0; i < w * h; i++)
		g[i] = (uint8_t)((i % w) < w / 2 ? 40 : 200);
	size_t n;
	uint8_t *j = jpeg_encode(g, w, h, TJPF_GRAY, &n);
	hk_image im;
	cr_assert_eq(hk_image_decode(j, n, &im), HK_OK, "%s", hk_last_error());
	const uint8_t *l = pix(&im, 5, 12), *r = pix(&im, 35, 12);
	cr_assert(l[0] == l[1] && l[1] == l[2] && abs(l[0] - 40) < 6);
	cr_assert(r[0] == r[1] && r[1] == r[2] && abs(r[0] - 200) < 6);
	hk_image_free(&im);
	free(j);
	free(g);
}

Test(image, jpeg_exif_all_orientations)
{
	/* Displayed quadrant colours (TL, TR, BL, BR) for a stored image with
	 * TL red, TR green, BL blue, BR white; from the EXIF 2.32 definition
	 * of each value (e.g. 6: rotate 90 degrees clockwise to display). */
	static const int want[9][4] = {
	        {0},
	        {Q_RED, Q_GREEN, Q_BLUE, Q_WHITE},   /* 1 as stored          */
	        {Q_GREEN, Q_RED, Q_WHITE, Q_BLUE},   /* 2 mirror horizontal  */
	        {Q_WHITE, Q_BLUE, Q_GREEN, Q_RED},   /* 3 rotate 180         */
	        {Q_BLUE, Q_WHITE, Q_RED, Q_GREEN},   /* 4 mirror vertical    */
	        {Q_RED, Q_BLUE, Q_GREEN, Q_WHITE},   /* 5 transpose          */
	        {Q_BLUE, Q_RED, Q_WHITE, Q_GREEN},   /* 6 rotate 90 CW       */
	        {Q_WHITE, Q_GREEN, Q_BLUE, Q_RED},   /* 7 transverse         */
	        {Q_GREEN, Q_WHITE, Q_RED, Q_BLUE},   /* 8 rotate 90 CCW      */
	};
	size_t n;
	uint8_t *j = quad_jpeg(64, 32, &n);
	for (int be = 0; be <= 1; be++)
		for (int type = 3; type <= 4; type++)
			for (int o = 1; o <= 8; o++) {
				size_t en;
				uint8_t *e = with_exif(j, n, o, be, type, &en);
				hk_image im;
				cr_assert_eq(hk_image_decode(e, en, &im), HK_OK, "%s",
				             hk_last_error());
				cr_assert_eq(im.width, o >= 5 ? 32u : 64u, "o=%d", o);
				cr_assert_eq(im.height, o >= 5 ? 64u : 32u, "o=%d", o);
				check_quads(&im, want[o], o);
				hk_image_free(&im);
				free(e);
			}
	free(j);
}

Test(image, jpeg_bad_exif_is_ignored)
{
	size_t n;
	uint8_t *j = quad_jpeg(64, 32, &n);
	static const int want[4] = {Q_RED, Q_GREEN, Q_BLUE, Q_WHITE};
	/* Orientation 9 (invalid), and an IFD offset pointing past the end. */
	size_t en;
	uint8_t *e = with_exif(j, n, 9, 1, 3, &en);
	hk_image im;
	cr_assert_eq(hk_image_decode(e, en, &im), HK_OK);
	check_quads(&im, want, 9);
	hk_image_free(&im);
	free(e);
	e = with_exif(j, n, 6, 1, 3, &en);
	e[2 + 4 + 6 + 7] = 0xf0; /* IFD0 offset low byte (big-endian) */
	cr_assert_eq(hk_image_decode(e, en, &im), HK_OK);
	cr_assert_eq(im.width, 64);
	hk_image_free(&im);
	free(e);
	free(j);
}

Test(image, jpeg_truncated_every_offset)
{
	size_t n, en;
	uint8_t *j = quad_jpeg(48, 40, &n);
	uint8_t *e = with_exif(j, n, 6, 0, 3, &en);
	for (size_t cut = 0; cut < en; cut++) {
		hk_image im;
		hk_status s = hk_image_decode(e, cut, &im);
		cr_assert_eq(s, HK_E_FORMAT, "cut at %zu of %zu: %d (%s)", cut, en,
		             s, hk_last_error());
		cr_assert_null(im.data);
	}
	free(e);
	free(j);
}

Test(image, jpeg_huge_dimensions_limit)
{
	size_t n;
	uint8_t *j = quad_jpeg(16, 16, &n);
	size_t p = 2;
	int patched = 0;
	while (p + 9 < n) { /* find SOF0 and declare 60000 x 60000 */
		cr_assert_eq(j[p], 0xff);
		if (j[p + 1] == 0xc0) {
			j[p + 5] = 0xea; j[p + 6] = 0x60;
			j[p + 7] = 0xea; j[p + 8] = 0x60;
			patched = 1;
			break;
		}
		p += 2 + ((size_t)j[p + 2] << 8 | j[p + 3]);
	}
	cr_assert(patched);
	hk_image im;
	cr_assert_eq(hk_image_decode(j, n, &im), HK_E_LIMIT, "%s",
	             hk_last_error());
	cr_assert_null(im.data);
	free(j);
}

Test(image, jpeg_real_photos)
{
	const char *sh = shared_dir();
	if (!sh)
		cr_skip_test("HERKEN_SHARED absent");
	/* Sizes as stored in each file's SOF0 (none carries a rotating EXIF
	 * orientation; checked with `file`). */
	static const uint32_t hs[6] = {1280, 1367, 1350, 1448, 1398, 1537};
	int seen = 0;
	for (int i = 0; i < 6; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/golden/images/sample%d.jpg", sh, i + 1);
		size_t n;
		uint8_t *b = slurp(path, &n);
		if (!b)
			continue;
		seen++;
		hk_image a, c;
		cr_assert_eq(hk_image_decode(b, n, &a), HK_OK, "%s", hk_last_error());
		cr_assert_eq(a.width, 1920);
		cr_assert_eq(a.height, hs[i]);
		cr_assert_eq(hk_image_load(path, &c), HK_OK);
		cr_assert_eq(memcmp(a.data, c.data, (size_t)a.stride * a.height), 0);
		/* A real photo: not flat. */
		uint64_t sum = 0, sq = 0;
		for (size_t k = 0; k < (size_t)a.stride * a.height; k += 97) {
			sum += a.data[k];
			sq += (uint64_t)a.data[k] * a.data[k];
		}
		size_t cnt = ((size_t)a.stride * a.height + 96) / 97;
		double mean = (double)sum / cnt, var = (double)sq / cnt - mean * mean;
		cr_assert(mean > 20 && mean < 235 && var > 100, "mean %f var %f",
		          mean, var);
		hk_image_free(&a);
		hk_image_free(&c);
		free(b);
	}
	if (!seen)
		cr_skip_test("golden/images absent");
}

/* -------------------------------------------------------------------- PNG */

typedef struct png_spec {
	int ctype, depth, interlace;
} png_spec;

static void png_mem_write(png_structp png, png_bytep d, size_t n)
{
	mb_put(png_get_io_ptr(png), d, n);
}
static void png_mem_flush(png_structp png) { (void)png; }

/* Sample value (in the file's bit depth) of channel c at (x, y). */
static unsigned sample(int x, int y, int c, int depth)
{
	unsigned max = (1u << depth) - 1;
	return ((unsigned)(x * 7 + y * 13 + c * 29) * 2654435761u >> 8) % (max + 1);
}

static uint8_t *png_encode(int w, int h, png_spec sp, size_t *n)
{
	membuf m = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
	                                          NULL, NULL);
	png_infop info = png_create_info_struct(png);
	cr_assert(png && info);
	if (setjmp(png_jmpbuf(png)))
		cr_assert_fail("libpng write failed");
	png_set_write_fn(png, &m, png_mem_write, png_mem_flush);
	png_set_IHDR(png, info, w, h, sp.depth, sp.ctype, sp.interlace,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (sp.ctype == PNG_COLOR_TYPE_PALETTE) {
		png_color pal[256];
		for (int i = 0; i < 256; i++) {
			pal[i].red = (png_byte)i;
			pal[i].green = (png_byte)(255 - i);
			pal[i].blue = (png_byte)(i * 3);
		}
		png_set_PLTE(png, info, pal, 1 << sp.depth);
	}
	png_write_info(png, info);
	int ch = png_get_channels(png, info);
	size_t rowbytes = png_get_rowbytes(png, info);
	uint8_t *row = calloc(1, rowbytes);
	int passes = png_set_interlace_handling(png);
	for (int pass = 0; pass < passes; pass++)
		for (int y = 0; y < h; y++) {
			memset(row, 0, rowbytes);
			for (int x = 0; x < w; x++)
				for (int c = 0; c < ch; c++) {
					unsigned v = sample(x, y, c, sp.depth);
					size_t bit = ((size_t)x * ch + c) * sp.depth;
					if (sp.depth == 16) {
						row[bit / 8] = (uint8_t)(v >> 8);
						row[bit / 8 + 1] = (uint8_t)v;
					} else {
						row[bit / 8] |= (uint8_t)(v << (8 - sp.depth - bit % 8));
					}
				}
			png_write_row(png, row);
		}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(row);
	*n = m.n;
	return m.p;
}

/* The RGB8 value the decoder must produce for pixel (x, y). */
static void png_expect(png_spec sp, int x, int y, uint8_t out[3])
{
	unsigned max = (1u << sp.depth) - 1;
#define SCALE(v) ((uint8_t)(sp.depth == 16 ? ((v) * 255u + 32767u) / 65535u : (v) * 255u / max))
	switch (sp.ctype) {
	case PNG_COLOR_TYPE_PALETTE: {
		unsigned i = sample(x, y, 0, sp.depth);
		out[0] = (uint8_t)i;
		out[1] = (uint8_t)(255 - i);
		out[2] = (uint8_t)(i * 3);
		break;
	}
	case PNG_COLOR_TYPE_GRAY:
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		out[0] = out[1] = out[2] = SCALE(sample(x, y, 0, sp.depth));
		break;
	default:
		for (int c = 0; c < 3; c++)
			out[c] = SCALE(sample(x, y, c, sp.depth));
	}
#undef SCALE
}

Test(image, png_all_colour_types)
{
	static const png_spec specs[] = {
	        {PNG_COLOR_TYPE_RGB, 8, 0},        {PNG_COLOR_TYPE_RGB, 16, 0},
	        {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},  {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0},
	        {PNG_COLOR_TYPE_GRAY, 1, 0},       {PNG_COLOR_TYPE_GRAY, 2, 0},
	        {PNG_COLOR_TYPE_GRAY, 4, 0},       {PNG_COLOR_TYPE_GRAY, 8, 0},
	        {PNG_COLOR_TYPE_GRAY, 16, 0},      {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
	        {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0}, {PNG_COLOR_TYPE_PALETTE, 1, 0},
	        {PNG_COLOR_TYPE_PALETTE, 4, 0},    {PNG_COLOR_TYPE_PALETTE, 8, 0},
	        {PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7},
	        {PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_ADAM7},
	};
	const int w = 37, h = 23;
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		size_t n;
		uint8_t *p = png_encode(w, h, specs[i], &n);
		hk_image im;
		cr_assert_eq(hk_image_decode(p, n, &im), HK_OK, "spec %zu: %s", i,
		             hk_last_error());
		cr_assert_eq(im.width, (uint32_t)w);
		cr_assert_eq(im.height, (uint32_t)h);
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				uint8_t e[3];
				png_expect(specs[i], x, y, e);
				const uint8_t *g = pix(&im, x, y);
				for (int c = 0; c < 3; c++)
					cr_assert(abs((int)g[c] - e[c]) <= (specs[i].depth == 16),
					          "spec %zu (%d,%d) c%d: %u want %u", i, x, y,
					          c, g[c], e[c]);
			}
		hk_image_free(&im);
		free(p);
	}
}

Test(image, png_truncated_and_corrupt)
{
	size_t n;
	png_spec sp = {PNG_COLOR_TYPE_RGB, 8, 0};
	uint8_t *p = png_encode(19, 11, sp, &n);
	for (size_t cut = 0; cut < n; cut++) {
		hk_image im;
		hk_status s = hk_image_decode(p, cut, &im);
		cr_assert_eq(s, HK_E_FORMAT, "cut %zu of %zu: %d %s", cut, n, s,
		             hk_last_error());
		cr_assert_null(im.data);
	}
	/* A flipped bit inside IHDR fails its CRC. */
	p[20] ^= 0x01;
	hk_image im;
	cr_assert_eq(hk_image_decode(p, n, &im), HK_E_FORMAT);
	free(p);
}

static uint32_t crc32_ref(const uint8_t *b, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

Test(image, png_huge_dimensions_limit)
{
	size_t n;
	png_spec sp = {PNG_COLOR_TYPE_RGB, 8, 0};
	uint8_t *p = png_encode(8, 8, sp, &n);
	/* IHDR data at 16..28: width, height (big-endian); CRC over 12..29. */
	uint32_t W = 20000, H = 20000;
	uint8_t dims[8] = {W >> 24, W >> 16, W >> 8, W, H >> 24, H >> 16, H >> 8, H};
	memcpy(p + 16, dims, 8);
	uint32_t c = crc32_ref(p + 12, 17);
	uint8_t cb[4] = {c >> 24, c >> 16, c >> 8, c};
	memcpy(p + 29, cb, 4);
	hk_image im;
	cr_assert_eq(hk_image_decode(p, n, &im), HK_E_LIMIT, "%s", hk_last_error());
	cr_assert_null(im.data);
	free(p);
}

Test(image, png_golden_abc)
{
	const char *sh = shared_dir();
	if (!sh)
		cr_skip_test("HERKEN_SHARED absent");
	char path[4096];
	snprintf(path, sizeof path, "%s/golden/abc/A_sample1_f2.aligned112.png", sh);
	hk_image im;
	hk_status s = hk_image_load(path, &im);
	if (s == HK_E_NOT_FOUND)
		cr_skip_test("golden/abc absent");
	cr_assert_eq(s, HK_OK, "%s", hk_last_error());
	cr_assert_eq(im.width, 112);
	cr_assert_eq(im.height, 112);
	/* The aligned chip is a face: centre pixels are not black padding. */
	const uint8_t *c = pix(&im, 56, 56);
	cr_assert(c[0] + c[1] + c[2] > 60);
	hk_image_free(&im);
}

/* -------------------------------------------------------------------- PNM */

Test(image, pnm_binary_and_ascii)
{
	const int w = 5, h = 3;
	static const int maxvals[] = {255, 1000, 65535, 1};
	for (size_t mi = 0; mi < 4; mi++) {
		int mv = maxvals[mi];
		for (int kind = 0; kind < 4; kind++) { /* P5 P6 P2 P3 */
			int ch = (kind == 1 || kind == 3) ? 3 : 1;
			int ascii = kind >= 2;
			membuf m = {0};
			char hdr[64];
			int hn = snprintf(hdr, sizeof hdr, "P%c\n# comment\n%d %d\n%d\n",
			                  "5623"[kind], w, h, mv);
			mb_put(&m, hdr, (size_t)hn);
			unsigned vals[5 * 3 * 3];
			for (int i = 0; i < w * h * ch; i++) {
				vals[i] = (unsigned)(i * 7919u) % (unsigned)(mv + 1);
				if (ascii) {
					hn = snprintf(hdr, sizeof hdr, "%u%c", vals[i],
					              i % 4 == 3 ? '\n' : ' ');
					mb_put(&m, hdr, (size_t)hn);
				} else if (mv > 255) {
					uint8_t b2[2] = {(uint8_t)(vals[i] >> 8), (uint8_t)vals[i]};
					mb_put(&m, b2, 2);
				} else {
					uint8_t b1 = (uint8_t)vals[i];
					mb_put(&m, &b1, 1);
				}
			}
			hk_image im;
			cr_assert_eq(hk_image_decode(m.p, m.n, &im), HK_OK,
			             "kind %d maxval %d: %s", kind, mv, hk_last_error());
			cr_assert_eq(im.width, (uint32_t)w);
			cr_assert_eq(im.height, (uint32_t)h);
			for (int i = 0; i < w * h; i++)
				for (int c = 0; c < 3; c++) {
					unsigned v = vals[ch == 3 ? i * 3 + c : i];
					unsigned want = (v * 255u + (unsigned)mv / 2) / (unsigned)mv;
					cr_assert_eq(im.data[i * 3 + c], want,
					             "kind %d mv %d px %d", kind, mv, i);
				}
			hk_image_free(&im);
			/* Truncation: every cut of binary data; ASCII cuts that drop
			 * at least the whole last sample. */
			size_t last_sample = m.n - 1; /* skip the final delimiter */
			if (ascii)
				while (last_sample > 0 && m.p[last_sample - 1] != ' ' &&
				       m.p[last_sample - 1] != '\n')
					last_sample--;
			for (size_t cut = 0; cut < m.n; cut++) {
				if (ascii && cut > last_sample)
					break;
				hk_status s = hk_image_decode(m.p, cut, &im);
				cr_assert_eq(s, HK_E_FORMAT, "kind %d cut %zu of %zu: %d",
				             kind, cut, m.n, s);
			}
			free(m.p);
		}
	}
}

Test(image, pnm_bad_values_and_limits)
{
	hk_image im;
	cr_assert_eq(hk_image_decode("P5 2 1 10\n\x05\x0b", 12, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("P2 2 1 10\n5 11\n", 15, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("P2 2 1 70000\n5 11\n", 18, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("P6 0 4 255\n", 11, &im), HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("P6 100000 100000 255\n", 21, &im),
	             HK_E_LIMIT);
	cr_assert_eq(hk_image_decode("P6 99999999999999999999 1 255\n", 30, &im),
	             HK_E_FORMAT);
	cr_assert_eq(hk_image_decode("P4 1 1\n\x80", 8, &im), HK_E_UNSUPPORTED);
	cr_assert_not_null(strstr(hk_last_error(), "PBM"));
}

Test(image, pgm_att_orl)
{
	const char *sh = shared_dir();
	if (!sh)
		cr_skip_test("HERKEN_SHARED absent");
	int seen = 0;
	for (int s = 1; s <= 3; s++)
		for (int k = 1; k <= 3; k++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/datasets/att_orl/s%d/%d.pgm", sh,
			         s, k);
			size_t n;
			uint8_t *b = slurp(path, &n);
			if (!b)
				continue;
			seen++;
			hk_image im;
			cr_assert_eq(hk_image_decode(b, n, &im), HK_OK, "%s",
			             hk_last_error());
			cr_assert_eq(im.width, 92);
			cr_assert_eq(im.height, 112);
			/* maxval 255: the pixels are the file's last 92*112 bytes. */
			const uint8_t *raw = b + n - 92 * 112;
			for (size_t i = 0; i < 92 * 112; i++)
				for (int c = 0; c < 3; c++)
					cr_assert_eq(im.data[i * 3 + c], raw[i]);
			hk_image_free(&im);
			free(b);
		}
	if (!seen)
		cr_skip_test("att_orl absent");
}

/* ------------------------------------------------------------ fuzz corpus */

static void image_replay_one(const char *p, uint8_t *b, size_t n, void *ctx)
{
	(void)p;
	hk_fuzz_image_one(b, n);
	hk_image im;
	if (hk_image_decode(b, n, &im) == HK_OK)
		(*(int *)ctx)++;
	hk_image_free(&im);
}

Test(image, fuzz_corpus_replay)
{
	int ok = 0;
	int files = tn_corpus_each("image", image_replay_one, &ok);
	if (files < 0)
		cr_skip_test("tests/corpus/image absent (run from the repo root)");
	cr_assert_geq(files, 5);
	cr_assert_geq(ok, 4); /* the valid seeds still decode */
}
