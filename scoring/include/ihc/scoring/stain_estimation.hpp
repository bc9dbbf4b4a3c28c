#pragma once
// Per-slide stain vectors and background (Macenko et al. 2009, "A method for normalizing
// histology slides for quantitative analysis"), for haematoxylin + DAB.
//
// Optical density follows stains.hpp: OD_c = -log10(max(I_c, 1) / I0), clamped at zero (a pixel
// brighter than the background has no stain). The method: keep tissue pixels whose summed OD is
// at least `min_total_od` (near-white pixels have a noisy direction), find the plane through the
// origin spanned by the two main eigenvectors of their OD second-moment matrix, project every
// pixel onto it, and take the robust extreme angles (the `percentile`-th and
// (100 - `percentile`)-th): the two directions of (nearly) pure stain. The bluer one (more red
// absorption relative to blue) is haematoxylin, the other DAB.
//
// It falls back to the reference (default or user) vectors, with the reason in `warning`, when
// the estimate would not be trustworthy: too few stained pixels, too few pixels carrying one of
// the two stains (judged by deconvolving with the reference vectors), the two directions too close
// together, one too far from its reference, or a "DAB" that is not brown (then it is probably
// another stain, e.g. eosin on an H&E slide).
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/scoring/stains.hpp"

namespace ihc::scoring {

struct StainEstimationParams {
  double min_total_od = 0.5;         // summed r+g+b OD (about 0.3 of either unit stain) below which a pixel is not used
  double percentile = 1.0;           // robust extreme angles: this and 100 - this per cent
  std::size_t min_pixels = 200;      // fewer usable pixels: fall back
  // A used pixel "carries" a stain when its concentration under the reference vectors exceeds
  // `stain_presence_od`; each stain must be carried by at least `min_stain_fraction` of them.
  // For DAB the positive residual is discounted first (as specific_dab does, with this weight), so
  // eosin on an H&E slide is not taken for DAB.
  double stain_presence_od = 0.15;
  double presence_residual_weight = 4.0;
  double min_stain_fraction = 0.02;
  double min_separation_deg = 5.0;   // estimated H and DAB closer than this: fall back
  double max_deviation_deg = 25.0;   // an estimated vector further than this from its reference: fall back
  // Hue: DAB is brown (absorbs blue at least as much as green; eosin and red blood cells absorb
  // green most) and haematoxylin blue (absorbs red more than blue). Otherwise: fall back.
  bool check_hue = true;
  std::size_t max_samples = 1'000'000;  // more usable pixels are subsampled (evenly, deterministic)
};

struct StainEstimate {
  // The estimated vectors (estimated == true), or the reference's (estimated == false); i0 is
  // always the i0 the estimate was run with.
  StainVectors vectors;
  bool estimated = false;
  std::string warning;           // why it fell back; empty when estimated
  double i0 = 255.0;
  std::size_t pixels_used = 0;   // pixels above the OD threshold that went into the estimate
  // Angles between each estimated vector and its reference, degrees (0 when not estimated far
  // enough to have them), and between the two estimated vectors.
  double hematoxylin_deviation_deg = 0, dab_deviation_deg = 0, separation_deg = 0;
  double dab_fraction = 0, hematoxylin_fraction = 0;  // share of used pixels carrying each stain
};

// Angle between two (not necessarily unit) vectors, degrees.
double angle_between_deg(const Rgb3& a, const Rgb3& b);

// OD of one pixel (R, G, B intensities), clamped at zero.
Rgb3 optical_density(const std::array<double, 3>& rgb, double i0);

// Estimates from OD samples (r, g, b each).
StainEstimate estimate_stains_from_od(const std::vector<Rgb3>& od, double i0, const StainVectors& reference,
                                      const StainEstimationParams& params = {});

// Estimates from an OD image (CV_32FC3, r g b) restricted to `mask` (CV_8UC1, nonzero = use;
// empty = every pixel).
StainEstimate estimate_stains_from_od(const cv::Mat& od, const cv::Mat& mask, double i0,
                                      const StainVectors& reference, const StainEstimationParams& params = {});

// Estimates from RGB images (CV_8UC3, R first), e.g. a few tissue tiles, each with an optional
// mask (empty = every pixel; the OD threshold drops the glass anyway). OD uses `i0`.
StainEstimate estimate_stains(const std::vector<cv::Mat>& rgb, const std::vector<cv::Mat>& masks, double i0,
                              const StainVectors& reference, const StainEstimationParams& params = {});

// Background (incident light) intensity from a low-resolution RGB image and its tissue mask
// (CV_8UC1, 255 = tissue): per channel the `percentile`-th percentile of the non-tissue pixels,
// averaged over the channels and clamped to [min_i0, max_i0].
struct BackgroundParams {
  double percentile = 99.0;
  double min_i0 = 200.0, max_i0 = 255.0;
  // Fewer non-tissue pixels than this (absolute, and this share of the image): no estimate.
  std::size_t min_pixels = 100;
  double min_fraction = 0.005;
};
struct BackgroundEstimate {
  double i0 = 255.0;                     // the estimate, or `fallback` when !estimated
  std::array<double, 3> per_channel{255.0, 255.0, 255.0};
  bool estimated = false;
  std::size_t pixels_used = 0;
};
BackgroundEstimate estimate_background(const cv::Mat& rgb, const cv::Mat& tissue_mask, double fallback = 255.0,
                                       const BackgroundParams& params = {});

}  // namespace ihc::scoring
