#!/usr/bin/env bash
# Nuclei a person would mark (issue 17): scores each image of a folder of expert-marked nuclei with
# `ihcscore score --geojson --geojson-all` (every detected nucleus, counted or left out by the
# tumour-cell rules, with its centre), matches the detected centres one-to-one to the marked nuclei
# (closest pairs first, within a radius in micrometres) and prints recall, precision and F1 per
# image and pooled, for every detected nucleus and for the counted tumour cells only.
# Each image STEM_ihc.png has its marked nuclei in STEM_nuclei.png (a mask: blue blobs = unstained
# nuclei, red = DAB-stained, as ../shared/data/nuclei-deepliif, the default folder, 0.25 um/px) or
# in STEM_nuclei.geojson (a QuPath annotation export in image pixels: each Point or MultiPoint is a
# nucleus, each Polygon or MultiPolygon one at its centroid; a feature classed "Positive" counts as
# DAB-stained, any other as unstained). The shared masks come
# from immunofluorescence and leave many faint or stromal nuclei on the IHC unmarked, so precision
# is a lower bound and the recall of marked nuclei is the firm figure.
#   scripts/nuclei-check.sh                          the shared tiles, 5 um, 0.25 um/px
#   scripts/nuclei-check.sh --radius-um 4 --mpp 0.25 DIR
#   scripts/nuclei-check.sh -- --config F.json       extra options after -- go to `ihcscore score`
# Builds nothing: set BUILD_DIR (default build/) to a built tree. Exit 2 on a usage or setup error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BUILD_DIR:-$root/build}/ihcscore"
python="${PYTHON:-/usr/bin/python3}"
radius_um=5
mpp=0.25
dir="$root/../shared/data/nuclei-deepliif"
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --radius-um) radius_um="$2"; shift 2 ;;
    --mpp) mpp="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "nuclei-check: unknown option $1 (usage: scripts/nuclei-check.sh [--radius-um R] [--mpp M] [DIR] [-- SCORE-OPTIONS])" >&2; exit 2 ;;
    *) dir="$1"; shift ;;
  esac
done
[[ -x "$bin" ]] || { echo "nuclei-check: $bin not found (build first, or set BUILD_DIR)" >&2; exit 2; }
[[ -d "$dir" ]] || { echo "nuclei-check: $dir: no such folder" >&2; exit 2; }
"$python" -c "import numpy, PIL, scipy" 2>/dev/null || { echo "nuclei-check: $python needs numpy, scipy and PIL (scripts/setup-deps.sh)" >&2; exit 2; }
shopt -s nullglob
images=("$dir"/*_ihc.png)
[[ ${#images[@]} -gt 0 ]] || { echo "nuclei-check: $dir holds no *_ihc.png" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for img in "${images[@]}"; do
  stem="$(basename "$img" _ihc.png)"
  [[ -f "$dir/${stem}_nuclei.png" || -f "$dir/${stem}_nuclei.geojson" ]] ||
    { echo "nuclei-check: neither $dir/${stem}_nuclei.png nor ${stem}_nuclei.geojson (the marked nuclei of $img)" >&2; exit 2; }
  "$bin" score "$img" --mpp "$mpp" --geojson "$out/$stem.geojson" --geojson-all "${extra[@]}" >/dev/null
done
echo "Nuclei in $dir: detected centres against marked ones, one-to-one within $radius_um um at $mpp um/px"
"$python" - "$dir" "$out" "$radius_um" "$mpp" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image
from scipy import ndimage

folder, out, radius_um, mpp = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
MARK = {"haematoxylin": (0, 0, 255), "DAB": (255, 0, 0)}  # RGB of the mask's nucleus blobs


def blobs(mask, rgb):
    """Centres (x, y) of the 8-connected blobs of one colour, at least 4 pixels each."""
    on = np.all(mask == np.array(rgb, dtype=mask.dtype), axis=-1)
    label, n = ndimage.label(on, structure=np.ones((3, 3), dtype=bool))
    index = np.arange(1, n + 1)
    size = ndimage.sum_labels(on, label, index)
    return [(float(x), float(y)) for (y, x), k in zip(ndimage.center_of_mass(on, label, index), size) if k >= 4]


def polygon_centroid(ring):
    """Area centroid of a closed ring of (x, y) vertices (the vertex mean when it has no area)."""
    xy = np.asarray(ring, dtype=float)[:, :2]
    x, y = xy[:, 0], xy[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    if abs(area) < 1e-9:
        return float(x.mean()), float(y.mean())
    return (float(((x + np.roll(x, -1)) * cross).sum() / (6 * area)),
            float(((y + np.roll(y, -1)) * cross).sum() / (6 * area)))


def geojson_marks(path):
    """(unstained, DAB-stained) nucleus centres of a GeoJSON FeatureCollection, Feature or geometry."""
    try:
        doc = json.load(open(path))
        if doc.get("type") == "FeatureCollection":
            features = doc["features"]
        elif doc.get("type") == "Feature":
            features = [doc]
        else:
            features = [{"geometry": doc, "properties": {}}]
        unstained, stained = [], []
        for f in features:
            g = f.get("geometry") or {}
            kind, coords = g.get("type"), g.get("coordinates")
            if kind == "Point":
                centres = [tuple(coords[:2])]
            elif kind == "MultiPoint":
                centres = [tuple(c[:2]) for c in coords]
            elif kind == "Polygon":
                centres = [polygon_centroid(coords[0])]
            elif kind == "MultiPolygon":
                centres = [polygon_centroid(p[0]) for p in coords]
            else:
                continue
            cls = ((f.get("properties") or {}).get("classification") or {}).get("name", "")
            (stained if cls == "Positive" else unstained).extend((float(x), float(y)) for x, y in centres)
        return unstained, stained
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        print(f"nuclei-check: {path}: not a GeoJSON of marked nuclei ({e})", file=sys.stderr)
        sys.exit(2)


def match(marked, detected, r_px):
    """One-to-one, closest pairs first: the indices of the marked nuclei found."""
    pairs = sorted((float(np.hypot(mx - dx, my - dy)), i, k)
                   for i, (mx, my) in enumerate(marked) for k, (dx, dy) in enumerate(detected)
                   if abs(mx - dx) <= r_px and abs(my - dy) <= r_px)
    used_m, used_d, found = set(), set(), []
    for d, i, k in pairs:
        if d > r_px or i in used_m or k in used_d:
            continue
        used_m.add(i)
        used_d.add(k)
        found.append(i)
    return found


def figures(found, marked, detected):
    recall = found / marked if marked else float("nan")
    precision = found / detected if detected else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if found else 0.0
    return recall, precision, f1


r_px = radius_um / mpp
pooled = {"all": [0, 0, 0, 0, 0], "counted": [0, 0, 0, 0, 0]}  # found, found_h, marked, marked_h, detected
print(f"  {'image':10s} {'cells':8s} {'marked':>6s} {'(haem.)':>7s} {'detected':>8s} {'matched':>7s} "
      f"{'recall':>6s} {'(haem.)':>7s} {'precision':>9s} {'F1':>5s}")
for name in sorted(os.listdir(out)):
    stem = name[:-len(".geojson")]
    mask_path = os.path.join(folder, stem + "_nuclei.png")
    if os.path.exists(mask_path):
        mask = np.asarray(Image.open(mask_path).convert("RGB"))
        haem, dab = blobs(mask, MARK["haematoxylin"]), blobs(mask, MARK["DAB"])
    else:
        haem, dab = geojson_marks(os.path.join(folder, stem + "_nuclei.geojson"))
    marked = haem + dab
    cells = json.load(open(os.path.join(out, name)))["features"]
    for kind in ("all", "counted"):
        det = [tuple(c["properties"]["centre"]) for c in cells
               if kind == "all" or c["properties"].get("classification", {}).get("name") != "Not counted"]
        found = match(marked, det, r_px)
        found_h = sum(1 for i in found if i < len(haem))
        p = pooled[kind]
        for j, v in enumerate((len(found), found_h, len(marked), len(haem), len(det))):
            p[j] += v
        rec, prec, f1 = figures(len(found), len(marked), len(det))
        rec_h = found_h / len(haem) if haem else float("nan")
        print(f"  {stem:10s} {kind:8s} {len(marked):6d} {len(haem):7d} {len(det):8d} {len(found):7d} "
              f"{rec:6.3f} {rec_h:7.3f} {prec:9.3f} {f1:5.3f}")
for kind, (found, found_h, marked, marked_h, det) in pooled.items():
    rec, prec, f1 = figures(found, marked, det)
    print(f"  {'pooled':10s} {kind:8s} {marked:6d} {marked_h:7d} {det:8d} {found:7d} "
          f"{rec:6.3f} {found_h / max(1, marked_h):7.3f} {prec:9.3f} {f1:5.3f}")
PY
