#pragma once
// Is this a HER2 IHC stain at all? A grey image has no stains to unmix, and colours far from
// the haematoxylin-DAB plane are some other stain (colour_measures). An H&E slide sent by mistake
// has eosin (pink) over most of its tissue; a HER2 IHC slide has haematoxylin and DAB and no eosin, whatever its score (a
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
  // A stained brightfield image has colour: haematoxylin is blue, DAB brown. A tissue pixel is
  // coloured when its channels differ by min_chroma or more (of 255); an image with fewer than
  // min_colour_fraction of its tissue coloured is grey (a greyscale scan or export) and cannot
  // be unmixed into stains.
  double min_chroma = 10.0;
  double min_colour_fraction = 0.02;
  // A coloured pixel (optical density norm >= off_stain_min_od) is off the stains when the part
  // of its optical density outside the haematoxylin-DAB plane exceeds off_stain_ratio of the
  // whole. Measured (share of such pixels, engine's overview): 14 gastric cores 0.000, six real
  // IHC images 0.000-0.002; the same images with their colour channels swapped 0.10-0.73.
  double off_stain_min_od = 0.15;
  double off_stain_ratio = 0.25;
  double max_off_stain_fraction = 0.10;  // H&E CMU-1: 0.20
};

// Share (0..1) of tissue pixels (`tissue` != 0, CV_8UC1, same size as `rgb`) that carry eosin.
// `rgb`: CV_8UC3, R first. 0 when there is no tissue.
double eosin_fraction(const cv::Mat& rgb, const cv::Mat& tissue, const StainVectors& stains,
                      const StainCheckParams& params = {});

struct ColourMeasures {
  double colour_fraction = 0;     // share of tissue pixels whose channels differ by min_chroma or more
  double off_stain_fraction = 0;  // share of coloured pixels whose colour is not haematoxylin and DAB
};
// Both 0 when there is no tissue.
ColourMeasures colour_measures(const cv::Mat& rgb, const cv::Mat& tissue, const StainVectors& stains,
                               const StainCheckParams& params = {});

}  // namespace ihc::scoring
