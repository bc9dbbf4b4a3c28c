#include "ihc/scoring/region.hpp"

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
