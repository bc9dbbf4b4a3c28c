#pragma once
// Scores one slide: tissue mask, tile grid, tiles in parallel (bounded in flight), reduction in
// tile order so the result never depends on thread count or scheduling.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/clusters.hpp"
#include "ihc/scoring/guideline.hpp"
#include "ihc/scoring/quality.hpp"
#include "ihc/scoring/region.hpp"
#include "ihc/scoring/stain_check.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/scoring/tissue.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {

struct ScoreOptions {
  double analysis_mpp = 0.5;    // µm/px at which cells are measured
  int tile_px = 1024;           // tile core side at analysis resolution
  // Margin read around each tile (outlines of border cells); widened by halo_um_for to cover
  // the neighbourhood the tumour-cell rule counts in, so that no result depends on the tiling.
  double halo_um = 24.0;
  int threads = 0;              // 0: all cores
  scoring::Guideline guideline = scoring::Guideline::AscoCap2018;
  // Gastric only: a biopsy is scored on its best cohesive cluster (clusters.hpp).
  scoring::Specimen specimen = scoring::Specimen::Resection;
  scoring::StainVectors stains = scoring::StainVectors::defaults();
  std::string stains_source = "default";  // "default", "estimated" or "file:PATH"
  // Weight of the positive (pink, eosin-like) residual subtracted from DAB; see specific_dab.
  double counterstain_residual_weight = 4.0;
  scoring::CellParams cells;
  scoring::RuleParams rules;
  scoring::TissueParams tissue;
  scoring::QualityParams quality;  // folds and out-of-focus areas (quality.hpp)
  scoring::StainCheckParams stain_check;  // an H&E slide is not evaluable (stain_check.hpp)
  // A slide whose failed tiles exceed this share of the analysed tissue tiles is not evaluable.
  double max_failed_tile_fraction = 0.05;
  // true: tiles are decoded at full size and area-averaged, as through OpenSlide, so both readers
  // give identical results. false (default): JPEG tiles are decoded at reduced DCT scale where
  // the analysis resolution allows (faster; cell counts differ from OpenSlide's by ~0.01 %).
  bool exact_decode = false;
  // Decode every source tile of an analysis tile, glass included (false: source tiles the tissue
  // overview shows as glass are filled with the glass colour, not read; tiling::Slide::set_tissue_hint).
  bool read_glass = false;
  bool keep_cells = false;      // keep every counted cell (level-0 coordinates) in the result
  bool keep_left_out = false;   // ... and every detected cell the tumour-cell rules left out
  // Called from the worker threads with each analysed tile's core image at analysis resolution
  // (RGB, CV_8UC3) and the core (level-0 pixels): the report folder cuts its pyramid from the
  // pixels scoring decodes anyway (report_folder.hpp). Never changes the result.
  std::function<void(const tiling::Rect& core, const cv::Mat& rgb)> on_tile_image;
  // Region of interest (level-0 pixels): only tiles touching it are read and only cells whose
  // nucleus centre lies inside are counted. Empty: the whole slide.
  scoring::Region roi;
  std::string roi_source;       // the file it came from, for the report
  std::string config_source;    // --config file, when one was given
  std::string config_hash;      // FNV-1a of its content

  // The gastric biopsy rule is in force (a cluster decides, clusters.hpp).
  bool biopsy_rule() const { return guideline == scoring::Guideline::Gastric && specimen == scoring::Specimen::Biopsy; }
  // The cell parameters with what the guideline decides about cells (lateral counts as complete).
  scoring::CellParams cell_params() const {
    scoring::CellParams p = cells;
    p.lateral_counts_complete = scoring::rules_of(guideline).lateral_counts_complete;
    return p;
  }
};

// One counted cell in level-0 pixel coordinates (for markup and GeoJSON).
struct SlideCell {
  float x = 0, y = 0;
  float completeness = 0, intensity_od = 0, nucleus_area_um2 = 0;
  scoring::CellClass cell_class = scoring::CellClass::Negative;
  bool counted = false;  // passes the tumour-cell rules
  std::uint8_t left_out = 0;  // the tumour-cell rules it fails (scoring::kLeftOut*)
  bool cytoplasmic = false;  // membrane-positive but in a cytoplasmic pattern: scored 0 (artefacts.hpp)
  bool pigment = false;      // pigment-laden outline: scored 0 (artefacts.hpp)
  bool lateral = false;      // incomplete, lateral or basolateral staining (scoring::is_lateral)
  std::vector<cv::Point2f> outline;
  // Nucleus centre in a fold or an out-of-focus block (scoring::kExcludedFold / kExcludedFocus,
  // quality.hpp): detected, but not scored.
  std::uint8_t excluded = 0;
  std::int32_t block = -1;  // the tile's quality block holding the nucleus centre (-1: none)
};

struct TileResult {
  tiling::Rect region;  // the tile core, level-0 pixels
  scoring::CellCounts counts;
  std::int64_t cells_detected = 0;  // before the tumour-cell rules
  std::array<std::int64_t, scoring::kLeftOutRules> left_out_by_rule{};  // detected cells failing each rule
  bool failed = false;
  std::string error;
  std::vector<SlideCell> cells;  // only with keep_cells
  std::vector<SlideCell> left_out_cells;  // only with keep_left_out: detected, not counted (or outside the ROI)
  std::int64_t cells_cytoplasmic = 0;  // counted cells scored 0 for a cytoplasmic pattern
  std::int64_t cells_pigment = 0;      // counted cells scored 0 for pigment granules on the outline
  // Tumour cells left out of the score because their nucleus lies in a fold / an out-of-focus
  // block (a cell in both counts as fold), and the tile core's tissue area judged and flagged
  // (µm², blocks with enough tissue to be judged; a block in both counts as fold).
  std::int64_t cells_fold = 0, cells_focus = 0;
  double tissue_um2 = 0, fold_um2 = 0, focus_um2 = 0;
  // The tile's quality blocks (quality.hpp) and each block's judged area inside the core (µm²),
  // kept so that the slide-wide focus reference can flag more blocks after all tiles are read.
  scoring::QualityMap quality;
  std::vector<float> block_core_um2;
  // The counted tumour cells (inside the ROI) by block, class and pattern; counts, cells_* and
  // the flags of `cells` are made from it once the blocks are final (score_slide).
  struct Tally {
    std::int32_t block = -1;
    scoring::CellClass cell_class = scoring::CellClass::Negative;
    bool cytoplasmic = false, pigment = false, lateral = false;
    float x = 0, y = 0;  // nucleus centre, level-0 pixels (biopsy clusters)
  };
  std::int64_t cells_lateral = 0;  // counted stained cells whose staining is lateral / basolateral
  scoring::TileStains stains;      // what cell detection measured of the stains (cells.hpp)
  std::vector<scoring::ClusterCell> stained;  // counted cells of class 1+ or more (biopsy only)
  std::vector<Tally> tally;
};

struct SlideResult {
  std::string path, vendor, reader;
  std::int64_t width = 0, height = 0;
  int levels = 0;
  double mpp_slide = 0;
  double mpp_analysis = 0;
  int read_level = 0;
  // The read level's colour block where the analysis put the colour back (TilePlan::chroma_x,
  // chroma_y; scoring/chroma.hpp); 1 x 1 otherwise.
  int chroma_x = 1, chroma_y = 1;
  std::int64_t tiles_total = 0;     // tiles covering the slide
  std::int64_t tiles_tissue = 0;    // tiles with tissue in the mask
  std::int64_t tiles_analysed = 0;  // read and scored
  std::int64_t tiles_failed = 0;
  std::vector<TileResult> tiles;    // tissue tiles, in grid order
  scoring::CellCounts counts;
  std::int64_t cells_detected = 0;
  std::array<std::int64_t, scoring::kLeftOutRules> left_out_by_rule{};  // cells failing each tumour-cell rule (bit b)
  std::int64_t cells_cytoplasmic = 0;   // counted cells scored 0 for a cytoplasmic pattern
  std::int64_t tiles_cytoplasmic = 0;   // tiles where that happened
  std::int64_t cells_pigment = 0;       // counted cells scored 0 for pigment granules on the outline
  std::int64_t cells_lateral = 0;       // counted stained cells with lateral / basolateral staining
  // Gastric biopsy: the largest cohesive cluster of cells of class >= 1+, 2+, 3+ ([0] unused).
  std::array<std::int64_t, 4> largest_cluster{};
  std::int64_t cells_fold = 0, cells_focus = 0;  // tumour cells left out: fold, out of focus
  std::int64_t tiles_fold = 0, tiles_focus = 0;  // tiles with a flagged area of that kind
  double tissue_um2 = 0, fold_um2 = 0, focus_um2 = 0;  // judged tissue and flagged areas
  double focus_reference = -1;      // the slide's median block sharpness (-1: not used)
  std::int64_t blocks_focus_slide = 0;  // blocks flagged only against the slide's median
  scoring::ClassPercent percent;
  scoring::SlideScore score = scoring::SlideScore::NotEvaluable;
  scoring::Her2Category category = scoring::Her2Category::NotEvaluable;
  std::string not_evaluable_reason;
  double elapsed_s = 0;
  int threads = 0;
  double eosin_fraction = 0;        // share of the tissue stained with eosin (stain_check.hpp)
  // Medians over the analysed tiles of what cell detection measured of the stains (cells.hpp
  // TileStains): the DAB share taken out of the haematoxylin, the haematoxylin nuclei leak into DAB.
  double dab_in_hematoxylin = 0, hematoxylin_in_dab = 0;
  std::vector<std::string> slide_warnings;  // what the reader worked around (tiling::Slide::warnings)
  scoring::ColourMeasures colour{1, 0};  // colour and off-stain shares of the tissue (stain_check.hpp)
  double roi_px2 = 0;  // level-0 px² of the region of interest on the slide, as counted (0: none given)
  std::int64_t tile_reads_skipped = 0;  // source-tile reads left out as glass (tiling::Slide::set_tissue_hint)
  cv::Mat thumbnail;               // RGB, used for the tissue mask (and heatmaps)
  double thumbnail_downsample = 1; // level-0 pixels per thumbnail pixel
};

// Reads a whole-slide overview of at most `max_side` pixels on its long side, from the
// smallest level that is large enough, in bounded chunks on `threads` threads (0: all cores;
// the overview is the same on any number). dct_decode: as TilePlan::dct_decode. Parts that
// cannot be read (a damaged source tile) stay white and are 255 in `unreadable_out` (CV_8U, the
// overview's size); tiling::SlideError only when no part can be read.
cv::Mat read_thumbnail(const tiling::Slide& slide, int max_side, double* downsample_out, bool dct_decode = true,
                       int threads = 1, cv::Mat* unreadable_out = nullptr);

// Where the tiles of a slide are and how they are read. Shared by scoring and benchmarks, so
// both touch exactly the same pixels.
struct TilePlan {
  double mpp_slide = 0;
  double mpp_analysis = 0;
  double downsample = 1;         // level-0 pixels per analysis pixel
  int read_level = 0;            // pyramid level the tiles are read from
  int halo_px = 0;               // analysis pixels of margin on each side
  bool dct_decode = true;        // reduced-scale JPEG decoding allowed (ScoreOptions::exact_decode)
  // The read level's colour block (tiling::Level::chroma_x, chroma_y) where tiles are read at the
  // level's full scale (a 20x slide analysed at 0.5 um/px, resampled or not), so the analysis
  // would see the file's subsampled colour: scoring/chroma.hpp puts it back on the level's grid.
  // 1 x 1 where the read is reduced 2x or more (a reduced decode or the area average holds the
  // colour at the analysis resolution).
  int chroma_x = 1, chroma_y = 1;
  std::int64_t tiles_total = 0;  // tiles covering the slide
  std::vector<tiling::Rect> cores;  // tissue tile cores (level-0 pixels), in grid order
  // The order in which cores are processed (indices into cores): bands of kTileBandRows grid
  // rows, each band column by column, so that a tile's neighbours above and to the left were
  // read a few tiles earlier and the source tiles their halos share are still in the reader's
  // cache. Results never depend on it (they are reduced in grid order).
  std::vector<std::size_t> order;
  cv::Mat thumbnail;
  double thumbnail_downsample = 1;
  double eosin_fraction = 0;     // share of the overview's tissue stained with eosin (stain_check.hpp)
  scoring::ColourMeasures colour{1, 0};  // of the overview's tissue (stain_check.hpp)
  cv::Mat tissue;                // the overview's tissue mask (before the ROI), thumbnail pixels
  cv::Vec3b glass{255, 255, 255};  // median colour of the overview's glass
  double overview_unreadable_fraction = 0;  // of the overview, damaged source tiles (read_thumbnail)
  double roi_px2 = 0;            // level-0 px² of the region of interest on the slide (0: none given)
  bool roi_crosses = false;      // its outlines cross themselves or overlap (Region::area is not the area)
};

// The margin actually read around each tile: halo_um, or more where a cell's neighbours
// (CellParams::neighbourhood_um, seeds found up to a nucleus radius inside the margin) need it.
double halo_um_for(const ScoreOptions& options);

// The overview mask given to the reader (Slide::set_tissue_hint): the plan's tissue widened by one
// overview pixel (the reader widens each source tile by another). Empty where every source tile
// is read: --read-glass, exact decoding, or no overview mask.
cv::Mat tissue_read_mask(const TilePlan& plan, const ScoreOptions& options);
// How far neighbouring tiles' reads overlap at each edge, level-0 pixels (twice the halo):
// Slide::set_request_overlap.
std::int64_t request_overlap_l0(const TilePlan& plan);
// For its lifetime, `slide` reads the plan's tiles as scoring does: glass source tiles not decoded
// (tissue_read_mask), the tiles neighbouring reads share decoded once (request_overlap_l0).
class ScopedReadHints {
 public:
  ScopedReadHints(const tiling::Slide& slide, const TilePlan& plan, const ScoreOptions& options);
  ~ScopedReadHints();
  ScopedReadHints(const ScopedReadHints&) = delete;
  ScopedReadHints& operator=(const ScopedReadHints&) = delete;

 private:
  const tiling::Slide& slide_;
};

// Throws std::invalid_argument when the slide has no resolution or options are impossible.
TilePlan plan_tiles(const tiling::Slide& slide, const ScoreOptions& options);
// The same without the overview and tissue mask (resolutions, read level, halo only).
TilePlan plan_geometry(const tiling::Slide& slide, const ScoreOptions& options);

// Cells of one tile core (all detected; SlideCell::counted says which pass the tumour-cell
// rules), in level-0 coordinates. `rgb_out` (optional) receives the tile image at analysis
// resolution, halo included: its pixel (0, 0) is level-0 (core.x, core.y) - halo_px * downsample;
// as the file stores it (before the colour is put back, TilePlan::chroma_x).
// `areas_out` (optional) receives the tile core's judged tissue and flagged areas (the
// tissue_um2, fold_um2, focus_um2 fields of a TileResult) with the block map they come from
// (quality, block_core_um2); the rest is left alone.
std::vector<SlideCell> analyse_tile(const tiling::Slide& slide, const TilePlan& plan, const ScoreOptions& options,
                                    const tiling::Rect& core, cv::Mat* rgb_out, TileResult* areas_out = nullptr);

// A region of level-0 pixels, `d` level-0 pixels per output pixel, out_w x out_h (RGB), from the
// finest pyramid level not finer than needed.
cv::Mat read_downsampled(const tiling::Slide& slide, double x0, double y0, double d, int out_w, int out_h);

// A tile at analysis resolution with its halo: (core / downsample + 2 * halo) pixels a side, as
// the file stores it, or with `restore_colour` as the analysis sees it (the colour the file
// subsampled put back, TilePlan::chroma_x); `as_stored` (optional) then also receives the former.
cv::Mat read_tile(const tiling::Slide& slide, const TilePlan& plan, const tiling::Rect& core,
                  bool restore_colour = false, cv::Mat* as_stored = nullptr);

// How many pixels of the read level that tile covers (the unit of benchmark figures).
double tile_source_pixels(const tiling::Slide& slide, const TilePlan& plan, const tiling::Rect& core);

// Threads a request gets: all cores for 0, else the request capped at the cores oneTBB will run
// (more would only queue, and oneTBB warns on stderr about the workers it refuses).
int worker_threads(int requested);

// Runs body(k) for k in [0, n) on `threads` threads, one item per task, so at most `threads`
// items are in flight. The same function serves scoring and benchmarks.
void for_each_tile(int threads, std::size_t n, const std::function<void(std::size_t)>& body);

// Called after each tile with (tiles done, tiles to do).
using TileProgress = std::function<void(std::int64_t done, std::int64_t total)>;

// Throws tiling::SlideError when the slide cannot be read at all, std::invalid_argument for
// impossible options (no resolution). Tile failures are counted, not thrown.
SlideResult score_slide(const tiling::Slide& slide, const ScoreOptions& options,
                        const TileProgress& progress = {});

// Applies the guideline to already counted cells (used by score_slide and by re-scoring).
void apply_guideline(SlideResult& result, const ScoreOptions& options);

// The score of counted cells with the rule that placed it: the guideline's per-cent table, or
// for a gastric biopsy the best cluster ("cluster_cells", threshold the cells a cluster needs).
scoring::Decision decide(const SlideResult& result, const ScoreOptions& options);

}  // namespace ihc::engine
