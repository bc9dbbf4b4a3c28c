#pragma once
// The stages of cell detection (cells.hpp), each in its own file; internal to scoring/.
//   nuclei.cpp     nucleus seeds (haematoxylin maxima) and each nucleus's area and shape
//   outlines.cpp   cell outlines: the seeded watershed on DAB
//   membrane.cpp   the membrane along rays from each nucleus (ridge, DAB mass, cytoplasm
//                  sample), its stained arcs, completeness, intensity, lateral, the cell's class
//   artefacts.cpp  the pigment granule test used on a ray, and the tile's cytoplasmic pattern
//   cells.cpp      detect_cells: the stages in order, neighbours, the tumour-cell rules
#include <array>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/scoring/cells.hpp"

namespace ihc::scoring::detail {

// 2 x 2 block average (the image's last odd row or column is dropped).
cv::Mat half_size(const cv::Mat& src);

struct Seed {
  int x, y;
  float strength;
};

// Local maxima of the nucleus-scale smoothed haematoxylin that stand out from their surroundings.
std::vector<Seed> find_nucleus_seeds(const cv::Mat& h_nucleus, double radius_px, const CellParams& p);

// The nucleus of cell `own` (label in `half_labels`) around its half-resolution seed `hs`:
// cell.nucleus_area_um2 and cell.nucleus_elongation. `nucleus_r`: nucleus radius in full
// pixels; `px_area_um2`: area of one full pixel.
void measure_nucleus(const cv::Mat& h_half, const cv::Mat& half_labels, const Seed& hs, int own, double nucleus_r,
                     double px_area_um2, const CellParams& p, Cell& cell);

// How much haematoxylin the DAB channel was given on this tile (hematoxylin_in_dab, stains.hpp),
// from each seed's excess over a ring at twice the nucleus radius (`radius_px`, half-resolution
// pixels) in the nucleus-scale haematoxylin `h_nucleus` and in `dab_half` smoothed the same way
// (`sigma`, `taps`).
double nuclear_dab_leak(const std::vector<Seed>& seeds, const cv::Mat& h_nucleus, const cv::Mat& dab_half,
                        double radius_px, double sigma, int taps);

// Seeded watershed on DAB at half resolution (`dab_half`, the seeds' grid): the label (seed
// index + 1) of each pixel, 0 where no cell reaches (see outlines.cpp).
cv::Mat grow_cells(const cv::Mat& dab_half, const std::vector<Seed>& seeds, double max_r);

// Pigment granule test (artefacts.hpp), set up once per tile on the DAB image's geometry.
class GranuleTest {
 public:
  GranuleTest(int dab_cols, double mpp, const CellParams& p);
  // From a peak, move twice to the highest of the 8 neighbours, then look for a point at half
  // that DAB or more on a ring of radius pigment_ring_um around it. A membrane crosses the ring
  // (twice); an isolated granule does not. `at` must lie margin() pixels inside the image.
  bool is_granule(const float* at) const;
  int margin() const { return margin_; }

 private:
  std::array<int, 8> neighbour_offset_{};
  std::array<int, 12> ring_offset_{};
  int margin_ = 0;
};

// Pixel offsets along each ray at half-pixel steps, computed once per tile.
struct RayTable {
  int rays = 0, steps = 0;
  std::vector<cv::Point> offsets;  // rays * steps
  std::vector<float> radius;       // steps
  RayTable(int n_rays, double max_r, double step) : rays(n_rays) {
    steps = static_cast<int>(std::floor(max_r / step)) + 3;  // two steps past max_r
    for (int k = 0; k < steps; ++k) radius.push_back(static_cast<float>(k * step));
    for (int a = 0; a < rays; ++a) {
      const double theta = 2.0 * std::numbers::pi * a / rays;
      for (int k = 0; k < steps; ++k)
        offsets.emplace_back(static_cast<int>(std::lround(std::cos(theta) * k * step)),
                             static_cast<int>(std::lround(std::sin(theta) * k * step)));
    }
  }
};

// The ray table with consecutive steps on the same pixel merged into one run (half-pixel steps
// visit most pixels two or three times): each run is loaded and compared once. Steps stay the
// unit of distance; a run covers steps first_step[r] .. last_step[r]. Offsets are linear, into
// an image `width` wide (DAB) and into the half-resolution labels (`half_width` wide) for each
// parity of the seed's (x, y): floor((2 * hx + px + ox) / 2) = hx + ((px + ox) >> 1).
struct RayRuns {
  std::vector<int> begin;        // rays + 1: ray a's runs are begin[a] .. begin[a + 1] - 1
  std::vector<int> first_step, last_step, dab_offset;
  std::vector<cv::Point> offset;
  std::array<std::vector<int>, 4> label_offset;
  std::vector<int> run_of_step;  // rays * steps: the run (counted from the ray's first) of each step
  RayRuns(const RayTable& t, int width, int half_width) {
    run_of_step.resize(t.offsets.size());
    for (int a = 0; a < t.rays; ++a) {
      begin.push_back(static_cast<int>(first_step.size()));
      for (int st = 0; st < t.steps; ++st) {
        const cv::Point o = t.offsets[static_cast<std::size_t>(a * t.steps + st)];
        if (st == 0 || o != offset.back()) {
          first_step.push_back(st);
          last_step.push_back(st);
          offset.push_back(o);
          dab_offset.push_back(o.y * width + o.x);
          for (int parity = 0; parity < 4; ++parity)
            label_offset[static_cast<std::size_t>(parity)].push_back(((parity / 2 + o.y) >> 1) * half_width +
                                                                      ((parity % 2 + o.x) >> 1));
        } else {
          last_step.back() = st;
        }
        run_of_step[static_cast<std::size_t>(a * t.steps + st)] = static_cast<int>(first_step.size()) - 1 - begin.back();
      }
    }
    begin.push_back(static_cast<int>(first_step.size()));
  }
};

// The membrane of every cell of a tile, one cell at a time (membrane.cpp).
class MembraneTracer {
 public:
  // `h_half`, `half_labels`: half resolution; `dab_fine`: the smoothed DAB at full resolution;
  // `nucleus_r`, `max_r`: full pixels; `valid`: the part of the image with real pixels.
  MembraneTracer(const cv::Mat& h_half, const cv::Mat& dab_fine, const cv::Mat& half_labels, double mpp,
                 double nucleus_r, double max_r, const cv::Rect& valid, const CellParams& p);
  // Cell `own` from its full-resolution seed `s`: completeness, intensity_od, membrane_peak_od,
  // lateral, cell_class, cytoplasm_mean_od, pigment, pigment_rays and (keep_outlines) outline.
  // Returns how many rays could see the membrane (the rest left the valid region first).
  int trace(const Seed& s, int own, Cell& cell);

 private:
  const CellParams& p_;
  const cv::Mat& h_half_;
  const cv::Mat& dab_fine_;
  const cv::Mat& half_labels_;
  GranuleTest granules_;
  int w_, h_, hw_, hh_;
  int vx0_, vy0_, vx1_, vy1_;
  int ridge_steps_;
  int beyond_steps_;  // steps searched past the outline (a half-resolution pixel is coarser on coarser pixels)
  RayTable rays_;
  int first_step_ = 0;
  RayRuns runs_;
  std::vector<float> run_value_, run_weight_;
  int reach_ = 1;
  std::vector<float> stained_peaks_, ray_peak_, ray_height_, ray_cytoplasm_, h_per_dab_;
  std::vector<std::uint8_t> in_arc_;
  int cytoplasm_gap_steps_;
  float step_um_, membrane_ref_um_, max_width_um_, min_peak_od_, pigment_h_ratio_;
  int min_arc_rays_;
};

}  // namespace ihc::scoring::detail
