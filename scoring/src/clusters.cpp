#include "ihc/scoring/clusters.hpp"

#include <cmath>
#include <numeric>
#include <unordered_map>

namespace ihc::scoring {
namespace {

std::size_t root(std::vector<std::size_t>& parent, std::size_t i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

}  // namespace

std::array<std::int64_t, 4> largest_clusters(const std::vector<ClusterCell>& cells, double cohesive_um) {
  std::array<std::int64_t, 4> largest{};
  if (cells.empty() || !(cohesive_um > 0)) return largest;
  const double r2 = cohesive_um * cohesive_um;
  const auto key = [&](std::int64_t gx, std::int64_t gy) { return gx * 73856093 ^ gy * 19349663; };
  for (int c = 1; c <= 3; ++c) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < cells.size(); ++i)
      if (static_cast<int>(cells[i].cell_class) >= c) members.push_back(i);
    if (members.empty()) continue;
    // Grid of cohesive_um squares: touching cells are in the same or a neighbouring square.
    std::unordered_multimap<std::int64_t, std::size_t> grid;
    const auto cell_of = [&](double v) { return static_cast<std::int64_t>(std::floor(v / cohesive_um)); };
    for (std::size_t k = 0; k < members.size(); ++k)
      grid.emplace(key(cell_of(cells[members[k]].x_um), cell_of(cells[members[k]].y_um)), k);
    std::vector<std::size_t> parent(members.size());
    std::iota(parent.begin(), parent.end(), std::size_t{0});
    for (std::size_t k = 0; k < members.size(); ++k) {
      const ClusterCell& a = cells[members[k]];
      const auto gx = cell_of(a.x_um), gy = cell_of(a.y_um);
      for (std::int64_t dy = -1; dy <= 1; ++dy)
        for (std::int64_t dx = -1; dx <= 1; ++dx) {
          const auto range = grid.equal_range(key(gx + dx, gy + dy));
          for (auto it = range.first; it != range.second; ++it) {
            const ClusterCell& b = cells[members[it->second]];
            const double ex = a.x_um - b.x_um, ey = a.y_um - b.y_um;
            if (it->second != k && ex * ex + ey * ey <= r2) parent[root(parent, k)] = root(parent, it->second);
          }
        }
    }
    std::vector<std::int64_t> size(members.size(), 0);
    for (std::size_t k = 0; k < members.size(); ++k) ++size[root(parent, k)];
    for (const auto s : size) largest[static_cast<std::size_t>(c)] = std::max(largest[static_cast<std::size_t>(c)], s);
  }
  return largest;
}

SlideScore biopsy_score(const std::array<std::int64_t, 4>& largest, int min_cells) {
  for (int c = 3; c >= 1; --c)
    if (largest[static_cast<std::size_t>(c)] >= min_cells) return static_cast<SlideScore>(c);
  return SlideScore::Zero;
}

}  // namespace ihc::scoring
