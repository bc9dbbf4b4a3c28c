// Pictures and viewer files: the heatmap and the QuPath GeoJSON of a scored slide.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli_runner.hpp"

using namespace ihc;

TEST_CASE("score writes a heatmap with the slide's aspect and GeoJSON cells QuPath can import", "[outputs][cli]") {
  const auto dir = test::scratch_dir("outputs-pictures");
  const auto slide = (dir / "o.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 4000 --height 2000 --seed 21 --mix 0.2,0.2,0.3,0.3").exit_code == 0);
  const auto heat = (dir / "heat.png").string(), geo = (dir / "cells.geojson").string(), rep = (dir / "r.json").string();
  const auto r = test::run_cli("score '" + slide + "' --heatmap '" + heat + "' --geojson '" + geo + "' --geojson-tiles --json '" +
                               rep + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto report = nlohmann::json::parse(test::slurp(rep));

  const cv::Mat png = cv::imread(heat);
  REQUIRE_FALSE(png.empty());
  CHECK(png.cols >= 800);
  // Picture above a 70 px legend: width / height of the picture part equals the slide's 2:1.
  CHECK(static_cast<double>(png.cols) / (png.rows - 70) == Approx(2.0).epsilon(0.02));

  const auto g = nlohmann::json::parse(test::slurp(geo));
  REQUIRE(g["type"] == "FeatureCollection");
  std::int64_t cells = 0, tiles = 0;
  for (const auto& f : g["features"]) {
    REQUIRE(f["geometry"]["type"] == "Polygon");
    const auto& ring = f["geometry"]["coordinates"][0];
    CHECK(ring.front() == ring.back());  // closed ring
    for (const auto& pt : ring) {
      CHECK(pt[0].get<double>() >= 0);
      CHECK(pt[0].get<double>() <= 4000);
      CHECK(pt[1].get<double>() >= 0);
      CHECK(pt[1].get<double>() <= 2000);
    }
    const auto& props = f["properties"];
    if (props["objectType"] == "detection") {
      ++cells;
      const std::string name = props["classification"]["name"];
      CHECK((name == "0" || name == "1+" || name == "2+" || name == "3+"));
      CHECK(props["classification"]["color"].size() == 3);
      CHECK(props["measurements"].contains("completeness"));
      CHECK(props["measurements"].contains("intensity_od"));
      // Tumour cells here are 8-14 µm across: their outlines enclose tens to a few hundred µm².
      CHECK(props["measurements"]["area_um2"].get<double>() > 10);
      CHECK(props["measurements"]["area_um2"].get<double>() < 700);
    } else {
      ++tiles;
    }
  }
  CHECK(cells == report["cells"]["total"].get<std::int64_t>());
  CHECK(tiles == report["tiles"]["tissue"].get<std::int64_t>());
}

TEST_CASE("markup draws a region at analysis resolution and refuses regions outside the slide", "[outputs][cli]") {
  const auto dir = test::scratch_dir("outputs-markup");
  const auto slide = (dir / "m.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 3000 --height 2000 --seed 22 --mix 0,0,0,1").exit_code == 0);
  const auto png = (dir / "m.png").string();
  const auto r = test::run_cli("markup '" + slide + "' --region 1000,600,800,600 --out '" + png + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const cv::Mat img = cv::imread(png);
  REQUIRE_FALSE(img.empty());
  CHECK(img.cols == 420);       // 800 level-0 px at 0.25 -> 400 analysis px, legend at least 420 wide
  CHECK(img.rows == 300 + 28);  // 600 -> 300, plus the legend
  CHECK(r.out.find("cells") != std::string::npos);
  CHECK(test::run_cli("markup '" + slide + "' --region 2900,0,800,600 --out '" + png + "' --force").exit_code == 2);
  CHECK(test::run_cli("markup '" + slide + "' --region 1,2,3 --out '" + png + "' --force").exit_code == 2);
}

TEST_CASE("score --roi counts only cells inside the QuPath annotation, holes excluded", "[roi][cli]") {
  const auto dir = test::scratch_dir("roi");
  const auto slide = (dir / "r.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 4000 --height 3000 --seed 23 --mix 0.2,0.2,0.3,0.3").exit_code == 0);
  // A 2000 x 2000 square with a 1000 x 1000 hole, and a second polygon, as a MultiPolygon Feature.
  {
    std::ofstream g(dir / "roi.geojson");
    g << R"({"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[)"
      << R"([[[500,500],[2500,500],[2500,2500],[500,2500],[500,500]],[[1000,1000],[2000,1000],[2000,2000],[1000,2000],[1000,1000]]],)"
      << R"([[[3000,0],[4000,0],[4000,1000],[3000,1000],[3000,0]]]]}})";
  }
  const auto geo = (dir / "cells.geojson").string(), rep = (dir / "r.json").string();
  const auto r = test::run_cli("score '" + slide + "' --roi '" + (dir / "roi.geojson").string() + "' --geojson '" + geo +
                               "' --json '" + rep + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto report = nlohmann::json::parse(test::slurp(rep));
  CHECK(report["roi"]["polygons"] == 2);
  CHECK(report["roi"]["area_mm2"].get<double>() == Approx((4e6 - 1e6 + 1e6) * 0.25 * 0.25 / 1e6).epsilon(0.002));  // a raster measure (region.hpp)
  std::int64_t cells = 0;
  const auto features = nlohmann::json::parse(test::slurp(geo))["features"];
  for (const auto& f : features) {
    // The nucleus centre is the polygon's mean point only roughly; use the ring's bounding box.
    double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
    for (const auto& pt : f["geometry"]["coordinates"][0]) {
      x0 = std::min(x0, pt[0].get<double>());
      x1 = std::max(x1, pt[0].get<double>());
      y0 = std::min(y0, pt[1].get<double>());
      y1 = std::max(y1, pt[1].get<double>());
    }
    const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const bool in_square = cx > 450 && cx < 2550 && cy > 450 && cy < 2550;
    const bool in_hole = cx > 1060 && cx < 1940 && cy > 1060 && cy < 1940;
    const bool in_second = cx > 2950 && cy < 1050;
    CHECK(((in_square && !in_hole) || in_second));
    ++cells;
  }
  CHECK(cells == report["cells"]["total"].get<std::int64_t>());
  CHECK(cells > 100);
  const auto whole = test::run_cli("score '" + slide + "' --json '" + (dir / "w.json").string() + "'");
  REQUIRE(whole.exit_code == 0);
  CHECK(nlohmann::json::parse(test::slurp(dir / "w.json"))["cells"]["total"].get<std::int64_t>() > cells);

  { std::ofstream(dir / "bad.geojson") << R"({"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]}})"; }
  const auto bad = test::run_cli("score '" + slide + "' --roi '" + (dir / "bad.geojson").string() + "'");
  CHECK(bad.exit_code == 3);
  CHECK(bad.err.find("bad.geojson") != std::string::npos);
  CHECK(test::run_cli("score '" + slide + "' --roi '" + (dir / "none.geojson").string() + "'").exit_code == 3);
  { std::ofstream(dir / "empty.geojson") << "\n"; }
  const auto empty = test::run_cli("score '" + slide + "' --roi '" + (dir / "empty.geojson").string() + "'");
  CHECK(empty.exit_code == 3);
  CHECK(empty.err.find("empty.geojson: the file is empty") != std::string::npos);
}

TEST_CASE("calibrate fits the 1+/2+ and 2+/3+ intensity boundaries from controls and score uses them",
          "[calibrate][cli]") {
  const auto dir = test::scratch_dir("calibrate");
  const char* mixes[] = {"0,1,0,0", "0,0,1,0", "0,0,0,1"};
  std::string controls;
  for (int k = 0; k < 3; ++k) {
    const auto s = (dir / ("c" + std::to_string(k + 1) + ".svs")).string();
    REQUIRE(test::run_cli("synth '" + s + "' --width 3000 --height 2400 --seed " + std::to_string(41 + k) +
                          " --mix " + mixes[k]).exit_code == 0);
    controls += " '" + s + ":" + std::to_string(k + 1) + "+'";
  }
  const auto cfg = (dir / "cal.json").string();
  const auto r = test::run_cli("calibrate" + controls + " --out '" + cfg + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto c = nlohmann::json::parse(test::slurp(cfg));
  // The generator's 2+ membranes peak at 0.25-0.45 and its 3+ at 0.8-1.2 (DAB, after blur), 2+
  // about 1 um wide and 3+ about 2 um: as DAB mass per um (cells.hpp, membrane_ref_um) 2+ reads
  // about 0.3-0.5 and 3+ about 1.5-2.5. Each fitted boundary lies between the classes it
  // separates.
  const double moderate = c["cells"]["moderate_od"], intense = c["cells"]["intense_od"];
  CHECK(moderate > 0.1);
  CHECK(moderate < 0.3);
  CHECK(intense > 0.45);
  CHECK(intense < 1.5);
  CHECK(c["calibration"]["fitted"]["intense_od"]["balanced_accuracy"].get<double>() > 0.95);
  CHECK(c["calibration"]["controls"].size() == 3);
  // The written file is a configuration `score --config` accepts.
  const auto rep = (dir / "scored.json").string();
  const auto s = test::run_cli("score '" + (dir / "c3.svs").string() + "' --config '" + cfg + "' --json '" + rep + "'");
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  const auto j = nlohmann::json::parse(test::slurp(rep));
  CHECK(j["score"] == "3+");
  CHECK(j["config"]["cells"]["intense_od"].get<double>() == Approx(intense));
  // Errors: a control without a class, and controls of a single class.
  CHECK(test::run_cli("calibrate '" + (dir / "c1.svs").string() + "' --out '" + (dir / "x.json").string() + "'").exit_code == 2);
  CHECK(test::run_cli("calibrate '" + (dir / "c3.svs").string() + ":3+' --out '" + (dir / "y.json").string() + "'").exit_code == 3);
}

TEST_CASE("nothing the user owns is replaced: inputs named as outputs, report folders with other files, batch's "
          "outputs over the user's files",
          "[outputs][cli]") {
  namespace fs = std::filesystem;
  const auto dir = test::scratch_dir("outputs-user-files");
  const auto slide = (dir / "s.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 1500 --height 1000 --seed 24 --mix 0,0.5,0.5,0").exit_code == 0);
  const auto bytes_of = [](const fs::path& p) { return test::slurp(p); };
  const std::string slide_bytes = bytes_of(slide);

  // --report DIR --force where DIR holds the slide, or files a report does not write: refused, all kept.
  const auto mine = dir / "mine";
  fs::create_directories(mine);
  fs::copy_file(slide, mine / "s.svs");
  { std::ofstream(mine / "notes.txt") << "precious"; }
  const auto in_dir = test::run_cli("score " + test::q(mine / "s.svs") + " --report " + test::q(mine) + " --force");
  CHECK(in_dir.exit_code == 2);
  CHECK(in_dir.err.find("inside the --report folder") != std::string::npos);
  const auto other = test::run_cli("score " + test::q(slide) + " --report " + test::q(mine) + " --force");
  CHECK(other.exit_code == 4);
  CHECK(other.err.find("which a report does not write") != std::string::npos);
  CHECK(bytes_of(mine / "s.svs") == slide_bytes);
  CHECK(bytes_of(mine / "notes.txt") == "precious");
  // A report folder of its own is replaced with --force.
  const auto rep = dir / "rep";
  REQUIRE(test::run_cli("score " + test::q(slide) + " --report " + test::q(rep)).exit_code == 0);
  CHECK(test::run_cli("score " + test::q(slide) + " --report " + test::q(rep)).exit_code == 4);
  CHECK(test::run_cli("score " + test::q(slide) + " --report " + test::q(rep) + " --force").exit_code == 0);
  CHECK(fs::is_regular_file(rep / "index.html"));

  // An output naming an input, --force or not: usage error, input intact.
  const auto copy = dir / "copy.svs";
  fs::copy_file(slide, copy);
  CHECK(test::run_cli("markup " + test::q(copy) + " --region 0,0,400,400 --out " + test::q(copy) + " --force").exit_code == 2);
  { std::ofstream(dir / "c.json") << R"({"cells":{}})"; }
  CHECK(test::run_cli("score " + test::q(slide) + " --config " + test::q(dir / "c.json") + " --json " +
                      test::q(dir / "c.json") + " --force")
            .exit_code == 2);
  CHECK(bytes_of(copy) == slide_bytes);
  CHECK(bytes_of(dir / "c.json") == R"({"cells":{}})");
  // A PNG under another name, and GeoJSON-only flags without --geojson: usage errors.
  CHECK(test::run_cli("markup " + test::q(slide) + " --region 0,0,400,400 --out " + test::q(dir / "m.jpg")).exit_code == 2);
  CHECK(test::run_cli("score " + test::q(slide) + " --geojson-all").exit_code == 2);
  // markup --roi draws the cells score --roi counts: the same number.
  { std::ofstream(dir / "left.geojson") << R"({"type":"Polygon","coordinates":[[[0,0],[750,0],[750,1000],[0,1000],[0,0]]]})"; }
  const auto roi_json = dir / "roi.json";
  REQUIRE(test::run_cli("score " + test::q(slide) + " --roi " + test::q(dir / "left.geojson") + " --json " +
                        test::q(roi_json)).exit_code == 0);
  const auto roi_cells = nlohmann::json::parse(bytes_of(roi_json))["cells"]["total"].get<long long>();
  const auto roi_markup = test::run_cli("markup " + test::q(slide) + " --roi " + test::q(dir / "left.geojson") +
                                        " --region 0,0,1500,1000 --out " + test::q(dir / "roi.png"));
  REQUIRE(roi_markup.exit_code == 0);
  CHECK(roi_cells > 20);
  CHECK(roi_markup.out.find(": " + std::to_string(roi_cells) + " cells") != std::string::npos);
  // A special file takes the report as written (fsync cannot apply to it: that is not a failure).
  CHECK(test::run_cli("score " + test::q(slide) + " --json /dev/null").exit_code == 0);
  CHECK_FALSE(fs::exists(dir / "m.jpg"));

  // batch: a file of the user's where batch would write its own is replaced only with --force;
  // a slide's report folder holding the user's files never.
  const auto in = dir / "in";
  fs::create_directories(in);
  fs::copy_file(slide, in / "a.svs");
  const auto out = dir / "out";
  fs::create_directories(out);
  { std::ofstream(out / "a.json") << R"({"mine": 1})"; }
  CHECK(test::run_cli("batch " + test::q(in) + " --out " + test::q(out)).exit_code == 4);
  CHECK(bytes_of(out / "a.json") == R"({"mine": 1})");
  CHECK(test::run_cli("batch " + test::q(in) + " --out " + test::q(out) + " --force").exit_code == 0);
  CHECK(nlohmann::json::parse(bytes_of(out / "a.json")).contains("score"));
  const auto reports = dir / "reports";
  fs::create_directories(reports / "a");
  { std::ofstream(reports / "a" / "keep.txt") << "precious"; }
  CHECK(test::run_cli("batch " + test::q(in) + " --out " + test::q(out) + " --report " + test::q(reports) + " --force")
            .exit_code == 4);
  CHECK(bytes_of(reports / "a" / "keep.txt") == "precious");
  fs::remove(reports / "a" / "keep.txt");
  { std::ofstream(reports / "index.html") << "my page"; }
  CHECK(test::run_cli("batch " + test::q(in) + " --out " + test::q(out) + " --report " + test::q(reports)).exit_code == 4);
  CHECK(bytes_of(reports / "index.html") == "my page");
}
