#pragma once
// Shared by the libFuzzer harnesses: a per-process scratch folder in /dev/shm (or $TMPDIR) for
// readers that only take a path, removed when the process exits.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace ihc::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::filesystem::path base = "/dev/shm";
    if (!std::filesystem::is_directory(base, ec)) base = std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("ihc-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    static const std::filesystem::path for_exit = d;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(for_exit, ignored);
    });
    return d;
  }();
  return dir;
}

// Replaces `name` in the scratch folder with the bytes; returns its path.
inline std::filesystem::path write_scratch(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) std::abort();  // the harness itself failed: not a finding in the code under test
  return p;
}

}  // namespace ihc::fuzz
