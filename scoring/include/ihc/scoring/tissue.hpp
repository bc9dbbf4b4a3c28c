#pragma once
// Tissue versus glass on a low-resolution image of the whole slide.
#include <opencv2/core.hpp>

namespace ihc::scoring {

struct TissueParams {
  // A pixel is tissue when its summed RGB optical density exceeds the background's (the
  // brightest 5 % of the image) by this much, capped at `max_threshold_od`. Low enough for pale
  // stroma on a scanner's grey glass (docs/algorithm.md, step 1).
  double min_contrast_od = 0.04;
  double max_threshold_od = 0.25;
};

// `rgb`: CV_8UC3 thumbnail. Returns CV_8UC1, 255 = tissue. Specks smaller than ~3 px are dropped.
cv::Mat tissue_mask(const cv::Mat& rgb, const TissueParams& params = {});

}  // namespace ihc::scoring
