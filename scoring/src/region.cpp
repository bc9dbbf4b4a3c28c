#include "ihc/scoring/region.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

namespace ihc::scoring {
namespace {

bool in_ring(const std::vector<cv::Point2d>& ring, double x, double y) {
  bool inside = false;
  const std::size_t n = ring.size();
  for (std::size_t i = 0, j = n - 1; i < n; j = i++) {
    const auto& a = ring[i];
    const auto& b = ring[j];
    if ((a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

double ring_area(const std::vector<cv::Point2d>& ring) {
  double s = 0;
  for (std::size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++)
    s += (ring[j].x + ring[i].x) * (ring[j].y - ring[i].y);
  return std::abs(s) / 2;
}

// The ring clipped to `box` (Sutherland-Hodgman, one edge of the box at a time): the same inside
// within the box, every vertex on it. Excluded polygons may reach far beyond what is measured.
std::vector<cv::Point2d> clip_ring(std::vector<cv::Point2d> ring, const cv::Rect2d& box) {
  const double lo[2] = {box.x, box.y}, hi[2] = {box.x + box.width, box.y + box.height};
  for (int edge = 0; edge < 4 && !ring.empty(); ++edge) {
    const int axis = edge % 2;
    const bool keep_above = edge < 2;
    const double limit = keep_above ? lo[axis] : hi[axis];
    const auto inside = [&](const cv::Point2d& p) { return keep_above ? (axis ? p.y : p.x) >= limit : (axis ? p.y : p.x) <= limit; };
    std::vector<cv::Point2d> out;
    for (std::size_t i = 0; i < ring.size(); ++i) {
      const cv::Point2d& a = ring[(i + ring.size() - 1) % ring.size()];
      const cv::Point2d& b = ring[i];
      if (inside(a) != inside(b)) {
        const double ta = axis ? a.y : a.x, tb = axis ? b.y : b.x;
        out.push_back(a + (b - a) * ((limit - ta) / (tb - ta)));
      }
      if (inside(b)) out.push_back(b);
    }
    ring = std::move(out);
  }
  return ring;
}

cv::Rect2d outer_bounds(const std::vector<Polygon>& polygons) {
  double x0 = std::numeric_limits<double>::max(), y0 = x0, x1 = -x0, y1 = -x0;
  for (const auto& p : polygons)
    if (!p.rings.empty())
      for (const auto& pt : p.rings.front()) {
        x0 = std::min(x0, pt.x);
        y0 = std::min(y0, pt.y);
        x1 = std::max(x1, pt.x);
        y1 = std::max(y1, pt.y);
      }
  return x1 >= x0 ? cv::Rect2d(x0, y0, x1 - x0, y1 - y0) : cv::Rect2d();
}

// Inside the outer ring and in none of the holes.
bool in_polygon(const Polygon& p, double x, double y) {
  if (p.rings.empty() || !in_ring(p.rings.front(), x, y)) return false;
  for (std::size_t h = 1; h < p.rings.size(); ++h)
    if (in_ring(p.rings[h], x, y)) return false;
  return true;
}

}  // namespace

Region::Region(std::vector<Polygon> polygons, std::vector<Polygon> excluded)
    : polygons_(std::move(polygons)), excluded_(std::move(excluded)) {
  bounds_ = polygons_.empty() && !excluded_.empty()
                ? cv::Rect2d(-kMaxCoordinate, -kMaxCoordinate, 2 * kMaxCoordinate, 2 * kMaxCoordinate)
                : outer_bounds(polygons_);
}

bool Region::contains(double x, double y) const {
  if (x < bounds_.x || y < bounds_.y || x > bounds_.x + bounds_.width || y > bounds_.y + bounds_.height) return false;
  const auto in = [x, y](const Polygon& p) { return in_polygon(p, x, y); };
  if (!polygons_.empty() && std::none_of(polygons_.begin(), polygons_.end(), in)) return false;
  return std::none_of(excluded_.begin(), excluded_.end(), in);
}

double Region::area() const {
  double a = 0;  // of `polygons` only
  for (const auto& p : polygons_)
    for (std::size_t r = 0; r < p.rings.size(); ++r) a += (r == 0 ? 1 : -1) * ring_area(p.rings[r]);
  return a;
}

double Region::area_within(const cv::Rect2d& clip) const {
  const cv::Rect2d inside = bounds_ & clip;
  if (empty() || inside.width <= 0 || inside.height <= 0) return 0.0;
  // The raster spans the whole of `polygons` (every vertex lands on it; no overflow) or, when
  // there are none, the clipped area; excluded polygons are clipped to it. Only its pixels
  // inside `clip` are counted.
  const cv::Rect2d box = polygons_.empty() ? inside : bounds_;
  constexpr int kSide = 4096;
  constexpr int kShift = 8;  // fractional bits of the vertices handed to fillPoly
  const double scale = std::max(box.width, box.height) / kSide;  // level-0 px per raster px
  const cv::Size size(static_cast<int>(std::ceil(box.width / scale)) + 1, static_cast<int>(std::ceil(box.height / scale)) + 1);
  cv::Mat covered(size, CV_8U, cv::Scalar(polygons_.empty() ? 255 : 0));
  // Each polygon on a raster of its own bounds (its holes clear only its own inside); `own` is
  // where that raster lies on `covered` (empty: nothing to draw).
  const auto raster = [&](const std::vector<std::vector<cv::Point2d>>& polygon_rings, cv::Rect& own) {
    std::vector<std::vector<cv::Point>> rings;
    for (const auto& ring : polygon_rings) {
      if (ring.size() < 3) {
        if (rings.empty()) break;  // no outer ring: nothing inside
        continue;
      }
      std::vector<cv::Point> pts;
      // Raster pixel (i, j) covers [i, i+1) x [j, j+1); fillPoly fills pixel centres, so a half-pixel shift.
      for (const auto& pt : ring)
        pts.emplace_back(static_cast<int>(std::lround(((pt.x - box.x) / scale - 0.5) * (1 << kShift))),
                         static_cast<int>(std::lround(((pt.y - box.y) / scale - 0.5) * (1 << kShift))));
      const cv::Rect r = cv::boundingRect(pts);
      if (rings.empty()) own = cv::Rect(r.x >> kShift, r.y >> kShift, (r.width >> kShift) + 3, (r.height >> kShift) + 3);
      rings.push_back(std::move(pts));
    }
    if (rings.empty()) own = cv::Rect();
    own &= cv::Rect(cv::Point(0, 0), size);
    cv::Mat one(own.size(), CV_8U, cv::Scalar(0));
    if (own.empty()) return one;
    for (std::size_t r = 0; r < rings.size(); ++r)
      cv::fillPoly(one, std::vector<std::vector<cv::Point>>{rings[r]}, cv::Scalar(r == 0 ? 255 : 0), cv::LINE_8, kShift,
                   -own.tl() * (1 << kShift));  // the offset is in the points' fixed-point units
    return one;
  };
  cv::Rect own;
  for (const auto& p : polygons_) {
    const cv::Mat one = raster(p.rings, own);
    if (!own.empty()) covered(own) |= one;
  }
  for (const auto& p : excluded_) {
    std::vector<std::vector<cv::Point2d>> rings;
    for (const auto& ring : p.rings) rings.push_back(clip_ring(ring, box));
    const cv::Mat one = raster(rings, own);
    if (!own.empty()) covered(own).setTo(0, one);
  }
  const cv::Rect counted = cv::Rect(static_cast<int>(std::floor((inside.x - box.x) / scale)),
                                    static_cast<int>(std::floor((inside.y - box.y) / scale)),
                                    static_cast<int>(std::ceil(inside.width / scale)),
                                    static_cast<int>(std::ceil(inside.height / scale))) &
                           cv::Rect(cv::Point(0, 0), size);
  return static_cast<double>(cv::countNonZero(covered(counted))) * scale * scale;
}

cv::Mat Region::mask(cv::Size size, double downsample) const {
  cv::Mat m(size, CV_8U, cv::Scalar(polygons_.empty() && !excluded_.empty() ? 255 : 0));
  // Excluded polygons clipped a pixel beyond the mask: drawn as given they may reach 10^7 px away.
  const cv::Rect2d reach(-downsample, -downsample, (size.width + 2) * downsample, (size.height + 2) * downsample);
  const auto to_mask = [downsample](const std::vector<cv::Point2d>& ring) {
    std::vector<cv::Point> pts;
    for (const auto& pt : ring)
      pts.emplace_back(static_cast<int>(std::lround(pt.x / downsample)), static_cast<int>(std::lround(pt.y / downsample)));
    return pts;
  };
  for (const auto& p : polygons_) {
    for (std::size_t r = 0; r < p.rings.size(); ++r) {
      const std::vector<cv::Point> pts = to_mask(p.rings[r]);
      if (pts.size() < 3) continue;
      // Holes are cleared but their border pixels stay in: a tile touching the hole's edge is read.
      cv::fillPoly(m, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(r == 0 ? 255 : 0));
      if (r == 0) cv::polylines(m, pts, true, cv::Scalar(255), 1);
    }
  }
  if (excluded_.empty()) return m;
  // Excluded polygons as holes of the whole: their inside cleared, their outlines kept.
  cv::Mat out(size, CV_8U, cv::Scalar(0));
  std::vector<std::vector<cv::Point>> outlines;
  for (const auto& p : excluded_) {
    for (std::size_t r = 0; r < p.rings.size(); ++r) {
      const std::vector<cv::Point> pts = to_mask(clip_ring(p.rings[r], reach));
      if (pts.size() < 3) continue;
      cv::fillPoly(out, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(r == 0 ? 255 : 0));
      outlines.push_back(pts);
    }
  }
  cv::polylines(out, outlines, true, cv::Scalar(0), 1);
  m.setTo(0, out);
  return m;
}

}  // namespace ihc::scoring
