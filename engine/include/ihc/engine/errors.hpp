#pragma once
// The command line's one error type and its exit codes (documented in README, "Exit codes").
#include <stdexcept>
#include <string>

namespace ihc::engine {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,      // a bug: an unexpected exception
  kExitUsage = 2,         // bad command line (unknown option, bad value)
  kExitInput = 3,         // an input file is missing, unreadable, unsupported or damaged
  kExitOutput = 4,        // an output cannot be written (or exists and --force was not given)
  kExitPartial = 5,       // some of the work failed (batch: some slides failed)
  kExitInterrupted = 130  // stopped by Ctrl-C / SIGTERM; no partial outputs are left
};

// Thrown by commands; main() prints "ihcscore: error: <message>" and exits with `code`.
// The message names the file and the reason, in one line.
class CommandError : public std::runtime_error {
 public:
  CommandError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

}  // namespace ihc::engine
