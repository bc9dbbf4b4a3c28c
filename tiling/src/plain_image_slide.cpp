// Plain images (PNG, JPEG, stripped TIFF): one level held in memory, and no physical resolution,
// so the caller must supply --mpp. Each format goes to its own library (libpng, libjpeg-turbo,
// libtiff), chosen by the file's first bytes. Not through OpenCV's imgcodecs: it sniffs content and
// passes anything else to a decoder of its own choosing (a damaged DICOM file reached GDCM, which
// aborts the process; found by fuzz_plain_image), and loading it with its ~100 libraries (GDAL,
// GDCM, codecs) cost 0.14 s at every start of the program.
#include <png.h>
#include <tiffio.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  PlainImageSlide(const std::filesystem::path& path, cv::Mat rgb, ChromaBlock chroma) : rgb_(std::move(rgb)) {
    path_ = path;
    vendor_ = "image";
    levels_.push_back({rgb_.cols, rgb_.rows, 1.0, chroma.x, chroma.y});
  }
  std::string reader() const override { return "plain-image"; }

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


enum class Magic { none, png, jpeg, tiff };

// The format the first bytes announce: PNG, JPEG or TIFF (classic or BigTIFF).
Magic plain_image_magic(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[4] = {};
  if (!f.read(reinterpret_cast<char*>(h), 4)) return Magic::none;
  if (h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G') return Magic::png;
  if (h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return Magic::jpeg;
  if ((h[0] == 'I' && h[1] == 'I' && (h[2] == 42 || h[2] == 43) && h[3] == 0) ||
      (h[0] == 'M' && h[1] == 'M' && h[2] == 0 && (h[3] == 42 || h[3] == 43)))
    return Magic::tiff;
  return Magic::none;
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

// Refuses sides whose image would exceed the cap, before anything is allocated. Each side
// first: two 32-bit sides multiplied could overflow (found by fuzz_plain_image).
void check_size(std::int64_t w, std::int64_t h) {
  if (w > kMaxPlainPixels || h > kMaxPlainPixels || w * h > kMaxPlainPixels)
    throw SlideError(SlideError::Kind::TooLarge,
                     too_large(" of " + std::to_string(w) + " x " + std::to_string(h) + " pixels:"));
}

// Width and height from a PNG's or JPEG's header, read before the decoder is asked (libpng refuses
// sides above its own limit with a message of its own); nothing for unreadable headers.
std::optional<std::pair<std::int64_t, std::int64_t>> header_dimensions(const std::filesystem::path& path,
                                                                       Magic magic) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[24] = {};
  if (!f.read(reinterpret_cast<char*>(h), 4)) return std::nullopt;
  const auto be32 = [](const unsigned char* p) {
    return (std::int64_t{p[0]} << 24) | (std::int64_t{p[1]} << 16) | (std::int64_t{p[2]} << 8) | p[3];
  };
  if (magic == Magic::png) {
    if (!f.read(reinterpret_cast<char*>(h + 4), 20)) return std::nullopt;
    return std::pair{be32(h + 16), be32(h + 20)};
  }
  if (magic == Magic::jpeg) {
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
  }
  return std::nullopt;
}

std::vector<unsigned char> file_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw SlideError(SlideError::Kind::Io, "image cannot be read");
  return bytes;
}

// PNG of any bit depth, palette or grey, as 8-bit RGB; an 8-bit alpha channel is laid over white
// (glass).
cv::Mat decode_png(const std::filesystem::path& path) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  const auto fail = [&](const std::string& said) {
    png_image_free(&png);
    return SlideError(SlideError::Kind::Corrupt, "image cannot be decoded (libpng: " + said + ")");
  };
  if (!png_image_begin_read_from_file(&png, path.c_str())) throw fail(png.message);
  try {
    check_size(png.width, png.height);
  } catch (const SlideError&) {
    png_image_free(&png);
    throw;
  }
  const int rows = static_cast<int>(png.height), cols = static_cast<int>(png.width);
  if (png.format & PNG_FORMAT_FLAG_LINEAR) {
    // 16 bits a channel: libpng would take them as linear light and gamma-encode them; they are
    // kept as stored and scaled to 8 bits (value / 257), as OpenCV and image viewers do.
    png.format = PNG_FORMAT_LINEAR_RGB;
    cv::Mat wide(rows, cols, CV_16UC3);
    if (!png_image_finish_read(&png, nullptr, wide.data, static_cast<png_int_32>(wide.step[0] / 2), nullptr))
      throw fail(png.message);
    cv::Mat rgb;
    wide.convertTo(rgb, CV_8U, 1.0 / 257.0);
    return rgb;
  }
  png.format = PNG_FORMAT_RGB;
  cv::Mat rgb(rows, cols, CV_8UC3);
  const png_color white{255, 255, 255};
  if (!png_image_finish_read(&png, &white, rgb.data, static_cast<png_int_32>(rgb.step[0]), nullptr))
    throw fail(png.message);
  return rgb;
}

// Baseline or progressive JPEG as RGB. A warning (data cut short, which libjpeg would fill with
// grey that would then be scored) is an error; at most 500 progressive scans. `chroma`: how the
// colour was stored (YCbCr subsampling; 1 x 1 for RGB and greyscale JPEGs).
cv::Mat decode_jpeg(const std::filesystem::path& path, ChromaBlock& chroma) {
  const std::vector<unsigned char> bytes = file_bytes(path);
  tjhandle tj = tjInitDecompress();
  if (!tj) throw SlideError(SlideError::Kind::Io, "JPEG decoder cannot start");
  const std::unique_ptr<void, int (*)(tjhandle)> owner(tj, tjDestroy);
  const auto said = [&] { return one_line(tjGetErrorStr2(tj)); };
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes.data(), bytes.size(), &w, &h, &subsamp, &colorspace) != 0)
    throw SlideError(SlideError::Kind::Corrupt, "image cannot be decoded (" + said() + ")");
  check_size(w, h);
  if (colorspace == TJCS_YCbCr && subsamp >= 0 && subsamp < TJ_NUMSAMP)
    chroma = {tjMCUWidth[subsamp] / 8, tjMCUHeight[subsamp] / 8};
  cv::Mat rgb(h, w, CV_8UC3);
  if (tjDecompress2(tj, bytes.data(), bytes.size(), rgb.data, w, static_cast<int>(rgb.step[0]), h, TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    std::string lower = said();
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("premature end") != std::string::npos)
      throw SlideError(SlideError::Kind::Corrupt, "image is truncated (" + said() + ")");
    throw SlideError(SlideError::Kind::Corrupt, "image cannot be decoded (" + said() + ")");
  }
  return rgb;
}

// A TIFF no slide reader took (stripped, or in a layout they refuse): libtiff's RGBA interface,
// which reads every photometric and bit depth it knows; alpha is dropped.
cv::Mat decode_tiff(const std::filesystem::path& path) {
  TiffMessages messages;
  TIFF* t = open_tiff_quietly(path, "rm", messages);
  const auto fail = [&](const char* what) {
    const std::string said = messages.joined();
    return SlideError(SlideError::Kind::Corrupt,
                      std::string(what) + " (" + (said.empty() ? std::string("truncated or damaged") : "libtiff: " + said) + ")");
  };
  if (!t) throw fail("TIFF file whose structure cannot be read");
  const std::unique_ptr<TIFF, void (*)(TIFF*)> owner(t, TIFFClose);
  std::uint32_t w = 0, h = 0;
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h) || w == 0 || h == 0)
    throw fail("image cannot be decoded");
  check_size(w, h);
  std::vector<std::uint32_t> abgr(std::size_t{w} * h);
  if (!TIFFReadRGBAImageOriented(t, w, h, abgr.data(), ORIENTATION_TOPLEFT, 1)) throw fail("image cannot be decoded");
  cv::Mat rgb(static_cast<int>(h), static_cast<int>(w), CV_8UC3);
  for (int y = 0; y < rgb.rows; ++y) {
    const std::uint32_t* src = abgr.data() + std::size_t{w} * static_cast<std::size_t>(y);
    auto* dst = rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < rgb.cols; ++x)
      dst[x] = cv::Vec3b(static_cast<std::uint8_t>(TIFFGetR(src[x])), static_cast<std::uint8_t>(TIFFGetG(src[x])),
                         static_cast<std::uint8_t>(TIFFGetB(src[x])));
  }
  return rgb;
}

}  // namespace

std::unique_ptr<Slide> open_plain_image(const std::filesystem::path& path) {
  const Magic magic = plain_image_magic(path);
  if (magic == Magic::none) return nullptr;
  // PNG and JPEG sides from the header first, so the decoder never sees absurd ones.
  if (const auto dims = header_dimensions(path, magic)) check_size(dims->first, dims->second);
  ChromaBlock chroma;
  cv::Mat rgb = magic == Magic::png ? decode_png(path) : magic == Magic::jpeg ? decode_jpeg(path, chroma) : decode_tiff(path);
  return std::make_unique<PlainImageSlide>(path, std::move(rgb), chroma);
}

}  // namespace ihc::tiling::detail

namespace ihc::tiling {

bool is_plain_image_file(const std::filesystem::path& path) {
  const auto m = detail::plain_image_magic(path);
  return m == detail::Magic::png || m == detail::Magic::jpeg;
}

}  // namespace ihc::tiling
