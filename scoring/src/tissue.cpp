#include "ihc/scoring/tissue.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace ihc::scoring {

cv::Mat tissue_mask(const cv::Mat& rgb, const TissueParams& params) {
  CV_Assert(rgb.type() == CV_8UC3);
  cv::Mat mask(rgb.size(), CV_8U, cv::Scalar(0));
  if (rgb.empty()) return mask;
  float od[256];
  for (int v = 0; v < 256; ++v) od[v] = static_cast<float>(-std::log10(std::max(v, 1) / 255.0));
  cv::Mat od_sum(rgb.size(), CV_32F);
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<std::uint8_t>(y);
    auto* o = od_sum.ptr<float>(y);
    for (int x = 0; x < rgb.cols; ++x) o[x] = od[p[3 * x]] + od[p[3 * x + 1]] + od[p[3 * x + 2]];
  }
  cv::GaussianBlur(od_sum, od_sum, cv::Size(0, 0), 1.0);
  std::vector<float> values(od_sum.begin<float>(), od_sum.end<float>());
  const std::size_t k = values.size() / 20;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  const double background = values[k];
  const double threshold = std::min(background + params.min_contrast_od, params.max_threshold_od);
  cv::compare(od_sum, threshold, mask, cv::CMP_GT);
  const cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3));
  cv::morphologyEx(mask, mask, cv::MORPH_OPEN, kernel);
  return mask;
}

}  // namespace ihc::scoring
