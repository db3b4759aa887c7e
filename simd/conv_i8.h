/*
 * Exact s8 x s8 int8 convolutions for x86 cores without VNNI (internal).
 *
 * Why: without VNNI oneDNN 2.6 multiplies with vpmaddubsw (u8 x s8 ->
 * saturating s16 pair sums), so for s8 activations it shifts them to u8
 * and halves the weights (7-bit weights, weights md scale_adjust 0.5 on
 * every int8 convolution of the embedder, 1x1 and depthwise alike); the
 * embedder's golden-face cosine against fp32 falls from 0.9951 to 0.9804.
 * These kernels keep 8-bit weights and stay exact: with |w| <= 127 and
 * a in [-128, 127], vpsignb(w, a) x vpabsb(a) (|a| <= 128 as u8) makes
 * vpmaddubsw pair sums of at most 2 * 128 * 127 = 32512 < 32767, widened
 * to s32 by vpmaddwd with ones. Depthwise taps are widened to 16 bits and
 * multiplied with vpmullw (|a * w| <= 16256).
 *
 * Two shapes, both NHWC s8 in, s32 accumulation, then one epilogue in f32
 * per output channel c: v = acc * scale[c] + bias[c], the node's post-ops
 * in order (ReLU, PReLU, + residual * res_step), then either an f32 store
 * or s8 = round-to-nearest-even(clamp(v * inv_out, -127, 127)). The
 * epilogue uses separate multiplies and adds (no FMA), so every tier gives
 * bit-identical results to the scalar reference (tests/test_conv_i8.c).
 *   - gemm: out[m][c] = sum_k a[m][k] * w[c][k] (a 1x1 convolution over
 *     pixels, or any groups == 1 convolution on im2col rows);
 *   - depthwise: one output channel per input channel, any kernel size,
 *     stride and padding, dilation 1.
 * Weights are packed once (hk__i8_conv_pack) when the model loads.
 */
#ifndef HK_CONV_I8_H
#define HK_CONV_I8_H

#include <stddef.h>
#include <stdint.h>

enum { HK__I8_RELU = 1, HK__I8_PRELU = 2, HK__I8_ADD = 3 };
#define HK__I8_MAX_OPS 4
#define HK__I8_NB 16 /* output channels per packed block */

/* One convolution, prepared at load; read-only afterwards (any thread). */
typedef struct hk__i8_conv {
	int dw;          /* 0 gemm, 1 depthwise                              */
	size_t K, N;     /* gemm: reduction length, output channels;
	                    depthwise: taps (kh * kw), channels                */
	size_t Np;       /* N rounded up to HK__I8_NB                        */
	int8_t *w;       /* gemm: N x K (row per output channel);
	                    depthwise: K x N (tap-major, TFLite [1,KH,KW,C]).
	                    Values in [-127, 127]                             */
	void *wp;        /* packed for the avx2 kernels (hk__i8_conv_pack)   */
	float *scale;    /* Np: real value of one accumulator unit (pad 0)   */
	float *bias;     /* Np: real bias (pad 0)                            */
	int nops;
	int op[HK__I8_MAX_OPS];         /* HK__I8_*                          */
	float *slope[HK__I8_MAX_OPS];   /* PReLU: Np slopes (pad 0)          */
	float res_step;  /* real value of one step of the s8 residual        */
	int out_f32;     /* 1: f32 output, 0: s8 output with inv_out          */
	float inv_out;
	/* depthwise geometry (per item) */
	int H, W, OH, OW, kh, kw, sh, sw, pt, pl;
} hk__i8_conv;

/* Runtime operands. Rows of lda / ldr / ldo elements; res may be NULL
 * when the conv has no HK__I8_ADD. out is int8_t* or float* by out_f32. */
typedef struct hk__i8_io {
	const int8_t *a;
	size_t lda;
	const int8_t *res;
	size_t ldr;
	void *out;
	size_t ldo;
} hk__i8_io;

/* Fills c->Np and c->wp from c->w (and pads scale/bias/slopes, which the
 * caller allocated with Np entries). 0 ok, -1 out of memory. */
int hk__i8_conv_pack(hk__i8_conv *c);
void hk__i8_conv_free(hk__i8_conv *c);

/* gemm over M rows (pixels). */
typedef void (*hk__i8_gemm_fn)(const hk__i8_conv *c, size_t M, const hk__i8_io *io);
/* depthwise over n items: a, res and out are whole NHWC tensors
 * (lda = ldr = ldo = channels). */
typedef void (*hk__i8_dw_fn)(const hk__i8_conv *c, size_t n, const hk__i8_io *io);

void hk__i8_gemm_scalar(const hk__i8_conv *c, size_t M, const hk__i8_io *io);
void hk__i8_dw_scalar(const hk__i8_conv *c, size_t n, const hk__i8_io *io);
#if defined(HK_ARCH_X86)
void hk__i8_gemm_avx2(const hk__i8_conv *c, size_t M, const hk__i8_io *io);
void hk__i8_dw_avx2(const hk__i8_conv *c, size_t n, const hk__i8_io *io);
#endif

/* The kernels of the dispatch tier (hk__kernels(): avx2 and up on x86,
 * else the scalar reference); *name gets "avx2" or "scalar". */
void hk__i8_conv_kernels(hk__i8_gemm_fn *gemm, hk__i8_dw_fn *dw, const char **name);

/* The epilogue of one accumulator (the scalar reference's, exported for
 * the avx2 tails). res_row: the residual row (or NULL), ch: channel. */
float hk__i8_epi_f32(const hk__i8_conv *c, int32_t acc, size_t ch, const int8_t *res_row);
int8_t hk__i8_quant(const hk__i8_conv *c, float v);

#endif
