#pragma once
// The engine's one error type. Every failure a user can cause or fix is an EngineError with a
// kind and a one-line message that names the file and the reason; the command line (engine/cli,
// exit_codes.hpp) maps the kind to an exit code, other callers (tests, bindings) to their own.
#include <stdexcept>
#include <string>

namespace ihc::engine {

enum class ErrorKind : int {
  usage = 1,        // a bad option or setting (value out of range, options that do not go together)
  input = 2,        // an input file is missing, unreadable, unsupported or damaged
  output = 3,       // an output cannot be written (or exists and replacing it was not asked for)
  interrupted = 4,  // stopped by a signal; no partial outputs are left
  internal = 5,     // the environment failed in a way the user cannot fix (e.g. MPI start-up)
};

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace ihc::engine
