#pragma once
// `ihcscore batch INPUT --out DIR`: scores many slides, one report per slide plus summary.csv,
// resumable (slides already scored with the same settings are skipped) and interruptible.
//
// INPUT is a folder (its regular files, not recursive, sorted by name; a file is a slide when
// tiling::open_slide opens it; a file that no reader recognises is skipped silently unless its
// extension names a slide or image format, then it is an error row) or a CSV manifest with a
// `path` column and optional `id`, `mpp` and `roi` columns (relative paths are relative to the
// manifest's folder). ROI filtering is not implemented: `roi` is recorded, not applied.
//
// Resolution: the manifest's `mpp` for that slide, else the file's own, else --mpp.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ihc/engine/cli_common.hpp"

namespace ihc::engine {

struct BatchItem {
  std::string id;                  // unique within the batch; DIR/<id>.json
  std::filesystem::path path;
  std::optional<double> mpp;       // manifest value
  std::string roi;                 // manifest value, recorded only
  std::string error;               // known before scoring (bad manifest cell, unreadable slide)
};

struct BatchInput {
  bool manifest = false;
  std::vector<BatchItem> items;    // in input order
};

// Throws CommandError(kExitInput) when INPUT is missing or unreadable, or a manifest has no
// `path` column.
BatchInput collect_batch_input(const std::filesystem::path& input);

// Extensions of slide and image formats (.svs .tif .tiff .ndpi .mrxs .scn .bif .vms .png .jpg
// .jpeg), any case.
bool has_slide_extension(const std::filesystem::path& path);

// "S1" stays "S1"; the second "S1" becomes "S1-2", the third "S1-3" (skipping names in use).
// Characters that cannot appear in a file name (/ \ and control characters) become '_'.
std::vector<std::string> unique_ids(const std::vector<std::string>& wanted);

// 64-bit FNV-1a.
std::uint64_t fnv1a64(std::string_view text);

// The canonical description of everything that decides a slide's result: scoring settings,
// per-slide mpp and roi, the file's path, size and modification time, and the version.
std::string settings_canonical(const ScoringCli& cli, const BatchItem& item);
// fnv1a64 of settings_canonical, as 16 lower-case hex digits.
std::string settings_hash(const ScoringCli& cli, const BatchItem& item);

// One row of summary.csv.
struct SummaryRow {
  std::string slide;   // id
  std::string status;  // ok | error
  std::string score, category, percent_complete, percent_complete_intense, cells;
  std::string error;   // one line
  std::string elapsed_s;
};
inline constexpr const char* kSummaryHeader =
    "slide,status,score,category,percent_complete,percent_complete_intense,cells,error,elapsed_s";

// A row from a slide report (the JSON batch writes): status ok.
SummaryRow summary_row_from_report(const std::string& id, const nlohmann::json& report);
// Quotes a CSV field when it needs quoting; line breaks become spaces.
std::string csv_field(std::string_view text);
std::string summary_csv(const std::vector<SummaryRow>& rows);

struct BatchOptions {
  std::filesystem::path input;
  std::filesystem::path out;
  ScoringCli scoring;
  bool force = false;
};

// Runs the batch; returns kExitOk, kExitPartial (some slides failed) or kExitInterrupted (when
// *stop became true). Throws CommandError(kExitInput) for an unreadable input,
// CommandError(kExitOutput) when DIR or a file in it cannot be written.
int run_batch(const BatchOptions& options, const std::atomic<bool>* stop);

}  // namespace ihc::engine
