#pragma once
// Private to tiling: one reader per file, each with a detect-and-open entry point.
// A reader returns nullptr when the file is not its format, and throws SlideError when it is
// its format but broken.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ihc/tiling/slide.hpp"

namespace ihc::tiling::detail {

// Direct libtiff + TurboJPEG tile reader for tiled TIFFs with JPEG tiles (Aperio SVS, generic).
std::unique_ptr<Slide> open_tiff_jpeg(const std::filesystem::path& path);
// Every format OpenSlide knows.
std::unique_ptr<Slide> open_openslide(const std::filesystem::path& path);
// Plain images (PNG, JPEG, non-tiled TIFF) through libpng, libjpeg-turbo, libtiff: one level, no resolution.
std::unique_ptr<Slide> open_plain_image(const std::filesystem::path& path);

// Indices of the levels of `all` (level 0 first, as the file lists them) that form a consistent
// pyramid: no larger than level 0, each smaller than the one kept before it, and scaled alike in
// both directions. Level 0 is always kept. Each level left out adds a sentence to `warnings`.
std::vector<std::size_t> consistent_levels(const std::vector<Level>& all, std::vector<std::string>& warnings);

// What libtiff reported as errors (not warnings) on this thread during the last open_openslide,
// "; "-separated; empty if nothing (or if another library has since taken libtiff's handlers).
std::string last_libtiff_errors();

}  // namespace ihc::tiling::detail
