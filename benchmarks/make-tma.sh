#!/usr/bin/env bash
# A benchmark slide of real tissue: the 14 gastric HER2 cores of ../shared/data/gastric-tma (each
# 5,468 px square at 0.25 um/px), each also flipped and turned half round, laid out on glass as a
# tissue microarray (42 cores, a 6 x 7 grid of 6,000 px cells: 36,000 x 42,000 px, 1.5 Gpx) and
# written as a tiled JPEG pyramid (240 px tiles, quality 90, 0.25 um/px) with libvips (Debian
# libvips-tools). Made at benchmark time, never committed.
#   benchmarks/make-tma.sh OUT.tif
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: benchmarks/make-tma.sh OUT.tif}"
cores="$root/../shared/data/gastric-tma"
command -v vips >/dev/null || { echo "make-tma: vips not found (apt-get install libvips-tools)" >&2; exit 2; }
[ -d "$cores" ] || { echo "make-tma: $cores not found" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cell=6000
list=()
for f in "$cores"/*.jpg; do
  name="$(basename "$f" .jpg)"
  vips copy "$f" "$work/$name-0.v"
  vips flip "$f" "$work/$name-f.v" horizontal
  vips rot "$f" "$work/$name-r.v" d180
  for v in 0 f r; do
    vips gravity "$work/$name-$v.v" "$work/$name-$v-cell.v" centre "$cell" "$cell" --extend white
    list+=("$work/$name-$v-cell.v")
  done
done
vips arrayjoin "${list[*]}" "$work/tma.v" --across 6
# 0.25 um/px = 4,000 px/mm.
vips tiffsave "$work/tma.v" "$out" --tile --tile-width 240 --tile-height 240 --pyramid --compression jpeg --Q 90 \
  --bigtiff --xres 4000 --yres 4000
echo "make-tma: wrote $out ($(vipsheader -f width "$out") x $(vipsheader -f height "$out") px)" >&2
