#pragma once
// A slide: a pyramid of levels of one RGB image, read by region.
//
// Thread safety: every const member function may be called from many threads at once.
// Errors: opening and reading throw SlideError (the one exception type of this module); its
// message names no file, the caller adds the path when it reports.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace ihc::tiling {

class SlideError : public std::runtime_error {
 public:
  enum class Kind {
    NotFound,      // missing file, or not a regular file
    Unsupported,   // no reader recognises the content
    Corrupt,       // recognised but damaged (truncated, bad header, bad tile)
    TooLarge,      // dimensions or allocations beyond what we accept
    Io,            // the operating system failed a read
  };
  SlideError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

struct Level {
  std::int64_t width = 0;
  std::int64_t height = 0;
  double downsample = 1.0;  // level-0 pixels per pixel of this level
  // The stored colour's resolution: one colour (chroma) sample per chroma_x x chroma_y pixels of
  // this level, the block grid starting at the level's origin. A JPEG with 4:2:0 subsampling:
  // 2 x 2 (the decoder interpolates the rest); 1 x 1 when the colour is stored per pixel or
  // the reader cannot tell.
  int chroma_x = 1, chroma_y = 1;
};

struct Rect {
  std::int64_t x = 0, y = 0, w = 0, h = 0;
};

class Slide {
 public:
  virtual ~Slide() = default;

  const std::filesystem::path& path() const { return path_; }
  // Which reader serves the pixels: "openslide", "tiff-jpeg" (direct path) or "plain-image" (PNG, JPEG, TIFF decoded whole).
  virtual std::string reader() const = 0;
  // Vendor as OpenSlide names it ("aperio", "generic-tiff", ...), or "image" for plain images.
  const std::string& vendor() const { return vendor_; }
  const std::vector<Level>& levels() const { return levels_; }
  // Micrometres per level-0 pixel, when the file says (or the user overrode it).
  std::optional<double> mpp() const { return mpp_; }
  void set_mpp(double mpp) { mpp_ = mpp; }
  // Objective power, when the file says.
  std::optional<double> objective_power() const { return objective_; }
  const std::map<std::string, std::string>& properties() const { return properties_; }

  // RGB (CV_8UC3, R first) pixels of `level`; (x, y) is the top-left in level-0 coordinates,
  // (w, h) in pixels of the level. Pixels outside the image are white (255).
  virtual cv::Mat read_region(int level, std::int64_t x, std::int64_t y, int w, int h) const = 0;

  // Like read_region, but the result is reduced by `scale` (1, 2, 4 or 8): (w/scale) x (h/scale)
  // pixels. Readers that can decode at reduced scale (JPEG DCT scaling) override it; the
  // default reads at full size and area-averages.
  virtual cv::Mat read_region_scaled(int level, std::int64_t x, std::int64_t y, int w, int h,
                                     int scale) const;

  // Level whose downsample is the largest not exceeding `downsample` (level 0 if none).
  int best_level_for_downsample(double downsample) const;

  // A tissue hint: `tissue` (CV_8UC1, non-zero where there may be tissue) covers the whole
  // slide, each of its pixels `mask_downsample` level-0 pixels square. A reader that decodes by
  // source tile may then leave out the tiles the mask shows as glass, filling them with `glass`
  // (RGB) instead of reading and decoding them; others ignore it. Set it before reading from
  // several threads (it is state shared by every later read, hence const with mutable state);
  // an empty mask takes it back.
  virtual void set_tissue_hint(const cv::Mat& tissue, double mask_downsample, cv::Vec3b glass) const {
    (void)tissue, (void)mask_downsample, (void)glass;
  }
  // Source-tile reads the hint saved since it was set (0 for readers without one).
  virtual std::int64_t tile_reads_skipped() const { return 0; }
  // The region requests that follow overlap their neighbours by `level0_px` at each edge (analysis
  // tiles read with their halos): a reader that decodes by source tile keeps the tiles in that
  // band, whole or in part, for the neighbouring request instead of decoding them again. Set
  // before reading from several threads, like the tissue hint; 0 takes it back. Either lets go of
  // the tiles kept so far.
  virtual void set_request_overlap(std::int64_t level0_px) const { (void)level0_px; }

  // What the reader noticed and worked around when opening (a pyramid level that contradicts
  // level 0, say), one sentence each; empty for a sound file.
  const std::vector<std::string>& warnings() const { return warnings_; }

 protected:
  std::filesystem::path path_;
  std::string vendor_;
  std::vector<Level> levels_;
  std::optional<double> mpp_;
  std::optional<double> objective_;
  std::map<std::string, std::string> properties_;
  std::vector<std::string> warnings_;
};

struct OpenOptions {
  // Prefer the direct TIFF + JPEG reader when the format allows (else OpenSlide).
  bool allow_fast_reader = true;
  // Force OpenSlide even where the direct reader could serve (benchmarks, differential tests).
  bool force_openslide = false;
};

// Opens a whole-slide image or a plain image; the format is chosen by content, never by the
// file extension. Throws SlideError.
std::unique_ptr<Slide> open_slide(const std::filesystem::path& path, const OpenOptions& options = {});

// True when the first bytes are those of a PNG, JPEG or BMP file: an image open_slide decodes
// whole (a second or more for a large one), so callers that only sort files into slides and
// others (batch over a folder) need not open it. TIFFs are not included: a TIFF may be a slide.
bool is_plain_image_file(const std::filesystem::path& path);

}  // namespace ihc::tiling
