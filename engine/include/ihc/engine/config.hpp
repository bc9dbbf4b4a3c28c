#pragma once
// Scoring configuration files (`--config FILE`, JSON): override the documented thresholds.
//   {"cells": {"faint_od": 0.08, "moderate_od": 0.2, "intense_od": 0.55, ...},
//    "rules": {"noise_floor_percent": 1.0},
//    "counterstain_residual_weight": 4.0}
// Every key of CellParams' numeric fields is accepted; an unknown key is an error (a typo must
// not silently leave a default in force).
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "ihc/engine/pipeline.hpp"
#include "ihc/engine/text.hpp"  // content_hash

namespace ihc::engine {

// Applies the file to `options` and records its path and content hash. Throws
// EngineError(input) naming the file and the bad key or value.
void apply_config_file(const std::filesystem::path& path, ScoreOptions& options);

// The same from parsed JSON (`name` for messages).
void apply_config(const nlohmann::json& config, const std::string& name, ScoreOptions& options);

// The thresholds in force, in the file format (so a report's config can be reused as a file).
nlohmann::json config_json(const ScoreOptions& options);

}  // namespace ihc::engine
