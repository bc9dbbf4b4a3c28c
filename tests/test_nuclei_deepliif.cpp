// Nuclei a person would mark: the detector against expert nucleus masks on real IHC
// (../shared/data/nuclei-deepliif: 4 Ki67 tiles, 0.25 um/px, masks from co-registered
// immunofluorescence: blue = haematoxylin-only nucleus, red = DAB-positive nucleus). Each tile is
// area-averaged to the analysis resolution (0.5 um/px) as the pipeline would, every detected cell
// is matched one-to-one to a marked nucleus within 5 um (closest pairs first), and recall,
// precision and F1 are printed (NUCLEI| lines) and held to floors. Many faint stromal nuclei on
// the IHC are not marked, so precision is a lower bound; recall of the marked ones is the firm
// figure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/stains.hpp"

using namespace ihc;

namespace {

struct Match {
  int marked = 0, marked_h = 0, detected = 0, found = 0, found_h = 0;
};

// Centres (pixels of the mask) of the marked nuclei of one colour (BGR).
std::vector<cv::Point2d> marked_centres(const cv::Mat& mask, const cv::Vec3b& bgr) {
  cv::Mat m;
  cv::inRange(mask, cv::Scalar(bgr[0], bgr[1], bgr[2]), cv::Scalar(bgr[0], bgr[1], bgr[2]), m);
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(m, labels, stats, centroids);
  std::vector<cv::Point2d> out;
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) >= 4) out.emplace_back(centroids.at<double>(i, 0), centroids.at<double>(i, 1));
  return out;
}

Match match_tile(const std::string& stem, bool counted_only) {
  const std::string dir = "../shared/data/nuclei-deepliif/";
  const cv::Mat bgr = cv::imread(dir + stem + "_ihc.png", cv::IMREAD_COLOR);
  const cv::Mat mask = cv::imread(dir + stem + "_nuclei.png", cv::IMREAD_COLOR);
  REQUIRE(!bgr.empty());
  REQUIRE(!mask.empty());
  constexpr double kMppImage = 0.25, kMppAnalysis = 0.5, kRadiusUm = 5.0;
  cv::Mat half, rgb;
  cv::resize(bgr, half, cv::Size(), kMppImage / kMppAnalysis, kMppImage / kMppAnalysis, cv::INTER_AREA);
  cv::cvtColor(half, rgb, cv::COLOR_BGR2RGB);
  const auto dec = scoring::deconvolve_for_cells(rgb, scoring::StainVectors::defaults(), 4.0);
  const auto cells = scoring::detect_cells_smoothed(dec.hematoxylin, dec.dab_smooth, kMppAnalysis,
                                                    cv::Rect(0, 0, rgb.cols, rgb.rows), scoring::CellParams{});
  std::vector<cv::Point2d> detected;  // in mask pixels
  for (const auto& c : cells)
    if (!counted_only || c.counted)
      detected.emplace_back((c.centre.x + 0.5) * kMppAnalysis / kMppImage, (c.centre.y + 0.5) * kMppAnalysis / kMppImage);
  const auto blue = marked_centres(mask, {255, 0, 0});
  const auto red = marked_centres(mask, {0, 0, 255});
  std::vector<cv::Point2d> marked = blue;
  marked.insert(marked.end(), red.begin(), red.end());
  // One-to-one, closest pairs first.
  std::vector<std::tuple<double, std::size_t, std::size_t>> pairs;
  const double r_px = kRadiusUm / kMppImage;
  for (std::size_t i = 0; i < marked.size(); ++i)
    for (std::size_t k = 0; k < detected.size(); ++k) {
      const double d = cv::norm(marked[i] - detected[k]);
      if (d <= r_px) pairs.emplace_back(d, i, k);
    }
  std::sort(pairs.begin(), pairs.end());
  std::vector<bool> used_m(marked.size()), used_d(detected.size());
  Match m;
  m.marked = static_cast<int>(marked.size());
  m.marked_h = static_cast<int>(blue.size());
  m.detected = static_cast<int>(detected.size());
  for (const auto& [d, i, k] : pairs) {
    if (used_m[i] || used_d[k]) continue;
    used_m[i] = used_d[k] = true;
    ++m.found;
    m.found_h += i < blue.size() ? 1 : 0;
  }
  return m;
}

}  // namespace

TEST_CASE("nuclei against expert masks on real IHC: recall, precision and F1 within 5 um", "[nuclei][real]") {
  for (const bool counted_only : {false, true}) {
    Match sum;
    for (const char* stem : {"22_2", "34_3", "6_2", "799_2"}) {
      const Match m = match_tile(stem, counted_only);
      sum.marked += m.marked;
      sum.marked_h += m.marked_h;
      sum.detected += m.detected;
      sum.found += m.found;
      sum.found_h += m.found_h;
    }
    const double recall = static_cast<double>(sum.found) / sum.marked;
    const double recall_h = static_cast<double>(sum.found_h) / sum.marked_h;
    const double precision = static_cast<double>(sum.found) / std::max(1, sum.detected);
    const double f1 = 2 * precision * recall / std::max(1e-9, precision + recall);
    std::printf("NUCLEI| %-9s marked %d (haematoxylin %d), detected %d, matched %d: recall %.3f (haematoxylin %.3f), "
                "precision %.3f, F1 %.3f\n",
                counted_only ? "counted" : "all", sum.marked, sum.marked_h, sum.detected, sum.found, recall, recall_h,
                precision, f1);
    if (!counted_only) {
      // Measured: all detected cells recall 0.70 (haematoxylin nuclei 0.70), precision 0.70,
      // F1 0.70; counted tumour cells recall 0.57, precision 0.75. The targets (recall of
      // haematoxylin nuclei >= 0.90, F1 >= 0.82) are not met yet.
      CHECK(recall_h >= 0.65);
      CHECK(f1 >= 0.65);
    }
  }
}

// The same measurement as a user makes it (scripts/nuclei-check.sh: `ihcscore score --geojson
// --geojson-all` on the full-resolution tiles, the centres matched by the script), against the
// same expert masks and floors.
TEST_CASE("scripts/nuclei-check.sh measures the detector against the expert masks", "[nuclei][real][cli]") {
  // The script's output on the shared tiles (no folder) or on `folder`; it must exit 0.
  const auto run_script = [](const std::string& name, const std::string& folder) {
    const std::filesystem::path binary = IHC_BINARY;
    const auto log = ihc::test::scratch_dir(name) / "out.txt";
    const std::string cmd = "BUILD_DIR='" + binary.parent_path().string() + "' '" + IHC_SOURCE_DIR +
                            "/scripts/nuclei-check.sh' " + (folder.empty() ? "" : "'" + folder + "' ") + ">'" +
                            log.string() + "' 2>&1 </dev/null";
    const int status = std::system(cmd.c_str());
    const std::string out = ihc::test::slurp(log);
    INFO(out);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    return out;
  };
  const std::string out = run_script("nuclei-check", "");
  INFO(out);
  // "  pooled     all   MARKED (HAEM) DETECTED MATCHED RECALL (HAEM) PRECISION F1"
  const auto at = out.find("pooled     all");
  REQUIRE(at != std::string::npos);
  std::istringstream line(out.substr(at + std::string("pooled     all").size()));
  int marked = 0, marked_h = 0, detected = 0, matched = 0;
  double recall = 0, recall_h = 0, precision = 0, f1 = 0;
  line >> marked >> marked_h >> detected >> matched >> recall >> recall_h >> precision >> f1;
  REQUIRE(line);
  CHECK(marked == 346);  // the masks' 8-connected blobs: 292 haematoxylin + 54 DAB nuclei
  CHECK(marked_h == 292);
  // Measured: recall 0.688 (haematoxylin 0.695), precision 0.706, F1 0.697 on 337 detections.
  CHECK(recall_h >= 0.65);
  CHECK(f1 >= 0.65);
  CHECK(matched <= std::min(marked, detected));

  // The same marks as a QuPath annotation export (GeoJSON in image pixels): the unstained nuclei
  // as small squares round their centres (a polygon counts at its centroid), the DAB-stained ones
  // as points classed "Positive". One tile: the same counts and the same matches as from the mask.
  const auto dir = ihc::test::scratch_dir("nuclei-check-geojson");
  std::filesystem::copy_file("../shared/data/nuclei-deepliif/22_2_ihc.png", dir / "22_2_ihc.png");
  const cv::Mat mask = cv::imread("../shared/data/nuclei-deepliif/22_2_nuclei.png", cv::IMREAD_COLOR);
  REQUIRE(!mask.empty());
  nlohmann::json features = nlohmann::json::array();
  for (const auto& c : marked_centres(mask, {255, 0, 0}))
    features.push_back({{"type", "Feature"},
                        {"geometry", {{"type", "Polygon"},
                                      {"coordinates", {{{c.x - 3, c.y - 3}, {c.x + 3, c.y - 3}, {c.x + 3, c.y + 3},
                                                        {c.x - 3, c.y + 3}, {c.x - 3, c.y - 3}}}}}},
                        {"properties", {{"classification", {{"name", "Negative"}}}}}});
  for (const auto& c : marked_centres(mask, {0, 0, 255}))
    features.push_back({{"type", "Feature"},
                        {"geometry", {{"type", "Point"}, {"coordinates", {c.x, c.y}}}},
                        {"properties", {{"classification", {{"name", "Positive"}}}}}});
  std::ofstream(dir / "22_2_nuclei.geojson") << nlohmann::json{{"type", "FeatureCollection"}, {"features", features}}.dump();
  const std::string out2 = run_script("nuclei-check-geojson-out", dir.string());
  INFO(out2);
  const auto tile_line = [](const std::string& text) {
    const auto at = text.find("22_2       all");
    return at == std::string::npos ? std::string() : text.substr(at, text.find('\n', at) - at);
  };
  REQUIRE(!tile_line(out).empty());
  CHECK(tile_line(out2) == tile_line(out));
  CHECK(tile_line(out2).find(" 136     126 ") != std::string::npos);  // the mask's 126 + 10 blobs
}
