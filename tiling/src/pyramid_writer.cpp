#include "ihc/tiling/pyramid_writer.hpp"
#include "ihc/tiling/tiff_open.hpp"

#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <opencv2/imgproc.hpp>

namespace ihc::tiling {
namespace fs = std::filesystem;

namespace {

// Classic TIFF offsets are 32-bit; switch to BigTIFF well before a file could reach 4 GiB
// (JPEG never grows 4:2:0 data past its raw size, so raw size is a safe bound).
bool needs_bigtiff(std::int64_t width, std::int64_t height) {
  const double raw = static_cast<double>(width) * static_cast<double>(height) * 3.0;
  return raw > 3.5e9;
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

[[noreturn]] void fail_io(const std::string& what, const TiffMessages& diag) {
  std::string message = what;
  if (!diag.errors.empty()) message += " (" + diag.last() + ")";
  else if (errno != 0) message += std::string(" (") + std::strerror(errno) + ")";
  throw SlideError(SlideError::Kind::Io, message);
}

std::string level_description(const PyramidOptions& o, std::int64_t w, std::int64_t h) {
  return o.description_prefix + " \r\n" + std::to_string(o.width) + "x" + std::to_string(o.height) +
         " -> " + std::to_string(w) + "x" + std::to_string(h) + " - |AppMag = " +
         format_number(o.app_mag) + "|MPP = " + format_number(o.mpp);
}

// Tags shared by every image directory of the file.
void set_image_tags(TIFF* tif, std::int64_t w, std::int64_t h, double mpp_level) {
  TIFFSetField(tif, TIFFTAG_SUBFILETYPE, 0);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(w));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(h));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
  TIFFSetField(tif, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
  // 10^4 µm per cm.
  if (mpp_level > 0) {
    TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    TIFFSetField(tif, TIFFTAG_XRESOLUTION, 1e4 / mpp_level);
    TIFFSetField(tif, TIFFTAG_YRESOLUTION, 1e4 / mpp_level);
  }
}

// JPEG codec settings: libtiff converts RGB input to YCbCr 4:2:0 itself; tiles are abbreviated
// streams whose quantisation and Huffman tables live once in the JPEGTables tag.
void set_jpeg_encoder(TIFF* tif, int quality) {
  TIFFSetField(tif, TIFFTAG_JPEGQUALITY, quality);
  TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
}

// Area average by 4 in both directions; partial blocks on the right and bottom edges average
// the pixels they have.
cv::Mat reduce4(const cv::Mat& src) {
  const int w = src.cols, h = src.rows;
  const int ow = (w + 3) / 4, oh = (h + 3) / 4;
  cv::Mat dst(oh, ow, CV_8UC3);
  std::vector<std::uint32_t> acc(static_cast<std::size_t>(ow) * 3);
  const int full = w / 4;
  for (int oy = 0; oy < oh; ++oy) {
    std::fill(acc.begin(), acc.end(), 0u);
    const int y0 = oy * 4, y1 = std::min(h, y0 + 4);
    for (int y = y0; y < y1; ++y) {
      const std::uint8_t* s = src.ptr<std::uint8_t>(y);
      std::uint32_t* a = acc.data();
      for (int ox = 0; ox < full; ++ox, s += 12, a += 3) {
        a[0] += static_cast<std::uint32_t>(s[0] + s[3] + s[6] + s[9]);
        a[1] += static_cast<std::uint32_t>(s[1] + s[4] + s[7] + s[10]);
        a[2] += static_cast<std::uint32_t>(s[2] + s[5] + s[8] + s[11]);
      }
      for (int x = full * 4; x < w; ++x, s += 3) {
        a[0] += s[0];
        a[1] += s[1];
        a[2] += s[2];
      }
    }
    std::uint8_t* d = dst.ptr<std::uint8_t>(oy);
    const auto rows = static_cast<std::uint32_t>(y1 - y0);
    for (int ox = 0; ox < ow; ++ox) {
      const auto cols = static_cast<std::uint32_t>(std::min(w, ox * 4 + 4) - ox * 4);
      const std::uint32_t n = rows * cols;
      for (int c = 0; c < 3; ++c)
        d[3 * ox + c] = static_cast<std::uint8_t>((acc[3 * static_cast<std::size_t>(ox) + c] + n / 2) / n);
    }
  }
  return dst;
}

}  // namespace

std::vector<Level> plan_pyramid(std::int64_t width, std::int64_t height, int max_lowest_side) {
  std::vector<Level> levels;
  if (width <= 0 || height <= 0) return levels;
  std::int64_t w = width, h = height;
  double ds = 1.0;
  levels.push_back({w, h, ds});
  while (std::max(w, h) > std::max(1, max_lowest_side)) {
    w = (w + 3) / 4;
    h = (h + 3) / 4;
    ds *= 4.0;
    levels.push_back({w, h, ds});
  }
  return levels;
}

namespace {
fs::path temporary_path(const fs::path& path, std::size_t level) {
  return fs::path(path.string() + ".level" + std::to_string(level) + ".tmp-" + std::to_string(::getpid()));
}
}  // namespace

std::vector<fs::path> PyramidWriter::temporary_paths(const fs::path& path, const PyramidOptions& options) {
  std::vector<fs::path> out;
  const auto levels = plan_pyramid(options.width, options.height, options.max_lowest_side);
  for (std::size_t k = 1; k < levels.size(); ++k) out.push_back(temporary_path(path, k));
  return out;
}

std::string aperio_description(const PyramidOptions& o) {
  const std::string w = std::to_string(o.width), h = std::to_string(o.height);
  const std::string t = std::to_string(o.tile);
  return o.description_prefix + " \r\n" + w + "x" + h + " [0,0 " + w + "x" + h + "] (" + t + "x" + t +
         ") JPEG/RGB Q=" + std::to_string(o.quality) + "|AppMag = " + format_number(o.app_mag) +
         "|MPP = " + format_number(o.mpp) + o.extra_properties;
}

struct PyramidWriter::Impl {
  struct LevelState {
    std::int64_t width = 0, height = 0;
    std::int64_t tiles_across = 0;
    cv::Mat band;               // tile rows x width, filled from the top
    int filled = 0;             // rows in `band`
    std::int64_t rows_done = 0; // rows of this level already encoded
    TIFF* tif = nullptr;        // level 0: the output; others: their temporary file
    fs::path tmp;
    TiffMessages diag;
  };

  fs::path path;
  PyramidOptions opt;
  std::vector<Level> levels;
  std::vector<LevelState> states;
  std::vector<std::uint8_t> tile_buf;
  cv::Mat lowest;               // the whole smallest level (for the thumbnail)
  std::int64_t next_band = 0;
  bool finished = false;

  ~Impl() { abandon(); }

  void abandon() {
    for (auto& s : states) {
      if (s.tif) {
        TIFFClose(s.tif);
        s.tif = nullptr;
      }
      if (!s.tmp.empty()) {
        std::error_code ec;
        fs::remove(s.tmp, ec);
      }
    }
  }

  void open() {
    if (opt.width <= 0 || opt.height <= 0)
      throw SlideError(SlideError::Kind::TooLarge, "image size must be positive");
    if (opt.width > (std::int64_t{1} << 31) - 1 || opt.height > (std::int64_t{1} << 31) - 1)
      throw SlideError(SlideError::Kind::TooLarge, "image dimensions exceed 2^31 - 1 pixels");
    if (opt.tile < 16 || opt.tile > 4096 || opt.tile % 16 != 0)
      throw SlideError(SlideError::Kind::TooLarge, "tile size must be a multiple of 16 in 16..4096");
    if (opt.quality < 1 || opt.quality > 100)
      throw SlideError(SlideError::Kind::TooLarge, "JPEG quality must be 1..100");
    levels = plan_pyramid(opt.width, opt.height, opt.max_lowest_side);
    states.resize(levels.size());
    tile_buf.resize(static_cast<std::size_t>(opt.tile) * static_cast<std::size_t>(opt.tile) * 3);
    for (std::size_t k = 0; k < levels.size(); ++k) {
      LevelState& s = states[k];
      s.width = levels[k].width;
      s.height = levels[k].height;
      s.tiles_across = (s.width + opt.tile - 1) / opt.tile;
      if (k > 0) s.band = cv::Mat(opt.tile, static_cast<int>(s.width), CV_8UC3);
      fs::path target = path;
      if (k > 0) {
        s.tmp = temporary_path(path, k);
        target = s.tmp;
      }
      errno = 0;
      s.tif = open_tiff_quietly(target, needs_bigtiff(s.width, s.height) ? "w8" : "w", s.diag);
      if (!s.tif) fail_io("cannot create " + target.string(), s.diag);
      set_image_tags(s.tif, s.width, s.height, opt.mpp * levels[k].downsample);
      TIFFSetField(s.tif, TIFFTAG_TILEWIDTH, static_cast<std::uint32_t>(opt.tile));
      TIFFSetField(s.tif, TIFFTAG_TILELENGTH, static_cast<std::uint32_t>(opt.tile));
      const std::string desc = k == 0 ? aperio_description(opt) : level_description(opt, s.width, s.height);
      TIFFSetField(s.tif, TIFFTAG_IMAGEDESCRIPTION, desc.c_str());
      set_jpeg_encoder(s.tif, opt.quality);
    }
  }

  int band_height(std::int64_t band) const {
    const std::int64_t y = band * opt.tile;
    return static_cast<int>(std::min<std::int64_t>(opt.tile, opt.height - y));
  }

  // Encodes rows [0, rows) of `img` as the next row of tiles of level k.
  void encode_tile_row(std::size_t k, const cv::Mat& img, int rows) {
    LevelState& s = states[k];
    const int T = opt.tile;
    const auto tile_row = static_cast<std::uint32_t>(s.rows_done / T);
    for (std::int64_t c = 0; c < s.tiles_across; ++c) {
      const int x0 = static_cast<int>(c * T);
      const int cols = std::min(T, img.cols - x0);
      for (int y = 0; y < T; ++y) {
        const std::uint8_t* src = img.ptr<std::uint8_t>(std::min(y, rows - 1)) + 3 * x0;
        std::uint8_t* dst = tile_buf.data() + static_cast<std::size_t>(y) * T * 3;
        std::memcpy(dst, src, static_cast<std::size_t>(cols) * 3);
        // Pad by repeating the edge pixel: no hard edge for the JPEG to ring on.
        for (int x = cols; x < T; ++x) std::memcpy(dst + 3 * x, dst + 3 * (cols - 1), 3);
      }
      const std::uint32_t index =
          tile_row * static_cast<std::uint32_t>(s.tiles_across) + static_cast<std::uint32_t>(c);
      errno = 0;
      if (TIFFWriteEncodedTile(s.tif, index, tile_buf.data(), static_cast<tmsize_t>(tile_buf.size())) < 0)
        fail_io("cannot write level " + std::to_string(k) + " tile " + std::to_string(index), s.diag);
    }
    s.rows_done += rows;
  }

  // Level k received a complete band (rows rows of tiles, or the last partial one).
  void band_complete(std::size_t k, const cv::Mat& img, int rows) {
    encode_tile_row(k, img, rows);
    if (k + 1 == levels.size()) {
      cv::Mat part = img.rowRange(0, rows);
      if (lowest.empty()) lowest = part.clone();
      else cv::vconcat(lowest, part, lowest);
    }
    if (k + 1 < levels.size()) push_rows(k + 1, reduce4(img.rowRange(0, rows)));
  }

  void push_rows(std::size_t k, const cv::Mat& rows) {
    LevelState& s = states[k];
    int offset = 0;
    while (offset < rows.rows) {
      const int n = std::min(rows.rows - offset, opt.tile - s.filled);
      rows.rowRange(offset, offset + n).copyTo(s.band.rowRange(s.filled, s.filled + n));
      s.filled += n;
      offset += n;
      if (s.filled == opt.tile || s.rows_done + s.filled == s.height) {
        const int filled = s.filled;
        s.filled = 0;
        band_complete(k, s.band, filled);
      }
    }
  }

  void write_band(const cv::Mat& rgb) {
    if (finished) throw SlideError(SlideError::Kind::Io, "write after finish");
    if (next_band * opt.tile >= opt.height) throw SlideError(SlideError::Kind::Io, "more bands than the image has");
    if (rgb.type() != CV_8UC3 || rgb.cols != opt.width || rgb.rows != band_height(next_band))
      throw SlideError(SlideError::Kind::Io, "band has the wrong size or type");
    band_complete(0, rgb, rgb.rows);
    ++next_band;
  }

  void write_thumbnail(TIFF* out, TiffMessages& diag) {
    constexpr int kMaxSide = 768;
    cv::Mat thumb = lowest;
    const int side = std::max(lowest.cols, lowest.rows);
    if (side > kMaxSide) {
      const double f = static_cast<double>(kMaxSide) / side;
      const int tw = std::max(1, static_cast<int>(lowest.cols * f + 0.5));
      const int th = std::max(1, static_cast<int>(lowest.rows * f + 0.5));
      cv::resize(lowest, thumb, cv::Size(tw, th), 0, 0, cv::INTER_AREA);
    }
    set_image_tags(out, thumb.cols, thumb.rows, 0);
    constexpr int kRowsPerStrip = 16;
    TIFFSetField(out, TIFFTAG_ROWSPERSTRIP, kRowsPerStrip);
    const std::string desc = level_description(opt, thumb.cols, thumb.rows);
    TIFFSetField(out, TIFFTAG_IMAGEDESCRIPTION, desc.c_str());
    set_jpeg_encoder(out, opt.quality);
    std::vector<std::uint8_t> strip(static_cast<std::size_t>(thumb.cols) * 3 * kRowsPerStrip);
    for (int y0 = 0, index = 0; y0 < thumb.rows; y0 += kRowsPerStrip, ++index) {
      const int rows = std::min(kRowsPerStrip, thumb.rows - y0);
      for (int y = 0; y < rows; ++y)
        std::memcpy(strip.data() + static_cast<std::size_t>(y) * thumb.cols * 3, thumb.ptr(y0 + y),
                    static_cast<std::size_t>(thumb.cols) * 3);
      errno = 0;
      if (TIFFWriteEncodedStrip(out, static_cast<std::uint32_t>(index), strip.data(),
                                static_cast<tmsize_t>(rows) * thumb.cols * 3) < 0)
        fail_io("cannot write the thumbnail", diag);
    }
    if (!TIFFWriteDirectory(out)) fail_io("cannot write the thumbnail directory", diag);
  }

  // Appends level k's tiles, as stored in its temporary file, as the next directory of `out`.
  void copy_level(std::size_t k, TIFF* out, TiffMessages& out_diag) {
    LevelState& s = states[k];
    errno = 0;
    const bool flushed = TIFFFlush(s.tif) != 0;
    TIFFClose(s.tif);
    s.tif = nullptr;
    if (!flushed) fail_io("cannot finish " + s.tmp.string(), s.diag);
    TiffMessages in_diag;
    TIFF* in = open_tiff_quietly(s.tmp, "r", in_diag);
    if (!in) fail_io("cannot reopen " + s.tmp.string(), in_diag);
    struct Closer {
      TIFF* t;
      ~Closer() { TIFFClose(t); }
    } closer{in};
    set_image_tags(out, s.width, s.height, opt.mpp * levels[k].downsample);
    TIFFSetField(out, TIFFTAG_TILEWIDTH, static_cast<std::uint32_t>(opt.tile));
    TIFFSetField(out, TIFFTAG_TILELENGTH, static_cast<std::uint32_t>(opt.tile));
    const std::string desc = level_description(opt, s.width, s.height);
    TIFFSetField(out, TIFFTAG_IMAGEDESCRIPTION, desc.c_str());
    std::uint32_t table_len = 0;
    void* tables = nullptr;
    if (TIFFGetField(in, TIFFTAG_JPEGTABLES, &table_len, &tables) && table_len > 0)
      TIFFSetField(out, TIFFTAG_JPEGTABLES, table_len, tables);
    float* refbw = nullptr;
    if (TIFFGetField(in, TIFFTAG_REFERENCEBLACKWHITE, &refbw) && refbw)
      TIFFSetField(out, TIFFTAG_REFERENCEBLACKWHITE, refbw);
    const std::uint32_t count = TIFFNumberOfTiles(in);
    toff_t* sizes = nullptr;
    if (!TIFFGetField(in, TIFFTAG_TILEBYTECOUNTS, &sizes) || !sizes)
      fail_io("cannot read tile sizes of " + s.tmp.string(), in_diag);
    std::vector<std::uint8_t> raw;
    for (std::uint32_t t = 0; t < count; ++t) {
      raw.resize(static_cast<std::size_t>(sizes[t]));
      const tmsize_t got = TIFFReadRawTile(in, t, raw.data(), static_cast<tmsize_t>(raw.size()));
      if (got < 0) fail_io("cannot read tile " + std::to_string(t) + " of " + s.tmp.string(), in_diag);
      errno = 0;
      if (TIFFWriteRawTile(out, t, raw.data(), got) < 0)
        fail_io("cannot write level " + std::to_string(k) + " tile " + std::to_string(t), out_diag);
    }
    if (!TIFFWriteDirectory(out)) fail_io("cannot write level " + std::to_string(k) + " directory", out_diag);
  }

  void finish() {
    if (finished) return;
    if (next_band * opt.tile < opt.height)
      throw SlideError(SlideError::Kind::Io, "finish before the last band (" + std::to_string(next_band) +
                                                 " of " + std::to_string((opt.height + opt.tile - 1) / opt.tile) +
                                                 " bands written)");
    LevelState& s0 = states[0];
    TIFF* out = s0.tif;
    errno = 0;
    if (!TIFFWriteDirectory(out)) fail_io("cannot write the level 0 directory", s0.diag);
    if (opt.thumbnail) write_thumbnail(out, s0.diag);
    for (std::size_t k = 1; k < states.size(); ++k) {
      copy_level(k, out, s0.diag);
      std::error_code ec;
      fs::remove(states[k].tmp, ec);
      states[k].tmp.clear();
    }
    errno = 0;
    const bool flushed = TIFFFlush(out) != 0;
    s0.tif = nullptr;
    TIFFClose(out);
    if (!flushed) fail_io("cannot finish " + path.string(), s0.diag);
    finished = true;
  }
};

PyramidWriter::PyramidWriter(const fs::path& path, const PyramidOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->opt = options;
  impl_->open();
}

PyramidWriter::~PyramidWriter() = default;

const std::vector<Level>& PyramidWriter::levels() const { return impl_->levels; }
const PyramidOptions& PyramidWriter::options() const { return impl_->opt; }
std::int64_t PyramidWriter::tiles_across() const { return impl_->states[0].tiles_across; }
std::int64_t PyramidWriter::band_count() const {
  return (impl_->opt.height + impl_->opt.tile - 1) / impl_->opt.tile;
}
int PyramidWriter::band_height(std::int64_t band) const { return impl_->band_height(band); }
std::int64_t PyramidWriter::next_band() const { return impl_->next_band; }
void PyramidWriter::write_band(const cv::Mat& rgb) { impl_->write_band(rgb); }
void PyramidWriter::finish() { impl_->finish(); }

}  // namespace ihc::tiling
