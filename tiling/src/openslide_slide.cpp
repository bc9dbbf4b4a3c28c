// Every vendor format, through OpenSlide. OpenSlide is thread-safe for reads, but its errors are
// sticky: after one failed read the handle refuses everything, for every thread. A failed read
// therefore swaps in a freshly opened handle and is retried on a private one, so one bad tile
// costs exactly that tile, whatever the other threads were reading.
#include <glib.h>
#include <openslide.h>
#include <tiffio.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "ihc/tiling/tiff_open.hpp"
#include "readers.hpp"

namespace ihc::tiling::detail {
namespace {

struct OsCloser {
  void operator()(openslide_t* osr) const {
    if (osr) openslide_close(osr);
  }
};
using OsHandle = std::shared_ptr<openslide_t>;

// libtiff's process-wide handlers print to stderr, and OpenSlide opens TIFFs with them: a
// damaged file would add lines of libtiff chatter to the one-line error. Errors are kept (per
// thread) to explain a refusal; warnings are dropped.
thread_local std::string t_tiff_errors;

void capture_tiff_error(const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (t_tiff_errors.size() > 1000) return;
  if (!t_tiff_errors.empty()) t_tiff_errors += "; ";
  if (module && *module) t_tiff_errors += std::string(module) + ": ";
  t_tiff_errors += buf;
}
void ignore_tiff_warning(const char*, const char*, va_list) {}

void quiet_libtiff() {
  static const bool installed = [] {
    TIFFSetErrorHandler(capture_tiff_error);
    TIFFSetWarningHandler(ignore_tiff_warning);
    return true;
  }();
  (void)installed;
  t_tiff_errors.clear();
}

// OpenSlide and GLib log through GLib, whose default handler prints to stderr ("(process:123):
// Openslide-WARNING **: ..."). Messages are kept per thread, like libtiff's errors, and join the
// one-line error when the slide is refused. (A fatal GLib error still aborts after the handler:
// what can make one, a huge allocation, is checked before OpenSlide sees the file.)
thread_local std::string t_glib_messages;

void capture_glib(const gchar* domain, GLogLevelFlags, const gchar* message, gpointer) {
  if (t_glib_messages.size() > 1000 || !message) return;
  if (!t_glib_messages.empty()) t_glib_messages += "; ";
  if (domain && *domain) t_glib_messages += std::string(domain) + ": ";
  t_glib_messages += message;
}

void quiet_glib() {
  static const bool installed = [] {
    g_log_set_default_handler(capture_glib, nullptr);
    return true;
  }();
  (void)installed;
  t_glib_messages.clear();
}

// OpenSlide's message without the file's path (the caller names the file), and what libtiff
// said, if anything.
std::string explain(const char* openslide_error, const std::filesystem::path& path) {
  std::string text = openslide_error ? openslide_error : "";
  const std::string p = path.string();
  for (const std::string& cut : {": " + p, " " + p, p}) {
    for (auto at = text.find(cut); !p.empty() && at != std::string::npos; at = text.find(cut)) text.erase(at, cut.size());
  }
  if (!t_tiff_errors.empty()) {
    if (!text.empty()) text += ' ';
    text.append("(libtiff: ").append(t_tiff_errors).append(")");
  }
  if (!t_glib_messages.empty()) {
    if (!text.empty()) text += ' ';
    text.append("(").append(t_glib_messages).append(")");
  }
  return text;
}

double parse_double(const char* text) {
  if (!text) return 0.0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  return (end != text && std::isfinite(v)) ? v : 0.0;
}

class OpenSlideSlide final : public Slide {
 public:
  OpenSlideSlide(const std::filesystem::path& path, std::string vendor, OsHandle handle)
      : handle_(std::move(handle)) {
    path_ = path;
    vendor_ = std::move(vendor);
    openslide_t* osr = handle_.get();
    const int32_t count = openslide_get_level_count(osr);
    if (count <= 0) throw SlideError(SlideError::Kind::Corrupt, "slide has no levels");
    for (int32_t i = 0; i < count; ++i) {
      int64_t w = 0, h = 0;
      openslide_get_level_dimensions(osr, i, &w, &h);
      if (w <= 0 || h <= 0) throw SlideError(SlideError::Kind::Corrupt, "level with no pixels");
      constexpr int64_t kMaxSide = int64_t{1} << 31;
      if (w > kMaxSide || h > kMaxSide)
        throw SlideError(SlideError::Kind::TooLarge, "level dimensions exceed 2^31 pixels");
      levels_.push_back({w, h, openslide_get_level_downsample(osr, i)});
    }
    std::vector<Level> consistent;
    for (std::size_t i : detail::consistent_levels(levels_, warnings_)) {
      consistent.push_back(levels_[i]);
      os_levels_.push_back(static_cast<int32_t>(i));
    }
    levels_ = std::move(consistent);
    // OpenSlide does not say how a level stores its colour: for a TIFF-based slide, the tiled
    // directory of the level's size says (the direct reader reads the same tags).
    const auto directories = tiled_directories(path);
    for (Level& l : levels_)
      for (const TiledDirectory& d : directories)
        if (d.width == l.width && d.height == l.height) {
          l.chroma_x = d.chroma.x;
          l.chroma_y = d.chroma.y;
          break;
        }
    for (const char* const* name = openslide_get_property_names(osr); name && *name; ++name) {
      const char* value = openslide_get_property_value(osr, *name);
      properties_[*name] = value ? value : "";
    }
    if (const double mpp = parse_double(openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_MPP_X));
        mpp > 0)
      mpp_ = mpp;
    if (const double obj =
            parse_double(openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER));
        obj > 0)
      objective_ = obj;
  }

  std::string reader() const override { return "openslide"; }

  cv::Mat read_region(int level, std::int64_t x, std::int64_t y, int w, int h) const override {
    if (level < 0 || level >= static_cast<int>(levels_.size()) || w <= 0 || h <= 0)
      throw SlideError(SlideError::Kind::Corrupt, "region request outside the slide's levels");
    constexpr std::int64_t kMaxRegionPixels = std::int64_t{1} << 28;  // 1 GiB of ARGB
    if (static_cast<std::int64_t>(w) * h > kMaxRegionPixels)
      throw SlideError(SlideError::Kind::TooLarge, "a region of " + std::to_string(w) + " x " + std::to_string(h) +
                                                       " pixels is too large to read at once");
    const int32_t file_level = os_levels_[static_cast<std::size_t>(level)];
    cv::Mat argb(h, w, CV_32SC1);
    // A failed read leaves the shared handle in error for every thread, so a failure may be
    // another thread's bad tile. The shared handle is replaced, and the region is read again
    // through a handle of its own: only a failure there is this region's.
    OsHandle handle = current();
    openslide_read_region(handle.get(), reinterpret_cast<uint32_t*>(argb.data), x, y, file_level, w, h);
    if (openslide_get_error(handle.get())) {
      reopen(handle);
      OsHandle own(openslide_open(path_.c_str()), OsCloser{});
      if (!own) throw SlideError(SlideError::Kind::Io, "tile read failed: the slide can no longer be opened");
      if (const char* err = openslide_get_error(own.get()))
        throw SlideError(SlideError::Kind::Corrupt, std::string("tile read failed: ") + err);
      openslide_read_region(own.get(), reinterpret_cast<uint32_t*>(argb.data), x, y, file_level, w, h);
      if (const char* err = openslide_get_error(own.get()))
        throw SlideError(SlideError::Kind::Corrupt, std::string("tile read failed: ") + err);
    }
    cv::Mat rgb(h, w, CV_8UC3);
    for (int r = 0; r < h; ++r) {
      const auto* src = argb.ptr<uint32_t>(r);
      auto* dst = rgb.ptr<uint8_t>(r);
      for (int c = 0; c < w; ++c) {
        // Premultiplied ARGB composited over white.
        const uint32_t p = src[c];
        const uint32_t inv = 255u - (p >> 24);
        dst[3 * c + 0] = static_cast<uint8_t>(std::min(255u, ((p >> 16) & 0xffu) + inv));
        dst[3 * c + 1] = static_cast<uint8_t>(std::min(255u, ((p >> 8) & 0xffu) + inv));
        dst[3 * c + 2] = static_cast<uint8_t>(std::min(255u, (p & 0xffu) + inv));
      }
    }
    return rgb;
  }

 private:
  OsHandle current() const {
    std::lock_guard lock(mutex_);
    return handle_;
  }
  // Replaces the failed handle with a fresh one, unless another thread already did.
  void reopen(const OsHandle& failed) const {
    std::lock_guard lock(mutex_);
    if (handle_ != failed) return;
    openslide_t* fresh = openslide_open(path_.c_str());
    if (fresh && !openslide_get_error(fresh)) {
      handle_ = OsHandle(fresh, OsCloser{});
    } else if (fresh) {
      openslide_close(fresh);
    }
  }

  mutable std::mutex mutex_;
  mutable OsHandle handle_;
  std::vector<int32_t> os_levels_;  // the file's level number of each level kept (consistent_levels)
};

}  // namespace

std::string last_libtiff_errors() { return t_tiff_errors; }

std::unique_ptr<Slide> open_openslide(const std::filesystem::path& path) {
  quiet_libtiff();
  quiet_glib();
  const char* vendor = openslide_detect_vendor(path.c_str());
  if (!vendor) return nullptr;
  if (const std::string beyond = tile_beyond_file(path); !beyond.empty())
    throw SlideError(SlideError::Kind::Corrupt, "damaged TIFF: " + beyond);
  openslide_t* osr = openslide_open(path.c_str());
  if (!osr) {
    std::string why = explain(nullptr, path);
    throw SlideError(SlideError::Kind::Unsupported,
                     std::string("OpenSlide recognises it as '") + vendor +
                         "' but cannot open it (unsupported compression or layout)" + (why.empty() ? "" : " " + why));
  }
  OsHandle handle(osr, OsCloser{});
  if (const char* err = openslide_get_error(osr))
    throw SlideError(SlideError::Kind::Corrupt, "damaged slide: " + explain(err, path));
  return std::make_unique<OpenSlideSlide>(path, vendor, std::move(handle));
}

}  // namespace ihc::tiling::detail
