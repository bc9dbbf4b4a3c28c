#pragma once
// Outputs appear whole or not at all: written to a temporary name beside the target, flushed,
// then renamed over it. An existing target is replaced only when `overwrite` is true.
// While a RemoveOnSignal guard is active, Ctrl-C / SIGTERM removes the temporaries.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ihc::engine {

// Throws EngineError(output) naming `target` when it exists and !overwrite, or when its
// folder is missing or not writable. Call before long work so the user learns early.
void check_output_path(const std::filesystem::path& target, bool overwrite);

// Temporary sibling name for `target` ("<target>.tmp-<pid>-<n>").
std::filesystem::path temporary_sibling(const std::filesystem::path& target);

// Writes `contents` to `target` atomically. Throws EngineError(output) on any failure
// (including a full disk) and leaves no file behind.
void write_file_atomically(const std::filesystem::path& target, const std::string& contents,
                           bool overwrite);

// Runs `write(tmp)` which creates the file at `tmp`, then renames tmp to target. On any
// exception the temporary is removed and the exception propagates.
void commit_file_atomically(const std::filesystem::path& target, bool overwrite,
                            const std::function<void(const std::filesystem::path& tmp)>& write);

// Several outputs of one command that appear together or not at all. While an OutputSet is
// open (one at a time, on one thread), commit_file_atomically and write_file_atomically write
// their temporaries and leave the renames to commit(); if commit() is not reached (an error, an
// exception) the destructor removes the temporaries, so a failing third output leaves no first
// or second one behind. Special files (/dev/full, /dev/stdout) are written directly.
class OutputSet {
 public:
  OutputSet();
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  // Renames every staged temporary onto its target. If a rename fails, the targets already
  // renamed and the remaining temporaries are removed, and EngineError(output) is thrown.
  void commit();

  struct Staged {
    std::filesystem::path target, tmp;
    int signal_slot = -1;
  };

 private:
  friend void commit_file_atomically(const std::filesystem::path&, bool,
                                     const std::function<void(const std::filesystem::path&)>&);
  void abandon() noexcept;
  std::vector<Staged> staged_;
  bool done_ = false;
};

// Throws EngineError(usage) when two of the given files (empty ones ignored) are the same, e.g.
// --json r.json --geojson ./r.json, or an output that names an input (list the inputs too: SLIDE,
// --roi, --config), which --force would otherwise replace.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& option_and_path);

// Throws EngineError(usage) when one of the given inputs lies inside `folder` (an output folder
// that is replaced whole, such as --report DIR).
void check_inputs_outside(const std::vector<std::pair<std::string, std::string>>& option_and_input,
                          const std::string& folder_option, const std::filesystem::path& folder);

}  // namespace ihc::engine
