#pragma once
// Colour deconvolution (Ruifrok & Johnston 2001) for haematoxylin + DAB.
//
// Convention: OD_c = max(0, -log10(max(I_c, 1) / I0)) per RGB channel (pixels brighter than the
// background are clear glass, OD 0); OD = C * M where the rows of M are
// the unit stain vectors (haematoxylin, DAB, residual = normalised cross product of the two);
// concentrations C = OD * inverse(M).
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

namespace ihc::scoring {

using Rgb3 = std::array<double, 3>;

// A value type: equality and a text round-trip, so a report records exactly which vectors scored.
struct StainVectors {
  Rgb3 hematoxylin{0.650, 0.704, 0.286};
  Rgb3 dab{0.268, 0.570, 0.776};
  Rgb3 residual{};   // derived: normalised cross product of hematoxylin and dab
  double i0 = 255.0;  // background (incident light) intensity

  // Normalises both vectors and derives the residual. Returns nullopt when a vector is zero,
  // negative or the two are (nearly) parallel.
  static std::optional<StainVectors> make(const Rgb3& hematoxylin, const Rgb3& dab, double i0 = 255.0);
  static StainVectors defaults();

  // "hematoxylin=0.650,0.704,0.286;dab=0.268,0.570,0.776;i0=255"
  std::string to_string() const;
  static std::optional<StainVectors> parse(std::string_view text);

  bool operator==(const StainVectors&) const = default;
};

// Parses "r,g,b" into three finite numbers.
std::optional<Rgb3> parse_rgb3(std::string_view text);

// Stain concentration images (CV_32FC1, same size as the input), in OD units of each unit vector.
struct Deconvolved {
  cv::Mat hematoxylin;
  cv::Mat dab;
  cv::Mat residual;
};

// OD of each 8-bit value, max(0, -log10(max(v, 1) / i0)): a lookup instead of a log per pixel.
std::array<float, 256> optical_density_table(double i0);

// `rgb`: CV_8UC3, R first.
Deconvolved deconvolve(const cv::Mat& rgb, const StainVectors& stains);

// DAB with counterstain bleed removed: dab - weight * max(0, residual). With the default
// vectors a positive residual means extra green absorption, which DAB and haematoxylin lack but
// eosin and other pink stains have; on H&E that colour otherwise shows up as "DAB" (measured on
// CMU-1: residual/DAB about +0.1 to +0.56 on eosin, -0.03 to -0.3 on real DAB).
cv::Mat specific_dab(const Deconvolved& d, double residual_weight = 4.0);

// What cell scoring needs, in one pass: haematoxylin and specific_dab(..., residual_weight),
// without materialising the residual channel.
struct HematoxylinDab {
  cv::Mat hematoxylin;
  cv::Mat dab;
  cv::Mat dab_smooth;  // deconvolve_for_cells only: smooth_dab_for_cells(dab), made in the same pass
};
HematoxylinDab deconvolve_for_scoring(const cv::Mat& rgb, const StainVectors& stains, double residual_weight);

// The same, with `hematoxylin` at half resolution (2 x 2 block means, an odd last row or column
// dropped; an image under 2 pixels on a side gives its first pixel's value everywhere), bit-identical to halving
// deconvolve_for_scoring's channel: what detect_cells_half_h takes. Faster: the full-resolution
// haematoxylin channel is never stored. `dab_smooth` is made row by row as the DAB rows come
// (equal to smooth_dab_for_cells(dab) within float rounding: 1e-6 OD).
HematoxylinDab deconvolve_for_cells(const cv::Mat& rgb, const StainVectors& stains, double residual_weight);

// The DAB the cell detector measures membranes on: a 5 x 5 Gaussian, sigma 0.7 px (the two taps
// a 7-tap kernel would add weigh 6e-5 of the sum each), borders reflected (BORDER_REFLECT_101).
cv::Mat smooth_dab_for_cells(const cv::Mat& dab);

// How much of each stain deconvolution gives to the other, where the slide's hues differ from the
// stain vectors used; 0 when there is too little to tell or the estimate is negative.
//
// Dark DAB is blacker than the reference DAB (a heavy deposit scatters as well as absorbs), so
// brown membranes read as haematoxylin, up to what a nucleus has (0.2 OD at DAB 1 on a real 3+
// core): observed haematoxylin = true + dab_in_hematoxylin x DAB. The slope of the lower quartile
// of haematoxylin against DAB on pixels where DAB dominates (DAB 0.2-1.2 OD in bins of 0.1, at
// least 100 pixels in each of at least three bins): a slope, not a ratio, so that a uniform
// counterstain under the membranes is not taken for crosstalk.
double dab_in_hematoxylin(const cv::Mat& hematoxylin, const cv::Mat& dab);

// A purple counterstain gives nuclei DAB (0.1-0.3 OD on some real cores), which rays then take for
// membrane: observed DAB = true + hematoxylin_in_dab x haematoxylin. Measured on nuclei, where HER2
// puts no DAB: each nucleus's excess over its surroundings in both stains (`h_excess`, `dab_excess`),
// the median of DAB excess / haematoxylin excess over nuclei standing at least 0.03 OD above their
// surroundings (at least 20 of them). Excesses, not values, so that a DAB blush is not crosstalk;
// membranes round the nuclei of a stained tumour make the excess negative, so nothing is taken
// there.
double hematoxylin_in_dab(const std::vector<float>& h_excess, const std::vector<float>& dab_excess);

// Beer-Lambert mixing, the inverse of deconvolve: intensity of each channel for the given
// concentrations. Used by tests and the synthetic slide generator.
std::array<double, 3> mix_stains(const StainVectors& stains, double hematoxylin, double dab,
                                 double residual = 0.0);

}  // namespace ihc::scoring
