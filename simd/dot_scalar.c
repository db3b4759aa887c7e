/* Scalar reference kernels: the oracle every ISA tier is tested against. */
#include "hk_simd.h"

#include <string.h>

uint16_t hk__f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t exp = (x >> 23) & 0xffu;
	uint32_t man = x & 0x7fffffu;
	if (exp == 0xff) /* Inf / NaN */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
	int e = (int)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000u;
		int shift = 14 - e;
		uint32_t half = man >> shift;
		uint32_t rem = man & ((1u << shift) - 1);
		uint32_t mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t half = ((uint32_t)e << 10) | (man >> 13);
	uint32_t rem = man & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
		half++; /* may carry into the exponent: still correct */
	return (uint16_t)(sign | half);
}

float hk__f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	uint32_t x;
	if (exp == 0) {
		if (man == 0) {
			x = sign;
		} else {
			int e = -1;
			do {
				e++;
				man <<= 1;
			} while (!(man & 0x400u));
			x = sign | ((uint32_t)(127 - 15 - e) << 23) |
			    ((man & 0x3ffu) << 13);
		}
	} else if (exp == 31) {
		x = sign | 0x7f800000u | (man << 13);
	} else {
		x = sign | ((exp - 15 + 127) << 23) | (man << 13);
	}
	float f;
	memcpy(&f, &x, 4);
	return f;
}

uint16_t hk__f32_to_bf16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	if ((x & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((x >> 16) | 0x40u);
	x += 0x7fffu + ((x >> 16) & 1u);
	return (uint16_t)(x >> 16);
}

float hk__bf16_to_f32(uint16_t h)
{
	uint32_t x = (uint32_t)h << 16;
	float f;
	memcpy(&f, &x, 4);
	return f;
}

static float dot_f32_scalar(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return (float)s;
}

static float dot_f16_scalar(const uint16_t *a, const uint16_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)hk__f16_to_f32(a[i]) * hk__f16_to_f32(b[i]);
	return (float)s;
}

static float dot_f32_f16_scalar(const float *a, const uint16_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * hk__f16_to_f32(b[i]);
	return (float)s;
}

static float dot_f32_bf16_scalar(const float *a, const uint16_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * hk__bf16_to_f32(b[i]);
	return (float)s;
}

static int32_t dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n)
{
	int32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}

static void scan_f32_scalar(const float *q, const float *rows, size_t count,
                            size_t dim, size_t stride, float *out)
{
	for (size_t i = 0; i < count; i++) {
		const float *r = (const float *)((const char *)rows + i * stride);
		out[i] = dot_f32_scalar(q, r, dim);
	}
}

static void scan_f16_scalar(const float *q, const uint16_t *rows,
                            size_t count, size_t dim, size_t stride,
                            float *out)
{
	for (size_t i = 0; i < count; i++) {
		const uint16_t *r =
		    (const uint16_t *)((const char *)rows + i * stride);
		out[i] = dot_f32_f16_scalar(q, r, dim);
	}
}

static void scan_i8_scalar(const uint8_t *qu, const int8_t *rows,
                           const int32_t *row_sums, size_t count, size_t dim,
                           size_t stride, int32_t *out)
{
	(void)row_sums;
	for (size_t i = 0; i < count; i++) {
		const int8_t *r = rows + i * stride;
		int32_t s = 0;
		for (size_t j = 0; j < dim; j++)
			s += ((int32_t)qu[j] - 128) * r[j];
		out[i] = s;
	}
}

static void tile_i8_scalar(const uint8_t *qu, size_t nq, size_t qstride,
                           const int8_t *rows, const int32_t *row_sums,
                           size_t count, size_t dim, size_t stride,
                           int32_t *out, size_t ldo)
{
	for (size_t j = 0; j < nq; j++)
		scan_i8_scalar(qu + j * qstride, rows, row_sums, count, dim, stride,
		               out + j * ldo);
}

static uint32_t read_sum_scalar(const void *p, size_t bytes)
{
	const uint32_t *w = p;
	uint32_t s = 0;
	for (size_t i = 0; i < bytes / 4; i++)
		s += w[i];
	return s;
}

const hk__kernel_table hk__kernels_scalar = {
	.isa = HK_ISA_SCALAR,
	.name = "scalar",
	.dot_f32 = dot_f32_scalar,
	.dot_f16 = dot_f16_scalar,
	.dot_f32_f16 = dot_f32_f16_scalar,
	.dot_f32_bf16 = dot_f32_bf16_scalar,
	.dot_i8 = dot_i8_scalar,
	.scan_f32 = scan_f32_scalar,
	.scan_f16 = scan_f16_scalar,
	.scan_i8 = scan_i8_scalar,
	.tile_i8 = tile_i8_scalar,
	.read_sum = read_sum_scalar,
};
