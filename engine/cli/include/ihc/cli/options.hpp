#pragma once
// Options shared by the commands that score (score, bench, batch ...), declared once and bound
// to engine::ScoringSettings.
#include <CLI/CLI.hpp>

#include "ihc/engine/settings.hpp"

namespace ihc::cli {

// The command line is a thin layer over the engine: its names are used unqualified here.
using namespace ihc::engine;

// A finite number strictly above zero (CLI11's PositiveNumber lets NaN through).
CLI::Validator finite_positive();

// Adds --mpp --analysis-mpp --threads --guideline --specimen --stain-h --stain-dab --stains
// --config --roi --decode --i0 to `cmd`.
void add_scoring_options(CLI::App& cmd, ScoringSettings& settings);

// engine::apply_stain_choice, printing its fallback warning (if any) as one line on stderr.
void apply_stains_and_warn(const tiling::Slide& slide, const ScoringSettings& settings, ScoreOptions& options);

}  // namespace ihc::cli
