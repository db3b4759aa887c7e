#!/usr/bin/env bash
# Cross-compile the kernel files for aarch64 and, when qemu-aarch64 is
# available, run a small driver that checks the neon and i8mm tiers (the
# latter where the emulated CPU has I8MM) against the scalar
# reference (pair kernels over odd lengths and unaligned pointers, row
# kernels over several counts/dims, tile_i8, extremes; int8 exact, floats
# within 2e-6 of sum |a_i b_i|), then the in-memory gallery's search (one
# query at a time and a batch of 64, int8 and fp16 scans, 1 and 2 shards)
# on the tier dispatch picks, compared result by result with the same run
# at HERKEN_MAX_ISA=scalar (tools/cross-arm64/: the driver, and stand-ins
# for hwloc's pool, OpenBLAS's sgemm and libsodium, which have no arm64
# build here; the gallery, top-k, dispatch and kernels are the real files).
#
#   tools/cross-arm64.sh [--install]
#
# Needs gcc-aarch64-linux-gnu (+ libc6-dev-arm64-cross) and, to run,
# qemu-user; --install apt-gets them (about 15 s here). Exit 0 = compiled
# (and passed under qemu when it ran), 1 = failure, 2 = toolchain missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--install" ]]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
CC=aarch64-linux-gnu-gcc
if ! command -v "$CC" >/dev/null; then
	echo "cross-arm64: $CC not found (run with --install)" >&2
	exit 2
fi

out=build/cross-arm64
mkdir -p "$out"
flags=(-std=c11 -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror
	-Icore -Isimd -DHK_BUILDING_LIBRARY -DHK_ARCH_ARM64=1)
objs=()
for f in simd/cpu.c simd/dot_scalar.c core/status.c simd/*_neon.c simd/*_i8mm.c; do
	isa=()
	[[ "$f" == *_neon.c ]] && isa=(-march=armv8.2-a+dotprod+fp16)
	[[ "$f" == *_i8mm.c ]] && isa=(-march=armv8.2-a+dotprod+fp16+i8mm)
	o="$out/$(basename "${f%.c}").o"
	"$CC" "${flags[@]}" "${isa[@]}" -c "$f" -o "$o"
	objs+=("$o")
done

cat >"$out/check.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_simd.h"

static unsigned long long st = 88172645463325252ull;
static unsigned rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (unsigned)(st >> 20); }
static float rf(void) { return (float)((int)(rnd() % 20001) - 10000) / 10000.0f; }
static int8_t ri8(void) { return (int8_t)((int)(rnd() % 255) - 127); }
static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; if (fails < 20) { printf(__VA_ARGS__); printf("\n"); } } } while (0)

static int close_f(float got, float want, double mag) { return fabs((double)got - want) <= 2e-6 * mag + 1e-30; }

static int check_tier(const hk__kernel_table *s, const hk__kernel_table *k);

/* Every aarch64 tier the (emulated) CPU supports against scalar. */
int main(void)
{
	const hk__kernel_table *s = hk__kernels_for(HK_ISA_SCALAR);
	static const hk_isa isas[] = {HK_ISA_NEON, HK_ISA_I8MM};
	printf("dispatch picks: %s\n", hk__kernels()->name);
	if (!hk__kernels_for(HK_ISA_NEON)) { printf("neon tier not supported by this CPU/emulator\n"); return 1; }
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		const hk__kernel_table *k = hk__kernels_for(isas[i]);
		if (!k) { printf("%s: not supported by this CPU/emulator, not run\n", hk_isa_name(isas[i])); continue; }
		fails = 0;
		bad |= check_tier(s, k);
	}
	return bad;
}

static int check_tier(const hk__kernel_table *s, const hk__kernel_table *k)
{
	enum { N = 260 };
	float fa[N], fb[N]; uint16_t h[N], b16[N]; int8_t ia[N], ib[N];
	for (int i = 0; i < N; i++) { fa[i] = rf(); fb[i] = rf(); h[i] = hk__f32_to_f16(rf()); b16[i] = hk__f32_to_bf16(rf()); ia[i] = ri8(); ib[i] = ri8(); }
	for (size_t n = 0; n <= 257; n++) for (size_t o = 0; o < 3; o++) {
		double m = 0, mh = 0, mb = 0, mhh = 0;
		for (size_t i = 0; i < n; i++) {
			m += fabs((double)fa[o + i] * fb[i]); mh += fabs((double)fa[o + i] * hk__f16_to_f32(h[i]));
			mb += fabs((double)fa[o + i] * hk__bf16_to_f32(b16[i])); mhh += fabs((double)hk__f16_to_f32(h[o + i]) * hk__f16_to_f32(h[i]));
		}
		CHECK(close_f(k->dot_f32(fa + o, fb, n), s->dot_f32(fa + o, fb, n), m), "dot_f32 n=%zu", n);
		CHECK(close_f(k->dot_f32_f16(fa + o, h, n), s->dot_f32_f16(fa + o, h, n), mh), "dot_f32_f16 n=%zu", n);
		CHECK(close_f(k->dot_f32_bf16(fa + o, b16, n), s->dot_f32_bf16(fa + o, b16, n), mb), "dot_f32_bf16 n=%zu", n);
		CHECK(close_f(k->dot_f16(h + o, h, n), s->dot_f16(h + o, h, n), mhh), "dot_f16 n=%zu", n);
		CHECK(k->dot_i8(ia + o, ib, n) == s->dot_i8(ia + o, ib, n), "dot_i8 n=%zu", n);
	}
	static const size_t counts[] = {0, 1, 2, 3, 5, 7, 9, 17, 300}, dims[] = {64, 192, 320, 576};
	for (size_t di = 0; di < 4; di++) for (int mode = 0; mode < 2; mode++) {
		size_t dim = dims[di], s8 = dim + 64, s16 = dim * 2 + 64, s32 = dim * 4 + 64;
		int8_t *r8 = aligned_alloc(64, 300 * s8); uint16_t *r16 = aligned_alloc(64, 300 * s16); float *r32 = aligned_alloc(64, 300 * s32);
		int32_t sums[300]; uint8_t *qu = malloc(70 * dim + 1); float *q = malloc(dim * 4);
		for (size_t i = 0; i < 300; i++) {
			int32_t sm = 0;
			for (size_t j = 0; j < dim; j++) {
				int8_t v = mode ? -127 : ri8(); r8[i * s8 + j] = v; sm += v;
				((uint16_t *)((char *)r16 + i * s16))[j] = mode ? 0x7bff : hk__f32_to_f16(rf());
				((float *)((char *)r32 + i * s32))[j] = rf();
			}
			sums[i] = sm;
		}
		for (size_t j = 0; j < 70 * dim; j++) qu[j] = mode ? 255 : (uint8_t)(ri8() + 128);
		for (size_t j = 0; j < dim; j++) q[j] = rf();
		for (size_t ci = 0; ci < 9; ci++) {
			size_t c = counts[ci];
			int32_t a[300], b[300]; float fa2[300], fb2[300];
			s->scan_i8(qu, r8, sums, c, dim, s8, a); k->scan_i8(qu, r8, sums, c, dim, s8, b);
			CHECK(!memcmp(a, b, c * 4), "scan_i8 count=%zu dim=%zu", c, dim);
			s->scan_f16(q, r16, c, dim, s16, fa2); k->scan_f16(q, r16, c, dim, s16, fb2);
			for (size_t i = 0; i < c; i++) CHECK(close_f(fb2[i], fa2[i], 65504.0 * dim), "scan_f16 %zu", i);
			s->scan_f32(q, r32, c, dim, s32, fa2); k->scan_f32(q, r32, c, dim, s32, fb2);
			for (size_t i = 0; i < c; i++) CHECK(close_f(fb2[i], fa2[i], (double)dim), "scan_f32 %zu", i);
			int32_t *ta = malloc(70 * 301 * 4), *tb = malloc(70 * 301 * 4);
			memset(ta, 0, 70 * 301 * 4); memset(tb, 0, 70 * 301 * 4);
			s->tile_i8(qu, 70, dim, r8, sums, c, dim, s8, ta, c + 1);
			k->tile_i8(qu, 70, dim, r8, sums, c, dim, s8, tb, c + 1);
			CHECK(!memcmp(ta, tb, 70 * 301 * 4), "tile_i8 count=%zu dim=%zu", c, dim);
			free(ta); free(tb);
		}
		CHECK(k->read_sum(r8, 64 * 10) == s->read_sum(r8, 64 * 10), "read_sum");
		free(r8); free(r16); free(r32); free(qu); free(q);
	}
	printf("%s vs scalar: %s (%d failures)\n", k->name, fails ? "FAIL" : "ok", fails);
	return fails != 0;
}
EOF
"$CC" "${flags[@]}" "$out/check.c" "${objs[@]}" -lm -lpthread -o "$out/check"
echo "cross-arm64: compiled ${#objs[@]} objects and $out/check"

# the gallery's search: the kernel objects above plus the gallery itself
gobjs=("${objs[@]}")
for f in simd/topk.c core/gallery/gallery.c core/gallery/search.c tools/cross-arm64/shim.c; do
	o="$out/$(basename "${f%.c}").o"
	"$CC" "${flags[@]}" -Itools/cross-arm64 -c "$f" -o "$o"
	gobjs+=("$o")
done
"$CC" "${flags[@]}" tools/cross-arm64/gallery_check.c "${gobjs[@]}" -lm -lpthread -o "$out/gallery_check"
echo "cross-arm64: compiled $out/gallery_check"

# gallery_check on qemu CPU $1 (dispatch's choice) against the scalar run
gallery_vs_scalar() {
	local cpu=$1
	echo "cross-arm64: gallery search, qemu -cpu $cpu"
	HERKEN_MAX_ISA=scalar qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/gallery_check" >"$out/gallery.scalar"
	qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/gallery_check" >"$out/gallery.$cpu"
	grep -v '^r ' "$out/gallery.$cpu"
	awk 'NR == FNR { if ($1 == "r") { id[$2" "$3" "$4] = $5; sc[$2" "$3" "$4] = $6; n++ } next }
	$1 == "r" { k = $2" "$3" "$4; m++; d = $6 - sc[k]; if (d < 0) d = -d; if (d > mx) mx = d
		if (!(k in id) || id[k] != $5 || d > 1e-5)
			if (bad++ < 10) print "differs from scalar: config/query/rank " k ": scalar " id[k] " " sc[k] ", this tier " $5 " " $6 }
	END { printf "gallery results compared with scalar: %d, differing %d, max |score diff| %.2g\n", m, bad, mx
		exit (bad > 0 || m != n || m == 0) }' "$out/gallery.scalar" "$out/gallery.$cpu"
}

if command -v qemu-aarch64 >/dev/null; then
	# -cpu max has I8MM (both tiers run); neoverse-n1 has dotprod without
	# I8MM (the neon tier only, and dispatch must not pick i8mm); the cap
	# HERKEN_MAX_ISA=neon keeps dispatch on SDOT where I8MM exists.
	echo "cross-arm64: qemu -cpu max"
	qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$out/check"
	echo "cross-arm64: qemu -cpu max, HERKEN_MAX_ISA=neon"
	HERKEN_MAX_ISA=neon qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$out/check" | grep -x "dispatch picks: neon"
	echo "cross-arm64: qemu -cpu neoverse-n1 (no I8MM)"
	qemu-aarch64 -cpu neoverse-n1 -L /usr/aarch64-linux-gnu "$out/check"
	gallery_vs_scalar max
	gallery_vs_scalar neoverse-n1
else
	echo "cross-arm64: qemu-aarch64 not found, not run"
fi
