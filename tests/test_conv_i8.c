/* Exact s8 x s8 convolutions (simd/conv_i8*.c): every compiled x86 tier
 * against the scalar reference, bit for bit, over odd sizes and hostile
 * values; the reference itself against exact sums at the extremes. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_i8.h"
#include "hk_simd.h"
#include "test_vec.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) { return tv_xorshift(&rng); }

/* s8 in [-128, 127], a third of them at the ends of the range. */
static int8_t hostile8(int lo)
{
	uint32_t r = rnd() % 6;
	return r == 0 ? (int8_t)lo : r == 1 ? 127 : (int8_t)((int)(rnd() % (unsigned)(128 - lo)) + lo);
}

static float *fvec(size_t n, float lo, float hi)
{
	float *v = malloc((n + HK__I8_NB) * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * (float)(rnd() % 10001) / 10000.0f;
	return v;
}

/* A conv with random weights, scales and the given ops. */
static void make(hk__i8_conv *c, int dw, size_t K, size_t N, const int *ops, int nops, int f32,
                 float scale_mag)
{
	memset(c, 0, sizeof *c);
	c->dw = dw;
	c->K = K;
	c->N = N;
	c->w = malloc(K * N);
	for (size_t i = 0; i < K * N; i++)
		c->w[i] = hostile8(-127); /* weights never -128 (contract) */
	c->scale = fvec(N, 0.1f * scale_mag, scale_mag);
	c->bias = fvec(N, -50.0f * scale_mag, 50.0f * scale_mag);
	c->nops = nops;
	for (int k = 0; k < nops; k++) {
		c->op[k] = ops[k];
		if (ops[k] == HK__I8_PRELU)
			c->slope[k] = fvec(N, -2.0f, 5.0f);
	}
	c->res_step = 0.37f * scale_mag * 100;
	c->out_f32 = f32;
	c->inv_out = 1.0f / (scale_mag * 300.0f);
	cr_assert_eq(hk__i8_conv_pack(c), 0);
}

static void check_gemm(size_t M, size_t K, size_t N, const int *ops, int nops, int f32, float mag)
{
	hk__i8_conv c;
	make(&c, 0, K, N, ops, nops, f32, mag);
	size_t lda = K + rnd() % 3, ldr = N + rnd() % 3, ldo = N + rnd() % 3;
	int8_t *a = malloc(M * lda), *res = malloc(M * ldr);
	for (size_t i = 0; i < M * lda; i++)
		a[i] = hostile8(-128);
	for (size_t i = 0; i < M * ldr; i++)
		res[i] = hostile8(-128);
	size_t osz = f32 ? 4 : 1;
	char *o1 = calloc(M * ldo, osz), *o2 = calloc(M * ldo, osz);
	hk__i8_io io1 = {a, lda, res, ldr, o1, ldo}, io2 = {a, lda, res, ldr, o2, ldo};
	hk__i8_gemm_scalar(&c, M, &io1);
#if defined(HK_ARCH_X86)
	if (hk__kernels_for(HK_ISA_AVX2)) {
		hk__i8_gemm_avx2(&c, M, &io2);
		for (size_t m = 0; m < M; m++)
			cr_assert_eq(memcmp(o1 + m * ldo * osz, o2 + m * ldo * osz, N * osz), 0,
			             "gemm M %zu K %zu N %zu ops %d f32 %d: row %zu differs", M, K, N, nops, f32, m);
	}
#endif
	/* spot-check the reference against a plain sum */
	size_t m = rnd() % M, ch = rnd() % N;
	int32_t acc = 0;
	for (size_t k = 0; k < K; k++)
		acc += a[m * lda + k] * c.w[ch * K + k];
	float v = hk__i8_epi_f32(&c, acc, ch, res + m * ldr);
	if (f32)
		cr_assert_eq(((float *)o1)[m * ldo + ch], v);
	else
		cr_assert_eq(((int8_t *)o1)[m * ldo + ch], hk__i8_quant(&c, v));
	free(a);
	free(res);
	free(o1);
	free(o2);
	hk__i8_conv_free(&c);
}

Test(conv_i8, gemm_matches_scalar)
{
	static const size_t sz[][3] = {{1, 1, 1},   {1, 3, 5},     {5, 27, 64},  {7, 64, 17},
	                               {33, 130, 33}, {130, 512, 48}, {3, 4, 16}, {4, 5, 1},
	                               {257, 64, 128}, {9, 512, 192}, {2, 7, 31}};
	static const int ops[][3] = {{0}, {HK__I8_RELU}, {HK__I8_PRELU}, {HK__I8_ADD},
	                             {HK__I8_PRELU, HK__I8_ADD}, {HK__I8_ADD, HK__I8_RELU, HK__I8_PRELU}};
	static const int nops[] = {0, 1, 1, 1, 2, 3};
	static const float mags[] = {1e-4f, 1.0f, 1e3f};
	for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++)
		for (int o = 0; o < 6; o++)
			for (int f = 0; f < 2; f++)
				check_gemm(sz[i][0], sz[i][1], sz[i][2], ops[o], nops[o], f, mags[(i + o + f) % 3]);
}

/* The largest sums: no 16-bit saturation anywhere (-128 activations
 * against +-127 weights over K = 512). */
Test(conv_i8, gemm_extremes_exact)
{
	for (int sgn = -1; sgn <= 1; sgn += 2) {
		hk__i8_conv c;
		make(&c, 0, 512, 20, NULL, 0, 1, 1.0f);
		for (size_t i = 0; i < 512 * 20; i++)
			c.w[i] = (int8_t)(127 * sgn);
		for (size_t i = 0; i < 20; i++) {
			c.scale[i] = 1.0f;
			c.bias[i] = 0.0f;
		}
		free(c.wp);
		cr_assert_eq(hk__i8_conv_pack(&c), 0);
		int8_t a[3 * 512];
		memset(a, -128, sizeof a);
		float o1[3 * 20], o2[3 * 20];
		hk__i8_io io1 = {a, 512, NULL, 0, o1, 20}, io2 = {a, 512, NULL, 0, o2, 20};
		hk__i8_gemm_scalar(&c, 3, &io1);
		for (int i = 0; i < 60; i++)
			cr_assert_eq(o1[i], -128.0f * 127.0f * 512.0f * (float)sgn);
#if defined(HK_ARCH_X86)
		if (hk__kernels_for(HK_ISA_AVX2)) {
			hk__i8_gemm_avx2(&c, 3, &io2);
			cr_assert_eq(memcmp(o1, o2, sizeof o1), 0);
		}
#endif
		hk__i8_conv_free(&c);
	}
}

/* Requantisation: symmetric clamp (never -128), round half to even. */
Test(conv_i8, quant_rounds_and_clamps)
{
	hk__i8_conv c = {.inv_out = 1.0f};
	cr_expect_eq(hk__i8_quant(&c, -1e9f), -127);
	cr_expect_eq(hk__i8_quant(&c, 1e9f), 127);
	cr_expect_eq(hk__i8_quant(&c, 2.5f), 2);
	cr_expect_eq(hk__i8_quant(&c, -3.5f), -4);
	cr_expect_eq(hk__i8_quant(&c, NAN), -127);
}

static void check_dw(size_t n, int H, int W, size_t C, int k, int s, int pad, const int *ops, int nops,
                     int f32, float mag)
{
	hk__i8_conv c;
	make(&c, 1, (size_t)(k * k), C, ops, nops, f32, mag);
	c.H = H;
	c.W = W;
	c.kh = c.kw = k;
	c.sh = c.sw = s;
	c.pt = c.pl = pad;
	c.OH = (H + 2 * pad - k) / s + 1;
	c.OW = (W + 2 * pad - k) / s + 1;
	size_t in = n * (size_t)(H * W) * C, out = n * (size_t)(c.OH * c.OW) * C, osz = f32 ? 4 : 1;
	int8_t *a = malloc(in), *res = malloc(out);
	for (size_t i = 0; i < in; i++)
		a[i] = hostile8(-128);
	for (size_t i = 0; i < out; i++)
		res[i] = hostile8(-128);
	char *o1 = calloc(out, osz), *o2 = calloc(out, osz);
	hk__i8_io io1 = {a, C, res, C, o1, C}, io2 = {a, C, res, C, o2, C};
	hk__i8_dw_scalar(&c, n, &io1);
#if defined(HK_ARCH_X86)
	if (hk__kernels_for(HK_ISA_AVX2)) {
		hk__i8_dw_avx2(&c, n, &io2);
		cr_assert_eq(memcmp(o1, o2, out * osz), 0, "dw %dx%d C %zu k %d s %d pad %d ops %d f32 %d",
		             H, W, C, k, s, pad, nops, f32);
	}
#endif
	/* the centre tap of output pixel 0 of a 1x1 kernel is a plain product */
	if (k == 1 && !f32 && nops == 0)
		cr_assert_eq(((int8_t *)o1)[0],
		             hk__i8_quant(&c, hk__i8_epi_f32(&c, a[0] * c.w[0], 0, NULL)));
	free(a);
	free(res);
	free(o1);
	free(o2);
	hk__i8_conv_free(&c);
}

Test(conv_i8, depthwise_matches_scalar)
{
	static const int ops[][2] = {{0}, {HK__I8_PRELU}, {HK__I8_ADD}, {HK__I8_RELU, HK__I8_ADD}};
	static const int nops[] = {0, 1, 1, 2};
	for (int o = 0; o < 4; o++)
		for (int f = 0; f < 2; f++) {
			float mag = o == 2 ? 1e3f : o == 3 ? 1e-4f : 1.0f;
			check_dw(1, 5, 5, 17, 3, 1, 1, ops[o], nops[o], f, mag);
			check_dw(2, 8, 7, 40, 3, 2, 0, ops[o], nops[o], f, mag);
			check_dw(1, 7, 7, 33, 7, 1, 0, ops[o], nops[o], f, mag);
			check_dw(3, 1, 1, 64, 1, 1, 0, ops[o], nops[o], f, mag);
			check_dw(1, 6, 6, 128, 3, 2, 1, ops[o], nops[o], f, mag);
		}
}
