#pragma once
// Private to tiling: one reader per file, each with a detect-and-open entry point.
// A reader returns nullptr when the file is not its format, and throws SlideError when it is
// its format but broken.
#include <filesystem>
#include <memory>
#include <string>

#include "ihc/tiling/slide.hpp"

namespace ihc::tiling::detail {

// Direct libtiff + TurboJPEG tile reader for tiled TIFFs with JPEG tiles (Aperio SVS, generic).
std::unique_ptr<Slide> open_tiff_jpeg(const std::filesystem::path& path);
// Every format OpenSlide knows.
std::unique_ptr<Slide> open_openslide(const std::filesystem::path& path);
// Plain images (PNG, JPEG, non-tiled TIFF, ...) through OpenCV: one level, no resolution.
std::unique_ptr<Slide> open_plain_image(const std::filesystem::path& path);

// What libtiff reported as errors (not warnings) on this thread during the last open_openslide,
// "; "-separated; empty if nothing (or if another library has since taken libtiff's handlers).
std::string last_libtiff_errors();

}  // namespace ihc::tiling::detail
