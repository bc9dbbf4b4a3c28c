#!/usr/bin/env bash
# Quick start, part 2: install, build, run every test. The tests' scratch folders (ihcscore-test-*
# under the temp folder) are removed as each test process ends; IHC_KEEP_SCRATCH=1 keeps them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure --parallel "$(nproc)" --timeout 900
