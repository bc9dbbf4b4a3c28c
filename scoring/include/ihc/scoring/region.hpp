#pragma once
// A region of interest: polygons with holes in level-0 pixel coordinates (as QuPath exports
// annotations). Pure geometry: no I/O.
#include <vector>

#include <opencv2/core.hpp>

namespace ihc::scoring {

struct Polygon {
  // rings[0] is the outer boundary, the rest are holes. Rings need not repeat the first point.
  std::vector<std::vector<cv::Point2d>> rings;
};

class Region {
 public:
  Region() = default;
  explicit Region(std::vector<Polygon> polygons);

  // Inside an outer ring and in none of its holes (even-odd within each polygon).
  bool contains(double x, double y) const;
  bool empty() const { return polygons_.empty(); }
  const std::vector<Polygon>& polygons() const { return polygons_; }
  // Bounding box of all outer rings.
  cv::Rect2d bounds() const { return bounds_; }
  // Area in level-0 pixels (outer rings minus holes), by the shoelace formula: exact for simple
  // polygons, wrong for an outline that crosses itself (a bow tie sums to 0) or for overlaps.
  double area() const;
  // The area that contains() covers inside `clip`, in level-0 pixels, measured on a raster of
  // at most 4096 px a side over the clipped bounds (within about 0.1 % for regions of more than
  // a few hundred raster pixels): right for crossing outlines and overlapping polygons too.
  double area_within(const cv::Rect2d& clip) const;
  // Rasterises the region at 1/downsample scale into a CV_8U mask of `size` (255 inside).
  cv::Mat mask(cv::Size size, double downsample) const;

 private:
  std::vector<Polygon> polygons_;
  cv::Rect2d bounds_;
};

}  // namespace ihc::scoring
