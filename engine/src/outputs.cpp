#include "ihc/engine/outputs.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <png.h>
#include <opencv2/imgproc.hpp>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/output_file.hpp"

namespace ihc::engine {
namespace {

// Blue (0 %) through yellow to red (100 %).
cv::Vec3b ramp(double percent) {
  const double t = std::clamp(percent / 100.0, 0.0, 1.0);
  const auto lerp = [](double a, double b, double u) { return static_cast<std::uint8_t>(std::lround(a + (b - a) * u)); };
  if (t < 0.5) {
    const double u = t / 0.5;
    return {lerp(40, 250, u), lerp(80, 220, u), lerp(220, 40, u)};
  }
  const double u = (t - 0.5) / 0.5;
  return {lerp(250, 200, u), lerp(220, 20, u), lerp(40, 20, u)};
}

void put_text(cv::Mat& img, const std::string& text, cv::Point at, double scale) {
  cv::putText(img, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(20, 20, 20), 1, cv::LINE_AA);
}

}  // namespace

cv::Vec3b class_colour(scoring::CellClass c) {
  switch (c) {
    case scoring::CellClass::Negative: return {60, 110, 230};
    case scoring::CellClass::OnePlus: return {240, 210, 40};
    case scoring::CellClass::TwoPlus: return {245, 140, 20};
    case scoring::CellClass::ThreePlus: return {210, 20, 20};
  }
  return {0, 0, 0};
}

cv::Mat render_heatmap(const SlideResult& r) {
  CV_Assert(!r.thumbnail.empty());
  // At least 800 px wide so tiles and the legend are legible.
  const double up = std::max(1.0, 800.0 / r.thumbnail.cols);
  cv::Mat base;
  cv::resize(r.thumbnail, base, cv::Size(), up, up, up > 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
  cv::Mat overlay = base.clone();
  const double k = up / r.thumbnail_downsample;  // heatmap pixels per level-0 pixel
  for (const auto& t : r.tiles) {
    const cv::Rect box(static_cast<int>(std::floor(static_cast<double>(t.region.x) * k)),
                       static_cast<int>(std::floor(static_cast<double>(t.region.y) * k)),
                       std::max(1, static_cast<int>(std::ceil(static_cast<double>(t.region.w) * k))),
                       std::max(1, static_cast<int>(std::ceil(static_cast<double>(t.region.h) * k))));
    const cv::Rect clipped = box & cv::Rect(0, 0, base.cols, base.rows);
    if (clipped.area() == 0) continue;
    if (t.failed) {
      cv::rectangle(overlay, clipped, cv::Scalar(0, 0, 0), cv::FILLED);
      continue;
    }
    if (t.counts.total() > 0) {
      const auto p = t.counts.percent();
      const cv::Vec3b c = ramp(p.complete());
      cv::rectangle(overlay, clipped, cv::Scalar(c[0], c[1], c[2]), cv::FILLED);
    }
    // A tile with a tenth of its tissue or more folded or out of focus is crossed out.
    if (t.tissue_um2 > 0 && t.fold_um2 + t.focus_um2 >= 0.1 * t.tissue_um2) {
      cv::line(overlay, clipped.tl(), clipped.br() - cv::Point(1, 1), cv::Scalar(60, 60, 60), 1);
      cv::line(overlay, {clipped.x, clipped.y + clipped.height - 1}, {clipped.x + clipped.width - 1, clipped.y},
               cv::Scalar(60, 60, 60), 1);
    }
  }
  cv::Mat blended;
  cv::addWeighted(overlay, 0.55, base, 0.45, 0.0, blended);

  // Legend strip below the picture: the colour bar, then the score and the key beside it when
  // they fit (a wide overview), else on their own lines below it (never cut off).
  const int margin = 20;
  const std::array<std::string, 2> key{"score " + std::string(scoring::to_string(r.score)),
                                       "black = unreadable tile, X = folded / out of focus"};
  int key_w = 0;
  for (const auto& line : key) {
    int baseline = 0;
    key_w = std::max(key_w, cv::getTextSize(line, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &baseline).width);
  }
  const int bar_w = std::min(400, blended.cols - 2 * margin);
  const bool beside = margin + bar_w + 20 + key_w + margin <= blended.cols;
  const int lh = beside ? 70 : 110;
  cv::Mat out(blended.rows + lh, blended.cols, CV_8UC3, cv::Scalar(255, 255, 255));
  blended.copyTo(out(cv::Rect(0, 0, blended.cols, blended.rows)));
  const int bar_y = blended.rows + 30;
  for (int x = 0; x < bar_w; ++x) {
    const cv::Vec3b c = ramp(100.0 * x / std::max(1, bar_w - 1));
    cv::line(out, {margin + x, bar_y}, {margin + x, bar_y + 14}, cv::Scalar(c[0], c[1], c[2]));
  }
  put_text(out, "tumour cells with complete membrane (2+ and 3+), per tile", {margin, blended.rows + 20}, 0.45);
  put_text(out, "0%", {margin, bar_y + 32}, 0.4);
  put_text(out, "50%", {margin + bar_w / 2 - 12, bar_y + 32}, 0.4);
  put_text(out, "100%", {margin + bar_w - 34, bar_y + 32}, 0.4);
  for (std::size_t i = 0; i < key.size(); ++i) {
    const int line_y = static_cast<int>(i) * 18;
    const cv::Point at = beside ? cv::Point(margin + bar_w + 20, bar_y + 4 + line_y) : cv::Point(margin, bar_y + 56 + line_y);
    put_text(out, key[i], at, 0.45);
  }
  return out;
}

void check_png_name(const std::string& option, const std::filesystem::path& path) {
  std::error_code ec;
  if (path.empty() || (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec) &&
                       !std::filesystem::is_directory(path, ec)))
    return;
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext != ".png")
    throw EngineError(ErrorKind::usage, path.string() + ": " + option + " writes a PNG picture; name it .png");
}

void write_png(const std::filesystem::path& out, const cv::Mat& image, bool overwrite, ChannelOrder order) {
  CV_Assert(image.type() == CV_8UC3);
  const cv::Mat packed = image.isContinuous() ? image : image.clone();
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(packed.cols);
  png.height = static_cast<png_uint_32>(packed.rows);
  png.format = order == ChannelOrder::rgb ? PNG_FORMAT_RGB : PNG_FORMAT_BGR;
  png_alloc_size_t size = 0;
  const auto stride = static_cast<png_int_32>(packed.step[0]);  // in components: one byte each
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, packed.data, stride, nullptr) || size == 0)
    throw EngineError(ErrorKind::output, out.string() + ": PNG encoding failed: " + png.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, packed.data, stride, nullptr))
    throw EngineError(ErrorKind::output, out.string() + ": PNG encoding failed: " + png.message);
  bytes.resize(size);
  write_file_atomically(out, bytes, overwrite);
}

void write_geojson(const std::filesystem::path& out, const SlideResult& r, bool include_tiles, bool include_left_out,
                   bool overwrite) {
  commit_file_atomically(out, overwrite, [&](const std::filesystem::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw EngineError(ErrorKind::output, out.string() + ": cannot be written: " + std::strerror(errno));
    bool first = true;
    auto begin_feature = [&] {
      std::fputs(first ? "\n" : ",\n", f);
      first = false;
    };
    std::fputs("{\"type\":\"FeatureCollection\",\"features\":[", f);
    // A cell as a detection: counted cells classed 0-3+; with include_left_out the cells the
    // tumour-cell rules left out too, classed "Not counted" with the rules they failed.
    const auto write_cell = [&](const SlideCell& c, bool counted) {
      if (c.outline.size() < 3) return;
      begin_feature();
      const cv::Vec3b col = counted ? class_colour(c.cell_class) : cv::Vec3b(128, 128, 128);
      const std::string name = counted ? std::string(scoring::to_string(c.cell_class)) : std::string("Not counted");
      double twice_area = 0;  // shoelace, level-0 pixels
      for (std::size_t i = 0, j = c.outline.size() - 1; i < c.outline.size(); j = i++)
        twice_area += static_cast<double>(c.outline[j].x + c.outline[i].x) * static_cast<double>(c.outline[j].y - c.outline[i].y);
      const double area_um2 = std::abs(twice_area) / 2 * r.mpp_slide * r.mpp_slide;
      std::fputs("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[", f);
      for (std::size_t i = 0; i <= c.outline.size(); ++i) {
        const auto& pt = c.outline[i % c.outline.size()];  // closed ring
        std::fprintf(f, "%s[%.1f,%.1f]", i ? "," : "", static_cast<double>(pt.x), static_cast<double>(pt.y));
      }
      std::fprintf(f,
                   "]]},\"properties\":{\"objectType\":\"detection\",\"classification\":{\"name\":\"%s\","
                   "\"color\":[%d,%d,%d]},",
                   name.c_str(), col[0], col[1], col[2]);
      if (!counted) {
        const std::string why = c.left_out ? scoring::left_out_reasons(c.left_out) : std::string("outside_roi");
        std::fprintf(f, "\"left_out\":\"%s\",", why.c_str());
      }
      std::fprintf(f, "\"centre\":[%.1f,%.1f],", static_cast<double>(c.x), static_cast<double>(c.y));
      std::fprintf(f,
                   "\"measurements\":{\"completeness\":%.3f,\"intensity_od\":%.3f,"
                   "\"area_um2\":%.1f,\"nucleus_area_um2\":%.1f,\"cytoplasmic\":%d,\"excluded_fold\":%d,"
                   "\"excluded_focus\":%d,\"pigment\":%d,\"lateral\":%d}}}",
                   static_cast<double>(c.completeness), static_cast<double>(c.intensity_od), area_um2,
                   static_cast<double>(c.nucleus_area_um2), c.cytoplasmic ? 1 : 0,
                   (c.excluded & scoring::kExcludedFold) ? 1 : 0,
                   (c.excluded & scoring::kExcludedFold) == 0 && (c.excluded & scoring::kExcludedFocus) ? 1 : 0,
                   c.pigment ? 1 : 0, c.lateral ? 1 : 0);
    };
    for (const auto& t : r.tiles) {
      for (const auto& c : t.cells) write_cell(c, true);
      if (include_left_out)
        for (const auto& c : t.left_out_cells) write_cell(c, false);
    }
    if (include_tiles) {
      for (const auto& t : r.tiles) {
        begin_feature();
        const auto p = t.counts.percent();
        const double x0 = static_cast<double>(t.region.x), y0 = static_cast<double>(t.region.y);
        const double x1 = x0 + static_cast<double>(t.region.w), y1 = y0 + static_cast<double>(t.region.h);
        std::fprintf(f,
                     "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[%.0f,%.0f],[%.0f,%.0f],"
                     "[%.0f,%.0f],[%.0f,%.0f],[%.0f,%.0f]]]},\"properties\":{\"objectType\":\"annotation\","
                     "\"name\":\"tile\",\"measurements\":{\"cells\":%lld,\"percent_complete\":%.2f,"
                     "\"percent_complete_intense\":%.2f,\"failed\":%d,\"fold_um2\":%.0f,\"out_of_focus_um2\":%.0f}}}",
                     x0, y0, x1, y0, x1, y1, x0, y1, x0, y0, static_cast<long long>(t.counts.total()), p.complete(),
                     p.complete_intense(), t.failed ? 1 : 0, t.fold_um2, t.focus_um2);
      }
    }
    std::fputs("\n]}\n", f);
    const bool ok = std::fflush(f) == 0 && !std::ferror(f);
    const int saved = errno;
    std::fclose(f);
    if (!ok) throw EngineError(ErrorKind::output, out.string() + ": cannot be written: " + std::strerror(saved));
  });
}

}  // namespace ihc::engine
