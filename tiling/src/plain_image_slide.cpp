// Plain images (PNG, JPEG, stripped TIFF, BMP) through OpenCV: one level held in memory, and no
// physical resolution, so the caller must supply --mpp. Only these four are handed to OpenCV,
// recognised by their first bytes: OpenCV sniffs content and would pass anything else to a
// decoder of its own choosing (a DICOM file reached GDCM, which aborts the process on a damaged
// one; found by fuzz_plain_image).
#include <unistd.h>

#include <tiffio.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <utility>
#include <mutex>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ihc/tiling/tiff_open.hpp"
#include "readers.hpp"

namespace ihc::tiling::detail {
namespace {

// A plain image is decoded whole; refuse anything larger than this, so memory stays bounded
// whatever the input: 67 Mpx is 200 MB of RGB (a 30 Mpx gastric core peaks at 240 MB while
// scoring). Larger images belong in a tiled pyramid, read by region.
constexpr std::int64_t kMaxPlainPixels = std::int64_t{1} << 26;

std::string too_large(const std::string& size) {
  return "plain image" + size + " larger than " + std::to_string(kMaxPlainPixels / 1000000) +
         " megapixels (plain images are decoded whole; convert it to a tiled pyramid, e.g. "
         "vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg)";
}

class PlainImageSlide final : public Slide {
 public:
  PlainImageSlide(const std::filesystem::path& path, cv::Mat rgb) : rgb_(std::move(rgb)) {
    path_ = path;
    vendor_ = "image";
    levels_.push_back({rgb_.cols, rgb_.rows, 1.0});
  }
  std::string reader() const override { return "opencv-image"; }

  cv::Mat read_region(int level, std::int64_t x, std::int64_t y, int w, int h) const override {
    const cv::Rect want = request(level, x, y, w, h);
    const cv::Rect inside = want & cv::Rect(0, 0, rgb_.cols, rgb_.rows);
    if (inside == want) return rgb_(want).clone();
    cv::Mat out(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
    if (inside.area() > 0)
      rgb_(inside).copyTo(out(cv::Rect(inside.x - want.x, inside.y - want.y, inside.width, inside.height)));
    return out;
  }

  // A region wholly inside the image is area-averaged straight from the decoded pixels (the
  // same pixels and arithmetic as the default, without copying the full-size region first).
  cv::Mat read_region_scaled(int level, std::int64_t x, std::int64_t y, int w, int h, int scale) const override {
    const cv::Rect want = request(level, x, y, w, h);
    if (scale <= 1 || (want & cv::Rect(0, 0, rgb_.cols, rgb_.rows)) != want)
      return Slide::read_region_scaled(level, x, y, w, h, scale);
    cv::Mat out;
    cv::resize(rgb_(want), out, cv::Size(std::max(1, w / scale), std::max(1, h / scale)), 0, 0, cv::INTER_AREA);
    return out;
  }

 private:
  cv::Rect request(int level, std::int64_t x, std::int64_t y, int w, int h) const {
    if (level != 0 || w <= 0 || h <= 0)
      throw SlideError(SlideError::Kind::Corrupt, "region request outside the image");
    return {static_cast<int>(std::clamp<std::int64_t>(x, INT32_MIN / 2, INT32_MAX / 2)),
            static_cast<int>(std::clamp<std::int64_t>(y, INT32_MIN / 2, INT32_MAX / 2)), w, h};
  }

  cv::Mat rgb_;
};


enum class Magic { none, png, jpeg, tiff, bmp };

// The format the first bytes announce: PNG, JPEG, TIFF (classic or BigTIFF) or BMP.
Magic plain_image_magic(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[4] = {};
  if (!f.read(reinterpret_cast<char*>(h), 4)) return Magic::none;
  if (h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G') return Magic::png;
  if (h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return Magic::jpeg;
  if ((h[0] == 'I' && h[1] == 'I' && (h[2] == 42 || h[2] == 43) && h[3] == 0) ||
      (h[0] == 'M' && h[1] == 'M' && h[2] == 0 && (h[3] == 42 || h[3] == 43)))
    return Magic::tiff;
  if (h[0] == 'B' && h[1] == 'M') return Magic::bmp;
  return Magic::none;
}

// Width and height from the header of a PNG, JPEG, BMP or TIFF, without decoding; nothing for other
// formats or unreadable headers (OpenCV then decides, with its own limit of 2^30 pixels).
std::optional<std::pair<std::int64_t, std::int64_t>> header_dimensions(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[26] = {};
  if (!f.read(reinterpret_cast<char*>(h), 4)) return std::nullopt;
  const auto be32 = [](const unsigned char* p) {
    return (std::int64_t{p[0]} << 24) | (std::int64_t{p[1]} << 16) | (std::int64_t{p[2]} << 8) | p[3];
  };
  if (h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G') {
    if (!f.read(reinterpret_cast<char*>(h + 4), 20)) return std::nullopt;
    return std::pair{be32(h + 16), be32(h + 20)};
  }
  if (h[0] == 0xFF && h[1] == 0xD8) {
    f.seekg(2);
    for (int markers = 0; markers < 10000; ++markers) {
      unsigned char m[4];
      if (!f.read(reinterpret_cast<char*>(m), 4) || m[0] != 0xFF) return std::nullopt;
      const int marker = m[1], length = (m[2] << 8) | m[3];
      const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        unsigned char d[5];
        if (!f.read(reinterpret_cast<char*>(d), 5)) return std::nullopt;
        return std::pair{std::int64_t{(d[3] << 8) | d[4]}, std::int64_t{(d[1] << 8) | d[2]}};
      }
      if (length < 2) return std::nullopt;
      f.seekg(length - 2, std::ios::cur);
    }
    return std::nullopt;
  }
  if (h[0] == 'B' && h[1] == 'M') {
    // BITMAPFILEHEADER (14 bytes), then the DIB header: its size, then the sides (16-bit in the
    // 12-byte OS/2 header, 32-bit signed in the others; a negative height means top-down).
    if (!f.read(reinterpret_cast<char*>(h + 4), 22)) return std::nullopt;
    const auto le32 = [](const unsigned char* p) {
      return static_cast<std::int32_t>(std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
                                       (std::uint32_t{p[3]} << 24));
    };
    if (le32(h + 14) == 12) return std::pair{std::int64_t{h[18] | (h[19] << 8)}, std::int64_t{h[20] | (h[21] << 8)}};
    const std::int64_t w = le32(h + 18), hh = le32(h + 22);
    return std::pair{w < 0 ? -w : w, hh < 0 ? -hh : hh};
  }
  const bool tiff = (h[0] == 'I' && h[1] == 'I' && h[2] == 42) || (h[0] == 'M' && h[1] == 'M' && h[3] == 42) ||
                    (h[0] == 'I' && h[1] == 'I' && h[2] == 43) || (h[0] == 'M' && h[1] == 'M' && h[3] == 43);
  if (tiff) {
    // libtiff cannot read it: neither can OpenCV (which decodes TIFFs with libtiff); say why.
    TiffMessages messages;
    TIFF* t = open_tiff_quietly(path, "rm", messages);
    const std::string said = messages.joined();
    if (!t)
      throw SlideError(SlideError::Kind::Corrupt,
                       "TIFF file whose structure cannot be read (" +
                           (said.empty() ? std::string("truncated or damaged") : "libtiff: " + said) + ")");
    std::uint32_t w = 0, hh = 0;
    const bool ok = TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) && TIFFGetField(t, TIFFTAG_IMAGELENGTH, &hh);
    TIFFClose(t);
    if (ok) return std::pair{std::int64_t{w}, std::int64_t{hh}};
  }
  return std::nullopt;
}

// The decoders inside OpenCV (libpng, libjpeg, libtiff) print their complaints to stderr. While
// `f` runs, stderr goes to a temporary file instead; what was said is returned, for the error
// message, and not left as stray lines beside it. One at a time.
std::string with_stderr_captured(const std::function<void()>& f) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::fflush(stderr);
  std::FILE* tmp = std::tmpfile();
  const int saved = tmp ? ::dup(STDERR_FILENO) : -1;
  if (saved < 0 || ::dup2(::fileno(tmp), STDERR_FILENO) < 0) {
    if (saved >= 0) ::close(saved);
    if (tmp) std::fclose(tmp);
    f();
    return {};
  }
  auto restore = [&] {
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
  };
  try {
    f();
  } catch (...) {
    restore();
    std::fclose(tmp);
    throw;
  }
  restore();
  std::string text;
  std::rewind(tmp);
  char buf[512];
  while (text.size() < 4096) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, tmp);
    if (n == 0) break;
    text.append(buf, n);
  }
  std::fclose(tmp);
  return text;
}

// Several lines of decoder messages as one: "a; b; c".
std::string one_line(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out += (out.empty() ? "" : "; ") + line;
    start = end + 1;
  }
  return out.size() > 400 ? out.substr(0, 400) + "..." : out;
}

}  // namespace

std::unique_ptr<Slide> open_plain_image(const std::filesystem::path& path) {
  const std::string name = path.string();
  if (plain_image_magic(path) == Magic::none || !cv::haveImageReader(name)) return nullptr;
  // Refused before anything is decoded or allocated.
  // Each side first: two 32-bit sides multiplied could overflow (found by fuzz_plain_image).
  if (const auto dims = header_dimensions(path);
      dims && (dims->first > kMaxPlainPixels || dims->second > kMaxPlainPixels ||
               dims->first * dims->second > kMaxPlainPixels))
    throw SlideError(SlideError::Kind::TooLarge,
                     too_large(" of " + std::to_string(dims->first) + " x " + std::to_string(dims->second) + " pixels:"));
  cv::Mat bgr;
  std::string why;
  const std::string said = with_stderr_captured([&] {
    try {
      bgr = cv::imread(name, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
      why = e.what();
    }
  });
  if (why.find("CV_IO_MAX_IMAGE_PIXELS") != std::string::npos)
    throw SlideError(SlideError::Kind::TooLarge, too_large(""));
  if (!why.empty()) throw SlideError(SlideError::Kind::Corrupt, "image cannot be decoded: " + one_line(why));
  if (bgr.empty())
    throw SlideError(SlideError::Kind::Corrupt,
                     "image cannot be decoded (" + (said.empty() ? std::string("truncated or damaged") : one_line(said)) + ")");
  // libjpeg fills a truncated image in with grey and only warns: that grey would be scored.
  std::string lower = said;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.find("premature end") != std::string::npos)
    throw SlideError(SlideError::Kind::Corrupt, "image is truncated (" + one_line(said) + ")");
  if (static_cast<std::int64_t>(bgr.cols) * bgr.rows > kMaxPlainPixels)
    throw SlideError(SlideError::Kind::TooLarge, too_large(""));
  // BGR to RGB in place (cv::cvtColor would copy the whole image first).
  for (int row = 0; row < bgr.rows; ++row) {
    auto* p = bgr.ptr<cv::Vec3b>(row);
    for (int col = 0; col < bgr.cols; ++col) std::swap(p[col][0], p[col][2]);
  }
  return std::make_unique<PlainImageSlide>(path, std::move(bgr));
}

}  // namespace ihc::tiling::detail

namespace ihc::tiling {

bool is_plain_image_file(const std::filesystem::path& path) {
  const auto m = detail::plain_image_magic(path);
  return m == detail::Magic::png || m == detail::Magic::jpeg || m == detail::Magic::bmp;
}

}  // namespace ihc::tiling
