// Regions of interest with parts left out: QuPath annotations classed "Ignore*" (or "Exclude")
// are taken out of the scored region wherever they lie (scoring/region.hpp, engine/roi.hpp).
// Geometry against areas worked out by hand, the parser against QuPath's export forms, and
// `score` on a real core with its drawn stroma left out.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/roi.hpp"
#include "ihc/scoring/region.hpp"

using ihc::test::q;
using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;
namespace sc = ihc::scoring;

namespace {
sc::Polygon square(double x0, double y0, double side) {
  return sc::Polygon{{{{x0, y0}, {x0 + side, y0}, {x0 + side, y0 + side}, {x0, y0 + side}}}};
}

std::string feature(const std::string& classification, double x0, double y0, double x1, double y1) {
  std::string props = classification.empty() ? R"({"objectType":"annotation"})"
                                             : R"({"objectType":"annotation","classification":)" + classification + "}";
  return R"({"type":"Feature","properties":)" + props + R"(,"geometry":{"type":"Polygon","coordinates":[[[)" +
         std::to_string(x0) + "," + std::to_string(y0) + "],[" + std::to_string(x1) + "," + std::to_string(y0) + "],[" +
         std::to_string(x1) + "," + std::to_string(y1) + "],[" + std::to_string(x0) + "," + std::to_string(y1) + "],[" +
         std::to_string(x0) + "," + std::to_string(y0) + "]]]}}";
}
}  // namespace

namespace {
// An Aperio ImageScope <Region> with the given vertices.
std::string imagescope_region(int type, bool negative, const std::vector<std::pair<double, double>>& vertices) {
  std::string s = R"(<Region Id="1" Type=")" + std::to_string(type) + R"(" Zoom="0.5" Selected="0" NegativeROA=")" +
                  (negative ? "1" : "0") + R"(" Analyze="1" DisplayId="1"><Attributes/><Vertices>)";
  for (const auto& [x, y] : vertices) s += R"(<Vertex X=")" + std::to_string(x) + R"(" Y=")" + std::to_string(y) + R"(" Z="0"/>)";
  return s + "</Vertices></Region>";
}

std::string imagescope(const std::vector<std::string>& layers) {
  std::string s = R"(<?xml version="1.0" encoding="UTF-8"?><Annotations MicronsPerPixel="0.252100">)";
  for (const auto& regions : layers)
    s += R"(<Annotation Id="1" Name="" LineColor="65280" Visible="1"><Attributes/><Regions><RegionAttributeHeaders/>)" +
         regions + "</Regions><Plots/></Annotation>";
  return s + "</Annotations>";
}
}  // namespace

TEST_CASE("region of interest: excluded polygons are taken out wherever they lie", "[roi]") {
  // Scored: a 1000 px square; left out: a 200 px square inside it and one half over its edge.
  const sc::Region r({square(0, 0, 1000)}, {square(200, 200, 200), square(900, 400, 200)});
  CHECK(r.contains(100, 100));
  CHECK_FALSE(r.contains(300, 300));   // inside the first excluded square
  CHECK_FALSE(r.contains(950, 500));   // inside the second, within the scored square
  CHECK_FALSE(r.contains(1050, 500));  // outside the scored square
  CHECK(r.contains(500, 500));
  CHECK(r.area() == Approx(1e6));  // of the scored polygons only
  // 10^6 - 200^2 - 100 x 200 (the half of the second square inside)
  CHECK(r.area_within(cv::Rect2d(0, 0, 1000, 1000)) == Approx(1e6 - 40000 - 20000).epsilon(0.005));

  // Only excluded polygons: everything else, measured within what is asked (a slide's extent).
  const sc::Region rest({}, {square(200, 200, 200)});
  CHECK_FALSE(rest.empty());
  CHECK(rest.contains(10, 10));
  CHECK(rest.contains(5e6, -5e6));
  CHECK_FALSE(rest.contains(300, 300));
  CHECK(rest.area_within(cv::Rect2d(0, 0, 1000, 500)) == Approx(5e5 - 40000).epsilon(0.005));

  // An excluded polygon reaching 10^7 px away (a clip to the measured area keeps it exact and
  // the raster fine) and one with a hole, whose inside is scored again.
  const sc::Region far({square(0, 0, 1000)},
                       {sc::Polygon{{{{500, -9e6}, {9e6, -9e6}, {9e6, 9e6}, {500, 9e6}}}},
                        sc::Polygon{{{{0, 0}, {400, 0}, {400, 400}, {0, 400}}, {{100, 100}, {300, 100}, {300, 300}, {100, 300}}}}});
  CHECK_FALSE(far.contains(600, 600));
  CHECK_FALSE(far.contains(50, 50));
  CHECK(far.contains(200, 200));  // in the excluded polygon's hole
  CHECK(far.area_within(cv::Rect2d(0, 0, 1000, 1000)) == Approx(5e5 - 160000 + 40000).epsilon(0.005));

  // The overview mask: the excluded inside cleared, its outline kept (a tile touching it is read).
  const cv::Mat m = r.mask(cv::Size(100, 100), 10.0);
  CHECK(m.at<std::uint8_t>(5, 5) == 255);
  CHECK(m.at<std::uint8_t>(30, 30) == 0);    // centre of the first excluded square
  CHECK(m.at<std::uint8_t>(20, 30) == 255);  // its top edge
  const cv::Mat all_but = rest.mask(cv::Size(100, 100), 10.0);
  CHECK(all_but.at<std::uint8_t>(90, 90) == 255);
  CHECK(all_but.at<std::uint8_t>(30, 30) == 0);
}

TEST_CASE("region of interest: QuPath's Ignore* and Exclude classes are left out, other classes scored", "[roi]") {
  const std::string text = R"({"type":"FeatureCollection","features":[)" +
                           feature(R"({"name":"Tumor","color":[200,0,0]})", 0, 0, 1000, 1000) + "," +
                           feature(R"({"name":"Ignore*","color":[180,180,180]})", 200, 200, 400, 400) + "," +
                           feature(R"("exclude")", 600, 600, 700, 700) + "," +      // a bare string, any case
                           feature(R"({"name":"Stroma"})", 2000, 0, 2100, 100) + "," +  // a class of its own: scored
                           feature("", 3000, 0, 3100, 100) + "]}";
  const sc::Region r = ihc::engine::parse_roi(text, "qupath.geojson");
  CHECK(r.polygons().size() == 3);
  CHECK(r.excluded().size() == 2);
  CHECK_FALSE(r.contains(300, 300));
  CHECK_FALSE(r.contains(650, 650));
  CHECK(r.contains(500, 500));
  CHECK(r.contains(2050, 50));
  // Only left-out annotations: a region still (the slide without them), not "no polygon".
  const sc::Region rest = ihc::engine::parse_roi(
      R"({"type":"FeatureCollection","features":[)" + feature(R"({"name":"Ignore*"})", 0, 0, 10, 10) + "]}", "ignore.geojson");
  CHECK(rest.polygons().empty());
  CHECK(rest.excluded().size() == 1);
  CHECK(rest.contains(20, 20));
}

TEST_CASE("score --roi on a real core: cells in Ignore* annotations are not counted, the others are the same",
          "[roi][real]") {
  // The 3+ core's collagen bands, drawn by eye (tests/data/gastric-regions), inside a rectangle
  // round them: scored once with the rectangle alone, once with the bands classed Ignore*.
  const fs::path core = "../shared/data/gastric-tma/3_a1f1510c-b91e-4995-ba59-596ca7ebb019.jpg";
  const auto stroma = ihc::engine::load_roi("tests/data/gastric-regions/3_a1f1510c.stroma.geojson");
  REQUIRE(stroma.polygons().size() == 2);
  const auto dir = scratch_dir("roi-ignore");
  const std::string rect = feature("", 3400, 1000, 4800, 2200);
  std::string ignored;
  const auto drawn = nlohmann::json::parse(slurp("tests/data/gastric-regions/3_a1f1510c.stroma.geojson"));
  for (const auto& f : drawn["features"]) {
    auto g = f;
    g["properties"]["classification"] = {{"name", "Ignore*"}};
    ignored += "," + g.dump();
  }
  std::ofstream(dir / "rect.geojson") << R"({"type":"FeatureCollection","features":[)" << rect << "]}";
  std::ofstream(dir / "rect-ignore.geojson") << R"({"type":"FeatureCollection","features":[)" << rect << ignored << "]}";
  std::string summary;  // the last run's terminal summary
  const auto counted_centres = [&](const std::string& roi, nlohmann::json& report) {
    const auto r = run_cli("score " + q(core) + " --mpp 0.25 --guideline gastric --roi " + q(dir / roi) + " --geojson " +
                           q(dir / (roi + ".cells")) + " --json " + q(dir / (roi + ".json")) + " --force");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    report = nlohmann::json::parse(slurp(dir / (roi + ".json")));
    summary = r.out;
    std::set<std::pair<double, double>> centres;
    const auto cells = nlohmann::json::parse(slurp(dir / (roi + ".cells")));
    for (const auto& f : cells["features"])
      if (f["properties"].contains("centre"))
        centres.emplace(f["properties"]["centre"][0].get<double>(), f["properties"]["centre"][1].get<double>());
    return centres;
  };
  // The same as an Aperio ImageScope file: the rectangle, the bands as negative regions.
  std::string bands;
  for (const auto& polygon : stroma.polygons()) {
    std::vector<std::pair<double, double>> vertices;
    for (const auto& p : polygon.rings.front()) vertices.emplace_back(p.x, p.y);
    bands += imagescope_region(0, true, vertices);
  }
  std::ofstream(dir / "rect-negative.xml") << imagescope({imagescope_region(1, false, {{3400, 1000}, {4800, 2200}}) + bands});
  nlohmann::json plain_report, ignore_report, xml_report;
  const auto plain = counted_centres("rect.geojson", plain_report);
  const auto kept = counted_centres("rect-ignore.geojson", ignore_report);
  CHECK(counted_centres("rect-negative.xml", xml_report) == kept);
  CHECK(xml_report["roi"]["excluded_polygons"] == 2);
  std::set<std::pair<double, double>> expected;
  int in_stroma = 0;
  for (const auto& c : plain) {
    if (stroma.contains(c.first, c.second)) ++in_stroma;
    else expected.insert(c);
  }
  INFO("counted in the rectangle " << plain.size() << ", of them in the drawn stroma " << in_stroma);
  CHECK(in_stroma >= 10);  // the bands hold counted cells (issue 17: the stroma share on this core)
  CHECK(plain.size() - static_cast<std::size_t>(in_stroma) >= 100);
  CHECK(kept == expected);
  CHECK(ignore_report["roi"]["polygons"] == 1);
  CHECK(ignore_report["roi"]["excluded_polygons"] == 2);
  CHECK(summary.find("; 2 annotations left out)") != std::string::npos);
  // The area scored: the rectangle without the bands' area (both lie inside it).
  constexpr double kMm2PerPx = 0.25 * 0.25 / 1e6;
  CHECK(ignore_report["roi"]["area_mm2"].get<double>() ==
        Approx((1400.0 * 1200.0 - stroma.area()) * kMm2PerPx).epsilon(0.01));
  CHECK(plain_report["roi"]["area_mm2"].get<double>() == Approx(1400.0 * 1200.0 * kMm2PerPx).epsilon(0.01));
}

TEST_CASE("score --roi: left-out annotations that cover all of the region are a clear input error", "[roi][cli]") {
  const auto dir = scratch_dir("roi-all-ignored");
  const fs::path img = "../shared/data/images/her2-score0.png";
  const std::string ignore_all = feature(R"({"name":"Ignore*"})", -10, -10, 5000, 5000);
  std::ofstream(dir / "inside.geojson") << R"({"type":"FeatureCollection","features":[)"
                                        << feature("", 10, 10, 200, 200) << "," << ignore_all << "]}";
  std::ofstream(dir / "only.geojson") << R"({"type":"FeatureCollection","features":[)" << ignore_all << "]}";
  for (const auto& [file, what] : {std::pair{"inside.geojson", "its region of interest"}, std::pair{"only.geojson", "the slide"}}) {
    const auto r = run_cli("score " + q(img) + " --mpp 0.6 --roi " + q(dir / file) + " --json " + q(dir / "out.json"));
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find(file) != std::string::npos);
    CHECK(r.err.find(std::string("cover all of ") + what) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out.json"));
  }
}


TEST_CASE("region of interest: Aperio ImageScope XML, with negative regions left out", "[roi]") {
  // Layer 1: a freehand square 0-1000 with a negative rectangle inside; layer 2: a rectangle and an
  // ellipse given by the corners of their boxes, and an arrow (2 vertices, not an area).
  const std::string xml = imagescope(
      {imagescope_region(0, false, {{0, 0}, {1000, 0}, {1000, 1000}, {0, 1000}, {0, 0}}) +
           imagescope_region(1, true, {{200, 200}, {400, 400}}),
       imagescope_region(1, false, {{2000, 0}, {2400, 100}}) + imagescope_region(2, false, {{3000, 0}, {3400, 200}}) +
           imagescope_region(3, false, {{5000, 0}, {5100, 100}})});
  const sc::Region r = ihc::engine::parse_roi(xml, "slide.xml");
  CHECK(r.polygons().size() == 3);
  CHECK(r.excluded().size() == 1);
  CHECK(r.contains(100, 100));
  CHECK_FALSE(r.contains(300, 300));
  CHECK(r.contains(2200, 50));
  CHECK(r.contains(3200, 100));
  CHECK_FALSE(r.contains(3010, 10));   // a corner of the ellipse's box, outside the ellipse
  CHECK_FALSE(r.contains(5050, 50));   // the arrow
  // 10^6 - 200^2 + 400 x 100 + pi x 200 x 100
  CHECK(r.area_within(cv::Rect2d(0, 0, 6000, 1000)) == Approx(1e6 - 40000 + 40000 + 3.14159265 * 200 * 100).epsilon(0.005));
  // A byte-order mark before the XML declaration is still XML.
  CHECK(ihc::engine::parse_roi("\xEF\xBB\xBF" + xml, "bom.xml").polygons().size() == 3);

  const auto refused = [](const std::string& text, const std::string& why) {
    INFO(text.substr(0, 80));
    try {
      (void)ihc::engine::parse_roi(text, "bad.xml");
      FAIL("accepted");
    } catch (const ihc::engine::EngineError& e) {
      CHECK(e.kind() == ihc::engine::ErrorKind::input);
      CHECK(std::string(e.what()).find("bad.xml: " + why) != std::string::npos);
    }
  };
  refused("<Annotations><Annotation>", "not valid XML");
  refused("<ASAP_Annotations/>", "XML, but not an Aperio ImageScope annotation file");
  refused(imagescope({imagescope_region(3, false, {{0, 0}, {10, 10}})}), "no area in this ImageScope annotation file");
  refused(imagescope({R"(<Region Type="0"><Vertices><Vertex X="12px" Y="0"/><Vertex X="1" Y="1"/><Vertex X="2" Y="0"/></Vertices></Region>)"}),
          "a Vertex has no number for X ('12px')");
  refused(imagescope({imagescope_region(0, false, {{0, 0}, {1e9, 0}, {0, 10}})}), "a polygon point lies beyond 10^7 pixels");
}
