// Synthetic slides with known answers, scored end to end through the same code the CLI uses.
#include <catch2/catch.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/synth/synth.hpp"
#include "ihc/tiling/slide.hpp"

using namespace ihc;
namespace fs = std::filesystem;

namespace {

struct Case {
  const char* name;
  std::array<double, 4> mix;
  const char* expected;  // what the mix is designed to give under ASCO/CAP 2018
};

ihc::synth::SynthTruth make_slide(const fs::path& path, const std::array<double, 4>& mix, std::uint64_t seed,
                              double mpp = 0.25) {
  ihc::synth::SynthOptions o;
  o.width = 4800;
  o.height = 3600;
  o.mpp = mpp;
  o.seed = seed;
  o.mix = mix;
  return ihc::synth::write_synthetic_slide(path, o);
}

}  // namespace

TEST_CASE("synthetic 40x slides designed as 0, 1+, 2+ and 3+ get those scores", "[end-to-end][synth]") {
  const auto dir = test::scratch_dir("e2e");
  const Case cases[] = {
      {"zero", {0.98, 0.02, 0.0, 0.0}, "0"},
      {"one", {0.45, 0.55, 0.0, 0.0}, "1+"},
      {"two", {0.35, 0.15, 0.5, 0.0}, "2+"},
      {"three", {0.2, 0.1, 0.2, 0.5}, "3+"},
  };
  std::uint64_t seed = 11;
  for (const auto& c : cases) {
    const fs::path path = dir / (std::string(c.name) + ".svs");
    const auto truth = make_slide(path, c.mix, seed++);
    REQUIRE(std::string(scoring::to_string(truth.score_2018)) == c.expected);

    const auto slide = tiling::open_slide(path);
    const engine::ScoreOptions options;
    const auto result = engine::score_slide(*slide, options);
    INFO(c.name << ": truth complete_intense " << truth.percent.complete_intense() << ", complete "
                << truth.percent.complete() << "; measured " << result.percent.complete_intense() << ", "
                << result.percent.complete() << ", cells " << result.counts.total() << " of truth "
                << truth.counts.total());
    CHECK(std::string(scoring::to_string(result.score)) == c.expected);
    CHECK(std::abs(result.percent.complete_intense() - truth.percent.complete_intense()) <= 5.0);
    CHECK(std::abs(result.percent.complete() - truth.percent.complete()) <= 10.0);
    // Most tumour cells are found, and stroma is not counted as tumour.
    CHECK(result.counts.total() >= truth.counts.total() * 0.7);
    CHECK(result.counts.total() <= truth.counts.total() * 1.3);
  }
}

TEST_CASE("a 20x synthetic slide scores like the same design at 40x", "[end-to-end][synth]") {
  const auto dir = test::scratch_dir("e2e-20x");
  const auto truth = make_slide(dir / "s20.svs", {0.2, 0.1, 0.2, 0.5}, 5, 0.5);
  const auto slide = tiling::open_slide(dir / "s20.svs");
  REQUIRE(slide->mpp().has_value());
  CHECK(*slide->mpp() == Approx(0.5));
  const auto result = engine::score_slide(*slide, engine::ScoreOptions{});
  CHECK(result.mpp_analysis == Approx(0.5));
  CHECK(result.score == truth.score_2018);
  CHECK(std::abs(result.percent.complete_intense() - truth.percent.complete_intense()) <= 5.0);
}

TEST_CASE("the slide result does not depend on the number of threads", "[end-to-end][determinism]") {
  const auto dir = test::scratch_dir("e2e-threads");
  make_slide(dir / "t.svs", {0.3, 0.3, 0.2, 0.2}, 3);
  const auto slide = tiling::open_slide(dir / "t.svs");
  engine::ScoreOptions one, two;
  one.threads = 1;
  two.threads = 2;
  const auto a = engine::score_slide(*slide, one);
  const auto b = engine::score_slide(*slide, two);
  CHECK(a.counts.by_class == b.counts.by_class);
  CHECK(a.cells_detected == b.cells_detected);
  CHECK(a.tiles_analysed == b.tiles_analysed);
}

TEST_CASE("synth then score through the command line gives the truth file's score", "[end-to-end][cli]") {
  const auto dir = test::scratch_dir("e2e-cli");
  const auto slide = (dir / "cli.svs").string();
  const auto made = test::run_cli("synth '" + slide + "' --width 4000 --height 3000 --seed 4 --mix 0.1,0.1,0.3,0.5");
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const auto truth = nlohmann::json::parse(test::slurp(slide + ".truth.json"));
  const auto scored = test::run_cli("score '" + slide + "' --json '" + slide + ".json' --threads 2");
  INFO(scored.err);
  REQUIRE(scored.exit_code == 0);
  const auto report = nlohmann::json::parse(test::slurp(slide + ".json"));
  CHECK(report["score"] == truth["expected_score"]["asco-cap-2018"]);
  CHECK(report["threads"].get<int>() >= 1);
  CHECK(report["threads"].get<int>() <= 2);  // capped at the cores
  CHECK(scored.out.find(report["score"].get<std::string>()) != std::string::npos);
}

TEST_CASE("the report says how close the decisive percentage is to its threshold, and recommends ISH for 2+",
          "[end-to-end][cli][confidence]") {
  const auto dir = test::scratch_dir("e2e-decisive");
  const auto slide = (dir / "two.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 4800 --height 3600 --seed 12 --mix 0.35,0.15,0.5,0").exit_code == 0);
  const auto r = test::run_cli("score '" + slide + "' --json '" + slide + ".json'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(test::slurp(slide + ".json"));
  REQUIRE(j["score"] == "2+");
  CHECK(j["reflex_ish"].get<std::string>().find("ISH") != std::string::npos);
  const auto& d = j["decisive"];
  // 2+ with no 3+ cells: decided by complete staining against 10 %, far above it here.
  CHECK(d["metric"] == "complete");
  CHECK(d["threshold"] == 10.0);
  CHECK(d["percent"].get<double>() == Approx(j["percent"]["complete"].get<double>()).margin(0.01));
  CHECK(d["ci95"][0].get<double>() <= d["percent"].get<double>());
  CHECK(d["ci95"][1].get<double>() >= d["percent"].get<double>());
  CHECK(d["ci95"][1].get<double>() - d["ci95"][0].get<double>() > 0.1);  // several tiles: a real interval
  CHECK(d["borderline"] == false);
  CHECK(r.out.find("reflex ISH") != std::string::npos);
}

TEST_CASE("on a one-tile image the decisive interval is the binomial interval of the cells counted, not a point",
          "[end-to-end][cli][confidence]") {
  const auto dir = test::scratch_dir("e2e-one-tile");
  const auto json = dir / "r.json";
  const auto r = test::run_cli("score ../shared/data/images/her2-score2.png --mpp 0.6 --json '" + json.string() + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(test::slurp(json));
  REQUIRE(j["tiles"]["analysed"] == 1);
  const auto& d = j["decisive"];
  const double n = j["cells"]["total"].get<double>(), p = d["percent"].get<double>() / 100.0;
  REQUIRE(n > 10);
  // Wilson score interval, 95 %: the width the cells alone allow.
  const double z = 1.959964, z2n = z * z / n;
  const double half = 100.0 * z * std::sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
  const double width = d["ci95"][1].get<double>() - d["ci95"][0].get<double>();
  INFO("cells " << n << ", " << d["metric"] << " " << 100 * p << " %, interval " << d["ci95"].dump());
  CHECK(width == Approx(2 * half).epsilon(0.05));
  CHECK(width > 5.0);  // a few hundred cells or fewer: several points either way
  CHECK(d["ci95"][0].get<double>() <= d["percent"].get<double>());
  CHECK(d["ci95"][1].get<double>() >= d["percent"].get<double>());
}

TEST_CASE("with exact decoding the direct reader gives exactly OpenSlide's cells and score", "[end-to-end][tiling]") {
  // A 40x slide scored at 0.5 um/px: the fast path decodes JPEG tiles at DCT scale 1/2, which is
  // not bit-identical to full decoding + area averaging (OpenSlide's path). --decode exact must
  // give the same cells, class by class, as OpenSlide.
  const auto dir = test::scratch_dir("exact-decode");
  const fs::path path = dir / "slide.svs";
  make_slide(path, {0.3, 0.3, 0.2, 0.2}, 23);
  const auto direct = tiling::open_slide(path);
  const auto reference = tiling::open_slide(path, {.force_openslide = true});
  REQUIRE(direct->reader() != reference->reader());
  engine::ScoreOptions exact;
  exact.exact_decode = true;
  const auto a = engine::score_slide(*direct, exact);
  const auto b = engine::score_slide(*reference, engine::ScoreOptions{});
  REQUIRE(b.counts.total() > 1000);
  CHECK(a.counts.by_class == b.counts.by_class);
  CHECK(a.cells_detected == b.cells_detected);
  CHECK(a.score == b.score);
  // The fast default reads other pixels but must not change the answer.
  const auto fast = engine::score_slide(*direct, engine::ScoreOptions{});
  CHECK(fast.score == b.score);
  CHECK(std::abs(static_cast<double>(fast.counts.total() - b.counts.total())) <= 0.01 * static_cast<double>(b.counts.total()));
}

TEST_CASE("glass source tiles are not decoded, and the cells and score are those of reading every tile",
          "[end-to-end][cli][glass]") {
  const auto dir = test::scratch_dir("e2e-glass");
  const auto slide = (dir / "g.svs").string();
  REQUIRE(test::run_cli("synth '" + slide + "' --width 8000 --height 6000 --seed 31 --mix 0.3,0.3,0.2,0.2").exit_code == 0);
  auto score = [&](const std::string& extra, const std::string& name) {
    const auto json = (dir / name).string();
    const auto r = test::run_cli("score '" + slide + "' --json '" + json + "' " + extra);
    INFO(extra << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(test::slurp(json));
  };
  const auto skipping = score("", "skip.json");
  const auto reading = score("--read-glass", "read.json");
  // The synthetic tissue is a blob on glass: some source tiles of the tissue tiles are glass.
  CHECK(skipping["tiles"]["source_reads_skipped_as_glass"].get<int>() > 0);
  CHECK(reading["tiles"]["source_reads_skipped_as_glass"] == 0);
  CHECK(skipping["cells"] == reading["cells"]);
  CHECK(skipping["percent"] == reading["percent"]);
  CHECK(skipping["score"] == reading["score"]);
  // The reference path (exact decoding) always reads every tile.
  CHECK(score("--decode exact", "exact.json")["tiles"]["source_reads_skipped_as_glass"] == 0);
}
