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
