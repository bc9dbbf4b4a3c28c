#!/usr/bin/env bash
# Quick start, part 1: install, build, make a synthetic 40x HER2 slide with a known answer,
# score it with a report folder to open in a browser, and, where the project's shared data lies
# beside it (../shared/data), score a real gastric HER2 core against its pathologists' label and
# draw its cells: the outputs and how to open them are printed at the end.
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
"$bin" score "$out/demo-40x.svs" --json "$out/demo-40x.report.json" --report "$out/demo-40x.report" --force

core_dir="$(cd "$root/.." && pwd)/shared/data/gastric-tma"
core="3_a1f1510c-b91e-4995-ba59-596ca7ebb019.jpg"
if [ -f "$core_dir/$core" ] && [ -f "$core_dir/labels.csv" ]; then
  label="$(awk -F, -v f="$core" '$1 == f { print $2 " (ISH " $3 ")" }' "$core_dir/labels.csv")"
  echo "== a real gastric HER2 core (0.25 um/px), the pathologists' score: $label =="
  "$bin" score "$core_dir/$core" --mpp 0.25 --guideline gastric --json "$out/real-core.report.json" \
    --report "$out/real-core.report" --force
  "$bin" markup "$core_dir/$core" --mpp 0.25 --guideline gastric --region 3300,900,1600,1400 \
    --out "$out/real-core-cells.png" --force
fi
echo "== open in a browser: $out/demo-40x.report/index.html"
if [ -d "$out/real-core.report" ]; then
  echo "   and $out/real-core.report/index.html; cells drawn by class: $out/real-core-cells.png"
fi
echo "   (scripts/real-check.sh scores all 14 real cores and 4 breast patches against their labels)"
