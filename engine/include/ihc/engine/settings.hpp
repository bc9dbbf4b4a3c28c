#pragma once
// The scoring settings a user gives (as text and numbers, the way the command line and the
// Python module take them), turned into ScoreOptions for the pipeline, and the slide opened with
// them. No option parsing here: engine/cli binds these fields to flags.
#include <memory>
#include <optional>
#include <string>

#include "ihc/engine/pipeline.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {

// Resolutions a brightfield scanner can deliver (100x oil to a 1x overview): outside, a value
// is a typo or a damaged file, refused rather than scored.
inline constexpr double kMinMpp = 0.1, kMaxMpp = 10.0;

struct ScoringSettings {
  std::optional<double> mpp;
  double analysis_mpp = 0.5;
  int threads = 0;
  std::string guideline = "asco-cap-2018";
  std::string specimen = "resection";  // gastric only: resection | biopsy
  std::string stain_h, stain_dab;
  double i0 = 255.0;
  std::string stains = "default";  // default | estimate | FILE
  std::string roi;                 // GeoJSON region of interest
  std::string config;              // JSON thresholds (see config.hpp)
  std::string decode = "fast";     // fast | exact (ScoreOptions::exact_decode)
  bool read_glass = false;         // ScoreOptions::read_glass
};

// Turns the settings into ScoreOptions; throws EngineError(usage) for bad values,
// EngineError(input) for an unreadable --config or --roi file.
ScoreOptions make_score_options(const ScoringSettings& settings);

// Applies the `stains` setting to `options` for this slide (estimation, a stains file, or the
// defaults), recording where the vectors came from. Returns the fallback warning (empty: none).
[[nodiscard]] std::string apply_stain_choice(const tiling::Slide& slide, const ScoringSettings& settings, ScoreOptions& options);

// How settings.mpp meets the file's own resolution: `score` overrides the file with it; `batch`
// fills it in only where the file has none (a manifest's mpp column overrides, as in score).
enum class MppUse { override_file, fill_missing };

// Opens a slide for scoring: SlideError becomes EngineError(input) naming the file; applies
// settings.mpp as `use` says, and refuses a slide left without a resolution (EngineError(usage),
// ending with `no_mpp_hint`). IHCSCORE_READER=openslide in the environment sends every slide
// through OpenSlide.
std::unique_ptr<tiling::Slide> open_for_scoring(
    const std::string& path, const ScoringSettings& settings, const tiling::OpenOptions& options = {},
    MppUse use = MppUse::override_file,
    const std::string& no_mpp_hint = "give micrometres per pixel with --mpp (e.g. --mpp 0.25 for 40x)");

}  // namespace ihc::engine
