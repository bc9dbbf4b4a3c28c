#!/usr/bin/env bash
# A benchmark slide of real tissue: the 14 gastric HER2 cores of ../shared/data/gastric-tma (each
# 5,468 px square at 0.25 um/px), each also flipped and turned half round, laid out as a tissue
# microarray (42 cores, a 6 x 7 grid of 6,000 px cells: 36,000 x 42,000 px, 1.5 Gpx) on the scanner's
# own glass (RGB 234, 233, 242, the median of the cores' borders, which differ by at most 3 levels:
# the glass between cores is the glass inside each core's square, as on a real TMA slide), and
# written as an Aperio-style SVS: tiled JPEG (240 px tiles, quality 90, 4:2:0), levels 4x apart
# (1, 1/4, 1/16, 1/64; area-averaged), MPP 0.25 in the description, as a 40x scanner writes them,
# so that 0.5 um/px analysis decodes level 0 at half scale. libvips lays out the levels
# (uncompressed, in a temporary folder: about 5 GB), libtiff's tiffcp encodes them once into one
# file (holding level 0 in memory: about 9 GB peak, 3 minutes), tiffset writes the description
# (Debian libvips-tools, libtiff-tools). Made at benchmark
# time, never committed.
#   benchmarks/make-tma.sh OUT.svs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: benchmarks/make-tma.sh OUT.svs}"
cores="$root/../shared/data/gastric-tma"
for tool in vips tiffcp tiffset; do
  command -v "$tool" >/dev/null || { echo "make-tma: $tool not found (scripts/setup-deps.sh)" >&2; exit 2; }
done
[ -d "$cores" ] || { echo "make-tma: $cores not found" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work" "$out.tmp.$$"' EXIT
cell=6000
glass="234 233 242"
list=()
for f in "$cores"/*.jpg; do
  name="$(basename "$f" .jpg)"
  vips copy "$f" "$work/$name-0.v"
  vips flip "$f" "$work/$name-f.v" horizontal
  vips rot "$f" "$work/$name-r.v" d180
  for v in 0 f r; do
    vips gravity "$work/$name-$v.v" "$work/$name-$v-cell.v" centre "$cell" "$cell" --extend background --background "$glass"
    list+=("$work/$name-$v-cell.v")
  done
done
vips arrayjoin "${list[*]}" "$work/tma.v" --across 6
levels=()
for k in 0 1 2 3; do
  f=$((1 << (2 * k)))
  if [ "$k" -eq 0 ]; then src="$work/tma.v"; else vips shrink "$work/tma.v" "$work/l$k.v" "$f" "$f"; src="$work/l$k.v"; fi
  vips tiffsave "$src" "$work/l$k.tif" --tile --tile-width 240 --tile-height 240 --bigtiff
  levels+=("$work/l$k.tif")
done
tmp="$out.tmp.$$"
tiffcp -8 -m 0 -c jpeg:90 "${levels[@]}" "$tmp"
w="$(vipsheader -f width "$work/tma.v")"; h="$(vipsheader -f height "$work/tma.v")"
tiffset -d 0 -s 270 "Aperio Image Library v12.0.15
${w}x${h} [0,0 ${w}x${h}] (240x240) JPEG/RGB Q=90|AppMag = 40|MPP = 0.25|Generator = benchmarks/make-tma.sh" "$tmp"
mv "$tmp" "$out"
echo "make-tma: wrote $out (${w} x ${h} px, levels 1, 4, 16, 64)" >&2
