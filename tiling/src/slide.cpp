#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <system_error>

#include <opencv2/imgproc.hpp>

#include "ihc/tiling/slide.hpp"
#include "readers.hpp"

namespace ihc::tiling {
namespace {
// Classic or BigTIFF magic, either byte order.
bool is_tiff(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char m[4] = {};
  if (!f.read(reinterpret_cast<char*>(m), 4)) return false;
  const bool le = m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0;
  const bool be = m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43);
  return le || be;
}

// The commonest damage, said precisely: the first directory lies beyond the end of the file
// (empty when that is not the case).
std::string tiff_truncation(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[16] = {};
  if (!f.read(reinterpret_cast<char*>(h), 8)) return "the file ends inside the TIFF header: truncated";
  const bool le = h[0] == 'I';
  const bool big = (le ? h[2] : h[3]) == 43;
  if (big && !f.read(reinterpret_cast<char*>(h + 8), 8)) return "the file ends inside the BigTIFF header: truncated";
  const int at = big ? 8 : 4, n = big ? 8 : 4;
  std::uint64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const unsigned char byte = le ? h[at + n - 1 - i] : h[at + i];
    offset = (offset << 8) | byte;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && offset + 2 > size)
    return "its first directory (at byte " + std::to_string(offset) + ") lies beyond the end of the file (" +
           std::to_string(size) + " bytes): truncated";
  return {};
}
}  // namespace

cv::Mat Slide::read_region_scaled(int level, std::int64_t x, std::int64_t y, int w, int h,
                                  int scale) const {
  cv::Mat full = read_region(level, x, y, w, h);
  if (scale <= 1) return full;
  cv::Mat out;
  cv::resize(full, out, cv::Size(std::max(1, w / scale), std::max(1, h / scale)), 0, 0,
             cv::INTER_AREA);
  return out;
}

namespace detail {
std::vector<std::size_t> consistent_levels(const std::vector<Level>& all, std::vector<std::string>& warnings) {
  std::vector<std::size_t> kept;
  if (all.empty()) return kept;
  kept.push_back(0);
  const double w0 = static_cast<double>(all[0].width), h0 = static_cast<double>(all[0].height);
  std::string dropped;
  for (std::size_t i = 1; i < all.size(); ++i) {
    const Level& l = all[i];
    const Level& before = all[kept.back()];
    const double dx = w0 / static_cast<double>(l.width), dy = h0 / static_cast<double>(l.height);
    // A reduced level's sides are its downsample's rounding of level 0's: the two directions
    // agree to one pixel of the smaller side (plus 2 % for scanners that crop a little).
    const double tolerance = 0.02 + 1.0 / static_cast<double>(std::min(l.width, l.height));
    std::string why;
    if (l.width > all[0].width || l.height > all[0].height)
      why = "larger than level 0";
    else if (l.width >= before.width && l.height >= before.height)
      why = "not smaller than level " + std::to_string(kept.back());
    else if (std::abs(dx - dy) > tolerance * std::max(dx, dy))
      why = "scaled " + std::to_string(dx).substr(0, 5) + "x across but " + std::to_string(dy).substr(0, 5) +
            "x down";
    if (why.empty()) {
      kept.push_back(i);
      continue;
    }
    dropped += (dropped.empty() ? "" : "; ") + std::string("level ") + std::to_string(i) + " (" +
               std::to_string(l.width) + " x " + std::to_string(l.height) + " px) is " + why;
  }
  if (!dropped.empty()) {
    std::string used;
    for (std::size_t k : kept) used += (used.empty() ? "" : ", ") + std::to_string(k);
    warnings.push_back("the pyramid contradicts itself: " + dropped + " (level 0: " + std::to_string(all[0].width) +
                       " x " + std::to_string(all[0].height) + " px); reading from level" +
                       (kept.size() > 1 ? "s " : " ") + used + " only");
  }
  return kept;
}
}  // namespace detail

int Slide::best_level_for_downsample(double downsample) const {
  int best = 0;
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    // A small tolerance: a level at 3.99996 serves a request for 4.
    if (levels_[i].downsample <= downsample * 1.001) best = static_cast<int>(i);
  }
  return best;
}

std::unique_ptr<Slide> open_slide(const std::filesystem::path& path, const OpenOptions& options) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    throw SlideError(SlideError::Kind::NotFound, "no such file");
  if (std::filesystem::is_directory(status))
    throw SlideError(SlideError::Kind::NotFound, "is a directory, not a slide");
  if (!std::filesystem::is_regular_file(status))
    throw SlideError(SlideError::Kind::NotFound, "not a regular file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw SlideError(SlideError::Kind::Io, "cannot be opened for reading (permissions?)");
    char byte;
    if (!probe.read(&byte, 1)) throw SlideError(SlideError::Kind::Corrupt, "file is empty");
  }
  // Tried in order; the most general reader last.
  if (options.allow_fast_reader && !options.force_openslide) {
    if (auto s = detail::open_tiff_jpeg(path)) return s;
  }
  if (auto s = detail::open_openslide(path)) return s;
  const std::string libtiff = detail::last_libtiff_errors();
  try {
    if (auto s = detail::open_plain_image(path)) return s;
  } catch (const SlideError& e) {
    // A TIFF no slide reader could open and OpenCV cannot decode: say what libtiff saw.
    if (!is_tiff(path)) throw;
    if (const std::string cut = tiff_truncation(path); !cut.empty())
      throw SlideError(SlideError::Kind::Corrupt, "TIFF file whose structure cannot be read: " + cut);
    throw;
  }
  if (is_tiff(path))
    throw SlideError(SlideError::Kind::Unsupported,
                     "TIFF file that neither OpenSlide nor OpenCV can read" +
                         (libtiff.empty() ? std::string() : " (libtiff: " + libtiff + ")"));
  throw SlideError(SlideError::Kind::Unsupported,
                   "not a slide or image format this program reads (neither a slide OpenSlide opens nor a PNG, JPEG or TIFF image)");
}

}  // namespace ihc::tiling
