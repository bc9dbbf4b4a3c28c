// Agreement statistics behind `ihcscore validate` on hand-computed numbers, the CSV reader, slide
// matching by stem, and the command as a user runs it (JSON, plots, errors).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/validation.hpp"

using namespace ihc::engine;
using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;

namespace {
std::vector<ScorePair> pairs_from(const ConfusionMatrix& m) {
  std::vector<ScorePair> out;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (std::int64_t k = 0; k < m[i][j]; ++k) out.push_back({i, j});
  return out;
}
void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}
}  // namespace

TEST_CASE("kappas of a small confusion matrix match the hand computation", "[validate]") {
  // Rows truth, columns engine; n = 12.
  //            0  1+ 2+ 3+   row
  //   0      [ 2, 1, 0, 0 ]   3
  //   1+     [ 0, 2, 1, 0 ]   3
  //   2+     [ 0, 0, 2, 1 ]   3
  //   3+     [ 0, 0, 0, 3 ]   3
  //   column   2  3  3  4
  // Expected counts E_ij = row_i * col_j / n = 3 * col_j / 12 = col_j / 4.
  // Unweighted: observed agreement 9/12 = 0.75; expected sum_i row_i col_i / n^2
  //   = (3*2 + 3*3 + 3*3 + 3*4) / 144 = 36/144 = 0.25; kappa = (0.75 - 0.25) / 0.75 = 2/3.
  // Linear (w = |i-j|/3): sum w O = three cells at distance 1 = 3 * 1/3 = 1.
  //   sum_i |i-j| per column j: 6, 4, 4, 6 -> sum w E = (2*6 + 3*4 + 3*4 + 4*6) / (4*3) = 60/12 = 5;
  //   kappa = 1 - 1/5 = 0.8.
  // Quadratic (w = (i-j)^2/9): sum w O = 3 * 1/9 = 1/3.
  //   sum_i (i-j)^2 per column j: 14, 6, 6, 14 -> sum w E = (2*14 + 3*6 + 3*6 + 4*14) / (4*9) = 120/36 = 10/3;
  //   kappa = 1 - (1/3) / (10/3) = 0.9.
  const ConfusionMatrix m{{{2, 1, 0, 0}, {0, 2, 1, 0}, {0, 0, 2, 1}, {0, 0, 0, 3}}};
  CHECK(cohen_kappa(m, KappaWeighting::Unweighted) == Approx(2.0 / 3.0));
  CHECK(cohen_kappa(m, KappaWeighting::Linear) == Approx(0.8));
  CHECK(cohen_kappa(m, KappaWeighting::Quadratic) == Approx(0.9));
  CHECK(confusion_matrix(pairs_from(m)) == m);

  // A symmetric one: 5 slides per class, 14 agree, 6 off by one class (n = 20, every E_ij = 1.25).
  // Unweighted (0.7 - 0.25) / 0.75 = 0.6; linear 1 - (6/3) / (1.25 * 20/3) = 0.76;
  // quadratic 1 - (6/9) / (1.25 * 40/9) = 0.88.
  const ConfusionMatrix s{{{4, 1, 0, 0}, {1, 3, 1, 0}, {0, 1, 3, 1}, {0, 0, 1, 4}}};
  CHECK(cohen_kappa(s, KappaWeighting::Unweighted) == Approx(0.6));
  CHECK(cohen_kappa(s, KappaWeighting::Linear) == Approx(0.76));
  CHECK(cohen_kappa(s, KappaWeighting::Quadratic) == Approx(0.88));
}

TEST_CASE("perfect agreement gives kappa 1 and systematic disagreement a negative kappa", "[validate]") {
  const ConfusionMatrix perfect{{{3, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 4, 0}, {0, 0, 0, 1}}};
  for (const auto w : {KappaWeighting::Unweighted, KappaWeighting::Linear, KappaWeighting::Quadratic})
    CHECK(cohen_kappa(perfect, w) == Approx(1.0));
  // Reversed scale, one slide per class: quadratic sum w O = (9+1+1+9)/9 = 20/9,
  // sum w E = (1/4) * 40/9 = 10/9 -> kappa = 1 - 2 = -1.
  const ConfusionMatrix reversed{{{0, 0, 0, 1}, {0, 0, 1, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}}};
  CHECK(cohen_kappa(reversed, KappaWeighting::Quadratic) == Approx(-1.0));
  CHECK(cohen_kappa(reversed, KappaWeighting::Linear) < 0);
  CHECK(cohen_kappa(reversed, KappaWeighting::Unweighted) < 0);
  // Everything in one class on both sides: kappa is undefined.
  const ConfusionMatrix one_class{{{5, 0, 0, 0}, {}, {}, {}}};
  CHECK(std::isnan(cohen_kappa(one_class, KappaWeighting::Quadratic)));
}

TEST_CASE("the bootstrap interval is reproducible and brackets the kappa", "[validate]") {
  const ConfusionMatrix m{{{8, 2, 0, 0}, {1, 7, 2, 0}, {0, 2, 6, 2}, {0, 0, 1, 9}}};
  const auto pairs = pairs_from(m);
  const auto a = bootstrap_kappa_interval(pairs, KappaWeighting::Quadratic, 2000, 7);
  const auto b = bootstrap_kappa_interval(pairs, KappaWeighting::Quadratic, 2000, 7);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->lower == b->lower);
  CHECK(a->upper == b->upper);
  const double k = cohen_kappa(m, KappaWeighting::Quadratic);
  CHECK(a->lower < k);
  CHECK(a->upper > k);
  CHECK(a->upper <= 1.0);
  CHECK_FALSE(bootstrap_kappa_interval({{1, 1}}, KappaWeighting::Quadratic, 100, 7));
}

TEST_CASE("score agreement gives accuracy, per-class sensitivity and precision, clinical groups", "[validate]") {
  // truth -> engine: 0->0, 0->1+, 1+->1+, 1+->0, 2+->2+, 2+->3+, 3+->3+, 3+->3+
  const std::vector<ScorePair> pairs{{0, 0}, {0, 1}, {1, 1}, {1, 0}, {2, 2}, {2, 3}, {3, 3}, {3, 3}};
  const auto a = score_agreement(pairs, 200, 1);
  CHECK(a.n == 8);
  CHECK(a.accuracy == Approx(5.0 / 8.0));
  // Clinical groups 0/1+, 2+, 3+: only 2+->3+ disagrees.
  CHECK(a.clinical_group_accuracy == Approx(7.0 / 8.0));
  CHECK(a.clinical_matrix[0][0] == 4);
  CHECK(a.clinical_matrix[1][2] == 1);
  CHECK(a.per_class[3].truth_n == 2);
  CHECK(a.per_class[3].engine_n == 3);
  CHECK(*a.per_class[3].sensitivity == Approx(1.0));
  CHECK(*a.per_class[3].precision == Approx(2.0 / 3.0));
  CHECK(*a.per_class[2].sensitivity == Approx(0.5));
  CHECK(*a.per_class[2].precision == Approx(1.0));
  CHECK(a.kappa_quadratic == Approx(cohen_kappa(a.matrix, KappaWeighting::Quadratic)));
  // A class nobody used has no sensitivity or precision.
  const auto b = score_agreement({{0, 0}, {3, 3}}, 50, 1);
  CHECK_FALSE(b.per_class[1].sensitivity);
  CHECK_FALSE(b.per_class[1].precision);
  CHECK_THROWS_AS(score_agreement({}), std::invalid_argument);
}

TEST_CASE("Bland-Altman bias and limits of agreement on known numbers", "[validate]") {
  // differences engine - truth: 2, -2, 5, 1 -> bias 1.5, MAE 10/4 = 2.5;
  // deviations 0.5, -3.5, 3.5, -0.5 -> sum of squares 25, SD = sqrt(25/3) = 2.886751;
  // limits 1.5 -/+ 1.96 * 2.886751 = -4.158032 and 7.158032.
  const auto b = bland_altman({10, 20, 30, 40}, {12, 18, 35, 41});
  CHECK(b.n == 4);
  CHECK(b.bias == Approx(1.5));
  CHECK(b.mean_absolute_error == Approx(2.5));
  CHECK(b.sd_difference == Approx(2.886751).epsilon(1e-6));
  CHECK(b.lower_limit == Approx(-4.158032).epsilon(1e-6));
  CHECK(b.upper_limit == Approx(7.158032).epsilon(1e-6));
  CHECK(bland_altman({5}, {7}).sd_difference == 0);
  CHECK_THROWS_AS(bland_altman({1, 2}, {1}), std::invalid_argument);
}

TEST_CASE("slides match by file stem, without folders or slide extensions", "[validate]") {
  CHECK(slide_stem("/data/a/S1.svs") == "S1");
  CHECK(slide_stem("S1") == "S1");
  CHECK(slide_stem("C:\\slides\\S1.SVS") == "S1");
  CHECK(slide_stem("run/S2.ome.tiff") == "S2");
  CHECK(slide_stem("TCGA-01.2") == "TCGA-01.2");  // not a slide extension: kept
  CHECK(slide_stem("patch.png") == "patch");
  CHECK(parse_score_class("2+") == 2);
  CHECK(parse_score_class("3") == 3);
  CHECK_FALSE(parse_score_class("4+"));

  CsvTable truth = parse_csv("slide,score\nS1,0\nS2.svs,2+\nS3,3+\nS4,1\n", "t.csv");
  CsvTable results = parse_csv(
      "slide,status,score,percent_complete\n/data/S1.svs,ok,1+,3\n/x/S2.ndpi,ok,2+,40\n"
      "/x/S3.svs,failed,,\n/x/S5.svs,ok,0,0\n/x/S6.svs,ok,not-evaluable,\n",
      "r.csv");
  const auto m = match_slides(read_truth(truth), read_results(results));
  REQUIRE(m.matched.size() == 2);
  CHECK(m.matched[0].slide == "S1");
  CHECK(m.matched[0].engine == 1);
  CHECK(m.matched[1].truth == 2);
  CHECK(m.unmatched_truth == std::vector<std::string>{"S4"});
  CHECK(m.unmatched_results == std::vector<std::string>{"S5"});
  REQUIRE(m.excluded.size() == 2);
  CHECK(m.excluded[0].slide == "S3");
  CHECK(m.excluded[0].reason == "status failed");
  CHECK(m.excluded[1].reason == "score not-evaluable");
}

TEST_CASE("the CSV reader handles quotes, CRLF, blank lines and a byte-order mark", "[validate]") {
  const auto t = parse_csv("\xEF\xBB\xBFslide, score ,note\r\n\r\n\"a, b\",1+,\"say \"\"hi\"\"\"\r\n  S2 ,0,\"two\nlines\"\r\n\n",
                           "x.csv");
  REQUIRE(t.header == std::vector<std::string>{"slide", "score", "note"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0][0] == "a, b");
  CHECK(t.rows[0][2] == "say \"hi\"");
  CHECK(t.rows[1][0] == "S2");
  CHECK(t.rows[1][2] == "two\nlines");
  CHECK(t.lines == std::vector<std::int64_t>{3, 4});
  CHECK(t.column("SCORE") == std::size_t{1});
  CHECK_FALSE(t.column("percent_complete"));

  CHECK_THROWS_WITH(parse_csv("a,b\n1,2\n3\n", "f.csv"), "f.csv: line 3: expected 2 fields as in the header, found 1");
  CHECK_THROWS_WITH(parse_csv("a,b\n1,\"2\n", "f.csv"), Catch::Contains("f.csv: line 2") && Catch::Contains("never closed"));
  CHECK_THROWS_WITH(parse_csv("a,b\n1,x\"y\n", "f.csv"), Catch::Contains("f.csv: line 2"));
  CHECK_THROWS_WITH(parse_csv("\n\n", "f.csv"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(read_truth(parse_csv("slide,score\nS1,0\nS2,5+\n", "t.csv")),
                    Catch::Contains("t.csv: line 3") && Catch::Contains("5+"));
  CHECK_THROWS_WITH(read_truth(parse_csv("slide,score\nS1,0\n/a/S1.svs,1+\n", "t.csv")),
                    Catch::Contains("line 3") && Catch::Contains("first on line 2"));
  CHECK_THROWS_WITH(read_truth(parse_csv("slide,grade\nS1,0\n", "t.csv")), Catch::Contains("\"score\""));
  CHECK_THROWS_WITH(read_truth(parse_csv("slide,score,percent_complete\nS1,0,120\n", "t.csv")),
                    Catch::Contains("line 2") && Catch::Contains("outside 0-100"));
  try {
    read_truth(parse_csv("slide,score\nS1,x\n", "t.csv"));
    FAIL("expected an error");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::input);
  }
}

// ---------------------------------------------------------------- the command line

namespace {
// 12 reference slides; the summary scores 10 of them (S11 missing, S12 failed) plus S13.
const char* kTruth =
    "slide,score,percent_complete\n"
    "S01,0,0\nS02,0,2\nS03,1+,5\nS04,1+,8\nS05,2+,40\nS06,2+,55\nS07,3+,90\nS08,3+,85\nS09,2+,30\nS10,1+,3\n"
    "S11,0,1\nS12,3+,70\n";
const char* kSummary =
    "slide,status,score,percent_complete,cells\r\n"
    "/data/a/S01.svs,ok,0,1.0,100\r\n"
    "/data/a/S02.svs,ok,1+,4.0,100\r\n"
    "/data/a/S03.svs,ok,1+,6.5,100\r\n"
    "\"/data/with, comma/S04.svs\",ok,1+,7,100\r\n"
    "S05.tiff,ok,2+,45,100\r\n"
    "S06.svs,ok,3+,60,100\r\n"
    "S07.svs,ok,3+,92,100\r\n"
    "S08.svs,ok,3+,80,100\r\n"
    "S09.ndpi,ok,2+,28,100\r\n"
    "S10.svs,ok,0,2,100\r\n"
    "S12.svs,failed,,,\r\n"
    "S13.svs,ok,2+,50,100\r\n";
}  // namespace

TEST_CASE("ihcscore validate writes the statistics as JSON and two legible PNG plots", "[validate][cli]") {
  const auto dir = scratch_dir("validate");
  const auto truth = dir / "truth.csv", summary = dir / "summary.csv";
  write_text(truth, kTruth);
  write_text(summary, kSummary);
  const auto json = (dir / "v.json").string();
  const auto plots = dir / "plots";
  const std::string args = "validate --truth '" + truth.string() + "' --results '" + summary.string() + "'";
  const auto r = run_cli(args + " --json '" + json + "' --plots '" + plots.string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("S11") != std::string::npos);  // unmatched slides listed
  CHECK(r.out.find("S13") != std::string::npos);
  CHECK(r.out.find("S12 (status failed)") != std::string::npos);

  const auto j = nlohmann::json::parse(slurp(json));
  for (const char* key : {"n", "accuracy", "confusion_matrix", "labels", "kappa_quadratic", "kappa_quadratic_ci95",
                          "kappa_linear", "kappa_unweighted", "bootstrap", "per_class", "clinical_group_accuracy",
                          "clinical_confusion_matrix", "percent_complete", "slides", "excluded", "unmatched_truth",
                          "unmatched_results"})
    CHECK(j.contains(key));
  CHECK(j["n"] == 10);
  // Correct: S01 S03 S04 S05 S07 S08 S09 = 7 of 10; clinical groups only miss S06 (2+ -> 3+).
  CHECK(j["accuracy"].get<double>() == Approx(0.7));
  CHECK(j["clinical_group_accuracy"].get<double>() == Approx(0.9));
  const ConfusionMatrix expected{{{1, 1, 0, 0}, {1, 2, 0, 0}, {0, 0, 2, 1}, {0, 0, 0, 2}}};
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 4; ++k) CHECK(j["confusion_matrix"][i][k].get<std::int64_t>() == expected[i][k]);
  CHECK(j["kappa_quadratic"].get<double>() ==
        Approx(cohen_kappa(expected, KappaWeighting::Quadratic)).margin(1e-4));
  CHECK(j["kappa_linear"].get<double>() == Approx(cohen_kappa(expected, KappaWeighting::Linear)).margin(1e-4));
  CHECK(j["kappa_unweighted"].get<double>() ==
        Approx(cohen_kappa(expected, KappaWeighting::Unweighted)).margin(1e-4));
  REQUIRE(j["kappa_quadratic_ci95"].size() == 2);
  CHECK(j["kappa_quadratic_ci95"][0].get<double>() <= j["kappa_quadratic"].get<double>());
  CHECK(j["per_class"]["3+"]["precision"].get<double>() == Approx(2.0 / 3.0).margin(1e-4));
  CHECK(j["per_class"]["2+"]["sensitivity"].get<double>() == Approx(2.0 / 3.0).margin(1e-4));
  // Differences engine - truth: 1 2 1.5 -1 5 5 2 -5 -2 -1 -> bias 7.5/10 = 0.75, MAE 25.5/10 = 2.55.
  CHECK(j["percent_complete"]["n"] == 10);
  CHECK(j["percent_complete"]["bias"].get<double>() == Approx(0.75));
  CHECK(j["percent_complete"]["mean_absolute_error"].get<double>() == Approx(2.55));
  CHECK(j["percent_complete"].contains("loa_lower"));
  CHECK(j["percent_complete"].contains("loa_upper"));
  CHECK(j["unmatched_truth"] == nlohmann::json::array({"S11"}));
  CHECK(j["unmatched_results"] == nlohmann::json::array({"S13"}));
  CHECK(j["excluded"][0]["slide"] == "S12");

  for (const char* name : {"confusion_matrix.png", "bland_altman.png"}) {
    const cv::Mat img = cv::imread((plots / name).string(), cv::IMREAD_COLOR);
    REQUIRE_FALSE(img.empty());
    CHECK(img.cols >= 600);
    CHECK(img.rows >= 600);
  }

  // Deterministic: the same run gives the same interval; outputs are not replaced without --force.
  const auto again = run_cli(args + " --json '" + json + "'");
  CHECK(again.exit_code == 4);
  CHECK(run_cli(args + " --plots '" + plots.string() + "'").exit_code == 4);
  const auto json2 = (dir / "v2.json").string();
  REQUIRE(run_cli(args + " --json '" + json2 + "'").exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(json2))["kappa_quadratic_ci95"] == j["kappa_quadratic_ci95"]);
  CHECK(run_cli(args + " --json '" + json + "' --force").exit_code == 0);
}

TEST_CASE("ihcscore validate names the file and line of a malformed CSV and exits 3", "[validate][cli]") {
  const auto dir = scratch_dir("validate-errors");
  const auto truth = dir / "truth.csv", summary = dir / "summary.csv";
  write_text(summary, kSummary);
  const auto run = [&] {
    return run_cli("validate --truth '" + truth.string() + "' --results '" + summary.string() + "'");
  };

  write_text(truth, "slide,score\nS01,0\nS02,0\nS03,9+\n");
  auto r = run();
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(truth.string() + ": line 4") != std::string::npos);
  CHECK(r.err.find('\n') == r.err.size() - 1);

  write_text(truth, "slide,score\nS01,0\nS02,0,extra\n");
  r = run();
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(truth.string() + ": line 3") != std::string::npos);

  write_text(truth, "slide,score\nS01,\"0\n");
  r = run();
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(truth.string() + ": line 2") != std::string::npos);

  write_text(truth, "slide,score\nS01,0\n");
  write_text(summary, "slide,status,score\nS01.svs,ok,0\nS02.svs,ok,2++\n");
  r = run();
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(summary.string() + ": line 3") != std::string::npos);

  write_text(summary, "slide,score\nS01.svs,0\n");  // no status column
  r = run();
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("status") != std::string::npos);

  write_text(summary, "slide,status,score\nZ.svs,ok,0\n");  // nothing in common
  CHECK(run().exit_code == 3);

  CHECK(run_cli("validate --truth '" + (dir / "missing.csv").string() + "' --results '" + summary.string() + "'")
            .exit_code == 3);
  CHECK(run_cli("validate --truth '" + truth.string() + "'").exit_code == 2);
}
