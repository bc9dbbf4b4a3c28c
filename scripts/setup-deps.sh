#!/usr/bin/env bash
# Installs the Debian 12 packages that ihcscore needs to build and test.
# openmpi: `batch --mpi` (issue 7). clang + compiler-rt: libFuzzer harnesses and sanitizers.
# Idempotent: when every package is already installed it only checks and exits.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libopenslide-dev openslide-tools
  libopencv-dev
  libtbb-dev
  libtiff-dev
  libturbojpeg0-dev libjpeg62-turbo-dev
  catch2
  libcli11-dev
  nlohmann-json3-dev
  openmpi-bin libopenmpi-dev
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
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
