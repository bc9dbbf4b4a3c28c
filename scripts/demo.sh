#!/usr/bin/env bash
# Quick start, part 1: install, build, make a synthetic 40x HER2 slide with a known answer,
# score it, and show where the report went.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
bin="${BUILD_DIR:-$root/build}/ihcscore"
out="$root/out/demo"
mkdir -p "$out"
echo "== making a synthetic 40x slide (12000 x 9000 px, mostly 3+ cells) =="
"$bin" synth "$out/demo-40x.svs" --width 12000 --height 9000 --mpp 0.25 --seed 7 \
  --mix 0.2,0.1,0.2,0.5 --force
echo "   known answer: $(grep -o '"asco-cap-2018": *"[^"]*"' "$out/demo-40x.svs.truth.json" | head -1) (truth in $out/demo-40x.svs.truth.json)"
echo "== scoring it =="
"$bin" score "$out/demo-40x.svs" --json "$out/demo-40x.report.json" --force
