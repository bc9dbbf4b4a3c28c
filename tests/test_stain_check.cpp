// The H&E-versus-IHC check (stain_check.hpp) on colours mixed by Beer-Lambert from known stains.
#include <catch2/catch.hpp>

#include <cmath>

#include <opencv2/imgproc.hpp>

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

TEST_CASE("Grey tissue has no colour, and channel-swapped tissue is off the stains", "[scoring][stain_check]") {
  const cv::Mat all_tissue(10, 10, CV_8UC1, cv::Scalar(255));
  const StainVectors s = StainVectors::defaults();
  const cv::Mat ihc = field(0, 0.5);  // haematoxylin + DAB
  const ColourMeasures stained = colour_measures(ihc, all_tissue, s);
  CHECK(stained.colour_fraction == 1.0);
  CHECK(stained.off_stain_fraction == 0.0);
  cv::Mat grey;
  cv::cvtColor(ihc, grey, cv::COLOR_RGB2GRAY);
  cv::cvtColor(grey, grey, cv::COLOR_GRAY2RGB);
  const ColourMeasures g = colour_measures(grey, all_tissue, s);
  CHECK(g.colour_fraction == 0.0);
  CHECK(g.off_stain_fraction == 0.0);
  // The same stains with red and green swapped: brown becomes olive, blue stays blue-ish; every
  // pixel lies far off the haematoxylin-DAB plane.
  cv::Mat swapped;
  cv::mixChannels(std::vector<cv::Mat>{ihc}, std::vector<cv::Mat>{swapped = cv::Mat(ihc.size(), ihc.type())},
                  std::vector<int>{0, 1, 1, 0, 2, 2});
  const ColourMeasures sw = colour_measures(swapped, all_tissue, s);
  CHECK(sw.colour_fraction == 1.0);
  CHECK(sw.off_stain_fraction > StainCheckParams{}.max_off_stain_fraction);
  CHECK(colour_measures(ihc, cv::Mat::zeros(10, 10, CV_8UC1), s).colour_fraction == 0.0);
}
