#include "ihc/scoring/stain_check.hpp"

#include <algorithm>
#include <cmath>

namespace ihc::scoring {
namespace {
// Calls f(pixel) for each pixel of `rgb` whose `tissue` mask value is non-zero; returns how many.
template <typename F>
std::int64_t for_each_tissue_pixel(const cv::Mat& rgb, const cv::Mat& tissue, F&& f) {
  CV_Assert(rgb.type() == CV_8UC3 && tissue.type() == CV_8UC1 && rgb.size() == tissue.size());
  std::int64_t n = 0;
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<cv::Vec3b>(y);
    const auto* m = tissue.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x)
      if (m[x]) {
        ++n;
        f(p[x]);
      }
  }
  return n;
}
}  // namespace

double eosin_fraction(const cv::Mat& rgb, const cv::Mat& tissue, const StainVectors& stains,
                      const StainCheckParams& params) {
  CV_Assert(rgb.type() == CV_8UC3 && tissue.type() == CV_8UC1 && rgb.size() == tissue.size());
  const Rgb3& e = params.eosin;
  const double norm = std::sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
  CV_Assert(norm > 0);
  // Rows of the mixing matrix are the unit stain vectors; concentrations = OD * inverse.
  const cv::Matx33d mix(stains.hematoxylin[0], stains.hematoxylin[1], stains.hematoxylin[2], stains.dab[0],
                        stains.dab[1], stains.dab[2], e[0] / norm, e[1] / norm, e[2] / norm);
  bool ok = false;
  const cv::Matx33d unmix = mix.inv(cv::DECOMP_LU, &ok);
  if (!ok) return 0.0;  // eosin parallel to a stain vector: cannot be told apart
  const std::array<float, 256> od = optical_density_table(stains.i0);
  std::int64_t n_eosin = 0;
  const std::int64_t n_tissue = for_each_tissue_pixel(rgb, tissue, [&](const cv::Vec3b& px) {
    const double r = od[px[0]], g = od[px[1]], b = od[px[2]];
    n_eosin += r * unmix(0, 2) + g * unmix(1, 2) + b * unmix(2, 2) >= params.eosin_min_od ? 1 : 0;
  });
  return n_tissue > 0 ? static_cast<double>(n_eosin) / static_cast<double>(n_tissue) : 0.0;
}

ColourMeasures colour_measures(const cv::Mat& rgb, const cv::Mat& tissue, const StainVectors& stains,
                               const StainCheckParams& params) {
  const std::array<float, 256> od = optical_density_table(stains.i0);
  const Rgb3& res = stains.residual;  // unit normal of the haematoxylin-DAB plane
  std::int64_t n_colour = 0, n_dense = 0, n_off = 0;
  const std::int64_t n_tissue = for_each_tissue_pixel(rgb, tissue, [&](const cv::Vec3b& px) {
    const int hi = std::max({px[0], px[1], px[2]}), lo = std::min({px[0], px[1], px[2]});
    if (hi - lo < params.min_chroma) return;
    ++n_colour;
    const double r = od[px[0]], g = od[px[1]], b = od[px[2]];
    const double norm = std::sqrt(r * r + g * g + b * b);
    if (norm < params.off_stain_min_od) return;
    ++n_dense;
    n_off += std::abs(r * res[0] + g * res[1] + b * res[2]) > params.off_stain_ratio * norm ? 1 : 0;
  });
  ColourMeasures out;
  if (n_tissue > 0) out.colour_fraction = static_cast<double>(n_colour) / static_cast<double>(n_tissue);
  if (n_dense > 0) out.off_stain_fraction = static_cast<double>(n_off) / static_cast<double>(n_dense);
  return out;
}

}  // namespace ihc::scoring
