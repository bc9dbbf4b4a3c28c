#include "ihc/engine/output_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/signals.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;

namespace {
OutputSet* g_open_set = nullptr;  // the OutputSet in force, if any (main thread only)

// A path the signal handler removes while this object lives.
class SignalSlot {
 public:
  explicit SignalSlot(const fs::path& p) : slot_(remove_on_signal_add(p)) {}
  ~SignalSlot() { remove_on_signal_drop(slot_); }
  int release() { return std::exchange(slot_, -1); }
  SignalSlot(const SignalSlot&) = delete;
  SignalSlot& operator=(const SignalSlot&) = delete;

 private:
  int slot_;
};

// The same file for two outputs: compared as absolute, lexically normal paths (and, where they
// exist, as files).
bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (fs::absolute(a, ec).lexically_normal() == fs::absolute(b, ec).lexically_normal()) return true;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}
}  // namespace

void check_output_path(const fs::path& target, bool overwrite) {
  std::error_code ec;
  if (target.empty()) throw EngineError(ErrorKind::usage, "an output file name is empty");
  if (fs::is_directory(target, ec))
    throw EngineError(ErrorKind::output, target.string() + ": is a directory");
  if (fs::is_regular_file(target, ec) && !overwrite)
    throw EngineError(ErrorKind::output, target.string() + ": already exists; pass --force to replace it");
  // A link to nothing is still something the user made: not replaced without --force.
  if (fs::is_symlink(fs::symlink_status(target, ec)) && !fs::exists(target, ec) && !overwrite)
    throw EngineError(ErrorKind::output, target.string() + ": is a symbolic link to " +
                                             fs::read_symlink(target, ec).string() +
                                             ", which does not exist; pass --force to replace the link");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec))
    throw EngineError(ErrorKind::output, target.string() + ": " + parent.string() +
                                             (fs::exists(parent, ec) ? " is a file, not a folder" : " does not exist"));
  if (::access(parent.c_str(), W_OK) != 0)
    throw EngineError(ErrorKind::output, target.string() + ": folder " + parent.string() + " is not writable");
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& option_and_path) {
  for (std::size_t i = 0; i < option_and_path.size(); ++i) {
    if (option_and_path[i].second.empty()) continue;
    for (std::size_t j = i + 1; j < option_and_path.size(); ++j) {
      if (option_and_path[j].second.empty()) continue;
      if (same_file(option_and_path[i].second, option_and_path[j].second))
        throw EngineError(ErrorKind::usage, option_and_path[j].second + ": named by both " + option_and_path[i].first +
                                                " and " + option_and_path[j].first +
                                                "; give each output a file of its own, apart from the inputs");
    }
  }
}

void check_inputs_outside(const std::vector<std::pair<std::string, std::string>>& option_and_input,
                          const std::string& folder_option, const fs::path& folder) {
  if (folder.empty()) return;
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(fs::absolute(folder, ec), ec);
  for (const auto& [option, input] : option_and_input) {
    if (input.empty()) continue;
    const fs::path in = fs::weakly_canonical(fs::absolute(input, ec), ec);
    const auto [d, i] = std::mismatch(dir.begin(), dir.end(), in.begin(), in.end());
    if (d == dir.end())
      throw EngineError(ErrorKind::usage, input + ": " + option + " lies inside the " + folder_option + " folder " +
                                              folder.string() +
                                              ", which is written whole; give it a folder of its own");
  }
}

fs::path temporary_sibling(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  // Short and of fixed length, so a legal target name never makes an illegal temporary one.
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return parent / (".ihcscore-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".tmp");
}

void commit_file_atomically(const fs::path& target, bool overwrite,
                            const std::function<void(const fs::path& tmp)>& write) {
  // Only /dev/full-like special files can't be renamed over; write them directly.
  std::error_code ec;
  if (fs::exists(target, ec) && !fs::is_regular_file(target, ec) && !fs::is_directory(target, ec)) {
    write(target);
    return;
  }
  check_output_path(target, overwrite);
  if (g_open_set) {
    for (const auto& s : g_open_set->staged_)
      if (same_file(s.target, target))
        throw EngineError(ErrorKind::usage, target.string() + ": written twice by one command");
  }
  const fs::path tmp = temporary_sibling(target);
  SignalSlot on_signal(tmp);
  try {
    write(tmp);
    if (g_open_set) {
      g_open_set->staged_.push_back({target, tmp, on_signal.release()});
      return;
    }
    fs::rename(tmp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove(tmp, ec);
    throw EngineError(ErrorKind::output, target.string() + ": cannot be written: " + e.code().message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_file_atomically(const fs::path& target, const std::string& contents, bool overwrite) {
  commit_file_atomically(target, overwrite, [&](const fs::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
      throw EngineError(ErrorKind::output, target.string() + ": cannot be written: " + std::strerror(errno));
    const bool wrote = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
    int saved = wrote ? 0 : errno;
    // A special file (/dev/null, a pipe, a terminal) cannot be synced (EINVAL): nothing to wait for.
    const bool flushed = std::fflush(f) == 0 && (::fsync(::fileno(f)) == 0 || errno == EINVAL);
    if (!saved && !flushed) saved = errno;
    const bool closed = std::fclose(f) == 0;
    if (!saved && !closed) saved = errno;
    if (!wrote || !flushed || !closed) {
      throw EngineError(ErrorKind::output,
                         target.string() + ": cannot be written: " + std::strerror(saved ? saved : EIO));
    }
  });
}

OutputSet::OutputSet() {
  if (g_open_set) throw std::logic_error("OutputSet: one at a time");
  g_open_set = this;
}

OutputSet::~OutputSet() {
  if (!done_) abandon();
  g_open_set = nullptr;
}

void OutputSet::abandon() noexcept {
  std::error_code ec;
  for (const auto& s : staged_) {
    fs::remove(s.tmp, ec);
    remove_on_signal_drop(s.signal_slot);
  }
  staged_.clear();
  done_ = true;
}

void OutputSet::commit() {
  g_open_set = nullptr;  // nothing more is staged
  std::error_code ec;
  // Until every file is in place, Ctrl-C removes the renamed targets too: all or nothing.
  std::vector<int> target_slots;
  std::size_t renamed = 0;
  for (; renamed < staged_.size(); ++renamed) {
    auto& s = staged_[renamed];
    target_slots.push_back(remove_on_signal_add(s.target));
    fs::rename(s.tmp, s.target, ec);
    if (ec) break;
  }
  if (renamed < staged_.size()) {
    const Staged failed = staged_[renamed];
    const std::string reason = ec.message();
    for (std::size_t i = 0; i < renamed; ++i) fs::remove(staged_[i].target, ec);
    staged_.erase(staged_.begin(), staged_.begin() + static_cast<std::ptrdiff_t>(renamed));
    for (int slot : target_slots) remove_on_signal_drop(slot);
    abandon();
    throw EngineError(ErrorKind::output, failed.target.string() + ": cannot be written: " + reason);
  }
  for (int slot : target_slots) remove_on_signal_drop(slot);
  for (const auto& s : staged_) remove_on_signal_drop(s.signal_slot);
  staged_.clear();
  done_ = true;
}

}  // namespace ihc::engine
