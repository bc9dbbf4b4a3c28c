// Plain images (PNG, JPEG, stripped TIFF, ...) through OpenCV: one level held in memory, and no
// physical resolution, so the caller must supply --mpp.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "readers.hpp"

namespace ihc::tiling::detail {
namespace {

// A plain image is decoded whole; refuse anything that would need more than this.
constexpr std::int64_t kMaxPlainPixels = std::int64_t{1} << 28;  // 268 Mpx, ~800 MB RGB

class PlainImageSlide final : public Slide {
 public:
  PlainImageSlide(const std::filesystem::path& path, cv::Mat rgb) : rgb_(std::move(rgb)) {
    path_ = path;
    vendor_ = "image";
    levels_.push_back({rgb_.cols, rgb_.rows, 1.0});
  }
  std::string reader() const override { return "opencv-image"; }

  cv::Mat read_region(int level, std::int64_t x, std::int64_t y, int w, int h) const override {
    if (level != 0 || w <= 0 || h <= 0)
      throw SlideError(SlideError::Kind::Corrupt, "region request outside the image");
    cv::Mat out(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
    const cv::Rect want(static_cast<int>(std::clamp<std::int64_t>(x, INT32_MIN / 2, INT32_MAX / 2)),
                        static_cast<int>(std::clamp<std::int64_t>(y, INT32_MIN / 2, INT32_MAX / 2)),
                        w, h);
    const cv::Rect inside = want & cv::Rect(0, 0, rgb_.cols, rgb_.rows);
    if (inside.area() > 0)
      rgb_(inside).copyTo(out(cv::Rect(inside.x - want.x, inside.y - want.y, inside.width, inside.height)));
    return out;
  }

 private:
  cv::Mat rgb_;
};

}  // namespace

std::unique_ptr<Slide> open_plain_image(const std::filesystem::path& path) {
  const std::string name = path.string();
  if (!cv::haveImageReader(name)) return nullptr;
  cv::Mat bgr;
  try {
    bgr = cv::imread(name, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw SlideError(SlideError::Kind::Corrupt, std::string("image cannot be decoded: ") + e.what());
  }
  if (bgr.empty()) throw SlideError(SlideError::Kind::Corrupt, "image cannot be decoded (truncated or damaged)");
  if (static_cast<std::int64_t>(bgr.cols) * bgr.rows > kMaxPlainPixels)
    throw SlideError(SlideError::Kind::TooLarge, "plain image larger than 268 megapixels");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return std::make_unique<PlainImageSlide>(path, std::move(rgb));
}

}  // namespace ihc::tiling::detail
