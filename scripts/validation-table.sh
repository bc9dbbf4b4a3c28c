#!/usr/bin/env bash
# Prints the full validation table (24 synthetic slides, see tests/test_validation_table.cpp):
# designed mix, resolution, stain rotation, JPEG quality, truth and measured score and
# complete-intense per cent, then exact agreement and mean absolute error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh" >/dev/null
cd "$root"
echo "| # | mix 0,1+,2+,3+ | um/px | rotation | JPEG q | truth | measured | truth 3+ % | measured 3+ % |"
echo "|---|---|---|---|---|---|---|---|---|"
"${BUILD_DIR:-$root/build}/tests/ihc_tests" "[validation-full]" | grep -E '^\||^agreement'
