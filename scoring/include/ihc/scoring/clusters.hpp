#pragma once
// Cohesive clusters of stained tumour cells, for the gastric biopsy rule (ASCO/CAP/ASCP 2016):
// in a biopsy a cluster of at least five cohesive tumour cells of a class decides the score,
// whatever their share of all tumour cells. Two cells touch when their nucleus centres are at
// most `cohesive_um` apart; a cluster is a connected group of touching cells.
#include <array>
#include <cstdint>
#include <vector>

#include "ihc/scoring/guideline.hpp"

namespace ihc::scoring {

struct ClusterCell {
  double x_um = 0, y_um = 0;
  CellClass cell_class = CellClass::Negative;
};

// For c = 1, 2, 3: the size of the largest cluster of cells whose class is at least c
// ([0] is unused, 0). Independent of the order of `cells`.
std::array<std::int64_t, 4> largest_clusters(const std::vector<ClusterCell>& cells, double cohesive_um);

// The biopsy score: the highest class c with a cluster of at least `min_cells` cells of class
// >= c; 0 when there is none.
SlideScore biopsy_score(const std::array<std::int64_t, 4>& largest, int min_cells);

}  // namespace ihc::scoring
