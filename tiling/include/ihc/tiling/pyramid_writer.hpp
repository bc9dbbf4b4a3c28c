#pragma once
// Streaming writer of pyramidal, tiled, JPEG-compressed TIFF files in the Aperio SVS layout:
//
//   directory 0: level 0, tiled, JPEG (YCbCr 2x2, abbreviated tile streams + shared JPEGTables),
//                ImageDescription "Aperio Image Library v12.0.15 \r\n{W}x{H} [0,0 {W}x{H}]
//                ({T}x{T}) JPEG/RGB Q={q}|AppMag = 40|MPP = 0.25..."
//   directory 1: thumbnail, stripped JPEG (OpenSlide names it "thumbnail")
//   directory 2..: levels 1.., each 4x smaller than the one before, tiled like level 0.
//
// OpenSlide 3.4.1 opens the result as vendor "aperio". Level 0 arrives in bands (one row of
// tiles at a time, top to bottom) and is never held whole; each band is encoded into the output
// and area-averaged 4x into the next level's band buffer, and so on down the pyramid. Lower
// levels are encoded into temporary TIFF files beside the output (named "<out>.level<k>.tmp-<pid>")
// and copied tile by tile, without re-encoding, behind level 0 when it is complete. Memory is
// about three bands of level 0 (width x tile x 3 bytes each) whatever the height.
//
// The output is a pure function of the pixels and options: no dates, no host names.
// Not thread-safe: one thread at a time calls a writer. Errors throw SlideError (Kind::Io for
// the file system, Kind::TooLarge for impossible sizes); the destructor of an unfinished writer
// removes its temporaries (the caller owns the output path and removes it).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/tiling/slide.hpp"

namespace ihc::tiling {

struct PyramidOptions {
  std::int64_t width = 0;   // level-0 pixels
  std::int64_t height = 0;
  int tile = 256;           // tile side, a multiple of 16 (Aperio uses 240 or 256)
  int quality = 80;         // JPEG quality 1..100
  double mpp = 0.25;        // micrometres per level-0 pixel
  double app_mag = 40;      // objective power written as AppMag
  // Levels are added, each ceil(previous / 4), while the last one's long side exceeds this.
  int max_lowest_side = 1024;
  bool thumbnail = true;    // write the Aperio thumbnail directory (long side <= 768 px)
  std::string description_prefix = "Aperio Image Library v12.0.15";
  // Appended to level 0's ImageDescription; each entry "|Key = Value" becomes an OpenSlide
  // property "aperio.Key" (e.g. "|Generator = ihcscore synth 1|Seed = 7").
  std::string extra_properties;
};

// The levels such a writer produces for a width x height level 0 (downsamples 1, 4, 16, ...).
std::vector<Level> plan_pyramid(std::int64_t width, std::int64_t height, int max_lowest_side = 1024);

// Level 0's ImageDescription as the writer writes it.
std::string aperio_description(const PyramidOptions& options);

class PyramidWriter {
 public:
  // Creates `path` (replacing it) and the temporaries for the lower levels.
  PyramidWriter(const std::filesystem::path& path, const PyramidOptions& options);
  ~PyramidWriter();
  PyramidWriter(const PyramidWriter&) = delete;
  PyramidWriter& operator=(const PyramidWriter&) = delete;

  // The temporary files a writer for `path` creates (and removes) beside it, so that callers
  // can remove them if the process is killed (e.g. from a signal handler).
  static std::vector<std::filesystem::path> temporary_paths(const std::filesystem::path& path,
                                                            const PyramidOptions& options);

  const std::vector<Level>& levels() const;
  const PyramidOptions& options() const;
  std::int64_t tiles_across() const;  // level 0
  std::int64_t band_count() const;    // rows of tiles in level 0
  int band_height(std::int64_t band) const;  // tile, or less for the last band
  std::int64_t next_band() const;

  // The next band of level 0: CV_8UC3, RGB order, width x band_height(next_band()) pixels.
  void write_band(const cv::Mat& rgb);
  // After the last band: writes the thumbnail and the lower levels, closes the file and removes
  // the temporaries. Throws SlideError when bands are missing or a write fails.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ihc::tiling
