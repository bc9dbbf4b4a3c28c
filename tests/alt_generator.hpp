#pragma once
// An independent generator of HER2 IHC field images with ground truth, written without looking
// at engine/synth/src/synth.cpp so that it differs from the project's own generator on purpose:
//   - cells are ellipses (semi-axes 5-9 µm, rotated) placed by random sequential addition on an
//     occupancy grid (no lattice, no Voronoi), then inflated until they nearly touch;
//   - nuclei are irregular polygons placed off the cell centre, with chromatin texture;
//   - membranes are the cells' own ellipse outlines drawn with cv::ellipse on a supersampled
//     patch (about 0.125 µm per sample) and area-averaged to the output grid; widths by class
//     0.64 / 1.0 / 2.1 µm (Scheel et al. 2018; the stroke thickness is picked from the measured
//     width of OpenCV's strokes, which come out ~2 samples wider than asked), 1+ as one or two
//     arcs covering 25-60 %, 2+/3+ complete with up to 8 % in small gaps;
//   - DAB amplitudes are set (from the width as drawn) so that the membrane peak seen at the
//     reference resolution (0.5 µm/px, after a 0.4 µm optical blur) falls in the DOMAIN.md bands:
//     1+ 0.08-0.18, 2+ 0.25-0.45, 3+ 0.7-1.1. The stain is physical: a blurrier scanner
//     (blur_sigma_um) shows lower peaks, a finer pixel slightly higher ones;
//   - classes come in spatial clusters (one smooth random field per class, argmax), so cells of
//     different classes touch and share membranes;
//   - optional cytoplasmic DAB blush on 0 cells, stroma with spindle nuclei (no DAB), lumina and
//     a glass edge; tinted background I0 per channel, stain vectors optionally rotated;
//   - H and DAB concentration maps are blurred (optical blur), mixed by Beer-Lambert
//     I_c = I0_c * 10^-(cH h_c + cD d_c), noise added, optionally JPEG round-tripped.
#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/scoring/guideline.hpp"

namespace ihc::test {

struct AltOptions {
  int width = 1500;              // pixels
  int height = 1500;
  double mpp = 0.5;              // µm per pixel (0.25, 0.5, 0.6 ...)
  std::uint64_t seed = 1;
  std::array<double, 4> mix{0.25, 0.25, 0.25, 0.25};  // tumour cells in 0, 1+, 2+, 3+
  double cluster_um = 90.0;      // size of class clusters (0: every cell drawn independently)

  // Stains (unit optical-density vectors, R, G, B); default QuPath's.
  std::array<double, 3> stain_h{0.651, 0.701, 0.290};
  std::array<double, 3> stain_dab{0.269, 0.568, 0.778};
  double stain_rotation_deg = 0.0;  // each vector tilted by this angle in a random direction
  std::array<double, 3> background{244.0, 240.0, 246.0};  // I0 per channel (R, G, B)

  // Optics and sensor
  double blur_sigma_um = 0.4;    // optical blur (Gaussian sigma)
  double noise_sigma = 2.0;      // Gaussian noise, 8-bit intensity units per channel
  int jpeg_quality = 0;          // 0: no JPEG round trip; else 1-100

  // Membrane bands: DAB peak at the reference resolution after blur (see header comment).
  std::array<double, 2> band_1{0.08, 0.18};
  std::array<double, 2> band_2{0.25, 0.45};
  std::array<double, 2> band_3{0.70, 1.10};
  std::array<double, 3> width_um{0.64, 1.0, 2.1};  // membrane width for 1+, 2+, 3+
  std::array<double, 2> partial_coverage{0.25, 0.60};  // 1+ arcs: fraction of the outline
  double complete_gap_max = 0.08;  // 2+/3+ outline may miss up to this fraction (small gaps)

  // Extra content
  double blush_fraction = 0.0;     // share of 0 cells with diffuse cytoplasmic DAB
  std::array<double, 2> blush_od{0.05, 0.10};
  std::array<double, 2> cyto_od_1{0.0, 0.015};   // cytoplasmic DAB of 1+ cells
  std::array<double, 2> cyto_od_23{0.0, 0.03};   // ... of 2+ and 3+ cells
  // A cytoplasmic stain (a cytoplasmic antigen, not HER2-like): this share of tumour cells has
  // DAB filling the cytoplasm (cytoplasmic_od, nucleus mostly spared) with the border
  // accentuated (a 1 µm line at cytoplasmic_border_gain x the cytoplasm). Membrane class 0
  // whatever the mix: the membrane is not distinguishable from the cytoplasm.
  double cytoplasmic_fraction = 0.0;
  std::array<double, 2> cytoplasmic_od{0.30, 0.55};
  double cytoplasmic_border_gain = 1.6;
  // Pigment (melanin, haemosiderin, formalin pigment): dark granules that are not stain. This
  // share of tumour cells carries round granules (radius pigment_radius_um, peak optical density
  // pigment_od along pigment_vector before the optical blur) spaced about pigment_spacing_um
  // apart along its outline, or scattered over its cytoplasm when !pigment_on_outline. The truth
  // is unchanged: pigment is not membrane staining.
  double pigment_fraction = 0.0;
  std::array<double, 2> pigment_od{0.5, 1.2};
  std::array<double, 2> pigment_radius_um{0.35, 0.8};
  double pigment_spacing_um = 2.5;
  std::array<double, 3> pigment_vector{0.52, 0.60, 0.61};  // brown-black (normalised when used)
  bool pigment_on_outline = true;
  double stroma_fraction = 0.12;   // share of the field that is stroma (spindle nuclei, no DAB)
  double stroma_spacing_um = 13.0; // minimum distance between spindle nuclei (cellular stroma)
  double lumen_fraction = 0.04;    // share of the field in empty lumina
  double glass_fraction = 0.06;    // share of the field beyond a wavy tissue edge

  // Artefacts that must be left out of the score (issue 4). Their geometry is drawn from a random
  // sequence of its own, so designs without them are unchanged. Cells whose nucleus centre lies
  // in either are left out of the truth (the truth is the score of the in-focus, unfolded cells).
  // A tissue fold: a band fold_width_um wide across the field, at a random angle through a point
  // near the centre, where a second layer lies on the first: the field's own H and DAB maps,
  // shifted by fold_shift_um across the band (the tissue next to the fold, folded over) and
  // scaled by fold_gain, are added in optical density before mixing.
  double fold_width_um = 0.0;      // 0: no fold
  double fold_shift_um = 60.0;
  double fold_gain = 1.0;
  // An out-of-focus patch: an ellipse with semi-axes focus_radius_um and 0.7 x that, at a random
  // place and angle well inside the field, where the H and DAB maps are blurred with a Gaussian
  // of focus_blur_um (sigma) on top of the optical blur, before mixing.
  double focus_radius_um = 0.0;    // 0: no blurred patch
  double focus_blur_um = 3.0;
  // And/or a blurred rectangle, x, y, width, height in µm from the image's top-left corner (a
  // scanner's focus point gone wrong: a whole strip or tile out of focus). Width 0: none.
  std::array<double, 4> focus_rect_um{0, 0, 0, 0};
};

struct AltCell {
  cv::Point2f centre;            // cell (ellipse) centre, pixels
  cv::Point2f nucleus;           // nucleus centre, pixels
  float a_um = 0, b_um = 0;      // semi-axes
  float angle_deg = 0;
  float membrane_peak_od = 0;    // designed peak at the reference resolution (0 for class 0)
  float coverage = 0;            // designed fraction of the outline stained
  bool blush = false;
  bool cytoplasmic_stain = false;  // drawn as a cytoplasmic stain (cytoplasmic_fraction)
  bool in_image = false;         // nucleus centre inside the image (counted in the truth unless
                                 // it is also in_fold or in_blur)
  bool in_fold = false;          // nucleus centre in the fold band (fold_width_um)
  bool in_blur = false;          // nucleus centre in the out-of-focus patch (focus_radius_um)
  scoring::CellClass cell_class = scoring::CellClass::Negative;
};

struct AltTruth {
  scoring::CellCounts counts;    // tumour cells with the nucleus centre in the image, outside
                                 // the fold and the blurred patch
  int cells_in_fold = 0;         // tumour cells in the image with the nucleus centre in the fold
  int cells_in_blur = 0;         // ... in the blurred patch (and not in the fold)
  cv::Mat fold_mask, blur_mask;  // CV_8UC1, image size, 255 inside (empty when not drawn)
  scoring::ClassPercent percent;
  scoring::SlideScore score_2018 = scoring::SlideScore::NotEvaluable;
  scoring::SlideScore score_2007 = scoring::SlideScore::NotEvaluable;
  int stroma_nuclei = 0;         // spindle nuclei in the image (not tumour)
  std::vector<cv::Point2f> stroma_centres;  // their centres, pixels (also those outside)
  double tumour_cover_fraction = 0;  // share of the tumour region inside some cell
  std::array<double, 3> stain_h{};    // the vectors actually used (after rotation)
  std::array<double, 3> stain_dab{};
  std::vector<AltCell> cells;    // every tumour cell rendered (also those outside the image)
};

struct AltImage {
  cv::Mat rgb;                   // CV_8UC3, R first
  cv::Mat hematoxylin, dab;      // CV_32FC1 concentration maps after blur (before noise/JPEG)
  AltTruth truth;
};

// Pure function of the options. Throws std::invalid_argument on impossible options.
AltImage generate_alt_field(const AltOptions& options);

// Writes an RGB (R first) image as PNG (converted to BGR for OpenCV). Throws std::runtime_error.
void write_rgb_png(const std::filesystem::path& path, const cv::Mat& rgb);

// Peak of a membrane line of `width_um` after a Gaussian blur of `sigma_um` and area sampling by
// pixels of `pixel_um`, for unit amplitude, averaged over the pixel phase.
double membrane_peak_gain(double width_um, double sigma_um, double pixel_um);

}  // namespace ihc::test
