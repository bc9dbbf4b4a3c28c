// `ihcscore synth` and its parts: the Aperio pyramid writer, the renderer, the truth.
#include <catch2/catch.hpp>

#include <openslide.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "cli_runner.hpp"
#include "ihc/synth/synth.hpp"
#include "ihc/tiling/pyramid_writer.hpp"

using namespace ihc;
namespace fs = std::filesystem;

namespace {

ihc::synth::SynthOptions small_options(std::uint64_t seed = 1) {
  ihc::synth::SynthOptions o;
  o.width = 2000;
  o.height = 1500;
  o.seed = seed;
  return o;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct OpenSlideHandle {
  openslide_t* osr;
  explicit OpenSlideHandle(const fs::path& p) : osr(openslide_open(p.c_str())) {}
  ~OpenSlideHandle() {
    if (osr) openslide_close(osr);
  }
  std::string prop(const char* name) const {
    const char* v = openslide_get_property_value(osr, name);
    return v ? v : "";
  }
  // RGB of level-0 region.
  cv::Mat read(std::int64_t x, std::int64_t y, int w, int h) const {
    std::vector<std::uint32_t> argb(static_cast<std::size_t>(w) * h);
    openslide_read_region(osr, argb.data(), x, y, 0, w, h);
    cv::Mat rgb(h, w, CV_8UC3);
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c) {
        const std::uint32_t p = argb[static_cast<std::size_t>(r) * w + c];
        rgb.at<cv::Vec3b>(r, c) = cv::Vec3b(static_cast<std::uint8_t>(p >> 16), static_cast<std::uint8_t>(p >> 8),
                                            static_cast<std::uint8_t>(p));
      }
    return rgb;
  }
};

// Colour deconvolution with the default stain vectors and I0 = 240: DAB concentration per pixel.
cv::Mat dab_concentration(const cv::Mat& rgb) {
  cv::Vec3d h(0.650, 0.704, 0.286), d(0.268, 0.570, 0.776);
  h = cv::normalize(h);
  d = cv::normalize(d);
  const cv::Vec3d r = cv::normalize(h.cross(d));
  const cv::Matx33d m(h[0], d[0], r[0], h[1], d[1], r[1], h[2], d[2], r[2]);
  const cv::Matx33d inv = m.inv();
  cv::Mat out(rgb.size(), CV_64F);
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x) {
      const auto p = rgb.at<cv::Vec3b>(y, x);
      cv::Vec3d od;
      for (int c = 0; c < 3; ++c) od[c] = -std::log10(std::max(1.0, static_cast<double>(p[c])) / 240.0);
      out.at<double>(y, x) = (inv * od)[1];
    }
  return out;
}

}  // namespace

TEST_CASE("synth writes an Aperio slide OpenSlide opens with the requested size and mpp", "[synth]") {
  const auto dir = test::scratch_dir("synth-aperio");
  const fs::path path = dir / "s.svs";
  auto o = small_options();
  o.width = 5000;  // > 4096: at least two levels below level 0
  o.height = 1200;
  const auto truth = ihc::synth::write_synthetic_slide(path, o);

  const OpenSlideHandle s(path);
  REQUIRE(s.osr != nullptr);
  REQUIRE(openslide_get_error(s.osr) == nullptr);
  CHECK(std::string(openslide_detect_vendor(path.c_str())) == "aperio");
  CHECK(s.prop("openslide.vendor") == "aperio");
  CHECK(std::stod(s.prop("aperio.MPP")) == Approx(0.25));
  CHECK(std::stod(s.prop(OPENSLIDE_PROPERTY_NAME_MPP_X)) == Approx(0.25));
  CHECK(std::stod(s.prop(OPENSLIDE_PROPERTY_NAME_MPP_Y)) == Approx(0.25));
  CHECK(s.prop(OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER) == "40");
  CHECK(s.prop("openslide.comment").rfind("Aperio Image Library v12.0.15 \r\n5000x1200 [0,0 5000x1200] (256x256) "
                                          "JPEG/RGB Q=80|AppMag = 40|MPP = 0.25",
                                          0) == 0);

  // Levels 4x apart (ceil) until the long side is at most 1024.
  REQUIRE(openslide_get_level_count(s.osr) == 3);
  const std::int64_t expect[3][2] = {{5000, 1200}, {1250, 300}, {313, 75}};
  for (int l = 0; l < 3; ++l) {
    std::int64_t w = 0, h = 0;
    openslide_get_level_dimensions(s.osr, l, &w, &h);
    CHECK(w == expect[l][0]);
    CHECK(h == expect[l][1]);
  }
  CHECK(openslide_get_level_downsample(s.osr, 1) == Approx(4.0));
  CHECK(openslide_get_level_downsample(s.osr, 2) == Approx(16.0).epsilon(0.01));
  CHECK(s.prop("openslide.level[0].tile-width") == "256");
  REQUIRE(truth.levels.size() == 3);
  CHECK(truth.levels[2].width == 313);

  // The thumbnail is directory 1, as in real SVS files.
  bool has_thumbnail = false;
  for (const char* const* n = openslide_get_associated_image_names(s.osr); n && *n; ++n)
    has_thumbnail |= std::string(*n) == "thumbnail";
  CHECK(has_thumbnail);

  // Pixels decode, every level.
  std::vector<std::uint32_t> buf(64 * 64);
  for (int l = 0; l < 3; ++l) {
    openslide_read_region(s.osr, buf.data(), 0, 0, l, 64, 64);
    CHECK(openslide_get_error(s.osr) == nullptr);
  }
}

TEST_CASE("synth tiles are abbreviated JPEG streams with shared JPEGTables, like real Aperio files", "[synth]") {
  const auto dir = test::scratch_dir("synth-tiff");
  const fs::path path = dir / "t.svs";
  auto o = small_options(2);
  o.tile = 240;
  o.quality = 70;
  ihc::synth::write_synthetic_slide(path, o);

  TIFF* tif = TIFFOpen(path.c_str(), "r");
  REQUIRE(tif != nullptr);
  CHECK(TIFFIsTiled(tif));
  std::uint16_t compression = 0, photometric = 0, sub_h = 0, sub_v = 0;
  std::uint32_t tw = 0;
  TIFFGetField(tif, TIFFTAG_COMPRESSION, &compression);
  TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  TIFFGetField(tif, TIFFTAG_YCBCRSUBSAMPLING, &sub_h, &sub_v);
  TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
  CHECK(compression == COMPRESSION_JPEG);
  CHECK(photometric == PHOTOMETRIC_YCBCR);
  CHECK(sub_h == 2);
  CHECK(sub_v == 2);
  CHECK(tw == 240);
  char* desc = nullptr;
  REQUIRE(TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc));
  CHECK(std::string(desc).find("(240x240) JPEG/RGB Q=70|AppMag = 40|MPP = 0.25") != std::string::npos);

  auto check_level_tiles = [&](const char* what) {
    INFO(what);
    std::uint32_t len = 0;
    void* tables = nullptr;
    REQUIRE(TIFFGetField(tif, TIFFTAG_JPEGTABLES, &len, &tables));
    const auto* t = static_cast<const std::uint8_t*>(tables);
    REQUIRE(len > 4);
    CHECK((t[0] == 0xFF && t[1] == 0xD8));  // SOI ... EOI with the tables
    std::vector<std::uint8_t> raw(1 << 20);
    const tmsize_t n = TIFFReadRawTile(tif, 0, raw.data(), static_cast<tmsize_t>(raw.size()));
    REQUIRE(n > 4);
    CHECK((raw[0] == 0xFF && raw[1] == 0xD8));
    bool has_dqt = false;
    for (tmsize_t i = 0; i + 1 < n; ++i)
      if (raw[static_cast<std::size_t>(i)] == 0xFF && raw[static_cast<std::size_t>(i) + 1] == 0xDB) has_dqt = true;
    CHECK_FALSE(has_dqt);  // quantisation tables live in JPEGTables only
  };
  check_level_tiles("level 0");
  REQUIRE(TIFFReadDirectory(tif));
  CHECK_FALSE(TIFFIsTiled(tif));  // thumbnail, stripped
  REQUIRE(TIFFReadDirectory(tif));
  CHECK(TIFFIsTiled(tif));
  REQUIRE(TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc));
  CHECK(std::string(desc) == "Aperio Image Library v12.0.15 \r\n2000x1500 -> 500x375 - |AppMag = 40|MPP = 0.25");
  check_level_tiles("level 1 (copied raw from its temporary)");
  CHECK_FALSE(TIFFReadDirectory(tif));
  TIFFClose(tif);
  // No temporaries left beside the output.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("synth at 0.5 um/px writes AppMag 20", "[synth]") {
  const auto dir = test::scratch_dir("synth-20x");
  auto o = small_options(3);
  o.mpp = 0.5;
  ihc::synth::write_synthetic_slide(dir / "s20.svs", o);
  const OpenSlideHandle s(dir / "s20.svs");
  REQUIRE(s.osr != nullptr);
  CHECK(s.prop("aperio.AppMag") == "20");
  CHECK(std::stod(s.prop(OPENSLIDE_PROPERTY_NAME_MPP_X)) == Approx(0.5));
}

TEST_CASE("the same seed gives the same bytes whatever the thread count, and another seed does not", "[synth][determinism]") {
  const auto dir = test::scratch_dir("synth-determinism");
  auto o = small_options(7);
  o.threads = 1;
  const auto t1 = ihc::synth::write_synthetic_slide(dir / "a.svs", o);
  o.threads = 2;
  const auto t2 = ihc::synth::write_synthetic_slide(dir / "b.svs", o);
  const std::string a = file_bytes(dir / "a.svs"), b = file_bytes(dir / "b.svs");
  REQUIRE(a.size() > 10000);
  CHECK(a == b);
  CHECK(synth::to_json(t1) == synth::to_json(t2));
  o.seed = 8;
  ihc::synth::write_synthetic_slide(dir / "c.svs", o);
  CHECK(file_bytes(dir / "c.svs") != a);
}

TEST_CASE("a rendered region does not depend on where it starts or how it is cut", "[synth][determinism]") {
  for (const double mpp : {0.25, 0.5}) {
    auto o = small_options(4);
    o.mpp = mpp;
    const cv::Mat whole = ihc::synth::render_synth_region(o, -40, -33, 740, 533);
    REQUIRE(whole.type() == CV_8UC3);
    for (const cv::Rect r : {cv::Rect(123, 57, 301, 203), cv::Rect(1, 1, 7, 5), cv::Rect(-40, -33, 19, 1),
                             cv::Rect(555, 300, 64, 200), cv::Rect(683, 480, 17, 20)}) {
      INFO("mpp " << mpp << ", region " << r);
      const cv::Mat part = ihc::synth::render_synth_region(o, r.x, r.y, r.width, r.height);
      CHECK(cv::norm(whole(r + cv::Point(40, 33)), part, cv::NORM_INF) == 0);
    }
    auto one = o;
    one.threads = 1;
    CHECK(cv::norm(ihc::synth::render_synth_region(one, -40, -33, 740, 533), whole, cv::NORM_INF) == 0);
  }
}

TEST_CASE("the slide's level 0 is the rendered image up to JPEG error", "[synth]") {
  const auto dir = test::scratch_dir("synth-pixels");
  const auto o = small_options(5);
  ihc::synth::write_synthetic_slide(dir / "p.svs", o);
  const OpenSlideHandle s(dir / "p.svs");
  REQUIRE(s.osr != nullptr);
  const cv::Mat expected = ihc::synth::render_synth_region(o, 500, 400, 512, 512);
  const cv::Mat got = s.read(500, 400, 512, 512);
  cv::Mat diff;
  cv::absdiff(expected, got, diff);
  const cv::Scalar mean = cv::mean(diff);
  CHECK(mean[0] + mean[1] + mean[2] < 3 * 4.0);
  // Level 1 is the 4x area average of level 0.
  const cv::Mat full = ihc::synth::render_synth_region(o, 0, 0, 2000, 1500);
  // Tissue (darker than the ~240 glass) covers roughly half the slide.
  cv::Mat grey;
  cv::cvtColor(full, grey, cv::COLOR_RGB2GRAY);
  const double tissue = cv::countNonZero(grey < 228) / (2000.0 * 1500.0);
  CHECK(tissue > 0.35);
  CHECK(tissue < 0.65);
  cv::Mat quarter;
  cv::resize(full, quarter, cv::Size(500, 375), 0, 0, cv::INTER_AREA);
  std::vector<std::uint32_t> argb(500 * 375);
  openslide_read_region(s.osr, argb.data(), 0, 0, 1, 500, 375);
  double err = 0;
  for (int y = 0; y < 375; ++y)
    for (int x = 0; x < 500; ++x) {
      const std::uint32_t p = argb[static_cast<std::size_t>(y) * 500 + x];
      const auto q = quarter.at<cv::Vec3b>(y, x);
      err += std::abs(static_cast<int>((p >> 16) & 0xFF) - q[0]) + std::abs(static_cast<int>((p >> 8) & 0xFF) - q[1]) +
             std::abs(static_cast<int>(p & 0xFF) - q[2]);
    }
  CHECK(err / (500.0 * 375 * 3) < 4.0);
}

TEST_CASE("the truth counts the tumour cells by class and applies ASCO/CAP", "[synth][truth]") {
  auto o = small_options(9);
  const auto truth = ihc::synth::compute_synth_truth(o);
  const auto cells = ihc::synth::synth_cells_in(o, 0, 0, o.width, o.height);
  REQUIRE(truth.counts.total() > 100);
  CHECK(static_cast<std::int64_t>(cells.size()) == truth.counts.total());
  std::array<std::int64_t, 4> by_class{};
  for (const auto& c : cells) {
    ++by_class[static_cast<std::size_t>(c.cell_class)];
    CHECK((c.x >= 0 && c.y >= 0 && c.x < 2000 && c.y < 1500));
  }
  CHECK(by_class == truth.counts.by_class);
  const auto& p = truth.percent;
  CHECK(p.p0 + p.p1 + p.p2 + p.p3 == Approx(100.0));
  CHECK(truth.score_2018 == scoring::score_from_percent(p, truth.counts.total(), scoring::Guideline::AscoCap2018));

  // Pure designs give their class everywhere.
  o.mix = {0, 0, 0, 1};
  auto t3 = ihc::synth::compute_synth_truth(o);
  CHECK(t3.counts.by_class[3] == t3.counts.total());
  CHECK(std::string(scoring::to_string(t3.score_2018)) == "3+");
  CHECK(std::string(scoring::to_string(t3.category_2018)) == "positive");
  o.mix = {5, 0, 0, 0};  // normalised
  auto t0 = ihc::synth::compute_synth_truth(o);
  CHECK(t0.counts.by_class[0] == t0.counts.total());
  CHECK(std::string(scoring::to_string(t0.score_2018)) == "0");
  CHECK(std::string(scoring::to_string(t0.category_2018)) == "null");
  // A mix is followed on a larger slide (classes come in patches, so only roughly).
  o.width = 20000;
  o.height = 15000;
  o.mix = {0.1, 0.2, 0.3, 0.4};
  const auto big = ihc::synth::compute_synth_truth(o);
  CHECK(big.counts.total() > 20000);
  CHECK(big.percent.p0 == Approx(10).margin(5));
  CHECK(big.percent.p1 == Approx(20).margin(6));
  CHECK(big.percent.p2 == Approx(30).margin(7));
  CHECK(big.percent.p3 == Approx(40).margin(8));
}

TEST_CASE("the truth JSON holds counts, percentages, expected scores and the parameters", "[synth][truth]") {
  auto o = small_options(10);
  o.mix = {1, 1, 1, 1};
  const auto j = synth::to_json(ihc::synth::compute_synth_truth(o));
  for (const char* key : {"tumour_cells", "percent", "expected_score", "expected_category", "width", "height", "mpp",
                          "seed", "mix", "quality", "tile", "stain_h", "stain_dab", "generator_version"})
    CHECK(j.contains(key));
  CHECK(j["mix"][0].get<double>() == Approx(0.25));
  CHECK(j["percent"]["complete"].get<double>() ==
        Approx(j["percent"]["2+"].get<double>() + j["percent"]["3+"].get<double>()));
  CHECK(j["percent"]["complete_intense"].get<double>() == Approx(j["percent"]["3+"].get<double>()));
  CHECK(j["expected_score"].contains("asco-cap-2018"));
  CHECK(j["expected_score"].contains("asco-cap-2007"));
  CHECK(j["stain_h"][0].get<double>() == Approx(0.650 / std::sqrt(0.650 * 0.650 + 0.704 * 0.704 + 0.286 * 0.286)));
}

TEST_CASE("membrane DAB intensity and completeness follow the cell class", "[synth][appearance]") {
  // Per cell: the maximum DAB on each of 36 rays from the centre (4.5-8.5 µm out), at 0.5 µm/px.
  ihc::synth::SynthOptions o;
  o.width = 6000;
  o.height = 4000;
  o.mpp = 0.5;
  o.seed = 3;
  const auto cells = ihc::synth::synth_cells_in(o, 0, 0, o.width, o.height);
  const double um = o.mpp;
  std::array<double, 4> median{}, covered{};
  for (int cls = 0; cls < 4; ++cls) {
    std::vector<double> med, cov;
    for (std::size_t k = 0; k < cells.size() && med.size() < 25; k += 3) {
      if (static_cast<int>(cells[k].cell_class) != cls) continue;
      int same = 0, near = 0;  // only cells among their own class (shared edges show the stronger cell)
      for (const auto& c : cells)
        if (std::hypot(c.x - cells[k].x, c.y - cells[k].y) * um < 20) {
          ++near;
          same += static_cast<int>(c.cell_class) == cls;
        }
      if (near < 6 || same < near) continue;
      const int R = static_cast<int>(std::ceil(9 / um));
      const auto x0 = static_cast<std::int64_t>(cells[k].x) - R, y0 = static_cast<std::int64_t>(cells[k].y) - R;
      const cv::Mat dab = dab_concentration(ihc::synth::render_synth_region(o, x0, y0, 2 * R + 1, 2 * R + 1));
      std::array<double, 36> ray{};
      for (int y = 0; y < dab.rows; ++y)
        for (int x = 0; x < dab.cols; ++x) {
          const double dx = static_cast<double>(x0 + x) + 0.5 - cells[k].x, dy = static_cast<double>(y0 + y) + 0.5 - cells[k].y;
          const double r = std::hypot(dx, dy) * um;
          if (r < 4.5 || r > 8.5) continue;
          const auto b = static_cast<std::size_t>((std::atan2(dy, dx) + M_PI) / (2 * M_PI) * 36) % 36;
          ray[b] = std::max(ray[b], dab.at<double>(y, x));
        }
      std::sort(ray.begin(), ray.end());
      med.push_back(ray[18]);
      cov.push_back(static_cast<double>(std::count_if(ray.begin(), ray.end(), [](double v) { return v > 0.06; })) / 36);
    }
    REQUIRE(med.size() >= 5);
    std::sort(med.begin(), med.end());
    std::sort(cov.begin(), cov.end());
    median[static_cast<std::size_t>(cls)] = med[med.size() / 2];
    covered[static_cast<std::size_t>(cls)] = cov[cov.size() / 2];
  }
  INFO("median ray maximum by class: " << median[0] << " " << median[1] << " " << median[2] << " " << median[3]);
  INFO("median covered share by class: " << covered[0] << " " << covered[1] << " " << covered[2] << " " << covered[3]);
  CHECK(median[0] < 0.05);
  CHECK(covered[0] < 0.1);
  CHECK(covered[1] > 0.25);  // partial outline (neighbours' arcs add to a cell's own)
  CHECK(covered[1] < 0.95);
  CHECK(covered[2] > 0.95);
  CHECK(covered[3] > 0.95);
  CHECK(median[2] > 0.25);
  CHECK(median[2] < 0.5);
  CHECK(median[3] > 0.8);
  CHECK(median[3] < 1.3);
  // The rays of 1+ cells that are stained are faint.
  CHECK(median[1] < 0.2);
}

TEST_CASE("synth options are validated with one-line messages", "[synth][errors]") {
  auto bad = [](auto change) {
    auto o = small_options();
    change(o);
    return o;
  };
  using ihc::synth::normalise_synth_options;
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.mix = {0.5, -0.1, 0.3, 0.3}; })),
                    Catch::Contains("--mix"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.mix = {0, 0, 0, 0}; })), Catch::Contains("--mix"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.tile = 300; })), Catch::Contains("--tile"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.width = 100; })), Catch::Contains("--width"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.mpp = 0.3; })), Catch::Contains("--mpp"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.quality = 0; })), Catch::Contains("--quality"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.stain_h = {0, 0, 0}; })),
                    Catch::Contains("--stain-h"));
  CHECK_THROWS_WITH(normalise_synth_options(bad([](auto& o) { o.stain_dab = o.stain_h; })),
                    Catch::Contains("parallel"));
  CHECK_THROWS_WITH(synth::parse_number_list("1,2,x,4", 4, "--mix"), Catch::Contains("--mix"));
  CHECK_THROWS(synth::parse_number_list("1,2,3", 4, "--mix"));
  CHECK_THROWS(synth::parse_number_list("1,2,3,4,", 4, "--mix"));
  CHECK(synth::parse_number_list(" 1, 2.5 ,3,4", 4, "--mix") == std::vector<double>{1, 2.5, 3, 4});
}

TEST_CASE("synth on the command line writes the slide and its truth, refuses to overwrite, validates", "[synth][cli]") {
  const auto dir = test::scratch_dir("synth-cli");
  const std::string out = (dir / "c.svs").string();
  const auto ok = test::run_cli("synth '" + out + "' --width 1200 --height 1000 --seed 3 --mix 0,1,1,2 --tile 240");
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  REQUIRE(fs::exists(out));
  const auto truth = nlohmann::json::parse(test::slurp(out + ".truth.json"));
  CHECK(truth["width"] == 1200);
  CHECK(truth["tile"] == 240);
  CHECK(truth["seed"] == 3);
  CHECK(truth["percent"]["0"].get<double>() == 0.0);
  CHECK(truth["mix"][3].get<double>() == Approx(0.5));

  const auto again = test::run_cli("synth '" + out + "' --width 1200 --height 1000");
  CHECK(again.exit_code == 4);
  CHECK(again.err.find("--force") != std::string::npos);
  const auto forced = test::run_cli("synth '" + out + "' --width 1200 --height 1000 --seed 3 --mix 0,1,1,2 --force");
  CHECK(forced.exit_code == 0);

  for (const char* args : {"--mix 1,-1,0,0", "--mix 0,0,0,0", "--mix 1,2,3", "--tile 300", "--width 100",
                           "--mpp 0.3", "--quality 0", "--stain-h 0,0,0", "--stain-dab a,b,c", "--threads -1"}) {
    const auto r = test::run_cli("synth '" + (dir / "bad.svs").string() + "' " + args);
    INFO(args << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(fs::exists(dir / "bad.svs"));
  }
  const auto missing = test::run_cli("synth '" + (dir / "no" / "x.svs").string() + "' --width 300 --height 300");
  CHECK(missing.exit_code == 4);
}

TEST_CASE("the pyramid writer streams bands into 4x levels and rejects misuse", "[synth][pyramid]") {
  const auto dir = test::scratch_dir("pyramid");
  tiling::PyramidOptions po;
  po.width = 1500;
  po.height = 1100;
  po.tile = 256;
  po.quality = 90;
  po.mpp = 0.5;
  po.app_mag = 20;
  {
    tiling::PyramidWriter w(dir / "g.svs", po);
    REQUIRE(w.levels().size() == 2);
    CHECK(w.levels()[1].width == 375);
    CHECK(w.levels()[1].height == 275);
    CHECK(w.band_count() == 5);
    CHECK(w.band_height(4) == 1100 - 4 * 256);
    CHECK_THROWS_AS(w.write_band(cv::Mat(10, 10, CV_8UC3)), tiling::SlideError);
    CHECK_THROWS_AS(w.finish(), tiling::SlideError);  // bands missing
    for (std::int64_t b = 0; b < w.band_count(); ++b) {
      cv::Mat band(w.band_height(b), 1500, CV_8UC3);
      for (int y = 0; y < band.rows; ++y)
        for (int x = 0; x < band.cols; ++x)
          band.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<std::uint8_t>(x / 6), static_cast<std::uint8_t>((b * 256 + y) / 5), 128);
      w.write_band(band);
    }
    w.finish();
  }
  const OpenSlideHandle s(dir / "g.svs");
  REQUIRE(s.osr != nullptr);
  CHECK(s.prop("openslide.vendor") == "aperio");
  CHECK(s.prop("aperio.AppMag") == "20");
  std::vector<std::uint32_t> px(1);
  openslide_read_region(s.osr, px.data(), 300 * 4, 200 * 4, 1, 1, 1);  // level-1 pixel (300, 200)
  // Average of x/6 over x in [1200, 1204) and of y/5 over y in [800, 804).
  CHECK(std::abs(static_cast<int>((px[0] >> 16) & 0xFF) - static_cast<int>(1201.5 / 6)) <= 3);
  CHECK(std::abs(static_cast<int>((px[0] >> 8) & 0xFF) - static_cast<int>(801.5 / 5)) <= 3);
  CHECK(std::abs(static_cast<int>(px[0] & 0xFF) - 128) <= 3);
  // An abandoned writer leaves its temporaries nowhere.
  {
    tiling::PyramidWriter w(dir / "abandoned.svs", po);
    w.write_band(cv::Mat(256, 1500, CV_8UC3, cv::Scalar(200, 100, 50)));
  }
  for (const auto& e : fs::directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("an interrupted synth exits 130 and leaves no partial files", "[synth][cli]") {
  const auto dir = test::scratch_dir("synth-interrupt");
  const std::string out = (dir / "i.svs").string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the test process may have threads).
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    ::execl(IHC_BINARY, IHC_BINARY, "synth", out.c_str(), "--width", "40000", "--height", "30000", "--threads", "1",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the pyramid's temporaries exist, then stop it.
  bool started = false;
  for (int i = 0; i < 400 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    for (const auto& e : fs::directory_iterator(dir))
      started |= e.path().filename().string().find(".level1.tmp-") != std::string::npos;
  }
  CHECK(started);
  ::kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(fs::is_empty(dir));
}
