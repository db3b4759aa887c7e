/*
 * Cross-arm64 check only (tools/cross-arm64.sh): stand-ins for what the
 * in-memory gallery links besides the library's own code — core/pool.c
 * (hwloc) becomes a pool that runs every shard in turn on the caller
 * (the gallery's shard merge still runs), OpenBLAS's sgemm a plain loop,
 * libsodium a refusal. The gallery, top-k, dispatch and kernels under test
 * are the real files.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

struct hk__pool {
	unsigned n;
};

hk__pool *hk__pool_create(unsigned nthreads)
{
	hk__pool *p = malloc(sizeof *p);
	if (p)
		p->n = nthreads ? nthreads : 1;
	return p;
}

void hk__pool_destroy(hk__pool *p) { free(p); }
unsigned hk__pool_size(const hk__pool *p) { return p->n; }

int hk__pool_try_run(hk__pool *p, hk__pool_fn fn, void *arg)
{
	for (unsigned s = 0; s < p->n; s++)
		fn(arg, s, p->n);
	return 0;
}

unsigned hk__ncores(void) { return 2; }

void *hk__mem_alloc(size_t size, int mode, int *kind)
{
	(void)mode;
	*kind = HK__MEM_PLAIN;
	void *q = NULL;
	return posix_memalign(&q, 64, size ? size : 1) ? NULL : q;
}

void hk__mem_free(void *p, size_t size)
{
	(void)size;
	free(p);
}

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                 int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc)
{
	if (order != CblasRowMajor || ta != CblasNoTrans || tb != CblasTrans)
		abort();
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float s = 0;
			for (int l = 0; l < k; l++)
				s += a[(size_t)i * lda + l] * b[(size_t)j * ldb + l];
			c[(size_t)i * ldc + j] = alpha * s + (beta != 0 ? beta * c[(size_t)i * ldc + j] : 0);
		}
}

int sodium_init(void) { return -1; }
void crypto_stream_chacha20_ietf_keygen(unsigned char *k) { (void)k; abort(); }
int crypto_stream_chacha20_ietf_xor_ic(unsigned char *c, const unsigned char *m,
                                       unsigned long long mlen, const unsigned char *n,
                                       unsigned int ic, const unsigned char *k)
{
	(void)c; (void)m; (void)mlen; (void)n; (void)ic; (void)k;
	abort();
}
