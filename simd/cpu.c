/*
 * CPU feature detection and the dispatch table (filled once). A leaf: it
 * includes only the public header and its own, and never logs; callers
 * report (hk__kernels_status).
 *
 * x86: a tier needs the CPUID feature bits AND the OS enabling the register
 * state in XCR0 (OSXSAVE + XGETBV): a kernel or hypervisor may hide AVX-512
 * state even when CPUID reports the instructions. aarch64: getauxval.
 */
#define _GNU_SOURCE
#include "hk_simd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(HK_ARCH_X86)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(HK_ARCH_ARM64)
#include <sys/auxv.h>
#endif

static const char *const isa_names[] = {
	[HK_ISA_SCALAR] = "scalar",   [HK_ISA_NEON] = "neon",
	[HK_ISA_AVX2] = "avx2",       [HK_ISA_AVXVNNI] = "avxvnni",
	[HK_ISA_AVX512] = "avx512",   [HK_ISA_AVX512VNNI] = "avx512vnni",
	[HK_ISA_AMX] = "amx",         [HK_ISA_I8MM] = "i8mm",
};
#define N_ISA (sizeof isa_names / sizeof isa_names[0])

const char *hk_isa_name(hk_isa isa)
{
	if ((unsigned)isa < N_ISA)
		return isa_names[isa];
	return "unknown";
}

int hk__isa_parse(const char *s, hk_isa *out)
{
	for (unsigned i = 0; s && i < N_ISA; i++) {
		if (!strcasecmp(s, isa_names[i])) {
			*out = (hk_isa)i;
			return 0;
		}
	}
	return -1;
}

#if defined(HK_ARCH_X86)
/* XGETBV without -mxsave: the library's baseline is plain x86-64. */
static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/*
 * Linux (>= 5.16) hands out the 8 KiB AMX tile-data state only to processes
 * that ask: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA (18). Without it the
 * first tile instruction faults, so the amx tier requires the grant.
 */
static int amx_permit(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
	return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
#else
	return 0;
#endif
}

static unsigned detect_tiers(void)
{
	unsigned t = 1u << HK_ISA_SCALAR;
	unsigned a, b, c, d;
	unsigned max = __get_cpuid_max(0, NULL);
	if (max < 7)
		return t;
	__cpuid(1, a, b, c, d);
	int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
	int f16c = (c >> 29) & 1;
	if (!osxsave || !avx)
		return t;
	uint64_t xcr0 = xgetbv0();
	int ymm_os = (xcr0 & 0x6) == 0x6;     /* SSE + AVX state */
	int zmm_os = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM_Hi256, Hi16_ZMM */
	__cpuid_count(7, 0, a, b, c, d);
	unsigned leaf7_max_sub = a;
	int avx2 = (b >> 5) & 1;
	int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1;
	int vl = (b >> 31) & 1;
	int vnni512 = (c >> 11) & 1;
	int amx = ((d >> 24) & 1) && ((d >> 25) & 1); /* AMX-TILE, AMX-INT8 */
	int avxvnni = 0;
	if (leaf7_max_sub >= 1) {
		__cpuid_count(7, 1, a, b, c, d);
		avxvnni = (a >> 4) & 1;
	}
	int tier2 = ymm_os && avx2 && fma && f16c;
	if (!tier2)
		return t;
	t |= 1u << HK_ISA_AVX2;
	if (avxvnni)
		t |= 1u << HK_ISA_AVXVNNI;
	if (zmm_os && f512 && bw && vl && dq) {
		t |= 1u << HK_ISA_AVX512;
		if (vnni512)
			t |= 1u << HK_ISA_AVX512VNNI;
		if (vnni512 && amx && (xcr0 & 0x60000) == 0x60000 && amx_permit())
			t |= 1u << HK_ISA_AMX;
	}
	return t;
}
#elif defined(HK_ARCH_ARM64)
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
/* The NEON tier uses SDOT for int8, so it needs the dotprod extension; the
 * i8mm tier adds SMMLA (Armv8.6 I8MM) for query batches. */
static unsigned detect_tiers(void)
{
	unsigned t = 1u << HK_ISA_SCALAR;
	unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
	if ((hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP)) {
		t |= 1u << HK_ISA_NEON;
		if (hw2 & HWCAP2_I8MM)
			t |= 1u << HK_ISA_I8MM;
	}
	return t;
}
#else
static unsigned detect_tiers(void) { return 1u << HK_ISA_SCALAR; }
#endif

/* Tables compiled into this build, indexed by tier. */
static const hk__kernel_table *compiled(hk_isa isa)
{
	switch (isa) {
	case HK_ISA_SCALAR: return &hk__kernels_scalar;
#if defined(HK_ARCH_X86)
	case HK_ISA_AVX2: return &hk__kernels_avx2;
	case HK_ISA_AVXVNNI: return &hk__kernels_avxvnni;
	case HK_ISA_AVX512: return &hk__kernels_avx512;
	case HK_ISA_AVX512VNNI: return &hk__kernels_avx512vnni;
	case HK_ISA_AMX: return &hk__kernels_amx;
#elif defined(HK_ARCH_ARM64)
	case HK_ISA_NEON: return &hk__kernels_neon;
	case HK_ISA_I8MM: return &hk__kernels_i8mm;
#endif
	default: return NULL;
	}
}

static pthread_once_t tiers_once = PTHREAD_ONCE_INIT;
static unsigned tiers_mask;
static void tiers_init(void) { tiers_mask = detect_tiers(); }

unsigned hk__cpu_tiers(void)
{
	pthread_once(&tiers_once, tiers_init);
	return tiers_mask;
}

hk_isa hk__cpu_detect(void)
{
	unsigned t = hk__cpu_tiers();
	hk_isa best = HK_ISA_SCALAR;
	for (unsigned i = 0; i < N_ISA; i++)
		if (t & (1u << i))
			best = (hk_isa)i;
	return best;
}

const hk__kernel_table *hk__kernels_for(hk_isa isa)
{
	if ((unsigned)isa >= N_ISA || !(hk__cpu_tiers() & (1u << isa)))
		return NULL;
	return compiled(isa);
}

hk_isa hk__isa_choose(unsigned tiers, const char *cap)
{
	hk_isa limit = (hk_isa)(N_ISA - 1);
	if (cap && *cap && hk__isa_parse(cap, &limit) != 0)
		limit = (hk_isa)(N_ISA - 1); /* unknown: ignored (see hk__kernels_status) */
	hk_isa best = HK_ISA_SCALAR;
	for (unsigned i = 0; i <= (unsigned)limit; i++)
		if ((tiers & (1u << i)) && compiled((hk_isa)i))
			best = (hk_isa)i;
	return best;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const hk__kernel_table *chosen;
static int cap_status; /* 0, or -EINVAL: HERKEN_MAX_ISA named no tier */

static void choose(void)
{
	const char *cap = getenv("HERKEN_MAX_ISA");
	hk_isa limit;
	if (cap && *cap && hk__isa_parse(cap, &limit) != 0)
		cap_status = -EINVAL;
	chosen = compiled(hk__isa_choose(hk__cpu_tiers(), cap));
}

int hk__kernels_status(void)
{
	pthread_once(&once, choose);
	return cap_status;
}

const hk__kernel_table *hk__kernels(void)
{
	pthread_once(&once, choose);
	return chosen;
}

hk_isa hk_cpu_isa(void) { return hk__kernels()->isa; }
