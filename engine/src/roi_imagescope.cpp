// Regions of interest from Aperio ImageScope annotation files (roi_formats.hpp), as ImageScope
// saves them beside an SVS: <Annotations><Annotation><Regions><Region Type NegativeROA>
// <Vertices><Vertex X Y/>, level-0 pixels. Every layer's regions are scored; NegativeROA="1"
// marks one to leave out. A region of 3 or more vertices is a polygon; ImageScope keeps a
// rectangle (Type 1) or an ellipse (Type 2) as 2 corners of its box. Anything else (an arrow, a
// ruler, a stray click) is not an area and is skipped. pugixml parses (no DTD, no external
// entities); the tree is walked level by level, not by recursion or XPath.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

#include <pugixml.hpp>

#include "ihc/engine/errors.hpp"
#include "roi_formats.hpp"

namespace ihc::engine::detail {
namespace {

constexpr int kRectangleType = 1;
constexpr int kEllipseType = 2;
constexpr int kEllipsePoints = 72;  // 5 degrees apart: within 0.2 % of the ellipse's area

double coordinate(const pugi::xml_node& vertex, const char* axis, const std::string& name) {
  const char* text = vertex.attribute(axis).value();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (*text == '\0' || end == text || *end != '\0' || errno == ERANGE)
    throw EngineError(ErrorKind::input, name + ": a Vertex has no number for " + axis + " ('" + std::string(text).substr(0, 40) + "')");
  return v;
}

std::vector<cv::Point2d> box_shape(const cv::Point2d& a, const cv::Point2d& b, int type) {
  const double x0 = std::min(a.x, b.x), x1 = std::max(a.x, b.x), y0 = std::min(a.y, b.y), y1 = std::max(a.y, b.y);
  if (type == kRectangleType) return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}};
  std::vector<cv::Point2d> ring;
  const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, rx = (x1 - x0) / 2, ry = (y1 - y0) / 2;
  for (int k = 0; k < kEllipsePoints; ++k) {
    const double t = 2 * std::numbers::pi * k / kEllipsePoints;
    ring.emplace_back(cx + rx * std::cos(t), cy + ry * std::sin(t));
  }
  return ring;
}

}  // namespace

scoring::Region parse_imagescope_roi(const std::string& text, const std::string& name) {
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(text.data(), text.size());
  if (!parsed)
    throw EngineError(ErrorKind::input, name + ": not valid XML (byte " + std::to_string(parsed.offset) + ": " +
                                            parsed.description() + ")");
  const pugi::xml_node root = doc.child("Annotations");
  if (!root)
    throw EngineError(ErrorKind::input,
                      name + ": XML, but not an Aperio ImageScope annotation file (no <Annotations> element); "
                             "a region of interest is GeoJSON (QuPath) or ImageScope XML");
  std::vector<scoring::Polygon> scored, excluded;
  for (const pugi::xml_node& annotation : root.children("Annotation"))
    for (const pugi::xml_node& region : annotation.child("Regions").children("Region")) {
      std::vector<cv::Point2d> points;
      for (const pugi::xml_node& vertex : region.child("Vertices").children("Vertex"))
        points.push_back(roi_vertex(coordinate(vertex, "X", name), coordinate(vertex, "Y", name), name));
      if (points.size() >= 2 && points.front() == points.back()) points.pop_back();
      const int type = region.attribute("Type").as_int(0);
      if (points.size() == 2 && (type == kRectangleType || type == kEllipseType)) points = box_shape(points[0], points[1], type);
      if (points.size() < 3) continue;  // not an area
      auto& into = region.attribute("NegativeROA").as_int(0) == 1 ? excluded : scored;
      into.push_back(scoring::Polygon{{roi_ring(std::move(points), name)}});
    }
  if (scored.empty() && excluded.empty())
    throw EngineError(ErrorKind::input, name + ": no area in this ImageScope annotation file (a Region with 3 or more "
                                               "vertices, or a rectangle or ellipse)");
  return scoring::Region(std::move(scored), std::move(excluded));
}

}  // namespace ihc::engine::detail
