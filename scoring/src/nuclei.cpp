// Nuclei (cell_stages.hpp): seeds at the haematoxylin maxima, each nucleus's area and shape, and
// the haematoxylin the nuclei leak into DAB.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

#include <opencv2/imgproc.hpp>

#include "cell_stages.hpp"
#include "ihc/scoring/stains.hpp"

namespace ihc::scoring::detail {

cv::Mat half_size(const cv::Mat& src) {
  cv::Mat out(std::max(1, src.rows / 2), std::max(1, src.cols / 2), CV_32F);
  if (src.rows < 2 || src.cols < 2) {
    out.setTo(src.at<float>(0, 0));
    return out;
  }
  for (int y = 0; y < out.rows; ++y) {
    const float* a = src.ptr<float>(2 * y);
    const float* b = src.ptr<float>(2 * y + 1);
    float* o = out.ptr<float>(y);
    for (int x = 0; x < out.cols; ++x) o[x] = 0.25f * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]);
  }
  return out;
}

std::vector<Seed> find_nucleus_seeds(const cv::Mat& h_nucleus, double radius_px, const CellParams& p) {
  const int peak_r = std::max(1, static_cast<int>(std::ceil(radius_px * 0.75 - 0.25)));
  const int ring_r = std::max(2, static_cast<int>(std::lround(radius_px * 2.0)));
  cv::Mat local_max, local_min;
  cv::dilate(h_nucleus, local_max,
             cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * peak_r + 1, 2 * peak_r + 1)));
  cv::erode(h_nucleus, local_min,
            cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * ring_r + 1, 2 * ring_r + 1)));
  // The floors follow the counterstain: where the tile's nuclei are faint (the 90th percentile of
  // the contrast of the maxima that pass the floors at min_floor_scale of themselves is under
  // counterstain_ref_contrast_od), both fall in proportion, to no less than that share.
  const double lowest = p.counterstain_ref_contrast_od > 0 ? std::clamp(p.min_floor_scale, 0.0, 1.0) : 1.0;
  const auto lo_od = static_cast<float>(p.nucleus_min_od * lowest);
  const auto lo_contrast = static_cast<float>(p.nucleus_min_contrast_od * lowest);
  std::vector<Seed> seeds;
  std::vector<float> contrast;
  for (int y = 0; y < h_nucleus.rows; ++y) {
    const float* v = h_nucleus.ptr<float>(y);
    const float* mx = local_max.ptr<float>(y);
    const float* mn = local_min.ptr<float>(y);
    for (int x = 0; x < h_nucleus.cols; ++x) {
      if (v[x] < mx[x] || v[x] < lo_od || v[x] - mn[x] < lo_contrast) continue;
      // Plateaus give several equal maxima: keep the first within peak_r.
      bool duplicate = false;
      for (auto it = seeds.rbegin(); it != seeds.rend() && it->y >= y - peak_r; ++it) {
        if (std::abs(it->x - x) <= peak_r && it->strength == v[x]) {
          duplicate = true;
          break;
        }
      }
      if (!duplicate) {
        seeds.push_back({x, y, v[x]});
        contrast.push_back(v[x] - mn[x]);
      }
    }
  }
  double scale = 1.0;
  if (lowest < 1.0 && contrast.size() >= 20) {
    std::vector<float> sorted = contrast;
    const auto k = sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() * 9 / 10);
    std::nth_element(sorted.begin(), k, sorted.end());
    scale = std::clamp(*k / p.counterstain_ref_contrast_od, lowest, 1.0);
  }
  const auto min_od = static_cast<float>(p.nucleus_min_od * scale);
  const auto min_contrast = static_cast<float>(p.nucleus_min_contrast_od * scale);
  std::size_t kept = 0;
  for (std::size_t k = 0; k < seeds.size(); ++k)
    if (seeds[k].strength >= min_od && contrast[k] >= min_contrast) seeds[kept++] = seeds[k];
  seeds.resize(kept);
  return seeds;
}

double nuclear_dab_leak(const std::vector<Seed>& seeds, const cv::Mat& h_nucleus, const cv::Mat& dab_half,
                        double radius_px, double sigma, int taps) {
  cv::Mat dab_nucleus;
  cv::GaussianBlur(dab_half, dab_nucleus, cv::Size(taps, taps), sigma);
  std::array<cv::Point, 8> around;
  for (int k = 0; k < 8; ++k)
    around[static_cast<std::size_t>(k)] = {static_cast<int>(std::lround(2 * radius_px * std::cos(k * std::numbers::pi / 4))),
                                           static_cast<int>(std::lround(2 * radius_px * std::sin(k * std::numbers::pi / 4)))};
  std::vector<float> h_excess, dab_excess;
  for (const Seed& s : seeds) {
    float h_ring = 0, dab_ring = 0;
    int n = 0;
    for (const cv::Point& o : around) {
      const int x = s.x + o.x, y = s.y + o.y;
      if (x < 0 || y < 0 || x >= h_nucleus.cols || y >= h_nucleus.rows) continue;
      h_ring += h_nucleus.at<float>(y, x);
      dab_ring += dab_nucleus.at<float>(y, x);
      ++n;
    }
    if (n < 6) continue;  // most of the ring outside the tile
    h_excess.push_back(h_nucleus.at<float>(s.y, s.x) - h_ring / static_cast<float>(n));
    dab_excess.push_back(dab_nucleus.at<float>(s.y, s.x) - dab_ring / static_cast<float>(n));
  }
  return hematoxylin_in_dab(h_excess, dab_excess);
}

void measure_nucleus(const cv::Mat& h_half, const cv::Mat& half_labels, const Seed& hs, int own, double nucleus_r,
                     double px_area_um2, const CellParams& p, Cell& cell) {
  const int hh = half_labels.rows, hw = half_labels.cols;
  // Nucleus: pixels of this cell near the seed above half the seed's haematoxylin, measured
  // at half resolution where the seed was found (a half pixel is four full ones). Branch-free
  // integer sums: this loop runs over every cell.
  const float h_cut = std::max(static_cast<float>(p.nucleus_min_od) * 0.5f, 0.5f * hs.strength);
  const int nr = static_cast<int>(std::ceil(nucleus_r * 0.5 * 1.6));
  int nucleus_px = 0;
  std::int64_t mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;  // moments, for the nucleus shape
  for (int y = std::max(0, hs.y - nr); y <= std::min(hh - 1, hs.y + nr); ++y) {
    const int* lr = half_labels.ptr<int>(y);
    const float* hr = h_half.ptr<float>(y);
    const int dy = y - hs.y;
    int n_row = 0, sx = 0, sxx = 0;
    for (int x = std::max(0, hs.x - nr); x <= std::min(hw - 1, hs.x + nr); ++x) {
      const int in = static_cast<int>(lr[x] == own) & static_cast<int>(hr[x] >= h_cut);
      const int dx = x - hs.x;
      n_row += in;
      sx += in * dx;
      sxx += in * dx * dx;
    }
    nucleus_px += n_row;
    mx += sx;
    my += static_cast<std::int64_t>(n_row) * dy;
    mxx += sxx;
    myy += static_cast<std::int64_t>(n_row) * dy * dy;
    mxy += static_cast<std::int64_t>(sx) * dy;
  }
  nucleus_px *= 4;
  cell.nucleus_area_um2 = static_cast<float>(nucleus_px * px_area_um2);
  if (nucleus_px >= 12) {  // three half-resolution pixels
    // Elongation = ratio of the principal axes of the nucleus (1 for a disc).
    const double n = nucleus_px / 4.0, cx = static_cast<double>(mx) / n, cy = static_cast<double>(my) / n;
    const double vxx = static_cast<double>(mxx) / n - cx * cx, vyy = static_cast<double>(myy) / n - cy * cy,
                 vxy = static_cast<double>(mxy) / n - cx * cy;
    const double tr = vxx + vyy, det = vxx * vyy - vxy * vxy;
    const double disc = std::sqrt(std::max(0.0, tr * tr / 4 - det));
    const double l1 = tr / 2 + disc, l2 = std::max(1e-6, tr / 2 - disc);
    cell.nucleus_elongation = static_cast<float>(std::sqrt(l1 / l2));
  }
}

}  // namespace ihc::scoring::detail
