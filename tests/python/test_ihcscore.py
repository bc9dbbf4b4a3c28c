"""The Python module (engine/python) against the command line and OpenSlide, on the shared data.

Run by CTest ("python module (pytest)") with PYTHONPATH at the built module and IHCSCORE_BINARY
at the command line; from the project root by hand:
    PYTHONPATH=build/python IHCSCORE_BINARY=build/ihcscore python3 -m pytest tests/python
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ihcscore

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
BINARY = os.environ.get("IHCSCORE_BINARY", "build/ihcscore")
PATCH = os.path.join(DATA, "images", "her2-score2.png")
CMU = os.path.join(DATA, "slides", "cmu-1-small-region.svs")


def cli(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    """A small synthetic slide with known staining, made by the command line."""
    path = str(tmp_path_factory.mktemp("slides") / "s.svs")
    cli("synth", path, "--width", "4000", "--height", "3000", "--seed", "7", "--mix", "0.3,0.3,0.2,0.2")
    return path


def without_timing(report):
    report = dict(report)
    report.pop("elapsed_s", None)
    return report


def test_the_dict_is_the_command_lines_json(slide, tmp_path):
    out = tmp_path / "r.json"
    cli("score", slide, "--json", str(out), "--guideline", "asco-cap-2007", "--threads", "2")
    expected = json.loads(out.read_text())
    got = ihcscore.score(slide, guideline="asco-cap-2007", threads=2)
    assert without_timing(got) == without_timing(expected)
    assert got["score"] in ("0", "1+", "2+", "3+")


def test_cells_are_arrays_with_the_reports_counts(slide):
    report, cells = ihcscore.score(slide, cells=True)
    n = report["cells"]["total"]
    assert n > 500
    for name in ("x", "y", "class", "completeness", "intensity_od", "nucleus_area_um2", "counted", "left_out",
                 "cytoplasmic", "pigment", "lateral", "excluded_fold", "excluded_focus"):
        assert isinstance(cells[name], np.ndarray) and cells[name].shape == (n,), name
    assert cells["counted"].all()
    by_class = report["cells"]["by_class"]
    for k in range(4):
        assert int((cells["class"] == k).sum()) == by_class["0" if k == 0 else f"{k}+"]
    width, height = report["slide"]["width"], report["slide"]["height"]
    assert (cells["x"] >= 0).all() and (cells["x"] < width).all()
    assert (cells["y"] >= 0).all() and (cells["y"] < height).all()
    # With the left-out cells: every detected cell, each left-out one with its reason.
    report2, everything = ihcscore.score(slide, cells=True, left_out=True, outlines=True)
    assert len(everything["x"]) == report2["cells"]["detected"]
    left = ~everything["counted"]
    assert (everything["left_out"][left] != 0).all() or not left.any()
    assert set(np.unique(everything["left_out"][left])) <= {sum(c) for c in _subsets(list(ihcscore.LEFT_OUT))}
    assert len(everything["outline"]) == len(everything["x"])
    assert everything["outline"][0].shape[1] == 2


def _subsets(bits):
    out = [()]
    for b in bits:
        out += [s + (b,) for s in out]
    return out


def test_read_region_is_openslides_pixels():
    openslide = pytest.importorskip("openslide")
    reference = openslide.OpenSlide(CMU)
    ours = ihcscore.Slide(CMU)
    assert ours.reader == "tiff-jpeg"
    assert [(w, h) for w, h, _ in ours.levels] == list(reference.level_dimensions)
    assert ours.mpp == pytest.approx(float(reference.properties["openslide.mpp-x"]))
    for x, y, w, h in ((0, 0, 300, 200), (913, 1207, 512, 384), (2100, 2900, 200, 200)):
        got = ours.read_region(x, y, w, h)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        rgba = np.asarray(reference.read_region((x, y), 0, (w, h))).astype(float)
        # Over white, as the engine composes: outside the slide OpenSlide is transparent.
        alpha = rgba[..., 3:] / 255.0
        want = np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        # Full-resolution reads are OpenSlide's pixels (tests/test_tiff_jpeg_reader.cpp: 0 differ).
        differing = np.count_nonzero(got.astype(int) != want.astype(int))
        assert differing <= 0.001 * got.size
    assert np.array_equal(ihcscore.read_region(CMU, 913, 1207, 64, 64), ours.read_region(913, 1207, 64, 64))


def test_deconvolve_recovers_known_concentrations_without_copying():
    h_vec = np.array([0.650, 0.704, 0.286]) / np.linalg.norm([0.650, 0.704, 0.286])
    d_vec = np.array([0.268, 0.570, 0.776]) / np.linalg.norm([0.268, 0.570, 0.776])
    h_true = np.linspace(0.0, 1.0, 64, dtype=np.float32)[None, :].repeat(32, axis=0)
    d_true = np.linspace(0.8, 0.0, 32, dtype=np.float32)[:, None].repeat(64, axis=1)
    od = h_true[..., None] * h_vec + d_true[..., None] * d_vec
    rgb = np.clip(np.round(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    h, d = ihcscore.deconvolve(rgb)
    assert h.dtype == np.float32 and h.shape == (32, 64) and d.shape == (32, 64)
    # 8-bit rounding: within 0.02 OD where the pixel is not saturated.
    ok = rgb.min(axis=2) > 3
    assert np.abs(h - h_true)[ok].max() < 0.02
    assert np.abs(d - d_true)[ok].max() < 0.02
    # A strided view is taken (converted once); results are the same.
    h2, _ = ihcscore.deconvolve(np.ascontiguousarray(rgb[:, ::-1])[:, ::-1])
    assert np.allclose(h2, h)
    with pytest.raises(ValueError):
        ihcscore.deconvolve(rgb[..., :2])
    with pytest.raises(ValueError):
        ihcscore.deconvolve(rgb, hematoxylin=[1, 0, 0], dab=[1, 0, 0])


@pytest.mark.parametrize("name", ["corrupt-tile.svs", "text-named-svs.svs", "bogus-compression.tiff"])
def test_damaged_files_are_slide_errors_with_the_command_lines_message(name):
    path = os.path.join(DATA, "bad", name)
    cmd = subprocess.run([BINARY, "score", path, "--mpp", "0.5"], capture_output=True, text=True)
    if cmd.returncode == 0:
        pytest.skip(f"{name} scores on the command line")
    message = cmd.stderr.strip().removeprefix("ihcscore: error: ").removeprefix("ihcscore: warning: ")
    with pytest.raises((ihcscore.SlideError, FileNotFoundError)) as error:
        ihcscore.score(path, mpp=0.5)
    if cmd.returncode == 3:
        assert str(error.value) == message


def test_errors_are_python_exceptions():
    with pytest.raises(FileNotFoundError, match="no such file"):
        ihcscore.score(os.path.join(DATA, "no-such-slide.svs"))
    with pytest.raises(FileNotFoundError):
        ihcscore.Slide(os.path.join(DATA, "no-such-slide.svs"))
    for bad in (dict(guideline="asco-cap-2099"), dict(threads=0), dict(mpp=1e-9), dict(analysis_mpp=1000),
                dict(roi=""), dict(specimen="biopsy"), dict(decode="slow")):
        with pytest.raises(ValueError):
            ihcscore.score(PATCH, **({"mpp": 0.6} | bad))
    with pytest.raises(ValueError, match="no resolution"):
        ihcscore.score(PATCH)  # a plain image needs mpp
    assert issubclass(ihcscore.SlideError, RuntimeError)


def test_two_threads_score_at_once_and_agree(slide):
    alone = without_timing(ihcscore.score(slide, threads=1))
    results = [None, None]

    def work(k):
        results[k] = without_timing(ihcscore.score(slide, threads=1))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == alone and results[1] == alone


def test_ctrl_c_stops_a_score(tmp_path):
    big = str(tmp_path / "big.svs")
    cli("synth", big, "--width", "16000", "--height", "12000", "--seed", "3")
    script = f"""
import os, signal, threading, time, ihcscore
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.time()
try:
    ihcscore.score({big!r}, threads=1)
    print("finished", time.time() - t0)
except KeyboardInterrupt:
    print("interrupted", time.time() - t0)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=300)
    assert run.stdout.startswith("interrupted"), run.stdout + run.stderr
    assert float(run.stdout.split()[1]) < 5.0


def test_the_validation_example_agrees_with_validate(tmp_path):
    """docs/python-validation.py on five real cores: its kappa is `ihcscore validate`'s."""
    cores = tmp_path / "cores"
    cores.mkdir()
    gastric = os.path.join(DATA, "gastric-tma")
    labels = [line for line in open(os.path.join(gastric, "labels.csv")).read().splitlines() if line]
    keep = [labels[0]] + [l for l in labels[1:] if l.split(",")[0][0] in "0123"][::3]
    for line in keep[1:]:
        name = line.split(",")[0]
        os.symlink(os.path.abspath(os.path.join(gastric, name)), cores / name)
    (cores / "labels.csv").write_text("\n".join(keep) + "\n")
    example = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python-validation.py")
    run = subprocess.run([sys.executable, example, str(cores), str(tmp_path / "ba.png")], capture_output=True,
                         text=True, env=os.environ, check=True)
    kappa = float(run.stdout.split("quadratic kappa")[1])
    cli("batch", str(cores), "--out", str(tmp_path / "out"), "--mpp", "0.25", "--guideline", "gastric")
    cli("validate", "--truth", str(cores / "labels.csv"), "--results", str(tmp_path / "out" / "summary.csv"),
        "--json", str(tmp_path / "v.json"))
    assert kappa == pytest.approx(json.loads((tmp_path / "v.json").read_text())["kappa_quadratic"], abs=1e-3)
    assert (tmp_path / "ba.png").stat().st_size > 10000


def test_a_region_scores_only_its_cells(slide):
    report, cells = ihcscore.score(slide, cells=True)
    part, inside = ihcscore.score(slide, cells=True, region=(1000, 500, 2000, 1500))
    assert part["roi"]["area_mm2"] == pytest.approx(2000 * 1500 * report["slide"]["mpp"] ** 2 / 1e6, rel=0.01)
    assert 0 < len(inside["x"]) < len(cells["x"])
    assert ((inside["x"] >= 1000) & (inside["x"] <= 3000) & (inside["y"] >= 500) & (inside["y"] <= 2000)).all()
    box = (cells["x"] >= 1000) & (cells["x"] <= 3000) & (cells["y"] >= 500) & (cells["y"] <= 2000)
    assert abs(int(box.sum()) - len(inside["x"])) <= 0.02 * len(inside["x"])  # the same cells, bar tiling at edges
    with pytest.raises(ValueError):
        ihcscore.score(slide, region=(0, 0, 0, 10))
