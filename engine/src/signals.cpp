#include "ihc/engine/signals.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <iterator>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>


namespace ihc::engine {
namespace {

constexpr int kMaxPaths = 48;
constexpr int kMaxDynamic = 16;
constexpr std::size_t kMaxPath = 4096;

// The guard's fixed list.
char g_paths[kMaxPaths][kMaxPath];
volatile std::sig_atomic_t g_path_count = 0;
// Registered one by one (temporaries): a slot is read by the handler only while its flag is set,
// and its text is written only while the flag is clear.
char g_dynamic[kMaxDynamic][kMaxPath];
volatile std::sig_atomic_t g_dynamic_used[kMaxDynamic] = {};
std::mutex g_dynamic_mutex;  // between registering threads; never taken by the handler
// Whether stderr is a terminal (a progress bar may be on the current line).
volatile std::sig_atomic_t g_tty = 0;
// The process's exit status after a signal (set_interrupted_exit_status).
volatile std::sig_atomic_t g_exit_status = 1;

// Removes a folder and what it holds (a report being written), with raw system calls only
// (getdents64, unlinkat, rmdir are async-signal-safe; opendir and readdir are not). Four levels
// deep at most: a report folder has three.
void remove_tree_at(int parent, const char* name, int depth) {
  if (::unlinkat(parent, name, 0) == 0 || depth > 4) return;
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
      remove_tree_at(fd, d->d_name, depth + 1);
    }
  }
  ::close(fd);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

void remove_path(const char* path) {
  if (::unlink(path) != 0) remove_tree_at(AT_FDCWD, path, 0);
}

extern "C" void remove_and_exit_on_signal(int) {
  for (int i = 0; i < g_path_count; ++i) remove_path(g_paths[i]);
  for (int i = 0; i < kMaxDynamic; ++i)
    if (g_dynamic_used[i]) remove_path(g_dynamic[i]);
  // On a terminal, end the progress bar's line first; otherwise exactly one line.
  static const char msg[] = "\nihcscore: interrupted; no partial outputs are left\n";
  const char* text = g_tty ? msg : msg + 1;
  const std::size_t length = g_tty ? sizeof msg - 1 : sizeof msg - 2;
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, text, length);
  ::_exit(g_exit_status);
}

}  // namespace

RemoveOnSignal::RemoveOnSignal(const std::vector<std::filesystem::path>& paths) {
  int n = 0;
  for (const auto& p : paths) {
    const std::string s = p.string();
    if (n == kMaxPaths || s.size() >= kMaxPath) continue;
    std::memcpy(g_paths[n], s.c_str(), s.size() + 1);
    ++n;
  }
  g_path_count = n;
  tty_before_ = g_tty != 0;
  g_tty = ::isatty(STDERR_FILENO) ? 1 : 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  struct sigaction sa {};
  sa.sa_handler = remove_and_exit_on_signal;
  sigemptyset(&sa.sa_mask);
  // A second signal while the handler runs waits for it (the handler exits).
  for (const int sig : kStopSignals) sigaddset(&sa.sa_mask, sig);
  for (std::size_t i = 0; i < std::size(kStopSignals); ++i) ::sigaction(kStopSignals[i], &sa, &old_[i]);
}

RemoveOnSignal::~RemoveOnSignal() {
  for (std::size_t i = 0; i < std::size(kStopSignals); ++i) ::sigaction(kStopSignals[i], &old_[i], nullptr);
  g_path_count = 0;
  g_tty = tty_before_ ? 1 : 0;
}

int remove_on_signal_add(const std::filesystem::path& path) {
  const std::string s = path.string();
  if (s.empty() || s.size() >= kMaxPath) return -1;
  std::lock_guard lock(g_dynamic_mutex);
  for (int i = 0; i < kMaxDynamic; ++i) {
    if (g_dynamic_used[i]) continue;
    std::memcpy(g_dynamic[i], s.c_str(), s.size() + 1);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    g_dynamic_used[i] = 1;
    return i;
  }
  return -1;
}

void set_interrupted_exit_status(int status) { g_exit_status = status; }

void ignore_file_size_signal() { ::signal(SIGXFSZ, SIG_IGN); }

void remove_on_signal_drop(int slot) {
  if (slot < 0 || slot >= kMaxDynamic) return;
  std::lock_guard lock(g_dynamic_mutex);
  g_dynamic_used[slot] = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace ihc::engine
