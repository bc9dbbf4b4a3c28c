// ihcscore bench on a small synthetic slide: every figure the issue asks for is present and sane.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"

using namespace ihc;

TEST_CASE("bench measures OpenSlide, decode and scoring on the same tiles and reports ratios", "[bench][cli]") {
  const auto dir = test::scratch_dir("bench");
  const auto slide = (dir / "b.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 3000 --height 2400 --seed 9").exit_code == 0);
  const auto json = (dir / "b.json").string(), md = (dir / "b.md").string();
  const auto r = test::run_cli("bench '" + slide + "' --threads 1,2 --json '" + json + "' --markdown '" + md + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(test::slurp(json));
  REQUIRE(j["runs"].size() == 2);
  const auto all_tiles = ((3000 + 255) / 256) * ((2400 + 255) / 256);
  for (const auto& run : j["runs"]) {
    CHECK(run["openslide_mpx_s"].get<double>() > 0);
    CHECK(run["decode_mpx_s"].get<double>() > 0);
    CHECK(run["score_mpx_s"].get<double>() > 0);
    CHECK(run["score_vs_openslide"].get<double>() ==
          Approx(run["score_mpx_s"].get<double>() / run["openslide_mpx_s"].get<double>()).epsilon(0.02));
    CHECK(run.contains("parallel_efficiency"));
    // The whole-command headline: both timed, the ratio is theirs.
    CHECK(run["whole_score_s"].get<double>() > 0);
    CHECK(run["openslide_tissue_tiles_s"].get<double>() > 0);
    CHECK(run["whole_score_vs_openslide_tissue_tiles"].get<double>() ==
          Approx(run["openslide_tissue_tiles_s"].get<double>() / run["whole_score_s"].get<double>()).epsilon(0.02));
    // And against OpenSlide reading the tiles under the engine's own tissue mask.
    CHECK(run["openslide_engine_tissue_tiles_s"].get<double>() > 0);
    CHECK(run["whole_score_vs_openslide_engine_tissue_tiles"].get<double>() ==
          Approx(run["openslide_engine_tissue_tiles_s"].get<double>() / run["whole_score_s"].get<double>()).epsilon(0.02));
  }
  // The engine's tissue, in the file's tiles: some, not all (the synthetic tissue is a blob on glass).
  CHECK(j["engine_tissue_tiles"].get<int>() > 0);
  CHECK(j["engine_tissue_tiles"].get<int>() < all_tiles);
  // The file's tissue tiles: some, but not every tile of a slide with glass round the tissue.
  CHECK(j["file_tissue_tiles"].get<int>() > 0);
  CHECK(j["file_tissue_tiles"].get<int>() < all_tiles);
  CHECK(j["runs"][0]["parallel_efficiency"].get<double>() == Approx(1.0));
  CHECK(j["slide"]["reader"] == "tiff-jpeg");
  CHECK(j["peak_rss_mib"].get<double>() > 10);
  // The direct reader must not change the answer.
  CHECK(j["agreement"]["score_direct"] == j["agreement"]["score_openslide"]);
  CHECK(j["agreement"]["cells_difference_percent"].get<double>() < 1.0);
  const auto table = test::slurp(md);
  CHECK(table.find("| threads |") != std::string::npos);
  CHECK(table.find("OpenSlide tissue tiles") != std::string::npos);
  CHECK(test::run_cli("bench '" + slide + "' --threads 0").exit_code == 2);
}
