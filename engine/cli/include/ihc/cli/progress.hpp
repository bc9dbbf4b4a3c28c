#pragma once
// Progress for long work: a bar with rate and time left on a terminal (stderr), nothing when
// stderr is not a terminal (pipes, CI logs). Thread-safe: advance() may be called from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace ihc::cli {

class Progress {
 public:
  // `label` is shown before the bar; `unit` after the rate ("tiles/s"). `total` may be 0 (unknown).
  Progress(std::string label, std::int64_t total, std::string unit, bool enabled = stderr_is_terminal());
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::int64_t n = 1);
  void set_total(std::int64_t total);
  // Text shown after the bar (e.g. the current slide's tiles in a batch).
  void set_detail(const std::string& detail);
  // Clears the bar line (called by the destructor too).
  void finish();
  bool enabled() const { return enabled_; }

  static bool stderr_is_terminal();

 private:
  void draw(bool force);

  std::string label_;
  std::string unit_;
  std::string detail_;
  std::atomic<std::int64_t> done_{0};
  std::atomic<std::int64_t> total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mutex_;
};

}  // namespace ihc::cli
