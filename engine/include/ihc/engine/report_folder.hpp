#pragma once
// `score --report DIR`: a folder a pathologist opens with a double-click (index.html, from the
// file system, no server, no network). The slide as a zoomable Deep Zoom pyramid (OpenSeadragon,
// copied in), cut from the tiles scoring decodes anyway (tissue tiles only; deepest level = the
// analysis resolution); every detected cell coloured by class, the cells left out, a heatmap of
// % complete and % intense on a ~200 µm grid, the ROI and flagged areas, as switchable overlays;
// a panel with the score and the numbers behind it. The browser-side code lives in
// engine/report/ (viewer.html, viewer.js, viewer.css) and is compiled into the engine.
//
// Layout of DIR: index.html, viewer.js, viewer.css, openseadragon.min.js, data.js (the report,
// the pyramid's tile list, ROI, flagged areas), cells.js (one entry per detected cell),
// thumbnail.jpg, slide_files/<level>/<col>_<row>.jpg, blank.jpg.
//
// Written like every other output: into a temporary folder beside DIR, renamed when complete; a
// failure or a signal leaves nothing (the temporary folder is removed), an existing DIR is
// replaced only with `overwrite`.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "ihc/engine/pipeline.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {

// Whether this build carries the viewer's browser code (OpenSeadragon from npm, installed by
// scripts/setup-deps.sh when the engine was configured).
bool report_viewer_available();

// The first entry of `dir` that a report folder does not hold (a file of the user's), or none;
// none also when `dir` is not a folder. A report folder is replaced only when this is none.
std::optional<std::string> not_a_report_entry(const std::filesystem::path& dir);

class ReportFolder {
 public:
  // Checks DIR (EngineError(output) when it exists and !overwrite, holds anything a report does
  // not write, or its parent is missing)
  // and creates the temporary folder. `mpp` (0: the analysis resolution) asks for the pyramid's
  // finest level at another resolution: the nearest power of two from 4x finer (not finer than
  // the slide) to 8x coarser. Finer levels are read again from the slide (more decoding).
  ReportFolder(std::filesystem::path dir, bool overwrite, double mpp = 0);
  ~ReportFolder();  // removes the temporary folder unless commit() ran
  ReportFolder(const ReportFolder&) = delete;
  ReportFolder& operator=(const ReportFolder&) = delete;

  // Before scoring: sets `options.on_tile_image` (the pyramid's fine levels) and asks for the
  // cells (keep_cells, keep_left_out).
  void attach(const tiling::Slide& slide, ScoreOptions& options);
  // After scoring: the coarse levels (read from the slide's own pyramid), the data files, the
  // viewer; then renames the temporary folder to DIR. `report`: report_json of the result.
  void commit(const tiling::Slide& slide, const SlideResult& result, const ScoreOptions& options,
              const nlohmann::json& report);

  // The Deep Zoom geometry: the image is the slide at analysis resolution.
  struct Pyramid {
    double downsample = 1;    // level-0 pixels per pyramid pixel (its finest level)
    double analysis_downsample = 1;  // level-0 pixels per analysis pixel
    int finer = 0;            // log2(analysis pixel / pyramid pixel): > 0 finer, < 0 coarser
    std::int64_t width = 0, height = 0;  // pyramid pixels
    int max_level = 0;        // Deep Zoom level of the analysis resolution
    static constexpr int kTile = 256;
  };

 private:
  void write_tile(int level, std::int64_t col, std::int64_t row, const cv::Mat& rgb);
  void on_tile(const tiling::Rect& core, const cv::Mat& rgb);
  int fine_levels() const;

  std::filesystem::path dir_, tmp_;
  bool overwrite_ = false, committed_ = false;
  double requested_mpp_ = 0;
  const tiling::Slide* slide_ = nullptr;
  double core_px_ = 0;  // an analysis tile's core side in pyramid pixels
  int signal_slot_ = -1;
  Pyramid pyramid_;
  std::mutex mutex_;
  std::vector<std::set<std::pair<std::int64_t, std::int64_t>>> written_;  // per level: (col, row)
};

// One slide of a batch's report index (batch --report DIR: DIR/index.html).
struct ReportIndexRow {
  std::string id;           // DIR/<id>/ holds the slide's report folder
  std::string status, score, category, guideline, decisive_metric, decisive_percent, percent_complete,
      percent_complete_intense, cells, error;
  bool has_folder = false;  // DIR/<id>/index.html exists
  bool has_thumbnail = false;
};
// The index page: a table of the slides, sortable by any column, a thumbnail and a link each.
std::string report_index_html(const std::vector<ReportIndexRow>& rows);
// The index page's title element: how batch knows an index.html it may replace as its own.
inline constexpr std::string_view kBatchIndexTitle = "<title>ihcscore batch report</title>";

}  // namespace ihc::engine
