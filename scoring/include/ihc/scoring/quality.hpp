#pragma once
// Areas of a tile that cannot be scored (issue 4: artefacts must not turn into membrane staining).
//
// Out of focus. A blurred patch smears membranes and nuclear edges, so membrane rays and
// nucleus seeds measure nothing reliable. Sharpness is contrast-normalised: per block (block_um
// square), the mean squared Laplacian residual of the half-resolution haematoxylin (structure at
// about 1-2 µm, sampled at every other pixel of every other row) over the variance of its 2x
// coarser copy. A blur of a few µm removes the fine energy and keeps most of the variance.
// Blocks with too little structure to tell (focus_min_contrast_od: blank stroma, glass) are not
// judged. The rule compares a tile with itself (real scanners and image sources differ in
// absolute sharpness: the real 0.6 µm/px patches are far softer than the generator's fields): a
// block below focus_relative_sharpness x the tile's median sharpness, in a group of at least
// focus_min_blocks connected ones, is out of focus. A tile blurred all over has a low median of
// its own: the engine then compares every tile's blocks with the slide's median block sharpness
// as well (flag_blurred_against, focus_slide_reference), so a blurred tile among sharp ones is
// flagged. A single image, or a slide whose judged tissue is mostly blurred, is compared with
// itself only and is not flagged.
//
// Tissue folds (off by default: `folds`). A fold lies two layers thick, so every stain's optical
// density is about doubled over it and a 1+ field reads higher. It is told from merely dense or
// dark tissue by its *floor*: the lightest part of a block (fold_floor_percentile of H, and of
// DAB) is cytoplasm or matrix in one layer, the sum of two layers in a fold. A block is a fold
// when its H floor reaches fold_ratio x the tile's median H floor (and fold_min_h_od), its DAB
// floor has risen in step (within fold_max_imbalance either way: a DAB-rich epithelium or a
// sheet of dense nuclei raises one stain far more than the other), in a group of at least
// fold_min_blocks, and the tissue blocks touching it go with it (fold_grow_edge). Off by
// default because the floor also holds a part that does not double (background tint against
// I0, noise): a two-layer band raised the H floor only 1.4-1.7x on the independent generator,
// and at a ratio low enough to find it a real H&E slide had large areas flagged (docs/algorithm.md).
//
// Cells whose nucleus centre lies in a flagged block stay detected but are not scored; the
// engine counts and reports them. Both rules work on block statistics at quarter resolution
// (every other row) and one sampled fine-scale pass, so they cost little next to cell detection.
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

namespace ihc::scoring {

struct QualityParams {
  double block_um = 48.0;               // side of the squares judged
  double tissue_od = 0.05;              // H + DAB concentration of a tissue pixel
  double min_tissue_fraction = 0.7;     // a block with less tissue is not judged
  // Folds
  bool folds = false;                   // off by default: see the header comment
  double fold_floor_percentile = 20.0;  // the block's floor: this percentile of H + DAB
  double fold_ratio = 2.0;              // H and DAB floor / the tile's reference floors making a fold
  double fold_min_h_od = 0.06;          // ... and the haematoxylin floor must reach this
  double fold_dab_epsilon_od = 0.01;    // added to both DAB floors before their ratio (colourless fields)
  double fold_max_imbalance = 2.0;      // neither stain's ratio above this x the other's
  int fold_min_blocks = 2;              // connected fold blocks needed
  bool fold_grow_edge = true;           // the tissue blocks touching a fold are taken with it
  // Out of focus
  bool focus = true;
  double focus_relative_sharpness = 0.25; // sharpness below this x the tile's median: blurred
  double focus_min_contrast_od = 0.03;  // coarse structure (standard deviation of H) needed to judge
  int focus_min_blocks = 2;             // connected blurred blocks needed
  bool focus_slide_reference = true;    // also below focus_relative_sharpness x the slide's median
  int focus_slide_min_blocks = 8;       // judged blocks the slide needs for its median to be used
};

// Why a cell or a block is left out of the score (bit flags).
enum : std::uint8_t { kExcludedFold = 1, kExcludedFocus = 2 };

// The flagged blocks of one tile image.
struct QualityMap {
  int block_px = 0;                   // block side, pixels of the full-resolution tile image
  int cols = 0, rows = 0;             // blocks, row-major from the image's (0, 0)
  std::vector<std::uint8_t> flags;    // kExcludedFold | kExcludedFocus per block
  std::vector<std::uint8_t> tissue;   // 1: the block was judged (enough tissue)
  std::vector<float> floor_od;        // per block: the fold floor (H + DAB percentile)
  std::vector<float> floor_h, floor_dab;  // per block: the same percentile of H and of DAB alone
  std::vector<float> sharpness;       // per block: fine / coarse edge energy (-1 not judged)
  double reference_floor_od = 0;      // the tile's median floor over tissue blocks
  double reference_floor_h = 0, reference_floor_dab = 0;  // ... of H and of DAB
  double reference_sharpness = 0;     // the tile's median sharpness over judged blocks

  // Flags of the block holding full-resolution pixel p (0 outside the map).
  std::uint8_t at(cv::Point2f p) const {
    const int b = block_of(p);
    return b < 0 ? 0 : flags[static_cast<std::size_t>(b)];
  }
  // Index of the block holding full-resolution pixel p (-1 outside the map).
  int block_of(cv::Point2f p) const {
    if (block_px <= 0 || p.x < 0 || p.y < 0) return -1;
    const int bx = static_cast<int>(p.x) / block_px, by = static_cast<int>(p.y) / block_px;
    if (bx >= cols || by >= rows) return -1;
    return by * cols + bx;
  }
};

// Judges the blocks of one tile. `hematoxylin_half`: CV_32FC1 at half resolution, as
// deconvolve_for_cells gives it ((dab.rows / 2) x (dab.cols / 2)); `dab`: CV_32FC1 at full
// resolution; `mpp`: µm per full-resolution pixel; `valid_region`: the full-resolution part
// holding real pixels (empty: all). With both rules off it returns an empty map at no cost.
QualityMap assess_quality(const cv::Mat& hematoxylin_half, const cv::Mat& dab, double mpp,
                          const QualityParams& params, const cv::Rect& valid_region = {});

// The median sharpness of the judged blocks of many block maps (a slide's tiles); -1 when they
// hold fewer than params.focus_slide_min_blocks judged blocks.
double median_sharpness(const std::vector<const QualityMap*>& maps, const QualityParams& params);

// Flags as out of focus the judged blocks of `map` below focus_relative_sharpness x `reference`
// (a slide's median_sharpness) that are not in a fold, in groups of at least focus_min_blocks
// (blocks already flagged out of focus count towards a group). Returns the blocks newly flagged.
int flag_blurred_against(QualityMap& map, double reference, const QualityParams& params);

}  // namespace ihc::scoring
