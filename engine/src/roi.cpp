#include "ihc/engine/roi.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ihc/engine/errors.hpp"
#include "roi_formats.hpp"

namespace ihc::engine {
namespace {

using nlohmann::json;

// Level-0 pixels: no slide has 10^7 pixels a side (2.5 m at 0.25 um/px). Farther points are
// refused: besides being nonsense, they make the ROI mask (cv::fillPoly, whose work grows with the
// polygon's extent above the image) take seconds to minutes, e.g. 17 s for a point at y = -1e9.
constexpr double kMaxCoordinate = scoring::Region::kMaxCoordinate;

// An annotation classed to be left out: QuPath's "Ignore*" class, or "Exclude" / "Excluded" /
// "Exclusion" (any case, a trailing '*' dropped). Every other class, or none, is scored.
bool is_exclusion_class(std::string name) {
  while (!name.empty() && (name.back() == '*' || name.back() == ' ')) name.pop_back();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name == "ignore" || name == "exclude" || name == "excluded" || name == "exclusion";
}

// The feature's class name as QuPath writes it ("classification": {"name": ...}; a bare string
// from other tools), or "".
std::string class_name(const json& feature) {
  const auto props = feature.find("properties");
  if (props == feature.end() || !props->is_object()) return {};
  const auto c = props->find("classification");
  if (c == props->end()) return {};
  if (c->is_string()) return c->get<std::string>();
  if (c->is_object() && c->contains("name") && (*c)["name"].is_string()) return (*c)["name"].get<std::string>();
  return {};
}

std::vector<cv::Point2d> read_ring(const json& ring, const std::string& name) {
  if (!ring.is_array()) throw EngineError(ErrorKind::input, name + ": a polygon ring is not an array of points");
  std::vector<cv::Point2d> pts;
  for (const auto& p : ring) {
    if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number())
      throw EngineError(ErrorKind::input, name + ": a polygon point is not [x, y]");
    pts.push_back(detail::roi_vertex(p[0].get<double>(), p[1].get<double>(), name));
  }
  return detail::roi_ring(std::move(pts), name);
}

scoring::Polygon read_polygon(const json& rings, const std::string& name) {
  if (!rings.is_array() || rings.empty()) throw EngineError(ErrorKind::input, name + ": a Polygon has no rings");
  scoring::Polygon poly;
  for (const auto& r : rings) poly.rings.push_back(read_ring(r, name));
  return poly;
}

// Deeper nesting than any GeoJSON needs (a FeatureCollection of GeometryCollections is 4 deep) is
// refused: collect() recurses, and a file of a few hundred KB of "[[[[..." would overflow the stack.
constexpr int kMaxNesting = 64;

struct Collected {
  std::vector<scoring::Polygon> scored, excluded;
};

// `excluded`: inside a Feature classed to be left out (is_exclusion_class).
void collect(const json& node, Collected& out, const std::string& name, bool excluded = false, int depth = 0) {
  if (depth > kMaxNesting)
    throw EngineError(ErrorKind::input, name + ": nested more than " + std::to_string(kMaxNesting) + " levels deep, not GeoJSON");
  if (node.is_array()) {
    for (const auto& f : node) collect(f, out, name, excluded, depth + 1);
    return;
  }
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) return;
  const std::string type = node["type"];
  auto& polygons = excluded ? out.excluded : out.scored;
  if (type == "FeatureCollection" && node.contains("features")) {
    collect(node["features"], out, name, excluded, depth + 1);
  } else if (type == "Feature" && node.contains("geometry")) {
    collect(node["geometry"], out, name, excluded || is_exclusion_class(class_name(node)), depth + 1);
  } else if (type == "GeometryCollection" && node.contains("geometries")) {
    collect(node["geometries"], out, name, excluded, depth + 1);
  } else if (type == "Polygon" && node.contains("coordinates")) {
    polygons.push_back(read_polygon(node["coordinates"], name));
  } else if (type == "MultiPolygon" && node.contains("coordinates") && node["coordinates"].is_array()) {
    for (const auto& rings : node["coordinates"]) polygons.push_back(read_polygon(rings, name));
  }
}

}  // namespace

namespace detail {

cv::Point2d roi_vertex(double x, double y, const std::string& name) {
  if (!std::isfinite(x) || !std::isfinite(y)) throw EngineError(ErrorKind::input, name + ": a polygon point is not finite");
  if (std::abs(x) > kMaxCoordinate || std::abs(y) > kMaxCoordinate)
    throw EngineError(ErrorKind::input, name + ": a polygon point lies beyond 10^7 pixels, outside any slide");
  return {x, y};
}

std::vector<cv::Point2d> roi_ring(std::vector<cv::Point2d> points, const std::string& name) {
  if (points.size() >= 2 && points.front() == points.back()) points.pop_back();  // rings often repeat the first point
  if (points.size() < 3) throw EngineError(ErrorKind::input, name + ": a polygon ring has fewer than 3 points");
  return points;
}

}  // namespace detail

scoring::Region parse_roi(const std::string& text, const std::string& name) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    throw EngineError(ErrorKind::input, name + ": the file is empty (a GeoJSON or ImageScope XML region of interest was expected)");
  // XML (an Aperio ImageScope annotation file) opens with '<', after a UTF-8 byte-order mark if any.
  if (text[first] == '<' || text.compare(first, 4, "\xEF\xBB\xBF<") == 0) return detail::parse_imagescope_roi(text, name);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw EngineError(ErrorKind::input, name + ": not valid GeoJSON (byte " + std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {  // e.g. out_of_range 406: a number beyond a double (1e400)
    throw EngineError(ErrorKind::input, name + ": not valid GeoJSON (" + e.what() + ")");
  }
  Collected polygons;
  collect(doc, polygons, name);
  if (polygons.scored.empty() && polygons.excluded.empty())
    throw EngineError(ErrorKind::input, name + ": no Polygon or MultiPolygon annotation found (QuPath: export annotations as GeoJSON)");
  return scoring::Region(std::move(polygons.scored), std::move(polygons.excluded));
}

scoring::Region load_roi(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw EngineError(ErrorKind::input, path.string() + ": no such region-of-interest file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw EngineError(ErrorKind::input, path.string() + ": cannot be read");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_roi(ss.str(), path.string());
}

}  // namespace ihc::engine
