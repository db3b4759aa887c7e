/* Vector oracles the tests share: the L2 normalisation and the cosine
 * computed in double, independent of the library's kernels; the tests'
 * xorshift64 generator. */
#ifndef HK_TEST_VEC_H
#define HK_TEST_VEC_H

#include <math.h>
#include <stdint.h>

/* xorshift64 (13, 7, 17) step of *s, the upper bits. */
static inline uint32_t tv_xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 16);
}

static inline void tv_unit(float *v, int d)
{
	double s = 0;
	for (int i = 0; i < d; i++)
		s += (double)v[i] * v[i];
	for (int i = 0; i < d; i++)
		v[i] = (float)(v[i] / sqrt(s));
}

static inline double tv_cosine(const float *a, const float *b, int d)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < d; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

#endif
