#pragma once
// Cells and their membranes on one analysis tile.
//
// Pipeline (all lengths in micrometres, converted with the tile's µm/px):
//  1. Nuclei: haematoxylin (less the share that dark DAB gives it, stains.hpp) smoothed at the
//     nucleus scale; local maxima that stand out from their surroundings are nucleus seeds
//     (touching nuclei give separate maxima).
//  2. Cell outlines: a seeded watershed on the DAB image (membranes are DAB ridges, so regions
//     grown from neighbouring nuclei meet on the membrane they share), bounded by
//     max_cell_radius_um and by a background region grown from pixels far from every nucleus.
//  3. Membrane: along `rays` directions from the nucleus centre, the DAB peak between the
//     nucleus and the outline (a membrane with gaps lets the region leak past it). A direction is stained when the peak reaches faint_od
//     and stands min_membrane_contrast_od above the cytoplasm on the same ray (so diffuse
//     cytoplasmic DAB is not membrane). A membrane shared by two cells counts for both: each
//     cell's own outline is what a pathologist judges.
//  4. completeness = stained fraction of directions; intensity = median peak on stained ones.
//  5. Cytoplasmic pattern (artefacts.hpp): in a tile whose membrane-positive cells have dark
//     cytoplasm compared with their membrane, those cells are flagged `cytoplasmic`, class 0.
// Each stage has its own file in scoring/src (cell_stages.hpp lists them): nuclei.cpp (1),
// outlines.cpp (2), membrane.cpp (3-4), artefacts.cpp (5 and the pigment granule test);
// cells.cpp runs them in order and applies the tumour-cell rules.
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/scoring/guideline.hpp"

namespace ihc::scoring {

struct CellParams {
  // Nuclei
  double nucleus_radius_um = 3.5;        // typical tumour nucleus radius (detection scale)
  double nucleus_min_od = 0.08;          // smoothed haematoxylin at a nucleus centre
  double nucleus_min_contrast_od = 0.05; // above the surrounding minimum
  // Both floors follow a faint counterstain: in a tile whose nuclei stand out less (the 90th
  // percentile of the contrast of its candidate maxima) than counterstain_ref_contrast_od, they
  // fall in proportion, to no less than min_floor_scale of themselves. Well-counterstained tissue
  // (0.10-0.14 OD on the real cores, 0.09 on drawn erythrocytes) keeps the fixed floors; the real
  // core 1_f8a2cea0 (0.038) had all its nuclei under them.
  double counterstain_ref_contrast_od = 0.08;
  double min_floor_scale = 0.4;
  double min_nucleus_area_um2 = 8.0;     // smaller: debris
  double max_nucleus_area_um2 = 300.0;   // larger: clumps, folds
  double max_nucleus_elongation = 2.2;   // longer / shorter axis; more: spindle (stromal) nuclei
  // Take out of the haematoxylin the share of dark DAB that deconvolution gave it on this tile
  // (dab_in_hematoxylin, stains.hpp) before nuclei are sought: brown membranes made seeds.
  bool remove_dab_from_hematoxylin = true;
  // Cell outline
  double max_cell_radius_um = 13.0;
  int rays = 36;
  // Membrane DAB thresholds (DAB concentration, unit stain vectors, ~0.5 µm/px)
  double faint_od = 0.08;                // barely perceptible: a direction counts as stained
  double moderate_od = 0.20;             // weak-to-moderate
  double intense_od = 0.70;              // intense
  double min_membrane_contrast_od = 0.05;  // ridge mass above its base / membrane_ref_um
  // A stained direction's DAB is the ridge's mass above its base (OD x um, over the part above
  // half its height) divided by this width: the OD of a membrane this wide carrying that DAB.
  double membrane_ref_um = 1.0;
  // A ridge wider than this at half height (plus two pixels of blur) is not a membrane but a
  // blotch: JPEG blocks, stain bleed. The widest membranes, 3+, are about 2 um (Scheel et al.
  // 2018), and between two 3+ cells two of them lie side by side: 4 um.
  double max_membrane_width_um = 4.0;
  // ... and a ridge whose peak stands less than this above its base (at 0.5 um/px; less on
  // coarser pixels, in proportion) is grain, however wide.
  double min_membrane_peak_od = 0.03;
  double ridge_um = 3.0;                 // how far beyond the peak its outer side is sought
  double min_arc_degrees = 30.0;         // stained directions count only in arcs this long
  // Completeness
  double complete_fraction = 0.80;       // "complete / circumferential"
  double partial_min_fraction = 0.20;    // below: no membrane staining (class 0)
  double intense_incomplete_fraction = 0.50;  // intense but incomplete (basolateral) -> 2+
  // Tumour cells grow in sheets: a cell with fewer neighbours than this within
  // neighbourhood_um is taken for stroma / a sparse non-epithelial cell and not counted.
  // 30 um is one and a half carcinoma cell diameters (15-20 um): the first ring of touching
  // cells, even for the large cells of breast carcinoma (20 um missed most of them).
  double neighbourhood_um = 30.0;
  int min_neighbours = 3;
  // Cytoplasmic pattern (see artefacts.hpp). Cytoplasm DAB is sampled on each ray from the
  // nucleus to cytoplasm_gap_um inside the membrane peak (beyond the blur of a 2 µm membrane).
  double cytoplasm_gap_um = 2.0;
  double cytoplasmic_tile_ratio = 0.38;  // median cytoplasm / membrane DAB making a tile cytoplasmic
  int cytoplasmic_min_cells = 20;        // ... over at least this many membrane-positive cells
  double cytoplasmic_tile_min_od = 0.10; // ... whose median cytoplasm DAB is at least this (visible)
  double cytoplasmic_cell_ratio = 0.10;  // in such a tile a cell with cytoplasm >= this x membrane
  double cytoplasmic_min_od = 0.05;      // ... and cytoplasm DAB >= this is cytoplasmic (class 0)
  // Pigment (artefacts.hpp): a stained direction whose peak is brown-black (haematoxylin at least
  // pigment_h_ratio x its DAB) and an isolated granule (no DAB line crosses a ring of radius
  // pigment_ring_um around it) is pigment, not membrane; the membrane is sought beyond it.
  // pigment_ring_um 0: rule off.
  double pigment_h_ratio = 0.25;
  // A ridge whose half-resolution haematoxylin is at least nuclear_ridge_h_ratio x its DAB peak
  // lies on a nucleus: DAB there is the nucleus leaking through stain vectors a few degrees off
  // the slide's (and JPEG chroma blur), not membrane. 0: rule off.
  double nuclear_ridge_h_ratio = 4.0;
  // ... and on a tile whose nuclei leak haematoxylin into DAB (hematoxylin_in_dab, stains.hpp), a
  // ridge whose DAB is at most 1.5 x that leak x its haematoxylin is a nucleus too. Off by default:
  // right cell by cell on real cores with a purple counterstain (their stromal nuclei and
  // erythrocytes read 1+), but where stroma is counted as tumour the 1+ cores then fall below 10 %
  // (docs/validity.md).
  bool nuclear_ridge_follows_leak = false;
  // Tumour cells are bounded by membranes, and a membrane carries no haematoxylin of its own:
  // the DAB ridges round a tumour cell's nucleus carry at most the share of dark DAB that
  // deconvolution gives haematoxylin (dab_in_hematoxylin: 0.10-0.15). A cell whose ridges carry
  // haematoxylin with their DAB (median over its ridges of the haematoxylin at the peak over its
  // sides', per unit of DAB over the ridge's base, at least this) is bounded by other nuclei, whose
  // edges leak through the stain vectors, or by a neutral absorber such as erythrocytes (grey:
  // 1.15 haematoxylin per DAB under the default vectors): stroma, inflammation, blood. It is not
  // counted, and none of its ridges is membrane. 0.6: half-way between the two. 0: rule off.
  double ridge_h_excess_ratio = 0.6;
  double pigment_ring_um = 1.25;
  // A cell with at least pigment_min_rays such directions, and at least pigment_cell_fraction of
  // its stained-looking directions, is pigment-laden: flagged `pigment` and scored 0.
  int pigment_min_rays = 3;
  double pigment_cell_fraction = 0.15;
  // Gastric rules (guideline.hpp, GuidelineRules::lateral_counts_complete): lateral and
  // basolateral staining counts like complete. Set from the guideline by the engine.
  bool lateral_counts_complete = false;
  bool keep_outlines = false;            // fill Cell::outline (for markup and GeoJSON)
};

// Why a detected cell is not counted as a tumour cell (Cell::left_out, a bitmask).
inline constexpr std::uint8_t kLeftOutSmall = 1;          // nucleus below min_nucleus_area_um2 (debris)
inline constexpr std::uint8_t kLeftOutLarge = 2;          // nucleus above max_nucleus_area_um2 (clump, fold)
inline constexpr std::uint8_t kLeftOutFewNeighbours = 4;  // fewer than min_neighbours within neighbourhood_um
inline constexpr std::uint8_t kLeftOutElongated = 8;      // spindle nucleus (stroma)
inline constexpr std::uint8_t kLeftOutEdge = 16;          // less than half its outline inside the image
inline constexpr std::uint8_t kLeftOutHematoxylinRidges = 32;  // ridges carry haematoxylin (ridge_h_excess_ratio)
inline constexpr int kLeftOutRules = 6;  // bits 0 .. kLeftOutRules - 1
// "small_nucleus,few_neighbours" ...; empty for a counted cell.
std::string left_out_reasons(std::uint8_t left_out);

struct Cell {
  cv::Point2f centre;            // pixels of the analysed image
  float nucleus_area_um2 = 0;
  float nucleus_elongation = 1;  // principal-axis ratio
  float completeness = 0;        // 0..1
  float intensity_od = 0;        // median DAB peak on stained directions (0 when none)
  float membrane_peak_od = 0;    // median DAB peak height on the same directions (artefacts.hpp)
  bool lateral = false;          // incomplete, but lateral or basolateral (is_lateral)
  // Median over directions of the mean DAB from the nucleus to cytoplasm_gap_um inside the
  // membrane peak; -1 when fewer than a quarter of the directions leave room for it.
  float cytoplasm_mean_od = -1;
  bool pigment = false;           // pigment-laden outline: class set to 0
  bool hematoxylin_ridges = false;  // its ridges carry haematoxylin with DAB (ridge_h_excess_ratio)
  bool cytoplasmic = false;      // membrane-positive but in a cytoplasmic pattern: class set to 0
  int pigment_rays = 0;           // stained directions rejected as pigment granules
  int neighbours = 0;
  bool counted = false;          // passes the tumour-cell rules (left_out == 0)
  std::uint8_t left_out = 0;     // the rules it fails (kLeftOut*)
  CellClass cell_class = CellClass::Negative;
  std::vector<cv::Point2f> outline;  // one point per ray, when keep_outlines
};

// Class from the two membrane measurements (2018 wording; see DOMAIN.md). A `lateral` cell
// (is_lateral) is classed as complete when params.lateral_counts_complete (gastric rules).
CellClass classify_membrane(double completeness, double intensity_od, const CellParams& params, bool lateral = false);

// Lateral or basolateral ("U-shaped") membrane staining, from which of `rays` equally spaced
// directions (stained[i] != 0) carry membrane: one unbroken stained arc of at least half the
// circle (U), or two opposite quarter-circles each at least half stained (the two sides of a
// columnar cell).
bool is_lateral(const std::vector<std::uint8_t>& stained, int rays);

// Detects cells on a tile. `hematoxylin`, `dab`: CV_32FC1 concentrations (see stains.hpp);
// `mpp`: µm per pixel of these images; `core`: only cells whose centre lies inside are returned
// (the rest of the image is halo that gives border cells their neighbours). `valid_region`:
// the part of the image that holds real pixels (the rest is padding past the slide's edge);
// empty means all of it. A cell that sees less than half its outline there is not counted.
std::vector<Cell> detect_cells(const cv::Mat& hematoxylin, const cv::Mat& dab, double mpp,
                               const cv::Rect& core, const CellParams& params,
                               const cv::Rect& valid_region = {});
// The same with the haematoxylin already at half resolution (deconvolve_for_cells): the
// `hematoxylin_half` is (dab.rows / 2) x (dab.cols / 2) (at least 1 x 1).
std::vector<Cell> detect_cells_half_h(const cv::Mat& hematoxylin_half, const cv::Mat& dab, double mpp,
                                      const cv::Rect& core, const CellParams& params,
                                      const cv::Rect& valid_region = {});
// The same with the DAB already smoothed (smooth_dab_for_cells; deconvolve_for_cells's
// dab_smooth): the pipeline's path.
// What detection measured of the stains on the tile (stains.hpp): the share of DAB taken out of
// the haematoxylin (0: none), and the haematoxylin its nuclei leak into DAB (0: none, or too few
// nuclei to tell).
struct TileStains {
  double dab_in_hematoxylin = 0;
  double hematoxylin_in_dab = 0;
};
std::vector<Cell> detect_cells_smoothed(const cv::Mat& hematoxylin_half, const cv::Mat& dab_smooth, double mpp,
                                        const cv::Rect& core, const CellParams& params,
                                        const cv::Rect& valid_region = {}, TileStains* measured = nullptr);

}  // namespace ihc::scoring
