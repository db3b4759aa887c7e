#!/usr/bin/env bash
# Fetch the six demo photos of `make run` (never committed): `npm pack` of
# @vladmandic/face-api@1.7.15 (MIT), extract demo/sample1..6.jpg, verify
# sha256. No JavaScript is run.
#
#   HERKEN_DEMO=dir   where the photos go (default: <repo>/.cache/demo)
#
# Idempotent: when every photo is present and verifies, nothing is fetched.
# Exit status: 0 all photos present and verified, 1 fetch/verify failed,
# 2 npm missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dest=${HERKEN_DEMO:-$root/.cache/demo}
pkg="@vladmandic/face-api@1.7.15"

# sha256 of package/demo/sampleN.jpg in $pkg
sums="8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51  sample1.jpg
7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691  sample2.jpg
8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936  sample3.jpg
729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc  sample4.jpg
6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938  sample5.jpg
9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87  sample6.jpg"

verify_all() {
  [ -d "$dest" ] && (cd "$dest" && printf '%s\n' "$sums" | sha256sum --check --status 2>/dev/null)
}

if verify_all; then
  echo "fetch-demo: 6 demo photos present and verified in $dest"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-demo: npm is not installed (make deps), or put $pkg's demo/sample1..6.jpg into $dest" >&2
  exit 2
fi
mkdir -p "$dest"
work=$(mktemp -d "${TMPDIR:-/tmp}/herken-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-demo: npm pack $pkg"
if ! (cd "$work" && timeout 300 npm pack --silent "$pkg" >"$work/pack.out" 2>"$work/pack.err"); then
  echo "fetch-demo: 'npm pack $pkg' failed:" >&2
  sed 's/^/  /' "$work/pack.err" | tail -5 >&2
  exit 1
fi
tgz=$work/$(tail -1 "$work/pack.out")
for i in 1 2 3 4 5 6; do
  tar -xzf "$tgz" -C "$work" "package/demo/sample$i.jpg" || {
    echo "fetch-demo: demo/sample$i.jpg not in $pkg" >&2; exit 1; }
done
(cd "$work/package/demo" && printf '%s\n' "$sums" | sha256sum --check --quiet) || {
  echo "fetch-demo: sha256 mismatch in $pkg" >&2; exit 1; }
for i in 1 2 3 4 5 6; do
  install -m 0644 "$work/package/demo/sample$i.jpg" "$dest/sample$i.jpg"
done
echo "fetch-demo: 6 demo photos verified in $dest"
