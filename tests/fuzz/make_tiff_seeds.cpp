// Writes the tiny generated seeds of corpus/fuzz_tiff_reader with the project's pyramid writer:
// small Aperio-style JPEG pyramids (YCbCr tiles, shared JPEGTables, 2-3 levels, with and without
// the stripped thumbnail), a non-Aperio ("generic") description, and truncated copies.
//   make_tiff_seeds OUT_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "ihc/tiling/pyramid_writer.hpp"

namespace fs = std::filesystem;
using ihc::tiling::PyramidOptions;
using ihc::tiling::PyramidWriter;

namespace {

void write_slide(const fs::path& path, PyramidOptions o) {
  PyramidWriter w(path, o);
  for (std::int64_t band = 0; band < w.band_count(); ++band) {
    const int bh = w.band_height(band);
    cv::Mat rgb(bh, static_cast<int>(o.width), CV_8UC3);
    for (int y = 0; y < bh; ++y)
      for (int x = 0; x < rgb.cols; ++x) {
        const auto gy = static_cast<int>(band * o.tile + y);
        // Brown rings on pale blue: a little of everything for the JPEG coder, still tiny.
        const bool ring = ((x / 6 + gy / 6) % 3) == 0;
        rgb.at<cv::Vec3b>(y, x) = ring ? cv::Vec3b(150, 100, 60) : cv::Vec3b(215, 220, 235);
      }
    w.write_band(rgb);
  }
  w.finish();
}

void truncate_copy(const fs::path& from, const fs::path& to, double fraction) {
  std::ifstream in(from, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(static_cast<std::size_t>(static_cast<double>(bytes.size()) * fraction));
  std::ofstream(to, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_tiff_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);

  PyramidOptions a;  // 3 levels (64x48, 16x12, 4x3), thumbnail, 16 px tiles
  a.width = 64;
  a.height = 48;
  a.tile = 16;
  a.quality = 30;
  a.max_lowest_side = 8;
  write_slide(out / "aperio-64x48-3levels.svs", a);

  PyramidOptions b = a;  // one partial edge tile per side, no thumbnail, 2 levels
  b.width = 40;
  b.height = 24;
  b.tile = 32;
  b.thumbnail = false;
  b.max_lowest_side = 16;
  b.extra_properties = "|Generator = fuzz seed|Seed = 1";
  write_slide(out / "aperio-40x24-edge-tiles.svs", b);

  PyramidOptions c = a;  // not "Aperio...": goes through OpenSlide's vendor detection
  c.width = 32;
  c.height = 32;
  c.description_prefix = "Generic tiled JPEG";
  c.thumbnail = false;
  c.max_lowest_side = 32;
  write_slide(out / "generic-32x32.tif", c);

  truncate_copy(out / "aperio-64x48-3levels.svs", out / "aperio-64x48-truncated-half.svs", 0.5);
  truncate_copy(out / "aperio-64x48-3levels.svs", out / "aperio-64x48-truncated-90pc.svs", 0.9);
  truncate_copy(out / "aperio-40x24-edge-tiles.svs", out / "aperio-40x24-truncated-header.svs", 0.02);
  return 0;
}
