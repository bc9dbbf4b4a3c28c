#include "ihc/engine/stain_choice.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/scoring/tissue.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;
namespace {

constexpr int kOverviewSide = 1024;     // overview for tissue and glass
constexpr double kSampleMpp = 0.5;      // resolution of the sampled tiles, µm/px
constexpr double kFineOverviewMpp = 1.0;  // an overview this fine is sampled directly
constexpr int kSampleTiles = 16;
constexpr int kSampleSide = 256;        // sampled tile side, pixels at about kSampleMpp

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::optional<scoring::Rgb3> rgb_from_json(const nlohmann::json& j) {
  if (!j.is_array() || j.size() != 3) return std::nullopt;
  scoring::Rgb3 v{};
  for (std::size_t i = 0; i < 3; ++i) {
    if (!j[i].is_number()) return std::nullopt;
    v[i] = j[i].get<double>();
  }
  return v;
}

scoring::StainVectors stains_from_json(const fs::path& path, const std::string& text, double default_i0) {
  const auto bad = [&](const std::string& why) {
    return EngineError(ErrorKind::input, path.string() + ": " + why +
                                        " (expected {\"hematoxylin\":[r,g,b],\"dab\":[r,g,b],\"i0\":255})");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("not valid JSON: ") + e.what());
  }
  if (j.is_object() && j.contains("stains") && j["stains"].is_object()) j = j["stains"];  // a score report
  if (!j.is_object()) throw bad("not a JSON object");
  const auto h = j.contains("hematoxylin") ? rgb_from_json(j["hematoxylin"]) : std::nullopt;
  const auto d = j.contains("dab") ? rgb_from_json(j["dab"]) : std::nullopt;
  if (!h) throw bad("\"hematoxylin\" must be an array of three numbers");
  if (!d) throw bad("\"dab\" must be an array of three numbers");
  double i0 = default_i0;
  if (j.contains("i0")) {
    if (!j["i0"].is_number()) throw bad("\"i0\" must be a number");
    i0 = j["i0"].get<double>();
  }
  const auto s = scoring::StainVectors::make(*h, *d, i0);
  if (!s)
    throw bad("stain vectors must be non-negative, non-zero and not parallel, and i0 in (1, 255]");
  return *s;
}

struct Cell {
  int gx, gy;
  double tissue;  // share of the cell's overview pixels that are tissue
};

}  // namespace

scoring::StainVectors read_stains_file(const fs::path& path, double default_i0) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw EngineError(ErrorKind::input, path.string() +
                                       ": no such stains file (--stains takes default, estimate or a file)");
  if (fs::is_directory(path, ec)) throw EngineError(ErrorKind::input, path.string() + ": is a directory, not a stains file");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) throw EngineError(ErrorKind::input, path.string() + ": cannot be read");
  const std::string text = trim(ss.str());
  if (text.empty()) throw EngineError(ErrorKind::input, path.string() + ": empty stains file");
  if (text.front() == '{') return stains_from_json(path, text, default_i0);
  std::string line = text;
  if (line.find("i0=") == std::string::npos) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ";i0=%.17g", default_i0);
    line += buf;
  }
  const auto s = scoring::StainVectors::parse(line);
  if (!s)
    throw EngineError(ErrorKind::input,
                       path.string() +
                           ": not a stains file (expected JSON {\"hematoxylin\":[r,g,b],\"dab\":[r,g,b],\"i0\":255} "
                           "or text hematoxylin=r,g,b;dab=r,g,b;i0=255, non-negative and not parallel)");
  return *s;
}

scoring::StainEstimate estimate_slide_stains(const tiling::Slide& slide, const scoring::StainVectors& reference,
                                             scoring::BackgroundEstimate* background_out,
                                             const scoring::StainEstimationParams& params) {
  double ds = 1;
  const cv::Mat overview = read_thumbnail(slide, kOverviewSide, &ds);
  const cv::Mat mask = scoring::tissue_mask(overview);
  const scoring::BackgroundEstimate background = scoring::estimate_background(overview, mask, reference.i0);
  if (background_out) *background_out = background;
  scoring::StainVectors ref = reference;
  ref.i0 = background.i0;

  const std::optional<double> mpp = slide.mpp();
  // Straight from the overview when it holds the full-resolution pixels or is fine enough.
  if (ds <= 1.0 + 1e-9 || (mpp && *mpp * ds <= kFineOverviewMpp))
    return scoring::estimate_stains({overview}, {mask}, ref.i0, ref, params);

  // Else up to kSampleTiles tissue tiles at about kSampleMpp, spread over the tissue.
  const double target_ds = std::max(1.0, mpp ? kSampleMpp / *mpp : 4.0);  // level-0 px per sample px
  const int level = slide.best_level_for_downsample(target_ds);
  const double level_ds = slide.levels()[static_cast<std::size_t>(level)].downsample;
  int scale = 1;
  while (scale < 8 && level_ds * scale * 2 <= target_ds * 1.01) scale *= 2;
  const int read_side = kSampleSide * scale;                   // level pixels
  const double footprint_l0 = read_side * level_ds;            // level-0 pixels
  const double cell_px = std::max(1.0, footprint_l0 / ds);     // overview pixels
  const int nx = std::max(1, static_cast<int>(std::floor(overview.cols / cell_px)));
  const int ny = std::max(1, static_cast<int>(std::floor(overview.rows / cell_px)));
  std::vector<Cell> cells;
  for (int gy = 0; gy < ny; ++gy) {
    for (int gx = 0; gx < nx; ++gx) {
      const int x0 = static_cast<int>(gx * cell_px), y0 = static_cast<int>(gy * cell_px);
      const int x1 = std::min(overview.cols, std::max(x0 + 1, static_cast<int>((gx + 1) * cell_px)));
      const int y1 = std::min(overview.rows, std::max(y0 + 1, static_cast<int>((gy + 1) * cell_px)));
      const cv::Mat part = mask(cv::Range(y0, y1), cv::Range(x0, x1));
      const double t = static_cast<double>(cv::countNonZero(part)) / static_cast<double>(part.total());
      if (t > 0) cells.push_back({gx, gy, t});
    }
  }
  std::vector<Cell> chosen;
  std::vector<Cell> full;
  for (const Cell& c : cells)
    if (c.tissue >= 0.5) full.push_back(c);
  if (full.size() >= static_cast<std::size_t>(kSampleTiles)) {
    // Evenly spaced over the tissue (grid order), deterministic.
    for (int k = 0; k < kSampleTiles; ++k)
      chosen.push_back(full[static_cast<std::size_t>(k) * full.size() / kSampleTiles]);
  } else {
    std::stable_sort(cells.begin(), cells.end(), [](const Cell& a, const Cell& b) { return a.tissue > b.tissue; });
    for (std::size_t k = 0; k < cells.size() && k < static_cast<std::size_t>(kSampleTiles); ++k)
      chosen.push_back(cells[k]);
  }
  std::vector<cv::Mat> tiles;
  std::string first_error;
  for (const Cell& c : chosen) {
    const auto x = static_cast<std::int64_t>(std::llround(c.gx * cell_px * ds));
    const auto y = static_cast<std::int64_t>(std::llround(c.gy * cell_px * ds));
    try {
      tiles.push_back(slide.read_region_scaled(level, x, y, read_side, read_side, scale));
    } catch (const tiling::SlideError& e) {
      if (first_error.empty()) first_error = e.what();  // a damaged tile: sample the others
    }
  }
  if (tiles.empty() && !first_error.empty()) throw tiling::SlideError(tiling::SlideError::Kind::Corrupt, first_error);
  return scoring::estimate_stains(tiles, {}, ref.i0, ref, params);
}

StainChoice choose_stains(const tiling::Slide& slide, const std::string& mode,
                          const scoring::StainVectors& cli_default) {
  StainChoice c;
  c.vectors = cli_default;
  if (mode == "default") {
    c.source = "default";
    return c;
  }
  if (mode.empty()) throw EngineError(ErrorKind::usage, "--stains: expected default, estimate or a stains file");
  if (mode == "estimate") {
    scoring::StainEstimate e;
    scoring::BackgroundEstimate bg;
    try {
      e = estimate_slide_stains(slide, cli_default, &bg);
    } catch (const tiling::SlideError& err) {
      throw EngineError(ErrorKind::input, slide.path().string() + ": cannot read the slide to estimate stains: " + err.what());
    }
    c.vectors = e.vectors;
    c.pixels_used = e.pixels_used;
    c.background_estimated = bg.estimated;
    c.source = e.estimated ? "estimated" : "default";
    if (!e.estimated) c.warning = slide.path().string() + ": stain estimation: " + e.warning;
    return c;
  }
  c.vectors = read_stains_file(mode, cli_default.i0);
  c.source = "file:" + mode;
  return c;
}

}  // namespace ihc::engine
