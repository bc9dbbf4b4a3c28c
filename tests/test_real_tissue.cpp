// Real tissue in the loop (issue 17): the 14 real gastric HER2 cores of ../shared/data/gastric-tma
// scored under the gastric rules and compared with the pathologists' labels (labels.csv), and
// the four real breast patches with their dataset class. Floors, so that a change that breaks
// real tissue fails CI; they assert against the labels, never against earlier engine output.
// The full table: scripts/real-check.sh.
#include <catch2/catch.hpp>

#include <map>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/validation.hpp"

using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;
namespace engine = ihc::engine;

TEST_CASE("real gastric cores: the gastric rules agree with the pathologists on at least 10 of 14",
          "[real][gastric]") {
  const auto dir = scratch_dir("gastric-tma");
  const auto r = run_cli("batch ../shared/data/gastric-tma --mpp 0.25 --guideline gastric --out '" +
                         (dir / "out").string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto truth = engine::read_truth(engine::read_csv("../shared/data/gastric-tma/labels.csv"));
  const auto results = engine::read_results(engine::read_csv(dir / "out" / "summary.csv"));
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
  // Measured at this commit: 10/14 exact, quadratic kappa 0.66, 12/14 within one class.
  CHECK(exact >= 10);
  CHECK(within_one >= 12);
  CHECK(a.kappa_quadratic >= 0.6);
  for (const auto& row : results) CHECK(row.guideline == "gastric");
}

TEST_CASE("real breast patches: 0, 2+ and 3+ are scored as their class, in order", "[real][breast]") {
  const auto dir = scratch_dir("her2-real");
  std::map<int, std::string> score;
  for (int k = 0; k < 4; ++k) {
    const auto report = dir / ("p" + std::to_string(k) + ".json");
    const auto r = run_cli("score ../shared/data/images/her2-score" + std::to_string(k) + ".png --mpp 0.6 --json '" +
                           report.string() + "'");
    REQUIRE(r.exit_code == 0);
    score[k] = nlohmann::json::parse(slurp(report))["score"].get<std::string>();
  }
  CHECK(score[0] == "0");
  CHECK(score[2] == "2+");
  CHECK(score[3] == "3+");
  // her2-score1 reads 0 (10 counted cells, any membrane 10.0 %): not yet right.
  CHECK((score[1] == "0" || score[1] == "1+"));
}
