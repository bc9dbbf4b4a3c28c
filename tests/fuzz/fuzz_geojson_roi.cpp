// libFuzzer harness for the region-of-interest parsers (engine/src/roi.cpp, parse_roi: GeoJSON, and
// Aperio ImageScope XML through roi_imagescope.cpp),
// followed by what scoring does with a region (left-out Ignore* annotations included): bounds, area,
// the area within a slide (as the pipeline measures the region), point tests and the rasterised
// mask the pipeline uses to skip tiles. engine::EngineError is the parser's documented refusal;
// anything else is a finding.
#include <cmath>
#include <cstdint>
#include <string>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/roi.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ihc::scoring::Region region;
  try {
    region = ihc::engine::parse_roi(text, "fuzz.geojson");
  } catch (const ihc::engine::EngineError& e) {
    if (e.kind() != ihc::engine::ErrorKind::input) std::abort();
    return 0;
  }
  if (region.empty()) std::abort();  // parse_roi promises at least one polygon
  const cv::Rect2d b = region.bounds();
  volatile double sink = region.area();
  sink = sink + region.area_within(cv::Rect2d(0, 0, 60000, 45000));
  const double xs[] = {b.x, b.x + b.width / 2, b.x + b.width, 0.0, 100.0};
  const double ys[] = {b.y, b.y + b.height / 2, b.y + b.height, 0.0, 100.0};
  for (const double x : xs)
    for (const double y : ys) sink = sink + (region.contains(x, y) ? 1.0 : 0.0);
  // As the pipeline does on the tissue overview: a small mask at a slide-like downsample.
  for (const double downsample : {1.0, 64.0}) {
    const cv::Mat m = region.mask(cv::Size(64, 48), downsample);
    sink = sink + cv::sum(m)[0];
  }
  return 0;
}
