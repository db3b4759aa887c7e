#!/usr/bin/env bash
# The install test (run by `make test` and `make install-test`): `make
# install` into a temporary prefix, then a program built with that
# prefix's `pkg-config --cflags --libs herken`, run from another directory
# without HERKEN_MODELS, creates an engine from the installed models; the
# installed herken.pc carries the prefix and the installed CLI finds the
# same models. Skips (exit 0, with a message) when the models cannot be had.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! (cd "$root" && bash tools/fetch-models.sh >/dev/null 2>&1); then
  echo "install test: SKIPPED (models unavailable: make models)"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herken-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
make -C "$root" --no-print-directory install PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; echo "install test: FAILED (make install)" >&2; exit 1; }
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --variable=prefix herken)" = "$prefix" ] ||
  { echo "install test: FAILED: herken.pc says prefix=$(pkg-config --variable=prefix herken)" >&2; exit 1; }
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
cat >prog.c <<'C'
#include <herken.h>
#include <stdio.h>

int main(void)
{
	hk_engine *e = NULL;
	if (hk_engine_create(NULL, &e) != HK_OK) {
		fprintf(stderr, "install test: %s\n", hk_last_error());
		return 1;
	}
	hk_engine_params p;
	hk_engine_get_params(e, &p);
	printf("engine created, models from %s\n", p.model_dir);
	hk_engine_destroy(e);
	return 0;
}
C
cc -std=c11 -Wall -Wextra -Werror -o prog prog.c $(pkg-config --cflags --libs herken) \
  -Wl,-rpath,"$(pkg-config --variable=libdir herken)"
out=$(env -u HERKEN_MODELS ./prog)
echo "install test: $out"
[ "$out" = "engine created, models from $prefix/share/herken/models" ] ||
  { echo "install test: FAILED (expected the installed models)" >&2; exit 1; }
env -u HERKEN_MODELS "$prefix/bin/herken" models >cli.out ||
  { cat cli.out >&2; echo "install test: FAILED (installed herken models)" >&2; exit 1; }
grep -q "^model directory: $prefix/share/herken/models\$" cli.out ||
  { cat cli.out >&2; echo "install test: FAILED (CLI model directory)" >&2; exit 1; }
echo "install test: OK (prefix $prefix, pkg-config $(pkg-config --modversion herken), CLI verified the installed models)"
