#include "ihc/scoring/artefacts.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "cell_stages.hpp"

namespace ihc::scoring {

CytoplasmicPattern apply_cytoplasmic_pattern(std::vector<Cell>& cells, const CellParams& p) {
  CytoplasmicPattern out;
  auto membrane_positive = [](const Cell& c) { return c.counted && c.cell_class != CellClass::Negative; };
  auto measured = [](const Cell& c) { return c.cytoplasm_mean_od >= 0 && c.membrane_peak_od > 0; };
  std::vector<float> ratios, cytoplasm;
  for (const auto& c : cells)
    if (membrane_positive(c) && measured(c)) {
      ratios.push_back(c.cytoplasm_mean_od / c.membrane_peak_od);
      cytoplasm.push_back(c.cytoplasm_mean_od);
    }
  out.assessed = static_cast<int>(ratios.size());
  if (ratios.empty()) return out;
  const auto mid = ratios.begin() + static_cast<std::ptrdiff_t>(ratios.size() / 2);
  std::nth_element(ratios.begin(), mid, ratios.end());
  out.median_ratio = *mid;
  const auto mid_c = cytoplasm.begin() + static_cast<std::ptrdiff_t>(cytoplasm.size() / 2);
  std::nth_element(cytoplasm.begin(), mid_c, cytoplasm.end());
  out.median_cytoplasm_od = *mid_c;
  out.pattern = out.assessed >= p.cytoplasmic_min_cells && out.median_ratio >= p.cytoplasmic_tile_ratio &&
                out.median_cytoplasm_od >= p.cytoplasmic_tile_min_od;
  if (!out.pattern) return out;
  // In a cytoplasmic tile a cell keeps its membrane class only with a demonstrably clear
  // cytoplasm: one whose membrane lies too close to the nucleus for a sample shows none.
  for (auto& c : cells) {
    if (!membrane_positive(c)) continue;
    if (measured(c) && (c.cytoplasm_mean_od < p.cytoplasmic_min_od ||
                     c.cytoplasm_mean_od < p.cytoplasmic_cell_ratio * c.membrane_peak_od))
      continue;
    c.cytoplasmic = true;
    c.cell_class = CellClass::Negative;
    ++out.flagged;
  }
  return out;
}

namespace detail {

// Pigment granules on a ray (cell_stages.hpp).
GranuleTest::GranuleTest(int dab_cols, double mpp, const CellParams& p) {
  const int ring_px = std::max(1, static_cast<int>(std::lround(p.pigment_ring_um / mpp)));
  margin_ = ring_px + 3;
  int k = 0;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      if (dx != 0 || dy != 0) neighbour_offset_[static_cast<std::size_t>(k++)] = dy * dab_cols + dx;
  for (std::size_t r = 0; r < ring_offset_.size(); ++r) {
    const double t = 2.0 * std::numbers::pi * static_cast<double>(r) / static_cast<double>(ring_offset_.size());
    ring_offset_[r] = static_cast<int>(std::lround(ring_px * std::sin(t))) * dab_cols +
                      static_cast<int>(std::lround(ring_px * std::cos(t)));
  }
}

bool GranuleTest::is_granule(const float* at) const {
  const float* top = at;
  for (int climb = 0; climb < 2; ++climb) {
    const float* from = top;
    for (const int o : neighbour_offset_) top = from[o] > *top ? from + o : top;
  }
  const float half = 0.5f * *top;
  for (const int o : ring_offset_)
    if (top[o] >= half) return false;
  return true;
}

}  // namespace detail

}  // namespace ihc::scoring
