#pragma once
// What the region-of-interest readers share: roi.cpp (GeoJSON, and the dispatch by content) and
// roi_imagescope.cpp (Aperio ImageScope XML). Errors are EngineError(input) naming the file.
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/scoring/region.hpp"

namespace ihc::engine::detail {

// A vertex as read: refused when not finite or beyond any slide (Region::kMaxCoordinate).
cv::Point2d roi_vertex(double x, double y, const std::string& name);

// A ring as read, its repeated closing point dropped; refused with fewer than 3 points.
std::vector<cv::Point2d> roi_ring(std::vector<cv::Point2d> points, const std::string& name);

// Aperio ImageScope annotations (XML): every Region of every Annotation layer; NegativeROA="1"
// regions are left out of the others.
scoring::Region parse_imagescope_roi(const std::string& text, const std::string& name);

}  // namespace ihc::engine::detail
