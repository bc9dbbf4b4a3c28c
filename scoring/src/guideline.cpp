#include "ihc/scoring/guideline.hpp"

namespace ihc::scoring {

std::string_view to_string(Guideline g) {
  return g == Guideline::AscoCap2007 ? "asco-cap-2007" : "asco-cap-2018";
}

std::optional<Guideline> parse_guideline(std::string_view text) {
  if (text == "asco-cap-2018") return Guideline::AscoCap2018;
  if (text == "asco-cap-2007") return Guideline::AscoCap2007;
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

SlideScore score_slide(const ClassPercent& p, std::int64_t total_cells, Guideline g,
                       const RuleParams& params) {
  if (total_cells <= 0) return SlideScore::NotEvaluable;
  const double floor = params.noise_floor_percent;
  if (g == Guideline::AscoCap2018) {
    // 3+: complete intense in >10 %. 2+: complete weak-to-moderate in >10 %, or intense complete
    // in <=10 % (any 3+ cells above the noise floor). 1+: faint incomplete in >10 %.
    if (p.p3 > 10.0) return SlideScore::ThreePlus;
    if (p.complete() > 10.0 || p.p3 >= floor) return SlideScore::TwoPlus;
    if (p.any_membrane() > 10.0) return SlideScore::OnePlus;
    return SlideScore::Zero;
  }
  // 2007: 3+: uniform intense complete in >30 %. 2+: weak or non-uniform complete in >=10 %, or
  // intense complete in <=30 %. 1+: weak incomplete staining in any proportion. 0: none.
  if (p.p3 > 30.0) return SlideScore::ThreePlus;
  if (p.complete() >= 10.0 || p.p3 >= floor) return SlideScore::TwoPlus;
  if (p.any_membrane() >= floor) return SlideScore::OnePlus;
  return SlideScore::Zero;
}

Her2Category categorise(SlideScore s, const ClassPercent& p, const RuleParams& params) {
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
