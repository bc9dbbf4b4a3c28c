#pragma once
// Each subcommand lives in its own file (engine/cli/src/cmd_<name>.cpp) and registers itself here.
// When the user picks it, `run` is set to the function that carries it out; that function
// returns an exit code or throws engine::EngineError.
#include <functional>

#include <CLI/CLI.hpp>

namespace ihc::cli {

using CommandRunner = std::function<int()>;

void add_score_command(CLI::App& app, CommandRunner& run);
void add_synth_command(CLI::App& app, CommandRunner& run);
void add_bench_command(CLI::App& app, CommandRunner& run);
void add_markup_command(CLI::App& app, CommandRunner& run);
void add_calibrate_command(CLI::App& app, CommandRunner& run);
void add_ish_command(CLI::App& app, CommandRunner& run);
void add_validate_command(CLI::App& app, CommandRunner& run);
void add_deconvolve_command(CLI::App& app, CommandRunner& run);
void add_batch_command(CLI::App& app, CommandRunner& run);

}  // namespace ihc::cli
