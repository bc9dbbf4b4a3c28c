// Real tissue in the loop (issue 17): the 14 real gastric HER2 cores of ../shared/data/gastric-tma
// scored under the gastric rules and compared with the pathologists' labels (labels.csv), and
// the four real breast patches with their dataset class. Floors, so that a change that breaks
// real tissue fails CI; they assert against the labels, never against earlier engine output.
// The full table: scripts/real-check.sh.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/validation.hpp"

using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;
namespace engine = ihc::engine;

namespace {
// The cores at their scanned resolution against the pathologists' labels (labels.csv).
void check_against_labels(const std::vector<engine::ResultRow>& results) {
  const auto truth = engine::read_truth(engine::read_csv("../shared/data/gastric-tma/labels.csv"));
  const auto m = engine::match_slides(truth, results);
  REQUIRE(m.matched.size() == 14);
  std::vector<engine::ScorePair> pairs;
  int exact = 0, within_one = 0;
  for (const auto& s : m.matched) {
    INFO(s.slide << ": pathologist " << s.truth << ", engine " << s.engine);
    pairs.push_back({s.truth, s.engine});
    exact += s.truth == s.engine ? 1 : 0;
    within_one += std::abs(s.truth - s.engine) <= 1 ? 1 : 0;
    if (s.truth == 0) CHECK(s.engine == 0);  // no HER2 0 core is called positive or equivocal
    if (s.truth == 3) CHECK(s.engine == 3);
  }
  const auto a = engine::score_agreement(pairs, 0, 1);
  // Measured at this commit: 11/14 exact, quadratic kappa 0.59, 11/14 within one class. Before
  // cells whose ridges carry haematoxylin were left out (cells.hpp, ridge_h_excess_ratio): 9/14,
  // 0.64, 12/14 - 2_726fa489 (2+) read 1+ then from erythrocytes taken for membrane (looked at);
  // it now reads 0, two classes off, as 2_ac717549 and 2_aeb277c9 do, which is what costs kappa.
  // 1_f8a2cea0 (1+) was scored on 1-19 cells under its faint counterstain until the nucleus floors
  // followed the counterstain (cells.hpp, counterstain_ref_contrast_od): 1+ on 530 cells now.
  CHECK(exact >= 11);
  CHECK(within_one >= 11);
  CHECK(a.kappa_quadratic >= 0.55);
}
}  // namespace

TEST_CASE("real breast patches: each of the four is scored as its class, at 0.6 and at 1 um/px", "[real][breast]") {
  // At their own 0.6 um/px, and area-averaged to 1 um/px (a 10x objective, where pathologists make
  // the call): the class is the patch's either way.
  const auto dir = scratch_dir("her2-real");
  for (const double mpp : {0.6, 1.0}) {
    std::map<int, std::string> score;
    for (int k = 0; k < 4; ++k) {
      const std::string image = "../shared/data/images/her2-score" + std::to_string(k) + ".png";
      std::string input = image;
      if (mpp != 0.6) {
        const cv::Mat full = cv::imread(image, cv::IMREAD_COLOR);
        REQUIRE(!full.empty());
        cv::Mat coarse;
        cv::resize(full, coarse, cv::Size(), 0.6 / mpp, 0.6 / mpp, cv::INTER_AREA);
        input = (dir / ("p" + std::to_string(k) + "-coarse.png")).string();
        REQUIRE(cv::imwrite(input, coarse));
      }
      const auto report = dir / ("p" + std::to_string(k) + ".json");
      const auto r = run_cli("score '" + input + "' --mpp " + std::to_string(mpp) + " --json '" + report.string() +
                             "' --force");
      REQUIRE(r.exit_code == 0);
      score[k] = nlohmann::json::parse(slurp(report))["score"].get<std::string>();
    }
    INFO("at " << mpp << " um/px");
    // Measured at 0.6 um/px: any membrane 4.9 % (0), 21.0 % (1+), complete 22.6 % (2+), complete
    // intense 25.9 % (3+); at 1 um/px 7.7 %, 27.5 %, 20.0 %, 32.6 %. The 1+ patch read 0 on 10 counted
    // cells before the 30 um neighbourhood.
    CHECK(score[0] == "0");
    CHECK(score[1] == "1+");
    CHECK(score[2] == "2+");
    CHECK(score[3] == "3+");
  }
}

TEST_CASE("real gastric cores: the gastric rules agree with the pathologists on at least 9 of 14, and keep the class "
          "at 0.5, 0.75 and 1.0 um/px",
          "[real][gastric][resolution]") {
  // Each core area-averaged to the coarser pixel and re-encoded as JPEG (quality 90), as a
  // scanner at 20x or 10x would deliver it, then scored with its own resolution.
  const auto dir = scratch_dir("gastric-resolution");
  const fs::path cores = "../shared/data/gastric-tma";
  std::map<std::string, std::map<double, std::string>> score;  // core -> mpp -> score
  std::map<std::string, std::map<double, std::array<double, 4>>> percent;  // core -> mpp -> % per class
  std::map<std::string, long long> cells;                                   // core -> tumour cells at 0.25
  const std::array<double, 3> coarser{0.5, 0.75, 1.0};
  const auto folder_of = [&](double mpp) { return mpp == 0.25 ? cores : dir / ("mpp" + std::to_string(mpp)); };
  for (const double mpp : coarser) fs::create_directories(folder_of(mpp));
  for (const auto& e : fs::directory_iterator(cores)) {  // each core decoded once
    if (e.path().extension() != ".jpg") continue;
    const cv::Mat full = cv::imread(e.path().string(), cv::IMREAD_COLOR);
    REQUIRE(!full.empty());
    for (const double mpp : coarser) {
      cv::Mat coarse;
      cv::resize(full, coarse, cv::Size(), 0.25 / mpp, 0.25 / mpp, cv::INTER_AREA);
      REQUIRE(cv::imwrite((folder_of(mpp) / e.path().filename()).string(), coarse, {cv::IMWRITE_JPEG_QUALITY, 90}));
    }
  }
  for (const double mpp : {0.25, 0.5, 0.75, 1.0}) {
    const fs::path folder = folder_of(mpp);
    const auto out = dir / ("out" + std::to_string(mpp));
    const auto r = run_cli("batch '" + folder.string() + "' --mpp " + std::to_string(mpp) +
                           " --guideline gastric --out '" + out.string() + "'");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto results = engine::read_results(engine::read_csv(out / "summary.csv"));
    for (const auto& row : results) {
      CHECK(row.guideline == "gastric");
      score[row.slide][mpp] = row.score ? engine::kScoreLabels[static_cast<std::size_t>(*row.score)] : "-";
      const auto j = nlohmann::json::parse(slurp(out / (row.slide + ".json")));
      for (std::size_t k = 0; k < 4; ++k) percent[row.slide][mpp][k] = j["percent"][engine::kScoreLabels[k]].get<double>();
      if (mpp == 0.25) cells[row.slide] = j["cells"]["total"].get<long long>();
    }
    if (mpp == 0.25) check_against_labels(results);
  }
  REQUIRE(score.size() == 14);
  int same = 0;
  for (const auto& [core, by_mpp] : score) {
    std::string line = core + ":";
    for (const auto& [mpp, s] : by_mpp) line += " " + s;
    INFO(line);
    const bool all_same = std::all_of(by_mpp.begin(), by_mpp.end(), [&](const auto& kv) { return kv.second == by_mpp.begin()->second; });
    same += all_same ? 1 : 0;
    // No core moves by more than one class between resolutions.
    int lo = 3, hi = 0;
    for (const auto& [mpp, s] : by_mpp) {
      const auto k = engine::parse_score_class(s);
      REQUIRE(k);
      lo = std::min(lo, *k);
      hi = std::max(hi, *k);
    }
    CHECK(hi - lo <= 1);
  }
  // Measured: 12/14 with the colour put back (scoring/chroma.hpp; 13/14 before): 1_f8a2cea0 has
  // 6-19 cells (1+ on one of 6 at 0.5 um/px), 2_da5928b4 reads 1+ at 1 um/px on 9.0 % complete
  // (10 % before, just over the line).
  CHECK(same >= 12);
  // How far each class percentage moves from the scanned resolution (the issue's aim: 5 points),
  // over the cores scored on more than 100 cells. Measured: 13.8 points, 2_0123a214's 0 share at
  // 0.75 um/px (22.6 -> 36.5 %); 11.8 before cells whose ridges carry haematoxylin were left out,
  // which shrank the denominators (2_da5928b4: 2,577 -> 1,004 cells) so that the same 2+ cells
  // lost at coarse pixels move the percentages further (its 2+ share 35.3 -> 22.4 % at 1 um/px,
  // 13.8 -> 11.9 % before). At 1 um/px a membrane's DAB mass reads about 10 % lower
  // (docs/validity.md). The bound keeps that from growing.
  double largest = 0;
  std::string where;
  for (const auto& [core, by_mpp] : percent) {
    std::printf("RESOLUTION| %s", core.substr(0, 10).c_str());
    for (const auto& [mpp, p] : by_mpp) std::printf(" | %.2f: %.1f %.1f %.1f %.1f", mpp, p[0], p[1], p[2], p[3]);
    std::printf("\n");
    if (cells[core] <= 100) continue;
    for (const auto& [mpp, p] : by_mpp)
      for (std::size_t k = 0; k < 4; ++k)
        if (const double d = std::abs(p[k] - by_mpp.at(0.25)[k]); d > largest) {
          largest = d;
          where = core.substr(0, 10) + " at " + std::to_string(mpp).substr(0, 4) + " um/px, class " + engine::kScoreLabels[k];
        }
  }
  std::printf("RESOLUTION| largest class-percentage move %.1f points (%s)\n", largest, where.c_str());
  CHECK(largest <= 14.5);
}

TEST_CASE("real gastric cores as biopsies: the best cohesive cluster decides, and matches the label", "[real][gastric]") {
  const auto dir = scratch_dir("gastric-biopsy");
  // Measured on all 14 as biopsies: 10/14 exact; these three are a 0, a 1+ whose per-cent reads
  // 0 (6.9 % any membrane) but which holds a 13-cell 1+ cluster, and a 2+.
  for (const auto& [core, label] : std::vector<std::pair<std::string, std::string>>{
           {"0_a6d0d6a6-4dc6-4368-9d69-8ded066cf60e", "0"},
           {"1_154ae963-bd2a-4a12-8fa9-815ba13922ae", "1+"},
           {"2_da5928b4-e9a0-4922-8f20-81cb304d0d97", "2+"}}) {
    const auto report = dir / (core + ".json");
    const auto r = run_cli("score ../shared/data/gastric-tma/" + core + ".jpg --mpp 0.25 --guideline gastric --specimen biopsy --json '" +
                           report.string() + "'");
    INFO(core << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(slurp(report));
    CHECK(j["score"] == label);
    CHECK(j["specimen"] == "biopsy");
    CHECK(j["decisive"]["metric"] == "cluster_cells");
    CHECK(j["decisive"]["threshold"].get<double>() == 5.0);
    CHECK(j.contains("largest_cluster"));
    CHECK(r.out.find("largest cohesive cluster") != std::string::npos);
  }
  // The biopsy rule is a gastric rule.
  CHECK(run_cli("score ../shared/data/images/her2-score0.png --mpp 0.6 --specimen biopsy").exit_code == 2);
}

TEST_CASE("a real HER2 0 core with a purple counterstain: cells bounded by its nuclei's edges are left out, not read as 1+",
          "[real][gastric][crosstalk]") {
  // 0_9b0f64d1 (pathologists: 0) has a purple counterstain: its nuclei read 0.3-0.5 x their
  // haematoxylin as DAB, and rays that cross a neighbouring nucleus take its edge for membrane.
  // Such ridges carry haematoxylin with their DAB, as no membrane does (cells.hpp,
  // ridge_h_excess_ratio): the cells they bound are left out. Without that rule, the nuclear-ridge
  // rule that follows the tile's leak is the other way to judge them.
  const auto dir = scratch_dir("gastric-leak");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return " --config '" + (dir / name).string() + "'";
  };
  const std::string off = write("off.json", R"({"cells": {"ridge_h_excess_ratio": 0}})");
  const std::string leak = write("leak.json", R"({"cells": {"ridge_h_excess_ratio": 0, "nuclear_ridge_follows_leak": true}})");
  nlohmann::json j;
  std::string out;
  int run = 0;
  auto any_membrane = [&](const std::string& core, const std::string& extra) {
    const auto report = dir / (core + std::to_string(run++) + ".json");
    const auto r = run_cli("score ../shared/data/gastric-tma/" + core + ".jpg --mpp 0.25 --guideline gastric --json '" +
                           report.string() + "' --force" + extra);
    INFO(core << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    j = nlohmann::json::parse(slurp(report));
    out = r.out;
    return j["percent"]["any_membrane"].get<double>();
  };
  auto leak_warned = [&] { return out.find("nuclear_ridge_follows_leak") != std::string::npos; };
  const std::string zero = "0_9b0f64d1-6785-49d9-b279-004b2deb8478", three = "3_a1f1510c-b91e-4995-ba59-596ca7ebb019";
  const double zero_default = any_membrane(zero, "");
  // The report carries the leak (measured 0.35) and how many cells its ridges left out (1,207 of
  // 1,526 detected; 188 counted); there is nothing to warn of.
  CHECK(j["stain_check"]["hematoxylin_in_dab"].get<double>() > 0.25);
  CHECK(j["cells"]["left_out"]["hematoxylin_ridges"].get<long long>() > j["cells"]["total"].get<long long>());
  CHECK_FALSE(leak_warned());
  const double zero_off = any_membrane(zero, off);
  CHECK(leak_warned());  // the rule off: the leak's false membranes are counted, and the report says so
  const double zero_leak = any_membrane(zero, leak);
  CHECK_FALSE(leak_warned());
  INFO("HER2 0 core, cells read stained: default " << zero_default << " %, rule off " << zero_off
                                                   << " %, following the leak " << zero_leak << " %");
  CHECK(zero_off >= 4.0);      // measured 6.2 %: the leak's false membranes
  CHECK(zero_leak <= 3.0);     // measured 1.8 %
  CHECK(zero_default <= 2.0);  // measured 0.5 %
  // A core whose nuclei do not leak (the 3+ core: its membranes make the nuclei's surroundings
  // browner than the nuclei) loses few cells (3,417 -> 3,335 counted) and reads as before.
  const double three_default = any_membrane(three, "");
  CHECK(j["cells"]["left_out"]["hematoxylin_ridges"].get<long long>() < j["cells"]["total"].get<long long>() / 10);
  // Its dark membranes' haematoxylin was taken out (measured 0.15), and there is no leak to warn of.
  CHECK(j["stain_check"]["dab_in_hematoxylin"].get<double>() > 0.05);
  CHECK(j["stain_check"]["hematoxylin_in_dab"].get<double>() < 0.1);
  CHECK_FALSE(leak_warned());
  const double three_off = any_membrane(three, off);
  CHECK(three_default == Approx(three_off).margin(2.0));  // measured 94.0 against 92.6 %
  CHECK(any_membrane(three, leak) == Approx(three_off).margin(0.05));
}
