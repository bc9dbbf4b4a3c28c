// Cell detection on a tile (cells.hpp): the stages of cell_stages.hpp in order, each cell's
// neighbours, and the tumour-cell rules.
#include "ihc/scoring/cells.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <opencv2/imgproc.hpp>

#include "cell_stages.hpp"
#include "ihc/scoring/artefacts.hpp"
#include "ihc/scoring/stains.hpp"

namespace ihc::scoring {
namespace {
// A crosstalk estimate above this is not a hue mismatch but a misread tile: not trusted further.
constexpr double kMaxCrosstalk = 0.8;
}  // namespace

std::string left_out_reasons(std::uint8_t left_out) {
  static constexpr std::array<const char*, kLeftOutRules> kNames{"small_nucleus", "large_nucleus", "few_neighbours",
                                                     "elongated_nucleus", "image_edge", "hematoxylin_ridges"};
  std::string out;
  for (std::size_t b = 0; b < kNames.size(); ++b)
    if (left_out & (1u << b)) out += (out.empty() ? "" : ",") + std::string(kNames[b]);
  return out;
}

std::vector<Cell> detect_cells(const cv::Mat& hematoxylin, const cv::Mat& dab, double mpp,
                               const cv::Rect& core, const CellParams& p, const cv::Rect& valid_region) {
  CV_Assert(hematoxylin.type() == CV_32F && dab.type() == CV_32F && hematoxylin.size() == dab.size());
  return detect_cells_half_h(detail::half_size(hematoxylin), dab, mpp, core, p, valid_region);
}

std::vector<Cell> detect_cells_half_h(const cv::Mat& h_half, const cv::Mat& dab, double mpp, const cv::Rect& core,
                                      const CellParams& p, const cv::Rect& valid_region) {
  CV_Assert(dab.type() == CV_32F);
  return detect_cells_smoothed(h_half, smooth_dab_for_cells(dab), mpp, core, p, valid_region);
}

std::vector<Cell> detect_cells_smoothed(const cv::Mat& h_half_read, const cv::Mat& dab_fine, double mpp,
                                        const cv::Rect& core, const CellParams& p, const cv::Rect& valid_region,
                                        TileStains* measured) {
  using detail::Seed;
  const cv::Mat& dab = dab_fine;  // sizes only
  CV_Assert(h_half_read.type() == CV_32F && dab.type() == CV_32F);
  CV_Assert(h_half_read.rows == std::max(1, dab.rows / 2) && h_half_read.cols == std::max(1, dab.cols / 2));
  // 0. Haematoxylin without the share of dark DAB that deconvolution gave it (dab_in_hematoxylin,
  // stains.hpp): brown membranes must not make nucleus seeds. The membrane stage keeps the
  // haematoxylin as read: its pigment and nuclear-ridge ratios were set on it.
  // DAB at half resolution: for this, the leak below and the outlines.
  const cv::Mat dab_half = detail::half_size(dab_fine);
  cv::Mat h_half = h_half_read;
  if (p.remove_dab_from_hematoxylin)
    if (const double a = std::min(dab_in_hematoxylin(h_half_read, dab_half), kMaxCrosstalk); a > 0) {
      h_half = cv::Mat();  // new pixels: the caller's stay as they are
      cv::scaleAdd(dab_half, -a, h_half_read, h_half);
      if (measured) measured->dab_in_hematoxylin = a;
    }
  CV_Assert(mpp > 0);
  const double nucleus_r = p.nucleus_radius_um / mpp;
  const double max_r = p.max_cell_radius_um / mpp;
  const double px_area_um2 = mpp * mpp;

  // 1. Nuclei are found at half resolution (a nucleus is ~7 µm across: nothing is lost), smoothed
  // at the nucleus scale (sigma = radius / 2). Outlines are grown at half resolution too: the
  // watershed only has to put each boundary on the right membrane; the membrane peak itself is
  // then sought at full resolution.
  cv::Mat h_nucleus;
  const double nucleus_sigma = std::max(0.5, nucleus_r * 0.25);
  const int nucleus_taps = 2 * static_cast<int>(std::lround(3.5 * nucleus_sigma)) + 1;  // to 3.5 sigma
  cv::GaussianBlur(h_half, h_nucleus, cv::Size(nucleus_taps, nucleus_taps), nucleus_sigma);
  const std::vector<Seed> half_seeds = detail::find_nucleus_seeds(h_nucleus, nucleus_r * 0.5, p);
  std::vector<Seed> seeds = half_seeds;
  for (auto& s : seeds) {
    s.x = std::min(2 * s.x + 1, dab.cols - 1);
    s.y = std::min(2 * s.y + 1, dab.rows - 1);
  }
  // The nuclear-ridge rule's ratio following this tile's measured leak of haematoxylin into DAB
  // (CellParams::nuclear_ridge_follows_leak; off by default).
  CellParams tile_p = p;
  if ((p.nuclear_ridge_follows_leak || measured) && !half_seeds.empty()) {
    const double leak = std::min(
        detail::nuclear_dab_leak(half_seeds, h_nucleus, dab_half, nucleus_r * 0.5, nucleus_sigma, nucleus_taps), kMaxCrosstalk);
    if (measured) measured->hematoxylin_in_dab = leak;
    if (p.nuclear_ridge_follows_leak && p.nuclear_ridge_h_ratio > 0 && leak > 0)
      tile_p.nuclear_ridge_h_ratio = std::min(p.nuclear_ridge_h_ratio, 1.0 / (1.5 * leak));
  }
  // 2. Outlines.
  const cv::Mat half_labels = detail::grow_cells(dab_half, half_seeds, max_r * 0.5);
  // 3-4. Membranes, one cell at a time.
  detail::MembraneTracer membrane(h_half_read, dab_fine, half_labels, mpp, nucleus_r, max_r, valid_region, tile_p);

  // Neighbour counts through a coarse grid of seeds.
  const double nb_r = p.neighbourhood_um / mpp;
  const int gcell = std::max(1, static_cast<int>(std::ceil(nb_r)));
  const int gw = dab.cols / gcell + 1, gh = dab.rows / gcell + 1;
  std::vector<std::vector<int>> grid(static_cast<std::size_t>(gw * gh));
  for (std::size_t k = 0; k < seeds.size(); ++k)
    grid[static_cast<std::size_t>((seeds[k].y / gcell) * gw + seeds[k].x / gcell)].push_back(static_cast<int>(k));

  std::vector<Cell> cells;
  for (std::size_t k = 0; k < seeds.size(); ++k) {
    const Seed& s = seeds[k];
    if (!core.contains(cv::Point(s.x, s.y))) continue;
    const int own = static_cast<int>(k) + 1;
    Cell cell;
    cell.centre = cv::Point2f(static_cast<float>(s.x), static_cast<float>(s.y));
    detail::measure_nucleus(h_half, half_labels, half_seeds[k], own, nucleus_r, px_area_um2, p, cell);

    // Neighbours.
    const int gx = s.x / gcell, gy = s.y / gcell;
    for (int yy = std::max(0, gy - 1); yy <= std::min(gh - 1, gy + 1); ++yy)
      for (int xx = std::max(0, gx - 1); xx <= std::min(gw - 1, gx + 1); ++xx)
        for (int j : grid[static_cast<std::size_t>(yy * gw + xx)]) {
          if (j == static_cast<int>(k)) continue;
          const double dx = seeds[static_cast<std::size_t>(j)].x - s.x, dy = seeds[static_cast<std::size_t>(j)].y - s.y;
          if (dx * dx + dy * dy <= nb_r * nb_r) ++cell.neighbours;
        }

    const int valid_rays = membrane.trace(s, own, cell);
    // 7. Tumour cells only.
    cell.left_out = static_cast<std::uint8_t>(
        (cell.nucleus_area_um2 < p.min_nucleus_area_um2 ? kLeftOutSmall : 0) |
        (cell.nucleus_area_um2 > p.max_nucleus_area_um2 ? kLeftOutLarge : 0) |
        (cell.neighbours < p.min_neighbours ? kLeftOutFewNeighbours : 0) |
        (cell.nucleus_elongation > p.max_nucleus_elongation ? kLeftOutElongated : 0) |
        (valid_rays * 2 < p.rays ? kLeftOutEdge : 0) | (cell.hematoxylin_ridges ? kLeftOutHematoxylinRidges : 0));
    cell.counted = cell.left_out == 0;
    cells.push_back(std::move(cell));
  }
  // 5. Cytoplasmic pattern over the tile.
  apply_cytoplasmic_pattern(cells, p);
  return cells;
}

}  // namespace ihc::scoring
