// `ihcscore batch INPUT --out DIR`: every slide of a folder or manifest (logic in batch.cpp).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ihc/cli/batch.hpp"
#include "ihc/engine/signals.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/engine/signals.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/cli/mpi_batch.hpp"

namespace ihc::cli {
namespace {

// First Ctrl-C / SIGTERM / SIGHUP / SIGPIPE (kStopSignals): ask the batch to stop (the slide in progress is abandoned; its report
// is never half-written, summary.csv already lists every finished slide). A second one exits at
// once. Only async-signal-safe calls in the handler.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void batch_on_signal(int) {
  if (g_stop.exchange(true)) {
    static const char msg[] = "\nihcscore: interrupted\n";
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(kExitInterrupted);
  }
  static const char msg[] = "\nihcscore: stopping; the slide in progress is abandoned (Ctrl-C again to quit at once)\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

class StopOnSignal {
 public:
  StopOnSignal() {
    g_stop = false;
    struct sigaction sa {};
    sa.sa_handler = batch_on_signal;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < std::size(kStopSignals); ++i) ::sigaction(kStopSignals[i], &sa, &old_[i]);
  }
  ~StopOnSignal() {
    for (std::size_t i = 0; i < std::size(kStopSignals); ++i) ::sigaction(kStopSignals[i], &old_[i], nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction old_[std::size(kStopSignals)] {};
};

}  // namespace

void add_batch_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string input;
    std::string out;
    ScoringSettings scoring;
    bool force = false;
    bool mpi = false;
    std::optional<std::string> shard;
    std::vector<std::string> merge;
    std::string report;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "batch", "Score every slide of a folder or CSV manifest: DIR/<id>.json per slide and DIR/summary.csv; "
               "re-running resumes");
  cmd->add_option("INPUT", args->input,
                  "A folder (its slides and images, not recursive, by name) or a CSV manifest with a path (or file) "
                  "column "
                  "and optional id, mpp, roi columns (required unless --merge)");
  add_scoring_options(*cmd, args->scoring);
  cmd->get_option("--mpp")->description(
      "Micrometres per pixel for slides and images that record none (a manifest's mpp column wins for its "
      "slide; a slide's own resolution is never overridden)");
  cmd->add_option("--out", args->out, "Output folder (created if missing)")->required();
  cmd->add_flag("--force", args->force, "Score every slide again, even those already done with the same settings");
  cmd->add_flag("--mpi", args->mpi,
                "Run as one MPI job across the processes mpirun/srun starts: rank 0 hands out slides, largest first, "
                "every rank scores with its own --threads");
  cmd->add_option("--shard", args->shard,
                  "K/N: score only the items whose 0-based input index i has i % N == K-1, writing "
                  "DIR/summary-K-of-N.csv instead of summary.csv (join the shards with --merge)");
  cmd->add_option("--report", args->report,
                  "DIR: a report folder per scored slide (DIR/<id>/index.html, as score --report) and DIR/index.html, "
                  "a sortable table of every slide linking to them");
  cmd->add_option("--merge", args->merge,
                  "DIR...: join the shard summaries (summary-K-of-N.csv) in these folders into --out DIR/summary.csv, "
                  "in input order, as one batch over the whole input writes it")
      ->expected(1, -1);
  cmd->footer(
      "--mpp is the resolution for slides that record none (a manifest's mpp column wins for its slide).\n"
      "Scale out: mpirun -np N ihcscore batch INPUT --mpi --out DIR, or one job per --shard K/N then\n"
      "ihcscore batch --merge DIR --out DIR (see docs/cluster.md).\n"
      "Exit: 0 all scored, 5 some slides failed (see summary.csv), 3 INPUT unreadable, 4 DIR not writable, "
      "130 interrupted.");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      if (!args->merge.empty()) {
        if (!args->input.empty())
          throw EngineError(ErrorKind::usage, "--merge: give either INPUT (to score) or --merge DIR... (to join shards), not both");
        if (args->shard || args->mpi)
          throw EngineError(ErrorKind::usage, "--merge: cannot be combined with --shard or --mpi");
        std::vector<std::filesystem::path> dirs(args->merge.begin(), args->merge.end());
        return merge_batch(dirs, args->out);
      }
      if (args->input.empty())
        throw EngineError(ErrorKind::usage, "batch: INPUT is required (a folder or a CSV manifest), or --merge DIR...");
      BatchOptions options;
      options.input = args->input;
      options.out = args->out;
      options.scoring = args->scoring;
      options.force = args->force;
      options.report = args->report;
      if (args->shard) options.shard = parse_shard(*args->shard);
      StopOnSignal guard;
      return args->mpi ? run_mpi_batch(options, &g_stop) : run_batch(options, &g_stop);
    };
  });
}

}  // namespace ihc::cli
