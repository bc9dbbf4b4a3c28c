#include "ihc/engine/confidence.hpp"

#include <algorithm>
#include <limits>
#include <cmath>
#include <random>
#include <vector>

namespace ihc::engine {
namespace {

double metric_of(const scoring::ClassPercent& p, const std::string& metric) {
  if (metric == "complete_intense") return p.complete_intense();
  if (metric == "complete") return p.complete();
  return p.any_membrane();
}

}  // namespace

DecisiveMargin decisive_margin(const SlideResult& r, const ScoreOptions& o, int resamples) {
  using scoring::SlideScore;
  const bool y2018 = o.guideline == scoring::Guideline::AscoCap2018;
  const double t3 = y2018 ? 10.0 : 30.0;
  const double floor = o.rules.noise_floor_percent;
  // The rule that placed the score, and its threshold.
  DecisiveMargin m;
  switch (r.score) {
    case SlideScore::ThreePlus: m.metric = "complete_intense", m.threshold = t3; break;
    case SlideScore::TwoPlus:
      // Complete staining over 10 % (2007: at least 10 %), else a few intense complete cells.
      if (y2018 ? r.percent.complete() > 10.0 : r.percent.complete() >= 10.0)
        m.metric = "complete", m.threshold = 10.0;
      else
        m.metric = "complete_intense", m.threshold = floor;
      break;
    case SlideScore::OnePlus:
    case SlideScore::Zero: m.metric = "any_membrane", m.threshold = y2018 ? 10.0 : floor; break;
    case SlideScore::NotEvaluable: return {};
  }
  m.percent = metric_of(r.percent, m.metric);
  // Bootstrap: draw tiles with replacement, pool their cell counts.
  std::vector<const TileResult*> tiles;
  for (const auto& t : r.tiles)
    if (!t.failed && t.counts.total() > 0) tiles.push_back(&t);
  if (tiles.empty() || resamples <= 0) {
    m.ci95 = {m.percent, m.percent};
  } else {
    std::mt19937_64 rng(20181101);
    std::uniform_int_distribution<std::size_t> pick(0, tiles.size() - 1);
    std::vector<double> values;
    values.reserve(static_cast<std::size_t>(resamples));
    for (int b = 0; b < resamples; ++b) {
      scoring::CellCounts sum;
      for (std::size_t k = 0; k < tiles.size(); ++k) sum += tiles[pick(rng)]->counts;
      values.push_back(metric_of(sum.percent(), m.metric));
    }
    std::sort(values.begin(), values.end());
    const auto at = [&](double q) {
      return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5)];
    };
    m.ci95 = {at(0.025), at(0.975)};
  }
  m.borderline = m.ci95[0] <= m.threshold && m.threshold <= m.ci95[1];
  return m;
}

}  // namespace ihc::engine
