#pragma once
// Small text helpers shared by the engine and the command line, written once.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ihc::engine {

// A message on one line whatever a library put in it: line breaks and tabs become spaces,
// trailing spaces go, and bytes that are not UTF-8 are escaped (valid_utf8).
std::string one_line(std::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence written as "\xFF":
// file names are bytes, but reports, JSON and terminals want UTF-8. Valid text is unchanged.
std::string valid_utf8(std::string_view text);

// j.dump(indent) with every string (and key) passed through valid_utf8 first: the JSON every
// command writes, which a file name of arbitrary bytes must not make invalid (nlohmann's dump
// throws on such bytes).
std::string json_text(const nlohmann::json& j, int indent = -1);

// 64-bit FNV-1a of `text`.
std::uint64_t fnv1a64(std::string_view text);
// fnv1a64 as 16 lower-case hex digits (config files, batch settings).
std::string content_hash(std::string_view text);

}  // namespace ihc::engine
