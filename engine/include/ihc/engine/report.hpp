#pragma once
// The slide report: JSON for machines, a few lines for people.
#include <string>

#include <nlohmann/json.hpp>

#include "ihc/engine/pipeline.hpp"

namespace ihc::engine {

std::string version_string();

// Keys documented in docs/report.md. Timing fields: elapsed_s only.
nlohmann::json report_json(const SlideResult& result, const ScoreOptions& options);

// Human summary, a few lines, for stdout.
std::string report_summary(const SlideResult& result, const ScoreOptions& options);

// The warning for cells scored 0 for a cytoplasmic pattern (report "warnings", summary); empty
// when there were none.
std::string cytoplasmic_warning(const SlideResult& result, const ScoreOptions& options);
// The warning about folded and out-of-focus tissue left out of the score (quality.hpp), or ""
// when under 2 % of the judged tissue and of the tumour cells were left out.
std::string quality_warning(const SlideResult& result);
// The warning for cells scored 0 for pigment granules on their outline, or "" when under 2 % of
// the counted cells.
std::string pigment_warning(const SlideResult& result);

// Rounds to `digits` decimals so reports are stable and readable.
double round_to(double value, int digits);

}  // namespace ihc::engine
