// ihcscore bench SLIDE: throughput on the same tissue tiles and thread counts, in one run:
// OpenSlide read_region (what a Python user gets), the direct reader's decode alone (the
// ceiling), and full scoring. Figures are in megapixels of the read level covered per second,
// so all three count the same pixels. The headline is what a user sees: the whole score command
// against a plain OpenSlide loop over the file's own level-0 tiles that hold tissue.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include <opencv2/core.hpp>
#include <tbb/info.h>

#include "ihc/cli/options.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/cli/progress.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/text.hpp"

namespace ihc::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// The file's own level-0 tiles (its tile size) under `mask` (CV_8U, nonzero = tissue), whose pixel
// covers `mask_downsample` level-0 pixels.
std::vector<tiling::Rect> level0_tiles_under(const tiling::Slide& slide, const cv::Mat& mask, double mask_downsample) {
  const auto prop = [&](const char* key) {
    const auto it = slide.properties().find(key);
    const int v = it == slide.properties().end() ? 0 : std::atoi(it->second.c_str());
    return v > 0 ? v : 256;
  };
  const std::int64_t tw = prop("openslide.level[0].tile-width"), th = prop("openslide.level[0].tile-height");
  std::vector<tiling::Rect> tiles;
  if (mask.empty()) return tiles;
  const double ds = mask_downsample;
  const std::int64_t w0 = slide.levels()[0].width, h0 = slide.levels()[0].height;
  for (std::int64_t y = 0; y < h0; y += th)
    for (std::int64_t x = 0; x < w0; x += tw) {
      const int sx0 = static_cast<int>(static_cast<double>(x) / ds), sy0 = static_cast<int>(static_cast<double>(y) / ds);
      const int sx1 = std::min(mask.cols, static_cast<int>(std::ceil(static_cast<double>(x + tw) / ds)));
      const int sy1 = std::min(mask.rows, static_cast<int>(std::ceil(static_cast<double>(y + th) / ds)));
      if (sx1 > sx0 && sy1 > sy0 && cv::countNonZero(mask(cv::Rect(sx0, sy0, sx1 - sx0, sy1 - sy0))) > 0)
        tiles.push_back({x, y, std::min(tw, w0 - x), std::min(th, h0 - y)});
    }
  return tiles;
}

// The file's own level-0 tiles that hold tissue on its smallest level (a pixel darker than 215
// in some channel): what a plain OpenSlide script would read to cover the tissue.
std::vector<tiling::Rect> file_tissue_tiles(const tiling::Slide& slide) {
  const int last = static_cast<int>(slide.levels().size()) - 1;
  const tiling::Level& small = slide.levels()[static_cast<std::size_t>(last)];
  if (small.width * small.height > (std::int64_t{1} << 26)) return {};  // no usable overview level
  const cv::Mat overview = slide.read_region(last, 0, 0, static_cast<int>(small.width), static_cast<int>(small.height));
  cv::Mat darkest;
  cv::extractChannel(overview, darkest, 0);
  for (int c = 1; c < 3; ++c) {
    cv::Mat ch;
    cv::extractChannel(overview, ch, c);
    darkest = cv::min(darkest, ch);
  }
  return level0_tiles_under(slide, darkest < 215, small.downsample);
}

double megapixels(const std::vector<tiling::Rect>& tiles) {
  double px = 0;
  for (const auto& t : tiles) px += static_cast<double>(t.w * t.h);
  return px / 1e6;
}

// Reads `tiles` (level 0) through `slide` on `threads` threads; returns seconds.
double time_tile_reads(const tiling::Slide& slide, const std::vector<tiling::Rect>& tiles, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<std::int64_t> checksum{0};
  for_each_tile(threads, tiles.size(), [&](std::size_t k) {
    const cv::Mat m = slide.read_region(0, tiles[k].x, tiles[k].y, static_cast<int>(tiles[k].w), static_cast<int>(tiles[k].h));
    checksum += m.at<cv::Vec3b>(0, 0)[0];
  });
  return seconds_since(t0);
}

// The whole `score` command's work on a freshly opened slide (open, overview, tissue, stains,
// every tile, the report JSON), without writing files; returns seconds.
double time_whole_score(const std::string& path, const ScoringSettings& settings, ScoreOptions options, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto slide = open_for_scoring(path, settings);
  (void)apply_stain_choice(*slide, settings, options);
  options.threads = threads;
  const SlideResult r = score_slide(*slide, options);
  const std::string text = json_text(report_json(r, options), 2);
  return text.empty() ? 0.0 : seconds_since(t0);
}

// Reads every planned tile on `threads` threads; returns seconds.
double time_reads(const tiling::Slide& slide, const TilePlan& plan, int threads, bool raw_level_read,
                  Progress& bar) {
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<std::int64_t> checksum{0};
  for_each_tile(threads, plan.cores.size(), [&](std::size_t k) {
    const auto& core = plan.cores[plan.order[k]];  // in scoring's order
    cv::Mat img;
    if (raw_level_read) {
      // What a caller of openslide_read_region does: the region at the read level, full size.
      const double ds = slide.levels()[static_cast<std::size_t>(plan.read_level)].downsample;
      const double halo_l0 = plan.halo_px * plan.downsample;
      const auto w = static_cast<int>(std::lround((static_cast<double>(core.w) + 2 * halo_l0) / ds));
      const auto h = static_cast<int>(std::lround((static_cast<double>(core.h) + 2 * halo_l0) / ds));
      img = slide.read_region(plan.read_level, core.x - static_cast<std::int64_t>(halo_l0),
                              core.y - static_cast<std::int64_t>(halo_l0), w, h);
    } else {
      img = read_tile(slide, plan, core);
    }
    checksum.fetch_add(img.at<cv::Vec3b>(0, 0)[0], std::memory_order_relaxed);
    bar.advance();
  });
  return seconds_since(t0);
}

// The measurements as a markdown table (benchmarks/README.md is made of these).
std::string bench_markdown(const nlohmann::json& j) {
  std::ostringstream md;
  md << "Slide `" << j["slide"]["path"].get<std::string>() << "`: " << j["slide"]["width"] << " x "
     << j["slide"]["height"] << " px, " << j["tiles"] << " tissue tiles, " << j["megapixels"]
     << " Mpx of level " << j["slide"]["read_level"] << " read per pass; reader `"
     << j["slide"]["reader"].get<std::string>() << "`.\n\n";
  md << "Whole command (open, overview, every tissue tile, report) against OpenSlide reading the file's own "
     << j["file_tissue_tiles"] << " level-0 tiles that hold tissue on its smallest level (a pixel darker than 215; "
     << j["file_tissue_tiles_mpx"] << " Mpx), and the " << j["engine_tissue_tiles"]
     << " level-0 tiles under the engine's own tissue mask (" << j["engine_tissue_tiles_mpx"] << " Mpx, the tissue it scores):\n\n"
     << "| threads | whole score, s | OpenSlide tissue tiles, s | OpenSlide / score | OpenSlide, engine's tissue, s | "
        "OpenSlide / score |\n|---|---|---|---|---|---|\n";
  for (const auto& r : j["runs"])
    md << "| " << r["threads"] << " | " << r["whole_score_s"] << " | " << r["openslide_tissue_tiles_s"] << " | "
       << r["whole_score_vs_openslide_tissue_tiles"] << " | " << r["openslide_engine_tissue_tiles_s"] << " | "
       << r["whole_score_vs_openslide_engine_tissue_tiles"] << " |\n";
  md << "\nThe same analysis tiles:\n\n";
  md << "| threads | OpenSlide read_region Mpx/s | direct decode Mpx/s | full scoring Mpx/s | scoring / OpenSlide | "
        "scoring / decode | parallel efficiency | scoring, --decode exact, Mpx/s | exact / OpenSlide |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : j["runs"]) {
    md << "| " << r["threads"] << " | " << r["openslide_mpx_s"] << " | " << r["decode_mpx_s"] << " | "
       << r["score_mpx_s"] << " | " << r["score_vs_openslide"] << " | " << r["score_vs_decode"] << " | "
       << (r.contains("parallel_efficiency") ? r["parallel_efficiency"].dump() : std::string("n/a")) << " | "
       << r["score_exact_mpx_s"] << " | " << r["score_exact_vs_openslide"] << " |\n";
  }
  const auto& a = j["agreement"];
  md << "\nPeak RSS " << j["peak_rss_mib"] << " MiB. Score through the direct reader "
     << a["score_direct"].get<std::string>() << ", through OpenSlide " << a["score_openslide"].get<std::string>()
     << "; tumour cells " << a["cells_direct"] << " vs " << a["cells_openslide"] << " ("
     << (a["cells_identical"].get<bool>() ? std::string("identical") : a["cells_difference_percent"].dump() + " % apart")
     << "); with `--decode exact` " << a["cells_direct_exact_decode"] << " cells, "
     << (a["exact_decode_identical"].get<bool>() ? "identical to OpenSlide's" : "NOT identical to OpenSlide's")
     << ".\n";
  return md.str();
}

}  // namespace

void add_bench_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string slide;
    ScoringSettings scoring;
    std::string threads = "";
    std::string json;
    std::string markdown;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure throughput: OpenSlide read_region vs direct decode vs full scoring, same tiles and threads");
  cmd->add_option("SLIDE", args->slide, "Slide to measure")->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->remove_option(cmd->get_option("--threads"));
  cmd->add_option("--threads", args->threads, "Comma-separated thread counts (default: 1 and all cores)");
  cmd->add_option("--json", args->json, "Write the measurements as JSON to this file");
  cmd->add_option("--markdown", args->markdown, "Write the results as a markdown table to this file");
  cmd->add_flag("--force", args->force, "Replace existing --json / --markdown files");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      std::vector<int> threads;
      if (args->threads.empty()) {
        threads.push_back(1);
        if (tbb::info::default_concurrency() > 1) threads.push_back(tbb::info::default_concurrency());
      } else {
        std::stringstream ss(args->threads);
        std::string item;
        while (std::getline(ss, item, ',')) {
          char* end = nullptr;
          const long n = std::strtol(item.c_str(), &end, 10);
          if (item.empty() || *end != '\0' || n < 1 || n > 1024)
            throw EngineError(ErrorKind::usage, "--threads: expected comma-separated counts from 1 to 1024, got '" +
                                               args->threads + "'");
          threads.push_back(static_cast<int>(n));
        }
      }
      check_distinct_outputs({{"SLIDE", args->slide}, {"--json", args->json}, {"--markdown", args->markdown}});
      if (!args->json.empty()) check_output_path(args->json, args->force);
      if (!args->markdown.empty()) check_output_path(args->markdown, args->force);
      ScoreOptions options = make_score_options(args->scoring);
      const auto fast = open_for_scoring(args->slide, args->scoring);
      // OpenSlide reads no resolution from a generic TIFF; the direct reader reads its tags, and
      // fills it in where OpenSlide has none (--mpp, if given, overrides both).
      ScoringSettings reference_settings = args->scoring;
      MppUse reference_use = MppUse::override_file;
      if (!reference_settings.mpp && fast->mpp()) {
        reference_settings.mpp = fast->mpp();
        reference_use = MppUse::fill_missing;
      }
      const auto reference =
          open_for_scoring(args->slide, reference_settings, {.force_openslide = true}, reference_use);
      apply_stains_and_warn(*fast, args->scoring, options);
      const TilePlan plan = plan_tiles(*fast, options);
      double source_px = 0;
      for (const auto& core : plan.cores) source_px += tile_source_pixels(*fast, plan, core);
      const double mpx = source_px / 1e6;
      std::fprintf(stderr, "bench: %s, %zu tissue tiles, %.0f Mpx of level %d, reader %s\n", args->slide.c_str(),
                   plan.cores.size(), mpx, plan.read_level, fast->reader().c_str());
      const std::vector<tiling::Rect> file_tiles = file_tissue_tiles(*reference);
      const double file_tiles_mpx = megapixels(file_tiles);
      // The same tissue as the engine's: the level-0 tiles under the mask its reader is given by
      // default (also with --read-glass or --decode exact, which read more than that).
      const std::vector<tiling::Rect> engine_tiles =
          level0_tiles_under(*reference, tissue_read_mask(plan, ScoreOptions{}), plan.thumbnail_downsample);
      const double engine_tiles_mpx = megapixels(engine_tiles);

      nlohmann::json runs = nlohmann::json::array();
      double score1 = 0;
      SlideResult last_fast, last_exact, last_reference;
      for (int n : threads) {
        Progress bar("bench " + std::to_string(n) + " threads", static_cast<std::int64_t>(plan.cores.size()) * 4, "tiles/s");
        const double t_os = time_reads(*reference, plan, n, true, bar);
        const double t_dec = [&] {  // the decode ceiling reads as scoring does
          const ScopedReadHints hints(*fast, plan, options);
          return time_reads(*fast, plan, n, false, bar);
        }();
        options.threads = n;
        const auto t0 = std::chrono::steady_clock::now();
        last_fast = score_slide(*fast, options, [&](std::int64_t, std::int64_t) { bar.advance(); });
        const double t_score = seconds_since(t0);
        // The same with --decode exact (full-size decoding, as through OpenSlide).
        ScoreOptions exact_options = options;
        exact_options.exact_decode = true;
        const auto t1 = std::chrono::steady_clock::now();
        last_exact = score_slide(*fast, exact_options, [&](std::int64_t, std::int64_t) { bar.advance(); });
        const double t_exact = seconds_since(t1);
        // The headline a user sees: the whole command against OpenSlide reading the tissue tiles.
        const double t_whole = time_whole_score(args->slide, args->scoring, make_score_options(args->scoring), n);
        const double t_os_tissue = file_tiles.empty() ? 0.0 : time_tile_reads(*reference, file_tiles, n);
        const double t_os_engine = engine_tiles.empty() ? 0.0 : time_tile_reads(*reference, engine_tiles, n);
        bar.finish();
        const double os_rate = mpx / t_os, dec_rate = mpx / t_dec, score_rate = mpx / t_score, exact_rate = mpx / t_exact;
        if (n == 1) score1 = score_rate;
        nlohmann::json r = {{"threads", n},
                            {"openslide_mpx_s", round_to(os_rate, 2)},
                            {"decode_mpx_s", round_to(dec_rate, 2)},
                            {"score_mpx_s", round_to(score_rate, 2)},
                            {"score_vs_openslide", round_to(score_rate / os_rate, 3)},
                            {"score_vs_decode", round_to(score_rate / dec_rate, 3)},
                            {"score_exact_mpx_s", round_to(exact_rate, 2)},
                            {"score_exact_vs_openslide", round_to(exact_rate / os_rate, 3)},
                            {"whole_score_s", round_to(t_whole, 3)},
                            {"openslide_tissue_tiles_s", round_to(t_os_tissue, 3)},
                            {"whole_score_vs_openslide_tissue_tiles", t_whole > 0 ? round_to(t_os_tissue / t_whole, 3) : 0.0},
                            {"openslide_engine_tissue_tiles_s", round_to(t_os_engine, 3)},
                            {"whole_score_vs_openslide_engine_tissue_tiles", t_whole > 0 ? round_to(t_os_engine / t_whole, 3) : 0.0},
                            {"seconds", {{"openslide", round_to(t_os, 3)}, {"decode", round_to(t_dec, 3)}, {"score", round_to(t_score, 3)}, {"score_exact", round_to(t_exact, 3)}}}};
        std::printf("threads %3d  whole score %.2f s  OpenSlide reading the %zu tissue tiles of the file (%.0f Mpx) %.2f s  "
                    "-> %.2fx\n",
                    n, t_whole, file_tiles.size(), file_tiles_mpx, t_os_tissue, t_whole > 0 ? t_os_tissue / t_whole : 0.0);
        if (!engine_tiles.empty())
          std::printf("threads %3d  the same tissue as the engine's mask: OpenSlide reading its %zu tiles (%.0f Mpx) %.2f s  "
                      "-> %.2fx\n",
                      n, engine_tiles.size(), engine_tiles_mpx, t_os_engine, t_whole > 0 ? t_os_engine / t_whole : 0.0);
        if (score1 > 0) r["parallel_efficiency"] = round_to(score_rate / (score1 * n), 3);
        std::printf("threads %3d  openslide %8.1f Mpx/s  decode %8.1f Mpx/s  score %8.1f Mpx/s  score/openslide %5.2fx  score/decode %4.2f  exact-decode score %8.1f Mpx/s (%4.2fx)%s\n",
                    n, os_rate, dec_rate, score_rate, score_rate / os_rate, score_rate / dec_rate, exact_rate, exact_rate / os_rate,
                    score1 > 0 ? (std::string("  efficiency ") + std::to_string(round_to(score_rate / (score1 * n), 2)).substr(0, 4)).c_str() : "");
        std::fflush(stdout);
        runs.push_back(r);
      }
      // The same slide scored through OpenSlide: does the direct path change the answer? OpenSlide
      // decodes at full size whatever the options say, so the reference is scored as --decode
      // exact, overview included (with fast options its overview is read from another level than
      // the direct reader's exact one, and pale tissue at the mask's threshold can differ).
      options.threads = threads.back();
      ScoreOptions reference_options = options;
      reference_options.exact_decode = true;
      last_reference = score_slide(*reference, reference_options);
      const auto& a = last_fast.counts.by_class;
      const auto& b = last_reference.counts.by_class;
      const bool exact_identical = last_exact.counts.by_class == b && last_exact.score == last_reference.score;
      const double cells_diff_pct =
          last_reference.counts.total() > 0
              ? 100.0 * std::abs(static_cast<double>(last_fast.counts.total() - last_reference.counts.total())) /
                    static_cast<double>(last_reference.counts.total())
              : 0.0;
      nlohmann::json j = {
          {"version", version_string()},
          {"date", today()},
          {"machine", {{"cpu", cpu_model()}, {"cores", tbb::info::default_concurrency()}}},
          {"slide", {{"path", args->slide}, {"width", fast->levels()[0].width}, {"height", fast->levels()[0].height},
                     {"reader", fast->reader()}, {"read_level", plan.read_level}}},
          {"tiles", plan.cores.size()},
          {"file_tissue_tiles", file_tiles.size()},
          {"file_tissue_tiles_mpx", round_to(file_tiles_mpx, 1)},
          {"engine_tissue_tiles", engine_tiles.size()},
          {"engine_tissue_tiles_mpx", round_to(engine_tiles_mpx, 1)},
          {"megapixels", round_to(mpx, 1)},
          {"runs", runs},
          {"peak_rss_mib", round_to(peak_rss_mib(), 1)},
          {"agreement",
           {{"score_direct", std::string(scoring::to_string(last_fast.score))},
            {"score_openslide", std::string(scoring::to_string(last_reference.score))},
            {"cells_direct", last_fast.counts.total()},
            {"cells_openslide", last_reference.counts.total()},
            {"cells_identical", a == b},
            {"cells_difference_percent", round_to(cells_diff_pct, 3)},
            {"cells_direct_exact_decode", last_exact.counts.total()},
            {"exact_decode_identical", exact_identical},
            {"complete_intense_direct", round_to(last_fast.percent.complete_intense(), 3)},
            {"complete_intense_openslide", round_to(last_reference.percent.complete_intense(), 3)}}}};
      std::printf("peak RSS %.0f MiB; score direct %s vs OpenSlide %s; cells %lld vs %lld (%s); with --decode exact "
                  "%lld cells (%s)\n",
                  peak_rss_mib(), std::string(scoring::to_string(last_fast.score)).c_str(),
                  std::string(scoring::to_string(last_reference.score)).c_str(),
                  static_cast<long long>(last_fast.counts.total()), static_cast<long long>(last_reference.counts.total()),
                  a == b ? "identical" : "differ", static_cast<long long>(last_exact.counts.total()),
                  exact_identical ? "identical to OpenSlide" : "differ from OpenSlide");
      if (!args->json.empty()) write_file_atomically(args->json, json_text(j, 2) + "\n", args->force);
      if (!args->markdown.empty()) write_file_atomically(args->markdown, bench_markdown(j), args->force);
      return kExitOk;
    };
  });
}

}  // namespace ihc::cli
