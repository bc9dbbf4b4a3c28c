// score --report (issue 19): the folder is complete, refuses to replace a folder without --force,
// leaves nothing behind when it cannot be written, and opens in headless Chromium from file://
// with the checks of tests/browser/report_test.mjs (no console errors, the slide drawn, a cell the
// generator made 3+ drawn red, toggles, heatmap click). The browser part runs where node,
// Debian's chromium and puppeteer-core (tests/browser, npm) were found when CMake ran
// (scripts/setup-deps.sh installs them).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "cli_runner.hpp"
#include "ihc/engine/report_folder.hpp"
#include "ihc/synth/synth.hpp"

using ihc::test::q;
using ihc::test::run_cli;
using ihc::test::scratch_dir;
namespace fs = std::filesystem;

namespace {
// A cell the generator made 3+, deep inside a 3+ patch (every cell within 25 µm is 3+) and away
// from the slide's edge: level-0 pixels.
ihc::synth::SynthCell known_three_plus(const ihc::synth::SynthOptions& o) {
  const auto cells = ihc::synth::synth_cells_in(o, 0, 0, o.width, o.height);
  const double r_px = 25.0 / o.mpp;
  for (const auto& c : cells) {
    if (c.cell_class != ihc::scoring::CellClass::ThreePlus || c.x < 400 || c.y < 400 ||
        c.x > static_cast<double>(o.width) - 400 || c.y > static_cast<double>(o.height) - 400)
      continue;
    bool pure = true;
    for (const auto& d : cells)
      if (std::hypot(d.x - c.x, d.y - c.y) < r_px && d.cell_class != ihc::scoring::CellClass::ThreePlus) {
        pure = false;
        break;
      }
    if (pure) return c;
  }
  FAIL("no 3+ patch on the synthetic slide");
  return {};
}
}  // namespace

TEST_CASE("score --report writes a complete folder, atomically, and never replaces one without --force",
          "[report]") {
  if (!ihc::engine::report_viewer_available()) FAIL("built without the report viewer (run scripts/setup-deps.sh)");
  const auto dir = scratch_dir("report-folder");
  const auto slide = dir / "s.svs";
  REQUIRE(run_cli("synth " + q(slide) + " --width 6000 --height 4500 --seed 5 --mix 0.25,0.25,0.25,0.25").exit_code == 0);
  const auto out = dir / "report";
  const auto r = run_cli("score " + q(slide) + " --report " + q(out));
  REQUIRE(r.exit_code == 0);
  for (const char* f : {"index.html", "viewer.js", "viewer.css", "openseadragon.min.js", "data.js", "cells.js",
                        "thumbnail.jpg", "blank.jpg"})
    CHECK(fs::is_regular_file(out / f));
  CHECK(fs::is_directory(out / "slide_files"));
  // Nothing else beside it: the temporary folder is gone.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename().string().rfind(".report", 0) == 0 ? 1 : 0;
  CHECK(entries == 0);

  const auto again = run_cli("score " + q(slide) + " --report " + q(out));
  CHECK(again.exit_code == 4);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(run_cli("score " + q(slide) + " --report " + q(out) + " --force").exit_code == 0);

  // --report-mpp: the finest level twice as fine as the analysis (read again from the slide).
  const auto fine = dir / "fine";
  REQUIRE(run_cli("score " + q(slide) + " --report " + q(fine) + " --report-mpp 0.25").exit_code == 0);
  const std::string data = ihc::test::slurp(fine / "data.js");
  CHECK(data.find("\"mpp\":0.25") != std::string::npos);
  CHECK(data.find("\"width\":6000") != std::string::npos);  // level-0 pixels of the 0.25 um/px slide

  const auto nowhere = run_cli("score " + q(slide) + " --report " + q(dir / "missing" / "report"));
  CHECK(nowhere.exit_code == 4);
  CHECK_FALSE(fs::exists(dir / "missing"));
}

TEST_CASE("batch --report writes a report folder per scored slide and an index that links them", "[report][batch]") {
  const auto dir = scratch_dir("report-batch");
  const auto in = dir / "in";
  fs::create_directories(in);
  for (int k = 0; k < 2; ++k)
    REQUIRE(run_cli("synth " + q(in / ("s" + std::to_string(k) + ".svs")) + " --width 3000 --height 2400 --seed " +
                    std::to_string(40 + k))
                .exit_code == 0);
  { std::ofstream(in / "broken.svs") << "not a slide"; }
  const auto reports = dir / "reports";
  const auto r = run_cli("batch " + q(in) + " --out " + q(dir / "out") + " --report " + q(reports));
  CHECK(r.exit_code == 5);  // the broken file fails, the batch goes on
  CHECK(fs::is_regular_file(reports / "index.html"));
  CHECK(fs::is_regular_file(reports / "s0" / "index.html"));
  CHECK(fs::is_regular_file(reports / "s1" / "index.html"));
  CHECK_FALSE(fs::exists(reports / "broken"));
  const std::string index = ihc::test::slurp(reports / "index.html");
  CHECK(index.find("href=\"s0/index.html\"") != std::string::npos);
  CHECK(index.find("broken") != std::string::npos);
#ifdef IHC_BROWSER_TESTS
  CHECK(std::system(("node tests/browser/report_test.mjs --index " + q(reports)).c_str()) == 0);
#endif
}

#ifdef IHC_BROWSER_TESTS
TEST_CASE("the report opens in headless Chromium from file:// and shows the generator's 3+ cell red", "[report][browser]") {
  const auto dir = scratch_dir("report-browser");
  ihc::synth::SynthOptions o;
  o.width = 6000;
  o.height = 4500;
  o.mpp = 0.25;
  o.seed = 5;
  const auto slide = dir / "s.svs";
  REQUIRE(run_cli("synth " + q(slide) + " --width 6000 --height 4500 --seed 5").exit_code == 0);
  const auto out = dir / "report";
  REQUIRE(run_cli("score " + q(slide) + " --report " + q(out)).exit_code == 0);
  const auto cell = known_three_plus(ihc::synth::normalise_synth_options(o));
  const double analysis_per_l0 = 0.25 / 0.5;  // the report's image is the analysis resolution
  const std::string args = q(out) + " " + std::to_string(std::lround(cell.x * analysis_per_l0)) + " " +
                           std::to_string(std::lround(cell.y * analysis_per_l0)) + " 3 " + q(dir / "shot.png");
  const int rc = std::system(("node tests/browser/report_test.mjs " + args).c_str());
  CHECK(rc == 0);
  CHECK(fs::file_size(dir / "shot.png") > 10000);
}
#endif
