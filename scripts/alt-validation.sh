#!/usr/bin/env bash
# Scores a sweep of images from the independent generator (tests/alt_generator.*): resolutions
# 0.25 / 0.5 / 0.6 µm/px x 7 designs x 8 variants (JPEG + stain rotation, background, blur, cytoplasmic
# blush, all tissue, noise), and prints one table row per image. Also runs the per-cell
# diagnosis of the clear designs. Builds nothing: set BUILD_DIR (default build/) to a built tree.
#   scripts/alt-validation.sh            sweep + diagnosis
#   scripts/alt-validation.sh --quick    the [alt] tests only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/tests/ihc_tests"
[[ -x "$bin" ]] || { echo "alt-validation: $bin not found (build first, or set BUILD_DIR)" >&2; exit 2; }
cd "$root"
tags="[alt-sweep]"
[[ "${1:-}" == "--quick" ]] && tags="[alt]"

header() {
  local pc
  pc="$(printf '%5s %5s %5s %5s | %5s %5s' '%0' '%1+' '%2+' '%3+' compl intns)"
  printf '%-22s | %-4s | %-3s | %s | %-3s | %s | %s\n' "case" "mpp" "des" "$pc" "got" "$pc" "cells found / truth"
  printf '%s\n' "(des: designed score and truth %; got: measured score and %; compl = 2+ and 3+, intns = 3+)"
}

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
"$bin" "$tags" >"$out" 2>&1
rc=$?
set -e
header
grep '^ALT|' "$out" | sed 's/^ALT| //' | awk -F'|' '{
  flag = ($3 != $6) ? "  <-- score differs" : "";
  print $0 flag }'
grep '^ALT-SWEEP|' "$out" | sed 's/^ALT-SWEEP| //' || true
if [[ "$tags" == "[alt-sweep]" ]]; then
  echo
  echo "Per-cell diagnosis (truth class x measured class, on the clear designs):"
  "$bin" "[alt-diag]" | grep '^DIAG|' | sed 's/^DIAG| //'
fi
grep -E 'test cases:|FAILED' "$out" | tail -5 || true
exit $rc
