// Hostile input and hard failures of `ihcscore score`: every refusal is the documented exit code
// (2 usage, 3 input, 4 output, 5 partial), one line on stderr naming the file and the reason, and
// no output or temporary left behind; damaged tiles are counted and either tolerated or make the
// slide not evaluable, through both readers; Ctrl-C and SIGTERM stop cleanly (exit 130).
//
// Cases already covered elsewhere and not repeated here: the plain image without --mpp
// (test_cli), --mpp 0/-1/nan, --threads 0/-2 and an unknown --guideline as exit 2 (test_cli; here
// only inf, abc and -1 are added, with the one-line and no-output checks), the blank PNG
// (test_cli), the interrupted batch and synth (test_batch, test_synth), hostile headers at the
// reader level (test_tiff_jpeg_reader).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli_runner.hpp"


using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
using ihc::test::wait_for_signal_handlers;
using ihc::test::q;
using ihc::test::read_bytes;
using ihc::test::write_bytes;
using ihc::test::spawn_cli;
namespace fs = std::filesystem;

namespace {

const fs::path kData = "../shared/data";


long count_of(const std::string& s, char c) { return std::count(s.begin(), s.end(), c); }

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + " ";
  return s;
}

// --json, --heatmap and --geojson into a folder of their own.
struct Outputs {
  fs::path dir;
  explicit Outputs(const std::string& name) : dir(scratch_dir("hostile-out-" + name)) {}
  std::string args() const {
    return " --json " + q(dir / "r.json") + " --heatmap " + q(dir / "h.png") + " --geojson " + q(dir / "c.geojson");
  }
};

// `score ARGS` with all three outputs must fail with `code`, say one line naming `names` and
// containing `reason`, and leave the output folder empty.
void expect_refused(const std::string& label, const std::string& args, int code, const std::string& names,
                    const std::string& reason) {
  const Outputs out(label);
  const auto r = run_cli("score " + args + out.args());
  INFO(label << ": score " << args << "\n  -> exit " << r.exit_code << ", stderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(count_of(r.err, '\n') == 1);
  CHECK(r.err.rfind("ihcscore: ", 0) == 0);
  CHECK(r.err.find(names) != std::string::npos);
  CHECK(r.err.find(reason) != std::string::npos);
  CHECK(files_in(out.dir).empty());
  fs::remove_all(out.dir);
}


// Little-endian classic TIFF as libtiff writes it: IFD0's entry for `tag`.
std::uint16_t get_u16(const std::vector<char>& f, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(f.at(at)) |
                                    (static_cast<unsigned char>(f.at(at + 1)) << 8));
}
std::uint32_t get_u32(const std::vector<char>& f, std::size_t at) {
  return std::uint32_t{get_u16(f, at)} | (std::uint32_t{get_u16(f, at + 2)} << 16);
}
void put_u16(std::vector<char>& f, std::size_t at, std::uint16_t v) {
  f.at(at) = static_cast<char>(v & 0xff);
  f.at(at + 1) = static_cast<char>(v >> 8);
}
void put_u32(std::vector<char>& f, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) f.at(at + static_cast<std::size_t>(i)) = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::size_t ifd0(const std::vector<char>& f) {
  REQUIRE(f.at(0) == 'I');
  REQUIRE(get_u16(f, 2) == 42);
  return get_u32(f, 4);
}
std::size_t ifd0_entry(const std::vector<char>& f, std::uint16_t tag) {
  const std::size_t ifd = ifd0(f);
  for (std::size_t i = 0, n = get_u16(f, ifd); i < n; ++i)
    if (get_u16(f, ifd + 2 + 12 * i) == tag) return ifd + 2 + 12 * i;
  FAIL("tag " << tag << " not in IFD0");
  return 0;
}
// Sets a one-value SHORT or LONG tag of IFD0 to a LONG value.
void set_long(std::vector<char>& f, std::uint16_t tag, std::uint32_t value) {
  const std::size_t e = ifd0_entry(f, tag);
  put_u16(f, e + 2, 4);
  put_u32(f, e + 8, value);
}

// A small tiled (or, with tile 0, stripped) RGB TIFF written with libtiff: tissue-coloured
// blocks on glass, or only glass; a resolution only when `mpp` is given. `append` adds the
// image as the file's next directory; `description` sets ImageDescription.
void write_tiff(const fs::path& p, int w, int h, std::uint16_t compression, int tile, bool blank,
                std::optional<double> mpp = std::nullopt, const char* description = nullptr, bool append = false) {
  TIFF* t = TIFFOpen(p.c_str(), append ? "a" : "w");
  REQUIRE(t);
  if (description) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, description);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
  if (compression == COMPRESSION_JPEG) {
    TIFFSetField(t, TIFFTAG_JPEGQUALITY, 90);
    TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
  }
  if (mpp) {
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(1e4 / *mpp));
    TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(1e4 / *mpp));
  }
  auto pixel = [&](int x, int y, unsigned char* px) {
    const bool tissue = !blank && ((x / 40 + y / 40) % 3 != 0) && x > w / 8 && y > h / 8;
    const bool nucleus = tissue && (x % 40 < 12) && (y % 40 < 12);
    px[0] = blank ? 243 : nucleus ? 70 : tissue ? 170 : 243;
    px[1] = blank ? 242 : nucleus ? 80 : tissue ? 110 : 242;
    px[2] = blank ? 240 : nucleus ? 150 : tissue ? 90 : 240;
  };
  if (tile > 0) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, tile);
    TIFFSetField(t, TIFFTAG_TILELENGTH, tile);
    std::vector<unsigned char> buf(static_cast<std::size_t>(tile) * tile * 3);
    for (int ty = 0; ty < h; ty += tile)
      for (int tx = 0; tx < w; tx += tile) {
        for (int y = 0; y < tile; ++y)
          for (int x = 0; x < tile; ++x) pixel(tx + x, ty + y, &buf[(static_cast<std::size_t>(y) * tile + x) * 3]);
        REQUIRE(TIFFWriteTile(t, buf.data(), static_cast<std::uint32_t>(tx), static_cast<std::uint32_t>(ty), 0, 0) >= 0);
      }
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
    std::vector<unsigned char> row(static_cast<std::size_t>(w) * 3);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) pixel(x, y, &row[static_cast<std::size_t>(x) * 3]);
      REQUIRE(TIFFWriteScanline(t, row.data(), static_cast<std::uint32_t>(y), 0) >= 0);
    }
  }
  TIFFClose(t);
}

// PNG chunk CRC (ISO 3309), to keep a patched header valid.
std::uint32_t crc32(const char* data, std::size_t n) {
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(data[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}
// A PNG whose header claims w x h pixels (with a valid CRC), over the original's pixel data.
std::vector<char> png_claiming(std::vector<char> png, std::uint32_t w, std::uint32_t h) {
  const auto put_be = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) png.at(at + static_cast<std::size_t>(i)) = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  };
  put_be(16, w);
  put_be(20, h);
  put_be(29, crc32(png.data() + 12, 17));
  return png;
}

// A synthetic slide made once per test process (synth is deterministic), copied where needed.
fs::path synth_slide(const std::string& name, const std::string& options) {
  static std::map<std::string, fs::path> made;
  const std::string key = name + "|" + options;
  if (auto it = made.find(key); it != made.end()) return it->second;
  const auto dir = scratch_dir("hostile-synth-" + name);
  const auto slide = dir / (name + ".svs");
  const auto r = run_cli("synth " + q(slide) + " " + options);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  made[key] = slide;
  return slide;
}

struct TileBytes {
  std::uint64_t offset = 0, count = 0;
};
// Level 0's JPEG tiles (offset and byte count, row-major) and how many lie across.
std::vector<TileBytes> level0_tiles(const fs::path& p, std::uint32_t* across, std::uint32_t* tile_px) {
  TIFF* t = TIFFOpen(p.c_str(), "r");
  REQUIRE(t);
  std::uint64_t* offsets = nullptr;
  std::uint64_t* counts = nullptr;
  std::uint32_t width = 0, tw = 0;
  REQUIRE(TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets));
  REQUIRE(TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts));
  REQUIRE(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width));
  REQUIRE(TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw));
  std::vector<TileBytes> tiles(TIFFNumberOfTiles(t));
  for (std::size_t i = 0; i < tiles.size(); ++i) tiles[i] = {offsets[i], counts[i]};
  *across = (width + tw - 1) / tw;
  *tile_px = tw;
  TIFFClose(t);
  return tiles;
}

// Overwrites the start of a JPEG tile (its SOI marker and first segment) with zeros: neither
// reader can decode it.
void damage_tile(std::vector<char>& bytes, const TileBytes& tile) {
  for (std::uint64_t i = 0; i < std::min<std::uint64_t>(tile.count, 64); ++i) bytes.at(tile.offset + i) = 0;
}

// Runs the CLI with IHCSCORE_READER set (or unset) for this call.
ihc::test::CliResult run_cli_with_reader(const std::string& args, const char* reader) {
  if (reader)
    ::setenv("IHCSCORE_READER", reader, 1);
  else
    ::unsetenv("IHCSCORE_READER");
  auto r = run_cli(args);
  ::unsetenv("IHCSCORE_READER");
  return r;
}

// Runs the CLI in `sh` under a limit (`ulimit LIMIT`, e.g. "-v 1000000" or "-f 40").
ihc::test::CliResult run_cli_under_ulimit(const std::string& limit, const std::string& args) {
  const auto dir = fs::temp_directory_path();
  const auto err = dir / ("ihc-limited-err-" + std::to_string(::getpid()));
  const std::string cmd = "ulimit " + limit + "; '" + std::string(IHC_BINARY) + "' " + args +
                          " >/dev/null 2>'" + err.string() + "' </dev/null";
  const int status = std::system(("sh -c \"" + cmd + "\"").c_str());
  ihc::test::CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = slurp(err);
  fs::remove(err);
  return r;
}

// Runs the CLI under an address-space limit (KiB), as `ulimit -v` does.
ihc::test::CliResult run_cli_limited(const std::string& args, long kib) {
  return run_cli_under_ulimit("-v " + std::to_string(kib), args);
}

}  // namespace

TEST_CASE("hostile inputs: missing, directory, empty, text, damaged and unsupported files exit 3, one line, no outputs",
          "[hostile][cli][errors]") {
  const auto dir = scratch_dir("hostile-inputs");
  { std::ofstream(dir / "empty.svs"); }
  fs::create_directories(dir / "folder.svs");
  // A TIFF with a compression code no library knows.
  write_tiff(dir / "lzw.tif", 512, 512, COMPRESSION_LZW, 256, false);
  auto unknown = read_bytes(dir / "lzw.tif");
  put_u16(unknown, ifd0_entry(unknown, 259) + 8, 60000);
  write_bytes(dir / "unknown-compression.tif", unknown);

  // Plain images: cut short, or a header that lies about the size (decoded: the data runs out;
  // too large: refused before decoding).
  const auto png = read_bytes(kData / "images" / "her2-score0.png");
  write_bytes(dir / "half.png", std::vector<char>(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2)));
  write_bytes(dir / "lying.png", png_claiming(png, 3000, 3000));
  write_bytes(dir / "huge.png", png_claiming(png, 0x7fffffffu, 0x7fffffffu));
  // 16,000 x 16,000: a few KB of PNG that would decode to 768 MB; above the documented cap.
  write_bytes(dir / "big.png", png_claiming(png, 16000, 16000));
  REQUIRE(cv::imwrite((dir / "whole.jpg").string(), cv::imread((kData / "images" / "her2-score0.png").string())));
  const auto jpg = read_bytes(dir / "whole.jpg");
  write_bytes(dir / "half.jpg", std::vector<char>(jpg.begin(), jpg.begin() + static_cast<std::ptrdiff_t>(jpg.size() / 2)));

  expect_refused("png-half", q(dir / "half.png") + " --mpp 0.5", 3, "half.png", "cannot be decoded");
  expect_refused("png-lying", q(dir / "lying.png") + " --mpp 0.5", 3, "lying.png", "cannot be decoded");
  expect_refused("png-huge", q(dir / "huge.png") + " --mpp 0.5", 3, "huge.png", "larger than 67 megapixels");
  expect_refused("png-big", q(dir / "big.png") + " --mpp 0.5", 3, "big.png", "larger than 67 megapixels");
  {
    // A BMP header claiming 20,000 x 20,000 pixels (1.2 GB decoded by OpenCV; fuzz_plain_image's
    // finding): BMP is not read at all now.
    std::vector<char> bmp(64, '\0');
    const auto le32 = [&](std::size_t at, std::uint32_t v) {
      for (int k = 0; k < 4; ++k) bmp[at + static_cast<std::size_t>(k)] = static_cast<char>((v >> (8 * k)) & 0xFF);
    };
    bmp[0] = 'B';
    bmp[1] = 'M';
    le32(2, 64);
    le32(10, 54);
    le32(14, 40);
    le32(18, 20000);
    le32(22, 20000);
    bmp[26] = 1;
    bmp[28] = 24;
    write_bytes(dir / "huge.bmp", bmp);
  }
  expect_refused("bmp-huge", q(dir / "huge.bmp") + " --mpp 0.5", 3, "huge.bmp", "PNG, JPEG or TIFF");
  expect_refused("jpeg-half", q(dir / "half.jpg") + " --mpp 0.5", 3, "half.jpg", "truncated");
  expect_refused("missing", q(dir / "no-such-slide.svs") + " --mpp 0.5", 3, "no-such-slide.svs", "no such file");
  expect_refused("directory", q(dir / "folder.svs") + " --mpp 0.5", 3, "folder.svs", "directory");
  expect_refused("empty", q(dir / "empty.svs") + " --mpp 0.5", 3, "empty.svs", "empty");
  expect_refused("text", q(kData / "bad" / "text-named-svs.svs") + " --mpp 0.5", 3, "text-named-svs.svs",
                 "not a slide");
  // A damaged DICOM file named .png: OpenCV would hand it to GDCM, which aborts the process on
  // it (fuzz_plain_image's finding); only PNG, JPEG and TIFF are decoded, each by its own library.
  {
    const auto found = read_bytes("tests/fuzz/corpus/fuzz_plain_image/regression-dicom-gdcm-abort");
    REQUIRE(found.size() > 132);
    write_bytes(dir / "dicom.png", std::vector<char>(found.begin() + 1, found.end()));  // byte 0 picks the harness's name
  }
  expect_refused("dicom", q(dir / "dicom.png") + " --mpp 0.5", 3, "dicom.png", "PNG, JPEG or TIFF");
  // README: tile data corrupt, opens then fails to read. Its one tile is the whole slide (and its
  // overview), so nothing can be scored: an input error naming the tile.
  expect_refused("corrupt-tile", q(kData / "bad" / "corrupt-tile.svs"), 3, "corrupt-tile.svs", "tile");
  expect_refused("bogus-compression", q(kData / "bad" / "bogus-compression.tiff") + " --mpp 0.5", 3,
                 "bogus-compression.tiff", "compression");
  expect_refused("unknown-compression", q(dir / "unknown-compression.tif") + " --mpp 0.5", 3,
                 "unknown-compression.tif", "compression");
}

TEST_CASE("hostile inputs: tiled TIFFs with LZW, Deflate or zstd tiles are scored through OpenSlide, not the fast reader",
          "[hostile][cli]") {
  const auto dir = scratch_dir("hostile-codecs");
  std::vector<std::pair<std::string, std::uint16_t>> codecs = {{"lzw", COMPRESSION_LZW},
                                                               {"deflate", COMPRESSION_ADOBE_DEFLATE}};
  if (TIFFIsCODECConfigured(COMPRESSION_ZSTD)) codecs.emplace_back("zstd", COMPRESSION_ZSTD);
  for (const auto& [name, code] : codecs) {
    const auto slide = dir / (name + ".tif");
    write_tiff(slide, 1536, 1024, code, 256, false);
    const auto report = dir / (name + ".json");
    const auto r = run_cli("score " + q(slide) + " --mpp 0.5 --json " + q(report));
    INFO(name << ": exit " << r.exit_code << ": " << r.err);
    // OpenSlide 3.4 decodes what libtiff decodes; the direct reader refused (not JPEG).
    if (r.exit_code == 0) {
      const auto j = nlohmann::json::parse(slurp(report));
      CHECK(j["slide"]["reader"] == "openslide");
      CHECK(j["tiles"]["failed"] == 0);
    } else {
      // A codec this OpenSlide build lacks: a clear input error, no report.
      CHECK(r.exit_code == 3);
      CHECK(count_of(r.err, '\n') == 1);
      CHECK(r.err.find(slide.filename().string()) != std::string::npos);
      CHECK_FALSE(fs::exists(report));
    }
  }
  // No resolution in the file and no --mpp: a usage error naming the file and the fix.
  expect_refused("no-resolution", q(dir / "lzw.tif"), 2, "lzw.tif", "--mpp");
}

TEST_CASE("hostile inputs: headers whose dimensions overflow are refused quickly without a huge allocation",
          "[hostile][cli][errors]") {
  const auto dir = scratch_dir("hostile-dims");
  write_tiff(dir / "lzw.tif", 512, 512, COMPRESSION_LZW, 256, false);
  write_tiff(dir / "jpeg.tif", 512, 512, COMPRESSION_JPEG, 256, false);
  write_tiff(dir / "strips.tif", 512, 512, COMPRESSION_LZW, 0, false);
  struct Patch {
    const char* name;
    const char* source;
    std::vector<std::pair<std::uint16_t, std::uint32_t>> tags;
  };
  const Patch patches[] = {
      {"lzw-2g.tif", "lzw.tif", {{256, 0x7fffffffu}, {257, 0x7fffffffu}}},
      {"lzw-4g.tif", "lzw.tif", {{256, 0xffffffffu}, {257, 0xffffffffu}}},
      {"lzw-huge-tile.tif", "lzw.tif", {{322, 0x7fff0000u}, {323, 0x7fff0000u}}},
      {"jpeg-2g.tif", "jpeg.tif", {{256, 0x7fffffffu}, {257, 0x7fffffffu}}},
      {"jpeg-wide.tif", "jpeg.tif", {{256, 0x7fffffffu}}},
      {"jpeg-huge-tile.tif", "jpeg.tif", {{322, 0x7fff0000u}, {323, 0x7fff0000u}}},
      {"strips-2g.tif", "strips.tif", {{256, 0x7fffffffu}, {257, 0x7fffffffu}}},
      {"strips-many-rows.tif", "strips.tif", {{257, 0x7fffffffu}, {278, 0x7fffffffu}}},
  };
  for (const auto& p : patches) {
    auto bytes = read_bytes(dir / p.source);
    for (const auto& [tag, value] : p.tags) set_long(bytes, tag, value);
    write_bytes(dir / p.name, bytes);
    const Outputs out(p.name);
    const auto start = std::chrono::steady_clock::now();
    // 3 GiB of address space: plenty for a small slide, far too little for what these headers claim.
    const auto r = run_cli_limited("score " + q(dir / p.name) + " --mpp 0.5 --threads 2" + out.args(), 3L << 20);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(p.name << ": exit " << r.exit_code << " in " << seconds << " s: " << r.err);
    CHECK(r.exit_code == 3);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find(p.name) != std::string::npos);
    CHECK(r.err.find("internal error") == std::string::npos);
    CHECK(r.err.find("memory") == std::string::npos);  // refused on its merits, not by running out
    CHECK(seconds < 20);
    CHECK(files_in(out.dir).empty());
  }
}

TEST_CASE("hostile inputs: a stripped TIFF is a plain image: it needs --mpp, and with it it scores",
          "[hostile][cli]") {
  const auto dir = scratch_dir("hostile-stripped");
  expect_refused("stripped-no-mpp", q(kData / "bad" / "stripped-not-tiled.tif"), 2, "stripped-not-tiled.tif",
                 "--mpp");
  write_tiff(dir / "strips.tif", 1200, 900, COMPRESSION_LZW, 0, false);
  const auto r = run_cli("score " + q(dir / "strips.tif") + " --mpp 0.5 --json " + q(dir / "s.json"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(dir / "s.json"));
  CHECK(j["slide"]["reader"] == "plain-image");
  CHECK(j["tiles"]["failed"] == 0);
}

TEST_CASE("a 16-bit PNG scores as the 8-bit image it was made from", "[hostile][cli]") {
  // libpng would take 16-bit samples as linear light and gamma-encode them (a brighter image,
  // 3+ read as 1+); they are scaled to 8 bits as stored.
  const auto dir = scratch_dir("png16");
  const cv::Mat eight = cv::imread((kData / "images" / "her2-score3.png").string(), cv::IMREAD_COLOR);
  REQUIRE(!eight.empty());
  cv::Mat sixteen;
  eight.convertTo(sixteen, CV_16U, 257.0);
  REQUIRE(cv::imwrite((dir / "sixteen.png").string(), sixteen));
  nlohmann::json j[2];
  for (int k = 0; k < 2; ++k) {
    const auto image = k == 0 ? kData / "images" / "her2-score3.png" : dir / "sixteen.png";
    const auto report = dir / ("r" + std::to_string(k) + ".json");
    const auto r = run_cli("score " + q(image) + " --mpp 0.6 --json " + q(report));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    j[k] = nlohmann::json::parse(slurp(report));
  }
  CHECK(j[1]["score"] == j[0]["score"]);
  CHECK(j[1]["cells"] == j[0]["cells"]);
  CHECK(j[1]["percent"] == j[0]["percent"]);
}

TEST_CASE("hostile options: bad values are exit 2 with one line and no outputs", "[hostile][cli][errors]") {
  const std::string img = q(kData / "images" / "her2-score0.png");
  for (const std::string bad : {"--mpp inf", "--mpp abc", "--mpp ''", "--threads -1", "--threads abc",
                                "--analysis-mpp 0", "--guideline who-2030", "--i0 0"}) {
    expect_refused(bad, img + " --mpp 0.6 " + bad, 2, bad.substr(0, bad.find(' ')), "");
  }
  // An output named twice, or naming the slide itself (even with --force), is refused before work.
  const auto dir = scratch_dir("hostile-same-output");
  const auto same = run_cli("score " + img + " --mpp 0.6 --json " + q(dir / "x.out") + " --geojson " + q(dir / "x.out"));
  CHECK(same.exit_code == 2);
  CHECK(count_of(same.err, '\n') == 1);
  CHECK(same.err.find("x.out") != std::string::npos);
  CHECK(files_in(dir).empty());
  fs::copy_file(kData / "images" / "her2-score0.png", dir / "copy.png");
  const auto self = run_cli("score " + q(dir / "copy.png") + " --mpp 0.6 --json " + q(dir / "copy.png") + " --force");
  CHECK(self.exit_code == 2);
  CHECK(self.err.find("copy.png") != std::string::npos);
  CHECK(read_bytes(dir / "copy.png") == read_bytes(kData / "images" / "her2-score0.png"));
}

TEST_CASE("hostile outputs: unwritable, missing-folder and existing targets exit 4 and leave no output at all",
          "[hostile][cli][errors]") {
  const std::string img = q(kData / "images" / "her2-score0.png") + " --mpp 0.6";
  const auto dir = scratch_dir("hostile-outputs");
  const auto json = dir / "r.json", heat = dir / "h.png", geo = dir / "c.geojson";
  auto outputs = [&](const std::string& j, const std::string& h, const std::string& g) {
    return " --json " + q(j) + " --heatmap " + q(h) + " --geojson " + q(g);
  };
  struct Case {
    const char* label;
    std::string args;
    std::string names;
    const char* reason;
  };
  const Case cases[] = {
      {"json /dev/full", outputs("/dev/full", heat, geo), "/dev/full", "cannot be written"},
      {"heatmap /dev/full", outputs(json, "/dev/full", geo), "/dev/full", "cannot be written"},
      {"geojson /dev/full", outputs(json, heat, "/dev/full"), "/dev/full", "cannot be written"},
      {"json missing folder", outputs((dir / "missing" / "r.json").string(), heat, geo), "missing", "does not exist"},
      {"geojson missing folder", outputs(json, heat, (dir / "missing" / "c.geojson").string()), "missing",
       "does not exist"},
      {"json is a folder", outputs(dir.string(), heat, geo), dir.filename().string(), "directory"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli("score " + img + c.args);
    INFO(c.label << " -> exit " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 4);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find(c.names) != std::string::npos);
    CHECK(r.err.find(c.reason) != std::string::npos);
    CHECK(files_in(dir).empty());
  }
  // An existing heatmap without --force: refused before any work, kept as it was, nothing else written.
  { std::ofstream(heat) << "precious"; }
  const auto r = run_cli("score " + img + outputs(json, heat, geo));
  CHECK(r.exit_code == 4);
  CHECK(count_of(r.err, '\n') == 1);
  CHECK(r.err.find("h.png") != std::string::npos);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(slurp(heat) == "precious");
  CHECK(files_in(dir) == std::vector<std::string>{"h.png"});
}

TEST_CASE("hostile inputs: a tiled slide with no tissue is not evaluable with the reason, exit 0", "[hostile][cli]") {
  const auto dir = scratch_dir("hostile-blank");
  write_tiff(dir / "blank.tif", 3000, 2000, COMPRESSION_JPEG, 256, true);
  const auto r = run_cli("score " + q(dir / "blank.tif") + " --mpp 0.5 --json " + q(dir / "b.json"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto j = nlohmann::json::parse(slurp(dir / "b.json"));
  CHECK(j["slide"]["reader"] == "tiff-jpeg");
  CHECK(j["score"] == "not-evaluable");
  CHECK(j["not_evaluable_reason"] == "no tissue found on the slide");
  CHECK(j["tiles"]["tissue"] == 0);
}

TEST_CASE("hostile inputs: a synthetic slide truncated anywhere is an input error or a partial result, never a crash",
          "[hostile][cli]") {
  const auto slide = synth_slide("truncate", "--width 3072 --height 2048 --mpp 0.5 --seed 41");
  const auto dir = scratch_dir("hostile-truncate");
  const auto bytes = read_bytes(slide);
  std::uint32_t across = 0, tile_px = 0;
  const auto tiles = level0_tiles(slide, &across, &tile_px);
  const auto& last = tiles.back();
  const std::vector<std::pair<std::string, std::size_t>> cuts = {
      {"100-bytes", 100},
      {"mid-ifd0", ifd0(bytes) + 30},
      {"half", bytes.size() / 2},
      {"last-level0-tile", static_cast<std::size_t>(last.offset + last.count / 2)},
      {"last-byte", bytes.size() - 1},
  };
  for (const auto& [name, cut] : cuts) {
    const fs::path p = dir / ("cut-" + name + ".svs");
    write_bytes(p, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    for (const char* reader : {static_cast<const char*>(nullptr), "openslide"}) {
      const Outputs out(name + (reader ? "-os" : ""));
      const auto r = run_cli_with_reader("score " + q(p) + out.args(), reader);
      INFO(name << " (cut at " << cut << " of " << bytes.size() << ", reader " << (reader ? reader : "auto")
                << ") -> exit " << r.exit_code << ": " << r.err);
      CHECK(count_of(r.err, '\n') <= 1);
      CHECK(r.err.find("internal error") == std::string::npos);
      if (r.exit_code == 3) {
        CHECK(r.err.find(p.filename().string()) != std::string::npos);
        CHECK(files_in(out.dir).empty());
      } else if (r.exit_code == 5) {
        // Some tiles lost: the report says how many, with a score or the reason there is none.
        CHECK(r.err.find(p.filename().string()) != std::string::npos);
        const auto j = nlohmann::json::parse(slurp(out.dir / "r.json"));
        CHECK(j["tiles"]["failed"].get<int>() > 0);
        if (j["score"] == "not-evaluable") CHECK(j["not_evaluable_reason"].get<std::string>().find("could not be read") != std::string::npos);
      } else {
        // Only what scoring never reads is gone (the thumbnail, label or macro images).
        CHECK(r.exit_code == 0);
        CHECK((name == "last-byte" || name == "half"));
        CHECK(nlohmann::json::parse(slurp(out.dir / "r.json"))["tiles"]["failed"] == 0);
      }
    }
  }
}

TEST_CASE("tile faults: one damaged tile of many is counted and the slide still scored (exit 5), both readers",
          "[hostile][cli][tile-faults]") {
  // 20x, so analysis tiles are 1024 level-0 pixels (4 x 4 JPEG tiles): 6 x 4 analysis tiles.
  const auto slide = synth_slide("faults", "--width 6144 --height 4096 --mpp 0.5 --seed 43 --mix 0.2,0.2,0.3,0.3");
  const auto dir = scratch_dir("hostile-one-fault");
  std::uint32_t across = 0, tile_px = 0;
  const auto tiles = level0_tiles(slide, &across, &tile_px);
  REQUIRE(tile_px == 256);
  auto bytes = read_bytes(slide);
  // JPEG tile (9, 5): inside analysis tile (2, 1), more than a halo away from its edges.
  damage_tile(bytes, tiles.at(5 * across + 9));
  const auto damaged = dir / "one-bad-tile.svs";
  write_bytes(damaged, bytes);

  const auto clean = run_cli("score " + q(slide) + " --json " + q(dir / "clean.json"));
  REQUIRE(clean.exit_code == 0);
  const auto reference = nlohmann::json::parse(slurp(dir / "clean.json"));
  REQUIRE(reference["tiles"]["tissue"].get<int>() >= 20);  // so that one tile is at most 5 %

  for (const char* reader : {static_cast<const char*>(nullptr), "openslide"}) {
    const std::string tag = reader ? reader : "fast";
    const auto report = dir / ("one-" + tag + ".json");
    const auto r = run_cli_with_reader("score " + q(damaged) + " --json " + q(report), reader);
    INFO(tag << " -> exit " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 5);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find("one-bad-tile.svs") != std::string::npos);
    CHECK(r.err.find("1 of ") != std::string::npos);
    REQUIRE(fs::exists(report));
    const auto j = nlohmann::json::parse(slurp(report));
    CHECK(j["slide"]["reader"] == (reader ? "openslide" : "tiff-jpeg"));
    CHECK(j["tiles"]["failed"] == 1);
    CHECK(j["tiles"]["analysed"].get<int>() == reference["tiles"]["tissue"].get<int>() - 1);
    CHECK(j["score"] == reference["score"]);
    CHECK_FALSE(j.contains("not_evaluable_reason"));
  }
}

TEST_CASE("tile faults: on a slide with one level the overview reads round a damaged tile, which is counted (exit 5)",
          "[hostile][cli][tile-faults]") {
  // cmu-1-small-region.svs has no smaller level: its overview is read from level 0, so a damaged
  // tile used to fail the overview and with it the whole slide (exit 3, no report).
  const fs::path original = kData / "slides/cmu-1-small-region.svs";
  const auto dir = scratch_dir("hostile-one-level-fault");
  std::uint32_t across = 0, tile_px = 0;
  const auto tiles = level0_tiles(original, &across, &tile_px);
  REQUIRE(tiles.size() > 40);
  auto bytes = read_bytes(original);
  damage_tile(bytes, tiles.at(tiles.size() / 2 + across / 2));
  const auto damaged = dir / "one-level-bad-tile.svs";
  write_bytes(damaged, bytes);
  const auto report = dir / "r.json";
  const auto r = run_cli("score " + q(damaged) + " --json " + q(report));
  INFO("exit " << r.exit_code << ": " << r.err);
  CHECK(r.exit_code == 5);
  CHECK(count_of(r.err, '\n') == 1);
  CHECK(r.err.find("one-level-bad-tile.svs") != std::string::npos);
  REQUIRE(fs::exists(report));
  const auto j = nlohmann::json::parse(slurp(report));
  CHECK(j["tiles"]["failed"].get<int>() >= 1);
  CHECK(j["tiles"]["failed"].get<int>() < j["tiles"]["tissue"].get<int>());
  bool warned = false;
  for (const auto& w : j["warnings"]) warned = warned || w.get<std::string>().find("overview could not be read") != std::string::npos;
  CHECK(warned);
}

TEST_CASE("tile faults: most tiles damaged makes the slide not evaluable, naming the failed tiles (exit 5), both readers",
          "[hostile][cli][tile-faults]") {
  const auto slide = synth_slide("faults", "--width 6144 --height 4096 --mpp 0.5 --seed 43 --mix 0.2,0.2,0.3,0.3");
  const auto dir = scratch_dir("hostile-many-faults");
  std::uint32_t across = 0, tile_px = 0;
  const auto tiles = level0_tiles(slide, &across, &tile_px);
  auto bytes = read_bytes(slide);
  // Every second JPEG tile of level 0: every analysis tile meets several.
  for (std::size_t k = 0; k < tiles.size(); k += 2) damage_tile(bytes, tiles[k]);
  const auto damaged = dir / "many-bad-tiles.svs";
  write_bytes(damaged, bytes);
  for (const char* reader : {static_cast<const char*>(nullptr), "openslide"}) {
    const std::string tag = reader ? reader : "fast";
    const auto report = dir / ("many-" + tag + ".json");
    const auto r = run_cli_with_reader("score " + q(damaged) + " --json " + q(report), reader);
    INFO(tag << " -> exit " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 5);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find("many-bad-tiles.svs") != std::string::npos);
    CHECK(r.err.find("not evaluable") != std::string::npos);
    REQUIRE(fs::exists(report));
    const auto j = nlohmann::json::parse(slurp(report));
    CHECK(j["score"] == "not-evaluable");
    const int failed = j["tiles"]["failed"].get<int>();
    CHECK(failed == j["tiles"]["tissue"].get<int>());
    CHECK(failed > 0);
    const std::string reason = j["not_evaluable_reason"];
    CHECK(reason.find(std::to_string(failed) + " of " + std::to_string(failed)) != std::string::npos);
    CHECK(reason.find("could not be read") != std::string::npos);
  }
}

// ------------------------------------------------------------------------------------- signals

namespace {

// Waits for the child; returns its exit status as the shell would show it (128 + signal).
int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status) + 1000;  // +1000: killed, not exited
}

}  // namespace

TEST_CASE("signals: Ctrl-C or SIGTERM during score exits 130 with one line and leaves no outputs, and a re-run works",
          "[hostile][cli][signals]") {
  // Large enough to take a few seconds on one thread.
  const auto slide = synth_slide("signals", "--width 8192 --height 6144 --mpp 0.5 --seed 47");
  const auto out = scratch_dir("hostile-signals-out");
  const std::vector<std::string> score{"score", slide.string(), "--threads", "1", "--json", (out / "r.json").string(),
                                       "--heatmap", (out / "h.png").string(), "--geojson", (out / "c.geojson").string()};
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    const fs::path log = out.parent_path() / ("ihcscore-test-signals-" + std::to_string(::getpid()) + ".log");
    const pid_t pid = spawn_cli(score, log);
    // Once its handlers are in place (a loaded machine can take long to start a process), a
    // moment into the scoring.
    REQUIRE(wait_for_signal_handlers(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(pid, sig);
    const int code = wait_exit(pid);
    const std::string err = slurp(log);
    fs::remove(log);
    INFO("signal " << sig << " -> exit " << code << ": " << err);
    CHECK(code == 130);
    CHECK(count_of(err, '\n') == 1);
    CHECK(err.find("interrupted") != std::string::npos);
    CHECK(files_in(out).empty());
  }
  // Stopped while the outputs are being written: the temporaries (and any output already renamed)
  // go too. Caught only if this process sees a temporary in time; otherwise the run completes.
  {
    const fs::path log = out.parent_path() / ("ihcscore-test-signals2-" + std::to_string(::getpid()) + ".log");
    const pid_t pid = spawn_cli(score, log);
    bool seen = false;
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 60000 && !seen; ++i) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      for (const auto& name : files_in(out)) seen |= name.rfind(".ihcscore-", 0) == 0;
      if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
      ::kill(pid, SIGTERM);
      const int code = wait_exit(pid);
      const std::string err = slurp(log);
      INFO("SIGTERM while writing (temporary seen: " << seen << ") -> exit " << code << ": " << err);
      if (code == 130) {
        CHECK(count_of(err, '\n') == 1);
        CHECK(files_in(out).empty());
      } else {
        CHECK(code == 0);  // it finished just before the signal
      }
    }
    fs::remove(log);
    for (const auto& name : files_in(out)) fs::remove(out / name);
  }
  // A re-run produces the outputs.
  std::string args;
  for (std::size_t i = 0; i < score.size(); ++i) args += q(score[i]) + " ";
  const auto r = run_cli(args);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto names = files_in(out);
  INFO(joined(names));
  CHECK(names.size() == 3);
  CHECK(nlohmann::json::parse(slurp(out / "r.json"))["tiles"]["failed"] == 0);
  CHECK(nlohmann::json::parse(slurp(out / "c.geojson"))["type"] == "FeatureCollection");
}

TEST_CASE("signals: Ctrl-C during score --report leaves no report folder and no temporary", "[hostile][cli][signals][report]") {
  const auto slide = synth_slide("signals-report", "--width 8192 --height 6144 --mpp 0.5 --seed 48");
  const auto out = scratch_dir("hostile-signals-report");
  const std::vector<std::string> score{"score", slide.string(), "--threads", "1", "--report", (out / "rep").string()};
  const fs::path log = out.parent_path() / ("ihcscore-test-signals-report-" + std::to_string(::getpid()) + ".log");
  const pid_t pid = spawn_cli(score, log);
  REQUIRE(wait_for_signal_handlers(pid));
  // Into the scoring, when the temporary folder already holds tiles.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ::kill(pid, SIGINT);
  const int code = wait_exit(pid);
  const std::string err = slurp(log);
  fs::remove(log);
  INFO("exit " << code << ": " << err);
  CHECK(code == 130);
  CHECK(files_in(out).empty());
}

TEST_CASE("limits: a write past the file-size limit is exit 4 with one line and leaves nothing", "[hostile][cli][signals]") {
  const auto slide = synth_slide("fsize", "--width 3000 --height 2400 --seed 49");
  const auto out = scratch_dir("hostile-fsize");
  // 40 blocks (20-40 KB, as the shell counts them): the report fits, the GeoJSON of ~2,000 cells does not.
  const auto r = run_cli_under_ulimit("-f 40", "score '" + slide.string() + "' --json '" + (out / "r.json").string() +
                                                  "' --geojson '" + (out / "c.geojson").string() + "'");
  INFO(r.err);
  CHECK(r.exit_code == 4);
  CHECK(count_of(r.err, '\n') == 1);
  CHECK(r.err.find("c.geojson") != std::string::npos);
  CHECK(files_in(out).empty());
}

TEST_CASE("empty option values are usage errors, never taken as not given", "[hostile][cli]") {
  const auto slide = synth_slide("empty-values", "--width 1200 --height 1000 --seed 50");
  const auto out = scratch_dir("hostile-empty");
  const std::string s = "'" + slide.string() + "'";
  for (const std::string& args : std::vector<std::string>{
           "score " + s + " --roi ''", "score " + s + " --json ''", "score " + s + " --config ''",
        "score " + s + " --geojson ''", "score " + s + " --report ''", "score ''", "markup " + s + " --region 0,0,100,100 --out ''",
        "batch '" + out.string() + "' --out ''", "validate --truth '' --results x.csv"}) {
    const auto r = run_cli(args);
    INFO(args << " -> " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find("empty value") != std::string::npos);
  }
  CHECK(files_in(out).empty());
}

TEST_CASE("resolutions no scanner delivers are refused, and --mpp overrides a bad one in the file", "[hostile][cli]") {
  const auto slide = synth_slide("implausible-mpp", "--width 1200 --height 1000 --seed 51");
  const auto dir = scratch_dir("hostile-mpp");
  auto bytes = read_bytes(slide);
  const std::string good = "MPP = 0.25";
  for (const std::string bad : {"MPP = 1e-9", "MPP = 9e99"}) {
    auto patched = bytes;
    int replaced = 0;
    for (auto it = std::search(patched.begin(), patched.end(), good.begin(), good.end()); it != patched.end();
         it = std::search(it, patched.end(), good.begin(), good.end())) {
      std::copy(bad.begin(), bad.end(), it);
      ++replaced;
    }
    REQUIRE(replaced > 0);
    const auto file = dir / "bad.svs";
    write_bytes(file, patched);
    const auto r = run_cli("score '" + file.string() + "'");
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("not a scan resolution") != std::string::npos);
    CHECK(run_cli("score '" + file.string() + "' --mpp 0.25").exit_code == 0);
  }
  for (const std::string args : {"--mpp 1e-9", "--mpp 1e300", "--analysis-mpp 1000", "--analysis-mpp 0.01"}) {
    const auto r = run_cli("score '" + slide.string() + "' " + args);
    INFO(args << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(count_of(r.err, '\n') == 1);
  }
}

TEST_CASE("config values outside their documented range are usage errors naming the key and the range",
          "[hostile][cli][config]") {
  const auto slide = synth_slide("config-ranges", "--width 1200 --height 1000 --seed 52");
  const auto dir = scratch_dir("hostile-config-ranges");
  for (const std::string body :
       {R"({"cells": {"cytoplasm_gap_um": 1e6}})", R"({"cells": {"ridge_um": 1e6}})", R"({"cells": {"rays": 1e6}})",
        R"({"cells": {"max_cell_radius_um": 1e6}})", R"({"cells": {"complete_fraction": 5}})",
        R"({"counterstain_residual_weight": 1e9})", R"({"quality": {"block_um": 1}})",
        R"({"cells": {"faint_od": -0.1}})"}) {
    const auto file = dir / "c.json";
    { std::ofstream(file) << body; }
    const auto r = run_cli("score '" + slide.string() + "' --config '" + file.string() + "'");
    INFO(body << " -> " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 3);  // a fault in the --config file, as an unknown key or a wrong type
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find("must be between") != std::string::npos);
  }
}

TEST_CASE("images without colour, or with colours that are not haematoxylin and DAB, are not evaluable with the reason",
          "[hostile][cli][stain]") {
  const auto dir = scratch_dir("hostile-colourless");
  const cv::Mat bgr = cv::imread((kData / "images/her2-score3.png").string(), cv::IMREAD_COLOR);
  REQUIRE(!bgr.empty());
  cv::Mat grey, swapped(bgr.size(), bgr.type());
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::mixChannels(std::vector<cv::Mat>{bgr}, std::vector<cv::Mat>{swapped}, std::vector<int>{0, 0, 1, 2, 2, 1});
  REQUIRE(cv::imwrite((dir / "grey.png").string(), grey));
  REQUIRE(cv::imwrite((dir / "swapped.png").string(), swapped));
  for (const auto& [name, reason] : std::vector<std::pair<std::string, std::string>>{
           {"grey.png", "no colour"}, {"swapped.png", "not haematoxylin and DAB"}}) {
    const auto r = run_cli("score " + q(dir / name) + " --mpp 0.6 --json " + q(dir / (name + ".json")));
    INFO(name << " -> " << r.exit_code << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(slurp(dir / (name + ".json")));
    CHECK(j["score"] == "not-evaluable");
    CHECK(j["not_evaluable_reason"].get<std::string>().find(reason) != std::string::npos);
  }
}

TEST_CASE("a pyramid that contradicts itself: a level larger than level 0 is ignored, said, and the score is level 0's",
          "[hostile][cli][pyramid]") {
  const auto dir = scratch_dir("hostile-pyramid");
  const char* aperio = "Aperio Image Library v12.0.0 |AppMag = 20|MPP = 0.5";
  write_tiff(dir / "intact.svs", 2048, 1536, COMPRESSION_JPEG, 256, false, std::nullopt, aperio);
  write_tiff(dir / "intact.svs", 512, 384, COMPRESSION_JPEG, 256, false, std::nullopt, "level 1", true);
  write_tiff(dir / "lying.svs", 2048, 1536, COMPRESSION_JPEG, 256, false, std::nullopt, aperio);
  // Level 1 claims twice level 0's size (and holds only glass): read from it, the slide has no tissue.
  write_tiff(dir / "lying.svs", 4096, 3072, COMPRESSION_JPEG, 256, true, std::nullopt, "level 1", true);
  // OpenSlide refuses such a file itself; its reason (a GLib warning) is in the one line.
  const auto os = run_cli_with_reader("score " + q(dir / "lying.svs"), "openslide");
  CHECK(os.exit_code == 3);
  CHECK(count_of(os.err, '\n') == 1);
  CHECK(os.err.find("not correctly ordered") != std::string::npos);
  for (const char* reader : {static_cast<const char*>(nullptr)}) {
    const auto good = run_cli_with_reader("score " + q(dir / "intact.svs") + " --json " + q(dir / "i.json") + " --force", reader);
    const auto bad = run_cli_with_reader("score " + q(dir / "lying.svs") + " --json " + q(dir / "l.json") + " --force", reader);
    INFO((reader ? reader : "direct") << ": intact -> " << good.exit_code << " " << good.err << "; lying -> "
                                      << bad.exit_code << " " << bad.err);
    REQUIRE(good.exit_code == 0);
    REQUIRE(bad.exit_code == 0);
    CHECK(good.err.empty());
    CHECK(count_of(bad.err, '\n') == 1);
    CHECK(bad.err.find("lying.svs: the pyramid contradicts itself: level 1 (4096 x 3072 px) is larger than level 0") !=
          std::string::npos);
    const auto i = nlohmann::json::parse(slurp(dir / "i.json"));
    const auto l = nlohmann::json::parse(slurp(dir / "l.json"));
    CHECK(l["tiles"]["tissue"].get<int>() > 0);
    CHECK(l["tiles"]["tissue"] == i["tiles"]["tissue"]);
    CHECK(l["cells"] == i["cells"]);
    CHECK(l["score"] == i["score"]);
    REQUIRE(l.contains("warnings"));
    CHECK(l["warnings"][0].get<std::string>().find("reading from level 0 only") != std::string::npos);
  }
}

TEST_CASE("output names: a legal long name is written, a dangling link is kept without --force, a file as folder is named",
          "[hostile][cli][errors]") {
  const std::string img = q(kData / "images" / "her2-score0.png") + " --mpp 0.6";
  const auto dir = scratch_dir("hostile-names");
  // 250 bytes: legal on every Linux file system; a temporary suffix must not push it past 255.
  const std::string long_name = std::string(245, 'r') + ".json";
  const auto ok = run_cli("score " + img + " --json " + q(dir / long_name));
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(fs::is_regular_file(dir / long_name));
  const auto report = run_cli("score " + img + " --report " + q(dir / std::string(250, 'd')));
  INFO(report.err);
  CHECK(report.exit_code == 0);
  CHECK(fs::is_directory(dir / std::string(250, 'd')));
  // A symbolic link to a file that does not exist (yet): the user's, kept without --force.
  fs::create_symlink(dir / "elsewhere.json", dir / "link.json");
  const auto link = run_cli("score " + img + " --json " + q(dir / "link.json"));
  CHECK(link.exit_code == 4);
  CHECK(count_of(link.err, '\n') == 1);
  CHECK(link.err.find("symbolic link") != std::string::npos);
  CHECK(link.err.find("--force") != std::string::npos);
  CHECK(fs::is_symlink(fs::symlink_status(dir / "link.json")));
  CHECK(run_cli("score " + img + " --json " + q(dir / "link.json") + " --force").exit_code == 0);
  // A regular file where the folder should be.
  { std::ofstream(dir / "afile") << "x"; }
  const auto file_as_folder = run_cli("score " + img + " --json " + q(dir / "afile" / "r.json"));
  CHECK(file_as_folder.exit_code == 4);
  CHECK(file_as_folder.err.find("afile is a file, not a folder") != std::string::npos);
  for (const auto& name : files_in(dir)) CHECK(name.rfind(".ihcscore-", 0) != 0);
}

TEST_CASE("OpenSlide never sees a TIFF whose tile runs past the end of the file (its allocation would abort)",
          "[hostile][cli][openslide]") {
  const auto dir = scratch_dir("hostile-bigtiff-count");
  // One-tile BigTIFF (so the byte count is stored inline) whose tile claims 2^40 bytes.
  const auto file = dir / "huge-count.svs";
  {
    TIFF* t = TIFFOpen(file.c_str(), "w8");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, "Aperio Image Library v12.0.0 |MPP = 0.5");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 256);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 256);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
    TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, 256);
    TIFFSetField(t, TIFFTAG_TILELENGTH, 256);
    std::vector<unsigned char> tile(256 * 256 * 3, 200);
    REQUIRE(TIFFWriteTile(t, tile.data(), 0, 0, 0, 0) >= 0);
    TIFFClose(t);
  }
  auto bytes = read_bytes(file);
  // BigTIFF: the first IFD's offset at byte 8, its entry count (8 bytes), then 20-byte entries.
  const auto u64 = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes.at(at + static_cast<std::size_t>(i)));
    return v;
  };
  const std::size_t ifd = u64(8);
  bool patched = false;
  for (std::size_t i = 0, n = u64(ifd); i < n; ++i) {
    const std::size_t e = ifd + 8 + 20 * i;
    if (get_u16(bytes, e) != TIFFTAG_TILEBYTECOUNTS) continue;
    put_u16(bytes, e + 2, 16);  // LONG8
    const std::uint64_t huge = std::uint64_t{1} << 40;
    for (int b = 0; b < 8; ++b) bytes.at(e + 12 + static_cast<std::size_t>(b)) = static_cast<char>((huge >> (8 * b)) & 0xff);
    patched = true;
  }
  REQUIRE(patched);
  write_bytes(file, bytes);
  for (const char* reader : {static_cast<const char*>(nullptr), "openslide"}) {
    const auto r = run_cli_with_reader("score " + q(file) + " --json " + q(dir / "r.json"), reader);
    INFO((reader ? reader : "direct") << " -> " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 3);
    CHECK(count_of(r.err, '\n') == 1);
    CHECK(r.err.find("huge-count.svs") != std::string::npos);
    CHECK(!fs::exists(dir / "r.json"));
  }
}

TEST_CASE("regions of interest: one outside the slide is said so, a crossing outline reports the area it covers",
          "[hostile][cli][roi]") {
  const std::string img = q(kData / "images" / "her2-score3.png") + " --mpp 0.6";  // 431 x 431 px
  const auto dir = scratch_dir("hostile-roi");
  auto roi = [&](const std::string& name, const std::string& ring) {
    std::ofstream(dir / name) << R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[)" << ring << "]}}";
    return dir / name;
  };
  const auto outside = roi("outside.geojson", "[[5000,5000],[6000,5000],[6000,6000],[5000,6000],[5000,5000]]");
  const auto r = run_cli("score " + img + " --roi " + q(outside) + " --json " + q(dir / "o.json"));
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(count_of(r.err, '\n') == 1);
  CHECK(r.err.find("outside.geojson") != std::string::npos);
  CHECK(r.err.find("lies outside the slide") != std::string::npos);
  CHECK(!fs::exists(dir / "o.json"));
  // A bow tie: two triangles of 100 x 200 / 2 = 10,000 px² each; its shoelace area is 0.
  const auto bow = roi("bow.geojson", "[[100,100],[300,300],[300,100],[100,300],[100,100]]");
  const auto b = run_cli("score " + img + " --roi " + q(bow) + " --json " + q(dir / "b.json"));
  INFO(b.err);
  REQUIRE(b.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(dir / "b.json"));
  const double px_mm2 = 0.6 * 0.6 / 1e6;
  CHECK(j["roi"]["area_mm2"].get<double>() == Approx(20000 * px_mm2).epsilon(0.03));
  CHECK(j["warnings"].dump().find("cross themselves or overlap") != std::string::npos);
  // Half outside: the area on the slide is what is reported.
  const auto half = roi("half.geojson", "[[331,0],[531,0],[531,100],[331,100],[331,0]]");
  const auto h = run_cli("score " + img + " --roi " + q(half) + " --json " + q(dir / "h.json"));
  REQUIRE(h.exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(dir / "h.json"))["roi"]["area_mm2"].get<double>() ==
        Approx(100 * 100 * px_mm2).epsilon(0.03));
}

TEST_CASE("a thread count beyond the cores runs on the cores, says so in the report, and prints nothing", "[hostile][cli]") {
  const auto dir = scratch_dir("hostile-threads");
  const auto r = run_cli("score " + q(kData / "images" / "her2-score0.png") + " --mpp 0.6 --threads 1024 --json " +
                         q(dir / "r.json"));
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto j = nlohmann::json::parse(slurp(dir / "r.json"));
  CHECK(j["threads"].get<int>() >= 1);
  CHECK(j["threads"].get<int>() < 1024);
}

TEST_CASE("paths that are not UTF-8 are reported escaped, never a crash", "[hostile][cli][utf8]") {
  const auto dir = scratch_dir("hostile-utf8");
  const std::string name = "bad\xff" "name.png";  // a byte that is not UTF-8, legal in a Linux file name
  fs::copy_file(kData / "images" / "her2-score0.png", dir / name);
  const auto r = run_cli("score " + q(dir / name) + " --mpp 0.6 --json " + q(dir / "r.json") + " --report " +
                         q(dir / "report"));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(dir / "r.json"));  // valid JSON, valid UTF-8
  CHECK(j["slide"]["path"].get<std::string>().find("bad\\xFFname.png") != std::string::npos);
  CHECK(fs::is_regular_file(dir / "report" / "index.html"));
  CHECK(r.out.find("bad\\xFFname.png") != std::string::npos);
  const auto missing = run_cli("score " + q(dir / ("gone\xfe" ".png")) + " --mpp 0.6");
  CHECK(missing.exit_code == 3);
  CHECK(missing.err.find("gone\\xFE.png: no such file") != std::string::npos);
  const auto batch = run_cli("batch " + q(dir) + " --mpp 0.6 --out " + q(dir / "out"));
  INFO(batch.err);
  CHECK(batch.exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(dir / "out" / "bad\xff" "name.json"))["slide_id"] == "bad\\xFFname");
}
