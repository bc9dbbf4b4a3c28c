#!/usr/bin/env bash
# Reproduces the README's speed and memory figures in one run: makes the synthetic 40x slides
# (60,000 x 45,000 and 24,000 x 18,000, seed 42) and the real-tissue TMA slide
# (benchmarks/make-tma.sh), then for each: `ihcscore bench` (same-tile rates, and the whole score
# command against OpenSlide reading the file's tissue tiles), the peak memory of a separate
# `score --threads N` process, and `score` with and without glibc's huge-page setting
# (GLIBC_TUNABLES=glibc.malloc.hugetlb=1; medians of 3 alternating runs). Writes
# benchmarks/results/<slide>.json (bench's raw figures) and benchmarks/results/run-<date>.md (the
# tables, with machine, date and commit); the hand-written benchmarks/README.md is not touched.
#
#   benchmarks/run.sh                  # threads 1 and all cores
#   WIDTH=20000 HEIGHT=15000 benchmarks/run.sh      # a quicker large slide
#   THREADS=1,2,4,8,16 benchmarks/run.sh            # a thread-scaling curve on a bigger machine
#   TMA=0 benchmarks/run.sh            # without the real-tissue TMA slide
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh" >/dev/null
bin="${BUILD_DIR:-$root/build}/ihcscore"
width="${WIDTH:-60000}"
height="${HEIGHT:-45000}"
threads="${THREADS:-1,$(nproc)}"
score_threads="${threads##*,}"  # the largest count of the sweep, for the separate `score` runs
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

slides=("$(make_slide "$width" "$height")" "$(make_slide 24000 18000)")
if [ "${TMA:-1}" = 1 ] && [ -d "$root/../shared/data/gastric-tma" ]; then
  tma="$work/tma-gastric.svs"
  [ -f "$tma" ] || "$root/benchmarks/make-tma.sh" "$tma"
  slides+=("$tma")
fi

# Wall seconds of one `score` run (report to /dev/null), with an optional environment setting.
score_seconds() {  # slide [VAR=value]
  local start end
  start=$(date +%s.%N)
  env ${2:+"$2"} "$bin" score "$1" --threads "$score_threads" --json /dev/null >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' 
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

stamp="$(date -u +%Y-%m-%d)"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
out="$results/run-$stamp.md"
{
  echo "# benchmarks/run.sh, $stamp, commit $commit"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), threads $threads."
  echo "Same-tile figures are megapixels of the read pyramid level covered per second, on the same"
  echo "tissue tiles and thread count in one run; the whole-command figures time \`score\` from opening the"
  echo "file to the report against OpenSlide reading the file's level-0 tiles that hold tissue."
} > "$out"
for slide in "${slides[@]}"; do
  name="$(basename "${slide%.*}")"
  echo "== bench $name (threads $threads) ==" >&2
  "$bin" bench "$slide" --threads "$threads" --json "$results/$name.json" --markdown "$work/$name.md" --force
  peak_kib=$( { /usr/bin/time -v "$bin" score "$slide" --threads "$score_threads" --json /dev/null >/dev/null; } 2>&1 |
             awk -F': ' '/Maximum resident set size/ {print $2}')
  plain=() huge=()
  for _ in 1 2 3; do
    plain+=("$(score_seconds "$slide")")
    huge+=("$(score_seconds "$slide" GLIBC_TUNABLES=glibc.malloc.hugetlb=1)")
  done
  p=$(median3 "${plain[@]}") h=$(median3 "${huge[@]}")
  {
    echo
    echo "## $name"
    echo
    cat "$work/$name.md"
    echo
    printf -- '- `score --threads %s` as its own process: peak memory %.0f MiB; wall %.2f s, with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 %.2f s (x%.2f; medians of 3 alternating runs)\n' \
      "$score_threads" "$(awk -v k="$peak_kib" 'BEGIN { print k / 1024 }')" "$p" "$h" "$(awk -v a="$p" -v b="$h" 'BEGIN { print b / a }')"
  } >> "$out"
done
echo "wrote $out" >&2
