// ihcscore score SLIDE: the whole pipeline on one slide.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>

#include "ihc/cli/options.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/engine/report_folder.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/outputs.hpp"
#include "ihc/cli/progress.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/signals.hpp"

namespace ihc::cli {
namespace {
}  // namespace

void add_score_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string slide;
    ScoringSettings scoring;
    std::string json;
    std::string heatmap;
    std::string geojson;
    bool geojson_tiles = false;
    bool geojson_all = false;
    std::string report;
    double report_mpp = 0;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("score", "Score one slide or image: HER2 0, 1+, 2+, 3+ and the numbers behind it");
  cmd->add_option("SLIDE", args->slide, "Whole-slide image (any OpenSlide format) or plain image (PNG, JPEG, TIFF)")
      ->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->add_option("--json", args->json, "Write the full report as JSON to this file");
  cmd->add_option("--heatmap", args->heatmap, "Write the slide overview with per-tile % complete membranes (PNG)");
  cmd->add_option("--geojson", args->geojson, "Write every counted cell as GeoJSON for QuPath (level-0 pixels)");
  cmd->add_flag("--geojson-tiles", args->geojson_tiles, "Also write the analysed tiles into the GeoJSON");
  cmd->add_flag("--geojson-all", args->geojson_all,
                "Also write every detected cell the tumour-cell rules left out, classed 'Not counted', with the "
                "rules it failed (left_out) and its nucleus centre");
  cmd->add_option("--report", args->report,
                  "Write a report folder to open in a browser (DIR/index.html, no server): the zoomable slide with "
                  "every cell coloured by class, a heatmap and the numbers behind the score");
  cmd->add_option("--report-mpp", args->report_mpp,
                  "Resolution of the report's finest level, um/px (default: the analysis resolution); the nearest "
                  "power of two from 4x finer (read again from the slide) to 8x coarser")
      ->check(finite_positive());
  cmd->add_flag("--force", args->force, "Replace output files that already exist");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      // From here on Ctrl-C / SIGTERM exits 130 with one line, and leaves no output and no
      // temporary behind (see OutputSet and RemoveOnSignal).
      const RemoveOnSignal on_signal({});
      ScoreOptions options = make_score_options(args->scoring);
      if ((args->geojson_all || args->geojson_tiles) && args->geojson.empty())
        throw EngineError(ErrorKind::usage, std::string(args->geojson_all ? "--geojson-all" : "--geojson-tiles") +
                                                " adds to the GeoJSON file: give --geojson FILE too");
      check_distinct_outputs({{"SLIDE", args->slide},
                              {"--roi", args->scoring.roi},
                              {"--config", args->scoring.config},
                              {"--json", args->json},
                              {"--heatmap", args->heatmap},
                              {"--geojson", args->geojson},
                              {"--report", args->report}});
      check_inputs_outside({{"SLIDE", args->slide}, {"--roi", args->scoring.roi}, {"--config", args->scoring.config}},
                           "--report", args->report);
      check_png_name("--heatmap", args->heatmap);
      for (const auto* out : {&args->json, &args->heatmap, &args->geojson})
        if (!out->empty()) check_output_path(*out, args->force);
      if (!args->geojson.empty()) {
        options.keep_cells = true;
        options.keep_left_out = args->geojson_all;
        options.cells.keep_outlines = true;
      }
      const auto slide = open_for_scoring(args->slide, args->scoring);
      std::unique_ptr<ReportFolder> report;
      if (!args->report.empty()) {
        report = std::make_unique<ReportFolder>(args->report, args->force, args->report_mpp);
        report->attach(*slide, options);
      }
      SlideResult result;
      try {
        apply_stains_and_warn(*slide, args->scoring, options);
        Progress bar("scoring", 0, "tiles/s");
        result = score_slide(*slide, options, [&](std::int64_t, std::int64_t total) {
          bar.set_total(total);
          bar.advance();
        });
      } catch (const tiling::SlideError& e) {
        throw EngineError(ErrorKind::input, args->slide + ": " + e.what());
      } catch (const std::invalid_argument& e) {
        throw EngineError(ErrorKind::usage, args->slide + ": " + e.what());
      } catch (const std::bad_alloc&) {
        throw EngineError(ErrorKind::input, args->slide + ": too large to score here (" +
                                           std::to_string(slide->levels().front().width) + " x " +
                                           std::to_string(slide->levels().front().height) +
                                           " px): memory ran out");
      }
      {
        // All outputs or none: a failure writing the last one takes the others back out.
        OutputSet outputs;
        if (!args->json.empty())
          write_file_atomically(args->json, json_text(report_json(result, options), 2) + "\n", args->force);
        if (!args->heatmap.empty()) write_png(args->heatmap, render_heatmap(result), args->force);
        if (!args->geojson.empty())
          write_geojson(args->geojson, result, args->geojson_tiles, args->geojson_all, args->force);
        if (report) report->commit(*slide, result, options, report_json(result, options));
        outputs.commit();
      }
      std::cout << report_summary(result, options);
      if (!args->json.empty()) std::cout << "  report: " << args->json << "\n";
      if (!args->heatmap.empty()) std::cout << "  heatmap: " << args->heatmap << "\n";
      if (!args->geojson.empty()) std::cout << "  cells (GeoJSON): " << args->geojson << "\n";
      if (!args->report.empty()) std::cout << "  report folder: " << args->report << "/index.html\n";
      std::cout.flush();
      if (result.tiles_failed > 0) {
        // Some tissue tiles could not be read: the result (a score without them, or not
        // evaluable when too many are missing) is written, and the exit code says it is partial.
        const auto first = std::find_if(result.tiles.begin(), result.tiles.end(),
                                        [](const TileResult& t) { return t.failed; });
        std::string detail;
        if (first != result.tiles.end())
          detail = " (first at level-0 x " + std::to_string(first->region.x) + ", y " +
                   std::to_string(first->region.y) + ": " + first->error + ")";
        const bool scored = result.score != scoring::SlideScore::NotEvaluable;
        std::fprintf(stderr, "ihcscore: warning: %s: %lld of %lld tissue tiles could not be read%s; %s\n",
                     args->slide.c_str(), static_cast<long long>(result.tiles_failed),
                     static_cast<long long>(result.tiles_tissue), one_line(detail).c_str(),
                     scored ? "scored without them" : "not evaluable");
        return kExitPartial;
      }
      return kExitOk;
    };
  });
}

}  // namespace ihc::cli
