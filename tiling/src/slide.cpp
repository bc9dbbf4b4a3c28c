#include <cmath>
#include <fstream>
#include <system_error>

#include <opencv2/imgproc.hpp>

#include "ihc/tiling/slide.hpp"
#include "readers.hpp"

namespace ihc::tiling {

cv::Mat Slide::read_region_scaled(int level, std::int64_t x, std::int64_t y, int w, int h,
                                  int scale) const {
  cv::Mat full = read_region(level, x, y, w, h);
  if (scale <= 1) return full;
  cv::Mat out;
  cv::resize(full, out, cv::Size(std::max(1, w / scale), std::max(1, h / scale)), 0, 0,
             cv::INTER_AREA);
  return out;
}

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
  if (auto s = detail::open_plain_image(path)) return s;
  throw SlideError(SlideError::Kind::Unsupported,
                   "not a slide or image format this program reads (OpenSlide and OpenCV both refused it)");
}

}  // namespace ihc::tiling
