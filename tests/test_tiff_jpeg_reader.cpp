// The direct TIFF + TurboJPEG reader ("tiff-jpeg"): chosen for JPEG Aperio / generic tiled TIFFs,
// pixel-for-pixel against OpenSlide, scaled decoding, fallbacks to the other readers, and hostile
// files (truncated, patched offsets, absurd dimensions), which must end in SlideError, never in a
// crash or a multi-gigabyte allocation.
//
// Measured tolerances (libjpeg-turbo 2.1, OpenSlide 3.4.1, cmu-1-small-region.svs):
//  - full-resolution reads: identical to OpenSlide: 0 differing channel values over the whole
//    level and over every region of the sweep (both decode with libjpeg-turbo's accurate integer
//    IDCT and fancy upsampling, and the Aperio RGB colour space is honoured). Asserted: max |diff|
//    <= 2 and <= 0.1 % of values differing, so that a build against another libjpeg still passes
//    while a colour-space, offset or edge bug fails.
//  - read_region_scaled(2/4/8) by DCT scaling vs INTER_AREA of a full read: mean |diff| per
//    channel 0.06 - 0.25 over 512 x 512 regions (max single value 11 at scale 2, on tissue edges).
//    Asserted: mean < 1.0.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli_runner.hpp"
#include "jpeg_encode.hpp"
#include "ihc/synth/synth.hpp"
#include "ihc/tiling/slide.hpp"


namespace fs = std::filesystem;
using ihc::tiling::OpenOptions;
using ihc::tiling::open_slide;
using ihc::tiling::Slide;
using ihc::test::read_bytes;
using ihc::test::write_bytes;
using ihc::tiling::SlideError;

namespace {

const fs::path kData = "../shared/data";
const fs::path kCmu = kData / "slides" / "cmu-1-small-region.svs";  // Aperio, JPEG/RGB, 240x240 tiles
constexpr std::int64_t kCmuW = 2220, kCmuH = 2967;

struct Diff {
  double max = 0;
  std::int64_t differing = 0;  // channel values
  std::int64_t total = 0;
};

Diff compare(const cv::Mat& a, const cv::Mat& b) {
  REQUIRE(a.size() == b.size());
  REQUIRE(a.type() == CV_8UC3);
  REQUIRE(b.type() == CV_8UC3);
  cv::Mat d;
  cv::absdiff(a, b, d);
  Diff out;
  cv::minMaxLoc(d.reshape(1), nullptr, &out.max);
  out.differing = cv::countNonZero(d.reshape(1));
  out.total = static_cast<std::int64_t>(d.total()) * 3;
  return out;
}


// A scratch folder of its own under the system temp folder, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ihc-fast-reader-test-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Little-endian classic TIFF: where IFD0's entry for `tag` lies (byte offset of the 12-byte entry).
std::size_t ifd0_entry(const std::vector<char>& f, std::uint16_t tag) {
  const auto u16 = [&](std::size_t at) {
    return static_cast<std::uint16_t>(static_cast<unsigned char>(f.at(at)) |
                                      (static_cast<unsigned char>(f.at(at + 1)) << 8));
  };
  const auto u32 = [&](std::size_t at) { return std::uint32_t{u16(at)} | (std::uint32_t{u16(at + 2)} << 16); };
  REQUIRE(f.at(0) == 'I');
  REQUIRE(u16(2) == 42);
  const std::size_t ifd = u32(4);
  const std::size_t n = u16(ifd);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t entry = ifd + 2 + 12 * i;
    if (u16(entry) == tag) return entry;
  }
  FAIL("tag " << tag << " not in IFD0");
  return 0;
}
void put_u16(std::vector<char>& f, std::size_t at, std::uint16_t v) {
  f.at(at) = static_cast<char>(v & 0xff);
  f.at(at + 1) = static_cast<char>(v >> 8);
}
void put_u32(std::vector<char>& f, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) f.at(at + static_cast<std::size_t>(i)) = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get_u32(const std::vector<char>& f, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(f.at(at + static_cast<std::size_t>(i)));
  return v;
}

// What happened to a hostile file. Found out in a child process (this test binary again, running
// only the hidden probe test below) whose address space is limited to 1 GiB more than it started
// with: a crash or a huge allocation cannot take the test binary down with it. posix_spawn, not
// fork: the parent may have TBB or OpenSlide threads whose locks a forked child would inherit.
enum class Outcome { ReadFine = 0, SlideErrorOnOpen = 10, SlideErrorOnRead = 11, OtherException = 12, OutOfMemory = 13 };

constexpr const char* kProbeVariable = "IHC_FAST_READER_PROBE";

Outcome open_and_read_all_isolated(const fs::path& file) {
  std::string variable = kProbeVariable;
  variable += '=';
  variable += fs::absolute(file).string();
  std::vector<char*> envp;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, kProbeVariable, std::strlen(kProbeVariable)) != 0) envp.push_back(*e);
  envp.push_back(variable.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", tag = "[fast-reader-child]";
  char* argv[] = {exe.data(), tag.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child " << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                         : "exit " + std::to_string(WEXITSTATUS(status))));
  REQUIRE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  REQUIRE((code == 0 || (code >= 10 && code <= 13)));
  return static_cast<Outcome>(code);
}

bool is_slide_error(Outcome o) { return o == Outcome::SlideErrorOnOpen || o == Outcome::SlideErrorOnRead; }

// A minimal little-endian BigTIFF: one tiled JPEG directory whose ImageWidth is a LONG8.
std::vector<char> bigtiff_with_width(std::uint64_t width) {
  struct Entry {
    std::uint16_t tag, type;
    std::uint64_t count, value;
  };
  const std::string desc = "Aperio Image Library hostile|MPP = 0.5|AppMag = 20";
  std::vector<Entry> entries = {
      {256, 16, 1, width},  // ImageWidth, LONG8
      {257, 4, 1, 240},     // ImageLength
      {258, 3, 3, 0},       // BitsPerSample 8,8,8 (inline, written below)
      {259, 3, 1, 7},       // Compression JPEG
      {262, 3, 1, 2},       // Photometric RGB
      {270, 2, desc.size() + 1, 0},  // ImageDescription (offset patched below)
      {277, 3, 1, 3},       // SamplesPerPixel
      {284, 3, 1, 1},       // PlanarConfig
      {322, 3, 1, 240},     // TileWidth
      {323, 3, 1, 240},     // TileLength
      {324, 16, 1, 16},     // TileOffsets
      {325, 16, 1, 100},    // TileByteCounts
  };
  std::vector<char> f(16, 0);
  const char header[] = {'I', 'I', 43, 0, 8, 0, 0, 0};
  std::memcpy(f.data(), header, sizeof header);
  const auto put64 = [&f](std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) f.at(at + static_cast<std::size_t>(i)) = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  f.resize(16 + 100, 0);  // fake tile bytes at 16
  const std::size_t desc_at = f.size();
  f.insert(f.end(), desc.begin(), desc.end());
  f.push_back(0);
  while (f.size() % 8) f.push_back(0);
  const std::size_t ifd = f.size();
  put64(8, ifd);
  f.resize(ifd + 8 + entries.size() * 20 + 8, 0);
  put64(ifd, entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::size_t at = ifd + 8 + 20 * i;
    Entry e = entries[i];
    if (e.tag == 270) e.value = desc_at;
    f[at] = static_cast<char>(e.tag & 0xff);
    f[at + 1] = static_cast<char>(e.tag >> 8);
    f[at + 2] = static_cast<char>(e.type & 0xff);
    f[at + 3] = static_cast<char>(e.type >> 8);
    put64(at + 4, e.count);
    put64(at + 12, e.value);
  }
  // BitsPerSample: three SHORTs inline = 8,8,8.
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (entries[i].tag == 258) {
      const std::size_t at = ifd + 8 + 20 * i + 12;
      put64(at, 0);
      f[at] = 8;
      f[at + 2] = 8;
      f[at + 4] = 8;
    }
  return f;
}

}  // namespace

// The child side of open_and_read_all_isolated: hidden ("[.]"), and a no-op unless that variable
// names a file. It opens the file, reads every level in 512-pixel regions (at most 8192 x 8192 of
// each) and exits with the outcome, before Catch reports anything.
TEST_CASE("hostile-file probe run in a child process by the hostile-file tests", "[.][fast-reader-child]") {
  const char* file = std::getenv(kProbeVariable);
  if (!file) return;
  long pages = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) statm >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{1} << 30);
  const rlimit rl{limit, limit};
  ::setrlimit(RLIMIT_AS, &rl);
  Outcome outcome = Outcome::ReadFine;
  try {
    std::unique_ptr<Slide> slide;
    try {
      slide = open_slide(file);
    } catch (const SlideError&) {
      std::_Exit(static_cast<int>(Outcome::SlideErrorOnOpen));
    }
    try {
      for (int level = 0; level < static_cast<int>(slide->levels().size()); ++level) {
        const auto& l = slide->levels()[static_cast<std::size_t>(level)];
        const std::int64_t w = std::min<std::int64_t>(l.width, 8192), h = std::min<std::int64_t>(l.height, 8192);
        for (std::int64_t y = 0; y < h; y += 512)
          for (std::int64_t x = 0; x < w; x += 512)
            (void)slide->read_region(level, static_cast<std::int64_t>(static_cast<double>(x) * l.downsample),
                                     static_cast<std::int64_t>(static_cast<double>(y) * l.downsample), 512, 512);
      }
    } catch (const SlideError&) {
      outcome = Outcome::SlideErrorOnRead;
    }
  } catch (const std::bad_alloc&) {
    outcome = Outcome::OutOfMemory;
  } catch (...) {
    outcome = Outcome::OtherException;
  }
  std::_Exit(static_cast<int>(outcome));
}

TEST_CASE("fast reader serves JPEG Aperio slides and describes them as OpenSlide does", "[tiling][fast-reader]") {
  const auto fast = open_slide(kCmu);
  const auto os = open_slide(kCmu, OpenOptions{.force_openslide = true});
  REQUIRE(fast->reader() == "tiff-jpeg");
  REQUIRE(os->reader() == "openslide");
  CHECK(fast->vendor() == "aperio");
  REQUIRE(fast->levels().size() == os->levels().size());
  for (std::size_t i = 0; i < fast->levels().size(); ++i) {
    CHECK(fast->levels()[i].width == os->levels()[i].width);
    CHECK(fast->levels()[i].height == os->levels()[i].height);
    CHECK(fast->levels()[i].downsample == Approx(os->levels()[i].downsample));
    // Aperio's JPEG tiles are RGB, one colour per pixel (their SOF says 1 x 1 for each component).
    CHECK(fast->levels()[i].chroma_x == 1);
    CHECK(os->levels()[i].chroma_y == 1);
  }
  CHECK(fast->levels()[0].width == kCmuW);
  CHECK(fast->levels()[0].height == kCmuH);
  REQUIRE(fast->mpp().has_value());
  CHECK(*fast->mpp() == Approx(0.499));
  REQUIRE(fast->objective_power().has_value());
  CHECK(*fast->objective_power() == Approx(20));

  for (const char* key : {"openslide.vendor", "openslide.mpp-x", "openslide.mpp-y", "openslide.objective-power",
                          "aperio.MPP", "aperio.AppMag", "tiff.ImageDescription"}) {
    INFO(key);
    REQUIRE(fast->properties().count(key) == 1);
  }
  // Every property OpenSlide reports, bar its content hash, is reported with the same value.
  for (const auto& [key, value] : os->properties()) {
    if (key == "openslide.quickhash-1") continue;
    INFO(key);
    REQUIRE(fast->properties().count(key) == 1);
    CHECK(fast->properties().at(key) == value);
  }
}

TEST_CASE("fast reader matches OpenSlide pixels across tile edges", "[tiling][fast-reader]") {
  const auto fast = open_slide(kCmu);
  const auto os = open_slide(kCmu, OpenOptions{.force_openslide = true});
  REQUIRE(fast->reader() == "tiff-jpeg");

  SECTION("the whole level at once") {
    const Diff d = compare(fast->read_region(0, 0, 0, kCmuW, kCmuH), os->read_region(0, 0, 0, kCmuW, kCmuH));
    CHECK(d.max <= 2);
    CHECK(static_cast<double>(d.differing) <= 0.001 * static_cast<double>(d.total));
  }

  SECTION("origins and sizes around tile boundaries, the image's edges and beyond") {
    // Tiles are 240 x 240; the last column and row of tiles are partial.
    const std::vector<std::int64_t> xs = {0, 1, 239, 240, 241, 479, 480, kCmuW - 241, kCmuW - 240, kCmuW - 1,
                                          kCmuW, kCmuW + 7, -1, -241};
    const std::vector<std::int64_t> ys = {0, 1, 239, 240, 241, 479, 480, kCmuH - 241, kCmuH - 240, kCmuH - 1,
                                          kCmuH, kCmuH + 7, -1, -241};
    const std::vector<int> sizes = {1, 239, 240, 241, 511, 512};
    Diff all;
    for (const std::int64_t x : xs)
      for (const std::int64_t y : ys)
        for (const int w : sizes)
          for (const int h : sizes) {
            // All sizes on the diagonal, and every size against 240 and 241 on the other axis.
            if (w != h && w != 240 && h != 240 && w != 241 && h != 241) continue;
            const Diff d = compare(fast->read_region(0, x, y, w, h), os->read_region(0, x, y, w, h));
            INFO("region " << x << "," << y << " " << w << "x" << h);
            REQUIRE(d.max <= 2);
            all.max = std::max(all.max, d.max);
            all.differing += d.differing;
            all.total += d.total;
          }
    INFO("differing channel values " << all.differing << " of " << all.total << ", max " << all.max);
    CHECK(static_cast<double>(all.differing) <= 0.001 * static_cast<double>(all.total));
  }

  SECTION("regions wholly outside the image are white") {
    for (const auto& [x, y] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {-600, -600}, {kCmuW, 0}, {0, kCmuH}, {kCmuW + 5000, kCmuH + 5000}, {std::int64_t{1} << 40, 0}}) {
      const cv::Mat m = fast->read_region(0, x, y, 300, 200);
      REQUIRE(m.rows == 200);
      REQUIRE(m.cols == 300);
      CHECK(cv::countNonZero(m.reshape(1) != 255) == 0);
    }
  }
}

TEST_CASE("fast reader decodes partial edge tiles like OpenSlide", "[tiling][fast-reader]") {
  // A 16 x 16 image stored in one 64 x 64 JPEG tile: only the top-left corner is image.
  const fs::path tiny = kData / "slides" / "tiny-16px.svs";
  const auto fast = open_slide(tiny);
  const auto os = open_slide(tiny, OpenOptions{.force_openslide = true});
  REQUIRE(fast->reader() == "tiff-jpeg");
  REQUIRE(fast->levels().size() == 1);
  CHECK(fast->levels()[0].width == 16);
  CHECK(fast->levels()[0].height == 16);
  for (const auto& [x, y, w, h] : std::vector<std::array<int, 4>>{
           {0, 0, 16, 16}, {0, 0, 64, 64}, {-3, -5, 40, 30}, {15, 15, 2, 2}, {8, 0, 8, 16}}) {
    INFO("region " << x << "," << y << " " << w << "x" << h);
    const Diff d = compare(fast->read_region(0, x, y, w, h), os->read_region(0, x, y, w, h));
    CHECK(d.max <= 2);
  }
  const cv::Mat beyond = fast->read_region(0, 16, 0, 48, 64);
  CHECK(cv::countNonZero(beyond.reshape(1) != 255) == 0);
}

TEST_CASE("scaled reads decode at reduced size close to an area average of full reads", "[tiling][fast-reader]") {
  const auto fast = open_slide(kCmu);
  REQUIRE(fast->reader() == "tiff-jpeg");
  for (const int scale : {2, 4, 8}) {
    double worst_mean = 0;
    for (std::int64_t y = 0; y < kCmuH; y += 720)
      for (std::int64_t x = 0; x < kCmuW; x += 720) {
        const cv::Mat scaled = fast->read_region_scaled(0, x, y, 512, 512, scale);
        REQUIRE(scaled.cols == 512 / scale);
        REQUIRE(scaled.rows == 512 / scale);
        cv::Mat reference;
        cv::resize(fast->read_region(0, x, y, 512, 512), reference, scaled.size(), 0, 0, cv::INTER_AREA);
        cv::Mat d;
        cv::absdiff(scaled, reference, d);
        worst_mean = std::max(worst_mean, cv::mean(d.reshape(1))[0]);
      }
    INFO("scale " << scale << ": worst mean |diff| " << worst_mean);
    CHECK(worst_mean < 1.0);
  }

  SECTION("regions crossing the right and bottom edges are white beyond the image") {
    // 2220 / 4 = 555 scaled columns, 2967 / 4 = 741.75: the last row is part image.
    const cv::Mat m = fast->read_region_scaled(0, 2000, 2800, 480, 480, 4);
    REQUIRE(m.cols == 120);
    REQUIRE(m.rows == 120);
    const cv::Mat outside_right = m(cv::Rect(55, 0, 65, 41));   // x >= 2220
    const cv::Mat outside_below = m(cv::Rect(0, 42, 120, 78));  // y >= 2968
    CHECK(cv::countNonZero(outside_right.reshape(1) != 255) == 0);
    CHECK(cv::countNonZero(outside_below.reshape(1) != 255) == 0);
  }

  SECTION("origins off the scale grid and odd sizes still give w/scale x h/scale pixels") {
    const cv::Mat a = fast->read_region_scaled(0, 1, 3, 255, 101, 2);
    CHECK(a.cols == 127);
    CHECK(a.rows == 50);
    const cv::Mat b = fast->read_region_scaled(0, 0, 0, 3, 3, 8);  // smaller than one block
    CHECK(b.cols == 1);
    CHECK(b.rows == 1);
  }
}

TEST_CASE("fast reader gives the same pixels when many threads read at once", "[tiling][fast-reader]") {
  const auto fast = open_slide(kCmu);
  REQUIRE(fast->reader() == "tiff-jpeg");
  // Regions straddling tile edges, read once on this thread as the reference.
  std::vector<std::array<std::int64_t, 3>> regions;  // x, y, scale
  for (std::int64_t y = -100; y < kCmuH; y += 333)
    for (std::int64_t x = -100; x < kCmuW; x += 277) regions.push_back({x, y, (x / 277 + y / 333) % 2 ? 2 : 1});
  std::vector<cv::Mat> reference;
  for (const auto& [x, y, scale] : regions)
    reference.push_back(fast->read_region_scaled(0, x, y, 300, 300, static_cast<int>(scale)));

  // The threads share one reader that keeps the tiles neighbouring requests share (its cache).
  fast->set_request_overlap(120);
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (std::size_t i = 0; i < regions.size(); ++i) {
          const std::size_t k = (i * 7 + static_cast<std::size_t>(t) * 13 + static_cast<std::size_t>(round)) % regions.size();
          const auto& [x, y, scale] = regions[k];
          try {
            const cv::Mat m = fast->read_region_scaled(0, x, y, 300, 300, static_cast<int>(scale));
            if (m.size() != reference[k].size() || cv::norm(m, reference[k], cv::NORM_INF) != 0) ++mismatches;
          } catch (...) {
            ++errors;
          }
        }
    });
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  CHECK(mismatches == 0);
}

TEST_CASE("a tile kept for the neighbouring region gives the pixels of a fresh decode, at every scale",
          "[tiling][fast-reader]") {
  // Regions that overlap by less than a tile (as analysis tiles overlap by their halo) share the
  // tiles on their common border. Without an overlap hint, full-size tiles needed in part are
  // kept; with one (set_request_overlap), every tile in the shared band at every scale, under a
  // key that holds the scale: a scaled read must never pick up a tile of another scale.
  for (const std::int64_t overlap : {0, 80}) {
    const auto shared = open_slide(kCmu);
    REQUIRE(shared->reader() == "tiff-jpeg");
    shared->set_request_overlap(overlap);
    for (const int scale : {1, 2, 4, 8, 1}) {
      // ... including requests across the image's right and bottom edges.
      for (const auto& [ax, ay, bx, by] : std::vector<std::array<std::int64_t, 4>>{
               {0, 0, 400, 0}, {0, 0, 0, 400}, {480, 480, 880, 880}, {16, 32, 416, 32}, {0, 0, 480, 0},
               {1600, 2400, 2000, 2400}, {1600, 2400, 1600, 2800}}) {
        (void)shared->read_region_scaled(0, ax, ay, 480, 480, scale);
        const cv::Mat second = shared->read_region_scaled(0, bx, by, 480, 480, scale);
        const cv::Mat fresh = open_slide(kCmu)->read_region_scaled(0, bx, by, 480, 480, scale);
        INFO("overlap " << overlap << ", scale " << scale << ", region " << bx << "," << by << " after " << ax << ","
                        << ay);
        REQUIRE(second.size() == fresh.size());
        CHECK(cv::norm(second, fresh, cv::NORM_INF) == 0);
      }
    }
  }
}

TEST_CASE("generic tiled JPEG TIFFs are served by the fast reader as generic-tiff", "[tiling][fast-reader]") {
  // cmu-1-small-region.svs with its ImageDescription no longer starting with "Aperio": OpenSlide
  // calls it generic-tiff (first directory tiled), and so does the fast reader.
  TempDir tmp;
  std::vector<char> bytes = read_bytes(kCmu);
  const std::size_t desc = get_u32(bytes, ifd0_entry(bytes, 270) + 8);
  REQUIRE(std::string(bytes.data() + desc, 6) == "Aperio");
  bytes[desc] = 'X';
  const fs::path p = tmp.path / "generic-jpeg.tif";
  write_bytes(p, bytes);
  const auto fast = open_slide(p);
  const auto os = open_slide(p, OpenOptions{.force_openslide = true});
  REQUIRE(fast->reader() == "tiff-jpeg");
  CHECK(fast->vendor() == "generic-tiff");
  CHECK(os->vendor() == "generic-tiff");
  CHECK(fast->properties().at("openslide.vendor") == "generic-tiff");
  CHECK_FALSE(fast->mpp().has_value());  // no XResolution in this file
  CHECK_FALSE(fast->objective_power().has_value());
  REQUIRE(fast->levels().size() == 1);
  const Diff d = compare(fast->read_region(0, -7, -7, kCmuW + 14, kCmuH + 14), os->read_region(0, -7, -7, kCmuW + 14, kCmuH + 14));
  CHECK(d.max <= 2);
  CHECK(static_cast<double>(d.differing) <= 0.001 * static_cast<double>(d.total));
}

TEST_CASE("a plain JPEG says how it stores its colour, and PNG or deflate TIFF keep it per pixel", "[tiling]") {
  const auto dir = ihc::test::scratch_dir("plain-chroma");
  cv::Mat rgb = cv::imread((kData / "images" / "her2-score0.png").string());
  REQUIRE(!rgb.empty());
  cv::cvtColor(rgb, rgb, cv::COLOR_BGR2RGB);
  ihc::test::write_jpeg(dir / "s420.jpg", rgb, TJSAMP_420);
  ihc::test::write_jpeg(dir / "s422.jpg", rgb, TJSAMP_422);
  ihc::test::write_jpeg(dir / "s444.jpg", rgb, TJSAMP_444);
  const auto chroma = [](const fs::path& p) {
    const auto slide = open_slide(p);
    const auto& l = slide->levels().front();
    return std::pair{l.chroma_x, l.chroma_y};
  };
  CHECK(chroma(dir / "s420.jpg") == std::pair{2, 2});
  CHECK(chroma(dir / "s422.jpg") == std::pair{2, 1});
  CHECK(chroma(dir / "s444.jpg") == std::pair{1, 1});
  CHECK(chroma(kData / "images" / "her2-score0.png") == std::pair{1, 1});
  CHECK(chroma(kData / "slides" / "boxes-generic.tiff") == std::pair{1, 1});
}

TEST_CASE("formats the fast reader does not decode fall back to OpenSlide or OpenCV", "[tiling][fast-reader]") {
  CHECK(open_slide(kData / "slides" / "tcga-jp2k-small.svs")->reader() == "openslide");  // JPEG 2000 Aperio
  CHECK(open_slide(kData / "slides" / "boxes-generic.tiff")->reader() == "openslide");   // deflate tiles
  CHECK(open_slide(kData / "bad" / "stripped-not-tiled.tif")->reader() == "plain-image");
  CHECK(open_slide(kData / "slides" / "tiny-16px.svs")->reader() == "tiff-jpeg");  // JPEG Aperio, one tile
  CHECK(open_slide(kCmu, OpenOptions{.allow_fast_reader = false})->reader() == "openslide");
}

TEST_CASE("a damaged JPEG tile throws SlideError naming the tile", "[tiling][fast-reader]") {
  const auto slide = open_slide(kData / "bad" / "corrupt-tile.svs");
  REQUIRE(slide->reader() == "tiff-jpeg");
  try {
    (void)slide->read_region(0, 0, 0, 16, 16);
    FAIL("reading the damaged tile did not throw");
  } catch (const SlideError& e) {
    CHECK(e.kind() == SlideError::Kind::Corrupt);
    CHECK_THAT(e.what(), Catch::Contains("tile 0,0 of level 0"));
  }
  // Outside the damaged tile there is nothing to decode, so nothing to fail.
  CHECK_NOTHROW(slide->read_region(0, 100, 100, 10, 10));
}

TEST_CASE("hostile copies of a slide end in SlideError, never a crash or a huge allocation", "[tiling][fast-reader]") {
  TempDir tmp;
  const std::vector<char> original = read_bytes(kCmu);
  const auto size = original.size();

  SECTION("truncated files") {
    for (const std::size_t cut : {std::size_t{100}, size / 2, size * 99 / 100}) {
      const fs::path p = tmp.path / ("truncated-" + std::to_string(cut) + ".svs");
      write_bytes(p, std::vector<char>(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(cut)));
      INFO("cut at " << cut << " of " << size);
      const Outcome o = open_and_read_all_isolated(p);
      // At 99 % only the macro image's directory is lost; the level's tiles are all there.
      if (cut == size * 99 / 100)
        CHECK((o == Outcome::ReadFine || is_slide_error(o)));
      else
        CHECK(is_slide_error(o));
    }
  }

  SECTION("a tile offset or byte count pointing beyond the end of the file is refused on open") {
    const std::size_t offsets = get_u32(original, ifd0_entry(original, 324) + 8);
    const std::size_t counts = get_u32(original, ifd0_entry(original, 325) + 8);
    std::vector<char> bad_offset = original;
    put_u32(bad_offset, offsets + 4 * 17, static_cast<std::uint32_t>(size + 1000));
    std::vector<char> bad_count = original;
    put_u32(bad_count, counts + 4 * 42, 0x7fffffffu);
    for (const auto& [name, bytes] : {std::pair{"offset-beyond-eof.svs", bad_offset}, {"count-beyond-eof.svs", bad_count}}) {
      const fs::path p = tmp.path / name;
      write_bytes(p, bytes);
      INFO(name);
      CHECK(open_and_read_all_isolated(p) == Outcome::SlideErrorOnOpen);
      try {
        (void)open_slide(p);
        FAIL("opened");
      } catch (const SlideError& e) {
        CHECK(e.kind() == SlideError::Kind::Corrupt);
      }
    }
  }

  SECTION("a tile offset pointing at other bytes of the file fails when that tile is read") {
    std::vector<char> bytes = original;
    const std::size_t offsets = get_u32(bytes, ifd0_entry(bytes, 324) + 8);
    put_u32(bytes, offsets + 4 * 12, 0);  // tile 2,1 now "starts" at the TIFF header
    const fs::path p = tmp.path / "offset-into-header.svs";
    write_bytes(p, bytes);
    const auto slide = open_slide(p);
    REQUIRE(slide->reader() == "tiff-jpeg");
    CHECK_NOTHROW(slide->read_region(0, 0, 0, 240, 240));
    CHECK_THROWS_AS(slide->read_region(0, 2 * 240 + 10, 240 + 10, 20, 20), SlideError);
    CHECK(open_and_read_all_isolated(p) == Outcome::SlideErrorOnRead);
  }

  SECTION("a tile cut short fails when read, as it does in OpenSlide") {
    // libjpeg would fill the missing data in with a warning; OpenSlide 3.4.1 turns JPEG warnings
    // into errors, and so does this reader.
    std::vector<char> bytes = original;
    const std::size_t counts = get_u32(bytes, ifd0_entry(bytes, 325) + 8);
    const std::size_t tile = 2 * 10 + 5;  // tile 5,2 (10 tiles across)
    put_u32(bytes, counts + 4 * tile, get_u32(bytes, counts + 4 * tile) / 2);
    const fs::path p = tmp.path / "short-tile.svs";
    write_bytes(p, bytes);
    const auto fast = open_slide(p);
    const auto os = open_slide(p, OpenOptions{.force_openslide = true});
    REQUIRE(fast->reader() == "tiff-jpeg");
    CHECK_THROWS_AS(os->read_region(0, 5 * 240, 2 * 240, 240, 240), SlideError);
    try {
      (void)fast->read_region(0, 5 * 240, 2 * 240, 240, 240);
      FAIL("reading the short tile did not throw");
    } catch (const SlideError& e) {
      CHECK(e.kind() == SlideError::Kind::Corrupt);
      CHECK_THAT(e.what(), Catch::Contains("tile 5,2 of level 0"));
    }
    // The failure does not poison this thread's decoder: the next tile decodes exactly.
    const Diff d = compare(fast->read_region(0, 4 * 240, 2 * 240, 240, 240), os->read_region(0, 4 * 240, 2 * 240, 240, 240));
    CHECK(d.max <= 2);
  }

  SECTION("image widths beyond 2^31 are refused before anything is allocated") {
    const auto with_width = [&](std::uint32_t width) {
      std::vector<char> bytes = original;
      const std::size_t entry = ifd0_entry(bytes, 256);
      put_u16(bytes, entry + 2, 4);  // SHORT -> LONG
      put_u32(bytes, entry + 8, width);
      return bytes;
    };
    // 2^31 + 16: libtiff reads the directory (116 M tiles, arrays deferred); this reader refuses.
    const fs::path big = tmp.path / "width-2g.svs";
    write_bytes(big, with_width((1u << 31) + 16));
    CHECK(open_and_read_all_isolated(big) == Outcome::SlideErrorOnOpen);
    try {
      (void)open_slide(big);
      FAIL("opened");
    } catch (const SlideError& e) {
      CHECK(e.kind() == SlideError::Kind::TooLarge);
    }
    // 2^32 - 1: libtiff's tile count overflows and it refuses the directory; so does every reader.
    const fs::path huge = tmp.path / "width-4g.svs";
    write_bytes(huge, with_width(0xffffffffu));
    CHECK(open_and_read_all_isolated(huge) == Outcome::SlideErrorOnOpen);
  }

  SECTION("a BigTIFF whose image width claims 2^40 is refused") {
    const fs::path p = tmp.path / "width-2e40.svs";
    write_bytes(p, bigtiff_with_width(std::uint64_t{1} << 40));
    CHECK(open_and_read_all_isolated(p) == Outcome::SlideErrorOnOpen);
  }

  SECTION("tiles claiming an absurd size are refused") {
    std::vector<char> bytes = original;
    put_u32(bytes, ifd0_entry(bytes, 322) + 8, 65520);  // TileWidth
    put_u32(bytes, ifd0_entry(bytes, 323) + 8, 65520);  // TileLength
    const fs::path p = tmp.path / "huge-tiles.svs";
    write_bytes(p, bytes);
    CHECK(is_slide_error(open_and_read_all_isolated(p)));
  }
}

TEST_CASE("fast reader matches OpenSlide on a synthetic YCbCr pyramid, every level, across 256 px tile edges",
          "[tiling][fast-reader]") {
  // The project's generator writes libtiff YCbCr JPEG tiles with shared JPEGTables, as scanners do.
  const auto dir = fs::temp_directory_path() / ("ihc-fast-reader-synth-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ihc::synth::SynthOptions o;
  o.width = 5000;
  o.height = 3000;
  o.seed = 13;
  ihc::synth::write_synthetic_slide(dir / "y.svs", o);
  const auto fast = open_slide(dir / "y.svs");
  const auto os = open_slide(dir / "y.svs", OpenOptions{.force_openslide = true});
  REQUIRE(fast->reader() == "tiff-jpeg");
  REQUIRE(fast->levels().size() == os->levels().size());
  REQUIRE(fast->levels().size() >= 2);
  // YCbCr 4:2:0 at every level, as the TIFF's YCbCrSubsampling tag says: both readers tell.
  for (std::size_t i = 0; i < fast->levels().size(); ++i) {
    CHECK(fast->levels()[i].chroma_x == 2);
    CHECK(fast->levels()[i].chroma_y == 2);
    CHECK(os->levels()[i].chroma_x == 2);
    CHECK(os->levels()[i].chroma_y == 2);
  }
  Diff all;
  for (const std::int64_t x : {0, 1, 255, 256, 257, 511, 512, 4999 - 256})
    for (const int w : {1, 255, 256, 257, 511, 512}) {
      const Diff d = compare(fast->read_region(0, x, x / 2, w, w), os->read_region(0, x, x / 2, w, w));
      INFO("level 0 region " << x << "," << x / 2 << " " << w << "x" << w);
      REQUIRE(d.max <= 2);
      all.differing += d.differing;
      all.total += d.total;
    }
  CHECK(static_cast<double>(all.differing) <= 0.001 * static_cast<double>(all.total));
  // Level 1 (downsample 4): the same pixels at a level origin that is a multiple of 4.
  const Diff l1 = compare(fast->read_region(1, 1024, 512, 300, 200), os->read_region(1, 1024, 512, 300, 200));
  CHECK(l1.max <= 2);
  fs::remove_all(dir);
}
