#pragma once
// Options shared by the commands that score (score, bench, batch ...), declared once.
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "ihc/engine/pipeline.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {

// A finite number strictly above zero (CLI11's PositiveNumber lets NaN through).
CLI::Validator finite_positive();

struct ScoringCli {
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
};

// Adds --mpp --analysis-mpp --threads --guideline --stain-h --stain-dab --i0 to `cmd`.
void add_scoring_options(CLI::App& cmd, ScoringCli& cli);

// Turns the parsed options into ScoreOptions; throws CommandError(kExitUsage) for bad values.
ScoreOptions make_score_options(const ScoringCli& cli);

// Applies --stains to `options` for this slide (estimation, a stains file, or the defaults),
// recording where the vectors came from; prints the fallback warning, if any, to stderr.
void apply_stain_choice(const tiling::Slide& slide, const ScoringCli& cli, ScoreOptions& options);

// Opens a slide for the commands: SlideError becomes CommandError(kExitInput) naming the file;
// applies --mpp, and refuses a slide without a resolution when --mpp was not given.
std::unique_ptr<tiling::Slide> open_for_scoring(const std::string& path, const ScoringCli& cli,
                                                const tiling::OpenOptions& options = {});

}  // namespace ihc::engine
