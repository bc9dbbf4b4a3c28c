#include "ihc/cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace ihc::cli {

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, std::int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::set_total(std::int64_t total) { total_.store(total); }

void Progress::set_detail(const std::string& detail) {
  if (!enabled_) return;
  {
    std::lock_guard lock(mutex_);
    detail_ = detail;
  }
  draw(false);
}

void Progress::advance(std::int64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (enabled_) draw(false);
}

namespace {
std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--";
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}
}  // namespace

void Progress::draw(bool force) {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const auto done = done_.load();
  const auto total = total_.load();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  constexpr int kWidth = 30;
  std::string bar;
  if (total > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(frac * kWidth);
    bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
    const double left = rate > 0 ? static_cast<double>(total - done) / rate : -1;
    std::fprintf(stderr, "\r%s %s %3d%% %lld/%lld  %.2f %s  %s left  %s\x1b[K", label_.c_str(), bar.c_str(),
                 static_cast<int>(frac * 100), static_cast<long long>(done), static_cast<long long>(total), rate,
                 unit_.c_str(), format_duration(left).c_str(), detail_.c_str());
  } else {
    std::fprintf(stderr, "\r%s %lld  %.1f %s  %s elapsed \x1b[K", label_.c_str(),
                 static_cast<long long>(done), rate, unit_.c_str(), format_duration(elapsed).c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
}

}  // namespace ihc::cli
