#pragma once
// Ctrl-C / SIGTERM while a command writes files: the handler removes the listed partial files
// (async-signal-safe: unlink and write only), says so in one line, and exits 130. Installed for
// the guard's lifetime; the previous handlers come back when it ends. One guard at a time.
#include <filesystem>
#include <vector>

#include <signal.h>

namespace ihc::engine {

class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::vector<std::filesystem::path>& paths);
  ~RemoveOnSignal();
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

}  // namespace ihc::engine
