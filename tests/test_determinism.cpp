// Determinism of `ihcscore score`: the same slide gives byte-identical reports (once the timing
// fields are taken out), GeoJSON and heatmap, whatever the thread count and however often it runs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"

using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
using ihc::test::q;
namespace fs = std::filesystem;

namespace {


// The report without what describes the run rather than the slide (see report.cpp): the time it
// took (elapsed_s, and any other seconds or rates a later version adds) and the thread count.
bool is_timing_key(const std::string& key) {
  const auto ends_with = [&](const std::string& tail) {
    return key.size() >= tail.size() && key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
  };
  return key == "threads" || key == "elapsed_s" || ends_with("_s") || ends_with("_per_s") ||
         key.find("time") != std::string::npos || key.find("elapsed") != std::string::npos;
}

void erase_timing(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      if (is_timing_key(it.key())) {
        it = j.erase(it);
      } else {
        erase_timing(*it);
        ++it;
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) erase_timing(v);
  }
}

std::string without_timing(const fs::path& report) {
  auto j = nlohmann::json::parse(slurp(report));
  erase_timing(j);
  return j.dump(2);
}

}  // namespace

TEST_CASE("score gives byte-identical reports, GeoJSON and heatmaps with 1, 2 and 8 threads and when repeated",
          "[determinism][cli]") {
  const auto dir = scratch_dir("determinism");
  const auto slide = dir / "d.svs";
  // 20x: analysis tiles of 1024 level-0 pixels, 6 x 5 of them.
  const auto made = run_cli("synth " + q(slide) + " --width 6000 --height 4500 --mpp 0.5 --seed 29 --mix 0.3,0.3,0.2,0.2");
  INFO(made.err);
  REQUIRE(made.exit_code == 0);

  struct Run {
    std::string label;
    int threads;
  };
  const std::vector<Run> runs = {{"t1", 1}, {"t2", 2}, {"t8", 8}, {"t2-again", 2}, {"t2-third", 2}};
  std::string report0, geojson0, heatmap0;
  for (const auto& run : runs) {
    const auto json = dir / (run.label + ".json"), geo = dir / (run.label + ".geojson"),
               heat = dir / (run.label + ".png");
    const auto r = run_cli("score " + q(slide) + " --threads " + std::to_string(run.threads) + " --json " + q(json) +
                           " --geojson " + q(geo) + " --geojson-tiles --heatmap " + q(heat));
    INFO(run.label << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(slurp(json));
    // Capped at the cores oneTBB runs (worker_threads): the report says what was used.
    CHECK(j["threads"].get<int>() >= 1);
    CHECK(j["threads"].get<int>() <= run.threads);
    CHECK(r.err.find("TBB") == std::string::npos);
    if (run.label == "t1") {
      report0 = without_timing(json);
      geojson0 = slurp(geo);
      heatmap0 = slurp(heat);
      REQUIRE(j["tiles"]["analysed"].get<int>() >= 20);
      REQUIRE(j["cells"]["total"].get<int>() > 1000);
      continue;
    }
    CHECK(without_timing(json) == report0);
    // Compared as booleans: a failure would otherwise print megabytes.
    const bool same_geojson = slurp(geo) == geojson0, same_heatmap = slurp(heat) == heatmap0;
    CHECK(same_geojson);
    CHECK(same_heatmap);
  }
}
