// libFuzzer harness for plain images (tiling/src/plain_image_slide.cpp): the header sizes read
// before decoding (PNG, JPEG, TIFF), the size cap, then libpng's, libjpeg-turbo's and libtiff's
// decoding and the truncation checks, through the reader's own entry point. SlideError is the reader's refusal;
// a crash, a leak or an allocation beyond the documented cap is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_common.hpp"
#include "ihc/tiling/slide.hpp"
#include "readers.hpp"  // tiling's private reader entry points

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The name's extension does not matter to OpenCV (it sniffs the bytes); the first byte picks
  // one so the name-based checks see variety too.
  static const char* const kNames[] = {"input.png", "input.jpg", "input.tif", "input.bmp"};
  const auto path = ihc::fuzz::write_scratch(kNames[data[0] % 4], data + 1, size - 1);
  std::unique_ptr<ihc::tiling::Slide> slide;
  try {
    slide = ihc::tiling::detail::open_plain_image(path);
  } catch (const ihc::tiling::SlideError&) {
    return 0;
  }
  if (!slide) return 0;
  const auto& l = slide->levels().at(0);
  if (l.width <= 0 || l.height <= 0 || l.width * l.height > (std::int64_t{1} << 26)) std::abort();
  try {
    const cv::Mat m = slide->read_region(0, l.width - 8, l.height - 8, 16, 16);
    volatile int v = m.at<cv::Vec3b>(0, 0)[0];
    (void)v;
  } catch (const ihc::tiling::SlideError&) {
  }
  return 0;
}
