#include "ihc/scoring/artefacts.hpp"

#include <algorithm>

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

}  // namespace ihc::scoring
