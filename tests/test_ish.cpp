// HER2 dual-probe ISH: ASCO/CAP 2018 groups 1-5 and the 2007 reading on hand-computed counts
// (rules in ../shared/DOMAIN.md, "ISH rules"), then `ihcscore ish` as a user runs it.
#include <catch2/catch.hpp>

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/scoring/ish.hpp"

using namespace ihc::scoring;
using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;

namespace {
IshAssessment ish(std::int64_t her2, std::int64_t cep17, std::int64_t cells,
                  std::optional<SlideScore> ihc = std::nullopt) {
  return assess_ish({her2, cep17, cells}, ihc);
}
}  // namespace

TEST_CASE("each 2018 group comes from hand-computed ratio and mean copies", "[ish]") {
  // 100/40 = 2.5, 100/20 = 5.0 -> ratio >= 2, mean >= 4: group 1, positive.
  const auto g1 = ish(100, 40, 20);
  CHECK(g1.group == 1);
  CHECK(g1.result_2018 == IshResult::Positive);
  CHECK(g1.ratio == 2.5);
  CHECK(g1.mean_her2_per_cell == 5.0);
  CHECK(g1.mean_cep17_per_cell == 2.0);
  // 60/20 = 3.0, 60/20 = 3.0 -> ratio >= 2, mean < 4: group 2, negative without IHC 3+.
  const auto g2 = ish(60, 20, 20);
  CHECK(g2.group == 2);
  CHECK(g2.result_2018 == IshResult::Negative);
  // 140/80 = 1.75, 140/20 = 7.0 -> ratio < 2, mean >= 6: group 3, needs the IHC score.
  const auto g3 = ish(140, 80, 20);
  CHECK(g3.group == 3);
  CHECK(g3.result_2018 == IshResult::RequiresIhc);
  // 100/60 = 1.667, 100/20 = 5.0 -> ratio < 2, 4 <= mean < 6: group 4, negative without IHC 3+.
  const auto g4 = ish(100, 60, 20);
  CHECK(g4.group == 4);
  CHECK(g4.result_2018 == IshResult::Negative);
  CHECK(g4.ratio == Approx(1.666));  // shown rounded down to 3 decimals
  // 50/40 = 1.25, 50/20 = 2.5 -> group 5, negative.
  const auto g5 = ish(50, 40, 20);
  CHECK(g5.group == 5);
  CHECK(g5.result_2018 == IshResult::Negative);
}

TEST_CASE("a ratio of exactly 2.0 is on the >= 2.0 side (groups 1 and 2)", "[ish]") {
  CHECK(ish(40, 20, 20).group == 2);  // ratio 2.0, mean 2.0
  CHECK(ish(40, 20, 20).ratio == 2.0);
  CHECK(ish(80, 40, 20).group == 1);  // ratio 2.0, mean 4.0: both boundaries at once
  CHECK(ish(79, 40, 20).group == 5);  // ratio 1.975, mean 3.95
  // Large counts: 1.99995 must not round up into group 1 or 2, and is shown as 1.999.
  const auto just_below = ish(39999, 20000, 20000);
  CHECK(just_below.group == 5);
  CHECK(just_below.ratio == Approx(1.999));
  // Ratios whose doubles are not exact: 2 * 3 / 3 and 14/7 are still exactly 2.
  CHECK(ish(42, 21, 21).group == 2);
  CHECK(ish(6000000000002, 3000000000001, 20).group == 1);
  CHECK(ish(6000000000001, 3000000000001, 20).group == 3);  // a hair under 2, mean far above 6
}

TEST_CASE("mean HER2 copies of exactly 4.0 and 6.0 are on the >= side", "[ish]") {
  CHECK(ish(80, 50, 20).group == 4);    // mean 4.0, ratio 1.6
  CHECK(ish(79, 50, 20).group == 5);    // mean 3.95
  CHECK(ish(120, 70, 20).group == 3);   // mean 6.0, ratio 1.714
  CHECK(ish(119, 70, 20).group == 4);   // mean 5.95
  CHECK(ish(138, 70, 23).group == 3);   // 138/23 = 6.0 exactly with an odd cell count
  CHECK(ish(92, 30, 23).group == 1);    // 92/23 = 4.0, 92/30 = 3.07
  CHECK(ish(91, 30, 23).group == 2);    // 91/23 = 3.957
  CHECK(ish(138, 70, 23).mean_her2_per_cell == 6.0);
}

TEST_CASE("groups 2 and 4 turn positive only with concurrent IHC 3+", "[ish]") {
  for (const auto& [her2, cep17] : {std::pair{60, 20}, std::pair{100, 60}}) {
    CHECK(ish(her2, cep17, 20, SlideScore::ThreePlus).result_2018 == IshResult::Positive);
    CHECK(ish(her2, cep17, 20, SlideScore::TwoPlus).result_2018 == IshResult::Negative);
    CHECK(ish(her2, cep17, 20, SlideScore::OnePlus).result_2018 == IshResult::Negative);
    CHECK(ish(her2, cep17, 20, SlideScore::Zero).result_2018 == IshResult::Negative);
    CHECK(ish(her2, cep17, 20).result_2018 == IshResult::Negative);
  }
}

TEST_CASE("group 3 is positive with IHC 2+ or 3+ and negative with IHC 0 or 1+", "[ish]") {
  CHECK(ish(140, 80, 20, SlideScore::ThreePlus).result_2018 == IshResult::Positive);
  CHECK(ish(140, 80, 20, SlideScore::TwoPlus).result_2018 == IshResult::Positive);
  CHECK(ish(140, 80, 20, SlideScore::OnePlus).result_2018 == IshResult::Negative);
  CHECK(ish(140, 80, 20, SlideScore::Zero).result_2018 == IshResult::Negative);
  CHECK(ish(140, 80, 20).result_2018 == IshResult::RequiresIhc);
  CHECK_THROWS_AS(ish(140, 80, 20, SlideScore::NotEvaluable), std::invalid_argument);
}

TEST_CASE("groups 1 and 5 do not depend on the IHC score", "[ish]") {
  for (const auto s : {SlideScore::Zero, SlideScore::OnePlus, SlideScore::TwoPlus, SlideScore::ThreePlus}) {
    CHECK(ish(100, 40, 20, s).result_2018 == IshResult::Positive);
    CHECK(ish(50, 40, 20, s).result_2018 == IshResult::Negative);
  }
}

TEST_CASE("the comment for groups 2-4 names the IHC condition and the second reviewer's recount", "[ish]") {
  for (const auto& a : {ish(60, 20, 20), ish(140, 80, 20), ish(100, 60, 20)}) {
    CHECK(a.comment.find("Group " + std::to_string(a.group)) == 0);
    CHECK(a.comment.find("second reviewer") != std::string::npos);
    CHECK(a.comment.find("at least 20 cells in the invasive tumour") != std::string::npos);
    CHECK(a.comment.find("IHC") != std::string::npos);
  }
  CHECK(ish(60, 20, 20).comment.find("negative unless concurrent IHC is 3+") != std::string::npos);
  CHECK(ish(100, 60, 20).comment.find("negative unless concurrent IHC is 3+") != std::string::npos);
  CHECK(ish(140, 80, 20).comment.find("positive if concurrent IHC is 2+ or 3+") != std::string::npos);
  CHECK(ish(140, 80, 20, SlideScore::OnePlus).comment.find("Concurrent IHC 1+: HER2 negative") != std::string::npos);
  CHECK(ish(100, 40, 20).comment.find("second reviewer") == std::string::npos);
  CHECK(ish(50, 40, 20).comment.find("second reviewer") == std::string::npos);
}

TEST_CASE("2007: ratio 1.8 and 2.2 are equivocal, beyond them negative and positive", "[ish]") {
  CHECK(ish(66, 30, 20).result_2007 == IshResult::Equivocal);  // 66/30 = 2.2 exactly
  CHECK(ish(67, 30, 20).result_2007 == IshResult::Positive);   // 2.233
  CHECK(ish(54, 30, 20).result_2007 == IshResult::Equivocal);  // 54/30 = 1.8 exactly
  CHECK(ish(53, 30, 20).result_2007 == IshResult::Negative);   // 1.767
  CHECK(ish(22, 10, 20).result_2007 == IshResult::Equivocal);  // 2.2 whose double is 2.2000000000000002
  CHECK(ish(100, 40, 20).result_2007 == IshResult::Positive);  // 2.5
}

TEST_CASE("2007: mean HER2 of 4 and 6 per cell are equivocal by copy number", "[ish]") {
  CHECK(ish(80, 100, 20).result_2007_copy_number == IshResult::Equivocal);   // 4.0
  CHECK(ish(79, 100, 20).result_2007_copy_number == IshResult::Negative);    // 3.95
  CHECK(ish(120, 100, 20).result_2007_copy_number == IshResult::Equivocal);  // 6.0
  CHECK(ish(121, 100, 20).result_2007_copy_number == IshResult::Positive);   // 6.05
  // The two readings are reported side by side; the 2007 result follows the ratio.
  const auto a = ish(140, 80, 20);  // ratio 1.75 negative, mean 7.0 positive
  CHECK(a.result_2007 == IshResult::Negative);
  CHECK(a.result_2007_copy_number == IshResult::Positive);
}

TEST_CASE("fewer than 20 cells, no CEP17 signal and negative counts are refused", "[ish]") {
  CHECK_THROWS_WITH(ish(40, 20, 19), Catch::Contains("at least 20 cells") && Catch::Contains("got 19"));
  CHECK_NOTHROW(ish(40, 20, 20));
  CHECK_THROWS_WITH(ish(40, 0, 20), Catch::Contains("CEP17"));
  CHECK_THROWS_AS(ish(-1, 20, 20), std::invalid_argument);
  CHECK_THROWS_AS(ish(40, -20, 20), std::invalid_argument);
  CHECK_THROWS_AS(ish(40, 20, -20), std::invalid_argument);
  CHECK_THROWS_AS(ish_group_2018({40, 20, 19}), std::invalid_argument);
}

TEST_CASE("IHC scores parse as 0, 1+, 2+, 3+ with or without the plus", "[ish]") {
  CHECK(parse_ihc_score("0") == SlideScore::Zero);
  CHECK(parse_ihc_score("1+") == SlideScore::OnePlus);
  CHECK(parse_ihc_score("2") == SlideScore::TwoPlus);
  CHECK(parse_ihc_score("3+") == SlideScore::ThreePlus);
  CHECK_FALSE(parse_ihc_score("4+"));
  CHECK_FALSE(parse_ihc_score(""));
  CHECK_FALSE(parse_ihc_score("not-evaluable"));
}

// ---------------------------------------------------------------- the command line

namespace {
void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}
// One row per cell; `rows` cells with (her2, cep17) cycling through `pattern`.
std::string counts_csv(int rows, const std::vector<std::pair<int, int>>& pattern, const std::string& eol = "\n") {
  std::string s = "cell,HER2,CEP17" + eol;
  for (int i = 0; i < rows; ++i) {
    const auto& [h, c] = pattern[static_cast<std::size_t>(i) % pattern.size()];
    s += "c" + std::to_string(i + 1) + "," + std::to_string(h) + "," + std::to_string(c) + eol;
  }
  return s;
}
}  // namespace

TEST_CASE("ihcscore ish reads totals and writes every JSON key", "[ish][cli]") {
  const auto dir = scratch_dir("ish-totals");
  const auto json = (dir / "ish.json").string();
  const auto r = run_cli("ish --her2 100 --cep17 40 --cells 20 --json '" + json + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("ratio") != std::string::npos);
  CHECK(r.out.find("group:") != std::string::npos);
  CHECK(r.out.find("positive") != std::string::npos);
  CHECK(r.out.find("2007") != std::string::npos);
  const auto j = nlohmann::json::parse(slurp(json));
  for (const char* key : {"ratio", "mean_her2_per_cell", "mean_cep17_per_cell", "cells", "group", "result_2018",
                          "comment", "result_2007", "result_2007_copy_number", "guideline", "her2_signals",
                          "cep17_signals"})
    CHECK(j.contains(key));
  CHECK_FALSE(j.contains("ihc"));
  CHECK(j["ratio"].get<double>() == 2.5);
  CHECK(j["mean_her2_per_cell"].get<double>() == 5.0);
  CHECK(j["mean_cep17_per_cell"].get<double>() == 2.0);
  CHECK(j["cells"] == 20);
  CHECK(j["group"] == 1);
  CHECK(j["result_2018"] == "positive");
  CHECK(j["result_2007"] == "positive");
  CHECK(j["result_2007_copy_number"] == "equivocal");
  CHECK(j["guideline"] == "asco-cap-2018");

  // The report is not replaced without --force.
  CHECK(run_cli("ish --her2 100 --cep17 40 --cells 20 --json '" + json + "'").exit_code == 4);
  CHECK(run_cli("ish --her2 60 --cep17 20 --cells 20 --ihc 3+ --force --json '" + json + "'").exit_code == 0);
  const auto j2 = nlohmann::json::parse(slurp(json));
  CHECK(j2["group"] == 2);
  CHECK(j2["ihc"] == "3+");
  CHECK(j2["result_2018"] == "positive");
}

TEST_CASE("ihcscore ish sums a per-cell counts CSV with CRLF line ends and an id column", "[ish][cli]") {
  const auto dir = scratch_dir("ish-counts");
  const auto csv = dir / "counts.csv";
  // 20 cells alternating (8, 4) and (6, 5): HER2 140, CEP17 90 -> ratio 1.556, mean 7.0: group 3.
  write_text(csv, counts_csv(20, {{8, 4}, {6, 5}}, "\r\n"));
  const auto json = (dir / "ish.json").string();
  const auto r = run_cli("ish --counts '" + csv.string() + "' --ihc 2+ --json '" + json + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(json));
  CHECK(j["cells"] == 20);
  CHECK(j["her2_signals"] == 140);
  CHECK(j["cep17_signals"] == 90);
  CHECK(j["group"] == 3);
  CHECK(j["ihc"] == "2+");
  CHECK(j["result_2018"] == "positive");
  CHECK(j["comment"].get<std::string>().find("second reviewer") != std::string::npos);

  // Lower-case header, no id column.
  std::string lower = "her2,cep17\n";
  for (int i = 0; i < 20; ++i) lower += "2,2\n";
  write_text(csv, lower);
  const auto r2 = run_cli("ish --counts '" + csv.string() + "'");
  INFO(r2.err);
  CHECK(r2.exit_code == 0);
  CHECK(r2.out.find("group:") != std::string::npos);
}

TEST_CASE("ihcscore ish refuses 19 cells, bad rows and bad options with the right exit codes", "[ish][cli]") {
  const auto dir = scratch_dir("ish-errors");
  const auto csv = dir / "counts.csv";
  write_text(csv, counts_csv(19, {{4, 2}}));
  const auto few = run_cli("ish --counts '" + csv.string() + "'");
  CHECK(few.exit_code == 2);
  CHECK(few.err.find("at least 20 cells") != std::string::npos);
  CHECK(few.err.find(csv.string()) != std::string::npos);
  CHECK(run_cli("ish --her2 40 --cep17 20 --cells 19").exit_code == 2);
  CHECK(run_cli("ish --her2 40 --cep17 0 --cells 20").exit_code == 2);

  // A bad value on the 4th line of the file (header is line 1).
  write_text(csv, "cell,her2,cep17\nc1,4,2\nc2,4,2\nc3,four,2\n");
  const auto bad = run_cli("ish --counts '" + csv.string() + "'");
  CHECK(bad.exit_code == 3);
  CHECK(bad.err.find(csv.string() + ": line 4") != std::string::npos);
  CHECK(bad.err.find('\n') == bad.err.size() - 1);  // one line
  write_text(csv, "cell,her2,cep17\nc1,4,-2\n");
  CHECK(run_cli("ish --counts '" + csv.string() + "'").exit_code == 3);
  write_text(csv, "cell,her2,cep17\nc1,4\n");
  CHECK(run_cli("ish --counts '" + csv.string() + "'").exit_code == 3);
  write_text(csv, "cell,her2\nc1,4\n");
  const auto no_col = run_cli("ish --counts '" + csv.string() + "'");
  CHECK(no_col.exit_code == 3);
  CHECK(no_col.err.find("cep17") != std::string::npos);
  CHECK(run_cli("ish --counts '" + (dir / "missing.csv").string() + "'").exit_code == 3);

  CHECK(run_cli("ish").exit_code == 2);
  CHECK(run_cli("ish --her2 40 --cep17 20").exit_code == 2);
  CHECK(run_cli("ish --her2 40 --cep17 20 --cells 20 --ihc 4+").exit_code == 2);
  CHECK(run_cli("ish --counts '" + csv.string() + "' --her2 40").exit_code == 2);
  CHECK(run_cli("ish --help").exit_code == 0);
}
