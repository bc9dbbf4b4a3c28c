#pragma once
// Small text helpers shared by the engine and the command line, written once.
#include <cstdint>
#include <string>
#include <string_view>

namespace ihc::engine {

// A message on one line whatever a library put in it: line breaks and tabs become spaces,
// trailing spaces go.
std::string one_line(std::string_view text);

// 64-bit FNV-1a of `text`.
std::uint64_t fnv1a64(std::string_view text);
// fnv1a64 as 16 lower-case hex digits (config files, batch settings).
std::string content_hash(std::string_view text);

}  // namespace ihc::engine
