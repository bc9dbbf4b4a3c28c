#include "ihc/engine/signals.hpp"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>

#include "ihc/engine/errors.hpp"

namespace ihc::engine {
namespace {

constexpr int kMaxPaths = 48;
constexpr std::size_t kMaxPath = 4096;
char g_paths[kMaxPaths][kMaxPath];
volatile std::sig_atomic_t g_path_count = 0;

extern "C" void remove_and_exit_on_signal(int) {
  for (int i = 0; i < g_path_count; ++i) ::unlink(g_paths[i]);
  static const char msg[] = "\nihcscore: interrupted; no partial outputs are left\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(kExitInterrupted);
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
  struct sigaction sa {};
  sa.sa_handler = remove_and_exit_on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
}

RemoveOnSignal::~RemoveOnSignal() {
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  g_path_count = 0;
}

}  // namespace ihc::engine
