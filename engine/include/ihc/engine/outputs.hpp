#pragma once
// Pictures and viewer files made from a scored slide.
#include <filesystem>
#include <string>

#include <opencv2/core.hpp>

#include "ihc/engine/pipeline.hpp"

namespace ihc::engine {

// The slide overview with each analysed tile tinted by its per cent of complete membranes
// (2+ and 3+), a legend below it; same aspect ratio as the slide. RGB, CV_8UC3.
cv::Mat render_heatmap(const SlideResult& result);

// Colour QuPath-style class colours (RGB): 0 blue, 1+ yellow, 2+ orange, 3+ red.
cv::Vec3b class_colour(scoring::CellClass c);

// Writes cells (needs ScoreOptions::keep_cells and keep_outlines) and optionally tiles as a
// GeoJSON FeatureCollection that QuPath imports: level-0 pixel coordinates, objectType
// "detection" (cells) / "annotation" (tiles), classification {name, color}, measurements.
// Streams to the file; atomic (temporary name, then rename). Throws EngineError.
void write_geojson(const std::filesystem::path& out, const SlideResult& result, bool include_tiles, bool include_left_out,
                   bool overwrite);

// Throws EngineError(usage) unless `path` ends in .png (any case) or is a special file such as
// /dev/stdout: a PNG written under another name (picture.jpg) would not open as what it says.
void check_png_name(const std::string& option, const std::filesystem::path& path);

// Encodes an 8-bit colour image (RGB, or BGR as OpenCV draws) as PNG and writes it atomically.
// Throws EngineError.
enum class ChannelOrder { rgb, bgr };
void write_png(const std::filesystem::path& out, const cv::Mat& image, bool overwrite,
               ChannelOrder order = ChannelOrder::rgb);

}  // namespace ihc::engine
