// The ASCO/CAP rules on hand-made percentages around every threshold (values from DOMAIN.md).
#include <catch2/catch.hpp>

#include "ihc/scoring/guideline.hpp"

using namespace ihc::scoring;

namespace {
SlideScore s2018(double p0, double p1, double p2, double p3) {
  return score_from_percent({p0, p1, p2, p3}, 1000, Guideline::AscoCap2018);
}
SlideScore s2007(double p0, double p1, double p2, double p3) {
  return score_from_percent({p0, p1, p2, p3}, 1000, Guideline::AscoCap2007);
}
}  // namespace

TEST_CASE("2018: 3+ needs complete intense staining in more than 10 % of cells", "[scoring][guideline]") {
  CHECK(s2018(89.9, 0, 0, 10.1) == SlideScore::ThreePlus);
  CHECK(s2018(90, 0, 0, 10.0) == SlideScore::TwoPlus);  // exactly 10 % is not "more than 10 %"
  CHECK(s2018(50, 0, 30, 20) == SlideScore::ThreePlus);
}

TEST_CASE("2018: 2+ is complete weak-to-moderate staining in more than 10 %, or a few intense cells",
          "[scoring][guideline]") {
  CHECK(s2018(89.9, 0, 10.1, 0) == SlideScore::TwoPlus);
  CHECK(s2018(90, 0, 10.0, 0) == SlideScore::Zero);  // 10 % complete alone: not >10 %, no 1+ either
  CHECK(s2018(80, 10, 10.0, 0) == SlideScore::OnePlus);
  CHECK(s2018(94, 0, 5, 5) == SlideScore::TwoPlus);   // 5+5 = 10 % complete, but intense cells present
  CHECK(s2018(97, 0, 0, 3) == SlideScore::TwoPlus);   // intense complete in <=10 %
  CHECK(s2018(99.5, 0, 0, 0.5) == SlideScore::Zero);  // below the 1 % noise floor
}

TEST_CASE("2018: 1+ is faint incomplete staining in more than 10 %, 0 at or below", "[scoring][guideline]") {
  CHECK(s2018(89.9, 10.1, 0, 0) == SlideScore::OnePlus);
  CHECK(s2018(90, 10.0, 0, 0) == SlideScore::Zero);
  CHECK(s2018(100, 0, 0, 0) == SlideScore::Zero);
}

TEST_CASE("2007: 3+ needs more than 30 % intense complete, 2+ covers up to 30 %", "[scoring][guideline]") {
  CHECK(s2007(69.9, 0, 0, 30.1) == SlideScore::ThreePlus);
  CHECK(s2007(70, 0, 0, 30.0) == SlideScore::TwoPlus);
  CHECK(s2007(80, 0, 0, 20) == SlideScore::TwoPlus);  // 3+ under 2018, 2+ under 2007
  CHECK(s2018(80, 0, 0, 20) == SlideScore::ThreePlus);
}

TEST_CASE("2007: 2+ from 10 % complete staining, 1+ from any incomplete staining", "[scoring][guideline]") {
  CHECK(s2007(90, 0, 10.0, 0) == SlideScore::TwoPlus);  // ">= 10 %" in 2007
  CHECK(s2007(90.1, 0, 9.9, 0) == SlideScore::OnePlus);
  CHECK(s2007(95, 5, 0, 0) == SlideScore::OnePlus);     // 0 under 2018, 1+ under 2007
  CHECK(s2018(95, 5, 0, 0) == SlideScore::Zero);
  CHECK(s2007(100, 0, 0, 0) == SlideScore::Zero);
}

TEST_CASE("no cells is not evaluable under both guidelines", "[scoring][guideline]") {
  CHECK(score_from_percent({}, 0, Guideline::AscoCap2018) == SlideScore::NotEvaluable);
  CHECK(score_from_percent({}, 0, Guideline::AscoCap2007) == SlideScore::NotEvaluable);
}

TEST_CASE("HER2 categories separate null, ultralow and low", "[scoring][guideline]") {
  CHECK(categorise(SlideScore::Zero, {100, 0, 0, 0}) == Her2Category::Null);
  CHECK(categorise(SlideScore::Zero, {95, 5, 0, 0}) == Her2Category::Ultralow);
  CHECK(categorise(SlideScore::Zero, {90, 10, 0, 0}) == Her2Category::Ultralow);
  CHECK(categorise(SlideScore::OnePlus, {85, 15, 0, 0}) == Her2Category::Low);
  CHECK(categorise(SlideScore::TwoPlus, {50, 20, 30, 0}) == Her2Category::Equivocal);
  CHECK(categorise(SlideScore::ThreePlus, {50, 0, 0, 50}) == Her2Category::Positive);
  // Gastric (ASCO/CAP/ASCP 2016): 0 and 1+ are negative; the breast HER2-low categories do not apply.
  CHECK(categorise(SlideScore::Zero, {95, 5, 0, 0}, {}, Guideline::Gastric) == Her2Category::Negative);
  CHECK(categorise(SlideScore::OnePlus, {85, 15, 0, 0}, {}, Guideline::Gastric) == Her2Category::Negative);
  CHECK(categorise(SlideScore::TwoPlus, {50, 20, 30, 0}, {}, Guideline::Gastric) == Her2Category::Equivocal);
  CHECK(categorise(SlideScore::ThreePlus, {50, 0, 0, 50}, {}, Guideline::Gastric) == Her2Category::Positive);
}

TEST_CASE("cell counts turn into percentages that sum to 100", "[scoring][guideline]") {
  CellCounts c;
  c.by_class = {50, 25, 15, 10};
  const auto p = c.percent();
  CHECK(p.p0 == Approx(50));
  CHECK(p.complete() == Approx(25));
  CHECK(p.complete_intense() == Approx(10));
  CHECK(p.p0 + p.p1 + p.p2 + p.p3 == Approx(100));
  CHECK(parse_guideline("asco-cap-2007") == Guideline::AscoCap2007);
  CHECK_FALSE(parse_guideline("asco-cap-2013").has_value());
}

namespace {
SlideScore sgastric(double p0, double p1, double p2, double p3) {
  return score_from_percent({p0, p1, p2, p3}, 1000, Guideline::Gastric);
}
}  // namespace

TEST_CASE("Gastric (ASCO/CAP/ASCP 2016): thresholds are 'at least 10 %'", "[scoring][guideline][gastric]") {
  CHECK(sgastric(90, 0, 0, 10.0) == SlideScore::ThreePlus);  // breast 2018 would say 2+ here
  CHECK(s2018(90, 0, 0, 10.0) == SlideScore::TwoPlus);
  CHECK(sgastric(90.1, 0, 0, 9.9) == SlideScore::Zero);      // no "few intense cells" 2+ rule
  CHECK(sgastric(90, 0, 10.0, 0) == SlideScore::TwoPlus);
  CHECK(sgastric(85, 0, 7, 8) == SlideScore::TwoPlus);       // 2+ and 3+ cells together reach 10 %
  CHECK(sgastric(90, 10.0, 0, 0) == SlideScore::OnePlus);
  CHECK(sgastric(90.1, 9.9, 0, 0) == SlideScore::Zero);
  CHECK(score_from_percent({}, 0, Guideline::Gastric) == SlideScore::NotEvaluable);
}

TEST_CASE("The decisive rule comes from the same table as the score", "[scoring][guideline]") {
  const Decision g = decide({85, 5, 5, 5}, 1000, Guideline::Gastric);
  CHECK(g.score == SlideScore::TwoPlus);
  CHECK(std::string(g.metric) == "complete");
  CHECK(g.threshold == 10.0);
  const Decision b = decide({97, 0, 0, 3}, 1000, Guideline::AscoCap2018);
  CHECK(b.score == SlideScore::TwoPlus);
  CHECK(std::string(b.metric) == "complete_intense");
  CHECK(b.threshold == 1.0);  // the noise floor
  const Decision o = decide({95, 5, 0, 0}, 1000, Guideline::AscoCap2007);
  CHECK(o.score == SlideScore::OnePlus);
  CHECK(o.threshold == 1.0);
  CHECK(rules_of(Guideline::Gastric).lateral_counts_complete);
  CHECK_FALSE(rules_of(Guideline::AscoCap2018).lateral_counts_complete);
  CHECK(parse_guideline("gastric") == Guideline::Gastric);
  CHECK(to_string(Guideline::Gastric) == "gastric");
  CHECK(parse_specimen("biopsy") == Specimen::Biopsy);
  CHECK_FALSE(parse_specimen("cytology"));
}
