#pragma once
// What a batch scores: the slides of a folder or of a CSV manifest, each with a unique id (its
// report's file name), the manifest's per-slide mpp and roi, and the errors known before scoring.
//
// INPUT is a folder (its regular files, not recursive, sorted by name; a file is a slide when
// tiling::open_slide opens it, or a PNG, JPEG or BMP by its first bytes; a file that no reader
// recognises is skipped silently unless its extension names a slide or image format, then it is
// an error row) or a CSV manifest with a
// `path` column and optional `id`, `mpp` and `roi` columns (relative paths are relative to the
// manifest's folder). A row's `roi` (GeoJSON or ImageScope XML) limits that slide's scoring as --roi does.
//
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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
  // A slide whose id (file stem) an earlier one has: reported under another (unique_ids).
  std::vector<std::string> warnings;
};

// Throws EngineError(input) when INPUT is missing or unreadable, a manifest has no `path`
// column, or a manifest's `id` column repeats an id.
BatchInput collect_batch_input(const std::filesystem::path& input);

// Extensions of slide and image formats (.svs .tif .tiff .ndpi .mrxs .scn .bif .vms .png .jpg
// .jpeg), any case.
bool has_slide_extension(const std::filesystem::path& path);

// "S1" stays "S1"; the second "S1" becomes "S1-2", the third "S1-3" (skipping names in use).
// Characters that cannot appear in a file name (/ \ and control characters) become '_'.
std::vector<std::string> unique_ids(const std::vector<std::string>& wanted);

}  // namespace ihc::engine
