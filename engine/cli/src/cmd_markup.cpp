// ihcscore markup SLIDE --region x,y,w,h --out FILE.png: the region at analysis resolution with
// every cell's outline coloured by its class, like the markup images of commercial scorers.
#include <array>
#include <cstdio>
#include <iostream>

#include <opencv2/imgproc.hpp>

#include "ihc/cli/options.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/outputs.hpp"
#include "ihc/synth/synth.hpp"

namespace ihc::cli {

void add_markup_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string slide;
    ScoringSettings scoring;
    std::string region;
    std::string out;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("markup", "Draw each cell's outline coloured by class (0 blue, 1+ yellow, 2+ orange, 3+ red)");
  cmd->add_option("SLIDE", args->slide, "Slide or image")->required();
  cmd->add_option("--region", args->region, "x,y,w,h in level-0 pixels (at most 8 Mpx at analysis resolution)")
      ->required();
  cmd->add_option("--out", args->out,
                  "PNG to write (with --roi: only the cells inside the region, which is drawn in green; what it "
                  "leaves out in grey)")
      ->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->add_flag("--force", args->force, "Replace the output if it exists");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      std::vector<double> r;
      try {
        r = synth::parse_number_list(args->region, 4, "--region");
      } catch (const std::invalid_argument& e) {
        throw EngineError(ErrorKind::usage, e.what());
      }
      ScoreOptions options = make_score_options(args->scoring);
      options.cells.keep_outlines = true;
      check_distinct_outputs({{"SLIDE", args->slide},
                              {"--roi", args->scoring.roi},
                              {"--config", args->scoring.config},
                              {"--out", args->out}});
      check_png_name("--out", args->out);
      check_output_path(args->out, args->force);
      const auto slide = open_for_scoring(args->slide, args->scoring);
      apply_stains_and_warn(*slide, args->scoring, options);
      const auto& l0 = slide->levels().front();
      const tiling::Rect region{static_cast<std::int64_t>(r[0]), static_cast<std::int64_t>(r[1]),
                                static_cast<std::int64_t>(r[2]), static_cast<std::int64_t>(r[3])};
      if (region.x < 0 || region.y < 0 || region.w <= 0 || region.h <= 0 || region.x + region.w > l0.width ||
          region.y + region.h > l0.height)
        throw EngineError(ErrorKind::usage, args->slide + ": --region " + args->region + " is not inside the slide (" +
                                           std::to_string(l0.width) + " x " + std::to_string(l0.height) + " px)");
      TilePlan plan;
      try {
        plan = plan_geometry(*slide, options);
      } catch (const std::invalid_argument& e) {
        throw EngineError(ErrorKind::usage, args->slide + ": " + e.what());
      }
      const double d = plan.downsample;
      if (static_cast<double>(region.w) / d * static_cast<double>(region.h) / d > 8e6)
        throw EngineError(ErrorKind::usage, args->slide + ": --region is larger than 8 Mpx at " +
                                           std::to_string(plan.mpp_analysis) + " um/px; choose a smaller one");
      cv::Mat rgb;
      std::vector<SlideCell> cells;
      try {
        cells = analyse_tile(*slide, plan, options, region, &rgb);
      } catch (const tiling::SlideError& e) {
        throw EngineError(ErrorKind::input, args->slide + ": " + e.what());
      }
      // Crop the halo away; image pixel = (level-0 - origin) / d.
      const int cw = static_cast<int>(std::ceil(static_cast<double>(region.w) / d));
      const int ch = static_cast<int>(std::ceil(static_cast<double>(region.h) / d));
      cv::Mat view = rgb(cv::Rect(plan.halo_px, plan.halo_px, cw, ch)).clone();
      const double ox = static_cast<double>(region.x), oy = static_cast<double>(region.y);
      std::array<int, 4> counts{};
      for (const auto& c : cells) {
        if (!c.counted || c.outline.size() < 3) continue;
        if (!options.roi.empty() && !options.roi.contains(c.x, c.y)) continue;  // scored as `score --roi` does
        ++counts[static_cast<std::size_t>(c.cell_class)];
        std::vector<cv::Point> poly;
        for (const auto& p : c.outline)
          poly.emplace_back(static_cast<int>(std::lround((p.x - ox) / d - 0.5)),
                            static_cast<int>(std::lround((p.y - oy) / d - 0.5)));
        const cv::Vec3b col = class_colour(c.cell_class);
        cv::polylines(view, poly, true, cv::Scalar(col[0], col[1], col[2]), 1, cv::LINE_AA);
        cv::circle(view, {static_cast<int>((c.x - ox) / d), static_cast<int>((c.y - oy) / d)}, 1,
                   cv::Scalar(col[0], col[1], col[2]), cv::FILLED);
      }
      // The region of interest, as `score --roi` counts it: cells outside it are not drawn. Green
      // round what is scored, grey round what it leaves out (QuPath's Ignore*, ImageScope's negative regions).
      const auto draw_rings = [&](const std::vector<scoring::Polygon>& polygons, const cv::Scalar& colour) {
        for (const auto& polygon : polygons)
          for (const auto& ring : polygon.rings) {
            std::vector<cv::Point> pts;
            for (const auto& p : ring)
              pts.emplace_back(static_cast<int>(std::lround((p.x - ox) / d)),
                               static_cast<int>(std::lround((p.y - oy) / d)));
            cv::polylines(view, pts, true, colour, 2, cv::LINE_AA);
          }
      };
      draw_rings(options.roi.polygons(), cv::Scalar(0, 160, 0));
      draw_rings(options.roi.excluded(), cv::Scalar(128, 128, 128));
      // Legend below.
      cv::Mat out(view.rows + 28, std::max(view.cols, 420), CV_8UC3, cv::Scalar(255, 255, 255));
      view.copyTo(out(cv::Rect(0, 0, view.cols, view.rows)));
      int x = 8;
      const char* names[4] = {"0", "1+", "2+", "3+"};
      for (std::size_t k = 0; k < 4; ++k) {
        const cv::Vec3b col = class_colour(static_cast<scoring::CellClass>(k));
        cv::rectangle(out, cv::Rect(x, view.rows + 8, 12, 12), cv::Scalar(col[0], col[1], col[2]), cv::FILLED);
        const std::string label = std::string(names[k]) + ": " + std::to_string(counts[k]);
        cv::putText(out, label, {x + 16, view.rows + 19}, cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(20, 20, 20), 1,
                    cv::LINE_AA);
        x += 100;
      }
      write_png(args->out, out, args->force);
      std::cout << args->out << ": " << (counts[0] + counts[1] + counts[2] + counts[3]) << " cells (0: " << counts[0]
                << ", 1+: " << counts[1] << ", 2+: " << counts[2] << ", 3+: " << counts[3] << ") at "
                << plan.mpp_analysis << " um/px\n";
      return kExitOk;
    };
  });
}

}  // namespace ihc::cli
