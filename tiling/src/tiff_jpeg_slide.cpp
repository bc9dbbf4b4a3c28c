// Direct reader for tiled TIFFs whose tiles are baseline JPEG (Aperio SVS, generic tiled TIFF):
// libtiff reads the directory structure once at open and is closed again; tiles are then read
// with pread() on one shared descriptor and decoded by TurboJPEG, one decoder per thread, straight
// into the destination where a tile lies wholly inside the requested region; a tile the
// neighbouring region needs too (in the band set_request_overlap names, or needed only in part)
// is kept (tile_cache.hpp) for it. JPEG DCT scaling
// serves read_region_scaled() at 1/2, 1/4 and 1/8 for the price of a fraction of the IDCT work.
//
// Anything this reader is not sure to decode exactly as OpenSlide would (JPEG 2000, deflate,
// stripped, NDPI and other vendor TIFFs, odd sample layouts) is left to OpenSlide (nullptr).
//
// Colour: OpenSlide takes the JPEG colour space from the TIFF's Photometric tag, not from the
// JPEG: Photometric=RGB means the components are R, G, B with no YCbCr transform (Aperio
// "JPEG/RGB" tiles; their component ids 0,1,2 and absent JFIF/Adobe markers would make libjpeg
// guess YCbCr), Photometric=YCbCr means YCbCr. TurboJPEG 2.x cannot be told the colour space, so
// each tile stream gets an Adobe APP14 marker right after SOI whose transform flag (0 = RGB,
// 1 = YCbCr) states the TIFF's answer; libjpeg honours it. Result: pixel-identical to OpenSlide
// 3.4.1 on cmu-1-small-region.svs (RGB) and on libtiff-written YCbCr 4:2:0 pyramids.
#include <fcntl.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <openslide.h>

#include "ihc/tiling/tiff_open.hpp"
#include "readers.hpp"
#include "tile_cache.hpp"

namespace ihc::tiling::detail {
namespace {

using Kind = SlideError::Kind;

constexpr std::int64_t kMaxSide = std::int64_t{1} << 31;       // per image side
constexpr std::uint32_t kMaxTileSide = 4096;                   // per tile side
constexpr std::int64_t kMaxTilesPerLevel = std::int64_t{1} << 24;  // 16 M tiles: 256 MiB of offsets + counts
constexpr int kMaxDirectories = 4096;
// Warnings stop decoding (see decode_tile); at most 500 scans (a progressive-JPEG denial of service).
constexpr int kTjFlags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
constexpr tmsize_t kLibtiffMaxAlloc = tmsize_t{1} << 28;       // libtiff's largest single allocation
// Decoded tiles kept for the neighbouring request's halo (tile_cache.hpp, set_request_overlap). On
// the 42-core TMA slide as a 40x SVS (benchmarks/make-tma.sh; level 0 decoded at 1/2, 2 threads,
// scoring's banded order) this took the JPEG decodes from 27,700 to 18,791 for 17,534 distinct
// tiles; measurements in the commit message.
constexpr std::size_t kSharedTileCacheBytes = std::size_t{32} << 20;

// Adobe APP14 marker: "Adobe", version 100, flags0 0, flags1 0, transform (patched).
constexpr unsigned char kAdobeApp14[] = {0xFF, 0xEE, 0x00, 0x0E, 'A', 'd', 'o', 'b', 'e', 0x00,
                                         0x64, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr std::size_t kAdobeTransformAt = sizeof(kAdobeApp14) - 1;

std::string format_double(double v) {
  // As OpenSlide (g_ascii_dtostr): the shortest of %.15g / %.17g that reads back exactly.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string trim(std::string_view s) {
  const auto not_space = [](char c) { return !(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'); };
  auto b = std::find_if(s.begin(), s.end(), not_space);
  auto e = std::find_if(s.rbegin(), s.rend(), not_space).base();
  return b < e ? std::string(b, e) : std::string();
}

double parse_positive(const std::string& text) {
  if (text.empty()) return 0.0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return (end != text.c_str() && std::isfinite(v) && v > 0) ? v : 0.0;
}

// ---------------------------------------------------------------------------------------------
// libtiff, opened once for the structure, with its messages captured instead of printed.


struct TiffCloser {
  void operator()(TIFF* t) const {
    if (t) TIFFClose(t);
  }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// ---------------------------------------------------------------------------------------------

struct TiffLevel {
  std::int64_t width = 0, height = 0;
  std::int64_t tile_w = 0, tile_h = 0;
  std::int64_t tiles_across = 0, tiles_down = 0;
  std::vector<std::uint64_t> offsets, bytecounts;
  // SOI, the Adobe colour-space marker, then the JPEGTables body (no SOI, no EOI); a tile's
  // stream without its own SOI follows.
  std::vector<unsigned char> prefix;
  bool rgb_photometric = false;
  ChromaBlock chroma;  // the colour's subsampling (Level::chroma_x, chroma_y)
  int directory = 0;  // in the TIFF, for messages and debugging
};

// One TurboJPEG decompressor and its buffers per thread: no locking on the read path.
struct TjDecoder {
  tjhandle handle = nullptr;
  std::vector<unsigned char> stream;  // grows, never shrinks (no zeroing per tile)
  std::vector<unsigned char> pixels;  // scratch for DCT-scaled tiles clipped by the region
  TjDecoder() : handle(tjInitDecompress()) {}
  ~TjDecoder() {
    if (handle) tjDestroy(handle);
  }
  TjDecoder(const TjDecoder&) = delete;
  TjDecoder& operator=(const TjDecoder&) = delete;
  // After a fatal error TurboJPEG 2.1 can leave the libjpeg object mid-header (the next header
  // read then fails with the old message), so a failed decompressor is replaced. Returns the
  // error text of the failure.
  std::string reset_after_error() {
    std::string message = handle ? tjGetErrorStr2(handle) : "no decompressor";
    if (handle) tjDestroy(handle);
    handle = tjInitDecompress();
    return message;
  }
};

TjDecoder& thread_decoder() {
  thread_local TjDecoder decoder;
  if (!decoder.handle) throw SlideError(Kind::Io, "TurboJPEG decompressor could not be created");
  return decoder;
}

class TiffJpegSlide final : public Slide {
 public:
  TiffJpegSlide(const std::filesystem::path& path, int fd, std::string vendor,
                std::vector<TiffLevel> tiff_levels, std::map<std::string, std::string> properties,
                std::optional<double> mpp, std::optional<double> objective)
      : fd_(fd), tl_(std::move(tiff_levels)) {
    path_ = path;
    vendor_ = std::move(vendor);
    properties_ = std::move(properties);
    mpp_ = mpp;
    objective_ = objective;
    const double w0 = static_cast<double>(tl_.front().width), h0 = static_cast<double>(tl_.front().height);
    std::vector<Level> all;
    for (const TiffLevel& l : tl_) {
      const double ds = (w0 / static_cast<double>(l.width) + h0 / static_cast<double>(l.height)) / 2.0;
      all.push_back({l.width, l.height, ds, l.chroma.x, l.chroma.y});
    }
    std::vector<TiffLevel> kept;
    for (std::size_t i : consistent_levels(all, warnings_)) {
      kept.push_back(std::move(tl_[i]));
      levels_.push_back(all[i]);
    }
    tl_ = std::move(kept);
  }
  ~TiffJpegSlide() override {
    if (fd_ >= 0) ::close(fd_);
  }
  TiffJpegSlide(const TiffJpegSlide&) = delete;
  TiffJpegSlide& operator=(const TiffJpegSlide&) = delete;

  std::string reader() const override { return "tiff-jpeg"; }

  void set_tissue_hint(const cv::Mat& tissue, double mask_downsample, cv::Vec3b glass) const override {
    tissue_.clear();
    skipped_ = 0;
    glass_ = glass;
    if (tissue.empty() || !(mask_downsample > 0)) return;
    CV_Assert(tissue.type() == CV_8UC1);
    for (std::size_t l = 0; l < tl_.size(); ++l) {
      const TiffLevel& L = tl_[l];
      const double ds = levels_[l].downsample;
      std::vector<std::uint8_t> has(static_cast<std::size_t>(L.tiles_across * L.tiles_down), 0);
      for (std::int64_t row = 0; row < L.tiles_down; ++row)
        for (std::int64_t col = 0; col < L.tiles_across; ++col) {
          // The tile in mask pixels, one mask pixel wider on every side (the mask is coarse).
          const auto to_mask = [&](std::int64_t level_px) { return static_cast<double>(level_px) * ds / mask_downsample; };
          const int x0 = std::clamp(static_cast<int>(std::floor(to_mask(col * L.tile_w))) - 1, 0, tissue.cols);
          const int y0 = std::clamp(static_cast<int>(std::floor(to_mask(row * L.tile_h))) - 1, 0, tissue.rows);
          const int x1 = std::clamp(static_cast<int>(std::ceil(to_mask((col + 1) * L.tile_w))) + 1, 0, tissue.cols);
          const int y1 = std::clamp(static_cast<int>(std::ceil(to_mask((row + 1) * L.tile_h))) + 1, 0, tissue.rows);
          if (x1 > x0 && y1 > y0 && cv::countNonZero(tissue(cv::Rect(x0, y0, x1 - x0, y1 - y0))) > 0)
            has[static_cast<std::size_t>(row * L.tiles_across + col)] = 1;
        }
      tissue_.push_back(std::move(has));
    }
  }
  std::int64_t tile_reads_skipped() const override { return skipped_.load(); }
  // A new plan of requests (or its end): the tiles kept for the last one are let go.
  void set_request_overlap(std::int64_t level0_px) const override {
    overlap_l0_ = std::max<std::int64_t>(level0_px, 0);
    cache_.clear();
  }

  cv::Mat read_region(int level, std::int64_t x, std::int64_t y, int w, int h) const override {
    check_request(level, w, h);
    const auto [lx, ly] = level_origin(level, x, y);
    return read_scaled_aligned(level, lx, ly, w, h, 1);
  }

  cv::Mat read_region_scaled(int level, std::int64_t x, std::int64_t y, int w, int h,
                             int scale) const override {
    if (scale <= 1) return read_region(level, x, y, w, h);
    check_request(level, w, h);
    const auto [lx, ly] = level_origin(level, x, y);
    const bool dct_scalable = (scale == 2 || scale == 4 || scale == 8);
    const auto aligned = [scale](std::int64_t v) { return ((v % scale) + scale) % scale == 0; };
    // DCT scaling maps each output pixel to a scale x scale block of the tile grid; an origin
    // off that grid (or a region smaller than one block) takes the general path.
    if (!dct_scalable || !aligned(lx) || !aligned(ly) || w < scale || h < scale)
      return Slide::read_region_scaled(level, x, y, w, h, scale);
    return read_scaled_aligned(level, lx, ly, w, h, scale);
  }

 private:
  void check_request(int level, int w, int h) const {
    if (level < 0 || level >= static_cast<int>(tl_.size()) || w <= 0 || h <= 0)
      throw SlideError(Kind::Corrupt, "region request outside the slide's levels");
  }

  // Level-0 coordinates to the level's pixel grid. OpenSlide divides by the downsample and paints
  // the level with the fractional remainder as a sub-pixel (interpolated) shift; this reader takes
  // the nearest pixel, which is what that shift mostly shows (x = level_x * downsample computed
  // by a caller may land a hair below the intended pixel: flooring would drop a whole pixel).
  std::pair<std::int64_t, std::int64_t> level_origin(int level, std::int64_t x, std::int64_t y) const {
    constexpr std::int64_t kClamp = std::int64_t{1} << 52;
    x = std::clamp(x, -kClamp, kClamp);
    y = std::clamp(y, -kClamp, kClamp);
    if (level == 0) return {x, y};
    const double ds = levels_[static_cast<std::size_t>(level)].downsample;
    return {static_cast<std::int64_t>(std::llround(static_cast<double>(x) / ds)),
            static_cast<std::int64_t>(std::llround(static_cast<double>(y) / ds))};
  }

  // Region at (lx, ly) in level pixels, w x h level pixels, decoded at 1/scale; lx and ly are
  // multiples of scale. Everything below works on the scaled grid.
  cv::Mat read_scaled_aligned(int level, std::int64_t lx, std::int64_t ly, int w, int h, int scale) const {
    const TiffLevel& L = tl_[static_cast<std::size_t>(level)];
    const std::int64_t s = scale;
    const std::int64_t ox = lx / s, oy = ly / s;             // exact: aligned
    const std::int64_t ow = w / s, oh = h / s;
    const std::int64_t stw = L.tile_w / s, sth = L.tile_h / s;  // exact: tiles are multiples of 16
    const std::int64_t sw = (L.width + s - 1) / s, sh = (L.height + s - 1) / s;  // valid pixels

    cv::Mat out(static_cast<int>(oh), static_cast<int>(ow), CV_8UC3);
    if (ox < 0 || oy < 0 || ox + ow > sw || oy + oh > sh) out.setTo(cv::Scalar(255, 255, 255));

    // The band shared with neighbouring requests, in scaled pixels (0: no overlap hint).
    const double level_ds = levels_[static_cast<std::size_t>(level)].downsample;
    const auto margin = static_cast<std::int64_t>(std::ceil(static_cast<double>(overlap_l0_) / (level_ds * static_cast<double>(s))));
    const std::int64_t x0 = std::max<std::int64_t>(ox, 0), x1 = std::min(ox + ow, sw);
    const std::int64_t y0 = std::max<std::int64_t>(oy, 0), y1 = std::min(oy + oh, sh);
    if (x0 >= x1 || y0 >= y1) return out;

    for (std::int64_t row = y0 / sth; row <= (y1 - 1) / sth; ++row) {
      for (std::int64_t col = x0 / stw; col <= (x1 - 1) / stw; ++col) {
        const std::int64_t tx = col * stw, ty = row * sth;
        // Part of this tile that is both inside the image and inside the region.
        const std::int64_t cx0 = std::max(tx, x0), cx1 = std::min(tx + stw, x1);
        const std::int64_t cy0 = std::max(ty, y0), cy1 = std::min(ty + sth, y1);
        const std::size_t index = static_cast<std::size_t>(row * L.tiles_across + col);
        if (L.bytecounts[index] == 0) {  // sparse tile: nothing stored, white
          out(cv::Rect(static_cast<int>(cx0 - ox), static_cast<int>(cy0 - oy), static_cast<int>(cx1 - cx0),
                       static_cast<int>(cy1 - cy0)))
              .setTo(cv::Scalar(255, 255, 255));
          continue;
        }
        if (!tissue_.empty() && !tissue_[static_cast<std::size_t>(level)][index]) {  // glass (set_tissue_hint)
          out(cv::Rect(static_cast<int>(cx0 - ox), static_cast<int>(cy0 - oy), static_cast<int>(cx1 - cx0),
                       static_cast<int>(cy1 - cy0)))
              .setTo(cv::Scalar(glass_[0], glass_[1], glass_[2]));
          skipped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        const bool whole = cx0 == tx && cy0 == ty && cx1 == tx + stw && cy1 == ty + sth;
        // Kept for the neighbouring request (cache_): with set_request_overlap, the tiles in the
        // band the neighbours also read; without it, full-size decodes of tiles needed in part.
        const bool keep = margin > 0 ? (cx0 < ox + margin || cx1 > ox + ow - margin || cy0 < oy + margin ||
                                        cy1 > oy + oh - margin)
                                     : !whole && scale == 1;
        if (whole && !keep) {
          decode_tile(L, level, col, row, scale, out.ptr<unsigned char>(static_cast<int>(ty - oy)) + 3 * (tx - ox),
                      out.step[0]);
          continue;
        }
        const std::size_t pitch = static_cast<std::size_t>(stw) * 3;
        const std::size_t need = pitch * static_cast<std::size_t>(sth);
        TileCache::Pixels kept;
        const unsigned char* pixels = nullptr;
        if (keep) {
          const std::uint64_t key = TileCache::key(level, index, scale);
          kept = cache_.find(key);
          if (!kept) {
            auto fresh = std::make_shared<std::vector<unsigned char>>(need);
            decode_tile(L, level, col, row, scale, fresh->data(), pitch);
            kept = fresh;
            cache_.put(key, kept);
          }
          pixels = kept->data();
        } else {
          TjDecoder& dec = thread_decoder();
          if (dec.pixels.size() < need) dec.pixels.resize(need);
          decode_tile(L, level, col, row, scale, dec.pixels.data(), pitch);
          pixels = dec.pixels.data();
        }
        const std::size_t bytes = static_cast<std::size_t>(cx1 - cx0) * 3;
        for (std::int64_t yy = cy0; yy < cy1; ++yy) {
          const unsigned char* src = pixels + static_cast<std::size_t>(yy - ty) * pitch +
                                     static_cast<std::size_t>(cx0 - tx) * 3;
          unsigned char* dst = out.ptr<unsigned char>(static_cast<int>(yy - oy)) + 3 * (cx0 - ox);
          std::memcpy(dst, src, bytes);
        }
      }
    }
    return out;
  }

  [[noreturn]] static void tile_error(Kind kind, int level, std::int64_t col, std::int64_t row,
                                      const std::string& reason) {
    throw SlideError(kind, "tile " + std::to_string(col) + "," + std::to_string(row) + " of level " +
                               std::to_string(level) + ": " + reason);
  }

  // Decodes one tile at 1/scale (tile_w/scale x tile_h/scale RGB pixels) into dst.
  void decode_tile(const TiffLevel& L, int level, std::int64_t col, std::int64_t row, int scale,
                   unsigned char* dst, std::size_t pitch) const {
    const std::size_t index = static_cast<std::size_t>(row * L.tiles_across + col);
    const std::uint64_t offset = L.offsets[index];
    const std::size_t count = static_cast<std::size_t>(L.bytecounts[index]);
    TjDecoder& dec = thread_decoder();

    // The tile's bytes go right after the prefix, two bytes early so that its SOI, if present,
    // lands on (and is then replaced by) the prefix's last two bytes.
    const std::size_t plen = L.prefix.size();
    const std::size_t need = plen + count;
    if (dec.stream.size() < need) dec.stream.resize(need);
    unsigned char* buf = dec.stream.data();
    std::memcpy(buf, L.prefix.data(), plen);
    unsigned char* at = buf + plen - 2;
    std::size_t got = 0;
    while (got < count) {
      const ssize_t n = ::pread(fd_, at + got, count - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        tile_error(Kind::Io, level, col, row, std::string("read failed: ") + std::strerror(errno));
      }
      if (n == 0) tile_error(Kind::Corrupt, level, col, row, "file ends inside the tile's data (truncated?)");
      got += static_cast<std::size_t>(n);
    }
    std::size_t len;
    if (count >= 2 && at[0] == 0xFF && at[1] == 0xD8) {
      at[0] = L.prefix[plen - 2];
      at[1] = L.prefix[plen - 1];
      len = plen + count - 2;
    } else {
      // No SOI of its own: keep all of its bytes after the prefix (decoding will judge them).
      std::memmove(buf + plen, at, count);
      std::memcpy(buf + plen - 2, L.prefix.data() + plen - 2, 2);
      len = plen + count;
    }

    tjhandle tj = dec.handle;
    int jw = 0, jh = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, buf, static_cast<unsigned long>(len), &jw, &jh, &subsamp, &colorspace) != 0)
      tile_error(Kind::Corrupt, level, col, row, "bad JPEG header: " + dec.reset_after_error());
    if (jw != L.tile_w || jh != L.tile_h)
      tile_error(Kind::Corrupt, level, col, row,
                 "JPEG is " + std::to_string(jw) + "x" + std::to_string(jh) + ", the TIFF's tiles are " +
                     std::to_string(L.tile_w) + "x" + std::to_string(L.tile_h));
    if (colorspace != (L.rgb_photometric ? TJCS_RGB : TJCS_YCbCr))
      tile_error(Kind::Corrupt, level, col, row, "JPEG colour space disagrees with the TIFF's photometric tag");
    const int dw = static_cast<int>(L.tile_w / scale), dh = static_cast<int>(L.tile_h / scale);
    // libjpeg warnings (corrupt or short entropy data, which libjpeg would fill in) are errors,
    // as in OpenSlide 3.4.1's JPEG decoder. That also sidesteps TurboJPEG 2.1 reporting
    // TJERR_WARNING for a call in which a fatal error followed a warning.
    if (tjDecompress2(tj, buf, static_cast<unsigned long>(len), dst, dw, static_cast<int>(pitch), dh, TJPF_RGB,
                      kTjFlags) != 0)
      tile_error(Kind::Corrupt, level, col, row, "JPEG decode failed: " + dec.reset_after_error());
  }

  int fd_ = -1;
  std::vector<TiffLevel> tl_;
  // set_tissue_hint: per level, per source tile, whether it may hold tissue (empty: no hint).
  mutable std::vector<std::vector<std::uint8_t>> tissue_;
  mutable cv::Vec3b glass_{255, 255, 255};
  mutable std::atomic<std::int64_t> skipped_{0};
  mutable std::int64_t overlap_l0_ = 0;  // set_request_overlap
  mutable TileCache cache_{kSharedTileCacheBytes};
};

// ---------------------------------------------------------------------------------------------
// Opening.

bool has_tiff_magic(int fd) {
  unsigned char h[4] = {};
  if (::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return false;
  const bool le = h[0] == 'I' && h[1] == 'I' && h[3] == 0 && (h[2] == 42 || h[2] == 43);
  const bool be = h[0] == 'M' && h[1] == 'M' && h[2] == 0 && (h[3] == 42 || h[3] == 43);
  return le || be;
}

std::string get_string(TIFF* tif, ttag_t tag) {
  char* value = nullptr;
  if (TIFFGetField(tif, tag, &value) && value) return value;
  return {};
}

// Is the current directory a layout this reader decodes exactly like OpenSlide? (8-bit, 3
// samples, interleaved, JPEG, RGB or YCbCr, 2-D.)
bool decodable_layout(TIFF* tif) {
  uint16_t compression = 0, spp = 0, bps = 0, planar = 0, photometric = 0;
  if (!TIFFGetField(tif, TIFFTAG_COMPRESSION, &compression) || compression != COMPRESSION_JPEG) return false;
  if (!TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp) || spp != 3) return false;
  if (!TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps) || bps != 8) return false;
  if (!TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar) || planar != PLANARCONFIG_CONTIG) return false;
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric) ||
      (photometric != PHOTOMETRIC_RGB && photometric != PHOTOMETRIC_YCBCR))
    return false;
  uint32_t depth = 1;
  if (TIFFGetField(tif, TIFFTAG_IMAGEDEPTH, &depth) && depth != 1) return false;
  if (TIFFGetField(tif, TIFFTAG_TILEDEPTH, &depth) && depth != 1) return false;
  return true;
}

// Reads and validates the current (tiled, decodable) directory as a level. Throws SlideError.
TiffLevel read_level(TIFF* tif, int directory, int level_number, std::uint64_t file_size,
                     const TiffMessages& messages) {
  const auto fail = [&](Kind kind, const std::string& why) -> SlideError {
    return SlideError(kind, "level " + std::to_string(level_number) + ": " + why +
                                (messages.errors.empty() ? "" : " (libtiff: " + messages.first() + ")"));
  };
  TiffLevel L;
  L.directory = directory;
  uint32_t w = 0, h = 0, tw = 0, th = 0;
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
    throw fail(Kind::Corrupt, "no image width or length");
  if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th))
    throw fail(Kind::Corrupt, "no tile width or length");
  if (w == 0 || h == 0) throw fail(Kind::Corrupt, "image has no pixels");
  if (w > kMaxSide || h > kMaxSide)
    throw fail(Kind::TooLarge, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                                   " pixels exceeds 2^31 per side");
  if (tw == 0 || th == 0 || tw % 16 != 0 || th % 16 != 0)
    throw fail(Kind::Corrupt, "tile size " + std::to_string(tw) + "x" + std::to_string(th) +
                                  " is not a positive multiple of 16");
  if (tw > kMaxTileSide || th > kMaxTileSide)
    throw fail(Kind::TooLarge, "tile size " + std::to_string(tw) + "x" + std::to_string(th) +
                                   " exceeds 4096 per side");
  L.width = w;
  L.height = h;
  L.tile_w = tw;
  L.tile_h = th;
  L.tiles_across = (L.width + L.tile_w - 1) / L.tile_w;
  L.tiles_down = (L.height + L.tile_h - 1) / L.tile_h;
  const std::int64_t tiles = L.tiles_across * L.tiles_down;  // <= 2^54, no overflow
  if (tiles > kMaxTilesPerLevel)
    throw fail(Kind::TooLarge, std::to_string(tiles) + " tiles (more than 2^24 per level)");
  if (static_cast<std::int64_t>(TIFFNumberOfTiles(tif)) != tiles)
    throw fail(Kind::Corrupt, "libtiff counts " + std::to_string(TIFFNumberOfTiles(tif)) + " tiles, the geometry " +
                                  std::to_string(tiles));

  uint64_t* offsets = nullptr;
  uint64_t* bytecounts = nullptr;
  if (!TIFFGetField(tif, TIFFTAG_TILEOFFSETS, &offsets) || !offsets)
    throw fail(Kind::Corrupt, "no tile offsets");
  L.offsets.assign(offsets, offsets + tiles);
  if (!TIFFGetField(tif, TIFFTAG_TILEBYTECOUNTS, &bytecounts) || !bytecounts)
    throw fail(Kind::Corrupt, "no tile byte counts");
  L.bytecounts.assign(bytecounts, bytecounts + tiles);
  // Largest compressed tile accepted: twice the raw pixels plus 1 MiB (JPEG never comes close).
  const std::uint64_t max_tile_bytes = std::uint64_t{tw} * th * 6 + (std::uint64_t{1} << 20);
  for (std::int64_t i = 0; i < tiles; ++i) {
    const std::uint64_t off = L.offsets[static_cast<std::size_t>(i)];
    const std::uint64_t count = L.bytecounts[static_cast<std::size_t>(i)];
    if (count == 0) continue;  // sparse: white
    const auto where = [&] {
      return "tile " + std::to_string(i % L.tiles_across) + "," + std::to_string(i / L.tiles_across);
    };
    if (off > file_size || count > file_size - off)  // no off + count: it could wrap
      throw fail(Kind::Corrupt, where() + " lies beyond the end of the file (truncated or damaged)");
    if (count > max_tile_bytes)
      throw fail(Kind::Corrupt, where() + " claims " + std::to_string(count) + " bytes, implausible for its size");
  }

  uint16_t photometric = 0;
  TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  L.rgb_photometric = photometric == PHOTOMETRIC_RGB;
  L.chroma = tiff_chroma_block(tif);

  L.prefix = {0xFF, 0xD8};
  L.prefix.insert(L.prefix.end(), std::begin(kAdobeApp14), std::end(kAdobeApp14));
  L.prefix[2 + kAdobeTransformAt] = L.rgb_photometric ? 0 : 1;
  uint32_t table_len = 0;
  void* tables = nullptr;
  if (TIFFGetField(tif, TIFFTAG_JPEGTABLES, &table_len, &tables) && tables && table_len > 0) {
    const auto* t = static_cast<const unsigned char*>(tables);
    std::size_t begin = 0, end = table_len;
    if (end < 2 || t[0] != 0xFF || t[1] != 0xD8) throw fail(Kind::Corrupt, "JPEGTables does not start with SOI");
    begin = 2;
    if (end >= begin + 2 && t[end - 2] == 0xFF && t[end - 1] == 0xD9) end -= 2;
    L.prefix.insert(L.prefix.end(), t + begin, t + end);
  }
  return L;
}

void add_tiff_properties(TIFF* tif, std::map<std::string, std::string>& props) {
  // As OpenSlide's _openslide_tiff_init_properties_and_hash, from the first directory.
  const std::string desc = get_string(tif, TIFFTAG_IMAGEDESCRIPTION);
  if (!desc.empty()) {
    props["openslide.comment"] = desc;
    props["tiff.ImageDescription"] = desc;
  }
  const std::pair<const char*, ttag_t> strings[] = {
      {"tiff.Make", TIFFTAG_MAKE},         {"tiff.Model", TIFFTAG_MODEL},
      {"tiff.Software", TIFFTAG_SOFTWARE}, {"tiff.DateTime", TIFFTAG_DATETIME},
      {"tiff.Artist", TIFFTAG_ARTIST},     {"tiff.HostComputer", TIFFTAG_HOSTCOMPUTER},
      {"tiff.Copyright", TIFFTAG_COPYRIGHT}, {"tiff.DocumentName", TIFFTAG_DOCUMENTNAME}};
  for (const auto& [name, tag] : strings)
    if (std::string v = get_string(tif, tag); !v.empty()) props[name] = v;
  const std::pair<const char*, ttag_t> floats[] = {{"tiff.XResolution", TIFFTAG_XRESOLUTION},
                                                   {"tiff.YResolution", TIFFTAG_YRESOLUTION},
                                                   {"tiff.XPosition", TIFFTAG_XPOSITION},
                                                   {"tiff.YPosition", TIFFTAG_YPOSITION}};
  for (const auto& [name, tag] : floats) {
    float v = 0;
    if (TIFFGetField(tif, tag, &v)) props[name] = format_double(v);
  }
  uint16_t unit = 0;
  if (TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit))
    props["tiff.ResolutionUnit"] = unit == RESUNIT_NONE ? "none"
                                   : unit == RESUNIT_INCH ? "inch"
                                   : unit == RESUNIT_CENTIMETER ? "centimeter"
                                                                : "unknown";
}

}  // namespace

std::unique_ptr<Slide> open_tiff_jpeg(const std::filesystem::path& path) {
  FdCloser fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return nullptr;  // the other readers report why
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (!has_tiff_magic(fd.fd)) return nullptr;

  TiffMessages messages;
  // "m": no memory map (a file truncated under us must not SIGBUS); "D": tile offset and byte
  // count arrays are loaded when first asked for, i.e. after the geometry has been validated.
  TiffPtr tif(open_tiff_quietly(path, "rmD", messages, kLibtiffMaxAlloc));
  // libtiff cannot read the first directory: not for this reader; OpenSlide or OpenCV will say.
  if (!tif) return nullptr;

  // First directory: tiled JPEG we can decode, or nothing for us.
  if (!TIFFIsTiled(tif.get()) || !decodable_layout(tif.get())) return nullptr;
  const std::string description = get_string(tif.get(), TIFFTAG_IMAGEDESCRIPTION);
  const bool aperio = description.rfind("Aperio", 0) == 0;  // OpenSlide's aperio test
  if (!aperio) {
    // Generic only where OpenSlide would say so (not NDPI, Philips, Leica, Ventana, Trestle...).
    const char* vendor = openslide_detect_vendor(path.c_str());
    if (!vendor || std::strcmp(vendor, "generic-tiff") != 0) return nullptr;
  }

  std::map<std::string, std::string> props;
  add_tiff_properties(tif.get(), props);
  uint16_t stated_unit = 0;  // 0: the tag is absent (libtiff would default it to inch)
  if (!TIFFGetField(tif.get(), TIFFTAG_RESOLUTIONUNIT, &stated_unit)) stated_unit = 0;

  // Levels: aperio takes every tiled directory in file order; generic-tiff takes directory 0
  // and tiled reduced-resolution directories, sorted by width (largest first).
  std::vector<TiffLevel> levels;
  int directory = 0;
  do {
    if (directory >= kMaxDirectories) break;
    if (TIFFIsTiled(tif.get())) {
      bool take = true;
      if (!aperio && directory != 0) {
        uint32_t subfile = 0;
        take = TIFFGetField(tif.get(), TIFFTAG_SUBFILETYPE, &subfile) && (subfile & FILETYPE_REDUCEDIMAGE);
      }
      if (take) {
        if (!decodable_layout(tif.get())) return nullptr;  // e.g. a JPEG 2000 level: OpenSlide's job
        levels.push_back(read_level(tif.get(), directory, static_cast<int>(levels.size()), file_size, messages));
      }
    }
    ++directory;
  } while (TIFFReadDirectory(tif.get()));
  tif.reset();  // libtiff's part is done
  if (levels.empty()) return nullptr;
  if (!aperio)
    std::stable_sort(levels.begin(), levels.end(),
                     [](const TiffLevel& a, const TiffLevel& b) { return a.width > b.width; });

  // One probe: does TurboJPEG see the colour space the TIFF states? If the first stored tile
  // says otherwise (a JFIF marker in an RGB TIFF, say), leave the file to OpenSlide. A probe that
  // cannot even be parsed is not judged here: reading that tile will report it.
  {
    const TiffLevel& L = levels.front();
    const auto it = std::find_if(L.bytecounts.begin(), L.bytecounts.end(), [](std::uint64_t c) { return c > 0; });
    if (it != L.bytecounts.end()) {
      const std::size_t i = static_cast<std::size_t>(it - L.bytecounts.begin());
      std::vector<unsigned char> stream(L.prefix);
      std::vector<unsigned char> tile(static_cast<std::size_t>(*it));
      if (::pread(fd.fd, tile.data(), tile.size(), static_cast<off_t>(L.offsets[i])) ==
          static_cast<ssize_t>(tile.size())) {
        const std::size_t skip = (tile.size() >= 2 && tile[0] == 0xFF && tile[1] == 0xD8) ? 2 : 0;
        stream.insert(stream.end(), tile.begin() + static_cast<std::ptrdiff_t>(skip), tile.end());
        TjDecoder& dec = thread_decoder();
        int jw = 0, jh = 0, subsamp = 0, colorspace = -1;
        const int rc = tjDecompressHeader3(dec.handle, stream.data(), static_cast<unsigned long>(stream.size()), &jw,
                                           &jh, &subsamp, &colorspace);
        if (rc != 0) {
          dec.reset_after_error();
        } else if (colorspace != (L.rgb_photometric ? TJCS_RGB : TJCS_YCbCr)) {
          return nullptr;
        }
      }
    }
  }

  // Properties, resolution, objective.
  std::optional<double> mpp, objective;
  std::string vendor;
  if (aperio) {
    vendor = "aperio";
    // "header|key = value|key = value...": as OpenSlide, the first segment is not a property and
    // a later duplicate key wins.
    std::size_t start = description.find('|');
    while (start != std::string::npos) {
      const std::size_t end = description.find('|', start + 1);
      const std::string_view item = std::string_view(description).substr(
          start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
      const std::size_t eq = item.find('=');
      if (eq != std::string_view::npos) {
        const std::string key = trim(item.substr(0, eq));
        if (!key.empty()) props["aperio." + key] = trim(item.substr(eq + 1));
      }
      start = end;
    }
    if (auto it = props.find("aperio.MPP"); it != props.end())
      if (const double v = parse_positive(it->second); v > 0) mpp = v;
    if (auto it = props.find("aperio.AppMag"); it != props.end())
      if (const double v = parse_positive(it->second); v > 0) objective = v;
    if (mpp) props["openslide.mpp-x"] = props["openslide.mpp-y"] = format_double(*mpp);
    if (objective) {
      // OpenSlide duplicates AppMag as an integer property.
      const double whole = std::trunc(*objective);
      props["openslide.objective-power"] =
          whole == *objective ? std::to_string(static_cast<long long>(whole)) : format_double(*objective);
    }
  } else {
    vendor = "generic-tiff";
    // OpenSlide 3.4.1 gives generic TIFFs no resolution; the TIFF resolution tags are used here
    // when the unit is physical (centimetre or inch) and stated, not defaulted.
    if (stated_unit == RESUNIT_CENTIMETER || stated_unit == RESUNIT_INCH) {
      const double per_unit_um = stated_unit == RESUNIT_CENTIMETER ? 1.0e4 : 2.54e4;
      const double xres = props.count("tiff.XResolution") ? parse_positive(props["tiff.XResolution"]) : 0.0;
      const double yres = props.count("tiff.YResolution") ? parse_positive(props["tiff.YResolution"]) : 0.0;
      if (xres > 0) {
        mpp = per_unit_um / xres;
        props["openslide.mpp-x"] = format_double(*mpp);
        props["openslide.mpp-y"] = format_double(yres > 0 ? per_unit_um / yres : *mpp);
      }
    }
  }
  props["openslide.vendor"] = vendor;
  props["openslide.level-count"] = std::to_string(levels.size());
  const double w0 = static_cast<double>(levels.front().width), h0 = static_cast<double>(levels.front().height);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const std::string p = "openslide.level[" + std::to_string(i) + "].";
    const TiffLevel& L = levels[i];
    props[p + "width"] = std::to_string(L.width);
    props[p + "height"] = std::to_string(L.height);
    props[p + "tile-width"] = std::to_string(L.tile_w);
    props[p + "tile-height"] = std::to_string(L.tile_h);
    props[p + "downsample"] =
        format_double((w0 / static_cast<double>(L.width) + h0 / static_cast<double>(L.height)) / 2.0);
  }

  const int owned = fd.fd;
  fd.fd = -1;
  try {
    return std::make_unique<TiffJpegSlide>(path, owned, std::move(vendor), std::move(levels),
                                           std::move(props), mpp, objective);
  } catch (...) {
    ::close(owned);
    throw;
  }
}

}  // namespace ihc::tiling::detail
