/*
 * Exact s8 x s8 convolutions: weight packing, the scalar reference of
 * both kernels, and the dispatch (see conv_i8.h).
 */
#include "conv_i8.h"
#include "hk_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hk__i8_conv_pack(hk__i8_conv *c)
{
	const size_t nb = HK__I8_NB;
	c->Np = (c->N + nb - 1) / nb * nb;
	for (size_t ch = c->N; ch < c->Np; ch++) {
		c->scale[ch] = 0;
		c->bias[ch] = 0;
		for (int k = 0; k < c->nops; k++)
			if (c->slope[k])
				c->slope[k][ch] = 0;
	}
	if (c->dw) {
		/* K taps x Np channels, widened to s16 for vpmullw */
		int16_t *p = calloc(c->K * c->Np, sizeof *p);
		if (!p)
			return -1;
		for (size_t t = 0; t < c->K; t++)
			for (size_t ch = 0; ch < c->N; ch++)
				p[t * c->Np + ch] = c->w[t * c->N + ch];
		c->wp = p;
		return 0;
	}
	/* blocks of 16 output channels; in each, groups of 4 k: 16 x 4 bytes
	 * (two ymm of 8 channels x 4 k, the operand order of vpmaddubsw +
	 * vpmaddwd over a broadcast group of 4 activations). K padded with
	 * zero weights. */
	size_t kg = (c->K + 3) / 4, bytes = (c->Np * kg * 4 + 63) / 64 * 64;
	int8_t *p = aligned_alloc(64, bytes ? bytes : 64); /* 32-byte vector loads */
	if (!p)
		return -1;
	memset(p, 0, bytes);
	for (size_t ch = 0; ch < c->N; ch++)
		for (size_t k = 0; k < c->K; k++)
			p[((ch / nb) * kg + k / 4) * nb * 4 + (ch % nb) * 4 + k % 4] = c->w[ch * c->K + k];
	c->wp = p;
	return 0;
}

void hk__i8_conv_free(hk__i8_conv *c)
{
	if (!c)
		return;
	free(c->w);
	free(c->wp);
	free(c->scale);
	free(c->bias);
	for (int k = 0; k < HK__I8_MAX_OPS; k++)
		free(c->slope[k]);
	memset(c, 0, sizeof *c);
}

/* Comparisons are written so that NaN goes where vmaxps / vminps / the
 * blend on a > 0 mask send it (the avx2 tier matches bit for bit). */
float hk__i8_epi_f32(const hk__i8_conv *c, int32_t acc, size_t ch, const int8_t *res_row)
{
	float v = (float)acc * c->scale[ch];
	v = v + c->bias[ch];
	for (int k = 0; k < c->nops; k++) {
		if (c->op[k] == HK__I8_RELU) {
			v = v > 0.0f ? v : 0.0f;
		} else if (c->op[k] == HK__I8_PRELU) {
			float s = v * c->slope[k][ch];
			v = v > 0.0f ? v : s;
		} else {
			float r = (float)res_row[ch] * c->res_step;
			v = v + r;
		}
	}
	return v;
}

int8_t hk__i8_quant(const hk__i8_conv *c, float v)
{
	float t = v * c->inv_out;
	t = t > -127.0f ? t : -127.0f;
	t = t < 127.0f ? t : 127.0f;
	return (int8_t)(int)nearbyintf(t);
}

static void put(const hk__i8_conv *c, const hk__i8_io *io, size_t m, size_t ch, int32_t acc)
{
	const int8_t *res = io->res ? io->res + m * io->ldr : NULL;
	float v = hk__i8_epi_f32(c, acc, ch, res);
	if (c->out_f32)
		((float *)io->out)[m * io->ldo + ch] = v;
	else
		((int8_t *)io->out)[m * io->ldo + ch] = hk__i8_quant(c, v);
}

void hk__i8_gemm_scalar(const hk__i8_conv *c, size_t M, const hk__i8_io *io)
{
	for (size_t m = 0; m < M; m++) {
		const int8_t *a = io->a + m * io->lda;
		for (size_t ch = 0; ch < c->N; ch++) {
			const int8_t *w = c->w + ch * c->K;
			int32_t acc = 0;
			for (size_t k = 0; k < c->K; k++)
				acc += (int32_t)a[k] * w[k];
			put(c, io, m, ch, acc);
		}
	}
}

void hk__i8_dw_scalar(const hk__i8_conv *c, size_t n, const hk__i8_io *io)
{
	const size_t C = c->N;
	for (size_t i = 0; i < n; i++)
		for (int oy = 0; oy < c->OH; oy++)
			for (int ox = 0; ox < c->OW; ox++) {
				size_t m = (i * (size_t)c->OH + (size_t)oy) * (size_t)c->OW + (size_t)ox;
				for (size_t ch = 0; ch < C; ch++) {
					int32_t acc = 0;
					for (int ky = 0; ky < c->kh; ky++) {
						int y = oy * c->sh - c->pt + ky;
						for (int kx = 0; kx < c->kw && y >= 0 && y < c->H; kx++) {
							int x = ox * c->sw - c->pl + kx;
							if (x < 0 || x >= c->W)
								continue;
							const int8_t *a = io->a + ((i * (size_t)c->H + (size_t)y) * (size_t)c->W + (size_t)x) * C;
							acc += (int32_t)a[ch] * c->w[(size_t)(ky * c->kw + kx) * C + ch];
						}
					}
					put(c, io, m, ch, acc);
				}
			}
}

void hk__i8_conv_kernels(hk__i8_gemm_fn *gemm, hk__i8_dw_fn *dw, const char **name)
{
	*gemm = hk__i8_gemm_scalar;
	*dw = hk__i8_dw_scalar;
	*name = "scalar";
#if defined(HK_ARCH_X86)
	if (hk__kernels()->isa >= HK_ISA_AVX2) {
		*gemm = hk__i8_gemm_avx2;
		*dw = hk__i8_dw_avx2;
		*name = "avx2";
	}
#endif
}
