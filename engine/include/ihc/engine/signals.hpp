#pragma once
// Ctrl-C / SIGTERM (and SIGHUP, a closed terminal, and SIGPIPE, a closed pipe, alike) while a
// command writes files: the handler removes the listed partial files
// (async-signal-safe: unlink and write only), says so in one line, and exits with the status
// set_interrupted_exit_status gave (the command line: 130; 1 until set). Installed for
// the guard's lifetime; the previous handlers come back when it ends. One guard at a time.
//
// Files that come and go while a guard is active (the temporaries of write_file_atomically and
// commit_file_atomically) are registered with remove_on_signal_add and dropped again with
// remove_on_signal_drop; the handler removes those too.
#include <filesystem>
#include <vector>

#include <signal.h>

namespace ihc::engine {

// The signals that stop a command cleanly: Ctrl-C, kill, a closed terminal, a closed pipe.
inline constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::vector<std::filesystem::path>& paths);
  ~RemoveOnSignal();
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  struct sigaction old_[4] {};
  bool tty_before_ = false;
};

// Adds `path` (a file, or a folder with everything in it) to what the handler removes (whenever a guard is active, now or later); returns a
// slot for remove_on_signal_drop, or -1 when the table is full or the path too long. Thread-safe.
int remove_on_signal_add(const std::filesystem::path& path);
// Forgets the slot (-1 is ignored). Thread-safe.
void remove_on_signal_drop(int slot);

// The process's exit status when a guard's handler ends it. Call once, before any guard.
void set_interrupted_exit_status(int status);

// A write past the file-size limit (ulimit -f) fails with EFBIG and takes the normal error path
// instead of killing the process with SIGXFSZ (which would leave temporaries behind). Call once.
void ignore_file_size_signal();

}  // namespace ihc::engine
