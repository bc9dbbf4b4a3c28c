// `ihcscore batch INPUT --out DIR`: every slide of a folder or manifest (logic in batch.cpp).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <string>

#include "ihc/engine/batch.hpp"
#include "ihc/engine/commands.hpp"
#include "ihc/engine/errors.hpp"

namespace ihc::engine {
namespace {

// First Ctrl-C / SIGTERM: ask the batch to stop (the slide in progress is abandoned; its report
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
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopOnSignal() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

}  // namespace

void add_batch_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string input;
    std::string out;
    ScoringCli scoring;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "batch", "Score every slide of a folder or CSV manifest: DIR/<id>.json per slide and DIR/summary.csv; "
               "re-running resumes");
  cmd->add_option("INPUT", args->input,
                  "A folder (its slides and images, not recursive, by name) or a CSV manifest with a path column "
                  "and optional id, mpp, roi columns (roi is recorded, not applied yet)")
      ->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->get_option("--mpp")->description(
      "Micrometres per pixel for slides and images that record none (a manifest's mpp column wins for its "
      "slide; a slide's own resolution is never overridden)");
  cmd->add_option("--out", args->out, "Output folder (created if missing)")->required();
  cmd->add_flag("--force", args->force, "Score every slide again, even those already done with the same settings");
  cmd->footer(
      "--mpp is the resolution for slides that record none (a manifest's mpp column wins for its slide).\n"
      "Exit: 0 all scored, 5 some slides failed (see summary.csv), 3 INPUT unreadable, 4 DIR not writable, "
      "130 interrupted.");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      BatchOptions options;
      options.input = args->input;
      options.out = args->out;
      options.scoring = args->scoring;
      options.force = args->force;
      StopOnSignal guard;
      return run_batch(options, &g_stop);
    };
  });
}

}  // namespace ihc::engine
