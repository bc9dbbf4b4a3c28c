// Tumour cells only, on real tissue (issue 17, item 5): regions of pure stroma and of pure tumour
// drawn by eye on three gastric cores (tests/data/gastric-regions/<core>.{stroma,tumour}.geojson,
// level-0 pixels of the 0.25 um/px core; each file also works as `score --roi`). Measured from the
// cells `score --geojson --geojson-all` writes:
//   stroma share = counted cells per area in stroma / (the same in stroma + in tumour): the share of
//                  counted cells that are stromal in tissue of equal parts stroma and tumour;
//   tumour kept  = counted / detected cells in the tumour regions (detected cells there are
//                  tumour nuclei: the regions hold nothing else).
// Targets: stroma share <= 5 %, tumour kept >= 85 %. The floors below assert against the drawn
// regions; docs and the issue note carry the measured figures.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/roi.hpp"

using ihc::test::q;
using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;

namespace {
struct RegionCount {
  double area_um2 = 0;
  int detected = 0, counted = 0;
};

fs::path core_image(const std::string& prefix) {
  for (const auto& e : fs::directory_iterator("../shared/data/gastric-tma"))
    if (e.path().filename().string().rfind(prefix, 0) == 0 && e.path().extension() == ".jpg") return e.path();
  FAIL("no core " << prefix);
  return {};
}
}  // namespace

TEST_CASE("real gastric cores: cells counted in drawn stroma and kept in drawn tumour", "[real][gastric][stroma]") {
  constexpr double kMpp = 0.25;
  const auto dir = scratch_dir("stroma-regions");
  const std::array<std::string, 3> cores{"3_a1f1510c", "1_154ae963", "2_aeb277c9"};
  RegionCount all_stroma, all_tumour;
  double share_sum = 0;
  for (const auto& core : cores) {
    const fs::path regions = "tests/data/gastric-regions";
    const auto stroma = ihc::engine::load_roi(regions / (core + ".stroma.geojson"));
    const auto tumour = ihc::engine::load_roi(regions / (core + ".tumour.geojson"));
    const auto cells = dir / (core + ".geojson");
    const auto r = run_cli("score " + q(core_image(core)) + " --mpp 0.25 --guideline gastric --geojson " +
                           q(cells) + " --geojson-all --force");
    REQUIRE(r.exit_code == 0);
    RegionCount s{stroma.area() * kMpp * kMpp}, t{tumour.area() * kMpp * kMpp};
    const auto geojson = nlohmann::json::parse(slurp(cells));
    for (const auto& f : geojson["features"]) {
      const auto& p = f["properties"];
      if (!p.contains("centre")) continue;  // tiles
      const double x = p["centre"][0].get<double>(), y = p["centre"][1].get<double>();
      const bool counted = p["classification"]["name"].get<std::string>() != "Not counted";
      for (const auto& [region, count] : {std::pair{&stroma, &s}, std::pair{&tumour, &t}})
        if (region->contains(x, y)) {
          ++count->detected;
          count->counted += counted ? 1 : 0;
        }
    }
    REQUIRE(s.detected > 0);
    REQUIRE(t.detected > 0);
    const double ds = s.counted / s.area_um2, dt = t.counted / t.area_um2;
    const double share = ds / (ds + dt), kept = static_cast<double>(t.counted) / t.detected;
    std::printf("STROMA| %s stroma %.0f um2: %d detected, %d counted; tumour %.0f um2: %d detected, %d counted; "
                "stroma share %.2f, tumour kept %.2f\n",
                core.c_str(), s.area_um2, s.detected, s.counted, t.area_um2, t.detected, t.counted, share, kept);
    share_sum += share;
    all_stroma.detected += s.detected;
    all_stroma.counted += s.counted;
    all_tumour.detected += t.detected;
    all_tumour.counted += t.counted;
  }
  const double kept = static_cast<double>(all_tumour.counted) / all_tumour.detected;
  const double share = share_sum / static_cast<double>(cores.size());
  std::printf("STROMA| all: stroma share (mean) %.2f (target <= 0.05), tumour kept %.2f (target >= 0.85)\n", share, kept);
  // Measured when the regions were drawn: share 0.50 (0.79 / 0.54 / 0.17), kept 0.85. Since cells
  // whose ridges carry haematoxylin are left out (cells.hpp, ridge_h_excess_ratio): share 0.37
  // (0.72 / 0.35 / 0.05), kept 0.85. The share is still far from its target on the 3+ core's
  // collagen bands; the floor keeps it from getting worse while the rules change.
  CHECK(kept >= 0.80);
  CHECK(share <= 0.45);
}
