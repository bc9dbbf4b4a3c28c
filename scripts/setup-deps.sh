#!/usr/bin/env bash
# Installs the Debian 12 packages that ihcscore needs to build and test, and the npm packages of
# the report viewer (engine/report: OpenSeadragon, compiled into the engine) and of the browser
# tests (tests/browser: puppeteer-core, driving Debian's chromium).
# openmpi: `batch --mpi` (issue 7). pybind11 + python3-*: the Python module and its tests (engine/python,
# tests/python; pandas and matplotlib for docs/python-validation.py, which a test runs; pil and scipy for scripts/nuclei-check.sh). libvips-tools and
# libtiff-tools: benchmarks/make-tma.sh (the real-tissue benchmark slide). time: benchmarks/run.sh (peak memory of `score`). clang + compiler-rt: libFuzzer harnesses and sanitizers.
# libpugixml-dev: Aperio ImageScope annotation files as --roi.
# Idempotent: when every package is already installed it only checks and exits.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libopenslide-dev openslide-tools libglib2.0-dev
  libopencv-dev
  libtbb-dev
  libtiff-dev libpng-dev
  libturbojpeg0-dev libjpeg62-turbo-dev
  catch2
  libcli11-dev
  nlohmann-json3-dev
  libpugixml-dev
  openmpi-bin libopenmpi-dev
  clang libclang-rt-14-dev
  chromium
  pybind11-dev python3-dev python3-numpy python3-pytest python3-openslide python3-pandas python3-matplotlib python3-pil python3-scipy
  libvips-tools libtiff-tools time
)
# Node.js and npm: Debian's, unless the machine already has them (e.g. from NodeSource).
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# npm packages, from the lock files (npm ci), only when a folder's are missing or older than its lock.
npm_packages() {
  for dir in "$root/engine/report" "$root/tests/browser"; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "setup-deps: npm ci in ${dir#"$root"/}" >&2
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_packages
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "setup-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "setup-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_packages
