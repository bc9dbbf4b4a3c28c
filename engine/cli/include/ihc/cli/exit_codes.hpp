#pragma once
// The command line's exit codes (README, "Exit codes") and how engine errors map to them: the
// only place that names them.
#include "ihc/engine/errors.hpp"

namespace ihc::cli {

// The command line is a thin layer over the engine: its names are used unqualified in cli/.
using namespace ihc::engine;

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,      // a bug: an unexpected exception
  kExitUsage = 2,         // bad command line (unknown option, bad value)
  kExitInput = 3,         // an input file is missing, unreadable, unsupported or damaged
  kExitOutput = 4,        // an output cannot be written (or exists and --force was not given)
  kExitPartial = 5,       // some of the work failed (batch: some slides failed)
  kExitInterrupted = 130  // stopped by Ctrl-C / SIGTERM; no partial outputs are left
};

constexpr int exit_code(engine::ErrorKind kind) {
  switch (kind) {
    case engine::ErrorKind::usage: return kExitUsage;
    case engine::ErrorKind::input: return kExitInput;
    case engine::ErrorKind::output: return kExitOutput;
    case engine::ErrorKind::interrupted: return kExitInterrupted;
    case engine::ErrorKind::internal: return kExitInternal;
  }
  return kExitInternal;
}

}  // namespace ihc::cli
