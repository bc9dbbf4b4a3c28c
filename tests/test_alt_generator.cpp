// Scores images from the independent generator (alt_generator.hpp), written without looking at
// the project's own synthetic slides: ellipse cells by random sequential addition, eccentric
// irregular nuclei, cv::ellipse membranes with the published widths, tinted background, QuPath's
// stain vectors (the scorer defaults to Ruifrok's), optional JPEG and stain rotation.
//
// Every scored case prints one line starting with "ALT|" (scripts/alt-validation.sh makes a
// table of them). Hidden, run by tag: `[alt-sweep]` (resolutions x designs x variants),
// `[alt-diag]` (per-cell truth x measured classes), `[alt-png]` (sample images to look at, in
// ALT_PNG_DIR), `[alt-explore]` (one case from ALT_* environment variables, see there).
// Images are written to a per-process scratch folder, removed afterwards unless IHC_KEEP_SCRATCH is set.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <string>
#include <system_error>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "alt_generator.hpp"
#include "cli_runner.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/tiling/slide.hpp"

using namespace ihc;
namespace fs = std::filesystem;

namespace {

const std::array<double, 4> kMixZero{0.98, 0.02, 0.0, 0.0};
const std::array<double, 4> kMixOne{0.40, 0.60, 0.0, 0.0};
const std::array<double, 4> kMixTwo{0.20, 0.20, 0.60, 0.0};
const std::array<double, 4> kMixThree{0.10, 0.10, 0.20, 0.60};

// A scratch folder of this process (tests may run in parallel, and other checkouts may run the
// same tests at the same time), removed afterwards unless IHC_KEEP_SCRATCH is set.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) : dir(test::scratch_dir(name + "-" + std::to_string(::getpid()))) {}
  ~Scratch() {
    std::error_code ec;
    if (!test::keep_scratch()) fs::remove_all(dir, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

struct AltRun {
  std::string name;
  test::AltOptions options;
  test::AltTruth truth;
  engine::SlideResult result;
};

std::string pct(const scoring::ClassPercent& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%5.1f %5.1f %5.1f %5.1f | %5.1f %5.1f", p.p0, p.p1, p.p2, p.p3, p.complete(),
                p.complete_intense());
  return buf;
}

std::string row(const AltRun& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "ALT| %-22s | %.2f | %-3s | %s | %-3s | %s | %5lld / %5lld |", r.name.c_str(),
                r.options.mpp, std::string(scoring::to_string(r.truth.score_2018)).c_str(), pct(r.truth.percent).c_str(),
                std::string(scoring::to_string(r.result.score)).c_str(), pct(r.result.percent).c_str(),
                static_cast<long long>(r.result.counts.total()), static_cast<long long>(r.truth.counts.total()));
  return buf;
}

// Generates, writes a PNG, opens it as a slide with the given resolution and scores it with the
// default options (what `ihcscore score FILE.png --mpp X` does).
AltRun run_alt(const std::string& name, const test::AltOptions& options, const fs::path& dir,
               const engine::ScoreOptions& score_options = {}) {
  AltRun r;
  r.name = name;
  r.options = options;
  auto image = test::generate_alt_field(options);
  r.truth = std::move(image.truth);
  const fs::path png = dir / (name + ".png");
  test::write_rgb_png(png, image.rgb);
  auto slide = tiling::open_slide(png);
  slide->set_mpp(options.mpp);
  r.result = engine::score_slide(*slide, score_options);
  std::printf("%s\n", row(r).c_str());
  std::fflush(stdout);
  return r;
}

// A field of `field_um` square: 1500 px at 0.5 µm/px; at 0.25 µm/px 600 µm (2400 px) keeps
// each test well under 15 s on two busy cores.
test::AltOptions design(const std::array<double, 4>& mix, double mpp, std::uint64_t seed, double field_um = 0) {
  test::AltOptions o;
  o.mix = mix;
  o.mpp = mpp;
  o.seed = seed;
  if (field_um <= 0) field_um = mpp < 0.4 ? 600.0 : 750.0;
  o.width = o.height = static_cast<int>(std::lround(field_um / mpp));
  return o;
}

void check_clear(const AltRun& r, const char* expected) {
  INFO(row(r));
  REQUIRE(std::string(scoring::to_string(r.truth.score_2018)) == expected);  // the design itself
  CHECK(std::string(scoring::to_string(r.result.score)) == expected);
  CHECK(std::abs(r.result.percent.complete_intense() - r.truth.percent.complete_intense()) <= 5.0);
  CHECK(std::abs(r.result.percent.complete() - r.truth.percent.complete()) <= 10.0);
  // Most tumour cells are found and stroma is not counted as tumour (as in test_end_to_end).
  CHECK(static_cast<double>(r.result.counts.total()) >= static_cast<double>(r.truth.counts.total()) * 0.7);
  CHECK(static_cast<double>(r.result.counts.total()) <= static_cast<double>(r.truth.counts.total()) * 1.3);
}

// Per-cell view: the scorer's detect_cells on the deconvolved image (resampled to 0.5 µm/px as
// the engine does), each truth cell matched to the nearest detected nucleus within 4 µm.
void diagnose(const test::AltImage& image, const test::AltOptions& o) {
  const double amp = 0.5;
  cv::Mat rgb = image.rgb;
  if (std::abs(o.mpp - amp) > 1e-6) {
    const double f = o.mpp / amp;
    cv::resize(image.rgb, rgb, cv::Size(static_cast<int>(std::lround(rgb.cols * f)), static_cast<int>(std::lround(rgb.rows * f))),
               0, 0, f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  const engine::ScoreOptions so;
  const auto dec = scoring::deconvolve(rgb, so.stains);
  const auto cells = scoring::detect_cells(dec.hematoxylin, scoring::specific_dab(dec, so.counterstain_residual_weight),
                                           amp, cv::Rect(0, 0, rgb.cols, rgb.rows), so.cells);
  int confusion[4][5] = {};  // truth class x measured class (4 = not found / not counted)
  int blush_split[2][2] = {};  // 0 cells: [without, with blush][called 0, called stained]
  std::vector<float> comp[4], inten[4];
  const double scale = o.mpp / amp;
  for (const auto& t : image.truth.cells) {
    if (!t.in_image) continue;
    const cv::Point2f p(t.nucleus.x * static_cast<float>(scale), t.nucleus.y * static_cast<float>(scale));
    const scoring::Cell* best = nullptr;
    double bd = 4.0 / amp;
    for (const auto& c : cells) {
      const double d = std::hypot(c.centre.x - p.x, c.centre.y - p.y);
      if (d < bd) {
        bd = d;
        best = &c;
      }
    }
    const int tc = static_cast<int>(t.cell_class);
    if (!best || !best->counted) {
      ++confusion[tc][4];
      continue;
    }
    ++confusion[tc][static_cast<int>(best->cell_class)];
    if (tc == 0) ++blush_split[t.blush ? 1 : 0][best->cell_class == scoring::CellClass::Negative ? 0 : 1];
    comp[tc].push_back(best->completeness);
    inten[tc].push_back(best->intensity_od);
  }
  auto median = [](std::vector<float> v) {
    if (v.empty()) return 0.0f;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  std::printf("DIAG| truth\\measured:   0    1+    2+    3+  missed | median completeness, intensity\n");
  for (int k = 0; k < 4; ++k)
    std::printf("DIAG| %-6s %5d %5d %5d %5d %7d | %.2f %.3f\n", std::string(scoring::to_string(static_cast<scoring::CellClass>(k))).c_str(),
                confusion[k][0], confusion[k][1], confusion[k][2], confusion[k][3], confusion[k][4], median(comp[k]),
                median(inten[k]));
  if (blush_split[1][0] + blush_split[1][1] > 0)
    std::printf("DIAG| 0 cells called stained: %d of %d without blush, %d of %d with blush\n", blush_split[0][1],
                blush_split[0][0] + blush_split[0][1], blush_split[1][1], blush_split[1][0] + blush_split[1][1]);
  // What the scorer reads as DAB where the truth has none: in nuclei and in plain cytoplasm.
  {
    cv::Mat sd = scoring::specific_dab(dec, so.counterstain_residual_weight), th, td;
    cv::resize(image.hematoxylin, th, sd.size(), 0, 0, cv::INTER_AREA);
    cv::resize(image.dab, td, sd.size(), 0, 0, cv::INTER_AREA);
    std::vector<float> nuc, cyto;
    for (int y = 0; y < sd.rows; ++y)
      for (int x = 0; x < sd.cols; ++x) {
        const float h = th.at<float>(y, x), d = td.at<float>(y, x), m = sd.at<float>(y, x);
        if (d > 0.02f) continue;
        if (h > 0.25f) nuc.push_back(m);
        else if (h > 0.015f && h < 0.06f) cyto.push_back(m);
      }
    auto q = [](std::vector<float> v, double f) {
      if (v.empty()) return 0.0f;
      const auto k = static_cast<std::size_t>(f * static_cast<double>(v.size() - 1));
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
      return v[k];
    };
    std::printf("DIAG| scorer DAB where truth DAB < 0.02: nuclei median %.3f p95 %.3f; cytoplasm median %.3f p95 %.3f\n",
                q(nuc, 0.5), q(nuc, 0.95), q(cyto, 0.5), q(cyto, 0.95));
  }
  // Counted cells that match no tumour cell: on a stroma nucleus, or elsewhere (a second seed
  // in a tumour cell, a seed in a gap).
  int on_stroma = 0, elsewhere = 0;
  for (const auto& c : cells) {
    if (!c.counted) continue;
    auto near = [&](const cv::Point2f& q) {
      return std::hypot(c.centre.x - q.x * scale, c.centre.y - q.y * scale) < 4.0 / amp;
    };
    bool matched = false;
    for (const auto& t : image.truth.cells)
      if (near(t.nucleus)) matched = true;
    if (matched) continue;
    bool stroma = false;
    for (const auto& q : image.truth.stroma_centres)
      if (near(q)) stroma = true;
    ++(stroma ? on_stroma : elsewhere);
  }
  std::printf("DIAG| counted cells matching no tumour nucleus: %d on stroma nuclei, %d elsewhere\n", on_stroma, elsewhere);
  int counted = 0;
  for (const auto& c : cells) counted += c.counted ? 1 : 0;
  std::printf("DIAG| detected %zu, counted %d, truth tumour cells %lld, stroma nuclei %d\n", cells.size(), counted,
              static_cast<long long>(image.truth.counts.total()), image.truth.stroma_nuclei);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("alt generator: truth follows the design and the image looks like IHC", "[alt]") {
  auto o = design(kMixThree, 0.5, 101);
  o.width = o.height = 600;
  const auto img = test::generate_alt_field(o);
  REQUIRE(img.rgb.type() == CV_8UC3);
  REQUIRE(img.rgb.size() == cv::Size(600, 600));
  const auto& t = img.truth;
  CHECK(t.counts.total() > 300);  // 300 µm square of packed 5-9 µm cells
  std::printf("ALT-INFO| tumour cells %lld, tumour region covered by cells %.2f\n", static_cast<long long>(t.counts.total()), t.tumour_cover_fraction);
  CHECK(t.tumour_cover_fraction > 0.6);
  CHECK(std::abs(t.percent.p3 - 60.0) < 12.0);
  CHECK(t.score_2018 == scoring::SlideScore::ThreePlus);
  // Deterministic.
  const auto again = test::generate_alt_field(o);
  CHECK(cv::norm(img.rgb, again.rgb, cv::NORM_INF) == 0);
  // Designed 3+ peaks at the reference resolution are in the intense band: the rendered DAB map
  // along 3+ outlines reaches about that (checked loosely: 3+ cells exist and DAB max is high).
  double dmax = 0;
  cv::minMaxLoc(img.dab, nullptr, &dmax);
  CHECK(dmax > 0.7);
  CHECK(dmax < 1.8);
  // Membrane peaks as rendered (0.5 µm/px, after blur): the median over cells of each class of
  // the DAB maximum near its outline lies in the designed band.
  for (int k = 1; k <= 3; ++k) {
    std::array<double, 4> pure{};
    pure[k] = 1.0;
    auto po = design(pure, 0.5, 200 + k);
    po.width = po.height = 400;
    const auto pimg = test::generate_alt_field(po);
    std::vector<float> peaks;
    for (const auto& c : pimg.truth.cells) {
      if (!c.in_image || static_cast<int>(c.cell_class) != k) continue;
      const double ca = std::cos(c.angle_deg * std::numbers::pi / 180), sa = std::sin(c.angle_deg * std::numbers::pi / 180);
      std::vector<float> along;  // per direction: the radial DAB maximum near the outline
      for (int a = 0; a < 72; ++a) {
        float best = 0;
        for (double r = 0.85; r <= 1.15; r += 0.05) {
          const double u = c.a_um * r * std::cos(a * std::numbers::pi / 36), v = c.b_um * r * std::sin(a * std::numbers::pi / 36);
          const int x = static_cast<int>(std::lround(c.centre.x + (u * ca - v * sa) / po.mpp));
          const int y = static_cast<int>(std::lround(c.centre.y + (u * sa + v * ca) / po.mpp));
          if (x >= 0 && y >= 0 && x < pimg.dab.cols && y < pimg.dab.rows) best = std::max(best, pimg.dab.at<float>(y, x));
        }
        along.push_back(best);
      }
      // The median over the stained part of the outline.
      const auto q = static_cast<std::size_t>((1.0 - c.coverage / 2) * 71);
      std::nth_element(along.begin(), along.begin() + static_cast<std::ptrdiff_t>(q), along.end());
      const float best = along[q];
      peaks.push_back(best);
    }
    REQUIRE(!peaks.empty());
    std::nth_element(peaks.begin(), peaks.begin() + static_cast<std::ptrdiff_t>(peaks.size() / 2), peaks.end());
    const double med = peaks[peaks.size() / 2];
    const auto& band = k == 1 ? po.band_1 : k == 2 ? po.band_2 : po.band_3;
    INFO("class " << k << " median outline peak " << med);
    CHECK(med >= band[0]);
    CHECK(med <= band[1]);
  }
  // The peak gain model: a wide line is barely attenuated, a thin one a lot.
  CHECK(test::membrane_peak_gain(5.0, 0.4, 0.5) > 0.95);
  CHECK(test::membrane_peak_gain(0.64, 0.4, 0.5) < 0.7);
}

TEST_CASE("alt: clear 0 at 20x", "[alt]") {
  const Scratch scratch("alt-0-20x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("zero-20x", design(kMixZero, 0.5, 11), dir), "0");
}
TEST_CASE("alt: clear 1+ at 20x", "[alt]") {
  const Scratch scratch("alt-1-20x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("one-20x", design(kMixOne, 0.5, 12), dir), "1+");
}
TEST_CASE("alt: clear 2+ at 20x", "[alt]") {
  const Scratch scratch("alt-2-20x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("two-20x", design(kMixTwo, 0.5, 13), dir), "2+");
}
TEST_CASE("alt: clear 3+ at 20x", "[alt]") {
  const Scratch scratch("alt-3-20x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("three-20x", design(kMixThree, 0.5, 14), dir), "3+");
}
TEST_CASE("alt: clear 0 at 40x", "[alt]") {
  const Scratch scratch("alt-0-40x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("zero-40x", design(kMixZero, 0.25, 21), dir), "0");
}
TEST_CASE("alt: clear 1+ at 40x", "[alt]") {
  const Scratch scratch("alt-1-40x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("one-40x", design(kMixOne, 0.25, 22), dir), "1+");
}
TEST_CASE("alt: clear 2+ at 40x", "[alt]") {
  const Scratch scratch("alt-2-40x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("two-40x", design(kMixTwo, 0.25, 23), dir), "2+");
}
TEST_CASE("alt: clear 3+ at 40x", "[alt]") {
  const Scratch scratch("alt-3-40x");
  const auto& dir = scratch.dir;
  check_clear(run_alt("three-40x", design(kMixThree, 0.25, 24), dir), "3+");
}

TEST_CASE("alt: stain vectors rotated 5 degrees and JPEG quality 60 still give clear 0 and 3+", "[alt]") {
  const Scratch scratch("alt-rot-jpeg");
  const auto& dir = scratch.dir;
  auto zero = design(kMixZero, 0.5, 31);
  zero.stain_rotation_deg = 5.0;
  zero.jpeg_quality = 60;
  check_clear(run_alt("zero-rot5-q60", zero, dir), "0");
  auto three = design(kMixThree, 0.5, 32);
  three.stain_rotation_deg = 5.0;
  three.jpeg_quality = 60;
  check_clear(run_alt("three-rot5-q60", three, dir), "3+");
}

TEST_CASE("alt: 0 cells with cytoplasmic DAB blush score 0", "[alt]") {
  const Scratch scratch("alt-blush");
  const auto& dir = scratch.dir;
  auto o = design({1.0, 0.0, 0.0, 0.0}, 0.5, 41);
  o.blush_fraction = 1.0;
  const auto r = run_alt("zero-blush", o, dir);
  INFO(row(r));
  REQUIRE(r.truth.score_2018 == scoring::SlideScore::Zero);
  CHECK(r.result.score == scoring::SlideScore::Zero);
  CHECK(r.result.percent.any_membrane() <= 10.0);
  CHECK(static_cast<double>(r.result.counts.total()) >= static_cast<double>(r.truth.counts.total()) * 0.7);
}

TEST_CASE("alt: percent complete rises from the 0 to the 1+, 2+ and 3+ designs", "[alt]") {
  const Scratch scratch("alt-order");
  const auto& dir = scratch.dir;
  std::vector<AltRun> runs;
  const std::array<double, 4> mixes[] = {kMixZero, kMixOne, kMixTwo, kMixThree};
  std::uint64_t seed = 51;
  for (const auto& m : mixes) {
    auto o = design(m, 0.5, seed++);
    o.width = o.height = 1000;
    runs.push_back(run_alt("order-" + std::to_string(runs.size()), o, dir));
  }
  const auto& p0 = runs[0].result.percent;
  const auto& p1 = runs[1].result.percent;
  const auto& p2 = runs[2].result.percent;
  const auto& p3 = runs[3].result.percent;
  INFO(row(runs[0]) << "\n" << row(runs[1]) << "\n" << row(runs[2]) << "\n" << row(runs[3]));
  CHECK(p0.any_membrane() < p1.any_membrane());
  CHECK(p0.complete() <= p1.complete());
  CHECK(p1.complete() < p2.complete());
  CHECK(p2.complete() < p3.complete());
  CHECK(p2.complete_intense() < p3.complete_intense());
  CHECK(static_cast<int>(runs[0].result.score) < static_cast<int>(runs[1].result.score));
  CHECK(static_cast<int>(runs[1].result.score) < static_cast<int>(runs[2].result.score));
  CHECK(static_cast<int>(runs[2].result.score) < static_cast<int>(runs[3].result.score));
}

TEST_CASE("alt: the command line scores an alt PNG with --mpp like the engine", "[alt]") {
  const Scratch scratch("alt-cli");
  const auto& dir = scratch.dir;
  auto o = design(kMixTwo, 0.5, 61);
  o.width = o.height = 1000;
  const auto img = test::generate_alt_field(o);
  test::write_rgb_png(dir / "two.png", img.rgb);
  const auto r = test::run_cli("score '" + (dir / "two.png").string() + "' --mpp 0.5 --json '" +
                               (dir / "two.json").string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(test::slurp(dir / "two.json"));
  INFO(j.dump());
  CHECK(j.at("score").get<std::string>() == std::string(scoring::to_string(img.truth.score_2018)));
  CHECK(std::abs(j.at("percent").at("complete").get<double>() - img.truth.percent.complete()) <= 10.0);
}

// A larger sweep (hidden): resolutions x designs x variants, one line each; checks the score.
TEST_CASE("alt sweep", "[.][alt-sweep]") {
  const Scratch scratch("alt-sweep");
  const auto& dir = scratch.dir;
  struct Design {
    const char* name;
    std::array<double, 4> mix;
  };
  const Design designs[] = {{"zero", kMixZero}, {"one", kMixOne}, {"two", kMixTwo}, {"three", kMixThree},
                            {"ultralow", {0.94, 0.06, 0.0, 0.0}}, {"two-low", {0.55, 0.25, 0.20, 0.0}},
                            {"three-low", {0.45, 0.20, 0.20, 0.15}}};
  struct Variant {
    const char* name;
    void (*apply)(test::AltOptions&);
  };
  const Variant variants[] = {
      {"plain", [](test::AltOptions&) {}},
      {"q70-rot4", [](test::AltOptions& o) { o.jpeg_quality = 70; o.stain_rotation_deg = 4.0; }},
      {"white-bg", [](test::AltOptions& o) { o.background = {252.0, 252.0, 252.0}; }},
      {"dim-bg", [](test::AltOptions& o) { o.background = {228.0, 222.0, 232.0}; }},
      {"blur0.7", [](test::AltOptions& o) { o.blur_sigma_um = 0.7; }},
      {"blush30", [](test::AltOptions& o) { o.blush_fraction = 0.3; }},
      {"all-tissue", [](test::AltOptions& o) { o.glass_fraction = 0; o.lumen_fraction = 0; }},
      {"noise5", [](test::AltOptions& o) { o.noise_sigma = 5.0; }},
  };
  std::uint64_t seed = 1000;
  int wrong = 0, total = 0;
  for (double mpp : {0.25, 0.5, 0.6})
    for (const auto& d : designs)
      for (const auto& v : variants) {
        auto o = design(d.mix, mpp, seed++);
        o.width = o.height = static_cast<int>(std::lround(500.0 / mpp));
        v.apply(o);
        const auto r = run_alt(std::string(d.name) + "-" + v.name, o, dir);
        ++total;
        if (r.result.score != r.truth.score_2018) ++wrong;
        fs::remove(dir / (std::string(d.name) + "-" + v.name + ".png"));
      }
  std::printf("ALT-SWEEP| %d of %d scores differ from the design\n", wrong, total);
  CHECK(wrong == 0);
}

// Per-cell diagnosis of the clear designs (hidden): truth class x measured class.
TEST_CASE("alt per-cell diagnosis", "[.][alt-diag]") {
  const std::array<double, 4> mixes[] = {kMixZero, kMixOne, kMixTwo, kMixThree};
  for (double mpp : {0.5, 0.25}) {
    std::uint64_t seed = mpp == 0.5 ? 11 : 21;
    for (const auto& m : mixes) {
      const auto o = design(m, mpp, seed++);
      const auto img = test::generate_alt_field(o);
      std::printf("DIAG| mpp %.2f mix %.2f/%.2f/%.2f/%.2f seed %llu\n", mpp, m[0], m[1], m[2], m[3],
                  static_cast<unsigned long long>(o.seed));
      diagnose(img, o);
    }
  }
  auto blush = design({1.0, 0.0, 0.0, 0.0}, 0.5, 41);
  blush.blush_fraction = 1.0;
  std::printf("DIAG| blush\n");
  diagnose(test::generate_alt_field(blush), blush);
}

// Writes sample images to look at (hidden): ALT_PNG_DIR or a folder in the temp folder that is
// kept (not a scratch folder, which goes when the process ends), full field and a 2x-zoomed
// 300 x 300 px crop of each design.
TEST_CASE("alt sample images", "[.][alt-png]") {
  const char* env = std::getenv("ALT_PNG_DIR");
  const fs::path dir = env ? fs::path(env) : fs::temp_directory_path() / "ihcscore-alt-png";
  fs::create_directories(dir);
  const std::array<double, 4> mixes[] = {kMixZero, kMixOne, kMixTwo, kMixThree};
  const char* names[] = {"zero", "one", "two", "three"};
  for (int k = 0; k < 4; ++k) {
    const auto o = design(mixes[k], 0.5, static_cast<std::uint64_t>(11 + k));
    const auto img = test::generate_alt_field(o);
    test::write_rgb_png(dir / (std::string(names[k]) + "-full.png"), img.rgb);
    cv::Mat crop;
    cv::resize(img.rgb(cv::Rect(600, 600, 300, 300)), crop, cv::Size(600, 600), 0, 0, cv::INTER_NEAREST);
    test::write_rgb_png(dir / (std::string(names[k]) + "-crop.png"), crop);
  }
  std::printf("ALT-PNG| %s\n", dir.string().c_str());
}

// One case from environment variables (hidden), scored and diagnosed per cell:
// ALT_MIX=p0,p1,p2,p3 ALT_MPP ALT_SEED ALT_SIZE_UM ALT_ROT ALT_Q ALT_BLUR ALT_NOISE ALT_BLUSH
// ALT_BG=r,g,b ALT_STROMA ALT_STROMA_SPACING ALT_GLASS ALT_LUMEN ALT_CLUSTER ALT_PIGMENT (share of
// cells) ALT_PIGMENT_SPACING ALT_PIGMENT_OUTLINE (0: in the cytoplasm) ALT_PIGMENT_OD_LO/HI ALT_PIGMENT_VEC.
TEST_CASE("alt explore", "[.][alt-explore]") {
  auto num = [](const char* name, double fallback) {
    const char* v = std::getenv(name);
    return v ? std::strtod(v, nullptr) : fallback;
  };
  auto triple = [](const char* name, std::array<double, 3>& out) {
    if (const char* v = std::getenv(name)) std::sscanf(v, "%lf,%lf,%lf", &out[0], &out[1], &out[2]);
  };
  std::array<double, 4> mix = kMixThree;
  if (const char* v = std::getenv("ALT_MIX")) std::sscanf(v, "%lf,%lf,%lf,%lf", &mix[0], &mix[1], &mix[2], &mix[3]);
  auto o = design(mix, num("ALT_MPP", 0.5), static_cast<std::uint64_t>(num("ALT_SEED", 1)));
  o.width = o.height = static_cast<int>(std::lround(num("ALT_SIZE_UM", 750) / o.mpp));
  o.stain_rotation_deg = num("ALT_ROT", 0);
  o.jpeg_quality = static_cast<int>(num("ALT_Q", 0));
  o.blur_sigma_um = num("ALT_BLUR", o.blur_sigma_um);
  o.noise_sigma = num("ALT_NOISE", o.noise_sigma);
  o.blush_fraction = num("ALT_BLUSH", 0);
  o.stroma_fraction = num("ALT_STROMA", o.stroma_fraction);
  o.stroma_spacing_um = num("ALT_STROMA_SPACING", o.stroma_spacing_um);
  o.glass_fraction = num("ALT_GLASS", o.glass_fraction);
  o.lumen_fraction = num("ALT_LUMEN", o.lumen_fraction);
  o.cluster_um = num("ALT_CLUSTER", o.cluster_um);
  o.pigment_fraction = num("ALT_PIGMENT", 0);
  o.pigment_spacing_um = num("ALT_PIGMENT_SPACING", o.pigment_spacing_um);
  o.pigment_on_outline = num("ALT_PIGMENT_OUTLINE", 1) != 0;
  o.pigment_od = {num("ALT_PIGMENT_OD_LO", o.pigment_od[0]), num("ALT_PIGMENT_OD_HI", o.pigment_od[1])};
  triple("ALT_PIGMENT_VEC", o.pigment_vector);
  triple("ALT_BG", o.background);
  const Scratch scratch("alt-explore");
  const auto& dir = scratch.dir;
  const auto img = test::generate_alt_field(o);
  std::printf("ALT-INFO| stains used: H %.3f,%.3f,%.3f DAB %.3f,%.3f,%.3f\n", img.truth.stain_h[0], img.truth.stain_h[1],
              img.truth.stain_h[2], img.truth.stain_dab[0], img.truth.stain_dab[1], img.truth.stain_dab[2]);
  diagnose(img, o);
  run_alt("explore", o, dir);
}

TEST_CASE("alt: a cytoplasmic stain (DAB filling the cells, borders accentuated) is not scored as membrane", "[alt][artefacts]") {
  const Scratch scratch("alt-cytoplasmic");
  const auto& dir = scratch.dir;
  for (const double mpp : {0.5, 0.25}) {
    auto o = design(kMixThree, mpp, mpp < 0.4 ? 72 : 71);
    o.cytoplasmic_fraction = 1.0;
    const auto r = run_alt(mpp < 0.4 ? "cytoplasmic-40x" : "cytoplasmic-20x", o, dir);
    INFO(row(r) << "\ncytoplasmic cells " << r.result.cells_cytoplasmic << " in " << r.result.tiles_cytoplasmic << " tiles");
    REQUIRE(r.truth.score_2018 == scoring::SlideScore::Zero);  // every tumour cell is a cytoplasmic stain
    CHECK(static_cast<int>(r.result.score) <= static_cast<int>(scoring::SlideScore::OnePlus));
    CHECK(r.result.percent.complete() <= 10.0);
    CHECK(r.result.percent.complete_intense() <= 5.0);
    // The cells are still found and counted (as 0), and most of them are reported as cytoplasmic.
    CHECK(static_cast<double>(r.result.counts.total()) >= static_cast<double>(r.truth.counts.total()) * 0.7);
    CHECK(static_cast<double>(r.result.cells_cytoplasmic) >= 0.5 * static_cast<double>(r.result.counts.total()));
  }
}

TEST_CASE("alt: brown-black pigment granules on 0 cells are not membrane staining", "[alt][artefacts][pigment]") {
  const Scratch scratch("alt-pigment");
  const auto& dir = scratch.dir;
  engine::ScoreOptions off;
  off.cells.pigment_ring_um = 0;  // the rule switched off, as `--config` can
  // Granules scattered over the cytoplasm of 60 % of the cells (about 6 per cell).
  auto cyto = design(kMixZero, 0.5, 91, 400.0);
  cyto.pigment_fraction = 0.6;
  cyto.pigment_on_outline = false;
  const auto with = run_alt("pigment-cytoplasm", cyto, dir);
  INFO(row(with) << "\npigment cells " << with.result.cells_pigment);
  REQUIRE(with.truth.score_2018 == scoring::SlideScore::Zero);
  CHECK(with.result.score == scoring::SlideScore::Zero);
  CHECK(with.result.percent.any_membrane() < 5.0);
  const auto without = run_alt("pigment-cytoplasm-off", cyto, dir, off);
  INFO(row(without));
  CHECK(without.result.percent.any_membrane() > 12.0);  // the rule is what keeps it at 0
  // Granules strung along the outlines of 20 % of the cells, about 2.5 µm apart (denser rings
  // on more cells are not all caught: see docs/algorithm.md, pigment).
  auto ring = design(kMixZero, 0.5, 92, 400.0);
  ring.pigment_fraction = 0.2;
  const auto ring_with = run_alt("pigment-outline", ring, dir);
  INFO(row(ring_with) << "\npigment cells " << ring_with.result.cells_pigment);
  CHECK(ring_with.result.score == scoring::SlideScore::Zero);
  CHECK(ring_with.result.cells_pigment > 0);
  const auto ring_without = run_alt("pigment-outline-off", ring, dir, off);
  INFO(row(ring_without));
  CHECK(ring_without.result.score != scoring::SlideScore::Zero);
}

TEST_CASE("alt: 3+ and 1+ membranes keep their score among pigment granules", "[alt][artefacts][pigment]") {
  const Scratch scratch("alt-pigment-membranes");
  const auto& dir = scratch.dir;
  auto three = design(kMixThree, 0.5, 93, 400.0);
  three.pigment_fraction = 0.6;  // granules along the outline, over the membrane
  const auto r3 = run_alt("pigment-three", three, dir);
  INFO(row(r3));
  REQUIRE(r3.truth.score_2018 == scoring::SlideScore::ThreePlus);
  CHECK(r3.result.score == scoring::SlideScore::ThreePlus);
  // Granules over a membrane darken it: a few 2+ cells read 3+ (measured 66.1 % against 57.7;
  // 64.6 before seeds ignored the haematoxylin that dark DAB and the brown-black granules carry;
  // 862 cells found against 856 then, 848 drawn).
  CHECK(std::abs(r3.result.percent.complete_intense() - r3.truth.percent.complete_intense()) <= 9.0);
  auto one = design(kMixOne, 0.5, 94, 400.0);
  one.pigment_fraction = 0.3;
  one.pigment_on_outline = false;
  const auto r1 = run_alt("pigment-one", one, dir);
  INFO(row(r1) << "\npigment cells " << r1.result.cells_pigment);
  REQUIRE(r1.truth.score_2018 == scoring::SlideScore::OnePlus);
  CHECK(r1.result.score == scoring::SlideScore::OnePlus);
  // Some 1+ cells are lost to granules in their cytoplasm (docs/algorithm.md, pigment), not most.
  CHECK(r1.result.percent.any_membrane() >= 0.6 * r1.truth.percent.any_membrane());
}

TEST_CASE("alt: 3+ and 2+ membranes over a cytoplasmic blush keep their score", "[alt][artefacts]") {
  const Scratch scratch("alt-membrane-blush");
  const auto& dir = scratch.dir;
  auto three = design(kMixThree, 0.5, 81);
  three.cyto_od_23 = {0.10, 0.20};  // visible cytoplasm, membrane 0.7-1.1: about 5x darker
  const auto r3 = run_alt("three-cyto-20x", three, dir);
  check_clear(r3, "3+");
  CHECK(r3.result.cells_cytoplasmic <= r3.result.counts.total() / 20);
  auto three40 = design(kMixThree, 0.25, 82);
  three40.cyto_od_23 = {0.10, 0.20};
  check_clear(run_alt("three-cyto-40x", three40, dir), "3+");
  auto two = design(kMixTwo, 0.5, 83);
  two.cyto_od_23 = {0.04, 0.08};  // membrane 0.25-0.45: at least about 3x darker
  check_clear(run_alt("two-cyto-20x", two, dir), "2+");
}
// Stain vectors 4 degrees off the defaults and JPEG quality 70, at 0.6 um/px: the pale halo round
// each nucleus, between counterstained nucleus and cytoplasm that unmix to slightly negative DAB,
// stood as a faint membrane (22 % and 17 % 1+ cells on these two 0 designs) until a ridge's base
// was kept at or above zero (membrane.cpp). The generator's truth decides.
TEST_CASE("alt: 0 designs under stain vectors 4 degrees off and JPEG quality 70 score 0", "[alt]") {
  const Scratch scratch("alt-rot4");
  const auto& dir = scratch.dir;
  const std::pair<std::array<double, 4>, std::uint64_t> cases[] = {{kMixZero, 1113}, {{0.94, 0.06, 0.0, 0.0}, 1145}};
  for (const auto& [mix, seed] : cases) {
    auto o = design(mix, 0.6, seed);
    o.width = o.height = static_cast<int>(std::lround(500.0 / 0.6));
    o.jpeg_quality = 70;
    o.stain_rotation_deg = 4.0;
    const auto r = run_alt("rot4-" + std::to_string(seed), o, dir);
    INFO(row(r));
    REQUIRE(r.truth.score_2018 == scoring::SlideScore::Zero);
    CHECK(r.result.score == scoring::SlideScore::Zero);
    CHECK(r.result.percent.any_membrane() < 10.0);
  }
}
