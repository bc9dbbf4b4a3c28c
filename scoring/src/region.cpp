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

}  // namespace

Region::Region(std::vector<Polygon> polygons) : polygons_(std::move(polygons)) {
  double x0 = std::numeric_limits<double>::max(), y0 = x0, x1 = -x0, y1 = -x0;
  for (const auto& p : polygons_)
    if (!p.rings.empty())
      for (const auto& pt : p.rings.front()) {
        x0 = std::min(x0, pt.x);
        y0 = std::min(y0, pt.y);
        x1 = std::max(x1, pt.x);
        y1 = std::max(y1, pt.y);
      }
  if (x1 >= x0) bounds_ = cv::Rect2d(x0, y0, x1 - x0, y1 - y0);
}

bool Region::contains(double x, double y) const {
  if (x < bounds_.x || y < bounds_.y || x > bounds_.x + bounds_.width || y > bounds_.y + bounds_.height) return false;
  for (const auto& p : polygons_) {
    if (p.rings.empty() || !in_ring(p.rings.front(), x, y)) continue;
    bool in_hole = false;
    for (std::size_t h = 1; h < p.rings.size() && !in_hole; ++h) in_hole = in_ring(p.rings[h], x, y);
    if (!in_hole) return true;
  }
  return false;
}

double Region::area() const {
  double a = 0;
  for (const auto& p : polygons_)
    for (std::size_t r = 0; r < p.rings.size(); ++r) a += (r == 0 ? 1 : -1) * ring_area(p.rings[r]);
  return a;
}

double Region::area_within(const cv::Rect2d& clip) const {
  const cv::Rect2d inside = bounds_ & clip;
  if (polygons_.empty() || inside.width <= 0 || inside.height <= 0) return 0.0;
  // The raster spans the whole region (every vertex lands on it; no overflow), and only its
  // pixels inside `clip` are counted.
  const cv::Rect2d box = bounds_;
  constexpr int kSide = 4096;
  constexpr int kShift = 8;  // fractional bits of the vertices handed to fillPoly
  const double scale = std::max(box.width, box.height) / kSide;  // level-0 px per raster px
  const cv::Size size(static_cast<int>(std::ceil(box.width / scale)) + 1, static_cast<int>(std::ceil(box.height / scale)) + 1);
  cv::Mat covered(size, CV_8U, cv::Scalar(0));
  for (const auto& p : polygons_) {
    if (p.rings.empty() || p.rings.front().size() < 3) continue;
    // Each polygon on a raster of its own bounds (its holes clear only its own inside), then united.
    std::vector<std::vector<cv::Point>> rings;
    cv::Rect own;
    for (const auto& ring : p.rings) {
      if (ring.size() < 3) continue;
      std::vector<cv::Point> pts;
      // Raster pixel (i, j) covers [i, i+1) x [j, j+1); fillPoly fills pixel centres, so a half-pixel shift.
      for (const auto& pt : ring)
        pts.emplace_back(static_cast<int>(std::lround(((pt.x - box.x) / scale - 0.5) * (1 << kShift))),
                         static_cast<int>(std::lround(((pt.y - box.y) / scale - 0.5) * (1 << kShift))));
      const cv::Rect r = cv::boundingRect(pts);
      if (rings.empty()) own = cv::Rect(r.x >> kShift, r.y >> kShift, (r.width >> kShift) + 3, (r.height >> kShift) + 3);
      rings.push_back(std::move(pts));
    }
    own &= cv::Rect(cv::Point(0, 0), size);
    if (own.empty()) continue;
    cv::Mat one(own.size(), CV_8U, cv::Scalar(0));
    for (std::size_t r = 0; r < rings.size(); ++r)
      cv::fillPoly(one, std::vector<std::vector<cv::Point>>{rings[r]}, cv::Scalar(r == 0 ? 255 : 0), cv::LINE_8, kShift,
                   -own.tl() * (1 << kShift));  // the offset is in the points' fixed-point units
    covered(own) |= one;
  }
  const cv::Rect counted = cv::Rect(static_cast<int>(std::floor((inside.x - box.x) / scale)),
                                    static_cast<int>(std::floor((inside.y - box.y) / scale)),
                                    static_cast<int>(std::ceil(inside.width / scale)),
                                    static_cast<int>(std::ceil(inside.height / scale))) &
                           cv::Rect(cv::Point(0, 0), size);
  return static_cast<double>(cv::countNonZero(covered(counted))) * scale * scale;
}

cv::Mat Region::mask(cv::Size size, double downsample) const {
  cv::Mat m(size, CV_8U, cv::Scalar(0));
  for (const auto& p : polygons_) {
    for (std::size_t r = 0; r < p.rings.size(); ++r) {
      std::vector<cv::Point> pts;
      for (const auto& pt : p.rings[r])
        pts.emplace_back(static_cast<int>(std::lround(pt.x / downsample)), static_cast<int>(std::lround(pt.y / downsample)));
      if (pts.size() < 3) continue;
      // Holes are cleared but their border pixels stay in: a tile touching the hole's edge is read.
      cv::fillPoly(m, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(r == 0 ? 255 : 0));
      if (r == 0) cv::polylines(m, pts, true, cv::Scalar(255), 1);
    }
  }
  return m;
}

}  // namespace ihc::scoring
