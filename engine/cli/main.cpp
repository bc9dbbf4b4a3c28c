// ihcscore: HER2 IHC scoring of whole-slide images. See README.md.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "ihc/cli/commands.hpp"
#include "ihc/engine/allocator.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/signals.hpp"

int main(int argc, char** argv) {
  using namespace ihc::cli;
  ihc::engine::set_interrupted_exit_status(kExitInterrupted);
  ihc::engine::ignore_file_size_signal();
  ihc::engine::keep_tile_buffers_mapped();
  CLI::App app{"ihcscore " IHC_VERSION_STRING
               " - scores HER2 immunohistochemistry whole-slide images (ASCO/CAP 0, 1+, 2+, 3+)"};
  app.set_version_flag("--version", "ihcscore " IHC_VERSION_STRING);
  app.require_subcommand(1);
  CommandRunner run;
  add_score_command(app, run);
  add_synth_command(app, run);
  add_bench_command(app, run);
  add_markup_command(app, run);
  add_calibrate_command(app, run);
  add_ish_command(app, run);
  add_validate_command(app, run);
  add_deconvolve_command(app, run);
  add_batch_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ihcscore: usage error: %s (see ihcscore --help)\n", one_line(e.what()).c_str());
    return kExitUsage;
  }
  // An empty value ('--json ""', '--roi ""') is a mistake, never "not given".
  for (const CLI::App* sub : app.get_subcommands())
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt->count() == 0 || opt->get_type_size() == 0) continue;  // not given, or a flag
      for (const std::string& value : opt->results())
        if (value.empty()) {
          std::fprintf(stderr, "ihcscore: usage error: %s: an empty value (see ihcscore %s --help)\n",
                       opt->get_name().c_str(), sub->get_name().c_str());
          return kExitUsage;
        }
    }
  try {
    return run ? run() : kExitUsage;
  } catch (const EngineError& e) {
    std::fprintf(stderr, "ihcscore: error: %s\n", one_line(e.what()).c_str());
    return exit_code(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ihcscore: internal error: %s\n", one_line(e.what()).c_str());
    return kExitInternal;
  }
}
