#include "ihc/engine/output_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ihc/engine/errors.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;

void check_output_path(const fs::path& target, bool overwrite) {
  std::error_code ec;
  if (fs::is_regular_file(target, ec) && !overwrite)
    throw CommandError(kExitOutput, target.string() + ": already exists; pass --force to replace it");
  if (fs::is_directory(target, ec))
    throw CommandError(kExitOutput, target.string() + ": is a directory");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec))
    throw CommandError(kExitOutput, target.string() + ": folder " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    throw CommandError(kExitOutput, target.string() + ": folder " + parent.string() + " is not writable");
}

fs::path temporary_sibling(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  return fs::path(target.string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                  std::to_string(counter.fetch_add(1)));
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
  const fs::path tmp = temporary_sibling(target);
  try {
    write(tmp);
    fs::rename(tmp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove(tmp, ec);
    throw CommandError(kExitOutput, target.string() + ": cannot be written: " + e.code().message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_file_atomically(const fs::path& target, const std::string& contents, bool overwrite) {
  commit_file_atomically(target, overwrite, [&](const fs::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
      throw CommandError(kExitOutput, target.string() + ": cannot be written: " + std::strerror(errno));
    const bool wrote = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
    const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const int saved = errno;
    const bool closed = std::fclose(f) == 0;
    if (!wrote || !flushed || !closed) {
      throw CommandError(kExitOutput,
                         target.string() + ": cannot be written: " + std::strerror(saved ? saved : EIO));
    }
  });
}

}  // namespace ihc::engine
