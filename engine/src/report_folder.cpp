#include "ihc/engine/report_folder.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <fstream>
#include <optional>
#include <system_error>

#include <turbojpeg.h>
#include <opencv2/imgproc.hpp>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/signals.hpp"
#include "ihc/engine/text.hpp"
#include "report_assets.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;

namespace {

constexpr int kJpegQuality = 85;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw EngineError(ErrorKind::output, path.string() + ": cannot be written");
}

std::string jpeg_of(const cv::Mat& rgb) {
  CV_Assert(rgb.type() == CV_8UC3);
  const cv::Mat packed = rgb.isContinuous() ? rgb : rgb.clone();
  tjhandle tj = tjInitCompress();
  if (!tj) throw EngineError(ErrorKind::output, "JPEG encoder cannot start");
  unsigned char* data = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj, packed.data, packed.cols, 0, packed.rows, TJPF_RGB, &data, &size, TJSAMP_420,
                             kJpegQuality, 0);
  std::string bytes;
  if (rc == 0) bytes.assign(reinterpret_cast<const char*>(data), size);
  const std::string why = rc == 0 ? "" : tjGetErrorStr2(tj);
  tjFree(data);
  tjDestroy(tj);
  if (rc != 0) throw EngineError(ErrorKind::output, "JPEG encoding failed: " + why);
  return bytes;
}

// Flags of a cell for the viewer (viewer.js reads them by these bits).
constexpr int kFlagFold = 1, kFlagFocus = 2, kFlagPigment = 4, kFlagCytoplasmic = 8, kFlagLateral = 16;

}  // namespace

bool report_viewer_available() { return report_assets::kAvailable; }

namespace {
// What a report folder holds (commit() below): DIR is replaced only when it holds nothing else,
// so a folder of the user's (the slide's own folder, their notes) is never deleted, --force or not.
bool written_by_report(const fs::directory_entry& e) {
  static constexpr std::array<const char*, 8> kFiles{"index.html", "viewer.js",  "viewer.css", "openseadragon.min.js",
                                                      "cells.js",   "data.js",    "blank.jpg",  "thumbnail.jpg"};
  std::error_code ec;
  const std::string name = e.path().filename().string();
  if (name == "slide_files") return e.is_directory(ec);
  return e.is_regular_file(ec) && std::find(kFiles.begin(), kFiles.end(), name) != kFiles.end();
}
}  // namespace

std::optional<std::string> not_a_report_entry(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!written_by_report(*it)) return it->path().filename().string();
  if (ec) return std::string("(its contents cannot be listed: ") + ec.message() + ")";
  return std::nullopt;
}

ReportFolder::ReportFolder(fs::path dir, bool overwrite, double mpp)
    : dir_(std::move(dir)), overwrite_(overwrite), requested_mpp_(mpp) {
  if (!report_viewer_available())
    throw EngineError(ErrorKind::usage, dir_.string() +
                                            ": this build has no report viewer (OpenSeadragon was not installed when it "
                                            "was configured: run scripts/setup-deps.sh, then build again)");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir_, ec)) && !overwrite_)
    throw EngineError(ErrorKind::output, dir_.string() + ": exists (give --force to replace it)");
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    throw EngineError(ErrorKind::output, dir_.string() + ": exists and is not a folder");
  if (const auto other = not_a_report_entry(dir_))
    throw EngineError(ErrorKind::output, dir_.string() + ": holds " + *other +
                                             ", which a report does not write; not replaced (name a new folder)");
  const fs::path parent = dir_.parent_path().empty() ? fs::path(".") : dir_.parent_path();
  if (!fs::is_directory(parent, ec))
    throw EngineError(ErrorKind::output, dir_.string() + ": cannot be written: no folder " + parent.string());
  tmp_ = temporary_sibling(dir_);
  fs::remove_all(tmp_, ec);
  if (!fs::create_directory(tmp_, ec))
    throw EngineError(ErrorKind::output, dir_.string() + ": cannot be written: " + ec.message());
  signal_slot_ = remove_on_signal_add(tmp_);
}

ReportFolder::~ReportFolder() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  remove_on_signal_drop(signal_slot_);
}

void ReportFolder::attach(const tiling::Slide& slide, ScoreOptions& options) {
  const TilePlan g = plan_geometry(slide, options);
  const auto& l0 = slide.levels().front();
  slide_ = &slide;
  pyramid_.analysis_downsample = g.downsample;
  if (requested_mpp_ > 0) {
    pyramid_.finer = std::clamp(static_cast<int>(std::lround(std::log2(g.mpp_analysis / requested_mpp_))), -3, 2);
    while (pyramid_.finer > 0 && std::ldexp(g.downsample, -pyramid_.finer) < 1.0) --pyramid_.finer;  // not finer than level 0
  }
  pyramid_.downsample = std::ldexp(g.downsample, -pyramid_.finer);
  core_px_ = std::ldexp(static_cast<double>(options.tile_px), pyramid_.finer);
  const auto pixels = [&](std::int64_t l0_px) {
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(static_cast<double>(l0_px) / pyramid_.downsample)));
  };
  pyramid_.width = pixels(l0.width);
  pyramid_.height = pixels(l0.height);
  pyramid_.max_level = static_cast<int>(std::ceil(std::log2(static_cast<double>(std::max(pyramid_.width, pyramid_.height)))));
  written_.assign(static_cast<std::size_t>(pyramid_.max_level) + 1, {});
  std::error_code ec;
  for (int level = 0; level <= pyramid_.max_level; ++level)
    if (!fs::create_directories(tmp_ / "slide_files" / std::to_string(level), ec) && ec)
      throw EngineError(ErrorKind::output, dir_.string() + ": cannot be written: " + ec.message());
  options.keep_cells = true;
  options.keep_left_out = true;
  options.on_tile_image = [this](const tiling::Rect& core, const cv::Mat& rgb) { on_tile(core, rgb); };
}

void ReportFolder::write_tile(int level, std::int64_t col, std::int64_t row, const cv::Mat& rgb) {
  if (rgb.empty()) return;
  write_bytes(tmp_ / "slide_files" / std::to_string(level) / (std::to_string(col) + "_" + std::to_string(row) + ".jpg"),
              jpeg_of(rgb));
  std::lock_guard lock(mutex_);
  written_[static_cast<std::size_t>(level)].insert({col, row});
}

// The three finest levels come from each analysis tile's own pixels: a 1024 px core is 4 x 4
// tiles at the analysis resolution, 2 x 2 at half of it, one at a quarter (cores start on
// multiples of the tile side, so Deep Zoom tiles never straddle two cores).
void ReportFolder::on_tile(const tiling::Rect& core, const cv::Mat& rgb) {
  constexpr int T = Pyramid::kTile;
  const double ds = pyramid_.downsample;
  const auto x0 = static_cast<std::int64_t>(std::llround(static_cast<double>(core.x) / ds));
  const auto y0 = static_cast<std::int64_t>(std::llround(static_cast<double>(core.y) / ds));
  cv::Mat image = rgb;
  if (pyramid_.finer > 0) {  // finer than the analysis: read the core again at the pyramid's resolution
    const int w = static_cast<int>(std::lround(static_cast<double>(core.w) / ds));
    const int h = static_cast<int>(std::lround(static_cast<double>(core.h) / ds));
    image = read_downsampled(*slide_, static_cast<double>(core.x), static_cast<double>(core.y), ds, w, h);
  } else if (pyramid_.finer < 0) {
    const double f = std::ldexp(1.0, pyramid_.finer);
    cv::resize(rgb, image, cv::Size(std::max(1, static_cast<int>(std::ceil(rgb.cols * f))),
                                    std::max(1, static_cast<int>(std::ceil(rgb.rows * f)))), 0, 0, cv::INTER_AREA);
  }
  const int levels = fine_levels();
  for (int k = 0; k < levels && k <= pyramid_.max_level; ++k) {
    if (k > 0) {
      cv::Mat half;
      cv::resize(image, half, cv::Size((image.cols + 1) / 2, (image.rows + 1) / 2), 0, 0, cv::INTER_AREA);
      image = half;
    }
    const std::int64_t ox = x0 >> k, oy = y0 >> k;
    for (int ty = 0; ty * T < image.rows; ++ty)
      for (int tx = 0; tx * T < image.cols; ++tx) {
        const cv::Rect r(tx * T, ty * T, std::min(T, image.cols - tx * T), std::min(T, image.rows - ty * T));
        write_tile(pyramid_.max_level - k, ox / T + tx, oy / T + ty, image(r));
      }
  }
}

// Levels cut from each analysis tile: while a core still spans whole pyramid tiles (a 1024 px
// core is 4 x 4 tiles at the analysis resolution, 2 x 2 at half, one at a quarter; cores start on
// multiples of the core side, so no pyramid tile straddles two cores).
int ReportFolder::fine_levels() const {
  int levels = 0;
  for (double c = core_px_; levels < 3 && c >= Pyramid::kTile && std::fmod(c, Pyramid::kTile) == 0; c /= 2) ++levels;
  return levels;
}

void ReportFolder::commit(const tiling::Slide& slide, const SlideResult& result, const ScoreOptions& options,
                          const nlohmann::json& report) {
  constexpr int T = Pyramid::kTile;
  const double ds = pyramid_.downsample;
  // Coarse levels: from the slide's own pyramid, only tiles that touch a tissue tile.
  for (int level = pyramid_.max_level - fine_levels(); level >= 0; --level) {
    const int k = pyramid_.max_level - level;
    const double scale = std::ldexp(1.0, k);  // analysis pixels per pixel of this level
    const std::int64_t lw = static_cast<std::int64_t>(std::ceil(static_cast<double>(pyramid_.width) / scale));
    const std::int64_t lh = static_cast<std::int64_t>(std::ceil(static_cast<double>(pyramid_.height) / scale));
    std::set<std::pair<std::int64_t, std::int64_t>> wanted;
    for (const auto& t : result.tiles) {
      const double px = ds * scale * T;  // level-0 pixels per tile of this level
      const auto first = [px](std::int64_t v) { return static_cast<std::int64_t>(static_cast<double>(v) / px); };
      for (auto r = first(t.region.y); r <= first(t.region.y + t.region.h - 1); ++r)
        for (auto c = first(t.region.x); c <= first(t.region.x + t.region.w - 1); ++c) wanted.insert({c, r});
    }
    for (const auto& [c, r] : wanted) {
      const int w = static_cast<int>(std::min<std::int64_t>(T, lw - c * T));
      const int h = static_cast<int>(std::min<std::int64_t>(T, lh - r * T));
      if (w <= 0 || h <= 0) continue;
      const double d = ds * scale;
      write_tile(level, c, r, read_downsampled(slide, static_cast<double>(c * T) * d, static_cast<double>(r * T) * d, d, w, h));
    }
  }
  // Glass: per channel the 90th percentile of the overview (glass is most of a slide and its
  // brightest part): the colour of tiles not written and of the viewer's background.
  cv::Scalar glass(243, 243, 243);
  if (!result.thumbnail.empty()) {
    std::vector<cv::Mat> channels;
    cv::split(result.thumbnail, channels);
    for (int ch = 0; ch < 3 && ch < static_cast<int>(channels.size()); ++ch) {
      std::vector<std::uint8_t> v(channels[static_cast<std::size_t>(ch)].begin<std::uint8_t>(),
                                  channels[static_cast<std::size_t>(ch)].end<std::uint8_t>());
      const auto at = v.begin() + static_cast<std::ptrdiff_t>(v.size() * 9 / 10);
      std::nth_element(v.begin(), at, v.end());
      glass[ch] = *at;
    }
  }
  write_bytes(tmp_ / "blank.jpg", jpeg_of(cv::Mat(8, 8, CV_8UC3, glass)));
  if (!result.thumbnail.empty()) write_bytes(tmp_ / "thumbnail.jpg", jpeg_of(result.thumbnail));

  // data.js: the report, the pyramid, the tile list, ROI and flagged areas (analysis pixels).
  nlohmann::json data;
  data["report"] = report;
  data["pyramid"] = {{"width", pyramid_.width},   {"height", pyramid_.height},
                     {"tile", T},                 {"max_level", pyramid_.max_level},
                     {"mpp", std::ldexp(result.mpp_analysis, -pyramid_.finer)}, {"glass", {glass[0], glass[1], glass[2]}}};
  nlohmann::json tiles = nlohmann::json::object();
  for (std::size_t level = 0; level < written_.size(); ++level) {
    std::vector<std::string> names;
    for (const auto& [c, r] : written_[level]) names.push_back(std::to_string(c) + "_" + std::to_string(r));
    tiles[std::to_string(level)] = names;
  }
  data["tiles"] = tiles;
  const auto rings_of = [ds](const std::vector<scoring::Polygon>& polygons) {
    nlohmann::json rings = nlohmann::json::array();
    for (const auto& poly : polygons)
      for (const auto& ring : poly.rings) {
        nlohmann::json pts = nlohmann::json::array();
        for (const auto& p : ring) pts.push_back({std::lround(p.x / ds), std::lround(p.y / ds)});
        rings.push_back(pts);
      }
    return rings;
  };
  data["roi"] = rings_of(options.roi.polygons());
  data["roi_excluded"] = rings_of(options.roi.excluded());
  nlohmann::json flagged = nlohmann::json::array();
  // Blocks are in analysis pixels of the tile image (halo included); the page wants pyramid pixels.
  const double to_pyramid = pyramid_.analysis_downsample / ds;
  const double halo = halo_um_for(options) / result.mpp_analysis;
  for (const auto& t : result.tiles) {
    if (t.failed || t.quality.block_px <= 0) continue;
    const double ox = static_cast<double>(t.region.x) / pyramid_.analysis_downsample - halo;
    const double oy = static_cast<double>(t.region.y) / pyramid_.analysis_downsample - halo;
    const double bp = t.quality.block_px * to_pyramid;
    for (int by = 0; by < t.quality.rows; ++by)
      for (int bx = 0; bx < t.quality.cols; ++bx) {
        const auto f = t.quality.flags[static_cast<std::size_t>(by * t.quality.cols + bx)];
        if (f == 0) continue;
        flagged.push_back({std::lround((ox + bx * t.quality.block_px) * to_pyramid),
                           std::lround((oy + by * t.quality.block_px) * to_pyramid), std::lround(bp), std::lround(bp),
                           (f & scoring::kExcludedFold) ? "fold" : "out of focus"});
      }
  }
  data["flagged"] = flagged;
  write_bytes(tmp_ / "data.js", "window.IHC_DATA = " + json_text(data) + ";\n");

  // cells.js: x, y (analysis pixels), class (0-3, 4: not counted), completeness (per cent),
  // intensity (OD x 1000), flags, and for cells left out the rules that left them out.
  std::string cells = "window.IHC_CELLS = {\"x\":[";
  std::string ys, cls, comp, inten, flags, why;
  bool first = true;
  const auto add = [&](const SlideCell& c, bool counted) {
    const std::string sep = first ? "" : ",";
    first = false;
    cells += sep + std::to_string(std::lround(c.x / ds));
    ys += sep + std::to_string(std::lround(c.y / ds));
    cls += sep + std::to_string(counted ? static_cast<int>(c.cell_class) : 4);
    comp += sep + std::to_string(std::lround(c.completeness * 100.0f));
    inten += sep + std::to_string(std::lround(c.intensity_od * 1000.0f));
    const int f = ((c.excluded & scoring::kExcludedFold) ? kFlagFold : 0) |
                  ((c.excluded & scoring::kExcludedFocus) ? kFlagFocus : 0) | (c.pigment ? kFlagPigment : 0) |
                  (c.cytoplasmic ? kFlagCytoplasmic : 0) | (c.lateral ? kFlagLateral : 0);
    flags += sep + std::to_string(f);
    why += sep + std::to_string(counted ? 0 : (c.left_out ? static_cast<int>(c.left_out) : 128));  // 128: outside the ROI
  };
  for (const auto& t : result.tiles) {
    for (const auto& c : t.cells) add(c, true);
    for (const auto& c : t.left_out_cells) add(c, false);
  }
  cells += "],\"y\":[" + ys + "],\"c\":[" + cls + "],\"p\":[" + comp + "],\"i\":[" + inten + "],\"f\":[" + flags +
           "],\"w\":[" + why + "]};\n";
  write_bytes(tmp_ / "cells.js", cells);

  write_bytes(tmp_ / "index.html", report_assets::kViewerHtml);
  write_bytes(tmp_ / "viewer.js", report_assets::kViewerJs);
  write_bytes(tmp_ / "viewer.css", report_assets::kViewerCss);
  write_bytes(tmp_ / "openseadragon.min.js", report_assets::kOpenSeadragonJs);

  // Into place: an existing DIR (overwrite) goes only once the new one is complete.
  std::error_code ec;
  fs::path old;
  if (fs::exists(dir_, ec)) {
    old = tmp_.parent_path() / ("." + dir_.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(dir_, old, ec);
    if (ec) throw EngineError(ErrorKind::output, dir_.string() + ": cannot be replaced: " + ec.message());
  }
  fs::rename(tmp_, dir_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, dir_, ec);
    throw EngineError(ErrorKind::output, dir_.string() + ": cannot be written: " + ec.message());
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

namespace {
std::string html_escape(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

// A folder name as a relative URL: every byte outside the unreserved set percent-encoded.
std::string url_path(const std::string& name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char ch : name) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}
}  // namespace

std::string report_index_html(const std::vector<ReportIndexRow>& rows) {
  std::string html = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8">)" + std::string(kBatchIndexTitle) + R"(
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }
th { cursor: pointer; background: #f3f3f3; user-select: none; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { height: 64px; }
.error { color: #a00; }
</style></head><body>
<h1>ihcscore batch report</h1>
<p>Click a column to sort; click a slide to open its report.</p>
<table id="slides"><thead><tr><th>thumbnail</th><th>slide</th><th>status</th><th>score</th><th>category</th>
<th>guideline</th><th>decisive</th><th data-num>decisive %</th><th data-num>% complete</th>
<th data-num>% complete intense</th><th data-num>cells</th><th>error</th></tr></thead><tbody>
)";
  for (const auto& r : rows) {
    const std::string link = url_path(r.id) + "/index.html";
    html += "<tr><td>";
    if (r.has_thumbnail) html += "<img alt=\"\" src=\"" + url_path(r.id) + "/thumbnail.jpg\">";
    html += "</td><td>";
    html += r.has_folder ? "<a href=\"" + link + "\">" + html_escape(r.id) + "</a>" : html_escape(r.id);
    html += "</td><td>" + html_escape(r.status) + "</td><td>" + html_escape(r.score) + "</td><td>" +
            html_escape(r.category) + "</td><td>" + html_escape(r.guideline) + "</td><td>" +
            html_escape(r.decisive_metric) + "</td><td class=\"num\">" + html_escape(r.decisive_percent) +
            "</td><td class=\"num\">" + html_escape(r.percent_complete) + "</td><td class=\"num\">" +
            html_escape(r.percent_complete_intense) + "</td><td class=\"num\">" + html_escape(r.cells) +
            "</td><td class=\"error\">" + html_escape(r.error) + "</td></tr>\n";
  }
  html += R"(</tbody></table>
<script>
document.querySelectorAll('#slides th').forEach((th, col) => {
  let ascending = true;
  th.addEventListener('click', () => {
    const body = document.querySelector('#slides tbody');
    const numeric = th.hasAttribute('data-num');
    const key = (tr) => { const t = tr.children[col].textContent; return numeric ? (t === '' ? -1 : Number(t)) : t; };
    const rows = [...body.rows].sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
    ascending = !ascending;
    rows.forEach((tr) => body.appendChild(tr));
  });
});
</script>
</body></html>
)";
  return html;
}

}  // namespace ihc::engine
