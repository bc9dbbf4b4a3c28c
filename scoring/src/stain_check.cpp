#include "ihc/scoring/stain_check.hpp"

#include <algorithm>
#include <cmath>

namespace ihc::scoring {

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
  std::int64_t n_tissue = 0, n_eosin = 0;
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<cv::Vec3b>(y);
    const auto* m = tissue.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      if (!m[x]) continue;
      ++n_tissue;
      const double r = od[p[x][0]], g = od[p[x][1]], b = od[p[x][2]];
      const double eosin = r * unmix(0, 2) + g * unmix(1, 2) + b * unmix(2, 2);
      n_eosin += eosin >= params.eosin_min_od ? 1 : 0;
    }
  }
  return n_tissue > 0 ? static_cast<double>(n_eosin) / static_cast<double>(n_tissue) : 0.0;
}

}  // namespace ihc::scoring
