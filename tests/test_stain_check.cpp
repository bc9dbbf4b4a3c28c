// The H&E-versus-IHC check (stain_check.hpp) on colours mixed by Beer-Lambert from known stains.
#include <catch2/catch.hpp>

#include <cmath>

#include "ihc/scoring/stain_check.hpp"

using namespace ihc::scoring;

namespace {
// A 10 x 10 image, `eosin_rows` rows of haematoxylin + eosin, the rest haematoxylin + DAB.
cv::Mat field(int eosin_rows, double dab_od) {
  const StainVectors s = StainVectors::defaults();
  const StainCheckParams p;
  const double n = std::sqrt(p.eosin[0] * p.eosin[0] + p.eosin[1] * p.eosin[1] + p.eosin[2] * p.eosin[2]);
  cv::Mat rgb(10, 10, CV_8UC3);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x) {
      cv::Vec3b& px = rgb.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) {
        const double od = 0.2 * s.hematoxylin[static_cast<std::size_t>(c)] +
                          (y < eosin_rows ? 0.4 * p.eosin[static_cast<std::size_t>(c)] / n
                                          : dab_od * s.dab[static_cast<std::size_t>(c)]);
        px[c] = cv::saturate_cast<std::uint8_t>(255.0 * std::pow(10.0, -od));
      }
    }
  return rgb;
}
}  // namespace

TEST_CASE("Eosin is told from DAB and haematoxylin", "[scoring][stain_check]") {
  const cv::Mat all_tissue(10, 10, CV_8UC1, cv::Scalar(255));
  const StainVectors s = StainVectors::defaults();
  CHECK(eosin_fraction(field(0, 0.0), all_tissue, s) == 0.0);    // HER2 0: haematoxylin only
  CHECK(eosin_fraction(field(0, 0.8), all_tissue, s) == 0.0);    // strong DAB is not eosin
  CHECK(eosin_fraction(field(10, 0.0), all_tissue, s) == 1.0);   // H&E
  CHECK(eosin_fraction(field(3, 0.3), all_tissue, s) == Approx(0.3));
  cv::Mat half = all_tissue.clone();
  half.rowRange(5, 10).setTo(0);  // only tissue pixels count
  CHECK(eosin_fraction(field(5, 0.3), half, s) == 1.0);
  CHECK(eosin_fraction(field(5, 0.3), cv::Mat::zeros(10, 10, CV_8UC1), s) == 0.0);
}
