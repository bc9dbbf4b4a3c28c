// Per-slide stain estimation (Macenko) and the --stains choice: pixels mixed by Beer-Lambert from
// known vectors, background of known brightness, fallbacks, stains files, synthetic slides.
//
// Measured accuracy (this file's cases; printed by the hidden "[.][stains-explore]" case):
//  - Beer-Lambert pixels, 8-bit, vectors rotated 5 (H) and 4 (DAB) degrees from the defaults:
//    errors H / DAB 0.15 / 0.19 degrees without noise, 0.55 / 0.68 with noise sd 1 grey level,
//    1.1 / 1.3 with sd 2, 2.1 / 2.6 with sd 4 (asserted: < 2.5 up to sd 2).
//  - synthetic slides (optical blur, a third grey stain, luminance noise, JPEG 80) drawn with the
//    same rotated vectors: 40x from the overview 0.75 / 0.95 degrees, 20x from 0.5 µm/px tiles
//    2.1 / 0.7 (asserted: < 4); the background I0 240 estimated as 241 (asserted: within 4).
//  - real images (deviation from the default vectors, H / DAB): ihc-fhl2-colon 7.1 / 6.5,
//    her2-score3 4.2 / 15.8, her2-score1 7.6 / 8.7; H&E slides (cmu-1, tcga) fall back.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/stain_choice.hpp"
#include "ihc/synth/synth.hpp"
#include "ihc/scoring/stain_estimation.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/scoring/tissue.hpp"
#include "ihc/tiling/slide.hpp"

using namespace ihc;
using scoring::Rgb3;
using scoring::StainVectors;
namespace fs = std::filesystem;

namespace {

// Rotates `v` by `deg` degrees about `axis` (Rodrigues), then normalises.
Rgb3 rotate(const Rgb3& v, Rgb3 axis, double deg) {
  const double n = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  for (double& c : axis) c /= n;
  const double t = deg * M_PI / 180.0, c = std::cos(t), s = std::sin(t);
  const double kv = axis[0] * v[0] + axis[1] * v[1] + axis[2] * v[2];
  const Rgb3 kxv{axis[1] * v[2] - axis[2] * v[1], axis[2] * v[0] - axis[0] * v[2], axis[0] * v[1] - axis[1] * v[0]};
  Rgb3 r{};
  for (std::size_t i = 0; i < 3; ++i) r[i] = v[i] * c + kxv[i] * s + axis[i] * kv * (1 - c);
  return r;
}

// Vectors rotated a few degrees away from the defaults, as another lab's stains might be.
StainVectors rotated_stains(double i0 = 255.0) {
  const auto d = StainVectors::defaults();
  const Rgb3 h = rotate(d.hematoxylin, {0.2, -1.0, 0.6}, 5.0);
  const Rgb3 dab = rotate(d.dab, {1.0, 0.3, -0.5}, 4.0);
  return *StainVectors::make(h, dab, i0);
}

// `n` pixels (as a CV_8UC3 image, 100 columns) mixed by Beer-Lambert: 40 % haematoxylin only,
// 20 % DAB only, 40 % both; random concentrations, 8-bit rounding and noise of sd `noise`.
cv::Mat mixed_pixels(const StainVectors& s, int n, double dab_share, double noise, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> g(0.0, noise);
  cv::Mat img(n / 100, 100, CV_8UC3);
  for (int k = 0; k < img.rows * img.cols; ++k) {
    const double kind = u(rng);
    double h = 0, d = 0;
    if (kind < 1.0 - dab_share * 3) {
      h = 0.1 + 1.4 * u(rng);
    } else if (kind < 1.0 - dab_share * 2) {
      d = 0.1 + 1.1 * u(rng);
    } else {
      h = 0.05 + 1.0 * u(rng);
      d = 0.05 + 1.0 * u(rng);
    }
    const auto i = scoring::mix_stains(s, h, d);
    auto& px = img.at<cv::Vec3b>(k / 100, k % 100);
    for (int c = 0; c < 3; ++c) px[c] = cv::saturate_cast<std::uint8_t>(std::lround(i[static_cast<std::size_t>(c)] + g(rng)));
  }
  return img;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::optional<engine::ErrorKind> error_kind(const std::function<void()>& f) {
  try {
    f();
  } catch (const engine::EngineError& e) {
    return e.kind();
  }
  return std::nullopt;
}

const fs::path kColon = "../shared/data/images/ihc-fhl2-colon.png";

}  // namespace

TEST_CASE("stain estimation recovers vectors rotated a few degrees from the defaults", "[stains]") {
  const StainVectors truth = rotated_stains();
  const auto defaults = StainVectors::defaults();
  // The rotation is big enough that the defaults would be measurably wrong.
  REQUIRE(scoring::angle_between_deg(truth.hematoxylin, defaults.hematoxylin) > 4.5);
  REQUIRE(scoring::angle_between_deg(truth.dab, defaults.dab) > 3.5);
  for (const double noise : {0.0, 1.0, 2.0}) {
    const cv::Mat img = mixed_pixels(truth, 20000, 0.2, noise, 7);
    const auto e = scoring::estimate_stains({img}, {}, 255.0, defaults);
    INFO("noise " << noise << ": " << e.warning);
    REQUIRE(e.estimated);
    CHECK(e.warning.empty());
    CHECK(e.pixels_used > 15000);
    const double err_h = scoring::angle_between_deg(e.vectors.hematoxylin, truth.hematoxylin);
    const double err_d = scoring::angle_between_deg(e.vectors.dab, truth.dab);
    CAPTURE(err_h, err_d);
    CHECK(err_h < 2.5);
    CHECK(err_d < 2.5);
    CHECK(e.vectors.i0 == 255.0);
  }
}

TEST_CASE("stain estimation from an OD image and a mask uses only the masked pixels", "[stains]") {
  const StainVectors truth = rotated_stains(240.0);
  const cv::Mat img = mixed_pixels(truth, 10000, 0.2, 1.0, 11);
  cv::Mat od(img.size(), CV_32FC3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const auto& p = img.at<cv::Vec3b>(y, x);
      const Rgb3 v = scoring::optical_density({double(p[0]), double(p[1]), double(p[2])}, 240.0);
      od.at<cv::Vec3f>(y, x) = cv::Vec3f(float(v[0]), float(v[1]), float(v[2]));
    }
  // Poison the unmasked half with pure eosin-like pixels: they must not move the estimate.
  cv::Mat mask(img.size(), CV_8UC1, cv::Scalar(255));
  mask.colRange(50, 100).setTo(0);
  od.colRange(50, 100).setTo(cv::Scalar(0.05, 0.9, 0.2));
  const auto e = scoring::estimate_stains_from_od(od, mask, 240.0, StainVectors::defaults());
  INFO(e.warning);
  REQUIRE(e.estimated);
  CHECK(e.pixels_used <= 5000);
  CHECK(scoring::angle_between_deg(e.vectors.hematoxylin, truth.hematoxylin) < 2.5);
  CHECK(scoring::angle_between_deg(e.vectors.dab, truth.dab) < 2.5);
  CHECK(e.vectors.i0 == 240.0);
  CHECK(e.i0 == 240.0);
}

TEST_CASE("an image without DAB falls back to the default vectors with a warning", "[stains]") {
  const auto defaults = StainVectors::defaults();
  const cv::Mat img = mixed_pixels(rotated_stains(), 10000, 0.0, 1.0, 3);  // haematoxylin only
  const auto e = scoring::estimate_stains({img}, {}, 255.0, defaults);
  CHECK_FALSE(e.estimated);
  CHECK(e.vectors == defaults);
  CHECK(e.warning.find("DAB") != std::string::npos);
  CHECK(e.dab_fraction < 0.02);
}

TEST_CASE("an H&E-like image (eosin, no DAB) falls back instead of calling eosin DAB", "[stains]") {
  const auto defaults = StainVectors::defaults();
  // Ruifrok & Johnston's eosin vector in place of DAB.
  const auto he = *StainVectors::make(defaults.hematoxylin, {0.092789, 0.954111, 0.283111});
  const cv::Mat img = mixed_pixels(he, 10000, 0.2, 1.0, 5);
  const auto e = scoring::estimate_stains({img}, {}, 255.0, defaults);
  INFO(e.warning);
  CHECK_FALSE(e.estimated);
  CHECK(e.vectors == defaults);
  CHECK_FALSE(e.warning.empty());
}

TEST_CASE("too few stained pixels, or vectors too close together, fall back to the reference", "[stains]") {
  const auto defaults = StainVectors::defaults();
  const cv::Mat blank(20, 100, CV_8UC3, cv::Scalar(250, 250, 250));
  const auto e = scoring::estimate_stains({blank}, {}, 255.0, defaults);
  CHECK_FALSE(e.estimated);
  CHECK(e.pixels_used == 0);
  CHECK(e.warning.find("stained pixels") != std::string::npos);
  // Two "stains" 3 degrees apart: the plane is ill-defined; whatever the estimate finds must not
  // be accepted as two stains.
  const auto close = *StainVectors::make(defaults.hematoxylin, rotate(defaults.hematoxylin, {0, 0, 1}, 3.0));
  const cv::Mat img = mixed_pixels(close, 10000, 0.2, 0.0, 9);
  const auto f = scoring::estimate_stains({img}, {}, 255.0, defaults);
  CHECK_FALSE(f.estimated);
  CHECK(f.vectors == defaults);
}

TEST_CASE("background estimation recovers a synthetic glass brightness of 240", "[stains]") {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> noise(-1, 1);
  cv::Mat img(300, 400, CV_8UC3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x)
      for (int c = 0; c < 3; ++c) img.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<std::uint8_t>(240 + noise(rng));
  // A tissue blob: haematoxylin and DAB under I0 = 240.
  const auto s = StainVectors::make(StainVectors::defaults().hematoxylin, StainVectors::defaults().dab, 240.0);
  const auto tissue_rgb = scoring::mix_stains(*s, 0.5, 0.3);
  cv::circle(img, {200, 150}, 90, cv::Scalar(tissue_rgb[0], tissue_rgb[1], tissue_rgb[2]), cv::FILLED);
  const cv::Mat mask = scoring::tissue_mask(img);
  REQUIRE(cv::countNonZero(mask) > 20000);
  const auto bg = scoring::estimate_background(img, mask);
  REQUIRE(bg.estimated);
  CHECK(std::abs(bg.i0 - 240.0) <= 1.5);
  for (double c : bg.per_channel) CHECK(std::abs(c - 240.0) <= 1.5);

  SECTION("a dark background is clamped to 200") {
    const cv::Mat dark(100, 100, CV_8UC3, cv::Scalar(150, 150, 150));
    const auto d = scoring::estimate_background(dark, cv::Mat::zeros(dark.size(), CV_8UC1));
    CHECK(d.estimated);
    CHECK(d.i0 == 200.0);
  }
  SECTION("an image that is all tissue keeps the fallback") {
    const cv::Mat all(100, 100, CV_8UC1, cv::Scalar(255));
    const auto a = scoring::estimate_background(img(cv::Rect(0, 0, 100, 100)), all, 250.0);
    CHECK_FALSE(a.estimated);
    CHECK(a.i0 == 250.0);
  }
}

TEST_CASE("stains mode: default keeps the command-line vectors and a file sets them", "[stains]") {
  const auto dir = test::scratch_dir("stains-file");
  const auto slide = tiling::open_slide(kColon);
  const auto cli = *StainVectors::make({0.6, 0.7, 0.3}, {0.3, 0.6, 0.75}, 250.0);

  const auto d = engine::choose_stains(*slide, "default", cli);
  CHECK(d.vectors == cli);
  CHECK(d.source == "default");
  CHECK(d.warning.empty());

  const auto truth = rotated_stains(245.0);
  write_text(dir / "s.txt", truth.to_string() + "\n");
  const auto t = engine::choose_stains(*slide, (dir / "s.txt").string(), cli);
  CHECK(t.source == "file:" + (dir / "s.txt").string());
  CHECK(scoring::angle_between_deg(t.vectors.hematoxylin, truth.hematoxylin) < 1e-3);
  CHECK(scoring::angle_between_deg(t.vectors.dab, truth.dab) < 1e-3);
  CHECK(t.vectors.i0 == 245.0);

  write_text(dir / "s.json", R"({"hematoxylin": [0.65, 0.70, 0.29], "dab": [0.27, 0.57, 0.78], "i0": 230})");
  const auto j = engine::choose_stains(*slide, (dir / "s.json").string(), cli);
  CHECK(j.vectors == *StainVectors::make({0.65, 0.70, 0.29}, {0.27, 0.57, 0.78}, 230.0));

  // Without i0 the command line's is kept; a whole score report is accepted (its "stains").
  write_text(dir / "report.json",
             R"({"score": "2+", "stains": {"hematoxylin": [0.65, 0.70, 0.29], "dab": [0.27, 0.57, 0.78]}})");
  const auto r = engine::choose_stains(*slide, (dir / "report.json").string(), cli);
  CHECK(r.vectors.i0 == 250.0);
  write_text(dir / "noi0.txt", "hematoxylin=0.65,0.70,0.29;dab=0.27,0.57,0.78");
  CHECK(engine::choose_stains(*slide, (dir / "noi0.txt").string(), cli).vectors.i0 == 250.0);
}

TEST_CASE("a missing or malformed stains file is an input error naming the file", "[stains]") {
  const auto dir = test::scratch_dir("stains-bad");
  const auto slide = tiling::open_slide(kColon);
  const auto cli = StainVectors::defaults();
  const auto missing = (dir / "nope.json").string();
  try {
    engine::choose_stains(*slide, missing, cli);
    FAIL("no error");
  } catch (const engine::EngineError& e) {
    CHECK(e.kind() == engine::ErrorKind::input);
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
    CHECK(std::string(e.what()).find("estimate") != std::string::npos);  // says what else --stains takes
  }
  const std::pair<const char*, const char*> bad[] = {
      {"trunc.json", R"({"hematoxylin": [0.65, 0.70)"},
      {"two.json", R"({"hematoxylin": [0.65, 0.70], "dab": [0.27, 0.57, 0.78]})"},
      {"neg.json", R"({"hematoxylin": [0.65, -0.70, 0.29], "dab": [0.27, 0.57, 0.78]})"},
      {"parallel.json", R"({"hematoxylin": [0.65, 0.70, 0.29], "dab": [0.65, 0.70, 0.29]})"},
      {"i0.json", R"({"hematoxylin": [0.65, 0.70, 0.29], "dab": [0.27, 0.57, 0.78], "i0": 900})"},
      {"words.txt", "haematoxylin is blue"},
      {"empty.txt", ""},
  };
  for (const auto& [name, text] : bad) {
    write_text(dir / name, text);
    INFO(name);
    CHECK(error_kind([&] { engine::choose_stains(*slide, (dir / name).string(), cli); }) == engine::ErrorKind::input);
  }
  CHECK(error_kind([&] { engine::choose_stains(*slide, dir.string(), cli); }) == engine::ErrorKind::input);
  CHECK(error_kind([&] { engine::choose_stains(*slide, "", cli); }) == engine::ErrorKind::usage);
}

TEST_CASE("stains mode: estimate recovers rotated vectors and the 240 background of a synthetic slide", "[stains]") {
  const auto dir = test::scratch_dir("stains-synth");
  const StainVectors truth = rotated_stains();
  // 40x read straight from the overview (fine enough), and 20x sampled from tiles.
  struct Case {
    const char* name;
    std::int64_t w, h;
    double mpp;
  } cases[] = {{"overview", 3000, 2400, 0.25}, {"tiles", 6000, 4500, 0.5}};
  for (const auto& c : cases) {
    ihc::synth::SynthOptions o;
    o.width = c.w;
    o.height = c.h;
    o.mpp = c.mpp;
    o.seed = 21;
    o.mix = {0.2, 0.2, 0.3, 0.3};
    o.stain_h = truth.hematoxylin;
    o.stain_dab = truth.dab;
    const auto path = dir / (std::string(c.name) + ".svs");
    ihc::synth::write_synthetic_slide(path, o);
    const auto slide = tiling::open_slide(path);
    const auto choice = engine::choose_stains(*slide, "estimate", StainVectors::defaults());
    INFO(c.name << ": " << choice.warning << " " << choice.vectors.to_string());
    REQUIRE(choice.source == "estimated");
    CHECK(choice.warning.empty());
    CHECK(choice.background_estimated);
    CHECK(std::abs(choice.vectors.i0 - 240.0) <= 4.0);
    CHECK(scoring::angle_between_deg(choice.vectors.hematoxylin, truth.hematoxylin) < 4.0);
    CHECK(scoring::angle_between_deg(choice.vectors.dab, truth.dab) < 4.0);
  }
}

TEST_CASE("stains mode: estimate on a real H&E slide (no DAB) keeps the defaults and says why", "[stains][real]") {
  const auto slide = tiling::open_slide("../shared/data/slides/cmu-1-small-region.svs");
  const auto choice = engine::choose_stains(*slide, "estimate", StainVectors::defaults());
  INFO(choice.vectors.to_string());
  CHECK(choice.source == "default");
  CHECK(choice.warning.find("cmu-1-small-region.svs") != std::string::npos);
  CHECK(choice.vectors.hematoxylin == StainVectors::defaults().hematoxylin);
  CHECK(choice.vectors.dab == StainVectors::defaults().dab);
}

TEST_CASE("stains mode: estimate on real DAB images gives vectors near the published ones", "[stains][real]") {
  for (const char* name : {"ihc-fhl2-colon.png", "her2-score3.png"}) {
    const auto slide = tiling::open_slide(fs::path("../shared/data/images") / name);
    slide->set_mpp(0.5);
    const auto choice = engine::choose_stains(*slide, "estimate", StainVectors::defaults());
    INFO(name << ": " << choice.warning << " " << choice.vectors.to_string());
    CHECK(choice.source == "estimated");
    // Measured 4-8 degrees (H) and 6-16 (DAB): labs' stains differ, but not beyond the fallback's 25.
    CHECK(scoring::angle_between_deg(choice.vectors.hematoxylin, StainVectors::defaults().hematoxylin) < 20.0);
    CHECK(scoring::angle_between_deg(choice.vectors.dab, StainVectors::defaults().dab) < 20.0);
  }
}

// Diagnostics behind the figures in the header comment; run with "[stains-explore]".
TEST_CASE("stain estimation diagnostics", "[.][stains-explore]") {
  const StainVectors truth = rotated_stains();
  for (const double noise : {0.0, 1.0, 2.0, 4.0}) {
    const auto e = scoring::estimate_stains({mixed_pixels(truth, 20000, 0.2, noise, 7)}, {}, 255.0,
                                            StainVectors::defaults());
    std::printf("mixed noise %.0f: estimated %d err H %.2f DAB %.2f deg (%s)\n", noise, e.estimated,
                scoring::angle_between_deg(e.vectors.hematoxylin, truth.hematoxylin),
                scoring::angle_between_deg(e.vectors.dab, truth.dab), e.warning.c_str());
  }
  for (const char* path : {"../shared/data/images/ihc-fhl2-colon.png", "../shared/data/images/her2-score0.png",
                           "../shared/data/images/her2-score1.png", "../shared/data/images/her2-score2.png",
                           "../shared/data/images/her2-score3.png", "../shared/data/images/ki67-nuclear-dab.png",
                           "../shared/data/slides/cmu-1-small-region.svs", "../shared/data/slides/tcga-jp2k-small.svs",
                           "out/demo/demo-40x.svs", "benchmarks/work/bench-30000x22500.svs"}) {
    if (!fs::exists(path)) continue;
    const auto slide = tiling::open_slide(path);
    if (!slide->mpp()) slide->set_mpp(0.5);
    scoring::BackgroundEstimate bg;
    const auto t0 = std::chrono::steady_clock::now();
    const auto e = engine::estimate_slide_stains(*slide, StainVectors::defaults(), &bg);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s (%lldx%lld): %.3f s, i0 %.1f (%d), est %d, H %.1f DAB %.1f sep %.1f deg, frac H %.3f DAB %.3f, "
                "px %zu, %s | %s\n",
                path, (long long)slide->levels()[0].width, (long long)slide->levels()[0].height, s, bg.i0,
                bg.estimated, e.estimated, e.hematoxylin_deviation_deg, e.dab_deviation_deg, e.separation_deg,
                e.hematoxylin_fraction, e.dab_fraction, e.pixels_used, e.vectors.to_string().c_str(),
                e.warning.c_str());
  }
  // Parameter sweep on synthetic slides drawn with rotated vectors.
  const auto dir = fs::temp_directory_path() / "ihcscore-stains-explore";
  fs::create_directories(dir);
  const StainVectors rot = rotated_stains();
  for (const double mpp : {0.25, 0.5}) {
    const auto path = dir / (mpp < 0.3 ? "s40.svs" : "s20.svs");
    if (!fs::exists(path)) {
      ihc::synth::SynthOptions o;
      o.width = mpp < 0.3 ? 3000 : 6000;
      o.height = mpp < 0.3 ? 2400 : 4500;
      o.mpp = mpp;
      o.seed = 21;
      o.mix = {0.2, 0.2, 0.3, 0.3};
      o.stain_h = rot.hematoxylin;
      o.stain_dab = rot.dab;
      ihc::synth::write_synthetic_slide(path, o);
    }
    const auto slide = tiling::open_slide(path);
    for (const double min_od : {0.15, 0.3, 0.5, 0.8})
      for (const double pct : {0.5, 1.0, 2.0}) {
        scoring::StainEstimationParams p;
        p.min_total_od = min_od;
        p.percentile = pct;
        scoring::BackgroundEstimate bg;
        const auto e = engine::estimate_slide_stains(*slide, StainVectors::defaults(), &bg, p);
        std::printf("synth mpp %.2f min_od %.2f pct %.1f: est %d i0 %.1f err H %.2f DAB %.2f px %zu %s\n", mpp, min_od,
                    pct, e.estimated, bg.i0, scoring::angle_between_deg(e.vectors.hematoxylin, rot.hematoxylin),
                    scoring::angle_between_deg(e.vectors.dab, rot.dab), e.pixels_used, e.warning.c_str());
      }
  }
}
