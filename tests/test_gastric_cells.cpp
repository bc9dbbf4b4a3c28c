// Gastric rules at the cell and cluster level: lateral / basolateral (U-shaped) membranes, and
// the biopsy rule's cohesive clusters.
#include <catch2/catch.hpp>

#include <vector>

#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/clusters.hpp"

using namespace ihc::scoring;

namespace {
// 36 directions, stained where `on(angle in degrees)` says so.
template <class F>
std::vector<std::uint8_t> rays(F on) {
  std::vector<std::uint8_t> v(36);
  for (int i = 0; i < 36; ++i) v[static_cast<std::size_t>(i)] = on(i * 10) ? 1 : 0;
  return v;
}
}  // namespace

TEST_CASE("Lateral and basolateral membranes are told from partial ones", "[scoring][gastric]") {
  // Two sides of a columnar cell: 50-130 and 230-310 degrees.
  CHECK(is_lateral(rays([](int a) { return (a >= 50 && a <= 130) || (a >= 230 && a <= 310); }), 36));
  // U-shape: 0-180 degrees in one arc, across the 0/360 seam too.
  CHECK(is_lateral(rays([](int a) { return a <= 180; }), 36));
  CHECK(is_lateral(rays([](int a) { return a >= 270 || a <= 90; }), 36));
  // One side only, or two adjacent sides: partial.
  CHECK_FALSE(is_lateral(rays([](int a) { return a >= 50 && a <= 130; }), 36));
  CHECK_FALSE(is_lateral(rays([](int a) { return a >= 0 && a <= 150; }), 36));
  CHECK_FALSE(is_lateral(rays([](int a) { return (a >= 0 && a <= 60) || (a >= 90 && a <= 150); }), 36));
  CHECK_FALSE(is_lateral(rays([](int) { return false; }), 36));
}

TEST_CASE("Lateral staining is classed as complete only under the gastric rules", "[scoring][gastric]") {
  CellParams breast;
  CellParams gastric;
  gastric.lateral_counts_complete = true;
  // Half the outline, weak-to-moderate: 1+ on the breast wording, 2+ as gastric lateral staining.
  CHECK(classify_membrane(0.5, 0.3, breast, true) == CellClass::OnePlus);
  CHECK(classify_membrane(0.5, 0.3, gastric, true) == CellClass::TwoPlus);
  CHECK(classify_membrane(0.5, 0.8, gastric, true) == CellClass::ThreePlus);
  CHECK(classify_membrane(0.5, 0.1, gastric, true) == CellClass::OnePlus);
  CHECK(classify_membrane(0.5, 0.3, gastric, false) == CellClass::OnePlus);  // partial, not lateral
}

TEST_CASE("Biopsy: the best cluster of at least five cohesive cells decides", "[scoring][gastric]") {
  std::vector<ClusterCell> cells;
  // A row of six 2+ cells 10 um apart (cohesive), a 3+ pair, and scattered 1+ cells 40 um apart.
  for (int i = 0; i < 6; ++i) cells.push_back({10.0 * i, 0.0, CellClass::TwoPlus});
  cells.push_back({60.0, 0.0, CellClass::ThreePlus});  // touches the row
  cells.push_back({70.0, 0.0, CellClass::ThreePlus});
  for (int i = 0; i < 10; ++i) cells.push_back({40.0 * i, 200.0, CellClass::OnePlus});
  const auto largest = largest_clusters(cells, 15.0);
  CHECK(largest[1] == 8);  // the row with the 3+ pair; the 1+ cells are 40 um apart
  CHECK(largest[2] == 8);
  CHECK(largest[3] == 2);
  CHECK(biopsy_score(largest, 5) == SlideScore::TwoPlus);
  CHECK(biopsy_score(largest, 9) == SlideScore::Zero);
  // The same cells in another order give the same clusters.
  std::vector<ClusterCell> reversed(cells.rbegin(), cells.rend());
  CHECK(largest_clusters(reversed, 15.0) == largest);
  // Pulling one cell 20 um away breaks the row: 5 + 1.
  cells[0].x_um = -20.0;
  CHECK(largest_clusters(cells, 15.0)[2] == 7);
}
