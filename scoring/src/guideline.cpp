#include "ihc/scoring/guideline.hpp"

namespace ihc::scoring {
namespace {

// The tables (DOMAIN.md). 2018: 3+ complete intense > 10 %; 2+ complete weak-to-moderate
// > 10 % or intense complete in <= 10 %; 1+ faint incomplete > 10 %. 2007: 3+ uniform intense
// complete > 30 %; 2+ complete >= 10 % or intense complete <= 30 %; 1+ any proportion.
// Gastric 2016 (resection): 3+ strong complete, basolateral or lateral >= 10 %; 2+ weak-to-
// moderate (complete, basolateral or lateral) >= 10 %; 1+ faint, partial >= 10 %.
constexpr std::array<GuidelineRules, 3> kRules{{
    {Guideline::AscoCap2018, {10.0, true}, {10.0, true}, true, {10.0, true}, false},
    {Guideline::AscoCap2007, {30.0, true}, {10.0, false}, true, {0.0, false}, false},
    {Guideline::Gastric, {10.0, false}, {10.0, false}, false, {10.0, false}, true},
}};

}  // namespace

const GuidelineRules& rules_of(Guideline g) { return kRules[static_cast<std::size_t>(g)]; }

std::string_view to_string(Guideline g) { return kGuidelineNames[static_cast<std::size_t>(g)]; }

std::optional<Guideline> parse_guideline(std::string_view text) {
  for (std::size_t i = 0; i < kGuidelineNames.size(); ++i)
    if (text == kGuidelineNames[i]) return static_cast<Guideline>(i);
  return std::nullopt;
}

std::string_view to_string(Specimen s) { return s == Specimen::Biopsy ? "biopsy" : "resection"; }

std::optional<Specimen> parse_specimen(std::string_view text) {
  if (text == "resection") return Specimen::Resection;
  if (text == "biopsy") return Specimen::Biopsy;
  return std::nullopt;
}

std::string_view to_string(CellClass c) {
  switch (c) {
    case CellClass::Negative: return "0";
    case CellClass::OnePlus: return "1+";
    case CellClass::TwoPlus: return "2+";
    case CellClass::ThreePlus: return "3+";
  }
  return "?";
}

std::string_view to_string(SlideScore s) {
  switch (s) {
    case SlideScore::Zero: return "0";
    case SlideScore::OnePlus: return "1+";
    case SlideScore::TwoPlus: return "2+";
    case SlideScore::ThreePlus: return "3+";
    case SlideScore::NotEvaluable: return "not-evaluable";
  }
  return "?";
}

std::string_view to_string(Her2Category c) {
  switch (c) {
    case Her2Category::Null: return "null";
    case Her2Category::Ultralow: return "ultralow";
    case Her2Category::Low: return "low";
    case Her2Category::Equivocal: return "equivocal";
    case Her2Category::Positive: return "positive";
    case Her2Category::NotEvaluable: return "not-evaluable";
    case Her2Category::Negative: return "negative";
  }
  return "?";
}

ClassPercent CellCounts::percent() const {
  const auto n = total();
  if (n == 0) return {};
  const double k = 100.0 / static_cast<double>(n);
  return {static_cast<double>(by_class[0]) * k, static_cast<double>(by_class[1]) * k,
          static_cast<double>(by_class[2]) * k, static_cast<double>(by_class[3]) * k};
}

CellCounts& CellCounts::operator+=(const CellCounts& o) {
  for (std::size_t i = 0; i < by_class.size(); ++i) by_class[i] += o.by_class[i];
  return *this;
}

double metric_value(const ClassPercent& p, std::string_view metric) {
  if (metric == "complete_intense") return p.complete_intense();
  if (metric == "complete") return p.complete();
  return p.any_membrane();
}

Decision decide(const ClassPercent& p, std::int64_t total_cells, Guideline g, const RuleParams& params) {
  if (total_cells <= 0) return {};
  const GuidelineRules& r = rules_of(g);
  const double floor = params.noise_floor_percent;
  const auto level = [&](const Threshold& t) { return t.percent > 0 ? t.percent : floor; };
  const auto passes = [&](double value, const Threshold& t) {
    if (t.percent <= 0) return value >= floor;
    return t.strict ? value > t.percent : value >= t.percent;
  };
  if (passes(p.complete_intense(), r.three_plus))
    return {SlideScore::ThreePlus, "complete_intense", level(r.three_plus)};
  if (passes(p.complete(), r.two_plus)) return {SlideScore::TwoPlus, "complete", level(r.two_plus)};
  if (r.two_plus_few_intense && p.complete_intense() >= floor) return {SlideScore::TwoPlus, "complete_intense", floor};
  if (passes(p.any_membrane(), r.one_plus)) return {SlideScore::OnePlus, "any_membrane", level(r.one_plus)};
  return {SlideScore::Zero, "any_membrane", level(r.one_plus)};
}

SlideScore score_from_percent(const ClassPercent& p, std::int64_t total_cells, Guideline g, const RuleParams& params) {
  return decide(p, total_cells, g, params).score;
}

Her2Category categorise(SlideScore s, const ClassPercent& p, const RuleParams& params, Guideline g) {
  if (g == Guideline::Gastric && (s == SlideScore::Zero || s == SlideScore::OnePlus)) return Her2Category::Negative;
  switch (s) {
    case SlideScore::ThreePlus: return Her2Category::Positive;
    case SlideScore::TwoPlus: return Her2Category::Equivocal;
    case SlideScore::OnePlus: return Her2Category::Low;
    case SlideScore::Zero:
      return p.any_membrane() >= params.noise_floor_percent ? Her2Category::Ultralow
                                                             : Her2Category::Null;
    case SlideScore::NotEvaluable: return Her2Category::NotEvaluable;
  }
  return Her2Category::NotEvaluable;
}

}  // namespace ihc::scoring
