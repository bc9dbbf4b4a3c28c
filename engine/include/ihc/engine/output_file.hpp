#pragma once
// Outputs appear whole or not at all: written to a temporary name beside the target, flushed,
// then renamed over it. An existing target is replaced only when `overwrite` is true.
#include <filesystem>
#include <functional>
#include <string>

namespace ihc::engine {

// Throws CommandError(kExitOutput) naming `target` when it exists and !overwrite, or when its
// folder is missing or not writable. Call before long work so the user learns early.
void check_output_path(const std::filesystem::path& target, bool overwrite);

// Temporary sibling name for `target` ("<target>.tmp-<pid>-<n>").
std::filesystem::path temporary_sibling(const std::filesystem::path& target);

// Writes `contents` to `target` atomically. Throws CommandError(kExitOutput) on any failure
// (including a full disk) and leaves no file behind.
void write_file_atomically(const std::filesystem::path& target, const std::string& contents,
                           bool overwrite);

// Runs `write(tmp)` which creates the file at `tmp`, then renames tmp to target. On any
// exception the temporary is removed and the exception propagates.
void commit_file_atomically(const std::filesystem::path& target, bool overwrite,
                            const std::function<void(const std::filesystem::path& tmp)>& write);

}  // namespace ihc::engine
