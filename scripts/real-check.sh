#!/usr/bin/env bash
# Real tissue in the loop: scores the 14 real gastric HER2 cores (../shared/data/gastric-tma,
# 0.25 µm/px, gastric rules) and the four real breast patches (../shared/data/images, 0.6 µm/px,
# breast 2018 rules), then compares with the pathologists' labels through `ihcscore validate`:
# exact agreement, quadratic kappa, the confusion matrix, and each case's decisive percentage;
# then the leave-one-out figure of `calibrate --labels` (thresholds fitted on 13, applied to one).
# Builds nothing: set BUILD_DIR (default build/) to a built tree.
#   scripts/real-check.sh                 the check, with the defaults
#   scripts/real-check.sh --config F.json the same with other thresholds
#   OUT=DIR scripts/real-check.sh         keep the reports in DIR (default: a temporary folder)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/ihcscore"
[[ -x "$bin" ]] || { echo "real-check: $bin not found (build first, or set BUILD_DIR)" >&2; exit 2; }
data="$root/../shared/data"
[[ -d "$data/gastric-tma" ]] || { echo "real-check: $data/gastric-tma not found" >&2; exit 2; }
extra=("$@")
if [[ -n "${OUT:-}" ]]; then
  out="$OUT"
  mkdir -p "$out"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

echo "== Gastric cores: --guideline gastric --mpp 0.25 (labels: $data/gastric-tma/labels.csv)"
"$bin" batch "$data/gastric-tma" --out "$out/gastric" --mpp 0.25 --guideline gastric --force "${extra[@]}" >/dev/null
"$bin" validate --truth "$data/gastric-tma/labels.csv" --results "$out/gastric/summary.csv" \
  --json "$out/gastric-validate.json" --force
echo
echo "Per core (label, ISH status, engine score, decisive metric and per cent, tumour cells):"
python3 - "$data/gastric-tma/labels.csv" "$out/gastric/summary.csv" <<'PY'
import csv, sys
labels = {r["file"].rsplit(".", 1)[0]: r for r in csv.DictReader(open(sys.argv[1]))}
print(f"  {'core':12s} {'label':5s} {'ISH':8s} {'engine':6s} {'decisive':28s} cells")
for r in csv.DictReader(open(sys.argv[2])):
    l = labels.get(r["slide"], {})
    mark = "" if l.get("ihc_score") == r["score"] else "  <--"
    dec = f"{r['decisive_metric']} {float(r['decisive_percent'] or 0):5.1f} %"
    print(f"  {r['slide'][:12]:12s} {l.get('ihc_score', '?'):5s} {l.get('her2_status', '?'):8s} "
          f"{r['score']:6s} {dec:28s} {r['cells']}{mark}")
PY

echo
echo "== Leave-one-out: class thresholds fitted on 13 cores, applied to the 14th (ihcscore calibrate --labels)"
"$bin" calibrate --labels "$data/gastric-tma/labels.csv" --mpp 0.25 --guideline gastric \
  --out "$out/gastric-calibrated.json" --force "${extra[@]}" 2>/dev/null

echo
echo "== Breast patches: --mpp 0.6 (asco-cap-2018; the class is the patch's folder in the dataset)"
printf '  %-16s %-5s %-6s %s\n' patch label engine "decisive"
for k in 0 1 2 3; do
  f="$data/images/her2-score$k.png"
  "$bin" score "$f" --mpp 0.6 --json "$out/her2-score$k.json" --force "${extra[@]}" >/dev/null
  python3 - "$out/her2-score$k.json" "$k" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); k = sys.argv[2]
label = "0" if k == "0" else k + "+"
d = j.get("decisive", {})
mark = "" if j["score"] == label else "  <--"
print(f"  her2-score{k}.png  {label:5s} {j['score']:6s} {d.get('metric', '-')} {d.get('percent', 0):.1f} % "
      f"({j['cells']['total']} cells){mark}")
PY
done
