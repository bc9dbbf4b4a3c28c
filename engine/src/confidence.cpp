#include "ihc/engine/confidence.hpp"

#include <algorithm>
#include <limits>
#include <cmath>
#include <random>
#include <vector>

namespace ihc::engine {
namespace {
// Wilson score interval (95 %) for k successes in n trials, in per cent.
std::array<double, 2> wilson_percent(double k, double n) {
  constexpr double z = 1.959964;
  const double p = k / n, z2n = z * z / n;
  const double centre = (p + z2n / 2) / (1 + z2n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
  return {100.0 * std::max(0.0, centre - half), 100.0 * std::min(1.0, centre + half)};
}
}  // namespace

DecisiveMargin decisive_margin(const SlideResult& r, const ScoreOptions& o, int resamples) {
  if (r.score == scoring::SlideScore::NotEvaluable) return {};
  // The rule that placed the score, and its threshold, from the same decision as the score.
  const scoring::Decision d = decide(r, o);
  DecisiveMargin m;
  m.metric = d.metric;
  m.threshold = d.threshold;
  if (o.biopsy_rule()) {
    // Cells in the best cluster of the class that decided (1+ for a 0): a count, no bootstrap.
    m.percent = static_cast<double>(r.largest_cluster[static_cast<std::size_t>(std::max(1, static_cast<int>(d.score)))]);
    m.ci95 = {m.percent, m.percent};
    return m;
  }
  m.percent = scoring::metric_value(r.percent, m.metric);
  // Bootstrap: draw tiles with replacement, pool their cell counts.
  std::vector<const TileResult*> tiles;
  for (const auto& t : r.tiles)
    if (!t.failed && t.counts.total() > 0) tiles.push_back(&t);
  // The cells counted bound the certainty however the tiles fall: a binomial (Wilson) interval
  // over them. With one or a few tiles the tile bootstrap collapses towards a point; with many
  // heterogeneous tiles it is the wider. The interval reported is the union of the two.
  const double n_cells = static_cast<double>(r.counts.total());
  m.ci95 = n_cells > 0 ? wilson_percent(std::round(m.percent / 100.0 * n_cells), n_cells)
                       : std::array<double, 2>{m.percent, m.percent};
  if (!tiles.empty() && resamples > 0) {
    std::mt19937_64 rng(20181101);
    std::uniform_int_distribution<std::size_t> pick(0, tiles.size() - 1);
    std::vector<double> values;
    values.reserve(static_cast<std::size_t>(resamples));
    for (int b = 0; b < resamples; ++b) {
      scoring::CellCounts sum;
      for (std::size_t k = 0; k < tiles.size(); ++k) sum += tiles[pick(rng)]->counts;
      values.push_back(scoring::metric_value(sum.percent(), m.metric));
    }
    std::sort(values.begin(), values.end());
    const auto at = [&](double q) {
      return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5)];
    };
    m.ci95 = {std::min(m.ci95[0], at(0.025)), std::max(m.ci95[1], at(0.975))};
  }
  m.borderline = m.ci95[0] <= m.threshold && m.threshold <= m.ci95[1];
  return m;
}

}  // namespace ihc::engine
