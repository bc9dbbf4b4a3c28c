// ihcscore score SLIDE: the whole pipeline on one slide.
#include <cstdio>
#include <iostream>

#include "ihc/engine/cli_common.hpp"
#include "ihc/engine/commands.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/progress.hpp"
#include "ihc/engine/report.hpp"

namespace ihc::engine {

void add_score_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string slide;
    ScoringCli scoring;
    std::string json;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("score", "Score one slide or image: HER2 0, 1+, 2+, 3+ and the numbers behind it");
  cmd->add_option("SLIDE", args->slide, "Whole-slide image (any OpenSlide format) or plain image (PNG, JPEG, TIFF)")
      ->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->add_option("--json", args->json, "Write the full report as JSON to this file");
  cmd->add_flag("--force", args->force, "Replace output files that already exist");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      const ScoreOptions options = make_score_options(args->scoring);
      if (!args->json.empty()) check_output_path(args->json, args->force);
      const auto slide = open_for_scoring(args->slide, args->scoring);
      SlideResult result;
      {
        Progress bar("scoring", 0, "tiles/s");
        try {
          result = score_slide(*slide, options, [&](std::int64_t, std::int64_t total) {
            bar.set_total(total);
            bar.advance();
          });
        } catch (const tiling::SlideError& e) {
          throw CommandError(kExitInput, args->slide + ": " + e.what());
        } catch (const std::invalid_argument& e) {
          throw CommandError(kExitUsage, args->slide + ": " + e.what());
        }
      }
      if (!args->json.empty())
        write_file_atomically(args->json, report_json(result, options).dump(2) + "\n", args->force);
      std::cout << report_summary(result, options);
      if (!args->json.empty()) std::cout << "  report: " << args->json << "\n";
      return kExitOk;
    };
  });
}

}  // namespace ihc::engine
