/*
 * Exact s8 x s8 convolutions, AVX2 (no VNNI needed); see conv_i8.h for the
 * contract and why. Bit-identical to conv_i8_scalar.c.
 *
 * gemm: tiles of 4 rows x 16 output channels (8 s32 accumulators, two
 * weight vectors, the broadcast activation group and its absolute value:
 * 15 of the 16 ymm). Per group of 4 k and per row: one vpbroadcastd, one
 * vpabsb, then per 8 channels vpsignb + vpmaddubsw + vpmaddwd + vpaddd,
 * i.e. two multiply-type instructions per 32 products, as oneDNN's halved
 * path, plus the sign. Rows go in chunks of about 16 KiB of activations,
 * which stay in L1 while every 16-channel weight block passes over them.
 * depthwise: per output pixel and 16 channels, each tap widened to s16,
 * vpmullw (exact), widened to s32 and summed.
 */
#include "conv_i8.h"
#include "hk_simd.h"

#include <immintrin.h>
#include <string.h>

static inline __m256i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* 8 channels x 4 k of a * w, summed per channel (s32), exact. */
HK_AINL __m256i dot4(__m256i aa, __m256i a, __m256i w, __m256i ones)
{
	__m256i t = _mm256_sign_epi8(w, a);
	t = _mm256_maddubs_epi16(aa, t);
	return _mm256_madd_epi16(t, ones);
}

/* 16 channels from ch0 (nvalid of them real) of one output row. */
HK_AINL void epi16(const hk__i8_conv *c, __m256i acc0, __m256i acc1, size_t ch0,
                   const int8_t *res_row, void *out_row, size_t nvalid)
{
	const __m256 zero = _mm256_setzero_ps();
	__m256 v[2] = {_mm256_cvtepi32_ps(acc0), _mm256_cvtepi32_ps(acc1)};
	__m256i r32[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
	for (int h = 0; h < 2; h++) {
		v[h] = _mm256_mul_ps(v[h], _mm256_loadu_ps(c->scale + ch0 + 8 * h));
		v[h] = _mm256_add_ps(v[h], _mm256_loadu_ps(c->bias + ch0 + 8 * h));
	}
	for (int k = 0; k < c->nops; k++) {
		if (c->op[k] == HK__I8_ADD) {
			__m128i r8;
			if (nvalid == 16) {
				r8 = _mm_loadu_si128((const __m128i *)(res_row + ch0));
			} else {
				int8_t tmp[16] = {0};
				memcpy(tmp, res_row + ch0, nvalid);
				r8 = _mm_loadu_si128((const __m128i *)tmp);
			}
			r32[0] = _mm256_cvtepi8_epi32(r8);
			r32[1] = _mm256_cvtepi8_epi32(_mm_srli_si128(r8, 8));
		}
		for (int h = 0; h < 2; h++) {
			if (c->op[k] == HK__I8_RELU) {
				v[h] = _mm256_max_ps(v[h], zero);
			} else if (c->op[k] == HK__I8_PRELU) {
				__m256 s = _mm256_mul_ps(v[h], _mm256_loadu_ps(c->slope[k] + ch0 + 8 * h));
				v[h] = _mm256_blendv_ps(s, v[h], _mm256_cmp_ps(v[h], zero, _CMP_GT_OQ));
			} else {
				__m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(r32[h]), _mm256_set1_ps(c->res_step));
				v[h] = _mm256_add_ps(v[h], r);
			}
		}
	}
	if (c->out_f32) {
		float *o = (float *)out_row + ch0;
		if (nvalid == 16) {
			_mm256_storeu_ps(o, v[0]);
			_mm256_storeu_ps(o + 8, v[1]);
		} else {
			float tmp[16];
			_mm256_storeu_ps(tmp, v[0]);
			_mm256_storeu_ps(tmp + 8, v[1]);
			memcpy(o, tmp, nvalid * sizeof(float));
		}
		return;
	}
	const __m256 inv = _mm256_set1_ps(c->inv_out), lo = _mm256_set1_ps(-127.0f),
	             hi = _mm256_set1_ps(127.0f);
	__m256i q[2];
	for (int h = 0; h < 2; h++) {
		__m256 t = _mm256_max_ps(_mm256_mul_ps(v[h], inv), lo);
		q[h] = _mm256_cvtps_epi32(_mm256_min_ps(t, hi));
	}
	__m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
	__m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
	int8_t *o = (int8_t *)out_row + ch0;
	if (nvalid == 16) {
		_mm_storeu_si128((__m128i *)o, p8);
	} else {
		int8_t tmp[16];
		_mm_storeu_si128((__m128i *)tmp, p8);
		memcpy(o, tmp, nvalid);
	}
}

/* mr (1..4) rows from m against the 16-channel weight block nb. */
HK_AINL void gemm_tile(const hk__i8_conv *c, const hk__i8_io *io, size_t m, int mr, size_t nb,
                       const int8_t *wp)
{
	const size_t kfull = c->K / 4, ktail = c->K % 4;
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i acc[4][2];
	const int8_t *a[4];
	HK_UNROLL for (int r = 0; r < 4; r++) {
		acc[r][0] = acc[r][1] = _mm256_setzero_si256();
		a[r] = io->a + (m + (size_t)(r < mr ? r : 0)) * io->lda;
	}
	for (size_t g = 0; g < kfull; g++) {
		__m256i w0 = _mm256_load_si256((const __m256i *)(wp + g * 64));
		__m256i w1 = _mm256_load_si256((const __m256i *)(wp + g * 64 + 32));
		HK_UNROLL for (int r = 0; r < mr; r++) {
			__m256i av = bcast4(a[r] + 4 * g), aa = _mm256_abs_epi8(av);
			acc[r][0] = _mm256_add_epi32(acc[r][0], dot4(aa, av, w0, ones));
			acc[r][1] = _mm256_add_epi32(acc[r][1], dot4(aa, av, w1, ones));
		}
	}
	if (ktail) { /* the last group reads only the row's own bytes */
		__m256i w0 = _mm256_load_si256((const __m256i *)(wp + kfull * 64));
		__m256i w1 = _mm256_load_si256((const __m256i *)(wp + kfull * 64 + 32));
		HK_UNROLL for (int r = 0; r < mr; r++) {
			uint32_t t = 0; /* inline: a memcpy call per row cost 1/4 of the first conv */
			for (size_t j = 0; j < ktail; j++)
				t |= (uint32_t)(uint8_t)a[r][4 * kfull + j] << (8 * j);
			__m256i av = _mm256_set1_epi32((int32_t)t), aa = _mm256_abs_epi8(av);
			acc[r][0] = _mm256_add_epi32(acc[r][0], dot4(aa, av, w0, ones));
			acc[r][1] = _mm256_add_epi32(acc[r][1], dot4(aa, av, w1, ones));
		}
	}
	const size_t ch0 = nb * HK__I8_NB, nvalid = c->N - ch0 < HK__I8_NB ? c->N - ch0 : HK__I8_NB;
	const size_t osz = c->out_f32 ? sizeof(float) : 1;
	HK_UNROLL for (int r = 0; r < mr; r++)
		epi16(c, acc[r][0], acc[r][1], ch0, io->res ? io->res + (m + (size_t)r) * io->ldr : NULL,
		      (char *)io->out + (m + (size_t)r) * io->ldo * osz, nvalid);
}

void hk__i8_gemm_avx2(const hk__i8_conv *c, size_t M, const hk__i8_io *io)
{
	const size_t kg = (c->K + 3) / 4, nblk = c->Np / HK__I8_NB;
	size_t mc = c->K ? (16384 / c->K) & ~(size_t)3 : 64;
	mc = mc < 4 ? 4 : mc > 64 ? 64 : mc;
	for (size_t m0 = 0; m0 < M; m0 += mc) {
		const size_t end = M - m0 < mc ? M : m0 + mc;
		for (size_t nb = 0; nb < nblk; nb++) {
			const int8_t *wp = (const int8_t *)c->wp + nb * kg * 64;
			size_t m = m0;
			for (; m + 4 <= end; m += 4)
				gemm_tile(c, io, m, 4, nb, wp);
			switch (end - m) {
			case 3: gemm_tile(c, io, m, 3, nb, wp); break;
			case 2: gemm_tile(c, io, m, 2, nb, wp); break;
			case 1: gemm_tile(c, io, m, 1, nb, wp); break;
			default: break;
			}
		}
	}
}

/* One 16-channel block of one output pixel: nt valid taps (input offsets
 * off[], tap indices tap[]); two taps' vpmullw products (each |p| <= 16256)
 * are summed in s16 before widening, exact. */
HK_AINL __m256i dw_tap(const int8_t *a, const int16_t *w, size_t nvalid)
{
	__m128i a8;
	if (nvalid == 16) {
		a8 = _mm_loadu_si128((const __m128i *)a);
	} else {
		int8_t tmp[16] = {0};
		memcpy(tmp, a, nvalid);
		a8 = _mm_loadu_si128((const __m128i *)tmp);
	}
	return _mm256_mullo_epi16(_mm256_cvtepi8_epi16(a8), _mm256_loadu_si256((const __m256i *)w));
}

HK_AINL void dw_widen(__m256i p, __m256i *s0, __m256i *s1)
{
	*s0 = _mm256_add_epi32(*s0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
	*s1 = _mm256_add_epi32(*s1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
}

/* One 16-channel block of one output pixel: nt valid taps (input offsets
 * off[], tap indices tap[]); two taps' vpmullw products (each |p| <= 16256)
 * are summed in s16 before widening, exact. */
HK_AINL void dw_block(const int8_t *a, const int16_t *wp, size_t Np, const size_t *off, const int *tap,
                      int nt, size_t nvalid, __m256i *acc0, __m256i *acc1)
{
	__m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
	int t = 0;
	for (; t + 1 < nt; t += 2)
		dw_widen(_mm256_add_epi16(dw_tap(a + off[t], wp + (size_t)tap[t] * Np, nvalid),
		                          dw_tap(a + off[t + 1], wp + (size_t)tap[t + 1] * Np, nvalid)),
		         &s0, &s1);
	if (t < nt)
		dw_widen(dw_tap(a + off[t], wp + (size_t)tap[t] * Np, nvalid), &s0, &s1);
	*acc0 = s0;
	*acc1 = s1;
}

void hk__i8_dw_avx2(const hk__i8_conv *c, size_t n, const hk__i8_io *io)
{
	/* locals: the s8 stores may alias anything, c's fields would be
	 * reloaded after each */
	const size_t C = c->N, Np = c->Np, osz = c->out_f32 ? sizeof(float) : 1;
	const int H = c->H, W = c->W, OH = c->OH, OW = c->OW, kh = c->kh, kw = c->kw;
	const int sh = c->sh, sw = c->sw, pt = c->pt, pl = c->pl;
	const int16_t *wp = (const int16_t *)c->wp;
	const int8_t *src = io->a, *res = io->res;
	char *out = (char *)io->out;
	const size_t ldr = io->ldr, ldo = io->ldo;
	size_t off[64];
	int tap[64];
	if ((size_t)kh * (size_t)kw > 64) { /* no such model; keep it exact */
		hk__i8_dw_scalar(c, n, io);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (int oy = 0; oy < OH; oy++)
			for (int ox = 0; ox < OW; ox++) {
				const size_t m = (i * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox;
				int nt = 0;
				for (int ky = 0; ky < kh; ky++) {
					const int y = oy * sh - pt + ky;
					for (int kx = 0; kx < kw && y >= 0 && y < H; kx++) {
						const int x = ox * sw - pl + kx;
						if (x < 0 || x >= W)
							continue;
						off[nt] = ((i * (size_t)H + (size_t)y) * (size_t)W + (size_t)x) * C;
						tap[nt++] = ky * kw + kx;
					}
				}
				size_t ch0 = 0;
				for (; ch0 + 16 <= C; ch0 += 16) {
					__m256i acc0, acc1;
					dw_block(src + ch0, wp + ch0, Np, off, tap, nt, 16, &acc0, &acc1);
					epi16(c, acc0, acc1, ch0, res ? res + m * ldr : NULL, out + m * ldo * osz, 16);
				}
				if (ch0 < C) {
					__m256i acc0, acc1;
					dw_block(src + ch0, wp + ch0, Np, off, tap, nt, C - ch0, &acc0, &acc1);
					epi16(c, acc0, acc1, ch0, res ? res + m * ldr : NULL, out + m * ldo * osz, C - ch0);
				}
			}
}
