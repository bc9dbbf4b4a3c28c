// libFuzzer harness for the direct TIFF + JPEG tile reader (tiling/src/tiff_jpeg_slide.cpp).
//
// The input is written to a scratch file (the reader opens a path) and opened with the reader's
// own entry point (not open_slide: OpenSlide's and OpenCV's fallbacks are not under test here).
// Then the header, the properties and a few regions at the first and last levels are read,
// at full and DCT-reduced scale, inside, across and outside the image. tiling::SlideError is the
// reader's documented way to refuse a file; anything else (a crash, another exception, a leak,
// undefined behaviour, a hang, a huge allocation) is a finding.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>

#include "fuzz_common.hpp"
#include "ihc/tiling/slide.hpp"
#include "readers.hpp"  // tiling's private reader entry points

namespace {

using ihc::tiling::Level;
using ihc::tiling::Slide;
using ihc::tiling::SlideError;

void touch(const cv::Mat& m) {
  // Every byte of the result is read (ASan: the Mat is as large as it claims).
  volatile unsigned sum = 0;
  for (int y = 0; y < m.rows; ++y) {
    const unsigned char* p = m.ptr<unsigned char>(y);
    for (std::size_t i = 0; i < static_cast<std::size_t>(m.cols) * m.elemSize(); ++i) sum = sum + p[i];
  }
}

void read_some(const Slide& slide, int level) {
  const Level& l = slide.levels()[static_cast<std::size_t>(level)];
  const double ds = l.downsample;
  const auto at = [ds](std::int64_t v) { return static_cast<std::int64_t>(static_cast<double>(v) * ds); };
  const int w = static_cast<int>(std::min<std::int64_t>(l.width, 96));
  const int h = static_cast<int>(std::min<std::int64_t>(l.height, 96));
  // The top-left corner, then a region straddling the first tile edges, the bottom-right corner
  // partly outside the image, and one wholly outside.
  const std::int64_t cx = std::max<std::int64_t>(0, std::min<std::int64_t>(l.width, 256) - 24);
  const std::int64_t cy = std::max<std::int64_t>(0, std::min<std::int64_t>(l.height, 256) - 24);
  const struct {
    std::int64_t x, y;
    int w, h;
  } regions[] = {{0, 0, w, h},
                 {cx, cy, 48, 48},
                 {l.width - 40, l.height - 40, 64, 64},
                 {-40, -8, 64, 32},
                 {l.width + 5, 0, 16, 16}};
  for (const auto& r : regions) {
    try {
      touch(slide.read_region(level, at(r.x), at(r.y), r.w, r.h));
    } catch (const SlideError&) {
    }
  }
  for (const int scale : {2, 4, 8, 3}) {
    try {
      touch(slide.read_region_scaled(level, 0, 0, std::max(w, scale), std::max(h, scale), scale));
    } catch (const SlideError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ihc::fuzz::write_scratch("input.svs", data, size);
  std::unique_ptr<Slide> slide;
  try {
    slide = ihc::tiling::detail::open_tiff_jpeg(path);
  } catch (const SlideError&) {
    return 0;
  }
  if (!slide) return 0;  // not this reader's format
  if (slide->levels().empty()) std::abort();  // the reader promises at least one level
  volatile std::size_t n = 0;
  for (const auto& [k, v] : slide->properties()) n = n + k.size() + v.size();
  (void)slide->mpp();
  (void)slide->objective_power();
  (void)slide->best_level_for_downsample(4.0);
  const int last = static_cast<int>(slide->levels().size()) - 1;
  read_some(*slide, 0);
  if (last > 0) read_some(*slide, last);
  // Out-of-range requests are refused, not undefined.
  for (const int bad : {-1, last + 1}) {
    try {
      (void)slide->read_region(bad, 0, 0, 8, 8);
      std::abort();
    } catch (const SlideError&) {
    }
  }
  return 0;
}
