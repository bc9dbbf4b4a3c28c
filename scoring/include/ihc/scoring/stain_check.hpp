#pragma once
// Is this a HER2 IHC stain at all? An H&E slide sent by mistake has eosin (pink) over most of
// its tissue; a HER2 IHC slide has haematoxylin and DAB and no eosin, whatever its score (a
// HER2 0 slide is haematoxylin only). Each tissue pixel of the overview is unmixed into
// haematoxylin, DAB and eosin (Ruifrok & Johnston's eosin vector); the share of tissue whose
// eosin concentration reaches eosin_min_od decides.
#include <opencv2/core.hpp>

#include "ihc/scoring/stains.hpp"

namespace ihc::scoring {

struct StainCheckParams {
  Rgb3 eosin{0.072, 0.990, 0.105};  // OD vector (normalised before use)
  double eosin_min_od = 0.10;       // a pixel is eosin-stained at or above this
  // A slide is "not a HER2 IHC stain" when at least this share of its tissue is eosin-stained.
  // Measured through the engine: H&E CMU-1 0.58; real HER2 and Ki67 IHC images 0.000-0.033
  // (a Python check of the TCGA H&E slide, reduced to 2048 px as the engine does, gave 0.93).
  double max_eosin_fraction = 0.25;
};

// Share (0..1) of tissue pixels (`tissue` != 0, CV_8UC1, same size as `rgb`) that carry eosin.
// `rgb`: CV_8UC3, R first. 0 when there is no tissue.
double eosin_fraction(const cv::Mat& rgb, const cv::Mat& tissue, const StainVectors& stains,
                      const StainCheckParams& params = {});

}  // namespace ihc::scoring
