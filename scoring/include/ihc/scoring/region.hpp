#pragma once
// A region of interest: polygons with holes in level-0 pixel coordinates (as QuPath exports
// annotations), and polygons left out of it (QuPath's "Ignore*" annotations: stroma, DCIS, a
// fold drawn round by hand). Pure geometry: no I/O.
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
  // `polygons`: the area scored; `excluded`: areas left out of it wherever they lie. With no
  // polygons but some excluded, the region is everything outside the excluded ones.
  explicit Region(std::vector<Polygon> polygons, std::vector<Polygon> excluded = {});

  // Inside an outer ring and in none of its holes (even-odd within each polygon), and so inside
  // no excluded polygon.
  bool contains(double x, double y) const;
  bool empty() const { return polygons_.empty() && excluded_.empty(); }
  const std::vector<Polygon>& polygons() const { return polygons_; }
  const std::vector<Polygon>& excluded() const { return excluded_; }
  // Bounding box of all outer rings of `polygons` (of kMaxCoordinate either way when there are
  // none: everything outside the excluded polygons).
  cv::Rect2d bounds() const { return bounds_; }
  // Area in level-0 pixels of `polygons` (outer rings minus holes; exclusions not subtracted), by
  // the shoelace formula: exact for simple polygons, wrong for an outline that crosses itself (a
  // bow tie sums to 0) or for overlaps.
  double area() const;
  // The area that contains() covers inside `clip`, in level-0 pixels, measured on a raster of
  // at most 4096 px a side over the clipped bounds (within about 0.1 % for regions of more than
  // a few hundred raster pixels): right for crossing outlines and overlapping polygons too.
  double area_within(const cv::Rect2d& clip) const;
  // Rasterises the region at 1/downsample scale into a CV_8U mask of `size` (255 inside). The
  // outlines of holes and excluded polygons stay inside: what touches their edge is kept.
  cv::Mat mask(cv::Size size, double downsample) const;

  // Coordinates beyond this (level-0 px) are nonsense for any slide; parsers refuse them.
  static constexpr double kMaxCoordinate = 1e7;

 private:
  std::vector<Polygon> polygons_;
  std::vector<Polygon> excluded_;
  cv::Rect2d bounds_;
};

}  // namespace ihc::scoring
