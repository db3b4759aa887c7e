/* CPU feature detection and the dispatch table (filled once). */
#include "hk_simd.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const isa_names[] = {
	[HK_ISA_SCALAR] = "scalar",   [HK_ISA_NEON] = "neon",
	[HK_ISA_AVX2] = "avx2",       [HK_ISA_AVXVNNI] = "avxvnni",
	[HK_ISA_AVX512] = "avx512",   [HK_ISA_AVX512VNNI] = "avx512vnni",
};

const char *hk_isa_name(hk_isa isa)
{
	if ((unsigned)isa < sizeof isa_names / sizeof isa_names[0])
		return isa_names[isa];
	return "unknown";
}

hk_isa hk__cpu_detect(void) { return HK_ISA_SCALAR; }

const hk_kernels *hk__kernels_for(hk_isa isa)
{
	if (isa == HK_ISA_SCALAR)
		return &hk__kernels_scalar;
	return NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const hk_kernels *chosen;

static void choose(void) { chosen = &hk__kernels_scalar; }

const hk_kernels *hk__kernels(void)
{
	pthread_once(&once, choose);
	return chosen;
}

hk_isa hk_cpu_isa(void) { return hk__kernels()->isa; }
