#!/usr/bin/env bash
# Locate and verify the public data sets the benchmarks use, by checksum.
# Never downloads and never copies data: it reads the sets where they are
# and tells you where to get the ones that are missing.
#
#   datasets/verify.sh [--root DIR] [SET...]     (default: every set below)
#
# Where the sets are: --root DIR, else $HERKEN_SHARED/datasets, else
# ../shared/datasets (next to the repository), the same order the
# benchmarks use (hkb_data_path() in bench/bench_util.c).
# Each set is checked against its per-file manifest DIR/_manifests/SET.sha256,
# and that manifest against the digest pinned in datasets/manifests.sha256.
#
# Exit: 0 every requested set present and verified; 1 a set is missing,
# incomplete or altered; 2 usage.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root_repo=$(cd "$here/.." && pwd)

# set | what | where to get it
sets=(
  "lfw|LFW deep-funneled images + the official pairs.txt (View 2) and pairsDevTrain/Test.txt (View 1)|http://vis-www.cs.umass.edu/lfw/ (lfw-deepfunneled.tgz, pairs.txt)"
  "lfw_blufr|LFW BLUFR protocol as text (images.tsv, trials.tsv) over lfw/|http://www.cbsr.ia.ac.cn/users/scliao/projects/blufr/ (blufr_lfw_config.mat, converted)"
  "cfp_dev|CFP frontal-profile, folds 1-2 of the official protocol|http://www.cfpw.io/ (CFP dataset, Protocol/Split)"
  "video|short camera clips for the stream sources and visit decisions|see video/README.md in the data set folder (face-api.js, face_recognition, facenet-pytorch examples; MIT)"
  "att_orl|AT&T / ORL faces|https://cam-orl.co.uk/facedatabase.html"
  "bbt_faceapi|8 people x 5 face crops|face-api.js examples (MIT)"
  "deepface_unit|deepface unit-test photos and master.csv|deepface tests/dataset (MIT)"
  "group_photos|group photos, dlib VOC face boxes|dlib examples, Ultra-Light-Fast-Generic-Face-Detector, face-api.js, deepface"
)

dir=""
want=()
while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || { echo "usage: $0 [--root DIR] [SET...]" >&2; exit 2; }; dir=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "usage: $0 [--root DIR] [SET...]" >&2; exit 2 ;;
    *) want+=("$1"); shift ;;
  esac
done
if [ -z "$dir" ]; then
  if [ -n "${HERKEN_SHARED:-}" ]; then dir=$HERKEN_SHARED/datasets
  else dir=$root_repo/../shared/datasets
  fi
fi
[ ${#want[@]} -gt 0 ] || for s in "${sets[@]}"; do want+=("${s%%|*}"); done

rc=0
for name in "${want[@]}"; do
  row=""
  for s in "${sets[@]}"; do [ "${s%%|*}" = "$name" ] && row=$s; done
  [ -n "$row" ] || { echo "$name: unknown set (known: $(printf '%s ' "${sets[@]%%|*}"))" >&2; rc=1; continue; }
  IFS='|' read -r _ what source <<<"$row"
  man=$dir/_manifests/$name.sha256
  pinned=$(awk -v f="$name.sha256" '$2 == f { print $1 }' "$here/manifests.sha256")
  if [ ! -d "$dir/$name" ] || [ ! -f "$man" ]; then
    echo "$name: MISSING in $dir ($what). Get it from $source; put it at $dir/$name with its manifest $man"
    rc=1; continue
  fi
  got=$(sha256sum "$man" | cut -d' ' -f1)
  if [ "$got" != "$pinned" ]; then
    echo "$name: manifest $man has sha256 $got, pinned $pinned (datasets/manifests.sha256)"
    rc=1; continue
  fi
  files=$(wc -l <"$man")
  if bad=$(cd "$dir/$name" && sha256sum --quiet -c "$man" 2>&1); then
    echo "$name: $files files verified in $dir/$name"
  else
    echo "$name: FAILED in $dir/$name: $(printf '%s\n' "$bad" | grep -c 'FAILED') of $files files missing or altered, e.g.:"
    printf '%s\n' "$bad" | head -3 | sed 's/^/  /'
    rc=1
  fi
done
exit $rc
