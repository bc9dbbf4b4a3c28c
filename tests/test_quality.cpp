// Folds and out-of-focus areas (scoring/include/ihc/scoring/quality.hpp): cells there are
// detected but left out of the score. Fields from the independent generator (alt_generator.hpp)
// with a fold band or a blurred patch, scored through the command line; the real images must
// keep (nearly) all of their tissue.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "alt_generator.hpp"
#include "cli_runner.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/scoring/quality.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/tiling/slide.hpp"

using namespace ihc;
namespace fs = std::filesystem;

namespace {

// Block maps of every tile of a slide, as the pipeline sees them (diagnostic).
void print_quality_maps(const fs::path& path, double mpp) {
  auto slide = tiling::open_slide(path);
  if (mpp > 0) slide->set_mpp(mpp);
  engine::ScoreOptions o;
  if (const char* v = std::getenv("QDIAG_PCT")) o.quality.fold_floor_percentile = std::strtod(v, nullptr);
  const auto plan = engine::plan_tiles(*slide, o);
  for (const auto& core : plan.cores) {
    const cv::Mat rgb = engine::read_tile(*slide, plan, core);
    const auto dec = scoring::deconvolve_for_cells(rgb, o.stains, o.counterstain_residual_weight);
    const auto m = scoring::assess_quality(dec.hematoxylin, dec.dab, plan.mpp_analysis, o.quality);
    std::printf("QDIAG| %s tile %lld,%lld blocks %dx%d of %d px, reference floor H %.3f DAB %.3f total %.3f, sharpness %.3f\n",
                path.filename().c_str(), static_cast<long long>(core.x), static_cast<long long>(core.y), m.cols, m.rows,
                m.block_px, m.reference_floor_h, m.reference_floor_dab, m.reference_floor_od, m.reference_sharpness);
    for (int by = 0; by < m.rows; ++by) {
      std::string floors = "QDIAG| floor ", sharp = "  sharp ";
      for (int bx = 0; bx < m.cols; ++bx) {
        const std::size_t b = static_cast<std::size_t>(by * m.cols + bx);
        char buf[32];
        if (!m.tissue[b]) std::snprintf(buf, sizeof buf, "      .     ");
        else std::snprintf(buf, sizeof buf, " %4.1f/%-4.1f%c", 100 * m.floor_h[b], 100 * m.floor_dab[b], (m.flags[b] & scoring::kExcludedFold) ? 'F' : ' ');
        floors += buf;
        if (m.sharpness[b] < 0) std::snprintf(buf, sizeof buf, "   .  ");
        else std::snprintf(buf, sizeof buf, " %5.3f%c", m.sharpness[b], (m.flags[b] & scoring::kExcludedFocus) ? 'B' : ' ');
        sharp += buf;
      }
      std::printf("%s |%s\n", floors.c_str(), sharp.c_str());
    }
  }
}

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtod(v, nullptr) : fallback;
}

// An alt field from QDIAG_MIX=p0,p1,p2,p3 QDIAG_MPP QDIAG_SEED QDIAG_SIZE_UM QDIAG_FOLD (width µm)
// QDIAG_SHIFT QDIAG_GAIN QDIAG_COVER_LO/HI (1+ coverage) QDIAG_FOCUS (radius µm) QDIAG_BLUR
// (sigma µm) QDIAG_RECT=x,y,w,h (blurred rectangle, µm) QDIAG_WIDTH_UM QDIAG_Q (JPEG) QDIAG_ROT
// (diagnostics).
test::AltOptions alt_from_env() {
  const auto num = env_number;
  test::AltOptions o;
  o.mix = {0.4, 0.6, 0, 0};
  if (const char* v = std::getenv("QDIAG_MIX")) std::sscanf(v, "%lf,%lf,%lf,%lf", &o.mix[0], &o.mix[1], &o.mix[2], &o.mix[3]);
  o.mpp = num("QDIAG_MPP", 0.5);
  o.seed = static_cast<std::uint64_t>(num("QDIAG_SEED", 1));
  o.width = o.height = static_cast<int>(std::lround(num("QDIAG_SIZE_UM", 500) / o.mpp));
  o.fold_width_um = num("QDIAG_FOLD", 0);
  o.fold_shift_um = num("QDIAG_SHIFT", o.fold_shift_um);
  o.fold_gain = num("QDIAG_GAIN", o.fold_gain);
  o.partial_coverage[0] = num("QDIAG_COVER_LO", o.partial_coverage[0]);
  o.partial_coverage[1] = num("QDIAG_COVER_HI", o.partial_coverage[1]);
  o.focus_radius_um = num("QDIAG_FOCUS", 0);
  o.focus_blur_um = num("QDIAG_BLUR", o.focus_blur_um);
  if (const char* v = std::getenv("QDIAG_RECT"))
    std::sscanf(v, "%lf,%lf,%lf,%lf", &o.focus_rect_um[0], &o.focus_rect_um[1], &o.focus_rect_um[2], &o.focus_rect_um[3]);
  o.width = static_cast<int>(std::lround(num("QDIAG_WIDTH_UM", o.width * o.mpp) / o.mpp));
  o.jpeg_quality = static_cast<int>(num("QDIAG_Q", 0));
  o.stain_rotation_deg = num("QDIAG_ROT", 0);
  return o;
}

}  // namespace

// QDIAG_IMAGE=path [QDIAG_MPP=x], or an alt field from the QDIAG_* variables (alt_from_env).
TEST_CASE("quality block maps", "[.][quality-diag]") {
  if (const char* image = std::getenv("QDIAG_IMAGE")) {
    print_quality_maps(image, env_number("QDIAG_MPP", 0));
    return;
  }
  const test::AltOptions o = alt_from_env();
  const auto img = test::generate_alt_field(o);
  const fs::path png = test::scratch_dir("quality-diag") / "field.png";
  test::write_rgb_png(png, img.rgb);
  std::printf("QDIAG| truth %s, cells %lld, in fold %d, in blur %d\n",
              std::string(scoring::to_string(img.truth.score_2018)).c_str(),
              static_cast<long long>(img.truth.counts.total()), img.truth.cells_in_fold, img.truth.cells_in_blur);
  print_quality_maps(png, o.mpp);
}

namespace {

struct Scored {
  nlohmann::json report;
  test::AltTruth truth;
};

// Generates the field, writes it as PNG and scores it through the command line (optionally
// with a --config file holding `config`).
Scored score_field(const test::AltOptions& o, const fs::path& dir, const std::string& name,
                   const nlohmann::json& config = nullptr) {
  const auto img = test::generate_alt_field(o);
  const fs::path png = dir / (name + ".png"), json = dir / (name + ".json"), cfg = dir / (name + ".config.json");
  test::write_rgb_png(png, img.rgb);
  std::string args = "score '" + png.string() + "' --mpp " + std::to_string(o.mpp) + " --threads 2 --json '" +
                     json.string() + "'";
  if (!config.is_null()) {
    std::ofstream(cfg) << config.dump();
    args += " --config '" + cfg.string() + "'";
  }
  const auto r = test::run_cli(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Scored s{nlohmann::json::parse(test::slurp(json)), img.truth};
  std::printf("QUALITY| %-22s truth %-3s (%lld cells, %d in fold, %d in blur) scored %-3s complete %5.1f%% cells %lld "
              "excluded fold %lld focus %lld, flagged fold %.3f focus %.3f of tissue\n",
              name.c_str(), std::string(scoring::to_string(img.truth.score_2018)).c_str(),
              static_cast<long long>(img.truth.counts.total()), img.truth.cells_in_fold, img.truth.cells_in_blur,
              s.report["score"].get<std::string>().c_str(), s.report["percent"]["complete"].get<double>(),
              s.report["cells"]["total"].get<long long>(), s.report["cells"]["excluded_fold"].get<long long>(),
              s.report["cells"]["excluded_focus"].get<long long>(), s.report["quality"]["fold_fraction"].get<double>(),
              s.report["quality"]["out_of_focus_fraction"].get<double>());
  std::fflush(stdout);
  return s;
}

test::AltOptions field(const std::array<double, 4>& mix, double mpp, std::uint64_t seed, double field_um = 500) {
  test::AltOptions o;
  o.mix = mix;
  o.mpp = mpp;
  o.seed = seed;
  o.width = o.height = static_cast<int>(std::lround(field_um / mpp));
  return o;
}

}  // namespace

// Scores an alt field from the QDIAG_* variables with the rules on and off (diagnostic).
TEST_CASE("quality explore", "[.][quality-explore]") {
  const fs::path dir = test::scratch_dir("quality-explore");
  const test::AltOptions o = alt_from_env();
  score_field(o, dir, "on");
  score_field(o, dir, "off", {{"quality", {{"folds", false}, {"focus", false}}}});
}

TEST_CASE("quality: a 3+ field with an out-of-focus patch keeps its score and the blurred cells are left out",
          "[quality][alt]") {
  const fs::path dir = test::scratch_dir("quality-focus");
  auto o = field({0.1, 0.1, 0.2, 0.6}, 0.5, 4);
  o.focus_radius_um = 110;
  o.focus_blur_um = 3.0;
  o.jpeg_quality = 70;
  const auto on = score_field(o, dir, "focus-on");
  const auto off = score_field(o, dir, "focus-off", {{"quality", {{"focus", false}}}});
  REQUIRE(on.truth.score_2018 == scoring::SlideScore::ThreePlus);
  REQUIRE(on.truth.cells_in_blur >= 100);
  CHECK(on.report["score"] == "3+");
  const auto excluded = on.report["cells"]["excluded_focus"].get<long long>();
  CHECK(excluded >= on.truth.cells_in_blur / 3);
  CHECK(excluded <= on.truth.cells_in_blur * 3 / 2);
  CHECK(on.report["cells"]["excluded_fold"].get<long long>() == 0);
  CHECK(on.report["quality"]["out_of_focus_fraction"].get<double>() > 0.03);
  CHECK(on.report["warnings"].dump().find("out of focus") != std::string::npos);
  // Switched off, the same cells are scored.
  CHECK(off.report["cells"]["excluded_focus"].get<long long>() == 0);
  CHECK(off.report["cells"]["total"].get<long long>() >= on.report["cells"]["total"].get<long long>() + excluded * 9 / 10);
  CHECK(off.report["quality"]["out_of_focus_fraction"].get<double>() == 0.0);
}

TEST_CASE("quality: a tile blurred all over, between sharp ones, is left out against the slide's sharpness",
          "[quality][alt]") {
  // 1536 x 512 µm at 0.5 µm/px: three 512 µm tiles side by side; the middle one is out of focus
  // from edge to edge, so its own median is blurred and only the slide's median can tell.
  const fs::path dir = test::scratch_dir("quality-focus-tile");
  auto o = field({0.1, 0.2, 0.3, 0.4}, 0.5, 21, 512);
  o.width = static_cast<int>(std::lround(1536 / o.mpp));
  o.focus_rect_um = {512, 0, 512, 512};
  o.focus_blur_um = 3.0;
  o.jpeg_quality = 80;
  const auto on = score_field(o, dir, "tile-on");
  const auto tile_only = score_field(o, dir, "tile-own-reference", {{"quality", {{"focus_slide_reference", false}}}});
  REQUIRE(on.truth.cells_in_blur >= 150);
  const auto excluded = on.report["cells"]["excluded_focus"].get<long long>();
  const auto excluded_own = tile_only.report["cells"]["excluded_focus"].get<long long>();
  const double truth_ci = on.truth.percent.complete_intense();
  const double got_ci = on.report["percent"]["complete_intense"].get<double>();
  const double own_ci = tile_only.report["percent"]["complete_intense"].get<double>();
  std::printf("QUALITY| blurred tile: truth complete_intense %.1f %%, scored %.1f %% (slide reference) and %.1f %% "
              "(tile reference); excluded %lld and %lld of %d blurred cells\n",
              truth_ci, got_ci, own_ci, excluded, excluded_own, on.truth.cells_in_blur);
  // Against its own median the blurred tile keeps (nearly) all of its cells ...
  CHECK(excluded_own < on.truth.cells_in_blur / 4);
  // ... against the slide's, they are left out (blur also hides nuclei, so fewer are found there
  // than were drawn), and the cells still scored are about the sharp cells of the truth.
  CHECK(excluded >= on.truth.cells_in_blur / 2);
  CHECK(excluded <= on.truth.cells_in_blur * 5 / 4);
  const double scored = static_cast<double>(on.report["cells"]["total"].get<long long>());
  CHECK(std::abs(scored - static_cast<double>(on.truth.counts.total())) <= 0.15 * static_cast<double>(on.truth.counts.total()));
  CHECK(on.report["quality"]["out_of_focus_blocks_by_slide_reference"].get<long long>() > 0);
  CHECK(on.report["quality"]["out_of_focus_fraction"].get<double>() > 0.2);
  CHECK(on.report["warnings"].dump().find("out of focus") != std::string::npos);
  // The percentage the score rests on comes back to the sharp cells' truth.
  CHECK(std::abs(got_ci - truth_ci) < std::abs(own_ci - truth_ci));
  CHECK(std::abs(got_ci - truth_ci) <= 5.0);
}

TEST_CASE("quality: sharp fields without artefacts have (nearly) no excluded cells", "[quality][alt]") {
  const fs::path dir = test::scratch_dir("quality-clean");
  auto one = field({0.4, 0.6, 0, 0}, 0.5, 10);
  one.jpeg_quality = 60;
  one.stain_rotation_deg = 8;
  auto zero40 = field({0.98, 0.02, 0, 0}, 0.25, 11, 300);
  for (const auto& [o, name] : {std::pair{one, "one-q60-rot8"}, std::pair{zero40, "zero-40x"}}) {
    const auto s = score_field(o, dir, name);
    const double total = static_cast<double>(s.report["cells"]["total"].get<long long>());
    const double excluded = static_cast<double>(s.report["cells"]["excluded_focus"].get<long long>() +
                                                s.report["cells"]["excluded_fold"].get<long long>());
    CHECK(excluded <= 0.02 * (total + excluded));
    CHECK(s.report["score"].get<std::string>() == std::string(scoring::to_string(s.truth.score_2018)));
  }
}

TEST_CASE("quality: the real images and the real slide keep their tissue", "[quality][real]") {
  const fs::path data = fs::path(IHC_SOURCE_DIR) / ".." / "shared" / "data";
  const fs::path dir = test::scratch_dir("quality-real");
  for (const char* name : {"her2-score0", "her2-score1", "her2-score2", "her2-score3", "ihc-fhl2-colon", "ki67-nuclear-dab",
                           "cmu-1-small-region"}) {
    const bool slide = std::string(name).rfind("cmu", 0) == 0;
    const fs::path in = slide ? data / "slides" / (std::string(name) + ".svs") : data / "images" / (std::string(name) + ".png");
    if (!fs::exists(in)) continue;
    const fs::path out = dir / (std::string(name) + ".json");
    const auto r = test::run_cli("score '" + in.string() + "'" + (slide ? "" : " --mpp 0.6") + " --json '" + out.string() + "'");
    INFO(name << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(test::slurp(out));
    const double flagged = j["quality"]["fold_fraction"].get<double>() + j["quality"]["out_of_focus_fraction"].get<double>();
    std::printf("QUALITY| %-20s flagged %.4f of %.4f mm2 tissue, excluded %lld of %lld cells\n", name, flagged,
                j["quality"]["tissue_mm2"].get<double>(),
                j["cells"]["excluded_fold"].get<long long>() + j["cells"]["excluded_focus"].get<long long>(),
                j["cells"]["total"].get<long long>());
    CHECK(flagged <= 0.05);
    CHECK(j["cells"]["excluded_focus"].get<long long>() + j["cells"]["excluded_fold"].get<long long>() <=
          j["cells"]["total"].get<long long>() / 20 + 1);
  }
}
