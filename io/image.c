/*
 * Image decoding: JPEG (TurboJPEG, EXIF orientation applied), PNG (libpng),
 * binary and ASCII PPM/PGM. Every decoder treats its input as hostile: the
 * header is checked against HK_IMAGE_MAX_PIXELS before any pixel buffer is
 * allocated, every read is bounds-checked, and truncated or corrupt data is
 * HK_E_FORMAT.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>


/* Files larger than this are refused by hk_image_load (a 64 Mpixel image
 * never needs more as JPEG or PNG; PPM at 16 bits per sample might). */
#define HK__IMG_MAX_FILE ((size_t)1 << 30)

static int has_prefix(const uint8_t *b, size_t len, const char *magic,
                      size_t mlen)
{
	return len >= mlen && memcmp(b, magic, mlen) == 0;
}

/* 1 when b[0..len) is a strict prefix of magic: too short to tell, but
 * consistent with that format (a truncated file). */
static int is_strict_prefix(const uint8_t *b, size_t len, const char *magic,
                            size_t mlen)
{
	return len > 0 && len < mlen && memcmp(b, magic, len) == 0;
}

enum {
	FMT_UNKNOWN,
	FMT_JPEG,
	FMT_PNG,
	FMT_PNM, /* P2 P3 P5 P6 */
};

static int is_heif_brand(const uint8_t *b)
{
	static const char *const brands[] = {"heic", "heix", "hevc", "hevx",
	                                     "heim", "heis", "mif1", "msf1",
	                                     "avif", "avis"};
	for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
		if (memcmp(b, brands[i], 4) == 0)
			return 1;
	return 0;
}

HK_API const char *hk_image_sniff(const void *bytes, size_t len)
{
	const uint8_t *b = bytes;
	if (!b || len == 0)
		return "empty";
	if (has_prefix(b, len, "\xff\xd8\xff", 3))
		return "JPEG";
	if (has_prefix(b, len, "\x89PNG\r\n\x1a\n", 8))
		return "PNG";
	if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
		return "WebP";
	if (has_prefix(b, len, "GIF87a", 6) || has_prefix(b, len, "GIF89a", 6))
		return "GIF";
	if (has_prefix(b, len, "BM", 2))
		return "BMP";
	if (has_prefix(b, len, "II*\0", 4) || has_prefix(b, len, "MM\0*", 4))
		return "TIFF";
	if (len >= 12 && memcmp(b + 4, "ftyp", 4) == 0 && is_heif_brand(b + 8))
		return (memcmp(b + 8, "avi", 3) == 0) ? "AVIF" : "HEIF";
	if (has_prefix(b, len, "%PDF", 4))
		return "PDF";
	if (len >= 2 && b[0] == 'P') {
		switch (b[1]) {
		case '2': return "PGM (ASCII)";
		case '3': return "PPM (ASCII)";
		case '5': return "PGM";
		case '6': return "PPM";
		case '1': case '4': return "PBM";
		case '7': return "PAM";
		default: break;
		}
	}
	if (has_prefix(b, len, "\xff\x0a", 2) ||
	    has_prefix(b, len, "\0\0\0\x0cJXL \r\n\x87\n", 12))
		return "JPEG XL";
	if (has_prefix(b, len, "\0\0\0\x0cjP  \r\n\x87\n", 12) ||
	    has_prefix(b, len, "\xff\x4f\xff\x51", 4))
		return "JPEG 2000";
	if (has_prefix(b, len, "8BPS", 4))
		return "Photoshop PSD";
	if (has_prefix(b, len, "\0\0\1\0", 4))
		return "ICO";
	return "unknown";
}

static int classify(const uint8_t *b, size_t len)
{
	if (has_prefix(b, len, "\xff\xd8\xff", 3))
		return FMT_JPEG;
	if (has_prefix(b, len, "\x89PNG\r\n\x1a\n", 8))
		return FMT_PNG;
	if (len >= 2 && b[0] == 'P' &&
	    (b[1] == '2' || b[1] == '3' || b[1] == '5' || b[1] == '6'))
		return FMT_PNM;
	return FMT_UNKNOWN;
}

/* Allocates an owned w x h RGB image after the pixel limit check. */
hk_status hk__image_alloc(uint32_t w, uint32_t h, hk_image *out,
                          const char *what)
{
	if (w == 0 || h == 0)
		return hk__err(HK_E_FORMAT, "%s: zero image dimension %ux%u", what,
		               w, h);
	if ((uint64_t)w * h > HK_IMAGE_MAX_PIXELS)
		return hk__err(HK_E_LIMIT,
		               "%s: %ux%u exceeds HK_IMAGE_MAX_PIXELS (%u)", what,
		               w, h, HK_IMAGE_MAX_PIXELS);
	size_t stride = (size_t)w * 3, total;
	if (hk__mul_size(stride, h, &total))
		return hk__err(HK_E_LIMIT, "%s: image size overflows", what);
	uint8_t *px = hk__aalloc(total);
	if (!px)
		return hk__err(HK_E_NOMEM, "%s: cannot allocate %zu bytes", what,
		               total);
	out->width = w;
	out->height = h;
	out->stride = (uint32_t)stride;
	out->flags = HK__IMG_OWNED;
	out->data = px;
	return HK_OK;
}

HK_API void hk_image_free(hk_image *img)
{
	if (!img)
		return;
	if ((img->flags & HK__IMG_OWNED) && img->data) {
		hk__wipe(img->data, (size_t)img->stride * img->height);
		hk__afree(img->data);
		memset(img, 0, sizeof *img);
	}
}

/* ------------------------------------------------------------------ */
/* EXIF orientation                                                    */
/* ------------------------------------------------------------------ */

static uint32_t rd16(const uint8_t *p, int be)
{
	return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int be)
{
	return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	                    (uint32_t)p[2] << 8 | p[3]
	          : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	                    (uint32_t)p[1] << 8 | p[0];
}

/* Orientation (1..8) from a TIFF block (the payload after "Exif\0\0"), or 1
 * when absent or malformed: a bad EXIF block never fails the decode. */
static int tiff_orientation(const uint8_t *t, size_t n)
{
	if (n < 8)
		return 1;
	int be;
	if (t[0] == 'I' && t[1] == 'I')
		be = 0;
	else if (t[0] == 'M' && t[1] == 'M')
		be = 1;
	else
		return 1;
	if (rd16(t + 2, be) != 42)
		return 1;
	uint32_t ifd = rd32(t + 4, be);
	if (ifd > n - 2 || n < 2)
		return 1;
	uint32_t count = rd16(t + ifd, be);
	for (uint32_t i = 0; i < count; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		if (e + 12 > n)
			return 1;
		if (rd16(t + e, be) != 0x0112)
			continue;
		uint32_t type = rd16(t + e + 2, be);
		uint32_t cnt = rd32(t + e + 4, be);
		uint32_t v;
		if (type == 3 && cnt >= 1) /* SHORT, stored in the value field */
			v = rd16(t + e + 8, be);
		else if (type == 4 && cnt >= 1) /* LONG (seen in the wild) */
			v = rd32(t + e + 8, be);
		else
			return 1;
		return (v >= 1 && v <= 8) ? (int)v : 1;
	}
	return 1;
}

int hk__jpeg_exif_orientation(const uint8_t *b, size_t len)
{
	if (len < 4 || b[0] != 0xff || b[1] != 0xd8)
		return 1;
	size_t p = 2;
	while (p + 4 <= len) {
		if (b[p] != 0xff)
			return 1;
		uint8_t m = b[p + 1];
		if (m == 0xff) { /* fill byte */
			p++;
			continue;
		}
		if (m == 0xd9 || m == 0xda) /* EOI / start of scan: no more */
			return 1;
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* no length */
			p += 2;
			continue;
		}
		size_t seg = (size_t)b[p + 2] << 8 | b[p + 3];
		if (seg < 2 || seg > len - p - 2)
			return 1;
		const uint8_t *pl = b + p + 4;
		size_t pn = seg - 2;
		if (m == 0xe1 && pn >= 6 && memcmp(pl, "Exif\0\0", 6) == 0)
			return tiff_orientation(pl + 6, pn - 6);
		p += 2 + seg;
	}
	return 1;
}

/* Applies EXIF orientation o (2..8) to img, replacing its pixels. */
static hk_status apply_orientation(hk_image *img, int o)
{
	if (o <= 1 || o > 8)
		return HK_OK;
	const uint32_t sw = img->width, sh = img->height;
	const int swap = o >= 5;
	hk_image dst;
	memset(&dst, 0, sizeof dst);
	hk_status s = hk__image_alloc(swap ? sh : sw, swap ? sw : sh, &dst, "EXIF");
	if (s)
		return s;
	const uint32_t dw = dst.width, dh = dst.height;
	for (uint32_t y = 0; y < dh; y++) {
		uint8_t *d = dst.data + (size_t)y * dst.stride;
		for (uint32_t x = 0; x < dw; x++) {
			uint32_t sx, sy;
			switch (o) {
			case 2: sx = sw - 1 - x; sy = y; break;
			case 3: sx = sw - 1 - x; sy = sh - 1 - y; break;
			case 4: sx = x; sy = sh - 1 - y; break;
			case 5: sx = y; sy = x; break;
			case 6: sx = y; sy = sh - 1 - x; break;
			case 7: sx = sw - 1 - y; sy = sh - 1 - x; break;
			default: sx = sw - 1 - y; sy = x; break; /* 8 */
			}
			const uint8_t *sp = img->data + (size_t)sy * img->stride +
			                    (size_t)sx * 3;
			d[3 * x] = sp[0];
			d[3 * x + 1] = sp[1];
			d[3 * x + 2] = sp[2];
		}
	}
	hk_image_free(img);
	*img = dst;
	return HK_OK;
}

/* ------------------------------------------------------------------ */
/* JPEG                                                                */
/* ------------------------------------------------------------------ */

static hk_status decode_jpeg(const uint8_t *b, size_t len, hk_image *out)
{
	if (len > (unsigned long)-1)
		return hk__err(HK_E_LIMIT, "JPEG: input too large");
	tjhandle tj = tjInitDecompress();
	if (!tj)
		return hk__err(HK_E_NOMEM, "JPEG: tjInitDecompress failed");
	int w = 0, h = 0, subsamp = 0, cs = 0;
	hk_status s = HK_OK;
	if (tjDecompressHeader3(tj, b, (unsigned long)len, &w, &h, &subsamp,
	                        &cs) != 0) {
		s = hk__err(HK_E_FORMAT, "JPEG header: %s", tjGetErrorStr2(tj));
		goto done;
	}
	if (w <= 0 || h <= 0) {
		s = hk__err(HK_E_FORMAT, "JPEG: bad dimensions %dx%d", w, h);
		goto done;
	}
	s = hk__image_alloc((uint32_t)w, (uint32_t)h, out, "JPEG");
	if (s)
		goto done;
	const int cmyk = (cs == TJCS_CMYK || cs == TJCS_YCCK);
	uint8_t *dst = out->data;
	uint8_t *tmp = NULL;
	size_t tmpn = 0;
	if (cmyk) { /* TurboJPEG decodes CMYK only to CMYK */
		if (hk__mul_size((size_t)w * 4, (size_t)h, &tmpn) ||
		    !(tmp = hk__aalloc(tmpn))) {
			s = hk__err(HK_E_NOMEM, "JPEG: CMYK buffer");
			goto fail;
		}
		dst = tmp;
	}
	/* libjpeg treats a truncated or corrupt stream as a warning and goes
	 * on producing grey rows for the whole declared size (a 1 KB file
	 * declaring 64 Mpixel costs seconds). Stop at the first warning:
	 * corrupt data is HK_E_FORMAT. */
	int rc = tjDecompress2(tj, b, (unsigned long)len, dst, w,
	                       cmyk ? w * 4 : (int)out->stride, h,
	                       cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_STOPONWARNING);
	if (rc != 0) {
		s = hk__err(HK_E_FORMAT, "JPEG: %s", tjGetErrorStr2(tj));
		if (tmp) {
			hk__wipe(tmp, tmpn);
			hk__afree(tmp);
		}
		goto fail;
	}
	if (cmyk) {
		/* Adobe CMYK JPEGs store inverted ink values: R = C*K/255. */
		for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
			const uint8_t *c = tmp + 4 * i;
			out->data[3 * i] = (uint8_t)((c[0] * c[3] + 127) / 255);
			out->data[3 * i + 1] = (uint8_t)((c[1] * c[3] + 127) / 255);
			out->data[3 * i + 2] = (uint8_t)((c[2] * c[3] + 127) / 255);
		}
		hk__wipe(tmp, tmpn);
		hk__afree(tmp);
	}
	s = apply_orientation(out, hk__jpeg_exif_orientation(b, len));
	if (s)
		goto fail;
	goto done;
fail:
	hk_image_free(out);
done:
	tjDestroy(tj);
	return s;
}

/* ------------------------------------------------------------------ */
/* PNG                                                                 */
/* ------------------------------------------------------------------ */

typedef struct png_ctx {
	const uint8_t *b;
	size_t len, pos;
	jmp_buf jb;
	char msg[160];
} png_ctx;

static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
	png_ctx *c = png_get_io_ptr(png);
	if (n > c->len - c->pos)
		png_error(png, "truncated PNG data");
	memcpy(dst, c->b + c->pos, n);
	c->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
	png_ctx *c = png_get_error_ptr(png);
	snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "error");
	longjmp(c->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg; /* the library never prints */
}

static hk_status decode_png(const uint8_t *b, size_t len, hk_image *out)
{
	png_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.b = b;
	ctx.len = len;
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx,
	                                         png_on_error, png_on_warning);
	if (!png)
		return hk__err(HK_E_NOMEM, "PNG: png_create_read_struct failed");
	png_infop info = png_create_info_struct(png);
	/* Locals modified after setjmp and read after longjmp are volatile. */
	png_bytep *volatile rows = NULL;
	volatile hk_status s = HK_OK;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return hk__err(HK_E_NOMEM, "PNG: png_create_info_struct failed");
	}
	if (setjmp(ctx.jb)) {
		s = hk__err(HK_E_FORMAT, "PNG: %s", ctx.msg);
		goto out;
	}
	png_set_read_fn(png, &ctx, png_read_mem);
	/* Keep libpng's own allocation limits tight as well. */
	png_set_user_limits(png, 1u << 24, 1u << 24);
	png_set_chunk_malloc_max(png, (png_alloc_size_t)64 << 20);
	png_read_info(png, info);
	png_uint_32 w, h;
	int depth, ctype, ilace;
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL);
	s = hk__image_alloc(w, h, out, "PNG");
	if (s)
		goto out;
	png_set_expand(png); /* palette -> RGB, grey < 8 bits -> 8, tRNS */
	png_set_scale_16(png);
	png_set_strip_alpha(png);
	if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
		png_set_gray_to_rgb(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != out->stride) {
		snprintf(ctx.msg, sizeof ctx.msg, "unexpected row size %zu",
		         (size_t)png_get_rowbytes(png, info));
		png_on_error(png, ctx.msg);
	}
	rows = malloc(sizeof(png_bytep) * h);
	if (!rows) {
		s = hk__err(HK_E_NOMEM, "PNG: row table");
		goto out;
	}
	for (png_uint_32 y = 0; y < h; y++)
		rows[y] = out->data + (size_t)y * out->stride;
	png_read_image(png, rows);
	/* Reading through IEND catches truncation after the last IDAT. */
	png_read_end(png, NULL);
out:
	free(rows);
	png_destroy_read_struct(&png, &info, NULL);
	if (s)
		hk_image_free(out);
	return s;
}

/* ------------------------------------------------------------------ */
/* PPM / PGM                                                           */
/* ------------------------------------------------------------------ */

/* Skips whitespace and '#' comments. */
static void pnm_skip(const uint8_t *b, size_t len, size_t *p)
{
	while (*p < len) {
		uint8_t c = b[*p];
		if (c == '#') {
			while (*p < len && b[*p] != '\n' && b[*p] != '\r')
				(*p)++;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		           c == '\v' || c == '\f') {
			(*p)++;
		} else {
			return;
		}
	}
}

/* Reads an unsigned decimal up to max; -1 on missing/overflow. */
static long pnm_uint(const uint8_t *b, size_t len, size_t *p, long max)
{
	pnm_skip(b, len, p);
	if (*p >= len || b[*p] < '0' || b[*p] > '9')
		return -1;
	long v = 0;
	while (*p < len && b[*p] >= '0' && b[*p] <= '9') {
		v = v * 10 + (b[*p] - '0');
		if (v > max)
			return -1;
		(*p)++;
	}
	return v;
}

static hk_status decode_pnm(const uint8_t *b, size_t len, hk_image *out)
{
	const int ascii = b[1] == '2' || b[1] == '3';
	const int ch = (b[1] == '3' || b[1] == '6') ? 3 : 1;
	const char *name = ch == 3 ? "PPM" : "PGM";
	size_t p = 2;
	long w = pnm_uint(b, len, &p, 0x7fffffffL);
	long h = pnm_uint(b, len, &p, 0x7fffffffL);
	long maxval = pnm_uint(b, len, &p, 65535);
	if (w < 0 || h < 0 || maxval < 1)
		return hk__err(HK_E_FORMAT, "%s: bad or truncated header", name);
	/* Exactly one whitespace byte separates the header from binary data. */
	if (p >= len)
		return hk__err(HK_E_FORMAT, "%s: truncated after header", name);
	if (!ascii) {
		uint8_t c = b[p];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return hk__err(HK_E_FORMAT, "%s: no whitespace after maxval",
			               name);
		p++;
	}
	if (w == 0 || h == 0)
		return hk__err(HK_E_FORMAT, "%s: zero dimension %ldx%ld", name, w, h);
	if ((uint64_t)w * (uint64_t)h > HK_IMAGE_MAX_PIXELS)
		return hk__err(HK_E_LIMIT, "%s: %ldx%ld exceeds HK_IMAGE_MAX_PIXELS",
		               name, w, h);
	const size_t n = (size_t)w * (size_t)h * (size_t)ch;
	const size_t bps = maxval > 255 ? 2 : 1;
	/* Check the data is there before allocating: binary samples take bps
	 * bytes, ASCII ones at least a digit and a separator (the last one
	 * may end the file). */
	if ((!ascii && (len - p) / bps < n) || (ascii && (len - p) < 2 * n - 1))
		return hk__err(HK_E_FORMAT,
		               "%s: truncated pixel data (%zu bytes for %zu samples)",
		               name, len - p, n);
	hk_status s = hk__image_alloc((uint32_t)w, (uint32_t)h, out, name);
	if (s)
		return s;
	for (size_t i = 0; i < n; i++) {
		long v;
		if (ascii) {
			v = pnm_uint(b, len, &p, 65535);
			if (v < 0) {
				hk_image_free(out);
				return hk__err(HK_E_FORMAT,
				               "%s: bad or missing sample %zu of %zu",
				               name, i, n);
			}
		} else if (bps == 2) {
			v = (long)b[p] << 8 | b[p + 1];
			p += 2;
		} else {
			v = b[p++];
		}
		if (v > maxval) {
			hk_image_free(out);
			return hk__err(HK_E_FORMAT, "%s: sample %ld > maxval %ld",
			               name, v, maxval);
		}
		uint8_t v8 = (uint8_t)(maxval == 255 ? v
		                                     : (v * 255 + maxval / 2) / maxval);
		if (ch == 3) {
			out->data[i] = v8;
		} else {
			out->data[3 * i] = out->data[3 * i + 1] =
			        out->data[3 * i + 2] = v8;
		}
	}
	return HK_OK;
}

int hk__image_dims(const uint8_t *b, size_t len, uint32_t *w, uint32_t *h)
{
	*w = *h = 0;
	switch (classify(b, len)) {
	case FMT_JPEG: {
		tjhandle tj = tjInitDecompress();
		int jw = 0, jh = 0, ss, cs, rc = -1;
		if (tj && len <= (unsigned long)-1)
			rc = tjDecompressHeader3(tj, b, (unsigned long)len, &jw, &jh,
			                         &ss, &cs);
		if (tj)
			tjDestroy(tj);
		if (rc != 0 || jw <= 0 || jh <= 0)
			return -1;
		*w = (uint32_t)jw;
		*h = (uint32_t)jh;
		return 0;
	}
	case FMT_PNG:
		if (len < 24 || memcmp(b + 12, "IHDR", 4) != 0)
			return -1;
		*w = rd32(b + 16, 1);
		*h = rd32(b + 20, 1);
		return 0;
	case FMT_PNM: {
		size_t p = 2;
		long pw = pnm_uint(b, len, &p, 0x7fffffffL);
		long ph = pnm_uint(b, len, &p, 0x7fffffffL);
		if (pw < 0 || ph < 0)
			return -1;
		*w = (uint32_t)pw;
		*h = (uint32_t)ph;
		return 0;
	}
	default:
		return -1;
	}
}

/* ------------------------------------------------------------------ */

HK_API hk_status hk_image_decode(const void *bytes, size_t len, hk_image *out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "hk_image_decode: out is NULL");
	memset(out, 0, sizeof *out);
	if (!bytes && len)
		return hk__err(HK_E_INVALID, "hk_image_decode: bytes is NULL");
	const uint8_t *b = bytes;
	if (len == 0)
		return hk__err(HK_E_FORMAT, "empty image data (0 bytes)");
	switch (classify(b, len)) {
	case FMT_JPEG: return decode_jpeg(b, len, out);
	case FMT_PNG: return decode_png(b, len, out);
	case FMT_PNM: return decode_pnm(b, len, out);
	default: break;
	}
	/* Too short to tell, but the start of a format we decode. */
	if (is_strict_prefix(b, len, "\xff\xd8\xff", 3))
		return hk__err(HK_E_FORMAT, "truncated JPEG (%zu bytes)", len);
	if (is_strict_prefix(b, len, "\x89PNG\r\n\x1a\n", 8))
		return hk__err(HK_E_FORMAT, "truncated PNG (%zu bytes)", len);
	if (len == 1 && b[0] == 'P')
		return hk__err(HK_E_FORMAT, "truncated PPM/PGM (1 byte)");
	const char *what = hk_image_sniff(b, len);
	if (strcmp(what, "unknown") == 0)
		return hk__err(HK_E_UNSUPPORTED,
		               "unknown image format (first bytes %02x %02x %02x %02x)",
		               b[0], len > 1 ? b[1] : 0, len > 2 ? b[2] : 0,
		               len > 3 ? b[3] : 0);
	return hk__err(HK_E_UNSUPPORTED,
	               "%s image: not supported (JPEG, PNG, PPM/PGM only)", what);
}

int hk__open_regular(const char *path, int flags, struct stat *st)
{
	/* O_NONBLOCK: opening a FIFO without a writer must not block; the
	 * type check below refuses it before any read. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (!st)
		st = &sb;
	if (fstat(fd, st) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return S_ISDIR(st->st_mode) ? -EISDIR : -ESPIPE;
	}
	return fd;
}

int hk__read_file(const char *path, size_t max, uint8_t **out, size_t *outn)
{
	*out = NULL;
	*outn = 0;
	struct stat st;
	int fd = hk__open_regular(path, 0, &st);
	if (fd < 0)
		return fd;
	/* The size limit comes from fstat, before a byte is read. */
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	size_t cap = (size_t)st.st_size, n = 0;
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* A file that grows while being read is read up to its fstat size. */
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			hk__wipe(buf, n);
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = buf;
	*outn = n;
	return 0;
}

HK_API hk_status hk_image_load(const char *path, hk_image *out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "hk_image_load: out is NULL");
	memset(out, 0, sizeof *out);
	if (!path)
		return hk__err(HK_E_INVALID, "hk_image_load: path is NULL");
	uint8_t *buf;
	size_t n;
	int rc = hk__read_file(path, HK__IMG_MAX_FILE, &buf, &n);
	if (rc < 0)
		return hk__errno_status(rc, path);
	hk_status s = hk_image_decode(buf, n, out);
	hk__wipe(buf, n);
	free(buf);
	return s;
}
