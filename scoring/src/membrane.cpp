// The membrane along rays from each nucleus (cell_stages.hpp, cells.hpp steps 3-4): the DAB
// ridge on each ray measured as mass, the cytoplasm sample, pigment granules set aside, then the
// stained arcs, completeness, intensity, lateral staining and the cell's class.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "cell_stages.hpp"

namespace ihc::scoring {
namespace {

float median_of(std::vector<float>& v) {
  if (v.empty()) return 0.0f;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace

CellClass classify_membrane(double completeness, double intensity_od, const CellParams& p, bool lateral) {
  if (completeness >= p.complete_fraction || (lateral && p.lateral_counts_complete)) {
    if (intensity_od >= p.intense_od) return CellClass::ThreePlus;
    if (intensity_od >= p.moderate_od) return CellClass::TwoPlus;
    return CellClass::OnePlus;  // complete but only barely perceptible
  }
  if (completeness >= p.partial_min_fraction) {
    if (intensity_od >= p.intense_od && completeness >= p.intense_incomplete_fraction)
      return CellClass::TwoPlus;  // intense but incomplete (basolateral)
    return CellClass::OnePlus;
  }
  return CellClass::Negative;
}

bool is_lateral(const std::vector<std::uint8_t>& stained, int rays) {
  if (rays < 4) return false;
  // Basolateral (U): one unbroken arc of at least half the circle.
  int longest = 0, run = 0;
  for (int i = 0; i < 2 * rays; ++i) {
    run = stained[static_cast<std::size_t>(i % rays)] ? run + 1 : 0;
    longest = std::max(longest, std::min(run, rays));
  }
  if (longest * 2 >= rays) return true;
  // Lateral: two opposite quarter-circles, each at least half stained.
  const int quarter = rays / 4, half = rays / 2;
  for (int a = 0; a < half; ++a) {
    int near_side = 0, far_side = 0;
    for (int d = -quarter / 2; d < quarter - quarter / 2; ++d) {
      near_side += stained[static_cast<std::size_t>((a + d + rays) % rays)];
      far_side += stained[static_cast<std::size_t>((a + half + d + rays) % rays)];
    }
    if (2 * near_side >= quarter && 2 * far_side >= quarter) return true;
  }
  return false;
}

namespace detail {

MembraneTracer::MembraneTracer(const cv::Mat& h_half, const cv::Mat& dab_fine, const cv::Mat& half_labels, double mpp,
                               double nucleus_r, double max_r, const cv::Rect& valid_region, const CellParams& p)
    : p_(p),
      h_half_(h_half),
      dab_fine_(dab_fine),
      half_labels_(half_labels),
      granules_(dab_fine.cols, mpp, p),
      w_(dab_fine.cols),
      h_(dab_fine.rows),
      hw_(half_labels.cols),
      hh_(half_labels.rows),
      ridge_steps_(std::max(1, static_cast<int>(std::lround(p.ridge_um / mpp / 0.5)))),
      beyond_steps_(static_cast<int>(std::lround(3.0 * std::max(1.0, mpp / 0.5)))),
      rays_(p.rays, max_r + 2.0 + p.ridge_um / mpp, 0.5),
      runs_(rays_, w_, hw_) {
  const cv::Rect valid =
      valid_region.area() > 0 ? (valid_region & cv::Rect(0, 0, w_, h_)) : cv::Rect(0, 0, w_, h_);
  vx0_ = valid.x;
  vy0_ = valid.y;
  vx1_ = valid.x + valid.width;
  vy1_ = valid.y + valid.height;
  while (first_step_ < rays_.steps && rays_.radius[static_cast<std::size_t>(first_step_)] < nucleus_r * 0.8) ++first_step_;
  run_value_.resize(static_cast<std::size_t>(rays_.steps));
  // Steps of each run from first_step on: a run's weight in a ray's mean over steps.
  run_weight_.resize(runs_.first_step.size());
  for (std::size_t r = 0; r < run_weight_.size(); ++r)
    run_weight_[r] =
        static_cast<float>(std::max(0, runs_.last_step[r] - std::max(runs_.first_step[r], first_step_) + 1));
  // How far (pixels, either axis) a ray reaches: a cell within that of the valid region's edges
  // sees all of its rays there, and the half-resolution label of any ray pixel is inside the
  // label image (x / 2 < w / 2 for x <= w - 2: reach is at least 1).
  for (const cv::Point& o : rays_.offsets) reach_ = std::max({reach_, std::abs(o.x), std::abs(o.y)});
  ++reach_;
  const auto n_rays = static_cast<std::size_t>(std::max(1, p.rays));
  ray_peak_.resize(n_rays);
  ray_height_.resize(n_rays);     // raw peak per direction
  in_arc_.resize(n_rays);         // ray in a kept stained arc
  ray_cytoplasm_.resize(n_rays);
  // The membrane's blur reaches further on coarser pixels: the gap grows by two pixels beyond
  // 0.5 um/px, so cytoplasm is sampled clear of it at any scan resolution.
  const double cytoplasm_gap_um = p.cytoplasm_gap_um + 2.0 * std::max(0.0, mpp - 0.5);
  cytoplasm_gap_steps_ = static_cast<int>(std::lround(cytoplasm_gap_um / mpp / 0.5));
  step_um_ = static_cast<float>(0.5 * mpp);  // ray steps are half a pixel
  membrane_ref_um_ = static_cast<float>(p.membrane_ref_um);
  max_width_um_ = static_cast<float>(p.max_membrane_width_um + 2.0 * mpp);
  // A line narrower than a pixel shows a peak that falls as the pixel grows: the floor is set
  // at 0.5 um/px and follows the pixel size beyond it.
  min_peak_od_ = static_cast<float>(p.min_membrane_peak_od * std::min(1.0, 0.5 / mpp));
  // Pigment is brown-black: its peak carries haematoxylin (at least pigment_h_ratio x its DAB);
  // a DAB membrane's peak mostly does not, and is then not tested further.
  pigment_h_ratio_ = static_cast<float>(p.pigment_h_ratio);
  min_arc_rays_ = std::max(1, static_cast<int>(std::ceil(p.min_arc_degrees / (360.0 / std::max(1, p.rays)) - 1e-9)));
}

int MembraneTracer::trace(const Seed& s, int own, Cell& cell) {
  // The tile's tables as locals: the ray loop below keeps them in registers.
  const CellParams& p = p_;
  const int w = w_, h = h_, hw = hw_, hh = hh_;
  const int vx0 = vx0_, vy0 = vy0_, vx1 = vx1_, vy1 = vy1_;
  const int ridge_steps = ridge_steps_, first_step = first_step_, reach = reach_, beyond = beyond_steps_;
  const int cytoplasm_gap_steps = cytoplasm_gap_steps_, min_arc_rays = min_arc_rays_;
  const float step_um = step_um_, membrane_ref_um = membrane_ref_um_, max_width_um = max_width_um_;
  const float min_peak_od = min_peak_od_, pigment_h_ratio = pigment_h_ratio_;
  const auto nuclear_h_ratio = static_cast<float>(p.nuclear_ridge_h_ratio);
  const auto h_excess_ratio = static_cast<float>(p.ridge_h_excess_ratio);
  const RayTable& rays = rays_;
  const RayRuns& runs = runs_;
  std::vector<float>& run_value = run_value_;
  const std::vector<float>& run_weight = run_weight_;
  std::vector<float>& stained_peaks = stained_peaks_;
  std::vector<float>& h_per_dab = h_per_dab_;
  std::vector<float>& ray_peak = ray_peak_;
  std::vector<float>& ray_height = ray_height_;
  std::vector<float>& ray_cytoplasm = ray_cytoplasm_;
  std::vector<std::uint8_t>& in_arc = in_arc_;
  const int* half_label_data = half_labels_.ptr<int>(0);
  const float* dab_data = dab_fine_.ptr<float>(0);
  const float* h_half_data = h_half_.ptr<float>(0);
  const int pigment_margin = granules_.margin();
  const GranuleTest& granules = granules_;
  const auto is_granule = [&granules](const float* at) { return granules.is_granule(at); };
  // Haematoxylin (half resolution) under a point of the tile; the last full-resolution row or
  // column of an odd-sized tile falls on the last half-resolution one.
  const auto h_half_at = [&](int x, int y) {
    return h_half_data[static_cast<std::ptrdiff_t>(std::min(y >> 1, hh - 1)) * hw + std::min(x >> 1, hw - 1)];
  };
  const auto label_at = [&](int x, int y) {
    return half_label_data[static_cast<std::size_t>(std::min(y >> 1, hh - 1)) * static_cast<std::size_t>(hw) +
                           static_cast<std::size_t>(std::min(x >> 1, hw - 1))];
  };

  // Membrane along rays. The membrane is the DAB peak between the nucleus and just past the
  // outline (the half-resolution boundary is good to one of its pixels, so 1.5 px further);
  // where a membrane has a gap the region leaks past it, so the whole ray is searched, not
  // only the outline. A membrane is a ridge: the peak must stand above the lowest DAB on
  // both sides of it, towards the nucleus and within ridge_um beyond it. Diffuse cytoplasmic
  // DAB and the edge of a stained nucleus are steps or plateaus, not ridges.
  stained_peaks.clear();
  h_per_dab.clear();
  if (p.keep_outlines) cell.outline.reserve(static_cast<std::size_t>(p.rays));
  // Rays that leave the valid region (the image or slide ends) before reaching the membrane
  // say nothing about it: completeness is the stained share of the rays that could see.
  const bool inside = s.x - reach >= vx0 && s.y - reach >= vy0 && s.x + reach < vx1 && s.y + reach < vy1;
  int valid_rays = 0, cytoplasm_rays = 0;
  const int parity = (s.y & 1) * 2 + (s.x & 1);
  const int* own_labels = half_label_data + static_cast<std::ptrdiff_t>(s.y >> 1) * hw + (s.x >> 1);
  const float* own_dab = dab_data + static_cast<std::ptrdiff_t>(s.y) * w + s.x;
  for (int a = 0; a < p.rays; ++a) {
    const std::size_t ray_begin = static_cast<std::size_t>(a) * static_cast<std::size_t>(rays.steps);
    const cv::Point* off = &rays.offsets[ray_begin];
    // This ray's runs of steps on one pixel (RayRuns); r counts runs from the ray's first.
    const int r0 = runs.begin[static_cast<std::size_t>(a)];
    const int n_runs = runs.begin[static_cast<std::size_t>(a) + 1] - r0;
    const int* run_first = &runs.first_step[static_cast<std::size_t>(r0)];
    const int* run_last = &runs.last_step[static_cast<std::size_t>(r0)];
    const int* run_of = &runs.run_of_step[ray_begin];
    const int first_run = first_step < rays.steps ? run_of[first_step] : n_runs;
    // Samples run to ridge_steps past 3 steps beyond the outline (k_end: the first step
    // outside this cell), or to the ray's end: steps 0 .. n - 1. Runs that lie wholly inside
    // the nucleus (before first_step) are never looked at, so never loaded.
    int n = 0, k_end = -1;
    bool cut = false;
    if (inside) {
      const int* lo = &runs.label_offset[static_cast<std::size_t>(parity)][static_cast<std::size_t>(r0)];
      const int* dof = &runs.dab_offset[static_cast<std::size_t>(r0)];
      int r = 0;
      while (r < n_runs && own_labels[lo[r]] == own) ++r;
      k_end = r < n_runs ? run_first[r] : -1;
      n = k_end < 0 ? rays.steps : std::min(rays.steps, k_end + beyond + 1 + ridge_steps);
      const int end_run = run_of[n - 1] + 1;
      for (r = first_run; r < end_run; ++r) run_value[static_cast<std::size_t>(r)] = own_dab[dof[r]];
    } else {
      for (int r = 0; r < n_runs; ++r) {
        const cv::Point o = runs.offset[static_cast<std::size_t>(r0 + r)];
        const int x = s.x + o.x, y = s.y + o.y;
        if (x < vx0 || y < vy0 || x >= vx1 || y >= vy1) {
          cut = k_end < 0 || run_first[r] <= k_end + beyond;
          break;
        }
        if (run_last[r] >= first_step)
          run_value[static_cast<std::size_t>(r)] =
              dab_data[static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)];
        n = run_last[r] + 1;
        if (k_end < 0 && label_at(x, y) != own) k_end = run_first[r];
        if (k_end >= 0 && run_last[r] >= k_end + beyond + ridge_steps) {
          n = k_end + beyond + 1 + ridge_steps;
          break;
        }
      }
    }
    const int search_end = std::min(n - 1, k_end < 0 ? n - 1 : k_end + beyond);
    const int last_run = search_end >= first_step ? run_of[search_end] : -1;
    // The peak (first maximum) among runs from_run .. last_run and, in the same pass, the
    // lowest DAB between from_run and it: branch-free, as where the peak lies is unpredictable.
    float peak = 0.0f, inner = 0.0f;
    int r_peak = -1, peak_from_run = first_run;
    const auto find_peak = [&](int from_run) {
      peak_from_run = from_run;
      float lowest = std::numeric_limits<float>::max();
      peak = 0.0f;
      inner = 0.0f;
      r_peak = -1;
      // Selects by mask: written as ?: gcc branches on `higher`, which mispredicts.
      for (int r = from_run; r <= last_run; ++r) {
        const float v = run_value[static_cast<std::size_t>(r)];
        const std::uint32_t higher = 0u - static_cast<std::uint32_t>(v > peak);
        inner = std::bit_cast<float>((std::bit_cast<std::uint32_t>(std::min(lowest, v)) & higher) |
                                     (std::bit_cast<std::uint32_t>(inner) & ~higher));
        r_peak = static_cast<int>((static_cast<std::uint32_t>(r) & higher) | (static_cast<std::uint32_t>(r_peak) & ~higher));
        peak = std::max(peak, v);
        lowest = std::min(lowest, v);
      }
      return r_peak < 0 ? -1 : std::max(run_first[r_peak], first_step);
    };
    // A membrane is a ridge: it stands above the lowest DAB on both sides (inner: found with
    // the peak; outer: within ridge_um beyond it), the higher of which is its base. What it
    // carries is measured as DAB mass, not peak height: the sum of DAB above the base over the
    // part of the ridge above half its height, in OD x um (membrane_od sets it back in OD
    // units as base + mass / membrane_ref_um). Blur and coarser pixels lower and widen a
    // membrane's profile but keep its mass, so the measure does not depend on the scan.
    float membrane_od = 0.0f;
    float ridge_base = 0.0f;  // the last ridge judged: its base, and the run of its outer side's lowest DAB
    int outer_run = -1;       // (-1: the image ends beyond it)
    const auto is_ridge = [&](int at) {
      if (at < 0) return false;
      float outer = peak;
      outer_run = -1;
      const int outer_end = std::min(n - 1, at + ridge_steps);
      if (at + 1 <= outer_end)
        for (int r = run_of[at + 1]; r <= run_of[outer_end]; ++r)
          if (run_value[static_cast<std::size_t>(r)] < outer) {
            outer = run_value[static_cast<std::size_t>(r)];
            outer_run = r;
          }
      if (at + 1 > n - 1) outer = inner;  // the image ends: judge by the inner side alone
      // No stain is present in a negative amount: a side below zero is the unmixing's error where
      // the slide's vectors differ from ours (the counterstain round a pale halo, read as negative
      // DAB), and measured from there a pale halo between nuclei stood as a faint membrane.
      const float base = std::max({inner, outer, 0.0f});
      ridge_base = base;
      if (peak - base < min_peak_od) return false;  // grain: no need to measure it
      const float half = base + 0.5f * (peak - base);
      const int rp = run_of[at], r_lo = first_run, r_hi = run_of[n - 1];
      const float* weight = &run_weight[static_cast<std::size_t>(r0)];
      float mass_steps = 0.0f, width_steps = 0.0f;
      for (int r = rp; r >= r_lo && run_value[static_cast<std::size_t>(r)] >= half; --r) {
        mass_steps += (run_value[static_cast<std::size_t>(r)] - base) * weight[r];
        width_steps += weight[r];
      }
      for (int r = rp + 1; r <= r_hi && run_value[static_cast<std::size_t>(r)] >= half; ++r) {
        mass_steps += (run_value[static_cast<std::size_t>(r)] - base) * weight[r];
        width_steps += weight[r];
      }
      const float excess = mass_steps * step_um / membrane_ref_um;
      membrane_od = base + excess;
      return membrane_od >= p.faint_od && excess >= p.min_membrane_contrast_od && width_steps * step_um <= max_width_um;
    };
    int s_peak = find_peak(first_run);
    // Cytoplasm on this ray (artefacts.hpp): mean DAB over the steps from the nucleus to
    // cytoplasm_gap_um inside the peak; none when the membrane is too close to the nucleus to
    // leave a sample. Two sums, so that the additions do not wait on each other.
    const int cytoplasm_last = s_peak - cytoplasm_gap_steps;
    if (s_peak >= 0 && cytoplasm_last >= first_step) {
      const int rc = run_of[cytoplasm_last];
      const float* weight = &run_weight[static_cast<std::size_t>(r0)];
      float sum0 = run_value[static_cast<std::size_t>(rc)] *
                   static_cast<float>(cytoplasm_last - std::max(run_first[rc], first_step) + 1);
      float sum1 = 0.0f;
      int r = first_run;
      for (; r + 1 < rc; r += 2) {
        sum0 += run_value[static_cast<std::size_t>(r)] * weight[r];
        sum1 += run_value[static_cast<std::size_t>(r) + 1] * weight[r + 1];
      }
      if (r < rc) sum0 += run_value[static_cast<std::size_t>(r)] * weight[r];
      ray_cytoplasm[static_cast<std::size_t>(cytoplasm_rays++)] =
          (sum0 + sum1) / static_cast<float>(cytoplasm_last - first_step + 1);
    }
    bool stained = is_ridge(s_peak);
    // A ridge on a nucleus (nuclear_ridge_h_ratio) is not membrane. Every sampled step lies in
    // the valid region, so inside the tile.
    if (stained && nuclear_h_ratio > 0 &&
        h_half_at(s.x + off[s_peak].x, s.y + off[s_peak].y) >= nuclear_h_ratio * peak)
      stained = false;
    // Pigment (artefacts.hpp): a peak that is an isolated granule is not membrane; the
    // membrane, if any, is sought again beyond it (twice at most). A direction that ends with
    // no membrane after a granule counts as a pigment direction.
    bool granule_seen = false;
    for (int retry = 0; stained && p.pigment_ring_um > 0 && retry < 3; ++retry) {
      const int px = s.x + off[s_peak].x, py = s.y + off[s_peak].y;
      if (px < pigment_margin || py < pigment_margin || px + pigment_margin >= w || py + pigment_margin >= h ||
          h_half_at(px, py) < pigment_h_ratio * peak ||
          !is_granule(dab_data + static_cast<std::ptrdiff_t>(py) * w + px))
        break;
      granule_seen = true;
      stained = false;
      // Down the granule's outer flank to the valley, then the highest point beyond it.
      int valley = run_of[s_peak];
      while (valley < last_run && run_value[static_cast<std::size_t>(valley) + 1] <= run_value[static_cast<std::size_t>(valley)])
        ++valley;
      if (retry == 2 || valley >= last_run) break;
      s_peak = find_peak(valley);
      stained = is_ridge(s_peak);
    }
    if (granule_seen && !stained) ++cell.pigment_rays;
    // How much haematoxylin the ridge carries with its DAB (CellParams::ridge_h_excess_ratio): the
    // haematoxylin at the peak over the higher of the two sides' (where the DAB is lowest on each),
    // per unit of DAB over the ridge's base. Judged per cell, below.
    if (stained && h_excess_ratio > 0 && outer_run >= 0) {
      // The inner side's lowest DAB: find_peak kept its value (inner), not where it lies.
      const int rp = run_of[s_peak];
      int inner_run = peak_from_run;
      for (int r = peak_from_run + 1; r < rp; ++r)
        if (run_value[static_cast<std::size_t>(r)] < run_value[static_cast<std::size_t>(inner_run)]) inner_run = r;
      const auto h_at_run = [&](int r) {
        const cv::Point o = off[std::max(run_first[r], first_step)];
        return h_half_at(s.x + o.x, s.y + o.y);
      };
      const float h_excess =
          h_half_at(s.x + off[s_peak].x, s.y + off[s_peak].y) - std::max(h_at_run(inner_run), h_at_run(outer_run));
      if (inner_run < rp && peak > ridge_base) h_per_dab.push_back(h_excess / (peak - ridge_base));
    }
    ray_peak[static_cast<std::size_t>(a)] = stained ? membrane_od : -1.0f;
    ray_height[static_cast<std::size_t>(a)] = peak;
    if (!cut) ++valid_rays;
    if (p.keep_outlines) {
      const int at = s_peak >= 0 ? s_peak : std::clamp(k_end, 0, std::max(0, n - 1));
      cell.outline.emplace_back(static_cast<float>(s.x + off[at].x), static_cast<float>(s.y + off[at].y));
    }
  }
  if (cytoplasm_rays * 4 >= p.rays) {
    const auto mid = ray_cytoplasm.begin() + cytoplasm_rays / 2;
    std::nth_element(ray_cytoplasm.begin(), mid, ray_cytoplasm.begin() + cytoplasm_rays);
    cell.cytoplasm_mean_od = *mid;
  }
  // A cell whose ridges carry haematoxylin with their DAB (median over them) is bounded by nuclei
  // or a neutral absorber, not membranes: none of its directions counts as stained, and it is
  // not counted (cells.cpp).
  if (h_excess_ratio > 0 && !h_per_dab.empty() && median_of(h_per_dab) >= h_excess_ratio) {
    std::fill(ray_peak.begin(), ray_peak.begin() + p.rays, -1.0f);
    cell.hematoxylin_ridges = true;
  }
  // Membrane staining is continuous: stained directions count only in arcs of at least
  // min_arc_degrees; isolated ones are noise (JPEG blocks, grain, stain bleed).
  const int n_rays = p.rays;
  const auto stained_at = [&](int a) { return ray_peak[static_cast<std::size_t>(a % n_rays)] >= 0; };
  const auto unstained = std::find_if(ray_peak.begin(), ray_peak.begin() + n_rays, [](float v) { return v < 0; });
  std::fill(in_arc.begin(), in_arc.end(), std::uint8_t{0});
  if (unstained == ray_peak.begin() + n_rays) {
    if (n_rays >= min_arc_rays) {
      stained_peaks.assign(ray_peak.begin(), ray_peak.begin() + n_rays);
      std::fill(in_arc.begin(), in_arc.end(), std::uint8_t{1});
    }
  } else {
    // Walk once round the circle from an unstained ray; keep each run of stained rays that is
    // long enough.
    const int start = static_cast<int>(unstained - ray_peak.begin());
    int run_start = -1;
    for (int i = 1; i <= n_rays; ++i) {
      const int a = start + i;
      if (stained_at(a)) {
        if (run_start < 0) run_start = a;
        continue;
      }
      if (run_start >= 0 && a - run_start >= min_arc_rays)
        for (int r = run_start; r < a; ++r) {
          stained_peaks.push_back(ray_peak[static_cast<std::size_t>(r % n_rays)]);
          in_arc[static_cast<std::size_t>(r % n_rays)] = 1;
        }
      run_start = -1;
    }
  }
  cell.completeness =
      std::min(1.0f, static_cast<float>(stained_peaks.size()) / static_cast<float>(std::max(1, valid_rays)));
  cell.intensity_od = median_of(stained_peaks);
  stained_peaks.clear();
  for (int a = 0; a < n_rays; ++a)
    if (in_arc[static_cast<std::size_t>(a)]) stained_peaks.push_back(ray_height[static_cast<std::size_t>(a)]);
  cell.membrane_peak_od = median_of(stained_peaks);
  cell.lateral = cell.completeness < p.complete_fraction && is_lateral(in_arc, n_rays);
  cell.cell_class = classify_membrane(cell.completeness, cell.intensity_od, p, cell.lateral);
  // Pigment (artefacts.hpp): granules strung along an outline leave "stained" directions
  // between them (the granules' blurred tails). When granules make up pigment_cell_fraction of
  // the directions that looked stained, the outline is pigment-laden and the cell is scored 0.
  if (cell.cell_class != CellClass::Negative && cell.pigment_rays >= p.pigment_min_rays) {
    const auto stained_rays = std::count_if(ray_peak.begin(), ray_peak.begin() + n_rays, [](float v) { return v >= 0; });
    if (cell.pigment_rays >= p.pigment_cell_fraction * static_cast<double>(cell.pigment_rays + stained_rays)) {
      cell.pigment = true;
      cell.cell_class = CellClass::Negative;
    }
  }
  return valid_rays;
}

}  // namespace detail
}  // namespace ihc::scoring
