#pragma once
// Regions of interest from GeoJSON as QuPath exports annotations: a FeatureCollection, a Feature,
// a bare geometry or an array of Features; Polygon or MultiPolygon with holes; level-0 pixel
// coordinates. Other geometry types are ignored. Annotations classed "Ignore*" (QuPath's class for
// it) or "Exclude" are left out of the region wherever they lie; with only those, the region is the
// whole slide without them. Or an Aperio ImageScope annotation file (XML, told by its first '<'):
// its regions, NegativeROA ones left out (roi_imagescope.cpp).
#include <filesystem>
#include <string>

#include "ihc/scoring/region.hpp"

namespace ihc::engine {

// Throws EngineError(ErrorKind::input, "<file>: <reason>") when the file cannot be read, is neither
// JSON nor XML, or holds no polygon (scored or left out).
scoring::Region load_roi(const std::filesystem::path& path);

// The same from the file's text; `name` is used in messages.
scoring::Region parse_roi(const std::string& text, const std::string& name);

}  // namespace ihc::engine
