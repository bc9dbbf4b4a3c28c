#include "ihc/engine/label_fit.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>

namespace ihc::engine {
namespace {

constexpr std::array<double, 6> kModerate{0.12, 0.16, 0.20, 0.25, 0.30, 0.35};
constexpr std::array<double, 7> kIntense{0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2};
constexpr std::array<double, 3> kComplete{0.7, 0.8, 0.9};
constexpr std::array<double, 3> kPartial{0.1, 0.2, 0.3};

}  // namespace

int score_with(const LabelledSlide& slide, const scoring::CellParams& params, scoring::Guideline g,
               const scoring::RuleParams& rules) {
  scoring::CellCounts counts;
  for (const auto& c : slide.cells) {
    const auto cls = c.forced_negative ? scoring::CellClass::Negative
                                       : scoring::classify_membrane(c.completeness, c.intensity_od, params, c.lateral);
    ++counts.by_class[static_cast<std::size_t>(cls)];
  }
  const auto s = scoring::score_from_percent(counts.percent(), counts.total(), g, rules);
  return s == scoring::SlideScore::NotEvaluable ? -1 : static_cast<int>(s);
}

ThresholdFit fit_thresholds(const std::vector<LabelledSlide>& slides, const std::vector<std::size_t>& use,
                            const scoring::CellParams& start, scoring::Guideline g, const scoring::RuleParams& rules) {
  std::vector<std::size_t> idx = use;
  if (idx.empty()) {
    idx.resize(slides.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
  }
  ThresholdFit best;
  best.params = start;
  double best_shift = std::numeric_limits<double>::max();
  best.exact = -1;
  scoring::CellParams p = start;
  for (const double mo : kModerate)
    for (const double in : kIntense)
      for (const double co : kComplete)
        for (const double pa : kPartial) {
          p.moderate_od = mo;
          p.intense_od = in;
          p.complete_fraction = co;
          p.partial_min_fraction = pa;
          int exact = 0, distance = 0;
          for (const auto k : idx) {
            const int s = score_with(slides[k], p, g, rules);
            exact += s == slides[k].truth ? 1 : 0;
            distance += s < 0 ? 4 : std::abs(s - slides[k].truth);
          }
          // Relative change from the thresholds given: the tie-break keeps them where they serve.
          const double shift = std::abs(mo / start.moderate_od - 1) + std::abs(in / start.intense_od - 1) +
                               std::abs(co / start.complete_fraction - 1) +
                               std::abs(pa / start.partial_min_fraction - 1);
          if (exact > best.exact || (exact == best.exact && distance < best.distance) ||
              (exact == best.exact && distance == best.distance && shift < best_shift)) {
            best.exact = exact;
            best.distance = distance;
            best.params = p;
            best_shift = shift;
          }
        }
  return best;
}

std::vector<int> leave_one_out(const std::vector<LabelledSlide>& slides, const scoring::CellParams& start,
                               scoring::Guideline g, const scoring::RuleParams& rules) {
  std::vector<int> out;
  for (std::size_t held = 0; held < slides.size(); ++held) {
    std::vector<std::size_t> rest;
    for (std::size_t k = 0; k < slides.size(); ++k)
      if (k != held) rest.push_back(k);
    out.push_back(score_with(slides[held], fit_thresholds(slides, rest, start, g, rules).params, g, rules));
  }
  return out;
}

}  // namespace ihc::engine
