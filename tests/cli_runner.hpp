#pragma once
// Runs the built ihcscore binary as a user would, capturing exit code, stdout and stderr; and
// the small file helpers the tests share.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

extern char** environ;

namespace ihc::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Set IHC_KEEP_SCRATCH=1 to keep the tests' scratch folders for a look after a run.
inline bool keep_scratch() { return std::getenv("IHC_KEEP_SCRATCH") != nullptr; }

// A fresh scratch folder per test case and process (CTest runs cases in parallel processes),
// under the system temp folder; removed when the process exits (CI runs on a long-lived
// machine: left behind, each run's folders would fill its disk), unless keep_scratch().
inline std::filesystem::path scratch_dir(const std::string& name) {
  struct Made {
    std::vector<std::filesystem::path> dirs;
    ~Made() {
      std::error_code ignored;
      if (!keep_scratch())
        for (const auto& d : dirs) std::filesystem::remove_all(d, ignored);
    }
  };
  static Made made;
  auto dir = std::filesystem::temp_directory_path() / ("ihcscore-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made.dirs.push_back(dir);
  return dir;
}

// `args` is appended to the binary path as shell words (callers quote what needs quoting).
inline CliResult run_cli(const std::string& args) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path();
  const auto out = dir / ("ihc-cli-out-" + std::to_string(::getpid()) + "-" + std::to_string(counter));
  const auto err = dir / ("ihc-cli-err-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  const std::string cmd = std::string("'") + IHC_BINARY + "' " + args + " >'" + out.string() + "' 2>'" +
                          err.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// A path quoted as one shell word for run_cli.
inline std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

inline std::vector<char> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<char>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

// Starts the binary in the background with `args` (no shell), stdin and stdout on /dev/null,
// stderr into `log`; returns its pid (for signals and waitpid).
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<std::string> argv_s{IHC_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, IHC_BINARY, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return pid;
}

// Waits (up to `timeout`) until process `pid` catches both SIGINT and SIGTERM (its SigCgt mask in
// /proc), so that a signal sent next meets the program's own handler, not the default action
// of a process still starting up. False if it never does or has exited.
inline bool wait_for_signal_handlers(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string status_path = "/proc/" + std::to_string(pid) + "/status";
  constexpr unsigned long long kWanted = (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream status(status_path);
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0 && line.find('Z') != std::string::npos) return false;  // exited
      if (line.rfind("SigCgt:", 0) != 0) continue;
      if ((std::stoull(line.substr(7), nullptr, 16) & kWanted) == kWanted) return true;
    }
    if (!status.is_open() && !std::filesystem::exists(status_path)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace ihc::test
