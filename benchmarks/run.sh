#!/usr/bin/env bash
# Reproduces the README's speed figures: makes a large synthetic 40x slide (and one four times
# smaller, for the memory check), runs `ihcscore bench` on each, and writes
# benchmarks/results/*.json plus the tables in benchmarks/README.md.
#
#   benchmarks/run.sh                  # 60,000 x 45,000 and 30,000 x 22,500, threads 1 and all cores
#   WIDTH=20000 HEIGHT=15000 benchmarks/run.sh      # a quicker run
#   THREADS=1,2,4,8,16 benchmarks/run.sh            # a thread-scaling curve on a bigger machine
#   TMA=0 benchmarks/run.sh            # without the real-tissue TMA slide (benchmarks/make-tma.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh" >/dev/null
bin="${BUILD_DIR:-$root/build}/ihcscore"
width="${WIDTH:-60000}"
height="${HEIGHT:-45000}"
threads="${THREADS:-1,$(nproc)}"
work="${WORK_DIR:-$root/benchmarks/work}"
results="$root/benchmarks/results"
mkdir -p "$work" "$results"

make_slide() {  # width height -> path (reused when already made with the same settings)
  local path="$work/bench-$1x$2.svs"
  if [ ! -f "$path" ] || [ ! -f "$path.truth.json" ]; then
    echo "== making $path ==" >&2
    "$bin" synth "$path" --width "$1" --height "$2" --mpp 0.25 --seed 42 --mix 0.3,0.3,0.2,0.2 --force >&2
  fi
  echo "$path"
}

large="$(make_slide "$width" "$height")"
small="$(make_slide $((width / 2)) $((height / 2)))"
slides=("$large" "$small")
# Real tissue: the 14 gastric cores laid out as a 1.5 Gpx TMA slide (benchmarks/make-tma.sh).
if [ "${TMA:-1}" = 1 ] && [ -d "$root/../shared/data/gastric-tma" ]; then
  tma="$work/tma-gastric.svs"
  [ -f "$tma" ] || "$root/benchmarks/make-tma.sh" "$tma"
  slides+=("$tma")
fi
stamp="$(date -u +%Y-%m-%d)"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
for slide in "${slides[@]}"; do
  name="$(basename "${slide%.*}")"
  echo "== bench $name (threads $threads) ==" >&2
  "$bin" bench "$slide" --threads "$threads" --json "$results/$name.json" --markdown "$work/$name.md" --force
done

{
  echo "# Benchmarks"
  echo
  echo "Made by \`benchmarks/run.sh\` on $stamp, commit $commit, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))."
  echo "Every figure is megapixels of the read pyramid level covered per second, on the same tissue tiles"
  echo "and thread count in one run: OpenSlide \`read_region\` (what a Python user gets), the direct"
  echo "TIFF/JPEG reader's decode alone (the ceiling), and full scoring (decode, deconvolution, cells)."
  echo "Raw results: \`benchmarks/results/*.json\`."
  for slide in "${slides[@]}"; do
    name="$(basename "${slide%.*}")"
    echo
    echo "## $name"
    echo
    cat "$work/$name.md"
  done
} > "$root/benchmarks/README.md"
echo "wrote $root/benchmarks/README.md" >&2
