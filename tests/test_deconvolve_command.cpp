// `ihcscore deconvolve`: the float TIFFs it writes against an independent, textbook
// implementation of colour deconvolution (Ruifrok & Johnston 2001) written here: own 3x3 inverse
// by cofactors in double precision, own log10 per pixel, input pixels read through OpenCV and
// OpenSlide directly (not through the engine's readers). Plus its refusals and exit codes.
#include <catch2/catch.hpp>

#include <openslide.h>
#include <tiffio.h>

#include <array>
#include <cmath>
#include <fstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "cli_runner.hpp"

using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
namespace fs = std::filesystem;

namespace {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

const std::string kColon = "../shared/data/images/ihc-fhl2-colon.png";
const std::string kCmu = "../shared/data/slides/cmu-1-small-region.svs";

Vec3 unit(const Vec3& v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return {v[0] / n, v[1] / n, v[2] / n};
}

// Inverse by the adjugate (transposed cofactors) over the determinant.
Mat3 inverse(const Mat3& m) {
  Mat3 cof{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const int r0 = (i + 1) % 3, r1 = (i + 2) % 3, c0 = (j + 1) % 3, c1 = (j + 2) % 3;
      // Cyclic index order gives the sign (-1)^(i+j) for free.
      cof[i][j] = m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    }
  const double det = m[0][0] * cof[0][0] + m[0][1] * cof[0][1] + m[0][2] * cof[0][2];
  Mat3 inv{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) inv[i][j] = cof[j][i] / det;
  return inv;
}

// Haematoxylin and DAB concentration of every pixel (RGB, row-major): rows of the stain matrix are
// the unit H and DAB vectors and their normalised cross product; OD_c = -log10(max(I_c, 1) / I0),
// and zero for pixels brighter than I0 (the engine's convention: no stain is negative stain);
// concentrations = OD * inverse(M).
struct Expected {
  std::vector<double> h, dab;
};
Expected textbook(const std::vector<std::array<int, 3>>& rgb, Vec3 hv, Vec3 dv, double i0) {
  hv = unit(hv);
  dv = unit(dv);
  const Vec3 r = unit({hv[1] * dv[2] - hv[2] * dv[1], hv[2] * dv[0] - hv[0] * dv[2], hv[0] * dv[1] - hv[1] * dv[0]});
  const Mat3 inv = inverse({hv, dv, r});
  Expected e;
  for (const auto& p : rgb) {
    Vec3 od{};
    for (int c = 0; c < 3; ++c) od[c] = std::max(0.0, -std::log10(std::max(p[c], 1) / i0));
    e.h.push_back(od[0] * inv[0][0] + od[1] * inv[1][0] + od[2] * inv[2][0]);
    e.dab.push_back(od[0] * inv[0][1] + od[1] * inv[1][1] + od[2] * inv[2][1]);
  }
  return e;
}

std::vector<std::array<int, 3>> png_pixels(const std::string& path, int x, int y, int w, int h) {
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  REQUIRE(!bgr.empty());
  std::vector<std::array<int, 3>> out;
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx) {
      const auto& p = bgr.at<cv::Vec3b>(yy, xx);
      out.push_back({p[2], p[1], p[0]});
    }
  return out;
}

std::vector<std::array<int, 3>> openslide_pixels(const std::string& path, int x, int y, int w, int h) {
  openslide_t* osr = openslide_open(path.c_str());
  REQUIRE(osr != nullptr);
  std::vector<std::uint32_t> argb(static_cast<std::size_t>(w) * h);
  openslide_read_region(osr, argb.data(), x, y, 0, w, h);
  REQUIRE(openslide_get_error(osr) == nullptr);
  openslide_close(osr);
  std::vector<std::array<int, 3>> out;
  for (const std::uint32_t p : argb) {
    REQUIRE((p >> 24) == 255u);  // opaque: not premultiplied
    out.push_back({int((p >> 16) & 255u), int((p >> 8) & 255u), int(p & 255u)});
  }
  return out;
}

struct FloatTiff {
  std::uint32_t width = 0, height = 0;
  std::uint16_t bits = 0, format = 0, samples = 0;
  float xres = 0;
  std::vector<float> pixels;
};
FloatTiff read_float_tiff(const fs::path& p) {
  FloatTiff t;
  TIFF* tif = TIFFOpen(p.c_str(), "r");
  REQUIRE(tif != nullptr);
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &t.width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &t.height);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &t.bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &t.format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &t.samples);
  TIFFGetField(tif, TIFFTAG_XRESOLUTION, &t.xres);
  if (t.bits == 32 && t.samples == 1) {
    t.pixels.resize(static_cast<std::size_t>(t.width) * t.height);
    for (std::uint32_t y = 0; y < t.height; ++y)
      REQUIRE(TIFFReadScanline(tif, t.pixels.data() + static_cast<std::size_t>(y) * t.width, y, 0) == 1);
  }
  TIFFClose(tif);
  return t;
}

double max_abs_diff(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double m = 0;
  for (std::size_t i = 0; i < got.size(); ++i) m = std::max(m, std::abs(static_cast<double>(got[i]) - want[i]));
  return m;
}

// Runs the command and checks both outputs against the textbook values.
void check_outputs(const fs::path& prefix, std::uint32_t w, std::uint32_t h, const Expected& want) {
  const auto ht = read_float_tiff(prefix.string() + "_hematoxylin.tif");
  const auto dt = read_float_tiff(prefix.string() + "_dab.tif");
  for (const auto* t : {&ht, &dt}) {
    CHECK(t->width == w);
    CHECK(t->height == h);
    CHECK(t->bits == 32);
    CHECK(t->samples == 1);
    CHECK(t->format == SAMPLEFORMAT_IEEEFP);
  }
  const double dh = max_abs_diff(ht.pixels, want.h), dd = max_abs_diff(dt.pixels, want.dab);
  CAPTURE(dh, dd);
  CHECK(dh < 1e-4);
  CHECK(dd < 1e-4);
}

std::size_t files_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

const Vec3 kDefaultH{0.650, 0.704, 0.286}, kDefaultDab{0.268, 0.570, 0.776};

}  // namespace

TEST_CASE("deconvolve writes float TIFFs of a whole PNG that match the textbook formula", "[deconvolve][cli]") {
  const auto dir = scratch_dir("deconv-png");
  const auto prefix = dir / "colon";
  const auto r = run_cli("deconvolve " + kColon + " --mpp 0.5 --out '" + prefix.string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_outputs(prefix, 512, 512, textbook(png_pixels(kColon, 0, 0, 512, 512), kDefaultH, kDefaultDab, 255.0));
  CHECK(files_in(dir) == 2);  // no temporaries left
  // Resolution recorded: 0.5 µm/px = 20000 px/cm.
  CHECK(read_float_tiff(prefix.string() + "_dab.tif").xres == Approx(20000.0f));
  CHECK(r.out.find("colon_dab.tif") != std::string::npos);
}

TEST_CASE("deconvolve of an SVS region matches the textbook formula on OpenSlide's pixels", "[deconvolve][cli][real]") {
  const auto dir = scratch_dir("deconv-svs");
  const auto prefix = dir / "cmu";
  const auto r = run_cli("deconvolve " + kCmu + " --region 1000,1200,300,200 --out '" + prefix.string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_outputs(prefix, 300, 200, textbook(openslide_pixels(kCmu, 1000, 1200, 300, 200), kDefaultH, kDefaultDab, 255.0));
}

TEST_CASE("deconvolve with a stains file and a region uses the file's vectors and background", "[deconvolve][cli]") {
  const auto dir = scratch_dir("deconv-file");
  const auto stains = dir / "lab.stains";
  {
    std::ofstream f(stains);
    f << "hematoxylin=0.60,0.75,0.30;dab=0.30,0.55,0.80;i0=240\n";
  }
  const auto prefix = dir / "part";
  const auto r = run_cli("deconvolve " + kColon + " --region 100,50,64,32 --stains '" + stains.string() + "' --out '" +
                         prefix.string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("file:") != std::string::npos);
  check_outputs(prefix, 64, 32, textbook(png_pixels(kColon, 100, 50, 64, 32), {0.60, 0.75, 0.30}, {0.30, 0.55, 0.80}, 240.0));

  // --i0 given explicitly wins over the file's.
  const auto prefix2 = dir / "part2";
  const auto r2 = run_cli("deconvolve " + kColon + " --region 100,50,64,32 --i0 250 --stains '" + stains.string() +
                          "' --out '" + prefix2.string() + "'");
  REQUIRE(r2.exit_code == 0);
  check_outputs(prefix2, 64, 32, textbook(png_pixels(kColon, 100, 50, 64, 32), {0.60, 0.75, 0.30}, {0.30, 0.55, 0.80}, 250.0));
}

TEST_CASE("deconvolve --stains estimate runs on a real DAB image and says where the vectors came from", "[deconvolve][cli][real]") {
  const auto dir = scratch_dir("deconv-estimate");
  const auto r = run_cli("deconvolve " + kColon + " --mpp 0.5 --stains estimate --out '" + (dir / "e").string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("(estimated)") != std::string::npos);
  // On H&E (no DAB) it warns and keeps the defaults.
  const auto h = run_cli("deconvolve " + kCmu + " --region 0,0,64,64 --stains estimate --out '" + (dir / "he").string() + "'");
  CHECK(h.exit_code == 0);
  CHECK(h.err.find("warning") != std::string::npos);
  CHECK(h.out.find("(default)") != std::string::npos);
}

TEST_CASE("deconvolve refuses to replace existing outputs without --force, and writes both or neither", "[deconvolve][cli][errors]") {
  const auto dir = scratch_dir("deconv-force");
  const auto prefix = dir / "x";
  const std::string cmd = "deconvolve " + kColon + " --region 0,0,16,16 --out '" + prefix.string() + "'";
  REQUIRE(run_cli(cmd).exit_code == 0);
  const auto before = slurp(prefix.string() + "_hematoxylin.tif");
  const auto again = run_cli(cmd);
  CHECK(again.exit_code == 4);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(again.err.find("x_hematoxylin.tif") != std::string::npos);
  CHECK(run_cli(cmd + " --force").exit_code == 0);
  CHECK(slurp(prefix.string() + "_hematoxylin.tif") == before);

  // Only the DAB half exists: refused, and the haematoxylin half is not written either.
  fs::remove(prefix.string() + "_hematoxylin.tif");
  CHECK(run_cli(cmd).exit_code == 4);
  CHECK_FALSE(fs::exists(prefix.string() + "_hematoxylin.tif"));
  CHECK(files_in(dir) == 1);
  // A missing output folder.
  CHECK(run_cli("deconvolve " + kColon + " --out '" + (dir / "no" / "such").string() + "'").exit_code == 4);
}

TEST_CASE("deconvolve: a bad --region or --level is a usage error (exit 2) and writes nothing", "[deconvolve][cli][errors]") {
  const auto dir = scratch_dir("deconv-bad");
  const std::string out = " --out '" + (dir / "b").string() + "'";
  for (const char* region : {"--region=-5,0,10,10", "--region 0,-1,10,10", "--region 2200,0,100,100",
                             "--region 0,2900,10,100", "--region 2220,0,1,1", "--region 0,0,0,10",
                             "--region 0,0,10,-3", "--region 1,2,3", "--region a,b,c,d", "--region 1,2,3,4,5",
                             "--level 1", "--level -1"}) {
    INFO(region);
    const auto r = run_cli("deconvolve " + kCmu + " " + region + out);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
  }
  const auto r = run_cli("deconvolve " + kCmu + " --region 2200,0,100,100" + out);
  CHECK(r.err.find("2220 x 2967") != std::string::npos);  // says how big the slide is
  CHECK(files_in(dir) == 0);
  CHECK(run_cli("deconvolve ../shared/data/no-such.svs" + out).exit_code == 3);
  CHECK(run_cli("deconvolve " + kColon).exit_code == 2);  // --out is required
  CHECK(run_cli("deconvolve " + kColon + " --stains " + (dir / "missing.json").string() + out).exit_code == 3);
  CHECK(files_in(dir) == 0);
}
